/* The figures drawn from committed measurements instead of the sweeps' database (fig14): each
 * measured TTFT beside the simulator's prediction of the same plan on the links its run
 * emulated (the validation engine, kvr_validate.c), one panel (file) per model, rank count and
 * links, one block per series, and a last block of the same model's single-GPU measurements on
 * the same machine (the reference every panel shares). A row holds what `kvr sim` needs to
 * predict it again (scheme,
 * partition, links), so tests/test_figures.sh checks both columns against their sources. */
#include "kvr_plot.h"

#include <stdio.h>
#include <string.h>

#include "kvr_datadir.h"
#include "kvr_out.h"
#include "kvr_scheme.h"
#include "kvr_validate.h"

#define MAX_KEYS 64

/* The profile that predicts each figure's measurements (relative to the data directory). */
static const struct {
    const char *figure, *machine;
} profiles[] = {
    {"fig14", "data/machines/h100x4-nccl.ini"},
};

/* A series' label as the figures spell it: a scheme's label (TSP), or a source's (KVR-S). */
static const char *figure_label(const char *series)
{
    const struct kvr_scheme_desc *d = kvr_scheme_find(series);
    return d ? d->label : series;
}

/* The plain schemes' rows (a hybrid layout's, tp > 1, are no point of these panels: their
 * series would mix layouts of one p). */
static bool in_panel(const struct kvr_measurement_row *m, const char *model, int p,
                     const char *links)
{
    return !strcmp(m->model, model) && m->p == p && m->tp <= 1 &&
           !strcmp(kvr_validate_links(m), links);
}

static void write_row(FILE *f, const char *label, const struct kvr_validate_point *x)
{
    const struct kvr_measurement_row *m = x->m;
    fprintf(f, "%s\t%llu\t%.9g\t%.9g\t%s\t%s\t", label, (unsigned long long)m->ctx_tokens,
            m->ttft_median_s, x->predicted_s, m->scheme, m->method);
    for (int r = 0; r < (m->tp > 1 ? m->p / m->tp : m->p); r++) /* a chunk per stage */
        fprintf(f, "%s%llu", r ? "," : "", (unsigned long long)m->tokens[r]);
    fprintf(f, "\t%s\n", m->link_settings);
}

/* Which measurements a block holds: a series of one panel, or (series NULL) the model's
 * single-GPU runs. */
struct block_sel {
    const char *model, *links, *series;
    int p;
};

static bool in_block(const struct kvr_measurement_row *m, const struct block_sel *s)
{
    if (!s->series) return !strcmp(m->model, s->model);
    char label[64];
    kvr_validate_series_label(m, label, sizeof label);
    return in_panel(m, s->model, s->p, s->links) && !strcmp(label, s->series);
}

/* One block: the selected points, contexts ascending, under a header naming it (sep before
 * the header); false when none is selected. */
static bool write_block(FILE *f, const struct kvr_validate_set *v, const struct block_sel *s,
                        const char *name, const char *sep, size_t *rows)
{
    bool any = false;
    for (uint64_t last = 0;;) {
        const struct kvr_validate_point *next = NULL;
        for (size_t i = 0; i < v->n; i++) {
            const struct kvr_measurement_row *m = v->pts[i].m;
            if (m->ctx_tokens > last && (!next || m->ctx_tokens < next->m->ctx_tokens) &&
                in_block(m, s))
                next = &v->pts[i];
        }
        if (!next) return any;
        if (!any)
            fprintf(f,
                    "%s%s\tctx_tokens\tmeasured_s\tpredicted_s\tscheme\tmethod\tpartition"
                    "\tlinks\n",
                    sep, name);
        any = true;
        write_row(f, name, next);
        last = next->m->ctx_tokens, ++*rows;
    }
}

/* One panel: a block per series present (the figures' series order), then the model's
 * single-GPU block (one, when there is one: the reference every panel shares). */
