#include "kvr_st_index.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kvr_file.h"
#include "kvr_json_query.h"
#include "kvr_out.h"

#define INDEX_MAX_BYTES (64u << 20)

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, *dir ? "/" : "", name);
    return p;
}

static enum kvr_status add_shard(struct kvr_st_index *ix, const char *dir, const char *file,
                                 size_t *at)
{
    for (size_t i = 0; i < ix->n_shards; i++)
        if (!strcmp(strrchr(ix->shards[i], '/') ? strrchr(ix->shards[i], '/') + 1 : ix->shards[i],
                    file)) {
            *at = i;
            return KVR_OK;
        }
    char **grown = realloc(ix->shards, (ix->n_shards + 1) * sizeof *grown);
    if (!grown) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    ix->shards = grown;
    if (!(ix->shards[ix->n_shards] = join(dir, file)))
        return kvr_error(KVR_ERR_NOMEM, "out of memory");
    *at = ix->n_shards++;
    return KVR_OK;
}

static enum kvr_status add_name(struct kvr_st_index *ix, const char *name, size_t shard)
{
    char **grown = realloc(ix->names, (ix->n_names + 1) * sizeof *grown);
    if (grown) ix->names = grown;
    size_t *g2 = grown ? realloc(ix->shard_of, (ix->n_names + 1) * sizeof *g2) : NULL;
    if (!g2) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    ix->shard_of = g2;
    if (!(ix->names[ix->n_names] = strdup(name))) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    ix->shard_of[ix->n_names++] = shard;
    return KVR_OK;
}

/* One weight_map row: a tensor and a plain file name. */
static enum kvr_status take_row(struct kvr_st_index *ix, const char *path, const char *dir,
                                sqlite3_stmt *q)
{
    const char *name = (const char *)sqlite3_column_text(q, 0);
    const char *type = (const char *)sqlite3_column_text(q, 1);
    const char *file = (const char *)sqlite3_column_text(q, 2);
    if (!name || !type || strcmp(type, "text") || !file || !*file || strchr(file, '/') ||
        !strcmp(file, ".") || !strcmp(file, ".."))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: weight_map entry \"%s\" must name a shard file in the index's folder",
                         path, name ? name : "");
    if (kvr_st_index_shard(ix, name)) /* JSON keeps both; which one wins is anyone's guess */
        return kvr_error(KVR_ERR_INPUT, "%s: weight_map lists tensor \"%s\" twice", path, name);
    size_t at = 0;
    enum kvr_status st = add_shard(ix, dir, file, &at);
    return st ? st : add_name(ix, name, at);
}

enum kvr_status kvr_st_index_parse(const char *path, const char *dir, const char *json,
                                   struct kvr_st_index *ix)
{
    memset(ix, 0, sizeof *ix);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    enum kvr_status st = KVR_OK;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT key, type, value FROM json_each(?1, '$.weight_map') "
                           "WHERE json_valid(?1) AND json_type(?1, '$.weight_map') = 'object'",
                           -1, &q, NULL) != SQLITE_OK)
        st = kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(db));
    if (!st) st = kvr_json_check_unique(db, path, json, KVR_ERR_INPUT);
    if (!st) st = kvr_json_check_no_nul(path, json, KVR_ERR_INPUT);
    if (!st) sqlite3_bind_text(q, 1, json, -1, SQLITE_STATIC);
    int rc = SQLITE_DONE;
    while (!st && (rc = sqlite3_step(q)) == SQLITE_ROW) st = take_row(ix, path, dir, q);
    if (!st && rc != SQLITE_DONE)
        st = kvr_error(KVR_ERR_PARSE, "%s: malformed JSON (%s)", path, sqlite3_errmsg(db));
    if (!st && ix->n_names == 0)
        st = kvr_error(KVR_ERR_INPUT, "%s: no \"weight_map\" object with tensors", path);
    sqlite3_finalize(q);
    sqlite3_close(db);
    if (st) kvr_st_index_free(ix);
    return st;
}

enum kvr_status kvr_st_index_read(const char *path, struct kvr_st_index *ix)
{
    char *text = NULL, dir[1024];
    memset(ix, 0, sizeof *ix);
    enum kvr_status st = kvr_file_read_text(path, INDEX_MAX_BYTES, &text, NULL);
    if (st) return st;
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 0, path);
    st = kvr_st_index_parse(path, slash ? dir : "", text, ix);
    free(text);
    return st;
}

void kvr_st_index_free(struct kvr_st_index *ix)
{
    for (size_t i = 0; i < ix->n_shards; i++) free(ix->shards[i]);
    for (size_t i = 0; i < ix->n_names; i++) free(ix->names[i]);
    free(ix->shards), free(ix->names), free(ix->shard_of);
    memset(ix, 0, sizeof *ix);
}

const char *kvr_st_index_shard(const struct kvr_st_index *ix, const char *name)
{
    for (size_t i = 0; i < ix->n_names; i++)
        if (!strcmp(ix->names[i], name)) return ix->shards[ix->shard_of[i]];
    return NULL;
}

enum kvr_status kvr_st_check_not_input(const char *weights, const char *what, const char *out)
{
    char path[1024];
    int is_index = 0;
    if (!weights || !out) return KVR_OK;
    enum kvr_status st = kvr_st_resolve(weights, path, sizeof path, &is_index);
    if (!st) st = kvr_out_check_not_input(what, out, "--weights", path);
    if (st || !is_index) return st;
    struct kvr_st_index ix;
    if ((st = kvr_st_index_read(path, &ix))) return st;
    for (size_t i = 0; i < ix.n_shards && !st; i++)
        st = kvr_out_check_not_input(what, out, "--weights shard", ix.shards[i]);
    kvr_st_index_free(&ix);
    return st;
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

enum kvr_status kvr_st_resolve(const char *w, char *out, size_t cap, int *is_index)
{
    struct stat sb;
    if (stat(w, &sb) != 0) return kvr_error(KVR_ERR_IO, "--weights %s: %s", w, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        snprintf(out, cap, "%s/model.safetensors", w);
        int one = is_file(out);
        snprintf(out, cap, "%s/model.safetensors.index.json", w);
        if (one && is_file(out)) /* transformers reads the file; the index may differ */
            return kvr_error(KVR_ERR_INPUT,
                             "--weights %s: the folder holds both model.safetensors and "
                             "model.safetensors.index.json; name the one to read",
                             w);
        if (is_file(out)) return *is_index = 1, KVR_OK;
        snprintf(out, cap, "%s/model.safetensors", w);
        if (one) return *is_index = 0, KVR_OK;
        return kvr_error(KVR_ERR_INPUT,
                         "--weights %s: the folder holds neither model.safetensors.index.json nor "
                         "model.safetensors",
                         w);
    }
    snprintf(out, cap, "%s", w);
    *is_index = kvr_file_has_suffix(w, ".json");
    if (!*is_index && !kvr_file_has_suffix(w, ".safetensors"))
        return kvr_error(KVR_ERR_INPUT,
                         "--weights %s: expected a .safetensors file, a sharded index (.json) or "
                         "a folder",
                         w);
    return KVR_OK;
}
