/* CUDA kernels of the cuda backend and their extern "C" launchers. Host orchestration lives
 * in kvr_cuda.c. bf16 storage, fp32 arithmetic everywhere. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kvr_cuda_common.cuh"
#include "kvr_cuda_kernels.h"
#include "kvr_rng.h"

static unsigned blocks_for(uint64_t n, unsigned threads)
{
    uint64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 65535u * 32u ? b : 65535u * 32u);
}

/* ---------------------------------------------------------------- element-wise kernels */

__global__ void fill_random_kernel(bf16 *dst, uint64_t n, uint64_t seed, uint64_t sid, float scale,
                                   float offset)
{
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n;
         i += (uint64_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16(offset + scale * kvr_rng_sym(seed, sid, i));
}

extern "C" int kvr_cu_fill_random(void *dst, uint64_t n, uint64_t seed, uint64_t stream_id,
                                  float scale, float offset, void *stream)
{
    fill_random_kernel<<<blocks_for(n, 256), 256, 0, STREAM(stream)>>>((bf16 *)dst, n, seed,
                                                                       stream_id, scale, offset);
    return launched();
}

/* One block per token; when d is a multiple of 8 each thread moves 8 values (a 16-byte load,
 * two 16-byte stores), else one. */
__global__ void embed_kernel(float *x, const bf16 *emb, const int32_t *tokens, uint32_t d)
{
    const bf16 *row = emb + (uint64_t)tokens[blockIdx.x] * d;
    float *out = x + (uint64_t)blockIdx.x * d;
    if (d % 8) {
        for (uint32_t j = threadIdx.x; j < d; j += blockDim.x) out[j] = __bfloat162float(row[j]);
        return;
    }
    for (uint32_t j = threadIdx.x * 8; j < d; j += blockDim.x * 8) {
        uint4 v = *(const uint4 *)(row + j);
        const bf16 *e = (const bf16 *)&v;
        float4 a = make_float4(__bfloat162float(e[0]), __bfloat162float(e[1]),
                               __bfloat162float(e[2]), __bfloat162float(e[3]));
        float4 b = make_float4(__bfloat162float(e[4]), __bfloat162float(e[5]),
                               __bfloat162float(e[6]), __bfloat162float(e[7]));
        *(float4 *)(out + j) = a;
        *(float4 *)(out + j + 4) = b;
    }
}

extern "C" int kvr_cu_embed(float *x, const void *emb, const int32_t *tokens, uint32_t c,
                            uint32_t d, void *stream)
{
    embed_kernel<<<c, 128, 0, STREAM(stream)>>>(x, (const bf16 *)emb, tokens, d);
    return launched();
}

/* The LM head of one token, y = W x (W [n][k] bf16, x [k] bf16, y fp32): a GEMM with one row
 * leaves the tensor cores idle and cuBLAS reached about half of the memory bandwidth, so a warp
 * per output row streams W with 16-byte loads (k a multiple of 8), four in flight per lane,
 * and reduces by shuffle. x is read through the cache by every warp. */
__device__ __forceinline__ float dot8(uint4 a, uint4 b)
{
    const bf16 *p = (const bf16 *)&a, *q = (const bf16 *)&b;
    float s = 0;
#pragma unroll
    for (int e = 0; e < 8; e++) s += __bfloat162float(p[e]) * __bfloat162float(q[e]);
    return s;
}

__global__ void gemv_kernel(float *y, const bf16 *w, const bf16 *x, uint32_t n, uint32_t k)
{
    uint32_t lane = threadIdx.x & 31, row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= n) return;
    const bf16 *wr = w + (uint64_t)row * k;
    float acc = 0;
    if (k % 8 == 0) {
        const uint32_t step = 32 * 8;
        uint32_t j = lane * 8;
        for (; j + 3 * step < k; j += 4 * step) {
            uint4 w0 = __ldcs((const uint4 *)(wr + j)), w1 = __ldcs((const uint4 *)(wr + j + step)),
                  w2 = __ldcs((const uint4 *)(wr + j + 2 * step)),
                  w3 = __ldcs((const uint4 *)(wr + j + 3 * step));
            acc += dot8(w0, __ldg((const uint4 *)(x + j))) +
                   dot8(w1, __ldg((const uint4 *)(x + j + step))) +
                   dot8(w2, __ldg((const uint4 *)(x + j + 2 * step))) +
                   dot8(w3, __ldg((const uint4 *)(x + j + 3 * step)));
        }
        for (; j < k; j += step)
            acc += dot8(__ldcs((const uint4 *)(wr + j)), __ldg((const uint4 *)(x + j)));
    } else {
        for (uint32_t j = lane; j < k; j += 32)
            acc += __bfloat162float(wr[j]) * __bfloat162float(x[j]);
    }
    for (int o = 16; o; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) y[row] = acc;
}

