/* kvr calibrate: measure the executor's operations (or read a CSV of them), fit the
 * simulator's GPU cost parameters with GSL least squares on one set of contexts, report the
 * errors on the others, and write a machine profile with its provenance. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvr_calib.h"
#include "kvr_cli.h"
#include "kvr_config.h"
#include "kvr_exec.h"
#include "kvr_json.h"
#include "kvr_measure.h"
#include "kvr_sim.h"
#include "kvr_units.h"

static const char help[] =
    "usage: kvr calibrate [--backend cuda] [--out data/machines/NAME.ini] [options]\n"
    "\n"
    "Times every operation of single-device prefills (kvr exec --profile) for each model and\n"
    "context, fits the simulator's GPU parameters (per op class: efficiency, half-tokens and\n"
    "memory efficiency; the launch overhead) on the --fit-ctx contexts by relative least\n"
    "squares (GSL), and reports the operation-level and TTFT errors on the fitted and the\n"
    "held-out (--check-ctx) contexts.\n"
    "\n"
    "  -b, --backend B     cuda (default) or ref\n"
    "      --models L      models to time                  (default llama-7b,falcon-7b)\n"
    "      --fit-ctx L     contexts the fit sees           (default 1k,4k,16k)\n"
    "      --check-ctx L   held-out contexts               (default 2k,8k,32k)\n"
    "      --base NAME     profile whose GPU and links start the fit (default h100-nvlink)\n"
    "      --from CSV      fit on these measurements instead of timing (model,ctx,op,time_s)\n"
    "      --save CSV      write the measurements (what --from reads)\n"
    "      --db FILE       also store each TTFT as a measurement row (for kvr validate)\n"
    "  -o, --out FILE      write the calibrated profile (INI, with provenance)\n"
    "      --name NAME     the profile's name            (default: the base's + \"-calibrated\")\n"
    "      --attn-shapes L also time the attention kernel alone at QUERIES:PREFIX shapes\n"
    "                      (default 1k:0,1k:8k,2k:4k,4k:12k,8k:8k; \"\" for none)\n"
    "      --link-lat T, --link-bw RATE   the links' alpha and beta, as `mpirun -np 2 kvr bench\n"
    "                      comm` fits them (default: the base's intra-node links)\n"
    "      --overlap-bw RATE  the most an asynchronous transfer gets beside compute, as kvr\n"
    "                      validate --timeline measures it (default: no cap)\n"
    "      --points        also print every measured point with its prediction and error\n"
    "  -j, --json          print JSON\n";

#define MAX_ROWS 4096

struct row {
    char model[64];
    uint64_t ctx;
    int op; /* enum kvr_op, KVR_CALIB_ATTN_LAYER, or -1 for the TTFT */
    double time_s;
    uint64_t prefix; /* KVR_CALIB_ATTN_LAYER: keys before the queries */
};

struct calib {
    const char *backend, *models, *fit_ctx, *check_ctx, *base, *from, *save, *db, *out, *name;
    const char *link_lat, *link_bw, *overlap_bw, *attn_shapes;
    bool json, help, points;
    struct row *rows;
    size_t n;
    char gpu[128], driver[64];
};

static int op_from_name(const char *s)
{
    if (!strcmp(s, "ttft")) return -1;
    if (!strcmp(s, "attention")) return KVR_OP_ATTN_SCORES;
    if (!strcmp(s, "attention_layer")) return KVR_CALIB_ATTN_LAYER;
    for (int op = 0; op < KVR_N_OPS; op++)
        if (!strcmp(s, kvr_op_name((enum kvr_op)op))) return op;
    return -2;
}

static const char *op_label(int op)
{
    if (op == KVR_CALIB_ATTN_LAYER) return "attention_layer";
    return op < 0 ? "ttft" : op == KVR_OP_ATTN_SCORES ? "attention" : kvr_op_name((enum kvr_op)op);
}

static enum kvr_status add_row(struct calib *c, const char *model, uint64_t ctx, int op, double t)
{
    if (c->n == MAX_ROWS)
        return kvr_error(KVR_ERR_INPUT, "calibration: more than %d rows", MAX_ROWS);
    struct row *r = &c->rows[c->n++];
    snprintf(r->model, sizeof r->model, "%s", model);
    r->ctx = ctx, r->op = op, r->time_s = t;
    return KVR_OK;
}

