/* The executor: the layer written once over the backend's primitive operations. */
#include "kvr_exec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_backend.h"
#include "kvr_exec_tp.h"
#include "kvr_safetensors.h"
#include "kvr_sim.h"
#include "kvr_weights.h"
#include "kvr_stats.h"

struct kvr_exec {
    struct kvr_model model;
    struct kvr_exec_opts opts;
    struct kvr_backend be;
    bool profile;
    uint32_t n_stamps;                    /* recorded, not yet collected */
    uint8_t stamp_op[KVR_MAX_STAMPS / 2]; /* kvr_op of each pair */
    double op_s[KVR_N_OPS];               /* collected seconds per op */
    int32_t *tokens;                      /* the prompt (kvr_exec_set_tokens), or NULL: seeded */
    uint32_t n_tokens;
    float *logits; /* the last kvr_exec_run_single's last-token logits, or NULL */
    uint32_t ring_rows, ring_n_q, ring_n_o; /* the ring attention workspace (0: none) */
    struct kvr_model full;  /* the whole model; `model` is its shard with tensor parallelism */
    struct kvr_exec_tp *tp; /* tensor-parallel shard (kvr_exec_tp.h), or NULL: the whole model */
    bool last_layer_pruned; /* the last layer's rest last ran on one row (kvr_exec_chunk) */
};

#define OPS(ex) ((ex)->be.ops)
#define BE(ex)  ((ex)->be.state)

const char *kvr_backend_name(enum kvr_backend_kind b)
{
    return b == KVR_BACKEND_CUDA ? "cuda" : "ref";
}

int kvr_backend_from_name(const char *s)
{
    if (!strcmp(s, "ref")) return KVR_BACKEND_REF;
    if (!strcmp(s, "cuda")) return KVR_BACKEND_CUDA;
    return -1;
}

enum kvr_status kvr_exec_open(const struct kvr_model *m, const struct kvr_exec_opts *o,
                              struct kvr_exec **out)
{
    *out = NULL;
    enum kvr_status st = kvr_model_validate(m);
    if (st) return st;
    if (o->max_ctx == 0 || o->max_ctx > KVR_MAX_CTX)
        return kvr_error(KVR_ERR_INPUT, "context of %u tokens is out of range [1, %u]", o->max_ctx,
                         KVR_MAX_CTX);
    if (!m->rotary)
        return kvr_error(KVR_ERR_INPUT,
                         "model %s has no rotary embeddings (ALiBi); the executor "
                         "runs rotary models only",
                         m->name);
    uint32_t chunk = o->max_chunk ? o->max_chunk : o->max_ctx;
    if (chunk > o->max_ctx)
        return kvr_error(KVR_ERR_INPUT, "chunk of %u tokens exceeds the context of %u", chunk,
                         o->max_ctx);
    if (o->tp < 0 || (o->tp <= 1 && o->tp_rank != 0)) /* no shard without tensor parallelism */
        return kvr_error(KVR_ERR_INPUT,
                         "tp %d with shard %d: tp is 0 or 1 (the whole model, shard "
                         "0) or t > 1 (shards 0..t-1)",
                         o->tp, o->tp_rank);
    struct kvr_exec *ex = calloc(1, sizeof *ex);
    if (!ex) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    ex->model = ex->full = *m;
    ex->opts = *o;
    ex->opts.max_chunk = chunk;
    if (o->tp > 1) st = kvr_exec_tp_open(m, o->tp, o->tp_rank, &ex->tp, &ex->model);
    const struct kvr_model *bm = &ex->model; /* the backend holds the shard */
    uint32_t v0 = 0, n_vocab = m->vocab;     /* and the shard's LM head rows */
    if (!st) kvr_exec_tp_vocab(ex->tp, &v0, &n_vocab);
    if (!st)
        st = o->backend == KVR_BACKEND_CUDA
                 ? kvr_cuda_create(bm, o->max_ctx, chunk, v0, n_vocab, o->device, &ex->be)
                 : kvr_ref_create(bm, o->max_ctx, chunk, v0, n_vocab, &ex->be);
    if (!st && ex->tp) st = kvr_exec_tp_setup(ex->tp, &ex->be);
    if (!st && o->weights) st = kvr_safetensors_load(o->weights, ex, o->allow_unused);
    if (!st && !o->weights) st = kvr_exec_tp_seed(ex->tp, &ex->be, &ex->full, o->seed);
    if (st) {
        kvr_exec_close(ex);
        return st;
    }
    *out = ex;
    return KVR_OK;
}

