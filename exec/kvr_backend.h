/* The backend interface (internal to exec/): the primitive operations one layer is made of.
 * kvr_exec_layer.c writes the layer once in terms of these; each backend implements them on its own
 * data (ref: float32 host arrays; cuda: bf16 device arrays, fp32 residual stream).
 *
 * Buffers are named, not passed: every backend owns the same set, sized for max_chunk rows.
 * The KV cache holds max_ctx positions per layer, laid out [pos][n_kv_heads][head_dim] so that
 * positions [0, S) of one layer are contiguous (what a KV-Runahead rank sends). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvr_counts.h"
#include "kvr_exec.h"
#include "kvr_model.h"
#include "kvr_status.h"
#include "kvr_weights.h"

enum kvr_buf {
    KVR_BUF_X,   /* residual stream [c][d_model], float32 on every backend */
    KVR_BUF_XN,  /* normed input of attention (and of the MLP when one norm serves both) */
    KVR_BUF_XN2, /* normed input of the MLP */
    KVR_BUF_QKV, /* [c][qkv_width]; after rotary, its Q part is rotated in place */
    KVR_BUF_ATT, /* attention output [c][n_heads head_dim] */
    KVR_BUF_UP,  /* [c][up_width] */
    KVR_BUF_ACT, /* [c][d_ffn] */
    KVR_N_BUFS,
};

struct kvr_backend_ops {
    const char *name;
    void (*destroy)(void *be);
    /* Tensor t of layer from float32 host data (converted to the backend's type). */
    enum kvr_status (*set_tensor)(void *be, enum kvr_tensor t, uint32_t layer, const float *data);
    /* The prompt's token ids to the backend: a transfer, not a model operation, so it stays
     * out of the embedding's profiled time. */
    enum kvr_status (*upload)(void *be, const int32_t *tokens_host, uint32_t c);
    enum kvr_status (*embed)(void *be, uint32_t c); /* uploaded tokens -> X */
    /* out = norm(X[0..c)) with the weight (and bias) tensor pair starting at w */
    enum kvr_status (*norm)(void *be, enum kvr_buf out, enum kvr_tensor w, uint32_t layer,
                            uint32_t c);
    /* out[c][rows(w)] (+)= in[c][cols(w)] w^T (+ bias w+1 when the model has biases) */
    enum kvr_status (*linear)(void *be, enum kvr_buf out, enum kvr_buf in, enum kvr_tensor w,
                              uint32_t layer, uint32_t c, bool accumulate);
    /* Rotates Q (in place) of QKV at positions [s, s+c), writes the rotated K and V to the
     * cache (QKV's K and V parts are dead afterwards: a backend may leave them unrotated, or,
     * qkv_rotary fused, unwritten). */
    enum kvr_status (*rotary)(void *be, uint32_t layer, uint32_t s, uint32_t c);
    /* The prompt's length, which dynamic NTK rotary scaling reads (as transformers does for a
     * prefill: every chunk rotates with the frequencies of the whole prompt). */
    enum kvr_status (*set_prompt)(void *be, uint32_t ctx);
    /* ATT = attention of QKV's Q (positions [s, s+c)) against cache keys [0, s+c), causal,
     * inside the model's sliding window (query i: keys [kvr_window_first(i), i]). */
    enum kvr_status (*attention)(void *be, uint32_t layer, uint32_t s, uint32_t c,
                                 enum kvr_mask mask);
    enum kvr_status (*activation)(void *be, uint32_t c); /* UP -> ACT */
    /* Optional (NULL: linear then activation): the MLP's up projection of in, and when the
     * backend fuses them for this shape its activation too (ACT written, UP not: *fused true);
     * else UP alone (*fused false), and the activation follows. */
    enum kvr_status (*linear_act)(void *be, enum kvr_buf in, uint32_t layer, uint32_t c,
                                  bool *fused);
    /* Optional (NULL: linear then rotary): the QKV projection of XN at positions [s, s+c), and
     * where the backend fuses them for this shape rotary and the cache write too (*fused true:
     * what rotary leaves); else QKV alone (*fused false), and rotary follows. */
    enum kvr_status (*qkv_rotary)(void *be, uint32_t layer, uint32_t s, uint32_t c, bool *fused);
    /* Final norm and LM head of row `row` of X, kept in the backend; then the logits to the
     * host (vocab floats), a transfer outside the LM head's profiled time. */
    enum kvr_status (*logits)(void *be, uint32_t row);
    enum kvr_status (*logits_read)(void *be, float *out);
    /* Cache positions [pos0, pos0+n) of one layer to the host as float32, [n][kv][hd] each. */
    enum kvr_status (*kv_read)(void *be, uint32_t layer, uint32_t pos0, uint32_t n, float *k,
                               float *v);
    /* Raw cache rows [pos0, pos0+n) of one layer between the backend and host buffers, in the
     * backend's own element type (kv_elem_bytes: 4 on ref, 2 on cuda): what ranks send. */
    enum kvr_status (*kv_copy)(void *be, uint32_t layer, uint32_t pos0, uint32_t n, void *k,
                               void *v, bool to_host);
    uint32_t kv_elem_bytes;
    /* Device addresses of a cache row (NULL on host backends). */
    enum kvr_status (*kv_device)(void *be, uint32_t layer, uint32_t pos, void **k, void **v);
    enum kvr_status (*sync)(void *be);
    /* Timer around device work: mark(0) records the start, mark(1) the end and its seconds. */
    enum kvr_status (*timer)(void *be, int mark, double *elapsed_s);
    /* Profiling: records time stamp idx (< KVR_MAX_STAMPS) on the device's stream, and the
     * seconds between two recorded stamps (waits for them). */
    enum kvr_status (*stamp)(void *be, uint32_t idx);
    enum kvr_status (*stamp_span)(void *be, uint32_t a, uint32_t b, double *seconds);
    /* Bytes the backend holds now, and the peak seen by the device (0 when unknown). */
    void (*memory)(void *be, uint64_t *held_bytes, uint64_t *peak_bytes);
    /* The device's name and its dense bf16 peak (FLOP/s; 0 when unknown). */
    void (*device)(void *be, char *name, int cap, double *peak_flops);