/* model,ctx,op,time_s with a header line; every bad line named as file:line. */
static enum kvr_status read_csv(struct calib *c)
{
    FILE *f = fopen(c->from, "r");
    if (!f) return kvr_error(KVR_ERR_IO, "%s: cannot open", c->from);
    char line[512], model[64], op[64];
    enum kvr_status st = KVR_OK;
    for (int ln = 1; !st && fgets(line, sizeof line, f); ln++) {
        unsigned long long ctx;
        double t;
        if (ln == 2 && !strncmp(line, "# ", 2)) { /* the GPU and driver the times came from */
            line[strcspn(line, "\n")] = 0;
            char *comma = strstr(line, ", ");
            if (comma) *comma = 0, snprintf(c->driver, sizeof c->driver, "%s", comma + 2);
            snprintf(c->gpu, sizeof c->gpu, "%.127s", line + 2);
        }
        if (ln == 1 || line[0] == '#' || line[0] == '\n') continue;
        unsigned long long prefix = 0;
        int got = sscanf(line, "%63[^,],%llu,%63[^,],%lf,%llu", model, &ctx, op, &t, &prefix);
        if (got < 4 || op_from_name(op) < -1 || !(t > 0) || ctx == 0)
            st = kvr_error(KVR_ERR_PARSE,
                           "%s:%d: expected model,ctx,op,time_s with a known op and a "
                           "positive time, got '%.*s'",
                           c->from, ln, (int)strcspn(line, "\n"), line);
        else
            st = add_row(c, model, ctx, op_from_name(op), t), c->rows[c->n - 1].prefix = prefix;
    }
    fclose(f);
    if (!st && c->n == 0) st = kvr_error(KVR_ERR_INPUT, "%s: no measurements", c->from);
    return st;
}

static enum kvr_status write_csv(const struct calib *c)
{
    FILE *f = fopen(c->save, "w");
    if (!f) return kvr_error(KVR_ERR_IO, "--save: cannot write %s", c->save);
    fprintf(f, "model,ctx,op,time_s,prefix\n# %s, %s\n", c->gpu, c->driver);
    for (size_t i = 0; i < c->n; i++)
        fprintf(f, "%s,%llu,%s,%.9g,%llu\n", c->rows[i].model, (unsigned long long)c->rows[i].ctx,
                op_label(c->rows[i].op), c->rows[i].time_s, (unsigned long long)c->rows[i].prefix);
    return fclose(f) ? kvr_error(KVR_ERR_IO, "--save: write failed") : KVR_OK;
}

