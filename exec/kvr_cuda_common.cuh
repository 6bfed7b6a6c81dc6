/* Device helpers shared by the CUDA kernel files (internal to exec/). */
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

#define STREAM(s) ((cudaStream_t)(s))

static inline int launched(void)
{
    return (int)cudaGetLastError();
}

struct attn_args {
    const bf16 *q, *k, *v;
    bf16 *o;
    uint64_t qs, kvs, os;
    uint32_t s, c, group;
    int dense;
    float scale_log2;
};

/* The arguments both attention kernels take; false when the heads do not group evenly. The
 * scale folds 1/sqrt(hd) and log2(e): the softmax works in the log2 domain (ex2). */
static inline bool make_attn_args(attn_args *a, const void *q, uint64_t qs, const void *k,
                                  const void *v, uint64_t kvs, void *out, uint64_t os, uint32_t s,
                                  uint32_t c, uint32_t n_heads, uint32_t n_kv, uint32_t hd,
                                  int dense)
{
    if (n_kv == 0 || n_heads % n_kv) return false;
    *a = attn_args{(const bf16 *)q, (const bf16 *)k, (const bf16 *)v, (bf16 *)out, qs, kvs, os,
                   s, c, n_heads / n_kv, dense, (float)(1.4426950408889634 / sqrt((double)hd))};
    return true;
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

