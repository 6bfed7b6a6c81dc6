/* The layer written once over the backend's primitive operations, each profiled when asked,
 * and the chunked prefill of one rank. */
#include <string.h>

#include "kvr_exec_int.h"

enum kvr_status kvr_exec_check_chunk(const struct kvr_exec *ex, uint32_t s, uint32_t c)
{
    if (c == 0 || c > ex->opts.max_chunk)
        return kvr_error(KVR_ERR_INPUT, "chunk of %u tokens is out of range [1, %u]", c,
                         ex->opts.max_chunk);
    if ((uint64_t)s + c > ex->opts.max_ctx)
        return kvr_error(KVR_ERR_INPUT, "chunk [%u, %u) exceeds the KV cache of %u positions", s,
                         s + c, ex->opts.max_ctx);
    return KVR_OK;
}

enum kvr_status kvr_exec_check_prompt(const struct kvr_exec *ex, uint32_t ctx)
{
    if (ctx == 0 || ctx > ex->opts.max_ctx)
        return kvr_error(KVR_ERR_INPUT, "prompt of %u tokens is out of range [1, %u]", ctx,
                         ex->opts.max_ctx);
    return KVR_OK;
}

/* Profiling: a pair of time stamps around each primitive operation, charged to its kvr_op
 * (the simulator's operations; attention's three are one kernel, charged to the scores). */
enum kvr_status kvr_exec_prof_mark(struct kvr_exec *ex, enum kvr_op op, bool end)
{
    if (!ex->profile || ex->n_stamps + 2 > KVR_MAX_STAMPS) return KVR_OK;
    if (end) {
        enum kvr_status st = OPS(ex)->stamp(BE(ex), ex->n_stamps + 1);
        ex->n_stamps += 2;
        return st;
    }
    ex->stamp_op[ex->n_stamps / 2] = (uint8_t)op;
    return OPS(ex)->stamp(BE(ex), ex->n_stamps);
}

enum kvr_status kvr_exec_prof_collect(struct kvr_exec *ex)
{
    enum kvr_status st = KVR_OK;
    for (uint32_t i = 0; i + 1 < ex->n_stamps && !st; i += 2) {
        double dt = 0;
        st = OPS(ex)->stamp_span(BE(ex), i, i + 1, &dt);
        ex->op_s[ex->stamp_op[i / 2]] += dt;
    }
    ex->n_stamps = 0;
    return st;
}

void kvr_exec_set_profile(struct kvr_exec *ex, bool on)
{
    ex->profile = on;
    ex->n_stamps = 0;
}

void kvr_exec_profile_get(const struct kvr_exec *ex, double op_s[KVR_N_OPS])
{
    memcpy(op_s, ex->op_s, sizeof ex->op_s);
}

void kvr_exec_profile_reset(struct kvr_exec *ex)
{
    memset(ex->op_s, 0, sizeof ex->op_s);
}

enum kvr_status kvr_exec_embed(struct kvr_exec *ex, const int32_t *tokens, uint32_t c)
{
    enum kvr_status st = kvr_exec_check_chunk(ex, 0, c);
    if (st) return st;
    for (uint32_t i = 0; i < c; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= ex->model.vocab)
            return kvr_error(KVR_ERR_INPUT,
                             "token %d at position %u is outside the vocabulary [0, %u)", tokens[i],
                             i, ex->model.vocab);
    if ((st = OPS(ex)->upload(BE(ex), tokens, c))) return st;
    STEP(KVR_OP_EMBED, OPS(ex)->embed(BE(ex), c));
    return KVR_OK;
}

/* The norms and QKV; with fused (chunk position s), rotary too where the backend fuses it (a
 * profiled run keeps the two passes, as the MLP's). */
static enum kvr_status norms_qkv(struct kvr_exec *ex, uint32_t layer, uint32_t s, uint32_t c,
                                 bool *fused)
{
    const struct kvr_backend_ops *o = OPS(ex);
    void *be = BE(ex);
    const struct kvr_model *m = &ex->model;
    enum kvr_status st;
    STEP(KVR_OP_NORM_ATTN, o->norm(be, KVR_BUF_XN, KVR_T_ATTN_NORM_W, layer, c));
    /* Falcon-40B style: two norms of the same input, taken before attention changes X. */
    if (m->parallel_attn && m->block_norms == 2)
        STEP(KVR_OP_NORM_MLP, o->norm(be, KVR_BUF_XN2, KVR_T_MLP_NORM_W, layer, c));
    STEP(KVR_OP_QKV, fused && o->qkv_rotary && !ex->profile
                         ? o->qkv_rotary(be, layer, s, c, fused)
                         : o->linear(be, KVR_BUF_QKV, KVR_BUF_XN, KVR_T_WQKV, layer, c, false));
    return KVR_OK;
}

