/* The cuda backend's state (internal to kvr_cuda*.c, which build only with CUDA, as
 * kvr_cuda_check.h): its device arrays, their addressing, and the operations its files define
 * for the method table (kvr_cuda.c: set-up, memory, timing; kvr_cuda_layer.c: one layer and the
 * cache; kvr_cuda_dist.c: ring attention and tensor parallelism). */
#pragma once

#include "kvr_backend.h"
#include "kvr_cuda_check.h"

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
    void *wide; /* tsp-paper's expanded K/V (kvr_cuda_wide_area), allocated on first use */
    uint64_t wide_bytes;
    uint32_t v0, n_vocab; /* the LM head's rows (kvr_cuda_create) */
};

static inline uint64_t cu_buf_bytes(const struct kvr_model *m, enum kvr_buf b)
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

static inline uint64_t cu_layer_stride(const struct kvr_model *m, enum kvr_tensor t)
{
    return kvr_tensor_is_layer(t) ? kvr_tensor_numel(m, t) : 0;
}

static inline void *cu_tensor(struct cu *c, enum kvr_tensor t, uint32_t layer)
{
    if (!c->w[t]) return NULL;
    return (char *)c->w[t] + 2 * layer * cu_layer_stride(&c->m, t);
}

static inline uint64_t cu_kv_row(const struct kvr_model *m)
{
    return (uint64_t)m->n_kv_heads * m->head_dim;
}

static inline void *cu_kv_at(struct cu *c, void *base, uint32_t layer, uint32_t pos)
{
    return (char *)base + 2 * ((uint64_t)layer * c->max_ctx + pos) * cu_kv_row(&c->m);
}

/* One layer and the KV cache (kvr_cuda_layer.c). */
enum kvr_status kvr_cuda_set_tensor(void *be, enum kvr_tensor t, uint32_t layer, const float *data);
enum kvr_status kvr_cuda_upload(void *be, const int32_t *tokens, uint32_t n);
enum kvr_status kvr_cuda_embed(void *be, uint32_t n);
enum kvr_status kvr_cuda_norm(void *be, enum kvr_buf out, enum kvr_tensor w, uint32_t layer,
                              uint32_t n);
enum kvr_status kvr_cuda_linear(void *be, enum kvr_buf out, enum kvr_buf in, enum kvr_tensor w,
                                uint32_t layer, uint32_t n, bool accumulate);
enum kvr_status kvr_cuda_rotary(void *be, uint32_t layer, uint32_t s, uint32_t n);
enum kvr_status kvr_cuda_set_prompt(void *be, uint32_t ctx);
enum kvr_status kvr_cuda_attention(void *be, uint32_t layer, uint32_t s, uint32_t n,
                                   enum kvr_mask mask);
enum kvr_status kvr_cuda_activation(void *be, uint32_t n);
enum kvr_status kvr_cuda_qkv_rotary(void *be, uint32_t layer, uint32_t s, uint32_t n, bool *fused);
enum kvr_status kvr_cuda_linear_act(void *be, enum kvr_buf in, uint32_t layer, uint32_t n,
                                    bool *fused);
enum kvr_status kvr_cuda_logits(void *be, uint32_t row);
enum kvr_status kvr_cuda_logits_read(void *be, float *out);
enum kvr_status kvr_cuda_kv_read(void *be, uint32_t layer, uint32_t pos0, uint32_t n, float *k,
                                 float *v);
enum kvr_status kvr_cuda_kv_copy(void *be, uint32_t layer, uint32_t pos0, uint32_t n, void *k,
                                 void *v, bool to_host);
enum kvr_status kvr_cuda_kv_device(void *be, uint32_t layer, uint32_t pos, void **k, void **v);
enum kvr_status kvr_cuda_keep_row(void *be, enum kvr_buf b, uint32_t row);

/* Ring attention and tensor parallelism (kvr_cuda_dist.c). */
enum kvr_status kvr_cuda_rotary_rows(void *be, uint32_t layer, uint32_t row0, uint32_t s,
                                     uint32_t n);
enum kvr_status kvr_cuda_ring_setup(void *be, uint32_t rows, uint32_t n_q, uint32_t n_o);
enum kvr_status kvr_cuda_wide_area(void *be, uint64_t bytes, void **ptr);
enum kvr_status kvr_cuda_kv_regroup(void *be, void *dst, const void *src, uint64_t rows,
                                    uint32_t group, bool expand);
enum kvr_status kvr_cuda_ring_q_pack(void *be, uint32_t q_slot, uint32_t n);
enum kvr_status kvr_cuda_ring_attn(void *be, uint32_t layer, int q_slot, const struct kvr_span *q,
                                   const struct kvr_span *k, uint32_t window, uint32_t o_slot);
enum kvr_status kvr_cuda_ring_merge(void *be, uint32_t dst, uint32_t src, uint32_t n);
enum kvr_status kvr_cuda_ring_finish(void *be, uint32_t o_slot, uint32_t n);
enum kvr_status kvr_cuda_ring_area(void *be, enum kvr_ring_part part, uint32_t slot, void **ptr,
                                   size_t *row_bytes);
enum kvr_status kvr_cuda_ring_copy(void *be, enum kvr_ring_part part, uint32_t slot, uint32_t n,
                                   void *host, bool to_host);
enum kvr_status kvr_cuda_x_area(void *be, float **x);
enum kvr_status kvr_cuda_x_copy(void *be, uint32_t n, float *host, bool to_host);
enum kvr_status kvr_cuda_seed_rows(void *be, enum kvr_tensor t, uint32_t layer, uint64_t dst0,
                                   uint64_t rows, uint64_t row_len, uint64_t dst_stride,
                                   uint64_t src0, uint64_t src_stride, uint64_t seed,
                                   const struct kvr_init_rule *r);
