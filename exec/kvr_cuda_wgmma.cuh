/* wgmma wrappers for the Hopper kernels (attention, the GEMM): m64nNk16, bf16 in, fp32 out (128,
 * 64 or 32 fp32 accumulators per thread, one asm operand each: WG_ACC128 / WG_ACC64 / WG_ACC32). */
#pragma once
#include <stdint.h>

#include "kvr_cuda_common.cuh"

/* The accumulator operands of a wgmma: the warpgroup's 64 x N fp32 tile is N / 2 registers
 * a thread, the inline asm's read-write operands d[0 .. N / 2). */
#define WG_ACC32                                                                                   \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),            \
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),    \
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), \
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), \
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define WG_ACC64                                                                                   \
    WG_ACC32, "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]),        \
        "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), \
        "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), \
        "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), \
        "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
/* The same registers in the instruction: {%0, ..., %(N/2 - 1)}. */
#define WG_D32                                                                                     \
    "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%" \
    "25,%26,%27,%28,%29,%30,%31}"
#define WG_D64                                                                                     \
    "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%" \
    "25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%" \
    "48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}"

/* The 64 x 256 tile: 128 registers a thread (the GEMM, kvr_cuda_gemm_ws.cu). */
#define WG_ACC128                                                                                  \
    WG_ACC64, "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]),        \
        "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), \
        "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), \
        "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), \
        "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), \
        "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),          \
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]),        \
        "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]),        \
        "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]),        \
        "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
#define WG_D128                                                                                    \
    "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%" \
    "25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%" \
    "48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%" \
    "71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%" \
    "94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%"    \
    "113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}"

/* d (+)= A B^T for a 64 x 16 slice of A and a 256 x 16 slice of B, both K-major in shared
 * memory (the GEMM's tile). */
__device__ __forceinline__ void wgmma_ss_n256(float *d, uint64_t da, uint64_t db, int accumulate)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 " WG_D128
                 ", %128, %129, p, 1, 1, 0, 0;\n}\n"
                 : WG_ACC128
                 : "l"(da), "l"(db), "r"(accumulate));
}

__device__ __forceinline__ void wgmma_ss_n128(float *d, uint64_t da, uint64_t db, int accumulate)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " WG_D64
                 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : WG_ACC64
                 : "l"(da), "l"(db), "r"(accumulate));
}

__device__ __forceinline__ void wgmma_rs_n128_tb(float *d, const uint32_t *a, uint64_t db)
{
    asm volatile("{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " WG_D64
                 ", {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"
                 : WG_ACC64
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}

__device__ __forceinline__ void wgmma_ss_n64(float *d, uint64_t da, uint64_t db, int accumulate)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WG_D32
                 ", %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : WG_ACC32
                 : "l"(da), "l"(db), "r"(accumulate));
}

