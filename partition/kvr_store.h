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
#define KVR_STORE_SCHEMA_VERSION 3

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
    int p;
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
    double link_Bps; /* 0: the profile's links */
    int link_from;   /* first rank of the first --link override, -1 without */
    double noise_share;
    uint64_t seed;
    int p, series_rank;
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
enum kvr_status kvr_store_count_points(struct kvr_store *s, const char *sweep, const char *state,
                                       size_t *n);

/* Rows of a plotting view for one figure, each as text values (NULL as ""), ordered by
 * `order`; view, cols and order come from kvrun's own figure table, never from users. */
typedef enum kvr_status (*kvr_store_row_fn)(void *arg, int n_cols, const char *const *values);
enum kvr_status kvr_store_query_view(struct kvr_store *s, const char *view, const char *cols,
                                     const char *order, const char *figure, kvr_store_row_fn fn,
                                     void *arg);

/* Partition text as stored: "6144;4096;3584;2560". */
void kvr_store_format_tokens(const uint64_t *tokens, int p, char *buf, size_t cap);
enum kvr_status kvr_store_parse_tokens(const char *text, int p, uint64_t *tokens);

/* Internals shared by the store's files. */
struct sqlite3;
/* ---- measurement rows (the executor's results, written by the kvr program on rank 0) ---- */
struct kvr_measurement_row {
    int64_t run_id;
    char model[128], machine[512], scheme[32], method[32];
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

struct sqlite3 *kvr_store_db(struct kvr_store *s);
const char *kvr_store_path(const struct kvr_store *s);
enum kvr_status kvr_store_sql_error(struct kvr_store *s, int rc, const char *what, const char *file,
                                    int line);
#define KVR_SQL_CHECK(s, call)                                                                     \
    do {                                                                                           \
        int sql_rc_ = (call);                                                                      \
        if (sql_rc_ != SQLITE_OK && sql_rc_ != SQLITE_DONE && sql_rc_ != SQLITE_ROW)               \
            return kvr_store_sql_error((s), sql_rc_, #call, __FILE__, __LINE__);                   \
    } while (0)
