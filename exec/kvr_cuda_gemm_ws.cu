/* A warp-specialised GEMM on Hopper (sm_90a) with the epilogues cuBLASLt lacks:
 * out = in[rows][k] W[n][k]^T with bf16 out, float out += (the residual add), or SwiGLU of the
 * gate and up halves of W written as one bf16 activation (the MLP's up projection and its
 * activation in one pass, the up projection's output never stored).
 *  - Persistent: one block per SM, in clusters of two; a cluster takes pairs of 128 x 256 tiles
 *    on adjacent rows and the same columns in a fixed order (groups of 16 row tiles whose rows
 *    stay in L2 while the column tiles sweep past).
 *  - A producer warpgroup's first thread loads its block's A (128 x 64) and one half of the
 *    pair's B (256 x 64) into ST stages with the bulk tensor copy engine (128-byte swizzle), the
 *    B half multicast to both blocks: B crosses L2 once per pair, which is what L2's bandwidth
 *    needs at this tile size. Each stage has a full mbarrier and an empty one that the consumers
 *    of both blocks release (a block's B half lands in its peer too).
 *  - Two consumer warpgroups take 64 rows each with m64n256k16 wgmma, one k-step in flight
 *    while the next is issued. The epilogue goes through shared memory, a box of 64 rows x 128
 *    bytes at a time, and TMA stores it (the float accumulate: adds it in L2) while the
 *    warpgroup starts its next tile: the tensor cores wait only for the writes to shared memory.
 *  - SwiGLU: the tile's B is 128 gate rows and the matching 128 up rows, so each thread holds
 *    a gate column and its up column (8 j + 2 q and 128 + 8 j + 2 q) side by side.
 *  - Rotary (the QKV projection): a tile is 2 or 4 whole heads of Q, K or V, and each thread
 *    holds a dimension and its rotate-half partner (head_dim / 2 on); Q and K rotate in
 *    registers, and the boxes go to Q's columns of QKV, the K cache or the V cache.
 *  - The last round's split (split-K of the tail): where the pairs left after the full rounds
 *    would fill at most half of the clusters, each is split into S <= 4 ranges of k-steps, one
 *    per cluster of that round; the first S - 1 write their float partials to a scratch buffer
 *    and count themselves on a flag, the last adds them in order (deterministic) and runs the
 *    epilogue. Llama-7B's up projection at 2k: 688 pairs on 66 clusters, 10 full rounds and 28
 *    pairs, so the last round takes half a tile's time instead of a whole one. Only a last part
 *    waits, and the parts it waits for are on clusters of lower index (part-major order),
 *    dispatched before it and never waiting themselves: the wait ends, as stream-K's does. That
 *    rests on clusters being dispatched in index order when not all fit at once (another
 *    kernel or MPS holding SMs), which CUDA does not promise and CUTLASS's serial split-K
 *    assumes too; KVR_GEMM_SPLIT=0 runs without it.
 * cuBLAS stays the reference and the choice where timing finds it faster (kvr_cuda_gemm.c). */
#include <cuda.h> /* CUtensorMap */

#include "kvr_cuda_attn_host.cuh"
#include "kvr_cuda_common.cuh"
#include "kvr_cuda_kernels.h"
#include "kvr_cuda_sync.cuh"
#include "kvr_cuda_wgmma.cuh"

