/* Small models for the executor tests: every architecture the executor runs (GQA Llama, MHA,
 * multi-query parallel Falcon-7B, Falcon-40B's two parallel norms, biases, untied heads), with
 * head_dim 64 or 128 so the same models run on the cuda backend, and widths that are not
 * multiples of 8. */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "kvr_exec.h"
#include "kvr_model.h"
#include "model_shapes.h"

#define LLAMA_LIKE(nm, d, h, kv, hd, ffn) LLAMA_SHAPE(nm, 2, d, h, kv, hd, ffn, 96, KVR_DTYPE_BF16)

static const struct kvr_model exec_models[] = {
    LLAMA_LIKE("llama-gqa", 128, 4, 2, 64, 192),
    LLAMA_LIKE("llama-mha-hd128", 256, 2, 2, 128, 320),
    FALCON_SHAPE("falcon-mqa", 2, 192, 3, 1, 64, 256, 80, 1, false, true, KVR_DTYPE_BF16),
    FALCON_SHAPE("falcon-40b-like", 2, 256, 4, 2, 64, 384, 72, 2, true, false, KVR_DTYPE_BF16),
    /* widths that are not multiples of 8: the kernels' scalar paths (embedding, LM head,
     * activation) */
    LLAMA_LIKE("llama-odd-widths", 196, 2, 1, 64, 300),
};
#define N_EXEC_MODELS ((int)(sizeof exec_models / sizeof exec_models[0]))

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
