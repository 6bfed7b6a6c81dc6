/* The mma.sync flash-attention kernel (variants 1, 2) and kvr_cu_attention's dispatch over
 * every variant (kvr_cuda_kernels.h).
 * FlashAttention-2 style on mma.sync m16n8k16 (bf16 in, fp32 accumulate). A block of 4 warps
 * owns BR = 64 MT query rows of one head (each warp 16 MT rows) and walks the key tiles of
 * BC = 64 in order, with K and V double-buffered in shared memory by cp.async. Scores and
 * probabilities stay in registers; the online softmax works in the log2 domain. Shared memory
 * rows are XOR-swizzled in 16-byte chunks so ldmatrix is conflict-free. */

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kvr_cuda_common.cuh"
#include "kvr_cuda_kernels.h"

/* Element offset of 16-byte chunk ch of row `row` in a swizzled [rows][HD] tile. */
template <int HD> __device__ __forceinline__ int swz(int row, int ch)
{
    return row * HD + ((ch ^ (row & 7)) << 3);
}

/* rows [row0, row0 + ROWS) of a [n][stride] matrix into a swizzled tile; rows >= n are zero */
template <int HD, int ROWS>
__device__ __forceinline__ void load_tile(bf16 *tile, const bf16 *src, uint64_t stride,
                                          uint32_t row0, uint32_t n)
{
    constexpr int CH = HD / 8;
#pragma unroll
    for (int i = threadIdx.x; i < ROWS * CH; i += 128) {
        int r = i / CH, ch = i % CH;
        bool ok = row0 + r < n;
        cp_async16(smem_addr(tile + swz<HD>(r, ch)), src + (ok ? row0 + r : 0) * stride + ch * 8,
                   ok ? 16 : 0);
    }
}

template <int HD, int MT> struct flash_tile {
    static constexpr int BR = 64 * MT, BC = 64, NT = BC / 8, DT = HD / 8;
    float o[MT][DT][4], m[MT][2], l[MT][2], sc[MT][NT][4];
};

/* S = Q K^T for this warp's rows and one key tile. */
template <int HD, int MT>
__device__ __forceinline__ void flash_scores(flash_tile<HD, MT> &t, const bf16 *sQ, const bf16 *K,
                                             int wrow, int lane)
{
    constexpr int NT = flash_tile<HD, MT>::NT;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) t.sc[mt][nt][e] = 0;
#pragma unroll
    for (int kq = 0; kq < HD / 16; kq++) {
        uint32_t qa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            int row = wrow + mt * 16 + ((lane >> 3) & 1) * 8 + (lane & 7);
            ldsm4(smem_addr(sQ + swz<HD>(row, kq * 2 + (lane >> 4))), qa[mt]);
        }
#pragma unroll
        for (int np = 0; np < NT / 2; np++) {
            uint32_t b[4];
            int key = np * 16 + (lane >> 4) * 8 + (lane & 7);
            ldsm4(smem_addr(K + swz<HD>(key, kq * 2 + ((lane >> 3) & 1))), b);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                mma16816(t.sc[mt][2 * np], qa[mt], b[0], b[1]);
                mma16816(t.sc[mt][2 * np + 1], qa[mt], b[2], b[3]);
            }
        }
    }
}

/* -inf on pairs with key > query, key beyond the last key or outside the window. */
template <int HD, int MT>
__device__ __forceinline__ void flash_mask(flash_tile<HD, MT> &t, const attn_args &a, uint32_t key0,
                                           uint32_t qpos0, int lane)
{
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int nt = 0; nt < flash_tile<HD, MT>::NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                uint32_t key = key0 + nt * 8 + (lane & 3) * 2 + (e & 1);
                uint32_t qpos = qpos0 + mt * 16 + (lane >> 2) + (e >> 1) * 8;
                if (attn_masked(a, key, qpos)) t.sc[mt][nt][e] = -INFINITY;
            }
}

