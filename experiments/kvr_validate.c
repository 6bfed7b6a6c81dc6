/* The validation engine behind kvr validate: every stored measurement's plan predicted by the
 * simulator on the links it ran on, the errors, MAPE by links and by series, and the figures'
 * data (validate-1.tsv, the paper-style panels). */
#include "kvr_validate.h"

#include "kvr_datadir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvr_calibrate.h"
#include "kvr_cli.h"
#include "kvr_config.h"
#include "kvr_machine_args.h"
#include "kvr_measure.h"
#include "kvr_out.h"
#include "kvr_scheme.h"

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

/* The simulator's TTFT for a measured plan (full: a one-rank run whose executor ran its last
 * layer on every row). */
static enum kvr_status predict(const struct kvr_measurement_row *x, const char *base, bool full,
                               double *ttft)
{
    struct kvr_model m;
    enum kvr_status st = kvr_model_resolve(x->model, &m);
    if (st) { /* a model from a profile file: the project's own, by name */
        char rel[256], path[4200];
        snprintf(rel, sizeof rel, "data/models/%s.ini", x->model);
        if (!kvr_datadir_path(rel, path, sizeof path) && access(path, R_OK) == 0)
            st = kvr_model_resolve(path, &m);
    }
    if (st) return kvr_error_prefix(st, "measurement of model '%s': ", x->model);
    static struct kvr_machine h; /* large: not on the stack */
    if ((st = row_machine(x, base, &h))) return st;
    /* a layout's row (tp > 1) against the layout's prediction (kvr sim --tp), not the plain
     * scheme's */
    return kvr_measure_predict(&m, &h, x->scheme, x->kv_forward, x->tp, x->p, x->ctx_tokens,
                               x->tokens, x->method, full, ttft);
}

/* Whether a one-rank measurement ran the last layer on every row, as its row records
 * (last_layer, schema 9; an older store's rows as its migration filled them). The simulator's
 * chains of several ranks run every layer on every row, so a row of p > 1 marked 'full' is
 * predicted as they are (a tensor-parallel stage runs every row too); one marked 'pruned' (a
 * stage run between b4e1d92 and that change, whose shards pruned) is refused: no layout of
 * the simulator prunes its last layer. */
static enum kvr_status row_full_last(const struct kvr_measurement_row *x, bool *full)
{
    bool pruned = !strcmp(x->last_layer, "pruned");
    *full = x->p == 1 && !pruned;
    if (!pruned && strcmp(x->last_layer, "full"))
        return kvr_error(KVR_ERR_INPUT, "measurement of %s at %llu tokens: last_layer '%s'",
                         x->model, (unsigned long long)x->ctx_tokens, x->last_layer);
    if (pruned && x->p > 1)
        return kvr_error(KVR_ERR_INPUT,
                         "measurement of %s, %s on p = %d (tp %d) at %llu tokens: its executor "
                         "ran the last layer on the last row alone (last_layer 'pruned'), which "
                         "the simulator models for one GPU only; nothing can predict it",
                         x->model, x->scheme, x->p, x->tp, (unsigned long long)x->ctx_tokens);
    return KVR_OK;
}

/* The links a measurement ran on, for a panel title: "full-speed" without emulated
 * overrides (a run emulating the profile's own, measured links is one too). */
const char *kvr_validate_links(const struct kvr_measurement_row *m)
{
    const char *plus = strchr(m->link_settings, '+');
    return plus ? plus + 1 : "full-speed";
}

/* The series of a point: its scheme, or KVR-E/-S/-P and the like for kvr's methods. */
void kvr_validate_series_label(const struct kvr_measurement_row *m, char *buf, size_t cap)
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
void kvr_validate_links_of(const struct kvr_measurement_row *m, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", kvr_validate_links(m));
}

/* The points labelled `name`: how many, and their MAPE. */
static void group_mape(const struct kvr_validate_point *pts, size_t n, kvr_validate_label_fn label,
                       const char *name, int *count, double *mape)
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
 * name (a given partition), then the one-GPU schemes; plots/validate_panels.gp draws up to 16 (the
 * cap). */
