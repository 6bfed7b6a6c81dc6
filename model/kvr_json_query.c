#include "kvr_json_query.h"

#include <string.h>

enum kvr_status kvr_json_first_key(sqlite3 *db, const char *sql, const char *json, char *key,
                                   size_t cap, bool *found)
{
    sqlite3_stmt *q = NULL;
    *found = false;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, json, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        size_t n = 0;
        const char *c = (const char *)sqlite3_column_text(q, 0);
        for (c += c[0] == '$' && c[1] == '.' ? 2 : 0; *c && n + 1 < cap; c++)
            if (*c != '"') key[n++] = *c;
        key[n] = 0;
        *found = true;
    }
    sqlite3_finalize(q);
    return KVR_OK;
}

enum kvr_status kvr_json_check_unique(sqlite3 *db, const char *path, const char *json,
                                      enum kvr_status code)
{
    char key[256];
    bool found;
    enum kvr_status st = kvr_json_first_key(
        db,
        "SELECT fullkey FROM json_tree(?1) WHERE json_valid(?1) AND typeof(key) = 'text' "
        "GROUP BY parent, key HAVING count(*) > 1 LIMIT 1",
        json, key, sizeof key, &found);
    if (!st && found)
        st = kvr_error(code, "%s: key \"%s\" appears more than once in its object", path, key);
    return st;
}

enum kvr_status kvr_json_check_no_nul(const char *path, const char *json, enum kvr_status code)
{
    /* valid JSON has backslashes inside strings only; an odd run escapes the 'u' */
    for (const char *p = strstr(json, "u0000"); p; p = strstr(p + 1, "u0000")) {
        const char *b = p;
        while (b > json && b[-1] == '\\') b--;
        if ((p - b) % 2 == 0) continue;
        int line = 1;
        for (const char *q = json; q < p; q++) line += *q == '\n';
        return kvr_error(code,
                         "%s:%d: a string holds \\u0000, a NUL character (SQLite's JSON reads the "
                         "string cut there, Python whole)",
                         path, line);
    }
    return KVR_OK;
}
