#include "kvr_plot.h"

#include "kvr_out.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvr_file.h"
#include "kvr_sim.h"
#include "kvr_units.h"

#define SWEEPS "experiments/sweeps/"

/* What the figures read besides the store's sweep_done view: queries over it. ?2 to ?6 are
 * the series labels of KVR-S, KVR-P, TSP, TSP-causal and TSP-paper, from the scheme table (the
 * store keeps no labels). */
/* A point's key: the same sweep, model, machine, links, noise, seed, p and context. */
#define POINT_KEY(t)                                                                               \
    "(" t ".sweep, " t ".model, " t ".machine, " t ".link_Bps, " t ".link_spec, " t                \
    ".noise_spec, " t ".seed, " t ".p, " t ".ctx_tokens)"
/* Every point of series qa (alias a) beside the same point of series qb (alias b). */
#define PAIRED(a, b, qa, qb)                                                                       \
    " FROM sweep_done " a " JOIN sweep_done " b                                                    \
    " ON " POINT_KEY(b) " IS " POINT_KEY(a) " WHERE " a ".series = " qa " AND " b ".series = " qb

static const struct {
    const char *name, *sql;
} sources[] = {
    {"plot_kvrp_gap",
     "(SELECT s.figure, s.model, s.machine, s.link_Bps, s.p, s.ctx_tokens,"
     " 100.0 * (pr.ttft_s - s.ttft_s) / s.ttft_s AS gap_pct,"
     " s.ttft_s AS kvrs_ttft_s, pr.ttft_s AS kvrp_ttft_s" PAIRED("s", "pr", "?2", "?3") ")"},
    {"plot_noise",
     "(SELECT figure, model, machine, p, ctx_tokens, series, series_rank, noise_share,"
     "        avg(ttft_s) AS ttft_mean_s, min(ttft_s) AS ttft_min_s, max(ttft_s) AS ttft_max_s,"
     "        avg(ttft_p95_s) AS ttft_p95_mean_s, count(*) AS seeds"
     " FROM sweep_done GROUP BY figure, model, machine, p, ctx_tokens, series, noise_share)"},
    {"plot_speedup",
     "(SELECT k.figure, k.model, k.machine, k.link_Bps, k.p, k.ctx_tokens,"
     "        t.ttft_s / k.ttft_s AS speedup"
     " FROM sweep_done k JOIN sweep_done t ON t.sweep = k.sweep AND t.model = k.model"
     "  AND t.machine = k.machine AND t.link_Bps IS k.link_Bps AND t.p = k.p"
     "  AND t.ctx_tokens = k.ctx_tokens AND t.link_spec IS k.link_spec"
     "  AND t.noise_spec IS k.noise_spec AND t.seed IS k.seed"
     " WHERE k.series = ?2 AND t.series = ?4)"},
    {"plot_breakdown", /* fig5: the TTFT of the rank that finishes last cut into compute, the
                          communication it is exposed to and waiting (they add up to the TTFT),
                          and apart, the communication that ran under its compute: its link
                          time beyond the exposed and waiting time, compute + comm - TTFT */
     "(SELECT figure, link_Bps, series, series_rank, compute_s, comm_s, wait_s, ttft_s,"
     "  max(0.0, ttft_s - compute_s - wait_s) AS exposed_s,"
     "  max(0.0, compute_s + comm_s - ttft_s) AS overlapped_s FROM sweep_done)"},
    {"plot_scaling_used", /* fig3: the GPUs each plan really uses: chunks above 2% of ctx */
     "(WITH RECURSIVE s(id, ctx, rest, used) AS ("
     "  SELECT id, ctx_tokens, partition_tokens || ';', 0 FROM sweep_done"
     "  UNION ALL SELECT id, ctx, substr(rest, instr(rest, ';') + 1), used +"
     "  (CAST(substr(rest, 1, instr(rest, ';') - 1) AS INTEGER) > 0.02 * ctx) FROM s"
     "  WHERE rest <> '')"
     " SELECT d.figure, d.machine, d.series, d.series_rank, d.p, d.ttft_s, d.lower_bound_s,"
     "  (SELECT max(used) FROM s WHERE s.id = d.id) AS gpus_used FROM sweep_done d)"},
    {"plot_partition_shares", /* fig10: each KVR-S partition ("c0;c1;...") cut into its ranks */
     "(WITH RECURSIVE s(figure, model, machine, p, ctx_tokens, rank, tok, rest, cum) AS ("
     "  SELECT figure, model, machine, p, ctx_tokens, -1, 0, partition_tokens || ';', 0"
     "  FROM sweep_done WHERE series = ?2"
     "  UNION ALL SELECT figure, model, machine, p, ctx_tokens, rank + 1,"
     "  CAST(substr(rest, 1, instr(rest, ';') - 1) AS INTEGER), substr(rest, instr(rest, ';') + 1),"
     "  cum + CAST(substr(rest, 1, instr(rest, ';') - 1) AS INTEGER) FROM s WHERE rest <> '')"
     " SELECT figure, model, machine, p, rank, ctx_tokens, 1.0 * tok / ctx_tokens AS share,"
     "  1.0 * (cum - tok) / ctx_tokens AS share_lo, 1.0 * cum / ctx_tokens AS share_hi"
     " FROM s WHERE rank >= 0)"},
    {"plot_speedup_pairs", /* fig11: each baseline's TTFT over each KVR plan's at one point; */
     /* pair_rank orders the bars: KVR-S before KVR-P; TSP, TSP-causal, TSP-paper */
     "(SELECT k.figure, k.model, k.machine, k.p, k.ctx_tokens, k.series || '/' || t.series AS pair,"
     "  t.ttft_s / k.ttft_s AS speedup, (CASE k.series WHEN ?2 THEN 0 ELSE 3 END) +"
     "  (CASE t.series WHEN ?4 THEN 0 WHEN ?5 THEN 1 ELSE 2 END) AS pair_rank"
     " FROM sweep_done k JOIN sweep_done t ON t.sweep = k.sweep AND t.model = k.model"
     "  AND t.machine = k.machine AND t.link_Bps IS k.link_Bps AND t.p = k.p"
     "  AND t.ctx_tokens = k.ctx_tokens AND t.link_spec IS k.link_spec"
     "  AND t.noise_spec IS k.noise_spec AND t.seed IS k.seed"
     " WHERE k.series IN (?2, ?3) AND t.series IN (?4, ?5, ?6))"},
    {"plot_best_tp", /* fig9a, fig13: each series at its fastest t among its points that fit
                        (sweep_done holds no infeasible point; the bare tp column is the min
                        row's: SQLite's min() picks it) */
     "(SELECT figure, model, machine, p, series, series_rank, ctx_tokens, min(ttft_s) AS ttft_s,"
     "  tp FROM sweep_done GROUP BY figure, model, machine, p, series, series_rank, ctx_tokens)"},
};

