/* Megatron tensor parallelism over t GPUs: which part of a model one shard holds. The
 * simulator (tp, and the hybrid layouts' stages) and the executor (its TP groups) share it, so
 * both shard alike. */
#ifndef KVR_TP_H
#define KVR_TP_H

#include "kvr_model.h"
#include "kvr_status.h"

/* Shard j of t: heads, MLP columns and vocabulary split (the first n % t shards get one more),
 * KV heads split when there are at least t of them, else replicated (one per shard, as
 * Megatron does when t exceeds the KV heads). */
void kvr_tp_shard(const struct kvr_model *m, int t, int j, struct kvr_model *out);

/* Whether t GPUs can shard m evenly (Megatron's rule, which the layouts and the executor use):
 * t divides the heads, and t divides the KV heads or is a multiple of them. KVR_ERR_INPUT
 * naming `what` (the option or field that gave t) otherwise. */
enum kvr_status kvr_tp_check(const struct kvr_model *m, int t, const char *what);

/* The first query head and KV head of shard j (even shards; kvr_tp_check passed). A KV head
 * replicated over several shards is the one their query heads use. */
uint32_t kvr_tp_head0(const struct kvr_model *m, int t, int j);
uint32_t kvr_tp_kv_head0(const struct kvr_model *m, int t, int j);

#endif
