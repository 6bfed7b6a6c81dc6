/* One check macro per foreign API of the cuda backend: the error becomes a status with the
 * call, the library's own message, file and line. Internal to exec/ (C files only). */
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kvr_status.h"

#define KVR_CUDA_CHECK(call)                                                                       \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            return kvr_error(KVR_ERR_RUNTIME, "%s:%d: CUDA: %s failed: %s", __FILE__, __LINE__,    \
                             #call, cudaGetErrorString(e_));                                       \
    } while (0)

/* The launchers of kvr_cuda_kernels.h return a cudaError_t as an int. */
#define KVR_LAUNCH_CHECK(call) KVR_CUDA_CHECK((cudaError_t)(call))

#define KVR_CUBLAS_CHECK(call)                                                                     \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                           \
            return kvr_error(KVR_ERR_RUNTIME, "%s:%d: cuBLAS: %s failed: %s", __FILE__, __LINE__,  \
                             #call, cublasGetStatusString(s_));                                    \
    } while (0)
