/* The reference backend: plain C float32, written for clarity. It is the oracle that the CUDA
 * backend and the multi-rank schemes are tested against, and what CI runs. This file: its
 * arrays and their sizes, the transfers, timing and the method table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvr_ref_int.h"
#include "kvr_rng.h"

static uint64_t buf_width(const struct kvr_model *m, enum kvr_buf b)
{
    switch (b) {
    case KVR_BUF_QKV:
        return kvr_qkv_width(m);
    case KVR_BUF_ATT:
        return (uint64_t)m->n_heads * m->head_dim;
    case KVR_BUF_UP:
        return kvr_up_width(m);
    case KVR_BUF_ACT:
        return m->d_ffn;
    default:
        return m->d_model;
    }
}

/* The floats of tensor t over every layer, the LM head's n_vocab rows. */
static uint64_t tensor_count(const struct kvr_model *m, uint32_t n_vocab, enum kvr_tensor t)
{
    if (!kvr_tensor_present(m, t)) return 0;
    return kvr_backend_tensor_numel(m, n_vocab, t) * (kvr_tensor_is_layer(t) ? m->n_layers : 1);
}

static uint64_t kv_floats(const struct kvr_model *m, uint32_t max_ctx)
{
    return (uint64_t)m->n_layers * max_ctx * m->n_kv_heads * m->head_dim;
}

uint64_t kvr_ref_bytes_needed(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk)
{
    uint64_t n = 2 * kv_floats(m, max_ctx);
    for (int t = 0; t < KVR_N_TENSORS; t++) n += tensor_count(m, m->vocab, (enum kvr_tensor)t);
    for (int b = 0; b < KVR_N_BUFS; b++) n += (uint64_t)max_chunk * buf_width(m, (enum kvr_buf)b);
    return n * sizeof(float);
}

static void ref_destroy(void *be)
{
    struct ref *r = be;
    if (!r) return;
    for (int t = 0; t < KVR_N_TENSORS; t++) free(r->w[t]);
    for (int b = 0; b < KVR_N_BUFS; b++) free(r->buf[b]);
    free(r->k), free(r->v), free(r->tokens), free(r->logits), free(r->inv_freq);
    kvr_ref_ring_free(r);
    free(r);
}

static enum kvr_status ref_set_tensor(void *be, enum kvr_tensor t, uint32_t layer,
                                      const float *data)
{
    struct ref *r = be;
    float *dst = ref_tensor(r, t, layer);
    if (!dst)
        return kvr_error(KVR_ERR_INPUT, "model %s has no tensor %s", r->m.name, kvr_tensor_name(t));
    memcpy(dst, data, kvr_backend_tensor_numel(&r->m, r->n_vocab, t) * sizeof *dst);
    return KVR_OK;
}

static enum kvr_status ref_upload(void *be, const int32_t *tokens, uint32_t c)
{
    struct ref *r = be;
    memcpy(r->tokens, tokens, c * sizeof *tokens);
    return KVR_OK;
}

static enum kvr_status ref_logits_read(void *be, float *out)
{
    struct ref *r = be;
    memcpy(out, r->logits, r->n_vocab * sizeof *out);
    return KVR_OK;
}

static enum kvr_status ref_kv_read(void *be, uint32_t layer, uint32_t pos0, uint32_t n, float *k,
                                   float *v)
{
    struct ref *r = be;
    size_t bytes = (size_t)n * r->m.n_kv_heads * r->m.head_dim * sizeof(float);
    memcpy(k, ref_kv_at(r, r->k, layer, pos0), bytes);
    memcpy(v, ref_kv_at(r, r->v, layer, pos0), bytes);
    return KVR_OK;
}

static enum kvr_status ref_kv_copy(void *be, uint32_t layer, uint32_t pos0, uint32_t n, void *k,
                                   void *v, bool to_host)
{
    struct ref *r = be;
    size_t bytes = (size_t)n * r->m.n_kv_heads * r->m.head_dim * sizeof(float);
    float *ck = ref_kv_at(r, r->k, layer, pos0), *cv = ref_kv_at(r, r->v, layer, pos0);
    memcpy(to_host ? k : (void *)ck, to_host ? (void *)ck : k, bytes);
    memcpy(to_host ? v : (void *)cv, to_host ? (void *)cv : v, bytes);
    return KVR_OK;
}

