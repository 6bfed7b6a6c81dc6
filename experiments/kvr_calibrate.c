/* The calibration engine (kvr calibrate): the measured operation times (timed now on the
 * executor, or read from a CSV), the GSL fit of the simulator's GPU parameters on one set of
 * contexts (sim/kvr_calib.c), the errors on the others, and the calibrated profile. */
#include "kvr_calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvr_cli.h"
#include "kvr_exec.h"
#include "kvr_measure.h"
#include "kvr_file.h"
#include "kvr_out.h"
#include "kvr_readers.h"
#include "kvr_units.h"

enum kvr_status kvr_calibrate_alloc(struct kvr_calibrate_data *c)
{
    *c = (struct kvr_calibrate_data){0};
    c->rows = calloc(KVR_CALIBRATE_MAX_ROWS, sizeof *c->rows);
    return c->rows ? KVR_OK : kvr_error(KVR_ERR_NOMEM, "out of memory");
}

void kvr_calibrate_free(struct kvr_calibrate_data *c)
{
    free(c->rows);
    c->rows = NULL, c->n = 0;
}

static int op_from_name(const char *s)
{
    if (!strcmp(s, "ttft")) return -1;
    if (!strcmp(s, "attention")) return KVR_OP_ATTN_SCORES;
    if (!strcmp(s, "attention_layer")) return KVR_CALIB_ATTN_LAYER;
    for (int op = 0; op < KVR_N_OPS; op++)
        if (!strcmp(s, kvr_op_name((enum kvr_op)op))) return op;
    return -2;
}

const char *kvr_calibrate_op_label(int op)
{
    if (op == KVR_CALIB_ATTN_LAYER) return "attention_layer";
    return op < 0 ? "ttft" : op == KVR_OP_ATTN_SCORES ? "attention" : kvr_op_name((enum kvr_op)op);
}

static enum kvr_status add_row(struct kvr_calibrate_data *c, const char *model, uint64_t ctx,
                               int op, double t)
{
    if (c->n == KVR_CALIBRATE_MAX_ROWS)
        return kvr_error(KVR_ERR_INPUT, "calibration: more than %d rows", KVR_CALIBRATE_MAX_ROWS);
    struct kvr_calibrate_row *r = &c->rows[c->n++];
    snprintf(r->model, sizeof r->model, "%s", model);
    r->ctx = ctx, r->op = op, r->time_s = t;
    return KVR_OK;
}

/* model,ctx,op,time_s[,prefix] with a header line; every bad line named as file:line (strict
 * numbers, lines of any length: kvr_readers.h); what (or NULL) prefixes the open error. */
enum kvr_status kvr_calibrate_read_csv(const char *what, const char *path,
                                       struct kvr_calibrate_data *c)
{
    struct kvr_lines r;
    enum kvr_status st = kvr_lines_open(&r, path, 64u << 20);
    if (st) return what ? kvr_error_prefix(st, "%s: ", what) : st;
    char known[64] = ""; /* the last model name resolved */
    for (char *line; !st && (line = kvr_lines_next(&r));) {
        if (r.line == 2 && !strncmp(line, "# ", 2)) { /* the GPU and driver the times came from */
            char *comma = strstr(line, ", ");
            if (comma) *comma = 0, snprintf(c->driver, sizeof c->driver, "%s", comma + 2);
            snprintf(c->gpu, sizeof c->gpu, "%.127s", line + 2);
        }
        if (!strncmp(line, "# last layer: ", 14)) {
            const char *v = line + 14;
            if (strcmp(v, "pruned") && strcmp(v, "full"))
                st = kvr_error(KVR_ERR_INPUT, "%s:%d: last layer '%s' is not pruned or full", path,
                               r.line, v);
            c->last_layer_known = true, c->full_last_layer = !strcmp(v, "full");
        }
        if (r.line == 1 || line[0] == '#' || line[0] == 0) continue;
        struct kvr_calib_csv_row row;
        st = kvr_calib_csv_parse(line, &row);
        if (!st && op_from_name(row.op) < -1)
            st = kvr_error(KVR_ERR_INPUT, "unknown op '%s'", row.op);
        if (!st && strcmp(row.model, known)) { /* checked here, at its line */
            struct kvr_model m;
            if (!(st = kvr_model_resolve(row.model, &m)))
                snprintf(known, sizeof known, "%s", row.model);
        }
        if (st)
            st = kvr_error_prefix(st, "%s:%d: ", path, r.line);
        else if (!(st = add_row(c, row.model, row.ctx, op_from_name(row.op), row.time_s)))
            c->rows[c->n - 1].prefix = row.prefix;
    }
    kvr_lines_close(&r);
    if (!st && c->n == 0) st = kvr_error(KVR_ERR_INPUT, "%s: no measurements", path);
    if (!st && !c->last_layer_known)
        st = kvr_error(KVR_ERR_INPUT,
                       "%s: no '# last layer: pruned|full' line: say how the executor that took "
                       "the times ran its last layer (pruned on the last row since commit "
                       "b4e1d92, 2026-12-01; full on every row before)",
                       path);
    return st;
}

