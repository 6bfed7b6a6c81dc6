/* Warp-specialised flash attention on Hopper (sm_90a), FlashAttention-3's recipe written anew:
 * a block is one producer warpgroup and NC consumer warpgroups of 64 query rows each.
 *  - The producer's first thread loads Q once and K, V tiles of BC keys into ST stages with the
 *    bulk tensor copy engine (TMA, 128-byte swizzle: the layout wgmma's descriptors read); each
 *    stage has a "full" mbarrier (the copy's bytes land) and an "empty" one (every consumer
 *    warpgroup is done with it). Its warpgroup gives registers back (setmaxnreg).
 *  - Consumers ping-pong: named barriers let one warpgroup issue its GEMMs while the other runs
 *    its softmax. Inside a warpgroup, S(j) = Q K(j)^T and O += P(j-1) V(j-1) are issued together
 *    and the softmax of S(j) runs while P V is in flight.
 *  - Few blocks (a long prefix, few queries): each block's key range is split in parts whose
 *    partial outputs are merged by their log-sum-exp (flash-decoding), so that every SM works.
 * Key tiles wholly outside the causal mask or the sliding window are never loaded. */
#include <cuda.h> /* CUtensorMap and its enums; the encoder comes through the runtime */
#include <math.h>

#include "kvr_cuda_common.cuh"
#include "kvr_cuda_kernels.h"
#include "kvr_cuda_ring.h"
#include "kvr_cuda_wgmma.cuh"

namespace
{

template <int HD_, int NC_, int BC_, int ST_> struct wcfg {
    static constexpr int HD = HD_, NC = NC_, BC = BC_, ST = ST_, BR = 64 * NC_;
    static constexpr int THREADS = 128 * (NC_ + 1), Q_BYTES = BR * HD * 2, KV_BYTES = BC * HD * 2;
    static constexpr int SMEM = Q_BYTES + 2 * ST * KV_BYTES + 1024 + 8 * (1 + 4 * ST);
    static constexpr int REGS = NC_ == 2 ? 240 : 160; /* consumer registers after setmaxnreg */
};

struct ws_params {
    CUtensorMap tq, tk, tv;
    attn_args a;
    float *part_o, *part_lse; /* split partials: [split][c][n_heads][HD] and [split][c][n_heads] */
    /* o32 (a block of ring attention, kvr_cu_attention_block): float output o32[r o32s + h HD]
     * and LSE a.lse[r lses + h] instead of bf16; acc: merged into what is there by LSE */
    float *o32;
    uint64_t o32s, lses;
    int acc;
};

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
                 : "memory");
}

__device__ __forceinline__ void mbar_arrive(uint32_t bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity)
{
    asm volatile("{\n.reg .pred p;\nWAIT:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@!p bra WAIT;\n}\n" ::"r"(bar),
                 "r"(parity)
                 : "memory");
}

/* One box of {64 columns, rows} at column x, row y into shared memory at dst. */
__device__ __forceinline__ void tma_load(uint32_t dst, const CUtensorMap *map, uint32_t bar, int x,
                                         int y)
{
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%3, %4}], [%2];\n" ::"r"(dst),
                 "l"((uint64_t)map), "r"(bar), "r"(x), "r"(y)
                 : "memory");
}

__device__ __forceinline__ void bar_sync(int id)
{
    asm volatile("bar.sync %0, 256;\n" ::"r"(id) : "memory");
}

__device__ __forceinline__ void bar_arrive(int id)
{
    asm volatile("bar.arrive %0, 256;\n" ::"r"(id) : "memory");
}

/* Part sp of n_split of the tiles [lo, hi). */
__device__ __forceinline__ void split_range(int *lo, int *hi, int sp, int n_split)
{
    int per = (*hi - *lo + n_split - 1) / n_split, l = *lo + sp * per;
    *hi = min(*hi, l + per), *lo = l;
}

/* The blocks' order, longest first across a group of heads whose keys and values fit in L2
 * together: the grid's block b (x fastest) runs row block *rb of head *h. A group of G
 * consecutive heads runs its longest row blocks first (one per head), then the next longest, so
 * that the SMs run out of work together (a short context has few, uneven blocks per head); the
 * group's K and V (2 x keys x HD x 2 bytes per KV head, G heads sharing a KV head count once)
 * stay within L2_GROUP_BYTES, so at 32k (16 MB per MHA head) G = 1: head after head. */
