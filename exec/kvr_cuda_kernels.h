/* Launchers of the CUDA kernels (kvr_cuda_kernels.cu), callable from C. No CUDA types: device
 * pointers are void *, bf16 data is uint16_t-sized, streams are void *. Each returns the
 * cudaError_t of its launch as an int (0 = success). */
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dst[i] = bf16(kvr_rng_value(seed, stream_id, i, scale, offset)), i < n (kvr_rng.h) */
int kvr_cu_fill_random(void *dst, uint64_t n, uint64_t seed, uint64_t stream_id, float scale,
                       float offset, void *stream);
/* x[r][:] = bf16(x[r][:] * (1 + r ramp)), r < rows (bf16 rows of width): a test's keys whose
 * scores grow along the context, so that a softmax's running max keeps rising */
int kvr_cu_scale_rows(void *x, uint64_t rows, uint32_t width, float ramp, void *stream);
/* x[i][:] = float(emb[tokens[i]][:]) */
int kvr_cu_embed(float *x, const void *emb, const int32_t *tokens, uint32_t c, uint32_t d,
                 void *stream);
/* y[i] = sum_j w[i][j] x[j], i < n (w [n][k] and x bf16, y float32): one token's LM head */
int kvr_cu_gemv(float *y, const void *w, const void *x, uint32_t n, uint32_t k, void *stream);
/* out[i][:] = bf16(norm(x[i][:]) * w (+ b)); RMSNorm or LayerNorm */
int kvr_cu_norm(void *out, const float *x, const void *w, const void *b, uint32_t rows, uint32_t d,
                int layernorm, float eps, void *stream);
/* Adds bias b[n] to every row of out (float32 when out_f32, else bf16). */
int kvr_cu_add_bias(void *out, int out_f32, const void *b, uint32_t rows, uint32_t n, void *stream);
/* cos and sin (times scale) of the rotary angles pos * inv_freq[j] of positions [s, s+c):
 * float2 [c][rot/2] in table; inv_freq is a device array of rot/2 floats. */
int kvr_cu_rope_table(void *table, uint32_t s, uint32_t c, uint32_t rot, const float *inv_freq,
                      float scale, void *stream);
/* Rotates the first rot dimensions of each Q head of qkv [c][(h+2kv)hd] in place at positions
 * s.. with the table (NULL: no rotation), and writes each K head rotated, and V, to the caches
 * [pos][kv][hd] at position s (qkv's K part is left unrotated). hd and rot are multiples of 16. */
int kvr_cu_rotary(void *qkv, void *kcache, void *vcache, const void *table, uint32_t s, uint32_t c,
                  uint32_t n_heads, uint32_t n_kv, uint32_t hd, uint32_t rot, void *stream);
/* tsp-paper's K/V (kvr_dist_tsp.c): rows [rows][n_kv][hd] to rows [rows][n_kv group][hd] with
 * each KV head repeated group times (expand), or back, keeping each group's first copy. bf16,
 * hd a multiple of 8. */
int kvr_cu_kv_regroup(void *dst, const void *src, uint64_t rows, uint32_t n_kv, uint32_t group,
                      uint32_t hd, int expand, void *stream);
/* act[i][j] = silu(up[i][j]) * up[i][ffn + j] (swiglu) or gelu(up[i][j]) */
int kvr_cu_activation(void *act, const void *up, uint32_t c, uint32_t ffn, int swiglu,
                      void *stream);

/* The warp-specialised Hopper GEMM (kvr_cuda_gemm_ws.cu): out = in[rows][k] W[n][k]^T, bf16
 * in, with one of these epilogues. SWIGLU: W is the gate rows [0, n/2) then the up rows
 * [n/2, n), and out[rows][n/2] = silu(gate) * up in bf16 (the product in float, rounded once). */
enum kvr_gemm_epi {
    KVR_GEMM_EPI_BF16 = 0,    /* out bf16 [rows][n] */
    KVR_GEMM_EPI_F32_ACC = 1, /* out float [rows][n] += */
    KVR_GEMM_EPI_SWIGLU = 2,
    KVR_GEMM_EPI_ROPE = 3, /* the QKV projection with rotary: kvr_cu_gemm_ws_rope */
};
/* Whether the kernel takes the shape (k a multiple of 64; n of 8, SWIGLU of 256). */
int kvr_cu_gemm_ws_supports(uint64_t rows, uint64_t n, uint64_t k, int epi);
/* The scratch of the last round's split (the tail's pairs in parts over k): float partials
 * and n_flags counters that are 0 between launches (the last part resets them). One stream's
 * GEMMs at a time may share it; NULL, or too small for a shape: no split. */
