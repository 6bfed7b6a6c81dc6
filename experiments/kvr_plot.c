#include "kvr_plot.h"

#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_file.h"
#include "kvr_sim.h"
#include "kvr_units.h"

#define SWEEPS "experiments/sweeps/"

static const struct kvr_plot_figure figures[] = {
    {"fig1", "TTFT vs context, Llama-7B", SWEEPS "fig1.ini", "plot_ttft_ctx", "machine, p",
     "series", "series_rank, ctx_tokens, ttft_s", "series_rank, ctx_tokens", false},
    {"fig2", "TTFT vs context, Falcon-7B", SWEEPS "fig2.ini", "plot_ttft_ctx", "machine, p",
     "series", "series_rank, ctx_tokens, ttft_s", "series_rank, ctx_tokens", false},
    {"fig3", "scaling at 12k: TTFT vs p, with the lower bound", SWEEPS "fig3.ini", "plot_scaling",
     "machine", "series", "series_rank, p, ttft_s, lower_bound_s, fewer_p", "series_rank, p",
     false},
    {"fig4", "load balance: KVR-E vs KVR-S per-rank timeline", SWEEPS "fig4.ini", "sweep_done", "",
     "series", "model, machine, link_Bps, p, ctx_tokens, partition_tokens", "series_rank", true},
    {"fig5", "TTFT breakdown: compute, communication, waiting", SWEEPS "fig5.ini", "plot_breakdown",
     "link_Bps", "", "series, compute_s, comm_s, wait_s, ttft_s", "series_rank", false},
    {"fig6", "KVR-P vs KVR-S: TTFT gap", SWEEPS "fig6.ini", "plot_kvrp_gap", "machine", "p",
     "ctx_tokens, gap_pct", "p, ctx_tokens", false},
    {"fig7", "noisy network: TTFT vs competing traffic", SWEEPS "fig7.ini", "plot_noise", "",
     "series", "series_rank, noise_share, ttft_mean_s, ttft_min_s, ttft_max_s",
     "series_rank, noise_share", false},
    {"fig8", "one slow link: even split vs re-searched split", SWEEPS "fig8.ini", "plot_slow_link",
     "", "series", "series_rank, link_from, ttft_s", "series_rank, link_from", false},
    {"fig9a", "GQA, MQA and Llama-2-70B on 8 GPUs", SWEEPS "fig9a.ini", "plot_ttft_ctx", "model",
     "series", "series_rank, ctx_tokens, ttft_s", "series_rank, ctx_tokens", false},
    {"fig9b", "two nodes: intra- vs inter-node links", SWEEPS "fig9b.ini", "plot_ttft_ctx",
     "machine", "series", "series_rank, ctx_tokens, ttft_s", "series_rank, ctx_tokens", false},
    {"fig9c", "KVR-S / TSP speedup over (p, ctx, bandwidth)", SWEEPS "fig9c.ini", "plot_speedup",
     "link_Bps", "", "p, ctx_tokens, speedup", "p, ctx_tokens", false},
};

int kvr_plot_count(void)
{
    return (int)(sizeof figures / sizeof figures[0]);
}

const struct kvr_plot_figure *kvr_plot_at(int i)
{
    return i >= 0 && i < kvr_plot_count() ? &figures[i] : NULL;
}

const struct kvr_plot_figure *kvr_plot_figure(const char *name)
{
    for (int i = 0; i < kvr_plot_count(); i++)
        if (!strcmp(figures[i].name, name)) return &figures[i];
    return NULL;
}

static int count_cols(const char *cols)
{
    int n = *cols ? 1 : 0;
    for (const char *c = cols; *c; c++) n += *c == ',';
    return n;
}

/* A panel or series label without spaces (gnuplot's word() splits on them). */
static void label(const char *col, const char *v, char *buf, size_t cap)
{
    while (*col == ' ') col++;
    if (!strncmp(col, "link_Bps", 8)) {
        double bw = atof(v);
        if (!*v)
            snprintf(buf, cap, "profile-bw");
        else if (bw >= 1e9)
            snprintf(buf, cap, "%gGB/s", bw / 1e9);
        else
            snprintf(buf, cap, "%gMB/s", bw / 1e6);
    } else if (!strncmp(col, "p", 1) && (col[1] == 0 || col[1] == ',')) {
        snprintf(buf, cap, "p=%s", v);
    } else if (!strncmp(col, "machine", 7) || !strncmp(col, "model", 5)) {
        kvr_file_stem(v, buf, cap);
    } else {
        snprintf(buf, cap, "%s", v);
    }
}

