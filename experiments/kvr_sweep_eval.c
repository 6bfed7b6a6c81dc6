/* One sweep point on the simulator. KVR-S partitions come from the lookup table (searched and
 * stored when missing, so sweeps and `kvr lookup` share them); KVR-P interpolates the table's
 * rows at the sweep's other contexts (leave-one-out; the bottleneck representation), clamped at
 * the ends. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_interp.h"
#include "kvr_layout_search.h"
#include "kvr_machine_args.h"
#include "kvr_search_plan.h"
#include "kvr_sweep.h"
#include "kvr_stats.h"

struct point_env {
    const struct kvr_sweep_spec *spec;
    struct kvr_store *store;
    int64_t run_id;
    const struct kvr_model *model;
    struct kvr_machine *h;
    struct kvr_machine_args ma;
    char key[512];
};

/* e->h is the caller's (one per thread: sweeps run on several). */
static enum kvr_status build_machine(struct point_env *e, const struct kvr_sweep_item *it)
{
    char p[16];
    snprintf(p, sizeof p, "%d", it->pt.p);
    e->ma = (struct kvr_machine_args){.machine = it->pt.machine,
                                      .bw = it->bw[0] ? it->bw : NULL,
                                      .noise = it->noise[0] ? it->noise : NULL,
                                      .seed = it->pt.seed,
                                      .trials = e->spec->trials};
    if (it->link[0]) e->ma.links[e->ma.n_links++] = it->link;
    enum kvr_status st = kvr_machine_args_build(&e->ma, NULL, p, e->h);
    if (!st) kvr_machine_args_key(&e->ma, e->h->name, e->key, sizeof e->key);
    return st;
}

static void row_key(const struct point_env *e, uint64_t ctx, int tp, struct kvr_plan_row *r)
{
    memset(r, 0, sizeof *r);
    r->tp = tp > 1 ? tp : 1;
    snprintf(r->model, sizeof r->model, "%s", e->model->name);
    snprintf(r->machine, sizeof r->machine, "%s", e->key);
    snprintf(r->scheme, sizeof r->scheme, "kvr");
    snprintf(r->method, sizeof r->method, "hier");
    r->p = e->h->n_gpus, r->ctx_tokens = ctx, r->granularity_tokens = e->spec->granularity;
    kvr_plan_row_set_hashes(r, e->model, e->h);
}

/* The model's and the machine's definitions, stored once each (by hash). */
static enum kvr_status put_definitions(const struct point_env *e, struct kvr_store *store,
                                       const char *machine_file, int64_t run_id)
{
    struct kvr_definition dm, dh;
    enum kvr_status st = kvr_definition_of_model(e->model, &dm);
    if (!st) st = kvr_definition_of_machine(e->h, e->key, machine_file, &dh);
    if (!st) st = kvr_store_put_definition(store, &dm, run_id);
    if (!st) st = kvr_store_put_definition(store, &dh, run_id);
    kvr_definition_free(&dm), kvr_definition_free(&dh);
    return st;
}

/* A layout's row (t > 1): the layout search over both mappings (kvr search --tp t's). */
static enum kvr_status search_layout_row(const struct kvr_sweep_spec *spec,
                                         const struct kvr_model *m, const struct kvr_machine *h,
                                         struct kvr_plan_row *r)
{
    static _Thread_local struct kvr_layout_result res;
    struct kvr_layout_opts o;
    kvr_layout_opts_default(&o);
    o.tp_only = r->tp, o.objective.trials = spec->trials;
    o.search.granularity = spec->granularity;
    enum kvr_status st = kvr_layout_search(m, h, r->ctx_tokens, &o, &res);
    return st ? st : kvr_layout_row_set(&res, h, r);
}