/* The attention kernel alone at each --attn-shapes C:S (queries after a prefix), per model. */
static enum kvr_status measure_attention(struct calib *c, const char *spec,
                                         const struct kvr_model *m)
{
    char buf[512];
    const char *parts[32];
    snprintf(buf, sizeof buf, "%s", c->attn_shapes);
    int n = kvr_cli_split(buf, parts, 32);
    enum kvr_status st = KVR_OK;
    for (int i = 0; i < n && !st; i++) {
        char cs[64], *colon;
        uint64_t q, s;
        snprintf(cs, sizeof cs, "%s", parts[i]);
        if (!(colon = strchr(cs, ':')) || (*colon = 0, kvr_parse_tokens(cs, KVR_MAX_CTX, &q)) ||
            kvr_parse_tokens(colon + 1, KVR_MAX_CTX, &s) || q == 0)
            return kvr_error(KVR_ERR_USAGE, "--attn-shapes: '%s' is not QUERIES:PREFIX", parts[i]);
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
static enum kvr_status measure(struct calib *c, const uint64_t *ctx, size_t n_ctx)
{
    char buf[1024];
    const char *parts[16];
    snprintf(buf, sizeof buf, "%s", c->models);
    int n_models = kvr_cli_split(buf, parts, 16);
    uint64_t max_ctx = 0;
    for (size_t i = 0; i < n_ctx; i++) max_ctx = ctx[i] > max_ctx ? ctx[i] : max_ctx;
    enum kvr_status st = KVR_OK;
    for (int k = 0; k < n_models && !st; k++) {
        struct kvr_model m;
        struct kvr_exec *ex = NULL;
        struct kvr_exec_opts o = {.backend =
                                      (enum kvr_backend_kind)kvr_backend_from_name(c->backend),
                                  .max_ctx = (uint32_t)max_ctx,
                                  .seed = 1};
        if ((st = kvr_model_resolve(parts[k], &m)) || (st = kvr_exec_open(&m, &o, &ex))) break;
        kvr_exec_device_name(ex, c->gpu, sizeof c->gpu);
        kvr_exec_driver(ex, c->driver, sizeof c->driver);
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
            if (!st && c->db) {
                struct kvr_measurement_row x;
                kvr_measure_single(&x, &m, &r, c->backend, 1, 3);
                st = kvr_measure_store(c->db, "kvr calibrate", ex, &x);
            }
            if (!c->json)
                fprintf(stderr, "calibrate: %s at %llu tokens: TTFT %.4f s\n", m.name,
                        (unsigned long long)ctx[i], r.ttft_s);
        }
        kvr_exec_close(ex);
        /* the kernel benchmark is the cuda backend's */
        if (!st && c->attn_shapes && *c->attn_shapes && !strcmp(c->backend, "cuda"))
            st = measure_attention(c, parts[k], &m);
    }
    return st;
}

struct errors {
    size_t n;
    double sum, max; /* of |relative error| */
};

static void err_add(struct errors *e, double pred, double meas)
{
    double r = fabs(pred / meas - 1);
    e->n++, e->sum += r, e->max = r > e->max ? r : e->max;
}

static double mape(const struct errors *e)
{
    return e->n ? 100 * e->sum / (double)e->n : NAN;
}

static bool in_list(const uint64_t *v, size_t n, uint64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x) return true;
    return false;
}

/* The simulator's single-device TTFT on the calibrated machine (NAN when it cannot run). */
static double sim_ttft(const struct kvr_model *m, const struct kvr_machine *h, uint64_t ctx)
{
    double t = NAN;
    return kvr_measure_predict(m, h, "single", 1, ctx, NULL, NULL, &t) ? NAN : t;
}

struct outcome {
    struct kvr_calib_fit_result fit;
    struct errors op_fit, op_check, ttft_fit, ttft_check, per_op[KVR_N_OPS + 1];
    double abs_err_s, meas_s; /* held-out operations: sum |predicted - measured|, measured */
    size_t n_points;
};

/* The rows' models, resolved once (points keep pointers to them). */
static enum kvr_status models_of(const struct calib *c, struct kvr_model *models, int *n_models,
                                 int *which)
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

static enum kvr_status fit(const struct calib *c, struct kvr_machine *h, const uint64_t *fit_ctx,
                           size_t n_fit, struct outcome *o)
{
    static struct kvr_model models[16];
    int n_models, *which = calloc(c->n + 1, sizeof *which);
    struct kvr_calib_point *pts = calloc(c->n + 1, sizeof *pts);
    enum kvr_status st = which && pts ? models_of(c, models, &n_models, which)
                                      : kvr_error(KVR_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; !st && i < c->n; i++)
        if (c->rows[i].op >= 0 && in_list(fit_ctx, n_fit, c->rows[i].ctx))
            pts[n++] = (struct kvr_calib_point){&models[which[i]], c->rows[i].ctx, c->rows[i].op,
                                                c->rows[i].time_s, c->rows[i].prefix};
    o->n_points = n;
    if (!st) st = kvr_calib_fit(&h->gpu, pts, n, &o->fit);
    for (size_t i = 0; !st && i < c->n; i++) {
        const struct row *r = &c->rows[i];
        const struct kvr_model *m = &models[which[i]];
        bool fitted = in_list(fit_ctx, n_fit, r->ctx);
        double pred = r->op >= 0 ? kvr_calib_predict_at(m, &h->gpu, r->prefix, r->ctx, r->op)
                                 : sim_ttft(m, h, r->ctx);
        if (r->op >= 0)
            err_add(fitted ? &o->op_fit : &o->op_check, pred, r->time_s);
        else
            err_add(fitted ? &o->ttft_fit : &o->ttft_check, pred, r->time_s);
        if (c->points && !c->json)
            printf("point %-10s %6llu %6llu %-14s %6s measured %10.4g s predicted %10.4g s "
                   "%+7.2f%%\n",
                   r->model, (unsigned long long)r->ctx, (unsigned long long)r->prefix,
                   r->op >= 0 ? op_label(r->op) : "ttft", fitted ? "fit" : "check", r->time_s, pred,
                   100 * (pred / r->time_s - 1));
        if (r->op >= 0 && !fitted) {
            err_add(&o->per_op[r->op], pred, r->time_s);
            o->abs_err_s += fabs(pred - r->time_s), o->meas_s += r->time_s;
        }
    }
    free(which), free(pts);
    return st;
}

