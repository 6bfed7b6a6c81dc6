#include "kvr_cost.h"

#include <math.h>

/* An op's time at a peak and a compute efficiency (the class's, or attention's scaled one). */
static double op_s(const struct kvr_gpu *g, double peak, double eff_c, const struct kvr_op_cost *c,
                   enum kvr_op_class cls, double rows)
{
    double bytes = (double)kvr_op_cost_bytes(c), flops = (double)c->flops;
    if (flops == 0 && bytes == 0) return 0;
    double eff = eff_c * rows / (rows + g->half_tokens[cls]);
    double t_compute = flops > 0 ? flops / (peak * eff) : 0;
    double t_memory = bytes / (g->mem_Bps * g->mem_eff[cls]);
    return (t_compute > t_memory ? t_compute : t_memory) + g->launch_s;
}

double kvr_cost_op_s(const struct kvr_gpu *g, const struct kvr_op_cost *c, enum kvr_op_class cls,
                     double rows)
{
    return op_s(g, g->peak_flops, g->compute_eff[cls], c, cls, rows);
}

/* At the peak of the model's dtype: an fp32 model's GEMMs run without tensor cores. */
double kvr_cost_model_op_s(const struct kvr_model *m, const struct kvr_gpu *g, enum kvr_op op,
                           const struct kvr_op_cost *c, double rows)
{
    enum kvr_op_class cls = kvr_op_class(op);
    double scale = g->op_scale[op] > 0 ? g->op_scale[op] : 1, e = g->compute_eff[cls];
    if (cls == KVR_CLASS_ATTENTION && g->attn_hd_exp != 0) {
        e *= pow(m->head_dim / 128.0, g->attn_hd_exp);
        if (e > 1) e = 1;
    }
    return op_s(g, kvr_gpu_peak_flops(g, m->dtype), e, c, cls, rows) * scale;
}

/* The rows that set an op's efficiency: its tokens; for attention queries^(1-a) times the mean
 * keys per query^a (a = attn_keys_exp; kvr_gpu), since the length of a query tile's loop over
 * the key blocks amortises the tile's fixed cost as well (a few queries after a long prefix
 * run more efficiently than a short causal chunk). */
static double eff_rows(const struct kvr_gpu *g, enum kvr_op op, uint64_t n_queries, double pairs)
{
    double a = g->attn_keys_exp;
    if (kvr_op_class(op) != KVR_CLASS_ATTENTION || n_queries == 0 || a == 0)
        return (double)n_queries;
    return pow((double)n_queries, 1 - a) * pow(pairs / (double)n_queries, a);
}

/* The pairs the op computes (kvr_op_cost's): a sliding window's, not the causal count. */
double kvr_cost_model_eff_rows(const struct kvr_model *m, const struct kvr_gpu *g, enum kvr_op op,
                               uint64_t s, uint64_t c, enum kvr_mask mask)
{
    return eff_rows(g, op, c, (double)kvr_model_attn_pairs(m, s, c, mask));
}

/* Sum of op times over [first, last] for a chunk; counts never overflow for validated inputs
 * (kvr_counts.h limits), so a failed count is a programming error and costs infinity. */
static double ops_s(const struct kvr_model *m, const struct kvr_gpu *g, enum kvr_op first,
                    enum kvr_op last, uint64_t s, uint64_t c, enum kvr_mask mask)
{
    double t = 0;
    for (int op = first; op <= (int)last; op++) {
        struct kvr_op_cost x;
        if (kvr_op_cost(m, (enum kvr_op)op, s, c, mask, &x)) return INFINITY;
        t += kvr_cost_model_op_s(m, g, (enum kvr_op)op, &x,
                                 kvr_cost_model_eff_rows(m, g, (enum kvr_op)op, s, c, mask));
    }
    return t;
}

double kvr_cost_pre_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t c)
{
    return ops_s(m, g, KVR_OP_NORM_ATTN, KVR_OP_ROTARY, 0, c, KVR_MASK_CAUSAL);
}

