/* The cuda backend: bf16 weights and activations with fp32 accumulation, a float32 residual
 * stream, GEMMs through cuBLAS (the residual adds are their beta = 1 accumulate), and the
 * project's own kernels (kvr_cuda_kernels.cu) for norms, rotary, activations and attention.
 * Everything is allocated once, after checking that it fits.
 * This file: set-up and memory, the device's timers and the method table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cuda_gemm.h"
#include "kvr_cuda_int.h"
#include "kvr_cuda_kernels.h"

#define WORKSPACE_BYTES (32ull << 20)

static void sample_free(struct cu *c)
{
    size_t f, t;
    if (cudaMemGetInfo(&f, &t) == cudaSuccess && f < c->free_min) c->free_min = f;
}

static void cu_destroy(void *be)
{
    struct cu *c = be;
    if (!c) return;
    cudaSetDevice(c->device);
    for (int t = 0; t < KVR_N_TENSORS; t++) cudaFree(c->w[t]);
    for (int b = 0; b < KVR_N_BUFS; b++) cudaFree(c->buf[b]);
    cudaFree(c->k), cudaFree(c->v), cudaFree(c->xn_last), cudaFree(c->logits);
    cudaFree(c->tokens), cudaFree(c->workspace), cudaFree(c->rope), cudaFree(c->inv_freq);
    cudaFree(c->ring_q), cudaFree(c->ring_o), cudaFree(c->wide);
    kvr_cu_gemm_close(c->gemm);
    if (c->blas) cublasDestroy(c->blas);
    for (int i = 0; c->stamps && i < KVR_MAX_STAMPS; i++)
        if (c->stamps[i]) cudaEventDestroy(c->stamps[i]);
    free(c->stamps);
    if (c->ev0) cudaEventDestroy(c->ev0);
    if (c->uploaded) cudaEventDestroy(c->uploaded);
    cudaFreeHost(c->tokens_host), cudaFreeHost(c->logits_host);
    if (c->ev1) cudaEventDestroy(c->ev1);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

static enum kvr_status cu_sync(void *be)
{
    KVR_CUDA_CHECK(cudaStreamSynchronize(((struct cu *)be)->stream));
    return KVR_OK;
}

static enum kvr_status cu_timer(void *be, int mark, double *elapsed_s)
{
    struct cu *c = be;
    if (mark == 0) {
        KVR_CUDA_CHECK(cudaEventRecord(c->ev0, c->stream));
        return KVR_OK;
    }
    float ms = 0;
    KVR_CUDA_CHECK(cudaEventRecord(c->ev1, c->stream));
    KVR_CUDA_CHECK(cudaEventSynchronize(c->ev1));
    KVR_CUDA_CHECK(cudaEventElapsedTime(&ms, c->ev0, c->ev1));
    sample_free(c);
    *elapsed_s = 1e-3 * ms;
    return KVR_OK;
}

static enum kvr_status cu_stamp(void *be, uint32_t idx)
{
    struct cu *c = be;
    if (!c->stamps && !(c->stamps = calloc(KVR_MAX_STAMPS, sizeof *c->stamps)))
        return kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!c->stamps[idx]) KVR_CUDA_CHECK(cudaEventCreate(&c->stamps[idx]));
    KVR_CUDA_CHECK(cudaEventRecord(c->stamps[idx], c->stream));
    return KVR_OK;
}

static enum kvr_status cu_stamp_span(void *be, uint32_t a, uint32_t b, double *seconds)
{
    struct cu *c = be;
    float ms = 0;
    KVR_CUDA_CHECK(cudaEventSynchronize(c->stamps[b]));
    KVR_CUDA_CHECK(cudaEventElapsedTime(&ms, c->stamps[a], c->stamps[b]));
    *seconds = 1e-3 * ms;
    return KVR_OK;
}

static void cu_memory(void *be, uint64_t *held, uint64_t *peak)
{
    struct cu *c = be;
    sample_free(c);
    *held = c->held;
    *peak = c->free0 > c->free_min ? c->free0 - c->free_min : 0;
}

/* Dense bf16 tensor-core peak: the datasheet figure where known, else 4096 FLOP per clock per
 * SM (Hopper) at the reported clock. */
static void cu_device(void *be, char *name, int cap, double *peak)
{
    struct cu *c = be;
    struct cudaDeviceProp p;
    int clock_khz = 0;
    if (cudaGetDeviceProperties(&p, c->device) != cudaSuccess) {
        snprintf(name, (size_t)cap, "cuda device %d", c->device);
        *peak = 0;
        return;
    }
    snprintf(name, (size_t)cap, "%s", p.name);
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, c->device);
    if (strstr(p.name, "H100") && strstr(p.name, "PCIe"))
        *peak = 756e12;
    else if (strstr(p.name, "H100") || strstr(p.name, "H200") || strstr(p.name, "H800"))
        *peak = 989.4e12;
    else if (strstr(p.name, "A100"))
        *peak = 312e12;
    else
        *peak = 4096.0 * p.multiProcessorCount * clock_khz * 1e3;
}