static void write_panel(FILE *f, const struct kvr_validate_set *v,
                        const struct kvr_validate_set *one, const char *model, int p,
                        const char *links, size_t *rows)
{
    char order[16][32];
    int n_order = kvr_validate_series_order(order, 16), blocks = 0;
    for (int o = 0; o < n_order; o++) {
        struct block_sel s = {.model = model, .links = links, .series = order[o], .p = p};
        blocks += write_block(f, v, &s, figure_label(order[o]), blocks ? "\n\n" : "", rows);
    }
    if (one) write_block(f, one, &(struct block_sel){.model = model}, "single", "\n\n", rows);
}

static int add_key(const char **keys, int n, const char *k)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i], k)) return n;
    if (n < MAX_KEYS) keys[n++] = k;
    return n;
}

/* The panels in order: models as they first appear, p ascending, full-speed links first. */
static enum kvr_status write_panels(const struct kvr_plot_figure *f, const char *datadir,
                                    const struct kvr_validate_set *v,
                                    const struct kvr_validate_set *one, FILE *list, size_t *rows)
{
    const char *models[MAX_KEYS], *links[MAX_KEYS] = {"full-speed"};
    int n_models = 0, n_links = 1, max_p = 0, k = 0;
    for (size_t i = 0; i < v->n; i++) {
        n_models = add_key(models, n_models, v->pts[i].m->model);
        n_links = add_key(links, n_links, kvr_validate_links(v->pts[i].m));
        max_p = v->pts[i].m->p > max_p ? v->pts[i].m->p : max_p;
    }
    enum kvr_status st = KVR_OK;
    for (int a = 0; a < n_models && !st; a++)
        for (int p = 2; p <= max_p && !st; p++)
            for (int l = 0; l < n_links && !st; l++) {
                bool any = false;
                for (size_t i = 0; i < v->n && !any; i++)
                    any = in_panel(v->pts[i].m, models[a], p, links[l]);
                if (!any) continue;
                char name[64], path[4200];
                snprintf(name, sizeof name, "%s-%d.tsv", f->name, k++);
                snprintf(path, sizeof path, "%s/%s", datadir, name);
                struct kvr_out o;
                if ((st = kvr_out_open_own(&o, "plot data", path))) break;
                write_panel(o.f, v, one, models[a], p, links[l], rows);
                fprintf(list, "%s\t%s,p=%d,%s\n", name, models[a], p, links[l]);
                st = kvr_out_commit(&o);
            }
    return st;
}

enum kvr_status kvr_plot_export_measured(const struct kvr_plot_figure *f, const char *datadir,
                                         size_t *rows)
{
    char db[4200], machine[4200], path[4200];
    const char *profile = NULL;
    for (size_t i = 0; i < sizeof profiles / sizeof *profiles; i++)
        if (!strcmp(profiles[i].figure, f->name)) profile = profiles[i].machine;
    if (!profile) return kvr_error(KVR_ERR_INPUT, "%s: no profile for its measurements", f->name);
    struct kvr_validate_set v, one = {0};
    *rows = 0;
    enum kvr_status st = kvr_datadir_default("its measurements", f->sweep, db, sizeof db);
    if (!st) st = kvr_datadir_default("its profile", profile, machine, sizeof machine);
    if (!st) st = kvr_validate_load(db, machine, true, &v);
    if (st) return kvr_error_prefix(st, "%s: ", f->name);
    bool singles = false; /* the same machine's single-GPU runs, when the database has some */
    for (size_t i = 0; i < v.n_rows; i++) singles = singles || v.rows[i].p == 1;
    if (singles && (st = kvr_validate_load(db, machine, false, &one))) {
        kvr_validate_free(&v);
        return kvr_error_prefix(st, "%s: ", f->name);
    }
    snprintf(path, sizeof path, "%s/%s.list", datadir, f->name);
    struct kvr_out lo;
    if (!(st = kvr_out_open_own(&lo, "plot list", path))) {
        st = write_panels(f, datadir, &v, singles ? &one : NULL, lo.f, rows);
        if (st)
            kvr_out_abort(&lo);
        else
            st = kvr_out_commit(&lo);
    }
    kvr_validate_free(&v), kvr_validate_free(&one);
    return st;
}