    /* Ring attention (exec/kvr_dist_ring.c; kvr_exec.h's kvr_exec_ring_* say what each does). */
    /* Rotary and cache write of QKV's rows [row0, row0+c) at positions [s, s+c). */
    enum kvr_status (*rotary_rows)(void *be, uint32_t layer, uint32_t row0, uint32_t s, uint32_t c);
    enum kvr_status (*ring_setup)(void *be, uint32_t rows, uint32_t n_q, uint32_t n_o);
    enum kvr_status (*ring_q_pack)(void *be, uint32_t q_slot, uint32_t n);
    enum kvr_status (*ring_attn)(void *be, uint32_t layer, int q_slot, const struct kvr_span *q,
                                 const struct kvr_span *k, uint32_t window, uint32_t o_slot);
    enum kvr_status (*ring_merge)(void *be, uint32_t dst, uint32_t src, uint32_t n);
    enum kvr_status (*ring_finish)(void *be, uint32_t o_slot, uint32_t n);
    enum kvr_status (*ring_area)(void *be, enum kvr_ring_part part, uint32_t slot, void **ptr,
                                 size_t *row_bytes);
    enum kvr_status (*ring_copy)(void *be, enum kvr_ring_part part, uint32_t slot, uint32_t n,
                                 void *host, bool to_host);

