/* Launchers of ring attention's kernels (kvr_cuda_ring.cu), callable from C: a block of
 * queries against a block of keys with each row's log-sum-exp, the merge of two partial
 * outputs by it, and the finish into bf16. Plain kernels, one thread per (query row, head),
 * float accumulation: correctness first. No CUDA types; each returns its launch's cudaError_t
 * as an int (0 = success). */
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

/* Queries q (bf16 rows of stride q_stride, head h at column h hd) at the positions of span qs
 * against the keys and values of the caches k, v (bf16 [pos][kv_stride], position 0 of the
 * layer) at the positions of span ks, a query at x seeing the keys at positions j <= x (and
 * x - j < window when window > 0). Writes
 * o [row][n_heads hd + n_heads] float: the normalised output of each head, then each head's
 * log-sum-exp (natural log; -inf and 0 output for a row without keys). */
int kvr_cu_ring_attn(const void *q, uint64_t q_stride, const void *k, const void *v,
                     uint64_t kv_stride, float *o, struct kvr_cu_span qs, struct kvr_cu_span ks,
                     uint32_t window, uint32_t n_heads, uint32_t n_kv, uint32_t hd, void *stream);
/* dst rows [0, rows) = the merge of dst and src by their log-sum-exps (same layout as above). */
int kvr_cu_ring_merge(float *dst, const float *src, uint32_t rows, uint32_t n_heads, uint32_t hd,
                      void *stream);
/* att [rows][n_heads hd] bf16 = the outputs of o. */
int kvr_cu_ring_finish(void *att, const float *o, uint32_t rows, uint32_t n_heads, uint32_t hd,
                       void *stream);

#ifdef __cplusplus
}
#endif