static const char *source_sql(const char *name)
{
    for (size_t i = 0; i < sizeof sources / sizeof *sources; i++)
        if (!strcmp(sources[i].name, name)) return sources[i].sql;
    return name; /* a view of the store */
}

static const struct kvr_plot_figure figures[] = {
    {"fig1", "TTFT vs context, Llama-7B", SWEEPS "fig1.ini", "sweep_done", "machine, p", "series",
     "series_rank, ctx_tokens, ttft_s", "series_rank, ctx_tokens", false},
    {"fig2", "TTFT vs context, Falcon-7B", SWEEPS "fig2.ini", "sweep_done", "machine, p", "series",
     "series_rank, ctx_tokens, ttft_s", "series_rank, ctx_tokens", false},
    {"fig3", "scaling at 12k: TTFT vs p, with the lower bound", SWEEPS "fig3.ini",
     "plot_scaling_used", "machine", "series", "series_rank, p, ttft_s, lower_bound_s, gpus_used",
     "series_rank, p", false},
    {"fig4", "load balance: KVR-E vs KVR-S per-rank timeline", SWEEPS "fig4.ini", "sweep_done", "",
     "series", "model, machine, link_Bps, p, ctx_tokens, partition_tokens", "series_rank", true},
    {"fig5", "TTFT breakdown: compute, communication, waiting", SWEEPS "fig5.ini", "plot_breakdown",
     "link_Bps", "", "series, compute_s, exposed_s, wait_s, ttft_s, overlapped_s, comm_s",
     "series_rank", false},
    {"fig6", "KVR-P vs KVR-S: TTFT gap", SWEEPS "fig6.ini", "plot_kvrp_gap", "machine", "p",
     "ctx_tokens, gap_pct", "p, ctx_tokens", false},
    {"fig7", "noisy network: TTFT vs competing traffic", SWEEPS "fig7.ini", "plot_noise", "",
     "series", "series_rank, noise_share, ttft_mean_s, ttft_min_s, ttft_max_s",
     "series_rank, noise_share", false},
    {"fig8", "one slow link: even split vs re-searched split", SWEEPS "fig8.ini", "sweep_done", "",
     "series", "series_rank, link_from, ttft_s", "series_rank, link_from", false},
    {"fig9a", "GQA, MQA, Llama-2-70B on 8 GPUs: plans that fit, best t", SWEEPS "fig9a.ini",
     "plot_best_tp", "model", "series", "series_rank, ctx_tokens, ttft_s, tp",
     "series_rank, ctx_tokens", false},
    {"fig9b", "two nodes: intra- vs inter-node links", SWEEPS "fig9b.ini", "sweep_done", "machine",
     "series", "series_rank, ctx_tokens, ttft_s", "series_rank, ctx_tokens", false},
    {"fig9c", "KVR-S / TSP speedup over (p, ctx, bandwidth)", SWEEPS "fig9c.ini", "plot_speedup",
     "link_Bps", "", "p, ctx_tokens, speedup", "p, ctx_tokens", false},
    {"fig10", "the lookup table: each rank's share of the context", SWEEPS "fig10.ini",
     "plot_partition_shares", "model, machine, p", "rank", "ctx_tokens, share, share_lo, share_hi",
     "rank, ctx_tokens", false},
    {"fig11", "speedup of KVR-S and KVR-P over the TSP baselines", SWEEPS "fig11.ini",
     "plot_speedup_pairs", "machine", "pair", "pair_rank, model, ctx_tokens, speedup",
     "pair_rank, model, ctx_tokens", false},
    {"fig12", "TTFT against link bandwidth", SWEEPS "fig12.ini", "sweep_done", "p", "series",
     "series_rank, link_Bps, ttft_s", "series_rank, link_Bps", false},
    {"fig13", "Llama-2-70B on 8 and 16 GPUs: TP against layouts, best t", SWEEPS "fig13.ini",
     "plot_best_tp", "machine, p", "series", "series_rank, ctx_tokens, ttft_s, tp",
     "series_rank, ctx_tokens", false},
    {"fig14", "measured on 4xH100 against simulated", "data/measurements/h100x4-multi.sqlite",
     KVR_PLOT_MEASURED, "", "", "", "", false},
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
            snprintf(buf, cap, "bw=%gGB/s", bw / 1e9);
        else
            snprintf(buf, cap, "bw=%gMB/s", bw / 1e6);
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
    FILE *out, *list; /* the open data file (NULL: none yet) and the list */
    struct kvr_out out_w, list_w;
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
    enum kvr_status st = KVR_OK;
    if (x->out && (x->out = NULL, st = kvr_out_commit(&x->out_w))) return st;
    snprintf(name, sizeof name, "%s-%d.tsv", x->f->name, x->n_files++);
    snprintf(path, sizeof path, "%s/%s", x->datadir, name);
    if ((st = kvr_out_open_own(&x->out_w, "plot data", path))) return st;
    x->out = x->out_w.f;
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
 * (rank, start_s, end_s, kind) with kind 0 compute, 1 send, 2 wait, 3 collective; the block's
 * header row ends with the plan's partition. */
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
    fprintf(x->out, "%s%s\trank\tstart_s\tend_s\tkind\t%s\n", x->rows ? "\n\n" : "", v[0],
            v[6]); /* the header ends with the partition ("c0;c1;..."), for the panel's title */
    for (size_t i = 0; i < tl.n; i++, x->rows++)
        fprintf(x->out, "%s\t%d\t%.9g\t%.9g\t%d\n", v[0], events[i].rank, events[i].start_s,
                events[i].end_s, (int)events[i].kind);
    return KVR_OK;
}

