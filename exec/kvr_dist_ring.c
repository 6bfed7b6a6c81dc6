/* ring on ranks: zig-zag ring attention. Rank i holds chunks i and 2p-1-i of 2p (so rank 0
 * holds the last token and computes the logits). Per layer, p steps; at step j the block of
 * rank (i-j) mod p is in hand:
 *   pass-KV  its K/V (received straight into this rank's cache at its positions, so every rank
 *            ends with the whole cache): the transfer of the next block (send this one to i+1,
 *            receive from i-1, one group) runs while this rank attends its queries to it, the
 *            partial output merged into the running one by its log-sum-exp;
 *   pass-Q   its queries: they attend to this rank's own K/V while the next ones travel, each
 *            partial output and LSE kept; after the p steps the partials go back to their
 *            owners in p-1 pairwise rounds and are merged there.
 * A rank leaves a step when its send and its receive are done. With a sliding window that trims
 * (sim/kvr_trim.h: 0 < W < ctx) each hop carries only what the ranks still ahead on the block's
 * way attend to (pass-KV: a tail of each of its two chunks; pass-Q: a prefix of the packed
 * queries), a hop with nothing is not sent, and a step whose block this rank cannot see is
 * skipped (no attention, no merge, no partial sent back). The simulator's `ring`
 * (sim/kvr_scheme_ring.c) models this schedule. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cost.h"
#include "kvr_dist_int.h"
#include "kvr_trim.h"

enum { SLOT_ACC, SLOT_IN, SLOT_OUT }; /* output slots; pass-Q keeps block b's at SLOT_OUT+b */
enum piece_kind { P_KV, P_Q, P_O };

/* What a message carries: a layer's K/V at the positions of a span, or rows of a slot. */
struct piece {
    enum piece_kind kind;
    uint32_t layer, slot;
    struct kvr_span span; /* P_KV: its positions; P_Q, P_O: span.n[0] rows */
};

/* One message in flight: its requests, its send time beside it (nccl with emulated links) or
 * in its host staging buffer's first 8 bytes (mpi). */
struct xfer {
    struct piece pc;
    int peer, tag;
    bool overlapped;
    unsigned char *host;
    struct kvr_comm_req *req[4], *stamp_req;
    double stamp, posted_s; /* posted_s: when the receive was posted */
};

struct ring {
    struct kvr_dist *d;
    int i, p;
    struct kvr_span span[KVR_MAX_GPUS]; /* each rank's rows */
    uint32_t rows;                      /* the most any rank holds */
    size_t q_row, o_row;                /* bytes of a slot row */
    struct xfer send, recv;
};

/* The model's sliding window (0: none): the ring attention honours it. */
static uint32_t ring_window(const struct kvr_model *m)
{
    return m->sliding_window;
}

static uint32_t rows_of(const struct ring *g, int r)
{
    return kvr_span_rows(&g->span[r]);
}

/* The device regions of a piece (K and V of each range, or one slot region). */
static enum kvr_status piece_regions(struct ring *g, const struct piece *pc, void **at,
                                     size_t *bytes, int *n)
{
    struct kvr_exec *ex = g->d->ex;
    enum kvr_status st = KVR_OK;
    *n = 0;
    if (pc->kind != P_KV) {
        size_t row;
        st = kvr_exec_ring_area(ex, pc->kind == P_Q ? KVR_RING_Q : KVR_RING_O, pc->slot, &at[0],
                                &row);
        bytes[0] = row * pc->span.n[0], *n = 1;
        return st;
    }
    for (int h = 0; h < 2 && !st; h++)
        if (pc->span.n[h]) {
            st = kvr_exec_kv_device(ex, pc->layer, pc->span.pos[h], &at[*n], &at[*n + 1]);
            bytes[*n] = bytes[*n + 1] = pc->span.n[h] * g->d->row, *n += 2;
        }
    return st;
}

static size_t piece_bytes(const struct ring *g, const struct piece *pc)
{
    if (pc->kind == P_KV) return 2 * (size_t)kvr_span_rows(&pc->span) * g->d->row;
    return (pc->kind == P_Q ? g->q_row : g->o_row) * pc->span.n[0];
}

