/* The executor: one model on one backend, running prefill chunks for real.
 *
 * A chunk of c tokens at positions [s, s+c) runs every layer against the KV cache, which must
 * already hold positions [0, s) (from an earlier chunk on this executor, or received from
 * another rank). The layer is split in two halves so that schemes can move the cache between
 * them: kvr_exec_layer_qkv (norms, QKV, rotary, cache write) and kvr_exec_layer_rest
 * (attention, output projection, MLP, residuals). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvr_counts.h"
#include "kvr_model.h"
#include "kvr_status.h"

enum kvr_backend_kind { KVR_BACKEND_REF, KVR_BACKEND_CUDA };

const char *kvr_backend_name(enum kvr_backend_kind b);
int kvr_backend_from_name(const char *s); /* -1 when unknown */

struct kvr_exec_opts {
    enum kvr_backend_kind backend;
    uint32_t max_ctx;    /* KV-cache positions */
    uint32_t max_chunk;  /* tokens of the largest chunk (0: max_ctx); a single prefill longer
                          * than it runs in sub-chunks of max_chunk (kvr_exec_prefill) */
    uint64_t seed;       /* seeded random weights when weights is NULL */
    const char *weights; /* a .safetensors file, a sharded index or a folder; or NULL */
    bool allow_unused;   /* accept checkpoint tensors the model does not use */
    int device;          /* CUDA device ordinal */
    /* Megatron tensor parallelism: this executor holds shard tp_rank of tp (model/kvr_tp.h;
     * 0 or 1: the whole model). Its stage (the tp ranks of its TP group) is set by
     * kvr_exec_set_stage before the first layer runs. */
    int tp, tp_rank;
};

struct kvr_exec;

/* The largest chunk for a single prefill of o->max_ctx tokens whose memory (weights, KV cache,
 * activations of the chunk) fits the device now: max_ctx when it fits whole, else the largest
 * multiple of 1024 tokens (the ref backend: max_ctx). KVR_ERR_INPUT with the bytes when not even
 * 1024 tokens fit. */
enum kvr_status kvr_exec_fit_chunk(const struct kvr_model *m, const struct kvr_exec_opts *o,
                                   uint32_t *chunk);
/* The device bytes the backend plans for (what kvr_exec_open checks), by the options. */
uint64_t kvr_exec_bytes_needed(const struct kvr_model *m, const struct kvr_exec_opts *o);
/* Checks memory before allocating anything: the error states the bytes needed. */
enum kvr_status kvr_exec_open(const struct kvr_model *m, const struct kvr_exec_opts *o,
                              struct kvr_exec **out);
void kvr_exec_close(struct kvr_exec *ex);
/* The model this executor runs: with tensor parallelism its shard (the shard's heads, KV heads
 * and MLP columns; the whole vocabulary), whose KV cache rows are what the ranks move. */
const struct kvr_model *kvr_exec_model(const struct kvr_exec *ex);
/* The whole model (what checkpoints hold and kvr_exec_set_tensor takes), and t (1 unsharded). */
const struct kvr_model *kvr_exec_full_model(const struct kvr_exec *ex);
int kvr_exec_tp_degree(const struct kvr_exec *ex);
int kvr_exec_tp_shard(const struct kvr_exec *ex);
/* The stage of a sharded executor: a communicator of its t shards ranked by shard, over which
 * every layer all-reduces the residual stream (after the output projection and after the MLP;
 * once for a parallel block) and the logits are gathered. */
struct kvr_comm;
enum kvr_status kvr_exec_set_stage(struct kvr_exec *ex, struct kvr_comm *stage);

/* The prompt's length, for rotary scaling that depends on it (dynamic NTK, as transformers
 * computes it for a prefill of ctx tokens); default: max_ctx. kvr_exec_run_single and the
 * ranks' prefill set it themselves. */
enum kvr_status kvr_exec_set_prompt_len(struct kvr_exec *ex, uint32_t ctx);
/* The prompt of the timed runs (copied): kvr_exec_run_single and kvr_exec_profile_single use
 * it instead of seeded tokens; its length must be their ctx. */
