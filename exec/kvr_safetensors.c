#include "kvr_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvr_exec.h"
#include "kvr_hash.h"
#include "kvr_json_query.h"
#include "kvr_st_index.h"
#include "kvr_weights.h"

#define ST_MAX_HEADER (100u << 20) /* the format's own limit is 100 MB */
#define ST_MAX_DIMS   4

enum st_dtype { ST_F32, ST_BF16, ST_F16 };

struct st_entry {
    char name[128];
    bool used;
    enum st_dtype dtype;
    int n_dims;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; /* byte offsets into the data section */
};

struct st_file {
    char path[1024];
    int fd;
    const unsigned char *map; /* the whole file, memory-mapped read-only */
    size_t map_bytes;
    uint64_t data_offset, data_bytes;
    struct st_entry *e;
    size_t n;
};

static enum kvr_status st_dtype_parse(const struct st_file *f, const char *name, const char *s,
                                      enum st_dtype *out)
{
    if (s && !strcmp(s, "F32"))
        *out = ST_F32;
    else if (s && !strcmp(s, "BF16"))
        *out = ST_BF16;
    else if (s && !strcmp(s, "F16"))
        *out = ST_F16;
    else
        return kvr_error(KVR_ERR_INPUT, "%s: tensor %s has dtype %s (supported: F32, BF16, F16)",
                         f->path, name, s ? s : "(none)");
    return KVR_OK;
}

static uint64_t dtype_bytes(enum st_dtype d)
{
    return d == ST_F32 ? 4 : 2;
}

/* Shape from its JSON array text, and the byte range checked against it and the file. */
static enum kvr_status st_entry_check(struct st_file *f, sqlite3 *db, struct st_entry *e,
                                      const char *shape_json)
{
    sqlite3_stmt *q = NULL;
    enum kvr_status st = KVR_OK;
    uint64_t numel = 1;
    sqlite3_prepare_v2(db, "SELECT type, value FROM json_each(?1)", -1, &q, NULL);
    sqlite3_bind_text(q, 1, shape_json ? shape_json : "null", -1, SQLITE_STATIC);
    e->n_dims = 0;
    while (!st && sqlite3_step(q) == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(q, 1);
        if (strcmp((const char *)sqlite3_column_text(q, 0), "integer") || v < 0 ||
            e->n_dims == ST_MAX_DIMS || (v && numel > UINT64_MAX / (uint64_t)v))
            st = kvr_error(KVR_ERR_INPUT, "%s: tensor %s has a bad shape %s", f->path, e->name,
                           shape_json);
        else
            numel *= (uint64_t)v, e->shape[e->n_dims++] = (uint64_t)v;
    }
    sqlite3_finalize(q);
    if (st) return st;
    if (e->end < e->begin || e->end > f->data_bytes ||
        e->end - e->begin != numel * dtype_bytes(e->dtype))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: tensor %s: data_offsets [%" PRIu64 ", %" PRIu64
                         ") do not match its shape or lie beyond the %" PRIu64 " data bytes",
                         f->path, e->name, e->begin, e->end, f->data_bytes);
    return KVR_OK;
}

static const struct st_entry *st_find(const struct st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->e[i].name, name)) return &f->e[i];
    return NULL;
}

