/* Ring attention's kernels (kvr_cuda_ring.h): plain, one thread per (query row, head). */
#include "kvr_cuda_common.cuh"
#include "kvr_cuda_ring.h"

__device__ __forceinline__ uint32_t span_pos(const kvr_cu_span &s, uint32_t row)
{
    return row < s.n[0] ? s.pos[0] + row : s.pos[1] + (row - s.n[0]);
}

__global__ void ring_attn_kernel(const bf16 *q, uint64_t qs, const bf16 *k, const bf16 *v,
                                 uint64_t kvs, float *o, uint64_t os, kvr_cu_span qspan,
                                 kvr_cu_span kspan, uint32_t window, uint32_t n_heads,
                                 uint32_t n_kv, uint32_t hd)
{
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y;
    if (i >= qspan.n[0] + qspan.n[1]) return;
    uint32_t g = h / (n_heads / n_kv), x = span_pos(qspan, i);
    uint32_t first = window && x + 1 > window ? x + 1 - window : 0;
    const bf16 *qr = q + (uint64_t)i * qs + h * hd;
    float acc[128], mx = -INFINITY, sum = 0, scale = rsqrtf((float)hd);
    for (uint32_t e = 0; e < hd; e++) acc[e] = 0;
    for (int r = 0; r < 2; r++)
        for (uint32_t j = max(kspan.pos[r], first); j < kspan.pos[r] + kspan.n[r] && j <= x; j++) {
            const bf16 *kr = k + (uint64_t)j * kvs + g * hd, *vr = v + (uint64_t)j * kvs + g * hd;
            float dot = 0;
            for (uint32_t e = 0; e < hd; e++)
                dot += __bfloat162float(qr[e]) * __bfloat162float(kr[e]);
            dot *= scale;
            float m_new = fmaxf(mx, dot), alpha = expf(mx - m_new), p = expf(dot - m_new);
            sum = sum * alpha + p;
            for (uint32_t e = 0; e < hd; e++) acc[e] = acc[e] * alpha + p * __bfloat162float(vr[e]);
            mx = m_new;
        }
    float *orow = o + (uint64_t)i * os;
    for (uint32_t e = 0; e < hd; e++) orow[h * hd + e] = sum > 0 ? acc[e] / sum : 0.0f;
    orow[n_heads * hd + h] = sum > 0 ? mx + logf(sum) : -INFINITY;
}

extern "C" int kvr_cu_ring_attn(const void *q, uint64_t q_stride, const void *k, const void *v,
                                uint64_t kv_stride, float *o, uint64_t o_stride,
                                struct kvr_cu_span qs, struct kvr_cu_span ks, uint32_t window,
                                uint32_t n_heads, uint32_t n_kv, uint32_t hd, void *stream)
{
    uint32_t rows = qs.n[0] + qs.n[1];
    if (hd > 128 || n_kv == 0 || n_heads % n_kv || o_stride < (uint64_t)n_heads * (hd + 1))
        return (int)cudaErrorInvalidValue;
    if (rows == 0) return 0;
    dim3 grid((rows + 63) / 64, n_heads);
    ring_attn_kernel<<<grid, 64, 0, STREAM(stream)>>>((const bf16 *)q, q_stride, (const bf16 *)k,
                                                      (const bf16 *)v, kv_stride, o, o_stride, qs,
                                                      ks, window, n_heads, n_kv, hd);
    return launched();
}

__global__ void ring_merge_kernel(float *dst, const float *src, uint64_t os, uint32_t rows,
                                  uint32_t n_heads, uint32_t hd)
{
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y;
    if (i >= rows) return;
    float *a = dst + (uint64_t)i * os;
    const float *b = src + (uint64_t)i * os;
    float la = a[n_heads * hd + h], lb = b[n_heads * hd + h];
    if (lb == -INFINITY) return;
    float mx = fmaxf(la, lb), wa = expf(la - mx), wb = expf(lb - mx), inv = 1.0f / (wa + wb);
    for (uint32_t e = 0; e < hd; e++)
        a[h * hd + e] = (wa * a[h * hd + e] + wb * b[h * hd + e]) * inv;
    a[n_heads * hd + h] = mx + logf(wa + wb);
}

extern "C" int kvr_cu_ring_merge(float *dst, const float *src, uint64_t o_stride, uint32_t rows,
                                 uint32_t n_heads, uint32_t hd, void *stream)
{
    if (rows == 0) return 0;
    dim3 grid((rows + 63) / 64, n_heads);
    ring_merge_kernel<<<grid, 64, 0, STREAM(stream)>>>(dst, src, o_stride, rows, n_heads, hd);
    return launched();
}

