/* kvr sweep under mpirun: rank 0 records the points and is the only writer. First the plans
 * that KVR-S and KVR-P points read are searched, spread over the ranks, and stored by rank 0;
 * then the open points are evaluated in rounds (each rank a share of every round, with a
 * read-only connection) and rank 0 writes each round's results, so an interrupted sweep loses
 * at most one round. Every rank loads and expands the sweep file itself: only keys and results
 * travel. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvr_cli.h"
#include "kvr_comm.h"
#include "kvr_sweep.h"

#define ROUND_PER_RANK 16

struct need {
    struct kvr_plan_row row;
    size_t item;
};

struct ctx {
    const struct kvr_sweep_spec *sp;
    struct kvr_sweep_item *items;
    size_t n_items;
    struct kvr_comm *comm;
    int rank, size;
    struct kvr_store *store; /* rank 0: read-write; others: read-only (phase 2) */
    struct kvr_sweep_point *open;
    uint64_t m; /* open points to run now (--stop-after) */
    int64_t run_id;
};

static struct kvr_sweep_item *item_of(const struct ctx *c, const struct kvr_sweep_point *p)
{
    return kvr_sweep_item_of(c->items, c->n_items, p);
}

/* Rank 0's status to everyone: the others fail too, without a message of their own. */
static enum kvr_status agree(struct kvr_comm *comm, enum kvr_status st)
{
    int rank = kvr_comm_rank(comm);
    int code = (int)st;
    enum kvr_status b = kvr_comm_bcast(comm, &code, sizeof code, 0);
    if (b) return b;
    if (code && rank != 0) return kvr_error((enum kvr_status)code, "sweep: rank 0 failed");
    return (enum kvr_status)code;
}

/* Rank 0: the rows the open points read that the table lacks, each once. */
static enum kvr_status missing_rows(struct ctx *c, struct need **out, uint64_t *n_out)
{
    struct need *v = NULL;
    uint64_t n = 0;
    enum kvr_status st = KVR_OK;
    for (uint64_t i = 0; i < c->m && !st; i++) {
        struct kvr_sweep_item *it = item_of(c, &c->open[i]);
        struct kvr_plan_row *rows = NULL;
        size_t k = 0;
        if (!it || (st = kvr_sweep_plan_keys(c->sp, it, &rows, &k))) continue;
        for (size_t r = 0; r < k && !st; r++) {
            bool present = false, dup = false;
            if ((st = kvr_store_plan_exists(c->store, &rows[r], &present)) || present) continue;
            for (uint64_t j = 0; j < n && !dup; j++)
                dup = !strcmp(v[j].row.machine, rows[r].machine) &&
                      !strcmp(v[j].row.model, rows[r].model) && v[j].row.p == rows[r].p &&
                      v[j].row.ctx_tokens == rows[r].ctx_tokens;
            if (dup) continue;
            if ((st = kvr_sweep_put_definitions(c->sp, it, c->store, c->run_id))) break;
            struct need *g = realloc(v, (n + 1) * sizeof *v);
            if (!g)
                st = kvr_error(KVR_ERR_NOMEM, "sweep: out of memory");
            else
                v = g, v[n].row = rows[r], v[n++].item = (size_t)(it - c->items);
        }
        free(rows);
    }
    *out = v, *n_out = n;
    return st;
}

/* Phase 1: the missing plans, searched by all ranks, stored by rank 0. */
static enum kvr_status plans(struct ctx *c)
{
    struct need *v = NULL;
    uint64_t n = 0;
    enum kvr_status st = c->rank == 0 ? missing_rows(c, &v, &n) : KVR_OK;
    if ((st = agree(c->comm, st)) || (st = kvr_comm_bcast(c->comm, &n, sizeof n, 0)))
        return free(v), st;
    if (c->rank != 0 && n && !(v = calloc(n, sizeof *v)))
        st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st && n) st = kvr_comm_bcast(c->comm, v, n * sizeof *v, 0);
    struct kvr_plan_row *mine = calloc(n / (uint64_t)c->size + 1, sizeof *mine);
    size_t k = 0;
    for (uint64_t i = (uint64_t)c->rank; !st && mine && i < n; i += (uint64_t)c->size) {
        mine[k] = v[i].row;
        /* a row that cannot be searched is left out: its points fail with the reason later */
        if (!kvr_sweep_search_row(c->sp, &c->items[v[i].item], &mine[k]))
            mine[k++].run_id = c->run_id;
    }
    void *all = NULL;
    size_t all_bytes = 0;
    if (!st) st = kvr_comm_gather(c->comm, mine, k * sizeof *mine, &all, &all_bytes);
    if (!st && c->rank == 0 && all_bytes)
        st = kvr_store_put_plans(c->store, all, all_bytes / sizeof *mine, false);
    free(v), free(mine), free(all);
    return agree(c->comm, st); /* the plans are committed before anyone reads them */
}

