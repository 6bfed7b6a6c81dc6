/* single: one GPU, embed, every layer, the LM head of the last token. The last layer runs as
 * the executor's kvr_exec_chunk does: pre on every row (the cache needs its K/V), then the
 * attention of the last row's query against all keys and the post of that row alone
 * (plan->full_last_layer: every row, as the executor before that pruning did). plan->chunk: in
 * sub-chunks, as kvr exec --chunk runs them. */
#include "kvr_cost.h"
#include "kvr_sim_int.h"

/* Sub-chunk [s, s + n) of a ctx-token prefill; last: the one whose last token gives the logits. */
static void sub_chunk(struct kvr_sim *sim, struct kvr_clocks *c, const struct kvr_plan *plan,
                      uint64_t s, uint64_t n, bool last)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    kvr_sim_compute(sim, c, 0, -1, "embed", kvr_cost_embed_s(m, g, n));
    double pre = kvr_cost_pre_s(m, g, n), attn = kvr_cost_attn_s(m, g, s, n, KVR_MASK_CAUSAL);
    double post = kvr_cost_post_s(m, g, n);
    uint64_t end = s + n;
    for (int l = 0; l < (int)m->n_layers; l++) {
        bool final = l + 1 == (int)m->n_layers && !plan->full_last_layer;
        kvr_sim_compute(sim, c, 0, l, "pre", pre);
        if (final && !last) continue; /* a later sub-chunk reads only this layer's K/V */
        bool one = final && n > 1;
        kvr_sim_compute(sim, c, 0, l, "attn",
                        one ? kvr_cost_attn_s(m, g, end - 1, 1, KVR_MASK_CAUSAL) : attn);
        kvr_sim_compute(sim, c, 0, l, "post", one ? kvr_cost_post_last_s(m, g, n) : post);
    }
}

void kvr_sim_single(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    struct kvr_clocks c = {{0}};
    uint64_t n = plan->ctx, step = plan->chunk && plan->chunk < n ? plan->chunk : n;
    sim->res->rank[0].tokens = n;
    sim->act_rows[0] = step;
    for (uint64_t s = 0; s < n; s += step)
        sub_chunk(sim, &c, plan, s, n - s < step ? n - s : step, s + step >= n);
    kvr_sim_finish(sim, &c, plan, 0);
}
