/* plan rows: the lookup table's reads and batched writes. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_scheme.h"
#include "kvr_store_int.h"

void kvr_store_format_tokens(const uint64_t *tokens, int p, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < p && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? ";" : "",
                              (unsigned long long)tokens[i]);
}

enum kvr_status kvr_store_parse_tokens(const char *text, int p, uint64_t *tokens)
{
    const char *s = text;
    for (int i = 0; i < p; i++) {
        char *end;
        if (*s < '0' || *s > '9') break;
        tokens[i] = strtoull(s, &end, 10);
        s = end;
        if (i + 1 == p && !*s) return KVR_OK;
        if (*s++ != ';') break;
    }
    return kvr_error(KVR_ERR_INPUT, "partition_tokens '%s' is not %d counts joined by ';'", text,
                     p);
}

/* A stored partition is one of its context: no empty chunk, the chunks summing to ctx (a
 * damaged row of 100;100 at 1k was served, interpolated from and exported, exit 0). */
static enum kvr_status check_partition(const char *what, const uint64_t *t, int n, uint64_t ctx)
{
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        if (t[i] == 0 || t[i] > ctx)
            return kvr_error(KVR_ERR_INPUT, "%s chunk %d of %llu tokens at ctx %llu", what, i,
                             (unsigned long long)t[i], (unsigned long long)ctx);
        sum += t[i];
    }
    if (sum != ctx)
        return kvr_error(KVR_ERR_INPUT, "%s sums to %llu tokens, not its ctx %llu", what,
                         (unsigned long long)sum, (unsigned long long)ctx);
    return KVR_OK;
}

int kvr_store_chunks(int p, int tp)
{
    return tp > 1 && p % tp == 0 ? p / tp : p;
}

int kvr_plan_row_chunks(const struct kvr_plan_row *r)
{
    return kvr_store_chunks(r->p, r->tp);
}

struct kvr_plan_row kvr_plan_row_staged(const struct kvr_plan_row *r)
{
    struct kvr_plan_row s = *r;
    if (r->tp > 1) s.p = kvr_plan_row_chunks(r), s.tp = 1, s.n_mapping = 0;
    return s;
}

void kvr_store_bind_plan_names(sqlite3_stmt *q, const struct kvr_plan_row *r)
{
    sqlite3_bind_text(q, 1, r->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, r->machine, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, r->p);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)r->ctx_tokens);
    sqlite3_bind_text(q, 5, r->scheme, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, r->method, -1, SQLITE_STATIC);
}

static void bind_key(sqlite3_stmt *q, const struct kvr_plan_row *r)
{
    sqlite3_bind_int(q, 21, r->tp > 1 ? r->tp : 1);
    kvr_store_bind_plan_names(q, r);
    sqlite3_bind_text(q, 13, r->model_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 14, r->machine_hash, -1, SQLITE_STATIC);
}

enum kvr_status kvr_store_plan_grain(struct kvr_store *s, const struct kvr_plan_row *key,
                                     bool *exists, uint64_t *granularity_tokens)
{
    static const char sql[] =
        "SELECT granularity_tokens FROM plan WHERE model = ?1 AND "
        "machine = ?2 AND p = ?3 AND ctx_tokens = ?4 AND scheme = ?5 AND "
        "method = ?6 AND model_hash = ?13 AND machine_hash = ?14 AND tp = ?21";
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL));
    bind_key(q, key);
    int rc = sqlite3_step(q);
    *exists = rc == SQLITE_ROW;
    *granularity_tokens = *exists ? (uint64_t)sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    KVR_SQL_CHECK(s, rc);
    return KVR_OK;
}

enum kvr_status kvr_store_plan_exists(struct kvr_store *s, const struct kvr_plan_row *key,
                                      bool *exists)
{
    uint64_t g;
    return kvr_store_plan_grain(s, key, exists, &g);
}

static void format_map(const int *map, int n, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? ";" : "", map[i]);
}

/* The mapping (NULL: identity) and the fewer-GPU plan (NULL columns without one). */
static void bind_fewer(sqlite3_stmt *q, const struct kvr_plan_row *r)
{
    char buf[KVR_MAX_GPUS * 21];
    /* after the key (?1-?6, hashes ?13 ?14) and the row (?7-?12) */
    for (int k = 15; k <= 19; k++) sqlite3_bind_null(q, k);
    if (r->n_mapping > 0) {
        format_map(r->mapping, r->n_mapping, buf, sizeof buf);
        sqlite3_bind_text(q, 15, buf, -1, SQLITE_TRANSIENT);
    }
    if (r->fewer_p < 1) return;
    sqlite3_bind_int(q, 16, r->fewer_p);
    kvr_store_format_tokens(r->fewer_tokens, r->fewer_p, buf, sizeof buf);
    sqlite3_bind_text(q, 17, buf, -1, SQLITE_TRANSIENT);
    format_map(r->fewer_mapping, r->fewer_p, buf, sizeof buf);
    sqlite3_bind_text(q, 18, buf, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(q, 19, r->fewer_predicted_ttft_s);
}

static enum kvr_status parse_map(const char *text, int n, int *map)
{
    const char *s = text;
    for (int i = 0; i < n; i++) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v >= KVR_MAX_GPUS || (i + 1 < n ? *end != ';' : *end != 0))
            return kvr_error(KVR_ERR_INPUT, "mapping '%s' is not %d GPUs joined by ';'", text, n);
        map[i] = (int)v;
        s = end + 1;
    }
    return KVR_OK;
}

