#include "kvr_tokens.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_file.h"
#include "kvr_units.h"

#define MAX_TOKENS 4194304u

static enum kvr_status push(int32_t **out, uint32_t *n, uint32_t *cap, long long v, uint32_t vocab,
                            const char *path, const char *where, size_t at)
{
    if (v < 0 || v >= (long long)vocab)
        return kvr_error(KVR_ERR_INPUT, "%s:%s%zu: token %lld is outside the vocabulary [0, %u)",
                         path, where, at, v, vocab);
    if (*n == MAX_TOKENS)
        return kvr_error(KVR_ERR_INPUT, "%s: more than %u tokens", path, MAX_TOKENS);
    if (*n == *cap) {
        uint32_t c = *cap ? 2 * *cap : 1024;
        int32_t *g = realloc(*out, (size_t)c * sizeof *g);
        if (!g) return kvr_error(KVR_ERR_NOMEM, "out of memory");
        *out = g, *cap = c;
    }
    (*out)[(*n)++] = (int32_t)v;
    return KVR_OK;
}

/* One decimal integer a line; surrounding spaces and an empty last line are allowed. */
static enum kvr_status parse_text(const char *path, const char *d, size_t size, uint32_t vocab,
                                  int32_t **out, uint32_t *n, uint32_t *cap)
{
    size_t line = 1;
    for (size_t i = 0; i < size; line++) {
        size_t end = i;
        while (end < size && d[end] != '\n') end++;
        char buf[32];
        size_t a = i, b = end;
        while (a < b && (d[a] == ' ' || d[a] == '\t' || d[a] == '\r')) a++;
        while (b > a && (d[b - 1] == ' ' || d[b - 1] == '\t' || d[b - 1] == '\r')) b--;
        if (b - a == 0 || b - a >= sizeof buf)
            return kvr_error(KVR_ERR_INPUT, "%s:%zu: expected one token id (an integer) per line",
                             path, line);
        memcpy(buf, d + a, b - a), buf[b - a] = 0;
        char *e = NULL;
        errno = 0;
        long long v = strtoll(buf, &e, 10);
        if (*e || errno)
            return kvr_error(KVR_ERR_INPUT, "%s:%zu: '%s' is not an integer", path, line, buf);
        enum kvr_status st = push(out, n, cap, v, vocab, path, "", line);
        if (st) return st;
        i = end + 1;
    }
    return KVR_OK;
}

static enum kvr_status parse_json(const char *path, const char *d, size_t size, uint32_t vocab,
                                  int32_t **out, uint32_t *n, uint32_t *cap)
{
    char *text = malloc(size + 1);
    if (!text) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    memcpy(text, d, size), text[size] = 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    enum kvr_status st = KVR_OK;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT json_valid(?1) AND json_type(?1) = 'array'", -1, &q, NULL) !=
            SQLITE_OK)
        st = kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(db));
    if (!st) sqlite3_bind_text(q, 1, text, -1, SQLITE_STATIC);
    if (!st && (sqlite3_step(q) != SQLITE_ROW || !sqlite3_column_int(q, 0)))
        st = kvr_error(KVR_ERR_PARSE, "%s: not a JSON array of token ids", path);
    sqlite3_finalize(q), q = NULL;
    if (!st && sqlite3_prepare_v2(db, "SELECT type, value FROM json_each(?1)", -1, &q, NULL))
        st = kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(db));
    if (!st) sqlite3_bind_text(q, 1, text, -1, SQLITE_STATIC);
    for (size_t i = 0; !st && sqlite3_step(q) == SQLITE_ROW; i++) {
        const char *t = (const char *)sqlite3_column_text(q, 0);
        long long v = sqlite3_column_int64(q, 1);
        if (!t || strcmp(t, "integer") || v == INT64_MAX || v == INT64_MIN)
            st = kvr_error(KVR_ERR_INPUT, "%s: element %zu is not an integer token id", path, i);
        else
            st = push(out, n, cap, v, vocab, path, " element ", i);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(text);
    return st;
}