/* Phase 2, one round: points [first, first + len) of the open list. */
/* Fault injection for the tests (as kvr exec's): KVR_TEST_FAULT=hang@R stops rank R in its
 * first round, so the others must give up within the sweep's --timeout instead of hanging. */
static void test_fault(int rank)
{
    const char *f = getenv("KVR_TEST_FAULT");
    int r = -1;
    if (f && sscanf(f, "hang@%d", &r) == 1 && r == rank)
        for (;;) pause();
}

static enum kvr_status round_run(struct ctx *c, uint64_t first, uint64_t len, size_t *failed)
{
    test_fault(c->rank);
    struct kvr_sweep_point *mine = calloc(len / (uint64_t)c->size + 1, sizeof *mine);
    size_t k = 0;
    enum kvr_status st = mine ? KVR_OK : kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (uint64_t i = first + (uint64_t)c->rank; !st && i < first + len; i += (uint64_t)c->size) {
        struct kvr_sweep_item *it = item_of(c, &c->open[i]);
        if (!it) continue; /* recorded by an older version of the file: left as it is */
        it->pt.id = c->open[i].id;
        if (!(st = kvr_sweep_eval(c->sp, c->store, c->run_id, it))) mine[k++] = it->pt;
    }
    if (st) { /* the others would wait for this rank in the gather below */
        free(mine);
        kvr_comm_abort(c->comm, kvr_status_exit_code(st));
        return st;
    }
    void *all = NULL;
    size_t bytes = 0;
    st = kvr_comm_gather(c->comm, mine, k * sizeof *mine, &all, &bytes);
    size_t n = bytes / sizeof *mine;
    const struct kvr_sweep_point *pts = all;
    for (size_t i = 0; !st && c->rank == 0 && i < n; i++)
        *failed += !strcmp(pts[i].state, "failed");
    if (!st && c->rank == 0 && n) st = kvr_store_finish_points(c->store, all, n);
    free(mine), free(all);
    return agree(c->comm, st);
}

/* Rank 0: record every point, list the open ones, start a run. */
static enum kvr_status record(struct ctx *c, const char *db, const char *argv_text,
                              struct kvr_sweep_tally *t, uint64_t *n_open)
{
    enum kvr_status st = kvr_store_open(db, KVR_STORE_WRITE, &c->store);
    size_t n = 0;
    if (!st)
        st = kvr_sweep_record(c->store, c->sp, c->items, c->n_items, argv_text, &c->open, &n,
                              &c->run_id);
    t->done_before = t->total - n, *n_open = n;
    return st;
}

enum kvr_status kvr_sweep_run_mpi(const struct kvr_sweep_spec *sp, const char *db,
                                  struct kvr_sweep_item *items, size_t n_items,
                                  const char *argv_text, struct kvr_comm *comm, uint64_t *budget,
                                  struct kvr_sweep_tally *t)
{
    int rank = kvr_comm_rank(comm);
    struct ctx c = {.sp = sp,
                    .items = items,
                    .n_items = n_items,
                    .comm = comm,
                    .rank = rank,
                    .size = kvr_comm_size(comm)};
    uint64_t n_open = 0;
    double t0 = kvr_cli_now_s();
    enum kvr_status st = rank == 0 ? record(&c, db, argv_text, t, &n_open) : KVR_OK;
    if ((st = agree(c.comm, st))) goto out;
    c.m = n_open < *budget ? n_open : *budget;
    if ((st = kvr_comm_bcast(c.comm, &c.m, sizeof c.m, 0)) ||
        (st = kvr_comm_bcast(c.comm, &c.run_id, sizeof c.run_id, 0)) ||
        (st = kvr_comm_bcast(c.comm, &t->done_before, sizeof t->done_before, 0)))
        goto out;
    if (rank != 0 && c.m && !(c.open = calloc(c.m, sizeof *c.open))) {
        st = kvr_error(KVR_ERR_NOMEM, "out of memory");
        kvr_comm_abort(c.comm, 1);
    }
    if (c.m && (st = kvr_comm_bcast(c.comm, c.open, c.m * sizeof *c.open, 0))) goto out;
    if ((st = plans(&c))) goto out;
    if (rank != 0 && (st = kvr_store_open(db, KVR_STORE_READ, &c.store))) {
        kvr_comm_abort(c.comm, kvr_status_exit_code(st)); /* rank 0 would wait for this one */
        goto out;
    }
    uint64_t step = (uint64_t)c.size * ROUND_PER_RANK;
    for (uint64_t first = 0; !st && first < c.m; first += step) {
        st = round_run(&c, first, c.m - first < step ? c.m - first : step, &t->failed);
        if (rank == 0)
            kvr_cli_progress(sp->name, first + step < c.m ? first + step : c.m, c.m,
                             kvr_cli_now_s() - t0);
    }
    t->run = c.m, *budget -= c.m;
out:
    if (rank == 0) kvr_cli_progress_end();
    t->wall_s = kvr_cli_now_s() - t0;
    kvr_store_close(c.store);
    free(c.open);
    return st;
}