enum kvr_status kvr_exec_set_prompt_len(struct kvr_exec *ex, uint32_t ctx)
{
    if (ctx == 0 || ctx > ex->opts.max_ctx)
        return kvr_error(KVR_ERR_INPUT, "prompt of %u tokens is out of range [1, %u]", ctx,
                         ex->opts.max_ctx);
    return OPS(ex)->set_prompt ? OPS(ex)->set_prompt(BE(ex), ctx) : KVR_OK;
}

enum kvr_status kvr_exec_set_tokens(struct kvr_exec *ex, const int32_t *tokens, uint32_t n)
{
    int32_t *copy = malloc((size_t)n * sizeof *copy + 1);
    if (!copy) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    memcpy(copy, tokens, (size_t)n * sizeof *copy);
    free(ex->tokens);
    ex->tokens = copy, ex->n_tokens = n;
    return KVR_OK;
}

const float *kvr_exec_last_logits(const struct kvr_exec *ex)
{
    return ex->logits;
}

/* The prompt of a timed run: the given tokens (their count must be ctx), else seeded. */
static enum kvr_status prompt_tokens(const struct kvr_exec *ex, uint32_t ctx, uint64_t seed,
                                     int32_t *out)
{
    if (!ex->tokens) {
        kvr_tokens_random(seed, ex->model.vocab, ctx, out);
        return KVR_OK;
    }
    if (ex->n_tokens != ctx)
        return kvr_error(KVR_ERR_INPUT, "the prompt has %u tokens, not ctx = %u", ex->n_tokens,
                         ctx);
    memcpy(out, ex->tokens, (size_t)ctx * sizeof *out);
    return KVR_OK;
}

void kvr_exec_close(struct kvr_exec *ex)
{
    if (!ex) return;
    if (ex->be.ops) ex->be.ops->destroy(ex->be.state);
    kvr_exec_tp_free(ex->tp);
    free(ex->tokens), free(ex->logits), free(ex);
}

const struct kvr_model *kvr_exec_model(const struct kvr_exec *ex)
{
    return &ex->model;
}

enum kvr_status kvr_exec_set_tensor(struct kvr_exec *ex, int tensor, uint32_t layer,
                                    const float *data)
{
    if (ex->tp)
        return kvr_exec_tp_set_tensor(ex->tp, &ex->be, (enum kvr_tensor)tensor, layer, data);
    return OPS(ex)->set_tensor(BE(ex), (enum kvr_tensor)tensor, layer, data);
}

const struct kvr_model *kvr_exec_full_model(const struct kvr_exec *ex)
{
    return &ex->full;
}

int kvr_exec_tp_degree(const struct kvr_exec *ex)
{
    return ex->tp ? ex->opts.tp : 1;
}

enum kvr_status kvr_exec_set_stage(struct kvr_exec *ex, struct kvr_comm *stage)
{
    if (!ex->tp)
        return stage && kvr_comm_size(stage) > 1
                   ? kvr_error(KVR_ERR_INPUT, "a stage of %d ranks for an unsharded executor",
                               kvr_comm_size(stage))
                   : KVR_OK;
    return kvr_exec_tp_set_comm(ex->tp, stage);
}

static enum kvr_status check_chunk(const struct kvr_exec *ex, uint32_t s, uint32_t c)
{
    if (c == 0 || c > ex->opts.max_chunk)
        return kvr_error(KVR_ERR_INPUT, "chunk of %u tokens is out of range [1, %u]", c,
                         ex->opts.max_chunk);
    if ((uint64_t)s + c > ex->opts.max_ctx)
        return kvr_error(KVR_ERR_INPUT, "chunk [%u, %u) exceeds the KV cache of %u positions", s,
                         s + c, ex->opts.max_ctx);
    return KVR_OK;
}

/* Profiling: a pair of time stamps around each primitive operation, charged to its kvr_op
 * (the simulator's operations; attention's three are one kernel, charged to the scores). */
static enum kvr_status prof_mark(struct kvr_exec *ex, enum kvr_op op, bool end)
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

