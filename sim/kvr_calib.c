#include "kvr_calib.h"

#include <gsl/gsl_multifit_nlinear.h>
#include <math.h>

#include "kvr_cost.h"
#include "kvr_gsl_check.h"

const int kvr_calib_ops[] = {KVR_OP_EMBED,       KVR_OP_NORM_ATTN, KVR_OP_QKV,      KVR_OP_ROTARY,
                             KVR_OP_ATTN_SCORES, KVR_OP_OUT_PROJ,  KVR_OP_NORM_MLP, KVR_OP_MLP_UP,
                             KVR_OP_MLP_ACT,     KVR_OP_MLP_DOWN,  KVR_OP_LM_HEAD};
const int kvr_calib_n_ops = (int)(sizeof kvr_calib_ops / sizeof kvr_calib_ops[0]);

/* One op of a layer for c tokens after s, or one op outside the layers. */
static double one_op_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t s, uint64_t c,
                       int op)
{
    struct kvr_op_cost x;
    uint64_t rows_c = op == KVR_OP_FINAL_NORM || op == KVR_OP_LM_HEAD ? 1 : c;
    if (kvr_op_cost(m, (enum kvr_op)op, s, c, KVR_MASK_CAUSAL, &x)) return INFINITY;
    double rows = kvr_cost_model_eff_rows(m, g, (enum kvr_op)op, s, rows_c, KVR_MASK_CAUSAL);
    return kvr_cost_model_op_s(m, g, (enum kvr_op)op, &x, rows);
}

/* One op over the prefill: per layer (s = 0, c = ctx) times the layers, but the last layer's on
 * its last row (after ctx - 1) where the executor prunes it (kvr_cost_last_row_op; not when
 * full); or once outside the layers. */
static double op_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t ctx, int op,
                   bool full)
{
    double t = one_op_s(m, g, 0, ctx, op);
    if (op >= KVR_N_LAYER_OPS) return t;
    if (full || ctx < 2 || !kvr_cost_last_row_op(m, (enum kvr_op)op)) return t * m->n_layers;
    return t * (m->n_layers - 1) + one_op_s(m, g, ctx - 1, 1, op);
}

double kvr_calib_predict_at(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t prefix,
                            uint64_t ctx, int op)
{
    if (op != KVR_CALIB_ATTN_LAYER) return kvr_calib_predict(m, g, ctx, op);
    return kvr_cost_attn_s(m, g, prefix, ctx, KVR_MASK_CAUSAL); /* one layer, s = prefix */
}

double kvr_calib_predict(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t ctx, int op)
{
    return kvr_calib_predict_last(m, g, ctx, op, false);
}

double kvr_calib_predict_last(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t ctx,
                              int op, bool full)
{
    if (op == KVR_CALIB_ATTN_LAYER) return NAN; /* kvr_calib_predict_at's */
    if (op == KVR_OP_NORM_MLP && m->block_norms == 1) return 0;
    if (op == KVR_OP_ATTN_SCORES)
        return op_s(m, g, ctx, KVR_OP_ATTN_SCORES, full) +
               op_s(m, g, ctx, KVR_OP_ATTN_SOFTMAX, full) + op_s(m, g, ctx, KVR_OP_ATTN_PV, full);
    if (op == KVR_OP_MLP_DOWN)
        return op_s(m, g, ctx, op, full) + op_s(m, g, ctx, KVR_OP_RESIDUAL, full);
    if (op == KVR_OP_LM_HEAD)
        return op_s(m, g, ctx, op, full) + op_s(m, g, ctx, KVR_OP_FINAL_NORM, full);
    return op_s(m, g, ctx, op, full);
}

double kvr_calib_predict_point(const struct kvr_calib_point *p, const struct kvr_gpu *g)
{
    if (p->op == KVR_CALIB_ATTN_LAYER)
        return kvr_calib_predict_at(p->model, g, p->prefix, p->ctx, p->op);
    return kvr_calib_predict_last(p->model, g, p->ctx, p->op, p->full_last_layer);
}

/* The operation groups with a time multiplier of their own (kvr_gpu.op_scale). Each class keeps
 * one group without: mlp_up for the GEMMs, mlp_act for the element-wise ops, attention (its
 * class has no other), so the class parameters stay determined. A group's multiplier goes to
 * every operation it stands for (the residual adds with mlp_down, the final norm with
 * lm_head). */
