/* tsp, tsp-causal and tsp-paper: even split; per layer pre, an all-gather of K/V (a barrier),
 * attention (dense masked blocks for tsp and tsp-paper, only the unmasked pairs for
 * tsp-causal), post. tsp-paper is the KV-Runahead paper's baseline as it most plausibly ran:
 * K and V expanded to every query head before the gather (as Hugging Face's Falcon and GQA
 * attention do before SDPA), so each token moves n_heads / n_kv_heads times the bytes and each
 * rank keeps the expanded cache. For MHA it is tsp. Over a layout's stages (kvr_layout.h) shard
 * j's all-gather runs over shard j of every stage (t all-gathers side by side), each stage's
 * post with its TP all-reduces; with t = 1 the plain scheme. */
#include <string.h>

#include "kvr_cost.h"
#include "kvr_sim_int.h"
#include "kvr_trim.h"

/* With a sliding window (kvr_trim.h) tsp and tsp-causal exchange halos instead of the
 * all-gather, as exec/kvr_dist_tsp.c does: shard j of stage k sends to shard j of each later
 * stage i the rows of its chunk that i's queries see, [max(s_k, first(s_i)), e_k), once both
 * have their K/V (pre done); each pair's link carries one message a layer at the link's speed
 * (the receiver only waits); a rank attends once its halo is in, with no barrier. */
static void halo(struct kvr_sim *sim, struct kvr_clocks *c, const struct kvr_stages *S,
                 const uint64_t *start, double kvb, int l, double link_free[][KVR_MAX_GPUS])
{
    double in[KVR_MAX_GPUS];
    for (int r = 0; r < S->n * S->t; r++) in[r] = c->t[r];
    for (int i = 1; i < S->n; i++)
        for (int k = 0; k < i; k++) {
            uint64_t lo, rows = kvr_trim_keys(sim->model, start[S->n], start[k], start[k + 1],
                                              start[i], start[i + 1], &lo);
            for (int j = 0; rows && j < S->t; j++) {
                int from = k * S->t + j, to = i * S->t + j;
                double ready = c->t[from] > c->t[to] ? c->t[from] : c->t[to];
                double end = kvr_sim_send(sim, &link_free[from][to], from, to, l, ready,
                                          (double)rows * kvb, false);
                in[to] = end > in[to] ? end : in[to];
            }
        }
    for (int r = 0; r < S->n * S->t; r++) kvr_sim_wait_until(sim, c, r, l, in[r]);
}

/* Shard j's all-gather over shard j of every stage, for each j: a barrier of those ranks. */
static void allgather(struct kvr_sim *sim, struct kvr_clocks *c, const struct kvr_stages *S, int l,
                      double block)
{
    for (int j = 0; j < S->t; j++) {
        int col[KVR_MAX_GPUS];
        for (int i = 0; i < S->n; i++) col[i] = i * S->t + j;
        double dur = kvr_group_allgather_s(sim, col, S->n, l, block);
        kvr_sim_group_collective(sim, c, col, S->n, l, "allgather", dur, block * S->n * (S->n - 1));
    }
}

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
    uint64_t s = 0, start[KVR_MAX_GPUS + 1] = {0};
    bool trim = !expand && kvr_trim_active(m, plan->ctx); /* tsp-paper: the paper's gather */
    static _Thread_local double link_free[KVR_MAX_GPUS][KVR_MAX_GPUS];
    memset(link_free, 0, sizeof link_free);
    for (int i = 0; i < n; i++) {
        uint64_t k = even.tokens[i];
        start[i + 1] = start[i] + k;
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
            /* the gathered cache, as stored; a halo: the rows its queries see */
            sim->kv_tokens[r] =
                trim ? (double)(s - kvr_window_first(m, s - k)) : (double)plan->ctx * group;
            kvr_sim_compute(sim, &c, r, -1, "embed", kvr_cost_embed_s(m, g, k));
        }
    }
    for (int l = 0; l < (int)m->n_layers; l++) {
        for (int r = 0; r < plan->p; r++) kvr_sim_compute(sim, &c, r, l, "pre", sc[r / t].pre);
        if (trim)
            halo(sim, &c, &S, start, kvb, l, link_free);
        else
            allgather(sim, &c, &S, l, block);
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
