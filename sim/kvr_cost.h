/* Cost model: seconds for operations on one GPU and for transfers over links.
 *
 *   op time   = max(FLOPs / (peak * compute_eff(class, rows)), bytes / (mem_bw * mem_eff(class)))
 *               + launch overhead          (an op with no work costs nothing)
 *   compute_eff(class, rows) = eff[class] * rows / (rows + half_tokens[class])
 *   rows = the op's tokens; for attention queries^(1-a) (pairs / queries)^a, a = attn_keys_exp
 *   link time = latency + bytes / (bandwidth * (1 - noise share))
 *   ring collectives over ranks 0..p-1 (p > 1), each step gated by its slowest link:
 *     all-gather     (p-1) steps of the per-rank block
 *     all-reduce     2(p-1) steps of size/p
 * sim/README.md writes these out with nccl-tests' algbw/busbw conventions. */
#pragma once

#include <stdbool.h>

#include "kvr_counts.h"
#include "kvr_machine.h"

double kvr_cost_op_s(const struct kvr_gpu *g, const struct kvr_op_cost *c, enum kvr_op_class cls,
                     double rows);
/* The same for operation op of model m: attention's efficiency scaled by the head size, and
 * the operation's calibrated time multiplier (kvr_gpu.op_scale). */
double kvr_cost_model_op_s(const struct kvr_model *m, const struct kvr_gpu *g, enum kvr_op op,
                           const struct kvr_op_cost *c, double rows);

/* The rows that set op's efficiency for a chunk of c tokens after s (see above), with model m's
 * pairs (kvr_model_attn_pairs: its sliding window honoured), as every op time of the simulator
 * uses them. */
double kvr_cost_model_eff_rows(const struct kvr_model *m, const struct kvr_gpu *g, enum kvr_op op,
                               uint64_t s, uint64_t c, enum kvr_mask mask);

/* A layer's phases for a chunk of c tokens after s, as KV-Runahead orders them:
 * pre = norm, QKV, rotary; attention = scores, softmax, PV; post = out-proj, norm, MLP, residual.
 */
double kvr_cost_pre_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t c);
double kvr_cost_attn_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t s, uint64_t c,
                       enum kvr_mask mask);
/* Attention of n_queries against n_keys with `pairs` computed pairs (ring blocks). */
double kvr_cost_attn_block_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t n_queries,
                             uint64_t n_keys, uint64_t pairs);
/* Ops [first, last] (none of them attention) for c tokens: what pre and post sum. */
double kvr_cost_ops_s(const struct kvr_model *m, const struct kvr_gpu *g, enum kvr_op first,
                      enum kvr_op last, uint64_t c);
double kvr_cost_post_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t c);
/* The last layer of a one-GPU prefill of n tokens as the executor runs it (kvr_exec_chunk): pre
 * on all n rows (their K/V are the cache), the rest on the last row alone. An op of that rest
 * runs on the last row (its query against all n keys) unless it runs before attention: the
 * second norm of a parallel block with two norms (Falcon-40B) is taken with the first. */
bool kvr_cost_last_row_op(const struct kvr_model *m, enum kvr_op op);
/* Post (out-proj .. residual) of that last layer: each op on 1 row after n - 1, or on n. */
double kvr_cost_post_last_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t n);
double kvr_cost_embed_s(const struct kvr_model *m, const struct kvr_gpu *g, uint64_t c);
double kvr_cost_head_s(const struct kvr_model *m,
                       const struct kvr_gpu *g); /* final norm + LM head */

/* A transfer of bytes over link i -> j with share of its bandwidth taken by other traffic. */
double kvr_link_s(const struct kvr_machine *m, int i, int j, double bytes, double share);
/* The same for an asynchronous transfer that overlaps compute at both ends: at most the
 * machine's overlap_Bps. */
double kvr_link_overlap_s(const struct kvr_machine *m, int i, int j, double bytes, double share);

/* Ring collectives over ranks 0..p-1; shares is this layer's noise matrix (row stride
 * `stride`) or NULL. */
double kvr_allgather_s(const struct kvr_machine *m, int p, double block_bytes, const double *shares,
                       int stride);
double kvr_allreduce_s(const struct kvr_machine *m, int p, double bytes, const double *shares,
                       int stride);
