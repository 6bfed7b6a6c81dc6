/* single: one GPU, embed, every layer, the LM head of the last token. The last layer runs as
 * the executor's kvr_exec_chunk does: pre on every row (the cache needs its K/V), then the
 * attention of the last row's query against all keys and the post of that row alone
 * (plan->full_last_layer: every row, as the executor before that pruning did). */
#include "kvr_cost.h"
#include "kvr_sim_int.h"

void kvr_sim_single(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    struct kvr_clocks c = {{0}};
    uint64_t n = plan->ctx;
    sim->res->rank[0].tokens = n;
    kvr_sim_compute(sim, &c, 0, -1, "embed", kvr_cost_embed_s(m, g, n));
    double pre = kvr_cost_pre_s(m, g, n), attn = kvr_cost_attn_s(m, g, 0, n, KVR_MASK_CAUSAL);
    double post = kvr_cost_post_s(m, g, n);
    for (int l = 0; l < (int)m->n_layers; l++) {
        bool last = l + 1 == (int)m->n_layers && !plan->full_last_layer && n > 1;
        kvr_sim_compute(sim, &c, 0, l, "pre", pre);
        kvr_sim_compute(sim, &c, 0, l, "attn",
                        last ? kvr_cost_attn_s(m, g, n - 1, 1, KVR_MASK_CAUSAL) : attn);
        kvr_sim_compute(sim, &c, 0, l, "post", last ? kvr_cost_post_last_s(m, g, n) : post);
    }
    kvr_sim_finish(sim, &c, plan, 0);
}