enum kvr_status kvr_exec_set_tokens(struct kvr_exec *ex, const int32_t *tokens, uint32_t n);
/* The last-token logits (vocab floats) of the last kvr_exec_run_single, or NULL. */
const float *kvr_exec_last_logits(const struct kvr_exec *ex);

/* Loads weights from a float32 host array (used by the safetensors loader): a tensor of the
 * whole model, of which a sharded executor keeps its slice. */
enum kvr_status kvr_exec_set_tensor(struct kvr_exec *ex, int tensor, uint32_t layer,
                                    const float *data);

/* One whole chunk: embedding, every layer, and (when logits is not NULL) the logits of its
 * last token (vocab floats). The last layer computes the KV cache of every row, and its
 * attention and MLP for the last token only (for none without logits): nothing else reads them.
 * X then holds that one row. */
enum kvr_status kvr_exec_chunk(struct kvr_exec *ex, const int32_t *tokens, uint32_t s, uint32_t c,
                               enum kvr_mask mask, float *logits);
/* How the last prefill that computed logits ran its last layer's attention and MLP: true on the
 * last row alone (kvr_exec_chunk: one rank's prefill, also a stage of tensor parallelism),
 * false on every row of the chunk (the schemes' ranks: kvr_exec_layer_rest on each layer). What
 * a measurement row records (its last_layer, 'pruned' or 'full'). */
bool kvr_exec_last_layer_pruned(const struct kvr_exec *ex);
/* The FLOPs that kvr_exec_chunk(0, ctx) with logits executes (the last layer's rest on one
 * row), what kvr_exec_run_single's tflops and mfu count. */
enum kvr_status kvr_exec_prefill_flops(const struct kvr_model *m, uint32_t ctx, enum kvr_mask mask,
                                       uint64_t *flops);

/* The pieces of kvr_exec_chunk, for schemes that communicate between them. */
enum kvr_status kvr_exec_embed(struct kvr_exec *ex, const int32_t *tokens, uint32_t c);
enum kvr_status kvr_exec_layer_qkv(struct kvr_exec *ex, uint32_t layer, uint32_t s, uint32_t c);
enum kvr_status kvr_exec_layer_rest(struct kvr_exec *ex, uint32_t layer, uint32_t s, uint32_t c,
                                    enum kvr_mask mask);
enum kvr_status kvr_exec_logits(struct kvr_exec *ex, uint32_t c, float *logits);

/* Per-operation time (device events on cuda): on, each primitive operation is bracketed by
 * two time stamps and its time added to op_s[enum kvr_op] when a chunk completes. The
 * attention kernel does scores, softmax and PV at once: its time is under KVR_OP_ATTN_SCORES,
 * the final norm's under KVR_OP_LM_HEAD. */
void kvr_exec_set_profile(struct kvr_exec *ex, bool on);
void kvr_exec_profile_get(const struct kvr_exec *ex, double op_s[KVR_N_OPS]);
void kvr_exec_profile_reset(struct kvr_exec *ex);
/* `runs` profiled prefills of ctx seeded tokens (after kvr_exec_run_single's timed ones):
 * each operation's median device time over the runs. */
enum kvr_status kvr_exec_profile_single(struct kvr_exec *ex, uint32_t ctx, uint64_t token_seed,
                                        int runs, double op_s[KVR_N_OPS]);

/* The stage's whole KV cache of one layer, positions [0, n), as the whole model's
 * [n][kv][hd] float32 on shard 0 (every shard of the stage calls it; k, v unused elsewhere);
 * kvr_exec_kv_read without tensor parallelism. */
enum kvr_status kvr_exec_kv_gather(struct kvr_exec *ex, uint32_t layer, uint32_t n, float *k,
                                   float *v);
/* KV cache of one layer, positions [pos0, pos0+n), as float32 on the host: [n][kv][hd]. */
enum kvr_status kvr_exec_kv_read(struct kvr_exec *ex, uint32_t layer, uint32_t pos0, uint32_t n,
                                 float *k, float *v);

