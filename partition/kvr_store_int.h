/* The store's internals, shared by the files of partition/ that hold SQL (kvr_store*.c) and
 * included nowhere else: the raw connection and the check macro for SQLite calls. */
#pragma once

#include <sqlite3.h>

#include "kvr_store.h"

sqlite3 *kvr_store_db(struct kvr_store *s);
const char *kvr_store_path(const struct kvr_store *s);

/* Runs sql (statements without results) on the store's connection (kvr_store_rows.c). */
enum kvr_status kvr_store_exec(struct kvr_store *s, const char *sql);
/* Column col of the current row as text ("" for NULL), truncated to cap. */
void kvr_store_column_text(sqlite3_stmt *q, int col, char *dst, size_t cap);

/* Writes n rows with one prepared statement in one transaction; bind(q, i, arg) binds row i
 * (the statement is reset before each). */
typedef void (*kvr_store_bind_fn)(sqlite3_stmt *q, size_t i, const void *arg);
enum kvr_status kvr_store_write_rows(struct kvr_store *s, const char *sql, size_t n,
                                     kvr_store_bind_fn bind, const void *arg);
/* Runs the query sql to its end, its parameters bound by bind(q, 0, arg) (bind NULL: none),
 * reading each row with read(q, elem) into a growing array of elem_bytes elements: *out
 * (free()) and *n. */
typedef void (*kvr_store_read_fn)(sqlite3_stmt *q, void *elem);
enum kvr_status kvr_store_read_rows(struct kvr_store *s, const char *sql, kvr_store_bind_fn bind,
                                    const void *arg, size_t elem_bytes, kvr_store_read_fn read,
                                    void **out, size_t *n);
/* The chunks of a row's partition: p / tp (p when tp is 1 or does not divide it). */
int kvr_store_chunks(int p, int tp);
/* Binds ?1 to ?6 of a statement on plan rows to r's model, machine, p, ctx_tokens, scheme and
 * method (kvr_store_plan.c). */
void kvr_store_bind_plan_names(sqlite3_stmt *q, const struct kvr_plan_row *r);
/* Before migration 8 -> 9 (kvr_store.c): refuses a store with a one-rank measurement whose
 * run has no start time (kvr_store_measure.c). */
enum kvr_status kvr_store_measure_check_v8(struct kvr_store *s);
/* Refuses a database file cut short: not whole pages, or fewer than its header counts
 * (kvr_store_file.c). KVR_OK when the file is missing, empty or not SQLite's. */
enum kvr_status kvr_store_check_file(const char *path);
enum kvr_status kvr_store_sql_error(struct kvr_store *s, int rc, const char *what, const char *file,
                                    int line);
#define KVR_SQL_CHECK(s, call)                                                                     \
    do {                                                                                           \
        int sql_rc_ = (call);                                                                      \
        if (sql_rc_ != SQLITE_OK && sql_rc_ != SQLITE_DONE && sql_rc_ != SQLITE_ROW)               \
            return kvr_store_sql_error((s), sql_rc_, #call, __FILE__, __LINE__);                   \
    } while (0)
