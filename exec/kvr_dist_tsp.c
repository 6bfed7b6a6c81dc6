/* tsp, tsp-causal and tsp-paper on ranks: even chunks, an all-gather of K and V per layer
 * (dense masked blocks for tsp and tsp-paper, only the unmasked pairs for tsp-causal). With a
 * sliding window that trims (sim/kvr_trim.h: 0 < W < ctx) tsp and tsp-causal exchange halos
 * instead: each rank receives from each earlier rank only the rows of its chunk that its
 * queries see, [max(s_j, first(s_i)), e_j), and nothing from later ranks (the simulator's tsp
 * does the same, sim/kvr_scheme_tsp.c). tsp-paper, the paper's baseline as it most plausibly
 * ran, gathers K and V expanded to every query head (Hugging Face's repeat_kv before SDPA:
 * n_heads / n_kv_heads times the bytes, never trimmed); each rank expands its rows before the
 * gather and keeps one copy of each KV head of what arrives, so its attention and its logits
 * are tsp's exactly. For MHA it is tsp. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cost.h"
#include "kvr_dist_int.h"
#include "kvr_trim.h"

/* nccl: holds the all-gather until the emulated ring (the simulator's: p-1 steps of the
 * per-rank block, each gated by its slowest link less this layer's noise) could have finished
 * after `start`, when the last rank was ready. */
