/* kvr_lookup's internals: the interpolation and rounding that kvrun's own partition layer
 * (partition/: the search, the objective, kvr lookup) shares with the deployment library, so
 * both round the same way. Not installed: deployments see kvr_lookup.h only. */
#ifndef KVR_LOOKUP_INT_H
#define KVR_LOOKUP_INT_H

#include "kvr_lookup.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The interpolation itself, over rows of one key sorted by ctx (kvr lookup shares it). */
int kvr_lookup_solve(const struct kvr_lookup_row *const *rows, size_t n, uint64_t ctx, int clamp,
                     struct kvr_lookup_answer *a, char *err, size_t cap);

/* Checks a row (p in range, granularity >= 1, chunks non-empty and summing to ctx); where
 * prefixes the message. */
int kvr_lookup_check_row(const struct kvr_lookup_row *r, char *err, size_t cap, const char *where);

/* Keeps the key of a row the library cannot serve (a CSV row of tp_degree t > 1, or one whose
 * chunk i does not run on GPU i) with why ("FILE:LINE: ..."): a query of that key is refused
 * with that message (a key with a mapped row is never interpolated over its other rows), and a
 * key whose rows are all layouts says so instead of "no rows". */
int kvr_lookup_hold(struct kvr_lookup *t, const struct kvr_lookup_row *key, int tp, const char *why,
                    char *err, size_t cap);

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
