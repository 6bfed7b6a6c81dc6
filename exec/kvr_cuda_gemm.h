/* The cuda backend's GEMMs (internal to exec/, C): out[rows][n] (+)= in[rows][k] W[n][k]^T in
 * bf16 with fp32 accumulation, out bf16 or float32. Each shape's algorithm is chosen once, by
 * timing: cublasGemmEx's default against the algorithms cuBLASLt's heuristic offers with the
 * workspace, and the own warp-specialised kernel; one is kept only when it is at least 2% faster.
 * No CUDA types: handles and streams are void *. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvr_status.h"

struct kvr_cu_gemm;
struct kvr_gemm_rope; /* kvr_cuda_kernels.h */

/* blas is the backend's cublasHandle_t (on stream), workspace its cuBLAS workspace. tune false:
 * always cublasGemmEx (the plain path). own (with tune), the warp-specialised kernel
 * (kvr_cuda_gemm_ws.cu): 0 never, 1 a candidate kept when at least 2% faster than cuBLAS's
 * choice, 2 wherever it takes the shape (the sanitizers' runs). split: the own kernel may split
 * its last round's pairs over k (kvr_cuda_gemm_ws.cu), its partials in workspace. */
enum kvr_status kvr_cu_gemm_open(struct kvr_cu_gemm **out, void *blas, void *stream,
                                 void *workspace, size_t ws_bytes, bool tune, int own, bool split);
void kvr_cu_gemm_close(struct kvr_cu_gemm *g);

/* The GEMM. The first call of a shape times the candidates: on out itself (accumulate false) or
 * on scratch (accumulate: at least rows * n * 4 bytes the call may overwrite, else no tuning). */
enum kvr_status kvr_cu_gemm(struct kvr_cu_gemm *g, void *out, bool out_f32, const void *in,
                            const void *w, uint64_t rows, uint64_t n, uint64_t k, bool accumulate,
                            void *scratch, size_t scratch_bytes);

/* ACT[rows][ffn] = silu(in W_gate^T) * (in W_up^T), W = [gate; up] [2 ffn][k]: the own
 * kernel's SwiGLU epilogue where timing at the shape's first call found it at least 2% faster
 * than the GEMM into up followed by the activation kernel (*fused true); else that GEMM alone
 * (*fused false: up holds its output, and the caller runs the activation). */
enum kvr_status kvr_cu_gemm_swiglu(struct kvr_cu_gemm *g, void *act, void *up, const void *in,
                                   const void *w, uint64_t rows, uint64_t ffn, uint64_t k,
                                   bool *fused);

/* The QKV projection of in by W (n = (n_heads + 2 n_kv) hd rows) with rotary and the cache
 * write (r: kvr_cuda_kernels.h): the own kernel's rotary epilogue where timing at the shape's
 * first call found it at least 2% faster than the GEMM into r->q followed by the rotary kernel
 * (*fused true); else that GEMM alone into r->q, the QKV buffer (*fused false: the caller runs
 * the rotary kernel). */
enum kvr_status kvr_cu_gemm_qkv_rope(struct kvr_cu_gemm *g, const struct kvr_gemm_rope *r,
                                     const void *in, const void *w, uint64_t rows, uint64_t n,
                                     uint64_t k, bool *fused);

/* The test of every candidate: each cuBLASLt algorithm of the shape against cublasGemmEx on
 * random data (out poisoned first): the worst relative L2 error, and how many were run. */
enum kvr_status kvr_cu_gemm_check(uint64_t rows, uint64_t n, uint64_t k, bool out_f32,
                                  bool accumulate, double *worst_rel_err, int *n_algos);

/* The own kernel (kvr_cuda_gemm_ws.cu) against cublasGemmEx (SwiGLU: and the activation kernel)
 * on random data, run whole and with its last round split: the worse relative L2 error of its
 * output, and the parts of the split (1: the shape has none). epi: enum kvr_gemm_epi. */
enum kvr_status kvr_cu_gemm_ws_check(uint64_t rows, uint64_t n, uint64_t k, int epi,
                                     double *rel_err, int *parts);

/* The rotary epilogue against cublasGemmEx and the rotary kernel (rotate false: no table) on
 * random data, positions from 5000: the relative L2 errors of Q, the K cache and the V cache. */
enum kvr_status kvr_cu_gemm_ws_rope_check(uint64_t rows, uint32_t n_heads, uint32_t n_kv,
                                          uint32_t hd, uint64_t k, bool rotate, double err[3]);
