/* Flash attention on Hopper tensor cores (wgmma, sm_90a), FlashAttention-3 style without warp
 * specialisation: a block of NWG warpgroups owns 64 NWG query rows of one head (64 per
 * warpgroup) and walks key tiles of BC = 128. K and V are triple-buffered in shared memory by
 * cp.async in the 128-byte-swizzled layout that wgmma reads through descriptors:
 *   S = Q K^T   both operands K-major in shared memory (m64n128k16, 8 or 4 k-steps);
 *   O += P V    P from registers (its accumulator layout is wgmma's A-fragment layout), V
 *               N-major ("transposed") in shared memory (m64n{HD}k16, 8 k-steps).
 * Tiles are stored [HD/64 column blocks][rows][64], each 64-element (128-byte) row with its
 * 16-byte chunks XOR-ed by (row % 8): the hardware's 128B swizzle, atoms of 8 rows (1024 B). */
#include <math.h>

#include "kvr_cuda_common.cuh"
#include "kvr_cuda_kernels.h"
#include "kvr_cuda_wgmma.cuh"

namespace
{

/* A kernel shape: NWG warpgroups of 64 query rows, key tiles of BC, three stages. */
template <int NWG_, int BC_> struct cfg {
    static constexpr int NWG = NWG_, BC = BC_, BR = 64 * NWG_, THREADS = 128 * NWG_, STAGES = 3;
};

template <int HD, class C> constexpr int smem_bytes()
{
    return (C::BR + 2 * C::STAGES * C::BC) * HD * 2 +
           1024; /* Q, K and V stages, 1024 B alignment */
}

/* Element offset of (row r, column k) in a swizzled [HD/64][rows][64] tile. */
__device__ __forceinline__ int sw128(int r, int k, int rows)
{
    return (k >> 6) * rows * 64 + r * 64 + ((((k >> 3) & 7) ^ (r & 7)) << 3);
}

/* Rows [row0, row0 + ROWS) of a [n][stride] matrix into a swizzled tile (rows >= n are zero).
 * Each thread always copies the same 16-byte column chunk of rows r0, r0 + STEP, ...: STEP is a
 * multiple of 8, so the swizzle (row % 8) is the same for all of them and the addresses are a
 * base plus a constant step (the address arithmetic was a quarter of the kernel's time). */
template <int HD, int ROWS, int THREADS>
__device__ __forceinline__ void load_sw(bf16 *tile, const bf16 *src, uint64_t stride, uint32_t row0,
                                        uint32_t n)
{
    constexpr int CH = HD / 8, STEP = THREADS / CH;
    static_assert(STEP % 8 == 0 && ROWS % STEP == 0, "tile shape");
    const int r0 = threadIdx.x / CH, k = threadIdx.x % CH * 8;
    const uint32_t s = smem_addr(tile + sw128(r0, k, ROWS));
    const bf16 *g = src + (uint64_t)(row0 + r0) * stride + k;
    if (row0 + ROWS <= n) {
#pragma unroll
        for (int u = 0; u < ROWS / STEP; u++)
            cp_async16(s + u * STEP * 128, g + u * STEP * stride, 16);
        return;
    }
#pragma unroll
    for (int u = 0; u < ROWS / STEP; u++) {
        bool ok = row0 + r0 + u * STEP < n;
        cp_async16(s + u * STEP * 128, ok ? g + u * STEP * stride : src, ok ? 16 : 0);
    }
}

struct tiles {
    bf16 *q, *k, *v; /* Q, then STAGES K tiles and STAGES V tiles */
    const bf16 *kg, *vg;
    uint64_t stride;
    uint32_t kv_end;
};

/* Loads key tile j into stage (j - lo) % STAGES and commits one cp.async group (empty past the
 * end, so that the group count stays one per tile). */
template <int HD, class C>
__device__ __forceinline__ void load_kv(const tiles &t, int j, int lo, int n_tiles)
{
    if (j < n_tiles) {
        int st = (j - lo) % C::STAGES;
        load_sw<HD, C::BC, C::THREADS>(t.k + st * C::BC * HD, t.kg, t.stride, (uint32_t)j * C::BC,
                                       t.kv_end);
        load_sw<HD, C::BC, C::THREADS>(t.v + st * C::BC * HD, t.vg, t.stride, (uint32_t)j * C::BC,
                                       t.kv_end);
    }
    cp_commit();
}

/* Every cp.async group issued so far has landed and is visible to the tensor cores. */
__device__ __forceinline__ void tile_ready()
{
    cp_wait<0>();
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
}

/* The loop overlaps each tile's softmax with the tensor cores: S(j) = Q K(j) and
 * O += P(j-1) V(j-1) are issued together, the softmax of S(j) runs while P V is in flight, and
 * O is rescaled once P V is done (FlashAttention-3, intra-warpgroup overlap). */
template <int HD, class C>
__global__ void __launch_bounds__(C::THREADS, C::NWG == 1 ? 2 : 1)
    hopper_kernel(attn_args a, int vswap)
{
    constexpr int BC = C::BC, BR = C::BR, STAGES = C::STAGES;
    extern __shared__ unsigned char raw[];
    bf16 *sQ = (bf16 *)(raw + ((1024 - (smem_addr(raw) & 1023)) & 1023));
    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const uint32_t row0 = (gridDim.x - 1 - blockIdx.x) * BR, h = blockIdx.y;
    const uint32_t kv_end = a.s + a.c, wq0 = a.s + row0 + wg * 64, wq1 = wq0 + 63;
    int lo, n;
    attn_tiles(a, row0, BR, BC, &lo, &n); /* tiles [lo, n) */
    const tiles t = {sQ,
                     sQ + BR * HD,
                     sQ + BR * HD + STAGES * BC * HD,
                     a.k + (h / a.group) * HD,
                     a.v + (h / a.group) * HD,
                     a.kvs,
                     kv_end};
    const uint32_t my_row = row0 + wg * 64 + warp * 16 + (lane >> 2), q_addr = smem_addr(sQ);

    load_sw<HD, BR, C::THREADS>(sQ, a.q + h * HD, a.qs, row0, a.c);
    load_kv<HD, C>(t, lo, lo, n); /* Q travels in the first tile's group */
    float o[HD / 2], sc[BC / 2], m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0}, alpha[2];
    uint32_t p[BC / 16][4];
#pragma unroll
    for (int i = 0; i < HD / 2; i++) o[i] = 0;
    tile_ready();
    load_kv<HD, C>(t, lo + 1, lo, n);
    scores_issue<HD, C>(sc, q_addr, smem_addr(t.k), wg);
    wg_wait<0>();
    pin<BC / 2>(sc);
    softmax<C>(sc, m, l, alpha, (uint32_t)lo * BC, a.s + my_row, a, true, a.scale_log2);
    pack_p<C>(p, sc);
    for (int j = lo + 1; j < n; j++) {
        /* One barrier per tile: past it, tile j has landed and every warpgroup is done with
         * tile j-2, whose stage takes tile j+1 (loaded a whole tile ahead). */
        tile_ready();
        load_kv<HD, C>(t, j + 1, lo, n);
        const uint32_t key0 = (uint32_t)j * BC;
        const int st = (j - lo) % STAGES, pst = (j - 1 - lo) % STAGES;
        scores_issue<HD, C>(sc, q_addr, smem_addr(t.k + st * BC * HD), wg);
        pv_issue<HD, C>(o, p, smem_addr(t.v + pst * BC * HD), vswap);
        wg_wait<1>(); /* S(j) done, P(j-1) V(j-1) may still run */
        pin<BC / 2>(sc);
        bool need = attn_tile_masked(a, key0, BC, wq0, wq1);
        softmax<C>(sc, m, l, alpha, key0, a.s + my_row, a, need, a.scale_log2);
        wg_wait<0>();
        pin<HD / 2>(o);
        rescale<HD>(o, alpha);
        pack_p<C>(p, sc);
    }
    pv_issue<HD, C>(o, p, smem_addr(t.v + ((n - 1 - lo) % STAGES) * BC * HD), vswap);
    wg_wait<0>();
    pin<HD / 2>(o);
    store<HD>(o, m, l, a, my_row, h);
}