enum kvr_status kvr_exec_norms_qkv(struct kvr_exec *ex, uint32_t layer, uint32_t c)
{
    return norms_qkv(ex, layer, 0, c, NULL);
}

enum kvr_status kvr_exec_layer_qkv(struct kvr_exec *ex, uint32_t layer, uint32_t s, uint32_t c)
{
    enum kvr_status st = kvr_exec_check_chunk(ex, s, c);
    bool fused = false;
    if (st || (st = norms_qkv(ex, layer, s, c, &fused))) return st;
    if (!fused) STEP(KVR_OP_ROTARY, OPS(ex)->rotary(BE(ex), layer, s, c));
    return KVR_OK;
}

enum kvr_status kvr_exec_layer_rest(struct kvr_exec *ex, uint32_t layer, uint32_t s, uint32_t c,
                                    enum kvr_mask mask)
{
    enum kvr_status st = kvr_exec_check_chunk(ex, s, c);
    if (st) return st;
    STEP(KVR_OP_ATTN_SCORES, OPS(ex)->attention(BE(ex), layer, s, c, mask));
    return kvr_exec_layer_after_attn(ex, layer, c);
}

enum kvr_status kvr_exec_layer_after_attn(struct kvr_exec *ex, uint32_t layer, uint32_t c)
{
    const struct kvr_backend_ops *o = OPS(ex);
    void *be = BE(ex);
    const struct kvr_model *m = &ex->model;
    enum kvr_status st = kvr_exec_check_chunk(ex, 0, c);
    if (st) return st;
    /* The residual add is the accumulate of the output projection (X += ATT Wo^T). With tensor
     * parallelism the row-parallel projections leave partial sums: shard 0 accumulates its
     * part into X (the residual, and the biases only it holds), the others overwrite X with
     * theirs, and the stage's all-reduce sums them: the residual and the biases once. */
    bool add = !ex->tp || kvr_exec_tp_shard(ex) == 0;
    if (layer + 1 == m->n_layers) ex->last_layer_pruned = false; /* last_layer() sets it */
    STEP(KVR_OP_OUT_PROJ, o->linear(be, KVR_BUF_X, KVR_BUF_ATT, KVR_T_WO, layer, c, add));
    if (ex->tp && !m->parallel_attn && (st = kvr_exec_tp_allreduce(ex->tp, &ex->be, c))) return st;
    enum kvr_buf mlp_in = m->parallel_attn && m->block_norms == 1 ? KVR_BUF_XN : KVR_BUF_XN2;
    if (!m->parallel_attn)
        STEP(KVR_OP_NORM_MLP, o->norm(be, KVR_BUF_XN2, KVR_T_MLP_NORM_W, layer, c));
    /* a profiled run keeps the two passes, so that each operation has its own time (what the
     * simulator's operations and kvr calibrate's fit are made of) */
    bool fused = false;
    STEP(KVR_OP_MLP_UP, o->linear_act && !ex->profile
                            ? o->linear_act(be, mlp_in, layer, c, &fused)
                            : o->linear(be, KVR_BUF_UP, mlp_in, KVR_T_WUP, layer, c, false));
    if (!fused) STEP(KVR_OP_MLP_ACT, o->activation(be, c));
    /* a parallel block adds the MLP's part to the attention's, one all-reduce for both */
    STEP(KVR_OP_MLP_DOWN,
         o->linear(be, KVR_BUF_X, KVR_BUF_ACT, KVR_T_WDOWN, layer, c, add || m->parallel_attn));
    if (ex->tp && (st = kvr_exec_tp_allreduce(ex->tp, &ex->be, c))) return st;
    return KVR_OK;
}

/* Final norm and LM head of the chunk's last token (charged to the LM head). */
enum kvr_status kvr_exec_logits(struct kvr_exec *ex, uint32_t c, float *logits)
{
    enum kvr_status st;
    STEP(KVR_OP_LM_HEAD, OPS(ex)->logits(BE(ex), c - 1));
    /* tensor parallelism: this shard's vocabulary rows, gathered over the stage */
    if ((st = ex->tp ? kvr_exec_tp_logits(ex->tp, &ex->be, logits)
                     : OPS(ex)->logits_read(BE(ex), logits)))
        return st;
    return ex->profile ? kvr_exec_prof_collect(ex) : KVR_OK;
}

