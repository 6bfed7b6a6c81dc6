/* The schemes on real ranks: the driver (kvr_dist_prefill), the checks and the set-up, and the
 * chain and transfer helpers the schemes share (kvr_dist_int.h). Each message of the mpi
 * communicator is staged on the host as [double sent_s][K rows][V rows]; nccl moves the cache
 * rows directly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvr_dist_int.h"

double kvr_dist_now_s(const struct kvr_dist *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec - d->t0;
}

void kvr_dist_event(struct kvr_dist *d, enum kvr_event_kind k, const char *what, int layer,
                    double t0, double bytes, int peer)
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
                                             .end_s = kvr_dist_now_s(d),
                                             .bytes = bytes,
                                             .peer = peer};
}

void kvr_dist_sleep_until(const struct kvr_dist *d, double t)
{
    double w = t - kvr_dist_now_s(d);
    if (w > 0)
        nanosleep(&(struct timespec){.tv_sec = (time_t)w, .tv_nsec = (long)(fmod(w, 1) * 1e9)},
                  NULL);
}

void kvr_dist_pace(struct kvr_dist *d, int from, int layer, double sent_s, double bytes)
{
    double now = kvr_dist_now_s(d), done = now;
    const struct kvr_machine *h = d->o->links;
    if (h) {
        const double *nz = kvr_sim_layer_noise(d->noise, layer);
        double bw = h->link_Bps[from][d->rank] * (1 - (nz ? nz[from * d->p + d->rank] : 0));
        done = fmax(sent_s, d->link_free[from]) + h->link_lat_s[from][d->rank] + bytes / bw;
        d->link_free[from] = done;
        kvr_dist_sleep_until(d, done);
    }
    d->stats->recv_bytes[from] += bytes;
    d->stats->recv_s[from] += fmax(done, now) - sent_s;
}

size_t kvr_dist_msg_bytes(const struct kvr_dist *d, uint64_t rows)
{
    return sizeof(double) + 2 * rows * d->row;
}

/* mpi: slot's staging buffer holds at least `rows` rows (the chain's pieces, on first use). */
static enum kvr_status slot_reserve(struct kvr_dist *d, int slot, uint64_t rows)
{
    size_t bytes = kvr_dist_msg_bytes(d, rows);
    if (d->buf_bytes[slot] >= bytes) return KVR_OK;
    free(d->buf[slot]);
    d->buf_bytes[slot] = 0;
    if (!(d->buf[slot] = malloc(bytes)))
        return kvr_error(KVR_ERR_NOMEM, "out of memory for a transfer buffer of %zu bytes", bytes);
    d->buf_bytes[slot] = bytes;
    return KVR_OK;
}

enum kvr_status kvr_dist_recv_post(struct kvr_dist *d, int slot, uint32_t layer, int peer,
                                   uint64_t pos, uint64_t rows, int tag)
{
    if (!rows) return KVR_OK;
    if (!d->dev) {
        enum kvr_status st = slot_reserve(d, slot, rows);
        return st ? st
                  : kvr_comm_irecv(d->comm, d->buf[slot], kvr_dist_msg_bytes(d, rows), peer, tag,
                                   &d->req[slot][0]);
    }
    void *k, *v;
    enum kvr_status st = kvr_exec_kv_device(d->ex, layer, (uint32_t)pos, &k, &v);
    if (!st) st = kvr_comm_irecv(d->comm, k, rows * d->row, peer, tag, &d->req[slot][0]);
    if (!st) st = kvr_comm_irecv(d->comm, v, rows * d->row, peer, tag, &d->req[slot][1]);
    if (!st && d->o->links)
        st = kvr_comm_host_irecv(d->comm, &d->stamp[slot], sizeof(double), peer,
                                 tag + KVR_DIST_STAMP_TAG, &d->stamp_req[slot]);
    return st;
}

enum kvr_status kvr_dist_recv_finish(struct kvr_dist *d, int slot, uint32_t layer, int peer,
                                     uint64_t pos, uint64_t rows)
{
    if (!rows) return KVR_OK;
    double t = kvr_dist_now_s(d);
    enum kvr_status st = kvr_comm_wait(d->comm, d->req[slot][0]);
    if (!st && d->dev) st = kvr_comm_wait(d->comm, d->req[slot][1]);
    d->req[slot][0] = d->req[slot][1] = NULL;
    if (!st && d->dev && d->stamp_req[slot]) { /* nccl: the data is in the cache already */
        st = kvr_comm_host_wait(d->comm, d->stamp_req[slot]);
        d->stamp_req[slot] = NULL;
        if (!st) kvr_dist_pace(d, peer, (int)layer, d->stamp[slot], (double)(2 * rows * d->row));
    }
    if (!st && d->dev) kvr_dist_event(d, KVR_EV_WAIT, "kv", (int)layer, t, 0, peer);
    if (st || d->dev) return st;
    double sent;
    memcpy(&sent, d->buf[slot], sizeof sent);
    kvr_dist_pace(d, peer, (int)layer, sent, (double)(2 * rows * d->row));
    kvr_dist_event(d, KVR_EV_WAIT, "kv", (int)layer, t, 0, peer);
    unsigned char *k = d->buf[slot] + sizeof(double);
    return kvr_exec_kv_copy(d->ex, layer, (uint32_t)pos, (uint32_t)rows, k, k + rows * d->row,
                            false);
}