namespace
{

constexpr int BM = 128, BN = 256, BK = 64, ST = 4, THREADS = 384;
constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE = A_BYTES + B_BYTES;
constexpr int EPI_BOX = 64 * 128;      /* an epilogue box: 64 rows x 128 bytes */
constexpr int EPI_BYTES = 4 * EPI_BOX; /* two boxes per consumer warpgroup, used in turn */
constexpr int SMEM = ST * STAGE + EPI_BYTES + 1024 + 16 * ST;
constexpr uint32_t GROUP_M = 16; /* row tiles swept together: 2048 rows of A at k = 4096, 16 MB */
constexpr uint32_t SPLIT_MAX = 4, SPLIT_MIN_K = 4; /* parts of a tail pair; k-steps per part */
constexpr uint32_t PART_FLOATS = 128 * 128;        /* a consumer warpgroup's 64 x 256 floats */

struct gemm_params {
    CUtensorMap ta, tb, to;    /* in, W, out (rotary: Q's columns of QKV) */
    CUtensorMap tk, tv;        /* rotary: the K and V caches' rows of the chunk */
    const float *rope;         /* rotary: cos, sin float2 [rows][hd / 2], or NULL */
    uint32_t rows;             /* out's rows */
    uint32_t q_tiles, k_tiles; /* rotary: column tiles of Q, then of K (then V's) */
    uint32_t hd;               /* rotary: head_dim, 64 or 128 */
    uint32_t n_mp, n_n, n_k;   /* tiles: row pairs, columns, k-steps */
    uint32_t b_second;         /* the row of W's second 128-row box, from the first's */
    uint32_t b_step;           /* W rows per column tile: 256, or SwiGLU's 128 gate rows */
    int epi;                   /* enum kvr_gemm_epi */
    uint32_t full;             /* pairs run whole; the tail pairs after them, split */
    uint32_t tail, split;      /* tail pairs and parts per pair (1: no split, tail 0) */
    float *part;               /* the split's partials: [tail][split - 1][2 blocks][2 wg][..] */
    unsigned *flags;           /* per tail pair, block and warpgroup: parts written; 0 at rest */
};

/* A work unit: pair t over k-steps [k0, k1); part of split (split 1: the whole pair), slot its
 * tail pair's index. */
struct unit {
    uint32_t t, k0, k1, part, slot;
};

/* Work w: the pairs [0, full) whole, then the tail's parts, part-major so that the parts of one
 * pair fall on different clusters of the last round. */
__device__ __forceinline__ unit unit_of(const gemm_params &p, uint32_t w)
{
    if (w < p.full) return unit{w, 0, p.n_k, 0, 0};
    const uint32_t u = w - p.full, part = u / p.tail, slot = u % p.tail;
    return unit{p.full + slot, part * p.n_k / p.split, (part + 1) * p.n_k / p.split, part, slot};
}

__device__ __forceinline__ uint32_t n_work(const gemm_params &p)
{
    return p.full + p.tail * p.split;
}

/* Pair t's row tile pair and column tile: groups of GROUP_M / 2 pairs, columns inside a group;
 * block `rank` of the cluster takes row tile 2 m + rank. */
__device__ __forceinline__ void tile_of(const gemm_params &p, uint32_t t, uint32_t *m, uint32_t *n)
{
    const uint32_t g = GROUP_M / 2, per = g * p.n_n, g0 = t / per * g;
    const uint32_t gm = min(g, p.n_mp - g0), r = t - g0 * p.n_n;
    *m = 2 * (g0 + r % gm) + cluster_rank(), *n = r / gm;
}

/* The cluster's pairs: t = cluster, cluster + clusters, ... */
__device__ __forceinline__ uint32_t first_pair()
{
    return blockIdx.x / 2;
}

__device__ __forceinline__ uint32_t pair_step()
{
    return gridDim.x / 2;
}

__device__ __forceinline__ uint32_t full_bar(uint32_t bars, int st)
{
    return bars + 8 * st;
}

__device__ __forceinline__ uint32_t empty_bar(uint32_t bars, int st)
{
    return bars + 8 * (ST + st);
}

/* The producer's thread: every k-step of every tile of the block, into the stages in turn; a
 * stage is free once the consumers of both blocks have released it. */
__device__ void produce(const gemm_params &p, uint32_t base, uint32_t bars)
{
    const uint32_t n = n_work(p), rank = cluster_rank();
    uint32_t it = 0;
    for (uint32_t w = first_pair(); w < n; w += pair_step()) {
        const unit un = unit_of(p, w);
        uint32_t mt, nt;
        tile_of(p, un.t, &mt, &nt);
        const int row = (int)(mt * BM), wrow = (int)(nt * p.b_step + rank * p.b_second);
        for (uint32_t kt = un.k0; kt < un.k1; kt++, it++) {
            const int st = (int)(it % ST);
            const uint32_t a = base + st * STAGE, b = a + A_BYTES + rank * (B_BYTES / 2);
            if (it >= ST) mbar_wait(empty_bar(bars, st), ((it / ST) & 1) ^ 1);
            mbar_expect_tx(full_bar(bars, st), STAGE);
            const int x = (int)(kt * BK);
            tma_load(a, &p.ta, full_bar(bars, st), x, row);
            tma_load_multicast(b, &p.tb, full_bar(bars, st), x, wrow, 3);
        }
    }
}

/* One k-step of a consumer warpgroup: its 64 rows of A against the stage's 256 rows of B. */
__device__ __forceinline__ void mma_step(float *d, uint32_t a, uint32_t b, int cw)
{
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < BK / 16; kk++)
        wgmma_ss_n256(d, desc(a + cw * 64 * 128 + kk * 32, 16, 1024), desc(b + kk * 32, 16, 1024),
                      1);
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

/* The hardware reciprocal: the epilogue is exposed, and IEEE division cost more than its store. */
__device__ __forceinline__ float silu_mul(float g, float u)
{
    return __fdividef(g, 1.0f + __expf(-g)) * u;
}

/* Shared-memory address of byte b of row r in a box with the 128-byte swizzle (16-byte chunk
 * c of row r at chunk c ^ (r % 8): the 8 rows of a warp's store hit different banks). */
__device__ __forceinline__ uint32_t swizzled(uint32_t box, uint32_t r, uint32_t b)
{
    return box + r * 128 + ((((b >> 4) ^ r) & 7) << 4) + (b & 15);
}

__device__ __forceinline__ void st_shared(uint32_t a, uint32_t v)
{
    asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a), "r"(v) : "memory");
}

