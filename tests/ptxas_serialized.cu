/* A kernel that ptxas must find serialised (C7515): an accumulator written by a plain
 * instruction while its wgmma group is in flight. tests/test_ptxas.sh compiles it first, so that
 * a compiler which stopped saying so would fail the test instead of passing it blind. */
#include "kvr_cuda_wgmma.cuh"

__global__ void kvr_ptxas_serialized(float *out, uint32_t a, int n)
{
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; i++) d[i] = 0;
    for (int k = 0; k < n; k++) {
        wg_fence();
        wgmma_ss_n256(d, desc(a, 16, 1024), desc(a + 16384, 16, 1024), 1);
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        d[0] += 1.0f; /* the write that serialises the pipeline */
        wg_wait<1>();
    }
    wg_wait<0>();
#pragma unroll
    for (int i = 0; i < 128; i++) out[threadIdx.x * 128 + i] = d[i];
}
