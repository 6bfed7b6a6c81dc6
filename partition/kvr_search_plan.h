/* A whole KV-Runahead plan at cluster scale: the partition search (hier) over the mappings of
 * chain positions to GPUs, and the best plan on fewer GPUs.
 *
 * Mappings searched: contiguous per node (the chain fills a node before it crosses to the
 * next, so it crosses the slow inter-node links the fewest times, nodes - 1), in the four
 * orders {nodes ascending, descending} x {GPUs inside a node ascending, descending}. Only the
 * links kvr sends on matter (the chain's hops i -> i + 1; with the direct hand-off every
 * i -> j, i < j), so mappings whose links have the same bandwidth, latency and noise are one
 * candidate: on a uniform node or a uniform
 * hierarchical machine that is one search; per-link overrides (a slow or one-way link) or
 * noise on chosen links make the orders differ (which hop carries how much KV over which
 * link). Orders that interleave nodes add slow hops and are not searched. With p below the
 * topology's size, every window of p consecutive positions of each order that spans the fewest
 * nodes is a candidate too (on 2 x 8 with p = 12: 8 + 4 GPUs, 7 + 5, ..., 4 + 8), since where
 * the chain crosses matters: hop i carries the KV of the prefix [0, S_i), so an early crossing
 * sends less over the slow link (tests/test_search_scale.c checks the choice against every
 * node sequence of a small machine).
 *
 * Fewer GPUs: with u the ranks holding more than one grain, hier on p' in {u, u + 1, p / 2,
 * p / 4, ..., 1} (p' < p) GPUs, the chain's last p' positions of the best mapping (the ranks doing
 * the work); the best is kept when it is within 0.5% of the p-GPU plan or faster. */
#pragma once

#include "kvr_search.h"
#include "kvr_store.h"

struct kvr_plan_search {
    struct kvr_search_result best; /* on all p ranks */
    int map[KVR_MAX_GPUS];         /* chain position -> GPU of the machine as opened */
    int n_mappings;                /* distinct mappings searched */
    int n_searches;                /* hier runs, the fewer-GPU ones included */
    int fewer_p;                   /* 0: no plan on fewer GPUs is as fast */
    struct kvr_search_result fewer;
    int fewer_map[KVR_MAX_GPUS];
    uint64_t fewer_evals; /* evaluations of the fewer-GPU searches (their own objectives) */
};

#define KVR_MAX_MAPPINGS    256   /* candidates: 4 orders x at most KVR_MAX_GPUS windows */
#define KVR_FEWER_TOLERANCE 0.005 /* "as fast": within 0.5% */

/* Leaves obj on the best mapping. */
enum kvr_status kvr_search_plan(struct kvr_objective *obj, uint64_t ctx,
                                const struct kvr_search_opts *o, struct kvr_plan_search *out);

/* "0;1;2;3" for the first n entries of map, and back (n entries, each < n_total). */
void kvr_mapping_format(const int *map, int n, char *buf, size_t cap);
enum kvr_status kvr_mapping_parse(const char *text, int n, int n_total, int *map);

/* A plan row's partition, granularity, prediction, evaluations, mapping (identity: not
 * recorded) and fewer-GPU plan from a plan search; the key fields are the caller's. */
void kvr_plan_row_set_search(struct kvr_plan_row *r, const struct kvr_plan_search *ps);

/* The grid a search of `key` (its scheme, method, p, t and ctx) at granularity g records: g over
 * the row's p / t chunks (1 when ctx < chunks * g), 1 for the even split and Nelder-Mead (exact
 * tokens, one-token rounding), 0 (any) for a scheme without a searched partition. */
uint64_t kvr_plan_row_grain(const struct kvr_plan_row *key, uint64_t g);
/* KVR_ERR_INPUT naming the row and both grids when a row present in a table was searched on
 * another grid than a search of it at granularity g (`where` names the setting) would record:
 * serving it would ignore the asked granularity. */
enum kvr_status kvr_plan_row_check_grain(const struct kvr_plan_row *row, uint64_t stored_g,
                                         uint64_t g, const char *where);
