/* hier, the product's search (KVR-S): a bottleneck bisection, a scan along the bottleneck, and
 * a refinement with exact evaluations.
 *
 * The chain's TTFT is a longest path through (rank, layer): per layer rank i costs
 * cycle_i = pre + attention + post of its chunk after the prefix S_{i-1} (a function of the
 * prefix sums, decreasing in S_{i-1} for a fixed S_i), and hop i carries the cache [0, S_i)
 * (increasing in S_i). For a bottleneck T, the backward greedy gives each rank from the last
 * one down the largest chunk whose cycle is <= T, so every prefix S_i is as small as T allows
 * (the hops carry the least KV, the pipeline fills soonest) and the front ranks take what is
 * left (at least one grain each). Bisection on T finds the smallest feasible bottleneck T*;
 * the answer lies on the curve T >= T* (a larger T trades the per-layer bottleneck for less
 * KV on the hops), so a geometric scan of T in [T*, T(one rank)] evaluated exactly, a golden-
 * section search around its best, and a refinement by moves of a step between chunks up to 3
 * apart (6p exact evaluations a pass, steps halving from a quarter of the mean working chunk
 * down to the grain) finish it. The scan runs twice:
 * the plain greedy, and the greedy on p-1 ranks with the last rank keeping one grain (it then
 * only waits for the last hop and runs the LM head: a short tail, which wins under noise). Greedy
 * cost: p log C cost-model calls per T; exact evaluations: O(p) per pass, each O(p L): about p^2
 * overall. Over a layout's stages (kvr_layout.h) a rank is a stage: its cycle is one shard's
 * pre + attention + post plus the stage's TP all-reduces, its hop the shard's KV from stage i to
 * i + 1 (positions i t -> (i + 1) t), its memory the shard's. */
#include <math.h>
#include <string.h>

#include "kvr_cost.h"
#include "kvr_lookup_int.h"
#include "kvr_tp.h"
#include "kvr_search.h"

struct chain {
    const struct kvr_model *m; /* one shard's model (the model itself at t = 1) */
    const struct kvr_machine *h;
    int p, t;
    double ar_s_per_byte, ar_lat_s; /* a layout's all-reduces per layer (0 at t = 1) */
    uint64_t ctx, g;
    double kvb;       /* KV bytes per token of one layer */
    double mem_bytes; /* what a rank may use: capacity less the reserve */
    bool tail;        /* the variant whose last rank holds one grain */
};

static double cycle_s(const struct chain *c, uint64_t s, uint64_t n)
{
    const struct kvr_gpu *g = &c->h->gpu;
    return kvr_cost_pre_s(c->m, g, n) + kvr_cost_attn_s(c->m, g, s, n, KVR_MASK_CAUSAL) +
           kvr_cost_post_s(c->m, g, n) + c->ar_lat_s + c->ar_s_per_byte * (double)n;
}

/* A stage's TP all-reduces per layer, ring over t (kvr_layout.c), read on stage 0's links:
 * 2 (t - 1) steps of c d dtype / t bytes, one all-reduce for a parallel block, two else. */
static void layout_costs(struct chain *c)
{
    if (c->t < 2) return;
    double n_ar = c->m->parallel_attn ? 1 : 2, steps = 2.0 * (c->t - 1);
    double row = (double)c->m->d_model * kvr_dtype_bytes(c->m->dtype) / c->t;
    c->ar_lat_s = n_ar * steps * c->h->link_lat_s[0][1];
    c->ar_s_per_byte = n_ar * steps * row / c->h->link_Bps[0][1];
}

/* The expected share of a noisy link as the transfer time sees it (kvr_noise_mean_share). */
static double mean_share(const struct kvr_machine *h, int i, int j)
{
    const struct kvr_noise *nz = &h->noise;
    if (nz->mode == KVR_NOISE_NONE || !(nz->all_links || nz->on[i][j]) || nz->share <= 0) return 0;
    if (nz->mode == KVR_NOISE_CONSTANT) return nz->share;
    return kvr_noise_mean_share(nz->share);
}

