/* kvr validate: the simulator's TTFT predictions against the executor's stored measurements,
 * point by point, with MAPE and two figures (predicted against measured with the y = x line
 * and +-10% bands; the error against context length). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvr_calibrate.h"
#include "kvr_cli.h"
#include "kvr_opt.h"
#include "kvr_out.h"
#include "kvr_config.h"
#include "kvr_datadir.h"
#include "kvr_json.h"
#include "kvr_machine_args.h"
#include "kvr_measure.h"
#include "kvr_plot.h"
#include "kvr_sim.h"
#include "kvr_store.h"
#include "kvr_units.h"
#include "kvr_validate.h"
#include "kvr_validate_timeline.h"

static const char usage[] =
    "usage: kvr validate [--db FILE] [--machine PROFILE] [--multi-gpu] [--calibration CSV]\n"
    "    [--calibration-ctx L] [--out DIR] [--json]\n"
    "\n"
    "Predicts every stored measurement's plan (model, p, ctx, scheme, partition) with the\n"
    "simulator on PROFILE and prints the relative error of each, the MAPE and the largest\n"
    "error. Single-device measurements (p = 1) by default; --multi-gpu takes those of p > 1.\n"
    "The held-out points, whose (model, ctx) the calibration never timed (no row of the\n"
    "operation CSV the profile was fitted from at the fit's contexts: a model or a context\n"
    "not used to calibrate), get their MAPE apart from the others'.\n"
    "\n"
    "--json keys: points, mape_pct, max_err_pct, by_links, by_series, calibration (null, or\n"
    "csv, fit_ctx, calibrated and held_out: points, mape_pct), rows (each with held_out).\n"
    "\n"
    "kvr validate --timeline FILE --model M --scheme S --partition L [--machine P]\n"
    "    [--kv-forward whole|streamed|direct] [--ring-pass kv|q] [--json]\n"
    "compares one run's per-rank timeline (kvr exec --timeline) with the simulator's for the\n"
    "same plan, phase by phase: compute (pre; attention and the rest of the layer), which no\n"
    "link touches, apart from the waits and collectives that the links and the schedule add;\n"
    "every rank's steps (computes, sends, collectives; not the waits) must come in the\n"
    "simulator's order, else exit 2. The plan a timeline records in its header line (kvr sim\n"
    "and kvr exec write it) must be the options' (scheme, partition, KV hand-off, ring pass,\n"
    "model's hash): another is refused.\n";

struct args {
    const char *db, *machine, *out, *gnuplot, *calibration, *calibration_ctx;
    bool multi, json, quiet, help;
    struct kvr_validate_timeline_args tl; /* --timeline */
};

static enum kvr_status check_args(void *args, const struct kvr_opt_result *res)
{
    struct args *a = args;
    enum kvr_status st;
    static const char *const table_only[] = {"db",          "multi-gpu",       "out", "gnuplot",
                                             "calibration", "calibration-ctx", NULL};
    static const char *const timeline_only[] = {"model",      "scheme",    "partition",
                                                "kv-forward", "ring-pass", NULL};
    if (a->tl.path && (st = kvr_opt_refuse(res, table_only, "does not apply to --timeline")))
        return st;
    if (!a->tl.path && (st = kvr_opt_refuse(res, timeline_only, "applies with --timeline only")))
        return st;
    static const char *const figures_only[] = {"gnuplot", NULL};
    if (!a->out && (st = kvr_opt_refuse(res, figures_only,
                                        "draws the figures of --out DIR: "
                                        "give --out, or nothing is drawn")))
        return st;
    /* the defaults: the committed data in the data directory (kvr_datadir.h) */
    static char db[4200], machine[4200];
    if (!a->db && !a->tl.path &&
        !(st = kvr_datadir_default("--db not given, and its default",
                                   a->multi ? "data/measurements/h100x4-multi.sqlite"
                                            : "data/measurements/h100.sqlite",
                                   db, sizeof db)))
        a->db = db;
    if (!st && !a->machine &&
        !(st = kvr_datadir_default("--machine not given, and its default",
                                   (a->multi || a->tl.path) ? "data/machines/h100x4-nccl.ini"
                                                            : "data/machines/h100-calibrated.ini",
                                   machine, sizeof machine)))
        a->machine = machine;
    if (st) return st;
    /* the figures' folder and gnuplot before anything is computed or printed */
    if (a->out && ((st = kvr_plot_check_out(a->out)) || (st = kvr_plot_check_gnuplot(a->gnuplot))))
        return st;
    a->tl.machine = a->machine, a->tl.json = a->json;
    return st;
}

