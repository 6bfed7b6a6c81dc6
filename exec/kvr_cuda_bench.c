/* The attention kernel's own benchmark and check (kvr bench attention). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_counts.h"
#include "kvr_cuda_check.h"
#include "kvr_cuda_kernels.h"
#include "kvr_exec.h"
#include "kvr_weights.h"
#include "kvr_stats.h"

int kvr_exec_cuda_devices(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear it */
        return 0;
    }
    return n;
}

struct attn_bufs {
    void *q, *k, *v, *o, *ref;
    float *lse, *ref_lse;
    cudaEvent_t e0, e1;
};

static void attn_free(struct attn_bufs *a)
{
    cudaFree(a->q), cudaFree(a->k), cudaFree(a->v), cudaFree(a->o), cudaFree(a->ref);
    cudaFree(a->lse), cudaFree(a->ref_lse);
    if (a->e0) cudaEventDestroy(a->e0);
    if (a->e1) cudaEventDestroy(a->e1);
}

static enum kvr_status attn_alloc(const struct kvr_attn_bench *b, struct attn_bufs *a)
{
    uint64_t q = (uint64_t)b->c * b->n_heads * b->head_dim * 2;
    uint64_t kv = (uint64_t)(b->s + b->c) * b->n_kv * b->head_dim * 2;
    KVR_CUDA_CHECK(cudaMalloc(&a->q, q));
    KVR_CUDA_CHECK(cudaMalloc(&a->o, q));
    KVR_CUDA_CHECK(cudaMalloc(&a->ref, q));
    KVR_CUDA_CHECK(cudaMalloc(&a->k, kv));
    KVR_CUDA_CHECK(cudaMalloc(&a->v, kv));
    if (b->lse) {
        uint64_t n = (uint64_t)b->c * b->n_heads * sizeof(float);
        KVR_CUDA_CHECK(cudaMalloc((void **)&a->lse, n));
        KVR_CUDA_CHECK(cudaMalloc((void **)&a->ref_lse, n));
        KVR_CUDA_CHECK(cudaMemset(a->lse, 0xff, n)); /* NaN: every row must be written */
    }
    KVR_LAUNCH_CHECK(kvr_cu_fill_random(a->q, q / 2, 1, 1, 1.0f, 0.0f, NULL));
    KVR_LAUNCH_CHECK(kvr_cu_fill_random(a->k, kv / 2, 1, 2, 1.0f, 0.0f, NULL));
    if (b->k_ramp > 0)
        KVR_LAUNCH_CHECK(
            kvr_cu_scale_rows(a->k, b->s + b->c, b->n_kv * b->head_dim, b->k_ramp, NULL));
    KVR_LAUNCH_CHECK(kvr_cu_fill_random(a->v, kv / 2, 1, 3, 1.0f, 0.0f, NULL));
    /* poison the output: every element must be written */
    KVR_CUDA_CHECK(cudaMemset(a->o, 0xff, q));
    KVR_CUDA_CHECK(cudaEventCreate(&a->e0));
    KVR_CUDA_CHECK(cudaEventCreate(&a->e1));
    return KVR_OK;
}

static int launch(const struct kvr_attn_bench *b, const struct attn_bufs *a)
{
    uint64_t qs = (uint64_t)b->n_heads * b->head_dim, kvs = (uint64_t)b->n_kv * b->head_dim;
    return kvr_cu_attention_mt(a->q, qs, a->k, a->v, kvs, a->o, qs, b->s, b->c, b->n_heads, b->n_kv,
                               b->head_dim, b->dense, b->window, a->lse, b->mt, NULL);
}

static enum kvr_status attn_time(struct kvr_attn_bench *b, const struct attn_bufs *a)
{
    double *t = malloc((size_t)b->reps * sizeof *t);
    if (!t) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < b->warmup + b->reps; i++) {
        float ms = 0;
        cudaError_t e = cudaEventRecord(a->e0, NULL);
        if (!e) e = (cudaError_t)launch(b, a);
        if (!e) e = cudaEventRecord(a->e1, NULL);
        if (!e) e = cudaEventSynchronize(a->e1);
        if (!e) e = cudaEventElapsedTime(&ms, a->e0, a->e1);
        if (e) {
            free(t);
            KVR_CUDA_CHECK(e);
        }
        if (i >= b->warmup) t[i - b->warmup] = 1e-3 * ms;
    }
    b->time_s = kvr_quantile(t, (size_t)b->reps, 0.5), b->time_min_s = t[0]; /* sorts t */
    b->tflops = (double)b->flops / b->time_s / 1e12;
    free(t);
    return KVR_OK;
}

