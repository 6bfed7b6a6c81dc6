#include "kvr_interp.h"

#include <gsl/gsl_interp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_gsl_check.h"
#include "kvr_lookup_int.h"
#include "kvr_search.h"

static const char *const interp_names[] = {"linear", "steffen", "balanced", "bottleneck"};

int kvr_interp_from_name(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, interp_names[i])) return i;
    return -1;
}

const char *kvr_interp_name(enum kvr_interp how)
{
    return how >= 0 && how < 4 ? interp_names[how] : "?";
}

/* Steffen's monotone cubic through (ctx_k, fraction_k[i]) for each chunk i. */
static enum kvr_status steffen(const struct kvr_plan_row *rows, size_t n, uint64_t ctx, size_t lo,
                               struct kvr_lookup_answer *a)
{
    int p = rows[0].p;
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), f[KVR_MAX_GPUS], sum = 0;
    gsl_interp *it = gsl_interp_alloc(gsl_interp_steffen, n);
    enum kvr_status st = x && y && it ? KVR_OK : kvr_error(KVR_ERR_NOMEM, "interp: out of memory");
    for (int i = 0; i < p && !st; i++) {
        for (size_t k = 0; k < n; k++) {
            double fk[KVR_MAX_GPUS];
            kvr_lookup_fractions(rows[k].tokens, p, fk);
            x[k] = (double)rows[k].ctx_tokens, y[k] = fk[i];
        }
        int rc = gsl_interp_init(it, x, y, n);
        if (rc == GSL_SUCCESS) rc = gsl_interp_eval_e(it, x, y, (double)ctx, NULL, &f[i]);
        if (rc != GSL_SUCCESS)
            st = kvr_error(KVR_ERR_RUNTIME, "interp: GSL Steffen spline: %s", gsl_strerror(rc));
        f[i] = f[i] < 0 ? 0 : f[i];
        sum += f[i];
    }
    for (int i = 0; i < p && !st; i++) f[i] = sum > 0 ? f[i] / sum : 1.0 / p;
    /* on the lower neighbour's grid, as linear (rows[0] may be a short row rounded to 1) */
    if (!st) kvr_lookup_round(f, p, ctx, rows[lo].granularity_tokens, a->tokens);
    a->lo_ctx = rows[lo].ctx_tokens, a->hi_ctx = rows[lo + 1].ctx_tokens;
    gsl_interp_free(it);
    free(x), free(y);
    return st;
}

enum kvr_status kvr_interp_partition(const struct kvr_plan_row *rows, size_t n, uint64_t ctx,
                                     enum kvr_interp how, bool clamp, struct kvr_lookup_answer *a)
{
    const struct kvr_lookup_row **view = malloc((n ? n : 1) * sizeof *view);
    struct kvr_lookup_row *lr = malloc((n ? n : 1) * sizeof *lr);
    if (!view || !lr) {
        free(view), free(lr);
        return kvr_error(KVR_ERR_NOMEM, "interp: out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        lr[k] = (struct kvr_lookup_row){rows[k].model,
                                        rows[k].machine,
                                        rows[k].scheme,
                                        rows[k].method,
                                        rows[k].p,
                                        rows[k].granularity_tokens,
                                        rows[k].ctx_tokens,
                                        rows[k].predicted_ttft_s,
                                        rows[k].tokens,
                                        rows[k].model_hash,
                                        rows[k].machine_hash,
                                        1, /* staged: one entry per chunk */
                                        NULL};
        view[k] = &lr[k];
    }
    char err[512];
    int rc = kvr_lookup_solve(view, n, ctx, clamp, a, err, sizeof err);
    free(view), free(lr);
    if (rc) return kvr_error(rc == KVR_LOOKUP_NOMEM ? KVR_ERR_NOMEM : KVR_ERR_INPUT, "%s", err);
    if (how == KVR_INTERP_LINEAR || a->exact || a->clamped || n < 3) return KVR_OK;
    kvr_gsl_init();
    size_t lo = 0;
    while (lo + 2 < n && rows[lo + 1].ctx_tokens < ctx) lo++;
    return steffen(rows, n, ctx, lo, a);
}

/* Cumulative fractions of a partition, and of the balanced closed form at ctx. */
static void cumulative(const uint64_t *tokens, int p, double *F)
{
    double s = 0, C = 0;
    for (int i = 0; i < p; i++) C += (double)tokens[i];
    for (int i = 0; i < p; i++) F[i] = (s += (double)tokens[i]) / C;
}

static void balanced_cumulative(const struct kvr_model *m, const struct kvr_machine *h, int p,
                                uint64_t ctx, double *F)
{
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = p, .ctx = ctx};
    kvr_plan_balanced(&plan, m, &h->gpu);
    cumulative(plan.tokens, p, F);
}

