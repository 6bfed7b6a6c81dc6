/* The work behind `kvr search` (also used by the sweeps and the benchmark): the product of
 * models x machines x GPU counts x contexts, which keys are already stored, and the searches
 * themselves with batched writes. */
#pragma once

#include <stdbool.h>

#include "kvr_json.h"
#include "kvr_machine_args.h"
#include "kvr_search_plan.h"
#include "kvr_store.h"

#define KVR_SEARCH_MAX_LIST 16

struct kvr_search_args {
    const char *db, *models, *gpus, *ctx, *method, *scheme;
    const char *kv_forward; /* whole, streamed, direct, or auto: each, keeping the best */
    const char *tp;         /* hybrid layouts: a list of t, or auto (NULL: the plain scheme) */
    bool sp;                /* with tp: sequence parallelism inside the stages */
    struct kvr_machine_args mach;
    uint64_t granularity;
    const char *granularity_arg; /* as given; converted by kvr_search_args_finish */
    bool force, json, quiet, help;
};
/* Converts granularity_arg and the machine options (KVR_ERR_INPUT naming the option). */
enum kvr_status kvr_search_args_finish(struct kvr_search_args *a);
void kvr_search_args_default(struct kvr_search_args *a);

struct kvr_search_item {
    int model, machine, p;
    int tp; /* the layout's t (1: the plain scheme, one row per t) */
    uint64_t ctx;
    bool present; /* already in the database */
};

struct kvr_search_job {
    struct kvr_model models[KVR_SEARCH_MAX_LIST];
    char machine_names[KVR_SEARCH_MAX_LIST][256], machine_keys[KVR_SEARCH_MAX_LIST][512];
    /* content hashes: of each model, and of each machine at each p */
    char model_hashes[KVR_SEARCH_MAX_LIST][KVR_STORE_HASH_CAP];
    char machine_hashes[KVR_SEARCH_MAX_LIST][KVR_MAX_GPUS + 1][KVR_STORE_HASH_CAP];
    int n_models, n_machines, gpus[KVR_MAX_GPUS], n_gpus;
    enum kvr_method method;
    int kv_forward;               /* enum kvr_kv_forward, or -1: try each (auto) */
    int tps[KVR_MAX_GPUS], n_tps; /* --tp's list; n_tps 0: 1 only; tp_auto: every t allowed */
    bool tp_auto, sp;
    struct kvr_search_opts opts;
    struct kvr_objective_opts objective;
    struct kvr_machine_args mach;
    struct kvr_search_item *items;
    size_t n_items;
    struct kvr_plan_row *done;         /* rows searched by this run */
    size_t n_done, n_skipped, n_nofit; /* n_nofit: searches whose plans do not fit */
    size_t n_tp_nofit; /* --tp auto: layouts that do not fit (said, not stored, not an error) */
    size_t n_legacy_matched, n_legacy_stale; /* rows from schema 2 settled by this run */
};

/* Parses and checks everything (models, machines at every p, lists) before any I/O. */
/* --method and --scheme name a search method and a scheme the search optimises (search, and
 * the lookup and export filters, which would otherwise match no row and say only that). */
enum kvr_status kvr_search_check_names(const char *method, const char *scheme);
enum kvr_status kvr_search_job_prepare(const struct kvr_search_args *a, struct kvr_search_job *job);
enum kvr_status kvr_search_job_skip_present(struct kvr_search_job *job, struct kvr_store *store,
                                            bool force);
/* Runs the searches; with a store, writes rows in batches (each batch one transaction). */
enum kvr_status kvr_search_job_run(struct kvr_search_job *job, struct kvr_store *store,
                                   const char *argv_text, bool replace);
void kvr_search_job_free(struct kvr_search_job *job);

/* One plan row as a JSON object. */
void kvr_search_json_row(struct kvr_json *j, const struct kvr_plan_row *r);
/* The definitions a plan is for, as the export names them: model, model_hash, machine (the
 * table's key), machine_hash (kvr search's rows, kvr lookup's answers). */
void kvr_search_json_definitions(struct kvr_json *j, const char *model, const char *model_hash,
                                 const char *machine, const char *machine_hash);
/* Provenance of this process for a `run` row. */
void kvr_search_provenance(const char *argv_text, const char *device, struct kvr_provenance *p,
                           char *host, size_t host_cap);