/* Hop i carries [first(s), s): with a sliding window only what later ranks attend
 * (kvr_scheme_kvr.c's whole hand-off). */
static double hop_s(const struct chain *c, int i, uint64_t s)
{
    int a = i * c->t, b = (i + 1) * c->t;
    double rows = (double)(s - kvr_window_first(c->m, s));
    return kvr_link_overlap_s(c->h, a, b, rows * c->kvb, mean_share(c->h, a, b));
}

/* Rank m's chunk [s, e) fits in the bottleneck and in the GPU's memory (both decrease in s). */
static bool rank_ok(const struct chain *c, double T, uint64_t s, uint64_t e)
{
    return cycle_s(c, s, e - s) <= T && kvr_memory_kvr_rank_bytes(c->m, e, e - s) <= c->mem_bytes;
}

/* Backward greedy for bottleneck T: prefix ends S[0..p-1]; false when T is infeasible. */
static bool greedy(const struct chain *c, double T, uint64_t *S)
{
    const uint64_t g = c->g;
    S[c->p - 1] = c->ctx;
    int first = c->p - 1;
    if (c->tail && c->p > 2) { /* the last rank keeps one grain: the LM head's rank */
        S[c->p - 2] = (c->ctx - 1) / g * g;
        if (!rank_ok(c, T, S[c->p - 2], c->ctx)) return false;
        first = c->p - 2;
    }
    for (int m = first; m >= 1; m--) {
        uint64_t lo = (uint64_t)m, hi = (S[m] - 1) / g; /* in grains: ranks 0..m-1 need one */
        if (hi < lo || !rank_ok(c, T, hi * g, S[m])) return false;
        while (lo < hi) { /* the smallest prefix whose chunk up to S[m] fits */
            uint64_t mid = lo + (hi - lo) / 2;
            if (rank_ok(c, T, mid * g, S[m]))
                hi = mid;
            else
                lo = mid + 1;
        }
        S[m - 1] = lo * g;
        if (hop_s(c, m - 1, S[m - 1]) > T) return false;
    }
    return rank_ok(c, T, 0, S[0]);
}

static void to_tokens(const uint64_t *S, int p, uint64_t *tokens)
{
    for (int i = 0; i < p; i++) tokens[i] = S[i] - (i ? S[i - 1] : 0);
}

struct scan {
    struct kvr_objective *obj;
    const struct chain *c;
    uint64_t best[KVR_MAX_GPUS], last[KVR_MAX_GPUS];
    double best_v, best_T, last_v;
    bool have_last;
};

/* The exact objective of the greedy partition at T (INFINITY when T is infeasible). */
static double at(struct scan *s, double T)
{
    uint64_t S[KVR_MAX_GPUS], t[KVR_MAX_GPUS];
    if (!greedy(s->c, T, S)) return INFINITY;
    to_tokens(S, s->c->p, t);
    size_t bytes = (size_t)s->c->p * sizeof *t;
    if (s->have_last && !memcmp(t, s->last, bytes)) return s->last_v; /* same partition */
    double v = kvr_objective_eval(s->obj, s->c->ctx, t);
    memcpy(s->last, t, bytes), s->last_v = v, s->have_last = true;
    if (v < s->best_v) {
        s->best_v = v, s->best_T = T;
        memcpy(s->best, t, (size_t)s->c->p * sizeof *t);
    }
    return v;
}

/* The smallest feasible bottleneck, by bisection on log T between an infeasible and a feasible
 * one (the whole context on one rank is always feasible for the greedy). */
