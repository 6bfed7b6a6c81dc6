/* tsp, tsp-causal and tsp-paper: even split; per layer pre, an all-gather of K/V (a barrier),
 * attention (dense masked blocks for tsp and tsp-paper, only the unmasked pairs for
 * tsp-causal), post. tsp-paper is the KV-Runahead paper's baseline as it most plausibly ran:
 * K and V expanded to every query head before the gather (as Hugging Face's Falcon and GQA
 * attention do before SDPA), so each token moves n_heads / n_kv_heads times the bytes and each
 * rank keeps the expanded cache. For MHA it is tsp. */
#include "kvr_cost.h"
#include "kvr_sim_int.h"

static void tsp(struct kvr_sim *sim, const struct kvr_plan *plan, bool causal, bool expand)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    const int p = plan->p;
    struct kvr_plan even = *plan;
    kvr_plan_even(&even);
    double pre[KVR_MAX_GPUS], attn[KVR_MAX_GPUS], post[KVR_MAX_GPUS];
    double group = expand ? (double)m->n_heads / m->n_kv_heads : 1;
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(m) * group, block = 0;
    struct kvr_clocks c = {{0}};
    uint64_t s = 0;
    for (int i = 0; i < p; i++) {
        uint64_t n = even.tokens[i];
        sim->res->rank[i].tokens = n;
        pre[i] = kvr_cost_pre_s(m, g, n);
        /* dense: all ctx keys against the chunk's queries; causal: only the unmasked pairs
         * (c s + c(c+1)/2), as a flash kernel that skips the masked triangle computes them */
        attn[i] = causal ? kvr_cost_attn_s(m, g, s, n, KVR_MASK_CAUSAL)
                         : kvr_cost_attn_s(m, g, plan->ctx - n, n, KVR_MASK_DENSE);
        post[i] = kvr_cost_post_s(m, g, n);
        block = (double)n * kvb > block ? (double)n * kvb : block;
        s += n;
        sim->kv_tokens[i] = (double)plan->ctx * group; /* the gathered cache, as stored */
        kvr_sim_compute(sim, &c, i, -1, "embed", kvr_cost_embed_s(m, g, n));
    }
    for (int l = 0; l < (int)m->n_layers; l++) {
        for (int i = 0; i < p; i++) kvr_sim_compute(sim, &c, i, l, "pre", pre[i]);
        double dur = kvr_allgather_s(sim->machine, p, block, kvr_sim_layer_noise(sim, l),
                                     sim->machine->n_gpus);
        kvr_sim_collective(sim, &c, p, l, "allgather", dur, block * p * (p - 1));
        for (int i = 0; i < p; i++) {
            kvr_sim_compute(sim, &c, i, l, "attn", attn[i]);
            kvr_sim_compute(sim, &c, i, l, "post", post[i]);
        }
    }
    kvr_sim_finish(sim, &c, plan, p - 1);
}

void kvr_sim_tsp(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    tsp(sim, plan, false, false);
}

void kvr_sim_tsp_causal(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    tsp(sim, plan, true, false);
}

void kvr_sim_tsp_paper(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    tsp(sim, plan, false, true);
}
