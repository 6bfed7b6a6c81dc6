/* The schemes on real ranks (see kvr_dist.h). Each message of the mpi communicator is staged
 * on the host as [double sent_s][K rows][V rows]; nccl moves the cache rows directly. */
#include "kvr_dist.h"

#include "kvr_cost.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool kvr_dist_runs(enum kvr_scheme s)
{
    return s == KVR_SCHEME_SINGLE || s == KVR_SCHEME_TSP || s == KVR_SCHEME_TSP_CAUSAL ||
           s == KVR_SCHEME_KVR || s == KVR_SCHEME_RING_PASS;
}

struct dist {
    struct kvr_exec *ex;
    struct kvr_comm *comm;
    const struct kvr_dist_opts *o;
    const struct kvr_model *m;
    int rank, p;
    bool dev; /* nccl: device buffers */
    uint64_t start[KVR_MAX_GPUS + 1];
    size_t row; /* bytes of one cache row of K (or V) */
    double t0, link_free[KVR_MAX_GPUS];
    struct kvr_sim *noise; /* the noise draws of o->links */
    struct kvr_dist_stats *stats;
    unsigned char *buf[4]; /* mpi staging: 2 receive and 2 send slots */
    size_t buf_rows;
    struct kvr_comm_req *req[4][2];
    /* nccl with link emulation: each message's send time travels beside it over MPI */
    double stamp[4];
    struct kvr_comm_req *stamp_req[4];
};

#define STAMP_TAG 20000 /* added to a layer's tag: layers < 4096, tags stay under 32767 */

static double now_s(const struct dist *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec - d->t0;
}

static void event(struct dist *d, enum kvr_event_kind k, const char *what, int layer, double t0,
                  double bytes, int peer)
{
    struct kvr_timeline *tl = d->o->timeline;
    if (!tl) return;
    if (tl->n == tl->cap) {
        tl->n_dropped++;
        return;
    }
    tl->events[tl->n++] = (struct kvr_event){.rank = d->rank,
                                             .layer = layer,
                                             .kind = k,
                                             .what = what,
                                             .start_s = t0,
                                             .end_s = now_s(d),
                                             .bytes = bytes,
                                             .peer = peer};
}

static void sleep_until(const struct dist *d, double t)
{
    double w = t - now_s(d);
    if (w > 0)
        nanosleep(&(struct timespec){.tv_sec = (time_t)w, .tv_nsec = (long)(fmod(w, 1) * 1e9)},
                  NULL);
}

/* Holds a message from `from` until its emulated link could have delivered it. */
static void pace(struct dist *d, int from, int layer, double sent_s, double bytes)
{
    double now = now_s(d), done = now;
    const struct kvr_machine *h = d->o->links;
    if (h) {
        const double *nz = kvr_sim_layer_noise(d->noise, layer);
        double bw = h->link_Bps[from][d->rank] * (1 - (nz ? nz[from * d->p + d->rank] : 0));
        done = fmax(sent_s, d->link_free[from]) + h->link_lat_s[from][d->rank] + bytes / bw;
        d->link_free[from] = done;
        sleep_until(d, done);
    }
    d->stats->recv_bytes[from] += bytes;
    d->stats->recv_s[from] += fmax(done, now) - sent_s;
}

static size_t msg_bytes(const struct dist *d, uint64_t rows)
{
    return sizeof(double) + 2 * rows * d->row;
}

/* Receive of cache rows [pos, pos+rows) of layer from peer into slot (0, 1). */
static enum kvr_status recv_post(struct dist *d, int slot, uint32_t layer, int peer, uint64_t pos,
                                 uint64_t rows, int tag)
{
    if (!rows) return KVR_OK;
    if (!d->dev)
        return kvr_comm_irecv(d->comm, d->buf[slot], msg_bytes(d, rows), peer, tag,
                              &d->req[slot][0]);
    void *k, *v;
    enum kvr_status st = kvr_exec_kv_device(d->ex, layer, (uint32_t)pos, &k, &v);
    if (!st) st = kvr_comm_irecv(d->comm, k, rows * d->row, peer, tag, &d->req[slot][0]);
    if (!st) st = kvr_comm_irecv(d->comm, v, rows * d->row, peer, tag, &d->req[slot][1]);
    if (!st && d->o->links)
        st = kvr_comm_host_irecv(d->comm, &d->stamp[slot], sizeof(double), peer, tag + STAMP_TAG,
                                 &d->stamp_req[slot]);
    return st;
}