/* Searches the contexts in ctx[0..n) that the table lacks (of layout tp), and stores them. */
static enum kvr_status fill_table(struct point_env *e, const uint64_t *ctx, size_t n, int tp)
{
    struct kvr_objective_opts oo = {.scheme = KVR_SCHEME_KVR, .trials = e->spec->trials};
    struct kvr_search_opts so;
    kvr_search_opts_default(&so);
    so.granularity = e->spec->granularity;
    struct kvr_objective *obj = NULL;
    enum kvr_status st = KVR_OK;
    for (size_t i = 0; i < n && !st; i++) {
        struct kvr_plan_row r;
        bool present;
        uint64_t g;
        row_key(e, ctx[i], tp, &r);
        if (!(st = kvr_store_plan_grain(e->store, &r, &present, &g)) && present)
            st = kvr_plan_row_check_grain(&r, g, e->spec->granularity, "granularity");
        if (st || present) continue;
        struct kvr_plan_search res;
        if (tp <= 1 && !obj && (st = kvr_objective_open(e->model, e->h, &oo, &obj))) break;
        if ((st = put_definitions(e, e->store, e->ma.machine, e->run_id))) break;
        if (tp > 1 ? (st = search_layout_row(e->spec, e->model, e->h, &r))
                   : (st = kvr_search_plan(obj, ctx[i], &so, &res))) {
            if (st == KVR_ERR_NOFIT && n > 1) st = KVR_OK; /* KVR-P interpolates the rest */
            continue;
        }
        if (tp <= 1) kvr_plan_row_set_search(&r, &res);
        r.run_id = e->run_id;
        st = kvr_store_put_plans(e->store, &r, 1, false);
    }
    kvr_objective_free(obj);
    return st;
}

/* KVR-S: the stored row; KVR-P: interpolated from the rows at the sweep's other contexts. */
static enum kvr_status table_partition(struct point_env *e, const struct kvr_sweep_item *it,
                                       uint64_t *tokens, int *chain, int *n_chain, char mode[16])
{
    struct kvr_sweep_series x = {0};
    kvr_sweep_series_of(it->pt.series_rank, &x);
    bool interp = x.source == KVR_PART_INTERP;
    int tp = it->pt.tp;
    enum kvr_status st = interp ? fill_table(e, e->spec->ctx, e->spec->n_ctx, tp)
                                : fill_table(e, &it->pt.ctx_tokens, 1, tp);
    struct kvr_plan_row hk;
    row_key(e, 0, tp, &hk);
    struct kvr_plan_filter f = {.model = e->model->name,
                                .machine = e->key,
                                .scheme = "kvr",
                                .method = "hier",
                                .p = e->h->n_gpus,
                                .tp = tp,
                                .model_hash = hk.model_hash,
                                .machine_hash = hk.machine_hash};
    struct kvr_plan_row *rows = NULL;
    size_t n = 0, k = 0;
    if (!st) st = kvr_store_list_plans(e->store, &f, &rows, &n);
    for (size_t i = 0; i < n; i++) { /* KVR-P never sees its own context */
        bool on_axis = false;
        for (size_t c = 0; c < e->spec->n_ctx; c++)
            on_axis |= rows[i].ctx_tokens == e->spec->ctx[c];
        if (!interp || (on_axis && rows[i].ctx_tokens != it->pt.ctx_tokens)) rows[k++] = rows[i];
    }
    struct kvr_lookup_answer a;
    if (!st && interp && k == 0)
        st = kvr_error(KVR_ERR_INPUT, "KVR-P needs at least two contexts on the ctx axis");
    /* the bottleneck representation: within 1% of KVR-S up to p = 64 (partition/README.md); a
     * layout's rows interpolate their stages' fractions linearly (the bottleneck's greedy
     * models a chain of whole GPUs) */
    struct kvr_plan_row *staged = tp > 1 && k ? calloc(k, sizeof *staged) : NULL;
    if (!st && tp > 1 && k && !staged) st = kvr_error(KVR_ERR_NOMEM, "sweep: out of memory");
    for (size_t i = 0; staged && i < k; i++) staged[i] = kvr_plan_row_staged(&rows[i]);
    if (!st && tp > 1)
        st = kvr_interp_partition(staged, k, it->pt.ctx_tokens, KVR_INTERP_LINEAR, true, &a);
    else if (!st)
        st = kvr_interp_partition_model(rows, k, it->pt.ctx_tokens, KVR_INTERP_BOTTLENECK, true,
                                        e->model, e->h, &a);
    free(staged);
    if (!st) memcpy(tokens, a.tokens, (size_t)a.p * sizeof *tokens);
    for (size_t i = 0; !st && i < k; i++) /* the chain's GPUs: the (lower) neighbour's */
        if (rows[i].ctx_tokens == a.lo_ctx && rows[i].n_mapping) {
            *n_chain = rows[i].n_mapping;
            memcpy(chain, rows[i].mapping, (size_t)rows[i].n_mapping * sizeof *chain);
        }
    /* the hand-off the rows were searched for (KVR-S: its row's; KVR-P: theirs when they all
     * agree, else whole) */
    for (size_t i = 0, first = 1; !st && i < k; i++) {
        if (!interp && rows[i].ctx_tokens != it->pt.ctx_tokens) continue;
        if (first || strcmp(rows[i].kv_forward, mode))
            snprintf(mode, 16, "%s", first ? rows[i].kv_forward : "whole");
        first = 0;
    }
    free(rows);
    return st;
}