__device__ __forceinline__ void st_shared(uint32_t a, float x, float y)
{
    asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(a), "f"(x), "f"(y) : "memory");
}

/* Box c of the tile's result into shared memory at box. Thread (warp w, lane g q) holds rows
 * 16 w + g and + 8 of the warpgroup's 64 and columns 8 j + 2 q and + 1 (d[4 j ..], rows apart
 * by 2); a box is 64 bf16 columns (j in [8 c, 8 c + 8)) or 32 floats ([4 c, 4 c + 4)). */
template <int EPI> __device__ __forceinline__ void box_write(uint32_t box, const float *d, int c)
{
    const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const uint32_t r0 = warp * 16 + (lane >> 2), q = lane & 3;
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const uint32_t r = r0 + hf * 8;
        if (EPI == KVR_GEMM_EPI_F32_ACC) {
#pragma unroll
            for (int jj = 0; jj < 4; jj++) {
                const float *v = d + 4 * (4 * c + jj) + 2 * hf;
                st_shared(swizzled(box, r, 32 * jj + 8 * q), v[0], v[1]);
            }
        } else {
#pragma unroll
            for (int jj = 0; jj < 8; jj++) {
                const float *v = d + 4 * (8 * c + jj) + 2 * hf;
                uint32_t w;
                if (EPI == KVR_GEMM_EPI_SWIGLU) /* the gate's column and its up column, BN / 2 on */
                    w = pack_bf16(silu_mul(v[0], v[4 * (BN / 16)]),
                                  silu_mul(v[1], v[4 * (BN / 16) + 1]));
                else
                    w = pack_bf16(v[0], v[1]);
                st_shared(swizzled(box, r, 16 * jj + 4 * q), w);
            }
        }
    }
}

/* The warpgroup's 64 rows of the tile, box after box through its two boxes in turn (slot
 * counts them over the tiles): a box is rewritten once the store two before it has read it. */
template <int EPI>
__device__ void store(const CUtensorMap *map, int x0, const float *d, uint32_t mt, int cw,
                      uint32_t boxes, uint32_t *slot)
{
    constexpr int N_BOX = EPI == KVR_GEMM_EPI_F32_ACC ? 8 : EPI == KVR_GEMM_EPI_SWIGLU ? 2 : 4;
    constexpr int BOX_COLS = EPI == KVR_GEMM_EPI_F32_ACC ? 32 : 64;
    const bool leader = (threadIdx.x & 127) == 0;
    const int y = (int)(mt * BM + cw * 64);
#pragma unroll
    for (int c = 0; c < N_BOX; c++, (*slot)++) {
        const uint32_t box = boxes + (2 * cw + (*slot & 1)) * EPI_BOX;
        if (leader) bulk_wait_read<1>();
        wg_bar_sync(1 + cw);
        box_write<EPI>(box, d, c);
        fence_proxy_async();
        wg_bar_sync(1 + cw);
        if (leader) {
            if (EPI == KVR_GEMM_EPI_F32_ACC)
                tma_store_add(map, box, x0 + c * BOX_COLS, y);
            else
                tma_store(map, box, x0 + c * BOX_COLS, y);
            bulk_commit();
        }
    }
}