static const int scaled_groups[] = {KVR_OP_NORM_ATTN, KVR_OP_QKV,      KVR_OP_ROTARY,
                                    KVR_OP_OUT_PROJ,  KVR_OP_NORM_MLP, KVR_OP_MLP_DOWN,
                                    KVR_OP_EMBED,     KVR_OP_LM_HEAD};
enum { N_SCALED = (int)(sizeof scaled_groups / sizeof scaled_groups[0]) };

static void set_group_scale(struct kvr_gpu *g, int group, double v)
{
    g->op_scale[group] = v;
    if (group == KVR_OP_MLP_DOWN) g->op_scale[KVR_OP_RESIDUAL] = v;
    if (group == KVR_OP_LM_HEAD) g->op_scale[KVR_OP_FINAL_NORM] = v;
}

/* Parameters in an unconstrained space: efficiencies through a logistic, half-tokens, the
 * launch overhead, attention's head-size exponent and the groups' multipliers through exp. */
enum { N_BASE = 3 * KVR_N_CLASSES + 3, N_PARAMS = N_BASE + N_SCALED };

static double logistic(double x)
{
    return 1 / (1 + exp(-x));
}

/* A parameter the data do not determine (zero gradient: a GEMM's half_tokens near 0, the
 * memory efficiency of a compute-bound class) gets an unbounded trust-region step: capped,
 * its predictions stay finite, so such a step is rejected instead of sending the fit to
 * infinity (H200 data of 2026-12-03: half_tokens.gemm went to inf from the previous profile). */
#define HALF_TOKENS_LOG_MAX 16.0 /* e^16: 8.9 million tokens, past any context */
#define EFF_MIN             1e-6

static void to_gpu(const gsl_vector *x, struct kvr_gpu *g)
{
    for (int c = 0; c < KVR_N_CLASSES; c++) {
        g->compute_eff[c] = fmax(logistic(gsl_vector_get(x, (size_t)(3 * c))), EFF_MIN);
        g->half_tokens[c] = exp(fmin(gsl_vector_get(x, (size_t)(3 * c + 1)), HALF_TOKENS_LOG_MAX));
        g->mem_eff[c] = fmax(logistic(gsl_vector_get(x, (size_t)(3 * c + 2))), EFF_MIN);
    }
    g->launch_s = exp(gsl_vector_get(x, N_BASE - 3));
    g->attn_hd_exp = exp(gsl_vector_get(x, N_BASE - 2));
    g->attn_keys_exp = logistic(gsl_vector_get(x, N_BASE - 1));
    for (int k = 0; k < N_SCALED; k++)
        set_group_scale(g, scaled_groups[k], exp(gsl_vector_get(x, (size_t)(N_BASE + k))));
}

static void from_gpu(const struct kvr_gpu *g, gsl_vector *x)
{
    for (int c = 0; c < KVR_N_CLASSES; c++) {
        double e = fmin(fmax(g->compute_eff[c], 1e-3), 0.999),
               me = fmin(fmax(g->mem_eff[c], 1e-3), 0.999);
        gsl_vector_set(x, (size_t)(3 * c), log(e / (1 - e)));
        gsl_vector_set(x, (size_t)(3 * c + 1), log(fmax(g->half_tokens[c], 1e-3)));
        gsl_vector_set(x, (size_t)(3 * c + 2), log(me / (1 - me)));
    }
    gsl_vector_set(x, N_BASE - 3, log(fmax(g->launch_s, 1e-9)));
    gsl_vector_set(x, N_BASE - 2, log(fmax(g->attn_hd_exp, 0.05)));
    double a = fmin(fmax(g->attn_keys_exp, 0.02), 0.98); /* the logistic's open interval */
    gsl_vector_set(x, N_BASE - 1, log(a / (1 - a)));
    for (int k = 0; k < N_SCALED; k++) {
        double v = g->op_scale[scaled_groups[k]];
        gsl_vector_set(x, (size_t)(N_BASE + k), log(v > 0 ? v : 1));
    }
}

struct fit_data {
    struct kvr_gpu g;
    const struct kvr_calib_point *pts;
    size_t n;
};

static int residuals(const gsl_vector *x, void *data, gsl_vector *f)
{
    struct fit_data *d = data;
    to_gpu(x, &d->g);
    for (size_t i = 0; i < d->n; i++) {
        const struct kvr_calib_point *p = &d->pts[i];
        double pred = kvr_calib_predict_point(p, &d->g);
        gsl_vector_set(f, i, (pred - p->time_s) / p->time_s);
    }
    return GSL_SUCCESS;
}