/* A single prefill of tokens [0, ctx) in sub-chunks of max_chunk (each after the cache the ones
 * before wrote; the last layer of all but the last one only writes its K/V), the last token's
 * logits into logits. The same result as one chunk, with a chunk's activations held. */
enum kvr_status kvr_exec_prefill(struct kvr_exec *ex, const int32_t *tokens, uint32_t ctx,
                                 float *logits);
/* A timed single-device prefill of ctx seeded tokens (or the kvr_exec_set_tokens prompt), as `kvr
 * exec --scheme single` runs it. */
struct kvr_exec_result {
    uint32_t ctx, reps;
    double ttft_s, ttft_min_s, ttft_max_s; /* median, min, max over reps */
    double tokens_per_s;
    double tflops, mfu; /* executed FLOPs (kvr_exec_prefill_flops) over the median; vs the peak */
    uint64_t flops;
    uint64_t peak_mem_bytes;
    uint64_t mem_predicted_bytes; /* kvr_exec_bytes_needed: the plan checked before allocating */
    uint32_t chunk;               /* tokens per sub-chunk (ctx: one chunk) */
    int32_t first_token;          /* argmax of the last token's logits */
    double logits_checksum;       /* sum of the last token's logits */
    bool last_layer_pruned;       /* kvr_exec_last_layer_pruned after the timed runs */
    char device[64];
    double peak_flops;
};
enum kvr_status kvr_exec_run_single(struct kvr_exec *ex, uint32_t ctx, uint64_t token_seed,
                                    int warmup, int reps, struct kvr_exec_result *r);

/* Argmax and sum of logits (what the reports print). */
int32_t kvr_logits_argmax(const float *logits, uint32_t vocab);
double kvr_logits_checksum(const float *logits, uint32_t vocab);
/* KVR_ERR_RUNTIME naming the first NaN or infinite logit (activations past float's range):
 * its argmax would be a first token nothing computed. */
enum kvr_status kvr_logits_check(const float *logits, uint32_t vocab);

/* Raw KV-cache rows (the backend's element type) between the executor and host buffers of
 * n * kvr_exec_kv_row_bytes bytes each: what the multi-rank schemes send. */
uint32_t kvr_exec_kv_row_bytes(const struct kvr_exec *ex);
enum kvr_status kvr_exec_kv_copy(struct kvr_exec *ex, uint32_t layer, uint32_t pos0, uint32_t n,
                                 void *k, void *v, bool to_host);
/* Peak device memory seen (the bytes held on host backends), and the device's name. */
uint64_t kvr_exec_peak_memory(struct kvr_exec *ex);
void kvr_exec_device_name(struct kvr_exec *ex, char *name, int cap);
void kvr_exec_driver(const struct kvr_exec *ex, char *buf, size_t cap);
/* Waits for the backend's queued work. */
enum kvr_status kvr_exec_sync(struct kvr_exec *ex);
/* Device addresses of cache row pos of one layer (cuda only): what nccl sends from. */
enum kvr_status kvr_exec_kv_device(struct kvr_exec *ex, uint32_t layer, uint32_t pos, void **k,
                                   void **v);

/* tsp-paper with nccl (cuda only): the executor's device scratch of at least `bytes` (kept and
 * grown by the backend, freed with the executor), and device rows in the cache's layout
 * [rows][kv][hd] to (expand) or from rows [rows][kv group][hd] expanded to every query head,
 * each KV head repeated group times as Hugging Face's repeat_kv does (back: each group's first
 * copy), on the executor's stream. */
enum kvr_status kvr_exec_wide_area(struct kvr_exec *ex, uint64_t bytes, void **ptr);
enum kvr_status kvr_exec_kv_regroup(struct kvr_exec *ex, void *dst, const void *src, uint64_t rows,
                                    uint32_t group, bool expand);

/* Device memory for communicator benchmarks with nccl (an error without CUDA). */
enum kvr_status kvr_exec_device_buffer(int device, size_t bytes, void **p);
void kvr_exec_device_free(void *p);

/* CUDA devices visible (0 without CUDA or without a GPU). */
int kvr_exec_cuda_devices(void);

