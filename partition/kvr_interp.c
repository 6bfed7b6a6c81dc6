#include "kvr_interp.h"

#include <gsl/gsl_interp.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_gsl_check.h"
#include "kvr_lookup_int.h"

int kvr_interp_from_name(const char *name)
{
    return !strcmp(name, "linear")    ? KVR_INTERP_LINEAR
           : !strcmp(name, "steffen") ? KVR_INTERP_STEFFEN
                                      : -1;
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
    if (!st) kvr_lookup_round(f, p, ctx, rows[0].granularity_tokens, a->tokens);
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
        lr[k] = (struct kvr_lookup_row){rows[k].model,       rows[k].machine,
                                        rows[k].scheme,      rows[k].method,
                                        rows[k].p,           rows[k].granularity_tokens,
                                        rows[k].ctx_tokens,  rows[k].predicted_ttft_s,
                                        rows[k].tokens,      rows[k].model_hash,
                                        rows[k].machine_hash};
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
