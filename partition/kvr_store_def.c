/* Definitions (each model and machine once, by hash) and the rows migrated from before
 * content hashes: listed by name, then matched to the current definition or marked stale. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_hash.h"
#include "kvr_machine_hash.h"
#include "kvr_store.h"
#include "kvr_store_int.h"

static enum kvr_status dup_text(const char *src, size_t n, char **out)
{
    *out = malloc(n + 1);
    if (!*out) return kvr_error(KVR_ERR_NOMEM, "definition: out of memory");
    memcpy(*out, src, n);
    (*out)[n] = 0;
    return KVR_OK;
}

enum kvr_status kvr_definition_of_model(const struct kvr_model *m, struct kvr_definition *d)
{
    char text[4096];
    memset(d, 0, sizeof *d);
    d->kind = "model";
    snprintf(d->name, sizeof d->name, "%s", m->name);
    kvr_hash_hex(kvr_model_hash(m), d->hash);
    size_t n = kvr_model_canonical(m, text, sizeof text);
    enum kvr_status st = dup_text(text, n < sizeof text ? n : sizeof text - 1, &d->canonical_text);
    return st ? st : dup_text("", 0, &d->provenance);
}

enum kvr_status kvr_definition_of_machine(const struct kvr_machine *h, const char *key,
                                          const char *name_or_file, struct kvr_definition *d)
{
    memset(d, 0, sizeof *d);
    d->kind = "machine";
    snprintf(d->name, sizeof d->name, "%s", key);
    kvr_hash_hex(kvr_machine_hash(h), d->hash);
    size_t n = kvr_machine_canonical(h, NULL, 0);
    d->canonical_text = malloc(n + 1);
    d->provenance = malloc(2048);
    if (!d->canonical_text || !d->provenance) {
        kvr_definition_free(d);
        return kvr_error(KVR_ERR_NOMEM, "definition: out of memory");
    }
    kvr_machine_canonical(h, d->canonical_text, n + 1);
    kvr_machine_provenance(name_or_file, d->provenance, 2048);
    return KVR_OK;
}

void kvr_definition_free(struct kvr_definition *d)
{
    if (!d) return;
    free(d->canonical_text), free(d->provenance);
    d->canonical_text = d->provenance = NULL;
}

enum kvr_status kvr_store_put_definition(struct kvr_store *s, const struct kvr_definition *d,
                                         int64_t run_id)
{
    static const char sql[] = "INSERT OR IGNORE INTO definition (kind, hash, name, "
                              "canonical_text, provenance, run_id) VALUES (?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL));
    const char *texts[] = {d->kind, d->hash, d->name, d->canonical_text, d->provenance};
    for (int i = 0; i < 5; i++) sqlite3_bind_text(q, i + 1, texts[i], -1, SQLITE_STATIC);
    if (run_id > 0)
        sqlite3_bind_int64(q, 6, run_id);
    else
        sqlite3_bind_null(q, 6);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    KVR_SQL_CHECK(s, rc);
    return KVR_OK;
}

enum kvr_status kvr_store_get_definition(struct kvr_store *s, const char *kind, const char *hash,
                                         struct kvr_definition *d, bool *found)
{
    static const char sql[] = "SELECT kind, name, canonical_text, provenance FROM definition "
                              "WHERE kind = ? AND hash = ?";
    memset(d, 0, sizeof *d);
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL));
    sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    enum kvr_status st = KVR_OK;
    *found = rc == SQLITE_ROW;
    if (*found) {
        d->kind = !strcmp(kind, "model") ? "model" : "machine";
        snprintf(d->hash, sizeof d->hash, "%s", hash);
        snprintf(d->name, sizeof d->name, "%s", (const char *)sqlite3_column_text(q, 1));
        const char *t = (const char *)sqlite3_column_text(q, 2);
        const char *pv = (const char *)sqlite3_column_text(q, 3);
        st = dup_text(t ? t : "", t ? strlen(t) : 0, &d->canonical_text);
        if (!st) st = dup_text(pv ? pv : "", pv ? strlen(pv) : 0, &d->provenance);
    }
    sqlite3_finalize(q);
    if (st) return kvr_definition_free(d), st;
    KVR_SQL_CHECK(s, rc);
    return KVR_OK;
}

enum kvr_status kvr_store_list_legacy(struct kvr_store *s, const struct kvr_plan_filter *f,
                                      struct kvr_plan_row **rows, size_t *n, int64_t **ids)
{
    struct kvr_plan_filter g = *f;
    g.model_hash = g.machine_hash = "", g.include_stale = false;
    *ids = NULL;
    enum kvr_status st = kvr_store_list_plans(s, &g, rows, n);
    if (st || !*n) return st;
    static const char sql[] = "SELECT id FROM plan WHERE model = ?1 AND machine = ?2 AND p = ?3 "
                              "AND ctx_tokens = ?4 AND scheme = ?5 AND method = ?6 "
                              "AND model_hash = '' AND machine_hash = '' AND stale = 0 AND tp = 1";
    sqlite3_stmt *q = NULL;
    *ids = calloc(*n, sizeof **ids);
    int rc = *ids ? sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL) : SQLITE_NOMEM;
    for (size_t i = 0; i < *n && rc == SQLITE_OK; i++) {
        const struct kvr_plan_row *r = &(*rows)[i];
        sqlite3_reset(q);
        kvr_store_bind_plan_names(q, r);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) (*ids)[i] = sqlite3_column_int64(q, 0), rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_OK) {
        free(*rows), free(*ids);
        *rows = NULL, *ids = NULL, *n = 0;
        return kvr_store_sql_error(s, rc, "list legacy plans", __FILE__, __LINE__);
    }
    return KVR_OK;
}

struct settle_args {
    const int64_t *ids;
    const bool *matched;
    size_t n;
    const char *model_hash, *machine_hash;
};

static enum kvr_status settle_txn(struct kvr_store *s, void *arg)
{
    const struct settle_args *a = arg;
    /* OR IGNORE: a row the search already wrote under these hashes keeps its place, and the
     * legacy one, still without hashes, is then marked stale like an unmatched one. */
    static const char match_sql[] =
        "UPDATE OR IGNORE plan SET model_hash = ?2, machine_hash = ?3 WHERE id = ?1";
    static const char stale_sql[] = "UPDATE plan SET stale = 1 WHERE id = ?1 AND model_hash = ''";
    sqlite3_stmt *q = NULL, *z = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), match_sql, -1, &q, NULL));
    int rc = sqlite3_prepare_v2(kvr_store_db(s), stale_sql, -1, &z, NULL);
    for (size_t i = 0; i < a->n && (rc == SQLITE_OK || rc == SQLITE_DONE); i++) {
        sqlite3_reset(q), sqlite3_reset(z);
        sqlite3_bind_int64(q, 1, a->ids[i]), sqlite3_bind_int64(z, 1, a->ids[i]);
        sqlite3_bind_text(q, 2, a->model_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, a->machine_hash, -1, SQLITE_STATIC);
        rc = a->matched[i] ? sqlite3_step(q) : SQLITE_DONE;
        if (rc == SQLITE_DONE) rc = sqlite3_step(z);
    }
    sqlite3_finalize(q), sqlite3_finalize(z);
    KVR_SQL_CHECK(s, rc);
    return KVR_OK;
}

