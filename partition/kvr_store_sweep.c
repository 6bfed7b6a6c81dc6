/* sweep_point rows: recording a sweep's points, resuming the open ones, writing results, and
 * reading rows for the figures. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_store_int.h"

static void bind_text(sqlite3_stmt *q, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(q, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, i);
}

static void bind_add(sqlite3_stmt *q, size_t i, const void *arg)
{
    const struct kvr_sweep_point *x = (const struct kvr_sweep_point *)arg + i;
    const char *texts[] = {x->sweep, x->point_key, x->figure, x->series};
    for (int k = 0; k < 4; k++) bind_text(q, k + 1, texts[k]);
    sqlite3_bind_int(q, 5, x->series_rank);
    bind_text(q, 6, x->model), bind_text(q, 7, x->machine);
    sqlite3_bind_int(q, 8, x->p);
    sqlite3_bind_int64(q, 9, (sqlite3_int64)x->ctx_tokens);
    bind_text(q, 10, x->scheme), bind_text(q, 11, x->method);
    if (x->link_Bps > 0)
        sqlite3_bind_double(q, 12, x->link_Bps);
    else
        sqlite3_bind_null(q, 12);
    bind_text(q, 13, x->link_spec);
    sqlite3_bind_int(q, 14, x->link_from);
    bind_text(q, 15, x->noise_spec);
    sqlite3_bind_double(q, 16, x->noise_share);
    sqlite3_bind_int64(q, 17, (sqlite3_int64)x->seed);
    bind_text(q, 18, x->objective);
    bind_text(q, 19, x->kv_forward[0] ? x->kv_forward : "whole");
    sqlite3_bind_int(q, 20, x->tp);
}

/* The key without its definitions' hash ("|def=...", the end of a point's key). */
static size_t base_len(const char *key)
{
    const char *d = strstr(key, "|def=");
    return d ? (size_t)(d - key) : strlen(key);
}

static void bind_stale(sqlite3_stmt *q, size_t i, const void *arg)
{
    const struct kvr_sweep_point *x = (const struct kvr_sweep_point *)arg + i;
    bind_text(q, 1, x->sweep);
    bind_text(q, 2, x->point_key);
    sqlite3_bind_text(q, 3, x->point_key, (int)base_len(x->point_key), SQLITE_TRANSIENT);
}

enum kvr_status kvr_store_add_sweep_points(struct kvr_store *s, const struct kvr_sweep_point *pts,
                                           size_t n)
{
    /* a row of the same point under other definitions (an edited model or profile file, or a
     * key from before the hash) holds results of what is no longer asked: replaced */
    static const char stale[] =
        "DELETE FROM sweep_point WHERE sweep = ?1 AND point_key <> ?2 AND (point_key = ?3 OR"
        " (point_key > ?3 || '|def=' AND point_key < ?3 || '|def>'))"; /* a range of the index */
    enum kvr_status st = kvr_store_write_rows(s, stale, n, bind_stale, pts);
    if (st) return st;
    static const char sql[] =
        "INSERT OR IGNORE INTO sweep_point (sweep, point_key, figure, series, series_rank, model,"
        " machine, p, ctx_tokens, scheme, method, link_Bps, link_spec, link_from, noise_spec,"
        " noise_share, seed, objective, state, kv_forward, tp) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
        " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, 'pending', ?19, ?20)";
    return kvr_store_write_rows(s, sql, n, bind_add, pts);
}

static void read_point(sqlite3_stmt *q, void *elem)
{
    struct kvr_sweep_point *x = elem;
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(q, 0);
    kvr_store_column_text(q, 1, x->sweep, sizeof x->sweep);
    kvr_store_column_text(q, 2, x->point_key, sizeof x->point_key);
    kvr_store_column_text(q, 3, x->figure, sizeof x->figure);
    kvr_store_column_text(q, 4, x->series, sizeof x->series);
    x->series_rank = sqlite3_column_int(q, 5);
    kvr_store_column_text(q, 6, x->model, sizeof x->model);
    kvr_store_column_text(q, 7, x->machine, sizeof x->machine);
    x->p = sqlite3_column_int(q, 8);
    x->ctx_tokens = (uint64_t)sqlite3_column_int64(q, 9);
    kvr_store_column_text(q, 10, x->scheme, sizeof x->scheme);
    kvr_store_column_text(q, 11, x->method, sizeof x->method);
    x->link_Bps = sqlite3_column_double(q, 12);
    kvr_store_column_text(q, 13, x->link_spec, sizeof x->link_spec);
    x->link_from = sqlite3_column_int(q, 14);
    kvr_store_column_text(q, 15, x->noise_spec, sizeof x->noise_spec);
    x->noise_share = sqlite3_column_double(q, 16);
    x->seed = (uint64_t)sqlite3_column_int64(q, 17);
    kvr_store_column_text(q, 18, x->objective, sizeof x->objective);
    kvr_store_column_text(q, 19, x->state, sizeof x->state);
    x->tp = sqlite3_column_int(q, 20);
}