struct kvr_gemm_scratch {
    void *part;
    size_t part_bytes;
    unsigned *flags;
    uint32_t n_flags;
};
/* cudaErrorInvalidValue for a shape it does not take, cudaErrorNotSupported where TMA cannot
 * read the operands or out is not 16-byte aligned. */
int kvr_cu_gemm_ws(void *out, int epi, const void *in, const void *w, uint64_t rows, uint64_t n,
                   uint64_t k, const struct kvr_gemm_scratch *sc, void *stream);
/* The parts a tail pair of the shape is split into on this device with sc (1: none). */
int kvr_cu_gemm_ws_split(uint64_t rows, uint64_t n, uint64_t k, int epi,
                         const struct kvr_gemm_scratch *sc);

/* The QKV projection's rotary epilogue (the rotary kernel's work in the GEMM): of out =
 * in W^T, W the Q then K then V rows, Q (its n_heads * hd columns) rotated to q (row stride
 * q_ld), K rotated to k_cache and V to v_cache (the cache's rows of the chunk's positions, row
 * stride n_kv * hd). table: kvr_cu_rope_table's cos and sin of the chunk, rotating all hd
 * dimensions (16-byte aligned), or NULL: no rotation. */
struct kvr_gemm_rope {
    void *q, *k_cache, *v_cache;
    uint64_t q_ld;
    const void *table;
    uint32_t n_heads, n_kv, hd;
};
/* Whether the kernel takes it: hd 64 or 128, Q's and K's widths multiples of 256, k of 64. */
int kvr_cu_gemm_ws_rope_supports(uint64_t rows, uint64_t k, const struct kvr_gemm_rope *r);
int kvr_cu_gemm_ws_rope(const struct kvr_gemm_rope *r, const void *in, const void *w, uint64_t rows,
                        uint64_t k, const struct kvr_gemm_scratch *sc, void *stream);

/* Flash attention: queries at positions [s, s+c) (rows of q, row stride q_stride elements,
 * head h at column h*hd) against keys and values [0, s+c) (row stride kv_stride, KV head g at
 * column g*hd), causal. window > 0 is a sliding window: the query at position i sees key j iff
 * 0 <= i - j < window (key tiles wholly outside it are skipped). dense = 1 computes the masked
 * blocks too (the paper's TSP; the result is the same). hd is 64 or 128; n_heads is a multiple
 * of n_kv. out has row stride out_stride. lse, when not NULL, gets float [c][n_heads]: the
 * natural-log log-sum-exp of each row's scaled scores (q.k / sqrt(hd)) over the keys it sees. */
int kvr_cu_attention(const void *q, uint64_t q_stride, const void *k, const void *v,
                     uint64_t kv_stride, void *out, uint64_t out_stride, uint32_t s, uint32_t c,
                     uint32_t n_heads, uint32_t n_kv, uint32_t hd, int dense, uint32_t window,
                     float *lse, void *stream);
/* A chosen kernel, for the benchmark and the tests: variant 1 and 2 are the mma.sync kernel
 * with 1 or 2 m16 row tiles per warp (64- or 128-row blocks); 3 is the Hopper wgmma kernel
 * (kvr_cuda_attn_sm90.cu); 4 is the same with the V descriptor's strides swapped (a layout
 * check that must fail); 5 is the Hopper kernel with one warpgroup per block; 6 is the
 * warp-specialised TMA kernel (kvr_cuda_attn_ws.cu), key range split when the grid is small;
 * 7 is the same with every key range split in 3 (a check of the merge); 8 is the
 * warp-specialised kernel with 3 consumer warpgroups (192-row blocks; head_dim 64 only, refused
 * for 128); 9 and 10 are 6 and 8 persistent (one block per SM taking work items from a
 * counter, the next item's loads overlapping the last one's end); 0 is the default: 6 or 8,
 * persistent where there are at most KVR_ATTN_PERSIST_ITEMS_PER_SM work items (row blocks x
 * heads x splits) per SM. KVR_ATTN_PERSIST=0 or 1 in the environment overrides that choice
 * for the default and the ring's blocks. */
