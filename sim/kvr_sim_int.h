/* The simulator's internals, shared by the files of sim/ only: the simulator struct, the
 * per-rank clocks every scheme's timeline is built with, and the scheme entries of the table
 * (kvr_scheme_list.h). */
#pragma once

#include "kvr_sim.h"

struct kvr_sim {
    const struct kvr_model *model;
    const struct kvr_machine *machine;
    double *noise; /* n_layers x n_gpus x n_gpus shares, NULL without noise */
    void *rng;     /* gsl_rng */
    struct kvr_timeline *tl;
    struct kvr_sim_result *res;
    /* set by a scheme for the memory model: tokens of KV cache each rank holds at the end (all
     * layers; ctx unless the scheme says otherwise), in-flight tokens of one layer, and
     * whether the weights are sharded over the ranks */
    double kv_tokens[KVR_MAX_GPUS], kv_flight_tokens[KVR_MAX_GPUS];
    uint64_t act_rows[KVR_MAX_GPUS]; /* activation rows held (0: the rank's tokens); sub-chunks */
    bool sharded;
    int tp_t; /* a layout's TP degree (rank r holds shard r % tp_t); 0: tp's p shards */
};

/* The simulator entry of a scheme (the `sim` column). */
typedef void (*kvr_sim_scheme_fn)(struct kvr_sim *sim, const struct kvr_plan *plan);
#define KVR_SCHEME(id, name, label, sim, exec, options, help)                                      \
    void sim(struct kvr_sim *s, const struct kvr_plan *plan);
#include "kvr_scheme_list.h"
#undef KVR_SCHEME

void kvr_sim_event(struct kvr_sim *sim, int rank, int layer, enum kvr_event_kind kind,
                   const char *what, double start_s, double end_s, double bytes, int peer);
void kvr_sim_memory(struct kvr_sim *sim, const struct kvr_plan *plan);

/* Every rank keeps a clock; compute advances it, waiting for data or a collective advances it
 * idly, and sends run on the link asynchronously (a link carries one send at a time). */
struct kvr_clocks {
    double t[KVR_MAX_GPUS];
};

/* The noise share of link i -> j at layer (0 without noise). */
double kvr_sim_share(const struct kvr_sim *sim, int layer, int i, int j);
void kvr_sim_compute(struct kvr_sim *sim, struct kvr_clocks *c, int r, int layer, const char *what,
                     double dur);
void kvr_sim_wait_until(struct kvr_sim *sim, struct kvr_clocks *c, int r, int layer, double t);
/* A send from r to peer, not before `ready`, serialised on the link; returns the arrival time.
 * `overlapped`: asynchronous, beside compute at both ends (kvr_link_overlap_s). */
double kvr_sim_send(struct kvr_sim *sim, double *link_free, int r, int peer, int layer,
                    double ready, double bytes, bool overlapped);
/* The same, its timeline event named `what` (what travels: "kv", ring pass-Q's "q" and "out",
 * as the executor names it). */
double kvr_sim_send_what(struct kvr_sim *sim, double *link_free, int r, int peer, int layer,
                         double ready, double bytes, bool overlapped, const char *what);
/* Barrier plus a collective on all p ranks starting when the last one is ready. */
void kvr_sim_collective(struct kvr_sim *sim, struct kvr_clocks *c, int p, int layer,
                        const char *what, double dur, double bytes_total);
/* The LM head on rank `last`, then every rank's end time and the TTFT. */
void kvr_sim_finish(struct kvr_sim *sim, struct kvr_clocks *c, const struct kvr_plan *plan,
                    int last);

/* The stages of a plan (kvr_layout.h): t GPUs each, n of them; rank i * t + j is shard j of
 * stage i; part is one shard's model (every shard alike: t divides the heads), the model itself
 * when t = 1. kvr_sim_stages fills it and tells the memory model. */
struct kvr_stages {
    int t, n;
    bool sp;
    struct kvr_model part;
};
void kvr_sim_stages(struct kvr_sim *sim, const struct kvr_plan *plan, struct kvr_stages *S);

/* A stage's per-layer phases for c tokens: pre (norm, QKV, rotary), post (out-proj .. residual)
 * and, with t > 1, post's out-projection and MLP parts apart (sp: norms and residuals on
 * ceil(c / t) tokens). With t = 1 pre and post are kvr_cost_pre_s and kvr_cost_post_s. */
struct kvr_stage_cost {
    double pre, post, proj, mlp;
};
void kvr_stage_cost(const struct kvr_sim *sim, const struct kvr_stages *S, uint64_t c,
                    struct kvr_stage_cost *out);
/* Stage i after its attention at layer l, `lead_s` of work first (ring's finish): with t = 1
 * one "post" of lead_s + post; else proj, an all-reduce of the stage's c x d activations, mlp,
 * another all-reduce (a parallel block: one, after the MLP). */
void kvr_sim_stage_post(struct kvr_sim *sim, struct kvr_clocks *c, const struct kvr_stages *S,
                        const struct kvr_stage_cost *sc, int i, int l, uint64_t tokens,
                        double lead_s);
/* Ring collectives over the ranks g[0..n) in that order (kvr_cost.h's over 0..n-1, the same
 * arithmetic), and a barrier plus a collective on them. */
double kvr_group_allgather_s(const struct kvr_sim *sim, const int *g, int n, int layer,
                             double block_bytes);
double kvr_group_allreduce_s(const struct kvr_sim *sim, const int *g, int n, int layer,
                             double bytes);
void kvr_sim_group_collective(struct kvr_sim *sim, struct kvr_clocks *c, const int *g, int n,
                              int layer, const char *what, double dur, double bytes_total);

/* ring with --ring-pass auto: both passes simulated, the faster one run again into res and
 * timeline (kvr_scheme_ring.c). */
enum kvr_status kvr_sim_ring_auto(struct kvr_sim *sim, const struct kvr_plan *plan,
                                  struct kvr_sim_result *res, struct kvr_timeline *timeline);
