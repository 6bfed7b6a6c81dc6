/* The cuda backend: bf16 weights and activations with fp32 accumulation, a float32 residual
 * stream, GEMMs through cuBLAS (the residual adds are their beta = 1 accumulate), and the
 * project's own kernels (kvr_cuda_kernels.cu) for norms, rotary, activations and attention.
 * Everything is allocated once, after checking that it fits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_backend.h"
#include "kvr_cuda_check.h"
#include "kvr_cuda_gemm.h"
#include "kvr_cuda_kernels.h"
#include "kvr_cuda_ring.h"
#include "kvr_cuda_tp.h"

#define WORKSPACE_BYTES (32ull << 20)

struct cu {
    struct kvr_model m;
    uint32_t max_ctx, max_chunk;
    cudaStream_t stream;
    cublasHandle_t blas;
    struct kvr_cu_gemm *gemm; /* the GEMMs: cublasGemmEx or a timed cuBLASLt algorithm */
    cudaEvent_t ev0, ev1;
    cudaEvent_t *stamps;     /* KVR_MAX_STAMPS, created on first use */
    void *w[KVR_N_TENSORS];  /* bf16; [layer][numel] for layer tensors */
    void *buf[KVR_N_BUFS];   /* X float32, the others bf16 */
    void *k, *v;             /* bf16 [layer][max_ctx][kv][hd] */
    void *xn_last;           /* bf16 [d]: final norm of one row */
    float *logits;           /* [vocab] */
    int32_t *tokens;         /* [max_chunk] */
    int32_t *tokens_host;    /* pinned [max_chunk]: the upload's staging, so it runs async */
    float *logits_host;      /* pinned [vocab]: the logits' download staging */
    cudaEvent_t uploaded;    /* the last token upload is done: tokens_host is free again */
    void *rope;              /* float2 [max_chunk][hd/2]: rotary cos, sin of positions rope_s.. */
    uint32_t rope_s, rope_c; /* what the table holds (rope_c = 0: nothing) */
    float *inv_freq;         /* device [rot/2]: kvr_rope_inv_freq for the prompt's length */
    float rope_scale;        /* multiplies cos and sin (yarn's attention factor) */
    void *workspace;
    size_t free0, free_min; /* device memory free before we started, and the least seen */
    uint64_t held;
    int device;
    /* ring attention's workspace (kvr_exec_ring_setup), allocated on first use */
    void *ring_q;  /* bf16 [n_q][rows][n_heads hd] */
    float *ring_o; /* [n_o][rows][n_heads hd + n_heads] */
    uint32_t ring_rows;
    uint64_t ring_bytes;
    uint32_t v0, n_vocab; /* the LM head's rows (kvr_cuda_create) */
};

static uint64_t buf_bytes(const struct kvr_model *m, enum kvr_buf b)
{
    switch (b) {
    case KVR_BUF_X:
        return 4ull * m->d_model;
    case KVR_BUF_QKV:
        return 2 * kvr_qkv_width(m);
    case KVR_BUF_ATT:
        return 2ull * m->n_heads * m->head_dim;
    case KVR_BUF_UP:
        return 2 * kvr_up_width(m);
    case KVR_BUF_ACT:
        return 2ull * m->d_ffn;
    default:
        return 2ull * m->d_model;
    }
}

static uint64_t layer_stride(const struct kvr_model *m, enum kvr_tensor t)
{
    return kvr_tensor_is_layer(t) ? kvr_tensor_numel(m, t) : 0;
}

static void *tensor(struct cu *c, enum kvr_tensor t, uint32_t layer)
{
    if (!c->w[t]) return NULL;
    return (char *)c->w[t] + 2 * layer * layer_stride(&c->m, t);
}

static uint64_t kv_row(const struct kvr_model *m)
{
    return (uint64_t)m->n_kv_heads * m->head_dim;
}

static void *kv_at(struct cu *c, void *base, uint32_t layer, uint32_t pos)
{
    return (char *)base + 2 * ((uint64_t)layer * c->max_ctx + pos) * kv_row(&c->m);
}

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
    cudaFree(c->ring_q), cudaFree(c->ring_o);
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

