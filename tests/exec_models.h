/* Small models for the executor tests: every architecture the executor runs (GQA Llama, MHA,
 * multi-query parallel Falcon-7B, Falcon-40B's two parallel norms, biases, untied heads), with
 * head_dim 64 or 128 so the same models run on the cuda backend, and widths that are not
 * multiples of 8. */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "kvr_exec.h"
#include "kvr_model.h"
#include "kvr_weights.h"

#define LLAMA_LIKE(nm, d, h, kv, hd, ffn)                                                          \
    {                                                                                              \
        .name = nm, .n_layers = 2, .d_model = d, .n_heads = h, .n_kv_heads = kv, .head_dim = hd,   \
        .d_ffn = ffn, .vocab = 96, .norm = KVR_NORM_RMSNORM, .mlp = KVR_MLP_SWIGLU,                \
        .block_norms = 2, .rotary = true, .dtype = KVR_DTYPE_BF16, KVR_MODEL_DEFAULTS              \
    }

static const struct kvr_model exec_models[] = {
    LLAMA_LIKE("llama-gqa", 128, 4, 2, 64, 192),
    LLAMA_LIKE("llama-mha-hd128", 256, 2, 2, 128, 320),
    {KVR_MODEL_DEFAULTS, .name = "falcon-mqa", .n_layers = 2, .d_model = 192, .n_heads = 3,
     .n_kv_heads = 1, .head_dim = 64, .d_ffn = 256, .vocab = 80, .norm = KVR_NORM_LAYERNORM,
     .mlp = KVR_MLP_GELU, .parallel_attn = true, .block_norms = 1, .rotary = true,
     .tied_embeddings = true, .dtype = KVR_DTYPE_BF16},
    {KVR_MODEL_DEFAULTS, .name = "falcon-40b-like", .n_layers = 2, .d_model = 256, .n_heads = 4,
     .n_kv_heads = 2, .head_dim = 64, .d_ffn = 384, .vocab = 72, .norm = KVR_NORM_LAYERNORM,
     .mlp = KVR_MLP_GELU, .parallel_attn = true, .block_norms = 2, .rotary = true, .bias_qkv = true,
     .bias_out = true, .bias_mlp = true, .tied_embeddings = false, .dtype = KVR_DTYPE_BF16},
    /* widths that are not multiples of 8: the kernels' scalar paths (embedding, LM head,
     * activation) */
    LLAMA_LIKE("llama-odd-widths", 196, 2, 1, 64, 300),
};
#define N_EXEC_MODELS ((int)(sizeof exec_models / sizeof exec_models[0]))

/* A prompt of n seeded token ids (n <= 256) below m's vocabulary. */
struct prompt {
    uint32_t n;
    int32_t tok[256];
};

static inline struct prompt prompt(const struct kvr_model *m, uint64_t seed, uint32_t n)
{
    struct prompt p = {.n = n};
    if (n > 256) abort();
    kvr_tokens_random(seed, m->vocab, n, p.tok);
    return p;
}

/* Relative L2 error |a - b| / |b|. */
static inline double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d, den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN wins */
    }
    return m;
}

/* The largest difference by diff (max_abs_diff, rel_err) of b's K and V cache against a's over
 * every layer, positions [0, n); NaN wins. */
static inline double kv_worst(struct kvr_exec *a, struct kvr_exec *b, const struct kvr_model *m,
                              uint32_t n, double (*diff)(const float *, const float *, size_t))
{
    size_t len = (size_t)n * m->n_kv_heads * m->head_dim;
    float *ka = malloc(len * 4), *va = malloc(len * 4), *kb = malloc(len * 4),
          *vb = malloc(len * 4);
    double worst = 0;
    for (uint32_t l = 0; l < m->n_layers; l++) {
        kvr_exec_kv_read(a, l, 0, n, ka, va);
        kvr_exec_kv_read(b, l, 0, n, kb, vb);
        double d[2] = {diff(kb, ka, len), diff(vb, va, len)};
        for (int i = 0; i < 2; i++)
            if (!(d[i] <= worst) && worst == worst) worst = d[i];
    }
    free(ka), free(va), free(kb), free(vb);
    return worst;
}

static struct kvr_exec *exec_open(const struct kvr_model *m, enum kvr_backend_kind b, uint32_t ctx,
                                  const char *weights)
{
    struct kvr_exec_opts o = {.backend = b, .max_ctx = ctx, .seed = 7, .weights = weights};
    struct kvr_exec *ex = NULL;
    if (kvr_exec_open(m, &o, &ex)) return NULL;
    return ex;
}

/* Runs chunks of the given sizes one after the other; logits of the last token. */
static enum kvr_status exec_chunks(struct kvr_exec *ex, const int32_t *tokens,
                                   const uint32_t *sizes, int n, float *logits)
{
    uint32_t s = 0;
    enum kvr_status st = KVR_OK;
    for (int i = 0; i < n && !st; i++) {
        st = kvr_exec_chunk(ex, tokens + s, s, sizes[i], KVR_MASK_CAUSAL,
                            i == n - 1 ? logits : NULL);
        s += sizes[i];
    }
    return st;
}

/* The prefill without kvr_exec_chunk's pruned last layer: every layer on every row, then the
 * logits of row c - 1 (the oracle of the pruning). */
static inline enum kvr_status exec_full_layers(struct kvr_exec *ex, const int32_t *tokens,
                                               uint32_t c, uint32_t n_layers, float *logits)
{
    enum kvr_status st = kvr_exec_embed(ex, tokens, c);
    for (uint32_t l = 0; l < n_layers && !st; l++)
        if (!(st = kvr_exec_layer_qkv(ex, l, 0, c)))
            st = kvr_exec_layer_rest(ex, l, 0, c, KVR_MASK_CAUSAL);
    return st ? st : kvr_exec_logits(ex, c, logits);
}