enum kvr_status kvr_dist_slot_wait(struct kvr_dist *d, int slot)
{
    enum kvr_status st = KVR_OK;
    for (int h = 0; h < 2 && !st; h++)
        if (d->req[slot][h]) st = kvr_comm_wait(d->comm, d->req[slot][h]), d->req[slot][h] = NULL;
    if (!st && d->stamp_req[slot])
        st = kvr_comm_host_wait(d->comm, d->stamp_req[slot]), d->stamp_req[slot] = NULL;
    return st;
}

enum kvr_status kvr_dist_send_stamp(struct kvr_dist *d, int slot, int peer, int tag)
{
    if (!d->dev || !d->o->links) return KVR_OK;
    d->stamp[slot] = kvr_dist_now_s(d);
    return kvr_comm_host_isend(d->comm, &d->stamp[slot], sizeof(double), peer,
                               tag + KVR_DIST_STAMP_TAG, &d->stamp_req[slot]);
}

/* nccl: K and V from the cache in place. */
static enum kvr_status send_device(struct kvr_dist *d, int slot, uint32_t layer, int peer,
                                   uint64_t pos, uint64_t rows, int tag, int flags)
{
    void *k, *v;
    enum kvr_status st = flags & KVR_DIST_SYNC ? kvr_exec_sync(d->ex) : KVR_OK;
    if (!st) st = kvr_exec_kv_device(d->ex, layer, (uint32_t)pos, &k, &v);
    if (!st) st = kvr_comm_isend(d->comm, k, rows * d->row, peer, tag, &d->req[slot][0]);
    if (!st) st = kvr_comm_isend(d->comm, v, rows * d->row, peer, tag, &d->req[slot][1]);
    d->stamp[slot] = kvr_dist_now_s(d); /* the data was ready when the sync above returned */
    if (!st && d->o->links && !(flags & KVR_DIST_STAMP_LATER))
        st = kvr_comm_host_isend(d->comm, &d->stamp[slot], sizeof(double), peer,
                                 tag + KVR_DIST_STAMP_TAG, &d->stamp_req[slot]);
    return st;
}

enum kvr_status kvr_dist_send_piece(struct kvr_dist *d, int slot, int from, uint32_t layer,
                                    int peer, uint64_t pos, uint64_t rows, int tag, int flags)
{
    enum kvr_status st = kvr_dist_slot_wait(d, slot);
    if (st || !rows) return st;
    double t = kvr_dist_now_s(d);
    if (d->dev) {
        st = send_device(d, slot, layer, peer, pos, rows, tag, flags);
        kvr_dist_event(d, KVR_EV_SEND, "kv", (int)layer, t, (double)(2 * rows * d->row), peer);
        return st;
    }
    unsigned char *b = d->buf[from < 0 ? slot : from];
    if (from < 0) {
        if ((st = slot_reserve(d, slot, rows))) return st;
        b = d->buf[slot];
        st = kvr_exec_kv_copy(d->ex, layer, (uint32_t)pos, (uint32_t)rows, b + sizeof(double),
                              b + sizeof(double) + rows * d->row, true);
    }
    double sent = kvr_dist_now_s(d);
    if (!(flags & KVR_DIST_KEEP_STAMP)) memcpy(b, &sent, sizeof sent);
    if (!st)
        st = kvr_comm_isend(d->comm, b, kvr_dist_msg_bytes(d, rows), peer, tag, &d->req[slot][0]);
    kvr_dist_event(d, KVR_EV_SEND, "kv", (int)layer, t, (double)(2 * rows * d->row), peer);
    return st;
}

enum kvr_status kvr_dist_send_rows(struct kvr_dist *d, int slot, uint32_t layer, int peer,
                                   uint64_t pos, uint64_t rows, int tag)
{
    return kvr_dist_send_piece(d, slot, -1, layer, peer, pos, rows, tag, KVR_DIST_SYNC);
}

enum kvr_status kvr_dist_group_end(struct kvr_dist *d, enum kvr_status st)
{
    enum kvr_status g = kvr_comm_group(d->comm, false);
    return st ? st : g;
}