static enum kvr_status recv_finish(struct dist *d, int slot, uint32_t layer, int peer, uint64_t pos,
                                   uint64_t rows)
{
    if (!rows) return KVR_OK;
    double t = now_s(d);
    enum kvr_status st = kvr_comm_wait(d->comm, d->req[slot][0]);
    if (!st && d->dev) st = kvr_comm_wait(d->comm, d->req[slot][1]);
    d->req[slot][0] = d->req[slot][1] = NULL;
    if (!st && d->dev && d->stamp_req[slot]) { /* nccl: the data is in the cache already */
        st = kvr_comm_host_wait(d->comm, d->stamp_req[slot]);
        d->stamp_req[slot] = NULL;
        if (!st) pace(d, peer, (int)layer, d->stamp[slot], (double)(2 * rows * d->row));
    }
    if (!st && d->dev) event(d, KVR_EV_WAIT, "kv", (int)layer, t, 0, peer);
    if (st || d->dev) return st;
    double sent;
    memcpy(&sent, d->buf[slot], sizeof sent);
    pace(d, peer, (int)layer, sent, (double)(2 * rows * d->row));
    event(d, KVR_EV_WAIT, "kv", (int)layer, t, 0, peer);
    unsigned char *k = d->buf[slot] + sizeof(double);
    return kvr_exec_kv_copy(d->ex, layer, (uint32_t)pos, (uint32_t)rows, k, k + rows * d->row,
                            false);
}

/* Send of cache rows [pos, pos+rows) of layer from slot (2, 3); its previous send done first. */
static enum kvr_status send_rows(struct dist *d, int slot, uint32_t layer, int peer, uint64_t pos,
                                 uint64_t rows, int tag)
{
    enum kvr_status st = KVR_OK;
    for (int h = 0; h < 2 && !st; h++)
        if (d->req[slot][h]) st = kvr_comm_wait(d->comm, d->req[slot][h]), d->req[slot][h] = NULL;
    if (!st && d->stamp_req[slot])
        st = kvr_comm_host_wait(d->comm, d->stamp_req[slot]), d->stamp_req[slot] = NULL;
    if (st || !rows) return st;
    double t = now_s(d);
    if (d->dev) {
        void *k, *v;
        if ((st = kvr_exec_sync(d->ex)) ||
            (st = kvr_exec_kv_device(d->ex, layer, (uint32_t)pos, &k, &v)))
            return st;
        if (!(st = kvr_comm_isend(d->comm, k, rows * d->row, peer, tag, &d->req[slot][0])))
            st = kvr_comm_isend(d->comm, v, rows * d->row, peer, tag, &d->req[slot][1]);
        d->stamp[slot] = now_s(d); /* the data was ready when the sync above returned */
        if (!st && d->o->links)
            st = kvr_comm_host_isend(d->comm, &d->stamp[slot], sizeof(double), peer,
                                     tag + STAMP_TAG, &d->stamp_req[slot]);
        event(d, KVR_EV_SEND, "kv", (int)layer, t, (double)(2 * rows * d->row), peer);
        return st;
    }
    unsigned char *k = d->buf[slot] + sizeof(double);
    st = kvr_exec_kv_copy(d->ex, layer, (uint32_t)pos, (uint32_t)rows, k, k + rows * d->row, true);
    double sent = now_s(d);
    memcpy(d->buf[slot], &sent, sizeof sent);
    if (!st)
        st = kvr_comm_isend(d->comm, d->buf[slot], msg_bytes(d, rows), peer, tag, &d->req[slot][0]);
    event(d, KVR_EV_SEND, "kv", (int)layer, t, (double)(2 * rows * d->row), peer);
    return st;
}

static enum kvr_status sends_done(struct dist *d)
{
    enum kvr_status st = KVR_OK;
    for (int s = 0; s < 4; s++)
        for (int h = 0; h < 2; h++)
            if (d->req[s][h]) {
                enum kvr_status w = kvr_comm_wait(d->comm, d->req[s][h]);
                if (!st) st = w;
                d->req[s][h] = NULL;
            }
    for (int s = 0; s < 4; s++)
        if (d->stamp_req[s]) {
            enum kvr_status w = kvr_comm_host_wait(d->comm, d->stamp_req[s]);
            if (!st) st = w;
            d->stamp_req[s] = NULL;
        }
    return st;
}

