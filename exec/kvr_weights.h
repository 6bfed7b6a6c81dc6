/* The tensors of a model as the executor holds them, whatever the backend: their names,
 * shapes, and the seeded random values that every backend draws identically.
 *
 * Layout: every linear weight is [out][in] (row-major, the input dimension contiguous), as in
 * PyTorch. Q, K and V are one fused [(n_heads + 2 n_kv_heads) head_dim][d_model] matrix (Q rows,
 * then K, then V); SwiGLU's gate and up are one [2 d_ffn][d_model] matrix (gate rows first). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kvr_model.h"

enum kvr_tensor {
    /* per layer */
    KVR_T_ATTN_NORM_W,
    KVR_T_ATTN_NORM_B,
    KVR_T_MLP_NORM_W,
    KVR_T_MLP_NORM_B,
    KVR_T_WQKV,
    KVR_T_BQKV,
    KVR_T_WO,
    KVR_T_BO,
    KVR_T_WUP,
    KVR_T_BUP,
    KVR_T_WDOWN,
    KVR_T_BDOWN,
    KVR_N_LAYER_TENSORS,
    /* once per model */
    KVR_T_EMBED = KVR_N_LAYER_TENSORS,
    KVR_T_FINAL_NORM_W,
    KVR_T_FINAL_NORM_B,
    KVR_T_LM_HEAD,
    KVR_N_TENSORS,
};

/* Shape of a tensor: rows x cols (a vector has rows == 1). */
struct kvr_tensor_shape {
    uint64_t rows, cols;
};

const char *kvr_tensor_name(enum kvr_tensor t);
bool kvr_tensor_is_layer(enum kvr_tensor t);
/* Whether the model has this tensor (biases, LayerNorm biases, second norms, untied head). */
bool kvr_tensor_present(const struct kvr_model *m, enum kvr_tensor t);
struct kvr_tensor_shape kvr_tensor_shape(const struct kvr_model *m, enum kvr_tensor t);
uint64_t kvr_tensor_numel(const struct kvr_model *m, enum kvr_tensor t);

/* Derived widths. */
uint64_t kvr_qkv_width(const struct kvr_model *m); /* (n_heads + 2 n_kv_heads) head_dim */
uint64_t kvr_up_width(const struct kvr_model *m);  /* 2 d_ffn (SwiGLU) or d_ffn (GELU) */

/* Seeded weights: how tensor t of layer `layer` draws element i. A weight [out][in] is
 * uniform with variance 1/in (activations keep their scale through the layers), norm weights
 * are 1 +- 0.1, biases +- 0.02, the embedding +- 1. Same numbers on every backend. */
struct kvr_init_rule {
    uint64_t stream; /* RNG stream: (tensor, layer) */
    float scale;     /* value = kvr_rng_value(seed, stream, i, scale, offset) */
    float offset;
};
struct kvr_init_rule kvr_tensor_init_rule(const struct kvr_model *m, enum kvr_tensor t,
                                          uint32_t layer);
/* Fills out[0..numel) on the host. */
void kvr_tensor_fill_random(const struct kvr_model *m, enum kvr_tensor t, uint32_t layer,
                            uint64_t seed, float *out);

/* Seeded prompt tokens in [0, vocab). */
void kvr_tokens_random(uint64_t seed, uint32_t vocab, uint32_t n, int32_t *out);

/* bf16 <-> float on the host: round to nearest even (NaN stays NaN); widening is exact. */
uint16_t kvr_float_to_bf16(float f);
float kvr_bf16_to_float(uint16_t h);