extern "C" int kvr_cu_gemv(float *y, const void *w, const void *x, uint32_t n, uint32_t k,
                           void *stream)
{
    gemv_kernel<<<(n + 7) / 8, 256, 0, STREAM(stream)>>>(y, (const bf16 *)w, (const bf16 *)x, n, k);
    return launched();
}

/* Sum over the block (256 threads); every thread gets the result. */
__device__ float block_sum(float v, float *red)
{
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads(); /* red may still be read from the previous call */
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    float t = 0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) t += red[w];
    return t;
}

/* One block per row, float4 loads when d is a multiple of 4 (the row then stays in L1 for the
 * later passes): mean (LayerNorm), centred squares, then the scaled bf16 output. */
__global__ void norm_kernel(bf16 *out, const float *x, const bf16 *w, const bf16 *b, uint32_t d,
                            int layernorm, float eps)
{
    __shared__ float red[32];
    const float *row = x + (uint64_t)blockIdx.x * d;
    bf16 *o = out + (uint64_t)blockIdx.x * d;
    const uint32_t n4 = d % 4 == 0 ? d / 4 : 0; /* float4 part */
    const float4 *r4 = (const float4 *)row;
    float mean = 0, s = 0;
    if (layernorm) {
        for (uint32_t j = threadIdx.x; j < n4; j += blockDim.x)
            s += r4[j].x + r4[j].y + r4[j].z + r4[j].w;
        for (uint32_t j = 4 * n4 + threadIdx.x; j < d; j += blockDim.x) s += row[j];
        mean = block_sum(s, red) / (float)d;
    }
    float sq = 0;
    for (uint32_t j = threadIdx.x; j < n4; j += blockDim.x) {
        float4 v = r4[j];
        sq += (v.x - mean) * (v.x - mean) + (v.y - mean) * (v.y - mean) +
              (v.z - mean) * (v.z - mean) + (v.w - mean) * (v.w - mean);
    }
    for (uint32_t j = 4 * n4 + threadIdx.x; j < d; j += blockDim.x)
        sq += (row[j] - mean) * (row[j] - mean);
    float rstd = rsqrtf(block_sum(sq, red) / (float)d + eps);
    for (uint32_t j = threadIdx.x; j < d; j += blockDim.x) {
        float v = (row[j] - mean) * rstd * __bfloat162float(w[j]);
        if (b) v += __bfloat162float(b[j]);
        o[j] = __float2bfloat16(v);
    }
}

extern "C" int kvr_cu_norm(void *out, const float *x, const void *w, const void *b, uint32_t rows,
                           uint32_t d, int layernorm, float eps, void *stream)
{
    norm_kernel<<<rows, 256, 0, STREAM(stream)>>>((bf16 *)out, x, (const bf16 *)w, (const bf16 *)b,
                                                  d, layernorm, eps);
    return launched();
}