/* Fault injection for the tests: KVR_TEST_FAULT=die@R or hang@R makes rank R exit or stop
 * answering at layer 1, so the others must notice within their timeout. */
static void test_fault(const struct dist *d, uint32_t l)
{
    const char *f = getenv("KVR_TEST_FAULT");
    int r = -1;
    if (!f || l != 1) return;
    if (sscanf(f, "die@%d", &r) == 1 && r == d->rank) _exit(3);
    if (sscanf(f, "hang@%d", &r) == 1 && r == d->rank)
        for (;;) pause();
}

/* The halves of a layer, with their timeline events (synchronous when a timeline is kept). */
static enum kvr_status pre(struct dist *d, uint32_t l)
{
    test_fault(d, l);
    double t = now_s(d);
    uint32_t s = (uint32_t)d->start[d->rank], c = (uint32_t)(d->start[d->rank + 1] - s);
    enum kvr_status st = kvr_exec_layer_qkv(d->ex, l, s, c);
    if (!st && d->o->timeline) st = kvr_exec_sync(d->ex);
    event(d, KVR_EV_COMPUTE, "pre", (int)l, t, 0, -1);
    return st;
}

static enum kvr_status post(struct dist *d, uint32_t l, enum kvr_mask mask)
{
    double t = now_s(d);
    uint32_t s = (uint32_t)d->start[d->rank], c = (uint32_t)(d->start[d->rank + 1] - s);
    enum kvr_status st = kvr_exec_layer_rest(d->ex, l, s, c, mask);
    if (!st && d->o->timeline) st = kvr_exec_sync(d->ex);
    event(d, KVR_EV_COMPUTE, "attn+post", (int)l, t, 0, -1);
    return st;
}

static enum kvr_status run_kvr(struct dist *d)
{
    int i = d->rank, p = d->p;
    uint64_t prev = d->start[i], upto = d->start[i + 1];
    /* With a sliding window W the ranks after this one attend only positions from
     * S_i - (W - 1) on: the chain hands on [first(S_i), S_i), not [0, S_i). */
    uint64_t in0 = kvr_window_first(d->m, prev), out0 = kvr_window_first(d->m, upto);
    uint32_t n_layers = d->m->n_layers;
    enum kvr_status st = i > 0 ? recv_post(d, 0, 0, i - 1, in0, prev - in0, 0) : KVR_OK;
    for (uint32_t l = 0; l < n_layers && !st; l++) {
        if ((st = pre(d, l))) break;
        if (i > 0 && (st = recv_finish(d, (int)(l % 2), l, i - 1, in0, prev - in0))) break;
        /* the whole cache so far goes on before this rank's own attention, and before the
         * next layer's receive is posted: NCCL runs a rank's transfers in order on one stream,
         * so a receive posted first would hold this send until the previous rank's next layer
         * (every hop of the chain a layer late) */
        if (i < p - 1 && (st = send_rows(d, 2 + (int)(l % 2), l, i + 1, out0, upto - out0, (int)l)))
            break;
        if (i > 0 && l + 1 < n_layers &&
            (st = recv_post(d, (int)((l + 1) % 2), l + 1, i - 1, in0, prev - in0, (int)l + 1)))
            break;
        st = post(d, l, KVR_MASK_CAUSAL);
    }
    return st ? st : sends_done(d);
}

/* nccl: holds the all-gather until the emulated ring (the simulator's: p-1 steps of the
 * per-rank block, each gated by its slowest link less this layer's noise) could have finished
 * after `start`, when the last rank was ready. */
static void pace_allgather(struct dist *d, int layer, double start, uint64_t rows)
{
    const struct kvr_machine *h = d->o->links;
    double block = (double)(2 * rows * d->row);
    double done =
        start + kvr_allgather_s(h, d->p, block, kvr_sim_layer_noise(d->noise, layer), h->n_gpus);
    sleep_until(d, done);
    for (int j = 0; j < d->p; j++)
        if (j != d->rank) {
            d->stats->recv_bytes[j] += (double)(2 * (d->start[j + 1] - d->start[j]) * d->row);
            d->stats->recv_s[j] += fmax(done, now_s(d)) - start;
        }
}

/* TSP's all-gather of this layer's K and V: mpi through host buffers (chunks padded to the
 * largest), nccl in place in the cache (equal chunks). */
