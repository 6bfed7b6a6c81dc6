/* CSV tables written by `kvr export --format csv` (partition/README.md). Format 2:
 *
 *   format_version,model,model_hash,machine,machine_hash,p,tp_degree,scheme,method,objective,...
 *   2,llama-7b,0123456789abcdef,a100-nvlink,fedcba9876543210,4,1,kvr,hier,mean,1,64,16384,...
 *
 * Format 1 (still read):
 *
 *   # kvrun lookup table, format 1
 *   model,machine,p,scheme,method,granularity_tokens,ctx_tokens,predicted_ttft_s,partition_tokens
 *   llama-7b,a100-nvlink,4,kvr,hier,64,16384,0.81,6144;4096;3584;2560
 *
 * Fields holding a comma or a quote are quoted, quotes doubled (RFC 4180). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_lookup_int.h"

#define MAGIC "# kvrun lookup table, format "
#define HEADER                                                                                     \
    "model,machine,p,scheme,method,granularity_tokens,ctx_tokens,predicted_ttft_s,partition_"      \
    "tokens"

struct staging {
    struct kvr_lookup_row *rows;
    size_t n, cap;
};

static void staging_free(struct staging *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((void *)s->rows[i].model);
        free((void *)s->rows[i].partition_tokens);
        free((void *)s->rows[i].mapping);
    }
    free(s->rows);
}

/* Splits line in place into fields; returns the count or -1 on a bad quote. */
static int split(char *line, char **fields, int max)
{
    int n = 0;
    char *r = line, *w = line;
    for (;;) {
        if (n == max) return -1;
        fields[n++] = w;
        if (*r == '"') {
            for (r++;; r++) {
                if (!*r) return -1;
                if (*r == '"' && r[1] == '"')
                    *w++ = *r++;
                else if (*r == '"')
                    break;
                else
                    *w++ = *r;
            }
            r++;
            if (*r && *r != ',') return -1;
        } else {
            while (*r && *r != ',') *w++ = *r++;
        }
        if (!*r) {
            *w = 0;
            return n;
        }
        *w++ = 0; /* w <= r: the comma becomes the terminator */
        r++;
    }
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* p chunks joined by ';', each a plain integer ("a;;b" and a trailing ';' are refused). */
static int parse_tokens(char *s, uint64_t *tok, int p)
{
    int n = 0;
    for (char *t = s;; n++) {
        char *semi = strchr(t, ';');
        if (semi) *semi = 0;
        if (n == p || parse_u64(t, &tok[n])) return -1;
        if (!semi) break;
        t = semi + 1;
    }
    return n + 1 == p ? 0 : -1;
}

/* A finite number >= 0 as %g writes it: no blanks, sign, inf, nan or hex. */
static int parse_time(const char *s, double *out)
{
    if (!((*s >= '0' && *s <= '9') || *s == '.') || strspn(s, "0123456789.eE+-") != strlen(s))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= 0) || v > 1e300) return -1;
    *out = v;
    return 0;
}

/* Where a format's fields are: model, machine, p, scheme, method, granularity, ctx, TTFT,
 * partition, then (format 2) model_hash, machine_hash, format_version, tp_degree, mapping. */
struct layout {
    int n_fields, version;
    int at[14];
};
static const struct layout v1 = {9, 1, {0, 1, 2, 3, 4, 5, 6, 7, 8, -1, -1, -1, -1, -1}};
static const struct layout v2 = {16, 2, {1, 3, 5, 7, 8, 11, 12, 13, 14, 2, 4, 0, 6, 15}};
/* format 2's objective, then objective_trials: read, checked, not served */
#define V2_OBJECTIVE 9
enum {
    F_MODEL,
    F_MACHINE,
    F_P,
    F_SCHEME,
    F_METHOD,
    F_GRAN,
    F_CTX,
    F_TTFT,
    F_PART,
    F_MHASH,
    F_HHASH,
    F_VERSION,
    F_TP,
    F_MAPPING
};

