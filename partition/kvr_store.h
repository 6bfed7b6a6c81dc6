/* The SQLite store: the only module that knows the schema (kvr_store.c). Lookup tables
 * (`plan`), executor results (`measurement`), sweep points (`sweep_point`) and the provenance
 * of every row (`run`). WAL, a busy timeout, prepared statements, batched transactions.
 *
 * A corrupt file, a file that is not a kvrun database, one written by a newer kvrun, a missing
 * file opened for reading, or a read-only file opened for writing all fail at open with
 * KVR_ERR_INPUT / KVR_ERR_IO (exit 2), and nothing is changed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvr_machine.h"
#include "kvr_model.h"
#include "kvr_status.h"

#define KVR_STORE_APPLICATION_ID 0x4b565231 /* "KVR1" */
#define KVR_STORE_SCHEMA_VERSION 9

enum kvr_store_mode { KVR_STORE_READ, KVR_STORE_WRITE };

struct kvr_store;

enum kvr_status kvr_store_open(const char *path, enum kvr_store_mode mode, struct kvr_store **out);
void kvr_store_close(struct kvr_store *s); /* accepts NULL */

/* Provenance of what one command writes: a `run` row. */
struct kvr_provenance {
    const char *version, *host, *device, *argv;
    double started_unix_s;
};
enum kvr_status kvr_store_add_run(struct kvr_store *s, const struct kvr_provenance *p,
                                  int64_t *run_id);

/* Runs fn inside one write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on error). */
enum kvr_status kvr_store_transaction(struct kvr_store *s,
                                      enum kvr_status (*fn)(struct kvr_store *, void *), void *arg);

/* ---- plan rows (the lookup table) ----
 * The key: names, the hashes of the resolved model and machine (kvr_hash.h,
 * kvr_machine_hash.h; 16 hex digits), p, ctx, scheme, method. Rows migrated from schema 2 have
 * empty hashes until kvr_store_match_legacy settles them. */
#define KVR_STORE_HASH_CAP 17
struct kvr_plan_row {
    char model[128], machine[512], scheme[32], method[32];
    char model_hash[KVR_STORE_HASH_CAP], machine_hash[KVR_STORE_HASH_CAP];
    bool stale;          /* a migrated row whose definition did not match the current one */
    char kv_forward[16]; /* the chain's hand-off the plan was searched for ("" = whole) */
    int p;
    /* the hybrid layout (schema 7, kvr_layout.h): TP degree t (0 and 1: the plain scheme; a row
     * of a table without the column reads as 1); tokens has p / t chunks, one per stage, and
     * mapping gives the GPU of each rank stage * t + shard */
    int tp;
    uint64_t ctx_tokens, granularity_tokens;
    uint64_t tokens[KVR_MAX_GPUS];
    double predicted_ttft_s, search_wall_s;
    uint64_t evaluations;
    int64_t run_id;
    int mapping[KVR_MAX_GPUS]; /* chain position -> GPU; n_mapping 0: identity (not recorded) */
    int n_mapping;
    /* the plan on fewer GPUs that is as fast (within 0.5%), fewer_p 0 when none */
    int fewer_p;
    uint64_t fewer_tokens[KVR_MAX_GPUS];
    int fewer_mapping[KVR_MAX_GPUS];
    double fewer_predicted_ttft_s;
};

/* NULL strings and p = 0 match anything; stale rows are listed only with include_stale; tp 0
 * matches t = 1 (the plain plans), -1 any t, else that t. */
struct kvr_plan_filter {
    const char *model, *machine, *scheme, *method;
    int p, tp;
    const char *model_hash, *machine_hash;
    bool include_stale;
};

/* ---- definitions: each model and machine once, by hash (kvr_store_def.c) ---- */
struct kvr_definition {
    const char *kind; /* "model" or "machine" */
    char hash[KVR_STORE_HASH_CAP];
    char name[512];
    char *canonical_text, *provenance; /* owned (free with kvr_definition_free) */
};
/* The definitions of a model and of a machine (at its n_gpus), hashes filled in. */
enum kvr_status kvr_definition_of_model(const struct kvr_model *m, struct kvr_definition *d);
enum kvr_status kvr_definition_of_machine(const struct kvr_machine *h, const char *key,
                                          const char *name_or_file, struct kvr_definition *d);
void kvr_definition_free(struct kvr_definition *d); /* accepts a zeroed one */
/* A plan key's hashes from the resolved model and machine (at p = h->n_gpus). */
void kvr_plan_row_set_hashes(struct kvr_plan_row *r, const struct kvr_model *m,
                             const struct kvr_machine *h);
/* Stores d unless its (kind, hash) is already there. */
enum kvr_status kvr_store_put_definition(struct kvr_store *s, const struct kvr_definition *d,
                                         int64_t run_id);
/* The stored definition of (kind, hash); *found false when there is none. */
enum kvr_status kvr_store_get_definition(struct kvr_store *s, const char *kind, const char *hash,
                                         struct kvr_definition *d, bool *found);
/* The version (git describe) and start time of run `id` ("unknown", 0 when missing). */
enum kvr_status kvr_store_get_run(struct kvr_store *s, int64_t id, char *version, size_t cap,
                                  double *started_unix_s);
/* Rows migrated from schema 2 (empty hashes, not stale) of the names in f. */
enum kvr_status kvr_store_list_legacy(struct kvr_store *s, const struct kvr_plan_filter *f,
                                      struct kvr_plan_row **rows, size_t *n, int64_t **ids);
/* Gives legacy row `id` the hashes (matched) or marks it stale (hashes NULL). */
enum kvr_status kvr_store_settle_legacy(struct kvr_store *s, const int64_t *ids,
                                        const bool *matched, size_t n, const char *model_hash,
                                        const char *machine_hash);