enum kvr_status kvr_calibrate_write_csv(const char *path, const struct kvr_calibrate_data *c)
{
    struct kvr_out o;
    enum kvr_status st = kvr_out_open(&o, "--save", path);
    if (st) return st;
    fprintf(o.f, "model,ctx,op,time_s,prefix\n# %s, %s\n# last layer: %s\n", c->gpu, c->driver,
            c->full_last_layer ? "full" : "pruned");
    for (size_t i = 0; i < c->n; i++)
        fprintf(o.f, "%s,%llu,%s,%.9g,%llu\n", c->rows[i].model, (unsigned long long)c->rows[i].ctx,
                kvr_calibrate_op_label(c->rows[i].op), c->rows[i].time_s,
                (unsigned long long)c->rows[i].prefix);
    return kvr_out_commit(&o);
}

/* One --attn-shapes item, QUERIES:PREFIX. */
static enum kvr_status parse_shape(const char *item, uint64_t *q, uint64_t *s)
{
    char cs[64], *colon;
    if ((size_t)snprintf(cs, sizeof cs, "%s", item) >= sizeof cs || !(colon = strchr(cs, ':')) ||
        (*colon = 0, kvr_parse_tokens(cs, KVR_MAX_CTX, q)) ||
        kvr_parse_tokens(colon + 1, KVR_MAX_CTX, s) || *q == 0)
        return kvr_error(KVR_ERR_USAGE, "--attn-shapes: '%s' is not QUERIES:PREFIX", item);
    return KVR_OK;
}

enum kvr_status kvr_calibrate_check_timing(const struct kvr_calibrate_timing *t)
{
    char buf[1024];
    const char *parts[32];
    int n = kvr_cli_split_copy(t->models, buf, sizeof buf, parts, 16);
    if (n < 1)
        return kvr_error(KVR_ERR_USAGE, "--models: '%s' is not a list of 1..16 models", t->models);
    enum kvr_status st = kvr_cli_check_unique("--models", parts, n);
    for (int i = 0; i < n && !st; i++) {
        struct kvr_model m;
        if ((st = kvr_model_resolve(parts[i], &m))) return kvr_error_prefix(st, "--models: ");
    }
    if (st || !*t->attn_shapes) return st;
    if ((n = kvr_cli_split_copy(t->attn_shapes, buf, sizeof buf, parts, 32)) < 1)
        return kvr_error(KVR_ERR_USAGE, "--attn-shapes: '%s' is not a list of 1..32 shapes",
                         t->attn_shapes);
    uint64_t q, s;
    for (int i = 0; i < n && !st; i++) st = parse_shape(parts[i], &q, &s);
    return st ? st : kvr_cli_check_unique("--attn-shapes", parts, n);
}

/* The attention kernel alone at each --attn-shapes C:S (queries after a prefix), per model
 * (the lists checked by kvr_calibrate_check_timing). */