static int is_hash(const char *s)
{
    return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

/* The row's objective: "mean" or pNN with NN in (0, 100] (kvr --objective), over a whole number
 * of trials >= 1; written for the reader to see what the TTFT is of, so never anything else. */
static int is_objective(const char *stat, const char *trials)
{
    uint64_t n;
    if (parse_u64(trials, &n) || n < 1) return 0;
    if (!strcmp(stat, "mean")) return 1;
    double pct;
    return stat[0] == 'p' && stat[1] != '.' && !parse_time(stat + 1, &pct) &&
           strspn(stat + 1, "0123456789.") == strlen(stat + 1) && pct > 0 && pct <= 100;
}

/* Format 2's own fields: the row's version, hashes of 16 hex digits, t >= 1 dividing p, a
 * mapping of p GPU ids (into *map, p ints; their distinctness is kvr_lookup_check_row's);
 * anything else is refused (-1, err naming where). */
static int check_v2(char **f, const struct layout *L, int p, char *err, size_t cap,
                    const char *where, int *tp_out, int *map)
{
    uint64_t v, tp, m[KVR_LOOKUP_MAX_P];
    if (parse_u64(f[L->at[F_VERSION]], &v) || v != 2)
        return snprintf(err, cap, "%s: format_version '%s' (this library reads 1 and 2)", where,
                        f[L->at[F_VERSION]]),
               -1;
    if (parse_u64(f[L->at[F_TP]], &tp) || tp < 1 || tp > (uint64_t)p || p % (int)tp)
        return snprintf(err, cap, "%s: tp_degree '%s' does not divide p = %d", where,
                        f[L->at[F_TP]], p),
               -1;
    if (!is_hash(f[L->at[F_MHASH]]) || !is_hash(f[L->at[F_HHASH]]))
        return snprintf(err, cap, "%s: model_hash/machine_hash are not 16 hex digits", where), -1;
    if (!is_objective(f[V2_OBJECTIVE], f[V2_OBJECTIVE + 1]))
        return snprintf(err, cap,
                        "%s: objective '%s' over '%s' trials is not mean or pNN over 1 or more",
                        where, f[V2_OBJECTIVE], f[V2_OBJECTIVE + 1]),
               -1;
    char text[KVR_LOOKUP_MAX_P * 8];
    snprintf(text, sizeof text, "%s", f[L->at[F_MAPPING]]);
    if (parse_tokens(f[L->at[F_MAPPING]], m, p))
        return snprintf(err, cap, "%s: mapping '%s' is not %d GPUs joined by ';'", where, text, p),
               -1;
    for (int i = 0; i < p; i++) {
        if (m[i] > 0x7fffffff)
            return snprintf(err, cap, "%s: mapping '%s': GPU %llu is out of range", where, text,
                            (unsigned long long)m[i]),
                   -1;
        map[i] = (int)m[i];
    }
    *tp_out = (int)tp;
    return 0;
}

/* Parses one data line into a staged row (strings packed into one allocation; the partition
 * and a format 2 row's mapping in their own). */
static int parse_row(char *line, const struct layout *L, struct kvr_lookup_row *r, char *err,
                     size_t cap, const char *where)
{
    char *f[16];
    uint64_t p, gran, ctx;
    if (split(line, f, L->n_fields) != L->n_fields)
        return snprintf(err, cap, "%s: expected %d fields", where, L->n_fields), -1;
    const char *ps = f[L->at[F_P]], *gs = f[L->at[F_GRAN]], *cs = f[L->at[F_CTX]];
    const char *ts = f[L->at[F_TTFT]];
    if (parse_u64(ps, &p) || p < 1 || p > KVR_LOOKUP_MAX_P)
        return snprintf(err, cap, "%s: p '%s' is not in 1..%d", where, ps, KVR_LOOKUP_MAX_P), -1;
    if (parse_u64(gs, &gran) || parse_u64(cs, &ctx))
        return snprintf(err, cap, "%s: bad granularity '%s' or ctx '%s'", where, gs, cs), -1;
    double ttft;
    if (parse_time(ts, &ttft)) return snprintf(err, cap, "%s: bad TTFT '%s'", where, ts), -1;
    int tp = 1, map[KVR_LOOKUP_MAX_P];
    if (L->version == 2 && check_v2(f, L, (int)p, err, cap, where, &tp, map)) return -1;
    static const int strs[] = {F_MODEL, F_MACHINE, F_SCHEME, F_METHOD, F_MHASH, F_HHASH};
    int n_strs = L->version == 2 ? 6 : 4, n_chunks = (int)p / tp;
    size_t len = 0;
    for (int i = 0; i < n_strs; i++) len += strlen(f[L->at[strs[i]]]) + 1;
    char *s = malloc(len);
    uint64_t *tok = malloc((size_t)n_chunks * sizeof *tok);
    int *m = L->version == 2 ? malloc(p * sizeof *m) : NULL;
    if (!s || !tok || (L->version == 2 && !m) || parse_tokens(f[L->at[F_PART]], tok, n_chunks)) {
        free(s), free(tok), free(m);
        return snprintf(err, cap, "%s: partition '%s' is not %d tokens joined by ';'", where,
                        f[L->at[F_PART]], n_chunks),
               -1;
    }
    if (m) memcpy(m, map, p * sizeof *m);
    const char **dst[] = {&r->model,  &r->machine,    &r->scheme,
                          &r->method, &r->model_hash, &r->machine_hash};
    for (int i = 0; i < n_strs; i++) {
        strcpy(s, f[L->at[strs[i]]]);
        *dst[i] = s;
        s += strlen(f[L->at[strs[i]]]) + 1;
    }
    r->p = (int)p, r->granularity_tokens = gran, r->ctx_tokens = ctx;
    r->predicted_ttft_s = ttft, r->partition_tokens = tok;
    r->tp_degree = tp, r->mapping = m;
    return 0;
}

#define MAX_LINE_BYTES (1u << 20) /* long lines are legal; an endless one (/dev/zero) is not */

/* The next line without its ending (*line grows up to MAX_LINE_BYTES); -1 at the end, -2 for a
 * NUL byte or a line beyond the cap. */
static long next_line(FILE *f, char **line, size_t *cap)
{
    size_t n = 0;
    int c = EOF;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (c == 0 || n + 2 > MAX_LINE_BYTES) return -2;
        if (n + 2 > *cap) {
            size_t nc = *cap ? 2 * *cap : 256;
            char *g = realloc(*line, nc);
            if (!g) return -2;
            *line = g, *cap = nc;
        }
        (*line)[n++] = (char)c;
    }
    if (c == EOF && n == 0) return -1;
    if (!*line && !(*line = malloc(*cap = 256))) return -2;
    while (n && (*line)[n - 1] == '\r') n--;
    (*line)[n] = 0;
    return (long)n;
}

