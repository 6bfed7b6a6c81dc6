/* CSV tables written by `kvr export --format csv` (partition/README.md):
 *
 *   # kvrun lookup table, format 1
 *   model,machine,p,scheme,method,granularity_tokens,ctx_tokens,predicted_ttft_s,partition_tokens
 *   llama-7b,a100-nvlink,4,kvr,hier,64,16384,0.81,6144;4096;3584;2560
 *
 * Fields holding a comma or a quote are quoted, quotes doubled (RFC 4180). */
#define _POSIX_C_SOURCE 200809L /* getline */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_lookup_int.h"

#define N_FIELDS 9
#define MAGIC    "# kvrun lookup table, format "
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

/* Parses one data line into a staged row (strings packed into one allocation). */
static int parse_row(char *line, struct kvr_lookup_row *r, char *err, size_t cap, const char *where)
{
    char *f[N_FIELDS];
    uint64_t p, gran, ctx;
    if (split(line, f, N_FIELDS) != N_FIELDS)
        return snprintf(err, cap, "%s: expected %d fields", where, N_FIELDS), -1;
    if (parse_u64(f[2], &p) || p < 1 || p > KVR_LOOKUP_MAX_P)
        return snprintf(err, cap, "%s: p '%s' is not in 1..%d", where, f[2], KVR_LOOKUP_MAX_P), -1;
    if (parse_u64(f[5], &gran) || parse_u64(f[6], &ctx))
        return snprintf(err, cap, "%s: bad granularity '%s' or ctx '%s'", where, f[5], f[6]), -1;
    double ttft;
    if (parse_time(f[7], &ttft)) return snprintf(err, cap, "%s: bad TTFT '%s'", where, f[7]), -1;
    size_t len = 0;
    for (int i = 0; i < 5; i++) len += strlen(f[i]) + 1;
    char *s = malloc(len);
    uint64_t *tok = malloc(p * sizeof *tok);
    if (!s || !tok || parse_tokens(f[8], tok, (int)p)) {
        free(s), free(tok);
        return snprintf(err, cap, "%s: partition '%s' is not %d tokens joined by ';'", where, f[8],
                        (int)p),
               -1;
    }
    const char **dst[] = {&r->model, &r->machine, NULL, &r->scheme, &r->method};
    for (int i = 0; i < 5; i++) {
        if (!dst[i]) continue;
        strcpy(s, f[i]);
        *dst[i] = s;
        s += strlen(f[i]) + 1;
    }
    r->p = (int)p, r->granularity_tokens = gran, r->ctx_tokens = ctx;
    r->predicted_ttft_s = ttft, r->partition_tokens = tok;
    return 0;
}

/* The next line without its ending, any length (*line grows); -1 at the end. */
static ssize_t next_line(FILE *f, char **line, size_t *cap)
{
    ssize_t len = getline(line, cap, f);
    while (len > 0 && ((*line)[len - 1] == '\n' || (*line)[len - 1] == '\r')) (*line)[--len] = 0;
    if (len >= 0 && (ssize_t)strlen(*line) != len) return -2; /* a NUL byte */
    return len;
}

static int read_header(FILE *f, const char *path, char **line, size_t *lcap, char *err, size_t cap)
{
    unsigned version = 0;
    if (next_line(f, line, lcap) < 0 || strncmp(*line, MAGIC, strlen(MAGIC)) ||
        sscanf(*line + strlen(MAGIC), "%u", &version) != 1)
        return snprintf(err, cap, "%s:1: not a kvrun lookup table", path), KVR_LOOKUP_BAD_INPUT;
    if (version != KVR_LOOKUP_FORMAT_VERSION)
        return snprintf(err, cap, "%s:1: format %u, this library reads format %d", path, version,
                        KVR_LOOKUP_FORMAT_VERSION),
               KVR_LOOKUP_BAD_INPUT;
    if (next_line(f, line, lcap) < 0 || strcmp(*line, HEADER))
        return snprintf(err, cap, "%s:2: expected the header '%s'", path, HEADER),
               KVR_LOOKUP_BAD_INPUT;
    return KVR_LOOKUP_OK;
}

static int read_rows(FILE *f, const char *path, struct staging *s, char **line, char *err,
                     size_t cap)
{
    size_t lcap = 0;
    int rc = read_header(f, path, line, &lcap, err, cap);
    ssize_t len = 0;
    for (int lineno = 3; !rc && (len = next_line(f, line, &lcap)) >= 0; lineno++) {
        char where[512];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!len) continue;
        if (s->n == s->cap) {
            size_t nc = s->cap ? 2 * s->cap : 64;
            struct kvr_lookup_row *nr = realloc(s->rows, nc * sizeof *nr);
            if (!nr) return snprintf(err, cap, "out of memory"), KVR_LOOKUP_NOMEM;
            s->rows = nr, s->cap = nc;
        }
        memset(&s->rows[s->n], 0, sizeof s->rows[s->n]);
        if (parse_row(*line, &s->rows[s->n], err, cap, where)) return KVR_LOOKUP_BAD_INPUT;
        s->n++;
        if (kvr_lookup_check_row(&s->rows[s->n - 1], err, cap, where)) return KVR_LOOKUP_BAD_INPUT;
    }
    if (!rc && len == -2)
        return snprintf(err, cap, "%s: a NUL byte in the table", path), KVR_LOOKUP_BAD_INPUT;
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
        rc = kvr_lookup_from_rows(s.rows, s.n, out, err, cap);
        if (rc) {
            char inner[512];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, cap, "%s: %s", path, inner);
        }
    }
    staging_free(&s);
    return rc;
}