/* The attention kernel alone on seeded random Q, K, V: c queries at [s, s+c) against keys
 * [0, s+c), causal, within a sliding window of `window` keys when it is not 0. FLOPs count
 * unmasked pairs only (inside the window): 4 head_dim pairs n_heads. With check, the output
 * (and with lse, the log-sum-exp output) is compared with the plain kernel
 * (kvr_cu_attention_naive). */
#define KVR_ATTN_N_VARIANTS 10 /* kvr_cu_attention_mt's variants are 0..10 */
struct kvr_attn_bench {
    uint32_t s, c, n_heads, n_kv, head_dim, window;
    int dense, mt, warmup, reps; /* mt: kernel variant (kvr_cu_attention_mt; 0 = default) */
    bool check, lse;
    float k_ramp; /* > 0: key row j scaled by 1 + j k_ramp (a running max that keeps rising) */
    /* results */
    double time_s, time_min_s, tflops, max_abs_err, rel_err, lse_err;
    uint64_t flops;
};
enum kvr_status kvr_exec_bench_attention(struct kvr_attn_bench *b);
/* The tolerances of a check against the plain kernel (bf16 outputs, fp32 log-sum-exps): what
 * test_exec_cuda asserts and what fails kvr bench attention --check. */
#define KVR_ATTN_CHECK_REL   1e-2 /* output, relative L2 */
#define KVR_ATTN_CHECK_ABS   3e-2 /* output, max abs */
#define KVR_ATTN_CHECK_LSE   1e-2 /* LSE, max abs */
#define KVR_RING_CHECK_MERGE 1e-5 /* the ring's fast merge against the plain one, fp32 both */
/* Whether b's check (b->check) is within them; NaN (an unwritten output) is not. */
static inline bool kvr_attn_check_passed(const struct kvr_attn_bench *b)
{
    return b->rel_err <= KVR_ATTN_CHECK_REL && b->max_abs_err <= KVR_ATTN_CHECK_ABS &&
           (!b->lse || b->lse_err <= KVR_ATTN_CHECK_LSE);
}
/* Unmasked pairs per head of c queries at [s, s+c), causal, inside a window (0: none). */
uint64_t kvr_attn_window_pairs(uint64_t s, uint64_t c, uint64_t window);
/* The ring's attention kernels alone (kvr bench attention --ring P; cuda): for each of p ranks
 * under zig-zag sharding of ctx and each of its p steps, the fast ring step (the warp-specialised
 * kernel on each block), the fast merge into the running output and the finish, each the median
 * of reps CUDA-event timings after warmup runs, on random data. All p^2 steps together are the
 * causal (windowed) attention of [0, ctx): the prefill kernel's pairs. check first compares the
 * fast path with the plain kernels (kvr_cuda_ring.cu): every step (output and LSE, poisoned
 * slots), the merged steps with one plain pass over all keys, the fast merge with the plain one
 * (on the plain steps), the fast finish with the plain one (bit for bit). */
struct kvr_ring_bench {
    uint32_t ctx, n_heads, n_kv, head_dim, window;
    int p, warmup, reps;
    bool check;
    /* results; step kinds: 0 own keys (the diagonal), 1 an earlier rank's, 2 a later rank's */
    double kind_s[3], time_s, merge_s, finish_s, tflops;
    uint64_t kind_flops[3], flops;
    double step_err, step_lse_err, merged_err, merged_lse_err, merge_err, merge_lse_err;
    bool finish_equal;
};
enum kvr_status kvr_exec_bench_ring(struct kvr_ring_bench *b);
/* Whether r's check is within the tolerances above (max abs errors) and the finish equal. */
static inline bool kvr_ring_check_passed(const struct kvr_ring_bench *r)
{
    return r->step_err <= KVR_ATTN_CHECK_ABS && r->merged_err <= KVR_ATTN_CHECK_ABS &&
           r->merge_err <= KVR_RING_CHECK_MERGE && r->step_lse_err <= KVR_ATTN_CHECK_LSE &&
           r->merged_lse_err <= KVR_ATTN_CHECK_LSE && r->merge_lse_err <= KVR_RING_CHECK_MERGE &&
           r->finish_equal;
}