#define L2_GROUP_BYTES (16u << 20)

__device__ __forceinline__ void block_order(const attn_args &a, uint32_t hd, uint32_t *rb,
                                            uint32_t *h)
{
    const uint32_t fit = L2_GROUP_BYTES / (4 * hd) / (a.s + a.c) * a.group; /* heads */
    const uint32_t n_rb = gridDim.x, g = max(1u, min(fit, a.n_heads));
    const uint32_t b = blockIdx.y * n_rb + blockIdx.x, g0 = b / (g * n_rb) * g;
    const uint32_t gl = min(g, a.n_heads - g0), r = b - g0 * n_rb;
    *rb = n_rb - 1 - r / gl, *h = g0 + r % gl;
}

/* Barrier addresses: full Q, then full K, full V, empty K, empty V for each stage. */
template <class C> struct bars {
    uint32_t base;
    __device__ uint32_t q() const
    {
        return base;
    }
    __device__ uint32_t fk(int st) const
    {
        return base + 8 * (1 + st);
    }
    __device__ uint32_t fv(int st) const
    {
        return base + 8 * (1 + C::ST + st);
    }
    __device__ uint32_t ek(int st) const
    {
        return base + 8 * (1 + 2 * C::ST + st);
    }
    __device__ uint32_t ev(int st) const
    {
        return base + 8 * (1 + 3 * C::ST + st);
    }
};

/* Tile it (key tile lo + it) of K or V into its stage once every consumer has released the
 * stage's previous tile. */
template <class C>
__device__ __forceinline__ void load_tile(const CUtensorMap &map, uint32_t full, uint32_t empty,
                                          uint32_t base, int g, int lo, int it)
{
    const int st = it % C::ST;
    if (it >= C::ST) mbar_wait(empty, ((uint32_t)(it / C::ST) & 1) ^ 1);
    mbar_expect_tx(full, C::KV_BYTES);
#pragma unroll
    for (int cb = 0; cb < C::HD / 64; cb++)
        tma_load(base + st * C::KV_BYTES + cb * C::BC * 128, &map, full, g + cb * 64,
                 (lo + it) * C::BC);
}

/* The producer's thread: Q once, then K and V of each tile as soon as its stage is free. */
template <class C>
__device__ void produce(const ws_params &p, const bars<C> &b, uint32_t q_addr, uint32_t row0,
                        uint32_t h, int lo, int n)
{
    const uint32_t k_addr = q_addr + C::Q_BYTES, v_addr = k_addr + C::ST * C::KV_BYTES;
    const int g = (int)(h / p.a.group) * C::HD;
    mbar_expect_tx(b.q(), C::Q_BYTES);
#pragma unroll
    for (int cb = 0; cb < C::HD / 64; cb++)
        tma_load(q_addr + cb * C::BR * 128, &p.tq, b.q(), (int)h * C::HD + cb * 64, (int)row0);
    /* in the order the consumers take them: K(0), then K(it) before V(it - 1) */
    for (int it = 0; it <= n; it++) {
        if (it < n) load_tile<C>(p.tk, b.fk(it % C::ST), b.ek(it % C::ST), k_addr, g, lo, it);
        if (it > 0)
            load_tile<C>(p.tv, b.fv((it - 1) % C::ST), b.ev((it - 1) % C::ST), v_addr, g, lo,
                         it - 1);
    }
}

/* A split's partial result: O / l (zero where no key was seen) and the LSE (-inf there). */
template <int HD>
__device__ void store_part(const float *o, const float *m, const float *l, const ws_params &p,
                           uint32_t row, uint32_t h, uint32_t sp)
{
    const attn_args &a = p.a;
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        float s = l[hf];
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        float inv = s > 0 ? 1.0f / s : 0.0f;
        uint32_t r = row + hf * 8;
        if (r >= a.c) continue;
        uint64_t rh = ((uint64_t)sp * a.c + r) * a.n_heads + h;
        if ((lane & 3) == 0) p.part_lse[rh] = s > 0 ? lse_of(m[hf], s) : -INFINITY;
        float *dst = p.part_o + rh * HD + (lane & 3) * 2;
#pragma unroll
        for (int bb = 0; bb < HD / 8; bb++)
            *(float2 *)(dst + bb * 8) =
                make_float2(o[4 * bb + 2 * hf] * inv, o[4 * bb + 2 * hf + 1] * inv);
    }
}

