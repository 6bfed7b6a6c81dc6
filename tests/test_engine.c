/* The engine library under the kvr front-ends, without the shell: a sweep file's expansion
 * (the product of its axes, single at p = 1, seeds only with noise, sorted keys) and its resume
 * after an interruption (only the open points run, the done ones keep their results); the
 * calibration fit on the committed H100 operation times (it reproduces the committed profile
 * and its documented errors); the validation of the committed H100 and 4xH100 measurements
 * (16 points, MAPE 2.45%; 160 points, MAPE 5.30%: what kvr validate prints). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvr_calibrate.h"
#include "kvr_config.h"
#include "kvr_sweep.h"
#include "kvr_validate.h"
#include "tap.h"

static char dir[] = "/tmp/kvr-test-engine-XXXXXX";

static const char sweep_ini[] =
    "[sweep]\nfigure = t\n[axes]\n"
    "models = llama-7b, falcon-7b\nmachines = a100-nvlink\n"
    "gpus = 2, 4\nctx = 1k-3k+1k\nschemes = single, tsp, kvr-even, kvr-s\n";

static enum kvr_status load_sweep(struct kvr_sweep_spec *sp, char *path, size_t cap)
{
    snprintf(path, cap, "%s/t.ini", dir);
    FILE *f = fopen(path, "w");
    if (!f) return KVR_ERR_IO;
    fputs(sweep_ini, f);
    fclose(f);
    return kvr_sweep_load(path, sp);
}

static void test_expand(void)
{
    struct kvr_sweep_spec sp;
    struct kvr_sweep_item *it = NULL;
    size_t n = 0, singles = 0, sorted = 1;
    char path[256];
    bool loaded = load_sweep(&sp, path, sizeof path) == KVR_OK;
    ok(loaded, "sweep: the file loads");
    ok(loaded && kvr_sweep_expand(&sp, &it, &n) == KVR_OK, "sweep: expands");
    /* 2 models x 2 p x 3 ctx x 3 schemes, and single once per model and ctx: at p = 1 for
     * both gpus (seeds and trials without noise are refused: tests/test_reliability.sh) */
    is_u64(n, 2 * 2 * 3 * 3 + 2 * 3, "sweep: the product of the axes, p collapsed");
    for (size_t i = 0; i < n; i++) {
        singles += !strcmp(it[i].pt.scheme, "single") && it[i].pt.p == 1;
        sorted &= i == 0 || strcmp(it[i - 1].pt.point_key, it[i].pt.point_key) <= 0;
    }
    is_u64(singles, 2 * 3, "sweep: single runs at p = 1, once");
    ok(sorted, "sweep: items sorted by point key");
    int ranks_ok = 1;
    for (size_t i = 0; i < n; i++) {
        struct kvr_sweep_series s;
        ranks_ok &= kvr_sweep_series_of(it[i].pt.series_rank, &s);
    }
    ok(ranks_ok, "sweep: every point's series is in the scheme table");
    free(it);
    kvr_sweep_free(&sp);
}

static void test_resume(void)
{
    struct kvr_sweep_spec sp;
    struct kvr_sweep_item *it = NULL;
    size_t n = 0;
    char path[256], db[256];
    snprintf(db, sizeof db, "%s/s.db", dir);
    if (load_sweep(&sp, path, sizeof path) || kvr_sweep_expand(&sp, &it, &n)) {
        ok(0, "sweep resume: set-up");
        return;
    }
    uint64_t budget = 10;
    struct kvr_sweep_tally t1 = {0}, t2 = {0}, t3 = {0};
    ok(kvr_sweep_run(&sp, db, 1, it, n, "test", &budget, &t1) == KVR_OK && t1.run == 10 &&
           t1.done_before == 0,
       "sweep resume: an interrupted run does 10 points");
    double first = it[0].pt.ttft_s;
    budget = UINT64_MAX;
    ok(kvr_sweep_run(&sp, db, 1, it, n, "test", &budget, &t2) == KVR_OK && t2.run == n - 10 &&
           t2.done_before == 10 && t2.failed == 0,
       "sweep resume: the next run does only the other %zu", n - 10);
    budget = UINT64_MAX;
    ok(kvr_sweep_run(&sp, db, 2, it, n, "test", &budget, &t3) == KVR_OK && t3.run == 0 &&
           t3.done_before == n,
       "sweep resume: a finished sweep runs nothing, on threads too");
    struct kvr_store *s = NULL;
    struct kvr_sweep_point *open = NULL;
    size_t n_open = 1;
    ok(kvr_store_open(db, KVR_STORE_READ, &s) == KVR_OK &&
           kvr_store_list_open_points(s, sp.name, &open, &n_open) == KVR_OK && n_open == 0,
       "sweep resume: no open point is left in the store");
    ok(first > 0, "sweep resume: the first point has its TTFT");
    free(open);
    kvr_store_close(s);
    free(it);
    kvr_sweep_free(&sp);
}

