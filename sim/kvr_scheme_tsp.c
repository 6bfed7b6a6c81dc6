/* tsp, tsp-causal and tsp-paper: even split; per layer pre, an all-gather of K/V (a barrier),
 * attention (dense masked blocks for tsp and tsp-paper, only the unmasked pairs for
 * tsp-causal), post. tsp-paper is the KV-Runahead paper's baseline as it most plausibly ran:
 * K and V expanded to every query head before the gather (as Hugging Face's Falcon and GQA
 * attention do before SDPA), so each token moves n_heads / n_kv_heads times the bytes and each
 * rank keeps the expanded cache. For MHA it is tsp. Over a layout's stages (kvr_layout.h) shard
 * j's all-gather runs over shard j of every stage (t all-gathers side by side), each stage's
 * post with its TP all-reduces; with t = 1 the plain scheme. */
#include "kvr_cost.h"
#include "kvr_sim_int.h"

static void tsp(struct kvr_sim *sim, const struct kvr_plan *plan, bool causal, bool expand)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    struct kvr_stages S;
    kvr_sim_stages(sim, plan, &S);
    const int n = S.n, t = S.t;
    struct kvr_plan even = *plan;
    kvr_plan_even(&even);
    struct kvr_stage_cost sc[KVR_MAX_GPUS];
    double attn[KVR_MAX_GPUS];
    double group = expand ? (double)S.part.n_heads / S.part.n_kv_heads : 1;
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(&S.part) * group, block = 0;
    struct kvr_clocks c = {{0}};
    uint64_t s = 0;
    for (int i = 0; i < n; i++) {
        uint64_t k = even.tokens[i];
        kvr_stage_cost(sim, &S, k, &sc[i]);
        /* dense: all ctx keys against the chunk's queries; causal: only the unmasked pairs
         * (c s + c(c+1)/2), as a flash kernel that skips the masked triangle computes them */
        attn[i] = causal ? kvr_cost_attn_s(&S.part, g, s, k, KVR_MASK_CAUSAL)
                         : kvr_cost_attn_s(&S.part, g, plan->ctx - k, k, KVR_MASK_DENSE);
        block = (double)k * kvb > block ? (double)k * kvb : block;
        s += k;
        for (int j = 0; j < t; j++) {
            int r = i * t + j;
            sim->res->rank[r].tokens = k;
            sim->kv_tokens[r] = (double)plan->ctx * group; /* the gathered cache, as stored */
            kvr_sim_compute(sim, &c, r, -1, "embed", kvr_cost_embed_s(m, g, k));
        }
    }
    for (int l = 0; l < (int)m->n_layers; l++) {
        for (int r = 0; r < plan->p; r++) kvr_sim_compute(sim, &c, r, l, "pre", sc[r / t].pre);
        for (int j = 0; j < t; j++) {
            int col[KVR_MAX_GPUS];
            for (int i = 0; i < n; i++) col[i] = i * t + j;
            double dur = kvr_group_allgather_s(sim, col, n, l, block);
            kvr_sim_group_collective(sim, &c, col, n, l, "allgather", dur, block * n * (n - 1));
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < t; j++) kvr_sim_compute(sim, &c, i * t + j, l, "attn", attn[i]);
            kvr_sim_stage_post(sim, &c, &S, &sc[i], i, l, even.tokens[i], 0);
        }
    }
    kvr_sim_finish(sim, &c, plan, plan->p - 1);
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
