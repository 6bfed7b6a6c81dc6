/* Counter-based random numbers shared by the C reference and the CUDA kernels, so that every
 * backend draws bit-identical seeded weights and tokens wherever they are generated (host or
 * device). splitmix64 of (seed, stream, index): no state, any element in O(1). */
#pragma once

#include <stdint.h>

#ifdef __CUDACC__
#define KVR_HD __host__ __device__ __forceinline__
#else
#define KVR_HD static inline
#endif

KVR_HD uint64_t kvr_rng_mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 64 random bits for element `index` of stream `stream` under `seed`. */
KVR_HD uint64_t kvr_rng_bits(uint64_t seed, uint64_t stream, uint64_t index)
{
    return kvr_rng_mix(kvr_rng_mix(seed ^ kvr_rng_mix(stream)) + index);
}

/* Uniform in [-1, 1), exactly representable in float (24 bits). */
KVR_HD float kvr_rng_sym(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t u = (uint32_t)(kvr_rng_bits(seed, stream, index) >> 40); /* 24 bits */
    return (float)u * (1.0f / 8388608.0f) - 1.0f;
}

/* The seeded value of element `index`: offset + scale * kvr_rng_sym(seed, stream, index), the
 * one definition every backend fills seeded weights with (kvr_weights.c, the ref backend,
 * kvr_cuda_kernels.cu, kvr_cuda_tp.cu). The product and the sum are rounded apart on the
 * device as on the host (nvcc would fuse them into one FMA), so both give the same float. */
KVR_HD float kvr_rng_value(uint64_t seed, uint64_t stream, uint64_t index, float scale,
                           float offset)
{
#ifdef __CUDA_ARCH__
    return __fadd_rn(offset, __fmul_rn(scale, kvr_rng_sym(seed, stream, index)));
#else
    return offset + scale * kvr_rng_sym(seed, stream, index);
#endif
}