struct exporter {
    const struct kvr_plot_figure *f;
    const char *datadir;
    int nf; /* file columns */
    char file_key[512], block[128];
    FILE *out, *list;
    int n_files;
    size_t rows;
};

static const char *nth_col(const char *cols, int k, char *buf, size_t cap)
{
    const char *c = cols;
    for (int i = 0; i < k && c; i++) c = strchr(c, ',') ? strchr(c, ',') + 1 : NULL;
    while (c && *c == ' ') c++;
    size_t len = c ? strcspn(c, ",") : 0;
    snprintf(buf, cap, "%.*s", (int)len, c ? c : "");
    return buf;
}

static enum kvr_status next_file(struct exporter *x, const char *const *v)
{
    char title[256] = "", part[128], col[64], name[64], path[4200];
    for (int i = 0; i < x->nf; i++) {
        label(nth_col(x->f->file_cols, i, col, sizeof col), v[i], part, sizeof part);
        snprintf(title + strlen(title), sizeof title - strlen(title), "%s%s", i ? "," : "", part);
    }
    if (x->out && fclose(x->out) != 0) return kvr_error(KVR_ERR_IO, "plot: error writing data");
    snprintf(name, sizeof name, "%s-%d.tsv", x->f->name, x->n_files++);
    snprintf(path, sizeof path, "%s/%s", x->datadir, name);
    x->out = fopen(path, "w");
    if (!x->out) return kvr_error(KVR_ERR_IO, "plot: cannot write '%s': %s", path, strerror(errno));
    fprintf(x->list, "%s\t%s\n", name, *title ? title : x->f->name);
    x->block[0] = 0;
    return KVR_OK;
}

static enum kvr_status on_row(void *arg, int n, const char *const *v)
{
    struct exporter *x = arg;
    char key[512] = "", blk[128], col[64];
    for (int i = 0; i < x->nf; i++)
        snprintf(key + strlen(key), sizeof key - strlen(key), "%s\x1f", v[i]);
    if (!x->out || strcmp(key, x->file_key)) {
        enum kvr_status st = next_file(x, v);
        if (st) return st;
        snprintf(x->file_key, sizeof x->file_key, "%s", key);
    }
    const char *b = *x->f->block_col ? v[x->nf] : "all";
    label(x->f->block_col, b, blk, sizeof blk);
    int first = x->nf + (*x->f->block_col ? 1 : 0);
    if (!x->block[0] || strcmp(blk, x->block)) {
        fprintf(x->out, "%s%s", x->block[0] ? "\n\n" : "", blk);
        for (int i = first; i < n; i++)
            fprintf(x->out, "\t%s", nth_col(x->f->cols, i - first, col, sizeof col));
        fputc('\n', x->out);
        snprintf(x->block, sizeof x->block, "%s", blk);
    }
    fputs(blk, x->out);
    for (int i = first; i < n; i++) fprintf(x->out, "\t%s", *v[i] ? v[i] : "NaN");
    fputc('\n', x->out);
    x->rows++;
    return KVR_OK;
}

/* fig4: re-simulates each stored plan with a timeline; one block per series of
 * (rank, start_s, end_s, kind) with kind 0 compute, 1 send, 2 wait, 3 collective. */