/* A piece between the backend and host bytes (mpi staging). */
static enum kvr_status piece_copy(struct ring *g, const struct piece *pc, unsigned char *host,
                                  bool to_host)
{
    struct kvr_exec *ex = g->d->ex;
    if (pc->kind != P_KV)
        return kvr_exec_ring_copy(ex, pc->kind == P_Q ? KVR_RING_Q : KVR_RING_O, pc->slot,
                                  pc->span.n[0], host, to_host);
    enum kvr_status st = KVR_OK;
    for (int h = 0; h < 2 && !st; h++) {
        size_t b = pc->span.n[h] * g->d->row;
        st = kvr_exec_kv_copy(ex, pc->layer, pc->span.pos[h], pc->span.n[h], host, host + b,
                              to_host);
        host += 2 * b;
    }
    return st;
}

/* Waits for a message's requests (a send's, before its buffer is used again). */
static enum kvr_status xfer_wait(struct ring *g, struct xfer *x)
{
    enum kvr_status st = KVR_OK;
    for (int k = 0; k < 4; k++)
        if (x->req[k]) {
            enum kvr_status w = kvr_comm_wait(g->d->comm, x->req[k]);
            st = st ? st : w;
            x->req[k] = NULL;
        }
    if (x->stamp_req) {
        enum kvr_status w = kvr_comm_host_wait(g->d->comm, x->stamp_req);
        st = st ? st : w;
        x->stamp_req = NULL;
    }
    return st;
}

static enum kvr_status xfer_send(struct ring *g, struct xfer *x)
{
    struct kvr_dist *d = g->d;
    double t = kvr_dist_now_s(d);
    size_t bytes = piece_bytes(g, &x->pc);
    enum kvr_status st = KVR_OK;
    if (d->dev) {
        void *at[4];
        size_t b[4];
        int n = 0;
        if (!(st = kvr_exec_sync(d->ex))) st = piece_regions(g, &x->pc, at, b, &n);
        for (int k = 0; k < n && !st; k++)
            st = kvr_comm_isend(d->comm, at[k], b[k], x->peer, x->tag, &x->req[k]);
        x->stamp = kvr_dist_now_s(d); /* the data was ready when the sync returned */
        if (!st && d->o->links)
            st = kvr_comm_host_isend(d->comm, &x->stamp, sizeof x->stamp, x->peer,
                                     x->tag + KVR_DIST_STAMP_TAG, &x->stamp_req);
    } else {
        st = piece_copy(g, &x->pc, x->host + sizeof(double), true);
        double sent = kvr_dist_now_s(d);
        memcpy(x->host, &sent, sizeof sent);
        if (!st)
            st = kvr_comm_isend(d->comm, x->host, bytes + sizeof(double), x->peer, x->tag,
                                &x->req[0]);
    }
    kvr_dist_event(d, KVR_EV_SEND,
                   x->pc.kind == P_KV  ? "kv"
                   : x->pc.kind == P_Q ? "q"
                                       : "out",
                   (int)x->pc.layer, t, (double)bytes, x->peer);
    return st;
}

static enum kvr_status xfer_recv_post(struct ring *g, struct xfer *x)
{
    struct kvr_dist *d = g->d;
    x->posted_s = kvr_dist_now_s(d);
    if (!d->dev)
        return kvr_comm_irecv(d->comm, x->host, piece_bytes(g, &x->pc) + sizeof(double), x->peer,
                              x->tag, &x->req[0]);
    void *at[4];
    size_t b[4];
    int n = 0;
    enum kvr_status st = piece_regions(g, &x->pc, at, b, &n);
    for (int k = 0; k < n && !st; k++)
        st = kvr_comm_irecv(d->comm, at[k], b[k], x->peer, x->tag, &x->req[k]);
    if (!st && d->o->links)
        st = kvr_comm_host_irecv(d->comm, &x->stamp, sizeof x->stamp, x->peer,
                                 x->tag + KVR_DIST_STAMP_TAG, &x->stamp_req);
    return st;
}

/* Holds a received message until its emulated link could have delivered it: the simulator's
 * link time (with the overlap cap for the transfers that run beside the attention), from when
 * both ends were in the exchange and the link was free. */
