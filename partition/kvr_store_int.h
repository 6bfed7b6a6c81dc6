/* The store's internals, shared by the files of partition/ that hold SQL (kvr_store*.c) and
 * included nowhere else: the raw connection and the check macro for SQLite calls. */
#pragma once

#include <sqlite3.h>

#include "kvr_store.h"

sqlite3 *kvr_store_db(struct kvr_store *s);
const char *kvr_store_path(const struct kvr_store *s);
enum kvr_status kvr_store_sql_error(struct kvr_store *s, int rc, const char *what, const char *file,
                                    int line);
#define KVR_SQL_CHECK(s, call)                                                                     \
    do {                                                                                           \
        int sql_rc_ = (call);                                                                      \
        if (sql_rc_ != SQLITE_OK && sql_rc_ != SQLITE_DONE && sql_rc_ != SQLITE_ROW)               \
            return kvr_store_sql_error((s), sql_rc_, #call, __FILE__, __LINE__);                   \
    } while (0)