static enum kvr_status cu_set_tensor(void *be, enum kvr_tensor t, uint32_t layer, const float *data)
{
    struct cu *c = be;
    void *dst = tensor(c, t, layer);
    if (!dst)
        return kvr_error(KVR_ERR_INPUT, "model %s has no tensor %s", c->m.name, kvr_tensor_name(t));
    uint64_t n = kvr_backend_tensor_numel(&c->m, c->n_vocab, t);
    uint16_t *h = malloc(n * sizeof *h);
    if (!h) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) h[i] = kvr_float_to_bf16(data[i]);
    cudaError_t e = cudaMemcpy(dst, h, n * 2, cudaMemcpyHostToDevice);
    free(h);
    KVR_CUDA_CHECK(e);
    return KVR_OK;
}

static enum kvr_status cu_upload(void *be, const int32_t *tokens, uint32_t n)
{
    struct cu *c = be;
    /* through pinned memory: a pageable upload stalls the host for a variable time */
    KVR_CUDA_CHECK(cudaEventSynchronize(c->uploaded));
    memcpy(c->tokens_host, tokens, n * sizeof *tokens);
    KVR_CUDA_CHECK(cudaMemcpyAsync(c->tokens, c->tokens_host, n * sizeof *tokens,
                                   cudaMemcpyHostToDevice, c->stream));
    KVR_CUDA_CHECK(cudaEventRecord(c->uploaded, c->stream));
    return KVR_OK;
}

static enum kvr_status cu_embed(void *be, uint32_t n)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(
        kvr_cu_embed(c->buf[KVR_BUF_X], c->w[KVR_T_EMBED], c->tokens, n, c->m.d_model, c->stream));
    return KVR_OK;
}

static enum kvr_status cu_norm(void *be, enum kvr_buf out, enum kvr_tensor w, uint32_t layer,
                               uint32_t n)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(kvr_cu_norm(c->buf[out], c->buf[KVR_BUF_X], tensor(c, w, layer),
                                 tensor(c, (enum kvr_tensor)(w + 1), layer), n, c->m.d_model,
                                 c->m.norm == KVR_NORM_LAYERNORM, (float)c->m.norm_eps, c->stream));
    return KVR_OK;
}

/* out[rows][n] (+)= in[rows][k] W[n][k]^T (kvr_cuda_gemm.c); an accumulate's tuning times on
 * UP, which no accumulating GEMM reads or writes. */
static enum kvr_status gemm(struct cu *c, void *out, int out_f32, const void *in, const void *w,
                            uint64_t rows, uint64_t n, uint64_t k, bool accumulate)
{
    return kvr_cu_gemm(c->gemm, out, out_f32, in, w, rows, n, k, accumulate, c->buf[KVR_BUF_UP],
                       buf_bytes(&c->m, KVR_BUF_UP) * c->max_chunk);
}

static enum kvr_status cu_linear(void *be, enum kvr_buf out, enum kvr_buf in, enum kvr_tensor w,
                                 uint32_t layer, uint32_t n, bool accumulate)
{
    struct cu *c = be;
    struct kvr_tensor_shape sh = kvr_tensor_shape(&c->m, w);
    enum kvr_status st = gemm(c, c->buf[out], out == KVR_BUF_X, c->buf[in], tensor(c, w, layer), n,
                              sh.rows, sh.cols, accumulate);
    void *bias = tensor(c, (enum kvr_tensor)(w + 1), layer);
    if (!st && bias)
        KVR_LAUNCH_CHECK(
            kvr_cu_add_bias(c->buf[out], out == KVR_BUF_X, bias, n, (uint32_t)sh.rows, c->stream));
    return st;
}

static enum kvr_status cu_rotary(void *be, uint32_t layer, uint32_t s, uint32_t n)
{
    struct cu *c = be;
    const struct kvr_model *m = &c->m;
    if (m->rotary && (c->rope_s != s || c->rope_c < n)) { /* once per chunk, not per layer */
        KVR_LAUNCH_CHECK(kvr_cu_rope_table(c->rope, s, n, kvr_rotary_dims(m), c->inv_freq,
                                           c->rope_scale, c->stream));
        c->rope_s = s, c->rope_c = n;
    }
    KVR_LAUNCH_CHECK(kvr_cu_rotary(c->buf[KVR_BUF_QKV], kv_at(c, c->k, layer, 0),
                                   kv_at(c, c->v, layer, 0), m->rotary ? c->rope : NULL, s, n,
                                   m->n_heads, m->n_kv_heads, m->head_dim, kvr_rotary_dims(m),
                                   c->stream));
    return KVR_OK;
}

