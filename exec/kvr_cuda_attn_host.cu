/* The warp-specialised attention kernel's host side and its merge (internal to exec/): the
 * TMA descriptors, the split heuristic, the partials' buffer, the persistent kernel's counters
 * and choice, and the kernels that merge split partials by their log-sum-exp. */
#include <cuda.h> /* CUtensorMap and its enums; the encoder comes through the runtime */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cuda_attn_host.cuh"
#include "kvr_cuda_common.cuh"
#include "kvr_cuda_kernels.h"

namespace
{

typedef CUresult (*encode_fn)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *,
                              const cuuint64_t *, const cuuint64_t *, const cuuint32_t *,
                              const cuuint32_t *, CUtensorMapInterleave, CUtensorMapSwizzle,
                              CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

encode_fn encoder(void)
{
    static encode_fn fn = NULL;
    if (!fn) {
        void *f = NULL;
        cudaDriverEntryPointQueryResult q;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault,
                                             &q) == cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = (encode_fn)f;
        cudaGetLastError();
    }
    return fn;
}

} // namespace

/* A [rows][cols] bf16 matrix of row stride `stride` elements, read in boxes of 64 x box_rows
 * with the 128-byte swizzle; rows past the end read as zeros. */
bool kvr_ws_tensor_map(CUtensorMap *m, const void *base, uint64_t cols, uint64_t rows,
                       uint64_t stride, uint32_t box_rows)
{
    encode_fn fn = encoder();
    if (!fn || ((uintptr_t)base & 15) || (stride * 2) % 16 || cols % 64) return false;
    cuuint64_t dims[2] = {cols, rows}, strides[1] = {stride * 2};
    cuuint32_t box[2] = {64, box_rows}, es[2] = {1, 1};
    return fn(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, (void *)base, dims, strides, box, es,
              CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
              CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
              CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/* A [rows][cols] bf16 or float matrix written in boxes of 128 bytes x 64 rows (64 bf16 or 32
 * floats) with the 128-byte swizzle; the parts of a box past the end are not written. */
bool kvr_ws_store_map(CUtensorMap *m, void *base, bool f32, uint64_t cols, uint64_t rows,
                      uint64_t stride)
{
    encode_fn fn = encoder();
    const uint64_t es = f32 ? 4 : 2;
    if (!fn || ((uintptr_t)base & 15) || (stride * es) % 16 || !cols || !rows || stride < cols)
        return false;
    cuuint64_t dims[2] = {cols, rows}, strides[1] = {stride * es};
    cuuint32_t box[2] = {(cuuint32_t)(128 / es), 64}, step[2] = {1, 1};
    return fn(m, f32 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, base,
              dims, strides, box, step, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
              CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

int kvr_ws_sm_count(void)
{
    static int n_sm = 0;
    if (!n_sm) {
        int d = 0;
        if (cudaGetDevice(&d) || cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, d))
            n_sm = 132;
    }
    return n_sm;
}

/* Splits so that the grid fills the SMs: the fewest whose wave efficiency is within 85% of the
 * best (as FlashAttention-2's heuristic), at most 16 and at least 2 tiles each. */
int kvr_ws_auto_splits(uint64_t blocks, int max_tiles)
{
    const int n_sm = kvr_ws_sm_count();
    if (blocks >= 2u * n_sm) return 1;
    int n_max = max(1, min(16, max_tiles / 2));
    double eff[17] = {0}, best = 0;
    for (int n = 1; n <= n_max; n++) {
        double waves = (double)(blocks * n) / n_sm;
        eff[n] = waves / ceil(waves), best = fmax(best, eff[n]);
    }
    for (int n = 1; n <= n_max; n++)
        if (eff[n] >= 0.85 * best) return n;
    return 1;
}

/* The split partials' buffer, grown on demand and kept (one per device). */
float *kvr_ws_workspace(size_t bytes)
{
    static float *buf[16];
    static size_t have[16];
    int d = 0;
    if (cudaGetDevice(&d) || d >= 16) return NULL;
    if (have[d] < bytes) {
        cudaFree(buf[d]);
        buf[d] = NULL, have[d] = 0;
        if (cudaMalloc(&buf[d], bytes)) return NULL;
        have[d] = bytes;
    }
    return buf[d];
}

/* The persistent kernel's two counters for a stream (zero between launches: the last block
 * resets them), one pair per (device, stream) so that launches on two streams never share. */
unsigned *kvr_ws_counters(void *stream)
{
    enum { N = 64, W = KVR_WS_CTR_WORDS };
    static unsigned *buf[16];
    static void *streams[16][N];
    static int used[16];
    int d = 0;
    if (cudaGetDevice(&d) || d >= 16) return NULL;
    if (!buf[d]) {
        if (cudaMalloc(&buf[d], (size_t)N * W * sizeof(unsigned))) return buf[d] = NULL;
        if (cudaMemset(buf[d], 0, (size_t)N * W * sizeof(unsigned))) return NULL;
    }
    for (int i = 0; i < used[d]; i++)
        if (streams[d][i] == stream) return buf[d] + (size_t)W * i;
    if (used[d] == N) return NULL;
    streams[d][used[d]] = stream;
    return buf[d] + (size_t)W * used[d]++;
}

/* Whether the kernel runs persistent (one block per SM taking items from a counter) when the
 * caller left it open (persist < 0): KVR_ATTN_PERSIST=0 or 1, else where there are at most
 * KVR_ATTN_PERSIST_ITEMS_PER_SM items per SM. There a block's start and end are a large part
 * of its time and hiding them pays (one H200, attention alone: 0.95x the time at 1k-8k); with
 * more items per SM the plain grid did as well (16k, 32k: within the rounds' spread). */
extern "C" int kvr_cu_attention_env(const char *name)
{
    const char *e = getenv(name);
    if (!e) return -1; /* the empty string is refused, as by kvr_exec_env_read */
    return !strcmp(e, "0") ? 0 : !strcmp(e, "1") ? 1 : -2;
}

bool kvr_ws_persist(int persist, uint32_t n_items)
{
    if (persist >= 0) return persist != 0;
    const int v = kvr_cu_attention_env("KVR_ATTN_PERSIST");
    return v >= 0 ? v != 0
                  : n_items <= (uint32_t)(KVR_ATTN_PERSIST_ITEMS_PER_SM * kvr_ws_sm_count());
}

namespace
{

/* The n_split partials of (row, head) rh at columns d..d+3 (rows = c x n_heads per split):
 * their outputs weighted by exp(lse_i - max) and summed into acc, the weights' sum w, the max
 * mx (-inf and w = 0 where no split saw a key). */
template <int HD>
__device__ __forceinline__ float4 merge_partials(const float *part_o, const float *part_lse,
                                                 uint64_t rows, uint64_t rh, int d, int n_split,
                                                 float *mx, float *w)
{
    float m = -INFINITY, s = 0;
    for (int sp = 0; sp < n_split; sp++) m = fmaxf(m, part_lse[sp * rows + rh]);
    float4 acc = make_float4(0, 0, 0, 0);
    for (int sp = 0; sp < n_split; sp++) {
        const float e = part_lse[sp * rows + rh], f = e == -INFINITY ? 0.0f : __expf(e - m);
        const float4 v = *(const float4 *)(part_o + (sp * rows + rh) * HD + d);
        acc.x += f * v.x, acc.y += f * v.y, acc.z += f * v.z, acc.w += f * v.w;
        s += f;
    }
    *mx = m, *w = s;
    return acc;
}

/* Merges the n_split partials of each (row, head) into bf16 out and lse. One thread per four
 * output columns. */
template <int HD>
__global__ void merge_kernel(const float *part_o, const float *part_lse, bf16 *out, uint64_t os,
                             float *lse, uint32_t c, uint32_t n_heads, int n_split)
{
    uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x, rows = (uint64_t)c * n_heads;
    if (i >= rows * (HD / 4)) return;
    const uint64_t rh = i / (HD / 4);
    const int d = (int)(i % (HD / 4)) * 4;
    float mx, w;
    const float4 acc = merge_partials<HD>(part_o, part_lse, rows, rh, d, n_split, &mx, &w);
    const float inv = 1.0f / w;
    const uint32_t r = (uint32_t)(rh / n_heads), h = (uint32_t)(rh % n_heads);
    bf16 *dst = out + r * os + h * HD + d;
    *(uint32_t *)dst = pack_bf16(acc.x * inv, acc.y * inv);
    *(uint32_t *)(dst + 2) = pack_bf16(acc.z * inv, acc.w * inv);
    if (lse && d == 0) lse[rh] = mx + logf(w);
}

/* merge_kernel for a ring block (ws_params' o32): float output, and with acc merged by LSE
 * into what is there. One thread per four columns; the first of a (row, head)'s HD / 4 threads
 * reads the old LSE and hands it over (a shuffle among them), so none reads it after the write. */
template <int HD>
__global__ void merge32_kernel(const float *part_o, const float *part_lse, float *o32,
                               uint64_t o32s, float *lse, uint64_t lses, uint32_t c,
                               uint32_t n_heads, int n_split, int acc)
{
    constexpr int G = HD / 4;
    uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x, rows = (uint64_t)c * n_heads;
    if (i >= rows * G) return; /* whole groups: rows * G is a multiple of G */
    const uint64_t rh = i / G;
    const int d = (int)(i % G) * 4;
    const unsigned gmask = G == 32 ? 0xffffffffu : 0xffffu << (threadIdx.x & 16);
    const uint32_t r = (uint32_t)(rh / n_heads), h = (uint32_t)(rh % n_heads);
    float mx, w, old = -INFINITY;
    if (acc && d == 0) old = lse[r * lses + h];
    old = __shfl_sync(gmask, old, 0, G);
    const float4 a4 = merge_partials<HD>(part_o, part_lse, rows, rh, d, n_split, &mx, &w);
    if (acc && w == 0) return; /* nothing seen: stays */
    float ln = w > 0 ? mx + __logf(w) : -INFINITY, wn = w > 0 ? 1.0f / w : 0.0f, wo = 0;
    if (old != -INFINITY) {
        const float m2 = fmaxf(old, ln), eo = __expf(old - m2), en = __expf(ln - m2);
        const float inv = 1.0f / (eo + en);
        wo = eo * inv, wn *= en * inv, ln = m2 + __logf(eo + en);
    }
    float4 *dst = (float4 *)(o32 + r * o32s + h * HD + d);
    float4 v = make_float4(a4.x * wn, a4.y * wn, a4.z * wn, a4.w * wn);
    if (wo != 0) {
        const float4 u = *dst;
        v.x += wo * u.x, v.y += wo * u.y, v.z += wo * u.z, v.w += wo * u.w;
    }
    *dst = v;
    if (d == 0) lse[r * lses + h] = ln;
}

template <int HD>
int merge_launch(const float *part_o, const float *part_lse, bf16 *out, uint64_t os, float *lse,
                 uint32_t c, uint32_t n_heads, int n_split, void *stream)
{
    const uint64_t threads = (uint64_t)c * n_heads * (HD / 4);
    merge_kernel<HD><<<(unsigned)((threads + 255) / 256), 256, 0, STREAM(stream)>>>(
        part_o, part_lse, out, os, lse, c, n_heads, n_split);
    return launched();
}

template <int HD>
int merge32_launch(const float *part_o, const float *part_lse, float *o32, uint64_t o32s,
                   float *lse, uint64_t lses, uint32_t c, uint32_t n_heads, int n_split, int acc,
                   void *stream)
{
    const uint64_t threads = (uint64_t)c * n_heads * (HD / 4);
    merge32_kernel<HD><<<(unsigned)((threads + 255) / 256), 256, 0, STREAM(stream)>>>(
        part_o, part_lse, o32, o32s, lse, lses, c, n_heads, n_split, acc);
    return launched();
}

} // namespace

int kvr_ws_merge(int hd, const float *part_o, const float *part_lse, bf16 *out, uint64_t os,
                 float *lse, uint32_t c, uint32_t n_heads, int n_split, void *stream)
{
    return (hd == 128 ? merge_launch<128> : merge_launch<64>)(part_o, part_lse, out, os, lse, c,
                                                              n_heads, n_split, stream);
}

int kvr_ws_merge32(int hd, const float *part_o, const float *part_lse, float *o32, uint64_t o32s,
                   float *lse, uint64_t lses, uint32_t c, uint32_t n_heads, int n_split, int acc,
                   void *stream)
{
    return (hd == 128 ? merge32_launch<128> : merge32_launch<64>)(part_o, part_lse, o32, o32s, lse,
                                                                  lses, c, n_heads, n_split, acc,
                                                                  stream);
}