/* Rotate-half of the tile's heads in registers: dimension i < HD / 2 of a head (column
 * 8 j + 2 q + e) with i + HD / 2 (j + HD / 16, the same thread), by the cos and sin of the
 * row's position (float4: dimensions i and i + 1). */
template <int HD>
__device__ __forceinline__ void rotate(const gemm_params &p, float *d, uint32_t mt, int cw)
{
    constexpr int JH = HD / 8; /* the j of one head */
    const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const uint32_t row = mt * BM + cw * 64 + warp * 16 + (lane >> 2) + hf * 8;
        if (row >= p.rows) continue;
        const float4 *cs = (const float4 *)(p.rope + (uint64_t)row * HD) + (lane & 3);
        float4 t[JH / 2];
#pragma unroll
        for (int jh = 0; jh < JH / 2; jh++) t[jh] = cs[4 * jh];
#pragma unroll
        for (int j = 0; j < BN / 8; j++) {
            if (j % JH >= JH / 2) continue;
            float *a = d + 4 * j + 2 * hf, *b = d + 4 * (j + JH / 2) + 2 * hf;
            const float4 r = t[j % JH];
            const float a0 = a[0], a1 = a[1];
            a[0] = a0 * r.x - b[0] * r.y, b[0] = b[0] * r.x + a0 * r.y;
            a[1] = a1 * r.z - b[1] * r.w, b[1] = b[1] * r.z + a1 * r.w;
        }
    }
}

/* The tile's epilogue: its boxes to out, or (rotary) Q and K rotated, each tile to its own
 * matrix. */
__device__ __forceinline__ void epilogue(const gemm_params &p, float *d, uint32_t mt, uint32_t nt,
                                         int cw, uint32_t boxes, uint32_t *slot)
{
    if (p.epi == KVR_GEMM_EPI_SWIGLU)
        return store<KVR_GEMM_EPI_SWIGLU>(&p.to, (int)(nt * (BN / 2)), d, mt, cw, boxes, slot);
    if (p.epi == KVR_GEMM_EPI_F32_ACC)
        return store<KVR_GEMM_EPI_F32_ACC>(&p.to, (int)(nt * BN), d, mt, cw, boxes, slot);
    if (p.epi != KVR_GEMM_EPI_ROPE)
        return store<KVR_GEMM_EPI_BF16>(&p.to, (int)(nt * BN), d, mt, cw, boxes, slot);
    const bool q = nt < p.q_tiles, k = !q && nt < p.q_tiles + p.k_tiles;
    if (p.rope && (q || k)) {
        if (p.hd == 64)
            rotate<64>(p, d, mt, cw);
        else
            rotate<128>(p, d, mt, cw);
    }
    const uint32_t t0 = q ? 0 : k ? p.q_tiles : p.q_tiles + p.k_tiles;
    store<KVR_GEMM_EPI_BF16>(q   ? &p.to
                             : k ? &p.tk
                                 : &p.tv,
                             (int)((nt - t0) * BN), d, mt, cw, boxes, slot);
}

/* A stage done with, to the empty barriers of both blocks of the cluster. */
__device__ __forceinline__ void release(uint32_t bars, int st)
{
    mbar_arrive_cluster(empty_bar(bars, st), 0);
    mbar_arrive_cluster(empty_bar(bars, st), 1);
}

/* The warpgroup's partial sums of a tail part, in its slab of the scratch buffer (element e of
 * thread i at e * 128 + i: each store a warpgroup's 512 contiguous bytes). */
