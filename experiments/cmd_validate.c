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
    "kvr validate --timeline FILE --model M --scheme S --partition L [--machine P]\n"
    "    [--kv-forward whole|streamed|direct] [--json]\n"
    "compares one run's per-rank timeline (kvr exec --timeline) with the simulator's for the\n"
    "same plan, phase by phase: compute (pre; attention and the rest of the layer), which no\n"
    "link touches, apart from the waits and collectives that the links and the schedule add.\n";

struct args {
    const char *db, *machine, *out, *gnuplot;
    bool multi, json, help;
    struct kvr_validate_timeline_args tl; /* --timeline */
};

struct point {
    const struct kvr_measurement_row *m;
    double predicted_s, err; /* predicted / measured - 1 */
};

static enum kvr_status parse(int argc, char **argv, struct args *a)
{
    enum { O_MULTI = 300, O_GNUPLOT, O_TIMELINE, O_MODEL, O_SCHEME, O_PARTITION, O_FWD };
    static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                         {"machine", required_argument, 0, 'H'},
                                         {"multi-gpu", no_argument, 0, O_MULTI},
                                         {"out", required_argument, 0, 'o'},
                                         {"gnuplot", required_argument, 0, O_GNUPLOT},
                                         {"timeline", required_argument, 0, O_TIMELINE},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"scheme", required_argument, 0, O_SCHEME},
                                         {"partition", required_argument, 0, O_PARTITION},
                                         {"kv-forward", required_argument, 0, O_FWD},
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
        if (c == O_FWD) a->tl.kv_forward = optarg;
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

/* The machine a measurement ran on: the profile given, with the link settings the run emulated
 * (its machine key's overrides: "h100-nccl+bw=10GB/s"). */
static enum kvr_status row_machine(const struct kvr_measurement_row *x, const char *base,
                                   struct kvr_machine *h)
{
    struct kvr_machine_args ma;
    char buf[sizeof x->link_settings];
    enum kvr_status st = kvr_machine_args_from_key(x->link_settings, &ma, buf, sizeof buf);
    if (!st) st = kvr_machine_args_build(&ma, base, NULL, h);
    return st ? kvr_error_prefix(st, "measurement with links '%s': ", x->link_settings) : KVR_OK;
}

/* The simulator's TTFT for a measured plan. */
static enum kvr_status predict(const struct kvr_measurement_row *x, const char *base, double *ttft)
{
    struct kvr_model m;
    enum kvr_status st = kvr_model_resolve(x->model, &m);
    if (st) { /* a model from a profile file: the project's own, by name */
        char path[1024];
        snprintf(path, sizeof path, "%s/models/%s.ini", KVR_SOURCE_DATADIR, x->model);
        if (access(path, R_OK) == 0) st = kvr_model_resolve(path, &m);
    }
    if (st) return kvr_error_prefix(st, "measurement of model '%s': ", x->model);
    static struct kvr_machine h; /* large: not on the stack */
    if ((st = row_machine(x, base, &h))) return st;
    return kvr_measure_predict_fwd(&m, &h, x->scheme, x->kv_forward, x->p, x->ctx_tokens, x->tokens,
                                   ttft);
}

/* The links a measurement ran on, for a panel title: "full-speed" without emulated
 * overrides (a run emulating the profile's own, measured links is one too). */
static const char *links_label(const struct kvr_measurement_row *m)
{
    const char *plus = strchr(m->link_settings, '+');
    return plus ? plus + 1 : "full-speed";
}

/* The series of a point: its scheme, or KVR-E/-S/-P and the like for kvr's methods. */
static void series_label(const struct kvr_measurement_row *m, char *buf, size_t cap)
{
    const struct kvr_scheme_desc *d = kvr_scheme_find(m->scheme);
    int src = kvr_part_source_from_measured(m->method);
    if (!d || !(d->options & KVR_SO_SEARCHED) || src < 0 || src == KVR_PART_GIVEN)
        snprintf(buf, cap, "%s", m->scheme);
    else
        kvr_plan_label(d->id, src, buf, cap);
}