static void pace_allgather(struct kvr_dist *d, int layer, double start, uint64_t rows, uint32_t g)
{
    const struct kvr_machine *h = d->o->links;
    double block = (double)(2 * rows * d->row * g);
    double done =
        start + kvr_allgather_s(h, d->p, block, kvr_sim_layer_noise(d->noise, layer), h->n_gpus);
    kvr_dist_sleep_until(d, done);
    for (int j = 0; j < d->p; j++)
        if (j != d->rank) {
            d->stats->recv_bytes[j] += (double)(2 * kvr_dist_rows(d, j) * d->row * g);
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

/* Host rows [rows][n_kv][hd] of esize-byte elements to rows expanded to every query head
 * (each KV head repeated g times), or back (each group's first copy): kvr_cu_kv_regroup's
 * rule, for the mpi path. */
static void regroup_host(unsigned char *dst, const unsigned char *src, uint64_t rows,
                         const struct kvr_dist *d, uint32_t g, bool expand)
{
    size_t head = d->row / d->m->n_kv_heads; /* bytes of one head's hd elements */
    for (uint64_t r = 0; r < rows; r++)
        for (uint32_t kh = 0; kh < d->m->n_kv_heads; kh++)
            for (uint32_t c = 0; c < (expand ? g : 1); c++) {
                size_t narrow = (r * d->m->n_kv_heads + kh) * head;
                size_t wide = ((r * d->m->n_kv_heads + kh) * g + c) * head;
                memcpy(dst + (expand ? wide : narrow), src + (expand ? narrow : wide), head);
            }
}

/* nccl: one of K or V (cache rows from `cache`) gathered expanded through the backend's scratch:
 * this rank's c rows expanded into send, the all-gather into all, each other rank's block back
 * into the cache (equal chunks). */
static enum kvr_status allgather_wide(struct kvr_dist *d, char *cache, uint64_t c, uint32_t g,
                                      char *send, char *all)
{
    size_t wide = c * d->row * g;
    enum kvr_status st =
        kvr_exec_kv_regroup(d->ex, send, cache + d->start[d->rank] * d->row, c, g, true);
    if (!st) st = kvr_exec_sync(d->ex);
    if (!st) st = kvr_comm_allgather(d->comm, send, all, wide);
    for (int j = 0; j < d->p && !st; j++)
        if (j != d->rank)
            st = kvr_exec_kv_regroup(d->ex, cache + d->start[j] * d->row, all + j * wide, c, g,
                                     false);
    return st;
}

/* nccl: the all-gather in place in the cache (equal chunks), or expanded (g > 1: tsp-paper). */
static enum kvr_status allgather_dev(struct kvr_dist *d, uint32_t l, uint32_t g)
{
    uint64_t s = d->start[d->rank], c = kvr_dist_rows(d, d->rank);
    void *k, *v, *area = NULL;
    enum kvr_status st = kvr_exec_sync(d->ex);
    if (!st) st = kvr_exec_kv_device(d->ex, l, 0, &k, &v);
    if (!st && g > 1) st = kvr_exec_wide_area(d->ex, c * d->row * g * (d->p + 1), &area);
    if (st) return st;
    double start = kvr_dist_now_s(d); /* emulated: the ring starts once every rank is ready */
    if (d->o->links) st = kvr_comm_max_f64(d->comm, &start);
    char *send = area, *all = send ? send + c * d->row * g : NULL;
    if (!st && g > 1 && !(st = allgather_wide(d, k, c, g, send, all)))
        st = allgather_wide(d, v, c, g, send, all);
    if (!st && g == 1 && !(st = kvr_comm_allgather(d->comm, (char *)k + s * d->row, k, c * d->row)))
        st = kvr_comm_allgather(d->comm, (char *)v + s * d->row, v, c * d->row);
    if (!st && d->o->links) pace_allgather(d, (int)l, start, c, g);
    return st;
}

/* TSP's all-gather of this layer's K and V, each row g times as wide (tsp-paper's expansion):
 * mpi through host buffers (all: p + 1 messages of chunks padded to the largest, the last this
 * rank's; tmp holds one compact block), nccl on the device (allgather_dev). */
static enum kvr_status allgather_kv(struct kvr_dist *d, uint32_t l, unsigned char *all,
                                    unsigned char *tmp, uint32_t g)
{
    int i = d->rank;
    uint64_t cmax = rows_max(d), s = d->start[i], c = kvr_dist_rows(d, i);
    enum kvr_status st = KVR_OK;
    double t = kvr_dist_now_s(d), moved = (double)(2 * c * d->row * g);
    if (d->dev) {
        st = allgather_dev(d, l, g);
        kvr_dist_event(d, KVR_EV_COLLECTIVE, "allgather", (int)l, t, moved, -1);
        return st;
    }
    size_t part = kvr_dist_msg_bytes(d, cmax * g), half = cmax * g * d->row;
    unsigned char *mine = all + d->p * part, *k = mine + sizeof(double); /* tsp's own slot */
    double sent = kvr_dist_now_s(d);
    memcpy(mine, &sent, sizeof sent);
    if (g == 1)
        st = kvr_exec_kv_copy(d->ex, l, (uint32_t)s, (uint32_t)c, k, k + half, true);
    else if (!(st = kvr_exec_kv_copy(d->ex, l, (uint32_t)s, (uint32_t)c, tmp, tmp + cmax * d->row,
                                     true))) {
        regroup_host(k, tmp, c, d, g, true);
        regroup_host(k + half, tmp + cmax * d->row, c, d, g, true);
    }
    if (!st) st = kvr_comm_allgather(d->comm, mine, all, part);
    for (int j = 0; j < d->p && !st; j++) {
        uint64_t sj = d->start[j], cj = kvr_dist_rows(d, j);
        if (j == i) continue;
        memcpy(&sent, all + j * part, sizeof sent);
        /* the link carries the padded block (the simulator's all-gather of the largest chunk) */
        kvr_dist_pace(d, j, (int)l, sent, (double)(2 * half));
        k = all + j * part + sizeof(double);
        if (g > 1) {
            regroup_host(tmp, k, cj, d, g, false);
            regroup_host(tmp + cmax * d->row, k + half, cj, d, g, false);
            k = tmp;
        }
        st = kvr_exec_kv_copy(d->ex, l, (uint32_t)sj, (uint32_t)cj, k,
                              k + (g > 1 ? cmax * d->row : half), false);
    }
    kvr_dist_event(d, KVR_EV_COLLECTIVE, "allgather", (int)l, t, moved, -1);
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

static enum kvr_status tsp(struct kvr_dist *d, enum kvr_mask mask, bool expand)
{
    if (!expand && kvr_trim_active(d->m, d->o->ctx)) {
        enum kvr_status st = KVR_OK;
        for (uint32_t l = 0; l < d->m->n_layers && !st; l++)
            if (!(st = kvr_dist_pre(d, l)) && !(st = halo_kv(d, l))) st = kvr_dist_post(d, l, mask);
        return st ? st : kvr_dist_sends_done(d);
    }
    uint64_t cmax = rows_max(d);
    uint32_t g = expand ? d->m->n_heads / d->m->n_kv_heads : 1;
    unsigned char *all = d->dev ? NULL : malloc(kvr_dist_msg_bytes(d, cmax * g) * (d->p + 1));
    unsigned char *tmp = d->dev || g == 1 ? NULL : malloc(2 * cmax * d->row);
    enum kvr_status st = KVR_OK;
    if (!d->dev && (!all || (g > 1 && !tmp)))
        st = kvr_error(KVR_ERR_NOMEM, "%s: out of memory", kvr_scheme_name(d->o->scheme));
    for (uint32_t l = 0; l < d->m->n_layers && !st; l++)
        if (!(st = kvr_dist_pre(d, l)) && !(st = allgather_kv(d, l, all, tmp, g)))
            st = kvr_dist_post(d, l, mask);
    free(all), free(tmp);
    return st;
}

enum kvr_status kvr_dist_tsp(struct kvr_dist *d)
{
    return tsp(d, KVR_MASK_DENSE, false);
}

enum kvr_status kvr_dist_tsp_causal(struct kvr_dist *d)
{
    return tsp(d, KVR_MASK_CAUSAL, false);
}

enum kvr_status kvr_dist_tsp_paper(struct kvr_dist *d)
{
    return tsp(d, KVR_MASK_DENSE, true);
}
