/* The cuda backend's layer operations (embedding, norms, GEMMs with their biases, rotary,
 * attention, activation, logits) and its KV cache's transfers, each a launch on the stream. */
#include <stdlib.h>
#include <string.h>

#include "kvr_cuda_gemm.h"
#include "kvr_cuda_int.h"
#include "kvr_cuda_kernels.h"

enum kvr_status kvr_cuda_set_tensor(void *be, enum kvr_tensor t, uint32_t layer, const float *data)
{
    struct cu *c = be;
    void *dst = cu_tensor(c, t, layer);
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

enum kvr_status kvr_cuda_upload(void *be, const int32_t *tokens, uint32_t n)
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

enum kvr_status kvr_cuda_embed(void *be, uint32_t n)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(
        kvr_cu_embed(c->buf[KVR_BUF_X], c->w[KVR_T_EMBED], c->tokens, n, c->m.d_model, c->stream));
    return KVR_OK;
}

enum kvr_status kvr_cuda_norm(void *be, enum kvr_buf out, enum kvr_tensor w, uint32_t layer,
                              uint32_t n)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(kvr_cu_norm(c->buf[out], c->buf[KVR_BUF_X], cu_tensor(c, w, layer),
                                 cu_tensor(c, (enum kvr_tensor)(w + 1), layer), n, c->m.d_model,
                                 c->m.norm == KVR_NORM_LAYERNORM, (float)c->m.norm_eps, c->stream));
    return KVR_OK;
}

/* out[rows][n] (+)= in[rows][k] W[n][k]^T (kvr_cuda_gemm.c); an accumulate's tuning times on
 * UP, which no accumulating GEMM reads or writes. */
static enum kvr_status gemm(struct cu *c, void *out, int out_f32, const void *in, const void *w,
                            uint64_t rows, uint64_t n, uint64_t k, bool accumulate)
{
    return kvr_cu_gemm(c->gemm, out, out_f32, in, w, rows, n, k, accumulate, c->buf[KVR_BUF_UP],
                       cu_buf_bytes(&c->m, KVR_BUF_UP) * c->max_chunk);
}

enum kvr_status kvr_cuda_linear(void *be, enum kvr_buf out, enum kvr_buf in, enum kvr_tensor w,
                                uint32_t layer, uint32_t n, bool accumulate)
{
    struct cu *c = be;
    struct kvr_tensor_shape sh = kvr_tensor_shape(&c->m, w);
    enum kvr_status st = gemm(c, c->buf[out], out == KVR_BUF_X, c->buf[in], cu_tensor(c, w, layer),
                              n, sh.rows, sh.cols, accumulate);
    void *bias = cu_tensor(c, (enum kvr_tensor)(w + 1), layer);
    if (!st && bias)
        KVR_LAUNCH_CHECK(
            kvr_cu_add_bias(c->buf[out], out == KVR_BUF_X, bias, n, (uint32_t)sh.rows, c->stream));
    return st;
}

/* The rotary table of positions [s, s+n): once per chunk, not per layer. */
static enum kvr_status rope_table(struct cu *c, uint32_t s, uint32_t n)
{
    const struct kvr_model *m = &c->m;
    if (m->rotary && (c->rope_s != s || c->rope_c < n)) {
        KVR_LAUNCH_CHECK(kvr_cu_rope_table(c->rope, s, n, kvr_rotary_dims(m), c->inv_freq,
                                           c->rope_scale, c->stream));
        c->rope_s = s, c->rope_c = n;
    }
    return KVR_OK;
}

enum kvr_status kvr_cuda_rotary(void *be, uint32_t layer, uint32_t s, uint32_t n)
{
    struct cu *c = be;
    const struct kvr_model *m = &c->m;
    enum kvr_status st = rope_table(c, s, n);
    if (st) return st;
    KVR_LAUNCH_CHECK(kvr_cu_rotary(c->buf[KVR_BUF_QKV], cu_kv_at(c, c->k, layer, 0),
                                   cu_kv_at(c, c->v, layer, 0), m->rotary ? c->rope : NULL, s, n,
                                   m->n_heads, m->n_kv_heads, m->head_dim, kvr_rotary_dims(m),
                                   c->stream));
    return KVR_OK;
}

/* The rotary frequencies of a prompt of ctx tokens (dynamic NTK reads ctx), to the device. */
enum kvr_status kvr_cuda_set_prompt(void *be, uint32_t ctx)
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

enum kvr_status kvr_cuda_attention(void *be, uint32_t layer, uint32_t s, uint32_t n,
                                   enum kvr_mask mask)
{
    struct cu *c = be;
    const struct kvr_model *m = &c->m;
    KVR_LAUNCH_CHECK(
        kvr_cu_attention(c->buf[KVR_BUF_QKV], kvr_qkv_width(m), cu_kv_at(c, c->k, layer, 0),
                         cu_kv_at(c, c->v, layer, 0), cu_kv_row(m), c->buf[KVR_BUF_ATT],
                         (uint64_t)m->n_heads * m->head_dim, s, n, m->n_heads, m->n_kv_heads,
                         m->head_dim, mask == KVR_MASK_DENSE, m->sliding_window, NULL, c->stream));
    return KVR_OK;
}

/* QKV with rotary and the cache write in the GEMM's epilogue where timing chose it
 * (kvr_cu_gemm_qkv_rope): without a QKV bias (it is added between the GEMM and rotary), with
 * every dimension rotated (or none). */