static void bind_sweep(sqlite3_stmt *q, size_t i, const void *sweep)
{
    (void)i;
    sqlite3_bind_text(q, 1, sweep, -1, SQLITE_STATIC);
}

enum kvr_status kvr_store_list_open_points(struct kvr_store *s, const char *sweep,
                                           struct kvr_sweep_point **pts, size_t *n)
{
    static const char sql[] =
        "SELECT id, sweep, point_key, figure, series, series_rank, model, machine, p, ctx_tokens,"
        " scheme, method, link_Bps, link_spec, link_from, noise_spec, noise_share, seed,"
        " objective, state, tp FROM sweep_point WHERE sweep = ?1 AND state NOT IN ('done', "
        "'infeasible') ORDER BY id";
    void *rows = NULL;
    enum kvr_status st =
        kvr_store_read_rows(s, sql, bind_sweep, sweep, sizeof **pts, read_point, &rows, n);
    *pts = rows;
    return st;
}

static void bind_finish(sqlite3_stmt *q, size_t i, const void *arg)
{
    const struct kvr_sweep_point *x = (const struct kvr_sweep_point *)arg + i;
    char tokens[KVR_MAX_GPUS * 21];
    kvr_store_format_tokens(x->tokens, kvr_store_chunks(x->p, x->tp), tokens, sizeof tokens);
    sqlite3_bind_int64(q, 1, x->id);
    bind_text(q, 2, x->state);
    bind_text(q, 3, tokens);
    const double v[] = {x->ttft_s, x->ttft_p50_s, x->ttft_p95_s,   x->compute_s,
                        x->comm_s, x->wait_s,     x->lower_bound_s};
    for (int k = 0; k < 7; k++) sqlite3_bind_double(q, 4 + k, v[k]);
    bind_text(q, 11, x->error);
    sqlite3_bind_int64(q, 12, x->run_id);
    if (x->mem_needed_bytes > 0) { /* infeasible: the bytes; NULL otherwise */
        sqlite3_bind_double(q, 13, x->mem_needed_bytes);
        sqlite3_bind_double(q, 14, x->mem_available_bytes);
    } else {
        sqlite3_bind_null(q, 13), sqlite3_bind_null(q, 14);
    }
    bind_text(q, 15, x->kv_forward[0] ? x->kv_forward : "whole");
}

enum kvr_status kvr_store_finish_points(struct kvr_store *s, const struct kvr_sweep_point *pts,
                                        size_t n)
{
    static const char sql[] =
        "UPDATE sweep_point SET state = ?2, partition_tokens = ?3, ttft_s = ?4, ttft_p50_s = ?5,"
        " ttft_p95_s = ?6, compute_s = ?7, comm_s = ?8, wait_s = ?9, lower_bound_s = ?10,"
        " error = ?11, run_id = ?12, mem_needed_bytes = ?13, mem_available_bytes = ?14,"
        " kv_forward = ?15"
        " WHERE id = ?1";
    return kvr_store_write_rows(s, sql, n, bind_finish, pts);
}

enum kvr_status kvr_store_query_rows(struct kvr_store *s, const char *sql,
                                     const char *const *params, int n_params, kvr_store_row_fn fn,
                                     void *arg)
{
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL));
    if (!sqlite3_stmt_readonly(q)) {
        sqlite3_finalize(q);
        return kvr_error(KVR_ERR_RUNTIME, "%s: a query that writes: %s", kvr_store_path(s), sql);
    }
    for (int i = 0; i < n_params; i++) sqlite3_bind_text(q, i + 1, params[i], -1, SQLITE_STATIC);
    enum kvr_status st = KVR_OK;
    int rc, n = sqlite3_column_count(q);
    while (!st && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *values[32];
        for (int i = 0; i < n && i < 32; i++) {
            const unsigned char *v = sqlite3_column_text(q, i);
            values[i] = v ? (const char *)v : "";
        }
        st = fn(arg, n < 32 ? n : 32, values);
    }
    sqlite3_finalize(q);
    if (!st && rc != SQLITE_DONE) st = kvr_store_sql_error(s, rc, sql, __FILE__, __LINE__);
    return st;
}