static enum kvr_status prof_collect(struct kvr_exec *ex)
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

/* One primitive operation, profiled when asked. */
#define STEP(op, call)                                                                             \
    do {                                                                                           \
        if ((st = prof_mark(ex, op, false)) || (st = (call)) || (st = prof_mark(ex, op, true)))    \
            return st;                                                                             \
    } while (0)

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
    enum kvr_status st = check_chunk(ex, 0, c);
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

enum kvr_status kvr_exec_layer_qkv(struct kvr_exec *ex, uint32_t layer, uint32_t s, uint32_t c)
{
    const struct kvr_backend_ops *o = OPS(ex);
    void *be = BE(ex);
    const struct kvr_model *m = &ex->model;
    enum kvr_status st = check_chunk(ex, s, c);
    if (st) return st;
    STEP(KVR_OP_NORM_ATTN, o->norm(be, KVR_BUF_XN, KVR_T_ATTN_NORM_W, layer, c));
    /* Falcon-40B style: two norms of the same input, taken before attention changes X. */
    if (m->parallel_attn && m->block_norms == 2)
        STEP(KVR_OP_NORM_MLP, o->norm(be, KVR_BUF_XN2, KVR_T_MLP_NORM_W, layer, c));
    STEP(KVR_OP_QKV, o->linear(be, KVR_BUF_QKV, KVR_BUF_XN, KVR_T_WQKV, layer, c, false));
    STEP(KVR_OP_ROTARY, o->rotary(be, layer, s, c));
    return KVR_OK;
}

enum kvr_status kvr_exec_layer_rest(struct kvr_exec *ex, uint32_t layer, uint32_t s, uint32_t c,
                                    enum kvr_mask mask)
{
    enum kvr_status st = check_chunk(ex, s, c);
    if (st) return st;
    STEP(KVR_OP_ATTN_SCORES, OPS(ex)->attention(BE(ex), layer, s, c, mask));
    return kvr_exec_layer_after_attn(ex, layer, c);
}

enum kvr_status kvr_exec_layer_after_attn(struct kvr_exec *ex, uint32_t layer, uint32_t c)
{
    const struct kvr_backend_ops *o = OPS(ex);
    void *be = BE(ex);
    const struct kvr_model *m = &ex->model;
    enum kvr_status st = check_chunk(ex, 0, c);
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
    STEP(KVR_OP_MLP_UP, o->linear(be, KVR_BUF_UP, mlp_in, KVR_T_WUP, layer, c, false));
    STEP(KVR_OP_MLP_ACT, o->activation(be, c));
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
    return ex->profile ? prof_collect(ex) : KVR_OK;
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
    enum kvr_status st = check_chunk(ex, s, c);
    if (st || (st = kvr_exec_embed(ex, tokens, c))) return st;
    for (uint32_t l = 0; l + 1 < ex->model.n_layers; l++)
        if ((st = kvr_exec_layer_qkv(ex, l, s, c)) || (st = kvr_exec_layer_rest(ex, l, s, c, mask)))
            return st;
    if ((st = last_layer(ex, s, c, mask, logits != NULL))) return st;
    /* pruned, the last row is row 0 now; a tensor-parallel stage's is still row c - 1 */
    if (logits) return kvr_exec_logits(ex, ex->tp ? c : 1, logits);
    if ((st = OPS(ex)->sync(BE(ex)))) return st;
    return ex->profile ? prof_collect(ex) : KVR_OK;
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

enum kvr_status kvr_exec_kv_gather(struct kvr_exec *ex, uint32_t layer, uint32_t n, float *k,
                                   float *v)
{
    if (!ex->tp) return kvr_exec_kv_read(ex, layer, 0, n, k, v);
    if (layer >= ex->model.n_layers || n > ex->opts.max_ctx)
        return kvr_error(KVR_ERR_INPUT, "KV gather of layer %u positions [0, %u) is out of range",
                         layer, n);
    return kvr_exec_tp_kv_gather(ex->tp, &ex->be, layer, n, k, v);
}

enum kvr_status kvr_exec_kv_read(struct kvr_exec *ex, uint32_t layer, uint32_t pos0, uint32_t n,
                                 float *k, float *v)
{
    if (layer >= ex->model.n_layers || (uint64_t)pos0 + n > ex->opts.max_ctx)
        return kvr_error(KVR_ERR_INPUT, "KV read of layer %u positions [%u, %u) is out of range",
                         layer, pos0, pos0 + n);
    return OPS(ex)->kv_read(BE(ex), layer, pos0, n, k, v);
}

int32_t kvr_logits_argmax(const float *logits, uint32_t vocab)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < vocab; i++)
        if (logits[i] > logits[best]) best = i;
    return (int32_t)best;
}