/* The profile: the base's links and the fitted GPU, with where they came from. */
static enum kvr_status write_ini(const struct calib *c, const struct kvr_machine *h,
                                 const struct outcome *o)
{
    FILE *f = fopen(c->out, "w");
    if (!f) return kvr_error(KVR_ERR_IO, "--out: cannot write %s", c->out);
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    fprintf(f, "; Calibrated by `kvr calibrate` on %s: %s, %s.\n", date, c->gpu[0] ? c->gpu : "?",
            c->driver[0] ? c->driver : "?");
    fprintf(f,
            "; Measurements: %s. Fitted on %zu operation times (contexts %s), rms %.2f%%, "
            "max %.2f%%;\n; held out (every other measured context): operations MAPE %.2f%% "
            "(max %.2f%%, time-weighted %.2f%%), TTFT MAPE %.2f%% (max %.2f%%).\n",
            c->from ? c->from : "timed now", o->n_points, c->fit_ctx, 100 * o->fit.rms_rel,
            100 * o->fit.max_rel, mape(&o->op_check), 100 * o->op_check.max,
            100 * o->abs_err_s / o->meas_s, mape(&o->ttft_check), 100 * o->ttft_check.max);
    fprintf(f,
            "[machine]\nname = %s\n\n[gpu]\nname = %s\npeak = %.6gTFLOPS\nmem_bw = %.6gTB/s\n"
            "mem = %.6gGB\nlaunch = %.6gus\n",
            h->name, h->gpu.name, h->gpu.peak_flops / 1e12, h->gpu.mem_Bps / 1e12,
            h->gpu.mem_bytes / 1e9, h->gpu.launch_s * 1e6);
    for (int k = 0; k < KVR_N_CLASSES; k++)
        fprintf(f, "eff.%s = %.9f\nhalf_tokens.%s = %.6f\nmem_eff.%s = %.9f\n", kvr_class_name(k),
                h->gpu.compute_eff[k], kvr_class_name(k), h->gpu.half_tokens[k], kvr_class_name(k),
                h->gpu.mem_eff[k]);
    for (int op = 0; op < KVR_N_OPS; op++)
        if (h->gpu.op_scale[op] > 0)
            fprintf(f, "op_scale.%s = %.6f\n", kvr_op_name((enum kvr_op)op), h->gpu.op_scale[op]);
    fprintf(f,
            "attn_hd_exp = %.6f\nattn_keys_exp = %.6f\n\n[topology]\nnodes = %d\ngpus_per_node = "
            "%d\nintra_bw = "
            "%.6gGB/s\nintra_lat = "
            "%.6gus\ninter_bw = %.6gGB/s\ninter_lat = %.6gus\n",
            h->gpu.attn_hd_exp, h->gpu.attn_keys_exp, h->n_nodes, h->gpus_per_node,
            h->intra_Bps / 1e9, h->intra_lat_s * 1e6, h->inter_Bps / 1e9, h->inter_lat_s * 1e6);
    if (h->overlap_Bps > 0) fprintf(f, "overlap_bw = %.6gGB/s\n", h->overlap_Bps / 1e9);
    return fclose(f) ? kvr_error(KVR_ERR_IO, "--out: write failed") : KVR_OK;
}