/* .npy v1/v2/v3: magic, version, header length, a Python dict header, then the data. */
static enum kvr_status parse_npy(const char *path, const char *d, size_t size, uint32_t vocab,
                                 int32_t **out, uint32_t *n, uint32_t *cap)
{
    if (size < 10 || memcmp(d, "\x93NUMPY", 6))
        return kvr_error(KVR_ERR_INPUT, "%s: not a .npy file", path);
    size_t hl = (unsigned char)d[8] | (size_t)(unsigned char)d[9] << 8, off = 10;
    if (d[6] >= 2) {
        if (size < 12) return kvr_error(KVR_ERR_INPUT, "%s: truncated .npy header", path);
        hl = hl | (size_t)(unsigned char)d[10] << 16 | (size_t)(unsigned char)d[11] << 24;
        off = 12;
    }
    if (hl > size - off) return kvr_error(KVR_ERR_INPUT, "%s: truncated .npy header", path);
    char hdr[1024];
    snprintf(hdr, sizeof hdr, "%.*s", (int)(hl < sizeof hdr ? hl : sizeof hdr - 1), d + off);
    int w = strstr(hdr, "'<i8'") ? 8 : strstr(hdr, "'<i4'") ? 4 : 0;
    if (!w || !strstr(hdr, "'fortran_order': False"))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: .npy must hold little-endian int32 or int64 in C order (header %s)",
                         path, hdr);
    unsigned long long count = 0;
    const char *sh = strstr(hdr, "'shape': (");
    if (!sh || sscanf(sh + 10, "%llu", &count) != 1 || !strstr(sh, ",)"))
        return kvr_error(KVR_ERR_INPUT, "%s: .npy must be one-dimensional (header %s)", path, hdr);
    const char *data = d + off + hl;
    if (count > (size - off - hl) / (size_t)w)
        return kvr_error(KVR_ERR_INPUT, "%s: .npy holds fewer than its %llu elements", path, count);
    if (count * (size_t)w != size - off - hl) /* numpy writes the data and nothing after it */
        return kvr_error(KVR_ERR_INPUT, "%s: .npy holds more than its %llu elements", path, count);
    for (size_t i = 0; i < count; i++) {
        long long v;
        if (w == 8) {
            int64_t x;
            memcpy(&x, data + 8 * i, 8);
            v = x;
        } else {
            int32_t x;
            memcpy(&x, data + 4 * i, 4);
            v = x;
        }
        enum kvr_status st = push(out, n, cap, v, vocab, path, " index ", i);
        if (st) return st;
    }
    return KVR_OK;
}

enum kvr_status kvr_tokens_parse(const char *path, int fmt, const char *data, size_t size,
                                 uint32_t vocab, int32_t **out, uint32_t *n)
{
    uint32_t cap = 0;
    *out = NULL, *n = 0;
    enum kvr_status st = fmt == 'n'   ? parse_npy(path, data, size, vocab, out, n, &cap)
                         : fmt == 'j' ? parse_json(path, data, size, vocab, out, n, &cap)
                                      : parse_text(path, data, size, vocab, out, n, &cap);
    if (!st && *n == 0) st = kvr_error(KVR_ERR_INPUT, "%s: no tokens", path);
    if (st) free(*out), *out = NULL, *n = 0;
    return st;
}

enum kvr_status kvr_tokens_read(const char *path, uint32_t vocab, int32_t **out, uint32_t *n)
{
    char *data = NULL;
    size_t size = 0;
    enum kvr_status st = kvr_file_read(path, KVR_TOKENS_MAX_BYTES, &data, &size);
    if (st) return st;
    int fmt = kvr_file_has_suffix(path, ".npy")    ? 'n'
              : kvr_file_has_suffix(path, ".json") ? 'j'
                                                   : 't';
    st = kvr_tokens_parse(path, fmt, data, size, vocab, out, n);
    free(data);
    return st;
}
