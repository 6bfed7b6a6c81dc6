/* The per-rank clocks every scheme builds its timeline with (kvr_sim_int.h). */
#include "kvr_cost.h"
#include "kvr_sim_int.h"

double kvr_sim_share(const struct kvr_sim *sim, int layer, int i, int j)
{
    const double *n = kvr_sim_layer_noise(sim, layer);
    return n ? n[i * sim->machine->n_gpus + j] : 0;
}

void kvr_sim_compute(struct kvr_sim *sim, struct kvr_clocks *c, int r, int layer, const char *what,
                     double dur)
{
    kvr_sim_event(sim, r, layer, KVR_EV_COMPUTE, what, c->t[r], c->t[r] + dur, 0, -1);
    c->t[r] += dur;
    sim->res->rank[r].compute_s += dur;
}

void kvr_sim_wait_until(struct kvr_sim *sim, struct kvr_clocks *c, int r, int layer, double t)
{
    if (t <= c->t[r]) return;
    kvr_sim_event(sim, r, layer, KVR_EV_WAIT, "wait", c->t[r], t, 0, -1);
    sim->res->rank[r].wait_s += t - c->t[r];
    if (layer == 0) sim->res->rank[r].first_wait_s += t - c->t[r];
    c->t[r] = t;
}

double kvr_sim_send(struct kvr_sim *sim, double *link_free, int r, int peer, int layer,
                    double ready, double bytes, bool overlapped)
{
    return kvr_sim_send_what(sim, link_free, r, peer, layer, ready, bytes, overlapped, "kv");
}

double kvr_sim_send_what(struct kvr_sim *sim, double *link_free, int r, int peer, int layer,
                         double ready, double bytes, bool overlapped, const char *what)
{
    double start = ready > *link_free ? ready : *link_free, nz = kvr_sim_share(sim, layer, r, peer);
    double dur = overlapped ? kvr_link_overlap_s(sim->machine, r, peer, bytes, nz)
                            : kvr_link_s(sim->machine, r, peer, bytes, nz);
    kvr_sim_event(sim, r, layer, KVR_EV_SEND, what, start, start + dur, bytes, peer);
    sim->res->rank[r].comm_s += dur;
    sim->res->bytes_sent_total += bytes;
    if (kvr_machine_node(sim->machine, r) != kvr_machine_node(sim->machine, peer))
        sim->res->bytes_inter_node += bytes;
    *link_free = start + dur;
    return start + dur;
}

void kvr_sim_finish(struct kvr_sim *sim, struct kvr_clocks *c, const struct kvr_plan *plan,
                    int last)
{
    const struct kvr_model *m = sim->model;
    kvr_sim_compute(sim, c, last, (int)m->n_layers, "head", kvr_cost_head_s(m, &sim->machine->gpu));
    for (int r = 0; r < plan->p; r++) sim->res->rank[r].end_s = c->t[r];
    sim->res->ttft_s = c->t[last];
}

void kvr_sim_collective(struct kvr_sim *sim, struct kvr_clocks *c, int p, int layer,
                        const char *what, double dur, double bytes_total)
{
    int all[KVR_MAX_GPUS]; /* ranks 0..p-1: the group of every rank */
    for (int r = 0; r < p; r++) all[r] = r;
    kvr_sim_group_collective(sim, c, all, p, layer, what, dur, bytes_total);
}