enum kvr_status kvr_store_settle_legacy(struct kvr_store *s, const int64_t *ids,
                                        const bool *matched, size_t n, const char *model_hash,
                                        const char *machine_hash)
{
    struct settle_args a = {ids, matched, n, model_hash, machine_hash};
    return n ? kvr_store_transaction(s, settle_txn, &a) : KVR_OK;
}

enum kvr_status kvr_store_count_other_definitions(struct kvr_store *s,
                                                  const struct kvr_plan_filter *f, size_t *n)
{
    static const char sql[] =
        "SELECT count(*) FROM plan WHERE model = ?1 AND machine = ?2 AND p = ?3 "
        "AND scheme = ?4 AND method = ?5 AND NOT (model_hash = ?6 AND machine_hash = ?7)";
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL));
    const char *t[] = {f->model, f->machine};
    for (int i = 0; i < 2; i++) sqlite3_bind_text(q, i + 1, t[i], -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, f->p);
    sqlite3_bind_text(q, 4, f->scheme, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, f->method, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, f->model_hash ? f->model_hash : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 7, f->machine_hash ? f->machine_hash : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    *n = rc == SQLITE_ROW ? (size_t)sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    KVR_SQL_CHECK(s, rc);
    return KVR_OK;
}

void kvr_plan_row_set_hashes(struct kvr_plan_row *r, const struct kvr_model *m,
                             const struct kvr_machine *h)
{
    kvr_hash_hex(kvr_model_hash(m), r->model_hash);
    kvr_hash_hex(kvr_machine_hash(h), r->machine_hash);
}

enum kvr_status kvr_store_get_run(struct kvr_store *s, int64_t id, char *version, size_t cap,
                                  double *started_unix_s)
{
    static const char sql[] = "SELECT version, started_unix_s FROM run WHERE id = ?";
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(kvr_store_db(s), sql, -1, &q, NULL));
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    const unsigned char *v = rc == SQLITE_ROW ? sqlite3_column_text(q, 0) : NULL;
    snprintf(version, cap, "%s", v ? (const char *)v : "unknown");
    *started_unix_s = rc == SQLITE_ROW ? sqlite3_column_double(q, 1) : 0;
    sqlite3_finalize(q);
    KVR_SQL_CHECK(s, rc);
    return KVR_OK;
}
