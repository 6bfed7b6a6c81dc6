/* The layout search (kvr_layout_search.h): t x mapping, and kvr's partition through the
 * partition search's public interface. */
#include "kvr_layout_search.h"

#include <math.h>
#include <string.h>

void kvr_layout_opts_default(struct kvr_layout_opts *o)
{
    *o = (struct kvr_layout_opts){.scheme = KVR_SCHEME_KVR, .method = KVR_METHOD_HIER};
    o->objective.trials = 1;
    kvr_search_opts_default(&o->search);
}

/* The candidate's memory and bytes between nodes from one run (trial 0) on the objective's
 * machine (the mapping applied); without a search, its TTFT: the objective over the trials. */
static enum kvr_status measure(struct kvr_objective *obj, const struct kvr_layout_opts *o,
                               struct kvr_layout_candidate *c, bool searched)
{
    const struct kvr_model *m = kvr_objective_model(obj);
    const struct kvr_machine *h = kvr_objective_machine(obj);
    uint64_t trials =
        h->noise.mode == KVR_NOISE_NONE || o->objective.trials < 1 ? 1 : o->objective.trials;
    struct kvr_sim *sim = NULL;
    static _Thread_local struct kvr_sim_result r, x;
    enum kvr_status st = kvr_sim_open(m, h, &sim);
    if (!st) st = kvr_plan_check(&c->plan, h);
    if (!st) st = kvr_sim_run(sim, &c->plan, &r, NULL);
    for (uint64_t t = 0; !searched && !st && t < trials; t++) {
        if (!(st = kvr_sim_draw_noise(sim, t))) st = kvr_sim_run(sim, &c->plan, &x, NULL);
        c->ttft_s += x.ttft_s / (double)trials; /* the mean: without a search, no percentile */
    }
    kvr_sim_free(sim);
    if (st) return st;
    c->fits = kvr_sim_fits(&r);
    c->mem_max_bytes = kvr_sim_mem_needed(&r);
    c->bytes_inter_node_per_layer = r.bytes_inter_node / m->n_layers;
    return KVR_OK;
}

/* kvr: hier on the objective of this t and mapping; the others: even. */
static enum kvr_status place(const struct kvr_model *m, const struct kvr_machine *h, uint64_t ctx,
                             const struct kvr_layout_opts *o, struct kvr_layout_candidate *c)
{
    struct kvr_objective_opts oo = o->objective;
    oo.scheme = KVR_SCHEME_KVR, oo.tp = c->plan.tp;
    struct kvr_objective *obj = NULL;
    enum kvr_status st = kvr_objective_open(m, h, &oo, &obj);
    if (!st) st = kvr_objective_set_mapping(obj, c->map);
    if (!st && o->scheme == KVR_SCHEME_KVR) {
        struct kvr_search_result sr;
        st = kvr_search_run(obj, o->method, ctx, &o->search, &sr);
        if (st == KVR_ERR_NOFIT) { /* kept, not fitting: the balanced split's numbers */
            kvr_plan_balanced(&c->plan, m, &h->gpu);
            st = measure(obj, o, c, false);
            c->fits = false;
        } else if (!st) {
            memcpy(c->plan.tokens, sr.tokens, sizeof sr.tokens);
            c->ttft_s = sr.ttft_s, c->n_evals = sr.n_evals, c->granularity = sr.granularity;
            st = measure(obj, o, c, true);
        }
    } else if (!st) {
        kvr_plan_even(&c->plan);
        st = measure(obj, o, c, false);
    }
    kvr_objective_free(obj);
    return st;
}

/* Offset off is searched: 0, or on a multi-node topology a shift inside the first node that
 * keeps the p GPUs on the fewest nodes. */
static bool window_ok(const struct kvr_machine *h, int p, int t, int off)
{
    if (off == 0) return true;
    return h->n_nodes > 1 && off < h->gpus_per_node && t <= h->gpus_per_node &&
           kvr_map_window_ok(h, p, off);
}

