/* kvr (KV-Runahead): rank i computes pre; it hands the cache on to the later ranks in the
 * plan's mode (kvr_scheme.h, enum kvr_kv_forward), waits for the keys [0, S_{i-1}) if they are
 * late, then attends its c_i queries to S_i keys and computes post.
 *   whole     once it has its K/V and [0, S_{i-1}) from rank i-1, it sends [0, S_i) to i+1;
 *   streamed  every piece (one rank's chunk of the layer) goes on to i+1 as soon as rank i has
 *             it: at layer 0 its own chunk first, then the upstream pieces as they arrive; at
 *             later layers the upstream pieces (received while it computed) first, then its
 *             own (the executor's order on one NCCL stream, kvr_dist_kvr.c);
 *   direct    its own chunk goes to every later rank, nearest first.
 * Every transfer is asynchronous beside compute (the overlap cap). A rank's outgoing transfers
 * share its port: they leave one at a time, in the order above, each at the link's speed. */
#include "kvr_cost.h"
#include "kvr_sim_int.h"

struct chain {
    double kvb;                               /* bytes of one token's K and V in one layer */
    double out_free[KVR_MAX_GPUS];            /* when each rank's outgoing port is free */
    double arrive[KVR_MAX_GPUS];              /* whole: when [0, S_{i-1}) is at rank i */
    double piece[KVR_MAX_GPUS][KVR_MAX_GPUS]; /* streamed, direct: piece k of the layer at i */
};

static double chain_send(struct kvr_sim *sim, struct chain *ch, int i, int j, int l, double ready,
                         double tokens)
{
    return kvr_sim_send(sim, &ch->out_free[i], i, j, l, ready, tokens * ch->kvb, true);
}

/* When every piece of [0, S_{i-1}) is at rank i. */
static double all_pieces(const struct chain *ch, int i)
{
    double t = 0;
    for (int k = 0; k < i; k++) t = ch->piece[i][k] > t ? ch->piece[i][k] : t;
    return t;
}

/* Rank i's hand-off at layer l, its K/V computed at `ready`; returns when its keys are in. */
static double hand_off(struct kvr_sim *sim, struct chain *ch, const struct kvr_plan *plan, int i,
                       int l, double ready, const uint64_t *start)
{
    const int p = plan->p;
    if (plan->kv_forward == KVR_FWD_WHOLE) {
        double have = i > 0 && ch->arrive[i] > ready ? ch->arrive[i] : ready;
        /* with a sliding window W only what later ranks can still attend goes on:
         * [S_i - (W-1), S_i) (exec/kvr_dist_kvr.c's whole hand-off sends the same) */
        double send = (double)(start[i + 1] - kvr_window_first(sim->model, start[i + 1]));
        if (i + 1 < p) ch->arrive[i + 1] = chain_send(sim, ch, i, i + 1, l, have, send);
        return i > 0 ? ch->arrive[i] : ready;
    }
    if (plan->kv_forward == KVR_FWD_DIRECT) {
        for (int j = i + 1; j < p; j++)
            ch->piece[j][i] = chain_send(sim, ch, i, j, l, ready, (double)plan->tokens[i]);
        return all_pieces(ch, i);
    }
    if (i + 1 < p) { /* streamed: rank i-1 sent its pieces in the order rank i forwards them */
        if (l == 0) ch->piece[i + 1][i] = chain_send(sim, ch, i, i + 1, l, ready, plan->tokens[i]);
        for (int n = 0; n < i; n++) {
            int k = l == 0 ? i - 1 - n : n;
            ch->piece[i + 1][k] =
                chain_send(sim, ch, i, i + 1, l, ch->piece[i][k], (double)plan->tokens[k]);
        }
        if (l > 0) ch->piece[i + 1][i] = chain_send(sim, ch, i, i + 1, l, ready, plan->tokens[i]);
    }
    return all_pieces(ch, i);
}

void kvr_sim_kvr(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const int p = plan->p;
    double pre[KVR_MAX_GPUS], attn[KVR_MAX_GPUS], post[KVR_MAX_GPUS];
    uint64_t start[KVR_MAX_GPUS + 1] = {0};
    struct chain ch; /* 33 KB on the stack: no allocation in the run */
    ch.kvb = (double)kvr_model_kv_bytes_per_token_layer(m);
    struct kvr_clocks c = {{0}};
    kvr_sim_contiguous_chunks(sim, &c, plan, pre, attn, post);
    for (int i = 0; i < p; i++) {
        start[i + 1] = start[i] + plan->tokens[i];
        /* rank i keeps the cache of [0, S_i); whole with a sliding window keeps what it
         * received, [first(S_{i-1}), S_{i-1}), and its own chunk (streamed and direct hand
         * every piece on whole, untrimmed, as the executor does) */
        uint64_t first = plan->kv_forward == KVR_FWD_WHOLE ? kvr_window_first(m, start[i]) : 0;
        sim->kv_tokens[i] = (double)(start[i + 1] - first);
        ch.out_free[i] = 0;
    }
    for (int l = 0; l < (int)m->n_layers; l++)
        for (int i = 0; i < p; i++) {
            kvr_sim_compute(sim, &c, i, l, "pre", pre[i]);
            /* the cache goes on before this rank's own attention */
            double keys = hand_off(sim, &ch, plan, i, l, c.t[i], start);
            if (i > 0) kvr_sim_wait_until(sim, &c, i, l, keys);
            kvr_sim_compute(sim, &c, i, l, "attn", attn[i]);
            kvr_sim_compute(sim, &c, i, l, "post", post[i]);
        }
    kvr_sim_finish(sim, &c, plan, p - 1);
}