/* One trust-region fit from the start x; the result in g and res. */
static int fit_from(gsl_multifit_nlinear_workspace *w, gsl_multifit_nlinear_fdf *fdf, gsl_vector *x,
                    struct kvr_gpu *g, struct kvr_calib_fit_result *res)
{
    int info = 0, rc = gsl_multifit_nlinear_init(x, fdf, w);
    if (rc == GSL_SUCCESS)
        rc = gsl_multifit_nlinear_driver(500, 1e-10, 1e-10, 1e-10, NULL, NULL, &info, w);
    /* running out of iterations still leaves the best point found */
    if (rc != GSL_SUCCESS && rc != GSL_EMAXITER) return rc;
    to_gpu(w->x, g);
    gsl_vector *f = gsl_multifit_nlinear_residual(w);
    double ss = 0, mx = 0;
    for (size_t i = 0; i < fdf->n; i++) {
        double r = fabs(gsl_vector_get(f, i));
        ss += r * r, mx = fmax(mx, r);
    }
    *res = (struct kvr_calib_fit_result){sqrt(ss / (double)fdf->n), mx,
                                         (int)gsl_multifit_nlinear_niter(w)};
    return GSL_SUCCESS;
}

/* Where element-wise ops are memory-bound at the start, their residuals do not depend on the
 * element-wise compute efficiency (zero gradient: the fit never moves it). An exact GELU's erf
 * can make them compute-bound on the CUDA cores, so the fit also starts from lower
 * element-wise efficiencies and keeps the best (0: the given start). */
static const double elementwise_starts[] = {0, 0.05, 0.01, 0.003};

enum kvr_status kvr_calib_fit(struct kvr_gpu *g, const struct kvr_calib_point *pts, size_t n,
                              struct kvr_calib_fit_result *res)
{
    if (n < N_PARAMS)
        return kvr_error(KVR_ERR_INPUT, "calibration: %zu measured points for %d parameters", n,
                         N_PARAMS);
    for (size_t i = 0; i < n; i++) {
        if (!(pts[i].time_s > 0))
            return kvr_error(KVR_ERR_INPUT, "calibration: point %zu (ctx %llu) has time %g s", i,
                             (unsigned long long)pts[i].ctx, pts[i].time_s);
        enum kvr_status st = kvr_gpu_check_dtype(g, pts[i].model, NULL);
        if (st) return kvr_error_prefix(st, "calibration: ");
    }
    kvr_gsl_init();
    struct fit_data d = {.g = *g, .pts = pts, .n = n};
    gsl_multifit_nlinear_fdf fdf = {.f = residuals, .n = n, .p = N_PARAMS, .params = &d};
    gsl_multifit_nlinear_parameters fp = gsl_multifit_nlinear_default_parameters();
    gsl_multifit_nlinear_workspace *w =
        gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &fp, n, N_PARAMS);
    gsl_vector *x = gsl_vector_alloc(N_PARAMS);
    if (!w || !x) {
        gsl_multifit_nlinear_free(w), gsl_vector_free(x);
        return kvr_error(KVR_ERR_NOMEM, "calibration: out of memory");
    }
    int rc = GSL_SUCCESS;
    struct kvr_gpu best = *g;
    struct kvr_calib_fit_result best_res = {NAN, NAN, 0};
    for (size_t k = 0; k < sizeof elementwise_starts / sizeof *elementwise_starts; k++) {
        struct kvr_gpu start = *g, out = *g;
        struct kvr_calib_fit_result r;
        if (elementwise_starts[k] > 0)
            start.compute_eff[KVR_CLASS_ELEMENTWISE] = elementwise_starts[k];
        from_gpu(&start, x);
        int rk = fit_from(w, &fdf, x, &out, &r);
        if (rk != GSL_SUCCESS)
            rc = rk;
        else if (isfinite(r.rms_rel) && !kvr_gpu_validate(&out) && !(r.rms_rel >= best_res.rms_rel))
            best = out, best_res = r;
    }
    gsl_multifit_nlinear_free(w), gsl_vector_free(x);
    if (!isfinite(best_res.rms_rel)) {
        KVR_GSL_CHECK(rc);
        return kvr_error(KVR_ERR_INPUT, "calibration: the fit did not converge to a valid GPU: "
                                        "are the measurements from the base profile's GPU?");
    }
    *g = best, *res = best_res;
    return KVR_OK;
}
