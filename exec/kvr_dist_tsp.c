/* tsp and tsp-causal on ranks: even chunks, an all-gather of K and V per layer (dense masked
 * blocks for tsp, only the unmasked pairs for tsp-causal). With a sliding window that trims
 * (sim/kvr_trim.h: 0 < W < ctx) a halo exchange instead: each rank receives from each earlier
 * rank only the rows of its chunk that its queries see, [max(s_j, first(s_i)), e_j), and
 * nothing from later ranks (the simulator's tsp does the same, sim/kvr_scheme_tsp.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cost.h"
#include "kvr_dist_int.h"
#include "kvr_trim.h"

/* nccl: holds the all-gather until the emulated ring (the simulator's: p-1 steps of the
 * per-rank block, each gated by its slowest link less this layer's noise) could have finished
 * after `start`, when the last rank was ready. */
static void pace_allgather(struct kvr_dist *d, int layer, double start, uint64_t rows)
{
    const struct kvr_machine *h = d->o->links;
    double block = (double)(2 * rows * d->row);
    double done =
        start + kvr_allgather_s(h, d->p, block, kvr_sim_layer_noise(d->noise, layer), h->n_gpus);
    kvr_dist_sleep_until(d, done);
    for (int j = 0; j < d->p; j++)
        if (j != d->rank) {
            d->stats->recv_bytes[j] += (double)(2 * kvr_dist_rows(d, j) * d->row);
            d->stats->recv_s[j] += fmax(done, kvr_dist_now_s(d)) - start;
        }
}

/* The longest chunk: mpi's all-gather pads every rank's to it. */
static uint64_t rows_max(const struct kvr_dist *d)
{
    uint64_t cmax = 0;
    for (int j = 0; j < d->p; j++) cmax = kvr_dist_rows(d, j) > cmax ? kvr_dist_rows(d, j) : cmax;
    return cmax;
}

/* TSP's all-gather of this layer's K and V: mpi through host buffers (chunks padded to the
 * largest), nccl in place in the cache (equal chunks). */
static enum kvr_status allgather_kv(struct kvr_dist *d, uint32_t l, unsigned char *all)
{
    int i = d->rank;
    uint64_t cmax = rows_max(d), s = d->start[i], c = kvr_dist_rows(d, i);
    enum kvr_status st = KVR_OK;
    double t = kvr_dist_now_s(d);
    if (d->dev) {
        void *k, *v;
        if ((st = kvr_exec_sync(d->ex)) || (st = kvr_exec_kv_device(d->ex, l, 0, &k, &v)))
            return st;
        double start = kvr_dist_now_s(d); /* emulated: the ring starts once every rank is ready */
        if (d->o->links) st = kvr_comm_max_f64(d->comm, &start);
        if (!st && !(st = kvr_comm_allgather(d->comm, (char *)k + s * d->row, k, c * d->row)))
            st = kvr_comm_allgather(d->comm, (char *)v + s * d->row, v, c * d->row);
        if (!st && d->o->links) pace_allgather(d, (int)l, start, c);
        kvr_dist_event(d, KVR_EV_COLLECTIVE, "allgather", (int)l, t, (double)(2 * c * d->row), -1);
        return st;
    }
    size_t part = kvr_dist_msg_bytes(d, cmax);
    unsigned char *mine = d->buf[2], *k = mine + sizeof(double);
    double sent = kvr_dist_now_s(d);
    memcpy(mine, &sent, sizeof sent);
    st = kvr_exec_kv_copy(d->ex, l, (uint32_t)s, (uint32_t)c, k, k + cmax * d->row, true);
    if (!st) st = kvr_comm_allgather(d->comm, mine, all, part);
    for (int j = 0; j < d->p && !st; j++) {
        uint64_t sj = d->start[j], cj = kvr_dist_rows(d, j);
        if (j == i) continue;
        memcpy(&sent, all + j * part, sizeof sent);
        /* the link carries the padded block (the simulator's all-gather of the largest chunk) */
        kvr_dist_pace(d, j, (int)l, sent, (double)(2 * cmax * d->row));
        k = all + j * part + sizeof(double);
        st = kvr_exec_kv_copy(d->ex, l, (uint32_t)sj, (uint32_t)cj, k, k + cmax * d->row, false);
    }
    kvr_dist_event(d, KVR_EV_COLLECTIVE, "allgather", (int)l, t, (double)(2 * c * d->row), -1);
    return st;
}

