/* kvr validate: the simulator's TTFT predictions against the executor's stored measurements,
 * point by point, with MAPE and two figures (predicted against measured with the y = x line
 * and +-10% bands; the error against context length). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvr_cli.h"
#include "kvr_config.h"
#include "kvr_json.h"
#include "kvr_machine_args.h"
#include "kvr_measure.h"
#include "kvr_plot.h"
#include "kvr_sim.h"
#include "kvr_store.h"
#include "kvr_validate.h"
#include "kvr_validate_timeline.h"

static const char help[] =
    "usage: kvr validate [--db FILE] [--machine PROFILE] [--multi-gpu] [--out DIR] [--json]\n"
    "\n"
    "Predicts every stored measurement's plan (model, p, ctx, scheme, partition) with the\n"
    "simulator on PROFILE and prints the relative error of each, the MAPE and the largest\n"
    "error. Single-device measurements (p = 1) by default; --multi-gpu takes those of p > 1.\n"
    "\n"
    "  -d, --db FILE       measurements             (default: data/measurements/h100.sqlite,\n"
    "                      with --multi-gpu data/measurements/h100x4-multi.sqlite)\n"
    "  -H, --machine P     profile or INI file      (default: data/machines/h100-calibrated.ini;\n"
    "                      with --multi-gpu data/machines/h100x4-nccl.ini, the same fit with\n"
    "                      the NCCL links measured on those GPUs)\n"
    "      --multi-gpu     validate the multi-rank measurements instead\n"
    "  -o, --out DIR       also draw there validate (predicted against measured, y = x, +-10%),\n"
    "                      validate_err (error against context), validate_ttft (TTFT against\n"
    "                      context, measured points beside predicted lines) and validate_panels\n"
    "                      (one panel per model, p and links, a colour per scheme), PNG + SVG\n"
    "      --gnuplot PROG  gnuplot program          (default gnuplot)\n"
    "  -j, --json          print JSON (keys points, mape_pct, max_err_pct, by_links, by_series,\n"
    "                      rows)\n"
    "\n"
    "kvr validate --timeline FILE --model M --scheme S --partition L [--machine P] [--json]\n"
    "compares one run's per-rank timeline (kvr exec --timeline) with the simulator's for the\n"
    "same plan, phase by phase: compute (pre; attention and the rest of the layer), which no\n"
    "link touches, apart from the waits and collectives that the links and the schedule add.\n";

struct args {
    const char *db, *machine, *out, *gnuplot;
    bool multi, json, help;
    struct kvr_validate_timeline_args tl; /* --timeline */
};

static enum kvr_status parse(int argc, char **argv, struct args *a)
{
    enum { O_MULTI = 300, O_GNUPLOT, O_TIMELINE, O_MODEL, O_SCHEME, O_PARTITION };
    static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                         {"machine", required_argument, 0, 'H'},
                                         {"multi-gpu", no_argument, 0, O_MULTI},
                                         {"out", required_argument, 0, 'o'},
                                         {"gnuplot", required_argument, 0, O_GNUPLOT},
                                         {"timeline", required_argument, 0, O_TIMELINE},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"scheme", required_argument, 0, O_SCHEME},
                                         {"partition", required_argument, 0, O_PARTITION},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *a = (struct args){.db = KVR_SOURCE_DATADIR "/measurements/h100.sqlite",
                       .machine = KVR_SOURCE_DATADIR "/machines/h100-calibrated.ini",
                       .gnuplot = "gnuplot"};
    bool db_given = false, machine_given = false;
    kvr_cli_opt_reset();
    for (int c; (c = kvr_cli_getopt(argc, argv, "d:H:o:jh", opts)) != -1;) {
        if (c == '?') return KVR_ERR_USAGE;
        if (c == 'd') a->db = optarg, db_given = true;
        if (c == 'H') a->machine = optarg, machine_given = true;
        if (c == 'o') a->out = optarg;
        if (c == O_MULTI) a->multi = true;
        if (c == O_GNUPLOT) a->gnuplot = optarg;
        if (c == O_TIMELINE) a->tl.path = optarg;
        if (c == O_MODEL) a->tl.model = optarg;
        if (c == O_SCHEME) a->tl.scheme = optarg;
        if (c == O_PARTITION) a->tl.partition = optarg;
        if (c == 'j') a->json = true;
        if (c == 'h') a->help = true;
    }
    if (optind < argc) return kvr_error(KVR_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
    if (a->multi && !db_given) a->db = KVR_SOURCE_DATADIR "/measurements/h100x4-multi.sqlite";
    if ((a->multi || a->tl.path) && !machine_given)
        a->machine = KVR_SOURCE_DATADIR "/machines/h100x4-nccl.ini";
    a->tl.machine = a->machine, a->tl.json = a->json;
    return KVR_OK;
}

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

static void print_table(const struct kvr_validate_set *v)
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
    kvr_json_key(&j, "rows");
    kvr_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) {
        kvr_json_object_begin(&j);
        kvr_json_kv_str(&j, "model", pts[i].m->model);
        kvr_json_kv_u64(&j, "p", (uint64_t)pts[i].m->p);
        kvr_json_kv_str(&j, "scheme", pts[i].m->scheme);
        kvr_json_kv_str(&j, "method", pts[i].m->method);
        kvr_json_kv_str(&j, "links", pts[i].m->link_settings);
        kvr_json_kv_u64(&j, "ctx", pts[i].m->ctx_tokens);
        kvr_json_kv_dbl(&j, "measured_s", pts[i].m->ttft_median_s);
        kvr_json_kv_dbl(&j, "predicted_s", pts[i].predicted_s);
        kvr_json_kv_dbl(&j, "err_pct", 100 * pts[i].err);
        kvr_json_object_end(&j);
    }
    kvr_json_array_end(&j);
    kvr_json_end(&j);
}

/* The figures: the engine writes their data, gnuplot draws them. */
static enum kvr_status figures(const struct args *a, const struct kvr_validate_set *v)
{
    char dir[2048];
    struct stat sb;
    if (stat(a->out, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return kvr_error(KVR_ERR_IO, "--out: '%s' is not an existing directory", a->out);
    enum kvr_status st = kvr_plot_check_gnuplot(a->gnuplot);
    if (st) return st;
    snprintf(dir, sizeof dir, "%s/data", a->out);
    if (mkdir(dir, 0755) != 0 && access(dir, W_OK) != 0)
        return kvr_error(KVR_ERR_IO, "--out: cannot create '%s'", dir);
    if ((st = kvr_validate_export(dir, v, a->multi ? "multi-GPU" : "single-GPU"))) return st;
    const char *names[] = {"validate", "validate_err", "validate_ttft", "validate_panels"};
    for (int k = 0; k < 4 && !st; k++)
        st = kvr_plot_render(a->gnuplot, KVR_SOURCE_PLOTDIR, a->out, names[k]);
    return st;
}

enum kvr_status kvr_cmd_validate(int argc, char **argv)
{
    struct args a;
    enum kvr_status st = parse(argc, argv, &a);
    if (st || a.help) return st ? st : (fputs(help, stdout), KVR_OK);
    if (a.tl.path) return kvr_validate_timeline(&a.tl);
    struct kvr_validate_set v;
    if ((st = kvr_validate_load(a.db, a.machine, a.multi, &v))) return st;
    if (a.json)
        print_json(&v);
    else
        print_table(&v);
    if (a.out) st = figures(&a, &v);
    kvr_validate_free(&v);
    return st;
}