enum kvr_status kvr_dist_sends_done(struct kvr_dist *d)
{
    enum kvr_status st = KVR_OK;
    for (int s = 0; s < KVR_DIST_SLOTS; s++)
        for (int h = 0; h < 2; h++)
            if (d->req[s][h]) {
                enum kvr_status w = kvr_comm_wait(d->comm, d->req[s][h]);
                if (!st) st = w;
                d->req[s][h] = NULL;
            }
    for (int s = 0; s < KVR_DIST_SLOTS; s++)
        if (d->stamp_req[s]) {
            enum kvr_status w = kvr_comm_host_wait(d->comm, d->stamp_req[s]);
            if (!st) st = w;
            d->stamp_req[s] = NULL;
        }
    return st;
}

/* Fault injection for the tests: KVR_TEST_FAULT=die@R or hang@R makes rank R exit or stop
 * answering at layer 1, so the others must notice within their timeout. */
static void test_fault(const struct kvr_dist *d, uint32_t l)
{
    const char *f = getenv("KVR_TEST_FAULT");
    int r = -1;
    if (!f || l != 1) return;
    if (sscanf(f, "die@%d", &r) == 1 && r == d->rank) _exit(3);
    if (sscanf(f, "hang@%d", &r) == 1 && r == d->rank)
        for (;;) pause();
}

/* KVR_TEST_FAULT=late@R: rank R leaves the start's barrier 0.2 s after the others (a rank the
 * OS ran late), for the test that every rank's times are on one clock. */
static void test_late_start(const struct kvr_dist *d)
{
    const char *f = getenv("KVR_TEST_FAULT");
    int r = -1;
    if (f && sscanf(f, "late@%d", &r) == 1 && r == d->rank)
        nanosleep(&(struct timespec){.tv_nsec = 200000000}, NULL);
}

/* This rank's chunk: positions [*s, *s + *c). */
static void own_chunk(const struct kvr_dist *d, uint32_t *s, uint32_t *c)
{
    *s = (uint32_t)d->start[d->rank], *c = (uint32_t)kvr_dist_rows(d, d->rank);
}

enum kvr_status kvr_dist_pre(struct kvr_dist *d, uint32_t l)
{
    test_fault(d, l);
    double t = kvr_dist_now_s(d);
    uint32_t s, c;
    own_chunk(d, &s, &c);
    enum kvr_status st = kvr_exec_layer_qkv(d->ex, l, s, c);
    if (!st && d->o->timeline) st = kvr_exec_sync(d->ex);
    kvr_dist_event(d, KVR_EV_COMPUTE, "pre", (int)l, t, 0, -1);
    return st;
}

enum kvr_status kvr_dist_post(struct kvr_dist *d, uint32_t l, enum kvr_mask mask)
{
    double t = kvr_dist_now_s(d);
    uint32_t s, c;
    own_chunk(d, &s, &c);
    enum kvr_status st = kvr_exec_layer_rest(d->ex, l, s, c, mask);
    if (!st && d->o->timeline) st = kvr_exec_sync(d->ex);
    kvr_dist_event(d, KVR_EV_COMPUTE, "attn+post", (int)l, t, 0, -1);
    return st;
}

enum kvr_status kvr_dist_sim_only(struct kvr_dist *d)
{
    return kvr_error(KVR_ERR_INPUT, "scheme %s is simulated only", kvr_scheme_name(d->o->scheme));
}

#define KVR_EXEC(f)  f
#define KVR_SIM_ONLY kvr_dist_sim_only
static const kvr_dist_scheme_fn entries[KVR_N_SCHEMES] = {
#define KVR_SCHEME(id, name, label, sim, exec, options, help) [KVR_SCHEME_##id] = exec,
#include "kvr_scheme_list.h"
#undef KVR_SCHEME
};
#undef KVR_EXEC
#undef KVR_SIM_ONLY

bool kvr_dist_runs(enum kvr_scheme s)
{
    return kvr_scheme_executes(s);
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
    enum kvr_status st = kvr_scheme_check_forward(o->scheme, o->kv_forward);
    if (st) return st;
    if (o->links && o->links->n_gpus < n_ranks)
        return kvr_error(KVR_ERR_INPUT, "machine %s has %d GPUs, fewer than the %d ranks",
                         o->links->name, o->links->n_gpus, n_ranks);
    return KVR_OK;
}

