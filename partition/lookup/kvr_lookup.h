/* kvr_lookup: the deployment side of kvrun's partition tables. Dependency-free C (libc only):
 * it loads a table that `kvr export --format csv` wrote (or the rows that `--format c-header`
 * embeds) and returns the KV-Runahead partition for any context length, rounded exactly as
 * `kvr lookup --interp linear` rounds it.
 *
 *   exact row for ctx           -> its partition
 *   ctx between two rows        -> chunk fractions interpolated linearly (KVR-P), then rounded
 *   ctx outside the rows        -> error, or the nearest end row's fractions with clamp
 *
 * Rounding: cumulative boundaries round to the nearest multiple of the table's granularity g
 * (g = 1 when ctx < n * g, n the chunks), kept strictly increasing, every chunk non-empty, the
 * last chunk taking what is left so the chunks sum exactly to ctx.
 *
 * Layouts (library version 3): a row of tensor-parallel degree t has n = p / t chunks, one per
 * chain stage; stage i runs on the GPUs mapping[i t .. (i + 1) t). t is part of a row's key: a
 * query names it (0: t = 1) and sees only the rows of that t. A row's mapping (p distinct GPU
 * ids; NULL: the identity) may change from one context to the next: an answer takes the mapping
 * of its exact row, of the end row when clamped, and of the lower neighbour when interpolated
 * (the neighbours' chunk fractions are interpolated whatever their GPUs), as `kvr lookup` and
 * the Python package do. */
#ifndef KVR_LOOKUP_H
#define KVR_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The newest table format this library reads; it reads format 1 too. */
#define KVR_LOOKUP_FORMAT_VERSION 2
#define KVR_LOOKUP_MAX_P          64
/* The longest context a query may name: kvr's cap on --ctx (4 Mi tokens); the Python package's
 * MAX_CTX. A query of ctx 0 or above it is KVR_LOOKUP_BAD_INPUT, clamp or not. */
#define KVR_LOOKUP_MAX_CTX 4194304u
/* The library's major version (its soname): 3 added the layout fields at the ends of the row,
 * query and answer structs (an ABI change: code that names fields keeps compiling, but must be
 * rebuilt against this header). */
#define KVR_LOOKUP_VERSION_MAJOR 3
/* Format 2 CSV: this header line, then one row per line (RFC 4180; CRLF or LF). The lists
 * partition_tokens (p / t chunks) and mapping (p GPUs) are ';'-joined integers; mapping[r] is
 * the GPU of rank r, which belongs to stage (chunk) r / t. */
#define KVR_LOOKUP_CSV2_HEADER                                                                     \
    "format_version,model,model_hash,machine,machine_hash,p,tp_degree,scheme,method,objective,"    \
    "objective_trials,granularity_tokens,ctx_tokens,predicted_ttft_s,partition_tokens,mapping"

enum kvr_lookup_rc {
    KVR_LOOKUP_OK = 0,
    KVR_LOOKUP_NOT_FOUND,    /* no rows for the key */
    KVR_LOOKUP_OUT_OF_RANGE, /* ctx outside the rows and no clamp */
    KVR_LOOKUP_BAD_INPUT,    /* malformed file or argument */
    KVR_LOOKUP_IO,           /* file missing or unreadable */
    KVR_LOOKUP_NOMEM,
};

/* One table row: the key, the context length and its partition (p / t entries). */
struct kvr_lookup_row {
    const char *model, *machine, *scheme, *method;
    int p;
    uint64_t granularity_tokens, ctx_tokens;
    double predicted_ttft_s;
    const uint64_t *partition_tokens;
    /* format 2: the content hashes of the model and machine definitions (NULL in format 1) */
    const char *model_hash, *machine_hash;
    /* version 3: the layout. t = tp_degree (0 or 1: t = 1) divides p; mapping: p distinct GPU
     * ids >= 0 (NULL: the identity), chunk i on GPUs mapping[i t .. (i + 1) t) */
    int tp_degree;
    const int *mapping;
};

struct kvr_lookup_query {
    const char *model, *machine; /* required */
    const char *scheme, *method; /* NULL: "kvr" and "hier" */
    int p;
    uint64_t ctx_tokens;
    int clamp; /* nonzero: outside the rows, use the nearest end row's fractions */
    /* NULL: any; a table holding rows of two definitions under the names needs them */
    const char *model_hash, *machine_hash;
    int tp_degree; /* version 3: the rows' layout t (0: 1); part of the key */
};

struct kvr_lookup_answer {
    uint64_t tokens[KVR_LOOKUP_MAX_P]; /* n_chunks entries */
    int p;                             /* GPUs (the query's p) */
    int exact;                         /* 1: a stored row; 0: interpolated or clamped */
    int clamped;                       /* 1: ctx was outside the rows */
    uint64_t lo_ctx, hi_ctx;           /* the neighbours used (equal for exact and clamped) */
    /* stored for exact rows; between rows the linear interpolation of the neighbours' stored
     * times (an estimate: kvr lookup simulates the interpolated partition); NaN when clamped */
    double predicted_ttft_s;
    /* version 3: the layout; chunk i runs on GPUs mapping[i tp_degree .. (i + 1) tp_degree) */
    int tp_degree, n_chunks;       /* t >= 1, and p / t */
    int mapping[KVR_LOOKUP_MAX_P]; /* p GPU ids: the exact, end or lower neighbour row's */
};

struct kvr_lookup; /* a loaded table */

/* Loads a CSV export (format 1 or 2; format 2 rows of any tp_degree and mapping). Messages go
 * to err (cap bytes) and name the file and line. Rows are UTF-8 text (as the Python package reads
 * them); format 1's first line is exactly its magic and "1". A query of a t the key has no rows of
 * answers KVR_LOOKUP_NOT_FOUND naming the t the table has. */
int kvr_lookup_load_csv(const char *path, struct kvr_lookup **out, char *err, size_t cap);
/* Copies n rows (e.g. from a c-header export) into a table. */
int kvr_lookup_from_rows(const struct kvr_lookup_row *rows, size_t n, struct kvr_lookup **out,
                         char *err, size_t cap);
void kvr_lookup_free(struct kvr_lookup *t);           /* accepts NULL */
size_t kvr_lookup_n_rows(const struct kvr_lookup *t); /* the rows it serves */

int kvr_lookup_partition(const struct kvr_lookup *t, const struct kvr_lookup_query *q,
                         struct kvr_lookup_answer *a, char *err, size_t cap);

const char *kvr_lookup_rc_name(int rc);

#ifdef __cplusplus
}
#endif
#endif
