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
 *  - A work item is a (row block, head, split). Plain grid: one item per block. Persistent: one
 *    block per SM takes items from a counter in the blocks' order (longest first), and its
 *    producer loads the next item's Q and first tiles while the consumers finish the last one,
 *    so a block's start (launch, Q, the first tile) and its store hide behind work.
 * Key tiles wholly outside the causal mask or the sliding window are never loaded. */
#include <cuda.h> /* CUtensorMap and its enums; the encoder comes through the runtime */
#include <math.h>

#include "kvr_cuda_attn_host.cuh"
#include "kvr_cuda_common.cuh"
#include "kvr_cuda_kernels.h"
#include "kvr_cuda_ring.h"
#include "kvr_cuda_sync.cuh"
#include "kvr_cuda_wgmma.cuh"

namespace
{

template <int HD_, int NC_, int BC_, int ST_> struct wcfg {
    static constexpr int HD = HD_, NC = NC_, BC = BC_, ST = ST_, BR = 64 * NC_;
    static constexpr int THREADS = 128 * (NC_ + 1), Q_BYTES = BR * HD * 2, KV_BYTES = BC * HD * 2;
    static constexpr int SMEM = Q_BYTES + 2 * ST * KV_BYTES + 1024 + 8 * (2 + 4 * ST);
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
    /* the work: n_items = n_rb x n_heads x n_split; persistent: taken from ctr[0], ctr[1] counts
     * the blocks that found none left (the last resets both for the next launch) */
    uint32_t n_rb, n_split, n_items;
    unsigned *ctr;
};

/* Part sp of n_split of the tiles [lo, hi). */
__device__ __forceinline__ void split_range(int *lo, int *hi, int sp, int n_split)
{
    int per = (*hi - *lo + n_split - 1) / n_split, l = *lo + sp * per;
    *hi = min(*hi, l + per), *lo = l;
}

/* The blocks' order, longest first across a group of heads whose keys and values fit in L2
 * together: block b of the n_rb x n_heads of a split runs row block *rb of head *h. A group of G
 * consecutive heads runs its longest row blocks first (one per head), then the next longest, so
 * that the SMs run out of work together (a short context has few, uneven blocks per head); the
 * group's K and V (2 x keys x HD x 2 bytes per KV head, G heads sharing a KV head count once)
 * stay within L2_GROUP_BYTES, so at 32k (16 MB per MHA head) G = 1: head after head. */
#define L2_GROUP_BYTES (16u << 20)

__device__ __forceinline__ void block_order(const attn_args &a, uint32_t hd, uint32_t n_rb,
                                            uint32_t b, uint32_t *rb, uint32_t *h)
{
    const uint32_t fit = L2_GROUP_BYTES / (4 * hd) / (a.s + a.c) * a.group; /* heads */
    const uint32_t g = max(1u, min(fit, a.n_heads)), g0 = b / (g * n_rb) * g;
    const uint32_t gl = min(g, a.n_heads - g0), r = b - g0 * n_rb;
    *rb = n_rb - 1 - r / gl, *h = g0 + r % gl;
}

/* Barrier addresses: full Q, empty Q, then full K, full V, empty K, empty V for each stage. */
template <class C> struct bars {
    uint32_t base;
    __device__ uint32_t q() const
    {
        return base;
    }
    __device__ uint32_t qe() const
    {
        return base + 8;
    }
    __device__ uint32_t fk(int st) const
    {
        return base + 8 * (2 + st);
    }
    __device__ uint32_t fv(int st) const
    {
        return base + 8 * (2 + C::ST + st);
    }
    __device__ uint32_t ek(int st) const
    {
        return base + 8 * (2 + 2 * C::ST + st);
    }
    __device__ uint32_t ev(int st) const
    {
        return base + 8 * (2 + 3 * C::ST + st);
    }
};

#define NO_ITEM 0xffffffffu

/* A work item: its rows, head, split and key tiles [lo, hi). */
struct ws_item {
    uint32_t row0, h, z;
    int lo, hi;
};

template <class C> __device__ __forceinline__ ws_item item_of(const ws_params &p, uint32_t w)
{
    ws_item it;
    const uint32_t per = p.n_rb * p.a.n_heads, b = w % per;
    uint32_t rb;
    it.z = w / per;
    block_order(p.a, C::HD, p.n_rb, b, &rb, &it.h);
    it.row0 = rb * C::BR;
    attn_tiles(p.a, it.row0, C::BR, C::BC, &it.lo, &it.hi);
    split_range(&it.lo, &it.hi, (int)it.z, (int)p.n_split);
    return it;
}

/* The producer's next item: the block's own (plain grid, k = 0), or the counter's next. A
 * persistent block that finds none left counts itself; the last one resets the counters. */
__device__ __forceinline__ uint32_t next_item(const ws_params &p, int k)
{
    if (!p.ctr) return k == 0 ? blockIdx.x : NO_ITEM;
    uint32_t w = atomicAdd(&p.ctr[0], 1u);
    if (w < p.n_items) return w;
    __threadfence();
    if (atomicAdd(&p.ctr[1], 1u) == gridDim.x - 1)
        atomicExch(&p.ctr[0], 0u), atomicExch(&p.ctr[1], 0u);
    return NO_ITEM;
}

/* The block's t-th tile of K or V (key tile kt) into its stage once every consumer has
 * released the stage's previous tile; t counts on across the block's items. */
template <class C>
__device__ __forceinline__ void load_tile(const CUtensorMap &map, const bars<C> &b, bool v,
                                          uint32_t base, int g, int kt, uint32_t t)
{
    const int st = (int)(t % C::ST);
    const uint32_t full = v ? b.fv(st) : b.fk(st), empty = v ? b.ev(st) : b.ek(st);
    if (t >= C::ST) mbar_wait(empty, ((t / C::ST) & 1) ^ 1);
    mbar_expect_tx(full, C::KV_BYTES);
#pragma unroll
    for (int cb = 0; cb < C::HD / 64; cb++)
        tma_load(base + st * C::KV_BYTES + cb * C::BC * 128, &map, full, g + cb * 64, kt * C::BC);
}

/* The producer's thread, item after item: once the consumers are done with Q (the empty Q
 * barrier), the item (persistent: into the block's global words, which the full Q barrier's
 * release and acquire order, so no generic shared-memory word is handed over by an mbarrier
 * alone) and its Q, then K and V of each tile as soon as its stage is free. An item without
 * tiles, or the end, is the full Q barrier without bytes. */
template <class C> __device__ void produce(const ws_params &p, const bars<C> &b, uint32_t q_addr)
{
    const uint32_t k_addr = q_addr + C::Q_BYTES, v_addr = k_addr + C::ST * C::KV_BYTES;
    uint32_t t = 0;
    for (int k = 0;; k++) {
        if (k > 0) mbar_wait(b.qe(), (uint32_t)(k - 1) & 1);
        const uint32_t w = next_item(p, k);
        const ws_item it = w == NO_ITEM ? ws_item{} : item_of<C>(p, w);
        const int n = it.hi - it.lo, g = (int)(it.h / p.a.group) * C::HD;
        if (p.ctr) {
            volatile unsigned *hand = p.ctr + 2 + 2 * blockIdx.x;
            hand[0] = w, hand[1] = t;
        }
        if (n <= 0) {
            mbar_arrive(b.q());
            if (w == NO_ITEM) return;
            continue;
        }
        mbar_expect_tx(b.q(), C::Q_BYTES);
#pragma unroll
        for (int cb = 0; cb < C::HD / 64; cb++)
            tma_load(q_addr + cb * C::BR * 128, &p.tq, b.q(), (int)it.h * C::HD + cb * 64,
                     (int)it.row0);
        /* in the order the consumers take them: K(0), then K(j) before V(j - 1) */
        for (int j = 0; j <= n; j++) {
            if (j < n) load_tile<C>(p.tk, b, false, k_addr, g, it.lo + j, t + j);
            if (j > 0) load_tile<C>(p.tv, b, true, v_addr, g, it.lo + j - 1, t + j - 1);
        }
        t += (uint32_t)n;
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
        const float s = quad_sum(l[hf]);
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
        const float s = quad_sum(l[hf]);
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

/* A consumer warpgroup cw: its 64 rows of item it against its n tiles, the block's tiles t0..
 * Barrier 1 + cw is its turn to issue GEMMs; it hands the turn to the next warpgroup once its
 * GEMMs are issued (the last warpgroup back to the first, also across items). Once its last
 * S = Q K^T is done it releases Q (the empty Q barrier), so that the next item's Q can land. */
template <class C>
__device__ void consume(const ws_params &p, const bars<C> &b, uint32_t q_addr, uint32_t w,
                        uint32_t t0, int cw)
{
    const ws_item it = item_of<C>(p, w);
    constexpr int HD = C::HD, BC = C::BC, ST = C::ST;
    const attn_args &a = p.a;
    const uint32_t k_addr = q_addr + C::Q_BYTES, v_addr = k_addr + ST * C::KV_BYTES;
    const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, next = 1 + (cw + 1) % C::NC;
    const int n = it.hi - it.lo;
    const bool leader = (threadIdx.x & 127) == 0;
    const uint32_t my_row = it.row0 + cw * 64 + warp * 16 + (lane >> 2);
    const uint32_t wq0 = a.s + it.row0 + cw * 64, wq1 = wq0 + 63, qpos = a.s + my_row;
    float o[HD / 2], sc[BC / 2], m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0}, alpha[2];
    uint32_t pf[BC / 16][4];
#pragma unroll
    for (int i = 0; i < HD / 2; i++) o[i] = 0;
    mbar_wait(b.fk(t0 % ST), (t0 / ST) & 1);
    bar_sync(1 + cw);
    scores_issue<HD, C>(sc, q_addr, k_addr + (t0 % ST) * C::KV_BYTES, cw);
    bar_arrive(next);
    wg_wait<0>();
    if (leader) mbar_arrive(b.ek(t0 % ST));
    pin<BC / 2>(sc);
    softmax<C>(sc, m, l, alpha, (uint32_t)it.lo * BC, qpos, a, true, a.scale_log2);
    pack_p<C>(pf, sc);
    for (int j = 1; j < n; j++) {
        const uint32_t t = t0 + j, st = t % ST, pst = (t - 1) % ST;
        const uint32_t key0 = (uint32_t)(it.lo + j) * BC;
        mbar_wait(b.fk(st), (t / ST) & 1);
        bar_sync(1 + cw);
        scores_issue<HD, C>(sc, q_addr, k_addr + st * C::KV_BYTES, cw);
        rescale<HD>(o, alpha);
        mbar_wait(b.fv(pst), ((t - 1) / ST) & 1);
        pv_issue<HD, C>(o, pf, v_addr + pst * C::KV_BYTES, 0);
        bar_arrive(next);
        wg_wait<1>(); /* S(j) done, P V may still run */
        if (leader) mbar_arrive(b.ek(st));
        pin<BC / 2>(sc);
        softmax<C>(sc, m, l, alpha, key0, qpos, a, attn_tile_masked(a, key0, BC, wq0, wq1),
                   a.scale_log2);
        wg_wait<0>();
        if (leader) mbar_arrive(b.ev(pst));
        pin<HD / 2>(o);
        pack_p<C>(pf, sc);
    }
    if (leader) mbar_arrive(b.qe()); /* every S = Q K^T is done */
    const uint32_t tl = t0 + n - 1, pst = tl % ST;
    mbar_wait(b.fv(pst), (tl / ST) & 1);
    bar_sync(1 + cw);
    rescale<HD>(o, alpha);
    pv_issue<HD, C>(o, pf, v_addr + pst * C::KV_BYTES, 0);
    bar_arrive(next);
    wg_wait<0>();
    if (leader) mbar_arrive(b.ev(pst));
    pin<HD / 2>(o);
    const ws_item e = item_of<C>(p, w); /* recomputed: fewer registers live through the loop */
    const uint32_t row = e.row0 + cw * 64 + warp * 16 + (lane >> 2);
    if (p.n_split > 1)
        store_part<HD>(o, m, l, p, row, e.h, e.z);
    else if (p.o32)
        store32<HD>(o, m, l, p, row, e.h);
    else
        store<HD>(o, m, l, a, row, e.h);
}

/* An item without tiles: an empty split, or a ring block's rows that see no key (a prefill
 * block always sees its own keys). */
template <class C> __device__ void store_empty(const ws_params &p, const ws_item &it, int cw)
{
    const float o0[C::HD / 2] = {}, m0[2] = {-INFINITY, -INFINITY}, l0[2] = {0, 0};
    const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const uint32_t my_row = it.row0 + cw * 64 + warp * 16 + (lane >> 2);
    if (p.n_split > 1)
        store_part<C::HD>(o0, m0, l0, p, my_row, it.h, it.z);
    else if (p.o32)
        store32<C::HD>(o0, m0, l0, p, my_row, it.h);
}

/* A consumer warpgroup, item after item as the producer hands them over, until its end. The first
 * warpgroup's first turn is its own; at the end it takes the last handed turn back, so that
 * every named barrier's arrivals are matched. */
template <class C>
__device__ void consumer_loop(const ws_params &p, const bars<C> &b, uint32_t q_addr, int cw)
{
    const bool leader = (threadIdx.x & 127) == 0;
    if (cw == 0) bar_arrive(1);
    for (int k = 0;; k++) {
        mbar_wait(b.q(), (uint32_t)k & 1);
        uint32_t w = k == 0 ? blockIdx.x : NO_ITEM, t = 0; /* the plain grid's one item */
        if (p.ctr) {
            const volatile unsigned *hand = p.ctr + 2 + 2 * blockIdx.x;
            w = hand[0], t = hand[1];
        }
        if (w == NO_ITEM) break;
        const ws_item it = item_of<C>(p, w);
        if (it.hi <= it.lo) {
            if (leader) mbar_arrive(b.qe());
            store_empty<C>(p, it, cw);
            continue;
        }
        consume<C>(p, b, q_addr, w, t, cw);
    }
    if (cw == 0) bar_sync(1);
}

template <class C>
__global__ void __launch_bounds__(C::THREADS, 1) ws_kernel(const __grid_constant__ ws_params p)
{
    extern __shared__ unsigned char raw[];
    const uint32_t q_addr = smem_addr(raw + ((1024 - (smem_addr(raw) & 1023)) & 1023));
    const bars<C> b = {q_addr + C::Q_BYTES + 2 * C::ST * C::KV_BYTES};
    const int wg = threadIdx.x >> 7;
    if (threadIdx.x == 0) {
        mbar_init(b.q(), 1), mbar_init(b.qe(), C::NC);
        for (int st = 0; st < C::ST; st++) {
            mbar_init(b.fk(st), 1), mbar_init(b.fv(st), 1);
            mbar_init(b.ek(st), C::NC), mbar_init(b.ev(st), C::NC);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    if (wg == 0) {
        /* 24: what the consumers' 240 leave (an 8-byte spill in the producer's tile loop) */
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
        if (threadIdx.x == 0) produce<C>(p, b, q_addr);
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(C::REGS));
    consumer_loop<C>(p, b, q_addr, wg - 1);
}

template <class C> int launch(ws_params &p, int n_split, int persist, void *stream)
{
    const attn_args &a = p.a;
    const uint32_t n_rb = (a.c + C::BR - 1) / C::BR;
    int lo, hi;
    attn_tiles(a, (n_rb - 1) * C::BR, C::BR, C::BC, &lo, &hi);
    if (n_split <= 0) {
        /* at most KVR_ATTN_WORKSPACE_BYTES of partials */
        uint64_t per = (uint64_t)a.c * a.n_heads * (C::HD + 1) * sizeof(float);
        int cap = (int)(KVR_ATTN_WORKSPACE_BYTES / per);
        n_split = max(1, min(cap, kvr_ws_auto_splits((uint64_t)n_rb * a.n_heads, hi - lo)));
    }
    if (n_split > 1) {
        size_t rows = (size_t)n_split * a.c * a.n_heads;
        float *w = kvr_ws_workspace(rows * (C::HD + 1) * sizeof(float));
        if (!w) return (int)cudaErrorMemoryAllocation;
        p.part_o = w, p.part_lse = w + rows * C::HD;
    }
    cudaError_t e =
        cudaFuncSetAttribute(ws_kernel<C>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);
    if (e != cudaSuccess) return (int)e;
    p.n_rb = n_rb, p.n_split = (uint32_t)n_split;
    p.n_items = n_rb * a.n_heads * (uint32_t)n_split;
    p.ctr = kvr_ws_persist(persist, p.n_items) ? kvr_ws_counters(stream) : NULL;
    const uint32_t grid =
        p.ctr ? min(min(p.n_items, (uint32_t)kvr_ws_sm_count()), (uint32_t)KVR_WS_MAX_BLOCKS)
              : p.n_items;
    ws_kernel<C><<<grid, C::THREADS, C::SMEM, STREAM(stream)>>>(p);
    e = cudaGetLastError(); /* the launch's own error */
    if (e || n_split == 1) return (int)e;
    if (p.o32)
        return kvr_ws_merge32(C::HD, p.part_o, p.part_lse, p.o32, p.o32s, p.a.lse, p.lses, a.c,
                              a.n_heads, n_split, p.acc, stream);
    return kvr_ws_merge(C::HD, p.part_o, p.part_lse, p.a.o, a.os, a.lse, a.c, a.n_heads, n_split,
                        stream);
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
                                   int n_consumers, int persist, void *stream)
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
    if (!kvr_ws_tensor_map(&p.tq, q, (uint64_t)n_heads * hd, c, q_stride, br) ||
        !kvr_ws_tensor_map(&p.tk, k, (uint64_t)n_kv * hd, s + c, kv_stride, bc) ||
        !kvr_ws_tensor_map(&p.tv, v, (uint64_t)n_kv * hd, s + c, kv_stride, bc))
        return kvr_cu_attention_sm90(q, q_stride, k, v, kv_stride, out, out_stride, s, c, n_heads,
                                     n_kv, hd, dense, window, lse, 0, hd == 64, stream);
    if (hd == 128) return launch<ws128>(p, n_split, persist, stream);
    return x3 ? launch<ws64x3>(p, n_split, persist, stream)
              : launch<ws64>(p, n_split, persist, stream);
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
    if (!kvr_ws_tensor_map(&p.tq, b->q, (uint64_t)b->n_heads * hd, b->nq, b->q_stride, br) ||
        !kvr_ws_tensor_map(&p.tk, b->k, (uint64_t)b->n_kv * hd, b->nk, b->kv_stride, 128) ||
        !kvr_ws_tensor_map(&p.tv, b->v, (uint64_t)b->n_kv * hd, b->nk, b->kv_stride, 128))
        return (int)cudaErrorNotSupported; /* TMA cannot read them: the caller's plain kernel */
    return hd == 128 ? launch<ws128>(p, b->n_split, -1, stream)
                     : launch<ws64x3>(p, b->n_split, -1, stream);
}