static enum kvr_status read_fewer(sqlite3_stmt *q, struct kvr_plan_row *r)
{
    /* columns 15-19 of the list query (after the hashes and stale, 12-14) */
    const unsigned char *map = sqlite3_column_text(q, 15), *ft = sqlite3_column_text(q, 17);
    const unsigned char *fm = sqlite3_column_text(q, 18);
    enum kvr_status st = KVR_OK;
    if (map && (st = parse_map((const char *)map, r->p, r->mapping))) return st;
    r->n_mapping = map ? r->p : 0;
    r->fewer_p = sqlite3_column_type(q, 16) == SQLITE_NULL ? 0 : sqlite3_column_int(q, 16);
    if (r->fewer_p < 1) return KVR_OK;
    if (r->fewer_p >= r->p || !ft || !fm)
        return kvr_error(KVR_ERR_INPUT, "fewer-GPU plan with p = %d of %d", r->fewer_p, r->p);
    r->fewer_predicted_ttft_s = sqlite3_column_double(q, 19);
    if ((st = kvr_store_parse_tokens((const char *)ft, r->fewer_p, r->fewer_tokens)) ||
        (st =
             check_partition("fewer_partition_tokens", r->fewer_tokens, r->fewer_p, r->ctx_tokens)))
        return st;
    return parse_map((const char *)fm, r->fewer_p, r->fewer_mapping);
}

struct put_args {
    const struct kvr_plan_row *rows;
    size_t n;
    bool replace;
};

static enum kvr_status put_txn(struct kvr_store *s, void *arg)
{
    const struct put_args *a = arg;
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT %s INTO plan (model, machine, p, ctx_tokens, scheme, method, "
             "partition_tokens, granularity_tokens, predicted_ttft_s, evaluations, "
             "search_wall_s, run_id, model_hash, machine_hash, mapping, fewer_p, "
             "fewer_partition_tokens, fewer_mapping, fewer_predicted_ttft_s, kv_forward, tp) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
             "?18, ?19, ?20, ?21)",
             a->replace ? "OR REPLACE" : "OR IGNORE");
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL));
    int rc = SQLITE_DONE;
    for (size_t i = 0; i < a->n && rc == SQLITE_DONE; i++) {
        const struct kvr_plan_row *r = &a->rows[i];
        char tokens[KVR_MAX_GPUS * 21];
        kvr_store_format_tokens(r->tokens, kvr_plan_row_chunks(r), tokens, sizeof tokens);
        sqlite3_reset(q);
        bind_key(q, r);
        sqlite3_bind_text(q, 7, tokens, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 8, (sqlite3_int64)r->granularity_tokens);
        sqlite3_bind_double(q, 9, r->predicted_ttft_s);
        sqlite3_bind_int64(q, 10, (sqlite3_int64)r->evaluations);
        sqlite3_bind_double(q, 11, r->search_wall_s);
        sqlite3_bind_int64(q, 12, r->run_id);
        bind_fewer(q, r);
        sqlite3_bind_text(q, 20, r->kv_forward[0] ? r->kv_forward : "whole", -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
    }
    sqlite3_finalize(q);
    KVR_SQL_CHECK(s, rc);
    return KVR_OK;
}