double kvr_logits_checksum(const float *logits, uint32_t vocab)
{
    double sum = 0;
    for (uint32_t i = 0; i < vocab; i++) sum += logits[i];
    return sum;
}

/* Times reps runs of the whole prefill (embedding to first token on the host). */
enum kvr_status kvr_exec_prefill(struct kvr_exec *ex, const int32_t *tokens, uint32_t ctx,
                                 float *logits)
{
    if (ctx == 0 || ctx > ex->opts.max_ctx)
        return kvr_error(KVR_ERR_INPUT, "prompt of %u tokens is out of range [1, %u]", ctx,
                         ex->opts.max_ctx);
    enum kvr_status st = KVR_OK;
    for (uint32_t s = 0; s < ctx && !st; s += ex->opts.max_chunk) {
        uint32_t c = ctx - s < ex->opts.max_chunk ? ctx - s : ex->opts.max_chunk;
        st = kvr_exec_chunk(ex, tokens + s, s, c, KVR_MASK_CAUSAL, s + c == ctx ? logits : NULL);
    }
    return st;
}

uint64_t kvr_exec_bytes_needed(const struct kvr_model *m, const struct kvr_exec_opts *o)
{
    uint32_t chunk = o->max_chunk ? o->max_chunk : o->max_ctx;
    return o->backend == KVR_BACKEND_CUDA ? kvr_cuda_bytes_needed(m, o->max_ctx, chunk)
                                          : kvr_ref_bytes_needed(m, o->max_ctx, chunk);
}

enum kvr_status kvr_exec_fit_chunk(const struct kvr_model *m, const struct kvr_exec_opts *o,
                                   uint32_t *chunk)
{
    *chunk = o->max_ctx;
    if (o->backend != KVR_BACKEND_CUDA) return KVR_OK;
    uint64_t free_b = kvr_cuda_free_bytes(o->device);
    if (free_b == 0 || kvr_cuda_bytes_needed(m, o->max_ctx, o->max_ctx) <= free_b)
        return KVR_OK; /* fits whole, or no device: kvr_exec_open says why */
    uint32_t c = o->max_ctx / 1024 * 1024;
    while (c >= 1024 && kvr_cuda_bytes_needed(m, o->max_ctx, c) > free_b) c -= 1024;
    if (c < 1024)
        return kvr_error(
            KVR_ERR_INPUT,
            "%s at %u tokens: weights and KV cache with sub-chunks of 1024 tokens need "
            "%.2f GB of GPU memory; device %d has %.2f GB free",
            m->name, o->max_ctx, kvr_cuda_bytes_needed(m, o->max_ctx, 1024) / 1e9, o->device,
            free_b / 1e9);
    *chunk = c;
    return KVR_OK;
}

static enum kvr_status time_reps(struct kvr_exec *ex, const int32_t *tokens, uint32_t ctx,
                                 int warmup, int reps, double *times, float *logits)
{
    const struct kvr_backend_ops *o = OPS(ex);
    enum kvr_status st;
    for (int i = 0; i < warmup + reps; i++) {
        double dt = 0;
        if ((st = o->timer(BE(ex), 0, NULL)) || (st = kvr_exec_prefill(ex, tokens, ctx, logits)) ||
            (st = o->timer(BE(ex), 1, &dt)))
            return st;
        if (i >= warmup) times[i - warmup] = dt;
    }
    return KVR_OK;
}