/* A ring block's result in float, written or (acc) merged by LSE into what is there; a row that
 * saw no key gets output 0 and LSE -inf (acc: stays as it was). Lane 4g reads the old LSE for
 * its quad and hands it over, so that no lane reads it after another wrote it. */
template <int HD>
__device__ void store32(const float *o, const float *m, const float *l, const ws_params &p,
                        uint32_t row, uint32_t h)
{
    const attn_args &a = p.a;
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        float s = l[hf];
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        const uint32_t r = row + hf * 8;
        float *lp = a.lse + r * p.lses + h, old = -INFINITY;
        if (p.acc && r < a.c && (lane & 3) == 0) old = *lp;
        old = __shfl_sync(0xffffffffu, old, lane & ~3);
        if (r >= a.c || (p.acc && s == 0)) continue;
        float lse = s > 0 ? lse_of(m[hf], s) : -INFINITY, wn = s > 0 ? 1.0f / s : 0.0f, wo = 0;
        if (old != -INFINITY) { /* acc with an earlier block that saw keys */
            const float mx = fmaxf(old, lse), eo = __expf(old - mx), en = __expf(lse - mx);
            const float inv = 1.0f / (eo + en);
            wo = eo * inv, wn *= en * inv, lse = mx + __logf(eo + en);
        }
        float *dst = p.o32 + r * p.o32s + h * HD + (lane & 3) * 2;
#pragma unroll
        for (int bb = 0; bb < HD / 8; bb++) {
            float2 v = make_float2(o[4 * bb + 2 * hf] * wn, o[4 * bb + 2 * hf + 1] * wn);
            if (wo != 0) {
                const float2 w = *(const float2 *)(dst + bb * 8);
                v.x += wo * w.x, v.y += wo * w.y;
            }
            *(float2 *)(dst + bb * 8) = v;
        }
        if ((lane & 3) == 0) *lp = lse;
    }
}

/* A consumer warpgroup cw: its 64 rows against tiles [lo, lo + n). Barrier 1 + cw is its turn
 * to issue GEMMs; it hands the turn to the next warpgroup once its GEMMs are issued. */
template <class C>
__device__ void consume(const ws_params &p, const bars<C> &b, uint32_t q_addr, uint32_t row0,
                        uint32_t h, int lo, int n, int cw)
{
    constexpr int HD = C::HD, BC = C::BC, ST = C::ST;
    const attn_args &a = p.a;
    const uint32_t k_addr = q_addr + C::Q_BYTES, v_addr = k_addr + ST * C::KV_BYTES;
    const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, next = 1 + (cw + 1) % C::NC;
    const bool leader = (threadIdx.x & 127) == 0;
    const uint32_t my_row = row0 + cw * 64 + warp * 16 + (lane >> 2);
    const uint32_t wq0 = a.s + row0 + cw * 64, wq1 = wq0 + 63, qpos = a.s + my_row;
    float o[HD / 2], sc[BC / 2], m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0}, alpha[2];
    uint32_t pf[BC / 16][4];