#define OFF(f) offsetof(struct args, f)
static const struct kvr_opt validate_opts[] = {
    KVR_OPT("db", 'd', "FILE", OFF(db), "measurements",
            .def_help = "data/measurements/h100.sqlite,\nwith --multi-gpu "
                        "data/measurements/h100x4-multi.sqlite"),
    KVR_OPT("machine", 'H', "P", OFF(machine), "profile or INI file",
            .def_help =
                "data/machines/h100-calibrated.ini;\nwith --multi-gpu or --timeline "
                "data/machines/h100x4-nccl.ini, the same fit\nwith the NCCL links measured on "
                "those GPUs"),
    KVR_OPT("multi-gpu", 0, NULL, OFF(multi), "validate the multi-rank measurements instead"),
    KVR_OPT("calibration", 0, "CSV", OFF(calibration),
            "the operation times the profile was fitted from (kvr calibrate\n--from): a point "
            "whose (model, ctx) has no row there at the fit's\ncontexts is held out, its MAPE "
            "apart; a recorded CSV is found in\nthe data directory, else beside the profile",
            .def_help = "the profile's record", .file = KVR_OPT_FILE_IN),
    KVR_OPT("calibration-ctx", 0, "L", OFF(calibration_ctx),
            "the contexts of the fit (1k,4k,16k): the CSV's rows at others\nwere held out by "
            "the fit too",
            .def_help = "the profile's recorded ones, else all the CSV's"),
    KVR_OPT("out", 'o', "DIR", OFF(out),
            "also draw there validate (predicted against measured, y = x, +-10%),\n"
            "validate_err (error against context), validate_ttft (TTFT against\ncontext, "
            "measured points beside predicted lines) and validate_panels\n(one panel per "
            "model, p and links, a colour per scheme), PNG + SVG"),
    KVR_OPT("gnuplot", 0, "PROG", OFF(gnuplot), "gnuplot program", .def = "gnuplot"),
    KVR_OPT("timeline", 't', "FILE", OFF(tl.path),
            "compare this run's timeline (kvr exec --timeline) instead"),
    KVR_OPT("model", 'm', "M", OFF(tl.model), "with --timeline: the measured model"),
    KVR_OPT("scheme", 's', "S", OFF(tl.scheme), "with --timeline, the run's scheme: @SCHEMES@"),
    KVR_OPT("partition", 'P', "L", OFF(tl.partition), "with --timeline: one chunk per rank, a,b,c"),
    KVR_OPT("kv-forward", 0, "MODE", OFF(tl.kv_forward),
            "with --timeline: the run's KV hand-off (whole, streamed, direct)"),
    KVR_OPT("ring-pass", 0, "P", OFF(tl.ring_pass),
            "with --timeline, ring: the pass that ran (kv, q)", .def_help = "kv"),
    KVR_OPT_COMMON_END(struct args)};
#undef OFF

static const struct kvr_opt_spec validate_spec = {
    .usage = usage, .opts = validate_opts, .check = check_args};

static void print_group(void *ctx, const char *name, int count, double mape)
{
    printf("  %-12s %-24s %4d points  MAPE %6.2f%%\n", (const char *)ctx, name, count, mape);
}

static void json_group(void *ctx, const char *name, int count, double mape)
{
    struct kvr_json *j = ctx;
    kvr_json_key(j, name);
    kvr_json_object_begin(j);
    kvr_json_kv_u64(j, "points", (uint64_t)count);
    kvr_json_kv_dbl(j, "mape_pct", mape);
    kvr_json_object_end(j);
}

/* The held-out split's lines (reason: why there is none). */
static void print_split(const struct kvr_validate_set *v, const char *reason)
{
    const struct kvr_validate_calibration *c = &v->cal;
    if (!c->known) {
        printf("held out: no calibration CSV (%s): give --calibration\n", reason);
        return;
    }
    char tok[32];
    printf("held out: no time of their (model, ctx) in %s at ", c->csv);
    if (!c->n_fit_ctx) printf("any context");
    for (size_t k = 0; k < c->n_fit_ctx; k++) /* 1k, 4k, 16k as the profile writes them */
        printf("%s%s", k ? "," : "", kvr_format_tokens(tok, sizeof tok, c->fit_ctx[k]));
    printf(" tokens\n");
    const char *names[2] = {"calibrated", "held-out"};
    size_t counts[2] = {c->n_fitted, c->n_held_out};
    double mapes[2] = {c->fitted_mape_pct, c->held_mape_pct};
    for (int k = 0; k < 2; k++)
        if (counts[k])
            printf("  %-12s %-24s %4zu points  MAPE %6.2f%%\n", "calibration", names[k], counts[k],
                   mapes[k]);
        else
            printf("  %-12s %-24s %4d points  MAPE      -\n", "calibration", names[k], 0);
}