enum kvr_status kvr_cuda_qkv_rotary(void *be, uint32_t layer, uint32_t s, uint32_t n, bool *fused)
{
    struct cu *c = be;
    const struct kvr_model *m = &c->m;
    struct kvr_tensor_shape sh = kvr_tensor_shape(m, KVR_T_WQKV);
    *fused = false;
    if (cu_tensor(c, (enum kvr_tensor)(KVR_T_WQKV + 1), layer) ||
        (m->rotary && kvr_rotary_dims(m) != m->head_dim))
        return kvr_cuda_linear(be, KVR_BUF_QKV, KVR_BUF_XN, KVR_T_WQKV, layer, n, false);
    enum kvr_status st = rope_table(c, s, n);
    if (st) return st;
    struct kvr_gemm_rope r = {.q = c->buf[KVR_BUF_QKV],
                              .k_cache = cu_kv_at(c, c->k, layer, s),
                              .v_cache = cu_kv_at(c, c->v, layer, s),
                              .q_ld = kvr_qkv_width(m),
                              .table = m->rotary ? c->rope : NULL,
                              .n_heads = m->n_heads,
                              .n_kv = m->n_kv_heads,
                              .hd = m->head_dim};
    return kvr_cu_gemm_qkv_rope(c->gemm, &r, c->buf[KVR_BUF_XN], cu_tensor(c, KVR_T_WQKV, layer), n,
                                sh.rows, sh.cols, fused);
}

/* SwiGLU without an up bias (a bias is added between the GEMM and the activation): the
 * GEMM's fused epilogue where timing chose it (kvr_cu_gemm_swiglu). */
enum kvr_status kvr_cuda_linear_act(void *be, enum kvr_buf in, uint32_t layer, uint32_t n,
                                    bool *fused)
{
    struct cu *c = be;
    struct kvr_tensor_shape sh = kvr_tensor_shape(&c->m, KVR_T_WUP);
    *fused = false;
    if (c->m.mlp != KVR_MLP_SWIGLU || cu_tensor(c, (enum kvr_tensor)(KVR_T_WUP + 1), layer) ||
        sh.rows != 2ull * c->m.d_ffn)
        return kvr_cuda_linear(be, KVR_BUF_UP, in, KVR_T_WUP, layer, n, false);
    return kvr_cu_gemm_swiglu(c->gemm, c->buf[KVR_BUF_ACT], c->buf[KVR_BUF_UP], c->buf[in],
                              cu_tensor(c, KVR_T_WUP, layer), n, c->m.d_ffn, sh.cols, fused);
}

enum kvr_status kvr_cuda_activation(void *be, uint32_t n)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(kvr_cu_activation(c->buf[KVR_BUF_ACT], c->buf[KVR_BUF_UP], n, c->m.d_ffn,
                                       c->m.mlp == KVR_MLP_SWIGLU, c->stream));
    return KVR_OK;
}

enum kvr_status kvr_cuda_logits(void *be, uint32_t row)
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

enum kvr_status kvr_cuda_logits_read(void *be, float *out)
{
    struct cu *c = be;
    KVR_CUDA_CHECK(cudaMemcpyAsync(c->logits_host, c->logits, c->n_vocab * sizeof(float),
                                   cudaMemcpyDeviceToHost, c->stream));
    KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    memcpy(out, c->logits_host, c->n_vocab * sizeof(float));
    return KVR_OK;
}

enum kvr_status kvr_cuda_kv_read(void *be, uint32_t layer, uint32_t pos0, uint32_t n, float *k,
                                 float *v)
{
    struct cu *c = be;
    uint64_t count = (uint64_t)n * cu_kv_row(&c->m);
    uint16_t *h = malloc(2 * count * sizeof *h);
    if (!h) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e == cudaSuccess)
        e = cudaMemcpy(h, cu_kv_at(c, c->k, layer, pos0), 2 * count, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess)
        e = cudaMemcpy(h + count, cu_kv_at(c, c->v, layer, pos0), 2 * count,
                       cudaMemcpyDeviceToHost);
    for (uint64_t i = 0; e == cudaSuccess && i < count; i++)
        k[i] = kvr_bf16_to_float(h[i]), v[i] = kvr_bf16_to_float(h[count + i]);
    free(h);
    KVR_CUDA_CHECK(e);
    return KVR_OK;
}

enum kvr_status kvr_cuda_kv_copy(void *be, uint32_t layer, uint32_t pos0, uint32_t n, void *k,
                                 void *v, bool to_host)
{
    struct cu *c = be;
    size_t bytes = 2 * (size_t)n * cu_kv_row(&c->m);
    void *ck = cu_kv_at(c, c->k, layer, pos0), *cv = cu_kv_at(c, c->v, layer, pos0);
    enum cudaMemcpyKind kind = to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
    KVR_CUDA_CHECK(cudaMemcpyAsync(to_host ? k : ck, to_host ? ck : k, bytes, kind, c->stream));
    KVR_CUDA_CHECK(cudaMemcpyAsync(to_host ? v : cv, to_host ? cv : v, bytes, kind, c->stream));
    KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return KVR_OK;
}

enum kvr_status kvr_cuda_kv_device(void *be, uint32_t layer, uint32_t pos, void **k, void **v)
{
    struct cu *c = be;
    *k = cu_kv_at(c, c->k, layer, pos), *v = cu_kv_at(c, c->v, layer, pos);
    return KVR_OK;
}

enum kvr_status kvr_cuda_keep_row(void *be, enum kvr_buf b, uint32_t row)
{
    struct cu *c = be;
    uint64_t w = cu_buf_bytes(&c->m, b);
    KVR_CUDA_CHECK(cudaMemcpyAsync(c->buf[b], (char *)c->buf[b] + row * w, w,
                                   cudaMemcpyDeviceToDevice, c->stream));
    return KVR_OK;
}
