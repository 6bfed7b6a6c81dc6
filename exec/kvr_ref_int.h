/* The ref backend's state (internal to kvr_ref*.c): its arrays and the operations its files
 * define for the method table (kvr_ref.c: buffers, transfers, timing; kvr_ref_layer.c: one
 * layer's math; kvr_ref_ring.c: ring attention). */
#pragma once

#include "kvr_backend.h"

struct ref {
    struct kvr_model m;
    uint32_t max_ctx, max_chunk;
    float *w[KVR_N_TENSORS]; /* [layer][numel] for layer tensors, else [numel] */
    float *buf[KVR_N_BUFS];
    float *k, *v;      /* [layer][max_ctx][kv][hd] */
    int32_t *tokens;   /* [max_chunk]: the uploaded prompt */
    double *inv_freq;  /* [rotary dims / 2] for the prompt's length (kvr_rope_inv_freq) */
    double rope_scale; /* multiplies cos and sin (yarn's attention factor) */
    float *logits;     /* [vocab] */
    double t0;
    double stamps[KVR_MAX_STAMPS];
    uint64_t held_bytes;
    struct ref_ring *ring; /* ring attention's workspace, or NULL */
    uint32_t v0, n_vocab;  /* the LM head's rows (kvr_ref_create) */
};

/* Ring attention: query slots of float, output slots of double (the float64 merge). */
struct ref_ring {
    uint32_t rows, n_q, n_o;
    float *q;  /* [n_q][rows][n_heads hd] */
    double *o; /* [n_o][rows][n_heads hd + n_heads] */
};

static inline float *ref_tensor(struct ref *r, enum kvr_tensor t, uint32_t layer)
{
    if (!r->w[t]) return NULL;
    return r->w[t] + (kvr_tensor_is_layer(t) ? (uint64_t)layer * kvr_tensor_numel(&r->m, t) : 0);
}

static inline float *ref_kv_at(const struct ref *r, float *base, uint32_t layer, uint32_t pos)
{
    uint64_t row = (uint64_t)r->m.n_kv_heads * r->m.head_dim;
    return base + ((uint64_t)layer * r->max_ctx + pos) * row;
}

/* One layer's operations (kvr_ref_layer.c). */
enum kvr_status kvr_ref_embed(void *be, uint32_t c);
enum kvr_status kvr_ref_norm(void *be, enum kvr_buf out, enum kvr_tensor w, uint32_t layer,
                             uint32_t c);
enum kvr_status kvr_ref_linear(void *be, enum kvr_buf out, enum kvr_buf in, enum kvr_tensor w,
                               uint32_t layer, uint32_t c, bool accumulate);
enum kvr_status kvr_ref_set_prompt(void *be, uint32_t ctx);
enum kvr_status kvr_ref_rotary(void *be, uint32_t layer, uint32_t s, uint32_t c);
enum kvr_status kvr_ref_attention(void *be, uint32_t layer, uint32_t s, uint32_t c,
                                  enum kvr_mask mask);
enum kvr_status kvr_ref_activation(void *be, uint32_t c);
enum kvr_status kvr_ref_logits(void *be, uint32_t row);

/* Ring attention (kvr_ref_ring.c). */
enum kvr_status kvr_ref_rotary_rows(void *be, uint32_t layer, uint32_t row0, uint32_t s,
                                    uint32_t c);
enum kvr_status kvr_ref_ring_setup(void *be, uint32_t rows, uint32_t n_q, uint32_t n_o);
enum kvr_status kvr_ref_ring_q_pack(void *be, uint32_t q_slot, uint32_t n);
enum kvr_status kvr_ref_ring_attn(void *be, uint32_t layer, int q_slot, const struct kvr_span *q,
                                  const struct kvr_span *k, uint32_t window, uint32_t o_slot);
enum kvr_status kvr_ref_ring_merge(void *be, uint32_t dst, uint32_t src, uint32_t n);
enum kvr_status kvr_ref_ring_finish(void *be, uint32_t o_slot, uint32_t n);
enum kvr_status kvr_ref_ring_area(void *be, enum kvr_ring_part part, uint32_t slot, void **ptr,
                                  size_t *row_bytes);
enum kvr_status kvr_ref_ring_copy(void *be, enum kvr_ring_part part, uint32_t slot, uint32_t n,
                                  void *host, bool to_host);
void kvr_ref_ring_free(struct ref *r);
