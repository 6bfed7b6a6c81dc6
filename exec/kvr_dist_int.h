/* The schemes on ranks, internals shared by the files of exec/ only: one run's state, the
 * transfer and layer helpers every scheme is written with (kvr_dist_common.c), and the
 * executor entries of the scheme table (kvr_scheme_list.h, the `exec` column). */
#pragma once

#include "kvr_dist.h"

struct kvr_dist {
    struct kvr_exec *ex;
    struct kvr_comm *comm;
    const struct kvr_dist_opts *o;
    const struct kvr_model *m;
    int rank, p;
    bool dev; /* nccl: device buffers */
    uint64_t start[KVR_MAX_GPUS + 1];
    size_t row; /* bytes of one cache row of K (or V) */
    double t0, link_free[KVR_MAX_GPUS];
    struct kvr_sim *noise; /* the noise draws of o->links */
    struct kvr_dist_stats *stats;
    unsigned char *buf[4]; /* mpi staging: 2 receive and 2 send slots */
    size_t buf_rows;
    struct kvr_comm_req *req[4][2];
    /* nccl with link emulation: each message's send time travels beside it over MPI */
    double stamp[4];
    struct kvr_comm_req *stamp_req[4];
};

/* An executor entry: the layers of one prefill on this rank, after the embedding (the driver
 * then computes the logits on the last rank). */
typedef enum kvr_status (*kvr_dist_scheme_fn)(struct kvr_dist *d);
#define KVR_EXEC(f)  f
#define KVR_SIM_ONLY kvr_dist_sim_only
#define KVR_SCHEME(id, name, label, sim, exec, options, help)                                      \
    enum kvr_status exec(struct kvr_dist *d);
#include "kvr_scheme_list.h"
#undef KVR_SCHEME
#undef KVR_EXEC
#undef KVR_SIM_ONLY

#define KVR_DIST_STAMP_TAG                                                                         \
    20000 /* added to a layer's tag: layers < 4096, tags stay under 32767                          \
           */

/* Seconds since the run's start (after the first barrier). */
double kvr_dist_now_s(const struct kvr_dist *d);
/* A timeline event from t0 to now (when a timeline is kept). */
void kvr_dist_event(struct kvr_dist *d, enum kvr_event_kind k, const char *what, int layer,
                    double t0, double bytes, int peer);
void kvr_dist_sleep_until(const struct kvr_dist *d, double t);
/* Holds a message from `from` until its emulated link could have delivered it. */
void kvr_dist_pace(struct kvr_dist *d, int from, int layer, double sent_s, double bytes);
/* Bytes of an mpi message of `rows` cache rows (K and V, and the send time). */
size_t kvr_dist_msg_bytes(const struct kvr_dist *d, uint64_t rows);
/* Receive of cache rows [pos, pos+rows) of layer from peer into slot (0, 1), and its finish
 * (the wait, the pacing, the copy into the cache). */
enum kvr_status kvr_dist_recv_post(struct kvr_dist *d, int slot, uint32_t layer, int peer,
                                   uint64_t pos, uint64_t rows, int tag);
enum kvr_status kvr_dist_recv_finish(struct kvr_dist *d, int slot, uint32_t layer, int peer,
                                     uint64_t pos, uint64_t rows);
/* Send of cache rows [pos, pos+rows) of layer from slot (2, 3); its previous send done first. */
enum kvr_status kvr_dist_send_rows(struct kvr_dist *d, int slot, uint32_t layer, int peer,
                                   uint64_t pos, uint64_t rows, int tag);
/* Waits for every send still in flight. */
enum kvr_status kvr_dist_sends_done(struct kvr_dist *d);
/* The halves of a layer on this rank's chunk, with their timeline events (synchronous when a
 * timeline is kept): pre = norm, QKV, rotary; post = attention and the rest of the layer. */
enum kvr_status kvr_dist_pre(struct kvr_dist *d, uint32_t l);
enum kvr_status kvr_dist_post(struct kvr_dist *d, uint32_t l, enum kvr_mask mask);
