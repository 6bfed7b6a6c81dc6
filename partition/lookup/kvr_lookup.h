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
 * (g = 1 when ctx < p * g), kept strictly increasing, every chunk non-empty, the last chunk
 * taking what is left so the chunks sum exactly to ctx. */
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
/* Format 2 CSV: this header line, then one row per line (RFC 4180; CRLF or LF). The lists
 * partition_tokens and mapping are ';'-joined integers; mapping[i] is the GPU of chunk i. */
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

/* One table row: the key, the context length and its partition (p entries). */
struct kvr_lookup_row {
    const char *model, *machine, *scheme, *method;
    int p;
    uint64_t granularity_tokens, ctx_tokens;
    double predicted_ttft_s;
    const uint64_t *partition_tokens;
    /* format 2: the content hashes of the model and machine definitions (NULL in format 1) */
    const char *model_hash, *machine_hash;
};

struct kvr_lookup_query {
    const char *model, *machine; /* required */
    const char *scheme, *method; /* NULL: "kvr" and "hier" */
    int p;
    uint64_t ctx_tokens;
    int clamp; /* nonzero: outside the rows, use the nearest end row's fractions */
    /* NULL: any; a table holding rows of two definitions under the names needs them */
    const char *model_hash, *machine_hash;
};

struct kvr_lookup_answer {
    uint64_t tokens[KVR_LOOKUP_MAX_P];
    int p;
    int exact;               /* 1: a stored row; 0: interpolated or clamped */
    int clamped;             /* 1: ctx was outside the rows */
    uint64_t lo_ctx, hi_ctx; /* the neighbours used (equal for exact and clamped) */
    double predicted_ttft_s; /* stored for exact rows; interpolated linearly otherwise */
};

struct kvr_lookup; /* a loaded table */

/* Loads a CSV export (format 1 or 2). Messages go to err (cap bytes) and name the file and line.
 * A format 2 row this library cannot serve (tp_degree > 1: a hybrid layout; or a mapping other
 * than chunk i on GPU i) does not stop the load: its key is kept aside, a query of a key with a
 * mapped row is refused (KVR_LOOKUP_BAD_INPUT, naming the row's file:line), and a key whose rows
 * are all layouts answers KVR_LOOKUP_NOT_FOUND saying so. */
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
