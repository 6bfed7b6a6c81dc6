/* The descent oracle (the product before the bottleneck search in kvr_search_hier.c): balanced
 * start, coarse simplex grid, then pairwise refinement with halving steps down to the
 * granularity; and the methods' dispatch. Only on-grid candidates: every result is on the grid
 * it reports. */
#include <math.h>
#include <string.h>

#include "kvr_lookup_int.h"
#include "kvr_search.h"

void kvr_search_opts_default(struct kvr_search_opts *o)
{
    *o = (struct kvr_search_opts){.granularity = 64,
                                  .coarse_max = 512,
                                  .exhaustive_max = 5000000,
                                  .nm_starts = 6,
                                  .nm_seed = 1};
}

enum kvr_status kvr_search_check_ctx(const struct kvr_objective *obj, uint64_t ctx)
{
    int p = kvr_objective_p(obj);
    return ctx < (uint64_t)p ? kvr_error(KVR_ERR_INPUT, "ctx %llu is smaller than p = %d",
                                         (unsigned long long)ctx, p)
                             : KVR_OK;
}

/* The best point so far. */
struct best {
    uint64_t tokens[KVR_MAX_GPUS];
    double v;
};

/* A plan that does not fit counts as this penalty times its fullest rank's need / available:
 * above every TTFT, and falling towards the plans that fit, so a descent from a start that
 * does not fit (the later ranks' caches fill the GPU, and the balanced split is too heavy at
 * the end) finds them. */
#define NOFIT_PENALTY_S 1e12

static void consider(struct kvr_objective *obj, uint64_t ctx, const uint64_t *tokens,
                     struct best *b)
{
    int p = kvr_objective_p(obj);
    double v = kvr_objective_eval(obj, ctx, tokens), over = kvr_objective_last_nofit_ratio(obj);
    if (!isfinite(v) && over > 0) v = NOFIT_PENALTY_S * over;
    if (v < b->v) {
        b->v = v;
        memcpy(b->tokens, tokens, (size_t)p * sizeof *tokens);
    }
}

/* Number of compositions of k into p positive parts, C(k-1, p-1), as a double. */
static double compositions(uint64_t k, int p)
{
    double c = 1;
    for (int i = 1; i < p; i++) c = c * (double)(k - (uint64_t)i) / i;
    return k >= (uint64_t)p ? c : 0;
}

struct coarse {
    struct kvr_objective *obj;
    uint64_t ctx, g, K;
    int p;
    uint64_t k[KVR_MAX_GPUS];
    struct best *b;
};

/* Every composition k_0 + ... + k_{p-1} = K, each k_i >= 1, as fractions k_i / K. */
static void coarse_rec(struct coarse *c, int i, uint64_t left)
{
    if (i == c->p - 1) {
        double frac[KVR_MAX_GPUS];
        uint64_t tokens[KVR_MAX_GPUS];
        c->k[i] = left;
        for (int j = 0; j < c->p; j++) frac[j] = (double)c->k[j] / (double)c->K;
        kvr_lookup_round(frac, c->p, c->ctx, c->g, tokens);
        consider(c->obj, c->ctx, tokens, c->b);
        return;
    }
    for (uint64_t k = 1; k + (uint64_t)(c->p - 1 - i) <= left; k++) {
        c->k[i] = k;
        coarse_rec(c, i + 1, left - k);
    }
}

/* The finest grid of K parts with at most coarse_max points (K >= p). */
static uint64_t coarse_parts(uint64_t ctx, int p, uint64_t g, uint64_t coarse_max)
{
    uint64_t K = (uint64_t)p, units = ctx / g;
    while (K + 1 <= units && compositions(K + 1, p) <= (double)coarse_max) K++;
    return K;
}

/* Steepest descent over moves of `step` tokens from chunk i to chunk j; true if it moved. */
static int descend(struct kvr_objective *obj, uint64_t ctx, uint64_t step, struct best *b)
{
    int p = kvr_objective_p(obj), moved = 0;
    for (;;) {
        struct best trial = *b;
        uint64_t t[KVR_MAX_GPUS];
        memcpy(t, b->tokens, (size_t)p * sizeof *t);
        for (int i = 0; i < p; i++) {
            if (t[i] <= step) continue; /* every chunk stays non-empty */
            for (int j = 0; j < p; j++) {
                if (j == i) continue;
                t[i] -= step, t[j] += step;
                consider(obj, ctx, t, &trial);
                t[i] += step, t[j] -= step;
            }
        }
        if (!(trial.v < b->v * (1 - 1e-12))) return moved; /* ties end the descent */
        *b = trial;
        moved = 1;
    }
}

