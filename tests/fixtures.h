/* Models shared by the tests. */
#pragma once

#include "kvr_model.h"
#include "model_shapes.h"

/* Tiny Llama-like model: d=8, 2 heads of 4, 1 KV head, d_ffn=16, vocab 10, 2 layers, bf16.
 * Its counts are derived by hand in test_counts.c and its timeline in test_sim.c. */
static const struct kvr_model tiny = LLAMA_SHAPE("tiny", 2, 8, 2, 1, 4, 16, 10, KVR_DTYPE_BF16);