static void report(const struct calib *c, const struct kvr_machine *h, const struct outcome *o)
{
    if (!c->json) {
        printf("fit: %zu operation times at %s, %d iterations, rms %.2f%%, max %.2f%%\n",
               o->n_points, c->fit_ctx, o->fit.iterations, 100 * o->fit.rms_rel,
               100 * o->fit.max_rel);
        printf("fitted contexts   operations MAPE %6.2f%% (max %6.2f%%)   TTFT MAPE %6.2f%% (max "
               "%6.2f%%)\n",
               mape(&o->op_fit), 100 * o->op_fit.max, mape(&o->ttft_fit), 100 * o->ttft_fit.max);
        printf("held-out contexts operations MAPE %6.2f%% (max %6.2f%%)   TTFT MAPE %6.2f%% (max "
               "%6.2f%%)\n",
               mape(&o->op_check), 100 * o->op_check.max, mape(&o->ttft_check),
               100 * o->ttft_check.max);
        for (int k = 0; k < KVR_N_CLASSES; k++)
            printf("  %-12s eff %.3f  half_tokens %8.1f  mem_eff %.3f\n", kvr_class_name(k),
                   h->gpu.compute_eff[k], h->gpu.half_tokens[k], h->gpu.mem_eff[k]);
        printf("  launch %.2f us; attention efficiency x (head_dim/128)^%.3f\n",
               h->gpu.launch_s * 1e6, h->gpu.attn_hd_exp);
        printf("  attention's rows: queries^%.3f x (mean keys per query)^%.3f\n",
               1 - h->gpu.attn_keys_exp, h->gpu.attn_keys_exp);
        printf("held-out error per operation (MAPE, max); time-weighted over all: %.2f%%\n",
               100 * o->abs_err_s / o->meas_s);
        for (int op = 0; op <= KVR_N_OPS; op++)
            if (o->per_op[op].n)
                printf("  %-12s %6.2f%% %6.2f%%\n", op_label(op), mape(&o->per_op[op]),
                       100 * o->per_op[op].max);
        return;
    }
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
    kvr_json_kv_u64(&j, "fit_points", o->n_points);
    kvr_json_kv_dbl(&j, "fit_rms_pct", 100 * o->fit.rms_rel);
    kvr_json_kv_dbl(&j, "fit_op_mape_pct", mape(&o->op_fit));
    kvr_json_kv_dbl(&j, "fit_ttft_mape_pct", mape(&o->ttft_fit));
    kvr_json_kv_dbl(&j, "check_op_mape_pct", mape(&o->op_check));
    kvr_json_kv_dbl(&j, "check_op_max_err_pct", 100 * o->op_check.max);
    kvr_json_kv_dbl(&j, "check_op_time_weighted_err_pct", 100 * o->abs_err_s / o->meas_s);
    kvr_json_kv_dbl(&j, "check_ttft_mape_pct", mape(&o->ttft_check));
    kvr_json_kv_dbl(&j, "check_ttft_max_err_pct", 100 * o->ttft_check.max);
    kvr_json_kv_dbl(&j, "launch_s", h->gpu.launch_s);
    for (int k = 0; k < KVR_N_CLASSES; k++) {
        char key[64];
        snprintf(key, sizeof key, "eff_%s", kvr_class_name(k));
        kvr_json_kv_dbl(&j, key, h->gpu.compute_eff[k]);
    }
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
}

