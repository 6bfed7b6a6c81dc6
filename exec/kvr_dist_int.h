/* The schemes on ranks, internals shared by the files of exec/ only: one run's state, the
 * transfer and layer helpers every scheme is written with (kvr_dist_common.c), and the
 * executor entries of the scheme table (kvr_scheme_list.h, the `exec` column). */
#pragma once

#include "kvr_dist.h"

/* Transfer slots (a staging buffer on mpi, the requests, the send time): 0, 1 receive and 2, 3
 * send (whole chain, ring-pass); the hand-off modes' pieces (kvr_dist_kvr.c) from
 * KVR_DIST_PIECE_SLOT: a receive slot per layer parity and rank, a send slot per layer mod 4
 * and rank (a send may still be in flight a layer after the next one is queued). */
#define KVR_DIST_PIECE_SLOT 4
#define KVR_DIST_SLOTS      (KVR_DIST_PIECE_SLOT + 6 * KVR_MAX_GPUS)

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
    unsigned char *buf[KVR_DIST_SLOTS]; /* mpi staging: 0, 1 receive, 2, 3 send; the chain's
                                           pieces from KVR_DIST_PIECE_SLOT, sized on first use */
    size_t buf_rows, buf_bytes[KVR_DIST_SLOTS];
    struct kvr_comm_req *req[KVR_DIST_SLOTS][2];
    /* nccl with link emulation: each message's send time travels beside it over MPI */
    double stamp[KVR_DIST_SLOTS];
    struct kvr_comm_req *stamp_req[KVR_DIST_SLOTS];
};

/* An executor entry: the layers of one prefill on this rank, after the embedding (the driver
 * then computes the logits on the last rank). */
typedef enum kvr_status (*kvr_dist_scheme_fn)(struct kvr_dist *d);
/* The entry of a scheme the table marks KVR_SIM_ONLY: refuses, naming it. */
enum kvr_status kvr_dist_sim_only(struct kvr_dist *d);
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

/* The rows of rank r's chunk of the chain: positions [d->start[r], d->start[r + 1]). */
static inline uint64_t kvr_dist_rows(const struct kvr_dist *d, int r)
{
    return d->start[r + 1] - d->start[r];
}

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
/* Flags of kvr_dist_send_piece. */
enum {
    KVR_DIST_SYNC = 1,        /* nccl: this rank's compute first (its own rows) */
    KVR_DIST_STAMP_LATER = 2, /* nccl + links: kvr_dist_send_stamp once this rank has the rows */
    KVR_DIST_KEEP_STAMP = 4,  /* mpi: `from`'s buffer is in flight already: keep its stamp */
};
/* Send of cache rows [pos, pos+rows) of layer to peer with slot's requests (waited first).
 * mpi: from < 0 stages the rows into slot's buffer; from >= 0 sends from's buffer as it is
 * (a received piece forwarded, restamped; or rows staged already, KVR_DIST_KEEP_STAMP).
 * nccl: from the cache in place (after this rank's compute with KVR_DIST_SYNC). */
enum kvr_status kvr_dist_send_piece(struct kvr_dist *d, int slot, int from, uint32_t layer,
                                    int peer, uint64_t pos, uint64_t rows, int tag, int flags);
/* nccl + links: the send time of slot's forward (KVR_DIST_STAMP_LATER), now. */
enum kvr_status kvr_dist_send_stamp(struct kvr_dist *d, int slot, int peer, int tag);
/* Ends the communicator's group (also after a failed call inside it): st, or else the end's
 * status. */
enum kvr_status kvr_dist_group_end(struct kvr_dist *d, enum kvr_status st);
/* Waits for what slot still has in flight. */
enum kvr_status kvr_dist_slot_wait(struct kvr_dist *d, int slot);
/* Waits for every send still in flight. */
enum kvr_status kvr_dist_sends_done(struct kvr_dist *d);
/* The halves of a layer on this rank's chunk, with their timeline events (synchronous when a
 * timeline is kept): pre = norm, QKV, rotary; post = attention and the rest of the layer. */
enum kvr_status kvr_dist_pre(struct kvr_dist *d, uint32_t l);
enum kvr_status kvr_dist_post(struct kvr_dist *d, uint32_t l, enum kvr_mask mask);