static void by_balanced(const struct kvr_plan_row *lo, const struct kvr_plan_row *hi, uint64_t ctx,
                        const struct kvr_model *m, const struct kvr_machine *h,
                        struct kvr_lookup_answer *a)
{
    int p = lo->p;
    double w = hi->ctx_tokens == lo->ctx_tokens
                   ? 0
                   : ((double)ctx - (double)lo->ctx_tokens) /
                         ((double)hi->ctx_tokens - (double)lo->ctx_tokens);
    double Fl[KVR_MAX_GPUS], Fh[KVR_MAX_GPUS], Bl[KVR_MAX_GPUS], Bh[KVR_MAX_GPUS], B[KVR_MAX_GPUS];
    double frac[KVR_MAX_GPUS], prev = 0;
    cumulative(lo->tokens, p, Fl), cumulative(hi->tokens, p, Fh);
    balanced_cumulative(m, h, p, lo->ctx_tokens, Bl);
    balanced_cumulative(m, h, p, hi->ctx_tokens, Bh);
    balanced_cumulative(m, h, p, ctx, B);
    for (int i = 0; i < p; i++) {
        double F = i + 1 == p ? 1 : B[i] + (1 - w) * (Fl[i] - Bl[i]) + w * (Fh[i] - Bh[i]);
        F = fmin(fmax(F, prev), 1);
        frac[i] = F - prev, prev = F;
    }
    kvr_lookup_round(frac, p, ctx, kvr_lookup_grain(p, ctx, lo->granularity_tokens), a->tokens);
}

static enum kvr_status by_bottleneck(const struct kvr_plan_row *lo, const struct kvr_plan_row *hi,
                                     uint64_t ctx, const struct kvr_model *m,
                                     const struct kvr_machine *h, struct kvr_lookup_answer *a)
{
    int p = lo->p;
    double w = hi->ctx_tokens == lo->ctx_tokens
                   ? 0
                   : ((double)ctx - (double)lo->ctx_tokens) /
                         ((double)hi->ctx_tokens - (double)lo->ctx_tokens);
    const struct kvr_plan_row *nb[2] = {lo, hi};
    double r[2];
    bool tail = p > 2; /* both neighbours' last rank keeps one grain: that family */
    for (int k = 0; k < 2; k++)
        tail &= nb[k]->tokens[p - 1] <=
                kvr_lookup_grain(p, nb[k]->ctx_tokens, nb[k]->granularity_tokens);
    for (int k = 0; k < 2; k++) {
        uint64_t g = kvr_lookup_grain(p, nb[k]->ctx_tokens, nb[k]->granularity_tokens);
        r[k] = kvr_bottleneck_of(m, h, tail ? p - 1 : p, nb[k]->tokens) /
               kvr_bottleneck_min(m, h, p, nb[k]->ctx_tokens, g, tail);
    }
    uint64_t g = kvr_lookup_grain(p, ctx, lo->granularity_tokens);
    double T = ((1 - w) * r[0] + w * r[1]) * kvr_bottleneck_min(m, h, p, ctx, g, tail);
    for (int k = 0; k < 60; k++, T *= 1.001) /* the ratio may sit just below feasibility */
        if (kvr_bottleneck_partition(m, h, p, ctx, g, tail, T, a->tokens)) return KVR_OK;
    return kvr_error(KVR_ERR_RUNTIME, "interp: no greedy partition of %llu at the bottleneck",
                     (unsigned long long)ctx);
}

enum kvr_status kvr_interp_partition_model(const struct kvr_plan_row *rows, size_t n, uint64_t ctx,
                                           enum kvr_interp how, bool clamp,
                                           const struct kvr_model *m, const struct kvr_machine *h,
                                           struct kvr_lookup_answer *a)
{
    enum kvr_status st = kvr_interp_partition(
        rows, n, ctx, how == KVR_INTERP_STEFFEN ? how : KVR_INTERP_LINEAR, clamp, a);
    if (st || a->exact || a->clamped || how == KVR_INTERP_LINEAR || how == KVR_INTERP_STEFFEN)
        return st;
    const struct kvr_plan_row *lo = NULL, *hi = NULL;
    for (size_t k = 0; k < n; k++) {
        if (rows[k].ctx_tokens == a->lo_ctx) lo = &rows[k];
        if (rows[k].ctx_tokens == a->hi_ctx) hi = &rows[k];
    }
    if (!lo || !hi) return kvr_error(KVR_ERR_RUNTIME, "interp: neighbours not found");
    if (how == KVR_INTERP_BALANCED) {
        by_balanced(lo, hi, ctx, m, h, a);
        return KVR_OK;
    }
    if (!lo->n_mapping) return by_bottleneck(lo, hi, ctx, m, h, a);
    /* the greedy sees the links from the chain's positions: the lower neighbour's mapping */
    int map[KVR_MAX_GPUS];
    struct kvr_machine *mapped = malloc(sizeof *mapped);
    if (!mapped) return kvr_error(KVR_ERR_NOMEM, "interp: out of memory");
    *mapped = *h;
    st = kvr_mapping_complete(lo->mapping, lo->n_mapping, h->n_nodes * h->gpus_per_node, map);
    if (!st) st = kvr_machine_permute(h, map, mapped);
    if (!st) st = by_bottleneck(lo, hi, ctx, m, mapped, a);
    free(mapped);
    return st;
}
