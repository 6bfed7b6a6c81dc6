/* Memory per rank: weights (full for the context-parallel schemes, a shard for tp), the KV
 * cache the rank holds at the end of the prefill (all layers), and peak activations:
 *   act = tokens * dtype * (2 d + max(q + 2 kv, (mlp matrices + 1) * d_ffn)) + vocab * 4
 * (residual stream, normed input, and the widest intermediate: QKV output or the MLP's up
 * output plus its activation; attention is fused, so no score matrix; fp32 logits of the last
 * token). The KV cache each rank holds, and whether the weights are sharded, come from the
 * scheme (struct kvr_sim). A plan fits when the sum is within the GPU's memory. */
#include "kvr_sim_int.h"

static double activation_bytes(const struct kvr_model *m, uint64_t tokens)
{
    double q = (double)m->n_heads * m->head_dim, kv = (double)m->n_kv_heads * m->head_dim;
    double mats = m->mlp == KVR_MLP_SWIGLU ? 3 : 2, wide = q + 2 * kv;
    if (mats * m->d_ffn > wide) wide = mats * m->d_ffn;
    return (double)tokens * kvr_dtype_bytes(m->dtype) * (2.0 * m->d_model + wide) + 4.0 * m->vocab;
}

void kvr_sim_memory(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    struct kvr_sim_result *res = sim->res;
    res->mem_available_bytes = sim->machine->gpu.mem_bytes;
    for (int r = 0; r < plan->p; r++) {
        struct kvr_rank_result *rr = &res->rank[r];
        struct kvr_model part = *m;
        if (sim->sharded) kvr_tp_shard(m, plan->p, r, &part);
        double all = sim->kv_tokens[r], one = sim->kv_flight_tokens[r];
        double kvb = (double)kvr_model_kv_bytes_per_token_layer(&part);
        rr->weight_bytes = (double)kvr_model_weight_bytes(&part);
        rr->kv_bytes = (all * m->n_layers + one) * kvb;
        rr->act_bytes = activation_bytes(&part, rr->tokens);
        rr->mem_bytes = rr->weight_bytes + rr->kv_bytes + rr->act_bytes;
        rr->fits = rr->mem_bytes <= res->mem_available_bytes;
    }
}