static enum kvr_status ref_sync(void *be)
{
    (void)be;
    return KVR_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static enum kvr_status ref_timer(void *be, int mark, double *elapsed_s)
{
    struct ref *r = be;
    if (mark == 0)
        r->t0 = now_s();
    else
        *elapsed_s = now_s() - r->t0;
    return KVR_OK;
}

static enum kvr_status ref_stamp(void *be, uint32_t idx)
{
    ((struct ref *)be)->stamps[idx] = now_s();
    return KVR_OK;
}

static enum kvr_status ref_stamp_span(void *be, uint32_t a, uint32_t b, double *seconds)
{
    struct ref *r = be;
    *seconds = r->stamps[b] - r->stamps[a];
    return KVR_OK;
}

static void ref_memory(void *be, uint64_t *held, uint64_t *peak)
{
    *held = ((struct ref *)be)->held_bytes;
    *peak = 0;
}

static void ref_device(void *be, char *name, int cap, double *peak)
{
    (void)be;
    snprintf(name, (size_t)cap, "cpu (ref, float32)");
    *peak = 0;
}

static enum kvr_status ref_keep_row(void *be, enum kvr_buf b, uint32_t row)
{
    struct ref *r = be;
    uint64_t w = buf_width(&r->m, b);
    memmove(r->buf[b], r->buf[b] + row * w, w * sizeof(float));
    return KVR_OK;
}

/* Tensor parallelism: the residual stream for the stage's all-reduce. */
static enum kvr_status ref_x_area(void *be, float **x)
{
    *x = ((struct ref *)be)->buf[KVR_BUF_X];
    return KVR_OK;
}

static enum kvr_status ref_x_copy(void *be, uint32_t c, float *host, bool to_host)
{
    struct ref *r = be;
    size_t bytes = (size_t)c * r->m.d_model * sizeof(float);
    memcpy(to_host ? host : r->buf[KVR_BUF_X], to_host ? r->buf[KVR_BUF_X] : host, bytes);
    return KVR_OK;
}

static enum kvr_status ref_seed_rows(void *be, enum kvr_tensor t, uint32_t layer, uint64_t dst0,
                                     uint64_t rows, uint64_t row_len, uint64_t dst_stride,
                                     uint64_t src0, uint64_t src_stride, uint64_t seed,
                                     const struct kvr_init_rule *r)
{
    float *dst = ref_tensor(be, t, layer);
    if (!dst) return kvr_error(KVR_ERR_INPUT, "no tensor %s", kvr_tensor_name(t));
    for (uint64_t i = 0; i < rows; i++)
        for (uint64_t k = 0; k < row_len; k++)
            dst[dst0 + i * dst_stride + k] =
                kvr_rng_value(seed, r->stream, src0 + i * src_stride + k, r->scale, r->offset);
    return KVR_OK;
}

static const struct kvr_backend_ops ref_ops = {
    .name = "ref",
    .destroy = ref_destroy,
    .set_tensor = ref_set_tensor,
    .upload = ref_upload,
    .embed = kvr_ref_embed,
    .norm = kvr_ref_norm,
    .linear = kvr_ref_linear,
    .rotary = kvr_ref_rotary,
    .set_prompt = kvr_ref_set_prompt,
    .attention = kvr_ref_attention,
    .activation = kvr_ref_activation,
    .logits = kvr_ref_logits,
    .logits_read = ref_logits_read,
    .kv_read = ref_kv_read,
    .kv_copy = ref_kv_copy,
    .kv_elem_bytes = 4,
    .sync = ref_sync,
    .timer = ref_timer,
    .stamp = ref_stamp,
    .stamp_span = ref_stamp_span,
    .memory = ref_memory,
    .device = ref_device,
    .rotary_rows = kvr_ref_rotary_rows,
    .ring_setup = kvr_ref_ring_setup,
    .ring_q_pack = kvr_ref_ring_q_pack,
    .ring_attn = kvr_ref_ring_attn,
    .ring_merge = kvr_ref_ring_merge,
    .ring_finish = kvr_ref_ring_finish,
    .ring_area = kvr_ref_ring_area,
    .ring_copy = kvr_ref_ring_copy,
    .keep_row = ref_keep_row,
    .x_area = ref_x_area,
    .x_copy = ref_x_copy,
    .seed_rows = ref_seed_rows,
};

enum kvr_status kvr_ref_create(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk,
                               uint32_t v0, uint32_t n_vocab, struct kvr_backend *out)
{
    uint64_t need = kvr_ref_bytes_needed(m, max_ctx, max_chunk);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (have > 0 && (double)need > have)
        return kvr_error(KVR_ERR_INPUT,
                         "the ref backend needs %.3g GB for %s at %u tokens; this machine has "
                         "%.3g GB (the ref backend is for small models)",
                         need / 1e9, m->name, max_ctx, have / 1e9);
    struct ref *r = calloc(1, sizeof *r);
    if (!r) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    /* held: what is allocated, the LM head's n_vocab rows (need counts it whole) */
    uint64_t head_less =
        tensor_count(m, m->vocab, KVR_T_LM_HEAD) - tensor_count(m, n_vocab, KVR_T_LM_HEAD);
    r->m = *m, r->max_ctx = max_ctx, r->max_chunk = max_chunk;
    r->held_bytes = need - head_less * sizeof(float);
    r->v0 = v0, r->n_vocab = n_vocab;
    bool fail = !(r->k = malloc(kv_floats(m, max_ctx) * sizeof(float))) ||
                !(r->v = malloc(kv_floats(m, max_ctx) * sizeof(float))) ||
                !(r->tokens = malloc(max_chunk * sizeof *r->tokens)) ||
                !(r->logits = malloc(m->vocab * sizeof *r->logits)) ||
                !(r->inv_freq = malloc((kvr_rotary_dims(m) / 2 + 1) * sizeof *r->inv_freq));
    for (int t = 0; t < KVR_N_TENSORS && !fail; t++) {
        uint64_t n = tensor_count(m, n_vocab, (enum kvr_tensor)t);
        fail = n && !(r->w[t] = malloc(n * sizeof(float)));
    }
    for (int b = 0; b < KVR_N_BUFS && !fail; b++)
        fail = !(r->buf[b] =
                     malloc((uint64_t)max_chunk * buf_width(m, (enum kvr_buf)b) * sizeof(float)));
    if (fail) {
        ref_destroy(r);
        return kvr_error(KVR_ERR_NOMEM, "the ref backend could not allocate %.3g GB", need / 1e9);
    }
    kvr_ref_set_prompt(r, max_ctx);
    *out = (struct kvr_backend){&ref_ops, r};
    return KVR_OK;
}
