/* kvr on ranks: the KV cache handed down the chain in the plan's mode (kvr_scheme.h):
 *   whole     each layer's [0, S_i) sent on to i+1 once [0, S_{i-1}) is in, before this rank's
 *             own attention;
 *   streamed  each piece (one rank's chunk of the layer) forwarded to i+1 as soon as it is in,
 *             and this rank's own chunk as soon as computed;
 *   direct    this rank's chunk of each layer sent to every later rank.
 * Every piece lands in the receiver's cache at its own rows (nccl: in place; mpi: from the
 * staging buffer), the same layout in every mode, and the attention of a rank starts when all
 * its keys are in. On nccl all of a rank's transfers run in order on the communicator's one
 * stream, beside the compute stream; the order below is the simulator's (kvr_scheme_kvr.c). */
#include "kvr_dist_int.h"
#include "kvr_trim.h"

static enum kvr_status kvr_whole(struct kvr_dist *d)
{
    int i = d->rank, p = d->p;
    uint64_t prev = d->start[i], upto = d->start[i + 1];
    /* With a sliding window W the ranks after this one attend only positions from
     * S_i - (W - 1) on: the chain hands on [first(S_i), S_i), not [0, S_i). */
    uint64_t in0 = kvr_window_first(d->m, prev), out0 = kvr_window_first(d->m, upto);
    uint32_t n_layers = d->m->n_layers;
    enum kvr_status st = i > 0 ? kvr_dist_recv_post(d, 0, 0, i - 1, in0, prev - in0, 0) : KVR_OK;
    for (uint32_t l = 0; l < n_layers && !st; l++) {
        if ((st = kvr_dist_pre(d, l))) break;
        if (i > 0 && (st = kvr_dist_recv_finish(d, (int)(l % 2), l, i - 1, in0, prev - in0))) break;
        /* the whole cache so far goes on before this rank's own attention, and before the
         * next layer's receive is posted: NCCL runs a rank's transfers in order on one stream,
         * so a receive posted first would hold this send until the previous rank's next layer
         * (every hop of the chain a layer late) */
        if (i < p - 1 &&
            (st = kvr_dist_send_rows(d, 2 + (int)(l % 2), l, i + 1, out0, upto - out0, (int)l)))
            break;
        if (i > 0 && l + 1 < n_layers &&
            (st = kvr_dist_recv_post(d, (int)((l + 1) % 2), l + 1, i - 1, in0, prev - in0,
                                     (int)l + 1)))
            break;
        st = kvr_dist_post(d, l, KVR_MASK_CAUSAL);
    }
    return st ? st : kvr_dist_sends_done(d);
}

/* Piece k of layer l: rank k's rows, its slots and its tag. */
static int recv_slot(uint32_t l, int k)
{
    return KVR_DIST_PIECE_SLOT + (int)(l % 2) * KVR_MAX_GPUS + k;
}
static int send_slot(uint32_t l, int k)
{
    return KVR_DIST_PIECE_SLOT + (2 + (int)(l % 4)) * KVR_MAX_GPUS + k;
}
static int piece_tag(const struct kvr_dist *d, uint32_t l, int k)
{
    return (int)l * d->p + k;
}
/* The rows of rank k's piece that ranks [to, to_end) see, from *lo (sim/kvr_trim.h: all of it
 * without a window; streamed: the ranks from the receiver on, direct: the receiver), as the
 * simulator's chain hands them on. */
static uint64_t piece_rows(const struct kvr_dist *d, int k, int to, int to_end, uint64_t *lo)
{
    return kvr_trim_keys(d->m, d->o->ctx, d->start[k], d->start[k + 1], d->start[to],
                         d->start[to_end], lo);
}

/* Streamed: the n-th piece rank i receives at layer l, in the order rank i-1 sent them (layer
 * 0: its own first, then what it received, so i-1, i-2, ..., 0; later layers: what it
 * received first, then its own, so 0, 1, ..., i-1). */
static int streamed_piece(int i, uint32_t l, int n)
{
    return l == 0 ? i - 1 - n : n;
}

/* This rank's piece to peer (streamed: for the ranks from peer on; direct: for peer). */
static enum kvr_status send_own(struct kvr_dist *d, uint32_t l, int peer, int slot, int from,
                                int flags)
{
    int i = d->rank;
    uint64_t lo,
        n = piece_rows(d, i, peer, d->o->kv_forward == KVR_FWD_DIRECT ? peer + 1 : d->p, &lo);
    return kvr_dist_send_piece(d, slot, from, l, peer, lo, n, piece_tag(d, l, i), flags);
}