/* What a figure does not draw: its points that do not fit in GPU memory, one line per model, p
 * and TP degree (model, p, first and last context, series, most bytes needed, bytes available,
 * points, the TP degree t of the layout: 0 or 1 the whole model on every GPU) in
 * DATADIR/NAME.infeasible (empty when none), for the figure's caption (style.gp: oom_note). */
static enum kvr_status on_infeasible(void *arg, int n, const char *const *v)
{
    FILE *f = arg;
    for (int i = 0; i < n; i++) fprintf(f, "%s%s", i ? "\t" : "", v[i]);
    fputc('\n', f);
    return KVR_OK;
}

static enum kvr_status write_infeasible(struct kvr_store *store, const struct kvr_plot_figure *f,
                                        const char *datadir)
{
    static const char sql[] =
        "SELECT model, p, min(ctx_tokens), max(ctx_tokens), group_concat(DISTINCT series),"
        " max(mem_needed_bytes), max(mem_available_bytes), count(*), tp FROM sweep_point"
        " WHERE figure = ?1 AND state = 'infeasible' GROUP BY model, p, tp ORDER BY model, p, tp";
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.infeasible", datadir, f->name);
    struct kvr_out o;
    enum kvr_status st = kvr_out_open_own(&o, "plot data", path);
    if (st) return st;
    const char *params[] = {f->name};
    st = kvr_store_query_rows(store, sql, params, 1, on_infeasible, o.f);
    if (st) return kvr_out_abort(&o), st;
    return kvr_out_commit(&o);
}