/* Format 2 starts with its header; format 1 with a comment line naming the format, then its
 * header. Returns the layout (NULL on error) and the number of the first data line. */
static const struct layout *read_header(FILE *f, const char *path, char **line, size_t *lcap,
                                        char *err, size_t cap, int *first)
{
    if (next_line(f, line, lcap) < 0)
        return snprintf(err, cap, "%s:1: not a kvrun lookup table", path), NULL;
    *first = 2;
    if (!strcmp(*line, KVR_LOOKUP_CSV2_HEADER)) return &v2;
    /* named, not "not a table": an editor's BOM in front of a real header */
    if (!strncmp(*line, "\xef\xbb\xbf", 3))
        return snprintf(err, cap,
                        "%s:1: a UTF-8 byte-order mark before the header (kvr writes "
                        "none: remove it)",
                        path),
               NULL;
    if (!strncmp(*line, "format_version,", 15))
        return snprintf(err, cap, "%s:1: a format 2 header other than '%s'", path,
                        KVR_LOOKUP_CSV2_HEADER),
               NULL;
    if (strncmp(*line, MAGIC, strlen(MAGIC)))
        return snprintf(err, cap, "%s:1: not a kvrun lookup table", path), NULL;
    /* exactly "1": sscanf's %u read "1abc", " 1", "+1" and 4294967297 (wrapped) as format 1 */
    if (strcmp(*line + strlen(MAGIC), "1"))
        return snprintf(err, cap, "%s:1: format '%s', this library reads formats 1 and %d", path,
                        *line + strlen(MAGIC), KVR_LOOKUP_FORMAT_VERSION),
               NULL;
    if (next_line(f, line, lcap) < 0 || strcmp(*line, HEADER))
        return snprintf(err, cap, "%s:2: expected the header '%s'", path, HEADER), NULL;
    *first = 3;
    return &v1;
}