/* One candidate: t, the named mapping shifted by off GPUs, placed and measured. */
static enum kvr_status candidate(const struct kvr_model *m, const struct kvr_machine *h,
                                 uint64_t ctx, const struct kvr_layout_opts *o, int t,
                                 enum kvr_map k, int off, struct kvr_layout_result *res)
{
    const int p = h->n_gpus, total = h->n_nodes * h->gpus_per_node;
    struct kvr_layout_candidate *c = &res->cand[res->n_cand];
    *c = (struct kvr_layout_candidate){
        .plan = {.scheme = o->scheme,
                 .p = p,
                 .ctx = ctx,
                 .tp = t,
                 .sp = o->objective.sp && t > 1,
                 .kv_forward = o->scheme == KVR_SCHEME_KVR ? o->objective.kv_forward : 0},
        .map_kind = k,
        .offset = off};
    int named[KVR_MAX_GPUS];
    kvr_layout_map(k, p, t, total, named);
    for (int r = 0; r < total; r++) c->map[r] = (named[r] + off) % total;
    enum kvr_status st = place(m, h, ctx, o, c);
    if (st) return st;
    if (c->fits && (res->best < 0 || c->ttft_s < res->cand[res->best].ttft_s))
        res->best = res->n_cand;
    res->n_cand++;
    return KVR_OK;
}

enum kvr_status kvr_layout_search(const struct kvr_model *model, const struct kvr_machine *machine,
                                  uint64_t ctx, const struct kvr_layout_opts *o,
                                  struct kvr_layout_result *res)
{
    const int p = machine->n_gpus;
    memset(res, 0, sizeof *res);
    res->best = -1;
    if (!kvr_layout_scheme_ok(o->scheme))
        return kvr_error(KVR_ERR_INPUT, "layout search: scheme %s has no tensor-parallel layout",
                         kvr_scheme_name(o->scheme));
    for (int t = 1; t <= p; t++) {
        if ((o->tp_only && t != o->tp_only) || kvr_layout_check_tp(model, p, t, "--tp")) continue;
        int n_maps = t > 1 && t < p ? 2 : 1; /* strided = block at t = 1 and t = p */
        for (int k = 0; k < n_maps; k++)
            for (int off = 0; window_ok(machine, p, t, off); off += t) {
                if (res->n_cand == KVR_LAYOUT_MAX_CANDIDATES) return KVR_OK;
                enum kvr_status st =
                    candidate(model, machine, ctx, o, t, (enum kvr_map)k, off, res);
                if (st) return st;
            }
    }
    if (res->n_cand == 0 && o->tp_only) return kvr_layout_check_tp(model, p, o->tp_only, "--tp");
    return KVR_OK;
}

enum kvr_status kvr_layout_row_set(const struct kvr_layout_result *res, const struct kvr_machine *h,
                                   struct kvr_plan_row *r)
{
    if (res->best < 0) {
        double least = INFINITY;
        for (int k = 0; k < res->n_cand; k++)
            least = res->cand[k].mem_max_bytes < least ? res->cand[k].mem_max_bytes : least;
        return kvr_error(KVR_ERR_NOFIT,
                         "no layout of tp %d fits in GPU memory: the best needs %.0f bytes on its "
                         "fullest GPU, %.0f are available",
                         res->n_cand ? res->cand[0].plan.tp : r->tp, least,
                         h->gpu.mem_bytes - h->gpu.mem_reserve_bytes);
    }
    const struct kvr_layout_candidate *c = &res->cand[res->best];
    memcpy(r->tokens, c->plan.tokens, sizeof r->tokens);
    r->predicted_ttft_s = c->ttft_s, r->granularity_tokens = c->granularity;
    r->evaluations = c->n_evals;
    r->n_mapping = c->map_kind == KVR_MAP_BLOCK && c->offset == 0 ? 0 : c->plan.p;
    memcpy(r->mapping, c->map, sizeof r->mapping);
    r->fewer_p = 0;
    return KVR_OK;
}
