/* The validation engine behind kvr validate: stored measurements against the simulator's
 * predictions of the same plans, on the links each run emulated. tests/test_engine.c runs it on
 * the committed data. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kvr_store.h"

struct kvr_validate_point {
    const struct kvr_measurement_row *m;
    double predicted_s, err; /* predicted / measured - 1 */
    bool held_out;           /* its (model, ctx) is not the calibration's (kvr_validate_split) */
};

/* The held-out split (kvr_validate_split): which (model, ctx) the profile was calibrated on,
 * and the MAPE of the points on either side. */
struct kvr_validate_calibration {
    bool known;           /* false: no calibration CSV, no split */
    char csv[4200];       /* the operation times the profile was fitted from */
    uint64_t fit_ctx[64]; /* the contexts of the fit; none: every context of the CSV */
    size_t n_fit_ctx;
    size_t n_fitted, n_held_out;           /* points */
    double fitted_mape_pct, held_mape_pct; /* NAN without such points */
};

struct kvr_validate_set {
    struct kvr_measurement_row *rows; /* every row of the database */
    size_t n_rows;
    struct kvr_validate_point *pts; /* the validated ones, in the database's order */
    size_t n;
    double mape_pct, max_err_pct;
    struct kvr_validate_calibration cal;
};

/* Predicts every measurement of p = 1 (multi: of p > 1) in db on the profile `machine` with
 * the links its run emulated. No such measurement is an input error. */
enum kvr_status kvr_validate_load(const char *db, const char *machine, bool multi,
                                  struct kvr_validate_set *v);
void kvr_validate_free(struct kvr_validate_set *v);

/* The held-out split: a point is held out when its (model, ctx) is not among the rows of the
 * operation CSV csv at the contexts fit_ctx ("1k,4k,16k"; NULL: every context of the CSV;
 * "" is refused, an empty list): when the fit saw no time of its model at its context (a model or a
 * context the calibration never ran). A CSV row's model matches a measurement's by the name it
 * resolves to. A fit context without a row in the CSV is an input error. Sets v->cal and each
 * point's held_out. csv_what and ctx_what name where csv and fit_ctx came from in the messages (the
 * option, or the profile's calibration record). */
enum kvr_status kvr_validate_split(struct kvr_validate_set *v, const char *csv,
                                   const char *csv_what, const char *fit_ctx, const char *ctx_what);

/* A point's labels: its links ("full-speed", "bw=10GB/s", ...) and its series (the scheme's
 * name, or the label of a searched scheme's partition source: KVR-E, KVR-S, KVR-P). */
typedef void (*kvr_validate_label_fn)(const struct kvr_measurement_row *m, char *buf, size_t cap);
const char *kvr_validate_links(const struct kvr_measurement_row *m);
void kvr_validate_links_of(const struct kvr_measurement_row *m, char *buf, size_t cap);
void kvr_validate_series_label(const struct kvr_measurement_row *m, char *buf, size_t cap);
/* The series a measurement can have (kvr_validate_series_label's), in the figures' order:
 * the even-split schemes, the searched schemes' sources and names, the one-GPU schemes. */
int kvr_validate_series_order(char order[][32], int cap);
/* Calls fn(ctx, label, points, MAPE %) once per distinct label, in order of appearance. */
void kvr_validate_groups(const struct kvr_validate_point *pts, size_t n,
                         kvr_validate_label_fn label,
                         void (*fn)(void *ctx, const char *name, int count, double mape),
                         void *ctx);

/* The figures' data in dir: validate-1.tsv (one block per model, scheme, method and p), the
 * paper-style panels (validate-panel-K.tsv, validate_panels.list) and the lists of
 * validate, validate_err and validate_ttft (titled `title`). */
enum kvr_status kvr_validate_export(const char *dir, const struct kvr_validate_set *v,
                                    const char *title);
