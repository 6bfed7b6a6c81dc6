/* KVR-P: the partition for a context length between the rows of a lookup table. Linear in
 * chunk fractions (the paper's method, and exactly what the kvr_lookup deployment library
 * does), or a monotone cubic per chunk fraction (GSL's Steffen spline, which needs three rows;
 * with two it falls back to linear). Both round with kvr_lookup_round. */
#pragma once

#include <stdbool.h>

#include "kvr_lookup.h"
#include "kvr_store.h"

enum kvr_interp { KVR_INTERP_LINEAR, KVR_INTERP_STEFFEN };
int kvr_interp_from_name(const char *name); /* -1 when unknown */

/* rows: one key, sorted by ctx (as kvr_store_list_plans returns them). */
enum kvr_status kvr_interp_partition(const struct kvr_plan_row *rows, size_t n, uint64_t ctx,
                                     enum kvr_interp how, bool clamp, struct kvr_lookup_answer *a);
