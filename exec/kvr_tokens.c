#include "kvr_tokens.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
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

/* The .npy header: a Python dict literal with exactly the keys descr (a string), fortran_order
 * (True or False) and shape (a tuple of whole numbers), each once, as numpy.lib.format reads it
 * (either quote, any blanks, a trailing comma; padded with blanks and a newline). */
struct npy_header {
    char descr[16];
    int fortran; /* -1: not given */
    int n_dims;  /* -1: not given */
    unsigned long long dims[8];
};

static const char *npy_blank(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) s++;
    return s;
}

/* A quoted string (' or "), without escapes, into out; NULL when it is not one. */
static const char *npy_string(const char *s, const char *end, char *out, size_t cap)
{
    if (s >= end || (*s != '\'' && *s != '"')) return NULL;
    const char *q = memchr(s + 1, *s, (size_t)(end - s - 1));
    if (!q || (size_t)(q - s - 1) >= cap || memchr(s + 1, '\\', (size_t)(q - s - 1))) return NULL;
    memcpy(out, s + 1, (size_t)(q - s - 1)), out[q - s - 1] = 0;
    return q + 1;
}

/* "(3,)", "(2, 3)", "()": whole numbers without sign, at most 8. */
static const char *npy_shape(const char *s, const char *end, struct npy_header *h)
{
    if (s >= end || *s++ != '(') return NULL;
    h->n_dims = 0;
    for (;;) {
        s = npy_blank(s, end);
        if (s < end && *s == ')') return s + 1;
        if (s >= end || *s < '0' || *s > '9' || h->n_dims == 8) return NULL;
        unsigned long long v = 0;
        for (; s < end && *s >= '0' && *s <= '9'; s++) {
            if (v > (ULLONG_MAX - 9) / 10) return NULL;
            v = v * 10 + (unsigned)(*s - '0');
        }
        h->dims[h->n_dims++] = v;
        s = npy_blank(s, end);
        if (s < end && *s == ',')
            s++;
        else if (s >= end || *s != ')')
            return NULL;
    }
}

static const char *npy_entry(const char *s, const char *end, struct npy_header *h)
{
    char key[32];
    if (!(s = npy_string(s, end, key, sizeof key))) return NULL;
    s = npy_blank(s, end);
    if (s >= end || *s++ != ':') return NULL;
    s = npy_blank(s, end);
    if (!strcmp(key, "descr") && !h->descr[0]) {
        s = npy_string(s, end, h->descr, sizeof h->descr); /* a list: a structured dtype */
        return s && h->descr[0] ? s : NULL;
    }
    if (!strcmp(key, "fortran_order") && h->fortran < 0) {
        size_t n = (size_t)(end - s);
        if (n >= 4 && !memcmp(s, "True", 4)) return h->fortran = 1, s + 4;
        if (n >= 5 && !memcmp(s, "False", 5)) return h->fortran = 0, s + 5;
        return NULL;
    }
    if (!strcmp(key, "shape") && h->n_dims < 0) return npy_shape(s, end, h);
    return NULL; /* another key, or one given twice */
}

static bool npy_header_parse(const char *s, const char *end, struct npy_header *h)
{
    *h = (struct npy_header){.fortran = -1, .n_dims = -1};
    s = npy_blank(s, end);
    if (s >= end || *s++ != '{') return false;
    for (;;) {
        s = npy_blank(s, end);
        if (s < end && *s == '}') break;
        if (!(s = npy_entry(s, end, h))) return false;
        s = npy_blank(s, end);
        if (s < end && *s == ',')
            s++;
        else if (s >= end || *s != '}')
            return false;
    }
    s = npy_blank(s + 1, end);
    return s == end && h->descr[0] && h->fortran >= 0 && h->n_dims >= 0;
}

/* .npy v1/v2/v3: magic, version, header length, the dict header, then the data. */
static enum kvr_status parse_npy(const char *path, const char *d, size_t size, uint32_t vocab,
                                 int32_t **out, uint32_t *n, uint32_t *cap)
{
    if (size < 10 || memcmp(d, "\x93NUMPY", 6))
        return kvr_error(KVR_ERR_INPUT, "%s: not a .npy file", path);
    if (d[6] < 1 || d[6] > 3)
        return kvr_error(KVR_ERR_INPUT, "%s: .npy format version %d (kvr reads 1, 2 and 3)", path,
                         (unsigned char)d[6]);
    size_t hl = (unsigned char)d[8] | (size_t)(unsigned char)d[9] << 8, off = 10;
    if (d[6] >= 2) {
        if (size < 12) return kvr_error(KVR_ERR_INPUT, "%s: truncated .npy header", path);
        hl = hl | (size_t)(unsigned char)d[10] << 16 | (size_t)(unsigned char)d[11] << 24;
        off = 12;
    }
    if (hl > size - off) return kvr_error(KVR_ERR_INPUT, "%s: truncated .npy header", path);
    struct npy_header h;
    if (memchr(d + off, 0, hl) || !npy_header_parse(d + off, d + off + hl, &h))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: the .npy header is not a dict of descr, fortran_order and shape "
                         "(%.*s)",
                         path, (int)(hl < 200 ? hl : 200), d + off);
    int w = !strcmp(h.descr, "<i8") ? 8 : !strcmp(h.descr, "<i4") ? 4 : 0;
    if (!w || h.fortran)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: .npy must hold little-endian int32 or int64 ('<i4', '<i8') in C "
                         "order, not '%s'%s",
                         path, h.descr, h.fortran ? " in Fortran order" : "");
    if (h.n_dims != 1)
        return kvr_error(KVR_ERR_INPUT, "%s: .npy must be one-dimensional, not of %d dimensions",
                         path, h.n_dims);
    unsigned long long count = h.dims[0];
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
    const char *nul = fmt == 'n' ? NULL : memchr(data, 0, size);
    if (nul) { /* the text's readers would stop at it and drop the rest */
        size_t line = 1;
        for (const char *c = data; c < nul; c++) line += *c == '\n';
        return kvr_error(KVR_ERR_INPUT, "%s:%zu: NUL byte in a text file", path, line);
    }
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
    int fmt = kvr_file_has_suffix(path, ".npy")    ? 'n'
              : kvr_file_has_suffix(path, ".json") ? 'j'
                                                   : 't';
    enum kvr_status st = fmt == 'n' ? kvr_file_read(path, KVR_TOKENS_MAX_BYTES, &data, &size)
                                    : kvr_file_read_text(path, KVR_TOKENS_MAX_BYTES, &data, &size);
    if (st) return st;
    st = kvr_tokens_parse(path, fmt, data, size, vocab, out, n);
    free(data);
    return st;
}