/* The rotary frequencies of a prompt of ctx tokens (dynamic NTK reads ctx), to the device. */
static enum kvr_status cu_set_prompt(void *be, uint32_t ctx)
{
    struct cu *c = be;
    uint32_t half = kvr_rotary_dims(&c->m) / 2;
    if (!c->m.rotary || !half) return KVR_OK;
    double *f = malloc(half * sizeof *f), scale = 1;
    float *ff = malloc(half * sizeof *ff);
    if (!f || !ff) return free(f), free(ff), kvr_error(KVR_ERR_NOMEM, "out of memory");
    kvr_rope_inv_freq(&c->m, ctx, f, &scale);
    for (uint32_t j = 0; j < half; j++) ff[j] = (float)f[j];
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e == cudaSuccess)
        e = cudaMemcpy(c->inv_freq, ff, half * sizeof(float), cudaMemcpyHostToDevice);
    free(f), free(ff);
    KVR_CUDA_CHECK(e);
    c->rope_scale = (float)scale;
    c->rope_c = 0; /* the table is stale */
    return KVR_OK;
}

static enum kvr_status cu_attention(void *be, uint32_t layer, uint32_t s, uint32_t n,
                                    enum kvr_mask mask)
{
    struct cu *c = be;
    const struct kvr_model *m = &c->m;
    KVR_LAUNCH_CHECK(kvr_cu_attention(
        c->buf[KVR_BUF_QKV], kvr_qkv_width(m), kv_at(c, c->k, layer, 0), kv_at(c, c->v, layer, 0),
        kv_row(m), c->buf[KVR_BUF_ATT], (uint64_t)m->n_heads * m->head_dim, s, n, m->n_heads,
        m->n_kv_heads, m->head_dim, mask == KVR_MASK_DENSE, m->sliding_window, NULL, c->stream));
    return KVR_OK;
}

static enum kvr_status cu_activation(void *be, uint32_t n)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(kvr_cu_activation(c->buf[KVR_BUF_ACT], c->buf[KVR_BUF_UP], n, c->m.d_ffn,
                                       c->m.mlp == KVR_MLP_SWIGLU, c->stream));
    return KVR_OK;
}

static enum kvr_status cu_logits(void *be, uint32_t row)
{
    struct cu *c = be;
    const struct kvr_model *m = &c->m;
    KVR_LAUNCH_CHECK(kvr_cu_norm(c->xn_last,
                                 (float *)c->buf[KVR_BUF_X] + (uint64_t)row * m->d_model,
                                 c->w[KVR_T_FINAL_NORM_W], c->w[KVR_T_FINAL_NORM_B], 1, m->d_model,
                                 m->norm == KVR_NORM_LAYERNORM, (float)m->norm_eps, c->stream));
    const void *head = m->tied_embeddings
                           ? (const char *)c->w[KVR_T_EMBED] + 2ull * c->v0 * m->d_model
                           : c->w[KVR_T_LM_HEAD];
    KVR_LAUNCH_CHECK(kvr_cu_gemv(c->logits, head, c->xn_last, c->n_vocab, m->d_model, c->stream));
    return KVR_OK;
}

static enum kvr_status cu_logits_read(void *be, float *out)
{
    struct cu *c = be;
    KVR_CUDA_CHECK(cudaMemcpyAsync(c->logits_host, c->logits, c->n_vocab * sizeof(float),
                                   cudaMemcpyDeviceToHost, c->stream));
    KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    memcpy(out, c->logits_host, c->n_vocab * sizeof(float));
    return KVR_OK;
}

static enum kvr_status cu_kv_read(void *be, uint32_t layer, uint32_t pos0, uint32_t n, float *k,
                                  float *v)
{
    struct cu *c = be;
    uint64_t count = (uint64_t)n * kv_row(&c->m);
    uint16_t *h = malloc(2 * count * sizeof *h);
    if (!h) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e == cudaSuccess)
        e = cudaMemcpy(h, kv_at(c, c->k, layer, pos0), 2 * count, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess)
        e = cudaMemcpy(h + count, kv_at(c, c->v, layer, pos0), 2 * count, cudaMemcpyDeviceToHost);
    for (uint64_t i = 0; e == cudaSuccess && i < count; i++)
        k[i] = kvr_bf16_to_float(h[i]), v[i] = kvr_bf16_to_float(h[count + i]);
    free(h);
    KVR_CUDA_CHECK(e);
    return KVR_OK;
}