/* Online softmax: new running max, rescale O and l, scores become probabilities. */
template <int HD, int MT>
__device__ __forceinline__ void flash_softmax(flash_tile<HD, MT> &t, float scale_log2,
                                              float lazy_log2)
{
    constexpr int NT = flash_tile<HD, MT>::NT, DT = flash_tile<HD, MT>::DT;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            float mx = -INFINITY;
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
                mx = fmaxf(mx, fmaxf(t.sc[mt][nt][2 * hf], t.sc[mt][nt][2 * hf + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            float m_new = fmaxf(t.m[mt][hf], mx * scale_log2);
            if (!(m_new > t.m[mt][hf] + lazy_log2)) m_new = t.m[mt][hf]; /* attn_args.lazy_log2 */
            const float m_off = max_offset(m_new);
            float alpha = ex2(t.m[mt][hf] - m_off), sum = 0;
            t.m[mt][hf] = m_new;
#pragma unroll
            for (int dt = 0; dt < DT; dt++) {
                t.o[mt][dt][2 * hf] *= alpha;
                t.o[mt][dt][2 * hf + 1] *= alpha;
            }
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float p = ex2(t.sc[mt][nt][2 * hf + e] * scale_log2 - m_off);
                    t.sc[mt][nt][2 * hf + e] = p;
                    sum += p;
                }
            t.l[mt][hf] = t.l[mt][hf] * alpha + sum;
        }
}

/* O += P V for one key tile: P's accumulator layout is the A-fragment layout of k16. */
template <int HD, int MT>
__device__ __forceinline__ void flash_pv(flash_tile<HD, MT> &t, const bf16 *V, int lane)
{
    constexpr int BC = flash_tile<HD, MT>::BC;
#pragma unroll
    for (int kk = 0; kk < BC / 16; kk++) {
        uint32_t pa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            pa[mt][0] = pack_bf16(t.sc[mt][2 * kk][0], t.sc[mt][2 * kk][1]);
            pa[mt][1] = pack_bf16(t.sc[mt][2 * kk][2], t.sc[mt][2 * kk][3]);
            pa[mt][2] = pack_bf16(t.sc[mt][2 * kk + 1][0], t.sc[mt][2 * kk + 1][1]);
            pa[mt][3] = pack_bf16(t.sc[mt][2 * kk + 1][2], t.sc[mt][2 * kk + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < HD / 16; dp++) {
            uint32_t b[4];
            int key = kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7);
            ldsm4_trans(smem_addr(V + swz<HD>(key, dp * 2 + (lane >> 4))), b);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                mma16816(t.o[mt][2 * dp], pa[mt], b[0], b[1]);
                mma16816(t.o[mt][2 * dp + 1], pa[mt], b[2], b[3]);
            }
        }
    }
}

template <int HD, int MT>
__device__ __forceinline__ void flash_store(flash_tile<HD, MT> &t, const attn_args &a,
                                            uint32_t row0, uint32_t h, int lane)
{
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            float l = t.l[mt][hf];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            float inv = 1.0f / l;
            uint32_t row = row0 + mt * 16 + (lane >> 2) + hf * 8;
            if (row >= a.c) continue;
            if (a.lse && (lane & 3) == 0) a.lse[row * a.n_heads + h] = lse_of(t.m[mt][hf], l);
            bf16 *dst = a.o + row * a.os + h * HD + (lane & 3) * 2;
#pragma unroll
            for (int dt = 0; dt < flash_tile<HD, MT>::DT; dt++)
                *(uint32_t *)(dst + dt * 8) =
                    pack_bf16(t.o[mt][dt][2 * hf] * inv, t.o[mt][dt][2 * hf + 1] * inv);
        }
}

