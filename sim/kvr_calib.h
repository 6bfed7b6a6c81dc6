/* Calibration: fitting a GPU's cost parameters (per op class: compute efficiency, half-tokens
 * and memory efficiency; the launch overhead) to the executor's measured operation times, by
 * relative nonlinear least squares (GSL multifit_nlinear). A point is one operation group of a
 * single-device prefill of ctx tokens, summed over the layers, as `kvr exec --profile`
 * charges it: attention is scores + softmax + PV (one fused kernel), mlp_down includes the
 * residual adds (the GEMM's accumulate), lm_head the final norm. The executor's last layer runs
 * its attention and post on the last row alone (kvr_exec_chunk; sim/kvr_cost.h's
 * kvr_cost_last_row_op), so its groups are predicted that way, unless a point's times were
 * taken before that pruning (full_last_layer). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvr_machine.h"
#include "kvr_model.h"

/* A point's op: where the profile charges it (enum kvr_op: NORM_ATTN, QKV, ..., LM_HEAD), or
 * KVR_CALIB_ATTN_LAYER: the attention kernel alone for one layer, ctx queries after a prefix of
 * `prefix` keys (kvr bench attention), which covers attention over (c, s). */
#define KVR_CALIB_ATTN_LAYER KVR_N_OPS

struct kvr_calib_point {
    const struct kvr_model *model;
    uint64_t ctx;
    int op;
    double time_s;
    uint64_t prefix;      /* KVR_CALIB_ATTN_LAYER only */
    bool full_last_layer; /* timed on an executor that ran the last layer on every row */
};

/* The operations the profile reports (the groups above), in order. */
extern const int kvr_calib_ops[];
extern const int kvr_calib_n_ops;

/* Predicted seconds of one point's group on GPU g (prefix: KVR_CALIB_ATTN_LAYER only). */
double kvr_calib_predict(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t ctx, int op);
/* The same with the last layer on every row (full) or pruned (the executor's, as above). */
double kvr_calib_predict_last(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t ctx,
                              int op, bool full);
/* A point's prediction: its op, prefix and full_last_layer. */
double kvr_calib_predict_point(const struct kvr_calib_point *p, const struct kvr_gpu *g);
double kvr_calib_predict_at(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t prefix,
                            uint64_t ctx, int op);

struct kvr_calib_fit_result {
    double rms_rel, max_rel; /* relative residuals over the points fitted */
    int iterations;
};

/* Fits g's efficiencies, half-tokens and launch overhead to the points, starting from g. */
enum kvr_status kvr_calib_fit(struct kvr_gpu *g, const struct kvr_calib_point *pts, size_t n,
                              struct kvr_calib_fit_result *res);