static void ring_pace(struct ring *g, const struct xfer *x, double sent_s)
{
    struct kvr_dist *d = g->d;
    const struct kvr_machine *h = d->o->links;
    double now = kvr_dist_now_s(d), done = now, bytes = (double)piece_bytes(g, &x->pc);
    if (h) {
        const double *nz = kvr_sim_layer_noise(d->noise, (int)x->pc.layer);
        double share = nz ? nz[x->peer * d->p + d->rank] : 0;
        double dur = x->overlapped ? kvr_link_overlap_s(h, x->peer, d->rank, bytes, share)
                                   : kvr_link_s(h, x->peer, d->rank, bytes, share);
        done = fmax(fmax(sent_s, x->posted_s), d->link_free[x->peer]) + dur;
        d->link_free[x->peer] = done;
        kvr_dist_sleep_until(d, done);
    }
    d->stats->recv_bytes[x->peer] += bytes;
    d->stats->recv_s[x->peer] += fmax(done, now) - sent_s;
}

static enum kvr_status xfer_recv_finish(struct ring *g, struct xfer *x)
{
    struct kvr_dist *d = g->d;
    double t = kvr_dist_now_s(d), sent = 0;
    bool stamped = !d->dev || x->stamp_req;
    enum kvr_status st = xfer_wait(g, x);
    if (!st && stamped) {
        if (d->dev)
            sent = x->stamp;
        else
            memcpy(&sent, x->host, sizeof sent);
        ring_pace(g, x, sent);
    }
    if (!st && !d->dev) st = piece_copy(g, &x->pc, x->host + sizeof(double), false);
    kvr_dist_event(d, KVR_EV_WAIT,
                   x->pc.kind == P_KV  ? "kv"
                   : x->pc.kind == P_Q ? "q"
                                       : "out",
                   (int)x->pc.layer, t, 0, x->peer);
    return st;
}

/* One exchange: x->send to its peer and x->recv from its peer as one group, posted now. */
/* An empty piece (a window left nothing to move) is neither sent nor received. */
static enum kvr_status exchange_start(struct ring *g)
{
    enum kvr_status st = kvr_comm_group(g->d->comm, true);
    if (!st && piece_bytes(g, &g->send.pc)) st = xfer_send(g, &g->send);
    if (!st && piece_bytes(g, &g->recv.pc)) st = xfer_recv_post(g, &g->recv);
    return kvr_dist_group_end(g->d, st);
}

static enum kvr_status exchange_end(struct ring *g)
{
    enum kvr_status st = piece_bytes(g, &g->recv.pc) ? xfer_recv_finish(g, &g->recv) : KVR_OK;
    enum kvr_status w = xfer_wait(g, &g->send);
    return st ? st : w;
}

static struct piece kv_piece(const struct ring *g, uint32_t l, int r)
{
    return (struct piece){.kind = P_KV, .layer = l, .span = g->span[r]};
}

static struct piece slot_piece(enum piece_kind k, uint32_t l, uint32_t slot, uint32_t rows)
{
    return (struct piece){.kind = k, .layer = l, .slot = slot, .span = {{0, 0}, {rows, 0}}};
}

/* pass-KV: the rows of rank k's block that the receivers of hops [h_lo, h_hi) attend to (the
 * whole block without a window). */
static struct kvr_span kv_hop(const struct ring *g, int k, int h_lo, int h_hi)
{
    uint64_t pos[2], n[2];
    kvr_trim_ring_kv(g->d->m, g->d->o->ctx, g->p, k, h_lo, h_hi, pos, n);
    return (struct kvr_span){{(uint32_t)pos[0], (uint32_t)pos[1]},
                             {(uint32_t)n[0], (uint32_t)n[1]}};
}

/* pass-Q: the rows (a prefix of the packed queries) of rank b's block that the receivers of hops
 * [h_lo, h_hi) attend to. */
static uint32_t q_hop(const struct ring *g, int b, int h_lo, int h_hi)
{
    return (uint32_t)kvr_trim_ring_q(g->d->m, g->d->o->ctx, g->p, b, h_lo, h_hi);
}

