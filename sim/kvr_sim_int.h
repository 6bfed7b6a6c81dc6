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
    bool sharded;
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
/* Barrier plus a collective on all p ranks starting when the last one is ready. */
void kvr_sim_collective(struct kvr_sim *sim, struct kvr_clocks *c, int p, int layer,
                        const char *what, double dur, double bytes_total);
/* The LM head on rank `last`, then every rank's end time and the TTFT. */
void kvr_sim_finish(struct kvr_sim *sim, struct kvr_clocks *c, const struct kvr_plan *plan,
                    int last);
/* Contiguous chunks in rank order (kvr, ring-pass): each rank's tokens, its per-layer costs
 * (causal attention after the chunks before it) and its embedding. */
void kvr_sim_contiguous_chunks(struct kvr_sim *sim, struct kvr_clocks *c,
                               const struct kvr_plan *plan, double *pre, double *attn,
                               double *post);

/* ring with --ring-pass auto: both passes simulated, the faster one run again into res and
 * timeline (kvr_scheme_ring.c). */
enum kvr_status kvr_sim_ring_auto(struct kvr_sim *sim, const struct kvr_plan *plan,
                                  struct kvr_sim_result *res, struct kvr_timeline *timeline);