static double smallest_bottleneck(const struct chain *c, double hi)
{
    uint64_t S[KVR_MAX_GPUS];
    double lo = hi / (4.0 * c->p);
    for (int k = 0; k < 20 && greedy(c, lo, S); k++) lo /= 4;
    for (int k = 0; k < 40 && hi / lo > 1 + 1e-6; k++) {
        double mid = sqrt(lo * hi);
        if (greedy(c, mid, S))
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

/* Geometric scan of T in [T*, T1], then golden section around the best step. */
static void scan_bottleneck(struct scan *s, double t_star, double t_one)
{
    const int n = 24;
    double r = pow(t_one / t_star, 1.0 / n);
    if (!(r > 1)) r = 1 + 1e-3;
    for (int k = 0; k <= n; k++) at(s, t_star * pow(r, k));
    double a = log(fmax(s->best_T / r, t_star)), b = log(s->best_T * r);
    const double phi = 0.6180339887498949;
    double x1 = b - phi * (b - a), x2 = a + phi * (b - a);
    double f1 = at(s, exp(x1)), f2 = at(s, exp(x2));
    for (int k = 0; k < 12; k++) {
        if (f1 <= f2)
            b = x2, x2 = x1, f2 = f1, x1 = b - phi * (b - a), f1 = at(s, exp(x1));
        else
            a = x1, x1 = x2, f1 = f2, x2 = a + phi * (b - a), f2 = at(s, exp(x2));
    }
}

bool kvr_search_on_grid(const uint64_t *tokens, int p, uint64_t g)
{
    uint64_t s = 0;
    for (int i = 0; i + 1 < p; i++) {
        s += tokens[i];
        if (tokens[i] == 0 || s % g) return false;
    }
    return p < 1 || tokens[p - 1] > 0;
}

/* Moves between chunks up to this far apart (shifting the boundaries between them together):
 * adjacent moves alone stall where two boundaries must move at once (measured under noise on
 * 8 x 8 GPUs at 128k: 0.68% from the strong oracle with 1, 0.06% with 3). */
#define REFINE_SPAN 3

/* Under noise (more than one trial) each move costs T simulator runs, and most are rejected:
 * a move is first screened on one run at the links' mean share (kvr_objective_screen) and gets
 * its T runs only when the screen is within SCREEN_SLACK of the current plan's (the mean over
 * trials of a max over paths is not the max at the mean, so an improving move can screen a
 * little worse: at slack 0 the refinement stalls at the scan's plan, 0.9% from the oracle on
 * 8 x 8 at 128k); and a step stops once a whole pass gains less than PASS_GAIN: there the 8
 * trials' TTFTs at the plan found spread by 3.0% (standard deviation), so their mean estimates
 * the expected TTFT to ~1.1% and a pass's gain below 0.1% fits the draws, not the expectation
 * (before, 26 passes at the grain there gained 0.06% in all). Both leave a search without noise
 * exactly as it was. */
#define SCREEN_SLACK 1e-4
#define PASS_GAIN    1e-3
/* Under noise the refinement also ends after IDLE_STEPS steps in a row without a gain: the
 * plan is then a local optimum at three scales (Falcon-7B at 1M on 64 GPUs: none of its 7
 * steps gains); over the bench's 21 noisy cases this moved 4 plans, by 0.002-0.065%. */
#define IDLE_STEPS 3

/* The refinement's state: the partition, its objective v and (under noise) its screen vs. */
struct refine {
    struct kvr_objective *obj;
    uint64_t ctx, *t;
    double v, vs;
    bool noisy;
};

/* A move of step tokens between chunks a and b, either way; true when it improved v. */
static bool try_move(struct refine *r, uint64_t step, uint64_t *a, uint64_t *b)
{
    for (int dir = 0; dir < 2; dir++) {
        uint64_t *from = dir ? a : b, *to = dir ? b : a;
        if (*from <= step) continue; /* chunks stay non-empty */
        *from -= step, *to += step;
        double ws = r->noisy ? kvr_objective_screen(r->obj, r->ctx, r->t) : 0;
        if (!r->noisy || ws < r->vs * (1 + SCREEN_SLACK)) {
            double w = kvr_objective_eval(r->obj, r->ctx, r->t);
            if (w < r->v * (1 - 1e-12)) {
                r->v = w, r->vs = ws;
                return true; /* the other direction would undo it */
            }
        }
        *from += step, *to -= step;
    }
    return false;
}

/* One pass of moves across every boundary, and between every chunk and the last one (the LM
 * head's rank, which also waits for the last hop: with a sliding window every other rank costs
 * about the same and the best plan moves tokens from the last rank to the front ones, which
 * moves of span 3 do not reach: 0.8% from the strong oracle for Mistral-7B at 16k on 16 GPUs);
 * true when something improved. */
static bool refine_pass(struct refine *r, uint64_t step)
{
    int p = kvr_objective_p(r->obj), span = REFINE_SPAN;
    uint64_t *t = r->t;
    bool improved = false;
    for (int i = 0; i + 1 < p; i++) {
        for (int d = 1; d <= span && i + d < p; d++)
            improved |= try_move(r, step, &t[i], &t[i + d]);
        if (i + span < p - 1) improved |= try_move(r, step, &t[i], &t[p - 1]);
    }
    return improved;
}

/* hier's refinement; with screen false (or without noise) every move gets the whole objective
 * and every step runs to a pass without a gain (kvr_search_refine, the oracles'). */
static double refine(struct kvr_objective *obj, uint64_t ctx, uint64_t g, uint64_t step,
                     uint64_t *tokens, bool screen)
{
    struct refine r = {.obj = obj, .ctx = ctx, .t = tokens};
    r.noisy = screen && kvr_objective_trials(obj) > 1;
    r.v = kvr_objective_eval(obj, ctx, tokens);
    if (r.noisy) r.vs = kvr_objective_screen(obj, ctx, tokens);
    step = step / g * g < g ? g : step / g * g;
    for (int idle = 0;; step = step / 2 / g * g) {
        double v0 = r.v;
        for (int pass = 0; pass < 64; pass++) {
            double before = r.v;
            if (!refine_pass(&r, step) || (r.noisy && before - r.v < PASS_GAIN * before)) break;
        }
        idle = r.v < v0 ? 0 : idle + 1;
        if (step / 2 / g * g < g || (r.noisy && idle >= IDLE_STEPS)) break;
    }
    return r.v;
}

double kvr_search_refine(struct kvr_objective *obj, uint64_t ctx, uint64_t g, uint64_t step,
                         uint64_t *tokens)
{
    return refine(obj, ctx, g, step, tokens, false);
}

/* The refinement's first step: a quarter of the mean chunk of the ranks that hold more than
 * one grain (the others idle at the grid's minimum), at least 8 grains. */
static uint64_t first_step(const uint64_t *t, int p, uint64_t g)
{
    uint64_t used = 0, n = 0;
    for (int i = 0; i < p; i++)
        if (t[i] > g) used += t[i], n++;
    uint64_t step = n ? used / n / 4 / g * g : 0;
    return step < 8 * g ? 8 * g : step;
}

enum kvr_status kvr_search_hier(struct kvr_objective *obj, uint64_t ctx,
                                const struct kvr_search_opts *o, struct kvr_search_result *res)
{
    int p = kvr_objective_p(obj);
    enum kvr_status st = kvr_search_check_ctx(obj, ctx);
    if (st) return st;
    uint64_t evals0 = kvr_objective_evals(obj), g = kvr_lookup_grain(p, ctx, o->granularity);
    struct kvr_model part;
    int tp = kvr_objective_tp(obj);
    kvr_tp_shard(kvr_objective_model(obj), tp, 0, &part);
    struct chain c = {.m = &part,
                      .h = kvr_objective_machine(obj),
                      .p = p,
                      .t = tp,
                      .ctx = ctx,
                      .g = g,
                      .kvb = (double)kvr_model_kv_bytes_per_token_layer(&part)};
    c.mem_bytes = c.h->gpu.mem_bytes - c.h->gpu.mem_reserve_bytes;
    layout_costs(&c);
    struct scan s = {.obj = obj, .c = &c, .best_v = INFINITY};
    if (p > 1) {
        double t_one = cycle_s(&c, 0, ctx); /* everything on the last rank */
        double t_star = smallest_bottleneck(&c, t_one * 1.0001);
        scan_bottleneck(&s, t_star, t_one * 1.0001);
        /* and the family whose last rank keeps one grain and only runs the LM head after the
         * last hop: under noise its short tail can win (found by the strong oracle) */
        c.tail = p > 2;
        s.have_last = false;
        if (c.tail) scan_bottleneck(&s, smallest_bottleneck(&c, t_one * 1.0001), t_one * 1.0001);
    }
    /* the balanced closed form on the grid, as a candidate too */
    uint64_t t[KVR_MAX_GPUS];
    kvr_search_start(obj, ctx, g, t);
    double v = kvr_objective_eval(obj, ctx, t);
    if (v < s.best_v) s.best_v = v, memcpy(s.best, t, (size_t)p * sizeof *t);
    if (!isfinite(s.best_v)) return kvr_objective_nofit_error(obj, ctx);
    if (p > 1) s.best_v = refine(obj, ctx, g, first_step(s.best, p, g), s.best, true);
    memcpy(res->tokens, s.best, (size_t)p * sizeof *s.best);
    res->ttft_s = s.best_v;
    res->n_evals = kvr_objective_evals(obj) - evals0;
    res->granularity = g;
    return KVR_OK;
}

/* The greedy's pieces for KVR-P (kvr_interp.c): a partition's bottleneck, the smallest
 * feasible one, and the greedy partition at a bottleneck. */
static struct chain make_chain(const struct kvr_model *m, const struct kvr_machine *h, int p,
                               uint64_t ctx, uint64_t g)
{
    return (struct chain){.m = m,
                          .h = h,
                          .p = p,
                          .t = 1,
                          .ctx = ctx,
                          .g = g,
                          .kvb = (double)kvr_model_kv_bytes_per_token_layer(m),
                          .mem_bytes = h->gpu.mem_bytes - h->gpu.mem_reserve_bytes};
}

double kvr_bottleneck_of(const struct kvr_model *m, const struct kvr_machine *h, int p,
                         const uint64_t *tokens)
{
    uint64_t ctx = 0;
    for (int i = 0; i < p; i++) ctx += tokens[i];
    struct chain c = make_chain(m, h, p, ctx, 1);
    double T = 0;
    uint64_t s = 0;
    for (int i = 0; i < p; i++) {
        T = fmax(T, cycle_s(&c, s, tokens[i]));
        if (i > 0) T = fmax(T, hop_s(&c, i - 1, s));
        s += tokens[i];
    }
    return T;
}

double kvr_bottleneck_min(const struct kvr_model *m, const struct kvr_machine *h, int p,
                          uint64_t ctx, uint64_t g, bool tail)
{
    struct chain c = make_chain(m, h, p, ctx, g);
    c.tail = tail && p > 2;
    return p > 1 ? smallest_bottleneck(&c, cycle_s(&c, 0, ctx) * 1.0001) : cycle_s(&c, 0, ctx);
}

bool kvr_bottleneck_partition(const struct kvr_model *m, const struct kvr_machine *h, int p,
                              uint64_t ctx, uint64_t g, bool tail, double T, uint64_t *tokens)
{
    struct chain c = make_chain(m, h, p, ctx, g);
    c.tail = tail && p > 2;
    uint64_t S[KVR_MAX_GPUS];
    if (!greedy(&c, T, S)) return false;
    to_tokens(S, p, tokens);
    return true;
}
