/* The executor: open and close, the model and its weights, the cache and device accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_exec_int.h"
#include "kvr_safetensors.h"
#include "kvr_weights.h"

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

/* The options kvr_exec_open refuses, and the chunk they give (max_chunk, else the context). */
static enum kvr_status check_opts(const struct kvr_model *m, const struct kvr_exec_opts *o,
                                  uint32_t *chunk_out)
{
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
    *chunk_out = chunk;
    return KVR_OK;
}

enum kvr_status kvr_exec_open(const struct kvr_model *m, const struct kvr_exec_opts *o,
                              struct kvr_exec **out)
{
    *out = NULL;
    uint32_t chunk = 0;
    struct kvr_exec_env env;
    enum kvr_status st = check_opts(m, o, &chunk);
    if (!st) st = kvr_exec_env_read(&env); /* before any device is looked for */
    if (st) return st;
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
    enum kvr_status st = kvr_exec_check_prompt(ex, ctx);
    if (st) return st;
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

enum kvr_status kvr_exec_wide_area(struct kvr_exec *ex, uint64_t bytes, void **ptr)
{
    if (!OPS(ex)->wide_area)
        return kvr_error(KVR_ERR_INPUT, "--comm nccl needs --backend cuda (device buffers)");
    return OPS(ex)->wide_area(BE(ex), bytes, ptr);
}

enum kvr_status kvr_exec_kv_regroup(struct kvr_exec *ex, void *dst, const void *src, uint64_t rows,
                                    uint32_t group, bool expand)
{
    if (!OPS(ex)->kv_regroup)
        return kvr_error(KVR_ERR_INPUT, "--comm nccl needs --backend cuda (device buffers)");
    return OPS(ex)->kv_regroup(BE(ex), dst, src, rows, group, expand);
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

int kvr_exec_tp_shard(const struct kvr_exec *ex)
{
    return ex->tp ? ex->opts.tp_rank : 0;
}
