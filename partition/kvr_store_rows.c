/* The store's generic SQL helpers over its connection (kvr_store_int.h): SQLite's codes as
 * statuses, a transaction, and rows written or read with one prepared statement. */
#include <stdio.h>
#include <stdlib.h>

#include "kvr_store_int.h"

enum kvr_status kvr_store_exec(struct kvr_store *s, const char *sql)
{
    KVR_SQL_CHECK(s, sqlite3_exec(kvr_store_db(s), sql, NULL, NULL, NULL));
    return KVR_OK;
}

/* SQLite's codes as kvrun statuses: a bad file is the user's to fix (exit 2). */
enum kvr_status kvr_store_sql_error(struct kvr_store *s, int rc, const char *what, const char *file,
                                    int line)
{
    int primary = rc & 0xff;
    enum kvr_status st = KVR_ERR_RUNTIME;
    if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) st = KVR_ERR_INPUT;
    if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM)
        st = KVR_ERR_IO;
    const char *msg = s && kvr_store_db(s) ? sqlite3_errmsg(kvr_store_db(s)) : sqlite3_errstr(rc);
    return kvr_error(st, "%s: %s (SQLite: %s; %s at %s:%d)", s ? kvr_store_path(s) : "?",
                     primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT
                         ? "corrupt or not a database"
                         : "database error",
                     msg, what, file, line);
}

enum kvr_status kvr_store_transaction(struct kvr_store *s,
                                      enum kvr_status (*fn)(struct kvr_store *, void *), void *arg)
{
    enum kvr_status st = kvr_store_exec(s, "BEGIN IMMEDIATE");
    if (st) return st;
    st = fn(s, arg);
    if (!st) st = kvr_store_exec(s, "COMMIT");
    if (st) sqlite3_exec(kvr_store_db(s), "ROLLBACK", NULL, NULL, NULL);
    return st;
}

void kvr_store_column_text(sqlite3_stmt *q, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

struct write_rows {
    const char *sql;
    size_t n;
    kvr_store_bind_fn bind;
    const void *arg;
};

static enum kvr_status write_rows_txn(struct kvr_store *s, void *arg)
{
    const struct write_rows *w = arg;
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), w->sql, -1, &q, NULL));
    int rc = SQLITE_DONE;
    for (size_t i = 0; i < w->n && rc == SQLITE_DONE; i++) {
        sqlite3_reset(q);
        w->bind(q, i, w->arg);
        rc = sqlite3_step(q);
    }
    sqlite3_finalize(q);
    KVR_SQL_CHECK(s, rc);
    return KVR_OK;
}

enum kvr_status kvr_store_write_rows(struct kvr_store *s, const char *sql, size_t n,
                                     kvr_store_bind_fn bind, const void *arg)
{
    struct write_rows w = {sql, n, bind, arg};
    return n ? kvr_store_transaction(s, write_rows_txn, &w) : KVR_OK;
}

enum kvr_status kvr_store_read_rows(struct kvr_store *s, const char *sql, kvr_store_bind_fn bind,
                                    const void *arg, size_t elem_bytes, kvr_store_read_fn read,
                                    void **out, size_t *n)
{
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL));
    if (bind) bind(q, 0, arg);
    char *rows = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? 2 * cap : 64;
            char *grown = realloc(rows, cap * elem_bytes);
            if (!grown) {
                free(rows), sqlite3_finalize(q);
                return kvr_error(KVR_ERR_NOMEM, "%s: out of memory for %zu rows", kvr_store_path(s),
                                 cap);
            }
            rows = grown;
        }
        read(q, rows + cnt++ * elem_bytes);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        free(rows);
        return kvr_store_sql_error(s, rc, "reading rows", __FILE__, __LINE__);
    }
    *out = rows, *n = cnt;
    return KVR_OK;
}