static enum kvr_status st_parse_rows(struct st_file *f, sqlite3 *db, const char *json)
{
    sqlite3_stmt *q = NULL;
    const char *sql = "SELECT key, json_extract(value, '$.dtype'), json_extract(value, '$.shape'),"
                      " json_extract(value, '$.data_offsets[0]'),"
                      " json_extract(value, '$.data_offsets[1]'), type,"
                      " json_type(value, '$.shape'), json_array_length(value, '$.data_offsets')"
                      " FROM json_each(?1) WHERE key != '__metadata__'";
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, json, -1, SQLITE_STATIC);
    enum kvr_status st = KVR_OK;
    int rc;
    while (!st && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct st_entry *grown = realloc(f->e, (f->n + 1) * sizeof *f->e);
        if (!grown) {
            st = kvr_error(KVR_ERR_NOMEM, "out of memory");
            break;
        }
        f->e = grown;
        const char *name = (const char *)sqlite3_column_text(q, 0);
        if (!name || strlen(name) >= sizeof f->e->name || st_find(f, name)) {
            st = kvr_error(KVR_ERR_INPUT, "%s: tensor name '%.*s' is %s", f->path, 200,
                           name ? name : "", name && st_find(f, name) ? "given twice" : "too long");
            break;
        }
        struct st_entry *e = memset(&f->e[f->n++], 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", name);
        const char *shape_type = (const char *)sqlite3_column_text(q, 6);
        if (!shape_type || strcmp(shape_type, "array"))
            st = kvr_error(KVR_ERR_INPUT, "%s: tensor %s: shape is not an array of integers",
                           f->path, e->name);
        else if (strcmp((const char *)sqlite3_column_text(q, 5), "object") ||
                 sqlite3_column_type(q, 3) != SQLITE_INTEGER ||
                 sqlite3_column_type(q, 4) != SQLITE_INTEGER || sqlite3_column_int(q, 7) != 2)
            st = kvr_error(KVR_ERR_INPUT,
                           "%s: tensor %s lacks dtype, shape or data_offsets (two integers)",
                           f->path, e->name);
        if (!st)
            st = st_dtype_parse(f, e->name, (const char *)sqlite3_column_text(q, 1), &e->dtype);
        e->begin = (uint64_t)sqlite3_column_int64(q, 3);
        e->end = (uint64_t)sqlite3_column_int64(q, 4);
        if (!st) st = st_entry_check(f, db, e, (const char *)sqlite3_column_text(q, 2));
    }
    if (!st && rc != SQLITE_DONE)
        st = kvr_error(KVR_ERR_PARSE, "%s: the header is not valid JSON (%s)", f->path,
                       sqlite3_errmsg(db));
    sqlite3_finalize(q);
    return st;
}

static int by_begin(const void *a, const void *b)
{
    const struct st_entry *x = *(const struct st_entry *const *)a,
                          *y = *(const struct st_entry *const *)b;
    return x->begin < y->begin   ? -1
           : x->begin > y->begin ? 1
                                 : (x->end > y->end) - (x->end < y->end);
}

/* The tensors' byte ranges tile the data exactly, as safetensors' own reader requires: no gap,
 * no two tensors sharing bytes, and nothing after the last (a file cut or padded wrongly). */
static enum kvr_status st_check_coverage(const struct st_file *f)
{
    const struct st_entry **v = malloc((f->n + 1) * sizeof *v);
    if (!v) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < f->n; i++) v[i] = &f->e[i];
    qsort(v, f->n, sizeof *v, by_begin);
    uint64_t at = 0;
    enum kvr_status st = KVR_OK;
    for (size_t i = 0; i < f->n && !st; i++) {
        if (v[i]->begin != at)
            st = kvr_error(KVR_ERR_INPUT,
                           "%s: tensor %s starts at data byte %" PRIu64 ", not %" PRIu64
                           " (a gap, or bytes shared with another tensor)",
                           f->path, v[i]->name, v[i]->begin, at);
        at = v[i]->end;
    }
    if (!st && at != f->data_bytes)
        st = kvr_error(KVR_ERR_INPUT,
                       "%s: the tensors end at data byte %" PRIu64 " of %" PRIu64
                       " (bytes after the last tensor)",
                       f->path, at, f->data_bytes);
    free(v);
    return st;
}

/* __metadata__, when given, is an object of strings (safetensors' own reader fails on any
 * other): a file it cannot load is not read here either. */
static enum kvr_status st_check_metadata(const struct st_file *f, sqlite3 *db, const char *json)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(
            db,
            "SELECT coalesce(json_type(?1, '$.__metadata__'), 'object') = 'object' AND NOT "
            "EXISTS (SELECT 1 FROM json_each(?1, '$.__metadata__') WHERE type != 'text')",
            -1, &q, NULL) != SQLITE_OK)
        return kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, json, -1, SQLITE_STATIC);
    bool ok = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (!ok)
        return kvr_error(KVR_ERR_INPUT, "%s: __metadata__ is not an object of strings", f->path);
    return KVR_OK;
}

