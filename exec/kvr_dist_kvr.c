/* kvr on ranks: the KV cache handed down the chain, each layer's [0, S_i) sent on before
 * this rank's own attention. */
#include "kvr_dist_int.h"

enum kvr_status kvr_dist_kvr(struct kvr_dist *d)
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