enum kvr_status kvr_exec_run_single(struct kvr_exec *ex, uint32_t ctx, uint64_t token_seed,
                                    int warmup, int reps, struct kvr_exec_result *r)
{
    const struct kvr_model *m = &ex->model;
    enum kvr_status st =
        ctx == 0 || ctx > ex->opts.max_ctx
            ? kvr_error(KVR_ERR_INPUT, "prompt of %u tokens is out of range [1, %u]", ctx,
                        ex->opts.max_ctx)
            : KVR_OK;
    if (st) return st;
    if (reps < 1 || warmup < 0)
        return kvr_error(KVR_ERR_INPUT, "reps = %d must be >= 1 and warmup = %d >= 0", reps,
                         warmup);
    int32_t *tokens = malloc((size_t)ctx * sizeof *tokens);
    float *logits = malloc((size_t)m->vocab * sizeof *logits);
    double *times = malloc((size_t)reps * sizeof *times);
    uint64_t flops = 0;
    if (!tokens || !logits || !times) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st) st = kvr_exec_prefill_flops(m, ctx, KVR_MASK_CAUSAL, &flops);
    if (!st) st = kvr_exec_set_prompt_len(ex, ctx);
    if (!st) st = prompt_tokens(ex, ctx, token_seed, tokens);
    if (!st) st = time_reps(ex, tokens, ctx, warmup, reps, times, logits);
    if (!st) {
        memset(r, 0, sizeof *r);
        r->ctx = ctx, r->reps = (uint32_t)reps;
        r->chunk = ctx < ex->opts.max_chunk ? ctx : ex->opts.max_chunk;
        r->mem_predicted_bytes = kvr_exec_bytes_needed(&ex->model, &ex->opts);
        r->ttft_s = kvr_quantile(times, (size_t)reps, 0.5); /* sorts times */
        r->ttft_min_s = times[0], r->ttft_max_s = times[reps - 1];
        r->tokens_per_s = ctx / r->ttft_s;
        r->flops = flops;
        r->tflops = (double)flops / r->ttft_s / 1e12;
        OPS(ex)->device(BE(ex), r->device, sizeof r->device, &r->peak_flops);
        r->mfu = r->peak_flops > 0 ? r->tflops * 1e12 / r->peak_flops : NAN;
        uint64_t held = 0;
        OPS(ex)->memory(BE(ex), &held, &r->peak_mem_bytes);
        if (!r->peak_mem_bytes) r->peak_mem_bytes = held;
        r->last_layer_pruned = ex->last_layer_pruned;
        r->first_token = kvr_logits_argmax(logits, m->vocab);
        r->logits_checksum = kvr_logits_checksum(logits, m->vocab);
        free(ex->logits);
        ex->logits = logits, logits = NULL;
    }
    free(tokens), free(logits), free(times);
    return st;
}

enum kvr_status kvr_exec_profile_single(struct kvr_exec *ex, uint32_t ctx, uint64_t token_seed,
                                        int runs, double op_s[KVR_N_OPS])
{
    enum kvr_status st =
        runs < 1 ? kvr_error(KVR_ERR_INPUT, "profile: %d runs", runs) : check_chunk(ex, 0, ctx);
    int32_t *tokens = st ? NULL : malloc((size_t)ctx * sizeof *tokens);
    float *logits = st ? NULL : malloc((size_t)ex->model.vocab * sizeof *logits);
    double *each = st ? NULL : malloc((size_t)runs * KVR_N_OPS * sizeof *each);
    if (!st && (!tokens || !logits || !each)) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st) st = kvr_exec_set_prompt_len(ex, ctx);
    if (!st) st = prompt_tokens(ex, ctx, token_seed, tokens);
    for (int r = 0; r < runs && !st; r++) { /* each op's median over the runs */
        kvr_exec_profile_reset(ex);
        kvr_exec_set_profile(ex, true);
        st = kvr_exec_chunk(ex, tokens, 0, ctx, KVR_MASK_CAUSAL, logits);
        kvr_exec_set_profile(ex, false);
        double one[KVR_N_OPS];
        kvr_exec_profile_get(ex, one);
        for (int op = 0; op < KVR_N_OPS; op++) each[op * runs + r] = one[op];
    }
    for (int op = 0; op < KVR_N_OPS && !st; op++)
        op_s[op] = kvr_quantile(each + op * runs, (size_t)runs, 0.5);
    free(tokens), free(logits), free(each);
    return st;
}

uint32_t kvr_exec_kv_row_bytes(const struct kvr_exec *ex)
{
    return ex->be.ops->kv_elem_bytes * ex->model.n_kv_heads * ex->model.head_dim;
}