static enum kvr_status measure_attention(struct kvr_calibrate_data *c, const char *shapes,
                                         const char *spec, const struct kvr_model *m)
{
    char buf[1024];
    const char *parts[32];
    int n = *shapes ? kvr_cli_split_copy(shapes, buf, sizeof buf, parts, 32) : 0;
    enum kvr_status st = KVR_OK;
    for (int i = 0; i < n && !st; i++) {
        uint64_t q, s;
        if ((st = parse_shape(parts[i], &q, &s))) return st;
        struct kvr_attn_bench b = {.s = (uint32_t)s,
                                   .c = (uint32_t)q,
                                   .n_heads = m->n_heads,
                                   .n_kv = m->n_kv_heads,
                                   .head_dim = m->head_dim,
                                   .warmup = 3,
                                   .reps = 10};
        if (!(st = kvr_exec_bench_attention(&b)) &&
            !(st = add_row(c, spec, q, KVR_CALIB_ATTN_LAYER, b.time_s)))
            c->rows[c->n - 1].prefix = s;
    }
    return st;
}

/* Times every model at every context: TTFT (median of 3) and one profiled run. */
enum kvr_status kvr_calibrate_measure(const struct kvr_calibrate_timing *t, const uint64_t *ctx,
                                      size_t n_ctx, struct kvr_calibrate_data *c)
{
    char buf[1024];
    const char *parts[16];
    int n_models = kvr_cli_split_copy(t->models, buf, sizeof buf, parts, 16);
    uint64_t max_ctx = 0;
    for (size_t i = 0; i < n_ctx; i++) max_ctx = ctx[i] > max_ctx ? ctx[i] : max_ctx;
    enum kvr_status st = KVR_OK;
    for (int k = 0; k < n_models && !st; k++) {
        struct kvr_model m;
        struct kvr_exec *ex = NULL;
        struct kvr_exec_opts o = {.backend =
                                      (enum kvr_backend_kind)kvr_backend_from_name(t->backend),
                                  .max_ctx = (uint32_t)max_ctx,
                                  .seed = 1};
        if ((st = kvr_model_resolve(parts[k], &m)) || (st = kvr_exec_open(&m, &o, &ex))) break;
        kvr_exec_device_name(ex, c->gpu, sizeof c->gpu);
        kvr_exec_driver(ex, c->driver, sizeof c->driver);
        c->last_layer_known = true, c->full_last_layer = false; /* this executor prunes */
        for (size_t i = 0; i < n_ctx && !st; i++) {
            struct kvr_exec_result r;
            double op_s[KVR_N_OPS];
            if ((st = kvr_exec_run_single(ex, (uint32_t)ctx[i], 1, 1, 3, &r)) ||
                (st = kvr_exec_profile_single(ex, (uint32_t)ctx[i], 1, 5, op_s)))
                break;
            /* rows name the model as given (a preset or a file), so --from finds it again */
            st = add_row(c, parts[k], ctx[i], -1, r.ttft_s);
            for (int j = 0; j < kvr_calib_n_ops && !st; j++)
                if (op_s[kvr_calib_ops[j]] > 0)
                    st = add_row(c, parts[k], ctx[i], kvr_calib_ops[j], op_s[kvr_calib_ops[j]]);
            if (!st && t->db) {
                struct kvr_measurement_row x;
                kvr_measure_single(&x, &m, &r, t->backend, 1, 3);
                st = kvr_measure_store(t->db, "kvr calibrate", ex, &x);
            }
            if (!t->quiet)
                fprintf(stderr, "calibrate: %s at %llu tokens: TTFT %.4f s\n", m.name,
                        (unsigned long long)ctx[i], r.ttft_s);
        }
        kvr_exec_close(ex);
        /* the kernel benchmark is the cuda backend's */
        if (!st && t->attn_shapes && *t->attn_shapes && !strcmp(t->backend, "cuda"))
            st = measure_attention(c, t->attn_shapes, parts[k], &m);
    }
    return st;
}

static void err_add(struct kvr_calibrate_errors *e, double pred, double meas)
{
    double r = fabs(pred / meas - 1);
    e->n++, e->sum += r, e->max = r > e->max ? r : e->max;
}

double kvr_calibrate_mape(const struct kvr_calibrate_errors *e)
{
    return e->n ? 100 * e->sum / (double)e->n : NAN;
}