__device__ __forceinline__ float *slab(const gemm_params &p, const unit &un, uint32_t part, int cw)
{
    const uint64_t s = ((uint64_t)(un.slot * (p.split - 1) + part) * 2 + cluster_rank()) * 2 + cw;
    return p.part + s * PART_FLOATS + (threadIdx.x & 127);
}

__device__ __forceinline__ unsigned *flag_of(const gemm_params &p, const unit &un, int cw)
{
    return p.flags + (un.slot * 2 + cluster_rank()) * 2 + cw;
}

/* A part before the last: its sums to the slab, then (all stored, then a release) counted. */
__device__ void put_part(const gemm_params &p, const unit &un, const float *d, int cw)
{
    float *s = slab(p, un, un.part, cw);
#pragma unroll
    for (int e = 0; e < 128; e++) __stcg(s + e * 128, d[e]);
    wg_bar_sync(1 + cw);
    if ((threadIdx.x & 127) == 0)
        asm volatile("fence.acq_rel.gpu;\n"
                     "red.relaxed.gpu.global.add.u32 [%0], 1;\n" ::"l"(flag_of(p, un, cw))
                     : "memory");
}

/* The last part: once the others are counted (acquire), their sums added in part order, and
 * the flag back to 0 for the next launch. */
__device__ void add_parts(const gemm_params &p, const unit &un, float *d, int cw)
{
    if ((threadIdx.x & 127) == 0) {
        unsigned *f = flag_of(p, un, cw), v = 0;
        for (;;) {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(f) : "memory");
            if (v >= p.split - 1) break;
            __nanosleep(64);
        }
        *f = 0;
    }
    wg_bar_sync(1 + cw);
    for (uint32_t j = 0; j + 1 < p.split; j++) {
        const float *s = slab(p, un, j, cw);
#pragma unroll
        for (int e = 0; e < 128; e++) d[e] += __ldcg(s + e * 128);
    }
}

/* A consumer warpgroup: each of the block's work units, k-step after k-step as the stages fill;
 * a stage is released once the k-step after it has been issued and it is done. */
__device__ void consume(const gemm_params &p, uint32_t base, uint32_t bars, int cw)
{
    const uint32_t n = n_work(p), boxes = base + ST * STAGE;
    const bool leader = (threadIdx.x & 127) == 0;
    uint32_t it = 0, slot = 0;
    float d[128];
    for (uint32_t w = first_pair(); w < n; w += pair_step()) {
        const unit un = unit_of(p, w);
#pragma unroll
        for (int i = 0; i < 128; i++) d[i] = 0;
        /* a trip count from 0: with kt from un.k0, ptxas serialises every wgmma (C7515, each
         * waits for the last) and the own GEMM ran 5% slower (tests/test_ptxas.sh) */
        const uint32_t nk = un.k1 - un.k0;
        for (uint32_t kt = 0; kt < nk; kt++, it++) {
            const int st = (int)(it % ST);
            mbar_wait(full_bar(bars, st), (it / ST) & 1);
            const uint32_t a = base + st * STAGE;
            mma_step(d, a, a + A_BYTES, cw);
            wg_wait<1>();
            if (kt > 0 && leader) release(bars, (int)((it - 1) % ST));
        }
        wg_wait<0>();
        if (leader) release(bars, (int)((it - 1) % ST));
        pin<128>(d);
        if (w >= p.full && un.part + 1 < p.split) {
            put_part(p, un, d, cw);
            continue;
        }
        if (w >= p.full) add_parts(p, un, d, cw);
        uint32_t mt, nt;
        tile_of(p, un.t, &mt, &nt);
        epilogue(p, d, mt, nt, cw, boxes, &slot);
    }
    if (leader) bulk_wait_all(); /* the boxes stay until read, the block until written */
}

