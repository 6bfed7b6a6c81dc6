/* The cuda backend's GEMMs: cublasGemmEx, or the cuBLASLt algorithm that timing found faster
 * for the shape (kvr_cuda_gemm.h). Column-major view: out^T[n][rows] = W^T(op T) * in^T. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes" /* cublasLt.h's cublasLtGetVersion() */
#include <cublasLt.h>
#pragma GCC diagnostic pop
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cuda_check.h"
#include "kvr_cuda_gemm.h"
#include "kvr_cuda_kernels.h"
#include "kvr_weights.h"

#define MAX_SHAPES 128
#define MAX_ALGOS  8
#define KEEP_GAIN  0.98 /* a cuBLASLt algorithm must take at most this share of GemmEx's time */

#define KVR_LT_CHECK(call)                                                                         \
    KVR_FOREIGN_CHECK(cublasStatus_t, call, #call, CUBLAS_STATUS_SUCCESS, "cuBLASLt",              \
                      cublasGetStatusString)

/* A shape's cuBLASLt description (the operation and the three layouts). */
struct lt_desc {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
};

struct shape {
    uint64_t rows, n, k;
    bool f32, acc;
    bool lt;     /* false: cublasGemmEx */
    bool ws;     /* the warp-specialised kernel (kvr_cuda_gemm_ws.cu), before lt */
    bool swiglu; /* kvr_cu_gemm_swiglu's shape: ws is the fused kernel, else GEMM + activation */
    bool rope;   /* kvr_cu_gemm_qkv_rope's: ws is the fused kernel, else GEMM + rotary kernel */
    cublasLtMatmulAlgo_t algo;
    struct lt_desc d; /* when lt */
};

struct kvr_cu_gemm {
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    cudaStream_t stream;
    void *ws;
    size_t ws_bytes;
    bool tune;
    int own; /* the warp-specialised kernel: 0 never, 1 a timed candidate, 2 wherever it fits */
    struct kvr_gemm_scratch split; /* its last round's split: partials in ws, flags of its own */
    cudaEvent_t e0, e1;
    struct shape shapes[MAX_SHAPES];
    int n_shapes;
};

/* KVR_GEMM_LOG=1 (kvr_exec_env_read refused any value but 0 and 1 before a backend opened) */
static bool gemm_log(void)
{
    const char *e = getenv("KVR_GEMM_LOG");
    return e && !strcmp(e, "1");
}

#define SPLIT_FLAGS 1024 /* 4 per tail pair: 256 pairs, more than a round of any GPU's clusters */

enum kvr_status kvr_cu_gemm_open(struct kvr_cu_gemm **out, void *blas, void *stream,
                                 void *workspace, size_t ws_bytes, bool tune, int own, bool split)
{
    struct kvr_cu_gemm *g = calloc(1, sizeof *g);
    if (!g) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    *out = g;
    g->blas = blas, g->stream = stream, g->ws = workspace, g->ws_bytes = ws_bytes, g->tune = tune;
    g->own = tune ? own : 0;
    if (split) { /* the partials share cuBLAS's workspace: one stream runs both */
        KVR_CUDA_CHECK(cudaMalloc((void **)&g->split.flags, 4 * SPLIT_FLAGS));
        /* on the GEMMs' stream: a non-blocking stream is not ordered after the legacy one */
        KVR_CUDA_CHECK(cudaMemsetAsync(g->split.flags, 0, 4 * SPLIT_FLAGS, (cudaStream_t)stream));
        g->split.part = workspace, g->split.part_bytes = ws_bytes, g->split.n_flags = SPLIT_FLAGS;
    }
    KVR_LT_CHECK(cublasLtCreate(&g->lt));
    KVR_CUDA_CHECK(cudaEventCreate(&g->e0));
    KVR_CUDA_CHECK(cudaEventCreate(&g->e1));
    return KVR_OK;
}

static void desc_free(struct lt_desc *d);

void kvr_cu_gemm_close(struct kvr_cu_gemm *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_shapes; i++) desc_free(&g->shapes[i].d);
    if (g->lt) cublasLtDestroy(g->lt);
    if (g->e0) cudaEventDestroy(g->e0);
    if (g->e1) cudaEventDestroy(g->e1);
    if (g->split.flags) cudaFree(g->split.flags);
    free(g);
}

static void desc_free(struct lt_desc *d)
{
    if (d->op) cublasLtMatmulDescDestroy(d->op);
    if (d->a) cublasLtMatrixLayoutDestroy(d->a);
    if (d->b) cublasLtMatrixLayoutDestroy(d->b);
    if (d->c) cublasLtMatrixLayoutDestroy(d->c);
}