__global__ void ring_finish_kernel(bf16 *att, const float *o, uint64_t os, uint32_t rows,
                                   uint32_t n_heads, uint32_t hd)
{
    uint64_t w = (uint64_t)n_heads * hd, idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * w) return;
    uint64_t i = idx / w, e = idx % w;
    att[idx] = __float2bfloat16(o[i * os + e]);
}

extern "C" int kvr_cu_ring_finish(void *att, const float *o, uint64_t o_stride, uint32_t rows,
                                  uint32_t n_heads, uint32_t hd, void *stream)
{
    uint64_t n = (uint64_t)rows * n_heads * hd;
    if (n == 0) return 0;
    ring_finish_kernel<<<(unsigned)((n + 255) / 256), 256, 0, STREAM(stream)>>>(
        (bf16 *)att, o, o_stride, rows, n_heads, hd);
    return launched();
}

/* ---- the fast path ---- */

/* Whether no query of [q0, q0 + nq) sees a key of [k0, k0 + nk) (causal, window). */
static int block_masked(uint32_t q0, uint32_t nq, uint32_t k0, uint32_t nk, uint32_t window)
{
    if (nq == 0 || nk == 0 || q0 + nq - 1 < k0) return 1; /* every query before every key */
    const uint32_t k_last = k0 + nk - 1;                  /* the nearest key to the first query */
    return window && q0 > k_last && q0 - k_last >= window;
}

/* Rows [0, rows) of o: output 0, LSE -inf (a query range that sees no key of the step). */
__global__ void ring_empty_kernel(float *o, uint64_t os, uint32_t rows, uint32_t n_heads,
                                  uint32_t hd)
{
    const uint64_t w = (uint64_t)n_heads * (hd + 1),
                   i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x;
    if (i >= rows * w) return;
    const uint64_t r = i / w, e = i % w;
    o[r * os + e] = e < (uint64_t)n_heads * hd ? 0.0f : -INFINITY;
}

static int ring_empty(float *o, uint64_t os, uint32_t rows, uint32_t n_heads, uint32_t hd,
                      void *stream)
{
    const uint64_t n = (uint64_t)rows * n_heads * (hd + 1);
    if (n == 0) return 0;
    ring_empty_kernel<<<(unsigned)((n + 255) / 256), 256, 0, STREAM(stream)>>>(o, os, rows, n_heads,
                                                                               hd);
    return launched();
}

/* Query range qr of qs against every key range of ks that it sees: the first launch writes, the
 * next merges into it; no range seen: 0 and -inf. */
static int ring_q_range(const kvr_cu_attn_block &base, const kvr_cu_span &qs, const kvr_cu_span &ks,
                        int qr, void *stream)
{
    const uint32_t row0 = qr ? qs.n[0] : 0;
    kvr_cu_attn_block b = base;
    b.q = (const bf16 *)base.q + (uint64_t)row0 * base.q_stride, b.q0 = qs.pos[qr], b.nq = qs.n[qr];
    b.o = base.o + (uint64_t)row0 * base.o_stride, b.lse = b.o + (uint64_t)base.n_heads * base.hd;
    for (int kr = 0; kr < 2; kr++) {
        if (block_masked(b.q0, b.nq, ks.pos[kr], ks.n[kr], b.window)) continue;
        b.k = (const bf16 *)base.k + (uint64_t)ks.pos[kr] * base.kv_stride;
        b.v = (const bf16 *)base.v + (uint64_t)ks.pos[kr] * base.kv_stride;
        b.k0 = ks.pos[kr], b.nk = ks.n[kr];
        int e = kvr_cu_attention_block(&b, stream);
        if (e) return e;
        b.accumulate = 1;
    }
    return b.accumulate ? 0 : ring_empty(b.o, b.o_stride, b.nq, b.n_heads, b.hd, stream);
}

extern "C" int kvr_cu_ring_attn_fast(const void *q, uint64_t q_stride, const void *k, const void *v,
                                     uint64_t kv_stride, float *o, uint64_t o_stride,
                                     struct kvr_cu_span qs, struct kvr_cu_span ks, uint32_t window,
                                     uint32_t n_heads, uint32_t n_kv, uint32_t hd, void *stream)
{
    const bool fast = (hd == 64 || hd == 128) && o_stride % 4 == 0 && !((uintptr_t)o & 15) &&
                      o_stride >= (uint64_t)n_heads * (hd + 1) && n_kv && n_heads % n_kv == 0;
    int e = fast ? 0 : (int)cudaErrorNotSupported;
    kvr_cu_attn_block b = {q, k, v, q_stride, kv_stride, o,  NULL,   o_stride, o_stride, 0,
                           0, 0, 0, n_heads,  n_kv,      hd, window, 0,        0};
    for (int qr = 0; qr < 2 && !e; qr++)
        if (qs.n[qr]) e = ring_q_range(b, qs, ks, qr, stream);
    if (e != (int)cudaErrorNotSupported) return e;
    /* TMA cannot read these matrices (or the shape is not the fast kernel's): the plain kernel
     * writes every row again */
    return kvr_cu_ring_attn(q, q_stride, k, v, kv_stride, o, o_stride, qs, ks, window, n_heads,
                            n_kv, hd, stream);
}