static enum kvr_status allgather_kv(struct dist *d, uint32_t l, unsigned char *all)
{
    int i = d->rank;
    uint64_t cmax = 0, s = d->start[i], c = d->start[i + 1] - s;
    for (int j = 0; j < d->p; j++)
        cmax = d->start[j + 1] - d->start[j] > cmax ? d->start[j + 1] - d->start[j] : cmax;
    enum kvr_status st = KVR_OK;
    double t = now_s(d);
    if (d->dev) {
        void *k, *v;
        if ((st = kvr_exec_sync(d->ex)) || (st = kvr_exec_kv_device(d->ex, l, 0, &k, &v)))
            return st;
        double start = now_s(d); /* emulated: the ring starts once every rank is ready */
        if (d->o->links) st = kvr_comm_max_f64(d->comm, &start);
        if (!st && !(st = kvr_comm_allgather(d->comm, (char *)k + s * d->row, k, c * d->row)))
            st = kvr_comm_allgather(d->comm, (char *)v + s * d->row, v, c * d->row);
        if (!st && d->o->links) pace_allgather(d, (int)l, start, c);
        event(d, KVR_EV_COLLECTIVE, "allgather", (int)l, t, (double)(2 * c * d->row), -1);
        return st;
    }
    size_t part = msg_bytes(d, cmax);
    unsigned char *mine = d->buf[2], *k = mine + sizeof(double);
    double sent = now_s(d);
    memcpy(mine, &sent, sizeof sent);
    st = kvr_exec_kv_copy(d->ex, l, (uint32_t)s, (uint32_t)c, k, k + cmax * d->row, true);
    if (!st) st = kvr_comm_allgather(d->comm, mine, all, part);
    for (int j = 0; j < d->p && !st; j++) {
        uint64_t sj = d->start[j], cj = d->start[j + 1] - sj;
        if (j == i) continue;
        memcpy(&sent, all + j * part, sizeof sent);
        pace(d, j, (int)l, sent, (double)(2 * cj * d->row));
        k = all + j * part + sizeof(double);
        st = kvr_exec_kv_copy(d->ex, l, (uint32_t)sj, (uint32_t)cj, k, k + cmax * d->row, false);
    }
    event(d, KVR_EV_COLLECTIVE, "allgather", (int)l, t, (double)(2 * c * d->row), -1);
    return st;
}

static enum kvr_status run_tsp(struct dist *d, enum kvr_mask mask)
{
    uint64_t cmax = 0;
    for (int j = 0; j < d->p; j++)
        cmax = d->start[j + 1] - d->start[j] > cmax ? d->start[j + 1] - d->start[j] : cmax;
    unsigned char *all = d->dev ? NULL : malloc(msg_bytes(d, cmax) * (size_t)d->p);
    if (!d->dev && !all) return kvr_error(KVR_ERR_NOMEM, "tsp: out of memory");
    enum kvr_status st = KVR_OK;
    for (uint32_t l = 0; l < d->m->n_layers && !st; l++)
        if (!(st = pre(d, l)) && !(st = allgather_kv(d, l, all))) st = post(d, l, mask);
    free(all);
    return st;
}

/* Pass-KV: at step t rank i forwards block (i-t+1) to rank i+1 and receives block (i-t). */
static enum kvr_status run_ring(struct dist *d)
{
    int i = d->rank, p = d->p, next = (i + 1) % p, prev = (i - 1 + p) % p;
    enum kvr_status st = KVR_OK;
    for (uint32_t l = 0; l < d->m->n_layers && !st; l++) {
        if ((st = pre(d, l))) break;
        for (int t = 1; t < p && !st; t++) {
            int sb = (i - t + 1 + p) % p, rb = (i - t + p) % p;
            uint64_t ss = d->start[sb], sr = d->start[rb];
            if ((st = kvr_comm_group(d->comm, true)) ||
                (st = send_rows(d, 2, l, next, ss, d->start[sb + 1] - ss, (int)l)) ||
                (st = recv_post(d, 0, l, prev, sr, d->start[rb + 1] - sr, (int)l)) ||
                (st = kvr_comm_group(d->comm, false)))
                break;
            st = recv_finish(d, 0, l, prev, sr, d->start[rb + 1] - sr);
        }
        if (!st) st = post(d, l, KVR_MASK_CAUSAL);
    }
    return st ? st : sends_done(d);
}

