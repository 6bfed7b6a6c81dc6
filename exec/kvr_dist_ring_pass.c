/* ring-pass on ranks: contiguous chunks, p-1 pass-KV ring steps per layer, then attention.
 * With a sliding window that trims (sim/kvr_trim.h) a hop carries only the rows of its block
 * that the ranks after the receiver (and the receiver) see, and a block that has wrapped around
 * goes no further: the simulator's ring-pass (sim/kvr_scheme_ring_pass.c). */
#include "kvr_dist_int.h"
#include "kvr_trim.h"

/* The rows rank `from` sends to from+1 at step t: block b = from-t+1, whole without a window;
 * with one [max(s_b, first(s_{from+1})), e_b), none once the block has wrapped. */
static uint64_t hop_rows(const struct kvr_dist *d, int from, int t, uint64_t *lo)
{
    int p = d->p, b = (from - t + 1 + p) % p;
    *lo = d->start[b];
    if (!kvr_trim_active(d->m, d->o->ctx)) return kvr_dist_rows(d, b);
    if (from - t + 1 < 0 || from + 1 >= p) return 0;
    return kvr_trim_keys(d->m, d->o->ctx, d->start[b], d->start[b + 1], d->start[from + 1],
                         d->o->ctx, lo);
}

/* Pass-KV: at step t rank i forwards block (i-t+1) to rank i+1 and receives block (i-t). */
enum kvr_status kvr_dist_ring_pass(struct kvr_dist *d)
{
    int i = d->rank, p = d->p, next = (i + 1) % p, prev = (i - 1 + p) % p;
    enum kvr_status st = KVR_OK;
    for (uint32_t l = 0; l < d->m->n_layers && !st; l++) {
        if ((st = kvr_dist_pre(d, l))) break;
        for (int t = 1; t < p && !st; t++) {
            uint64_t ss, sr, ns = hop_rows(d, i, t, &ss), nr = hop_rows(d, prev, t, &sr);
            if (!ns && !nr) continue; /* a window: nothing this rank sends or receives */
            if ((st = kvr_comm_group(d->comm, true)) ||
                (st = kvr_dist_send_rows(d, 2, l, next, ss, ns, (int)l)) ||
                (st = kvr_dist_recv_post(d, 0, l, prev, sr, nr, (int)l)) ||
                (st = kvr_comm_group(d->comm, false)))
                break;
            st = kvr_dist_recv_finish(d, 0, l, prev, sr, nr);
        }
        if (!st) st = kvr_dist_post(d, l, KVR_MASK_CAUSAL);
    }
    return st ? st : kvr_dist_sends_done(d);
}