#pragma unroll
    for (int i = 0; i < HD / 2; i++) o[i] = 0;
    mbar_wait(b.q(), 0);
    if (cw == 0) bar_arrive(1); /* the first turn is warpgroup 0's */
    mbar_wait(b.fk(0), 0);
    bar_sync(1 + cw);
    scores_issue<HD, C>(sc, q_addr, k_addr, cw);
    bar_arrive(next);
    wg_wait<0>();
    if (leader) mbar_arrive(b.ek(0));
    pin<BC / 2>(sc);
    softmax<C>(sc, m, l, alpha, (uint32_t)lo * BC, qpos, a, true, a.scale_log2);
    pack_p<C>(pf, sc);
    for (int it = 1; it < n; it++) {
        const int st = it % ST, pst = (it - 1) % ST;
        const uint32_t key0 = (uint32_t)(lo + it) * BC;
        mbar_wait(b.fk(st), (uint32_t)(it / ST) & 1);
        bar_sync(1 + cw);
        scores_issue<HD, C>(sc, q_addr, k_addr + st * C::KV_BYTES, cw);
        rescale<HD>(o, alpha);
        mbar_wait(b.fv(pst), (uint32_t)((it - 1) / ST) & 1);
        pv_issue<HD, C>(o, pf, v_addr + pst * C::KV_BYTES, 0);
        bar_arrive(next);
        wg_wait<1>(); /* S(it) done, P V may still run */
        if (leader) mbar_arrive(b.ek(st));
        pin<BC / 2>(sc);
        softmax<C>(sc, m, l, alpha, key0, qpos, a, attn_tile_masked(a, key0, BC, wq0, wq1),
                   a.scale_log2);
        wg_wait<0>();
        if (leader) mbar_arrive(b.ev(pst));
        pin<HD / 2>(o);
        pack_p<C>(pf, sc);
    }
    const int pst = (n - 1) % ST;
    mbar_wait(b.fv(pst), (uint32_t)((n - 1) / ST) & 1);
    bar_sync(1 + cw);
    rescale<HD>(o, alpha);
    pv_issue<HD, C>(o, pf, v_addr + pst * C::KV_BYTES, 0);
    if (cw != C::NC - 1) bar_arrive(next); /* the last turn is nobody's */
    wg_wait<0>();
    pin<HD / 2>(o);
    if (gridDim.z > 1)
        store_part<HD>(o, m, l, p, my_row, h, blockIdx.z);
    else if (p.o32)
        store32<HD>(o, m, l, p, my_row, h);
    else
        store<HD>(o, m, l, a, my_row, h);
}