static enum kvr_status parse(int argc, char **argv, struct calib *c)
{
    enum {
        O_MODELS = 300,
        O_FIT,
        O_CHECK,
        O_BASE,
        O_FROM,
        O_SAVE,
        O_DB,
        O_NAME,
        O_LAT,
        O_BW,
        O_OVERLAP,
        O_ATTN
    };
    static const struct option opts[] = {{"backend", required_argument, 0, 'b'},
                                         {"models", required_argument, 0, O_MODELS},
                                         {"fit-ctx", required_argument, 0, O_FIT},
                                         {"check-ctx", required_argument, 0, O_CHECK},
                                         {"base", required_argument, 0, O_BASE},
                                         {"from", required_argument, 0, O_FROM},
                                         {"save", required_argument, 0, O_SAVE},
                                         {"db", required_argument, 0, O_DB},
                                         {"out", required_argument, 0, 'o'},
                                         {"name", required_argument, 0, O_NAME},
                                         {"link-lat", required_argument, 0, O_LAT},
                                         {"link-bw", required_argument, 0, O_BW},
                                         {"overlap-bw", required_argument, 0, O_OVERLAP},
                                         {"attn-shapes", required_argument, 0, O_ATTN},
                                         {"json", no_argument, 0, 'j'},
                                         {"points", no_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *c = (struct calib){.backend = "cuda",
                        .models = "llama-7b,falcon-7b",
                        .fit_ctx = "1k,4k,16k",
                        .check_ctx = "2k,8k,32k",
                        .base = "h100-nvlink",
                        .attn_shapes = "1k:0,1k:8k,2k:4k,4k:12k,8k:8k"};
    kvr_cli_opt_reset();
    for (int o; (o = kvr_cli_getopt(argc, argv, "b:o:jh", opts)) != -1;) {
        const char **slot[] = {[O_MODELS - 300] = &c->models,
                               [O_FIT - 300] = &c->fit_ctx,
                               [O_CHECK - 300] = &c->check_ctx,
                               [O_BASE - 300] = &c->base,
                               [O_FROM - 300] = &c->from,
                               [O_SAVE - 300] = &c->save,
                               [O_DB - 300] = &c->db,
                               [O_NAME - 300] = &c->name,
                               [O_LAT - 300] = &c->link_lat,
                               [O_BW - 300] = &c->link_bw,
                               [O_OVERLAP - 300] = &c->overlap_bw,
                               [O_ATTN - 300] = &c->attn_shapes};
        if (o == '?') return KVR_ERR_USAGE;
        if (o == 'h')
            c->help = true;
        else if (o == 'j')
            c->json = true;
        else if (o == 'P')
            c->points = true;
        else if (o == 'o')
            c->out = optarg;
        else if (o == 'b')
            c->backend = optarg;
        else if (o >= 300 && o <= O_ATTN)
            *slot[o - 300] = optarg;
    }
    if (kvr_backend_from_name(c->backend) < 0)
        return kvr_error(KVR_ERR_USAGE, "--backend: '%s' is not cuda or ref", c->backend);
    if (optind < argc) return kvr_error(KVR_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
    return KVR_OK;
}

enum kvr_status kvr_cmd_calibrate(int argc, char **argv)
{
    struct calib c;
    enum kvr_status st = parse(argc, argv, &c);
    if (st || c.help) return st ? st : (fputs(help, stdout), KVR_OK);
    uint64_t *fit_ctx = NULL, *check_ctx = NULL, all[64];
    size_t n_fit = 0, n_check = 0;
    static struct kvr_machine h;
    struct outcome o = {0};
    if ((st = kvr_cli_parse_ctx_list("--fit-ctx", c.fit_ctx, &fit_ctx, &n_fit)) ||
        (st = kvr_cli_parse_ctx_list("--check-ctx", c.check_ctx, &check_ctx, &n_check)) ||
        (st = kvr_machine_resolve(c.base, &h)))
        goto out;
    if (n_fit + n_check > 64) {
        st = kvr_error(KVR_ERR_USAGE, "at most 64 contexts");
        goto out;
    }
    memcpy(all, fit_ctx, n_fit * sizeof *all),
        memcpy(all + n_fit, check_ctx, n_check * sizeof *all);
    h.n_gpus = 1;
    if (c.link_lat && (st = kvr_parse_duration_s(c.link_lat, &h.intra_lat_s)))
        st = kvr_error_prefix(st, "--link-lat: ");
    if (!st && c.link_bw && (st = kvr_parse_rate_Bps(c.link_bw, &h.intra_Bps)))
        st = kvr_error_prefix(st, "--link-bw: ");
    if (!st && c.overlap_bw && (st = kvr_parse_rate_Bps(c.overlap_bw, &h.overlap_Bps)))
        st = kvr_error_prefix(st, "--overlap-bw: ");
    if (st) goto out;
    snprintf(h.name + strlen(h.name), sizeof h.name - strlen(h.name), "-calibrated");
    if (c.name) snprintf(h.name, sizeof h.name, "%s", c.name);
    if (!(c.rows = calloc(MAX_ROWS, sizeof *c.rows)))
        st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st) st = c.from ? read_csv(&c) : measure(&c, all, n_fit + n_check);
    if (!st && c.save) st = write_csv(&c);
    if (!st) st = fit(&c, &h, fit_ctx, n_fit, &o);
    if (!st && c.out) st = write_ini(&c, &h, &o);
    if (!st) report(&c, &h, &o);
out:
    free(fit_ctx), free(check_ctx), free(c.rows);
    return st;
}
