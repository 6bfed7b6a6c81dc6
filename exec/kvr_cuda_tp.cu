/* Tensor-parallel kernels (kvr_cuda_tp.h): the seeded slice of a shard on the device. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kvr_cuda_tp.h"
#include "kvr_rng.h"

__global__ void fill_rows_kernel(__nv_bfloat16 *dst, uint64_t rows, uint64_t row_len,
                                 uint64_t dst_stride, uint64_t src0, uint64_t src_stride,
                                 uint64_t seed, uint64_t sid, float scale, float offset)
{
    for (uint64_t x = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; x < rows * row_len;
         x += (uint64_t)gridDim.x * blockDim.x) {
        uint64_t i = x / row_len, k = x % row_len;
        dst[i * dst_stride + k] =
            __float2bfloat16(kvr_rng_value(seed, sid, src0 + i * src_stride + k, scale, offset));
    }
}

extern "C" int kvr_cu_fill_random_rows(void *dst, uint64_t rows, uint64_t row_len,
                                       uint64_t dst_stride, uint64_t src0, uint64_t src_stride,
                                       uint64_t seed, uint64_t stream_id, float scale, float offset,
                                       void *stream)
{
    uint64_t n = rows * row_len, blocks = (n + 255) / 256;
    if (!n) return 0;
    fill_rows_kernel<<<(unsigned)(blocks < 65535 * 16 ? blocks : 65535 * 16), 256, 0,
                       (cudaStream_t)stream>>>((__nv_bfloat16 *)dst, rows, row_len, dst_stride,
                                               src0, src_stride, seed, stream_id, scale, offset);
    return (int)cudaGetLastError();
}
