/* CUDA kernels of the cuda backend and their extern "C" launchers. Host orchestration lives
 * in kvr_cuda*.c. bf16 storage, fp32 arithmetic everywhere. */
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
        dst[i] = __float2bfloat16(kvr_rng_value(seed, sid, i, scale, offset));
}

extern "C" int kvr_cu_fill_random(void *dst, uint64_t n, uint64_t seed, uint64_t stream_id,
                                  float scale, float offset, void *stream)
{
    fill_random_kernel<<<blocks_for(n, 256), 256, 0, STREAM(stream)>>>((bf16 *)dst, n, seed,
                                                                       stream_id, scale, offset);
    return launched();
}

__global__ void scale_rows_kernel(bf16 *x, uint64_t n, uint32_t width, float ramp)
{
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n;
         i += (uint64_t)gridDim.x * blockDim.x)
        x[i] = __float2bfloat16(__bfloat162float(x[i]) * (1.0f + (float)(i / width) * ramp));
}

extern "C" int kvr_cu_scale_rows(void *x, uint64_t rows, uint32_t width, float ramp, void *stream)
{
    const uint64_t n = rows * width;
    scale_rows_kernel<<<blocks_for(n, 256), 256, 0, STREAM(stream)>>>((bf16 *)x, n, width, ramp);
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

/* The same with the row in registers, V float4 per thread (d % 4 == 0, d <= 4 V blockDim,
 * w and b 8-byte aligned): one read of the row, 8-byte weight loads and output stores. */
template <int V>
__global__ void norm_reg_kernel(bf16 *out, const float *x, const bf16 *w, const bf16 *b, uint32_t d,
                                int layernorm, float eps)
{
    __shared__ float red[32];
    const float4 *r4 = (const float4 *)(x + (uint64_t)blockIdx.x * d);
    uint2 *o2 = (uint2 *)(out + (uint64_t)blockIdx.x * d);
    const uint32_t n4 = d / 4;
    float4 v[V];
    float s = 0, mean = 0, sq = 0;
#pragma unroll
    for (int i = 0; i < V; i++) {
        const uint32_t j = threadIdx.x + i * blockDim.x;
        v[i] = j < n4 ? r4[j] : make_float4(0, 0, 0, 0);
        s += v[i].x + v[i].y + v[i].z + v[i].w;
    }
    if (layernorm) mean = block_sum(s, red) / (float)d;
#pragma unroll
    for (int i = 0; i < V; i++)
        if (threadIdx.x + i * blockDim.x < n4) {
            const float4 c =
                make_float4(v[i].x - mean, v[i].y - mean, v[i].z - mean, v[i].w - mean);
            sq += c.x * c.x + c.y * c.y + c.z * c.z + c.w * c.w;
        }
    const float rstd = rsqrtf(block_sum(sq, red) / (float)d + eps);
#pragma unroll
    for (int i = 0; i < V; i++) {
        const uint32_t j = threadIdx.x + i * blockDim.x;
        if (j >= n4) continue;
        const uint2 wv = ((const uint2 *)w)[j];
        const float2 w01 = __bfloat1622float2(*(const __nv_bfloat162 *)&wv.x);
        const float2 w23 = __bfloat1622float2(*(const __nv_bfloat162 *)&wv.y);
        float4 r = make_float4((v[i].x - mean) * rstd * w01.x, (v[i].y - mean) * rstd * w01.y,
                               (v[i].z - mean) * rstd * w23.x, (v[i].w - mean) * rstd * w23.y);
        if (b) {
            const uint2 bv = ((const uint2 *)b)[j];
            const float2 b01 = __bfloat1622float2(*(const __nv_bfloat162 *)&bv.x);
            const float2 b23 = __bfloat1622float2(*(const __nv_bfloat162 *)&bv.y);
            r.x += b01.x, r.y += b01.y, r.z += b23.x, r.w += b23.y;
        }
        o2[j] = make_uint2(pack_bf16(r.x, r.y), pack_bf16(r.z, r.w));
    }
}

extern "C" int kvr_cu_norm(void *out, const float *x, const void *w, const void *b, uint32_t rows,
                           uint32_t d, int layernorm, float eps, void *stream)
{
    const uint32_t per = (d / 4 + 255) / 256; /* float4 per thread */
    const bool reg = d % 4 == 0 && per <= 8 && !((uintptr_t)w & 7) && !((uintptr_t)b & 7) &&
                     !((uintptr_t)x & 15) && !((uintptr_t)out & 7);
    bf16 *o = (bf16 *)out;
    const bf16 *wb = (const bf16 *)w, *bb = (const bf16 *)b;
    if (!reg)
        norm_kernel<<<rows, 256, 0, STREAM(stream)>>>(o, x, wb, bb, d, layernorm, eps);
    else if (per <= 2)
        norm_reg_kernel<2><<<rows, 256, 0, STREAM(stream)>>>(o, x, wb, bb, d, layernorm, eps);
    else if (per <= 4)
        norm_reg_kernel<4><<<rows, 256, 0, STREAM(stream)>>>(o, x, wb, bb, d, layernorm, eps);
    else
        norm_reg_kernel<8><<<rows, 256, 0, STREAM(stream)>>>(o, x, wb, bb, d, layernorm, eps);
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

/* One thread per 8 elements of the expanded row: expanded head h is KV head h / group. */
__global__ void kv_regroup_kernel(uint4 *dst, const uint4 *src, uint64_t rows, uint32_t n_kv,
                                  uint32_t group, uint32_t hd8, int expand)
{
    uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    uint64_t wide = (uint64_t)n_kv * group * hd8, r = i / wide;
    if (r >= rows) return;
    uint32_t h = (uint32_t)(i % wide / hd8), e = (uint32_t)(i % hd8);
    uint64_t narrow_at = (r * n_kv + h / group) * hd8 + e;
    if (expand)
        dst[i] = src[narrow_at];
    else if (h % group == 0)
        dst[narrow_at] = src[i];
}

extern "C" int kvr_cu_kv_regroup(void *dst, const void *src, uint64_t rows, uint32_t n_kv,
                                 uint32_t group, uint32_t hd, int expand, void *stream)
{
    if (hd % 8 || !group) return (int)cudaErrorInvalidValue;
    uint64_t n = rows * n_kv * group * (hd / 8);
    if (!n) return 0;
    kv_regroup_kernel<<<(unsigned)((n + 255) / 256), 256, 0, STREAM(stream)>>>(
        (uint4 *)dst, (const uint4 *)src, rows, n_kv, group, hd / 8, expand);
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