__global__ void __launch_bounds__(THREADS, 1) gemm_kernel(const __grid_constant__ gemm_params p)
{
    extern __shared__ unsigned char raw[];
    const uint32_t base = smem_addr(raw + ((1024 - (smem_addr(raw) & 1023)) & 1023));
    const uint32_t bars = base + ST * STAGE + EPI_BYTES;
    const int wg = threadIdx.x >> 7;
    if (threadIdx.x == 0) {
        for (int st = 0; st < ST; st++) mbar_init(full_bar(bars, st), 1);
        for (int st = 0; st < ST; st++) mbar_init(empty_bar(bars, st), 4); /* 2 blocks x 2 */
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    cluster_sync(); /* the peer's barriers are ready before anything reaches them */
    if (wg == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
        if (threadIdx.x == 0) produce(p, base, bars);
    } else {
        asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
        consume(p, base, bars, wg - 1);
    }
    cluster_sync(); /* no block leaves while its peer may still write to it or arrive on it */
}

/* How many clusters of two fit on the current device at once (per device, asked once). */
int max_clusters(int *out)
{
    static int clusters_of[64];
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return (int)e;
    int &n = clusters_of[dev & 63];
    if (!n) {
        cudaLaunchConfig_t cfg = {};
        cudaLaunchAttribute attr[1];
        attr[0].id = cudaLaunchAttributeClusterDimension;
        attr[0].val.clusterDim.x = 2, attr[0].val.clusterDim.y = 1, attr[0].val.clusterDim.z = 1;
        cfg.blockDim = dim3(THREADS), cfg.dynamicSmemBytes = SMEM;
        cfg.attrs = attr, cfg.numAttrs = 1;
        cfg.gridDim = dim3(2 * (uint32_t)kvr_ws_sm_count());
        if ((e = cudaFuncSetAttribute(gemm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      SMEM)) != cudaSuccess ||
            (e = cudaOccupancyMaxActiveClusters(&n, gemm_kernel, &cfg)) != cudaSuccess)
            return (int)e;
        if (n < 1) return (int)cudaErrorNotSupported;
    }
    *out = n;
    return 0;
}

/* The last round's split on c clusters: the tail pairs (after the full rounds) split in S
 * parts where S of each fit the round (S * tail <= c), each part has SPLIT_MIN_K k-steps and
 * the scratch holds the partials; else every pair whole. */
void plan_split(gemm_params *p, uint32_t c, const struct kvr_gemm_scratch *sc)
{
    const uint32_t pairs = p->n_mp * p->n_n, tail = pairs % c;
    p->full = pairs, p->tail = 0, p->split = 1;
    if (!sc || !sc->part || !sc->flags || !tail || 4ull * tail > sc->n_flags) return;
    uint32_t s = min(SPLIT_MAX, min(c / tail, p->n_k / SPLIT_MIN_K));
    while (s >= 2 && (uint64_t)tail * (s - 1) * 4 * PART_FLOATS * 4 > sc->part_bytes) s--;
    if (s < 2) return;
    p->full = pairs - tail, p->tail = tail, p->split = s;
    p->part = (float *)sc->part, p->flags = sc->flags;
}

/* The kernel on p's tiles: clusters of two, as many as fit at once (at most one per unit). */
int launch(gemm_params &p, const struct kvr_gemm_scratch *sc, void *stream)
{
    int c = 0, e = max_clusters(&c);
    if (e) return e;
    plan_split(&p, (uint32_t)c, sc);
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = 2, attr[0].val.clusterDim.y = 1, attr[0].val.clusterDim.z = 1;
    cfg.blockDim = dim3(THREADS), cfg.dynamicSmemBytes = SMEM, cfg.stream = STREAM(stream);
    cfg.attrs = attr, cfg.numAttrs = 1;
    cfg.gridDim = dim3(2 * min(p.full + p.tail * p.split, (uint32_t)c));
    return (int)cudaLaunchKernelEx(&cfg, gemm_kernel, p);
}

/* p's tile counts for rows x n_out at depth k (SwiGLU: n_out / 128 tiles of gate and up). */
void tiles(gemm_params *p, uint64_t rows, uint32_t n_out, uint64_t k, bool swiglu)
{
    const uint32_t n_m = (uint32_t)((rows + BM - 1) / BM);
    p->rows = (uint32_t)rows, p->n_mp = (n_m + 1) / 2, p->n_k = (uint32_t)(k / BK);
    p->n_n = swiglu ? n_out / (BN / 2) : (n_out + BN - 1) / BN;
    p->b_step = swiglu ? BN / 2 : BN, p->b_second = swiglu ? n_out : BN / 2;
}

} // namespace

