/* measurement rows: what the executor measured, with the settings and versions behind it. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_store_int.h"

static const char put_sql[] =
    "INSERT INTO measurement (run_id, model, machine, p, ctx_tokens, scheme, method,"
    " partition_tokens, backend, comm, link_settings, warmup, reps, ttft_median_s,"
    " ttft_min_s, ttft_max_s, peak_mem_bytes, first_token, logits_checksum, gpu, driver,"
    " nccl_version, mpi_version, kv_forward, tp, last_layer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
    " ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25,"
    " ?26)";

static void bind_row(sqlite3_stmt *q, size_t i, const void *arg)
{
    const struct kvr_measurement_row *m = (const struct kvr_measurement_row *)arg + i;
    char tokens[KVR_MAX_GPUS * 21];
    kvr_store_format_tokens(m->tokens, kvr_store_chunks(m->p, m->tp), tokens, sizeof tokens);
    const char *texts[] = {m->model, m->machine};
    sqlite3_bind_int64(q, 1, m->run_id);
    for (int k = 0; k < 2; k++) sqlite3_bind_text(q, k + 2, texts[k], -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 4, m->p);
    sqlite3_bind_int64(q, 5, (sqlite3_int64)m->ctx_tokens);
    const char *more[] = {m->scheme, m->method, tokens, m->backend, m->comm, m->link_settings};
    for (int k = 0; k < 6; k++) sqlite3_bind_text(q, k + 6, more[k], -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 12, m->warmup), sqlite3_bind_int(q, 13, m->reps);
    sqlite3_bind_double(q, 14, m->ttft_median_s), sqlite3_bind_double(q, 15, m->ttft_min_s);
    sqlite3_bind_double(q, 16, m->ttft_max_s), sqlite3_bind_double(q, 17, m->peak_mem_bytes);
    sqlite3_bind_int64(q, 18, m->first_token), sqlite3_bind_double(q, 19, m->logits_checksum);
    const char *versions[] = {m->gpu, m->driver, m->nccl_version, m->mpi_version};
    for (int k = 0; k < 4; k++) sqlite3_bind_text(q, k + 20, versions[k], -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 24, m->kv_forward[0] ? m->kv_forward : "whole", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 25, m->tp > 1 ? m->tp : 1);
    sqlite3_bind_text(q, 26, m->last_layer, -1, SQLITE_TRANSIENT); /* "" fails the CHECK */
}

enum kvr_status kvr_store_put_measurement(struct kvr_store *s, const struct kvr_measurement_row *m)
{
    return kvr_store_write_rows(s, put_sql, 1, bind_row, m);
}

/* One row from the SELECT in kvr_store_list_measurements. */
static void read_row(sqlite3_stmt *q, void *elem)
{
    struct kvr_measurement_row *m = elem;
    memset(m, 0, sizeof *m);
    m->run_id = sqlite3_column_int64(q, 0);
    kvr_store_column_text(q, 1, m->model, sizeof m->model),
        kvr_store_column_text(q, 2, m->machine, sizeof m->machine);
    m->p = sqlite3_column_int(q, 3);
    m->ctx_tokens = (uint64_t)sqlite3_column_int64(q, 4);
    kvr_store_column_text(q, 5, m->scheme, sizeof m->scheme),
        kvr_store_column_text(q, 6, m->method, sizeof m->method);
    m->tp = sqlite3_column_int(q, 24);
    char tokens[KVR_MAX_GPUS * 21];
    kvr_store_column_text(q, 7, tokens, sizeof tokens);
    char *s = tokens;
    for (int i = 0; i < kvr_store_chunks(m->p, m->tp) && i < KVR_MAX_GPUS && *s; i++) {
        m->tokens[i] = strtoull(s, &s, 10);
        if (*s == ';' || *s == ',') s++;
    }
    kvr_store_column_text(q, 8, m->backend, sizeof m->backend),
        kvr_store_column_text(q, 9, m->comm, sizeof m->comm);
    kvr_store_column_text(q, 10, m->link_settings, sizeof m->link_settings);
    m->warmup = sqlite3_column_int(q, 11), m->reps = sqlite3_column_int(q, 12);
    m->ttft_median_s = sqlite3_column_double(q, 13), m->ttft_min_s = sqlite3_column_double(q, 14);
    m->ttft_max_s = sqlite3_column_double(q, 15), m->peak_mem_bytes = sqlite3_column_double(q, 16);
    m->first_token = sqlite3_column_int64(q, 17), m->logits_checksum = sqlite3_column_double(q, 18);
    kvr_store_column_text(q, 19, m->gpu, sizeof m->gpu),
        kvr_store_column_text(q, 20, m->driver, sizeof m->driver);
    kvr_store_column_text(q, 21, m->nccl_version, sizeof m->nccl_version);
    kvr_store_column_text(q, 22, m->mpi_version, sizeof m->mpi_version);
    kvr_store_column_text(q, 23, m->kv_forward, sizeof m->kv_forward);
    kvr_store_column_text(q, 25, m->last_layer, sizeof m->last_layer);
}

enum kvr_status kvr_store_list_measurements(struct kvr_store *s, struct kvr_measurement_row **out,
                                            size_t *n)
{
    /* a file of an older schema is read through a migrated copy: kv_forward is there ('whole'),
     * tp too (1), last_layer as its migration filled it */
    static const char sql[] =
        "SELECT run_id, model, machine, p, ctx_tokens, scheme, method, partition_tokens,"
        " backend, comm, link_settings, warmup, reps, ttft_median_s, ttft_min_s, ttft_max_s,"
        " peak_mem_bytes, first_token, logits_checksum, gpu, driver, nccl_version,"
        " mpi_version, kv_forward, tp, last_layer FROM measurement"
        " ORDER BY model, p, scheme, method, ctx_tokens, id";
    *out = NULL, *n = 0;
    void *rows = NULL;
    enum kvr_status st = kvr_store_read_rows(s, sql, NULL, NULL, sizeof **out, read_row, &rows, n);
    *out = rows;
    return st;
}

/* Before 8 -> 9: a one-rank row (p / tp = 1) whose run is missing or has no start time cannot
 * be filled, nothing tells how its executor ran the last layer: refused (the transaction rolls
 * back, the file is left as it was), as kvr validate refused such a row up to schema 8. */
enum kvr_status kvr_store_measure_check_v8(struct kvr_store *s)
{
    static const char sql[] = "SELECT m.model, m.ctx_tokens, m.run_id FROM measurement m"
                              " LEFT JOIN run r ON r.id = m.run_id WHERE m.p / m.tp = 1"
                              " AND (r.started_unix_s IS NULL OR r.started_unix_s <= 0) LIMIT 1";
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL));
    int rc = sqlite3_step(q);
    enum kvr_status st = KVR_OK;
    if (rc == SQLITE_ROW)
        st = kvr_error(
            KVR_ERR_INPUT,
            "%s: measurement of %s at %lld tokens: its run %lld is missing or has no start "
            "time, so nothing tells whether the executor pruned the last layer (schema 9's "
            "last_layer is taken from it)",
            kvr_store_path(s), (const char *)sqlite3_column_text(q, 0),
            (long long)sqlite3_column_int64(q, 1), (long long)sqlite3_column_int64(q, 2));
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) KVR_SQL_CHECK(s, rc);
    return st;
}
