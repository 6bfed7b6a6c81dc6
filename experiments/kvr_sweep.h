/* Sweep files (experiments/sweeps/NAME.ini): the axes of one figure's experiment and where its
 * points go. Parsed with line numbers, so every bad value is reported as file:line.
 *
 *   [sweep]  figure = fig1       name (default: the file stem), objective = sim | exec,
 *            db = out/kvrun.db, granularity = 64, trials = 16
 *   [axes]   models = llama-7b, falcon-7b      machines = a100-nvlink, a100-10GBps
 *            gpus = 2,4,8         ctx = 1k-16k+1k        schemes = tsp, kvr-even, kvr-s, ...
 *            bw = profile, 10GB/s                         seeds = 0-9
 *            links = none; 0-1=1GB/s; 1-2=1GB/s          (';' separates: specs hold commas)
 *            noise = none; random:0.2; random:0.4
 *            kv_forward = whole, streamed, direct   (the chain's hand-off; default whole)
 *            tp = none, 1, 2, 4, 8   hybrid layouts (sim/kvr_layout.h): p/t stages of t GPUs
 *                     for kvr, tsp, tsp-causal, tsp-paper and ring (kvr-s, kvr-p: the table's
 *                     row of that t, searched over both mappings); the other schemes take
 *                     none; a t that does not divide p or the model's heads gives no point
 *
 * Schemes: the scheme table's plan names (kvr_plan_series, `kvr help schemes`): each scheme
 * that splits evenly by its name, one that takes any partition as NAME-SOURCE: kvr-even (KVR-E),
 * kvr-balanced, kvr-s (searched, from the lookup table), kvr-p (interpolated from the table's
 * other contexts). The kv_forward axis multiplies the chain's series that make their own
 * partition (kvr-even, kvr-balanced: the label gains the mode, KVR-E streamed); kvr-s and kvr-p
 * run the mode their table row was searched for (kvr search --kv-forward), recorded in the
 * point's kv_forward. */
#pragma once

#include <stdbool.h>

#include "kvr_sim.h"
#include "kvr_store.h"

#define KVR_SWEEP_MAX_AXIS   64
#define KVR_SWEEP_MAX_POINTS 1000000 /* the product of the axes */

/* A series of a sweep: a scheme and where its partition comes from (-1: the scheme's own split).
 * Its rank is its place in kvr_plan_series, the order of the series in figures. */
struct kvr_sweep_series {
    enum kvr_scheme scheme;
    int source; /* enum kvr_part_source or -1 */
    int rank;
};

struct kvr_sweep_spec {
    char path[1024], name[64], figure[32], objective[16], db[1024];
    uint64_t granularity, trials;
    struct kvr_model models[KVR_SWEEP_MAX_AXIS];
    char machines[KVR_SWEEP_MAX_AXIS][256], bw[KVR_SWEEP_MAX_AXIS][256];
    char links[KVR_SWEEP_MAX_AXIS][256], noise[KVR_SWEEP_MAX_AXIS][256];
    int n_models, n_machines, n_bw, n_links, n_noise, n_gpus, n_schemes, n_seeds;
    int gpus[KVR_SWEEP_MAX_AXIS];
    enum kvr_kv_forward fwd[KVR_N_FWD];
    int n_fwd;
    int tp[KVR_SWEEP_MAX_AXIS], n_tp; /* tp 0: none (the plain scheme) */
    struct kvr_sweep_series schemes[KVR_SWEEP_MAX_AXIS];
    uint64_t seeds[KVR_SWEEP_MAX_AXIS];
    uint64_t *ctx;
    size_t n_ctx;
    /* each machine's hash at each gpus value ([machine][gpus]) and at one GPU ([machine][n_gpus]):
     * a point's key ends with its definitions' hash, so an edited file is run again */
    uint64_t machine_hash[KVR_SWEEP_MAX_AXIS][KVR_SWEEP_MAX_AXIS + 1];
};

/* One point with the texts that build its machine ("" = not overridden). */
struct kvr_sweep_item {
    struct kvr_sweep_point pt;
    int model;
    char bw[256], link[256], noise[256];
};

enum kvr_status kvr_sweep_load(const char *path, struct kvr_sweep_spec *spec);
void kvr_sweep_free(struct kvr_sweep_spec *spec);