__global__ void add_bias_kernel(void *out, int out_f32, const bf16 *b, uint64_t total, uint32_t n)
{
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < total;
         i += (uint64_t)gridDim.x * blockDim.x) {
        float bias = __bfloat162float(b[i % n]);
        if (out_f32)
            ((float *)out)[i] += bias;
        else
            ((bf16 *)out)[i] = __float2bfloat16(__bfloat162float(((bf16 *)out)[i]) + bias);
    }
}

extern "C" int kvr_cu_add_bias(void *out, int out_f32, const void *b, uint32_t rows, uint32_t n,
                               void *stream)
{
    uint64_t total = (uint64_t)rows * n;
    add_bias_kernel<<<blocks_for(total, 256), 256, 0, STREAM(stream)>>>(out, out_f32,
                                                                        (const bf16 *)b, total, n);
    return launched();
}

/* cos and sin of pos * inv_freq[j] (times scale: yarn's attention factor) for positions
 * [s, s+c) and j < half, as float2 [c][half]: computed once per chunk (precise sincosf:
 * positions reach 10^6) and read by every layer. inv_freq comes from kvr_rope_inv_freq. */
__global__ void rope_table_kernel(float2 *table, uint32_t s, uint32_t half, const float *inv_freq,
                                  float scale)
{
    uint32_t i = blockIdx.x;
    for (uint32_t j = threadIdx.x; j < half; j += blockDim.x) {
        float sn, cs;
        sincosf((float)(s + i) * inv_freq[j], &sn, &cs);
        table[(uint64_t)i * half + j] = make_float2(cs * scale, sn * scale);
    }
}

extern "C" int kvr_cu_rope_table(void *table, uint32_t s, uint32_t c, uint32_t rot,
                                 const float *inv_freq, float scale, void *stream)
{
    rope_table_kernel<<<c, 64, 0, STREAM(stream)>>>((float2 *)table, s, rot / 2, inv_freq, scale);
    return launched();
}

/* 8 rotate-half pairs (dims j..j+7 with j+half..) of one head, from src to dst (which may be
 * src: each thread reads its 16 bytes before it writes them). */
__device__ __forceinline__ void rotate8(const bf16 *src, bf16 *dst, uint32_t j, uint32_t half,
                                        const float2 *cs)
{
    uint4 av = *(const uint4 *)(src + j), bv = *(const uint4 *)(src + j + half), ao, bo;
    const bf16 *a8 = (const bf16 *)&av, *b8 = (const bf16 *)&bv;
    bf16 *ao8 = (bf16 *)&ao, *bo8 = (bf16 *)&bo;
#pragma unroll
    for (int e = 0; e < 8; e++) {
        float a = __bfloat162float(a8[e]), b = __bfloat162float(b8[e]);
        float2 r = cs[j + e];
        ao8[e] = __float2bfloat16(a * r.x - b * r.y);
        bo8[e] = __float2bfloat16(b * r.x + a * r.y);
    }
    *(uint4 *)(dst + j) = ao;
    *(uint4 *)(dst + j + half) = bo;
}

/* One block per token, 16-byte accesses: the first rot dimensions of each Q head rotate in
 * place; each K head rotates straight into the cache at position s + i (its dimensions past rot
 * copied), V is copied there: QKV's K part is left as it was (nothing reads it). hd and rot are
 * multiples of 16; no table, no rotation. */