/* The first `rows` rows of a span (its packed order). */
static struct kvr_span span_prefix(struct kvr_span s, uint32_t rows)
{
    s.n[0] = rows < s.n[0] ? rows : s.n[0];
    s.n[1] = rows - s.n[0];
    return s;
}

/* A compute phase with its timeline event (synchronous when a timeline is kept). */
static enum kvr_status phase_end(struct ring *g, const char *what, uint32_t l, double t0,
                                 enum kvr_status st)
{
    if (!st && g->d->o->timeline) st = kvr_exec_sync(g->d->ex);
    kvr_dist_event(g->d, KVR_EV_COMPUTE, what, (int)l, t0, 0, -1);
    return st;
}

/* pass-KV: one layer's p steps, then the output. */
static enum kvr_status layer_pass_kv(struct ring *g, uint32_t l)
{
    struct kvr_dist *d = g->d;
    int i = g->i, p = g->p;
    const struct kvr_span *mine = &g->span[i];
    enum kvr_status st = KVR_OK;
    for (int j = 0; j < p && !st; j++) {
        int k = (i - j + p) % p;
        if (j + 1 < p) { /* block k on its hop j, block k-1 on its hop j */
            g->send.pc = (struct piece){.kind = P_KV, .layer = l, .span = kv_hop(g, k, j, p - 1)};
            g->recv.pc = (struct piece){
                .kind = P_KV, .layer = l, .span = kv_hop(g, (k - 1 + p) % p, j, p - 1)};
            g->send.peer = (i + 1) % p, g->recv.peer = (i - 1 + p) % p;
            g->send.tag = g->recv.tag = 2 * (int)l, g->send.overlapped = g->recv.overlapped = true;
            if ((st = exchange_start(g))) break;
        }
        /* the keys of block k this rank sees (all of it without a window) */
        struct kvr_span keys = j ? kv_hop(g, k, j - 1, j) : g->span[k];
        if (!kvr_span_rows(&keys)) { /* a window: no query here sees a key of it */
            if (j + 1 < p) st = exchange_end(g);
            continue;
        }
        double t = kvr_dist_now_s(d);
        st = kvr_exec_ring_attn(d->ex, l, -1, mine, &keys, ring_window(d->m),
                                j ? SLOT_IN : SLOT_ACC);
        st = phase_end(g, "attn", l, t, st);
        t = kvr_dist_now_s(d);
        if (!st && j)
            st = phase_end(g, "merge", l, t,
                           kvr_exec_ring_merge(d->ex, SLOT_ACC, SLOT_IN, rows_of(g, i)));
        if (!st && j + 1 < p) st = exchange_end(g);
    }
    return st;
}

/* pass-Q: the queries around the ring, then the partial outputs back to their owners. */
static enum kvr_status layer_pass_q(struct ring *g, uint32_t l)
{
    struct kvr_dist *d = g->d;
    int i = g->i, p = g->p;
    double t = kvr_dist_now_s(d);
    enum kvr_status st = phase_end(g, "pack", l, t, kvr_exec_ring_q_pack(d->ex, 0, rows_of(g, i)));
    for (int j = 0; j < p && !st; j++) {
        int b = (i - j + p) % p, nb = (b - 1 + p) % p;
        if (j + 1 < p) { /* block b on its hop j, block b-1 on its hop j */
            g->send.pc = slot_piece(P_Q, l, (uint32_t)j % 2, q_hop(g, b, j, p - 1));
            g->recv.pc = slot_piece(P_Q, l, (uint32_t)(j + 1) % 2, q_hop(g, nb, j, p - 1));
            g->send.peer = (i + 1) % p, g->recv.peer = (i - 1 + p) % p;
            g->send.tag = g->recv.tag = 2 * (int)l, g->send.overlapped = g->recv.overlapped = true;
            if ((st = exchange_start(g))) break;
        }
        /* the queries of block b that see this rank's keys (all of them without a window) */
        struct kvr_span qs = j ? span_prefix(g->span[b], q_hop(g, b, j - 1, j)) : g->span[b];
        t = kvr_dist_now_s(d);
        if (kvr_span_rows(&qs)) {
            st = kvr_exec_ring_attn(d->ex, l, j % 2, &qs, &g->span[i], ring_window(d->m),
                                    j ? SLOT_OUT + (uint32_t)b : SLOT_ACC);
            st = phase_end(g, "attn", l, t, st);
        }
        if (!st && j + 1 < p) st = exchange_end(g);
    }
    for (int j = 1; j < p && !st; j++) { /* round j: block i-j's partial home, ours from i+j */
        int b = (i - j + p) % p;
        uint32_t back = q_hop(g, i, j - 1, j); /* the rows of ours that rank i+j attended */
        g->send.pc = slot_piece(P_O, l, SLOT_OUT + (uint32_t)b, q_hop(g, b, j - 1, j));
        g->recv.pc = slot_piece(P_O, l, SLOT_IN, back);
        g->send.peer = b, g->recv.peer = (i + j) % p;
        g->send.tag = g->recv.tag = 2 * (int)l + 1, g->send.overlapped = g->recv.overlapped = false;
        if (!(st = exchange_start(g)) && !(st = exchange_end(g)) && back) {
            t = kvr_dist_now_s(d);
            st = kvr_exec_ring_merge(d->ex, SLOT_ACC, SLOT_IN, back);
            st = phase_end(g, "merge", l, t, st);
        }
    }
    return st;
}

