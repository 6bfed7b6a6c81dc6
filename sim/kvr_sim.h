/* The simulator: a plan (scheme, p, ctx, partition) on a model and a machine gives a TTFT,
 * per-rank compute / communication / waiting times, memory, and optionally a timeline of
 * events. kvr_sim_run does no I/O and no allocation: everything it needs is prepared by
 * kvr_sim_open and kvr_sim_draw_noise. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvr_machine.h"
#include "kvr_model.h"
#include "kvr_scheme.h"

/* What travels around the ring of `ring` (zig-zag ring attention): the K/V blocks (pass-KV, the
 * default) or the queries, whose partial outputs and log-sum-exps go back to their owners at
 * the end of the layer (pass-Q); auto: whichever the simulator predicts faster for the shape
 * and machine (kvr_sim_run resolves it, kvr_sim_result.ring_pass says which). */
enum kvr_ring_pass { KVR_RING_PASS_KV, KVR_RING_PASS_Q, KVR_RING_PASS_AUTO };
const char *kvr_ring_pass_name(enum kvr_ring_pass r);
int kvr_ring_pass_from_name(const char *s); /* -1 when unknown */

struct kvr_plan {
    enum kvr_scheme scheme;
    int p;
    uint64_t ctx;
    uint64_t tokens[KVR_MAX_GPUS];  /* chunk per rank; the schemes that take any partition
                                       (KVR_SO_PARTITION) use it, the others split evenly */
    enum kvr_ring_pass ring_pass;   /* ring only */
    enum kvr_kv_forward kv_forward; /* the chain's hand-off (KVR_SO_FORWARD); whole (0) else */
    /* A hybrid layout (kvr_layout.h): 0 = the scheme as it is; t >= 1 = p / t stages, each a
     * Megatron tensor-parallel group of t GPUs, tokens[] one chunk per stage (t = 1: the same
     * plan); sp: Megatron's sequence parallelism inside the stages (t > 1 only). */
    int tp;
    bool sp;
    /* One GPU (p = 1): false (the default) models the executor's kvr_exec_chunk, whose last
     * layer runs its attention and MLP on the last row alone; true runs that layer on every row,
     * as the executor did before (measurements taken then: kvr validate and kvr calibrate take
     * it from the data). Refused with p > 1: the schemes on ranks do not prune. */
    bool full_last_layer;
    /* One GPU: the prefill in sub-chunks of `chunk` tokens (0: one chunk), each after the cache
     * of the ones before, as kvr exec --chunk runs it: per sub-chunk its embedding and layers,
     * the last layer of all but the last sub-chunk its pre alone (only its K/V are needed);
     * activations held for one sub-chunk. */
    uint64_t chunk;
};

/* Even split of ctx over p ranks (over the p / t stages of a layout) (the first ctx % p ranks get
 * one more token). */
void kvr_plan_even(struct kvr_plan *plan);
/* The closed-form split that gives every rank equal compute time, linear plus attention:
 * with a = seconds per token of the token-local work and b = seconds per attention pair, rank i
 * costs a c_i + b (S_i^2 - S_{i-1}^2) / 2, so S_i solves a S + b S^2 / 2 = (i+1) / p of the
 * total. Rounded to whole tokens, every chunk non-empty, summing to ctx. */
void kvr_plan_balanced(struct kvr_plan *plan, const struct kvr_model *m, const struct kvr_gpu *g);

/* Parses "6144,4096,..." into plan->tokens; the sum must be ctx, no chunk empty, p entries. */
enum kvr_status kvr_plan_parse_partition(struct kvr_plan *plan, const char *text);
enum kvr_status kvr_plan_check(const struct kvr_plan *plan, const struct kvr_machine *machine);
/* What the model allows: tp needs p to divide the heads and fit the KV heads (see kvr_sim.c). */
enum kvr_status kvr_plan_check_model(const struct kvr_plan *plan, const struct kvr_model *m);

enum kvr_event_kind { KVR_EV_COMPUTE, KVR_EV_SEND, KVR_EV_WAIT, KVR_EV_COLLECTIVE };
const char *kvr_event_kind_name(enum kvr_event_kind k);

