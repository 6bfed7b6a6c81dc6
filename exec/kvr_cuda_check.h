/* One check macro per foreign API of the cuda backend: the error becomes a status with the
 * call, the library's own message, file and line. Internal to exec/ (C files only). */
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kvr_status.h"

#define KVR_CUDA_CHECK(call)                                                                       \
    KVR_FOREIGN_CHECK(cudaError_t, call, #call, cudaSuccess, "CUDA", cudaGetErrorString)

/* The cuda switches of the environment, KVR_ATTN_PERSIST and KVR_ATTN_LAZY among them, as
 * kvr_exec_env_read checks them; else an input error naming the one that is not. The attention
 * benchmarks check them before they launch. */
enum kvr_status kvr_cuda_attn_env_check(void);

/* The launchers of kvr_cuda_kernels.h return a cudaError_t as an int. */
#define KVR_LAUNCH_CHECK(call) KVR_CUDA_CHECK((cudaError_t)(call))

#define KVR_CUBLAS_CHECK(call)                                                                     \
    KVR_FOREIGN_CHECK(cublasStatus_t, call, #call, CUBLAS_STATUS_SUCCESS, "cuBLAS",                \
                      cublasGetStatusString)