enum kvr_status kvr_exec_kv_copy(struct kvr_exec *ex, uint32_t layer, uint32_t pos0, uint32_t n,
                                 void *k, void *v, bool to_host)
{
    if (layer >= ex->model.n_layers || (uint64_t)pos0 + n > ex->opts.max_ctx)
        return kvr_error(KVR_ERR_INPUT, "KV copy of layer %u positions [%u, %u) is out of range",
                         layer, pos0, pos0 + n);
    return n ? OPS(ex)->kv_copy(BE(ex), layer, pos0, n, k, v, to_host) : KVR_OK;
}

enum kvr_status kvr_exec_sync(struct kvr_exec *ex)
{
    return OPS(ex)->sync(BE(ex));
}

enum kvr_status kvr_exec_kv_device(struct kvr_exec *ex, uint32_t layer, uint32_t pos, void **k,
                                   void **v)
{
    if (!OPS(ex)->kv_device)
        return kvr_error(KVR_ERR_INPUT, "--comm nccl needs --backend cuda (device buffers)");
    return OPS(ex)->kv_device(BE(ex), layer, pos, k, v);
}

uint64_t kvr_exec_peak_memory(struct kvr_exec *ex)
{
    uint64_t held = 0, peak = 0;
    OPS(ex)->memory(BE(ex), &held, &peak);
    return peak ? peak : held;
}

void kvr_exec_device_name(struct kvr_exec *ex, char *name, int cap)
{
    double peak;
    OPS(ex)->device(BE(ex), name, cap, &peak);
}

void kvr_exec_driver(const struct kvr_exec *ex, char *buf, size_t cap)
{
    if (ex->opts.backend == KVR_BACKEND_CUDA)
        kvr_cuda_driver_version(buf, cap);
    else
        snprintf(buf, cap, "none");
}

/* Ring attention (kvr_exec.h). */
struct kvr_span kvr_zigzag_span(uint32_t ctx, int p, int r)
{
    uint64_t lo[2], hi[2];
    kvr_zigzag_chunks(ctx, p, r, lo, hi);
    return (struct kvr_span){{(uint32_t)lo[0], (uint32_t)lo[1]},
                             {(uint32_t)(hi[0] - lo[0]), (uint32_t)(hi[1] - lo[1])}};
}

static enum kvr_status check_span(const struct kvr_exec *ex, const struct kvr_span *sp)
{
    uint32_t rows = kvr_span_rows(sp);
    enum kvr_status st = check_chunk(ex, 0, rows);
    for (int h = 0; h < 2 && !st; h++)
        if ((uint64_t)sp->pos[h] + sp->n[h] > ex->opts.max_ctx)
            st = kvr_error(KVR_ERR_INPUT, "span [%u, %u) exceeds the KV cache of %u positions",
                           sp->pos[h], sp->pos[h] + sp->n[h], ex->opts.max_ctx);
    return st;
}

static enum kvr_status ring_ready(const struct kvr_exec *ex, uint32_t rows, int q_slot,
                                  uint32_t o_slot)
{
    if (!ex->ring_rows)
        return kvr_error(KVR_ERR_INPUT, "ring attention: kvr_exec_ring_setup was not called");
    if (rows > ex->ring_rows || (q_slot >= 0 && (uint32_t)q_slot >= ex->ring_n_q) ||
        o_slot >= ex->ring_n_o)
        return kvr_error(KVR_ERR_INPUT,
                         "ring attention: %u rows, query slot %d, output slot %u outside the "
                         "workspace (%u rows, %u and %u slots)",
                         rows, q_slot, o_slot, ex->ring_rows, ex->ring_n_q, ex->ring_n_o);
    return KVR_OK;
}

enum kvr_status kvr_exec_layer_qkv_span(struct kvr_exec *ex, uint32_t layer,
                                        const struct kvr_span *sp)
{
    const struct kvr_backend_ops *o = OPS(ex);
    void *be = BE(ex);
    const struct kvr_model *m = &ex->model;
    uint32_t c = kvr_span_rows(sp);
    enum kvr_status st = check_span(ex, sp);
    if (st) return st;
    STEP(KVR_OP_NORM_ATTN, o->norm(be, KVR_BUF_XN, KVR_T_ATTN_NORM_W, layer, c));
    if (m->parallel_attn && m->block_norms == 2)
        STEP(KVR_OP_NORM_MLP, o->norm(be, KVR_BUF_XN2, KVR_T_MLP_NORM_W, layer, c));
    STEP(KVR_OP_QKV, o->linear(be, KVR_BUF_QKV, KVR_BUF_XN, KVR_T_WQKV, layer, c, false));
    for (int h = 0; h < 2; h++)
        if (sp->n[h])
            STEP(KVR_OP_ROTARY, o->rotary_rows(be, layer, h ? sp->n[0] : 0, sp->pos[h], sp->n[h]));
    return KVR_OK;
}