template <int HD, class C> int launch(const attn_args &a, uint32_t n_heads, int vswap, void *stream)
{
    cudaError_t e = cudaFuncSetAttribute(
        hopper_kernel<HD, C>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes<HD, C>());
    if (e != cudaSuccess) return (int)e;
    dim3 grid((a.c + C::BR - 1) / C::BR, n_heads);
    hopper_kernel<HD, C><<<grid, C::THREADS, smem_bytes<HD, C>(), STREAM(stream)>>>(a, vswap);
    return launched();
}

/* Shapes: 2 warpgroups and 128-key tiles (one block per SM), or 1 warpgroup and 64-key tiles
 * (two independent blocks per SM). */
typedef cfg<2, 128> wide;
typedef cfg<1, 64> narrow;

} // namespace

extern "C" int kvr_cu_attention_sm90(const void *q, uint64_t q_stride, const void *k, const void *v,
                                     uint64_t kv_stride, void *out, uint64_t out_stride, uint32_t s,
                                     uint32_t c, uint32_t n_heads, uint32_t n_kv, uint32_t hd,
                                     int dense, uint32_t window, float *lse, int vswap, int shape,
                                     void *stream)
{
    attn_args a;
    if (!make_attn_args(&a, q, q_stride, k, v, kv_stride, out, out_stride, s, c, n_heads, n_kv, hd,
                        dense, window, lse))
        return (int)cudaErrorInvalidValue;
    if (c == 0) return 0;
    bool nar = shape == 1;
    if (hd == 128)
        return nar ? launch<128, narrow>(a, n_heads, vswap, stream)
                   : launch<128, wide>(a, n_heads, vswap, stream);
    if (hd == 64)
        return nar ? launch<64, narrow>(a, n_heads, vswap, stream)
                   : launch<64, wide>(a, n_heads, vswap, stream);
    return (int)cudaErrorInvalidValue;
}