static enum kvr_status st_read_header(struct st_file *f, char **json)
{
    struct stat sb;
    unsigned char len8[8];
    if (fstat(f->fd, &sb) || pread(f->fd, len8, 8, 0) != 8)
        return kvr_error(KVR_ERR_INPUT, "%s: too short for a safetensors file", f->path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i]; /* little-endian */
    if (n < 2 || n > ST_MAX_HEADER || n > (uint64_t)sb.st_size - 8)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: header length %" PRIu64 " is impossible for a file of %lld bytes",
                         f->path, n, (long long)sb.st_size);
    f->data_offset = 8 + n;
    f->data_bytes = (uint64_t)sb.st_size - f->data_offset;
    if (!(*json = malloc(n + 1))) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (pread(f->fd, *json, n, 8) != (ssize_t)n)
        return kvr_error(KVR_ERR_IO, "%s: cannot read the header", f->path);
    (*json)[n] = 0;
    if (memchr(*json, 0, n)) /* the JSON reader would stop there and drop the rest */
        return kvr_error(KVR_ERR_INPUT, "%s: the header holds a NUL byte", f->path);
    return KVR_OK;
}

static enum kvr_status st_open(const char *path, struct st_file *f)
{
    *f = (struct st_file){.fd = open(path, O_RDONLY | O_NONBLOCK)}; /* a FIFO: not waited for */
    snprintf(f->path, sizeof f->path, "%s", path);
    if (f->fd < 0) return kvr_error(KVR_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(f->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) /* mapped: a FIFO or a device is not */
        return kvr_error(KVR_ERR_INPUT, "%s: not a regular file (a checkpoint is memory-mapped)",
                         path);
    char *json = NULL;
    sqlite3 *db = NULL;
    enum kvr_status st = st_read_header(f, &json);
    if (!st) {
        f->map_bytes = (size_t)(f->data_offset + f->data_bytes);
        void *mp = mmap(NULL, f->map_bytes, PROT_READ, MAP_PRIVATE, f->fd, 0);
        if (mp == MAP_FAILED)
            st = kvr_error(KVR_ERR_IO, "%s: cannot map the file: %s", path, strerror(errno));
        else
            f->map = mp;
    }
    if (!st && sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        st = kvr_error(KVR_ERR_RUNTIME, "sqlite: cannot open an in-memory database");
    if (!st) {
        sqlite3_stmt *q = NULL;
        sqlite3_prepare_v2(db, "SELECT json_valid(?1) AND json_type(?1) = 'object'", -1, &q, NULL);
        sqlite3_bind_text(q, 1, json, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_ROW || !sqlite3_column_int(q, 0))
            st = kvr_error(KVR_ERR_PARSE, "%s: the header is not a JSON object", path);
        sqlite3_finalize(q);
    }
    if (!st) st = st_check_metadata(f, db, json);
    if (!st) st = st_parse_rows(f, db, json); /* a tensor named twice: by its name */
    if (!st) st = kvr_json_check_unique(db, path, json, KVR_ERR_INPUT); /* "dtype" twice */
    if (!st) st = kvr_json_check_no_nul(path, json, KVR_ERR_INPUT);     /* "a\u0000b": cut to "a" */
    if (!st) st = st_check_coverage(f);
    sqlite3_close(db);
    free(json);
    return st;
}

static void st_close(struct st_file *f)
{
    if (f->map) munmap((void *)f->map, f->map_bytes);
    if (f->fd >= 0) close(f->fd);
    free(f->e);
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24);
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 1024), (int)exp - 25);
    return sign ? -v : v;
}

/* Reads an entry's elements (from the mapped file) into out as float. */
static enum kvr_status st_read(const struct st_file *f, const struct st_entry *e, float *out)
{
    uint64_t n = (e->end - e->begin) / dtype_bytes(e->dtype);
    const unsigned char *src = f->map + f->data_offset + e->begin;
    if (e->dtype == ST_F32) memcpy(out, src, n * 4);
    for (uint64_t i = 0; e->dtype != ST_F32 && i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        out[i] = e->dtype == ST_BF16 ? kvr_bf16_to_float(h) : half_to_float(h);
    }
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(out[i]))
            return kvr_error(KVR_ERR_INPUT, "%s: tensor %s holds %s at element %" PRIu64, f->path,
                             e->name, isnan(out[i]) ? "NaN" : "an infinity", i);
    return KVR_OK;
}