/* nccl: the forward of piece k, queued behind its receive on the stream (it leaves once the
 * piece is in); its send time, with link emulation, once this rank has paced the piece. */
static enum kvr_status forward_queued(struct kvr_dist *d, uint32_t l, int k)
{
    uint64_t lo, n = piece_rows(d, k, d->rank + 1, d->p, &lo);
    return kvr_dist_send_piece(d, send_slot(l, k), -1, l, d->rank + 1, lo, n, piece_tag(d, l, k),
                               KVR_DIST_STAMP_LATER);
}

/* Streamed: piece k's receive from i-1 (the rows the ranks from this one on see). */
static enum kvr_status streamed_recv(struct kvr_dist *d, uint32_t l, int k)
{
    uint64_t lo, n = piece_rows(d, k, d->rank, d->p, &lo);
    return kvr_dist_recv_post(d, recv_slot(l, k), l, d->rank - 1, lo, n, piece_tag(d, l, k));
}

/* Streamed, the receives of layer l from i-1 (own_first: this rank's own chunk goes first, at
 * layer 0). nccl: each receive grouped with the forward of the piece before it, so one piece
 * comes in while the previous one goes out. mpi: the receives only (forwarded in finish). */
static enum kvr_status streamed_post(struct kvr_dist *d, uint32_t l, bool own_first)
{
    int i = d->rank;
    bool fwd = i < d->p - 1;
    enum kvr_status st = own_first && d->dev ? kvr_exec_sync(d->ex) : KVR_OK;
    for (int n = 0; n <= i && !st; n++) {
        int k = n < i ? streamed_piece(i, l, n) : -1;
        if (!d->dev) { /* the forward of layer l-2 from this buffer must have left */
            if (k >= 0 && !(st = kvr_dist_slot_wait(d, send_slot(l + 2, k))))
                st = streamed_recv(d, l, k);
            continue;
        }
        if ((st = kvr_comm_group(d->comm, true))) break;
        if (n == 0 && own_first && fwd) st = send_own(d, l, i + 1, send_slot(l, i), -1, 0);
        if (!st && n > 0 && fwd) st = forward_queued(d, l, streamed_piece(i, l, n - 1));
        if (!st && k >= 0) st = streamed_recv(d, l, k);
        st = kvr_dist_group_end(d, st);
    }
    if (!st && !d->dev && own_first && fwd) st = send_own(d, l, i + 1, send_slot(l, i), -1, 0);
    return st;
}

/* Streamed: waits for layer l's pieces in order, each into the cache; mpi forwards each as
 * it comes (from its staging buffer), nccl sends the forward's time (link emulation). */
static enum kvr_status streamed_finish(struct kvr_dist *d, uint32_t l)
{
    int i = d->rank;
    enum kvr_status st = KVR_OK;
    for (int n = 0; n < i && !st; n++) {
        int k = streamed_piece(i, l, n), tag = piece_tag(d, l, k);
        uint64_t lo, rows = piece_rows(d, k, i, d->p, &lo), flo = 0, frows = 0;
        st = kvr_dist_recv_finish(d, recv_slot(l, k), l, i - 1, lo, rows);
        if (i < d->p - 1) frows = piece_rows(d, k, i + 1, d->p, &flo);
        if (st || !frows) continue; /* the last rank, or nothing of it the next ranks see */
        /* mpi: the received buffer on as it is, or (a window cut it further) restaged from
         * the cache, where the receive has just put it */
        st = d->dev ? kvr_dist_send_stamp(d, send_slot(l, k), i + 1, tag)
             : frows < rows
                 ? kvr_dist_send_piece(d, send_slot(l, k), -1, l, i + 1, flo, frows, tag, 0)
                 : kvr_dist_send_piece(d, send_slot(l, k), recv_slot(l, k), l, i + 1, lo, rows, tag,
                                       0);
    }
    return st;
}

/* Layer 0: own chunk, then the pieces as they come; later layers: the pieces (their receives
 * and forwards queued during the layer before), then the own chunk. nccl: the own chunk's send
 * is queued behind the forwards on the stream; mpi: sent once they have gone (before, mpi sent
 * it first, an order neither nccl nor the simulator has). */
