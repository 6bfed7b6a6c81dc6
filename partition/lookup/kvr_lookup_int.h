/* kvr_lookup's internals: the interpolation and rounding that kvrun's own partition layer
 * (partition/: the search, the objective, kvr lookup) shares with the deployment library, so
 * both round the same way. Not installed: deployments see kvr_lookup.h only. */
#ifndef KVR_LOOKUP_INT_H
#define KVR_LOOKUP_INT_H

#include "kvr_lookup.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The interpolation itself, over rows of one key (one t) sorted by ctx (kvr lookup shares it,
 * with its rows staged: one entry per chunk, t = 1). */
int kvr_lookup_solve(const struct kvr_lookup_row *const *rows, size_t n, uint64_t ctx, int clamp,
                     struct kvr_lookup_answer *a, char *err, size_t cap);

/* Checks a row (p in range, t dividing p, a mapping of p distinct GPUs, granularity >= 1, p / t
 * chunks non-empty and summing to ctx); where prefixes the message. */
int kvr_lookup_check_row(const struct kvr_lookup_row *r, char *err, size_t cap, const char *where);

/* A row's t: tp_degree, 0 read as 1. */
int kvr_lookup_row_tp(const struct kvr_lookup_row *r);

/* The grain boundaries round to: granularity, or 1 when ctx < p * granularity. */
uint64_t kvr_lookup_grain(int p, uint64_t ctx, uint64_t granularity);

/* Chunk fractions of a partition, and the rounding of fractions back to tokens. */
void kvr_lookup_fractions(const uint64_t *tokens, int p, double *frac);
void kvr_lookup_round(const double *frac, int p, uint64_t ctx, uint64_t granularity,
                      uint64_t *tokens);

#ifdef __cplusplus
}
#endif
#endif