static enum kvr_status make_plan(struct point_env *e, struct kvr_sweep_item *it,
                                 struct kvr_plan *plan)
{
    struct kvr_sweep_series x;
    if (!kvr_sweep_series_of(it->pt.series_rank, &x))
        return kvr_error(KVR_ERR_INPUT, "sweep point with series rank %d: no such series",
                         it->pt.series_rank);
    *plan = (struct kvr_plan){
        .scheme = x.scheme, .p = it->pt.p, .ctx = it->pt.ctx_tokens, .tp = it->pt.tp};
    enum kvr_status st = KVR_OK;
    if (x.source == KVR_PART_BALANCED)
        kvr_plan_balanced(plan, e->model, &e->h->gpu);
    else if (x.source >= 0 && kvr_part_source_get(x.source)->needs_table) {
        int chain[KVR_MAX_GPUS], n_chain = 0, map[KVR_MAX_GPUS];
        st = table_partition(e, it, plan->tokens, chain, &n_chain, it->pt.kv_forward);
        /* the plan runs on its mapping: the machine seen from its chain positions */
        if (!st && n_chain)
            st = kvr_mapping_complete(chain, n_chain, e->h->n_nodes * e->h->gpus_per_node, map);
        struct kvr_machine *base = n_chain && !st ? malloc(sizeof *base) : NULL;
        if (!st && n_chain && !base) st = kvr_error(KVR_ERR_NOMEM, "sweep: out of memory");
        if (base) {
            *base = *e->h;
            st = kvr_machine_permute(base, map, e->h);
            free(base);
        }
    } else
        kvr_plan_even(plan);
    int f = it->pt.kv_forward[0] ? kvr_kv_forward_from_name(it->pt.kv_forward) : KVR_FWD_WHOLE;
    if (!st && f < 0)
        st = kvr_error(KVR_ERR_INPUT, "sweep point with kv_forward '%s'", it->pt.kv_forward);
    if (!st) plan->kv_forward = (enum kvr_kv_forward)f;
    return st ? st : kvr_plan_check(plan, e->h);
}

/* TTFT over the trials; the breakdown is the critical rank's (the one that ends last) of
 * trial 0. */
static enum kvr_status simulate(struct point_env *e, const struct kvr_plan *plan,
                                struct kvr_sweep_point *x)
{
    struct kvr_sim *sim = NULL;
    uint64_t trials = e->h->noise.mode == KVR_NOISE_NONE ? 1 : e->spec->trials;
    double *v = malloc(trials * sizeof *v), mean = 0;
    enum kvr_status st = v ? kvr_sim_open(e->model, e->h, &sim) : KVR_ERR_NOMEM;
    if (!v)
        st = kvr_error(KVR_ERR_NOMEM, "sweep: out of memory for %llu trials",
                       (unsigned long long)trials);
    for (uint64_t t = 0; t < trials && !st; t++) {
        struct kvr_sim_result r;
        if (!(st = kvr_sim_draw_noise(sim, t))) st = kvr_sim_run(sim, plan, &r, NULL);
        if (st) break;
        v[t] = r.ttft_s, mean += r.ttft_s / (double)trials;
        if (t > 0) continue;
        x->mem_needed_bytes = x->mem_available_bytes = 0;
        if (!kvr_sim_fits(&r)) { /* memory does not depend on the noise */
            x->mem_needed_bytes = kvr_sim_mem_needed(&r);
            x->mem_available_bytes = r.mem_available_bytes;
            memcpy(x->tokens, plan->tokens, (size_t)plan->p * sizeof *plan->tokens);
            st = kvr_sim_check_fits(&r);
            break;
        }
        int c = 0;
        for (int i = 1; i < plan->p; i++) c = r.rank[i].end_s > r.rank[c].end_s ? i : c;
        x->compute_s = r.rank[c].compute_s, x->comm_s = r.rank[c].comm_s;
        x->wait_s = r.rank[c].wait_s, x->lower_bound_s = r.lower_bound_s;
        memcpy(x->tokens, plan->tokens, (size_t)plan->p * sizeof *plan->tokens);
    }
    if (!st) {
        x->ttft_s = mean, x->ttft_p50_s = kvr_quantile(v, trials, 0.5);
        x->ttft_p95_s = kvr_quantile(v, trials, 0.95);
    }
    free(v);
    kvr_sim_free(sim);
    return st;
}

