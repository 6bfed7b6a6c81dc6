/* Launchers of the tensor-parallel kernels (kvr_cuda_tp.cu), callable from C. No CUDA types;
 * each returns its launch's cudaError_t as an int (0 = success). */
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A shard's slice of a seeded tensor: for i < rows, k < row_len,
 * dst[i dst_stride + k] = bf16(kvr_rng_value(seed, stream_id, src0 + i src_stride + k, scale,
 * offset)) (the full tensor's element indices, so the slice equals kvr_cu_fill_random's full
 * tensor there). */
int kvr_cu_fill_random_rows(void *dst, uint64_t rows, uint64_t row_len, uint64_t dst_stride,
                            uint64_t src0, uint64_t src_stride, uint64_t seed, uint64_t stream_id,
                            float scale, float offset, void *stream);

#ifdef __cplusplus
}
#endif
