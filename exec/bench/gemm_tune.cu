/* The executor's GEMMs alone: cublasGemmEx (what kvr_cuda.c calls) against every algorithm the
 * cuBLASLt heuristic offers (up to 16, with a 32 MB workspace), on random bf16 data, for the
 * shapes of one layer of a model at a number of rows. Diagnostic, not part of the build:
 *   nvcc -O2 -o gemm_tune exec/bench/gemm_tune.cu -lcublasLt -lcublas
 *   ./gemm_tune ROWS D_MODEL QKV_WIDTH UP_WIDTH D_FFN [hot]
 *   (Llama-7B at 2k: 2048 4096 12288 22016 11008)
 * Prints per shape: GemmEx ms and TFLOP/s, heuristic #0's, the best algorithm's, and its index;
 * with hot, each candidate cold and again after 400 ms back to back, at the card's power cap. */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x)                                                                                      \
    do {                                                                                           \
        int e_ = (int)(x);                                                                         \
        if (e_) {                                                                                  \
            fprintf(stderr, "%s:%d: %s failed (%d)\n", __FILE__, __LINE__, #x, e_);                \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

__global__ void fill(__nv_bfloat16 *p, size_t n, unsigned seed)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 13, h *= 0x5bd1e995u, h ^= h >> 15;
        p[i] = __float2bfloat16(((h & 0xffff) / 65536.0f - 0.5f) * 0.1f);
    }
}

static cudaEvent_t e0, e1;

/* reps runs of f back to back, in ms */
template <class F> static float batch_ms(F f, int reps)
{
    cudaEventRecord(e0);
    for (int i = 0; i < reps; i++) f();
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms;
    cudaEventElapsedTime(&ms, e0, e1);
    return ms;
}

template <class F> static float time_ms(F f, int reps)
{
    for (int i = 0; i < 2; i++) f();
    float best = 1e30f;
    for (int r = 0; r < 3; r++) best = fminf(best, batch_ms(f, reps) / reps);
    return best;
}

/* The same at the power cap: f back to back for about 400 ms first (the card's clocks settle
 * under its power limit), then the best of 3 batches of reps. */
template <class F> static float time_ms_hot(F f, int reps)
{
    for (float spent = 0; spent < 400;) spent += batch_ms(f, reps);
    return time_ms(f, reps);
}

static int hot = 0; /* argv[6] == "hot": every candidate timed cold and at the power cap */

int main(int argc, char **argv)
{
    if (argc < 6) return fprintf(stderr, "usage: gemm_tune ROWS D QKV UP FFN [hot]\n"), 2;
    if (argc > 7 || (argc == 7 && strcmp(argv[6], "hot")))
        return fprintf(stderr, "gemm_tune: '%s': the sixth argument can only be 'hot'\n",
                       argv[argc - 1]),
               2;
    hot = argc == 7;
    long rows = atol(argv[1]), d = atol(argv[2]), qkv = atol(argv[3]), up = atol(argv[4]),
         ffn = atol(argv[5]);
    struct {
        const char *name;
        long n, k;
        int f32;
    } sh[] = {
        {"qkv", qkv, d, 0}, {"out_proj", d, d, 1}, {"mlp_up", up, d, 0}, {"mlp_down", d, ffn, 1}};
    cublasHandle_t h;
    cublasLtHandle_t lt;
    CK(cublasCreate(&h));
    CK(cublasLtCreate(&lt));
    size_t ws_bytes = 32u << 20;
    void *ws;
    CK(cudaMalloc(&ws, ws_bytes));
    CK(cublasSetWorkspace(h, ws, ws_bytes));
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    long maxk = d > ffn ? d : ffn, maxn = qkv > up ? qkv : up;
    __nv_bfloat16 *A, *B;
    void *C;
    CK(cudaMalloc(&A, 2 * maxn * maxk));
    CK(cudaMalloc(&B, 2 * rows * maxk));
    CK(cudaMalloc(&C, 4 * rows * maxn));
    fill<<<4096, 256>>>(A, maxn * maxk, 1);
    fill<<<4096, 256>>>(B, rows * maxk, 2);
    CK(cudaMemset(C, 0, 4 * rows * maxn));
    CK(cudaDeviceSynchronize());
    printf("rows %ld\n%-9s %9s %7s | %9s %7s | %9s %7s %4s %s\n", rows, "gemm", "GemmEx ms", "TF/s",
           "heur0 ms", "TF/s", "best ms", "TF/s", "idx", "of");
    for (auto &s : sh) {
        const float alpha = 1, beta = s.f32 ? 1 : 0;
        cudaDataType_t ct = s.f32 ? CUDA_R_32F : CUDA_R_16BF;
        double flop = 2.0 * rows * s.n * s.k;
        int reps = flop > 1e12 ? 3 : 10;
        /* every call checked: a failed one launches nothing and would time near 0 */
        auto gemm_ex = [&] {
            CK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)s.n, (int)rows, (int)s.k, &alpha, A,
                            CUDA_R_16BF, (int)s.k, B, CUDA_R_16BF, (int)s.k, &beta, C, ct, (int)s.n,
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        };
        float ex = time_ms(gemm_ex, reps);
        cublasLtMatmulDesc_t op;
        cublasLtMatrixLayout_t la, lb, lc;
        cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        CK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
        CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
        CK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, s.k, s.n, s.k));
        CK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, s.k, rows, s.k));
        CK(cublasLtMatrixLayoutCreate(&lc, ct, s.n, rows, s.n));
        cublasLtMatmulPreference_t pref;
        CK(cublasLtMatmulPreferenceCreate(&pref));
        CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &ws_bytes, sizeof ws_bytes));
        cublasLtMatmulHeuristicResult_t res[16];
        int n_res = 0;
        CK(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 16, res, &n_res));
        float h0 = 0, best = 1e30f, cold[16];
        int bi = -1;
        bool ok[16] = {false};
        for (int i = 0; i < n_res; i++) { /* every candidate cold first, then (hot) each hot */
            auto lt_mm = [&] {
                return cublasLtMatmul(lt, op, &alpha, A, la, B, lb, &beta, C, lc, C, lc,
                                      &res[i].algo, ws, ws_bytes, 0);
            };
            /* one untimed call: an algorithm that fails is skipped, not timed at 0 */
            if (res[i].state || lt_mm() != CUBLAS_STATUS_SUCCESS || cudaDeviceSynchronize() ||
                cudaGetLastError()) {
                printf("  %-9s algo %2d: fails, skipped\n", s.name, i);
                continue;
            }
            ok[i] = true, cold[i] = time_ms([&] { CK(lt_mm()); }, reps);
            if (i == 0) h0 = cold[i];
            if (cold[i] < best) best = cold[i], bi = i;
        }
        if (hot) {
            printf("  %-9s GemmEx : %8.4f ms cold, %8.4f ms hot\n", s.name, ex,
                   time_ms_hot(gemm_ex, reps));
            for (int i = 0; i < n_res; i++)
                if (ok[i])
                    printf("  %-9s algo %2d: %8.4f ms cold, %8.4f ms hot\n", s.name, i, cold[i],
                           time_ms_hot(
                               [&] {
                                   CK(cublasLtMatmul(lt, op, &alpha, A, la, B, lb, &beta, C, lc, C,
                                                     lc, &res[i].algo, ws, ws_bytes, 0));
                               },
                               reps));
        }
        printf("%-9s %9.3f %7.1f | %9.3f %7.1f | %9.3f %7.1f %4d %d\n", s.name, ex, flop / ex / 1e9,
               h0, h0 > 0 ? flop / h0 / 1e9 : 0.0, best, flop / best / 1e9, bi, n_res);
        cublasLtMatmulPreferenceDestroy(pref);
        cublasLtMatrixLayoutDestroy(la), cublasLtMatrixLayoutDestroy(lb);
        cublasLtMatrixLayoutDestroy(lc), cublasLtMatmulDescDestroy(op);
    }
    return 0;
}