static void json_split(struct kvr_json *j, const struct kvr_validate_calibration *c)
{
    kvr_json_key(j, "calibration");
    if (!c->known) {
        kvr_json_null(j);
        return;
    }
    kvr_json_object_begin(j);
    kvr_json_kv_str(j, "csv", c->csv);
    kvr_json_key(j, "fit_ctx"); /* empty: every context of the CSV */
    kvr_json_array_begin(j);
    for (size_t k = 0; k < c->n_fit_ctx; k++) kvr_json_u64(j, c->fit_ctx[k]);
    kvr_json_array_end(j);
    json_group(j, "calibrated", (int)c->n_fitted, c->fitted_mape_pct); /* no point: mape_pct null */
    json_group(j, "held_out", (int)c->n_held_out, c->held_mape_pct);
    kvr_json_object_end(j);
}

static void print_table(const struct kvr_validate_set *v, const char *reason)
{
    const struct kvr_validate_point *pts = v->pts;
    size_t n = v->n;
    printf("%-12s %3s %-10s %-7s %8s %12s %12s %8s  %s\n", "model", "p", "scheme", "method", "ctx",
           "measured_s", "predicted_s", "error", "links");
    for (size_t i = 0; i < n; i++) {
        const char *links = strchr(pts[i].m->link_settings, '+');
        printf("%-12s %3d %-10s %-7s %8llu %12.5f %12.5f %+7.2f%%  %s\n", pts[i].m->model,
               pts[i].m->p, pts[i].m->scheme, pts[i].m->method,
               (unsigned long long)pts[i].m->ctx_tokens, pts[i].m->ttft_median_s,
               pts[i].predicted_s, 100 * pts[i].err, links ? links + 1 : "");
    }
    printf("%zu points: MAPE %.2f%%, max error %.2f%%\n", n, v->mape_pct, v->max_err_pct);
    kvr_validate_groups(pts, n, kvr_validate_links_of, print_group, "links");
    kvr_validate_groups(pts, n, kvr_validate_series_label, print_group, "series");
    print_split(v, reason);
}

static void print_json(const struct kvr_validate_set *v)
{
    const struct kvr_validate_point *pts = v->pts;
    size_t n = v->n;
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_kv_u64(&j, "points", n);
    kvr_json_kv_dbl(&j, "mape_pct", v->mape_pct);
    kvr_json_kv_dbl(&j, "max_err_pct", v->max_err_pct);
    kvr_json_key(&j, "by_links");
    kvr_json_object_begin(&j);
    kvr_validate_groups(pts, n, kvr_validate_links_of, json_group, &j);
    kvr_json_object_end(&j);
    kvr_json_key(&j, "by_series");
    kvr_json_object_begin(&j);
    kvr_validate_groups(pts, n, kvr_validate_series_label, json_group, &j);
    kvr_json_object_end(&j);
    json_split(&j, &v->cal);
    kvr_json_key(&j, "rows");
    kvr_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) {
        kvr_json_object_begin(&j);
        kvr_json_kv_str(&j, "model", pts[i].m->model);
        kvr_json_kv_u64(&j, "p", (uint64_t)pts[i].m->p);
        kvr_json_kv_u64(&j, "tp", (uint64_t)(pts[i].m->tp > 1 ? pts[i].m->tp : 1));
        kvr_json_kv_str(&j, "scheme", pts[i].m->scheme);
        kvr_json_kv_str(&j, "method", pts[i].m->method);
        kvr_json_kv_str(&j, "last_layer", pts[i].m->last_layer);
        kvr_json_kv_str(&j, "links", pts[i].m->link_settings);
        kvr_json_kv_u64(&j, "ctx", pts[i].m->ctx_tokens);
        kvr_json_kv_dbl(&j, "measured_s", pts[i].m->ttft_median_s);
        kvr_json_kv_dbl(&j, "predicted_s", pts[i].predicted_s);
        kvr_json_kv_dbl(&j, "err_pct", 100 * pts[i].err);
        kvr_json_key(&j, "held_out");
        if (v->cal.known)
            kvr_json_bool(&j, pts[i].held_out);
        else
            kvr_json_null(&j);
        kvr_json_object_end(&j);
    }
    kvr_json_array_end(&j);
    kvr_json_end(&j);
}