/* Where a part of one of our tensors comes from: a file tensor holding output features
 * [first, first + count) of it (Llama's separate q/k/v and gate/up), or all of it. */
enum part_rows { P_ALL, P_Q, P_K, P_V, P_GATE, P_UP, P_FALCON_QKV };

struct part {
    enum kvr_tensor t;
    const char *name; /* printf format with the layer number for layer tensors */
    enum part_rows rows;
};

static const struct part llama_parts[] = {
    {KVR_T_ATTN_NORM_W, "model.layers.%u.input_layernorm.weight", P_ALL},
    {KVR_T_MLP_NORM_W, "model.layers.%u.post_attention_layernorm.weight", P_ALL},
    {KVR_T_WQKV, "model.layers.%u.self_attn.q_proj.weight", P_Q},
    {KVR_T_WQKV, "model.layers.%u.self_attn.k_proj.weight", P_K},
    {KVR_T_WQKV, "model.layers.%u.self_attn.v_proj.weight", P_V},
    {KVR_T_BQKV, "model.layers.%u.self_attn.q_proj.bias", P_Q},
    {KVR_T_BQKV, "model.layers.%u.self_attn.k_proj.bias", P_K},
    {KVR_T_BQKV, "model.layers.%u.self_attn.v_proj.bias", P_V},
    {KVR_T_WO, "model.layers.%u.self_attn.o_proj.weight", P_ALL},
    {KVR_T_BO, "model.layers.%u.self_attn.o_proj.bias", P_ALL},
    {KVR_T_WUP, "model.layers.%u.mlp.gate_proj.weight", P_GATE},
    {KVR_T_WUP, "model.layers.%u.mlp.up_proj.weight", P_UP},
    {KVR_T_BUP, "model.layers.%u.mlp.gate_proj.bias", P_GATE},
    {KVR_T_BUP, "model.layers.%u.mlp.up_proj.bias", P_UP},
    {KVR_T_WDOWN, "model.layers.%u.mlp.down_proj.weight", P_ALL},
    {KVR_T_BDOWN, "model.layers.%u.mlp.down_proj.bias", P_ALL},
    {KVR_T_EMBED, "model.embed_tokens.weight", P_ALL},
    {KVR_T_FINAL_NORM_W, "model.norm.weight", P_ALL},
    {KVR_T_LM_HEAD, "lm_head.weight", P_ALL},
};

/* Falcon: one norm (7B), two parallel norms (ln_attn, ln_mlp: 40B), or sequential. */
static const struct part falcon_parts[] = {
    {KVR_T_ATTN_NORM_W, "transformer.h.%u.input_layernorm.weight", P_ALL},
    {KVR_T_ATTN_NORM_B, "transformer.h.%u.input_layernorm.bias", P_ALL},
    {KVR_T_MLP_NORM_W, "transformer.h.%u.post_attention_layernorm.weight", P_ALL},
    {KVR_T_MLP_NORM_B, "transformer.h.%u.post_attention_layernorm.bias", P_ALL},
    {KVR_T_WQKV, "transformer.h.%u.self_attention.query_key_value.weight", P_FALCON_QKV},
    {KVR_T_BQKV, "transformer.h.%u.self_attention.query_key_value.bias", P_FALCON_QKV},
    {KVR_T_WO, "transformer.h.%u.self_attention.dense.weight", P_ALL},
    {KVR_T_BO, "transformer.h.%u.self_attention.dense.bias", P_ALL},
    {KVR_T_WUP, "transformer.h.%u.mlp.dense_h_to_4h.weight", P_ALL},
    {KVR_T_BUP, "transformer.h.%u.mlp.dense_h_to_4h.bias", P_ALL},
    {KVR_T_WDOWN, "transformer.h.%u.mlp.dense_4h_to_h.weight", P_ALL},
    {KVR_T_BDOWN, "transformer.h.%u.mlp.dense_4h_to_h.bias", P_ALL},
    {KVR_T_EMBED, "transformer.word_embeddings.weight", P_ALL},
    {KVR_T_FINAL_NORM_W, "transformer.ln_f.weight", P_ALL},
    {KVR_T_FINAL_NORM_B, "transformer.ln_f.bias", P_ALL},
    {KVR_T_LM_HEAD, "lm_head.weight", P_ALL},
};