struct kvr_event {
    int rank, layer; /* layer -1: before the layers (embedding); n_layers: after (LM head) */
    enum kvr_event_kind kind;
    const char *what; /* "pre", "attn", "post", "kv", "allgather", ... */
    double start_s, end_s, bytes;
    int peer; /* the other rank of a send, -1 otherwise */
};

/* Caller-owned event buffer; events past cap are counted in n_dropped, not stored. */
struct kvr_timeline {
    struct kvr_event *events;
    size_t n, cap, n_dropped;
};

struct kvr_rank_result {
    uint64_t tokens;
    double compute_s, comm_s, wait_s, end_s;
    double first_wait_s; /* of wait_s, the part at layer 0: the chain's start-up */
    double mem_bytes, weight_bytes, kv_bytes, act_bytes;
    bool fits;
};

struct kvr_sim_result {
    enum kvr_scheme scheme;
    int p;
    double ttft_s;
    double lower_bound_s; /* the FLOPs / (p * peak): the causal prefill's, or p = 1 the executed
                             ones (kvr_sim_prefill_flops) */
    double bytes_sent_total;
    double bytes_inter_node; /* of those, what crosses between nodes (kvr_machine_node; a ring
                                collective: its hops that do, each bytes_total / n) */
    double mem_available_bytes;
    enum kvr_ring_pass ring_pass; /* ring: the pass simulated (kv or q, auto resolved) */
    struct kvr_rank_result rank[KVR_MAX_GPUS];
};

struct kvr_sim;

enum kvr_status kvr_sim_open(const struct kvr_model *model, const struct kvr_machine *machine,
                             struct kvr_sim **out);
void kvr_sim_free(struct kvr_sim *sim);

/* Draws the per-layer, per-link noise shares of trial t (seeded GSL generator; constant noise
 * ignores t). */
enum kvr_status kvr_sim_draw_noise(struct kvr_sim *sim, uint64_t trial);

/* Memory: whether every rank fits, the most any rank needs, and KVR_ERR_NOFIT (exit 3) with
 * the bytes needed and available per rank that does not fit. */
bool kvr_sim_fits(const struct kvr_sim_result *res);
/* What kvr_sim_memory gives a kvr rank holding the cache [0, prefix_end) and a chunk of tokens
 * (the search's greedy keeps every rank within the memory with it). */
double kvr_memory_kvr_rank_bytes(const struct kvr_model *m, uint64_t prefix_end, uint64_t tokens);
double kvr_sim_mem_needed(const struct kvr_sim_result *res);
enum kvr_status kvr_sim_check_fits(const struct kvr_sim_result *res);

/* The FLOPs of a one-GPU prefill of ctx tokens (double: a sum over 80 layers at 4M tokens
 * exceeds 2^64): every layer on every row (full_last_layer), or as the executor runs it, the
 * last layer's attention and post on the last row alone (kvr_exec_prefill_flops's count). */
enum kvr_status kvr_sim_prefill_flops(const struct kvr_model *m, uint64_t ctx, bool full_last_layer,
                                      double *flops);

/* Simulates a checked plan through its scheme's simulator entry (p = 1: every scheme through
 * single's, as the executor runs one rank of any scheme through kvr_exec_chunk). timeline may
 * be NULL. */
enum kvr_status kvr_sim_run(struct kvr_sim *sim, const struct kvr_plan *plan,
                            struct kvr_sim_result *res, struct kvr_timeline *timeline);

/* The noise shares of one layer (n_gpus x n_gpus, the machine's stride), NULL without noise:
 * the executor's link emulation reads the simulator's draws. */
const double *kvr_sim_layer_noise(const struct kvr_sim *sim, int layer);

/* Zig-zag sharding (ring): ctx cut into 2p chunks (the first ctx % 2p one token longer); rank
 * i holds chunks i and 2p-1-i, positions [lo[0], hi[0]) and [lo[1], hi[1]). */
void kvr_zigzag_chunks(uint64_t ctx, int p, int i, uint64_t lo[2], uint64_t hi[2]);
/* Sets plan->tokens to the tokens each rank holds under zig-zag sharding. */
void kvr_plan_zigzag(struct kvr_plan *plan);

/* Exact causal pairs between queries at [q0, q1) and keys at [k0, k1). */
uint64_t kvr_pairs_between(uint64_t q0, uint64_t q1, uint64_t k0, uint64_t k1);