enum kvr_status kvr_store_put_plans(struct kvr_store *s, const struct kvr_plan_row *rows, size_t n,
                                    bool replace)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(rows[i].model_hash) != 16 || strlen(rows[i].machine_hash) != 16)
            return kvr_error(KVR_ERR_RUNTIME, "plan row for %s on %s without content hashes",
                             rows[i].model, rows[i].machine);
    struct put_args a = {rows, n, replace};
    return n ? kvr_store_transaction(s, put_txn, &a) : KVR_OK;
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static enum kvr_status read_row(struct kvr_store *s, sqlite3_stmt *q, struct kvr_plan_row *r)
{
    memset(r, 0, sizeof *r);
    copy_text(r->model, sizeof r->model, sqlite3_column_text(q, 0));
    copy_text(r->machine, sizeof r->machine, sqlite3_column_text(q, 1));
    r->p = sqlite3_column_int(q, 2);
    r->ctx_tokens = (uint64_t)sqlite3_column_int64(q, 3);
    copy_text(r->scheme, sizeof r->scheme, sqlite3_column_text(q, 4));
    copy_text(r->method, sizeof r->method, sqlite3_column_text(q, 5));
    r->granularity_tokens = (uint64_t)sqlite3_column_int64(q, 7);
    r->predicted_ttft_s = sqlite3_column_double(q, 8);
    r->evaluations = (uint64_t)sqlite3_column_int64(q, 9);
    r->search_wall_s = sqlite3_column_double(q, 10);
    r->run_id = sqlite3_column_int64(q, 11);
    copy_text(r->model_hash, sizeof r->model_hash, sqlite3_column_text(q, 12));
    copy_text(r->machine_hash, sizeof r->machine_hash, sqlite3_column_text(q, 13));
    r->stale = sqlite3_column_int(q, 14) != 0;
    copy_text(r->kv_forward, sizeof r->kv_forward, sqlite3_column_text(q, 20));
    if (kvr_kv_forward_from_name(r->kv_forward) < 0)
        return kvr_error(KVR_ERR_INPUT, "%s: plan row with kv_forward '%s'", kvr_store_path(s),
                         r->kv_forward);
    if (r->p < 1 || r->p > KVR_MAX_GPUS)
        return kvr_error(KVR_ERR_INPUT, "%s: plan row with p = %d", kvr_store_path(s), r->p);
    r->tp = sqlite3_column_int(q, 21);
    if (r->tp < 1 || r->p % r->tp)
        return kvr_error(KVR_ERR_INPUT, "%s: plan row with tp = %d at p = %d", kvr_store_path(s),
                         r->tp, r->p);
    const unsigned char *text = sqlite3_column_text(q, 6);
    enum kvr_status st =
        kvr_store_parse_tokens(text ? (const char *)text : "", kvr_plan_row_chunks(r), r->tokens);
    if (!st)
        st = check_partition("partition_tokens", r->tokens, kvr_plan_row_chunks(r), r->ctx_tokens);
    if (!st && !(r->predicted_ttft_s > 0 && r->predicted_ttft_s < 1e30))
        st = kvr_error(KVR_ERR_INPUT, "predicted_ttft_s %g is not a time", r->predicted_ttft_s);
    if (!st) st = read_fewer(q, r);
    return st ? kvr_error_prefix(st, "%s: plan of %s at p = %d, ctx %llu: ", kvr_store_path(s),
                                 r->model, r->p, (unsigned long long)r->ctx_tokens)
              : KVR_OK;
}

enum kvr_status kvr_store_list_plans(struct kvr_store *s, const struct kvr_plan_filter *f,
                                     struct kvr_plan_row **rows, size_t *n)
{
    static const char sql[] =
        "SELECT model, machine, p, ctx_tokens, scheme, method, partition_tokens, "
        "granularity_tokens, predicted_ttft_s, evaluations, search_wall_s, run_id, model_hash, "
        "machine_hash, stale, mapping, fewer_p, fewer_partition_tokens, fewer_mapping, "
        "fewer_predicted_ttft_s, kv_forward, tp FROM plan "
        "WHERE (?1 IS NULL OR model = ?1) AND (?2 IS NULL OR machine = ?2) "
        "AND (?3 IS NULL OR scheme = ?3) AND (?4 IS NULL OR method = ?4) "
        "AND (?5 = 0 OR p = ?5) AND (?6 IS NULL OR model_hash = ?6) "
        "AND (?7 IS NULL OR machine_hash = ?7) AND (?8 OR stale = 0) "
        "AND (?9 < 0 OR tp = max(?9, 1)) "
        "ORDER BY model, model_hash, machine, machine_hash, scheme, method, p, tp, ctx_tokens";
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL));
    const char *texts[] = {f->model, f->machine, f->scheme, f->method};
    for (int i = 0; i < 4; i++) sqlite3_bind_text(q, i + 1, texts[i], -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 5, f->p);
    sqlite3_bind_text(q, 6, f->model_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 7, f->machine_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 8, f->include_stale);
    sqlite3_bind_int(q, 9, f->tp);
    struct kvr_plan_row *out = NULL;
    size_t cnt = 0, cap = 0;
    enum kvr_status st = KVR_OK;
    int rc = SQLITE_DONE;
    while (!st && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? 2 * cap : 32;
            struct kvr_plan_row *grown = realloc(out, cap * sizeof *out);
            if (!grown)
                st = kvr_error(KVR_ERR_NOMEM, "store: out of memory for plan rows");
            else
                out = grown;
        }
        if (!st) st = read_row(s, q, &out[cnt++]);
    }
    sqlite3_finalize(q);
    if (!st && rc != SQLITE_DONE) st = kvr_store_sql_error(s, rc, "list plans", __FILE__, __LINE__);
    if (st) {
        free(out);
        return st;
    }
    *rows = out, *n = cnt;
    return KVR_OK;
}