/* Strict UTF-8, as the Python package decodes a table: no overlong forms, surrogates or code
 * points past U+10FFFF; -1 or the offset of the first bad byte. (A Latin-1 name was served here
 * and refused there, and no query from Python could name it.) */
static long bad_utf8(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    for (const unsigned char *at = s; *s; at = s) {
        unsigned c = *s++, lo = 0x80, hi = 0xbf;
        if (c < 0x80) continue;
        int n = c >= 0xc2 && c <= 0xdf   ? 1
                : c >= 0xe0 && c <= 0xef ? 2
                : c >= 0xf0 && c <= 0xf4 ? 3
                                         : 0;
        if (!n) return (long)(at - (const unsigned char *)text);
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
        for (int i = 0; i < n; i++, s++, lo = 0x80, hi = 0xbf)
            if (*s < lo || *s > hi) return (long)(at - (const unsigned char *)text);
    }
    return -1;
}

/* Room for one more row. */
static int grow(struct staging *s)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 64;
        struct kvr_lookup_row *nr = realloc(s->rows, nc * sizeof *nr);
        if (!nr) return -1;
        s->rows = nr, s->cap = nc;
    }
    return 0;
}

static int read_rows(FILE *f, const char *path, struct staging *s, char **line, char *err,
                     size_t cap)
{
    size_t lcap = 0;
    int first = 2;
    const struct layout *L = read_header(f, path, line, &lcap, err, cap, &first);
    int rc = L ? KVR_LOOKUP_OK : KVR_LOOKUP_BAD_INPUT;
    long len = 0;
    for (int lineno = first; !rc && (len = next_line(f, line, &lcap)) >= 0; lineno++) {
        char where[512];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!len) continue;
        long bad = bad_utf8(*line);
        if (bad >= 0)
            return snprintf(err, cap, "%s: not UTF-8 text (byte %ld of the line)", where, bad),
                   KVR_LOOKUP_BAD_INPUT;
        if (grow(s)) return snprintf(err, cap, "out of memory"), KVR_LOOKUP_NOMEM;
        memset(&s->rows[s->n], 0, sizeof s->rows[s->n]);
        if (parse_row(*line, L, &s->rows[s->n], err, cap, where)) return KVR_LOOKUP_BAD_INPUT;
        s->n++;
        if (kvr_lookup_check_row(&s->rows[s->n - 1], err, cap, where)) return KVR_LOOKUP_BAD_INPUT;
    }
    if (!rc && len == -2)
        return snprintf(err, cap, "%s: a NUL byte or a line over %u bytes", path, MAX_LINE_BYTES),
               KVR_LOOKUP_BAD_INPUT;
    return rc ? rc : ferror(f) ? (snprintf(err, cap, "%s: read error", path), KVR_LOOKUP_IO) : 0;
}

int kvr_lookup_load_csv(const char *path, struct kvr_lookup **out, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return snprintf(err, cap, "%s: cannot open: %s", path, strerror(errno)), KVR_LOOKUP_IO;
    struct staging s = {0};
    char *line = NULL;
    int rc = read_rows(f, path, &s, &line, err, cap);
    free(line);
    fclose(f);
    if (!rc) {
        struct kvr_lookup *t = NULL;
        rc = kvr_lookup_from_rows(s.rows, s.n, &t, err, cap);
        if (!rc) *out = t;
        if (rc) {
            char inner[512];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, cap, "%s: %s", path, inner);
        }
    }
    staging_free(&s);
    return rc;
}