static void test_calibrate(void)
{
    struct kvr_calibrate_data d;
    struct kvr_calibrate_outcome o = {0};
    static struct kvr_machine h, committed;
    uint64_t fit_ctx[] = {1024, 4096, 16384};
    enum kvr_status st = kvr_calibrate_alloc(&d);
    if (!st) st = kvr_calibrate_read_csv(NULL, KVR_SOURCE_DATADIR "/calibration/h100-ops.csv", &d);
    if (!st) st = kvr_machine_resolve("h100-nvlink", &h);
    h.n_gpus = 1;
    if (!st) st = kvr_calibrate_fit(&d, &h, fit_ctx, 3, NULL, &o);
    ok(!st, "calibrate: fits the committed H100 operation times (%s)",
       st ? kvr_error_message() : "");
    ok(d.n > 100 && strstr(d.gpu, "H100"), "calibrate: %zu rows from the %s", d.n, d.gpu);
    /* sim/README.md: held-out TTFT MAPE 2.0% (max 3.6%), operations 4.3% (time-weighted 4.4%) */
    is_dbl(kvr_calibrate_mape(&o.ttft_check), 2.0, 0.025, "calibrate: held-out TTFT MAPE 2.0%%");
    is_dbl(100 * o.ttft_check.max, 3.6, 0.02, "calibrate: held-out TTFT max error 3.6%%");
    is_dbl(kvr_calibrate_mape(&o.op_check), 4.3, 0.012, "calibrate: held-out operations 4.3%%");
    is_dbl(100 * o.abs_err_s / o.meas_s, 4.4, 0.012, "calibrate: time-weighted 4.4%%");
    /* the profile it writes reads back as the committed one */
    char path[256];
    snprintf(path, sizeof path, "%s/cal.ini", dir);
    snprintf(h.name, sizeof h.name, "h100-calibrated");
    st = kvr_calibrate_write_profile(path, "test", "1k,4k,16k", &d, &h, &o);
    static struct kvr_machine back;
    ok(!st && !kvr_machine_load_ini(path, &back) &&
           !kvr_machine_load_ini(KVR_SOURCE_DATADIR "/machines/h100-calibrated.ini", &committed),
       "calibrate: the profile written reads back");
    double worst = 0;
    for (int k = 0; k < KVR_N_CLASSES; k++) {
        worst = fmax(worst, fabs(back.gpu.compute_eff[k] / committed.gpu.compute_eff[k] - 1));
        worst = fmax(worst, fabs(back.gpu.half_tokens[k] / committed.gpu.half_tokens[k] - 1));
    }
    worst = fmax(worst, fabs(back.gpu.launch_s / committed.gpu.launch_s - 1));
    worst = fmax(worst, fabs(back.gpu.attn_keys_exp / committed.gpu.attn_keys_exp - 1));
    ok(worst < 1e-5, "calibrate: the fit reproduces data/machines/h100-calibrated.ini (%.2g)",
       worst);
    kvr_calibrate_free(&d);
}

