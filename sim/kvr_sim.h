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

struct kvr_plan {
    enum kvr_scheme scheme;
    int p;
    uint64_t ctx;
    uint64_t tokens[KVR_MAX_GPUS];  /* chunk per rank; the schemes that take any partition
                                       (KVR_SO_PARTITION) use it, the others split evenly */
    enum kvr_kv_forward kv_forward; /* the chain's hand-off (KVR_SO_FORWARD); whole (0) else */
};

/* Even split of ctx over p ranks (the first ctx % p ranks get one more token). */
void kvr_plan_even(struct kvr_plan *plan);
/* The closed-form split that gives every rank equal compute time, linear plus attention:
 * with a = seconds per token of the token-local work and b = seconds per attention pair, rank i
 * costs a c_i + b (S_i^2 - S_{i-1}^2) / 2, so S_i solves a S + b S^2 / 2 = (i+1) / p of the
 * total. Rounded to whole tokens, every chunk non-empty, summing to ctx. */
void kvr_plan_balanced(struct kvr_plan *plan, const struct kvr_model *m, const struct kvr_gpu *g);

/* Parses "6144,4096,..." into plan->tokens; the sum must be ctx, no chunk empty, p entries. */
enum kvr_status kvr_plan_parse_partition(struct kvr_plan *plan, const char *text);
enum kvr_status kvr_plan_check(const struct kvr_plan *plan, const struct kvr_machine *machine);

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
    double lower_bound_s; /* total causal prefill FLOPs / (p * peak) */
    double bytes_sent_total;
    double mem_available_bytes;
    struct kvr_rank_result rank[KVR_MAX_GPUS];
};

struct kvr_sim;

enum kvr_status kvr_sim_open(const struct kvr_model *model, const struct kvr_machine *machine,
                             struct kvr_sim **out);
void kvr_sim_free(struct kvr_sim *sim);

/* Draws the per-layer, per-link noise shares of trial t (seeded GSL generator; constant noise
 * ignores t). */
enum kvr_status kvr_sim_draw_noise(struct kvr_sim *sim, uint64_t trial);

/* Simulates a checked plan through its scheme's simulator entry. timeline may be NULL. */
enum kvr_status kvr_sim_run(struct kvr_sim *sim, const struct kvr_plan *plan,
                            struct kvr_sim_result *res, struct kvr_timeline *timeline);

/* The noise shares of one layer (n_gpus x n_gpus, the machine's stride), NULL without noise:
 * the executor's link emulation reads the simulator's draws. */
const double *kvr_sim_layer_noise(const struct kvr_sim *sim, int layer);

/* Sorts v[0..n) in place and returns its q-quantile (q in [0, 1]) by linear interpolation
 * between order statistics: the p50/p95 of noise trials everywhere. */
double kvr_quantile(double *v, size_t n, double q);

/* Exact causal pairs between queries at [q0, q1) and keys at [k0, k1). */
uint64_t kvr_pairs_between(uint64_t q0, uint64_t q1, uint64_t k0, uint64_t k1);