/* An attention switch in the environment (KVR_ATTN_PERSIST, KVR_ATTN_LAZY): -1 unset, 0 or 1;
 * -2 any other value, the empty string too, which the callers refuse (kvr_cuda_attn_env_check)
 * before they launch. KVR_ATTN_LAZY=1, the default, is lazy rescaling: a row's running max
 * moves only when a tile raises it by more than KVR_ATTN_LAZY_LOG2 (2^8 in the probabilities),
 * so most tiles skip O's rescale (FlashAttention-4's threshold); 0 moves it at every rise. Both
 * exact. */
int kvr_cu_attention_env(const char *name);
#define KVR_ATTN_LAZY_LOG2 8.0f
/* Whether variant mt runs 3 consumer warpgroups (8 and 10: head_dim 64 only). */
static inline int kvr_cu_attn_variant_x3(int mt)
{
    return mt == 8 || mt == 10;
}
#define KVR_ATTN_DEFAULT_VARIANT      6  /* 16k causal on one H200: 608 TFLOP/s against 509 (3) */
#define KVR_ATTN_DEFAULT_VARIANT_HD64 8  /* 16k, 71/1 heads: 498 against 454 (6), 362 (5) */
#define KVR_ATTN_PERSIST_ITEMS_PER_SM 16 /* Llama-7B: persistent up to 8k, plain from 16k */
int kvr_cu_attention_mt(const void *q, uint64_t q_stride, const void *k, const void *v,
                        uint64_t kv_stride, void *out, uint64_t out_stride, uint32_t s, uint32_t c,
                        uint32_t n_heads, uint32_t n_kv, uint32_t hd, int dense, uint32_t window,
                        float *lse, int mt, void *stream);
/* The Hopper (wgmma) kernel; vswap swaps the V descriptor's leading and stride offsets; shape
 * 0 is 2 warpgroups with 128-key tiles, 1 is 1 warpgroup with 64-key tiles. */
int kvr_cu_attention_sm90(const void *q, uint64_t q_stride, const void *k, const void *v,
                          uint64_t kv_stride, void *out, uint64_t out_stride, uint32_t s,
                          uint32_t c, uint32_t n_heads, uint32_t n_kv, uint32_t hd, int dense,
                          uint32_t window, float *lse, int vswap, int shape, void *stream);
/* The warp-specialised Hopper kernel: a producer warp loads Q, K and V by TMA into mbarrier
 * stages, consumer warpgroups ping-pong their GEMMs. n_split > 0 splits each block's key range
 * in n_split parts merged by their LSE (flash-decoding); 0 chooses from the grid's size.
 * n_consumers is 2 or 3 (3: head_dim 64 only); 0 is 2. persist: 1 one block per SM taking items
 * from a counter, 0 one block per item, -1 the default's choice (KVR_ATTN_PERSIST, or by the
 * items per SM). Automatic
 * splits keep the partials within KVR_ATTN_WORKSPACE_BYTES of device memory, allocated on first use
 * and kept (one buffer per device). */
#define KVR_ATTN_WORKSPACE_BYTES (64ull << 20)
int kvr_cu_attention_ws(const void *q, uint64_t q_stride, const void *k, const void *v,
                        uint64_t kv_stride, void *out, uint64_t out_stride, uint32_t s, uint32_t c,
                        uint32_t n_heads, uint32_t n_kv, uint32_t hd, int dense, uint32_t window,
                        float *lse, int n_split, int n_consumers, int persist, void *stream);
/* The plain version, one thread per (query, head), float accumulation: the test oracle. */
int kvr_cu_attention_naive(const void *q, uint64_t q_stride, const void *k, const void *v,
                           uint64_t kv_stride, void *out, uint64_t out_stride, uint32_t s,
                           uint32_t c, uint32_t n_heads, uint32_t n_kv, uint32_t hd,
                           uint32_t window, float *lse, void *stream);

#ifdef __cplusplus
}
#endif
