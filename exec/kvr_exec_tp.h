/* Megatron tensor parallelism inside the executor (internal to exec/): what shard j of t holds
 * of each tensor, the shard's seeded weights and checkpoint slices, the stage's all-reduce of
 * the residual stream and the gather of the vocabulary-parallel logits (kvr_exec_tp.c).
 *
 * Shard j holds Megatron shard j (model/kvr_tp.h): the query heads [h0, h0 + n_heads / t) and
 * their KV heads (replicated when t exceeds the KV heads) of the column-parallel QKV and its
 * bias, the same columns of the row-parallel output projection, the MLP columns of the
 * column-parallel gate/up (gate and up alike) and its bias and of the row-parallel down
 * projection, and the vocabulary rows of the LM head; norms and the embedding whole. The
 * row-parallel biases (output, down) are held by shard 0 only (the others hold zeros), so the
 * all-reduce adds them once. */
#pragma once

#include "kvr_backend.h"
#include "kvr_comm.h"
#include "kvr_tp.h"

struct kvr_exec_tp;

/* t > 1: the state of shard j and the model the backend runs: the shard's heads, KV heads and
 * MLP columns, the whole vocabulary (the embedding is replicated; the LM head's part:
 * kvr_exec_tp_vocab). KVR_ERR_INPUT naming --tp when t does not shard m (kvr_tp_check). */
enum kvr_status kvr_exec_tp_open(const struct kvr_model *full, int t, int j,
                                 struct kvr_exec_tp **out, struct kvr_model *shard);
void kvr_exec_tp_free(struct kvr_exec_tp *tp);
/* The LM head's rows [*v0, *v0 + *n) of the vocabulary that the shard's backend holds (its
 * create functions' v0, n_vocab); tp NULL: *v0 and *n unchanged (the whole vocabulary). */
void kvr_exec_tp_vocab(const struct kvr_exec_tp *tp, uint32_t *v0, uint32_t *n);
/* Checks the backend has what a shard needs (after it is created). */
enum kvr_status kvr_exec_tp_setup(struct kvr_exec_tp *tp, struct kvr_backend *be);
/* Every tensor of the shard: the full model's seeded values at the full tensor's indices
 * (through the backend's seed_rows). tp NULL: every tensor of the whole model m, unsharded
 * (the backend's weights when no checkpoint is given). */
enum kvr_status kvr_exec_tp_seed(const struct kvr_exec_tp *tp, struct kvr_backend *be,
                                 const struct kvr_model *m, uint64_t seed);
/* Tensor x of layer from the full model's float32 data: the shard's slice to the backend. */
enum kvr_status kvr_exec_tp_set_tensor(const struct kvr_exec_tp *tp, struct kvr_backend *be,
                                       enum kvr_tensor x, uint32_t layer, const float *full_data);
/* The stage: the t ranks of one TP group, ranked by shard. */
enum kvr_status kvr_exec_tp_set_comm(struct kvr_exec_tp *tp, struct kvr_comm *stage);
/* X[0..c) = the stage's sum of every shard's X (fp32): on the device with a device-buffer
 * communicator, else staged through the host. */
enum kvr_status kvr_exec_tp_allreduce(struct kvr_exec_tp *tp, struct kvr_backend *be, uint32_t c);
/* After the backend's logits: this shard's part, gathered in vocabulary order on every shard of
 * the stage (vocab floats into out). */
enum kvr_status kvr_exec_tp_logits(struct kvr_exec_tp *tp, struct kvr_backend *be, float *out);
/* The stage's whole KV cache of one layer, positions [0, n) (every shard calls it): the full
 * model's [n][n_kv_heads][head_dim] K and V on shard 0 (k, v NULL elsewhere). */
enum kvr_status kvr_exec_tp_kv_gather(struct kvr_exec_tp *tp, struct kvr_backend *be,
                                      uint32_t layer, uint32_t n, float *k, float *v);