    /* tsp-paper with nccl (exec/kvr_dist_tsp.c; NULL on host backends): a device scratch of
     * at least `bytes`, kept by the backend and grown when asked for more; and device rows in
     * the cache's layout [n][kv][hd] to or from rows expanded to every query head (kvr_exec.h's
     * kvr_exec_kv_regroup). */
    enum kvr_status (*wide_area)(void *be, uint64_t bytes, void **ptr);
    enum kvr_status (*kv_regroup)(void *be, void *dst, const void *src, uint64_t rows,
                                  uint32_t group, bool expand);
    /* Row `row` of buffer b to row 0 (kvr_backend_keep_row). */
    enum kvr_status (*keep_row)(void *be, enum kvr_buf b, uint32_t row);
    /* Tensor parallelism (exec/kvr_exec_tp.c; the LM head's rows are the create functions'
     * v0, n_vocab). The residual stream X's address (device memory on cuda), and its rows [0, c)
     * between the backend and a host buffer (after the backend's queued work). */
    enum kvr_status (*x_area)(void *be, float **x);
    enum kvr_status (*x_copy)(void *be, uint32_t c, float *host, bool to_host);
    /* Seeded values of a slice, the whole model's seeded weights (kvr_exec_tp_seed; every
     * backend has it): for i < rows, k < row_len, element
     * dst0 + i dst_stride + k of tensor t of layer = kvr_rng_value(seed, r->stream,
     * src0 + i src_stride + k, r->scale, r->offset), the full tensor's indices. */
    enum kvr_status (*seed_rows)(void *be, enum kvr_tensor t, uint32_t layer, uint64_t dst0,
                                 uint64_t rows, uint64_t row_len, uint64_t dst_stride,
                                 uint64_t src0, uint64_t src_stride, uint64_t seed,
                                 const struct kvr_init_rule *r);
};

#define KVR_MAX_STAMPS 4096

struct kvr_backend {
    const struct kvr_backend_ops *ops;
    void *state;
};

/* The backends' shared host code (kvr_backend.c). */
/* The elements set_tensor copies into tensor t: its count in m, the LM head's n_vocab rows. */
uint64_t kvr_backend_tensor_numel(const struct kvr_model *m, uint32_t n_vocab, enum kvr_tensor t);
/* Row `row` (< max_chunk) of X, XN, XN2 and QKV to row 0: the last layer of a prefill carries on
 * with its last token alone (kvr_exec_chunk). */
enum kvr_status kvr_backend_keep_row(const struct kvr_backend *be, uint32_t row,
                                     uint32_t max_chunk);

/* Bytes a backend needs for a model with max_ctx cache positions and max_chunk rows (the LM
 * head counted whole). */
uint64_t kvr_ref_bytes_needed(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk);
uint64_t kvr_cuda_bytes_needed(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk);

/* A backend for m with max_ctx cache positions and max_chunk rows whose LM head holds the
 * vocabulary's rows [v0, v0 + n_vocab) (tensor parallelism, kvr_exec_tp_vocab; else 0 and
 * m->vocab): logits computes and logits_read returns those n_vocab (an untied head is
 * allocated n_vocab rows; a tied head reads the embedding's rows). */
enum kvr_status kvr_ref_create(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk,
                               uint32_t v0, uint32_t n_vocab, struct kvr_backend *out);
/* Fails with a clear message when kvrun was built without CUDA or no GPU is present. */
enum kvr_status kvr_cuda_create(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk,
                                uint32_t v0, uint32_t n_vocab, int device, struct kvr_backend *out);

/* Device memory free now on a CUDA device (0 without CUDA or on an error): what
 * kvr_exec_fit_chunk sizes sub-chunks against, the same figure kvr_cuda_create checks. */
uint64_t kvr_cuda_free_bytes(int device);

/* "CUDA driver 13.0" ("none" without CUDA). */
void kvr_cuda_driver_version(char *buf, size_t cap);

/* The cuda backend's switches from the environment (kvr_exec_env.c; exec/README.md):
 * KVR_GEMM_TUNE (tune), KVR_GEMM_OWN (own: 0, 1 or 2), KVR_GEMM_SPLIT (split); KVR_GEMM_LOG
 * (read by kvr_cuda_gemm.c), KVR_ATTN_PERSIST and KVR_ATTN_LAZY are checked too and read by the
 * kernels' host code. kvr_exec_open reads them before either backend is created. */
struct kvr_exec_env {
    bool tune, split;
    int own;
};
enum kvr_status kvr_exec_env_read(struct kvr_exec_env *v);