static enum kvr_status dist_setup(struct kvr_dist *d)
{
    const struct kvr_dist_opts *o = d->o;
    for (int j = 0; j < d->p; j++) d->start[j + 1] = d->start[j] + o->partition[j];
    d->row = kvr_exec_kv_row_bytes(d->ex);
    d->dev = kvr_comm_device_buffers(d->comm);
    const struct kvr_scheme_desc *sd = kvr_scheme_get(o->scheme);
    if (!sd) return kvr_error(KVR_ERR_INPUT, "unknown scheme %d", (int)o->scheme);
    if (d->dev && !(sd->options & (KVR_SO_PARTITION | KVR_SO_ZIGZAG)))
        for (int j = 1; j < d->p; j++)
            if (o->partition[j] != o->partition[0])
                return kvr_error(KVR_ERR_INPUT, "--comm nccl: %s needs equal chunks", sd->name);
    enum kvr_status st = KVR_OK;
    if (o->links && !(st = kvr_sim_open(d->m, o->links, &d->noise)))
        st = kvr_sim_draw_noise(d->noise, o->noise_trial);
    d->buf_rows = o->ctx;
    for (int s = 0; s < 4 && !st && !d->dev; s++) st = slot_reserve(d, s, d->buf_rows);
    return st;
}

int kvr_dist_logits_rank(enum kvr_scheme s, int p)
{
    const struct kvr_scheme_desc *sd = kvr_scheme_get(s);
    return sd && (sd->options & KVR_SO_ZIGZAG) ? 0 : p - 1;
}

/* This rank's c tokens: its contiguous chunk, or under zig-zag sharding its two chunks. */
static enum kvr_status embed_mine(struct kvr_dist *d, const int32_t *tokens, uint32_t c)
{
    const struct kvr_scheme_desc *sd = kvr_scheme_get(d->o->scheme);
    if (!(sd->options & KVR_SO_ZIGZAG)) return kvr_exec_embed(d->ex, tokens + d->start[d->rank], c);
    struct kvr_span sp = kvr_zigzag_span(d->o->ctx, d->p, d->rank);
    uint32_t n = 0;
    if (kvr_span_rows(&sp) != c)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: rank %d holds %llu tokens under zig-zag sharding, not %u", sd->name,
                         d->rank, (unsigned long long)kvr_span_rows(&sp), c);
    int32_t *mine = malloc((size_t)c * sizeof *mine);
    if (!mine) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (int h = 0; h < 2; h++)
        for (uint32_t x = sp.pos[h]; x < sp.pos[h] + sp.n[h]; x++) mine[n++] = tokens[x];
    enum kvr_status st = kvr_exec_embed(d->ex, mine, c);
    free(mine);
    return st;
}

/* Every rank leaves a barrier, then takes rank 0's clock at its exit as the run's origin:
 * send times travel between ranks, and TTFT is the latest rank's end, so every rank's times
 * are on one clock (kvr_comm_sync_clock; each rank's own barrier exit, as before, put a rank
 * that left it late behind the others and made achieved link rates negative). */
static enum kvr_status start_together(struct kvr_dist *d)
{
    struct kvr_comm *all = d->o->world ? d->o->world : d->comm;
    enum kvr_status st = kvr_comm_sync_clock(all);
    if (!st) st = kvr_comm_barrier(all);
    test_late_start(d);
    d->t0 = 0;
    double origin = kvr_dist_now_s(d) - kvr_comm_clock_offset_s(all); /* rank 0's clock */
    if (!st) st = kvr_comm_bcast(all, &origin, sizeof origin, 0);
    d->t0 = origin + kvr_comm_clock_offset_s(all); /* this rank's clock */
    return st;
}

/* A compute phase of the driver with its timeline event (synchronous when a timeline is kept). */
static enum kvr_status timed_phase(struct kvr_dist *d, const char *what, int layer, double t0,
                                   enum kvr_status st)
{
    if (!st && d->o->timeline) st = kvr_exec_sync(d->ex);
    if (!st) kvr_dist_event(d, KVR_EV_COMPUTE, what, layer, t0, 0, -1);
    return st;
}

enum kvr_status kvr_dist_prefill(struct kvr_exec *ex, struct kvr_comm *comm,
                                 const struct kvr_dist_opts *o, const int32_t *tokens,
                                 float *logits, struct kvr_dist_stats *stats)
{
    struct kvr_dist d = {.ex = ex,
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
    if (!st) st = start_together(&d);
    uint32_t s, c;
    own_chunk(&d, &s, &c);
    if (!st && d.p == 1)
        st = kvr_exec_chunk(ex, tokens, 0, o->ctx, KVR_MASK_CAUSAL, logits);
    else if (!st) {
        double t = kvr_dist_now_s(&d);
        st = embed_mine(&d, tokens, c);
        st = timed_phase(&d, "embed", -1, t, st);
        if (!st) st = entries[o->scheme](&d);
        t = kvr_dist_now_s(&d);
        if (!st && d.rank == kvr_dist_logits_rank(o->scheme, d.p))
            st = timed_phase(&d, "head", (int)d.m->n_layers, t, kvr_exec_logits(ex, c, logits));
        else if (!st)
            st = kvr_exec_sync(ex);
    }
    stats->end_s = kvr_dist_now_s(&d);
    for (int i = 0; i < KVR_DIST_SLOTS; i++) free(d.buf[i]);
    kvr_sim_free(d.noise);
    return st;
}