/* The last layer of a chunk: its K and V (the QKV half) are all that later chunks read, and
 * the first token needs the chunk's last row alone, so the rest of the layer runs on that row
 * (its query against the whole cache) when the logits are wanted, else not at all. A tensor-
 * parallel stage runs every row, as Megatron's prefill does and as the simulator's TP and
 * layouts count it (the chains' ranks too): only the one-GPU prefill prunes. */
static enum kvr_status last_layer(struct kvr_exec *ex, uint32_t s, uint32_t c, enum kvr_mask mask,
                                  bool logits)
{
    const uint32_t l = ex->model.n_layers - 1;
    enum kvr_status st = kvr_exec_layer_qkv(ex, l, s, c);
    if (st || !logits) return st;
    if (ex->tp) return kvr_exec_layer_rest(ex, l, s, c, mask); /* the logits read row c - 1 */
    if (c > 1 && (st = kvr_backend_keep_row(&ex->be, c - 1, ex->opts.max_chunk))) return st;
    if ((st = kvr_exec_layer_rest(ex, l, s + c - 1, 1, mask))) return st;
    ex->last_layer_pruned = true;
    return KVR_OK;
}

bool kvr_exec_last_layer_pruned(const struct kvr_exec *ex)
{
    return ex->last_layer_pruned;
}

enum kvr_status kvr_exec_chunk(struct kvr_exec *ex, const int32_t *tokens, uint32_t s, uint32_t c,
                               enum kvr_mask mask, float *logits)
{
    enum kvr_status st = kvr_exec_check_chunk(ex, s, c);
    if (st || (st = kvr_exec_embed(ex, tokens, c))) return st;
    for (uint32_t l = 0; l + 1 < ex->model.n_layers; l++)
        if ((st = kvr_exec_layer_qkv(ex, l, s, c)) || (st = kvr_exec_layer_rest(ex, l, s, c, mask)))
            return st;
    if ((st = last_layer(ex, s, c, mask, logits != NULL))) return st;
    /* pruned, the last row is row 0 now; a tensor-parallel stage's is still row c - 1 */
    if (logits) return kvr_exec_logits(ex, ex->tp ? c : 1, logits);
    if ((st = OPS(ex)->sync(BE(ex)))) return st;
    return ex->profile ? kvr_exec_prof_collect(ex) : KVR_OK;
}

/* The FLOPs kvr_exec_chunk(0, ctx) executes: the whole prefill's, less the last layer's
 * attention and what follows it on every row but the last. */
enum kvr_status kvr_exec_prefill_flops(const struct kvr_model *m, uint32_t ctx, enum kvr_mask mask,
                                       uint64_t *flops)
{
    struct kvr_prefill_flops fl;
    enum kvr_status st = kvr_prefill_flops(m, ctx, mask, &fl);
    *flops = fl.total;
    for (int op = KVR_OP_ATTN_SCORES; op <= KVR_OP_RESIDUAL && !st && ctx > 1; op++) {
        struct kvr_op_cost all, one;
        if (op == KVR_OP_NORM_MLP && m->parallel_attn && m->block_norms == 2) continue;
        if ((st = kvr_op_cost(m, (enum kvr_op)op, 0, ctx, mask, &all)) ||
            (st = kvr_op_cost(m, (enum kvr_op)op, ctx - 1, 1, mask, &one)))
            break;
        *flops -= all.flops - one.flops;
    }
    return st;
}

/* Times reps runs of the whole prefill (embedding to first token on the host). */
enum kvr_status kvr_exec_prefill(struct kvr_exec *ex, const int32_t *tokens, uint32_t ctx,
                                 float *logits)
{
    enum kvr_status st = kvr_exec_check_prompt(ex, ctx);
    for (uint32_t s = 0; s < ctx && !st; s += ex->opts.max_chunk) {
        uint32_t c = ctx - s < ex->opts.max_chunk ? ctx - s : ex->opts.max_chunk;
        st = kvr_exec_chunk(ex, tokens + s, s, c, KVR_MASK_CAUSAL, s + c == ctx ? logits : NULL);
    }
    return st;
}
