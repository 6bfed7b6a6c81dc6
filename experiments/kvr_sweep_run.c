/* The serial and threaded sweep runner: every point recorded as pending first, then the open
 * ones evaluated and written in batches (one transaction each), so an interrupted sweep
 * resumes with only the points that are not done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_search_cli.h"
#include "kvr_sweep.h"

#define BATCH 64

static int cmp_key(const void *key, const void *item)
{
    return strcmp(key, ((const struct kvr_sweep_item *)item)->pt.point_key);
}

struct kvr_sweep_item *kvr_sweep_item_of(struct kvr_sweep_item *items, size_t n_items,
                                         const struct kvr_sweep_point *pt)
{
    return bsearch(pt->point_key, items, n_items, sizeof *items, cmp_key);
}

static enum kvr_status on_other_figure(void *arg, int n, const char *const *v)
{
    if (n > 0) snprintf(arg, 64, "%s", v[0]);
    return KVR_OK;
}

/* Points are keyed by (name, point): a name another figure's file already used would take
 * that figure's points as done here and store nothing for this one. */
static enum kvr_status check_name_free(struct kvr_store *store, const struct kvr_sweep_spec *sp)
{
    static const char sql[] = "SELECT figure FROM sweep_point WHERE sweep = ?1 AND figure <> ?2 "
                              "LIMIT 1";
    const char *params[] = {sp->name, sp->figure};
    char other[64] = "";
    enum kvr_status st = kvr_store_query_rows(store, sql, params, 2, on_other_figure, other);
    if (!st && other[0])
        st = kvr_error(KVR_ERR_INPUT,
                       "%s: sweep name '%s' already holds the points of figure %s in the "
                       "database (figure = %s here): give this file its own name",
                       sp->path, sp->name, other, sp->figure);
    return st;
}

enum kvr_status kvr_sweep_record(struct kvr_store *store, const struct kvr_sweep_spec *sp,
                                 const struct kvr_sweep_item *items, size_t n_items,
                                 const char *argv_text, struct kvr_sweep_point **open,
                                 size_t *n_open, int64_t *run_id)
{
    struct kvr_sweep_point *pts = malloc((n_items ? n_items : 1) * sizeof *pts);
    enum kvr_status st = pts ? KVR_OK : kvr_error(KVR_ERR_NOMEM, "sweep: out of memory");
    for (size_t i = 0; pts && i < n_items; i++) pts[i] = items[i].pt;
    if (!st) st = check_name_free(store, sp);
    if (!st) st = kvr_store_add_sweep_points(store, pts, n_items);
    free(pts);
    *n_open = 0, *run_id = 0;
    if (!st) st = kvr_store_list_open_points(store, sp->name, open, n_open);
    char host[256];
    struct kvr_provenance prov;
    kvr_search_provenance(argv_text, "simulator", &prov, host, sizeof host);
    if (!st && *n_open) st = kvr_store_add_run(store, &prov, run_id);
    return st;
}

/* Runs the open points in batches; *budget counts down --stop-after. */
static enum kvr_status run_open(const struct kvr_sweep_open *o, struct kvr_store *store,
                                const char *db, int jobs, uint64_t *budget,
                                struct kvr_sweep_tally *t)
{
    struct kvr_sweep_point *batch = calloc(BATCH, sizeof *batch);
    if (!batch) return kvr_error(KVR_ERR_NOMEM, "sweep: out of memory");
    enum kvr_status st = KVR_OK;
    double t0 = kvr_cli_now_s();
    size_t nb = 0, n_open = o->n_open;
    if (jobs > 1) {
        st = kvr_sweep_run_threads(o, db, jobs, budget, &t->run, &t->failed);
        n_open = 0; /* done: skip the serial loop below */
    }
    for (size_t i = 0; i < n_open && !st && *budget > 0; i++, (*budget)--) {
        struct kvr_sweep_item *it = kvr_sweep_item_of(o->items, o->n_items, &o->open[i]);
        if (!it) continue; /* recorded by an older version of the file: left as it is */
        it->pt.id = o->open[i].id;
        st = kvr_sweep_eval(o->sp, store, o->run_id, it);
        batch[nb++] = it->pt;
        t->run++, t->failed += !strcmp(it->pt.state, "failed");
        if (!st && (nb == BATCH || i + 1 == n_open || *budget == 1))
            st = kvr_store_finish_points(store, batch, nb), nb = 0;
        kvr_cli_progress(o->sp->name, t->run, n_open, kvr_cli_now_s() - t0);
    }
    kvr_cli_progress_end();
    if (!st && nb) st = kvr_store_finish_points(store, batch, nb);
    t->wall_s = kvr_cli_now_s() - t0;
    free(batch);
    return st;
}

enum kvr_status kvr_sweep_run(const struct kvr_sweep_spec *sp, const char *db, int jobs,
                              struct kvr_sweep_item *items, size_t n_items, const char *argv_text,
                              uint64_t *budget, struct kvr_sweep_tally *t)
{
    struct kvr_store *store = NULL;
    struct kvr_sweep_point *open = NULL;
    struct kvr_sweep_open o = {.sp = sp, .items = items, .n_items = n_items};
    t->total = n_items;
    enum kvr_status st = kvr_store_open(db, KVR_STORE_WRITE, &store);
    if (!st)
        st = kvr_sweep_record(store, sp, items, n_items, argv_text, &open, &o.n_open, &o.run_id);
    o.open = open;
    if (!st) t->done_before = t->total - o.n_open;
    if (!st) st = run_open(&o, store, db, jobs, budget, t);
    free(open);
    kvr_store_close(store);
    return st;
}