__device__ __forceinline__ void wgmma_rs_n64_tb(float *d, const uint32_t *a, uint64_t db)
{
    asm volatile("{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WG_D32
                 ", {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
                 : WG_ACC32
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}

/* The warpgroup-level pieces both Hopper kernels (kvr_cuda_attn_sm90.cu, kvr_cuda_attn_ws.cu)
 * are made of. C names the tile shape: C::BR query rows (64 per warpgroup), C::BC keys. Tiles
 * are [HD/64 column blocks][rows][64] with the 128-byte swizzle (what TMA's SWIZZLE_128B
 * writes). */
namespace
{

/* Shared-memory matrix descriptor, 128-byte swizzle. */
__device__ __forceinline__ uint64_t desc(uint32_t addr, uint32_t lbo, uint32_t sbo)
{
    return (uint64_t)((addr & 0x3FFFF) >> 4) | (uint64_t)((lbo >> 4) & 0x3FFF) << 16 |
           (uint64_t)((sbo >> 4) & 0x3FFF) << 32 | 1ull << 62;
}

__device__ __forceinline__ void wg_fence()
{
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

/* Keeps the compiler from touching accumulators before the wait above. */
template <int N> __device__ __forceinline__ void pin(float *d)
{
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}

/* Issues S = Q K^T (asynchronous: committed, not waited for). */
template <int HD, class C>
__device__ __forceinline__ void scores_issue(float *sc, uint32_t q_base, uint32_t k_base, int wg)
{
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
        /* k-step kk: 64-column block kk / 4, then 32 bytes per step inside the 128-byte row */
        uint32_t q = q_base + wg * 64 * 128 + (kk >> 2) * C::BR * 128 + (kk & 3) * 32;
        uint32_t k = k_base + (kk >> 2) * C::BC * 128 + (kk & 3) * 32;
        uint64_t da = desc(q, 16, 1024), db = desc(k, 16, 1024);
        if (C::BC == 128)
            wgmma_ss_n128(sc, da, db, kk > 0);
        else
            wgmma_ss_n64(sc, da, db, kk > 0);
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

template <int N> __device__ __forceinline__ void wg_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

/* P (fp32) packed to bf16 A fragments: its accumulator layout is wgmma's A layout. */
template <class C> __device__ __forceinline__ void pack_p(uint32_t (*a)[4], const float *p)
{
#pragma unroll
    for (int kk = 0; kk < C::BC / 16; kk++)
#pragma unroll
        for (int r = 0; r < 4; r++) a[kk][r] = pack_bf16(p[8 * kk + 2 * r], p[8 * kk + 2 * r + 1]);
}

/* Issues O += P V (asynchronous). */
template <int HD, class C>
__device__ __forceinline__ void pv_issue(float *o, const uint32_t (*a)[4], uint32_t v_base,
                                         int vswap)
{
    uint32_t lbo = vswap ? 1024 : C::BC * 128, sbo = vswap ? C::BC * 128 : 1024;
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < C::BC / 16; kk++) {
        uint64_t db = desc(v_base + kk * 16 * 128, lbo, sbo);
        if (HD == 128)
            wgmma_rs_n128_tb(o, a[kk], db);
        else
            wgmma_rs_n64_tb(o, a[kk], db);
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

/* Causal mask and online softmax over one tile; sc becomes P, alpha the factor that O must
 * be rescaled by (once the previous P V is done). Rows g and g+8 of the warp. */
template <class C>
__device__ __forceinline__ void softmax(float *sc, float *m, float *l, float *alpha, uint32_t key0,
                                        uint32_t qpos, const attn_args &a, bool mask, float sl2)
{
    const int lane = threadIdx.x & 31;
    if (mask)
#pragma unroll
        for (int i = 0; i < C::BC / 2; i++) {
            uint32_t key = key0 + (i >> 2) * 8 + (lane & 3) * 2 + (i & 1);
            uint32_t q = qpos + ((i >> 1) & 1) * 8;
            if (attn_masked(a, key, q)) sc[i] = -INFINITY;
        }
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        float mx = -INFINITY;
#pragma unroll
        for (int b = 0; b < C::BC / 8; b++)
            mx = fmaxf(mx, fmaxf(sc[4 * b + 2 * hf], sc[4 * b + 2 * hf + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        float m_new = fmaxf(m[hf], mx * sl2);
        if (!(m_new > m[hf] + a.lazy_log2)) m_new = m[hf]; /* lazy: alpha is exactly 1 */
        const float m_off = max_offset(m_new);
        float sum = 0;
        alpha[hf] = ex2(m[hf] - m_off);
        m[hf] = m_new;
#pragma unroll
        for (int b = 0; b < C::BC / 8; b++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                float p = ex2(sc[4 * b + 2 * hf + e] * sl2 - m_off);
                sc[4 * b + 2 * hf + e] = p;
                sum += p;
            }
        l[hf] = l[hf] * alpha[hf] + sum;
    }
}

/* O's rows times alpha; skipped when the whole warp's factors are 1 (lazy rescaling's usual
 * case, a warp-uniform branch). */
template <int HD> __device__ __forceinline__ void rescale(float *o, const float *alpha)
{
    if (__all_sync(0xffffffffu, alpha[0] == 1.0f && alpha[1] == 1.0f)) return;
#pragma unroll
    for (int b = 0; b < HD / 8; b++)
#pragma unroll
        for (int hf = 0; hf < 2; hf++)
            o[4 * b + 2 * hf] *= alpha[hf], o[4 * b + 2 * hf + 1] *= alpha[hf];
}

template <int HD>
__device__ __forceinline__ void store(const float *o, const float *m, const float *l,
                                      const attn_args &a, uint32_t row, uint32_t h)
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const float s = quad_sum(l[hf]);
        float inv = 1.0f / s;
        uint32_t r = row + hf * 8;
        if (r >= a.c) continue;
        if (a.lse && (lane & 3) == 0) a.lse[r * a.n_heads + h] = lse_of(m[hf], s);
        bf16 *dst = a.o + r * a.os + h * HD + (lane & 3) * 2;
#pragma unroll
        for (int b = 0; b < HD / 8; b++)
            *(uint32_t *)(dst + b * 8) =
                pack_bf16(o[4 * b + 2 * hf] * inv, o[4 * b + 2 * hf + 1] * inv);
    }
}

} // namespace
