/* One-line model shapes for the tests' fixtures (macros only). */
#pragma once

#include "kvr_model.h"

/* A Llama-like decoder: RMSNorm, SwiGLU, rotary, two norms per block. */
#define LLAMA_SHAPE(nm, layers, d, h, kv, hd, ffn, voc, dt)                                        \
    {                                                                                              \
        .name = nm, .n_layers = layers, .d_model = d, .n_heads = h, .n_kv_heads = kv,              \
        .head_dim = hd, .d_ffn = ffn, .vocab = voc, .norm = KVR_NORM_RMSNORM,                      \
        .mlp = KVR_MLP_SWIGLU, .block_norms = 2, .rotary = true, .dtype = dt                       \
    }

/* A Falcon-like decoder: LayerNorm, GELU, rotary, a parallel block with norms norms. */
#define FALCON_SHAPE(nm, layers, d, h, kv, hd, ffn, voc, norms, biases, tied, dt)                  \
    {                                                                                              \
        .name = nm, .n_layers = layers, .d_model = d, .n_heads = h, .n_kv_heads = kv,              \
        .head_dim = hd, .d_ffn = ffn, .vocab = voc, .norm = KVR_NORM_LAYERNORM,                    \
        .mlp = KVR_MLP_GELU, .parallel_attn = true, .block_norms = norms, .rotary = true,          \
        .bias = biases, .tied_embeddings = tied, .dtype = dt                                       \
    }
