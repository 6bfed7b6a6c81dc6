/* kvr plot: each figure's data from its plotting view (DIR/data/NAME-K.tsv: one file per panel,
 * one block per series, a .list manifest of panels), then its gnuplot script
 * (plots/NAME.gp with the shared plots/style.gp), as PNG and SVG in DIR. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvr_cli.h"
#include "kvr_datadir.h"
#include "kvr_plot.h"
#include "kvr_store.h"

static const char plot_help[] =
    "usage: kvr plot NAME|all --db FILE --out DIR [options]\n"
    "\n"
    "Exports each figure's data from the database's views and renders it with gnuplot as\n"
    "DIR/NAME.png and DIR/NAME.svg (data in DIR/data). NAME: fig1 ... fig9c, or all.\n"
    "\n"
    "  -d, --db FILE        database filled by kvr sweep               (required)\n"
    "  -o, --out DIR        existing output folder                     (required)\n"
    "      --scripts DIR    gnuplot scripts             (default: plots/ in the data directory,\n"
    "                       $KVR_DATADIR or PREFIX/share/kvrun)\n"
    "      --gnuplot PROG   gnuplot program                            (default gnuplot)\n"
    "  -h, --help           this help\n";

struct plot_args {
    const char *name, *db, *out, *scripts, *gnuplot;
    bool help;
};

enum { OPT_SCRIPTS = 300, OPT_GNUPLOT };

static enum kvr_status parse_args(int argc, char **argv, struct plot_args *a)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"scripts", required_argument, NULL, OPT_SCRIPTS},
                                         {"gnuplot", required_argument, NULL, OPT_GNUPLOT},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *a = (struct plot_args){.gnuplot = "gnuplot"};
    int c;
    kvr_cli_opt_reset();
    while ((c = kvr_cli_getopt(argc, argv, "d:o:h", opts)) != -1) {
        if (c == '?') return KVR_ERR_USAGE;
        if (c == 'h') a->help = true;
        if (c == 'd') a->db = optarg;
        if (c == 'o') a->out = optarg;
        if (c == OPT_SCRIPTS) a->scripts = optarg;
        if (c == OPT_GNUPLOT) a->gnuplot = optarg;
    }
    if (a->help) return KVR_OK;
    if (optind + 1 != argc)
        return kvr_error(KVR_ERR_USAGE, "plot: expected one figure name or all");
    a->name = argv[optind];
    if (!a->db || !a->out) return kvr_error(KVR_ERR_USAGE, "plot: --db and --out are required");
    struct stat sb;
    if (stat(a->out, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return kvr_error(KVR_ERR_IO, "--out: '%s' is not an existing directory", a->out);
    if (strcmp(a->name, "all") && !kvr_plot_figure(a->name))
        return kvr_error(KVR_ERR_INPUT, "plot: unknown figure '%s' (see kvr plot --help)", a->name);
    static char scripts[4200], style[4300];
    enum kvr_status st = KVR_OK;
    if (!a->scripts && !(st = kvr_datadir_path("plots", scripts, sizeof scripts)))
        a->scripts = scripts;
    snprintf(style, sizeof style, "%s/style.gp", a->scripts ? a->scripts : "");
    if (!st && access(style, R_OK) != 0)
        st = kvr_error(KVR_ERR_IO, "--scripts: no gnuplot scripts in '%s' (%s: %s)", a->scripts,
                       style, strerror(errno));
    return st;
}

enum kvr_status kvr_cmd_plot(int argc, char **argv)
{
    struct plot_args a;
    enum kvr_status st = parse_args(argc, argv, &a);
    if (st || a.help) return st ? st : (fputs(plot_help, stdout), KVR_OK);
    if ((st = kvr_plot_check_gnuplot(a.gnuplot))) return st;
    char data[4096];
    snprintf(data, sizeof data, "%s/data", a.out);
    if (mkdir(data, 0755) != 0 && access(data, W_OK) != 0)
        return kvr_error(KVR_ERR_IO, "--out: cannot create '%s'", data);
    struct kvr_store *store = NULL;
    if ((st = kvr_store_open(a.db, KVR_STORE_READ, &store))) return st;
    int n = 0;
    for (int i = 0; i < kvr_plot_count() && !st; i++) {
        const struct kvr_plot_figure *f = kvr_plot_at(i);
        if (strcmp(a.name, "all") && strcmp(a.name, f->name)) continue;
        size_t rows = 0;
        st = kvr_plot_export(store, f, data, &rows);
        if (!st && rows == 0)
            st = kvr_error(KVR_ERR_INPUT, "%s: no data for %s (run: kvr sweep %s)", a.db, f->name,
                           f->sweep);
        if (!st) st = kvr_plot_render(a.gnuplot, a.scripts, a.out, f->name);
        if (!st)
            printf("%-6s %-55s %5zu rows -> %s/%s.png, .svg\n", f->name, f->title, rows, a.out,
                   f->name),
                n++;
    }
    kvr_store_close(store);
    return st;
}
