/* Device memory of the cuda backend, computed before anything is allocated so that a context
 * that does not fit fails with the bytes it needs. Kept apart from kvr_cuda.c so that it
 * builds (and is tested) without CUDA. */
#include "kvr_backend.h"
#include "kvr_cuda_kernels.h" /* plain C: KVR_ATTN_WORKSPACE_BYTES */

/* cuBLAS workspace and the margin for the CUDA context's own allocations. */
#define CUDA_WORKSPACE_BYTES (64ull << 20) /* 32 MiB cuBLAS workspace + margin */

uint64_t kvr_cuda_bytes_needed(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk)
{
    uint64_t w = 0; /* bf16 weights */
    for (int t = 0; t < KVR_N_TENSORS; t++) {
        if (!kvr_tensor_present(m, (enum kvr_tensor)t)) continue;
        uint64_t n = kvr_tensor_numel(m, (enum kvr_tensor)t);
        w += n * (kvr_tensor_is_layer((enum kvr_tensor)t) ? m->n_layers : 1) * 2;
    }
    uint64_t kv = 2ull * m->n_layers * max_ctx * m->n_kv_heads * m->head_dim * 2;
    /* fp32 residual, bf16 XN, XN2, QKV, ATT, UP, ACT */
    uint64_t row = 4ull * m->d_model +
                   2ull * (2ull * m->d_model + kvr_qkv_width(m) +
                           (uint64_t)m->n_heads * m->head_dim + kvr_up_width(m) + m->d_ffn);
    row += 4ull * m->head_dim; /* rotary table: cos and sin of hd/2 angles */
    uint64_t logits = 4ull * m->vocab + 2ull * m->d_model;
    return w + kv + row * max_chunk + logits + CUDA_WORKSPACE_BYTES +
           KVR_ATTN_WORKSPACE_BYTES; /* the attention's split partials, allocated on first use */
}