static enum kvr_status cu_kv_copy(void *be, uint32_t layer, uint32_t pos0, uint32_t n, void *k,
                                  void *v, bool to_host)
{
    struct cu *c = be;
    size_t bytes = 2 * (size_t)n * kv_row(&c->m);
    void *ck = kv_at(c, c->k, layer, pos0), *cv = kv_at(c, c->v, layer, pos0);
    enum cudaMemcpyKind kind = to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
    KVR_CUDA_CHECK(cudaMemcpyAsync(to_host ? k : ck, to_host ? ck : k, bytes, kind, c->stream));
    KVR_CUDA_CHECK(cudaMemcpyAsync(to_host ? v : cv, to_host ? cv : v, bytes, kind, c->stream));
    KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return KVR_OK;
}

static enum kvr_status cu_kv_device(void *be, uint32_t layer, uint32_t pos, void **k, void **v)
{
    struct cu *c = be;
    *k = kv_at(c, c->k, layer, pos), *v = kv_at(c, c->v, layer, pos);
    return KVR_OK;
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
    uint64_t kv = 2 * (uint64_t)m->n_layers * c->max_ctx * kv_row(m);
    for (int t = 0; t < KVR_N_TENSORS && !st; t++)
        if (kvr_tensor_present(m, (enum kvr_tensor)t))
            st = cu_alloc(c, &c->w[t],
                          2 * kvr_backend_tensor_numel(m, c->n_vocab, (enum kvr_tensor)t) *
                              (kvr_tensor_is_layer((enum kvr_tensor)t) ? m->n_layers : 1));
    for (int b = 0; b < KVR_N_BUFS && !st; b++)
        st = cu_alloc(c, &c->buf[b], buf_bytes(m, (enum kvr_buf)b) * c->max_chunk);
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

/* KVR_GEMM_TUNE=0 in the environment keeps every GEMM on cublasGemmEx (the plain path, for
 * measurements side by side); unset or 1 times cuBLASLt's algorithms per shape. */
static enum kvr_status gemm_tune(bool *on)
{
    const char *e = getenv("KVR_GEMM_TUNE");
    *on = !e || !strcmp(e, "1");
    if (e && strcmp(e, "0") && strcmp(e, "1"))
        return kvr_error(KVR_ERR_INPUT, "KVR_GEMM_TUNE=%s (environment): 0 or 1", e);
    return KVR_OK;
}

enum kvr_status kvr_cuda_attn_persist_check(void)
{
    if (kvr_cu_attention_persist_env() != -2) return KVR_OK;
    return kvr_error(KVR_ERR_INPUT, "KVR_ATTN_PERSIST=%s (environment): 0 or 1",
                     getenv("KVR_ATTN_PERSIST"));
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
    bool tune = true;
    if ((st = gemm_tune(&tune)) || (st = kvr_cuda_attn_persist_check()) ||
        (st = kvr_cu_gemm_open(&c->gemm, c->blas, c->stream, c->workspace, WORKSPACE_BYTES, tune)))
        return st;
    return cu_set_prompt(c, c->max_ctx);
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

/* Ring attention: bf16 query slots, float output slots (kvr_cuda_ring.cu's fast path: the
 * warp-specialised kernel on each block, vectorised merge and finish; rows padded to 16 bytes). */
static uint64_t ring_q_width(const struct kvr_model *m)
{
    return (uint64_t)m->n_heads * m->head_dim;
}

static uint64_t ring_o_width(const struct kvr_model *m)
{
    return ((uint64_t)m->n_heads * (m->head_dim + 1) + 3) / 4 * 4;
}

static void *ring_q_at(struct cu *c, uint32_t slot)
{
    return (char *)c->ring_q + 2 * (uint64_t)slot * c->ring_rows * ring_q_width(&c->m);
}

static float *ring_o_at(struct cu *c, uint32_t slot)
{
    return c->ring_o + (uint64_t)slot * c->ring_rows * ring_o_width(&c->m);
}

/* The rotary of QKV's rows [row0, row0+n): the whole-chunk rotary on a view that starts there. */
static enum kvr_status cu_rotary_rows(void *be, uint32_t layer, uint32_t row0, uint32_t s,
                                      uint32_t n)
{
    struct cu *c = be;
    void *whole = c->buf[KVR_BUF_QKV];
    c->buf[KVR_BUF_QKV] = (char *)whole + 2 * (uint64_t)row0 * kvr_qkv_width(&c->m);
    enum kvr_status st = cu_rotary(be, layer, s, n);
    c->buf[KVR_BUF_QKV] = whole;
    return st;
}

static enum kvr_status cu_ring_setup(void *be, uint32_t rows, uint32_t n_q, uint32_t n_o)
{
    struct cu *c = be;
    KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    cudaFree(c->ring_q), cudaFree(c->ring_o);
    c->held -= c->ring_bytes;
    c->ring_q = NULL, c->ring_o = NULL, c->ring_rows = 0, c->ring_bytes = 0;
    uint64_t qb = 2 * (uint64_t)n_q * rows * ring_q_width(&c->m);
    uint64_t ob = 4 * (uint64_t)n_o * rows * ring_o_width(&c->m);
    if (cudaMalloc(&c->ring_q, qb ? qb : 1) != cudaSuccess ||
        cudaMalloc((void **)&c->ring_o, ob) != cudaSuccess) {
        cudaGetLastError();
        return kvr_error(KVR_ERR_INPUT,
                         "--backend cuda: the ring attention workspace (%.3g GB for %u rows) "
                         "does not fit beside the model",
                         (double)(qb + ob) / 1e9, rows);
    }
    c->held += qb + ob;
    c->ring_rows = rows, c->ring_bytes = qb + ob;
    return KVR_OK;
}

static enum kvr_status cu_ring_q_pack(void *be, uint32_t q_slot, uint32_t n)
{
    struct cu *c = be;
    uint64_t w = ring_q_width(&c->m);
    KVR_CUDA_CHECK(cudaMemcpy2DAsync(ring_q_at(c, q_slot), 2 * w, c->buf[KVR_BUF_QKV],
                                     2 * kvr_qkv_width(&c->m), 2 * w, n, cudaMemcpyDeviceToDevice,
                                     c->stream));
    return KVR_OK;
}

static struct kvr_cu_span cu_span(const struct kvr_span *s)
{
    return (struct kvr_cu_span){{s->pos[0], s->pos[1]}, {s->n[0], s->n[1]}};
}

static enum kvr_status cu_ring_attn(void *be, uint32_t layer, int q_slot, const struct kvr_span *q,
                                    const struct kvr_span *k, uint32_t window, uint32_t o_slot)
{
    struct cu *c = be;
    const struct kvr_model *m = &c->m;
    const void *qp = q_slot < 0 ? c->buf[KVR_BUF_QKV] : ring_q_at(c, (uint32_t)q_slot);
    uint64_t qs = q_slot < 0 ? kvr_qkv_width(m) : ring_q_width(m);
    KVR_LAUNCH_CHECK(
        kvr_cu_ring_attn_fast(qp, qs, kv_at(c, c->k, layer, 0), kv_at(c, c->v, layer, 0), kv_row(m),
                              ring_o_at(c, o_slot), ring_o_width(m), cu_span(q), cu_span(k), window,
                              m->n_heads, m->n_kv_heads, m->head_dim, c->stream));
    return KVR_OK;
}

static enum kvr_status cu_ring_merge(void *be, uint32_t dst, uint32_t src, uint32_t n)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(kvr_cu_ring_merge_fast(ring_o_at(c, dst), ring_o_at(c, src),
                                            ring_o_width(&c->m), n, c->m.n_heads, c->m.head_dim,
                                            c->stream));
    return KVR_OK;
}

static enum kvr_status cu_ring_finish(void *be, uint32_t o_slot, uint32_t n)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(kvr_cu_ring_finish_fast(c->buf[KVR_BUF_ATT], ring_o_at(c, o_slot),
                                             ring_o_width(&c->m), n, c->m.n_heads, c->m.head_dim,
                                             c->stream));
    return KVR_OK;
}