struct loader {
    struct st_file *f; /* the shards, in the index's order (one for a plain file) */
    size_t n_files;
    struct kvr_st_index ix; /* empty for a plain file */
    const char *what;       /* --weights as given, for messages */
    const struct kvr_model *m;
    struct kvr_exec *ex;
    const struct part *parts;
    size_t n_parts;
    bool falcon_two_norms; /* ln_attn / ln_mlp instead of input / post_attention norms */
};

/* The formats are this file's own constants above. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void part_name(const struct loader *L, const struct part *p, uint32_t layer, char *buf,
                      size_t cap)
{
    const char *fmt = p->name;
    if (L->falcon_two_norms && p->t == KVR_T_ATTN_NORM_W) fmt = "transformer.h.%u.ln_attn.weight";
    if (L->falcon_two_norms && p->t == KVR_T_ATTN_NORM_B) fmt = "transformer.h.%u.ln_attn.bias";
    if (L->falcon_two_norms && p->t == KVR_T_MLP_NORM_W) fmt = "transformer.h.%u.ln_mlp.weight";
    if (L->falcon_two_norms && p->t == KVR_T_MLP_NORM_B) fmt = "transformer.h.%u.ln_mlp.bias";
    snprintf(buf, cap, fmt, layer);
}
#pragma GCC diagnostic pop

/* Output features [first, first+count) of our tensor that a part fills. */
static void part_range(const struct kvr_model *m, enum part_rows rows, uint64_t full,
                       uint64_t *first, uint64_t *count)
{
    uint64_t q = (uint64_t)m->n_heads * m->head_dim, kv = (uint64_t)m->n_kv_heads * m->head_dim;
    switch (rows) {
    case P_Q:
        *first = 0, *count = q;
        break;
    case P_K:
        *first = q, *count = kv;
        break;
    case P_V:
        *first = q + kv, *count = kv;
        break;
    case P_GATE:
        *first = 0, *count = m->d_ffn;
        break;
    case P_UP:
        *first = m->d_ffn, *count = m->d_ffn;
        break;
    default:
        *first = 0, *count = full;
        break;
    }
}

/* Falcon's fused QKV is grouped: per KV head, its query heads, then its K, then its V. */
static void falcon_ungroup(const struct kvr_model *m, const float *src, float *dst, uint64_t unit)
{
    uint32_t g_size = m->n_heads / m->n_kv_heads, hd = m->head_dim;
    uint64_t blk = (uint64_t)hd * unit, in = 0;
    for (uint32_t g = 0; g < m->n_kv_heads; g++) {
        for (uint32_t j = 0; j < g_size; j++, in++)
            memcpy(dst + (uint64_t)(g * g_size + j) * blk, src + in * blk, blk * sizeof *dst);
        memcpy(dst + (uint64_t)(m->n_heads + g) * blk, src + in++ * blk, blk * sizeof *dst);
        memcpy(dst + (uint64_t)(m->n_heads + m->n_kv_heads + g) * blk, src + in++ * blk,
               blk * sizeof *dst);
    }
}

/* A tensor by name: in the shard the index puts it in (only there), or in the one file. */
static const struct st_entry *find(const struct loader *L, const char *name,
                                   const struct st_file **file)
{
    const char *shard = L->ix.n_names ? kvr_st_index_shard(&L->ix, name) : NULL;
    if (L->ix.n_names && !shard) return NULL;
    for (size_t i = 0; i < L->n_files; i++) {
        if (shard && strcmp(L->f[i].path, shard)) continue;
        const struct st_entry *e = st_find(&L->f[i], name);
        if (e) return *file = &L->f[i], e;
    }
    return NULL;
}