/* The figures: the engine writes their data, gnuplot draws them. */
static enum kvr_status figures(const struct args *a, const struct kvr_validate_set *v)
{
    char dir[2048];
    enum kvr_status st;
    if ((st = kvr_plot_check_out(a->out)) || (st = kvr_plot_check_gnuplot(a->gnuplot)) ||
        (st = kvr_plot_data_dir(a->out, dir, sizeof dir)))
        return st;
    if ((st = kvr_validate_export(dir, v, a->multi ? "multi-GPU" : "single-GPU"))) return st;
    const char *names[] = {"validate", "validate_err", "validate_ttft", "validate_panels"};
    char plots[4200];
    if ((st = kvr_datadir_path("plots", plots, sizeof plots))) return st;
    for (int k = 0; k < 4 && !st; k++) st = kvr_plot_render(a->gnuplot, plots, a->out, names[k]);
    return st;
}

/* The calibration CSV a profile records (as kvr calibrate --from was given it), found as kvrun
 * finds its data files: an absolute path as it is, a relative one in the data directory
 * (kvr_datadir.h), else beside the profile; never in the current folder, where another
 * checkout's file of that name would be taken silently. */
static bool find_recorded(const char *machine, const char *rec, char *buf, size_t cap)
{
    if (rec[0] == '/') return (size_t)snprintf(buf, cap, "%s", rec) < cap && !access(buf, R_OK);
    if (!kvr_datadir_path(rec, buf, cap) && !access(buf, R_OK)) return true;
    const char *slash = strrchr(machine, '/');
    int dir = slash ? (int)(slash - machine) : 1;
    return (size_t)snprintf(buf, cap, "%.*s/%s", dir, slash ? machine : ".", rec) < cap &&
           !access(buf, R_OK);
}

enum kvr_status kvr_cmd_validate(int argc, char **argv)
{
    struct args a = {0};
    enum kvr_status st;
    if (kvr_opt_start(&validate_spec, argc, argv, &a, NULL, &st)) return st;
    if (a.tl.path) return kvr_validate_timeline(&a.tl);
    struct kvr_validate_set v;
    if ((st = kvr_validate_load(a.db, a.machine, a.multi, &v))) return st;
    /* the held-out split: the calibration CSV given, else the one the profile records */
    static char rec_csv[4200], rec_ctx[1024], found[4200], reason[8600];
    const char *csv = a.calibration;
    if ((st = kvr_calibrate_read_record(a.machine, rec_csv, sizeof rec_csv, rec_ctx,
                                        sizeof rec_ctx))) {
        kvr_validate_free(&v);
        return st;
    }
    snprintf(reason, sizeof reason, "%s records none", a.machine);
    if (!csv && rec_csv[0]) {
        if (find_recorded(a.machine, rec_csv, found, sizeof found))
            csv = found;
        else
            snprintf(reason, sizeof reason,
                     "%s records %s, which is not readable in the data directory nor beside the "
                     "profile",
                     a.machine, rec_csv);
    }
    /* --calibration-ctx picks the contexts of a CSV: without one it would change nothing */
    if (!csv && a.calibration_ctx) {
        kvr_validate_free(&v);
        return kvr_error(KVR_ERR_USAGE,
                         "--calibration-ctx: no calibration CSV to apply it to (%s): give "
                         "--calibration",
                         reason);
    }
    /* each message names where its value came from: the option, or the profile's header */
    static char csv_what[8600], ctx_what[5300];
    const char *fit_ctx = a.calibration_ctx ? a.calibration_ctx : rec_ctx[0] ? rec_ctx : NULL;
    snprintf(csv_what, sizeof csv_what,
             a.calibration ? "--calibration"
                           : "%s's calibration record (its header line '; Measurements: %s. ...')",
             a.machine, rec_csv);
    snprintf(ctx_what, sizeof ctx_what,
             a.calibration_ctx ? "--calibration-ctx"
                               : "%s's calibration record (its header line's '(contexts %s)')",
             a.machine, rec_ctx);
    if (csv && (st = kvr_validate_split(&v, csv, csv_what, fit_ctx, ctx_what))) {
        kvr_validate_free(&v);
        return st;
    }
    if (a.json)
        print_json(&v);
    else
        print_table(&v, reason);
    if (a.out) st = figures(&a, &v);
    kvr_validate_free(&v);
    return st;
}
