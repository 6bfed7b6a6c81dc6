/* kvr plot: each figure's data from its plotting view (DIR/data/NAME-K.tsv: one file per panel,
 * one block per series, a .list manifest of panels), then its gnuplot script
 * (plots/NAME.gp with the shared plots/style.gp), as PNG and SVG in DIR. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvr_cli.h"
#include "kvr_config.h"
#include "kvr_datadir.h"
#include "kvr_json.h"
#include "kvr_opt.h"
#include "kvr_out.h"
#include "kvr_plot.h"
#include "kvr_store.h"

static const char usage[] =
    "usage: kvr plot NAME|all --db FILE --out DIR [options]\n\nExports each figure's "
    "data from the database's views and renders it with gnuplot as\nDIR/NAME.png and "
    "DIR/NAME.svg (data in DIR/data).\nNAME: @FIGURES@, or all.\nfig14 draws the "
    "committed measurements (data/measurements/h100x4-multi.sqlite, predicted on\n"
    "data/machines/h100x4-nccl.ini): kvr plot fig14 takes no --db.\n--json lists what "
    "was written.\n";

struct plot_args {
    const char *name, *db, *out, *scripts, *gnuplot;
    bool json, quiet, help;
};

static enum kvr_status check_args(void *args, const struct kvr_opt_result *res)
{
    struct plot_args *a = args;
    enum kvr_status st = KVR_OK;
    a->name = res->args[0];
    /* a figure of committed measurements alone reads no database of sweeps: --db is refused */
    const struct kvr_plot_figure *one = kvr_plot_figure(a->name);
    if (one && !strcmp(one->view, KVR_PLOT_MEASURED) && a->db)
        return kvr_error(KVR_ERR_USAGE,
                         "--db: %s draws the committed measurements (%s), not a database",
                         one->name, one->sweep);
    if ((!a->db && !(one && !strcmp(one->view, KVR_PLOT_MEASURED))) || !a->out)
        return kvr_error(KVR_ERR_USAGE, "plot: --db and --out are required");
    if ((a->db && (st = kvr_path_check("--db", a->db))) || (st = kvr_path_check("--out", a->out)))
        return st;
    if ((st = kvr_plot_check_out(a->out))) return st;
    if (strcmp(a->name, "all") && !kvr_plot_figure(a->name))
        return kvr_error(KVR_ERR_INPUT, "plot: unknown figure '%s' (see kvr plot --help)", a->name);
    static char scripts[4200], style[4300];
    if (!a->scripts && !(st = kvr_datadir_default("--scripts not given, and its default",
                                                  "plots/style.gp", scripts, sizeof scripts))) {
        *strrchr(scripts, '/') = 0; /* the folder of style.gp */
        a->scripts = scripts;
    }
    snprintf(style, sizeof style, "%s/style.gp", a->scripts ? a->scripts : "");
    if (!st && access(style, R_OK) != 0)
        st = kvr_error(KVR_ERR_IO, "--scripts: no gnuplot scripts in '%s' (%s: %s)", a->scripts,
                       style, strerror(errno));
    return st;
}

#define OFF(f) offsetof(struct plot_args, f)
static const struct kvr_opt plot_opts[] = {
    KVR_OPT("db", 'd', "FILE", OFF(db),
            "database filled by kvr sweep (required, but refused with fig14 alone)"),
    KVR_OPT("out", 'o', "DIR", OFF(out), "existing output folder (required)"),
    KVR_OPT("scripts", 0, "DIR", OFF(scripts), "gnuplot scripts",
            .def_help = "plots/ in the data directory, $KVR_DATADIR or PREFIX/share/kvrun"),
    KVR_OPT("gnuplot", 0, "PROG", OFF(gnuplot), "gnuplot program", .def = "gnuplot"),
    KVR_OPT_COMMON_END(struct plot_args)};
#undef OFF

static const struct kvr_opt_spec plot_spec = {
    .usage = usage, .opts = plot_opts, .check = check_args, .min_args = 1, .max_args = 1};

static void report_figure(struct kvr_json *j, const struct plot_args *a,
                          const struct kvr_plot_figure *f, size_t rows)
{
    if (!a->json) {
        printf("%-6s %-55s %5zu rows -> %s/%s.png, .svg\n", f->name, f->title, rows, a->out,
               f->name);
        return;
    }
    char path[4200];
    kvr_json_object_begin(j);
    kvr_json_kv_str(j, "figure", f->name);
    kvr_json_kv_u64(j, "rows", rows);
    snprintf(path, sizeof path, "%s/%s.png", a->out, f->name);
    kvr_json_kv_str(j, "png", path);
    snprintf(path, sizeof path, "%s/%s.svg", a->out, f->name);
    kvr_json_kv_str(j, "svg", path);
    snprintf(path, sizeof path, "%s/data/%s.list", a->out, f->name);
    kvr_json_kv_str(j, "data", path);
    kvr_json_object_end(j);
}

enum kvr_status kvr_cmd_plot(int argc, char **argv)
{
    struct plot_args a = {0};
    enum kvr_status st;
    if (kvr_opt_start(&plot_spec, argc, argv, &a, NULL, &st)) return st;
    if ((st = kvr_plot_check_gnuplot(a.gnuplot))) return st;
    struct kvr_store *store = NULL; /* opened (and so checked) before anything is created */
    if (a.db && (st = kvr_store_open(a.db, KVR_STORE_READ, &store))) return st;
    char data[4096];
    if ((st = kvr_plot_data_dir(a.out, data, sizeof data))) {
        kvr_store_close(store);
        return st;
    }
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    if (a.json) kvr_json_array_begin(&j);
    for (int i = 0; i < kvr_plot_count() && !st; i++) {
        const struct kvr_plot_figure *f = kvr_plot_at(i);
        if (strcmp(a.name, "all") && strcmp(a.name, f->name)) continue;
        size_t rows = 0;
        st = kvr_plot_export(store, f, data, &rows);
        if (!st && rows == 0)
            st = kvr_error(KVR_ERR_INPUT, "%s: no data for %s (run: kvr sweep %s)", a.db, f->name,
                           f->sweep);
        if (!st) st = kvr_plot_render(a.gnuplot, a.scripts, a.out, f->name);
        if (!st) report_figure(&j, &a, f, rows);
    }
    if (a.json && !st) kvr_json_array_end(&j), kvr_json_finish(&j);
    kvr_store_close(store);
    return st;
}
