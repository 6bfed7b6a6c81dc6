/* kvr (KV-Runahead): rank i computes pre; once it has its K/V and the cache [0, S_{i-1}) from
 * rank i-1 it sends [0, S_i) on to rank i+1 (asynchronously, before its own attention), waits
 * for the cache if it is late, then attends its c_i queries to S_i keys and computes post. */
#include "kvr_cost.h"
#include "kvr_sim_int.h"

void kvr_sim_kvr(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const int p = plan->p;
    double pre[KVR_MAX_GPUS], attn[KVR_MAX_GPUS], post[KVR_MAX_GPUS], link_free[KVR_MAX_GPUS];
    double arrive[KVR_MAX_GPUS], kv_bytes[KVR_MAX_GPUS];
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(m);
    struct kvr_clocks c = {{0}};
    kvr_sim_contiguous_chunks(sim, &c, plan, pre, attn, post);
    uint64_t s = 0;
    for (int i = 0; i < p; i++) {
        s += plan->tokens[i];
        /* rank i hands on the cache of [0, S_i); with a sliding window W only the part later
         * ranks can still attend, [S_i - (W-1), S_i) (exec/kvr_dist_kvr.c sends the same) */
        kv_bytes[i] = (double)(s - kvr_window_first(m, s)) * kvb;
        /* and keeps what it received, [first(S_{i-1}), S_{i-1}), with its own chunk */
        sim->kv_tokens[i] = (double)(s - kvr_window_first(m, s - plan->tokens[i]));
        link_free[i] = 0;
    }
    for (int l = 0; l < (int)m->n_layers; l++)
        for (int i = 0; i < p; i++) {
            kvr_sim_compute(sim, &c, i, l, "pre", pre[i]);
            double have = i > 0 && arrive[i] > c.t[i] ? arrive[i] : c.t[i];
            /* the concatenated cache goes down the chain before this rank's own attention */
            if (i + 1 < p)
                arrive[i + 1] =
                    kvr_sim_send(sim, &link_free[i], i, i + 1, l, have, kv_bytes[i], true);
            if (i > 0) kvr_sim_wait_until(sim, &c, i, l, arrive[i]);
            kvr_sim_compute(sim, &c, i, l, "attn", attn[i]);
            kvr_sim_compute(sim, &c, i, l, "post", post[i]);
        }
    kvr_sim_finish(sim, &c, plan, p - 1);
}