static bool in_list(const uint64_t *v, size_t n, uint64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x) return true;
    return false;
}

/* The simulator's single-device TTFT on the calibrated machine (NAN when it cannot run), the
 * last layer as the executor that took the times ran it. */
static double sim_ttft(const struct kvr_model *m, const struct kvr_machine *h, uint64_t ctx,
                       bool full)
{
    double t = NAN;
    return kvr_measure_predict(m, h, "single", "", 1, 1, ctx, NULL, NULL, full, &t) ? NAN : t;
}

/* The rows' models, resolved once (points keep pointers to them). */
static enum kvr_status models_of(const struct kvr_calibrate_data *c, struct kvr_model *models,
                                 int *n_models, int *which)
{
    const char *specs[16];
    *n_models = 0;
    for (size_t i = 0; i < c->n; i++) {
        int k = 0;
        while (k < *n_models && strcmp(specs[k], c->rows[i].model)) k++;
        if (k == *n_models) {
            if (k == 16) return kvr_error(KVR_ERR_INPUT, "calibration: more than 16 models");
            enum kvr_status st = kvr_model_resolve(c->rows[i].model, &models[k]);
            if (st) return kvr_error_prefix(st, "calibration row %zu: ", i + 1);
            specs[(*n_models)++] = c->rows[i].model;
        }
        which[i] = k;
    }
    return KVR_OK;
}

enum kvr_status kvr_calibrate_fit(const struct kvr_calibrate_data *c, struct kvr_machine *h,
                                  const uint64_t *fit_ctx, size_t n_fit, FILE *points,
                                  struct kvr_calibrate_outcome *o)
{
    static struct kvr_model models[16];
    int n_models, *which = calloc(c->n + 1, sizeof *which);
    struct kvr_calib_point *pts = calloc(c->n + 1, sizeof *pts);
    enum kvr_status st = which && pts ? models_of(c, models, &n_models, which)
                                      : kvr_error(KVR_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; !st && i < c->n; i++)
        if (c->rows[i].op >= 0 && in_list(fit_ctx, n_fit, c->rows[i].ctx))
            pts[n++] =
                (struct kvr_calib_point){&models[which[i]], c->rows[i].ctx,    c->rows[i].op,
                                         c->rows[i].time_s, c->rows[i].prefix, c->full_last_layer};
    o->n_points = n;
    if (!st) st = kvr_calib_fit(&h->gpu, pts, n, &o->fit);
    for (size_t i = 0; !st && i < c->n; i++) {
        const struct kvr_calibrate_row *r = &c->rows[i];
        const struct kvr_model *m = &models[which[i]];
        bool fitted = in_list(fit_ctx, n_fit, r->ctx);
        struct kvr_calib_point pt = {m, r->ctx, r->op, r->time_s, r->prefix, c->full_last_layer};
        double pred = r->op >= 0 ? kvr_calib_predict_point(&pt, &h->gpu)
                                 : sim_ttft(m, h, r->ctx, c->full_last_layer);
        if (r->op >= 0)
            err_add(fitted ? &o->op_fit : &o->op_check, pred, r->time_s);
        else
            err_add(fitted ? &o->ttft_fit : &o->ttft_check, pred, r->time_s);
        if (points)
            fprintf(points,
                    "point %-10s %6llu %6llu %-14s %6s measured %10.4g s predicted %10.4g s "
                    "%+7.2f%%\n",
                    r->model, (unsigned long long)r->ctx, (unsigned long long)r->prefix,
                    r->op >= 0 ? kvr_calibrate_op_label(r->op) : "ttft", fitted ? "fit" : "check",
                    r->time_s, pred, 100 * (pred / r->time_s - 1));
        if (r->op >= 0 && !fitted) {
            err_add(&o->per_op[r->op], pred, r->time_s);
            o->abs_err_s += fabs(pred - r->time_s), o->meas_s += r->time_s;
        }
    }
    free(which), free(pts);
    return st;
}