enum kvr_status kvr_plot_export(struct kvr_store *store, const struct kvr_plot_figure *f,
                                const char *datadir, size_t *rows)
{
    if (!strcmp(f->view, KVR_PLOT_MEASURED)) return kvr_plot_export_measured(f, datadir, rows);
    char path[4200], cols[512], order[256];
    snprintf(path, sizeof path, "%s/%s.list", datadir, f->name);
    struct exporter x = {.f = f, .datadir = datadir, .nf = count_cols(f->file_cols)};
    enum kvr_status st = kvr_out_open_own(&x.list_w, "plot list", path);
    if (st) return st;
    x.list = x.list_w.f;
    snprintf(cols, sizeof cols, "%s%s%s%s%s", f->file_cols, *f->file_cols ? ", " : "", f->block_col,
             *f->block_col ? ", " : "", f->cols);
    snprintf(order, sizeof order, "%s%s%s", f->file_cols, *f->file_cols ? ", " : "", f->order);
    char sql[4096], kvrs[32], kvrp[32];
    snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE figure = ?1 ORDER BY %s", cols,
             source_sql(f->view), order);
    kvr_plan_label(KVR_SCHEME_KVR, KVR_PART_SEARCHED, kvrs, sizeof kvrs);
    kvr_plan_label(KVR_SCHEME_KVR, KVR_PART_INTERP, kvrp, sizeof kvrp);
    const char *params[] = {f->name,
                            kvrs,
                            kvrp,
                            kvr_scheme_get(KVR_SCHEME_TSP)->label,
                            kvr_scheme_get(KVR_SCHEME_TSP_CAUSAL)->label,
                            "TSP-paper"};
    int n_params = 1;
    for (int k = 2; k <= 6; k++) {
        char mark[4];
        snprintf(mark, sizeof mark, "?%d", k);
        if (strstr(sql, mark)) n_params = k;
    }
    st = kvr_store_query_rows(store, sql, params, n_params, f->gantt ? on_gantt_row : on_row, &x);
    if (!st) st = write_infeasible(store, f, datadir);
    if (x.out && st) kvr_out_abort(&x.out_w);
    if (x.out && !st) st = kvr_out_commit(&x.out_w);
    if (st)
        kvr_out_abort(&x.list_w);
    else
        st = kvr_out_commit(&x.list_w);
    *rows = x.rows;
    return st;
}