/* A tensor the model needs and the checkpoint lacks: where it should have been. */
static enum kvr_status missing(const struct loader *L, const char *name)
{
    const char *shard = kvr_st_index_shard(&L->ix, name);
    if (shard)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: tensor %s is missing from shard %s, where the index "
                         "puts it",
                         L->what, name, shard);
    if (L->ix.n_names) {
        /* the shard that holds the same layer's (or the model's) other tensors */
        char prefix[128];
        const char *dot = strstr(name, "layers.") ? strchr(strstr(name, "layers.") + 7, '.')
                          : strstr(name, ".h.")   ? strchr(strstr(name, ".h.") + 3, '.')
                                                  : NULL;
        snprintf(prefix, sizeof prefix, "%.*s", dot ? (int)(dot - name + 1) : 0, name);
        for (size_t i = 0; *prefix && i < L->ix.n_names; i++)
            if (!strncmp(L->ix.names[i], prefix, strlen(prefix)))
                return kvr_error(KVR_ERR_INPUT,
                                 "%s: tensor %s is missing: the index lists no shard for it (the "
                                 "rest of %s* is in %s)",
                                 L->what, name, prefix, L->ix.shards[L->ix.shard_of[i]]);
        return kvr_error(KVR_ERR_INPUT, "%s: tensor %s is missing: the index lists no shard for it",
                         L->what, name);
    }
    return kvr_error(KVR_ERR_INPUT, "%s: tensor %s is missing", L->what, name);
}

/* "[4096, 64]", "[64]", "[]": every dimension, as the file or the model has it. */
static void shape_text(const uint64_t *dims, int n, char *buf, size_t cap)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%" PRIu64, i ? ", " : "", dims[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

static enum kvr_status load_part(struct loader *L, const struct part *p, uint32_t layer, float *dst,
                                 float *tmp)
{
    char name[128];
    part_name(L, p, layer, name, sizeof name);
    const struct st_file *f = NULL;
    const struct st_entry *e = find(L, name, &f);
    if (!e) return missing(L, name);
    ((struct st_entry *)e)->used = true;
    struct kvr_tensor_shape sh = kvr_tensor_shape(L->m, p->t);
    bool vec = sh.rows == 1;
    uint64_t unit = vec ? 1 : sh.cols, full = vec ? sh.cols : sh.rows, first, count;
    part_range(L->m, p->rows, full, &first, &count);
    uint64_t want0 = count, want1 = vec ? 0 : unit;
    bool shape_ok = vec ? e->n_dims == 1 && e->shape[0] == want0
                        : e->n_dims == 2 && e->shape[0] == want0 && e->shape[1] == want1;
    if (!shape_ok) {
        char has[96], need[48];
        shape_text(e->shape, e->n_dims, has, sizeof has);
        shape_text((const uint64_t[]){want0, want1}, vec ? 1 : 2, need, sizeof need);
        return kvr_error(KVR_ERR_INPUT, "%s: tensor %s has shape %s, the model (%s) needs %s",
                         f->path, name, has, L->m->name, need);
    }
    if (p->rows != P_FALCON_QKV) return st_read(f, e, dst + first * unit);
    enum kvr_status st = st_read(f, e, tmp);
    if (!st) falcon_ungroup(L->m, tmp, dst, unit);
    return st;
}

static enum kvr_status load_tensor(struct loader *L, enum kvr_tensor t, uint32_t layer, float *buf,
                                   float *tmp)
{
    enum kvr_status st = KVR_OK;
    for (size_t i = 0; i < L->n_parts && !st; i++)
        if (L->parts[i].t == t) st = load_part(L, &L->parts[i], layer, buf, tmp);
    return st ? st : kvr_exec_set_tensor(L->ex, t, layer, buf);
}

/* The checkpoint layout's names fill each tensor the model has exactly: a part of another
 * tensor's size (gate_proj and up_proj for a GELU MLP's one up projection) or no name at all
 * (a LayerNorm's bias in Llama's names) would leave rows of it unread. */
static enum kvr_status check_layout(const struct loader *L, enum kvr_tensor t)
{
    struct kvr_tensor_shape sh = kvr_tensor_shape(L->m, t);
    uint64_t full = sh.rows == 1 ? sh.cols : sh.rows, filled = 0, first, count;
    for (size_t i = 0; i < L->n_parts; i++)
        if (L->parts[i].t == t)
            part_range(L->m, L->parts[i].rows, full, &first, &count), filled += count;
    if (filled == full) return KVR_OK;
    return kvr_error(KVR_ERR_INPUT,
                     "%s: model %s (%s, %s MLP) needs %s of %" PRIu64 " rows; the %s checkpoint "
                     "layout's names hold %" PRIu64 " rows of it: that layout cannot hold this "
                     "model",
                     L->what, L->m->name, kvr_norm_name(L->m->norm), kvr_mlp_name(L->m->mlp),
                     kvr_tensor_name(t), full, L->parts == llama_parts ? "Llama" : "Falcon",
                     filled);
}

