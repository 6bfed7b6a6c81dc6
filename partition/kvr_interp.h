/* KVR-P: the partition for a context length between the rows of a lookup table. Linear in
 * chunk fractions (the paper's method, and exactly what the kvr_lookup deployment library
 * does), or a monotone cubic per chunk fraction (GSL's Steffen spline, which needs three rows;
 * with two it falls back to linear). Both round with kvr_lookup_round. */
#pragma once

#include <stdbool.h>

#include "kvr_lookup.h"
#include "kvr_store.h"

enum kvr_interp {
    KVR_INTERP_LINEAR,
    KVR_INTERP_STEFFEN,
    KVR_INTERP_BALANCED,   /* the balanced closed form plus the neighbours' correction */
    KVR_INTERP_BOTTLENECK, /* hier's greedy at the neighbours' bottleneck ratio T / T* */
};
int kvr_interp_from_name(const char *name);       /* -1 when unknown */
const char *kvr_interp_name(enum kvr_interp how); /* "?" when out of range */

/* rows: one key, sorted by ctx (as kvr_store_list_plans returns them). */
enum kvr_status kvr_interp_partition(const struct kvr_plan_row *rows, size_t n, uint64_t ctx,
                                     enum kvr_interp how, bool clamp, struct kvr_lookup_answer *a);

/* The same with the model and machine, which the balanced and bottleneck representations need
 * (linear and steffen ignore them). Balanced: cumulative fractions F_i = B_i(ctx) + d_i, B the
 * closed-form balanced split, d interpolated linearly between the neighbours' F - B. Bottleneck:
 * each neighbour's bottleneck T over the smallest feasible one T* at its ctx, interpolated
 * linearly; the answer is hier's greedy partition at ctx for r * T*(ctx): on the grid, every
 * rank within the bottleneck, smooth in ctx as p grows; h as opened, the lower neighbour's
 * mapping applied. Outside the rows: an error, or with
 * clamp the end row's fractions, as kvr_interp_partition. */
enum kvr_status kvr_interp_partition_model(const struct kvr_plan_row *rows, size_t n, uint64_t ctx,
                                           enum kvr_interp how, bool clamp,
                                           const struct kvr_model *m, const struct kvr_machine *h,
                                           struct kvr_lookup_answer *a);
