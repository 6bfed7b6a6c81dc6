/* The search oracles kept beside the hierarchical search: exhaustive enumeration on the
 * granularity grid, and GSL multi-start Nelder-Mead on the continuous relaxation. */
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <string.h>

#include "kvr_gsl_check.h"
#include "kvr_lookup_int.h"
#include "kvr_search.h"

struct enumerate {
    struct kvr_objective *obj;
    uint64_t ctx, g;
    int p;
    uint64_t t[KVR_MAX_GPUS];
    uint64_t best_t[KVR_MAX_GPUS];
    double best_v;
};

/* Chunks i..p-2 take whole grains from `left` tokens; the last takes the rest (>= 1). */
static void enumerate_rec(struct enumerate *e, int i, uint64_t left)
{
    if (i == e->p - 1) {
        e->t[i] = left;
        double v = kvr_objective_eval(e->obj, e->ctx, e->t);
        if (v < e->best_v) {
            e->best_v = v;
            memcpy(e->best_t, e->t, (size_t)e->p * sizeof *e->t);
        }
        return;
    }
    uint64_t rest = (uint64_t)(e->p - 2 - i) * e->g + 1; /* what later chunks need at least */
    for (uint64_t c = e->g; c + rest <= left; c += e->g) {
        e->t[i] = c;
        enumerate_rec(e, i + 1, left - c);
    }
}

enum kvr_status kvr_search_exhaustive(struct kvr_objective *obj, uint64_t ctx,
                                      const struct kvr_search_opts *o,
                                      struct kvr_search_result *res)
{
    int p = kvr_objective_p(obj);
    enum kvr_status st = kvr_search_check_ctx(obj, ctx);
    if (st) return st;
    uint64_t g = kvr_lookup_grain(p, ctx, o->granularity), units = (ctx - 1) / g;
    double count = 1; /* C(units, p-1) partitions */
    for (int i = 1; i < p; i++) count = count * (double)(units - (uint64_t)(i - 1)) / i;
    if (count > (double)o->exhaustive_max)
        return kvr_error(KVR_ERR_INPUT,
                         "exhaustive search of ctx %llu on %d ranks at granularity %llu would "
                         "evaluate %.3g partitions (limit %llu)",
                         (unsigned long long)ctx, p, (unsigned long long)g, count,
                         (unsigned long long)o->exhaustive_max);
    uint64_t evals0 = kvr_objective_evals(obj);
    struct enumerate e = {.obj = obj, .ctx = ctx, .g = g, .p = p, .best_v = INFINITY};
    enumerate_rec(&e, 0, ctx);
    if (!isfinite(e.best_v)) return kvr_objective_nofit_error(obj, ctx);
    memcpy(res->tokens, e.best_t, (size_t)p * sizeof *e.best_t);
    res->ttft_s = e.best_v;
    res->n_evals = kvr_objective_evals(obj) - evals0;
    res->granularity = g;
    return KVR_OK;
}

struct relaxed {
    struct kvr_objective *obj;
    uint64_t ctx;
    int p;
};

/* Fractions from p-1 free logits (the last is 0): every point is a valid partition. */
static void softmax(const gsl_vector *x, int p, double *frac)
{
    double mx = 0, sum = 0;
    for (int i = 0; i + 1 < p; i++) mx = fmax(mx, gsl_vector_get(x, (size_t)i));
    for (int i = 0; i < p; i++) {
        frac[i] = exp((i + 1 < p ? gsl_vector_get(x, (size_t)i) : 0) - mx);
        sum += frac[i];
    }
    for (int i = 0; i < p; i++) frac[i] /= sum;
}

/* What the relaxation sees of a plan that does not fit: GSL's simplex needs finite values
 * (an infinite one is GSL_EBADFUNC), so a penalty far above any TTFT that falls with the
 * fullest rank's memory, towards the plans that fit. */
#define NM_NOFIT_PENALTY_S 1e12

static double relaxed_f(const gsl_vector *x, void *arg)
{
    struct relaxed *r = arg;
    double frac[KVR_MAX_GPUS];
    uint64_t t[KVR_MAX_GPUS];
    softmax(x, r->p, frac);
    kvr_lookup_round(frac, r->p, r->ctx, 1, t);
    double v = kvr_objective_eval(r->obj, r->ctx, t), over = kvr_objective_last_nofit_ratio(r->obj);
    return isfinite(v) ? v : NM_NOFIT_PENALTY_S * (over > 0 ? over : 4);
}