/* The profile header's record of the fit, written by kvr_calibrate_write_profile and read back
 * by kvr_calibrate_read_record (one place owns the format):
 * "; Measurements: CSV. Fitted on N operation times (contexts L), rms ..." */
static const char rec_tag[] = "; Measurements: ", rec_fitted[] = ". Fitted on ",
                  rec_ctx[] = " (contexts ", rec_timed[] = "timed now";

enum kvr_status kvr_calibrate_read_record(const char *profile, char *csv, size_t csv_cap, char *ctx,
                                          size_t ctx_cap)
{
    csv[0] = ctx[0] = '\0';
    FILE *f = profile ? fopen(profile, "r") : NULL; /* a preset's name opens nothing */
    if (!f) return KVR_OK;
    char *line = NULL;
    size_t cap = 0;
    enum kvr_status st = KVR_OK;
    /* the header's comment lines, before the first section */
    for (int no = 1; getline(&line, &cap, f) > 0 && line[0] == ';'; no++) {
        if (strncmp(line, rec_tag, sizeof rec_tag - 1)) continue;
        const char *from = line + sizeof rec_tag - 1, *end = strstr(from, rec_fitted);
        size_t n = end ? (size_t)(end - from) : 0;
        if (!end || (n == sizeof rec_timed - 1 && !strncmp(from, rec_timed, n))) break;
        const char *c = strstr(end, rec_ctx), *close = c ? strchr(c, ')') : NULL;
        size_t n_ctx = close ? (size_t)(close - c) - (sizeof rec_ctx - 1) : 0;
        if (n >= csv_cap || n_ctx >= ctx_cap) /* refused, not cut short */
            st = kvr_error(KVR_ERR_INPUT,
                           "%s:%d: the calibration record's %s (%zu characters) is longer than "
                           "the %zu this reader takes",
                           profile, no, n >= csv_cap ? "CSV path" : "context list",
                           n >= csv_cap ? n : n_ctx, (n >= csv_cap ? csv_cap : ctx_cap) - 1);
        else {
            snprintf(csv, csv_cap, "%.*s", (int)n, from);
            if (close) snprintf(ctx, ctx_cap, "%.*s", (int)n_ctx, c + sizeof rec_ctx - 1);
        }
        break;
    }
    free(line);
    fclose(f);
    return st;
}

/* The profile: the base's links and the fitted GPU, with where they came from. */
enum kvr_status kvr_calibrate_write_profile(const char *path, const char *from, const char *fit_ctx,
                                            const struct kvr_calibrate_data *c,
                                            const struct kvr_machine *h,
                                            const struct kvr_calibrate_outcome *o)
{
    struct kvr_out out;
    enum kvr_status st = kvr_out_open(&out, "--out", path);
    if (st) return st;
    FILE *f = out.f;
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    fprintf(f, "; Calibrated by `kvr calibrate` on %s: %s, %s.\n", date, c->gpu[0] ? c->gpu : "?",
            c->driver[0] ? c->driver : "?");
    fprintf(f,
            "%s%s%s%zu operation times%s%s), rms %.2f%%, "
            "max %.2f%%;\n; held out (every other measured context): operations MAPE %.2f%% "
            "(max %.2f%%, time-weighted %.2f%%), TTFT MAPE %.2f%% (max %.2f%%).\n",
            rec_tag, from ? from : rec_timed, rec_fitted, o->n_points, rec_ctx, fit_ctx,
            100 * o->fit.rms_rel, 100 * o->fit.max_rel, kvr_calibrate_mape(&o->op_check),
            100 * o->op_check.max, 100 * o->abs_err_s / o->meas_s,
            kvr_calibrate_mape(&o->ttft_check), 100 * o->ttft_check.max);
    kvr_machine_write_ini(f, h);
    /* the profile replaces the old one only if kvr sim loads it: the temp file is read back */
    static struct kvr_machine back;
    if (out.tmp[0] && kvr_out_flush(&out) && (st = kvr_machine_load_ini(out.tmp, &back))) {
        kvr_out_abort(&out);
        return kvr_error_prefix(KVR_ERR_RUNTIME, "--out: the profile would not load back: ");
    }
    return kvr_out_commit(&out);
}