/* How many rows of f's names exist under other hashes (older definitions), and whether
 * legacy or stale ones are among them. */
enum kvr_status kvr_store_count_other_definitions(struct kvr_store *s,
                                                  const struct kvr_plan_filter *f, size_t *n);

/* The chunks of a row's partition: p / t. */
int kvr_plan_row_chunks(const struct kvr_plan_row *r);
/* A layout's row (t > 1) as the interpolation sees it: one chunk per stage (p = p / t, t = 1),
 * without its GPU mapping (which names p GPUs); a row of t = 1 unchanged. */
struct kvr_plan_row kvr_plan_row_staged(const struct kvr_plan_row *r);

enum kvr_status kvr_store_plan_exists(struct kvr_store *s, const struct kvr_plan_row *key,
                                      bool *exists);
/* As kvr_store_plan_exists, and when the row exists, the granularity it was searched on. */
enum kvr_status kvr_store_plan_grain(struct kvr_store *s, const struct kvr_plan_row *key,
                                     bool *exists, uint64_t *granularity_tokens);
/* Writes rows in one transaction; replace overwrites rows with the same key, otherwise rows
 * already present are kept (another process may have written them first). */
enum kvr_status kvr_store_put_plans(struct kvr_store *s, const struct kvr_plan_row *rows, size_t n,
                                    bool replace);
/* Rows matching f, ordered by model, machine, scheme, method, p, ctx (free with free()). */
enum kvr_status kvr_store_list_plans(struct kvr_store *s, const struct kvr_plan_filter *f,
                                     struct kvr_plan_row **rows, size_t *n);

/* ---- sweep points ---- */
struct kvr_sweep_point {
    int64_t id;
    char sweep[64], point_key[768], figure[32], series[32];
    char model[128], machine[256], scheme[32], method[32], objective[16];
    char link_spec[256], noise_spec[256];
    char kv_forward[16]; /* the chain's hand-off ("" = whole) */
    double link_Bps;     /* 0: the profile's links */
    int link_from;       /* first rank of the first --link override, -1 without */
    double noise_share;
    uint64_t seed;
    int p, series_rank;
    int tp; /* schema 7: the layout's TP degree (0: the plain scheme); tokens per stage */
    uint64_t ctx_tokens;
    /* results */
    char state[16], error[256];
    uint64_t tokens[KVR_MAX_GPUS];
    double ttft_s, ttft_p50_s, ttft_p95_s, compute_s, comm_s, wait_s, lower_bound_s;
    int64_t run_id;
    /* state 'infeasible': the fullest rank's bytes and what a rank has (0 otherwise) */
    double mem_needed_bytes, mem_available_bytes;
};

/* Adds points as 'pending' in one transaction; points already recorded are kept as they are. */
enum kvr_status kvr_store_add_sweep_points(struct kvr_store *s, const struct kvr_sweep_point *pts,
                                           size_t n);
/* The sweep's points that are not 'done' or 'infeasible' (pending, running when interrupted,
 * failed): a point that does not fit is settled, like one that is done. */
enum kvr_status kvr_store_list_open_points(struct kvr_store *s, const char *sweep,
                                           struct kvr_sweep_point **pts, size_t *n);
/* Writes results and states (by id) in one transaction. */
enum kvr_status kvr_store_finish_points(struct kvr_store *s, const struct kvr_sweep_point *pts,
                                        size_t n);

/* The rows of a read-only query, each as text values (NULL as ""), with params bound as text
 * to ?1..?n. The SQL comes from kvrun's own tables (the figures'), never from users; the
 * store's views (`sweep_done`, `plan_table`) are what it may read. */
typedef enum kvr_status (*kvr_store_row_fn)(void *arg, int n_cols, const char *const *values);
enum kvr_status kvr_store_query_rows(struct kvr_store *s, const char *sql,
                                     const char *const *params, int n_params, kvr_store_row_fn fn,
                                     void *arg);

/* Partition text as stored: "6144;4096;3584;2560". */
void kvr_store_format_tokens(const uint64_t *tokens, int p, char *buf, size_t cap);
enum kvr_status kvr_store_parse_tokens(const char *text, int p, uint64_t *tokens);

/* ---- measurement rows (the executor's results, written by the kvr program on rank 0) ---- */
struct kvr_measurement_row {
    int64_t run_id;
    char model[128], machine[512], scheme[32], method[32];
    char kv_forward[16]; /* the chain's hand-off ("" = whole) */
    int p;
    /* schema 8: the layout's TP degree t (0 and 1: the plain scheme; a row of an older table
     * reads as 1); tokens has p / t chunks, one per stage */
    int tp;
    /* schema 9: how the executor ran its last layer, "pruned" (attention and MLP on the last row
     * alone, kvr_exec_last_layer_pruned) or "full" (every row); anything else is refused by the
     * column's CHECK. A row of an older table reads as its migration filled it (kvr_store.c). */
    char last_layer[8];
    uint64_t ctx_tokens, tokens[KVR_MAX_GPUS];
    char backend[16], comm[16], link_settings[512];
    int warmup, reps;
    double ttft_median_s, ttft_min_s, ttft_max_s, peak_mem_bytes, logits_checksum;
    int64_t first_token;
    char gpu[128], driver[64], nccl_version[64], mpi_version[128];
};
enum kvr_status kvr_store_put_measurement(struct kvr_store *s, const struct kvr_measurement_row *m);
/* Every measurement row (free *out with free()). */
enum kvr_status kvr_store_list_measurements(struct kvr_store *s, struct kvr_measurement_row **out,
                                            size_t *n);
