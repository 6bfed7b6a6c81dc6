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

#include <stdint.h>

#include "kvr_sim.h"

enum kvr_method {
    KVR_METHOD_HIER,       /* hierarchical grid search (KVR-S) */
    KVR_METHOD_EXHAUSTIVE, /* oracle */
    KVR_METHOD_NM,         /* oracle: Nelder-Mead on the relaxation */
    KVR_METHOD_EVEN,       /* KVR-E, no search */
    KVR_METHOD_BALANCED,   /* closed-form equal-compute split, no search */
    KVR_N_METHODS
};
const char *kvr_method_name(enum kvr_method m);
int kvr_method_from_name(const char *name); /* -1 when unknown */

struct kvr_objective_opts {
    enum kvr_scheme scheme;         /* must take a partition */
    uint64_t trials;                /* noise trials; 1 without noise */
    double percentile;              /* 0: the mean over trials; else in (0, 100] */
    enum kvr_kv_forward kv_forward; /* the chain's hand-off (whole by default) */
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
/* The hand-off mode the objective's plans use from now on (the search tries each, kvr search
 * --kv-forward auto). */
void kvr_objective_set_kv_forward(struct kvr_objective *obj, enum kvr_kv_forward f);
int kvr_objective_p(const struct kvr_objective *obj);

struct kvr_search_result {
    uint64_t tokens[KVR_MAX_GPUS];
    double ttft_s;    /* the objective at tokens */
    uint64_t n_evals; /* objective evaluations this search made */
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
/* The balanced closed-form start, rounded to the grid. */
void kvr_search_start(const struct kvr_objective *obj, uint64_t ctx, uint64_t g, uint64_t *tokens);
