/* Memory per rank: weights (full for the context-parallel schemes, a shard for tp), the KV
 * cache the rank holds at the end of the prefill (all layers), and peak activations:
 *   act = tokens * dtype * (2 d + max(q + 2 kv, (mlp matrices + 1) * d_ffn)) + vocab * 4
 * (residual stream, normed input, and the widest intermediate: QKV output or the MLP's up
 * output plus its activation; attention is fused, so no score matrix; fp32 logits of the last
 * token). A plan fits when the sum is within the GPU's memory. */
#include "kvr_sim.h"

static double activation_bytes(const struct kvr_model *m, uint64_t tokens)
{
    double q = (double)m->n_heads * m->head_dim, kv = (double)m->n_kv_heads * m->head_dim;
    double mats = m->mlp == KVR_MLP_SWIGLU ? 3 : 2, wide = q + 2 * kv;
    if (mats * m->d_ffn > wide) wide = mats * m->d_ffn;
    return (double)tokens * kvr_dtype_bytes(m->dtype) * (2.0 * m->d_model + wide) + 4.0 * m->vocab;
}

/* Tokens of KV cache (all layers) that rank r holds, plus in-flight blocks (one layer). */
static void kv_held(const struct kvr_sim *sim, const struct kvr_plan *plan, int r,
                    double *tokens_all_layers, double *tokens_one_layer)
{
    const struct kvr_sim_result *res = sim->res;
    *tokens_one_layer = 0;
    switch (plan->scheme) {
    case KVR_SCHEME_KVR: {
        /* what it received, [first(S_{r-1}), S_{r-1}) with a sliding window, and its own */
        uint64_t s = 0;
        for (int i = 0; i < r; i++) s += plan->tokens[i];
        *tokens_all_layers = (double)(s + plan->tokens[r] - kvr_window_first(sim->model, s));
        break;
    }
    case KVR_SCHEME_RING: {
        double biggest = 0;
        for (int i = 0; i < plan->p; i++)
            if (res->rank[i].tokens > biggest) biggest = (double)res->rank[i].tokens;
        *tokens_all_layers = (double)res->rank[r].tokens;
        *tokens_one_layer = 2 * biggest; /* the block being used and the one arriving */
        break;
    }
    default:
        *tokens_all_layers = (double)plan->ctx;
        break;
    }
}

void kvr_sim_memory(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    struct kvr_sim_result *res = sim->res;
    res->mem_available_bytes = sim->machine->gpu.mem_bytes;
    for (int r = 0; r < plan->p; r++) {
        struct kvr_rank_result *rr = &res->rank[r];
        struct kvr_model part = *m;
        if (plan->scheme == KVR_SCHEME_TP) kvr_tp_shard(m, plan->p, r, &part);
        double all, one, kvb = (double)kvr_model_kv_bytes_per_token_layer(&part);
        kv_held(sim, plan, r, &all, &one);
        rr->weight_bytes = (double)kvr_model_weight_bytes(&part);
        rr->kv_bytes = (all * m->n_layers + one) * kvb;
        rr->act_bytes = activation_bytes(&part, rr->tokens);
        rr->mem_bytes = rr->weight_bytes + rr->kv_bytes + rr->act_bytes;
        rr->fits = rr->mem_bytes <= res->mem_available_bytes;
    }
}