int kvr_validate_series_order(char order[][32], int cap)
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
void kvr_validate_groups(const struct kvr_validate_point *pts, size_t n,
                         kvr_validate_label_fn label,
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

/* A row's TP degree (1: the plain scheme): a layout's points are panels and blocks apart. */
static int row_tp(const struct kvr_measurement_row *m)
{
    return m->tp > 1 ? m->tp : 1;
}

static bool same_panel(const struct kvr_validate_point *a, const struct kvr_validate_point *b)
{
    return !strcmp(a->m->model, b->m->model) && a->m->p == b->m->p &&
           row_tp(a->m) == row_tp(b->m) &&
           !strcmp(kvr_validate_links(a->m), kvr_validate_links(b->m));
}

/* The rows of series `series` in the panel of pts[0], contexts ascending. */
static void write_series(FILE *f, const struct kvr_validate_point *pts, size_t n,
                         const char *series)
{
    char other[64];
    for (uint64_t last = 0;;) {
        const struct kvr_validate_point *next = NULL;
        for (size_t b = 0; b < n; b++) {
            kvr_validate_series_label(pts[b].m, other, sizeof other);
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
static enum kvr_status write_panels(const char *dir, const struct kvr_validate_point *pts, size_t n)
{
    char path[2200], name[64], series[64];
    snprintf(path, sizeof path, "%s/validate_panels.list", dir);
    struct kvr_out lo, po;
    enum kvr_status st = kvr_out_open_own(&lo, "validate --out", path);
    if (st) return st;
    FILE *list = lo.f;
    int k = 0;
    for (size_t i = 0; i < n && !st; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) seen = same_panel(&pts[i], &pts[j]);
        if (seen) continue;
        snprintf(name, sizeof name, "validate-panel-%d.tsv", ++k);
        char tp[32] = "";
        if (row_tp(pts[i].m) > 1) snprintf(tp, sizeof tp, ",tp=%d", row_tp(pts[i].m));
        fprintf(list, "%s\t%s,p=%d%s,%s\n", name, pts[i].m->model, pts[i].m->p, tp,
                kvr_validate_links(pts[i].m));
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if ((st = kvr_out_open_own(&po, "validate --out", path))) break;
        FILE *f = po.f;
        /* the same block (colour) for a series in every panel; an absent one is an empty,
         * untitled block */
        char order[16][32];
        int n_order = kvr_validate_series_order(order, 16);
        for (int o = 0; o < n_order; o++) {
            bool present = false;
            for (size_t a = i; a < n && !present; a++) {
                kvr_validate_series_label(pts[a].m, series, sizeof series);
                present = same_panel(&pts[a], &pts[i]) && !strcmp(series, order[o]);
            }
            fprintf(f, "%s%s\tctx\tmeasured_s\tpredicted_s\n", o ? "\n\n" : "",
                    present ? order[o] : "");
            if (present)
                write_series(f, pts + i, n - i, order[o]);
            else
                fprintf(f, "x\tNaN\tNaN\tNaN\n");
        }
        st = kvr_out_commit(&po);
    }
    if (st) return kvr_out_abort(&lo), st;
    return kvr_out_commit(&lo);
}

enum kvr_status kvr_validate_load(const char *db, const char *machine, bool multi,
                                  struct kvr_validate_set *v)
{
    static struct kvr_machine h; /* large: not on the stack */
    struct kvr_store *store = NULL;
    *v = (struct kvr_validate_set){0};
    enum kvr_status st = kvr_machine_resolve(machine, &h);
    if (st) return kvr_error_prefix(st, "--machine: ");
    if ((st = kvr_store_open(db, KVR_STORE_READ, &store))) return st;
    st = kvr_store_list_measurements(store, &v->rows, &v->n_rows);
    if (!st && !(v->pts = calloc(v->n_rows + 1, sizeof *v->pts)))
        st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    double sum = 0, max_err = 0;
    for (size_t i = 0; !st && i < v->n_rows; i++) {
        struct kvr_validate_point *x = &v->pts[v->n];
        bool full = false;
        if ((v->rows[i].p > 1) != multi) continue;
        x->m = &v->rows[i];
        if ((st = row_full_last(&v->rows[i], &full)) ||
            (st = predict(&v->rows[i], machine, full, &x->predicted_s)))
            break;
        x->err = x->predicted_s / v->rows[i].ttft_median_s - 1;
        sum += fabs(x->err), max_err = fmax(max_err, fabs(x->err)), v->n++;
    }
    kvr_store_close(store);
    if (!st && v->n == 0)
        st = kvr_error(KVR_ERR_INPUT, "%s: no %s measurements", db,
                       multi ? "multi-GPU (p > 1)" : "single-device (p = 1)");
    v->mape_pct = v->n ? 100 * sum / (double)v->n : 0, v->max_err_pct = 100 * max_err;
    if (st) kvr_validate_free(v);
    return st;
}

/* Whether the calibration rows d (their models' resolved names in names) hold (model, ctx) at
 * one of the contexts ctxs (none: any). */
static bool calibrated(const struct kvr_calibrate_data *d, char (*names)[64], const uint64_t *ctxs,
                       size_t n_ctx, const char *model, uint64_t ctx)
{
    bool fit = n_ctx == 0;
    for (size_t k = 0; k < n_ctx && !fit; k++) fit = ctxs[k] == ctx;
    for (size_t i = 0; fit && i < d->n; i++)
        if (d->rows[i].ctx == ctx && (!strcmp(names[i], model) || !strcmp(d->rows[i].model, model)))
            return true;
    return false;
}

enum kvr_status kvr_validate_split(struct kvr_validate_set *v, const char *csv,
                                   const char *csv_what, const char *fit_ctx, const char *ctx_what)
{
    struct kvr_validate_calibration *c = &v->cal;
    *c = (struct kvr_validate_calibration){.fitted_mape_pct = NAN, .held_mape_pct = NAN};
    uint64_t *ctxs = NULL;
    size_t n_ctx = 0;
    char(*names)[64] = NULL;
    struct kvr_calibrate_data d = {0};
    enum kvr_status st = KVR_OK;
    if (fit_ctx && (st = kvr_cli_parse_ctx_list(ctx_what, fit_ctx, &ctxs, &n_ctx))) return st;
    if (n_ctx > sizeof c->fit_ctx / sizeof *c->fit_ctx)
        st = kvr_error(KVR_ERR_USAGE, "%s: at most %zu contexts", ctx_what,
                       sizeof c->fit_ctx / sizeof *c->fit_ctx);
    if (!st && !(st = kvr_calibrate_alloc(&d)) && (st = kvr_calibrate_read_csv(NULL, csv, &d)))
        st = kvr_error_prefix(st, "%s: ", csv_what);
    if (!st && !(names = calloc(d.n ? d.n : 1, sizeof *names)))
        st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < d.n; i++) { /* each distinct model resolved once */
        static struct kvr_model m;
        if (i && !strcmp(d.rows[i].model, d.rows[i - 1].model))
            memcpy(names[i], names[i - 1], sizeof *names);
        else
            snprintf(names[i], sizeof *names, "%s",
                     kvr_model_resolve(d.rows[i].model, &m) ? d.rows[i].model : m.name);
    }
    for (size_t k = 0; !st && k < n_ctx; k++) { /* a fit context the CSV lacks fits nothing */
        bool found = false;
        for (size_t i = 0; i < d.n && !found; i++) found = d.rows[i].ctx == ctxs[k];
        if (!found)
            st = kvr_error(KVR_ERR_INPUT, "%s: %s (%s) has no row at %llu tokens", ctx_what, csv,
                           csv_what, (unsigned long long)ctxs[k]);
    }
    double sum_fit = 0, sum_held = 0;
    for (size_t i = 0; !st && i < v->n; i++) {
        struct kvr_validate_point *x = &v->pts[i];
        x->held_out = !calibrated(&d, names, ctxs, n_ctx, x->m->model, x->m->ctx_tokens);
        if (x->held_out)
            sum_held += fabs(x->err), c->n_held_out++;
        else
            sum_fit += fabs(x->err), c->n_fitted++;
    }
    if (!st) {
        c->known = true;
        snprintf(c->csv, sizeof c->csv, "%s", csv);
        memcpy(c->fit_ctx, ctxs, n_ctx * sizeof *ctxs), c->n_fit_ctx = n_ctx;
        if (c->n_fitted) c->fitted_mape_pct = 100 * sum_fit / (double)c->n_fitted;
        if (c->n_held_out) c->held_mape_pct = 100 * sum_held / (double)c->n_held_out;
    } else {
        *c = (struct kvr_validate_calibration){.fitted_mape_pct = NAN, .held_mape_pct = NAN};
        for (size_t i = 0; i < v->n; i++) v->pts[i].held_out = false;
    }
    free(ctxs), free(names), kvr_calibrate_free(&d);
    return st;
}

void kvr_validate_free(struct kvr_validate_set *v)
{
    free(v->rows), free(v->pts);
    *v = (struct kvr_validate_set){0};
}

/* validate-1.tsv's blocks: the points of one model, scheme, method, p, TP degree and links (a
 * block of runs on different links drew one line through them in validate_ttft/validate_err). */
static bool same_block(const struct kvr_validate_point *a, const struct kvr_validate_point *b)
{
    return same_panel(a, b) && !strcmp(a->m->scheme, b->m->scheme) &&
           !strcmp(a->m->method, b->m->method);
}

static void write_block_head(FILE *f, const struct kvr_measurement_row *m)
{
    char tp[32] = "", links[300] = "";
    if (row_tp(m) > 1) snprintf(tp, sizeof tp, " tp=%d", row_tp(m));
    if (strcmp(kvr_validate_links(m), "full-speed"))
        snprintf(links, sizeof links, " %s", kvr_validate_links(m));
    fprintf(f, "%s %s (%s) p=%d%s%s\tctx\tmeasured_s\tpredicted_s\terr_pct\n", m->model, m->scheme,
            m->method, m->p, tp, links);
}

enum kvr_status kvr_validate_export(const char *dir, const struct kvr_validate_set *v,
                                    const char *title)
{
    const struct kvr_validate_point *pts = v->pts;
    size_t n = v->n;
    char path[2200];
    snprintf(path, sizeof path, "%s/validate-1.tsv", dir);
    bool *done = calloc(n ? n : 1, sizeof *done);
    if (!done) return kvr_error(KVR_ERR_RUNTIME, "validate --out: out of memory");
    struct kvr_out o;
    enum kvr_status st = kvr_out_open_own(&o, "validate --out", path);
    if (st) return free(done), st;
    FILE *f = o.f;
    for (size_t i = 0; i < n; i++) { /* each block in the database's order within */
        if (done[i]) continue;
        if (i) fprintf(f, "\n\n");
        write_block_head(f, pts[i].m);
        for (size_t j = i; j < n; j++) {
            if (done[j] || !same_block(&pts[i], &pts[j])) continue;
            done[j] = true;
            fprintf(f, "x\t%llu\t%.9g\t%.9g\t%.4f\n", (unsigned long long)pts[j].m->ctx_tokens,
                    pts[j].m->ttft_median_s, pts[j].predicted_s, 100 * pts[j].err);
        }
    }
    free(done);
    if ((st = kvr_out_commit(&o))) return st;
    st = write_panels(dir, pts, n); /* with validate_panels.list */
    const char *names[] = {"validate", "validate_err", "validate_ttft"};
    for (int k = 0; k < 3 && !st; k++) {
        snprintf(path, sizeof path, "%s/%s.list", dir, names[k]);
        if ((st = kvr_out_open_own(&o, "validate --out", path))) break;
        fprintf(o.f, "validate-1.tsv\t%s\n", title);
        st = kvr_out_commit(&o);
    }
    return st;
}
