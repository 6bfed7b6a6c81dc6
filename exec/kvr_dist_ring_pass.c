/* ring-pass on ranks: contiguous chunks, p-1 pass-KV ring steps per layer, then attention. */
#include "kvr_dist_int.h"

/* Pass-KV: at step t rank i forwards block (i-t+1) to rank i+1 and receives block (i-t). */
enum kvr_status kvr_dist_ring_pass(struct kvr_dist *d)
{
    int i = d->rank, p = d->p, next = (i + 1) % p, prev = (i - 1 + p) % p;
    enum kvr_status st = KVR_OK;
    for (uint32_t l = 0; l < d->m->n_layers && !st; l++) {
        if ((st = kvr_dist_pre(d, l))) break;
        for (int t = 1; t < p && !st; t++) {
            int sb = (i - t + 1 + p) % p, rb = (i - t + p) % p;
            uint64_t ss = d->start[sb], sr = d->start[rb];
            if ((st = kvr_comm_group(d->comm, true)) ||
                (st = kvr_dist_send_rows(d, 2, l, next, ss, d->start[sb + 1] - ss, (int)l)) ||
                (st = kvr_dist_recv_post(d, 0, l, prev, sr, d->start[rb + 1] - sr, (int)l)) ||
                (st = kvr_comm_group(d->comm, false)))
                break;
            st = kvr_dist_recv_finish(d, 0, l, prev, sr, d->start[rb + 1] - sr);
        }
        if (!st) st = kvr_dist_post(d, l, KVR_MASK_CAUSAL);
    }
    return st ? st : kvr_dist_sends_done(d);
}
