/* kvr sweep -j N: the open points of a sweep on N threads. Each thread has its own connection
 * to the database (WAL and the busy timeout serialise the writers, as with concurrent `kvr
 * search` processes); it evaluates points taken from a shared counter and writes them back in
 * batches. Plans that two threads search at once are stored once (INSERT OR IGNORE). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvr_cli.h"
#include "kvr_sweep.h"

#define BATCH 64

struct par {
    struct kvr_sweep_open o;
    const char *db;
    pthread_mutex_t mu;
    size_t next, run, failed;
    int finished; /* threads that have returned */
    uint64_t budget;
    enum kvr_status st;
    char msg[1024];
};

/* The index of the next point to run, or SIZE_MAX when none is left (or a thread failed). */
static size_t take(struct par *p)
{
    pthread_mutex_lock(&p->mu);
    size_t i = SIZE_MAX;
    if (!p->st && p->next < p->o.n_open && p->budget > 0) i = p->next++, p->budget--;
    pthread_mutex_unlock(&p->mu);
    return i;
}

static void fail(struct par *p, enum kvr_status st)
{
    pthread_mutex_lock(&p->mu);
    if (!p->st) p->st = st, snprintf(p->msg, sizeof p->msg, "%s", kvr_error_message());
    pthread_mutex_unlock(&p->mu);
}

static enum kvr_status work(struct par *p, struct kvr_store *store, struct kvr_sweep_point *batch)
{
    size_t nb = 0, i;
    enum kvr_status st = KVR_OK;
    while (!st && (i = take(p)) != SIZE_MAX) {
        struct kvr_sweep_item *it = kvr_sweep_item_of(p->o.items, p->o.n_items, &p->o.open[i]);
        if (!it) continue; /* recorded by an older version of the file: left as it is */
        it->pt.id = p->o.open[i].id;
        if ((st = kvr_sweep_eval(p->o.sp, store, p->o.run_id, it))) break;
        batch[nb++] = it->pt;
        if (nb == BATCH) st = kvr_store_finish_points(store, batch, nb), nb = 0;
        pthread_mutex_lock(&p->mu);
        p->run++, p->failed += !strcmp(it->pt.state, "failed");
        pthread_mutex_unlock(&p->mu);
    }
    if (!st && nb) st = kvr_store_finish_points(store, batch, nb);
    return st;
}

static void *worker(void *arg)
{
    struct par *p = arg;
    struct kvr_store *store = NULL;
    struct kvr_sweep_point *batch = calloc(BATCH, sizeof *batch);
    enum kvr_status st = batch ? kvr_store_open(p->db, KVR_STORE_WRITE, &store)
                               : kvr_error(KVR_ERR_NOMEM, "sweep: out of memory");
    if (!st) st = work(p, store, batch);
    if (st) fail(p, st);
    kvr_store_close(store);
    free(batch);
    pthread_mutex_lock(&p->mu);
    p->finished++;
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Points run so far; false once every thread has returned. */
static bool progress(struct par *p, int started, size_t *run)
{
    pthread_mutex_lock(&p->mu);
    *run = p->run;
    bool busy = p->finished < started;
    pthread_mutex_unlock(&p->mu);
    return busy;
}

enum kvr_status kvr_sweep_run_threads(const struct kvr_sweep_open *o, const char *db, int jobs,
                                      uint64_t *budget, size_t *run, size_t *failed)
{
    struct par p = {.o = *o, .db = db, .budget = *budget};
    pthread_t *th = calloc((size_t)jobs, sizeof *th);
    if (!th) return kvr_error(KVR_ERR_NOMEM, "sweep: out of memory");
    pthread_mutex_init(&p.mu, NULL);
    int started = 0;
    while (started < jobs && !pthread_create(&th[started], NULL, worker, &p)) started++;
    double t0 = kvr_cli_now_s();
    size_t done = 0;
    while (started && progress(&p, started, &done)) {
        kvr_cli_progress(o->sp->name, done, o->n_open, kvr_cli_now_s() - t0);
        nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
    }
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    kvr_cli_progress(o->sp->name, p.run, o->n_open, kvr_cli_now_s() - t0); /* the last state */
    kvr_cli_progress_end();
    pthread_mutex_destroy(&p.mu);
    free(th);
    *budget = p.budget, *run = p.run, *failed = p.failed;
    if (started == 0) return kvr_error(KVR_ERR_RUNTIME, "sweep: cannot start threads");
    return p.st ? kvr_error(p.st, "%s", p.msg) : KVR_OK;
}
