/* The mpi communicator: host buffers, nonblocking MPI calls everywhere (collectives too),
 * completed by polling with a deadline, so a dead or hung peer is an error after timeout_s
 * instead of a hang. Its host messages and small collectives serve nccl too. Built with MPI
 * only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvr_comm_int.h"

#include <mpi.h>

#include "kvr_mpi_check.h"

/* The MPI communicator of c: its own for a sub-communicator, else the world. */
static MPI_Comm W(const struct kvr_comm *c)
{
    return c->mpi ? *(MPI_Comm *)c->mpi : MPI_COMM_WORLD;
}

struct kvr_comm_req {
    MPI_Request r;
    int peer, tag;
    const char *what;
};

static enum kvr_status mpi_wait(struct kvr_comm *c, MPI_Request *r, const char *what, int peer)
{
    double t0 = kvr_comm_now_s();
    for (int flag = 0;;) {
        KVR_MPI_CHECK(MPI_Test(r, &flag, MPI_STATUS_IGNORE));
        if (flag) return KVR_OK;
        if (kvr_comm_now_s() - t0 > c->timeout_s) {
            char with[32] = ""; /* the peer of a point-to-point wait; none for a collective */
            if (peer >= 0) snprintf(with, sizeof with, " with rank %d", peer);
            return kvr_error(KVR_ERR_RUNTIME,
                             "rank %d: timed out after %.0f s waiting for %s%s: a rank died "
                             "or hangs",
                             c->rank, c->timeout_s, what, with);
        }
        kvr_comm_backoff(kvr_comm_now_s() - t0);
    }
}

enum kvr_status kvr_comm_mpi_open(struct kvr_comm *c)
{
    int init = 0;
    MPI_Initialized(&init);
    if (!init) return kvr_error(KVR_ERR_USAGE, "the multi-rank schemes run under mpirun");
    MPI_Comm_rank(W(c), &c->rank);
    MPI_Comm_size(W(c), &c->size);
    return KVR_OK;
}

static void mpi_version(char *buf, size_t cap)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    v[strcspn(v, ",\n")] = 0; /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
    snprintf(buf, cap, "%s", v);
}

/* Point-to-point over MPI (host memory), whatever the communicator's kind. */
static enum kvr_status mpi_p2p(struct kvr_comm *c, void *buf, size_t bytes, int peer, int tag,
                               bool send, struct kvr_comm_req **req)
{
    if (bytes > INT32_MAX) return kvr_error(KVR_ERR_RANGE, "MPI: message of %zu bytes", bytes);
    struct kvr_comm_req *r = calloc(1, sizeof *r);
    if (!r) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    *r = (struct kvr_comm_req){.peer = peer, .tag = tag, .what = send ? "a send" : "a receive"};
    int rc = send ? MPI_Isend(buf, (int)bytes, MPI_BYTE, peer, tag, W(c), &r->r)
                  : MPI_Irecv(buf, (int)bytes, MPI_BYTE, peer, tag, W(c), &r->r);
    if (rc != MPI_SUCCESS) free(r);
    KVR_MPI_CHECK(rc);
    *req = r;
    return KVR_OK;
}

static enum kvr_status mpi_wait_req(struct kvr_comm *c, struct kvr_comm_req *req)
{
    enum kvr_status st = mpi_wait(c, &req->r, req->what, req->peer);
    free(req);
    return st;
}

static enum kvr_status mpi_allgather(struct kvr_comm *c, const void *send, void *recv,
                                     size_t bytes_each)
{
    if (bytes_each > INT32_MAX)
        return kvr_error(KVR_ERR_RANGE, "MPI: all-gather of %zu bytes", bytes_each);
    MPI_Request r;
    KVR_MPI_CHECK(
        MPI_Iallgather(send, (int)bytes_each, MPI_BYTE, recv, (int)bytes_each, MPI_BYTE, W(c), &r));
    return mpi_wait(c, &r, "an all-gather", -1);
}

static enum kvr_status mpi_allreduce_f32(struct kvr_comm *c, float *buf, size_t count)
{
    MPI_Request r;
    KVR_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, W(c), &r));
    return mpi_wait(c, &r, "an all-reduce", -1);
}

static enum kvr_status mpi_reduce_scatter_f32(struct kvr_comm *c, const float *send, float *recv,
                                              size_t count_each)
{
    MPI_Request r;
    KVR_MPI_CHECK(
        MPI_Ireduce_scatter_block(send, recv, (int)count_each, MPI_FLOAT, MPI_SUM, W(c), &r));
    return mpi_wait(c, &r, "a reduce-scatter", -1);
}