static enum kvr_status desc_make(const struct shape *s, struct lt_desc *d)
{
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    KVR_LT_CHECK(cublasLtMatmulDescCreate(&d->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    KVR_LT_CHECK(
        cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    KVR_LT_CHECK(
        cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    KVR_LT_CHECK(cublasLtMatrixLayoutCreate(&d->a, CUDA_R_16BF, s->k, s->n, (int64_t)s->k));
    KVR_LT_CHECK(cublasLtMatrixLayoutCreate(&d->b, CUDA_R_16BF, s->k, s->rows, (int64_t)s->k));
    KVR_LT_CHECK(cublasLtMatrixLayoutCreate(&d->c, s->f32 ? CUDA_R_32F : CUDA_R_16BF, s->n, s->rows,
                                            (int64_t)s->n));
    return KVR_OK;
}

/* Up to MAX_ALGOS algorithms the heuristic offers for the shape within the workspace. */
static enum kvr_status heuristic(struct kvr_cu_gemm *g, const struct lt_desc *d,
                                 cublasLtMatmulHeuristicResult_t *res, int *n)
{
    cublasLtMatmulPreference_t pref;
    *n = 0;
    KVR_LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    cublasStatus_t e = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &g->ws_bytes, sizeof g->ws_bytes);
    if (e == CUBLAS_STATUS_SUCCESS)
        e = cublasLtMatmulAlgoGetHeuristic(g->lt, d->op, d->a, d->b, d->c, d->c, pref, MAX_ALGOS,
                                           res, n);
    cublasLtMatmulPreferenceDestroy(pref);
    if (e == CUBLAS_STATUS_NOT_SUPPORTED) *n = 0, e = CUBLAS_STATUS_SUCCESS;
    KVR_LT_CHECK(e);
    return KVR_OK;
}

/* The warp-specialised kernel's epilogue for the shape, or -1 where it has none. */
static int ws_epi(const struct shape *s)
{
    if (s->swiglu)
        return kvr_cu_gemm_ws_supports(s->rows, s->n, s->k, KVR_GEMM_EPI_SWIGLU)
                   ? KVR_GEMM_EPI_SWIGLU
                   : -1;
    int epi = s->f32 && s->acc ? KVR_GEMM_EPI_F32_ACC : !s->f32 && !s->acc ? KVR_GEMM_EPI_BF16 : -1;
    return epi >= 0 && kvr_cu_gemm_ws_supports(s->rows, s->n, s->k, epi) ? epi : -1;
}

/* The own kernel's split scratch, or NULL (no split: not opened with it). */
static const struct kvr_gemm_scratch *scratch(const struct kvr_cu_gemm *g)
{
    return g->split.flags ? &g->split : NULL;
}

#define ALGO_WS ((const cublasLtMatmulAlgo_t *)&ws_tag) /* run()'s third kind */
static const char ws_tag;

/* One GEMM of shape s: cublasGemmEx when algo is NULL, the warp-specialised kernel when it is
 * ALGO_WS, else that cuBLASLt algorithm. */
static enum kvr_status run(struct kvr_cu_gemm *g, const struct shape *s, const struct lt_desc *d,
                           const cublasLtMatmulAlgo_t *algo, void *out, const void *in,
                           const void *w)
{
    const float alpha = 1.0f, beta = s->acc ? 1.0f : 0.0f;
    if (algo == ALGO_WS) { /* a refusal (alignment) is a failure here: timing never picks it */
        KVR_LAUNCH_CHECK(
            kvr_cu_gemm_ws(out, ws_epi(s), in, w, s->rows, s->n, s->k, scratch(g), g->stream));
        return KVR_OK;
    }
    if (!algo) {
        KVR_CUBLAS_CHECK(cublasGemmEx(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)s->n, (int)s->rows,
                                      (int)s->k, &alpha, w, CUDA_R_16BF, (int)s->k, in, CUDA_R_16BF,
                                      (int)s->k, &beta, out, s->f32 ? CUDA_R_32F : CUDA_R_16BF,
                                      (int)s->n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return KVR_OK;
    }
    KVR_LT_CHECK(cublasLtMatmul(g->lt, d->op, &alpha, w, d->a, in, d->b, &beta, out, d->c, out,
                                d->c, algo, g->ws, g->ws_bytes, g->stream));
    return KVR_OK;
}

/* The best of two timed runs (after one untimed) of a candidate, in ms; +inf when it fails. */
static float time_ms(struct kvr_cu_gemm *g, const struct shape *s, const struct lt_desc *d,
                     const cublasLtMatmulAlgo_t *algo, void *out, const void *in, const void *w)
{
    float best = INFINITY;
    if (run(g, s, d, algo, out, in, w)) return INFINITY;
    for (int r = 0; r < 2; r++) {
        float ms = INFINITY;
        if (cudaEventRecord(g->e0, g->stream) || run(g, s, d, algo, out, in, w) ||
            cudaEventRecord(g->e1, g->stream) || cudaEventSynchronize(g->e1) ||
            cudaEventElapsedTime(&ms, g->e0, g->e1))
            return INFINITY;
        best = fminf(best, ms);
    }
    return best;
}

/* Chooses s's algorithm by timing on out (which it overwrites). */
static enum kvr_status tune(struct kvr_cu_gemm *g, struct shape *s, void *out, const void *in,
                            const void *w)
{
    struct lt_desc d = {0};
    cublasLtMatmulHeuristicResult_t res[MAX_ALGOS];
    int n = 0;
    enum kvr_status st = desc_make(s, &d);
    if (!st) st = heuristic(g, &d, res, &n);
    const float ex = st ? INFINITY : time_ms(g, s, &d, NULL, out, in, w);
    float best = ex * KEEP_GAIN, lt = INFINITY;
    for (int i = 0; i < n && !st; i++) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
        float t = time_ms(g, s, &d, &res[i].algo, out, in, w);
        lt = fminf(lt, t);
        if (t < best) best = t, s->lt = true, s->algo = res[i].algo;
    }
    /* the own kernel is kept only when faster than the best of cuBLAS by KEEP_GAIN too */
    float own = !st && g->own && ws_epi(s) >= 0 ? time_ms(g, s, &d, ALGO_WS, out, in, w) : INFINITY;
    if (g->own == 2 ? own < INFINITY : own < (s->lt ? best : ex) * KEEP_GAIN) s->ws = true;
    if (gemm_log()) /* a diagnostic: what the tuner saw */
        fprintf(stderr,
                "gemm rows %llu n %llu k %llu%s: GemmEx %.4f ms, best of %d cuBLASLt %.4f ms, "
                "own %.4f ms: %s\n",
                (unsigned long long)s->rows, (unsigned long long)s->n, (unsigned long long)s->k,
                s->acc ? " accumulate" : "", ex, n, lt, own,
                s->ws   ? "own"
                : s->lt ? "cuBLASLt"
                        : "GemmEx");
    cudaGetLastError(); /* a failed candidate leaves nothing behind */
    if (s->lt && !st)
        s->d = d;
    else
        desc_free(&d);
    return st;
}

static enum kvr_status launched(int e)
{
    KVR_LAUNCH_CHECK(e);
    return KVR_OK;
}

/* The own kernel chosen for shape s: false when TMA cannot read these operands (their alignment
 * differs from the timed ones), and the caller runs cuBLAS's choice; else true, *st its
 * launch's status. */
static bool run_own(struct kvr_cu_gemm *g, const struct shape *s, void *out, const void *in,
                    const void *w, enum kvr_status *st)
{
    int e = kvr_cu_gemm_ws(out, ws_epi(s), in, w, s->rows, s->n, s->k, scratch(g), g->stream);
    if (e == cudaErrorNotSupported) return false;
    *st = launched(e);
    return true;
}

static struct shape *find(struct kvr_cu_gemm *g, const struct shape *key)
{
    for (int i = 0; i < g->n_shapes; i++) {
        struct shape *s = &g->shapes[i];
        if (s->rows == key->rows && s->n == key->n && s->k == key->k && s->f32 == key->f32 &&
            s->acc == key->acc && s->swiglu == key->swiglu && s->rope == key->rope)
            return s;
    }
    return NULL;
}

enum kvr_status kvr_cu_gemm(struct kvr_cu_gemm *g, void *out, bool out_f32, const void *in,
                            const void *w, uint64_t rows, uint64_t n, uint64_t k, bool accumulate,
                            void *scratch, size_t scratch_bytes)
{
    struct shape key = {.rows = rows, .n = n, .k = k, .f32 = out_f32, .acc = accumulate};
    struct shape *s = find(g, &key);
    enum kvr_status st = KVR_OK;
    bool room = !accumulate || (scratch && scratch_bytes >= rows * n * 4);
    if (!s && g->tune && room && g->n_shapes < MAX_SHAPES) {
        s = &g->shapes[g->n_shapes++];
        *s = key;
        st = tune(g, s, accumulate ? scratch : out, in, w);
    }
    if (st) return st;
    if (s && s->ws && run_own(g, s, out, in, w, &st)) return st;
    return s && s->lt ? run(g, s, &s->d, &s->algo, out, in, w)
                      : run(g, &key, NULL, NULL, out, in, w);
}

/* The best of two timed runs of f(g, ctx) after one untimed, in ms; +inf when one fails. */
static float time_calls(struct kvr_cu_gemm *g, int (*f)(struct kvr_cu_gemm *, const void *),
                        const void *ctx)
{
    float best = INFINITY;
    for (int r = 0; r < 3; r++) {
        float ms = INFINITY;
        if ((r > 0 && cudaEventRecord(g->e0, g->stream)) || f(g, ctx)) return INFINITY;
        if (r > 0 && (cudaEventRecord(g->e1, g->stream) || cudaEventSynchronize(g->e1) ||
                      cudaEventElapsedTime(&ms, g->e0, g->e1)))
            return INFINITY;
        best = fminf(best, ms);
    }
    return best;
}

/* A fused epilogue's operands, and the unfused pair's buffer (up, or QKV). */
struct fused_call {
    void *out, *mid;
    const void *in, *w;
    uint64_t rows, n, k;
    const struct kvr_gemm_rope *rope;
};

/* The unfused SwiGLU: the tuned GEMM into up (mid), then the activation kernel. */
static int swiglu_pair(struct kvr_cu_gemm *g, const void *ctx)
{
    const struct fused_call *f = ctx;
    return kvr_cu_gemm(g, f->mid, false, f->in, f->w, f->rows, f->n, f->k, false, NULL, 0) ||
           kvr_cu_activation(f->out, f->mid, (uint32_t)f->rows, (uint32_t)(f->n / 2), 1, g->stream);
}

/* The unfused rotary: the tuned GEMM into QKV, then the rotary kernel to the caches. */
static int rope_pair(struct kvr_cu_gemm *g, const void *ctx)
{
    const struct fused_call *f = ctx;
    const struct kvr_gemm_rope *r = f->rope;
    return kvr_cu_gemm(g, r->q, false, f->in, f->w, f->rows, f->n, f->k, false, NULL, 0) ||
           kvr_cu_rotary(r->q, r->k_cache, r->v_cache, r->table, 0, (uint32_t)f->rows, r->n_heads,
                         r->n_kv, r->hd, r->hd, g->stream);
}

static int rope_own(struct kvr_cu_gemm *g, const void *ctx)
{
    const struct fused_call *f = ctx;
    return kvr_cu_gemm_ws_rope(f->rope, f->in, f->w, f->rows, f->k, scratch(g), g->stream);
}

/* A fused shape's first call: the own kernel (own, timed) is kept where at least KEEP_GAIN
 * faster than the unfused pair. */
static void choose_fused(struct kvr_cu_gemm *g, struct shape *s, float pair, float own,
                         const char *what)
{
    s->ws = g->own == 2 ? own < INFINITY : own < pair * KEEP_GAIN;
    if (gemm_log())
        fprintf(stderr,
                "gemm rows %llu n %llu k %llu %s: GEMM + %s %.4f ms, own fused %.4f ms: %s\n",
                (unsigned long long)s->rows, (unsigned long long)s->n, (unsigned long long)s->k,
                what, s->swiglu ? "activation" : "rotary", pair, own,
                s->ws       ? "own fused"
                : s->swiglu ? "GEMM + activation"
                            : "GEMM + rotary");
    cudaGetLastError();
}

enum kvr_status kvr_cu_gemm_swiglu(struct kvr_cu_gemm *g, void *act, void *up, const void *in,
                                   const void *w, uint64_t rows, uint64_t ffn, uint64_t k,
                                   bool *fused)
{
    struct shape key = {.rows = rows, .n = 2 * ffn, .k = k, .swiglu = true};
    struct shape *s = find(g, &key);
    *fused = false;
    if (!s && g->own && ws_epi(&key) >= 0 && g->n_shapes < MAX_SHAPES) {
        s = &g->shapes[g->n_shapes++];
        *s = key;
        struct fused_call f = {act, up, in, w, rows, 2 * ffn, k, NULL};
        choose_fused(g, s, time_calls(g, swiglu_pair, &f), time_ms(g, s, NULL, ALGO_WS, act, in, w),
                     "swiglu");
    }
    enum kvr_status st = KVR_OK;
    if (s && s->ws && (*fused = run_own(g, s, act, in, w, &st))) return st;
    return kvr_cu_gemm(g, up, false, in, w, rows, 2 * ffn, k, false, NULL, 0);
}

enum kvr_status kvr_cu_gemm_qkv_rope(struct kvr_cu_gemm *g, const struct kvr_gemm_rope *r,
                                     const void *in, const void *w, uint64_t rows, uint64_t n,
                                     uint64_t k, bool *fused)
{
    struct shape key = {.rows = rows, .n = n, .k = k, .rope = true};
    struct shape *s = find(g, &key);
    struct fused_call f = {NULL, NULL, in, w, rows, n, k, r};
    *fused = false;
    /* the pair writes QKV at row stride n (kvr_cu_gemm, kvr_cu_rotary): so must the kernel */
    const bool takes = kvr_cu_gemm_ws_rope_supports(rows, k, r) &&
                       (uint64_t)(r->n_heads + 2 * r->n_kv) * r->hd == n && r->q_ld == n;
    if (!s && g->own && takes && g->n_shapes < MAX_SHAPES) {
        s = &g->shapes[g->n_shapes++];
        *s = key;
        choose_fused(g, s, time_calls(g, rope_pair, &f), time_calls(g, rope_own, &f), "rotary");
    }
    if (s && s->ws && takes) {
        int e = rope_own(g, &f);
        if (e != cudaErrorNotSupported) { /* else these operands' alignment: the pair */
            KVR_LAUNCH_CHECK(e);
            *fused = true;
            return KVR_OK;
        }
    }
    return kvr_cu_gemm(g, r->q, false, in, w, rows, n, k, false, NULL, 0);
}

/* rel L2 error of the device matrices a against b ([rows][cols] of row stride ld elements,
 * float32 or bf16) */
static enum kvr_status compare_rows(const void *a, const void *b, uint64_t rows, uint64_t cols,
                                    uint64_t ld, bool f32, double *err)
{
    size_t es = f32 ? 4 : 2, n = rows * cols;
    char *h = malloc(2 * n * es);
    if (!h) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    cudaError_t e = cudaMemcpy2D(h, cols * es, a, ld * es, cols * es, rows, cudaMemcpyDeviceToHost);
    if (!e)
        e = cudaMemcpy2D(h + n * es, cols * es, b, ld * es, cols * es, rows,
                         cudaMemcpyDeviceToHost);
    double num = 0, den = 0;
    for (uint64_t i = 0; !e && i < n; i++) {
        double x = f32 ? ((float *)h)[i] : kvr_bf16_to_float(((uint16_t *)h)[i]);
        double y = f32 ? ((float *)h)[n + i] : kvr_bf16_to_float(((uint16_t *)h)[n + i]);
        num += (x - y) * (x - y), den += y * y;
    }
    free(h);
    KVR_CUDA_CHECK(e);
    *err = den > 0 ? sqrt(num / den) : INFINITY;
    if (!(*err == *err)) *err = INFINITY; /* NaN: an element was not written */
    return KVR_OK;
}

static enum kvr_status compare(const void *a, const void *b, uint64_t n, bool f32, double *err)
{
    return compare_rows(a, b, 1, n, n, f32, err);
}

struct check_bufs {
    void *w, *in, *c0, *ref, *out, *ws;
};

static enum kvr_status check_alloc(struct check_bufs *b, uint64_t rows, uint64_t n, uint64_t k,
                                   size_t es, size_t ws)
{
    KVR_CUDA_CHECK(cudaMalloc(&b->w, 2 * n * k));
    KVR_CUDA_CHECK(cudaMalloc(&b->in, 2 * rows * k));
    KVR_CUDA_CHECK(cudaMalloc(&b->c0, es * rows * n));
    KVR_CUDA_CHECK(cudaMalloc(&b->ref, es * rows * n));
    KVR_CUDA_CHECK(cudaMalloc(&b->out, es * rows * n));
    KVR_CUDA_CHECK(cudaMalloc(&b->ws, ws));
    KVR_LAUNCH_CHECK(kvr_cu_fill_random(b->w, n * k, 5, 1, 0.5f, 0.0f, NULL));
    KVR_LAUNCH_CHECK(kvr_cu_fill_random(b->in, rows * k, 5, 2, 1.0f, 0.0f, NULL));
    return KVR_OK;
}

/* Every cuBLASLt candidate of the shape against cublasGemmEx (the accumulate's C: a first
 * random product, the same for both). */
static enum kvr_status check_run(struct kvr_cu_gemm *g, struct check_bufs *b, struct shape *s,
                                 double *worst, int *n_algos)
{
    size_t bytes = (s->f32 ? 4 : 2) * s->rows * s->n;
    struct shape first = *s;
    first.acc = false;
    cublasLtMatmulHeuristicResult_t res[MAX_ALGOS];
    int n = 0;
    enum kvr_status st = run(g, &first, NULL, NULL, b->c0, b->in, b->w);
    if (!st) st = desc_make(s, &s->d);
    if (!st) st = heuristic(g, &s->d, res, &n);
    *worst = 0, *n_algos = 0;
    for (int i = -1; i < n && !st; i++) {
        if (i >= 0 && res[i].state != CUBLAS_STATUS_SUCCESS) continue;
        void *dst = i < 0 ? b->ref : b->out;
        KVR_CUDA_CHECK(s->acc ? cudaMemcpy(dst, b->c0, bytes, cudaMemcpyDeviceToDevice)
                              : cudaMemset(dst, 0xff, bytes)); /* NaN until written */
        st = run(g, s, &s->d, i < 0 ? NULL : &res[i].algo, dst, b->in, b->w);
        double e = 0;
        if (!st && i >= 0 && !(st = compare(b->out, b->ref, s->rows * s->n, s->f32, &e)))
            *worst = fmax(*worst, e), ++*n_algos;
    }
    return st;
}

/* A check's buffers, cuBLAS handle and (untuned) GEMM state; closed whatever happened. */
struct check_ctx {
    struct check_bufs b;
    cublasHandle_t blas;
    struct kvr_cu_gemm *g;
};

#define CHECK_WS_BYTES (32u << 20)

static enum kvr_status check_open(struct check_ctx *c, uint64_t rows, uint64_t n, uint64_t k,
                                  size_t es)
{
    enum kvr_status st = check_alloc(&c->b, rows, n, k, es, CHECK_WS_BYTES);
    if (!st && cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS)
        st = kvr_error(KVR_ERR_RUNTIME, "cuBLAS: cublasCreate failed");
    if (!st && cublasSetWorkspace(c->blas, c->b.ws, CHECK_WS_BYTES) != CUBLAS_STATUS_SUCCESS)
        st = kvr_error(KVR_ERR_RUNTIME, "cuBLAS: cublasSetWorkspace failed");
    if (!st) st = kvr_cu_gemm_open(&c->g, c->blas, NULL, c->b.ws, CHECK_WS_BYTES, false, 0, true);
    return st;
}

static enum kvr_status check_close(struct check_ctx *c, enum kvr_status st)
{
    cudaError_t e = cudaDeviceSynchronize(); /* the check's last kernels, before the frees */
    struct check_bufs *b = &c->b;
    kvr_cu_gemm_close(c->g);
    if (c->blas) cublasDestroy(c->blas);
    cudaFree(b->w), cudaFree(b->in), cudaFree(b->c0), cudaFree(b->ref), cudaFree(b->out);
    cudaFree(b->ws);
    if (!st && e != cudaSuccess) st = kvr_error(KVR_ERR_RUNTIME, "CUDA: %s", cudaGetErrorString(e));
    return st;
}

enum kvr_status kvr_cu_gemm_check(uint64_t rows, uint64_t n, uint64_t k, bool out_f32,
                                  bool accumulate, double *worst_rel_err, int *n_algos)
{
    struct check_ctx c = {0};
    struct shape s = {.rows = rows, .n = n, .k = k, .f32 = out_f32, .acc = accumulate};
    enum kvr_status st = check_open(&c, rows, n, k, out_f32 ? 4 : 2);
    if (!st) st = check_run(c.g, &c.b, &s, worst_rel_err, n_algos);
    desc_free(&s.d);
    return check_close(&c, st);
}

/* The own kernel into out (poisoned first, or C for the accumulate) with scratch sc (NULL: no
 * split), against ref. */
static enum kvr_status ws_own_run(const struct check_bufs *b, const struct shape *s, int epi,
                                  uint64_t count, const struct kvr_gemm_scratch *sc, double *err)
{
    const size_t bytes = (s->f32 ? 4 : 2) * count;
    KVR_CUDA_CHECK(s->acc ? cudaMemcpy(b->out, b->c0, bytes, cudaMemcpyDeviceToDevice)
                          : cudaMemset(b->out, 0xff, bytes)); /* NaN until written */
    KVR_LAUNCH_CHECK(kvr_cu_gemm_ws(b->out, epi, b->in, b->w, s->rows, s->n, s->k, sc, NULL));
    return compare(b->out, b->ref, count, s->f32, err);
}

static enum kvr_status out_to_host(void *dst, const struct check_bufs *b, size_t bytes)
{
    KVR_CUDA_CHECK(cudaMemcpy(dst, b->out, bytes, cudaMemcpyDeviceToHost));
    return KVR_OK;
}

/* The split run twice more on the same flags and scratch: bit for bit what it gave first, or
 * the sum is not in part order or a flag was left set for the next launch. */
static enum kvr_status ws_split_repeat(const struct check_bufs *b, const struct shape *s, int epi,
                                       uint64_t count, const struct kvr_gemm_scratch *sc)
{
    const size_t bytes = (s->f32 ? 4 : 2) * count;
    unsigned char *first = malloc(bytes), *again = malloc(bytes);
    enum kvr_status st = first && again ? out_to_host(first, b, bytes)
                                        : kvr_error(KVR_ERR_RUNTIME, "out of host memory");
    for (int r = 2; r <= 3 && !st; r++) {
        double e;
        if (!(st = ws_own_run(b, s, epi, count, sc, &e)) && !(st = out_to_host(again, b, bytes)) &&
            memcmp(first, again, bytes))
            st = kvr_error(
                KVR_ERR_RUNTIME, "own GEMM %llux%llux%llu: split run %d differs from the first",
                (unsigned long long)s->rows, (unsigned long long)s->n, (unsigned long long)s->k, r);
    }
    free(first), free(again);
    return st;
}

/* The own kernel against cublasGemmEx on random data, whole and with its last round split
 * (*parts: into how many parts; 1 where the shape has no split; a split run three times, bit for
 * bit the same): bf16; the float accumulate
 * (C the same first product for both); SwiGLU against the GEMM into up (c0) and the activation
 * kernel. */
static enum kvr_status ws_check_run(struct kvr_cu_gemm *g, struct check_bufs *b,
                                    const struct shape *s, int epi, double *err, int *parts)
{
    const bool swiglu = epi == KVR_GEMM_EPI_SWIGLU;
    const uint64_t n_out = swiglu ? s->n / 2 : s->n, count = s->rows * n_out;
    struct shape plain = *s;
    plain.acc = false, plain.swiglu = false;
    enum kvr_status st = run(g, &plain, NULL, NULL, swiglu || s->acc ? b->c0 : b->ref, b->in, b->w);
    if (!st && swiglu)
        KVR_LAUNCH_CHECK(
            kvr_cu_activation(b->ref, b->c0, (uint32_t)s->rows, (uint32_t)n_out, 1, NULL));
    if (!st && s->acc) { /* ref = C + product */
        KVR_CUDA_CHECK(cudaMemcpy(b->ref, b->c0, (size_t)4 * count, cudaMemcpyDeviceToDevice));
        st = run(g, s, NULL, NULL, b->ref, b->in, b->w);
    }
    double whole = 0, split = 0;
    *parts = kvr_cu_gemm_ws_split(s->rows, s->n, s->k, epi, scratch(g));
    if (!st) st = ws_own_run(b, s, epi, count, NULL, &whole);
    if (!st) st = ws_own_run(b, s, epi, count, scratch(g), &split);
    if (!st && *parts > 1) st = ws_split_repeat(b, s, epi, count, scratch(g));
    *err = fmax(whole, split);
    return st;
}

enum kvr_status kvr_cu_gemm_ws_check(uint64_t rows, uint64_t n, uint64_t k, int epi,
                                     double *rel_err, int *parts)
{
    struct check_ctx c = {0};
    struct shape s = {.rows = rows,
                      .n = n,
                      .k = k,
                      .f32 = epi == KVR_GEMM_EPI_F32_ACC,
                      .acc = epi == KVR_GEMM_EPI_F32_ACC,
                      .swiglu = epi == KVR_GEMM_EPI_SWIGLU};
    if (!kvr_cu_gemm_ws_supports(rows, n, k, epi))
        return kvr_error(KVR_ERR_INPUT, "own GEMM: shape %llux%llux%llu (epilogue %d) not taken",
                         (unsigned long long)rows, (unsigned long long)n, (unsigned long long)k,
                         epi);
    enum kvr_status st = check_open(&c, rows, n, k, s.f32 ? 4 : 2);
    if (!st) st = ws_check_run(c.g, &c.b, &s, epi, rel_err, parts);
    return check_close(&c, st);
}

/* The rotary check's buffers: in, W, the rotary table and its frequencies, and per side
 * (reference, own) QKV and the two caches, each cache with GUARD poisoned rows before and after
 * the chunk's (kc, vc point at the chunk's first). */
#define GUARD 64
struct rope_bufs {
    void *in, *w, *table, *qkv[2], *kc[2], *vc[2];
    float *inv_freq;
};

static enum kvr_status rope_alloc(struct rope_bufs *b, uint64_t rows, uint64_t n, uint64_t kv,
                                  uint64_t k, uint32_t hd)
{
    KVR_CUDA_CHECK(cudaMalloc(&b->in, 2 * rows * k));
    KVR_CUDA_CHECK(cudaMalloc(&b->w, 2 * n * k));
    KVR_CUDA_CHECK(cudaMalloc(&b->table, 8 * rows * hd / 2));
    KVR_CUDA_CHECK(cudaMalloc((void **)&b->inv_freq, 4 * hd / 2));
    const size_t cache = 2 * (rows + 2 * GUARD) * kv;
    for (int i = 0; i < 2; i++) {
        void *kc = NULL, *vc = NULL;
        KVR_CUDA_CHECK(cudaMalloc(&b->qkv[i], 2 * rows * n));
        KVR_CUDA_CHECK(cudaMemset(b->qkv[i], 0xff, 2 * rows * n)); /* NaN until written */
        KVR_CUDA_CHECK(cudaMalloc(&kc, cache));
        b->kc[i] = (char *)kc + 2 * GUARD * kv;
        KVR_CUDA_CHECK(cudaMalloc(&vc, cache));
        b->vc[i] = (char *)vc + 2 * GUARD * kv;
        KVR_CUDA_CHECK(cudaMemset(kc, 0xff, cache));
        KVR_CUDA_CHECK(cudaMemset(vc, 0xff, cache));
    }
    KVR_LAUNCH_CHECK(kvr_cu_fill_random(b->w, n * k, 7, 1, 0.5f, 0.0f, NULL));
    KVR_LAUNCH_CHECK(kvr_cu_fill_random(b->in, rows * k, 7, 2, 1.0f, 0.0f, NULL));
    float f[64];
    for (uint32_t j = 0; j < hd / 2; j++) f[j] = (float)pow(10000.0, -2.0 * j / hd);
    KVR_CUDA_CHECK(cudaMemcpy(b->inv_freq, f, 4 * hd / 2, cudaMemcpyHostToDevice));
    /* positions from 5000 on: angles of thousands of radians, as a long prompt's */
    KVR_LAUNCH_CHECK(kvr_cu_rope_table(b->table, 5000, (uint32_t)rows, hd, b->inv_freq, 1, NULL));
    return KVR_OK;
}

static void rope_free(struct rope_bufs *b, uint64_t kv)
{
    cudaDeviceSynchronize();
    cudaFree(b->in), cudaFree(b->w), cudaFree(b->table), cudaFree(b->inv_freq);
    for (int i = 0; i < 2; i++) {
        cudaFree(b->qkv[i]);
        if (b->kc[i]) cudaFree((char *)b->kc[i] - 2 * GUARD * kv);
        if (b->vc[i]) cudaFree((char *)b->vc[i] - 2 * GUARD * kv);
    }
}

/* Whether rows x cols bf16 at p (row stride ld) still hold the poison: nothing wrote there. */
static enum kvr_status untouched(const void *p, uint64_t rows, uint64_t cols, uint64_t ld,
                                 bool *clean)
{
    uint16_t *h = malloc(2 * rows * cols);
    if (!h) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    cudaError_t e = cudaMemcpy2D(h, 2 * cols, p, 2 * ld, 2 * cols, rows, cudaMemcpyDeviceToHost);
    *clean = true;
    for (uint64_t i = 0; !e && i < rows * cols; i++) *clean = *clean && h[i] == 0xffff;
    free(h);
    KVR_CUDA_CHECK(e);
    return KVR_OK;
}

/* The own side wrote nothing but its targets: the caches' guard rows, QKV's K and V columns. */
static enum kvr_status rope_outside(const struct rope_bufs *b, uint64_t rows, uint64_t q,
                                    uint64_t kv)
{
    const char *kc = b->kc[1], *vc = b->vc[1];
    bool c[5];
    enum kvr_status st = untouched(kc - 2 * GUARD * kv, GUARD, kv, kv, &c[0]);
    if (!st) st = untouched(kc + 2 * rows * kv, GUARD, kv, kv, &c[1]);
    if (!st) st = untouched(vc - 2 * GUARD * kv, GUARD, kv, kv, &c[2]);
    if (!st) st = untouched(vc + 2 * rows * kv, GUARD, kv, kv, &c[3]);
    if (!st) st = untouched((const char *)b->qkv[1] + 2 * q, rows, 2 * kv, q + 2 * kv, &c[4]);
    if (!st && !(c[0] && c[1] && c[2] && c[3] && c[4]))
        st = kvr_error(KVR_ERR_RUNTIME,
                       "own GEMM rotary wrote outside its targets (K guard %d %d, V guard %d %d, "
                       "QKV's K and V %d: 1 untouched)",
                       c[0], c[1], c[2], c[3], c[4]);
    return st;
}

enum kvr_status kvr_cu_gemm_ws_rope_check(uint64_t rows, uint32_t n_heads, uint32_t n_kv,
                                          uint32_t hd, uint64_t k, bool rotate, double err[3])
{
    struct check_ctx c = {0};
    struct rope_bufs b = {0};
    const uint64_t q = (uint64_t)n_heads * hd, kv = (uint64_t)n_kv * hd, n = q + 2 * kv;
    struct kvr_gemm_rope r = {.n_heads = n_heads, .n_kv = n_kv, .hd = hd, .q_ld = n};
    if (hd > 128 || !kvr_cu_gemm_ws_rope_supports(rows, k, &r))
        return kvr_error(KVR_ERR_INPUT,
                         "own GEMM: rotary of %u/%u heads of %u at %llux%llu not taken", n_heads,
                         n_kv, hd, (unsigned long long)rows, (unsigned long long)k);
    enum kvr_status st = check_open(&c, 1, 1, 1, 2);
    if (!st) st = rope_alloc(&b, rows, n, kv, k, hd);
    struct shape plain = {.rows = rows, .n = n, .k = k};
    if (!st) st = run(c.g, &plain, NULL, NULL, b.qkv[0], b.in, b.w); /* cublasGemmEx */
    if (!st)
        KVR_LAUNCH_CHECK(kvr_cu_rotary(b.qkv[0], b.kc[0], b.vc[0], rotate ? b.table : NULL, 0,
                                       (uint32_t)rows, n_heads, n_kv, hd, hd, NULL));
    r.q = b.qkv[1], r.k_cache = b.kc[1], r.v_cache = b.vc[1], r.table = rotate ? b.table : NULL;
    if (!st) KVR_LAUNCH_CHECK(kvr_cu_gemm_ws_rope(&r, b.in, b.w, rows, k, scratch(c.g), NULL));
    if (!st) st = compare_rows(b.qkv[1], b.qkv[0], rows, q, n, false, &err[0]);
    if (!st) st = compare(b.kc[1], b.kc[0], rows * kv, false, &err[1]);
    if (!st) st = compare(b.vc[1], b.vc[0], rows * kv, false, &err[2]);
    if (!st) st = rope_outside(&b, rows, q, kv);
    rope_free(&b, kv);
    return check_close(&c, st);
}