/* The halo: the rows of rank `from`'s chunk that rank `to`'s queries see. */
static uint64_t halo_rows(const struct kvr_dist *d, int from, int to, uint64_t *lo)
{
    return kvr_trim_keys(d->m, d->o->ctx, d->start[from], d->start[from + 1], d->start[to],
                         d->start[to + 1], lo);
}

/* One layer's halo exchange, one group: the receives from every earlier rank and the sends to
 * every later one (a rank's slots: KVR_DIST_PIECE_SLOT + peer to receive, + 2 KVR_MAX_GPUS +
 * peer to send); then the receives are waited for, the sends finish beside the attention. */
static enum kvr_status halo_kv(struct kvr_dist *d, uint32_t l)
{
    int i = d->rank;
    uint64_t lo, n;
    enum kvr_status st = d->dev ? kvr_exec_sync(d->ex) : KVR_OK; /* this rank's K/V are in */
    for (int k = i + 1; k < d->p && !st; k++) /* the previous layer's send from that slot */
        st = kvr_dist_slot_wait(d, KVR_DIST_PIECE_SLOT + 2 * KVR_MAX_GPUS + k);
    if (!st) st = kvr_comm_group(d->comm, true);
    for (int j = 0; j < i && !st; j++)
        if ((n = halo_rows(d, j, i, &lo)))
            st = kvr_dist_recv_post(d, KVR_DIST_PIECE_SLOT + j, l, j, lo, n, (int)l);
    for (int k = i + 1; k < d->p && !st; k++)
        if ((n = halo_rows(d, i, k, &lo)))
            st = kvr_dist_send_piece(d, KVR_DIST_PIECE_SLOT + 2 * KVR_MAX_GPUS + k, -1, l, k, lo, n,
                                     (int)l, 0);
    st = kvr_dist_group_end(d, st);
    for (int j = 0; j < i && !st; j++)
        if ((n = halo_rows(d, j, i, &lo)))
            st = kvr_dist_recv_finish(d, KVR_DIST_PIECE_SLOT + j, l, j, lo, n);
    return st;
}

static enum kvr_status tsp(struct kvr_dist *d, enum kvr_mask mask)
{
    if (kvr_trim_active(d->m, d->o->ctx)) {
        enum kvr_status st = KVR_OK;
        for (uint32_t l = 0; l < d->m->n_layers && !st; l++)
            if (!(st = kvr_dist_pre(d, l)) && !(st = halo_kv(d, l))) st = kvr_dist_post(d, l, mask);
        return st ? st : kvr_dist_sends_done(d);
    }
    uint64_t cmax = rows_max(d);
    unsigned char *all = d->dev ? NULL : malloc(kvr_dist_msg_bytes(d, cmax) * (size_t)d->p);
    if (!d->dev && !all) return kvr_error(KVR_ERR_NOMEM, "tsp: out of memory");
    enum kvr_status st = KVR_OK;
    for (uint32_t l = 0; l < d->m->n_layers && !st; l++)
        if (!(st = kvr_dist_pre(d, l)) && !(st = allgather_kv(d, l, all)))
            st = kvr_dist_post(d, l, mask);
    free(all);
    return st;
}

enum kvr_status kvr_dist_tsp(struct kvr_dist *d)
{
    return tsp(d, KVR_MASK_DENSE);
}

enum kvr_status kvr_dist_tsp_causal(struct kvr_dist *d)
{
    return tsp(d, KVR_MASK_CAUSAL);
}
