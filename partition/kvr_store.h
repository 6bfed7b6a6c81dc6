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
#include "kvr_status.h"

#define KVR_STORE_APPLICATION_ID 0x4b565231 /* "KVR1" */
#define KVR_STORE_SCHEMA_VERSION 4
/* Reading accepts schema 2: it differs from 3 only by the figure views that schema 3 drops
 * (plots query the tables themselves), 3 from 4 by the kv_forward columns (read as 'whole'). */
#define KVR_STORE_FORWARD_VERSION  4 /* the first with kv_forward columns */
#define KVR_STORE_READABLE_VERSION 2

enum kvr_store_mode { KVR_STORE_READ, KVR_STORE_WRITE };

struct kvr_store;

enum kvr_status kvr_store_open(const char *path, enum kvr_store_mode mode, struct kvr_store **out);
void kvr_store_close(struct kvr_store *s); /* accepts NULL */
int kvr_store_schema_version(const struct kvr_store *s);

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

/* ---- plan rows (the lookup table) ---- */
struct kvr_plan_row {
    char model[128], machine[512], scheme[32], method[32];
    char kv_forward[16]; /* the chain's hand-off the plan was searched for ("" = whole) */
    int p;
    uint64_t ctx_tokens, granularity_tokens;
    uint64_t tokens[KVR_MAX_GPUS];
    double predicted_ttft_s, search_wall_s;
    uint64_t evaluations;
    int64_t run_id;
};

/* NULL strings and p = 0 match anything. */
struct kvr_plan_filter {
    const char *model, *machine, *scheme, *method;
    int p;
};

enum kvr_status kvr_store_plan_exists(struct kvr_store *s, const struct kvr_plan_row *key,
                                      bool *exists);
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
    uint64_t ctx_tokens;
    /* results */
    char state[16], error[256];
    uint64_t tokens[KVR_MAX_GPUS];
    double ttft_s, ttft_p50_s, ttft_p95_s, compute_s, comm_s, wait_s, lower_bound_s;
    int64_t run_id;
};

/* Adds points as 'pending' in one transaction; points already recorded are kept as they are. */
enum kvr_status kvr_store_add_sweep_points(struct kvr_store *s, const struct kvr_sweep_point *pts,
                                           size_t n);
/* The sweep's points that are not 'done' (pending, running when interrupted, failed). */
enum kvr_status kvr_store_list_open_points(struct kvr_store *s, const char *sweep,
                                           struct kvr_sweep_point **pts, size_t *n);
/* Writes results and states (by id) in one transaction. */
enum kvr_status kvr_store_finish_points(struct kvr_store *s, const struct kvr_sweep_point *pts,
                                        size_t n);
enum kvr_status kvr_store_count_points(struct kvr_store *s, const char *sweep, const char *state,
                                       size_t *n);

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
