/* Hybrid layouts (kvr_layout.h): t, the checks, the named mappings, and what the schemes share
 * to run over stages (kvr_sim_int.h): each stage's costs on one shard, its post phase with the
 * TP all-reduces, and ring collectives over a group of ranks. */
#include "kvr_layout.h"

#include <string.h>

#include "kvr_cost.h"
#include "kvr_sim_int.h"
#include "kvr_tp.h"

int kvr_plan_tp(const struct kvr_plan *plan)
{
    return plan->tp > 1 ? plan->tp : 1;
}

int kvr_plan_stages(const struct kvr_plan *plan)
{
    int t = kvr_plan_tp(plan);
    return plan->p % t ? plan->p : plan->p / t;
}

bool kvr_layout_scheme_ok(enum kvr_scheme s)
{
    const struct kvr_scheme_desc *d = kvr_scheme_get(s);
    return d && (d->options & KVR_SO_LAYOUT);
}

enum kvr_status kvr_layout_check_tp(const struct kvr_model *m, int p, int t, const char *what)
{
    if (t < 1 || p % t)
        return kvr_error(KVR_ERR_INPUT, "%s %d: must divide the %d GPUs of the plan", what, t, p);
    return kvr_tp_check(m, t, what);
}

enum kvr_status kvr_layout_check(const struct kvr_model *m, const struct kvr_plan *plan)
{
    if (!kvr_layout_scheme_ok(plan->scheme)) {
        char names[256];
        kvr_scheme_list_text(KVR_LIST_LAYOUT, names, sizeof names);
        return kvr_error(KVR_ERR_INPUT, "--tp: scheme %s has no tensor-parallel layout (%s do)",
                         kvr_scheme_name(plan->scheme), names);
    }
    if (plan->sp && kvr_plan_tp(plan) < 2)
        return kvr_error(KVR_ERR_INPUT, "--sp: sequence parallelism needs --tp 2 or more");
    return kvr_layout_check_tp(m, plan->p, kvr_plan_tp(plan), "--tp");
}

const char *kvr_map_name(enum kvr_map map)
{
    static const char *const names[KVR_N_MAPS] = {"block", "strided"};
    return map >= 0 && map < KVR_N_MAPS ? names[map] : "?";
}

int kvr_map_from_name(const char *name)
{
    for (int k = 0; k < KVR_N_MAPS; k++)
        if (!strcmp(name, kvr_map_name((enum kvr_map)k))) return k;
    return -1;
}

static int map_gpu(enum kvr_map map, int p, int t, int role)
{
    int n = p / t, s = role / t, j = role % t;
    return map == KVR_MAP_STRIDED && p % t == 0 ? j * n + s : role;
}

void kvr_layout_map(enum kvr_map map, int p, int t, int n_total, int *out)
{
    for (int r = 0; r < n_total; r++) out[r] = r < p ? map_gpu(map, p, t, r) : r;
}

bool kvr_map_window_ok(const struct kvr_machine *h, int p, int off)
{
    int gpn = h->gpus_per_node;
    if (off < 0 || off + p > h->n_nodes * gpn) return false;
    return (off + p - 1) / gpn - off / gpn == (p - 1) / gpn;
}

int kvr_layout_map_kind(const int *map, int p, int t)
{
    for (int k = 0; k < KVR_N_MAPS; k++) {
        bool same = true;
        for (int r = 0; r < p && same; r++) same = map[r] == map_gpu((enum kvr_map)k, p, t, r);
        if (same) return k;
    }
    return -1;
}

void kvr_sim_stages(struct kvr_sim *sim, const struct kvr_plan *plan, struct kvr_stages *S)
{
    S->t = kvr_plan_tp(plan);
    S->n = plan->p / S->t;
    S->sp = plan->sp && S->t > 1;
    kvr_tp_shard(sim->model, S->t, 0, &S->part);
    if (S->t > 1) sim->sharded = true, sim->tp_t = S->t;
}