enum kvr_status kvr_exec_ring_setup(struct kvr_exec *ex, uint32_t rows, uint32_t n_q, uint32_t n_o)
{
    if (rows == 0 || rows > ex->opts.max_chunk || n_o == 0)
        return kvr_error(KVR_ERR_INPUT, "ring workspace of %u rows (at most %u), %u output slots",
                         rows, ex->opts.max_chunk, n_o);
    if (rows <= ex->ring_rows && n_q <= ex->ring_n_q && n_o <= ex->ring_n_o) return KVR_OK;
    enum kvr_status st = OPS(ex)->ring_setup(BE(ex), rows, n_q, n_o);
    if (!st) ex->ring_rows = rows, ex->ring_n_q = n_q, ex->ring_n_o = n_o;
    return st;
}

enum kvr_status kvr_exec_ring_q_pack(struct kvr_exec *ex, uint32_t q_slot, uint32_t n)
{
    enum kvr_status st = ring_ready(ex, n, (int)q_slot, 0);
    if (st) return st;
    STEP(KVR_OP_ATTN_SCORES, OPS(ex)->ring_q_pack(BE(ex), q_slot, n));
    return KVR_OK;
}

enum kvr_status kvr_exec_ring_attn(struct kvr_exec *ex, uint32_t layer, int q_slot,
                                   const struct kvr_span *q, const struct kvr_span *k,
                                   uint32_t window, uint32_t o_slot)
{
    enum kvr_status st = layer >= ex->model.n_layers
                             ? kvr_error(KVR_ERR_INPUT, "ring attention: layer %u", layer)
                             : check_span(ex, q);
    if (!st) st = check_span(ex, k);
    if (!st) st = ring_ready(ex, kvr_span_rows(q), q_slot, o_slot);
    if (st) return st;
    STEP(KVR_OP_ATTN_SCORES, OPS(ex)->ring_attn(BE(ex), layer, q_slot, q, k, window, o_slot));
    return KVR_OK;
}

enum kvr_status kvr_exec_ring_merge(struct kvr_exec *ex, uint32_t dst, uint32_t src, uint32_t n)
{
    enum kvr_status st = ring_ready(ex, n, -1, dst > src ? dst : src);
    if (st) return st;
    STEP(KVR_OP_ATTN_SCORES, OPS(ex)->ring_merge(BE(ex), dst, src, n));
    return KVR_OK;
}

enum kvr_status kvr_exec_ring_finish(struct kvr_exec *ex, uint32_t o_slot, uint32_t n)
{
    enum kvr_status st = ring_ready(ex, n, -1, o_slot);
    if (st) return st;
    STEP(KVR_OP_ATTN_SCORES, OPS(ex)->ring_finish(BE(ex), o_slot, n));
    return KVR_OK;
}

enum kvr_status kvr_exec_ring_area(struct kvr_exec *ex, enum kvr_ring_part part, uint32_t slot,
                                   void **ptr, size_t *row_bytes)
{
    enum kvr_status st =
        ring_ready(ex, 1, part == KVR_RING_Q ? (int)slot : -1, part == KVR_RING_O ? slot : 0);
    return st ? st : OPS(ex)->ring_area(BE(ex), part, slot, ptr, row_bytes);
}

enum kvr_status kvr_exec_ring_copy(struct kvr_exec *ex, enum kvr_ring_part part, uint32_t slot,
                                   uint32_t n, void *host, bool to_host)
{
    enum kvr_status st =
        ring_ready(ex, n, part == KVR_RING_Q ? (int)slot : -1, part == KVR_RING_O ? slot : 0);
    return st ? st : OPS(ex)->ring_copy(BE(ex), part, slot, n, host, to_host);
}

int kvr_exec_tp_shard(const struct kvr_exec *ex)
{
    return ex->tp ? ex->opts.tp_rank : 0;
}