static void test_validate(void)
{
    struct kvr_validate_set v;
    enum kvr_status st =
        kvr_validate_load(KVR_SOURCE_DATADIR "/measurements/h100.sqlite",
                          KVR_SOURCE_DATADIR "/machines/h100-calibrated.ini", false, &v);
    ok(!st && v.n == 16, "validate: 16 single-GPU points");
    /* what kvr validate prints: MAPE 2.45%, max error 12.31% */
    is_dbl(v.mape_pct, 2.45, 0.002, "validate: MAPE 2.45%%");
    is_dbl(v.max_err_pct, 12.31, 0.0005, "validate: max error 12.31%%");
    kvr_validate_free(&v);
    st = kvr_validate_load(KVR_SOURCE_DATADIR "/measurements/h100x4-multi.sqlite",
                           KVR_SOURCE_DATADIR "/machines/h100x4-nccl.ini", true, &v);
    ok(!st && v.n == 160, "validate --multi-gpu: 160 points");
    is_dbl(v.mape_pct, 5.30, 0.001, "validate --multi-gpu: MAPE 5.30%%");
    is_dbl(v.max_err_pct, 21.74, 0.0003, "validate --multi-gpu: max error 21.74%%");
    char label[64];
    int kvrs = 0;
    for (size_t i = 0; i < v.n; i++) {
        kvr_validate_series_label(v.pts[i].m, label, sizeof label);
        kvrs += !strcmp(label, "KVR-S");
    }
    ok(kvrs > 0, "validate: KVR-S points labelled from the scheme table (%d)", kvrs);
    /* the held-out split: the profile records h100-ops.csv fitted at 1k, 4k, 16k, which holds
     * both models at every context, so the points at 8k, 24k and 32k are held out: 32 + 20 +
     * 44 = 96 of the database's multi-GPU rows (20 at 4k, 44 at 16k calibrated) */
    char csv[4200], fit[256];
    const char *rec = KVR_SOURCE_DATADIR "/machines/h100x4-nccl.ini";
    st = kvr_calibrate_read_record(rec, csv, sizeof csv, fit, sizeof fit);
    ok(!st && !strcmp(csv, "data/calibration/h100-ops.csv") && !strcmp(fit, "1k,4k,16k"),
       "validate: the profile's recorded calibration (%s at %s)", csv, fit);
    st = kvr_validate_split(&v, KVR_SOURCE_DATADIR "/calibration/h100-ops.csv", "csv", fit, "fit");
    size_t held = 0, agree = 0;
    double sum = 0;
    for (size_t i = 0; i < v.n; i++) {
        uint64_t c = v.pts[i].m->ctx_tokens;
        bool want = c == 8192 || c == 24576 || c == 32768;
        held += want, agree += v.pts[i].held_out == want, sum += want ? fabs(v.pts[i].err) : 0;
    }
    ok(!st && v.cal.known && held == 96 && v.cal.n_held_out == 96 && v.cal.n_fitted == 64 &&
           agree == v.n,
       "validate: 96 points held out (8k, 24k, 32k), 64 calibrated (%zu, %zu)", v.cal.n_held_out,
       v.cal.n_fitted);
    is_dbl(v.cal.held_mape_pct, 100 * sum / 96, 1e-12, "validate: the held-out MAPE by hand");
    is_dbl((96 * v.cal.held_mape_pct + 64 * v.cal.fitted_mape_pct) / 160, v.mape_pct, 1e-12,
           "validate: the two sides' MAPE weigh up to the overall one");
    /* a record longer than the buffers is refused, not cut short: "1k,4k,16k" takes 10 bytes,
     * "data/calibration/h100-ops.csv" 30 */
    char small[30];
    ok(!kvr_calibrate_read_record(rec, csv, sizeof csv, small, 10) && !strcmp(small, "1k,4k,16k"),
       "calibrate: a record's contexts fill a buffer of their length exactly");
    st = kvr_calibrate_read_record(rec, csv, sizeof csv, small, 9);
    ok(st == KVR_ERR_INPUT && strstr(kvr_error_message(), "context list (9 characters)") &&
           !small[0],
       "calibrate: a record's contexts longer than the buffer refused (%s)", kvr_error_message());
    ok(!kvr_calibrate_read_record(rec, small, 30, fit, sizeof fit) &&
           !strcmp(small, "data/calibration/h100-ops.csv"),
       "calibrate: a record's CSV path fills a buffer of its length exactly");
    st = kvr_calibrate_read_record(rec, small, 29, fit, sizeof fit);
    ok(st == KVR_ERR_INPUT && strstr(kvr_error_message(), "CSV path (29 characters)"),
       "calibrate: a record's CSV path longer than the buffer refused (%s)", kvr_error_message());
    /* a CSV that does not open: the message names its source once, not the reader's --from */
    st = kvr_validate_split(&v, KVR_SOURCE_DATADIR "/calibration/no-such.csv", "--calibration",
                            NULL, NULL);
    ok(st == KVR_ERR_IO && !strncmp(kvr_error_message(), "--calibration: ", 15) &&
           !strstr(kvr_error_message(), "--from") && !v.cal.known,
       "validate: a missing calibration CSV named by its source (%s)", kvr_error_message());
    st = kvr_calibrate_read_record("h100-nvlink", csv, sizeof csv, fit, sizeof fit);
    ok(!st && !csv[0] && !fit[0], "validate: a preset records no calibration");
    kvr_validate_free(&v);
    st = kvr_validate_load(KVR_SOURCE_DATADIR "/measurements/h100.sqlite",
                           KVR_SOURCE_DATADIR "/machines/h100-calibrated.ini", true, &v);
    ok(st == KVR_ERR_INPUT, "validate: no multi-GPU rows in the H100 set is an input error");
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    test_expand();
    test_resume();
    test_calibrate();
    test_validate();
    tap_rmdir(dir);
    return tap_done();
}