__global__ void rotary_kernel(bf16 *qkv, bf16 *kc, bf16 *vc, const float2 *table, uint32_t s,
                              uint32_t n_heads, uint32_t n_kv, uint32_t hd, uint32_t rot)
{
    const uint32_t i = blockIdx.x, pos = s + i, half = table ? rot / 2 : 0, kvw = n_kv * hd;
    const bf16 *row = qkv + (uint64_t)i * (n_heads + 2 * n_kv) * hd;
    const bf16 *k = row + n_heads * hd;
    bf16 *kd = kc + (uint64_t)pos * kvw;
    const float2 *cs = table + (uint64_t)i * half;
    const uint32_t hp = half / 8, rest = (hd - 2 * half) / 8;
    for (uint32_t t = threadIdx.x; t < (n_heads + n_kv) * hp; t += blockDim.x) {
        const uint32_t head = t / hp, j = t % hp * 8;
        bf16 *x = (bf16 *)row + head * hd;
        rotate8(x, head < n_heads ? x : kd + (head - n_heads) * hd, j, half, cs);
    }
    for (uint32_t t = threadIdx.x; t < n_kv * rest; t += blockDim.x) {
        const uint32_t off = t / rest * hd + 2 * half + t % rest * 8;
        *(uint4 *)(kd + off) = *(const uint4 *)(k + off);
    }
    const uint4 *v = (const uint4 *)(k + kvw);
    uint4 *vd = (uint4 *)(vc + (uint64_t)pos * kvw);
    for (uint32_t t = threadIdx.x; t < kvw / 8; t += blockDim.x) vd[t] = v[t];
}

extern "C" int kvr_cu_rotary(void *qkv, void *kcache, void *vcache, const void *table, uint32_t s,
                             uint32_t c, uint32_t n_heads, uint32_t n_kv, uint32_t hd, uint32_t rot,
                             void *stream)
{
    rotary_kernel<<<c, 256, 0, STREAM(stream)>>>((bf16 *)qkv, (bf16 *)kcache, (bf16 *)vcache,
                                                 (const float2 *)table, s, n_heads, n_kv, hd, rot);
    return launched();
}

__device__ __forceinline__ float act_one(float a, float up, int swiglu)
{
    if (swiglu) return a / (1.0f + __expf(-a)) * up;
    return 0.5f * a * (1.0f + erff(a * 0.70710678118654752f));
}

/* Row blockIdx.x (rows in x: gridDim.y stops at 65535, a 64k chunk has more); each thread 8
 * consecutive columns of block blockIdx.y with 16-byte loads and stores (when ffn is a multiple
 * of 8), else one column. No division per element. */
__global__ void activation_kernel(bf16 *act, const bf16 *up, uint32_t ffn, int swiglu)
{
    const bf16 *row = up + (uint64_t)blockIdx.x * ffn * (swiglu ? 2 : 1);
    bf16 *out = act + (uint64_t)blockIdx.x * ffn;
    uint32_t j = (blockIdx.y * blockDim.x + threadIdx.x) * 8;
    if (ffn % 8 == 0) {
        if (j >= ffn) return;
        uint4 av = *(const uint4 *)(row + j), uv = av, ov;
        if (swiglu) uv = *(const uint4 *)(row + ffn + j);
        const bf16 *a8 = (const bf16 *)&av, *u8 = (const bf16 *)&uv;
        bf16 *o8 = (bf16 *)&ov;
#pragma unroll
        for (int e = 0; e < 8; e++)
            o8[e] =
                __float2bfloat16(act_one(__bfloat162float(a8[e]), __bfloat162float(u8[e]), swiglu));
        *(uint4 *)(out + j) = ov;
        return;
    }
    for (uint32_t e = j; e < j + 8 && e < ffn; e++)
        out[e] = __float2bfloat16(
            act_one(__bfloat162float(row[e]), swiglu ? __bfloat162float(row[ffn + e]) : 0, swiglu));
}

extern "C" int kvr_cu_activation(void *act, const void *up, uint32_t c, uint32_t ffn, int swiglu,
                                 void *stream)
{
    dim3 grid(c, (ffn + 8 * 128 - 1) / (8 * 128));
    activation_kernel<<<grid, 128, 0, STREAM(stream)>>>((bf16 *)act, (const bf16 *)up, ffn, swiglu);
    return launched();
}

/* ---------------------------------------------------------------- attention, plain version */

/* Query i (position s + i) sees keys [max(0, s + i + 1 - window), s + i] (all up to s + i
 * when window is 0); the LSE (natural log, scaled scores) goes to lse[i][h] when lse is set. */