/* dst = merge(dst, src) by LSE; one thread per four columns, the (row, head)'s HD / 4 threads
 * take both LSEs from their first (a shuffle), which alone writes the merged one. */
template <int HD>
__global__ void ring_merge_fast_kernel(float *dst, const float *src, uint64_t os, uint32_t rows,
                                       uint32_t n_heads)
{
    constexpr int G = HD / 4;
    const uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x;
    if (i >= (uint64_t)rows * n_heads * G) return; /* whole groups */
    const uint64_t rh = i / G;
    const uint32_t r = (uint32_t)(rh / n_heads), h = (uint32_t)(rh % n_heads), d = (i % G) * 4;
    const unsigned gmask = G == 32 ? 0xffffffffu : 0xffffu << (threadIdx.x & 16);
    float *a = dst + r * os, la = 0, lb = 0;
    const float *b = src + r * os;
    if (d == 0) la = a[(uint64_t)n_heads * HD + h], lb = b[(uint64_t)n_heads * HD + h];
    la = __shfl_sync(gmask, la, 0, G), lb = __shfl_sync(gmask, lb, 0, G);
    if (lb == -INFINITY) return; /* src saw nothing */
    const float mx = fmaxf(la, lb), wa = __expf(la - mx), wb = __expf(lb - mx);
    const float inv = 1.0f / (wa + wb), fa = wa * inv, fb = wb * inv;
    float4 *pa = (float4 *)(a + h * HD + d);
    const float4 x = *pa, y = *(const float4 *)(b + h * HD + d);
    *pa = make_float4(fa * x.x + fb * y.x, fa * x.y + fb * y.y, fa * x.z + fb * y.z,
                      fa * x.w + fb * y.w);
    if (d == 0) a[(uint64_t)n_heads * HD + h] = mx + __logf(wa + wb);
}

extern "C" int kvr_cu_ring_merge_fast(float *dst, const float *src, uint64_t o_stride,
                                      uint32_t rows, uint32_t n_heads, uint32_t hd, void *stream)
{
    if ((hd != 64 && hd != 128) || o_stride % 4 || ((uintptr_t)dst & 15) || ((uintptr_t)src & 15))
        return kvr_cu_ring_merge(dst, src, o_stride, rows, n_heads, hd, stream);
    const uint64_t n = (uint64_t)rows * n_heads * (hd / 4);
    if (n == 0) return 0;
    const unsigned blocks = (unsigned)((n + 255) / 256);
    if (hd == 128)
        ring_merge_fast_kernel<128>
            <<<blocks, 256, 0, STREAM(stream)>>>(dst, src, o_stride, rows, n_heads);
    else
        ring_merge_fast_kernel<64>
            <<<blocks, 256, 0, STREAM(stream)>>>(dst, src, o_stride, rows, n_heads);
    return launched();
}

/* att = bf16(o): eight columns a thread, two 16-byte loads, one 16-byte store. */
__global__ void ring_finish_fast_kernel(uint4 *att, const float *o, uint64_t os, uint32_t rows,
                                        uint32_t w8)
{
    const uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x;
    if (i >= (uint64_t)rows * w8) return;
    const uint64_t r = i / w8, e = (i % w8) * 8;
    const float4 x = *(const float4 *)(o + r * os + e), y = *(const float4 *)(o + r * os + e + 4);
    att[i] = make_uint4(pack_bf16(x.x, x.y), pack_bf16(x.z, x.w), pack_bf16(y.x, y.y),
                        pack_bf16(y.z, y.w));
}

extern "C" int kvr_cu_ring_finish_fast(void *att, const float *o, uint64_t o_stride, uint32_t rows,
                                       uint32_t n_heads, uint32_t hd, void *stream)
{
    const uint64_t w = (uint64_t)n_heads * hd;
    if (w % 8 || o_stride % 4 || ((uintptr_t)o & 15) || ((uintptr_t)att & 15))
        return kvr_cu_ring_finish(att, o, o_stride, rows, n_heads, hd, stream);
    const uint64_t n = rows * (w / 8);
    if (n == 0) return 0;
    ring_finish_fast_kernel<<<(unsigned)((n + 255) / 256), 256, 0, STREAM(stream)>>>(
        (uint4 *)att, o, o_stride, rows, (uint32_t)(w / 8));
    return launched();
}
