/* Device helpers shared by the CUDA kernel files (internal to exec/). */
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kvr_cuda_kernels.h" /* kvr_cu_attention_env */

typedef __nv_bfloat16 bf16;

#define STREAM(s) ((cudaStream_t)(s))

static inline int launched(void)
{
    return (int)cudaGetLastError();
}

struct attn_args {
    const bf16 *q, *k, *v;
    bf16 *o;
    float *lse; /* [c][n_heads] natural-log LSE of the scaled scores, or NULL */
    uint64_t qs, kvs, os;
    uint32_t s, c, group, n_heads, window; /* window 0: full causal attention */
    int dense;
    float scale_log2;
    /* lazy rescaling: a row's running max (log2 domain) moves, and O and the sum are rescaled,
     * only when a tile's max exceeds it by more than this (0: at every rise). Exact either way:
     * the probabilities stay at most 2^lazy_log2, which fp32 sums and bf16 P hold. */
    float lazy_log2;
    /* the keys: nk rows of k, v at positions k0.. (make_attn_args: [0, s+c), the prefill's) */
    uint32_t k0, nk;
};

/* The arguments every attention kernel takes; false when the heads do not group evenly. The
 * scale folds 1/sqrt(hd) and log2(e): the softmax works in the log2 domain (ex2). */
static inline bool make_attn_args(attn_args *a, const void *q, uint64_t qs, const void *k,
                                  const void *v, uint64_t kvs, void *out, uint64_t os, uint32_t s,
                                  uint32_t c, uint32_t n_heads, uint32_t n_kv, uint32_t hd,
                                  int dense, uint32_t window, float *lse)
{
    if (n_kv == 0 || n_heads % n_kv) return false;
    *a = attn_args{(const bf16 *)q,
                   (const bf16 *)k,
                   (const bf16 *)v,
                   (bf16 *)out,
                   lse,
                   qs,
                   kvs,
                   os,
                   s,
                   c,
                   n_heads / n_kv,
                   n_heads,
                   window,
                   dense,
                   (float)(1.4426950408889634 / sqrt((double)hd)),
                   kvr_cu_attention_env("KVR_ATTN_LAZY") == 0 ? 0.0f : KVR_ATTN_LAZY_LOG2,
                   0,
                   s + c};
    return true;
}

/* Key tiles [*lo, *hi) of BC keys (rows of k, v) that query rows [row0, row0 + br) need: up to
 * the last row's position (all keys when dense), from the first row's window start. Tiles wholly
 * outside the window or before the first key are skipped, not masked (*lo == *hi: none). */
__host__ __device__ __forceinline__ void attn_tiles(const attn_args &a, uint32_t row0, uint32_t br,
                                                    uint32_t bc, int *lo, int *hi)
{
    const uint32_t q_end = a.s + a.c, qlo = a.s + row0;
    const uint32_t qhi = qlo + br - 1 < q_end - 1 ? qlo + br - 1 : q_end - 1;
    const uint32_t seen = qhi + 1 <= a.k0 ? 0 : qhi + 1 - a.k0;
    const uint32_t keys = a.dense || seen > a.nk ? a.nk : seen;
    *hi = (int)((keys + bc - 1) / bc);
    *lo = (a.dense || !a.window || qlo + 1 <= a.window + a.k0)
              ? 0
              : (int)((qlo + 1 - a.window - a.k0) / bc);
    if (*lo > *hi) *lo = *hi;
}

/* Whether a key tile [key0, key0 + bc) (rows of k) has masked pairs for query positions
 * [qlo, qhi]. */
__device__ __forceinline__ bool attn_tile_masked(const attn_args &a, uint32_t key0, uint32_t bc,
                                                 uint32_t qlo, uint32_t qhi)
{
    return key0 + a.k0 + bc - 1 > qlo || key0 + bc > a.nk ||
           (a.window && key0 + a.k0 + a.window <= qhi);
}

/* Whether query position q does not see key row key (at position k0 + key). */
__device__ __forceinline__ bool attn_masked(const attn_args &a, uint32_t key, uint32_t q)
{
    return key + a.k0 > q || key >= a.nk || (a.window && q - key - a.k0 >= a.window);
}

__device__ __forceinline__ uint32_t smem_addr(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
}

__device__ __forceinline__ void cp_commit()
{
    asm volatile("cp.async.commit_group;\n" ::);
}

template <int N> __device__ __forceinline__ void cp_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm4(uint32_t addr, uint32_t *r)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void ldsm4_trans(uint32_t addr, uint32_t *r)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}

__device__ __forceinline__ float ex2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* The running max as the exponent's offset: 0 while a row has seen no key (max -inf), so that
 * its probabilities are ex2(-inf) = 0 rather than NaN (a window can mask a whole tile). */
__device__ __forceinline__ float max_offset(float m)
{
    return m == -INFINITY ? 0.0f : m;
}

/* The sum over the quad of lanes (4g .. 4g + 3) that holds one row of an MMA fragment. */
__device__ __forceinline__ float quad_sum(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/* Natural-log LSE from the log2-domain running max m (scaled scores) and the sum l. */
__device__ __forceinline__ float lse_of(float m, float l)
{
    return (m + log2f(l)) * 0.6931471805599453f;
}