static enum kvr_status gantt_events(const char *const *v, struct kvr_timeline *tl)
{
    struct kvr_model m;
    static struct kvr_machine h;
    struct kvr_plan plan = {
        .scheme = KVR_SCHEME_KVR, .p = atoi(v[4]), .ctx = strtoull(v[5], NULL, 10)};
    char gpus[16], parts[KVR_MAX_GPUS * 21];
    snprintf(gpus, sizeof gpus, "%d", plan.p);
    snprintf(parts, sizeof parts, "%s", v[6]);
    for (char *c = parts; *c; c++) *c = *c == ';' ? ',' : *c;
    enum kvr_status st = kvr_model_resolve(v[1], &m);
    if (!st) st = kvr_machine_resolve(v[2], &h);
    if (!st) st = kvr_machine_set_gpus(&h, gpus);
    for (int i = 0; !st && *v[3] && i < h.n_gpus; i++)
        for (int j = 0; j < h.n_gpus; j++) h.link_Bps[i][j] = atof(v[3]);
    if (!st) st = kvr_plan_parse_partition(&plan, parts);
    struct kvr_sim *sim = NULL;
    struct kvr_sim_result res;
    if (!st) st = kvr_sim_open(&m, &h, &sim);
    if (!st) st = kvr_sim_run(sim, &plan, &res, tl);
    kvr_sim_free(sim);
    return st;
}

static enum kvr_status on_gantt_row(void *arg, int n, const char *const *v)
{
    struct exporter *x = arg;
    (void)n;
    static struct kvr_event events[200000];
    struct kvr_timeline tl = {.events = events, .cap = sizeof events / sizeof events[0]};
    enum kvr_status st = x->out ? KVR_OK : next_file(x, v);
    if (!st) st = gantt_events(v, &tl);
    if (st) return kvr_error_prefix(st, "fig4: ");
    fprintf(x->out, "%s%s\trank\tstart_s\tend_s\tkind\n", x->rows ? "\n\n" : "", v[0]);
    for (size_t i = 0; i < tl.n; i++, x->rows++)
        fprintf(x->out, "%s\t%d\t%.9g\t%.9g\t%d\n", v[0], events[i].rank, events[i].start_s,
                events[i].end_s, (int)events[i].kind);
    return KVR_OK;
}

enum kvr_status kvr_plot_export(struct kvr_store *store, const struct kvr_plot_figure *f,
                                const char *datadir, size_t *rows)
{
    char path[4200], cols[512], order[256];
    snprintf(path, sizeof path, "%s/%s.list", datadir, f->name);
    struct exporter x = {.f = f, .datadir = datadir, .nf = count_cols(f->file_cols)};
    x.list = fopen(path, "w");
    if (!x.list) return kvr_error(KVR_ERR_IO, "plot: cannot write '%s': %s", path, strerror(errno));
    snprintf(cols, sizeof cols, "%s%s%s%s%s", f->file_cols, *f->file_cols ? ", " : "", f->block_col,
             *f->block_col ? ", " : "", f->cols);
    snprintf(order, sizeof order, "%s%s%s", f->file_cols, *f->file_cols ? ", " : "", f->order);
    enum kvr_status st = kvr_store_query_view(store, f->view, cols, order, f->name,
                                              f->gantt ? on_gantt_row : on_row, &x);
    if (x.out && fclose(x.out) != 0 && !st) st = kvr_error(KVR_ERR_IO, "plot: error writing data");
    if (fclose(x.list) != 0 && !st) st = kvr_error(KVR_ERR_IO, "plot: error writing '%s'", path);
    *rows = x.rows;
    return st;
}

enum kvr_status kvr_plot_check_gnuplot(const char *prog)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' --version >/dev/null 2>&1", prog);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
        return kvr_error(KVR_ERR_INPUT,
                         "gnuplot: cannot run '%s' (install gnuplot, e.g. "
                         "apt-get install gnuplot-nox, or pass --gnuplot PROG)",
                         prog);
    return KVR_OK;
}

enum kvr_status kvr_plot_render(const char *gnuplot, const char *scripts, const char *out,
                                const char *name)
{
    for (int t = 0; t < 2; t++) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "'%s' -e \"datadir='%s/data'; outdir='%s'; name='%s'; term='%s'\" '%s/style.gp' "
                 "'%s/%s.gp' 2>'%s/data/%s.log'",
                 gnuplot, out, out, name, t ? "svg" : "png", scripts, scripts, name, out, name);
        int rc = system(cmd);
        if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
            return kvr_error(KVR_ERR_RUNTIME, "gnuplot failed on %s/%s.gp (see %s/data/%s.log)",
                             scripts, name, out, name);
    }
    return KVR_OK;
}