/* Ring attention (exec/kvr_dist_ring.c): a rank's rows hold up to two position ranges (zig-zag
 * sharding), and attention runs block by block with each block's log-sum-exp, the partial
 * outputs merged by it. */
struct kvr_span {
    uint32_t pos[2], n[2]; /* rows [0, n[0]) at positions pos[0].., then n[1] at pos[1].. */
};
static inline uint32_t kvr_span_rows(const struct kvr_span *s)
{
    return s->n[0] + s->n[1];
}
/* Rank r's rows under zig-zag sharding of ctx over p ranks (ctx >= 2p): chunks r and 2p-1-r of
 * 2p, as the simulator cuts them (kvr_zigzag_chunks, sim/kvr_sim.h). */
struct kvr_span kvr_zigzag_span(uint32_t ctx, int p, int r);
/* kvr_exec_layer_qkv for the rows of a span: norms and QKV on all of them, rotary and the cache
 * write of each range at its positions. */
enum kvr_status kvr_exec_layer_qkv_span(struct kvr_exec *ex, uint32_t layer,
                                        const struct kvr_span *s);
/* kvr_exec_layer_rest after the attention: ATT (rows [0, c)) through the output projection and
 * the MLP. */
enum kvr_status kvr_exec_layer_after_attn(struct kvr_exec *ex, uint32_t layer, uint32_t c);

/* The workspace: n_q query slots of `rows` rows [n_heads head_dim] in the backend's element
 * type, and n_o output slots whose rows are [n_heads head_dim] partial outputs followed by their
 * n_heads log-sum-exps, in the accumulation type (ref: double, the float64 merge of the oracle;
 * cuda: float). Rows [0, n) of a slot are contiguous: what ranks send. */
enum kvr_ring_part { KVR_RING_Q, KVR_RING_O };
enum kvr_status kvr_exec_ring_setup(struct kvr_exec *ex, uint32_t rows, uint32_t n_q, uint32_t n_o);
/* QKV's rotated queries, rows [0, n), into a query slot. */
enum kvr_status kvr_exec_ring_q_pack(struct kvr_exec *ex, uint32_t q_slot, uint32_t n);
/* Attention of the queries at span q (QKV's rows when q_slot < 0, else the query slot's) to
 * the cache keys of span k of layer: the query at position x sees the keys at positions j <= x
 * (causal inside a diagonal block, nothing masked before it; fully masked parts cost nothing),
 * and with a sliding window W > 0 only those with x - j < W. The output and its log-sum-exp
 * go to rows [0, rows(q)) of output slot o_slot; a row that sees no key gets output 0 and
 * log-sum-exp -inf. */
enum kvr_status kvr_exec_ring_attn(struct kvr_exec *ex, uint32_t layer, int q_slot,
                                   const struct kvr_span *q, const struct kvr_span *k,
                                   uint32_t window, uint32_t o_slot);
/* Rows [0, n) of output slot dst become the merge of dst and src: o = (e^(l_d - m) o_d +
 * e^(l_s - m) o_s) / (e^(l_d - m) + e^(l_s - m)), l = m + log(...), m = max(l_d, l_s). */
enum kvr_status kvr_exec_ring_merge(struct kvr_exec *ex, uint32_t dst, uint32_t src, uint32_t n);
/* ATT rows [0, n) = the output of slot o_slot, in the backend's type. */
enum kvr_status kvr_exec_ring_finish(struct kvr_exec *ex, uint32_t o_slot, uint32_t n);
/* Address of a slot's row 0 (device memory on cuda) and the bytes of one of its rows. */
enum kvr_status kvr_exec_ring_area(struct kvr_exec *ex, enum kvr_ring_part part, uint32_t slot,
                                   void **ptr, size_t *row_bytes);
/* Rows [0, n) of a slot between the backend and a host buffer. */
enum kvr_status kvr_exec_ring_copy(struct kvr_exec *ex, enum kvr_ring_part part, uint32_t slot,
                                   uint32_t n, void *host, bool to_host);
