/* Models shared by the tests. */
#pragma once

#include "kvr_model.h"

/* Tiny Llama-like model: d=8, 2 heads of 4, 1 KV head, d_ffn=16, vocab 10, 2 layers, bf16.
 * Its counts are derived by hand in test_counts.c and its timeline in test_sim.c. */
static const struct kvr_model tiny = {
    KVR_MODEL_DEFAULTS, .name = "tiny",           .n_layers = 2,         .d_model = 8,
    .n_heads = 2,       .n_kv_heads = 1,          .head_dim = 4,         .d_ffn = 16,
    .vocab = 10,        .norm = KVR_NORM_RMSNORM, .mlp = KVR_MLP_SWIGLU, .block_norms = 2,
    .rotary = true,     .dtype = KVR_DTYPE_BF16};
