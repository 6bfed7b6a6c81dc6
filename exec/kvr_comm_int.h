/* Internal to the communicator (included only in exec/kvr_comm*.c): its state and the method
 * table each kind implements, as the backends' kvr_backend_ops: kvr_comm.c dispatches every
 * public call through c->ops. mpi (kvr_comm_mpi.c) exists when MPI is built, nccl
 * (kvr_comm_nccl.c) when NCCL, CUDA and MPI are; nccl's host messages and small collectives
 * are MPI's. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kvr_comm.h"

struct kvr_comm_host_ops;

struct kvr_comm_ops {
    const char *name;
    bool device_buffers; /* buffers are device memory */
    /* MPI's rank and size, then the kind's own set-up (device and timeout_s are set) */
    enum kvr_status (*open)(struct kvr_comm *c);
    void (*close)(struct kvr_comm *c);
    void (*abort)(struct kvr_comm *c); /* before MPI_Abort ends every rank */
    void (*version)(const struct kvr_comm *c, char *buf, size_t cap); /* the kind's library */
    /* the data path: point-to-point of the kind's buffers, grouping, collectives */
    enum kvr_status (*p2p)(struct kvr_comm *c, void *buf, size_t bytes, int peer, int tag,
                           bool send, struct kvr_comm_req **req);
    enum kvr_status (*wait)(struct kvr_comm *c, struct kvr_comm_req *req);
    enum kvr_status (*group)(struct kvr_comm *c, bool start);
    enum kvr_status (*allgather)(struct kvr_comm *c, const void *send, void *recv,
                                 size_t bytes_each);
    enum kvr_status (*allreduce_f32)(struct kvr_comm *c, float *buf, size_t count);
    enum kvr_status (*reduce_scatter_f32)(struct kvr_comm *c, const float *send, float *recv,
                                          size_t count_each);
    enum kvr_status (*barrier)(struct kvr_comm *c);
    const struct kvr_comm_host_ops *host; /* beside the data path: MPI's, for both kinds */
};

/* Host messages and small collectives beside the data path, the library's version and the
 * abort: MPI's (kvr_comm_mpi.c) for every kind. */
struct kvr_comm_host_ops {
    enum kvr_status (*p2p)(struct kvr_comm *c, void *buf, size_t bytes, int peer, int tag,
                           bool send, struct kvr_comm_req **req);
    enum kvr_status (*wait)(struct kvr_comm *c, struct kvr_comm_req *req);
    enum kvr_status (*barrier)(struct kvr_comm *c);
    enum kvr_status (*max_f64)(struct kvr_comm *c, double *v);
    enum kvr_status (*bcast)(struct kvr_comm *c, void *buf, size_t bytes, int root);
    enum kvr_status (*gather)(struct kvr_comm *c, const void *mine, size_t bytes, void **all,
                              size_t *all_bytes);
    void (*version)(char *buf, size_t cap);
    void (*abort)(int code);
    /* Sub-communicators: out's MPI side (out->mpi, rank, size) for the ranks of c with the same
     * color, ordered by key; and its release. */
    enum kvr_status (*split)(struct kvr_comm *c, int color, int key, struct kvr_comm *out);
    void (*comm_free)(struct kvr_comm *c);
};

struct kvr_comm {
    const struct kvr_comm_ops *ops;
    enum kvr_comm_kind kind;
    int rank, size, device;
    double timeout_s;
    void *nccl;        /* struct nccl_state, nccl only */
    void *mpi;         /* MPI_Comm * of a sub-communicator (kvr_comm_split); NULL: MPI_COMM_WORLD */
    bool clock_synced; /* kvr_comm_sync_clock has run */
    double clock_offset_s; /* this rank's CLOCK_MONOTONIC less rank 0's */
};

extern const struct kvr_comm_ops kvr_comm_mpi_ops;  /* kvr_comm_mpi.c, with MPI */
extern const struct kvr_comm_ops kvr_comm_nccl_ops; /* kvr_comm_nccl.c, with NCCL */

/* MPI's side, shared by nccl's table (kvr_comm_mpi.c): rank and size (MPI initialised), and
 * the host operations. */
enum kvr_status kvr_comm_mpi_open(struct kvr_comm *c);
extern const struct kvr_comm_host_ops kvr_comm_mpi_host;

double kvr_comm_now_s(void);
/* Between two polls of a pending operation, `waited_s` into the wait: nothing for the first
 * 2 ms (a sleep costs 50-80 us of timer slack, which every hop of the chain would pay), then a
 * short sleep so that long waits leave the core alone. */
void kvr_comm_backoff(double waited_s);