template <int HD, int MT> __global__ void __launch_bounds__(128, 2) flash_kernel(attn_args a)
{
    using T = flash_tile<HD, MT>;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    bf16 *sQ = (bf16 *)smem_raw, *sK = sQ + T::BR * HD, *sV = sK + 2 * T::BC * HD;
    const int lane = threadIdx.x & 31, wrow = (threadIdx.x >> 5) * 16 * MT;
    /* the last query tiles have the most keys: start them first */
    const uint32_t row0 = (gridDim.x - 1 - blockIdx.x) * T::BR, h = blockIdx.y;
    const uint32_t qpos0 = a.s + row0, kv_end = a.s + a.c;
    int lo, hi;
    attn_tiles(a, row0, T::BR, T::BC, &lo, &hi);
    const uint32_t wq0 = qpos0 + wrow, wq1 = wq0 + 16 * MT - 1; /* this warp's positions */
    const bf16 *kb = a.k + (h / a.group) * HD, *vb = a.v + (h / a.group) * HD;

    load_tile<HD, T::BR>(sQ, a.q + h * HD, a.qs, row0, a.c);
    load_tile<HD, T::BC>(sK, kb, a.kvs, lo * T::BC, kv_end);
    load_tile<HD, T::BC>(sV, vb, a.kvs, lo * T::BC, kv_end);
    cp_commit();

    T t;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        t.m[mt][0] = t.m[mt][1] = -INFINITY;
        t.l[mt][0] = t.l[mt][1] = 0;
#pragma unroll
        for (int dt = 0; dt < T::DT; dt++)
#pragma unroll
            for (int e = 0; e < 4; e++) t.o[mt][dt][e] = 0;
    }
    for (int j = lo; j < hi; j++) {
        const int st = (j - lo) & 1;
        if (j + 1 < hi) {
            load_tile<HD, T::BC>(sK + (st ^ 1) * T::BC * HD, kb, a.kvs, (j + 1) * T::BC, kv_end);
            load_tile<HD, T::BC>(sV + (st ^ 1) * T::BC * HD, vb, a.kvs, (j + 1) * T::BC, kv_end);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads();
        const uint32_t key0 = (uint32_t)j * T::BC;
        flash_scores<HD, MT>(t, sQ, sK + st * T::BC * HD, wrow, lane);
        if (attn_tile_masked(a, key0, T::BC, wq0, wq1)) flash_mask<HD, MT>(t, a, key0, wq0, lane);
        flash_softmax<HD, MT>(t, a.scale_log2, a.lazy_log2);
        flash_pv<HD, MT>(t, sV + st * T::BC * HD, lane);
        __syncthreads();
    }
    flash_store<HD, MT>(t, a, row0 + wrow, h, lane);
}

template <int HD, int MT>
static int flash_launch(const attn_args &a, uint32_t n_heads, void *stream)
{
    using T = flash_tile<HD, MT>;
    const int smem = (T::BR + 4 * T::BC) * HD * (int)sizeof(bf16);
    cudaError_t e = cudaFuncSetAttribute(flash_kernel<HD, MT>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return (int)e;
    dim3 grid((a.c + T::BR - 1) / T::BR, n_heads);
    flash_kernel<HD, MT><<<grid, 128, smem, STREAM(stream)>>>(a);
    return launched();
}

extern "C" int kvr_cu_attention(const void *q, uint64_t q_stride, const void *k, const void *v,
                                uint64_t kv_stride, void *out, uint64_t out_stride, uint32_t s,
                                uint32_t c, uint32_t n_heads, uint32_t n_kv, uint32_t hd, int dense,
                                uint32_t window, float *lse, void *stream)
{
    return kvr_cu_attention_mt(q, q_stride, k, v, kv_stride, out, out_stride, s, c, n_heads, n_kv,
                               hd, dense, window, lse, 0, stream);
}

extern "C" int kvr_cu_attention_mt(const void *q, uint64_t q_stride, const void *k, const void *v,
                                   uint64_t kv_stride, void *out, uint64_t out_stride, uint32_t s,
                                   uint32_t c, uint32_t n_heads, uint32_t n_kv, uint32_t hd,
                                   int dense, uint32_t window, float *lse, int mt, void *stream)
{
    int persist = -1; /* the default chooses (kvr_cu_attention_ws) */
    if (mt == 0)
        mt = hd == 64 ? KVR_ATTN_DEFAULT_VARIANT_HD64 : KVR_ATTN_DEFAULT_VARIANT;
    else if (mt >= 6)
        persist = mt >= 9;
    if (mt >= 6) {
        int n_split = mt == 7 ? 3 : 0, n_consumers = kvr_cu_attn_variant_x3(mt) ? 3 : 0;
        return kvr_cu_attention_ws(q, q_stride, k, v, kv_stride, out, out_stride, s, c, n_heads,
                                   n_kv, hd, dense, window, lse, n_split, n_consumers, persist,
                                   stream);
    }
    if (mt >= 3)
        return kvr_cu_attention_sm90(q, q_stride, k, v, kv_stride, out, out_stride, s, c, n_heads,
                                     n_kv, hd, dense, window, lse, mt == 4, mt == 5, stream);
    attn_args a;
    if (!make_attn_args(&a, q, q_stride, k, v, kv_stride, out, out_stride, s, c, n_heads, n_kv, hd,
                        dense, window, lse))
        return (int)cudaErrorInvalidValue;
    if (c == 0) return 0;
    if (hd == 128)
        return (mt == 1 ? flash_launch<128, 1> : flash_launch<128, 2>)(a, n_heads, stream);
    if (hd == 64) return (mt == 1 ? flash_launch<64, 1> : flash_launch<64, 2>)(a, n_heads, stream);
    return (int)cudaErrorInvalidValue;
}