static enum kvr_status mpi_barrier(struct kvr_comm *c)
{
    MPI_Request r;
    KVR_MPI_CHECK(MPI_Ibarrier(W(c), &r));
    return mpi_wait(c, &r, "a barrier", -1);
}

static enum kvr_status mpi_max_f64(struct kvr_comm *c, double *v)
{
    MPI_Request r;
    KVR_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, v, 1, MPI_DOUBLE, MPI_MAX, W(c), &r));
    return mpi_wait(c, &r, "a maximum", -1);
}

static enum kvr_status mpi_bcast(struct kvr_comm *c, void *buf, size_t bytes, int root)
{
    if (bytes > INT32_MAX) return kvr_error(KVR_ERR_RANGE, "MPI: broadcast of %zu bytes", bytes);
    MPI_Request r;
    KVR_MPI_CHECK(MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, W(c), &r));
    return mpi_wait(c, &r, "a broadcast", -1);
}

/* Sizes first, then the bytes; rank 0 gets them concatenated in rank order. */
static enum kvr_status mpi_gather(struct kvr_comm *c, const void *mine, size_t bytes, void **all,
                                  size_t *all_bytes)
{
    *all = NULL, *all_bytes = 0;
    if (bytes > INT32_MAX) return kvr_error(KVR_ERR_RANGE, "MPI: gather of %zu bytes", bytes);
    int n = (int)bytes, *counts = calloc((size_t)c->size, sizeof *counts);
    int *displs = calloc((size_t)c->size, sizeof *displs);
    if (!counts || !displs) {
        free(counts), free(displs);
        return kvr_error(KVR_ERR_NOMEM, "out of memory");
    }
    MPI_Request r;
    enum kvr_status st = MPI_Igather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, W(c), &r)
                             ? kvr_error(KVR_ERR_RUNTIME, "MPI: gathering sizes failed")
                             : mpi_wait(c, &r, "a gather", -1);
    size_t total = 0;
    for (int k = 0; !st && c->rank == 0 && k < c->size; k++)
        displs[k] = (int)total, total += (size_t)counts[k];
    if (!st && total > INT32_MAX) st = kvr_error(KVR_ERR_RANGE, "MPI: gather of %zu bytes", total);
    char *buf = !st && c->rank == 0 ? malloc(total ? total : 1) : NULL;
    if (!st && c->rank == 0 && !buf) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st)
        st = MPI_Igatherv(mine, n, MPI_BYTE, buf, counts, displs, MPI_BYTE, 0, W(c), &r)
                 ? kvr_error(KVR_ERR_RUNTIME, "MPI: gather failed")
                 : mpi_wait(c, &r, "a gather", -1);
    free(counts), free(displs);
    if (st)
        free(buf);
    else
        *all = buf, *all_bytes = total;
    return st;
}

static void mpi_abort(int code)
{
    MPI_Abort(MPI_COMM_WORLD, code);
}

static enum kvr_status mpi_split(struct kvr_comm *c, int color, int key, struct kvr_comm *out)
{
    MPI_Comm *sub = malloc(sizeof *sub);
    if (!sub) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    int rc = MPI_Comm_split(W(c), color, key, sub);
    if (rc != MPI_SUCCESS) free(sub);
    KVR_MPI_CHECK(rc);
    out->mpi = sub;
    return KVR_OK;
}

static void mpi_comm_free(struct kvr_comm *c)
{
    if (!c->mpi) return;
    MPI_Comm_free((MPI_Comm *)c->mpi);
    free(c->mpi);
    c->mpi = NULL;
}

static enum kvr_status mpi_group(struct kvr_comm *c, bool start)
{
    (void)c, (void)start; /* MPI needs nothing */
    return KVR_OK;
}

const struct kvr_comm_host_ops kvr_comm_mpi_host = {
    .p2p = mpi_p2p,
    .wait = mpi_wait_req,
    .barrier = mpi_barrier,
    .max_f64 = mpi_max_f64,
    .bcast = mpi_bcast,
    .gather = mpi_gather,
    .version = mpi_version,
    .abort = mpi_abort,
    .split = mpi_split,
    .comm_free = mpi_comm_free,
};

const struct kvr_comm_ops kvr_comm_mpi_ops = {
    .name = "mpi",
    .device_buffers = false,
    .open = kvr_comm_mpi_open,
    .p2p = mpi_p2p,
    .wait = mpi_wait_req,
    .group = mpi_group,
    .allgather = mpi_allgather,
    .allreduce_f32 = mpi_allreduce_f32,
    .reduce_scatter_f32 = mpi_reduce_scatter_f32,
    .barrier = mpi_barrier,
    .host = &kvr_comm_mpi_host,
};