/* The spans, the workspace and the staging buffers; checks the partition is the zig-zag one. */
static enum kvr_status ring_open(struct ring *g, struct kvr_dist *d)
{
    const struct kvr_model *m = d->m;
    bool q = d->o->ring_pass == KVR_RING_PASS_Q;
    *g = (struct ring){.d = d, .i = d->rank, .p = d->p};
    if (d->o->ring_pass != KVR_RING_PASS_KV && d->o->ring_pass != KVR_RING_PASS_Q)
        return kvr_error(KVR_ERR_INPUT,
                         "ring: pass %s is not kv or q (auto is resolved by the "
                         "caller: kvr exec --ring-pass auto --machine P)",
                         kvr_ring_pass_name(d->o->ring_pass));
    if (d->o->ctx < 2 * (uint32_t)d->p)
        return kvr_error(KVR_ERR_INPUT, "ring needs ctx >= 2p (%d) for zig-zag chunks", 2 * d->p);
    for (int r = 0; r < d->p; r++) {
        g->span[r] = kvr_zigzag_span(d->o->ctx, d->p, r);
        if (d->o->partition[r] != rows_of(g, r))
            return kvr_error(KVR_ERR_INPUT,
                             "ring: rank %d holds %u tokens under zig-zag sharding, not the %llu "
                             "of the partition",
                             r, rows_of(g, r), (unsigned long long)d->o->partition[r]);
        g->rows = rows_of(g, r) > g->rows ? rows_of(g, r) : g->rows;
    }
    enum kvr_status st =
        kvr_exec_ring_setup(d->ex, g->rows, q ? 2 : 0, q ? SLOT_OUT + (uint32_t)d->p : 2);
    void *at;
    if (!st) st = kvr_exec_ring_area(d->ex, KVR_RING_O, 0, &at, &g->o_row);
    g->q_row = (size_t)m->n_heads * m->head_dim * (d->row / ((size_t)m->n_kv_heads * m->head_dim));
    size_t most = 2 * (size_t)g->rows * d->row;
    if (q) most = g->rows * (g->q_row > g->o_row ? g->q_row : g->o_row);
    if (!st && !d->dev &&
        (!(g->send.host = malloc(most + sizeof(double))) ||
         !(g->recv.host = malloc(most + sizeof(double)))))
        st = kvr_error(KVR_ERR_NOMEM, "ring: out of memory for the transfer buffers");
    return st;
}

enum kvr_status kvr_dist_ring(struct kvr_dist *d)
{
    struct ring g;
    enum kvr_status st = ring_open(&g, d);
    const struct kvr_span *mine = &g.span[g.i];
    for (uint32_t l = 0; l < d->m->n_layers && !st; l++) {
        double t = kvr_dist_now_s(d);
        st = phase_end(&g, "pre", l, t, kvr_exec_layer_qkv_span(d->ex, l, mine));
        if (!st)
            st = d->o->ring_pass == KVR_RING_PASS_Q ? layer_pass_q(&g, l) : layer_pass_kv(&g, l);
        t = kvr_dist_now_s(d);
        if (!st) st = kvr_exec_ring_finish(d->ex, SLOT_ACC, rows_of(&g, g.i));
        if (!st) st = kvr_exec_layer_after_attn(d->ex, l, rows_of(&g, g.i));
        st = phase_end(&g, "post", l, t, st);
    }
    free(g.send.host), free(g.recv.host);
    return st;
}