/* gnuplot runs through the shell with its paths quoted: a quote, '$', '`' or '\\' in one would
 * end the quoting (a failed render, or another command run). */
static enum kvr_status shell_safe(const char *what, const char *path)
{
    const char *c = strpbrk(path, "'\"$`\\");
    if (c)
        return kvr_error(KVR_ERR_USAGE, "%s: '%s' holds '%c', which cannot be passed to gnuplot",
                         what, path, *c);
    return KVR_OK;
}

enum kvr_status kvr_plot_check_out(const char *dir)
{
    enum kvr_status st = shell_safe("--out", dir);
    if (st) return st;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return kvr_error(KVR_ERR_IO, "--out: '%s' is not an existing directory", dir);
    return KVR_OK;
}

enum kvr_status kvr_plot_data_dir(const char *dir, char *data, size_t cap)
{
    snprintf(data, cap, "%s/data", dir);
    struct stat sb; /* a link there would send the data files elsewhere (into the scripts) */
    if (lstat(data, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return kvr_error(KVR_ERR_INPUT, "--out: '%s' is %s, not the folder kvr makes for the data",
                         data, S_ISLNK(sb.st_mode) ? "a symlink" : "a file");
    if (mkdir(data, 0755) != 0 && access(data, W_OK) != 0)
        return kvr_error(KVR_ERR_IO, "--out: cannot create '%s'", data);
    return KVR_OK;
}

enum kvr_status kvr_plot_check_gnuplot(const char *prog)
{
    enum kvr_status st = shell_safe("--gnuplot", prog);
    if (st) return st;
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

/* Whether a symlink's regular target holds something other than a picture (PNG, SVG) or
 * nothing: kvr named OUT/NAME.png itself, so a link there to a database or a script is not one
 * the user asked to be replaced. */
static bool links_to_other(const char *to)
{
    struct stat sb;
    char head[256] = "";
    if (stat(to, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0) return false;
    FILE *f = fopen(to, "rb");
    size_t n = f ? fread(head, 1, sizeof head - 1, f) : 0;
    if (f) fclose(f);
    head[n] = 0;
    return memcmp(head, "\x89PNG", 4) && !strstr(head, "<svg") && strncmp(head, "<?xml", 5);
}

/* A whole picture onto OUT/NAME.TERM: renamed over a regular file (or none); a symlink's
 * target, a device or a FIFO gets it through the one writer (kvr_out.h), never replaced; a
 * symlink to a file that is not a picture is refused. */
static enum kvr_status place(const char *from, const char *to)
{
    struct stat sb;
    if (lstat(to, &sb) == 0 && S_ISLNK(sb.st_mode) && links_to_other(to))
        return kvr_error(KVR_ERR_INPUT,
                         "plot: %s links to a file that is not a picture: not replaced", to);
    if (lstat(to, &sb) != 0 || S_ISREG(sb.st_mode)) {
        if (rename(from, to) == 0) return KVR_OK;
        return kvr_error(KVR_ERR_RUNTIME, "plot: cannot replace %s: %s", to, strerror(errno));
    }
    struct kvr_out o;
    enum kvr_status st = kvr_out_open(&o, "plot", to);
    FILE *in = st ? NULL : fopen(from, "rb");
    if (!st && !in) st = kvr_error(KVR_ERR_IO, "plot: cannot read %s: %s", from, strerror(errno));
    char buf[1 << 16];
    for (size_t n; !st && (n = fread(buf, 1, sizeof buf, in)) > 0;) fwrite(buf, 1, n, o.f);
    if (in && ferror(in)) st = kvr_error(KVR_ERR_IO, "plot: cannot read %s", from);
    if (in) fclose(in);
    if (st)
        kvr_out_abort(&o);
    else
        st = kvr_out_commit(&o);
    return st;
}

/* gnuplot writes each picture into a fresh folder beside the data; only a whole picture is
 * renamed over OUT/NAME.png (.svg), so a failed render never leaves a half-written figure. */
enum kvr_status kvr_plot_render(const char *gnuplot, const char *scripts, const char *out,
                                const char *name)
{
    enum kvr_status st = shell_safe("--gnuplot", gnuplot);
    if (!st) st = shell_safe("the gnuplot scripts' folder", scripts);
    if (!st) st = shell_safe("--out", out);
    if (st) return st;
    char tmp[4096], data[4000];
    int dir_slot = 0, lock = -1;
    if ((size_t)snprintf(data, sizeof data, "%s/data", out) >= sizeof data)
        return kvr_error(KVR_ERR_USAGE, "--out: path too long");
    kvr_out_remove_stale_dirs(data, ".render-"); /* the folders of plots killed by SIGKILL */
    for (int tries = 0; lock < 0 && tries < 100; tries++) {
        snprintf(tmp, sizeof tmp, "%s/.render-XXXXXX", data);
        sigset_t saved; /* made and registered as one step: a stopped plot leaves no half picture */
        kvr_cleanup_block(true, &saved);
        bool made = mkdtemp(tmp) != NULL;
        int e = errno;
        dir_slot = made ? kvr_cleanup_add(tmp, true) : 0;
        kvr_cleanup_block(false, &saved);
        if (!made)
            return kvr_error(KVR_ERR_RUNTIME, "plot: cannot make a folder in %s: %s", data,
                             strerror(e));
        if ((lock = kvr_out_lock_dir(tmp)) < 0) { /* another plot's scan took it */
            rmdir(tmp);
            kvr_cleanup_drop(dir_slot);
        }
    }
    if (lock < 0) return kvr_error(KVR_ERR_RUNTIME, "plot: folders in %s keep vanishing", data);
    for (int t = 0; t < 2 && !st; t++) {
        char cmd[8192], from[4200], to[4200];
        const char *term = t ? "svg" : "png";
        snprintf(cmd, sizeof cmd,
                 "'%s' -e \"datadir='%s/data'; outdir='%s'; name='%s'; term='%s'\" '%s/style.gp' "
                 "'%s/%s.gp' 2>'%s/data/%s.log'",
                 gnuplot, out, tmp, name, term, scripts, scripts, name, out, name);
        snprintf(from, sizeof from, "%s/%s.%s", tmp, name, term);
        snprintf(to, sizeof to, "%s/%s.%s", out, name, term);
        int file_slot = kvr_cleanup_add(from, false);
        int rc = system(cmd);
        if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
            st = kvr_error(KVR_ERR_RUNTIME, "gnuplot failed on %s/%s.gp (see %s/data/%s.log)",
                           scripts, name, out, name);
        else
            st = place(from, to);
        unlink(from);
        kvr_cleanup_drop(file_slot);
    }
    rmdir(tmp);
    close(lock);
    kvr_cleanup_drop(dir_slot);
    return st;
}