__global__ void attention_naive_kernel(const bf16 *q, uint64_t qs, const bf16 *k, const bf16 *v,
                                       uint64_t kvs, bf16 *out, uint64_t os, uint32_t s, uint32_t c,
                                       uint32_t n_heads, uint32_t n_kv, uint32_t hd,
                                       uint32_t window, float *lse)
{
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y;
    if (i >= c) return;
    uint32_t g = h / (n_heads / n_kv), n_keys = s + i + 1;
    uint32_t first = window && n_keys > window ? n_keys - window : 0;
    const bf16 *qr = q + (uint64_t)i * qs + h * hd;
    float acc[128], mx = -INFINITY, sum = 0, scale = rsqrtf((float)hd);
    for (uint32_t e = 0; e < hd; e++) acc[e] = 0;
    for (uint32_t j = first; j < n_keys; j++) {
        const bf16 *kr = k + (uint64_t)j * kvs + g * hd, *vr = v + (uint64_t)j * kvs + g * hd;
        float dot = 0;
        for (uint32_t e = 0; e < hd; e++) dot += __bfloat162float(qr[e]) * __bfloat162float(kr[e]);
        dot *= scale;
        float m_new = fmaxf(mx, dot), alpha = expf(mx - m_new), p = expf(dot - m_new);
        sum = sum * alpha + p;
        for (uint32_t e = 0; e < hd; e++) acc[e] = acc[e] * alpha + p * __bfloat162float(vr[e]);
        mx = m_new;
    }
    for (uint32_t e = 0; e < hd; e++)
        out[(uint64_t)i * os + h * hd + e] = __float2bfloat16(acc[e] / sum);
    if (lse) lse[(uint64_t)i * n_heads + h] = mx + logf(sum);
}

extern "C" int kvr_cu_attention_naive(const void *q, uint64_t q_stride, const void *k,
                                      const void *v, uint64_t kv_stride, void *out,
                                      uint64_t out_stride, uint32_t s, uint32_t c, uint32_t n_heads,
                                      uint32_t n_kv, uint32_t hd, uint32_t window, float *lse,
                                      void *stream)
{
    if (hd > 128 || n_kv == 0 || n_heads % n_kv) return (int)cudaErrorInvalidValue;
    if (c == 0) return 0;
    dim3 grid((c + 63) / 64, n_heads);
    attention_naive_kernel<<<grid, 64, 0, STREAM(stream)>>>(
        (const bf16 *)q, q_stride, (const bf16 *)k, (const bf16 *)v, kv_stride, (bf16 *)out,
        out_stride, s, c, n_heads, n_kv, hd, window, lse);
    return launched();
}

/* ---------------------------------------------------------------- flash attention
 * FlashAttention-2 style on mma.sync m16n8k16 (bf16 in, fp32 accumulate). A block of 4 warps
 * owns BR = 64 MT query rows of one head (each warp 16 MT rows) and walks the key tiles of
 * BC = 64 in order, with K and V double-buffered in shared memory by cp.async. Scores and
 * probabilities stay in registers; the online softmax works in the log2 domain. Shared memory
 * rows are XOR-swizzled in 16-byte chunks so ldmatrix is conflict-free. */

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
__device__ __forceinline__ void flash_softmax(flash_tile<HD, MT> &t, float scale_log2)
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
            float m_new = fmaxf(t.m[mt][hf], mx * scale_log2), m_off = max_offset(m_new);
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
        flash_softmax<HD, MT>(t, a.scale_log2);
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
    if (mt == 0) mt = hd == 64 ? KVR_ATTN_DEFAULT_VARIANT_HD64 : KVR_ATTN_DEFAULT_VARIANT;
    if (mt >= 6) {
        int n_split = mt == 7 ? 3 : 0, n_consumers = mt == 8 ? 3 : 0;
        return kvr_cu_attention_ws(q, q_stride, k, v, kv_stride, out, out_stride, s, c, n_heads,
                                   n_kv, hd, dense, window, lse, n_split, n_consumers, stream);
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