static enum kvr_status cu_alloc(struct cu *c, void **p, uint64_t bytes)
{
    KVR_CUDA_CHECK(cudaMalloc(p, bytes ? bytes : 1));
    c->held += bytes;
    return KVR_OK;
}

/* The KV cache, zeroed: rows a rank never receives (a sliding window's trimmed hand-offs,
 * sim/kvr_trim.h) are still read, and masked, by tsp's dense block, so they must not be NaN. */
static enum kvr_status cu_alloc_zero(struct cu *c, void **p, uint64_t bytes)
{
    enum kvr_status st = cu_alloc(c, p, bytes);
    if (st) return st;
    KVR_CUDA_CHECK(cudaMemset(*p, 0, bytes));
    return KVR_OK;
}

static enum kvr_status cu_alloc_all(struct cu *c)
{
    const struct kvr_model *m = &c->m;
    enum kvr_status st = KVR_OK;
    uint64_t kv = 2 * (uint64_t)m->n_layers * c->max_ctx * cu_kv_row(m);
    for (int t = 0; t < KVR_N_TENSORS && !st; t++)
        if (kvr_tensor_present(m, (enum kvr_tensor)t))
            st = cu_alloc(c, &c->w[t],
                          2 * kvr_backend_tensor_numel(m, c->n_vocab, (enum kvr_tensor)t) *
                              (kvr_tensor_is_layer((enum kvr_tensor)t) ? m->n_layers : 1));
    for (int b = 0; b < KVR_N_BUFS && !st; b++)
        st = cu_alloc(c, &c->buf[b], cu_buf_bytes(m, (enum kvr_buf)b) * c->max_chunk);
    if (!st) st = cu_alloc_zero(c, &c->k, kv);
    if (!st) st = cu_alloc_zero(c, &c->v, kv);
    if (!st) st = cu_alloc(c, &c->xn_last, 2ull * m->d_model);
    if (!st) st = cu_alloc(c, (void **)&c->logits, 4ull * m->vocab);
    if (!st) st = cu_alloc(c, (void **)&c->tokens, 4ull * c->max_chunk);
    if (!st) st = cu_alloc(c, &c->workspace, WORKSPACE_BYTES);
    if (!st) st = cu_alloc(c, &c->rope, 4ull * m->head_dim * c->max_chunk);
    if (!st) st = cu_alloc(c, (void **)&c->inv_freq, 4ull * (m->head_dim / 2 + 1));
    return st;
}

static enum kvr_status cu_check_model(const struct kvr_model *m)
{
    if (m->dtype != KVR_DTYPE_BF16) /* the kernels and GEMMs are bf16's */
        return kvr_error(KVR_ERR_INPUT,
                         "--backend cuda: model %s has dtype %s; the cuda backend computes in bf16 "
                         "only (dtype = bf16 in a .ini, \"dtype\": \"bfloat16\" in a "
                         "config.json); --backend ref computes in float32 whatever the dtype",
                         m->name, kvr_dtype_name(m->dtype));
    if (m->rotary && kvr_rotary_dims(m) % 16)
        return kvr_error(KVR_ERR_INPUT,
                         "--backend cuda: model %s rotates %u dimensions per head; the rotary "
                         "kernel takes a multiple of 16",
                         m->name, kvr_rotary_dims(m));
    if (m->head_dim != 64 && m->head_dim != 128)
        return kvr_error(KVR_ERR_INPUT,
                         "--backend cuda: model %s has head_dim %u; the attention kernel takes 64 "
                         "or 128",
                         m->name, m->head_dim);
    if ((uint64_t)m->vocab * m->d_model > INT32_MAX || kvr_up_width(m) > INT32_MAX)
        return kvr_error(KVR_ERR_INPUT, "--backend cuda: model %s is too wide for cuBLAS", m->name);
    return KVR_OK;
}

enum kvr_status kvr_cuda_attn_env_check(void)
{
    struct kvr_exec_env env; /* the attention's switches are among them: one parse of all */
    return kvr_exec_env_read(&env);
}

