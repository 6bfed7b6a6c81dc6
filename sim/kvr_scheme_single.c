/* single: one GPU, embed, every layer, the LM head of the last token. */
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
        kvr_sim_compute(sim, &c, 0, l, "pre", pre);
        kvr_sim_compute(sim, &c, 0, l, "attn", attn);
        kvr_sim_compute(sim, &c, 0, l, "post", post);
    }
    kvr_sim_finish(sim, &c, plan, 0);
}
