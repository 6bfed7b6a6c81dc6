/* Memory per rank: weights (full for the context-parallel schemes, a shard for tp and for a
 * layout's stages: weights / t), the KV
 * cache the rank holds at the end of the prefill (all layers), and peak activations:
 *   act = tokens * dtype * (2 d + max(q + 2 kv, (mlp matrices + 1) * d_ffn)) + vocab * 4
 * (residual stream, normed input, and the widest intermediate: QKV output or the MLP's up
 * output plus its activation; attention is fused, so no score matrix; fp32 logits of the last
 * token). The KV cache each rank holds, and whether the weights are sharded, come from the
 * scheme (struct kvr_sim). tsp computes its dense block in the fused kernel as the executor
 * does (no score matrix: the 4xH100 runs of tsp at 32k on 2 GPUs peaked at 36.5 GB). tsp-paper,
 * the paper's baseline as it most plausibly ran (eager attention), also
 * holds its score block and its probabilities, 2 * c * keys * heads * dtype bytes of one layer
 * (keys = ctx; with a sliding window W the min(ctx - c, W - 1) + c that the block spans). (The
 * executor's tsp-paper runs the dense block fused, as tsp: it moves the paper's bytes without that
 * block.) A plan fits when every rank's sum is within the GPU's memory less its reserve. */
#include <stdio.h>
#include <string.h>

#include "kvr_sim_int.h"
#include "kvr_tp.h"
#include "kvr_units.h"

static double activation_bytes(const struct kvr_model *m, uint64_t tokens)
{
    double q = (double)m->n_heads * m->head_dim, kv = (double)m->n_kv_heads * m->head_dim;
    double mats = m->mlp == KVR_MLP_SWIGLU ? 3 : 2, wide = q + 2 * kv;
    if (mats * m->d_ffn > wide) wide = mats * m->d_ffn;
    return (double)tokens * kvr_dtype_bytes(m->dtype) * (2.0 * m->d_model + wide) + 4.0 * m->vocab;
}

static bool dense_scores(enum kvr_scheme s)
{
    return s == KVR_SCHEME_TSP_PAPER;
}

void kvr_sim_memory(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    struct kvr_sim_result *res = sim->res;
    res->mem_available_bytes = sim->machine->gpu.mem_bytes - sim->machine->gpu.mem_reserve_bytes;
    for (int r = 0; r < plan->p; r++) {
        struct kvr_rank_result *rr = &res->rank[r];
        struct kvr_model part = *m;
        if (sim->sharded) /* tp: p shards; a layout: t per stage */
            kvr_tp_shard(m, sim->tp_t > 0 ? sim->tp_t : plan->p, sim->tp_t > 0 ? r % sim->tp_t : r,
                         &part);
        double all = sim->kv_tokens[r], one = sim->kv_flight_tokens[r];
        double kvb = (double)kvr_model_kv_bytes_per_token_layer(&part);
        rr->weight_bytes = (double)kvr_model_weight_bytes(&part);
        rr->kv_bytes = (all * m->n_layers + one) * kvb;
        rr->act_bytes = activation_bytes(&part, sim->act_rows[r] ? sim->act_rows[r] : rr->tokens);
        if (dense_scores(plan->scheme)) /* the dense block and its probabilities, as timed:
                                         * the keys a last chunk spans (ctx; a window's) */
            rr->act_bytes += 2.0 * (double)rr->tokens *
                             (double)kvr_model_attn_keys(m, plan->ctx - rr->tokens, rr->tokens) *
                             part.n_heads * kvr_dtype_bytes(m->dtype);
        rr->mem_bytes = rr->weight_bytes + rr->kv_bytes + rr->act_bytes;
        rr->fits = rr->mem_bytes <= res->mem_available_bytes;
    }
}

double kvr_memory_kvr_rank_bytes(const struct kvr_model *m, uint64_t prefix_end, uint64_t tokens)
{
    /* as kvr_scheme_kvr.c keeps it: [first(S_{i-1}), S_i) with a sliding window */
    double kept = (double)(prefix_end - kvr_window_first(m, prefix_end - tokens));
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(m);
    return (double)kvr_model_weight_bytes(m) + kept * m->n_layers * kvb +
           activation_bytes(m, tokens);
}

bool kvr_sim_fits(const struct kvr_sim_result *res)
{
    for (int r = 0; r < res->p; r++)
        if (!res->rank[r].fits) return false;
    return true;
}

double kvr_sim_mem_needed(const struct kvr_sim_result *res)
{
    double most = 0;
    for (int r = 0; r < res->p; r++)
        most = res->rank[r].mem_bytes > most ? res->rank[r].mem_bytes : most;
    return most;
}

enum kvr_status kvr_sim_check_fits(const struct kvr_sim_result *res)
{
    if (kvr_sim_fits(res)) return KVR_OK;
    char msg[900], a[32];
    int n = 0, shown = 0;
    size_t len = (size_t)snprintf(
        msg, sizeof msg, "plan does not fit in GPU memory (%.0f bytes = %s available per rank):",
        res->mem_available_bytes, kvr_format_bytes(a, sizeof a, res->mem_available_bytes));
    for (int r = 0; r < res->p; r++) {
        if (res->rank[r].fits) continue;
        n++;
        if (shown == 6 || len >= sizeof msg - 80) continue;
        len += (size_t)snprintf(msg + len, sizeof msg - len, " rank %d needs %.0f bytes (%s);", r,
                                res->rank[r].mem_bytes,
                                kvr_format_bytes(a, sizeof a, res->rank[r].mem_bytes));
        shown++;
    }
    if (n > shown && len < sizeof msg - 40)
        snprintf(msg + len, sizeof msg - len, " and %d more ranks", n - shown);
    return kvr_error(KVR_ERR_NOFIT, "%s", msg);
}