enum kvr_status kvr_sweep_eval(const struct kvr_sweep_spec *spec, struct kvr_store *store,
                               int64_t run_id, struct kvr_sweep_item *it)
{
    struct point_env e = {
        .spec = spec, .store = store, .run_id = run_id, .model = &spec->models[it->model]};
    struct kvr_plan plan;
    enum kvr_status st = (e.h = malloc(sizeof *e.h))
                             ? build_machine(&e, it)
                             : kvr_error(KVR_ERR_NOMEM, "sweep: out of memory");
    if (!st) st = make_plan(&e, it, &plan);
    if (st == KVR_ERR_NOFIT) { /* no partition fits: the balanced one's bytes say by how much */
        plan = (struct kvr_plan){
            .scheme = KVR_SCHEME_KVR, .p = it->pt.p, .ctx = it->pt.ctx_tokens, .tp = it->pt.tp};
        kvr_plan_balanced(&plan, e.model, &e.h->gpu);
        st = kvr_plan_check(&plan, e.h);
    }
    if (!st) st = simulate(&e, &plan, &it->pt);
    free(e.h);
    it->pt.run_id = run_id;
    snprintf(it->pt.state, sizeof it->pt.state, "%s",
             st == KVR_ERR_NOFIT ? "infeasible"
             : st                ? "failed"
                                 : "done");
    snprintf(it->pt.error, sizeof it->pt.error, "%s", st ? kvr_error_message() : "");
    /* a bad point is recorded as failed; only a store failure stops the sweep */
    return st == KVR_ERR_RUNTIME || st == KVR_ERR_NOMEM ? st : KVR_OK;
}

/* Under MPI the plans are searched first, spread over the ranks, and stored by rank 0 alone:
 * these two functions name the rows a point reads and search one of them. */
enum kvr_status kvr_sweep_plan_keys(const struct kvr_sweep_spec *spec,
                                    const struct kvr_sweep_item *it, struct kvr_plan_row **rows,
                                    size_t *n)
{
    *rows = NULL, *n = 0;
    struct kvr_sweep_series x = {.source = -1};
    kvr_sweep_series_of(it->pt.series_rank, &x);
    bool s = x.source == KVR_PART_SEARCHED, p = x.source == KVR_PART_INTERP;
    if (!s && !p) return KVR_OK;
    struct point_env e = {.spec = spec, .model = &spec->models[it->model]};
    enum kvr_status st = (e.h = malloc(sizeof *e.h)) ? build_machine(&e, it)
                                                     : kvr_error(KVR_ERR_NOMEM, "out of memory");
    size_t count = s ? 1 : spec->n_ctx;
    if (!st && !(*rows = calloc(count, sizeof **rows)))
        st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < count; i++)
        row_key(&e, s ? it->pt.ctx_tokens : spec->ctx[i], it->pt.tp, &(*rows)[i]);
    if (!st) *n = count;
    free(e.h);
    return st;
}

enum kvr_status kvr_sweep_search_row(const struct kvr_sweep_spec *spec,
                                     const struct kvr_sweep_item *it, struct kvr_plan_row *row)
{
    struct point_env e = {.spec = spec, .model = &spec->models[it->model]};
    struct kvr_objective_opts oo = {.scheme = KVR_SCHEME_KVR, .trials = spec->trials};
    struct kvr_search_opts so;
    kvr_search_opts_default(&so);
    so.granularity = spec->granularity;
    struct kvr_objective *obj = NULL;
    struct kvr_plan_search res;
    enum kvr_status st = (e.h = malloc(sizeof *e.h)) ? build_machine(&e, it)
                                                     : kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st && row->tp > 1) {
        st = search_layout_row(spec, e.model, e.h, row);
    } else {
        if (!st) st = kvr_objective_open(e.model, e.h, &oo, &obj);
        if (!st) st = kvr_search_plan(obj, row->ctx_tokens, &so, &res);
        if (!st) kvr_plan_row_set_search(row, &res);
    }
    kvr_objective_free(obj);
    free(e.h);
    return st;
}

enum kvr_status kvr_sweep_put_definitions(const struct kvr_sweep_spec *spec,
                                          const struct kvr_sweep_item *it, struct kvr_store *store,
                                          int64_t run_id)
{
    struct point_env e = {.spec = spec, .model = &spec->models[it->model]};
    enum kvr_status st = (e.h = malloc(sizeof *e.h)) ? build_machine(&e, it)
                                                     : kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st) st = put_definitions(&e, store, it->pt.machine, run_id);
    free(e.h);
    return st;
}