static enum kvr_status cu_setup(struct cu *c, int device)
{
    size_t total;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return kvr_error(KVR_ERR_INPUT, "--backend cuda: no CUDA device (%s)",
                         e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    if (device >= n)
        return kvr_error(KVR_ERR_INPUT, "--device %d: this machine has %d CUDA device%s", device, n,
                         n == 1 ? "" : "s");
    KVR_CUDA_CHECK(cudaSetDevice(device));
    KVR_CUDA_CHECK(cudaMemGetInfo(&c->free0, &total));
    c->free_min = c->free0;
    uint64_t need = kvr_cuda_bytes_needed(&c->m, c->max_ctx, c->max_chunk);
    if (need > c->free0)
        return kvr_error(KVR_ERR_INPUT,
                         "%s at %u tokens needs %.2f GB of GPU memory (weights, KV cache and "
                         "activations); device %d has %.2f GB free of %.2f GB",
                         c->m.name, c->max_ctx, need / 1e9, device, c->free0 / 1e9, total / 1e9);
    KVR_CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    KVR_CUDA_CHECK(cudaEventCreate(&c->ev0));
    KVR_CUDA_CHECK(cudaEventCreate(&c->ev1));
    KVR_CUDA_CHECK(cudaEventCreateWithFlags(&c->uploaded, cudaEventDisableTiming));
    KVR_CUDA_CHECK(cudaMallocHost((void **)&c->tokens_host, 4ull * c->max_chunk));
    KVR_CUDA_CHECK(cudaMallocHost((void **)&c->logits_host, 4ull * c->m.vocab));
    KVR_CUBLAS_CHECK(cublasCreate(&c->blas));
    KVR_CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
    enum kvr_status st = cu_alloc_all(c);
    if (st) return st;
    KVR_CUBLAS_CHECK(cublasSetWorkspace(c->blas, c->workspace, WORKSPACE_BYTES));
    /* KVR_GEMM_TUNE=0 keeps every GEMM on cublasGemmEx (the plain path, for measurements side
     * by side); KVR_GEMM_OWN (kvr_cu_gemm_open's own) 0, 1 (unset) or 2; KVR_GEMM_SPLIT=0 keeps
     * the own kernel's last round whole (the split's A/B); kvr_exec_open checked them all */
    struct kvr_exec_env env;
    if ((st = kvr_exec_env_read(&env)) ||
        (st = kvr_cu_gemm_open(&c->gemm, c->blas, c->stream, c->workspace, WORKSPACE_BYTES,
                               env.tune, env.own, env.split)))
        return st;
    return kvr_cuda_set_prompt(c, c->max_ctx);
}

uint64_t kvr_cuda_free_bytes(int device)
{
    size_t f = 0, t = 0;
    if (cudaSetDevice(device) != cudaSuccess || cudaMemGetInfo(&f, &t) != cudaSuccess) return 0;
    return f;
}

void kvr_cuda_driver_version(char *buf, size_t cap)
{
    int v = 0;
    if (cudaDriverGetVersion(&v) != cudaSuccess) v = 0;
    snprintf(buf, cap, "CUDA driver %d.%d", v / 1000, v % 1000 / 10);
}

static const struct kvr_backend_ops cu_ops = {
    .name = "cuda",
    .destroy = cu_destroy,
    .set_tensor = kvr_cuda_set_tensor,
    .upload = kvr_cuda_upload,
    .embed = kvr_cuda_embed,
    .norm = kvr_cuda_norm,
    .linear = kvr_cuda_linear,
    .rotary = kvr_cuda_rotary,
    .set_prompt = kvr_cuda_set_prompt,
    .attention = kvr_cuda_attention,
    .activation = kvr_cuda_activation,
    .linear_act = kvr_cuda_linear_act,
    .qkv_rotary = kvr_cuda_qkv_rotary,
    .logits = kvr_cuda_logits,
    .logits_read = kvr_cuda_logits_read,
    .kv_read = kvr_cuda_kv_read,
    .kv_copy = kvr_cuda_kv_copy,
    .kv_elem_bytes = 2,
    .kv_device = kvr_cuda_kv_device,
    .sync = cu_sync,
    .timer = cu_timer,
    .stamp = cu_stamp,
    .stamp_span = cu_stamp_span,
    .memory = cu_memory,
    .device = cu_device,
    .rotary_rows = kvr_cuda_rotary_rows,
    .ring_setup = kvr_cuda_ring_setup,
    .wide_area = kvr_cuda_wide_area,
    .kv_regroup = kvr_cuda_kv_regroup,
    .ring_q_pack = kvr_cuda_ring_q_pack,
    .ring_attn = kvr_cuda_ring_attn,
    .ring_merge = kvr_cuda_ring_merge,
    .ring_finish = kvr_cuda_ring_finish,
    .ring_area = kvr_cuda_ring_area,
    .ring_copy = kvr_cuda_ring_copy,
    .keep_row = kvr_cuda_keep_row,
    .x_area = kvr_cuda_x_area,
    .x_copy = kvr_cuda_x_copy,
    .seed_rows = kvr_cuda_seed_rows,
};

enum kvr_status kvr_cuda_create(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk,
                                uint32_t v0, uint32_t n_vocab, int device, struct kvr_backend *out)
{
    enum kvr_status st = cu_check_model(m);
    if (st) return st;
    struct cu *c = calloc(1, sizeof *c);
    if (!c) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    c->m = *m, c->max_ctx = max_ctx, c->max_chunk = max_chunk, c->device = device;
    c->v0 = v0, c->n_vocab = n_vocab;
    if ((st = cu_setup(c, device))) {
        cu_destroy(c);
        return st;
    }
    *out = (struct kvr_backend){&cu_ops, c};
    return KVR_OK;
}