extern "C" int kvr_cu_gemm_ws_supports(uint64_t rows, uint64_t n, uint64_t k, int epi)
{
    if (!rows || !n || !k || k % BK || rows > 0x7fffffffu || n > 0x7fffffffu || k > 0x7fffffffu)
        return 0;
    if (epi == KVR_GEMM_EPI_SWIGLU) return n % BN == 0; /* whole gate and up tiles */
    return epi == KVR_GEMM_EPI_BF16 || epi == KVR_GEMM_EPI_F32_ACC ? n % 8 == 0 : 0;
}

extern "C" int kvr_cu_gemm_ws(void *out, int epi, const void *in, const void *w, uint64_t rows,
                              uint64_t n, uint64_t k, const struct kvr_gemm_scratch *sc,
                              void *stream)
{
    if (!kvr_cu_gemm_ws_supports(rows, n, k, epi)) return (int)cudaErrorInvalidValue;
    gemm_params p = {};
    const bool swiglu = epi == KVR_GEMM_EPI_SWIGLU;
    const uint32_t n_out = (uint32_t)(swiglu ? n / 2 : n);
    if (!kvr_ws_tensor_map(&p.ta, in, k, rows, k, BM) ||
        !kvr_ws_tensor_map(&p.tb, w, k, n, k, BN / 2) ||
        !kvr_ws_store_map(&p.to, out, epi == KVR_GEMM_EPI_F32_ACC, n_out, rows, n_out))
        return (int)cudaErrorNotSupported;
    p.epi = epi;
    tiles(&p, rows, n_out, k, swiglu);
    return launch(p, sc, stream);
}

extern "C" int kvr_cu_gemm_ws_split(uint64_t rows, uint64_t n, uint64_t k, int epi,
                                    const struct kvr_gemm_scratch *sc)
{
    if (!kvr_cu_gemm_ws_supports(rows, n, k, epi)) return 0;
    gemm_params p = {};
    int c = 0;
    const bool swiglu = epi == KVR_GEMM_EPI_SWIGLU;
    tiles(&p, rows, (uint32_t)(swiglu ? n / 2 : n), k, swiglu);
    if (max_clusters(&c)) return 0;
    plan_split(&p, (uint32_t)c, sc);
    return (int)p.split;
}

extern "C" int kvr_cu_gemm_ws_rope_supports(uint64_t rows, uint64_t k,
                                            const struct kvr_gemm_rope *r)
{
    const uint64_t q = (uint64_t)r->n_heads * r->hd, kv = (uint64_t)r->n_kv * r->hd;
    return (r->hd == 64 || r->hd == 128) && q && kv && q % BN == 0 && kv % BN == 0 &&
           kvr_cu_gemm_ws_supports(rows, q + 2 * kv, k, KVR_GEMM_EPI_BF16);
}

extern "C" int kvr_cu_gemm_ws_rope(const struct kvr_gemm_rope *r, const void *in, const void *w,
                                   uint64_t rows, uint64_t k, const struct kvr_gemm_scratch *sc,
                                   void *stream)
{
    if (!kvr_cu_gemm_ws_rope_supports(rows, k, r)) return (int)cudaErrorInvalidValue;
    const uint32_t q = r->n_heads * r->hd, kv = r->n_kv * r->hd;
    gemm_params p = {};
    if (((uintptr_t)r->table & 15) || !kvr_ws_tensor_map(&p.ta, in, k, rows, k, BM) ||
        !kvr_ws_tensor_map(&p.tb, w, k, q + 2 * kv, k, BN / 2) ||
        !kvr_ws_store_map(&p.to, r->q, false, q, rows, r->q_ld) ||
        !kvr_ws_store_map(&p.tk, r->k_cache, false, kv, rows, kv) ||
        !kvr_ws_store_map(&p.tv, r->v_cache, false, kv, rows, kv))
        return (int)cudaErrorNotSupported;
    p.epi = KVR_GEMM_EPI_ROPE, p.rope = (const float *)r->table, p.hd = r->hd;
    p.q_tiles = q / BN, p.k_tiles = kv / BN;
    tiles(&p, rows, q + 2 * kv, k, false);
    return launch(p, sc, stream);
}
