#include "kvr_cost.h"
#include "kvr_sim_int.h"

/* The executor's ring (exec/kvr_dist_ring_pass.c): contiguous chunks; per layer, p-1 steps in which
 * every rank sends the block it got last to the next rank and receives one from the previous, as
 * one NCCL group (a transfer starts once both ends have entered the step); then causal attention
 * over the gathered prefix. Nothing overlaps, and the last chunk's rank does the most
 * attention: the cost of skipping ring attention's zig-zag and block-wise overlap. */
void kvr_sim_ring_pass(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const int p = plan->p;
    double pre[KVR_MAX_GPUS], attn[KVR_MAX_GPUS], post[KVR_MAX_GPUS], block[KVR_MAX_GPUS];
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(m);
    struct kvr_clocks c = {{0}};
    kvr_sim_contiguous_chunks(sim, &c, plan, pre, attn, post);
    for (int i = 0; i < p; i++) block[i] = (double)plan->tokens[i] * kvb;
    for (int l = 0; l < (int)m->n_layers; l++) {
        for (int i = 0; i < p; i++) kvr_sim_compute(sim, &c, i, l, "pre", pre[i]);
        for (int t = 1; t < p; t++) {
            double done[KVR_MAX_GPUS], link_free = 0;
            for (int i = 0; i < p; i++) done[i] = c.t[i];
            for (int i = 0; i < p; i++) {
                int to = (i + 1) % p, b = ((i - t + 1) % p + p) % p;
                double ready = c.t[i] > c.t[to] ? c.t[i] : c.t[to];
                double end = kvr_sim_send(sim, &link_free, i, to, l, ready, block[b], false);
                link_free = 0; /* each rank's own link */
                if (end > done[i]) done[i] = end;
                if (end > done[to]) done[to] = end;
            }
            for (int i = 0; i < p; i++) kvr_sim_wait_until(sim, &c, i, l, done[i]);
        }
        for (int i = 0; i < p; i++) {
            kvr_sim_compute(sim, &c, i, l, "attn", attn[i]);
            kvr_sim_compute(sim, &c, i, l, "post", post[i]);
        }
    }
    kvr_sim_finish(sim, &c, plan, p - 1);
}
