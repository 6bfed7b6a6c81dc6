/* Partition search: minimise the simulated TTFT of a scheme that takes a partition (kvr) over
 * partitions of ctx tokens into p contiguous chunks.
 *
 *   kvr_search_hier        the product's search: a coarse grid over the partition simplex,
 *                          then pairwise moves of `step` tokens between chunks (steepest
 *                          descent), step halving down to the granularity
 *   kvr_search_exhaustive  oracle: every partition on the granularity grid (small p, ctx)
 *   kvr_search_nelder_mead oracle: GSL multi-start Nelder-Mead on the continuous relaxation
 *
 * Grid: chunks 0..p-2 are multiples of the granularity g, the last chunk takes the rest
 * (g = 1 when ctx < p * g). The objective is the TTFT, or with noise the mean or a percentile
 * over seeded trials (the same draws for every candidate: common random numbers). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kvr_sim.h"

enum kvr_method {
    KVR_METHOD_HIER,       /* hierarchical grid search (KVR-S) */
    KVR_METHOD_EXHAUSTIVE, /* oracle */
    KVR_METHOD_NM,         /* oracle: Nelder-Mead on the relaxation */
    KVR_METHOD_EVEN,       /* KVR-E, no search */
    KVR_METHOD_BALANCED,   /* closed-form equal-compute split, no search */
    KVR_METHOD_DESCENT,    /* oracle: the earlier product, coarse grid + all-pair descent */
    KVR_METHOD_MULTISTART, /* strong oracle: hier, descent, Nelder-Mead and random restarts */
    KVR_N_METHODS
};
const char *kvr_method_name(enum kvr_method m);
int kvr_method_from_name(const char *name); /* -1 when unknown */

struct kvr_objective_opts {
    enum kvr_scheme scheme;         /* must take a partition */
    uint64_t trials;                /* noise trials; 1 without noise */
    double percentile;              /* 0: the mean over trials; else in (0, 100] */
    enum kvr_kv_forward kv_forward; /* the chain's hand-off (whole by default) */
    /* a hybrid layout (kvr_layout.h): 0 the plain scheme; t >= 1: p / t stages of t GPUs, the
     * partition one chunk per stage (kvr_objective_p is the number of stages); sp: sequence
     * parallelism inside the stages */
    int tp;
    bool sp;
};

struct kvr_objective; /* the simulator handles of every trial, and an evaluation count */

/* The machine's n_gpus is p for every plan evaluated. */
enum kvr_status kvr_objective_open(const struct kvr_model *model, const struct kvr_machine *machine,
                                   const struct kvr_objective_opts *opts,
                                   struct kvr_objective **out);
void kvr_objective_free(struct kvr_objective *obj);
/* TTFT objective of a partition of ctx (p = machine's n_gpus); INFINITY for an invalid one. */
double kvr_objective_eval(struct kvr_objective *obj, uint64_t ctx, const uint64_t *tokens);
uint64_t kvr_objective_evals(const struct kvr_objective *obj);
/* The noise trials each evaluation runs (1 without noise). */
uint64_t kvr_objective_trials(const struct kvr_objective *obj);
/* A cheap, deterministic stand-in for the objective under noise, for screening candidates: one
 * simulator run with every randomly noisy link at its mean share (kvr_noise_mean_share; counted
 * as an evaluation). With one trial, the objective itself. */
double kvr_objective_screen(struct kvr_objective *obj, uint64_t ctx, const uint64_t *tokens);
/* The expected share of random noise share s as a transfer's time sees it: E[1 / (1 - U s)]
 * for U uniform in [0, 1) is -ln(1 - s) / s = 1 / (1 - mean share). */
double kvr_noise_mean_share(double share);
/* After an evaluation that did not fit in memory: its fullest rank's bytes needed / available
 * (> 1); 0 after one that fit or was invalid. What a relaxation can descend on towards a plan
 * that fits (Nelder-Mead). */
double kvr_objective_last_nofit_ratio(const struct kvr_objective *obj);
/* The hand-off mode the objective's plans use from now on (the search tries each, kvr search
 * --kv-forward auto). */
void kvr_objective_set_kv_forward(struct kvr_objective *obj, enum kvr_kv_forward f);
enum kvr_kv_forward kvr_objective_kv_forward(const struct kvr_objective *obj);
/* The chunks of a partition: p, or a layout's p / t stages. */
int kvr_objective_p(const struct kvr_objective *obj);
/* The layout's t (1 without one). */
int kvr_objective_tp(const struct kvr_objective *obj);
const struct kvr_model *kvr_objective_model(const struct kvr_objective *obj);
/* The machine with the mapping applied: position i of the chain is its GPU i. */
const struct kvr_machine *kvr_objective_machine(const struct kvr_objective *obj);
/* Chain position i -> GPU map[i] of the machine as opened (map: a permutation of the whole
 * topology; the first p entries are the chain). Identity when opened. */
enum kvr_status kvr_objective_set_mapping(struct kvr_objective *obj, const int *map);
/* The links (and noisy links) of base seen from chain positions: out's i -> j is base's
 * map[i] -> map[j]; map a permutation of the whole topology; base and out distinct. The rest
 * of out is untouched. */