/* MAPE over the points of each distinct label (links or series), in order of appearance:
 * the link-bound points check the link model, the full-speed ones compute and schedule. */
typedef void (*label_fn)(const struct kvr_measurement_row *m, char *buf, size_t cap);

static void links_of(const struct kvr_measurement_row *m, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", links_label(m));
}

/* The points labelled `name`: how many, and their MAPE. */
static void group_mape(const struct point *pts, size_t n, label_fn label, const char *name,
                       int *count, double *mape)
{
    char other[256];
    double sum = 0;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        label(pts[i].m, other, sizeof other);
        if (!strcmp(name, other)) sum += fabs(pts[i].err), ++*count;
    }
    *mape = 100 * sum / *count;
}

/* The series a measurement can have, in the panels' order (a series keeps its colour): the
 * executor's even-split schemes, then per searched scheme its measured sources' labels and its
 * name (a given partition), then the one-GPU schemes; plots/validate_panels.gp draws 8. */
static int measured_series(char order[][32], int cap)
{
    int n = 0;
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < KVR_N_SCHEMES; i++) {
            const struct kvr_scheme_desc *d = kvr_scheme_get((enum kvr_scheme)i);
            bool one = d->options & KVR_SO_ONE_GPU, searched = d->options & KVR_SO_SEARCHED;
            if (!d->executes || (pass == 0) != (!one && !searched) || (pass == 1) != searched)
                continue;
            for (int k = 0; pass == 1 && k < KVR_N_PART_SOURCES && n < cap; k++)
                if (k != KVR_PART_GIVEN && kvr_part_source_get((enum kvr_part_source)k)->measured)
                    kvr_plan_label(d->id, k, order[n++], 32);
            if (n < cap) snprintf(order[n++], 32, "%s", d->name);
        }
    return n;
}

/* Calls fn(name, count, mape) once per distinct label. */
static void for_groups(const struct point *pts, size_t n, label_fn label,
                       void (*fn)(void *ctx, const char *name, int count, double mape), void *ctx)
{
    char name[256], other[256];
    for (size_t k = 0; k < n; k++) {
        label(pts[k].m, name, sizeof name);
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++) {
            label(pts[j].m, other, sizeof other);
            seen = !strcmp(name, other);
        }
        if (seen) continue;
        int count;
        double mape;
        group_mape(pts, n, label, name, &count, &mape);
        fn(ctx, name, count, mape);
    }
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

static void print_table(const struct point *pts, size_t n, double mape, double max_err)
{
    printf("%-12s %3s %-10s %-7s %8s %12s %12s %8s  %s\n", "model", "p", "scheme", "method", "ctx",
           "measured_s", "predicted_s", "error", "links");
    for (size_t i = 0; i < n; i++) {
        const char *links = strchr(pts[i].m->link_settings, '+');
        printf("%-12s %3d %-10s %-7s %8llu %12.5f %12.5f %+7.2f%%  %s\n", pts[i].m->model,
               pts[i].m->p, pts[i].m->scheme, pts[i].m->method,
               (unsigned long long)pts[i].m->ctx_tokens, pts[i].m->ttft_median_s,
               pts[i].predicted_s, 100 * pts[i].err, links ? links + 1 : "");
    }
    printf("%zu points: MAPE %.2f%%, max error %.2f%%\n", n, mape, max_err);
    for_groups(pts, n, links_of, print_group, "links");
    for_groups(pts, n, series_label, print_group, "series");
}

static void print_json(const struct point *pts, size_t n, double mape, double max_err)
{
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
    kvr_json_kv_u64(&j, "points", n);
    kvr_json_kv_dbl(&j, "mape_pct", mape);
    kvr_json_kv_dbl(&j, "max_err_pct", max_err);
    kvr_json_key(&j, "by_links");
    kvr_json_object_begin(&j);
    for_groups(pts, n, links_of, json_group, &j);
    kvr_json_object_end(&j);
    kvr_json_key(&j, "by_series");
    kvr_json_object_begin(&j);
    for_groups(pts, n, series_label, json_group, &j);
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
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
}

