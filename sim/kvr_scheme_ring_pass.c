#include "kvr_cost.h"
#include "kvr_sim_int.h"
#include "kvr_trim.h"

/* The bytes of the hop from stage i to i+1 at `step` (block b = i - step + 1): the whole block
 * without a window; with one (kvr_trim.h) the rows of b that stages i+1.. see,
 * [max(s_b, first(s_{i+1})), e_b), and nothing for a block that has wrapped around (the stages
 * before it never attend to it). */
static double hop_bytes(const struct kvr_sim *sim, const struct kvr_plan *plan,
                        const uint64_t *start, int n, int i, int step, double kvb)
{
    int b = ((i - step + 1) % n + n) % n;
    if (!kvr_trim_active(sim->model, plan->ctx)) return (double)(start[b + 1] - start[b]) * kvb;
    uint64_t lo;
    if (i - step + 1 < 0 || i + 1 >= n) return 0;
    return (double)kvr_trim_keys(sim->model, plan->ctx, start[b], start[b + 1], start[i + 1],
                                 plan->ctx, &lo) *
           kvb;
}

/* The executor's ring (exec/kvr_dist_ring_pass.c): contiguous chunks; per layer, p-1 steps in which
 * every rank sends the block it got last to the next rank and receives one from the previous, as
 * one NCCL group (a transfer starts once both ends have entered the step); then causal attention
 * over the gathered prefix. Nothing overlaps, and the last chunk's rank does the most
 * attention: the cost of skipping ring attention's zig-zag and block-wise overlap. Over a
 * layout's n = p/t stages (kvr_layout.h) shard j's ring runs over shard j of every stage (t
 * rings of n - 1 steps side by side, its heads' blocks), each stage's post with its TP
 * all-reduces, as exec --tp runs it; with t = 1 the plain scheme. */
void kvr_sim_ring_pass(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    struct kvr_stages S;
    kvr_sim_stages(sim, plan, &S);
    const int n = S.n, t = S.t;
    struct kvr_stage_cost sc[KVR_MAX_GPUS];
    double attn[KVR_MAX_GPUS];
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(&S.part);
    struct kvr_clocks c = {{0}};
    uint64_t s = 0, start[KVR_MAX_GPUS + 1] = {0};
    bool trim = kvr_trim_active(m, plan->ctx);
    for (int i = 0; i < n; i++) {
        uint64_t k = plan->tokens[i];
        kvr_stage_cost(sim, &S, k, &sc[i]);
        attn[i] = kvr_cost_attn_s(&S.part, g, s, k, KVR_MASK_CAUSAL);
        start[i + 1] = start[i] + k;
        s += k;
        for (int j = 0; j < t; j++) {
            sim->res->rank[i * t + j].tokens = k;
            /* with a window: its chunk and the rows before it that it sees */
            if (trim) sim->kv_tokens[i * t + j] = (double)(s - kvr_window_first(m, s - k));
            kvr_sim_compute(sim, &c, i * t + j, -1, "embed", kvr_cost_embed_s(m, g, k));
        }
    }
    for (int l = 0; l < (int)m->n_layers; l++) {
        for (int r = 0; r < plan->p; r++) kvr_sim_compute(sim, &c, r, l, "pre", sc[r / t].pre);
        for (int step = 1; step < n; step++) {
            double done[KVR_MAX_GPUS], link_free = 0;
            for (int r = 0; r < plan->p; r++) done[r] = c.t[r];
            for (int j = 0; j < t; j++)
                for (int i = 0; i < n; i++) {
                    int from = i * t + j, to = (i + 1) % n * t + j;
                    double bytes = hop_bytes(sim, plan, start, n, i, step, kvb);
                    if (bytes == 0) continue; /* nothing any later stage sees: not sent */
                    double ready = c.t[from] > c.t[to] ? c.t[from] : c.t[to];
                    double end = kvr_sim_send(sim, &link_free, from, to, l, ready, bytes, false);
                    link_free = 0; /* each rank's own link */
                    if (end > done[from]) done[from] = end;
                    if (end > done[to]) done[to] = end;
                }
            for (int r = 0; r < plan->p; r++) kvr_sim_wait_until(sim, &c, r, l, done[r]);
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < t; j++) kvr_sim_compute(sim, &c, i * t + j, l, "attn", attn[i]);
            kvr_sim_stage_post(sim, &c, &S, &sc[i], i, l, plan->tokens[i], 0);
        }
    }
    kvr_sim_finish(sim, &c, plan, plan->p - 1);
}
