/* Schemes as descriptors: one row per scheme in kvr_scheme_list.h (name, figure label,
 * simulator entry, executor entry or none, options, help), and the partition sources a scheme
 * that takes any partition can draw from. Everything that names a scheme reads these tables:
 * the simulator and the executor dispatch through them, sweeps, validation and plots take
 * their names and labels, and every --help and error list is printed from them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kvr_status.h"

/* Options of a scheme (the `options` column). */
enum {
    KVR_SO_EVEN = 0,           /* an even split, always */
    KVR_SO_ONE_GPU = 1 << 0,   /* p = 1 */
    KVR_SO_PARTITION = 1 << 1, /* any partition (--partition, the partition sources) */
    KVR_SO_BALANCED = 1 << 2,  /* without one, kvr sim takes the balanced closed form */
    KVR_SO_SEARCHED = 1 << 3,  /* the partition search and its lookup tables optimise it */
    KVR_SO_ZIGZAG = 1 << 4,    /* 2p zig-zag chunks: ctx >= 2p */
    KVR_SO_SHARDED = 1 << 5,   /* weights sharded over the p ranks */
    KVR_SO_FORWARD = 1 << 6,   /* the KV hand-off mode of a chain (--kv-forward) */
    KVR_SO_LAYOUT = 1 << 7,    /* runs over p/t stages of TP groups (--tp; sim/kvr_layout.h) */
};

/* How a chain hands the KV cache on (schemes with KVR_SO_FORWARD; the plan's kv_forward):
 *   whole     the paper's store-and-forward: rank i sends [0, S_i) once [0, S_{i-1}) arrived;
 *   streamed  rank i forwards each upstream rank's chunk of the layer as it arrives and sends
 *             its own as soon as computed (layer 0: its own first; later layers: the
 *             upstream pieces first, then its own);
 *   direct    rank i sends its own chunk of each layer to every later rank (nearest first).
 * The receiving side assembles the same cache layout, in place, in every mode. */
enum kvr_kv_forward { KVR_FWD_WHOLE, KVR_FWD_STREAMED, KVR_FWD_DIRECT, KVR_N_FWD };
const char *kvr_kv_forward_name(enum kvr_kv_forward f); /* "whole", "streamed", "direct" */
int kvr_kv_forward_from_name(const char *name);         /* -1 when unknown */
/* "whole, streamed, direct" for help and error messages. */
void kvr_kv_forward_list_text(char *buf, size_t cap);

enum kvr_scheme {
#define KVR_SCHEME(id, name, label, sim, exec, options, help) KVR_SCHEME_##id,
#include "kvr_scheme_list.h"
#undef KVR_SCHEME
    KVR_N_SCHEMES
};

struct kvr_scheme_desc {
    enum kvr_scheme id;
    const char *name, *label;
    bool executes; /* has an executor entry */
    unsigned options;
    const char *help;
};

/* The row of s (NULL when s is out of range); by name (NULL when unknown). */
const struct kvr_scheme_desc *kvr_scheme_get(enum kvr_scheme s);
const struct kvr_scheme_desc *kvr_scheme_find(const char *name);
const char *kvr_scheme_name(enum kvr_scheme s);
int kvr_scheme_from_name(const char *name); /* -1 when unknown */
bool kvr_scheme_executes(enum kvr_scheme s);
/* KVR_OK when scheme s is known and mode f is one it runs (whole for every scheme, the
 * others for chains with KVR_SO_FORWARD); else KVR_ERR_INPUT naming both. The one check of
 * the plan, the simulator and the ranks. */
enum kvr_status kvr_scheme_check_forward(enum kvr_scheme s, enum kvr_kv_forward f);

/* Where the partition of a scheme that takes any partition comes from. */
enum kvr_part_source {
    KVR_PART_EVEN,     /* even split */
    KVR_PART_BALANCED, /* the closed form balancing linear + attention compute */
    KVR_PART_SEARCHED, /* the lookup table's searched row (KVR-S) */
    KVR_PART_INTERP,   /* interpolated from the table's other contexts (KVR-P) */
    KVR_PART_GIVEN,    /* --partition */
    KVR_N_PART_SOURCES
};

struct kvr_part_source_desc {
    enum kvr_part_source id;
    const char *name;     /* "even", "balanced", "searched", "interpolated", "given" */
    const char *suffix;   /* of a plan name: kvr-even, kvr-balanced, kvr-s, kvr-p (NULL: none) */
    const char *label;    /* of a series: KVR-E, KVR-balanced, KVR-S, KVR-P ("": the scheme's) */
    const char *sweep;    /* a sweep point's method column: even, balanced, hier, interp */
    const char *measured; /* a measurement's method column: kvr-e, kvr-s, kvr-p, given (NULL:
                             the executor never runs it) */
    bool needs_table;     /* read from a lookup table (searched, interpolated) */
};

const struct kvr_part_source_desc *kvr_part_source_get(enum kvr_part_source s);
/* The source a measurement's method column names (given:... counts as given); -1 if none. */
int kvr_part_source_from_measured(const char *method);

/* A plan name: a scheme's name, or NAME-SUFFIX for a scheme that takes any partition
 * (kvr-even, kvr-balanced, kvr-s, kvr-p; the table sources only where the search optimises
 * the scheme). *source is -1 for a bare name. Returns false when the name is no plan name. */
bool kvr_plan_name_parse(const char *name, enum kvr_scheme *scheme, int *source);
/* Writes the plan name and the series label of (scheme, source); source -1: the bare scheme. */
void kvr_plan_name(enum kvr_scheme s, int source, char *buf, size_t cap);
void kvr_plan_label(enum kvr_scheme s, int source, char *buf, size_t cap);
/* The plan names of a sweep: every scheme without a partition, then NAME-SUFFIX for each
 * source it can take but `given`, in table order (the order of the series in figures).
 * Returns how many; fills at most cap. */
int kvr_plan_series(enum kvr_scheme *schemes, int *sources, int cap);

/* Which names to list (kvr_scheme_list_text). */
enum kvr_scheme_filter {
    KVR_LIST_SCHEMES,     /* every scheme */
    KVR_LIST_EXECUTES,    /* those with an executor entry */
    KVR_LIST_PARTITION,   /* those that take any partition */
    KVR_LIST_SEARCHED,    /* those the partition search optimises */
    KVR_LIST_SIM,         /* every scheme, and NAME-even / NAME-balanced where allowed */
    KVR_LIST_SERIES,      /* kvr_plan_series' names */
    KVR_LIST_LAYOUT,      /* those with a hybrid layout (KVR_SO_LAYOUT) */
    KVR_LIST_EXEC_LAYOUT, /* those with a hybrid layout that the executor runs */
};
/* "single, tsp, ..." for help and error messages. */
void kvr_scheme_list_text(enum kvr_scheme_filter which, char *buf, size_t cap);