static bool same_panel(const struct point *a, const struct point *b)
{
    return !strcmp(a->m->model, b->m->model) && a->m->p == b->m->p &&
           !strcmp(links_label(a->m), links_label(b->m));
}

/* The rows of series `series` in the panel of pts[0], contexts ascending. */
static void write_series(FILE *f, const struct point *pts, size_t n, const char *series)
{
    char other[64];
    for (uint64_t last = 0;;) {
        const struct point *next = NULL;
        for (size_t b = 0; b < n; b++) {
            series_label(pts[b].m, other, sizeof other);
            if (same_panel(&pts[b], &pts[0]) && !strcmp(series, other) &&
                pts[b].m->ctx_tokens > last &&
                (!next || pts[b].m->ctx_tokens < next->m->ctx_tokens))
                next = &pts[b];
        }
        if (!next) return;
        fprintf(f, "x\t%llu\t%.9g\t%.9g\n", (unsigned long long)next->m->ctx_tokens,
                next->m->ttft_median_s, next->predicted_s);
        last = next->m->ctx_tokens;
    }
}

/* Paper-style panels: one per model, rank count and links, one block per series (ctx,
 * measured, predicted), contexts ascending; their files and titles in validate_panels.list. */
static enum kvr_status write_panels(const char *dir, const struct point *pts, size_t n)
{
    char path[2200], name[64], series[64];
    snprintf(path, sizeof path, "%s/validate_panels.list", dir);
    FILE *list = fopen(path, "w");
    if (!list) return kvr_error(KVR_ERR_IO, "cannot write %s", path);
    int k = 0;
    enum kvr_status st = KVR_OK;
    for (size_t i = 0; i < n && !st; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) seen = same_panel(&pts[i], &pts[j]);
        if (seen) continue;
        snprintf(name, sizeof name, "validate-panel-%d.tsv", ++k);
        fprintf(list, "%s\t%s,p=%d,%s\n", name, pts[i].m->model, pts[i].m->p,
                links_label(pts[i].m));
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "w");
        if (!f) {
            st = kvr_error(KVR_ERR_IO, "cannot write %s", path);
            break;
        }
        /* the same block (colour) for a series in every panel; an absent one is an empty,
         * untitled block */
        char order[16][32];
        int n_order = measured_series(order, 16);
        for (int o = 0; o < n_order; o++) {
            bool present = false;
            for (size_t a = i; a < n && !present; a++) {
                series_label(pts[a].m, series, sizeof series);
                present = same_panel(&pts[a], &pts[i]) && !strcmp(series, order[o]);
            }
            fprintf(f, "%s%s\tctx\tmeasured_s\tpredicted_s\n", o ? "\n\n" : "",
                    present ? order[o] : "");
            if (present)
                write_series(f, pts + i, n - i, order[o]);
            else
                fprintf(f, "x\tNaN\tNaN\tNaN\n");
        }
        if (fclose(f) != 0) st = kvr_error(KVR_ERR_IO, "cannot write %s", path);
    }
    if (fclose(list) != 0 && !st) st = kvr_error(KVR_ERR_IO, "cannot write the panel list");
    return st;
}