static enum kvr_status load_all(struct loader *L, float *buf, float *tmp)
{
    enum kvr_status st = KVR_OK;
    for (int t = 0; t < KVR_N_TENSORS && !st; t++)
        if (kvr_tensor_present(L->m, (enum kvr_tensor)t)) st = check_layout(L, (enum kvr_tensor)t);
    for (int t = 0; t < KVR_N_TENSORS && !st; t++) {
        if (!kvr_tensor_present(L->m, (enum kvr_tensor)t)) continue;
        uint32_t n_l = kvr_tensor_is_layer((enum kvr_tensor)t) ? L->m->n_layers : 1;
        for (uint32_t l = 0; l < n_l && !st; l++)
            st = load_tensor(L, (enum kvr_tensor)t, l, buf, tmp);
    }
    return st;
}

/* Every tensor of the checkpoint must have been read: one the model does not use means the
 * config and the weights disagree (a bias the config lacks, a head it ties). */
static enum kvr_status check_unused(const struct loader *L, bool allow)
{
    for (size_t i = 0; i < L->n_files; i++)
        for (size_t j = 0; j < L->f[i].n; j++) {
            const struct st_entry *e = &L->f[i].e[j];
            if (e->used || strstr(e->name, "rotary_emb.inv_freq")) continue; /* derived buffer */
            if (allow) continue;
            return kvr_error(KVR_ERR_INPUT,
                             "%s: tensor %s is not used by model %s (its config does not have "
                             "it; --allow-unused accepts it)",
                             L->f[i].path, e->name, L->m->name);
        }
    return KVR_OK;
}

/* A sharded checkpoint's index and shards agree: every tensor the index lists is in the shard it
 * names, and every tensor of a shard is listed there (not in another shard, not left out), so
 * no tensor is read from a file the index does not name and no copy is silently dropped. */
static enum kvr_status check_index(const struct loader *L)
{
    for (size_t i = 0; i < L->ix.n_names; i++) {
        const char *shard = L->ix.shards[L->ix.shard_of[i]];
        for (size_t k = 0; k < L->n_files; k++)
            if (!strcmp(L->f[k].path, shard) && !st_find(&L->f[k], L->ix.names[i]))
                return kvr_error(KVR_ERR_INPUT,
                                 "%s: tensor %s is missing from shard %s, where the index puts "
                                 "it",
                                 L->what, L->ix.names[i], shard);
    }
    for (size_t k = 0; k < L->n_files; k++)
        for (size_t j = 0; j < L->f[k].n; j++) {
            const char *name = L->f[k].e[j].name, *shard = kvr_st_index_shard(&L->ix, name);
            if (!shard || strcmp(shard, L->f[k].path))
                return kvr_error(KVR_ERR_INPUT, "%s: shard %s holds tensor %s, which the index %s",
                                 L->what, L->f[k].path, name,
                                 shard ? "puts in another shard" : "does not list");
        }
    return KVR_OK;
}

/* The shards (or the one file) named by --weights, opened and mapped in the index's order. */
static enum kvr_status open_files(struct loader *L, const char *weights)
{
    char path[1024];
    int is_index = 0;
    enum kvr_status st = kvr_st_resolve(weights, path, sizeof path, &is_index);
    if (!st && is_index) st = kvr_st_index_read(path, &L->ix);
    size_t n = st ? 0 : is_index ? L->ix.n_shards : 1;
    if (!st && !(L->f = calloc(n, sizeof *L->f))) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++, L->n_files++) {
        L->f[i].fd = -1;
        st = st_open(is_index ? L->ix.shards[i] : path, &L->f[i]);
    }
    if (!st && !is_index) L->n_files = 1;
    return !st && is_index ? check_index(L) : st;
}

static void close_files(struct loader *L)
{
    for (size_t i = 0; i < L->n_files; i++) st_close(&L->f[i]);
    free(L->f);
    kvr_st_index_free(&L->ix);
}

