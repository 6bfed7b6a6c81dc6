/* The calibration engine behind kvr calibrate: measured operation times, the fit of the
 * simulator's GPU parameters (sim/kvr_calib.h) on some contexts, its errors on the others, and
 * the calibrated profile with its provenance. No option parsing, no printing but the optional
 * per-point lines; tests/test_engine.c runs it on the committed data. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kvr_calib.h"
#include "kvr_machine.h"

#define KVR_CALIBRATE_MAX_ROWS 4096

/* One measured time: an operation group summed over the layers, the attention kernel alone
 * (KVR_CALIB_ATTN_LAYER, after `prefix` keys), or the whole TTFT (op -1). */
struct kvr_calibrate_row {
    char model[64]; /* as given: a preset or a file, so a CSV finds it again */
    uint64_t ctx;
    int op;
    double time_s;
    uint64_t prefix;
};

struct kvr_calibrate_data {
    struct kvr_calibrate_row *rows; /* KVR_CALIBRATE_MAX_ROWS */
    size_t n;
    char gpu[128], driver[64]; /* where the times came from */
    /* how the executor ran the last layer (a CSV's "# last layer: pruned|full" line): on the
     * last row alone (kvr_exec_chunk since commit b4e1d92) or on every row (before) */
    bool last_layer_known, full_last_layer;
};

struct kvr_calibrate_errors {
    size_t n;
    double sum, max; /* of |relative error| */
};

struct kvr_calibrate_outcome {
    struct kvr_calib_fit_result fit;
    struct kvr_calibrate_errors op_fit, op_check, ttft_fit, ttft_check, per_op[KVR_N_OPS + 1];
    double abs_err_s, meas_s; /* held-out operations: sum |predicted - measured|, measured */
    size_t n_points;
};

/* What to time on the executor. */
struct kvr_calibrate_timing {
    const char *backend, *models; /* "cuda" or "ref"; a comma list of presets or files */
    const char *attn_shapes;      /* QUERIES:PREFIX list for the kernel alone ("" for none) */
    const char *db;               /* also store each TTFT as a measurement row, or NULL */
    bool quiet;                   /* no progress lines on stderr */
};

enum kvr_status kvr_calibrate_alloc(struct kvr_calibrate_data *d);
void kvr_calibrate_free(struct kvr_calibrate_data *d);
/* model,ctx,op,time_s[,prefix] with a header line (and "# GPU, driver"), and a comment line
 * "# last layer: pruned" or "# last layer: full" (how the executor that took the times ran its
 * last layer; a file without it is refused: nothing else tells); bad lines as path:line. what
 * names the file's source ("--from") in the message of a file that does not open (NULL: the
 * caller names it). */
enum kvr_status kvr_calibrate_read_csv(const char *what, const char *path,
                                       struct kvr_calibrate_data *d);
enum kvr_status kvr_calibrate_write_csv(const char *path, const struct kvr_calibrate_data *d);
/* Times every model at every context: TTFT (median of 3) and one profiled run. */
/* t's lists checked before anything is timed: every model resolves, every shape is
 * QUERIES:PREFIX, no item empty (KVR_ERR_USAGE naming the option). */
enum kvr_status kvr_calibrate_check_timing(const struct kvr_calibrate_timing *t);
enum kvr_status kvr_calibrate_measure(const struct kvr_calibrate_timing *t, const uint64_t *ctx,
                                      size_t n_ctx, struct kvr_calibrate_data *d);
/* Fits h's GPU to the operation times at the fit_ctx contexts and measures the errors at all;
 * points: also write every point with its prediction there (or NULL). */
enum kvr_status kvr_calibrate_fit(const struct kvr_calibrate_data *d, struct kvr_machine *h,
                                  const uint64_t *fit_ctx, size_t n_fit, FILE *points,
                                  struct kvr_calibrate_outcome *o);
/* The profile: the base's links and the fitted GPU, with where they came from. */
enum kvr_status kvr_calibrate_write_profile(const char *path, const char *from, const char *fit_ctx,
                                            const struct kvr_calibrate_data *d,
                                            const struct kvr_machine *h,
                                            const struct kvr_calibrate_outcome *o);
/* What a profile records of its calibration, the header line kvr_calibrate_write_profile writes
 * ("; Measurements: CSV. Fitted on N operation times (contexts L), ..."): the CSV it was fitted
 * from, as --from was given, into csv and the contexts of the fit (L) into ctx; both "" when the
 * profile records none (a preset's name, a profile written by hand, a fit timed now rather than
 * read from a CSV). A CSV or a list longer than its buffer (cap, NUL included) is an input
 * error naming profile:line, not cut short. */
enum kvr_status kvr_calibrate_read_record(const char *profile, char *csv, size_t csv_cap, char *ctx,
                                          size_t ctx_cap);
double kvr_calibrate_mape(const struct kvr_calibrate_errors *e); /* percent; NAN when empty */
const char *kvr_calibrate_op_label(int op);