/* One block per model (and scheme, p): ctx, measured, predicted, error %; then both figures. */
static enum kvr_status figures(const struct args *a, const struct point *pts, size_t n)
{
    char dir[2048], path[2200];
    struct stat sb;
    if (stat(a->out, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return kvr_error(KVR_ERR_IO, "--out: '%s' is not an existing directory", a->out);
    enum kvr_status st = kvr_plot_check_gnuplot(a->gnuplot);
    if (st) return st;
    snprintf(dir, sizeof dir, "%s/data", a->out);
    if (mkdir(dir, 0755) != 0 && access(dir, W_OK) != 0)
        return kvr_error(KVR_ERR_IO, "--out: cannot create '%s'", dir);
    snprintf(path, sizeof path, "%s/validate-1.tsv", dir);
    FILE *f = fopen(path, "w");
    if (!f) return kvr_error(KVR_ERR_IO, "cannot write %s", path);
    for (size_t i = 0; i < n; i++) {
        bool first = i == 0 || strcmp(pts[i].m->model, pts[i - 1].m->model) ||
                     strcmp(pts[i].m->scheme, pts[i - 1].m->scheme) ||
                     strcmp(pts[i].m->method, pts[i - 1].m->method) ||
                     pts[i].m->p != pts[i - 1].m->p;
        if (first && i) fprintf(f, "\n\n");
        if (first)
            fprintf(f, "%s %s (%s) p=%d\tctx\tmeasured_s\tpredicted_s\terr_pct\n", pts[i].m->model,
                    pts[i].m->scheme, pts[i].m->method, pts[i].m->p);
        fprintf(f, "x\t%llu\t%.9g\t%.9g\t%.4f\n", (unsigned long long)pts[i].m->ctx_tokens,
                pts[i].m->ttft_median_s, pts[i].predicted_s, 100 * pts[i].err);
    }
    fclose(f);
    if ((st = write_panels(dir, pts, n))) return st;
    const char *names[] = {"validate", "validate_err", "validate_ttft"};
    for (int k = 0; k < 3 && !st; k++) {
        snprintf(path, sizeof path, "%s/%s.list", dir, names[k]);
        if (!(f = fopen(path, "w"))) return kvr_error(KVR_ERR_IO, "cannot write %s", path);
        fprintf(f, "validate-1.tsv\t%s\n", a->multi ? "multi-GPU" : "single-GPU");
        fclose(f);
        st = kvr_plot_render(a->gnuplot, KVR_SOURCE_PLOTDIR, a->out, names[k]);
    }
    /* validate_panels.list was written with its panels */
    return st ? st : kvr_plot_render(a->gnuplot, KVR_SOURCE_PLOTDIR, a->out, "validate_panels");
}

enum kvr_status kvr_cmd_validate(int argc, char **argv)
{
    struct args a;
    enum kvr_status st = parse(argc, argv, &a);
    if (st || a.help) return st ? st : (fputs(help, stdout), KVR_OK);
    if (a.tl.path) return kvr_validate_timeline(&a.tl);
    static struct kvr_machine h;
    struct kvr_store *store = NULL;
    struct kvr_measurement_row *rows = NULL;
    size_t n_rows = 0, n = 0;
    if ((st = kvr_machine_resolve(a.machine, &h))) return kvr_error_prefix(st, "--machine: ");
    if ((st = kvr_store_open(a.db, KVR_STORE_READ, &store))) return st;
    st = kvr_store_list_measurements(store, &rows, &n_rows);
    kvr_store_close(store);
    struct point *pts = st ? NULL : calloc(n_rows + 1, sizeof *pts);
    if (!st && !pts) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    double sum = 0, max_err = 0;
    for (size_t i = 0; !st && i < n_rows; i++) {
        if ((rows[i].p > 1) != a.multi) continue;
        pts[n].m = &rows[i];
        if ((st = predict(&rows[i], a.machine, &pts[n].predicted_s))) break;
        pts[n].err = pts[n].predicted_s / rows[i].ttft_median_s - 1;
        sum += fabs(pts[n].err), max_err = fmax(max_err, fabs(pts[n].err)), n++;
    }
    if (!st && n == 0)
        st = kvr_error(KVR_ERR_INPUT, "%s: no %s measurements", a.db,
                       a.multi ? "multi-GPU (p > 1)" : "single-device (p = 1)");
    double mape = n ? 100 * sum / (double)n : 0;
    if (!st && a.json)
        print_json(pts, n, mape, 100 * max_err);
    else if (!st)
        print_table(pts, n, mape, 100 * max_err);
    if (!st && a.out) st = figures(&a, pts, n);
    free(rows), free(pts);
    return st;
}