void kvr_stage_cost(const struct kvr_sim *sim, const struct kvr_stages *S, uint64_t c,
                    struct kvr_stage_cost *out)
{
    const struct kvr_model *x = &S->part;
    const struct kvr_gpu *g = &sim->machine->gpu;
    uint64_t cs = S->sp ? (c + (uint64_t)S->t - 1) / (uint64_t)S->t : c;
    out->pre = kvr_cost_pre_s(x, g, c);
    out->post = kvr_cost_post_s(x, g, c);
    out->proj = kvr_cost_ops_s(x, g, KVR_OP_OUT_PROJ, KVR_OP_OUT_PROJ, c);
    out->mlp = kvr_cost_ops_s(x, g, KVR_OP_NORM_MLP, KVR_OP_RESIDUAL, c);
    if (!S->sp) return;
    out->pre = kvr_cost_ops_s(x, g, KVR_OP_NORM_ATTN, KVR_OP_NORM_ATTN, cs) +
               kvr_cost_ops_s(x, g, KVR_OP_QKV, KVR_OP_ROTARY, c);
    out->mlp = kvr_cost_ops_s(x, g, KVR_OP_NORM_MLP, KVR_OP_NORM_MLP, cs) +
               kvr_cost_ops_s(x, g, KVR_OP_MLP_UP, KVR_OP_MLP_DOWN, c) +
               kvr_cost_ops_s(x, g, KVR_OP_RESIDUAL, KVR_OP_RESIDUAL, cs);
}

void kvr_sim_stage_post(struct kvr_sim *sim, struct kvr_clocks *c, const struct kvr_stages *S,
                        const struct kvr_stage_cost *sc, int i, int l, uint64_t tokens,
                        double lead_s)
{
    const int t = S->t;
    int g[KVR_MAX_GPUS];
    for (int j = 0; j < t; j++) g[j] = i * t + j;
    if (t == 1) {
        kvr_sim_compute(sim, c, g[0], l, "post", lead_s + sc->post);
        return;
    }
    const struct kvr_model *m = sim->model;
    double act = (double)tokens * m->d_model * kvr_dtype_bytes(m->dtype);
    double ar = kvr_group_allreduce_s(sim, g, t, l, act), ar_bytes = 2.0 * (t - 1) * act;
    for (int j = 0; j < t; j++) kvr_sim_compute(sim, c, g[j], l, "proj", lead_s + sc->proj);
    if (!m->parallel_attn) kvr_sim_group_collective(sim, c, g, t, l, "allreduce", ar, ar_bytes);
    for (int j = 0; j < t; j++) kvr_sim_compute(sim, c, g[j], l, "mlp", sc->mlp);
    kvr_sim_group_collective(sim, c, g, t, l, "allreduce", ar, ar_bytes);
}

/* One ring step over g[0..n): each sends `bytes` to the next; the slowest link gates it. */
static double group_step_s(const struct kvr_sim *sim, const int *g, int n, int layer, double bytes)
{
    double worst = 0;
    for (int k = 0; k < n; k++) {
        int i = g[k], j = g[(k + 1) % n];
        double t = kvr_link_s(sim->machine, i, j, bytes, kvr_sim_share(sim, layer, i, j));
        if (t > worst) worst = t;
    }
    return worst;
}

double kvr_group_allgather_s(const struct kvr_sim *sim, const int *g, int n, int layer,
                             double block_bytes)
{
    return n > 1 ? (n - 1) * group_step_s(sim, g, n, layer, block_bytes) : 0;
}

double kvr_group_allreduce_s(const struct kvr_sim *sim, const int *g, int n, int layer,
                             double bytes)
{
    return n > 1 ? 2 * (n - 1) * group_step_s(sim, g, n, layer, bytes / n) : 0;
}

void kvr_sim_group_collective(struct kvr_sim *sim, struct kvr_clocks *c, const int *g, int n,
                              int layer, const char *what, double dur, double bytes_total)
{
    double start = 0;
    for (int k = 0; k < n; k++) start = c->t[g[k]] > start ? c->t[g[k]] : start;
    for (int k = 0; k < n; k++) {
        int r = g[k];
        kvr_sim_wait_until(sim, c, r, layer, start);
        kvr_sim_event(sim, r, layer, KVR_EV_COLLECTIVE, what, start, start + dur, bytes_total / n,
                      -1);
        c->t[r] = start + dur;
        sim->res->rank[r].comm_s += dur;
    }
    sim->res->bytes_sent_total += bytes_total;
    for (int k = 0; n > 1 && k < n; k++)
        if (kvr_machine_node(sim->machine, g[k]) != kvr_machine_node(sim->machine, g[(k + 1) % n]))
            sim->res->bytes_inter_node += bytes_total / n;
}
