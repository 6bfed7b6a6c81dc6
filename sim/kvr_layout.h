/* Hybrid layouts: a plan's p GPUs as p / t stages, each a Megatron tensor-parallel group of t
 * GPUs (heads, KV heads and MLP columns split as model/kvr_tp.h shards them; two all-reduces
 * per layer, one for a parallel block; with sequence parallelism a reduce-scatter and an
 * all-gather instead of each, the same ring bytes), with the scheme (kvr's chain, tsp's
 * all-gather, ring's passes) run between the stages shard by shard: shard j of a stage
 * exchanges its heads' KV with shard j of the other stages, so t chains (all-gathers, rings) run
 * side by side. t = 1 is the plain scheme (the same code); t = p is Megatron TP.
 *
 * Ranks (the simulator's positions) are roles: rank r = s * t + j is shard j of stage s. Which
 * GPU a role runs on is the plan's mapping, applied as everywhere else in kvrun by seeing the
 * machine from the positions (kvr_machine_permute): block, the identity (a stage on
 * consecutive GPUs: TP inside a node), strided (role s * t + j on GPU j * p/t + s: the chain
 * on consecutive GPUs), or any permutation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kvr_sim.h"

/* t of a plan (1 without a layout) and its stages (the chunks of its partition). */
int kvr_plan_tp(const struct kvr_plan *plan);
int kvr_plan_stages(const struct kvr_plan *plan);
/* Whether scheme s has a layout with t > 1 (KVR_SO_LAYOUT in the scheme table). */
bool kvr_layout_scheme_ok(enum kvr_scheme s);
/* Checks t on p and the model: t divides p (the sim's own rule), and kvr_tp_check's Megatron
 * rule (t divides the heads, and divides the KV heads or is a multiple of them). `what` names
 * the option or field that gave t. */
enum kvr_status kvr_layout_check_tp(const struct kvr_model *m, int p, int t, const char *what);
/* The whole layout of a plan with tp >= 1 (scheme, t, --sp only with t > 1). */
enum kvr_status kvr_layout_check(const struct kvr_model *m, const struct kvr_plan *plan);

/* The named mappings of roles to GPUs. */
enum kvr_map { KVR_MAP_BLOCK, KVR_MAP_STRIDED, KVR_N_MAPS };
const char *kvr_map_name(enum kvr_map map);
int kvr_map_from_name(const char *name); /* -1 when unknown */
/* The role -> GPU permutation of a named mapping for p GPUs in stages of t, completed over the
 * whole topology of n_total GPUs (the unused GPUs after, in order). */
void kvr_layout_map(enum kvr_map map, int p, int t, int n_total, int *out);
/* Whether p consecutive GPUs from GPU off fit the topology and span the fewest nodes a chain
 * of p can (the windows the mapping searches try on fewer GPUs than the topology). */
bool kvr_map_window_ok(const struct kvr_machine *h, int p, int off);
/* Which named mapping the first p entries of map are (-1: none). */
int kvr_layout_map_kind(const int *map, int p, int t);
