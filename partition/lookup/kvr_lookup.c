/* kvr_lookup: see kvr_lookup.h. libc only, so deployments can vendor these files (with
 * kvr_lookup_int.h). */
#include "kvr_lookup_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE 4096

struct kvr_lookup {
    struct kvr_lookup_row *rows;
    size_t n;
    char *strings;    /* one block holding every key string */
    uint64_t *tokens; /* one block holding every partition */
    int *mappings;    /* one block holding every mapping that is not NULL */
};

__attribute__((format(printf, 4, 5))) static int fail(int rc, char *err, size_t cap,
                                                      const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

const char *kvr_lookup_rc_name(int rc)
{
    static const char *const names[] = {"ok",        "not found", "out of range",
                                        "bad input", "i/o error", "out of memory"};
    return rc >= 0 && rc <= KVR_LOOKUP_NOMEM ? names[rc] : "?";
}

void kvr_lookup_fractions(const uint64_t *tokens, int p, double *frac)
{
    double sum = 0;
    for (int i = 0; i < p; i++) sum += (double)tokens[i];
    for (int i = 0; i < p; i++) frac[i] = sum > 0 ? (double)tokens[i] / sum : 1.0 / p;
}

uint64_t kvr_lookup_grain(int p, uint64_t ctx, uint64_t granularity)
{
    /* ctx / p >= g, not ctx >= p g: a granularity of 2^63 made p g wrap to 0 (grain 2^63) */
    return granularity >= 1 && p >= 1 && ctx / (uint64_t)p >= granularity ? granularity : 1;
}

void kvr_lookup_round(const double *frac, int p, uint64_t ctx, uint64_t granularity,
                      uint64_t *tokens)
{
    uint64_t g = kvr_lookup_grain(p, ctx, granularity);
    double cum = 0;
    uint64_t prev = 0;
    for (int i = 0; i + 1 < p; i++) {
        cum += frac[i];
        double want = cum * (double)ctx / (double)g;
        uint64_t b = want > 0 ? (uint64_t)llround(want) * g : 0;
        uint64_t lo = prev + g, hi = (ctx - (uint64_t)(p - 1 - i) * g) / g * g;
        b = b < lo ? lo : b > hi ? hi : b; /* strictly increasing, room for the rest */
        tokens[i] = b - prev;
        prev = b;
    }
    tokens[p - 1] = ctx - prev;
}

/* The end row's (or two neighbours') fractions rounded to ctx. */
static void from_rows(const struct kvr_lookup_row *lo, const struct kvr_lookup_row *hi,
                      uint64_t ctx, struct kvr_lookup_answer *a)
{
    double f_lo[KVR_LOOKUP_MAX_P], f_hi[KVR_LOOKUP_MAX_P], f[KVR_LOOKUP_MAX_P];
    int p = lo->p / kvr_lookup_row_tp(lo); /* the chunks: one per stage */
    double w = hi->ctx_tokens == lo->ctx_tokens
                   ? 0
                   : (double)(ctx - lo->ctx_tokens) / (double)(hi->ctx_tokens - lo->ctx_tokens);
    kvr_lookup_fractions(lo->partition_tokens, p, f_lo);
    kvr_lookup_fractions(hi->partition_tokens, p, f_hi);
    for (int i = 0; i < p; i++) f[i] = f_lo[i] + w * (f_hi[i] - f_lo[i]);
    kvr_lookup_round(f, p, ctx, lo->granularity_tokens, a->tokens);
    a->lo_ctx = lo->ctx_tokens;
    a->hi_ctx = hi->ctx_tokens;
    a->predicted_ttft_s = lo->predicted_ttft_s + w * (hi->predicted_ttft_s - lo->predicted_ttft_s);
}

int kvr_lookup_row_tp(const struct kvr_lookup_row *r)
{
    return r->tp_degree > 1 ? r->tp_degree : 1;
}

/* The answer's GPUs: the row's mapping, or the identity. */
static void set_mapping(const struct kvr_lookup_row *r, struct kvr_lookup_answer *a)
{
    for (int i = 0; i < a->p; i++) a->mapping[i] = r->mapping ? r->mapping[i] : i;
}

int kvr_lookup_solve(const struct kvr_lookup_row *const *rows, size_t n, uint64_t ctx, int clamp,
                     struct kvr_lookup_answer *a, char *err, size_t cap)
{
    memset(a, 0, sizeof *a);
    if (n == 0) return fail(KVR_LOOKUP_NOT_FOUND, err, cap, "no rows for this key");
    a->p = rows[0]->p, a->tp_degree = kvr_lookup_row_tp(rows[0]);
    a->n_chunks = a->p / a->tp_degree;
    if (ctx < (uint64_t)a->n_chunks)
        return fail(KVR_LOOKUP_BAD_INPUT, err, cap, "ctx %llu is smaller than the %d chunks",
                    (unsigned long long)ctx, a->n_chunks);
    size_t k = 0;
    while (k < n && rows[k]->ctx_tokens < ctx) k++;
    if (k < n && rows[k]->ctx_tokens == ctx) {
        memcpy(a->tokens, rows[k]->partition_tokens, (size_t)a->n_chunks * sizeof *a->tokens);
        a->exact = 1;
        a->lo_ctx = a->hi_ctx = ctx;
        a->predicted_ttft_s = rows[k]->predicted_ttft_s;
        set_mapping(rows[k], a);
        return KVR_LOOKUP_OK;
    }
    if (k == 0 || k == n) {
        if (!clamp)
            return fail(KVR_LOOKUP_OUT_OF_RANGE, err, cap,
                        "ctx %llu is outside the table's range [%llu, %llu] (use clamp)",
                        (unsigned long long)ctx, (unsigned long long)rows[0]->ctx_tokens,
                        (unsigned long long)rows[n - 1]->ctx_tokens);
        const struct kvr_lookup_row *end = rows[k == 0 ? 0 : n - 1];
        from_rows(end, end, ctx, a);
        a->clamped = 1;
        /* the end row's time is not this context's: no estimate rather than a wrong one */
        a->predicted_ttft_s = NAN;
        set_mapping(end, a);
        return KVR_LOOKUP_OK;
    }
    from_rows(rows[k - 1], rows[k], ctx, a); /* the lower neighbour's GPUs, as kvr lookup's */
    set_mapping(rows[k - 1], a);
    return KVR_LOOKUP_OK;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static int query_tp(const struct kvr_lookup_query *q)
{
    return q->tp_degree > 1 ? q->tp_degree : 1;
}

/* The key but t (the query's t is checked apart, so that a wrong t can say so). */
static int same_key_any_tp(const struct kvr_lookup_row *r, const struct kvr_lookup_query *q)
{
    return !strcmp(r->model, q->model) && !strcmp(r->machine, q->machine) &&
           !strcmp(r->scheme, q->scheme ? q->scheme : "kvr") &&
           !strcmp(r->method, q->method ? q->method : "hier") && r->p == q->p &&
           (!q->model_hash || !strcmp(or_empty(r->model_hash), q->model_hash)) &&
           (!q->machine_hash || !strcmp(or_empty(r->machine_hash), q->machine_hash));
}

/* Rows of two definitions under one name: the query must say which. */
static int ambiguous(const struct kvr_lookup_row *const *sel, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (strcmp(or_empty(sel[i]->model_hash), or_empty(sel[0]->model_hash)) ||
            strcmp(or_empty(sel[i]->machine_hash), or_empty(sel[0]->machine_hash)))
            return 1;
    return 0;
}

/* "no rows" for q, naming the t the key's rows have when they are of other t. */
static int not_found(const struct kvr_lookup *t, const struct kvr_lookup_query *q, char *err,
                     size_t cap)
{
    char others[256] = "";
    size_t len = 0;
    for (int tp = 1; tp <= KVR_LOOKUP_MAX_P; tp++)
        for (size_t i = 0; i < t->n; i++)
            if (kvr_lookup_row_tp(&t->rows[i]) == tp && same_key_any_tp(&t->rows[i], q)) {
                len += (size_t)snprintf(others + len, sizeof others - len, "%s%d", len ? ", " : "",
                                        tp);
                break;
            }
    if (len)
        return fail(KVR_LOOKUP_NOT_FOUND, err, cap,
                    "no rows for %s on %s, p = %d of tp_degree %d (the table has this key's rows "
                    "of tp_degree %s only: set the query's tp_degree)",
                    q->model, q->machine, q->p, query_tp(q), others);
    return fail(KVR_LOOKUP_NOT_FOUND, err, cap, "no rows for %s on %s, p = %d", q->model,
                q->machine, q->p);
}

int kvr_lookup_partition(const struct kvr_lookup *t, const struct kvr_lookup_query *q,
                         struct kvr_lookup_answer *a, char *err, size_t cap)
{
    if (!t || !q || !q->model || !q->machine || q->p < 1 || q->p > KVR_LOOKUP_MAX_P)
        return fail(KVR_LOOKUP_BAD_INPUT, err, cap, "query needs a table, model, machine, p");
    if (q->ctx_tokens < 1 || q->ctx_tokens > KVR_LOOKUP_MAX_CTX) /* as the Python package */
        return fail(KVR_LOOKUP_BAD_INPUT, err, cap,
                    "ctx %llu is outside 1..%u (kvr's cap on --ctx)",
                    (unsigned long long)q->ctx_tokens, KVR_LOOKUP_MAX_CTX);
    if (q->tp_degree < 0 || q->p % query_tp(q))
        return fail(KVR_LOOKUP_BAD_INPUT, err, cap, "query: tp_degree %d does not divide p = %d",
                    q->tp_degree, q->p);
    const struct kvr_lookup_row **sel = malloc((t->n ? t->n : 1) * sizeof *sel);
    if (!sel) return fail(KVR_LOOKUP_NOMEM, err, cap, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) /* rows are sorted by key, then ctx */
        if (same_key_any_tp(&t->rows[i], q) && kvr_lookup_row_tp(&t->rows[i]) == query_tp(q))
            sel[n++] = &t->rows[i];
    int rc = !n ? not_found(t, q, err, cap)
             : ambiguous(sel, n)
                 ? fail(KVR_LOOKUP_BAD_INPUT, err, cap,
                        "rows of more than one definition of %s on %s (p = %d): give the "
                        "model_hash and machine_hash",
                        q->model, q->machine, q->p)
                 : kvr_lookup_solve(sel, n, q->ctx_tokens, q->clamp, a, err, cap);
    free(sel);
    return rc;
}

static int cmp_rows(const void *x, const void *y)
{
    const struct kvr_lookup_row *a = x, *b = y;
    int c;
    if ((c = strcmp(a->model, b->model)) || (c = strcmp(a->machine, b->machine)) ||
        (c = strcmp(a->scheme, b->scheme)) || (c = strcmp(a->method, b->method)) ||
        (c = strcmp(or_empty(a->model_hash), or_empty(b->model_hash))) ||
        (c = strcmp(or_empty(a->machine_hash), or_empty(b->machine_hash))))
        return c;
    if (a->p != b->p) return a->p < b->p ? -1 : 1;
    int ta = kvr_lookup_row_tp(a), tb = kvr_lookup_row_tp(b);
    if (ta != tb) return ta < tb ? -1 : 1;
    return (a->ctx_tokens > b->ctx_tokens) - (a->ctx_tokens < b->ctx_tokens);
}

/* A mapping of p distinct GPU ids >= 0, or NULL (the identity). */
static int check_mapping(const struct kvr_lookup_row *r, char *err, size_t cap, const char *where)
{
    for (int i = 0; r->mapping && i < r->p; i++) {
        if (r->mapping[i] < 0)
            return fail(KVR_LOOKUP_BAD_INPUT, err, cap, "%s: mapping[%d] = %d is not a GPU id",
                        where, i, r->mapping[i]);
        for (int k = 0; k < i; k++)
            if (r->mapping[k] == r->mapping[i])
                return fail(KVR_LOOKUP_BAD_INPUT, err, cap,
                            "%s: the mapping is not %d distinct GPUs (GPU %d at %d and %d)", where,
                            r->p, r->mapping[i], k, i);
    }
    return 0;
}

/* Checks one row: chunks non-empty and summing to ctx, p and granularity in range. */
int kvr_lookup_check_row(const struct kvr_lookup_row *r, char *err, size_t cap, const char *where)
{
    if (r->p < 1 || r->p > KVR_LOOKUP_MAX_P)
        return fail(KVR_LOOKUP_BAD_INPUT, err, cap, "%s: p = %d is outside 1..%d", where, r->p,
                    KVR_LOOKUP_MAX_P);
    if (r->granularity_tokens < 1)
        return fail(KVR_LOOKUP_BAD_INPUT, err, cap, "%s: granularity must be >= 1", where);
    /* > 0, as the JSON schema says: no prefill takes no time, and kvr never writes 0 */
    if (!isfinite(r->predicted_ttft_s) || r->predicted_ttft_s <= 0)
        return fail(KVR_LOOKUP_BAD_INPUT, err, cap, "%s: TTFT %g is not a finite time > 0", where,
                    r->predicted_ttft_s);
    if (!r->model || !*r->model || !r->machine || !*r->machine || !r->scheme || !*r->scheme ||
        !r->method || !*r->method)
        return fail(KVR_LOOKUP_BAD_INPUT, err, cap,
                    "%s: model, machine, scheme, method must be set", where);
    if (r->tp_degree < 0 || r->p % kvr_lookup_row_tp(r))
        return fail(KVR_LOOKUP_BAD_INPUT, err, cap, "%s: tp_degree %d does not divide p = %d",
                    where, r->tp_degree, r->p);
    if (check_mapping(r, err, cap, where)) return KVR_LOOKUP_BAD_INPUT;
    uint64_t sum = 0;
    for (int i = 0; i < r->p / kvr_lookup_row_tp(r); i++) {
        if (r->partition_tokens[i] == 0)
            return fail(KVR_LOOKUP_BAD_INPUT, err, cap, "%s: chunk %d is empty", where, i);
        /* a sum past 2^64 would wrap, and 2^64 - 1 + 513 read as 512 */
        if (r->partition_tokens[i] > UINT64_MAX - sum)
            return fail(KVR_LOOKUP_BAD_INPUT, err, cap,
                        "%s: partition sums past 2^64 - 1 (chunk %d: %llu), not to ctx %llu", where,
                        i, (unsigned long long)r->partition_tokens[i],
                        (unsigned long long)r->ctx_tokens);
        sum += r->partition_tokens[i];
    }
    if (sum != r->ctx_tokens)
        return fail(KVR_LOOKUP_BAD_INPUT, err, cap, "%s: partition sums to %llu, not ctx %llu",
                    where, (unsigned long long)sum, (unsigned long long)r->ctx_tokens);
    return KVR_LOOKUP_OK;
}

int kvr_lookup_from_rows(const struct kvr_lookup_row *rows, size_t n, struct kvr_lookup **out,
                         char *err, size_t cap)
{
    size_t n_chars = 0, n_tokens = 0, n_map = 0;
    for (size_t i = 0; i < n; i++) {
        char where[64];
        snprintf(where, sizeof where, "row %zu", i);
        int rc = kvr_lookup_check_row(&rows[i], err, cap, where);
        if (rc) return rc;
        n_chars += strlen(rows[i].model) + strlen(rows[i].machine) + strlen(rows[i].scheme) +
                   strlen(rows[i].method) + strlen(or_empty(rows[i].model_hash)) +
                   strlen(or_empty(rows[i].machine_hash)) + 6;
        n_tokens += (size_t)(rows[i].p / kvr_lookup_row_tp(&rows[i]));
        n_map += rows[i].mapping ? (size_t)rows[i].p : 0;
    }
    struct kvr_lookup *t = calloc(1, sizeof *t);
    if (t) {
        t->rows = calloc(n ? n : 1, sizeof *t->rows);
        t->strings = malloc(n_chars + 1);
        t->tokens = malloc((n_tokens ? n_tokens : 1) * sizeof *t->tokens);
        t->mappings = malloc((n_map ? n_map : 1) * sizeof *t->mappings);
    }
    if (!t || !t->rows || !t->strings || !t->tokens || !t->mappings) {
        kvr_lookup_free(t);
        return fail(KVR_LOOKUP_NOMEM, err, cap, "out of memory for %zu rows", n);
    }
    char *s = t->strings;
    uint64_t *tok = t->tokens;
    int *map = t->mappings;
    for (size_t i = 0; i < n; i++) {
        struct kvr_lookup_row *r = &t->rows[i];
        *r = rows[i];
        const char **fields[] = {&r->model,  &r->machine,    &r->scheme,
                                 &r->method, &r->model_hash, &r->machine_hash};
        for (int f = 0; f < 6; f++) {
            if (!*fields[f]) continue; /* format 1: no hashes */
            size_t len = strlen(*fields[f]) + 1;
            memcpy(s, *fields[f], len);
            *fields[f] = s;
            s += len;
        }
        int n_chunks = r->p / kvr_lookup_row_tp(r);
        memcpy(tok, rows[i].partition_tokens, (size_t)n_chunks * sizeof *tok);
        r->partition_tokens = tok;
        tok += n_chunks;
        if (r->mapping) {
            memcpy(map, rows[i].mapping, (size_t)r->p * sizeof *map);
            r->mapping = map;
            map += r->p;
        }
    }
    t->n = n;
    qsort(t->rows, n, sizeof *t->rows, cmp_rows);
    for (size_t i = 1; i < n; i++) /* one answer per key: exact and interpolated agree */
        if (!cmp_rows(&t->rows[i - 1], &t->rows[i])) {
            const struct kvr_lookup_row *r = &t->rows[i];
            fail(KVR_LOOKUP_BAD_INPUT, err, cap,
                 "two rows for model %s, machine %s, scheme %s, method %s, p = %d, tp_degree %d, "
                 "ctx = %llu",
                 r->model, r->machine, r->scheme, r->method, r->p, kvr_lookup_row_tp(r),
                 (unsigned long long)r->ctx_tokens);
            kvr_lookup_free(t);
            return KVR_LOOKUP_BAD_INPUT;
        }
    *out = t;
    return KVR_LOOKUP_OK;
}

void kvr_lookup_free(struct kvr_lookup *t)
{
    if (!t) return;
    free(t->rows);
    free(t->strings);
    free(t->tokens);
    free(t->mappings);
    free(t);
}

size_t kvr_lookup_n_rows(const struct kvr_lookup *t)
{
    return t ? t->n : 0;
}
