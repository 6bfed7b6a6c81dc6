/* Launchers of ring attention's kernels (kvr_cuda_ring.cu), callable from C: a block of
 * queries against a block of keys with each row's log-sum-exp, the merge of two partial
 * outputs by it, and the finish into bf16. Plain kernels (one thread per query row and head,
 * float accumulation: the oracle) and the fast path (the warp-specialised attention kernel,
 * vectorised merge and finish) with the same arguments. No CUDA types; each returns its
 * launch's cudaError_t as an int (0 = success). */
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A rank's rows under zig-zag sharding: rows [0, n[0]) at positions pos[0].., then n[1] rows
 * at pos[1].. (the same layout as kvr_exec.h's struct kvr_span). */
struct kvr_cu_span {
    uint32_t pos[2], n[2];
};

/* The plain kernels (the oracle). Queries q (bf16 rows of stride q_stride, head h at column
 * h hd) at the positions of span qs against the keys and values of the caches k, v (bf16
 * [pos][kv_stride], position 0 of the layer) at the positions of span ks, a query at x seeing
 * the keys at positions j <= x (and x - j < window when window > 0). Writes
 * o [row][o_stride] float (o_stride >= n_heads (hd + 1)): the normalised output of each head,
 * then each head's log-sum-exp (natural log; -inf and 0 output for a row without keys). */
int kvr_cu_ring_attn(const void *q, uint64_t q_stride, const void *k, const void *v,
                     uint64_t kv_stride, float *o, uint64_t o_stride, struct kvr_cu_span qs,
                     struct kvr_cu_span ks, uint32_t window, uint32_t n_heads, uint32_t n_kv,
                     uint32_t hd, void *stream);
/* dst rows [0, rows) = the merge of dst and src by their log-sum-exps (same layout as above). */
int kvr_cu_ring_merge(float *dst, const float *src, uint64_t o_stride, uint32_t rows,
                      uint32_t n_heads, uint32_t hd, void *stream);
/* att [rows][n_heads hd] bf16 = the outputs of o. */
int kvr_cu_ring_finish(void *att, const float *o, uint64_t o_stride, uint32_t rows,
                       uint32_t n_heads, uint32_t hd, void *stream);

/* The fast path, same arguments and results (head_dim 64 or 128; otherwise, or where TMA cannot
 * read the matrices, the plain kernels run). Attention: each (query range, key range) pair
 * that is not wholly masked is one launch of the warp-specialised kernel
 * (kvr_cu_attention_block), the second into a query range merged into the first by LSE in its
 * epilogue; the rows of a range that sees no key get 0 and -inf. Merge and finish: 16-byte
 * accesses, fp32; o_stride a multiple of 4 (else the plain kernels). */
int kvr_cu_ring_attn_fast(const void *q, uint64_t q_stride, const void *k, const void *v,
                          uint64_t kv_stride, float *o, uint64_t o_stride, struct kvr_cu_span qs,
                          struct kvr_cu_span ks, uint32_t window, uint32_t n_heads, uint32_t n_kv,
                          uint32_t hd, void *stream);
int kvr_cu_ring_merge_fast(float *dst, const float *src, uint64_t o_stride, uint32_t rows,
                           uint32_t n_heads, uint32_t hd, void *stream);
int kvr_cu_ring_finish_fast(void *att, const float *o, uint64_t o_stride, uint32_t rows,
                            uint32_t n_heads, uint32_t hd, void *stream);

/* One block of ring attention on the warp-specialised kernel (kvr_cuda_attn_ws.cu): nq query
 * rows at positions [q0, q0 + nq) (bf16, row stride q_stride, head h at column h hd) against nk
 * key and value rows at positions [k0, k0 + nk) (row stride kv_stride, KV head g at column
 * g hd); the query at x sees the key at j iff j <= x (and x - j < window when window > 0): the
 * causal mask where the blocks overlap, key tiles wholly masked never loaded. Output float
 * o[r o_stride + h hd + e] (o 16-byte aligned, o_stride a multiple of 4) and the natural-log
 * LSE lse[r lse_stride + h]; a row that sees no key gets 0 and -inf. accumulate: merged into
 * what o and lse hold (by LSE) instead. n_split: key range split in parts (0: from the grid's
 * size, as kvr_cu_attention_ws). hd 64 or 128, nk > 0. Returns cudaErrorNotSupported (801)
 * where TMA cannot read the matrices (a base or stride not 16-byte aligned). */
struct kvr_cu_attn_block {
    const void *q, *k, *v;
    uint64_t q_stride, kv_stride;
    float *o, *lse;
    uint64_t o_stride, lse_stride;
    uint32_t q0, nq, k0, nk, n_heads, n_kv, hd, window;
    int accumulate, n_split;
};
int kvr_cu_attention_block(const struct kvr_cu_attn_block *b, void *stream);

#ifdef __cplusplus
}
#endif
