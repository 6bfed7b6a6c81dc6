/* The strong oracle for tests and `kvr bench search`: the best of hier (under noise refined
 * again without hier's screen), the descent oracle and Nelder-Mead rounded to the grid (both
 * at p <= 16: beyond they take minutes), hier's refinement from seeded random starts (one anywhere
 * on the simplex at p <= 16, then hops: the best so far with every boundary moved by a random -4..4
 * grains), and all-pair moves (p(p-1) a step) from the best. */
#include <math.h>
#include <string.h>

#include "kvr_lookup_int.h"
#include "kvr_search.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

struct best {
    uint64_t tokens[KVR_MAX_GPUS];
    double v;
};

static void keep(struct best *b, const uint64_t *t, double v, int p)
{
    if (v < b->v) b->v = v, memcpy(b->tokens, t, (size_t)p * sizeof *t);
}

static void keep_result(struct best *b, const struct kvr_search_result *r, enum kvr_status st,
                        int p, uint64_t g)
{
    if (st == KVR_OK && kvr_search_on_grid(r->tokens, p, g)) keep(b, r->tokens, r->ttft_s, p);
}

/* Random fractions (exponential draws: uniform on the simplex), rounded to the grid. */
static void random_start(uint64_t *seed, int p, uint64_t ctx, uint64_t g, uint64_t *t)
{
    double frac[KVR_MAX_GPUS], sum = 0;
    for (int i = 0; i < p; i++) {
        double u = ((double)(splitmix64(seed) >> 11) + 0.5) / 9007199254740992.0;
        sum += frac[i] = -log(u);
    }
    for (int i = 0; i < p; i++) frac[i] /= sum;
    kvr_lookup_round(frac, p, ctx, g, t);
}

/* The best partition with every boundary moved by a random -4..4 grains (kept in order). */
static void perturb(uint64_t *seed, const uint64_t *best, int p, uint64_t g, uint64_t *t)
{
    uint64_t S[KVR_MAX_GPUS], s = 0, ctx = 0;
    for (int i = 0; i < p; i++) ctx += best[i];
    for (int i = 0; i + 1 < p; i++) {
        s += best[i];
        int64_t d = (int64_t)(splitmix64(seed) % 9) - 4, x = (int64_t)s + d * (int64_t)g;
        int64_t lo = (int64_t)(i ? S[i - 1] + g : g),
                hi = (int64_t)(ctx - (uint64_t)(p - 1 - i) * g);
        S[i] = (uint64_t)(x < lo ? lo : x > hi ? hi : x);
        if (S[i] % g) S[i] = s; /* the rest, off the grid: keep it as it was */
    }
    S[p - 1] = ctx;
    for (int i = 0; i < p; i++) t[i] = S[i] - (i ? S[i - 1] : 0);
    if (!kvr_search_on_grid(t, p, g) || S[p - 2] >= ctx) memcpy(t, best, (size_t)p * sizeof *t);
}

enum kvr_status kvr_search_multistart(struct kvr_objective *obj, uint64_t ctx,
                                      const struct kvr_search_opts *o,
                                      struct kvr_search_result *res)
{
    int p = kvr_objective_p(obj);
    uint64_t evals0 = kvr_objective_evals(obj), g = kvr_lookup_grain(p, ctx, o->granularity);
    struct best b = {.v = INFINITY};
    struct kvr_search_result r;
    enum kvr_status st = kvr_search_hier(obj, ctx, o, &r);
    if (st) return st; /* hier refuses what nothing else would find (ctx < p, no fit) */
    keep_result(&b, &r, st, p, g);
    if (kvr_objective_trials(obj) > 1 && p > 1) /* hier screens under noise: the full refinement */
        keep(&b, r.tokens, kvr_search_refine(obj, ctx, g, 4 * g, r.tokens), p);
    if (p <= 16) {
        keep_result(&b, &r, kvr_search_descent(obj, ctx, o, &r), p, g);
        if (kvr_search_nelder_mead(obj, ctx, o, &r) == KVR_OK) {
            double frac[KVR_MAX_GPUS];
            kvr_lookup_fractions(r.tokens, p, frac);
            kvr_lookup_round(frac, p, ctx, g, r.tokens);
            keep(&b, r.tokens, kvr_search_refine(obj, ctx, g, 4 * g, r.tokens), p);
        }
    }
    uint64_t seed = o->nm_seed, t[KVR_MAX_GPUS];
    for (int k = 0; k < (o->nm_starts > 0 ? o->nm_starts : 1) && p > 1; k++) {
        if (k == 0 && p <= 16) { /* one start anywhere on the simplex */
            random_start(&seed, p, ctx, g, t);
            keep(&b, t, kvr_search_refine(obj, ctx, g, ctx / (uint64_t)p / 2, t), p);
            continue;
        }
        perturb(&seed, b.tokens, p, g, t); /* then hops from the best so far */
        keep(&b, t, kvr_search_refine(obj, ctx, g, 4 * g, t), p);
    }
    if (p > 1) {
        memcpy(t, b.tokens, (size_t)p * sizeof *t);
        keep(&b, t, kvr_search_polish(obj, ctx, g, 4 * g, t), p);
    }
    memcpy(res->tokens, b.tokens, (size_t)p * sizeof *b.tokens);
    res->ttft_s = b.v;
    res->n_evals = kvr_objective_evals(obj) - evals0;
    res->granularity = g;
    return KVR_OK;
}