/* One Nelder-Mead run from x (overwritten with the minimiser); returns its value. */
static enum kvr_status nm_run(gsl_multimin_function *f, gsl_vector *x, gsl_vector *step,
                              double *value)
{
    gsl_multimin_fminimizer *s =
        gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, x->size);
    if (!s) return kvr_error(KVR_ERR_NOMEM, "Nelder-Mead: out of memory");
    int rc = gsl_multimin_fminimizer_set(s, f, x, step);
    for (int it = 0; rc == GSL_SUCCESS && it < 400 * (int)x->size; it++) {
        rc = gsl_multimin_fminimizer_iterate(s);
        if (rc == GSL_ENOPROG) rc = GSL_SUCCESS; /* a flat simplex: converged as far as it can */
        if (rc || gsl_multimin_test_size(gsl_multimin_fminimizer_size(s), 1e-6) == GSL_SUCCESS)
            break;
    }
    if (rc == GSL_SUCCESS) {
        gsl_vector_memcpy(x, gsl_multimin_fminimizer_x(s));
        *value = gsl_multimin_fminimizer_minimum(s);
    }
    gsl_multimin_fminimizer_free(s);
    KVR_GSL_CHECK(rc);
    return KVR_OK;
}

/* Start k: the balanced split, the even split, then seeded random logits in [-1, 1]. */
static void nm_start(const struct relaxed *r, int k, gsl_rng *rng, gsl_vector *x)
{
    uint64_t t[KVR_MAX_GPUS];
    kvr_search_start(r->obj, r->ctx, 1, t);
    for (int i = 0; i + 1 < r->p; i++) {
        double v = k == 0   ? log((double)t[i] / (double)t[r->p - 1])
                   : k == 1 ? 0
                            : 2 * gsl_rng_uniform(rng) - 1;
        gsl_vector_set(x, (size_t)i, v);
    }
}

static enum kvr_status nm_starts(struct relaxed *r, const struct kvr_search_opts *o, gsl_vector *x,
                                 gsl_vector *step, gsl_rng *rng, double *best_v, uint64_t *best_t)
{
    gsl_multimin_function f = {.f = relaxed_f, .n = x->size, .params = r};
    for (int k = 0; k < (o->nm_starts > 0 ? o->nm_starts : 1); k++) {
        double v = INFINITY, frac[KVR_MAX_GPUS];
        nm_start(r, k, rng, x);
        enum kvr_status st = nm_run(&f, x, step, &v);
        if (st) return st;
        if (v < *best_v && v < NM_NOFIT_PENALTY_S) {
            *best_v = v;
            softmax(x, r->p, frac);
            kvr_lookup_round(frac, r->p, r->ctx, 1, best_t);
        }
    }
    return KVR_OK;
}

enum kvr_status kvr_search_nelder_mead(struct kvr_objective *obj, uint64_t ctx,
                                       const struct kvr_search_opts *o,
                                       struct kvr_search_result *res)
{
    struct relaxed r = {.obj = obj, .ctx = ctx, .p = kvr_objective_p(obj)};
    enum kvr_status st = kvr_search_check_ctx(obj, ctx);
    if (st) return st;
    uint64_t evals0 = kvr_objective_evals(obj);
    res->ttft_s = INFINITY;
    if (r.p == 1) {
        res->tokens[0] = ctx;
        res->ttft_s = kvr_objective_eval(obj, ctx, res->tokens);
        res->n_evals = 1;
        res->granularity = 1;
        return isfinite(res->ttft_s) ? KVR_OK : kvr_objective_nofit_error(obj, ctx);
    }
    kvr_gsl_init();
    gsl_vector *x = gsl_vector_alloc((size_t)r.p - 1), *step = gsl_vector_alloc((size_t)r.p - 1);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!x || !step || !rng) st = kvr_error(KVR_ERR_NOMEM, "Nelder-Mead: out of memory");
    if (!st) {
        gsl_rng_set(rng, (unsigned long)o->nm_seed);
        gsl_vector_set_all(step, 0.3);
        st = nm_starts(&r, o, x, step, rng, &res->ttft_s, res->tokens);
    }
    gsl_vector_free(x), gsl_vector_free(step), gsl_rng_free(rng);
    res->n_evals = kvr_objective_evals(obj) - evals0;
    res->granularity = 1; /* one-token rounding */
    if (!st && !isfinite(res->ttft_s)) st = kvr_objective_nofit_error(obj, ctx);
    return st;
}