template <class C>
__global__ void __launch_bounds__(C::THREADS, 1) ws_kernel(const __grid_constant__ ws_params p)
{
    extern __shared__ unsigned char raw[];
    const uint32_t q_addr = smem_addr(raw + ((1024 - (smem_addr(raw) & 1023)) & 1023));
    const bars<C> b = {q_addr + C::Q_BYTES + 2 * C::ST * C::KV_BYTES};
    const int wg = threadIdx.x >> 7;
    uint32_t rb, h;
    block_order(p.a, C::HD, &rb, &h);
    const uint32_t row0 = rb * C::BR;
    int lo, hi;
    attn_tiles(p.a, row0, C::BR, C::BC, &lo, &hi);
    split_range(&lo, &hi, blockIdx.z, gridDim.z);
    if (threadIdx.x == 0) {
        mbar_init(b.q(), 1);
        for (int st = 0; st < C::ST; st++) {
            mbar_init(b.fk(st), 1), mbar_init(b.fv(st), 1);
            mbar_init(b.ek(st), C::NC), mbar_init(b.ev(st), C::NC);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    if (wg == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
        if (threadIdx.x == 0 && hi > lo) produce<C>(p, b, q_addr, row0, h, lo, hi - lo);
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(C::REGS));
    if (hi > lo) {
        consume<C>(p, b, q_addr, row0, h, lo, hi - lo, wg - 1);
        return;
    }
    if (gridDim.z == 1 && !p.o32) return; /* (never: a prefill block sees its own keys) */
    /* an empty split, or a ring block's rows that see no key */
    const float o0[C::HD / 2] = {}, m0[2] = {-INFINITY, -INFINITY}, l0[2] = {0, 0};
    const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const uint32_t my_row = row0 + (wg - 1) * 64 + warp * 16 + (lane >> 2);
    if (gridDim.z > 1)
        store_part<C::HD>(o0, m0, l0, p, my_row, h, blockIdx.z);
    else
        store32<C::HD>(o0, m0, l0, p, my_row, h);
}

/* Merges the n_split partials of each (row, head): weights exp(lse_i - max). One thread per
 * four output columns. */
template <int HD>
__global__ void merge_kernel(const float *part_o, const float *part_lse, bf16 *out, uint64_t os,
                             float *lse, uint32_t c, uint32_t n_heads, int n_split)
{
    uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x, rows = (uint64_t)c * n_heads;
    if (i >= rows * (HD / 4)) return;
    const uint64_t rh = i / (HD / 4);
    const int d = (int)(i % (HD / 4)) * 4;
    float mx = -INFINITY, w = 0;
    for (int sp = 0; sp < n_split; sp++) mx = fmaxf(mx, part_lse[sp * rows + rh]);
    float4 acc = make_float4(0, 0, 0, 0);
    for (int sp = 0; sp < n_split; sp++) {
        float e = part_lse[sp * rows + rh];
        float f = e == -INFINITY ? 0.0f : __expf(e - mx);
        float4 v = *(const float4 *)(part_o + (sp * rows + rh) * HD + d);
        acc.x += f * v.x, acc.y += f * v.y, acc.z += f * v.z, acc.w += f * v.w;
        w += f;
    }
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
    float mx = -INFINITY, w = 0, old = -INFINITY;
    if (acc && d == 0) old = lse[r * lses + h];
    old = __shfl_sync(gmask, old, 0, G);
    for (int sp = 0; sp < n_split; sp++) mx = fmaxf(mx, part_lse[sp * rows + rh]);
    float4 a4 = make_float4(0, 0, 0, 0);
    for (int sp = 0; sp < n_split; sp++) {
        float e = part_lse[sp * rows + rh];
        float f = e == -INFINITY ? 0.0f : __expf(e - mx);
        float4 v = *(const float4 *)(part_o + (sp * rows + rh) * HD + d);
        a4.x += f * v.x, a4.y += f * v.y, a4.z += f * v.z, a4.w += f * v.w;
        w += f;
    }
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

/* A [rows][cols] bf16 matrix of row stride `stride` elements, read in boxes of 64 x box_rows
 * with the 128-byte swizzle; rows past the end read as zeros. */
bool tensor_map(CUtensorMap *m, const void *base, uint64_t cols, uint64_t rows, uint64_t stride,
                uint32_t box_rows)
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

/* Splits so that the grid fills the SMs: the fewest whose wave efficiency is within 85% of the
 * best (as FlashAttention-2's heuristic), at most 16 and at least 2 tiles each. */
int auto_splits(uint64_t blocks, int max_tiles)
{
    static int n_sm = 0;
    if (!n_sm) {
        int d = 0;
        if (cudaGetDevice(&d) || cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, d))
            n_sm = 132;
    }
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
float *workspace(size_t bytes)
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

template <class C> int launch(ws_params &p, int n_split, void *stream)
{
    const attn_args &a = p.a;
    const uint32_t n_rb = (a.c + C::BR - 1) / C::BR;
    int lo, hi;
    attn_tiles(a, (n_rb - 1) * C::BR, C::BR, C::BC, &lo, &hi);
    if (n_split <= 0) {
        /* at most KVR_ATTN_WORKSPACE_BYTES of partials */
        uint64_t per = (uint64_t)a.c * a.n_heads * (C::HD + 1) * sizeof(float);
        int cap = (int)(KVR_ATTN_WORKSPACE_BYTES / per);
        n_split = max(1, min(cap, auto_splits((uint64_t)n_rb * a.n_heads, hi - lo)));
    }
    if (n_split > 1) {
        size_t rows = (size_t)n_split * a.c * a.n_heads;
        float *w = workspace(rows * (C::HD + 1) * sizeof(float));
        if (!w) return (int)cudaErrorMemoryAllocation;
        p.part_o = w, p.part_lse = w + rows * C::HD;
    }
    cudaError_t e =
        cudaFuncSetAttribute(ws_kernel<C>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);
    if (e != cudaSuccess) return (int)e;
    dim3 grid(n_rb, a.n_heads, n_split);
    ws_kernel<C><<<grid, C::THREADS, C::SMEM, STREAM(stream)>>>(p);
    if (n_split == 1 || (e = cudaGetLastError())) return (int)e;
    uint64_t threads = (uint64_t)a.c * a.n_heads * (C::HD / 4);
    if (p.o32)
        merge32_kernel<C::HD><<<(unsigned)((threads + 255) / 256), 256, 0, STREAM(stream)>>>(
            p.part_o, p.part_lse, p.o32, p.o32s, p.a.lse, p.lses, a.c, a.n_heads, n_split, p.acc);
    else
        merge_kernel<C::HD><<<(unsigned)((threads + 255) / 256), 256, 0, STREAM(stream)>>>(
            p.part_o, p.part_lse, p.a.o, a.os, a.lse, a.c, a.n_heads, n_split);
    return launched();
}

/* Shapes: head_dim 128, 2 consumer warpgroups (128 rows), 128-key tiles, 2 stages (160 KB);
 * head_dim 64, the same with 3 stages, or 3 consumer warpgroups (192 rows, 160 registers). */
typedef wcfg<128, 2, 128, 2> ws128;
typedef wcfg<64, 2, 128, 3> ws64;
typedef wcfg<64, 3, 128, 3> ws64x3;

} // namespace

extern "C" int kvr_cu_attention_ws(const void *q, uint64_t q_stride, const void *k, const void *v,
                                   uint64_t kv_stride, void *out, uint64_t out_stride, uint32_t s,
                                   uint32_t c, uint32_t n_heads, uint32_t n_kv, uint32_t hd,
                                   int dense, uint32_t window, float *lse, int n_split,
                                   int n_consumers, void *stream)
{
    const bool x3 = n_consumers == 3;
    ws_params p = {};
    if (!make_attn_args(&p.a, q, q_stride, k, v, kv_stride, out, out_stride, s, c, n_heads, n_kv,
                        hd, dense, window, lse) ||
        (hd != 64 && hd != 128) || n_split > 64 || (x3 && hd != 64) || n_consumers == 1 ||
        n_consumers > 3)
        return (int)cudaErrorInvalidValue;
    if (c == 0) return 0;
    const uint32_t br = hd == 128 ? ws128::BR : x3 ? ws64x3::BR : ws64::BR, bc = 128;
    /* where TMA cannot read the matrices (alignment), the cp.async kernel does the same work */
    if (!tensor_map(&p.tq, q, (uint64_t)n_heads * hd, c, q_stride, br) ||
        !tensor_map(&p.tk, k, (uint64_t)n_kv * hd, s + c, kv_stride, bc) ||
        !tensor_map(&p.tv, v, (uint64_t)n_kv * hd, s + c, kv_stride, bc))
        return kvr_cu_attention_sm90(q, q_stride, k, v, kv_stride, out, out_stride, s, c, n_heads,
                                     n_kv, hd, dense, window, lse, 0, hd == 64, stream);
    if (hd == 128) return launch<ws128>(p, n_split, stream);
    return x3 ? launch<ws64x3>(p, n_split, stream) : launch<ws64>(p, n_split, stream);
}

/* A block of ring attention on the warp-specialised kernel (kvr_cuda_ring.h). */
extern "C" int kvr_cu_attention_block(const struct kvr_cu_attn_block *b, void *stream)
{
    ws_params p = {};
    const uint32_t hd = b->hd;
    if (!make_attn_args(&p.a, b->q, b->q_stride, b->k, b->v, b->kv_stride, NULL, 0, b->q0, b->nq,
                        b->n_heads, b->n_kv, hd, 0, b->window, b->lse) ||
        (hd != 64 && hd != 128) || !b->o || !b->lse || b->nk == 0 || b->n_split < 0 ||
        b->n_split > 64 || b->o_stride % 4 || ((uintptr_t)b->o & 15))
        return (int)cudaErrorInvalidValue;
    if (b->nq == 0) return 0;
    p.a.k0 = b->k0, p.a.nk = b->nk;
    p.o32 = b->o, p.o32s = b->o_stride, p.lses = b->lse_stride, p.acc = b->accumulate;
    const uint32_t br = hd == 128 ? ws128::BR : ws64x3::BR;
    if (!tensor_map(&p.tq, b->q, (uint64_t)b->n_heads * hd, b->nq, b->q_stride, br) ||
        !tensor_map(&p.tk, b->k, (uint64_t)b->n_kv * hd, b->nk, b->kv_stride, 128) ||
        !tensor_map(&p.tv, b->v, (uint64_t)b->n_kv * hd, b->nk, b->kv_stride, 128))
        return (int)cudaErrorNotSupported; /* TMA cannot read them: the caller's plain kernel */
    return hd == 128 ? launch<ws128>(p, b->n_split, stream) : launch<ws64x3>(p, b->n_split, stream);
}