/* The config.json beside the weights (in the folder --weights names, or the file's folder), if
 * there is one, describes the model they were saved from: it must be the model being run, or
 * the weights would be read into another model without a word (another rope_theta, say). The
 * dtype is the run's choice (the tensors carry their own; --backend cuda computes in bf16), and
 * max_position_embeddings changes the numbers only under dynamic NTK scaling, so neither is
 * compared. A config kvrun cannot read is a warning: --model (an INI profile, say) may be how
 * that family runs at all (Phi-3's partial rotary), and the tensors' shapes are checked anyway. */
static enum kvr_status config_agrees(const char *weights, const struct kvr_model *m)
{
    struct stat sb;
    char cfg[1100];
    const char *slash = strrchr(weights, '/');
    if (stat(weights, &sb) == 0 && S_ISDIR(sb.st_mode))
        snprintf(cfg, sizeof cfg, "%s/config.json", weights);
    else if (slash)
        snprintf(cfg, sizeof cfg, "%.*s/config.json", (int)(slash - weights), weights);
    else
        snprintf(cfg, sizeof cfg, "config.json");
    if (stat(cfg, &sb) != 0 || !S_ISREG(sb.st_mode)) return KVR_OK;
    struct kvr_model saved;
    if (kvr_model_load_hf_config(cfg, &saved)) {
        fprintf(stderr,
                "kvr: warning: --weights %s: %s beside it is not a config kvrun reads "
                "(%s), so the weights are not checked against it\n",
                weights, cfg, kvr_error_message());
        return KVR_OK;
    }
    saved.dtype = m->dtype;
    if (saved.rope_scaling != KVR_ROPE_DYNAMIC) saved.max_pos = m->max_pos;
    if (kvr_model_hash(&saved) == kvr_model_hash(m)) return KVR_OK;
    return kvr_error(KVR_ERR_INPUT,
                     "--weights %s: %s beside it describes another model than --model (%s; "
                     "'kvr model show' both)",
                     weights, cfg, m->name);
}

enum kvr_status kvr_safetensors_load(const char *path, struct kvr_exec *ex, bool allow_unused)
{
    struct loader L = {.m = kvr_exec_full_model(ex), .ex = ex, .what = path};
    const struct st_file *f;
    enum kvr_status st = open_files(&L, path); /* a missing file is reported as such first */
    if (!st) st = config_agrees(path, L.m);
    if (!st && find(&L, "model.embed_tokens.weight", &f)) {
        L.parts = llama_parts, L.n_parts = sizeof llama_parts / sizeof *llama_parts;
    } else if (!st && find(&L, "transformer.word_embeddings.weight", &f)) {
        L.parts = falcon_parts, L.n_parts = sizeof falcon_parts / sizeof *falcon_parts;
        L.falcon_two_norms = L.m->parallel_attn && L.m->block_norms == 2;
    } else if (!st) {
        st = kvr_error(KVR_ERR_INPUT,
                       "%s: neither model.embed_tokens.weight (Llama) nor "
                       "transformer.word_embeddings.weight (Falcon) is in the checkpoint",
                       path);
    }
    uint64_t max = 0;
    for (int t = 0; t < KVR_N_TENSORS; t++) {
        uint64_t n = kvr_tensor_numel(L.m, (enum kvr_tensor)t);
        if (n > max) max = n;
    }
    float *buf = st ? NULL : malloc(max * sizeof *buf),
          *tmp = st ? NULL : malloc(max * sizeof *tmp);
    if (!st && (!buf || !tmp)) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st) st = load_all(&L, buf, tmp);
    if (!st) st = check_unused(&L, allow_unused);
    free(buf), free(tmp);
    close_files(&L);
    return st;
}

enum kvr_status kvr_safetensors_check(const char *path, size_t *n_tensors)
{
    struct st_file f;
    enum kvr_status st = st_open(path, &f);
    size_t cap = 0;
    float *buf = NULL;
    for (size_t i = 0; !st && i < f.n; i++) {
        size_t n = (size_t)((f.e[i].end - f.e[i].begin) / dtype_bytes(f.e[i].dtype));
        if (n > cap) {
            free(buf);
            cap = n;
            if (!(buf = malloc(cap * sizeof *buf))) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
        }
        if (!st) st = st_read(&f, &f.e[i], buf);
    }
    if (!st && n_tensors) *n_tensors = f.n;
    free(buf);
    st_close(&f);
    return st;
}
