/* The layout search: over the TP degree t (every divisor of p that kvr_layout_check_tp allows,
 * or one), the mapping of the stages' shards to GPUs (block: a stage on consecutive GPUs, TP
 * inside a node; strided: the chain on consecutive GPUs; they differ only when 1 < t < p and
 * the links do), and, for kvr, the partition over the p / t stages (hier on an objective with
 * that t and mapping: a thin layer over the partition search). Schemes without a partition take
 * the even split. Every candidate is simulated once more for its memory per GPU and its bytes
 * between nodes; the best is the fastest that fits on every GPU (the simulator's memory
 * model). t = 1 here is the plain scheme on the identity mapping: kvr search's own product
 * (kvr_search_plan, over the chain's mappings and fewer GPUs) covers it. With p below a
 * multi-node topology, each mapping also runs shifted by offsets of t GPUs within a node (on
 * the fewest nodes): where the chains cross between nodes, an early stage's KV being the
 * smaller (uniform nodes: shifts by a whole node look the same and are not searched). */
#pragma once

#include "kvr_layout.h"
#include "kvr_search.h"
#include "kvr_store.h"

#define KVR_LAYOUT_MAX_CANDIDATES 96

struct kvr_layout_candidate {
    struct kvr_plan plan;  /* tp >= 1, partition over the stages */
    int map[KVR_MAX_GPUS]; /* role -> GPU of the machine as given (whole topology) */
    enum kvr_map map_kind; /* block or strided */
    int offset;            /* the window's first GPU: on fewer GPUs than the topology, role r on the
                              mapping's GPU + offset (0: from GPU 0) */
    double ttft_s;         /* the objective (mean / percentile with noise) */
    double mem_max_bytes;  /* the fullest GPU's memory */
    double bytes_inter_node_per_layer; /* what crosses between nodes per layer (all GPUs) */
    bool fits;
    uint64_t n_evals, granularity;
};

struct kvr_layout_result {
    struct kvr_layout_candidate cand[KVR_LAYOUT_MAX_CANDIDATES];
    int n_cand;
    int best; /* index of the fastest that fits, -1 when none does */
};

struct kvr_layout_opts {
    enum kvr_scheme scheme;              /* kvr_layout_scheme_ok */
    enum kvr_method method;              /* for kvr: the partition search (hier) */
    int tp_only;                         /* 0: every allowed t; else only this one */
    struct kvr_objective_opts objective; /* trials, percentile, kv_forward, sp (scheme, tp set
                                            here) */
    struct kvr_search_opts search;
};
void kvr_layout_opts_default(struct kvr_layout_opts *o);

/* machine->n_gpus is p. A candidate that does not fit is kept (fits false), never the best. */
enum kvr_status kvr_layout_search(const struct kvr_model *model, const struct kvr_machine *machine,
                                  uint64_t ctx, const struct kvr_layout_opts *o,
                                  struct kvr_layout_result *res);

/* A plan row's partition (per stage), granularity, prediction, evaluations and mapping (the
 * identity: not recorded) from the best candidate; KVR_ERR_NOFIT, with the fullest GPU's bytes,
 * when no candidate fits. The key fields (tp included) are the caller's. */
enum kvr_status kvr_layout_row_set(const struct kvr_layout_result *res, const struct kvr_machine *h,
                                   struct kvr_plan_row *r);