double kvr_cost_attn_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t s, uint64_t c,
                       enum kvr_mask mask)
{
    return ops_s(m, g, KVR_OP_ATTN_SCORES, KVR_OP_ATTN_PV, s, c, mask);
}

double kvr_cost_attn_block_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t n_queries,
                             uint64_t n_keys, uint64_t pairs)
{
    double t = 0;
    for (int op = KVR_OP_ATTN_SCORES; op <= KVR_OP_ATTN_PV; op++) {
        struct kvr_op_cost x;
        if (kvr_attn_cost(m, (enum kvr_op)op, n_queries, n_keys, pairs, &x)) return INFINITY;
        t += kvr_cost_model_op_s(m, g, (enum kvr_op)op, &x,
                                 eff_rows(g, (enum kvr_op)op, n_queries, (double)pairs));
    }
    return t;
}

double kvr_cost_ops_s(const struct kvr_model *m, const struct kvr_gpu *g, enum kvr_op first,
                      enum kvr_op last, uint64_t c)
{
    return ops_s(m, g, first, last, 0, c, KVR_MASK_CAUSAL);
}

double kvr_cost_post_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t c)
{
    return ops_s(m, g, KVR_OP_OUT_PROJ, KVR_OP_RESIDUAL, 0, c, KVR_MASK_CAUSAL);
}

bool kvr_cost_last_row_op(const struct kvr_model *m, enum kvr_op op)
{
    if (op < KVR_OP_ATTN_SCORES || op > KVR_OP_RESIDUAL) return false;
    return !(op == KVR_OP_NORM_MLP && m->parallel_attn && m->block_norms == 2);
}

double kvr_cost_post_last_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t n)
{
    double t = 0;
    for (int op = KVR_OP_OUT_PROJ; op <= KVR_OP_RESIDUAL; op++) {
        bool one = n > 1 && kvr_cost_last_row_op(m, (enum kvr_op)op);
        t += ops_s(m, g, (enum kvr_op)op, (enum kvr_op)op, one ? n - 1 : 0, one ? 1 : n,
                   KVR_MASK_CAUSAL);
    }
    return t;
}

double kvr_cost_embed_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t c)
{
    return ops_s(m, g, KVR_OP_EMBED, KVR_OP_EMBED, 0, c, KVR_MASK_CAUSAL);
}

double kvr_cost_head_s(const struct kvr_model *m, const struct kvr_gpu *g)
{
    return ops_s(m, g, KVR_OP_FINAL_NORM, KVR_OP_LM_HEAD, 0, 1, KVR_MASK_CAUSAL);
}

double kvr_link_s(const struct kvr_machine *m, int i, int j, double bytes, double share)
{
    return m->link_lat_s[i][j] + bytes / (m->link_Bps[i][j] * (1 - share));
}

double kvr_link_overlap_s(const struct kvr_machine *m, int i, int j, double bytes, double share)
{
    double bw = m->link_Bps[i][j] * (1 - share);
    if (m->overlap_Bps > 0 && bw > m->overlap_Bps) bw = m->overlap_Bps;
    return m->link_lat_s[i][j] + bytes / bw;
}

/* One ring step: every rank i sends `bytes` to i+1 at once; the slowest link gates the step. */
static double ring_step_s(const struct kvr_machine *m, int p, double bytes, const double *shares,
                          int stride)
{
    double worst = 0;
    for (int i = 0; i < p; i++) {
        int j = (i + 1) % p;
        double t = kvr_link_s(m, i, j, bytes, shares ? shares[i * stride + j] : 0);
        if (t > worst) worst = t;
    }
    return worst;
}

double kvr_allgather_s(const struct kvr_machine *m, int p, double block_bytes, const double *shares,
                       int stride)
{
    return p > 1 ? (p - 1) * ring_step_s(m, p, block_bytes, shares, stride) : 0;
}

double kvr_allreduce_s(const struct kvr_machine *m, int p, double bytes, const double *shares,
                       int stride)
{
    return p > 1 ? 2 * (p - 1) * ring_step_s(m, p, bytes / p, shares, stride) : 0;
}