enum kvr_status kvr_dist_check(const struct kvr_dist_opts *o, int n_ranks)
{
    uint64_t sum = 0;
    for (int i = 0; i < n_ranks && i < KVR_MAX_GPUS; i++) {
        if (o->partition[i] == 0)
            return kvr_error(KVR_ERR_INPUT, "chunk %d of the partition is empty (%d ranks)", i,
                             n_ranks);
        sum += o->partition[i];
    }
    if (n_ranks > KVR_MAX_GPUS)
        return kvr_error(KVR_ERR_INPUT, "%d ranks: at most %d", n_ranks, KVR_MAX_GPUS);
    if (sum != o->ctx)
        return kvr_error(KVR_ERR_INPUT,
                         "the partition's %d chunks sum to %llu, not ctx = %u: it must have one "
                         "chunk per rank (%d ranks)",
                         n_ranks, (unsigned long long)sum, o->ctx, n_ranks);
    if (o->links && o->links->n_gpus < n_ranks)
        return kvr_error(KVR_ERR_INPUT, "machine %s has %d GPUs, fewer than the %d ranks",
                         o->links->name, o->links->n_gpus, n_ranks);
    return KVR_OK;
}

static enum kvr_status dist_setup(struct dist *d)
{
    const struct kvr_dist_opts *o = d->o;
    for (int j = 0; j < d->p; j++) d->start[j + 1] = d->start[j] + o->partition[j];
    d->row = kvr_exec_kv_row_bytes(d->ex);
    d->dev = kvr_comm_device_buffers(d->comm);
    if (d->dev && o->scheme != KVR_SCHEME_KVR && o->scheme != KVR_SCHEME_RING_PASS)
        for (int j = 1; j < d->p; j++)
            if (o->partition[j] != o->partition[0])
                return kvr_error(KVR_ERR_INPUT, "--comm nccl: tsp needs equal chunks");
    enum kvr_status st = KVR_OK;
    if (o->links && !(st = kvr_sim_open(d->m, o->links, &d->noise)))
        st = kvr_sim_draw_noise(d->noise, o->noise_trial);
    d->buf_rows = o->ctx;
    for (int s = 0; s < 4 && !st && !d->dev; s++)
        if (!(d->buf[s] = malloc(msg_bytes(d, d->buf_rows))))
            st = kvr_error(KVR_ERR_NOMEM, "out of memory for the transfer buffers");
    return st;
}

enum kvr_status kvr_dist_prefill(struct kvr_exec *ex, struct kvr_comm *comm,
                                 const struct kvr_dist_opts *o, const int32_t *tokens,
                                 float *logits, struct kvr_dist_stats *stats)
{
    struct dist d = {.ex = ex,
                     .comm = comm,
                     .o = o,
                     .m = kvr_exec_model(ex),
                     .rank = kvr_comm_rank(comm),
                     .p = kvr_comm_size(comm),
                     .stats = stats};
    memset(stats, 0, sizeof *stats);
    enum kvr_status st = kvr_dist_check(o, d.p);
    if (!st) st = dist_setup(&d);
    if (!st) st = kvr_exec_set_prompt_len(ex, o->ctx); /* dynamic NTK: the whole prompt's */
    if (!st) st = kvr_comm_barrier(comm);              /* everyone starts together */
    d.t0 = now_s(&d);
    uint32_t s = (uint32_t)d.start[d.rank], c = (uint32_t)(d.start[d.rank + 1] - s);
    if (!st && d.p == 1)
        st = kvr_exec_chunk(ex, tokens, 0, o->ctx, KVR_MASK_CAUSAL, logits);
    else if (!st) {
        st = kvr_exec_embed(ex, tokens + s, c);
        if (!st && o->scheme == KVR_SCHEME_KVR) st = run_kvr(&d);
        if (!st && (o->scheme == KVR_SCHEME_TSP || o->scheme == KVR_SCHEME_TSP_CAUSAL))
            st = run_tsp(&d, o->scheme == KVR_SCHEME_TSP ? KVR_MASK_DENSE : KVR_MASK_CAUSAL);
        if (!st && o->scheme == KVR_SCHEME_RING_PASS) st = run_ring(&d);
        if (!st && o->scheme == KVR_SCHEME_SINGLE)
            st = kvr_error(KVR_ERR_INPUT, "scheme single runs on one rank, not %d", d.p);
        if (!st) st = d.rank == d.p - 1 ? kvr_exec_logits(ex, c, logits) : kvr_exec_sync(ex);
    }
    stats->end_s = now_s(&d);
    for (int i = 0; i < 4; i++) free(d.buf[i]);
    kvr_sim_free(d.noise);
    return st;
}