/* The product of the axes, sorted by point_key (free with free()). */
enum kvr_status kvr_sweep_expand(const struct kvr_sweep_spec *spec, struct kvr_sweep_item **items,
                                 size_t *n);

/* The series of a point's series_rank (false when out of range). */
bool kvr_sweep_series_of(int rank, struct kvr_sweep_series *out);

/* Evaluates one point on the simulator: its partition (searched or interpolated through the
 * store's lookup table for kvr-s / kvr-p), TTFT (mean, p50, p95 over the trials with noise),
 * the per-rank breakdown and the lower bound. Sets state to done, or failed with the error. */
enum kvr_status kvr_sweep_eval(const struct kvr_sweep_spec *spec, struct kvr_store *store,
                               int64_t run_id, struct kvr_sweep_item *item);

/* The open points of one run, and the expanded items (sorted by point_key) they are. */
struct kvr_sweep_open {
    const struct kvr_sweep_spec *sp;
    struct kvr_sweep_item *items;
    size_t n_items;
    const struct kvr_sweep_point *open;
    size_t n_open;
    int64_t run_id;
};

/* The item of a recorded point (NULL: recorded by an older version of the file). */
struct kvr_sweep_item *kvr_sweep_item_of(struct kvr_sweep_item *items, size_t n_items,
                                         const struct kvr_sweep_point *pt);

/* Runs the open points on `jobs` threads, each with its own connection to db; *budget counts
 * down --stop-after; *run and *failed count the points run now. */
enum kvr_status kvr_sweep_run_threads(const struct kvr_sweep_open *o, const char *db, int jobs,
                                      uint64_t *budget, size_t *run, size_t *failed);

/* The lookup-table rows (keys only) that evaluating a point reads: its own context for KVR-S,
 * the sweep's whole ctx axis for KVR-P, none otherwise (free *rows with free()). */
enum kvr_status kvr_sweep_plan_keys(const struct kvr_sweep_spec *spec,
                                    const struct kvr_sweep_item *it, struct kvr_plan_row **rows,
                                    size_t *n);
/* Searches one of those rows (fills its partition, predicted TTFT and evaluations). */
enum kvr_status kvr_sweep_search_row(const struct kvr_sweep_spec *spec,
                                     const struct kvr_sweep_item *it, struct kvr_plan_row *row);
/* Stores the model's and the machine's definitions of a point (rows' hashes refer to them). */
enum kvr_status kvr_sweep_put_definitions(const struct kvr_sweep_spec *spec,
                                          const struct kvr_sweep_item *it, struct kvr_store *store,
                                          int64_t run_id);

struct kvr_comm;

/* Records the expanded points in store (the ones already there stay as they are), lists the
 * open ones (free *open with free()) and, when there are any, starts a run (its id in *run_id)
 * with this process's provenance. */
enum kvr_status kvr_sweep_record(struct kvr_store *store, const struct kvr_sweep_spec *sp,
                                 const struct kvr_sweep_item *items, size_t n_items,
                                 const char *argv_text, struct kvr_sweep_point **open,
                                 size_t *n_open, int64_t *run_id);

/* What a sweep file's run did (rank 0's view under MPI). */
struct kvr_sweep_tally {
    size_t total, done_before, run, failed;
    double wall_s;
};

/* Records the expanded points in db (the ones already there stay as they are) and runs the open
 * ones, serially or on `jobs` threads, writing results in batches; *budget counts down
 * --stop-after (UINT64_MAX: no limit). t->total is set; run, failed, done_before and wall_s
 * describe this call. */
enum kvr_status kvr_sweep_run(const struct kvr_sweep_spec *sp, const char *db, int jobs,
                              struct kvr_sweep_item *items, size_t n_items, const char *argv_text,
                              uint64_t *budget, struct kvr_sweep_tally *t);

/* Under mpirun (a communicator of several ranks): rank 0 records the points and writes every
 * result; the plans the points read are searched first by all ranks, then the open points run in
 * rounds (kvr_sweep_mpi.c). Every rank calls it with the same loaded and expanded sweep. */
enum kvr_status kvr_sweep_run_mpi(const struct kvr_sweep_spec *sp, const char *db,
                                  struct kvr_sweep_item *items, size_t n_items,
                                  const char *argv_text, struct kvr_comm *comm, uint64_t *budget,
                                  struct kvr_sweep_tally *t);