enum kvr_status kvr_machine_permute(const struct kvr_machine *base, const int *map,
                                    struct kvr_machine *out);
/* A whole-topology permutation from a chain's p GPUs, the unused GPUs after them in order. */
enum kvr_status kvr_mapping_complete(const int *chain, int p, int n_total, int *map);
const struct kvr_machine *kvr_objective_base_machine(const struct kvr_objective *obj);
/* The same model, machine (identity mapping) and objective on p GPUs (1 <= p). */
enum kvr_status kvr_objective_open_fewer(const struct kvr_objective *obj, int p,
                                         struct kvr_objective **out);
/* A plan that does not fit evaluates to INFINITY; when a search found nothing finite this
 * names why: KVR_ERR_NOFIT with the bytes needed and available, else a runtime error. */
enum kvr_status kvr_objective_nofit_error(const struct kvr_objective *obj, uint64_t ctx);

struct kvr_search_result {
    uint64_t tokens[KVR_MAX_GPUS];
    double ttft_s;        /* the objective at tokens */
    uint64_t n_evals;     /* objective evaluations this search made */
    uint64_t granularity; /* the grid every boundary is on (1 when ctx < p * requested) */
};

struct kvr_search_opts {
    uint64_t granularity;    /* tokens; default 64 */
    uint64_t coarse_max;     /* most coarse-grid points; default 512 */
    uint64_t exhaustive_max; /* oracle refuses beyond this many partitions; default 5e6 */
    int nm_starts; /* Nelder-Mead starts (balanced, even, then seeded random); default 6 */
    uint64_t nm_seed;
};
void kvr_search_opts_default(struct kvr_search_opts *o);

enum kvr_status kvr_search_run(struct kvr_objective *obj, enum kvr_method method, uint64_t ctx,
                               const struct kvr_search_opts *o, struct kvr_search_result *res);

enum kvr_status kvr_search_hier(struct kvr_objective *obj, uint64_t ctx,
                                const struct kvr_search_opts *o, struct kvr_search_result *res);
enum kvr_status kvr_search_exhaustive(struct kvr_objective *obj, uint64_t ctx,
                                      const struct kvr_search_opts *o,
                                      struct kvr_search_result *res);
enum kvr_status kvr_search_nelder_mead(struct kvr_objective *obj, uint64_t ctx,
                                       const struct kvr_search_opts *o,
                                       struct kvr_search_result *res);

/* Every method needs ctx >= p (one token per rank at least). */
enum kvr_status kvr_search_check_ctx(const struct kvr_objective *obj, uint64_t ctx);
/* The descent oracle (the product before the bottleneck search, kvr_search_descent.c), and
 * the strong oracle: the best of hier, descent from hier's answer, Nelder-Mead rounded to the
 * grid and polished, and hier's refinement from seeded random starts. */
enum kvr_status kvr_search_descent(struct kvr_objective *obj, uint64_t ctx,
                                   const struct kvr_search_opts *o, struct kvr_search_result *res);
enum kvr_status kvr_search_multistart(struct kvr_objective *obj, uint64_t ctx,
                                      const struct kvr_search_opts *o,
                                      struct kvr_search_result *res);
/* Refinement on the grid g from tokens (in/out, on the grid): moves of step tokens across each
 * boundary, halving from step down to g; returns the objective at the result. */
double kvr_search_refine(struct kvr_objective *obj, uint64_t ctx, uint64_t g, uint64_t step,
                         uint64_t *tokens);
/* The descent oracle's all-pair moves (any chunk to any chunk) from tokens, halving from step
 * down to g; p(p-1) evaluations a step: an oracle's polish, not the product. */
double kvr_search_polish(struct kvr_objective *obj, uint64_t ctx, uint64_t g, uint64_t step,
                         uint64_t *tokens);
/* True when every boundary S_0..S_{p-2} of tokens is a multiple of g. */
bool kvr_search_on_grid(const uint64_t *tokens, int p, uint64_t g);

/* hier's backward greedy (kvr_search_hier.c), for KVR-P: a partition's bottleneck (the largest
 * per-layer rank cycle or hop time), the smallest feasible bottleneck at ctx on grid g, and the
 * greedy partition at bottleneck T (false when T is infeasible); tail: the family whose last
 * rank keeps one grain. */
double kvr_bottleneck_of(const struct kvr_model *m, const struct kvr_machine *h, int p,
                         const uint64_t *tokens);
double kvr_bottleneck_min(const struct kvr_model *m, const struct kvr_machine *h, int p,
                          uint64_t ctx, uint64_t g, bool tail);
bool kvr_bottleneck_partition(const struct kvr_model *m, const struct kvr_machine *h, int p,
                              uint64_t ctx, uint64_t g, bool tail, double T, uint64_t *tokens);

/* The balanced closed-form start, rounded to the grid. */
void kvr_search_start(const struct kvr_objective *obj, uint64_t ctx, uint64_t g, uint64_t *tokens);
