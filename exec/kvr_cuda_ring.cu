/* Ring attention's kernels (kvr_cuda_ring.h): plain, one thread per (query row, head). */
#include "kvr_cuda_common.cuh"
#include "kvr_cuda_ring.h"

__device__ __forceinline__ uint32_t span_pos(const kvr_cu_span &s, uint32_t row)
{
    return row < s.n[0] ? s.pos[0] + row : s.pos[1] + (row - s.n[0]);
}

__global__ void ring_attn_kernel(const bf16 *q, uint64_t qs, const bf16 *k, const bf16 *v,
                                 uint64_t kvs, float *o, kvr_cu_span qspan, kvr_cu_span kspan,
                                 uint32_t window, uint32_t n_heads, uint32_t n_kv, uint32_t hd)
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
    float *orow = o + (uint64_t)i * n_heads * (hd + 1);
    for (uint32_t e = 0; e < hd; e++) orow[h * hd + e] = sum > 0 ? acc[e] / sum : 0.0f;
    orow[n_heads * hd + h] = sum > 0 ? mx + logf(sum) : -INFINITY;
}

extern "C" int kvr_cu_ring_attn(const void *q, uint64_t q_stride, const void *k, const void *v,
                                uint64_t kv_stride, float *o, struct kvr_cu_span qs,
                                struct kvr_cu_span ks, uint32_t window, uint32_t n_heads,
                                uint32_t n_kv, uint32_t hd, void *stream)
{
    uint32_t rows = qs.n[0] + qs.n[1];
    if (hd > 128 || n_kv == 0 || n_heads % n_kv) return (int)cudaErrorInvalidValue;
    if (rows == 0) return 0;
    dim3 grid((rows + 63) / 64, n_heads);
    ring_attn_kernel<<<grid, 64, 0, STREAM(stream)>>>((const bf16 *)q, q_stride, (const bf16 *)k,
                                                      (const bf16 *)v, kv_stride, o, qs, ks, window,
                                                      n_heads, n_kv, hd);
    return launched();
}

__global__ void ring_merge_kernel(float *dst, const float *src, uint32_t rows, uint32_t n_heads,
                                  uint32_t hd)
{
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y;
    if (i >= rows) return;
    float *a = dst + (uint64_t)i * n_heads * (hd + 1);
    const float *b = src + (uint64_t)i * n_heads * (hd + 1);
    float la = a[n_heads * hd + h], lb = b[n_heads * hd + h];
    if (lb == -INFINITY) return;
    float mx = fmaxf(la, lb), wa = expf(la - mx), wb = expf(lb - mx), inv = 1.0f / (wa + wb);
    for (uint32_t e = 0; e < hd; e++)
        a[h * hd + e] = (wa * a[h * hd + e] + wb * b[h * hd + e]) * inv;
    a[n_heads * hd + h] = mx + logf(wa + wb);
}

extern "C" int kvr_cu_ring_merge(float *dst, const float *src, uint32_t rows, uint32_t n_heads,
                                 uint32_t hd, void *stream)
{
    if (rows == 0) return 0;
    dim3 grid((rows + 63) / 64, n_heads);
    ring_merge_kernel<<<grid, 64, 0, STREAM(stream)>>>(dst, src, rows, n_heads, hd);
    return launched();
}

__global__ void ring_finish_kernel(bf16 *att, const float *o, uint32_t rows, uint32_t n_heads,
                                   uint32_t hd)
{
    uint64_t w = (uint64_t)n_heads * hd, idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * w) return;
    uint64_t i = idx / w, e = idx % w;
    att[idx] = __float2bfloat16(o[i * n_heads * (hd + 1) + e]);
}

extern "C" int kvr_cu_ring_finish(void *att, const float *o, uint32_t rows, uint32_t n_heads,
                                  uint32_t hd, void *stream)
{
    uint64_t n = (uint64_t)rows * n_heads * hd;
    if (n == 0) return 0;
    ring_finish_kernel<<<(unsigned)((n + 255) / 256), 256, 0, STREAM(stream)>>>((bf16 *)att, o,
                                                                                rows, n_heads, hd);
    return launched();
}
