/* Exact counts for a model: parameters, weight bytes, KV-cache bytes, and the FLOPs and bytes
 * moved by each operation of one layer for a chunk of c tokens that follows a prefix of s.
 *
 * Conventions (every number here is a pure function of the model and (s, c)):
 * - A GEMM of (m x k) by (k x n) is 2*m*n*k FLOPs; a bias add is one FLOP per output.
 * - RMSNorm is 4 FLOPs per element (square, sum, scale, weight); LayerNorm 7 (sum, subtract,
 *   square, sum, scale, weight, bias). Rotary is 3 per rotated element (4 mul + 2 add per pair).
 *   SiLU(gate)*up is 5 per element (exp, add, div, mul, mul); GELU is 8 per element.
 *   Softmax is 5 per unmasked score (max, subtract, exp, sum, scale).
 * - Attention pairs: KVR_MASK_CAUSAL counts exactly the unmasked query-key pairs, c*s + c(c+1)/2;
 *   KVR_MASK_DENSE counts the whole masked block c*(s+c), as the paper's TSP baseline computes.
 * - Bytes assume a fused (flash-style) attention kernel: scores and probabilities stay on
 *   chip, so they move no bytes; Q, K, V and the output do. Each op reads its inputs and writes
 *   its outputs once, in the model's dtype.
 */
#pragma once

#include <stdint.h>

#include "kvr_model.h"

enum kvr_mask { KVR_MASK_CAUSAL, KVR_MASK_DENSE };

enum kvr_op {
    KVR_OP_NORM_ATTN,    /* input norm of the block */
    KVR_OP_QKV,          /* Q, K, V projection; K and V written to the cache */
    KVR_OP_ROTARY,       /* rotary embedding of Q and K */
    KVR_OP_ATTN_SCORES,  /* Q K^T over unmasked pairs */
    KVR_OP_ATTN_SOFTMAX, /* online softmax */
    KVR_OP_ATTN_PV,      /* probabilities x V */
    KVR_OP_OUT_PROJ,     /* attention output projection */
    KVR_OP_NORM_MLP,     /* second norm of the block (none when block_norms == 1) */
    KVR_OP_MLP_UP,       /* gate and up (SwiGLU) or up (GELU) projection */
    KVR_OP_MLP_ACT,      /* SiLU(gate)*up or GELU */
    KVR_OP_MLP_DOWN,     /* down projection */
    KVR_OP_RESIDUAL,     /* the two residual adds */
    KVR_N_LAYER_OPS,
    /* Outside the layers: */
    KVR_OP_EMBED = KVR_N_LAYER_OPS, /* embedding gather for the chunk */
    KVR_OP_FINAL_NORM,              /* final norm, last token only */
    KVR_OP_LM_HEAD,                 /* logits of the last token only */
    KVR_N_OPS,
};

/* Broad classes, as the simulator's efficiency model groups them. */
enum kvr_op_class { KVR_CLASS_GEMM, KVR_CLASS_ATTENTION, KVR_CLASS_ELEMENTWISE };

struct kvr_op_cost {
    uint64_t flops;
    uint64_t weight_bytes;
    uint64_t act_read_bytes;
    uint64_t act_write_bytes;
    uint64_t kv_read_bytes;
    uint64_t kv_write_bytes;
};

const char *kvr_op_name(enum kvr_op op);
enum kvr_op_class kvr_op_class(enum kvr_op op);
uint64_t kvr_op_cost_bytes(const struct kvr_op_cost *c); /* sum of all byte fields */

uint64_t kvr_model_param_count(const struct kvr_model *m);
uint64_t kvr_model_weight_bytes(const struct kvr_model *m);
uint64_t kvr_model_kv_bytes_per_token_layer(const struct kvr_model *m);

/* Unmasked (or, dense, all) query-key pairs of a chunk of c after a prefix of s, per head. */
uint64_t kvr_attn_pairs(uint64_t s, uint64_t c, enum kvr_mask mask);

/* The same for a model, honouring its sliding window (query i sees keys j with 0 <= i-j < W),
 * and the keys [kvr_window_first(s), s+c) that the chunk's queries span. */
uint64_t kvr_model_attn_pairs(const struct kvr_model *m, uint64_t s, uint64_t c,
                              enum kvr_mask mask);
uint64_t kvr_model_attn_keys(const struct kvr_model *m, uint64_t s, uint64_t c);

/* Cost of one operation; for the ops outside the layers s is ignored. Fails with KVR_ERR_RANGE
 * when s + c exceeds KVR_MAX_CTX. The model must be valid (kvr_model_validate). */
enum kvr_status kvr_op_cost(const struct kvr_model *m, enum kvr_op op, uint64_t s, uint64_t c,
                            enum kvr_mask mask, struct kvr_op_cost *out);

/* One attention op (scores, softmax or PV) of n_queries queries against n_keys keys of which
 * `pairs` query-key pairs are computed: the general block that ring attention and the dense
 * baselines need. kvr_op_cost uses it with pairs = kvr_attn_pairs(s, c, mask). */
enum kvr_status kvr_attn_cost(const struct kvr_model *m, enum kvr_op op, uint64_t n_queries,
                              uint64_t n_keys, uint64_t pairs, struct kvr_op_cost *out);

/* Sum over the ops of one layer. */
enum kvr_status kvr_layer_cost(const struct kvr_model *m, uint64_t s, uint64_t c,
                               enum kvr_mask mask, struct kvr_op_cost *out);

/* One op over a whole prefill of ctx tokens: a layer op's cost times n_layers, or the op
 * outside the layers as is. Fails with KVR_ERR_RANGE when a sum overflows 64 bits. */
enum kvr_status kvr_prefill_op_cost(const struct kvr_model *m, enum kvr_op op, uint64_t ctx,
                                    enum kvr_mask mask, struct kvr_op_cost *out);

/* Whole prefill of ctx tokens on one device: embedding, all layers, final norm and LM head of
 * the last token. linear = everything but attention scores, softmax and PV. */
struct kvr_prefill_flops {
    uint64_t total, linear, attention;
};
enum kvr_status kvr_prefill_flops(const struct kvr_model *m, uint64_t ctx, enum kvr_mask mask,
                                  struct kvr_prefill_flops *out);