static enum kvr_status cu_ring_area(void *be, enum kvr_ring_part part, uint32_t slot, void **ptr,
                                    size_t *row_bytes)
{
    struct cu *c = be;
    *ptr = part == KVR_RING_Q ? ring_q_at(c, slot) : (void *)ring_o_at(c, slot);
    *row_bytes = part == KVR_RING_Q ? 2 * ring_q_width(&c->m) : 4 * ring_o_width(&c->m);
    return KVR_OK;
}

static enum kvr_status cu_ring_copy(void *be, enum kvr_ring_part part, uint32_t slot, uint32_t n,
                                    void *host, bool to_host)
{
    struct cu *c = be;
    void *at;
    size_t row;
    cu_ring_area(be, part, slot, &at, &row);
    KVR_CUDA_CHECK(cudaMemcpyAsync(to_host ? host : at, to_host ? at : host, n * row,
                                   to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice,
                                   c->stream));
    KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return KVR_OK;
}

static enum kvr_status cu_keep_row(void *be, enum kvr_buf b, uint32_t row)
{
    struct cu *c = be;
    uint64_t w = buf_bytes(&c->m, b);
    KVR_CUDA_CHECK(cudaMemcpyAsync(c->buf[b], (char *)c->buf[b] + row * w, w,
                                   cudaMemcpyDeviceToDevice, c->stream));
    return KVR_OK;
}