static enum kvr_status kvr_streamed(struct kvr_dist *d)
{
    int i = d->rank;
    uint32_t n_layers = d->m->n_layers;
    enum kvr_status st = KVR_OK;
    for (uint32_t l = 0; l < n_layers && !st; l++) {
        bool own_later = l > 0 && i < d->p - 1;
        if ((st = kvr_dist_pre(d, l))) break;
        if (l == 0)
            st = streamed_post(d, 0, true);
        else if (own_later && d->dev)
            st = send_own(d, l, i + 1, send_slot(l, i), -1, KVR_DIST_SYNC);
        if (!st && l + 1 < n_layers) st = streamed_post(d, l + 1, false);
        if (!st) st = streamed_finish(d, l);
        if (!st && own_later && !d->dev)
            st = send_own(d, l, i + 1, send_slot(l, i), -1, KVR_DIST_SYNC);
        if (!st) st = kvr_dist_post(d, l, KVR_MASK_CAUSAL);
    }
    return st ? st : kvr_dist_sends_done(d);
}

/* Direct: the receives of layer l from every earlier rank, one group. */
static enum kvr_status direct_post(struct kvr_dist *d, uint32_t l)
{
    enum kvr_status st = KVR_OK;
    for (int k = 0; k < d->rank && !st; k++) {
        uint64_t lo, n = piece_rows(d, k, d->rank, d->rank + 1, &lo);
        st = kvr_dist_recv_post(d, recv_slot(l, k), l, k, lo, n, piece_tag(d, l, k));
    }
    return st;
}

/* Direct: this rank's chunk of layer l to every later rank, nearest first (mpi: staged once,
 * the same buffer to all). With_recv: layer l's receives in the same nccl group (layer 0). */
static enum kvr_status direct_send(struct kvr_dist *d, uint32_t l, bool with_recv)
{
    int i = d->rank, first = send_slot(l, i + 1);
    enum kvr_status st = kvr_exec_sync(d->ex);
    for (int j = i + 1; j < d->p && !st; j++) st = kvr_dist_slot_wait(d, send_slot(l, j));
    if (!st) st = kvr_comm_group(d->comm, true);
    if (!st && with_recv) st = direct_post(d, l);
    bool trim = kvr_trim_active(d->m, d->o->ctx); /* each peer its own rows: staged apart */
    for (int j = i + 1; j < d->p && !st; j++)
        st = j == i + 1 || trim ? send_own(d, l, j, send_slot(l, j), -1, 0)
                                : send_own(d, l, j, send_slot(l, j), first, KVR_DIST_KEEP_STAMP);
    return kvr_dist_group_end(d, st);
}

static enum kvr_status kvr_direct(struct kvr_dist *d)
{
    uint32_t n_layers = d->m->n_layers;
    enum kvr_status st = KVR_OK;
    for (uint32_t l = 0; l < n_layers && !st; l++) {
        if ((st = kvr_dist_pre(d, l))) break;
        st = direct_send(d, l, l == 0);
        if (!st && l + 1 < n_layers && !(st = kvr_comm_group(d->comm, true))) {
            st = kvr_dist_group_end(d, direct_post(d, l + 1));
        }
        for (int k = 0; k < d->rank && !st; k++) {
            uint64_t lo, n = piece_rows(d, k, d->rank, d->rank + 1, &lo);
            st = kvr_dist_recv_finish(d, recv_slot(l, k), l, k, lo, n);
        }
        if (!st) st = kvr_dist_post(d, l, KVR_MASK_CAUSAL);
    }
    return st ? st : kvr_dist_sends_done(d);
}

enum kvr_status kvr_dist_kvr(struct kvr_dist *d)
{
    if (d->o->kv_forward == KVR_FWD_WHOLE) return kvr_whole(d);
    if ((int)d->m->n_layers * d->p + KVR_DIST_STAMP_TAG > 32767)
        return kvr_error(KVR_ERR_INPUT, "--kv-forward %s: %u layers x %d ranks exceed the tags",
                         kvr_kv_forward_name(d->o->kv_forward), d->m->n_layers, d->p);
    if (d->o->kv_forward == KVR_FWD_STREAMED) return kvr_streamed(d);
    if (d->o->kv_forward == KVR_FWD_DIRECT) return kvr_direct(d);
    return kvr_error(KVR_ERR_INPUT, "unknown KV hand-off mode %d", (int)d->o->kv_forward);
}