/* Largest |lse - lse_ref| (NaN, the poison, wins). */
static enum kvr_status lse_check(struct kvr_attn_bench *b, const struct attn_bufs *a)
{
    uint64_t n = (uint64_t)b->c * b->n_heads;
    float *h = malloc(2 * n * sizeof *h);
    if (!h) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    cudaError_t e = cudaMemcpy(h, a->lse, n * sizeof *h, cudaMemcpyDeviceToHost);
    if (!e) e = cudaMemcpy(h + n, a->ref_lse, n * sizeof *h, cudaMemcpyDeviceToHost);
    double mx = 0;
    for (uint64_t i = 0; !e && i < n; i++) {
        double d = fabs((double)h[i] - h[n + i]);
        if (!(d <= mx)) mx = d;
    }
    free(h);
    KVR_CUDA_CHECK(e);
    b->lse_err = mx;
    return KVR_OK;
}

static enum kvr_status attn_check(struct kvr_attn_bench *b, const struct attn_bufs *a)
{
    uint64_t qs = (uint64_t)b->n_heads * b->head_dim, n = (uint64_t)b->c * qs;
    KVR_LAUNCH_CHECK(kvr_cu_attention_naive(a->q, qs, a->k, a->v, (uint64_t)b->n_kv * b->head_dim,
                                            a->ref, qs, b->s, b->c, b->n_heads, b->n_kv,
                                            b->head_dim, b->window, a->ref_lse, NULL));
    uint16_t *h = malloc(2 * n * sizeof *h);
    if (!h) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    cudaError_t e = cudaMemcpy(h, a->o, 2 * n, cudaMemcpyDeviceToHost);
    if (!e) e = cudaMemcpy(h + n, a->ref, 2 * n, cudaMemcpyDeviceToHost);
    double num = 0, den = 0, mx = 0;
    for (uint64_t i = 0; !e && i < n; i++) {
        double x = kvr_bf16_to_float(h[i]), y = kvr_bf16_to_float(h[n + i]), d = fabs(x - y);
        num += d * d, den += y * y;
        if (!(d <= mx)) mx = d; /* NaN (unwritten, poisoned) wins */
    }
    free(h);
    KVR_CUDA_CHECK(e);
    b->max_abs_err = mx, b->rel_err = den > 0 ? sqrt(num / den) : NAN;
    return b->lse ? lse_check(b, a) : KVR_OK;
}

uint64_t kvr_attn_window_pairs(uint64_t s, uint64_t c, uint64_t window)
{
    if (!window) return kvr_attn_pairs(s, c, KVR_MASK_CAUSAL);
    /* the query at position p sees min(p + 1, window) keys, p in [s, s + c) */
    uint64_t lo = s + 1, hi = s + c, full = window > s ? window : s;
    uint64_t tri_hi = hi < window ? hi : window, tri = 0;
    if (tri_hi >= lo) tri = (lo + tri_hi) * (tri_hi - lo + 1) / 2;
    return tri + (hi > full ? (hi - full) * window : 0);
}

enum kvr_status kvr_exec_bench_attention(struct kvr_attn_bench *b)
{
    enum kvr_status st = kvr_cuda_attn_env_check();
    if (st) return st;
    if (kvr_exec_cuda_devices() == 0)
        return kvr_error(KVR_ERR_INPUT, "kvr bench attention: no CUDA device");
    if ((b->head_dim != 64 && b->head_dim != 128) || !b->n_kv || b->n_heads % b->n_kv || !b->c ||
        b->reps < 1)
        return kvr_error(KVR_ERR_INPUT,
                         "attention: head_dim %u (64 or 128), %u heads over %u KV "
                         "heads, %u queries, %d reps",
                         b->head_dim, b->n_heads, b->n_kv, b->c, b->reps);
    if (kvr_cu_attn_variant_x3(b->mt) && b->head_dim != 64)
        return kvr_error(KVR_ERR_INPUT,
                         "attention: variant %d (three consumer warpgroups) takes "
                         "head_dim 64, not %u",
                         b->mt, b->head_dim);
    b->flops = 4ull * b->head_dim * b->n_heads * kvr_attn_window_pairs(b->s, b->c, b->window);
    struct attn_bufs a = {0};
    st = attn_alloc(b, &a);
    if (!st && b->check) {
        st = launch(b, &a) ? kvr_error(KVR_ERR_RUNTIME, "attention launch failed") : KVR_OK;
        if (!st) st = attn_check(b, &a);
    }
    if (!st) st = attn_time(b, &a);
    attn_free(&a);
    return st;
}

enum kvr_status kvr_exec_device_buffer(int device, size_t bytes, void **p)
{
    KVR_CUDA_CHECK(cudaSetDevice(device));
    KVR_CUDA_CHECK(cudaMalloc(p, bytes ? bytes : 1));
    KVR_CUDA_CHECK(cudaMemset(*p, 0, bytes));
    return KVR_OK;
}

void kvr_exec_device_free(void *p)
{
    cudaFree(p);
}