/* Tensor parallelism: the residual stream for the stage's all-reduce. */
static enum kvr_status cu_x_area(void *be, float **x)
{
    *x = ((struct cu *)be)->buf[KVR_BUF_X];
    return KVR_OK;
}

static enum kvr_status cu_x_copy(void *be, uint32_t n, float *host, bool to_host)
{
    struct cu *c = be;
    size_t bytes = (size_t)n * c->m.d_model * sizeof(float);
    void *x = c->buf[KVR_BUF_X];
    KVR_CUDA_CHECK(cudaMemcpyAsync(to_host ? host : x, to_host ? x : host, bytes,
                                   to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice,
                                   c->stream));
    KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return KVR_OK;
}

/* A shard's seeded slice on the device (kvr_cuda_tp.cu). */
static enum kvr_status cu_seed_rows(void *be, enum kvr_tensor t, uint32_t layer, uint64_t dst0,
                                    uint64_t rows, uint64_t row_len, uint64_t dst_stride,
                                    uint64_t src0, uint64_t src_stride, uint64_t seed,
                                    const struct kvr_init_rule *r)
{
    struct cu *c = be;
    char *dst = tensor(c, t, layer);
    if (!dst) return kvr_error(KVR_ERR_INPUT, "no tensor %s", kvr_tensor_name(t));
    KVR_LAUNCH_CHECK(kvr_cu_fill_random_rows(dst + 2 * dst0, rows, row_len, dst_stride, src0,
                                             src_stride, seed, r->stream, r->scale, r->offset,
                                             c->stream));
    return KVR_OK; /* on the stream: kvr_exec_tp_seed syncs once */
}

static const struct kvr_backend_ops cu_ops = {
    .name = "cuda",
    .destroy = cu_destroy,
    .set_tensor = cu_set_tensor,
    .upload = cu_upload,
    .embed = cu_embed,
    .norm = cu_norm,
    .linear = cu_linear,
    .rotary = cu_rotary,
    .set_prompt = cu_set_prompt,
    .attention = cu_attention,
    .activation = cu_activation,
    .logits = cu_logits,
    .logits_read = cu_logits_read,
    .kv_read = cu_kv_read,
    .kv_copy = cu_kv_copy,
    .kv_elem_bytes = 2,
    .kv_device = cu_kv_device,
    .sync = cu_sync,
    .timer = cu_timer,
    .stamp = cu_stamp,
    .stamp_span = cu_stamp_span,
    .memory = cu_memory,
    .device = cu_device,
    .rotary_rows = cu_rotary_rows,
    .ring_setup = cu_ring_setup,
    .ring_q_pack = cu_ring_q_pack,
    .ring_attn = cu_ring_attn,
    .ring_merge = cu_ring_merge,
    .ring_finish = cu_ring_finish,
    .ring_area = cu_ring_area,
    .ring_copy = cu_ring_copy,
    .keep_row = cu_keep_row,
    .x_area = cu_x_area,
    .x_copy = cu_x_copy,
    .seed_rows = cu_seed_rows,
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