enum kvr_status kvr_search_descent(struct kvr_objective *obj, uint64_t ctx,
                                   const struct kvr_search_opts *o, struct kvr_search_result *res)
{
    int p = kvr_objective_p(obj);
    enum kvr_status st = kvr_search_check_ctx(obj, ctx);
    if (st) return st;
    uint64_t evals0 = kvr_objective_evals(obj), g = kvr_lookup_grain(p, ctx, o->granularity);
    struct best b = {.v = INFINITY};
    uint64_t t[KVR_MAX_GPUS];
    double even[KVR_MAX_GPUS];
    /* the even and balanced splits on the grid: never worse than either */
    kvr_search_start(obj, ctx, g, t);
    consider(obj, ctx, t, &b);
    for (int i = 0; i < p; i++) even[i] = 1.0 / p;
    kvr_lookup_round(even, p, ctx, g, t);
    consider(obj, ctx, t, &b);
    uint64_t K = p > 1 ? coarse_parts(ctx, p, g, o->coarse_max) : 1;
    if (p > 1) {
        struct coarse c = {.obj = obj, .ctx = ctx, .g = g, .K = K, .p = p, .b = &b};
        coarse_rec(&c, 0, K);
    }
    /* refine: start at half a coarse cell, halve down to the grain */
    uint64_t step = ctx / K / 2 / g * g;
    for (step = step < g ? g : step; p > 1; step = step / 2 / g * g < g ? g : step / 2 / g * g) {
        descend(obj, ctx, step, &b);
        if (step == g) break;
    }
    if (!(b.v < NOFIT_PENALTY_S)) return kvr_objective_nofit_error(obj, ctx);
    memcpy(res->tokens, b.tokens, (size_t)p * sizeof *b.tokens);
    res->ttft_s = b.v;
    res->granularity = g;
    res->n_evals = kvr_objective_evals(obj) - evals0;
    return KVR_OK;
}

/* No search: the even split (KVR-E) or the balanced closed form, on the grid. */
static enum kvr_status fixed_split(struct kvr_objective *obj, uint64_t ctx, uint64_t g, int even,
                                   struct kvr_search_result *res)
{
    int p = kvr_objective_p(obj);
    enum kvr_status st = kvr_search_check_ctx(obj, ctx);
    if (st) return st;
    uint64_t evals0 = kvr_objective_evals(obj);
    if (even) {
        struct kvr_plan plan = {.p = p, .ctx = ctx};
        kvr_plan_even(&plan); /* exact tokens, as `kvr sim --scheme kvr-even` */
        memcpy(res->tokens, plan.tokens, (size_t)p * sizeof *plan.tokens);
    } else {
        kvr_search_start(obj, ctx, g, res->tokens);
    }
    res->ttft_s = kvr_objective_eval(obj, ctx, res->tokens);
    res->n_evals = kvr_objective_evals(obj) - evals0;
    res->granularity = even ? 1 : g; /* the even split is exact */
    double over = kvr_objective_last_nofit_ratio(obj);
    if (!isfinite(res->ttft_s) && over > 0) /* this split, not every partition */
        return kvr_error(KVR_ERR_NOFIT,
                         "the %s split of %llu tokens on %d ranks does not fit in GPU memory: "
                         "its fullest rank needs %.4f times the bytes available",
                         even ? "even" : "balanced", (unsigned long long)ctx, p, over);
    return isfinite(res->ttft_s) ? KVR_OK : kvr_objective_nofit_error(obj, ctx);
}

enum kvr_status kvr_search_run(struct kvr_objective *obj, enum kvr_method method, uint64_t ctx,
                               const struct kvr_search_opts *o, struct kvr_search_result *res)
{
    memset(res, 0, sizeof *res);
    switch (method) {
    case KVR_METHOD_HIER:
        return kvr_search_hier(obj, ctx, o, res);
    case KVR_METHOD_EXHAUSTIVE:
        return kvr_search_exhaustive(obj, ctx, o, res);
    case KVR_METHOD_NM:
        return kvr_search_nelder_mead(obj, ctx, o, res);
    case KVR_METHOD_DESCENT:
        return kvr_search_descent(obj, ctx, o, res);
    case KVR_METHOD_MULTISTART:
        return kvr_search_multistart(obj, ctx, o, res);
    case KVR_METHOD_EVEN:
    case KVR_METHOD_BALANCED:
        return fixed_split(obj, ctx, kvr_lookup_grain(kvr_objective_p(obj), ctx, o->granularity),
                           method == KVR_METHOD_EVEN, res);
    default:
        return kvr_error(KVR_ERR_INPUT, "unknown search method %d", (int)method);
    }
}

double kvr_search_polish(struct kvr_objective *obj, uint64_t ctx, uint64_t g, uint64_t step,
                         uint64_t *tokens)
{
    int p = kvr_objective_p(obj);
    struct best b = {.v = kvr_objective_eval(obj, ctx, tokens)};
    memcpy(b.tokens, tokens, (size_t)p * sizeof *tokens);
    for (step = step / g * g < g ? g : step / g * g; p > 1; step = step / 2 / g * g) {
        descend(obj, ctx, step, &b);
        if (step / 2 / g * g < g) break;
    }
    memcpy(tokens, b.tokens, (size_t)p * sizeof *tokens);
    return b.v < NOFIT_PENALTY_S ? b.v : INFINITY;
}