/* Whether the logits rank lacks rows of the cache after the prefill: ring's pass-Q (each rank
 * keeps its own blocks), and a sliding window that trims what the schemes move (kvr in every
 * hand-off mode, tsp, tsp-causal, ring-pass, ring: the logits rank gets only the rows its
 * queries see). */
static bool assemble_needed(const struct kvr_dist_opts *o, const struct kvr_model *m)
{
    if (o->scheme == KVR_SCHEME_RING && o->ring_pass == KVR_RING_PASS_Q) return true;
    if (!kvr_trim_active(m, o->ctx)) return false;
    return o->scheme == KVR_SCHEME_KVR || o->scheme == KVR_SCHEME_TSP ||
           o->scheme == KVR_SCHEME_TSP_CAUSAL || o->scheme == KVR_SCHEME_RING_PASS ||
           o->scheme == KVR_SCHEME_RING;
}

/* Each rank's own rows (its chunk of the partition, or with zz its zig-zag chunks) and the most
 * of them. */
static void own_spans(struct ring *g, const struct kvr_dist_opts *o, bool zz)
{
    uint64_t at = 0;
    for (int r = 0; r < g->p; r++) {
        g->span[r] = zz ? kvr_zigzag_span(o->ctx, g->p, r)
                        : (struct kvr_span){{(uint32_t)at, 0}, {(uint32_t)o->partition[r], 0}};
        at += o->partition[r];
        g->rows = rows_of(g, r) > g->rows ? rows_of(g, r) : g->rows;
    }
}

/* Layer l's rows of every other rank into the cache of root (each sends its own). */
static enum kvr_status gather_layer(struct ring *g, uint32_t l, int root)
{
    int me = g->d->rank;
    enum kvr_status st = KVR_OK;
    for (int r = 0; r < g->p && !st; r++) {
        if (r == root || (me != root && me != r)) continue;
        struct xfer *x = &g->send;
        x->pc = kv_piece(g, l, r), x->peer = me == root ? r : root, x->tag = 2 * (int)l;
        if (me == root && !(st = xfer_recv_post(g, x)))
            st = xfer_recv_finish(g, x);
        else if (me != root && !(st = xfer_send(g, x)))
            st = xfer_wait(g, x);
    }
    return st;
}

/* Then every other rank sends its own rows (its chunk, or under zig-zag sharding its two),
 * layer by layer, to the logits rank, which receives them into its cache. Outside the timed
 * prefill: for the checks and dumps. */
enum kvr_status kvr_dist_assemble_kv(struct kvr_exec *ex, struct kvr_comm *comm,
                                     const struct kvr_dist_opts *o)
{
    int p = kvr_comm_size(comm), root = kvr_dist_logits_rank(o->scheme, p);
    if (p == 1 || !assemble_needed(o, kvr_exec_model(ex))) return KVR_OK;
    struct kvr_dist_opts quiet = *o;
    quiet.links = NULL, quiet.timeline = NULL;
    struct kvr_dist_stats stats;
    struct kvr_dist d = {.ex = ex,
                         .comm = comm,
                         .o = &quiet,
                         .m = kvr_exec_model(ex),
                         .rank = kvr_comm_rank(comm),
                         .p = p,
                         .dev = kvr_comm_device_buffers(comm),
                         .row = kvr_exec_kv_row_bytes(ex),
                         .stats = &stats};
    struct ring g = {.d = &d, .i = d.rank, .p = p};
    enum kvr_status st = KVR_OK;
    own_spans(&g, o, kvr_dist_logits_rank(o->scheme, p) == 0);
    if (!d.dev && !(g.send.host = malloc(2 * (size_t)g.rows * d.row + sizeof(double))))
        st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < d.m->n_layers && !st; l++) st = gather_layer(&g, l, root);
    free(g.send.host);
    return st;
}
