/* tp: Megatron tensor parallelism. */
#include "kvr_cost.h"
#include "kvr_sim_int.h"
#include "kvr_tp.h"

static double tp_ops_s(const struct kvr_model *full, const struct kvr_model *part,
                       const struct kvr_gpu *g, enum kvr_op first, enum kvr_op last, uint64_t n)
{
    double t = 0;
    for (int op = first; op <= (int)last; op++) {
        enum kvr_op o = (enum kvr_op)op;
        bool replicated = o == KVR_OP_NORM_ATTN || o == KVR_OP_NORM_MLP || o == KVR_OP_RESIDUAL;
        struct kvr_op_cost x;
        if (kvr_op_cost(replicated ? full : part, o, 0, n, KVR_MASK_CAUSAL, &x) == KVR_OK)
            t += kvr_cost_model_op_s(full, g, o, &x,
                                     kvr_cost_model_eff_rows(full, g, o, 0, n, KVR_MASK_CAUSAL));
    }
    return t;
}

void kvr_sim_tp(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    const int p = plan->p;
    const uint64_t n = plan->ctx;
    double attn_part[KVR_MAX_GPUS], mlp_part[KVR_MAX_GPUS];
    double act_bytes = (double)n * m->d_model * kvr_dtype_bytes(m->dtype);
    struct kvr_clocks c = {{0}};
    sim->sharded = true;
    for (int i = 0; i < p; i++) {
        struct kvr_model part;
        kvr_tp_shard(m, p, i, &part);
        sim->res->rank[i].tokens = n;
        attn_part[i] = tp_ops_s(m, &part, g, KVR_OP_NORM_ATTN, KVR_OP_OUT_PROJ, n);
        mlp_part[i] = tp_ops_s(m, &part, g, KVR_OP_NORM_MLP, KVR_OP_RESIDUAL, n);
        kvr_sim_compute(sim, &c, i, -1, "embed", kvr_cost_embed_s(m, g, n));
    }
    for (int l = 0; l < (int)m->n_layers; l++) {
        const double *nz = kvr_sim_layer_noise(sim, l);
        double ar = kvr_allreduce_s(sim->machine, p, act_bytes, nz, sim->machine->n_gpus);
        double ar_bytes = 2.0 * (p - 1) * act_bytes; /* ring: 2(p-1)/p of the buffer per rank */
        for (int i = 0; i < p; i++) kvr_sim_compute(sim, &c, i, l, "attn", attn_part[i]);
        /* a parallel block (Falcon) sums attention and MLP before one all-reduce */
        if (!m->parallel_attn) kvr_sim_collective(sim, &c, p, l, "allreduce", ar, ar_bytes);
        for (int i = 0; i < p; i++) kvr_sim_compute(sim, &c, i, l, "mlp", mlp_part[i]);
        kvr_sim_collective(sim, &c, p, l, "allreduce", ar, ar_bytes);
    }
    kvr_sim_finish(sim, &c, plan, p - 1);
}
