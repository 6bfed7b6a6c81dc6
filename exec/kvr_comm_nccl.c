/* The nccl communicator: device buffers, one CUDA stream, completion by CUDA events polled
 * with the communicator's deadline (a dead or hung peer aborts the NCCL communicator and is an
 * error). The unique id travels over MPI from rank 0. */
#include <cuda_runtime_api.h>
#include <mpi.h>
/* nccl.h declares some functions without prototypes */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <nccl.h>
#pragma GCC diagnostic pop
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kvr_comm_int.h"
#include "kvr_cuda_check.h"

#define KVR_NCCL_CHECK(call)                                                                       \
    KVR_FOREIGN_CHECK(ncclResult_t, call, #call, ncclSuccess, "NCCL", ncclGetErrorString)

struct nccl_state {
    ncclComm_t comm;
    cudaStream_t stream;
    bool in_group;
    cudaEvent_t pending[256]; /* events of the open group: recorded once it is enqueued (the
                                 chain's direct hand-off: 2 per peer) */
    int n_pending;
};

#define NS(c) ((struct nccl_state *)(c)->nccl)

static enum kvr_status nccl_open(struct kvr_comm *c)
{
    enum kvr_status st = kvr_comm_mpi_open(c);
    if (st) return st;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
        return kvr_error(KVR_ERR_INPUT, "--comm nccl needs a CUDA device; this machine has none");
    KVR_CUDA_CHECK(cudaSetDevice(c->device % n));
    struct nccl_state *s = calloc(1, sizeof *s);
    if (!s) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    c->nccl = s;
    ncclUniqueId id;
    if (c->rank == 0) KVR_NCCL_CHECK(ncclGetUniqueId(&id));
    /* over this communicator's MPI side: the world's, or a sub-communicator's (kvr_comm_split) */
    if ((st = kvr_comm_mpi_host.bcast(c, &id, sizeof id, 0)))
        return kvr_error_prefix(st, "broadcasting the NCCL unique id: ");
    KVR_CUDA_CHECK(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    KVR_NCCL_CHECK(ncclCommInitRank(&s->comm, c->size, id, c->rank));
    return KVR_OK;
}

static void nccl_close(struct kvr_comm *c)
{
    struct nccl_state *s = NS(c);
    if (!s) return;
    if (s->comm) ncclCommDestroy(s->comm);
    if (s->stream) cudaStreamDestroy(s->stream);
    free(s);
    c->nccl = NULL;
}

static void nccl_abort(struct kvr_comm *c)
{
    if (NS(c) && NS(c)->comm) ncclCommAbort(NS(c)->comm), NS(c)->comm = NULL;
}

static void nccl_version(const struct kvr_comm *c, char *buf, size_t cap)
{
    (void)c;
    int v = 0;
    ncclGetVersion(&v);
    snprintf(buf, cap, "NCCL %d.%d.%d", v / 10000, v / 100 % 100, v % 100);
}

/* Waits for an event with the communicator's deadline. */
static enum kvr_status event_wait(struct kvr_comm *c, cudaEvent_t ev, const char *what)
{
    double t0 = kvr_comm_now_s();
    for (;;) {
        cudaError_t e = cudaEventQuery(ev);
        if (e == cudaSuccess) return KVR_OK;
        if (e != cudaErrorNotReady) KVR_CUDA_CHECK(e);
        if (kvr_comm_now_s() - t0 > c->timeout_s) {
            nccl_abort(c);
            return kvr_error(KVR_ERR_RUNTIME,
                             "rank %d: timed out after %.0f s waiting for %s (NCCL): a rank died "
                             "or hangs",
                             c->rank, c->timeout_s, what);
        }
        kvr_comm_backoff(kvr_comm_now_s() - t0);
    }
}

/* A request is the event recorded after the operation. */
static enum kvr_status nccl_p2p(struct kvr_comm *c, void *buf, size_t bytes, int peer, int tag,
                                bool send, struct kvr_comm_req **req)
{
    (void)tag; /* NCCL orders a pair's transfers on the stream */
    struct nccl_state *s = NS(c);
    cudaEvent_t ev;
    if (send)
        KVR_NCCL_CHECK(ncclSend(buf, bytes, ncclChar, peer, s->comm, s->stream));
    else
        KVR_NCCL_CHECK(ncclRecv(buf, bytes, ncclChar, peer, s->comm, s->stream));
    if (s->in_group && s->n_pending == (int)(sizeof s->pending / sizeof s->pending[0]))
        return kvr_error(KVR_ERR_RUNTIME, "nccl: more than %d transfers in one group",
                         s->n_pending);
    KVR_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    /* inside a group nothing is on the stream before ncclGroupEnd: record the event then */
    if (s->in_group)
        s->pending[s->n_pending++] = ev;
    else
        KVR_CUDA_CHECK(cudaEventRecord(ev, s->stream));
    *req = (struct kvr_comm_req *)ev;
    return KVR_OK;
}

static enum kvr_status nccl_wait(struct kvr_comm *c, struct kvr_comm_req *req)
{
    cudaEvent_t ev = (cudaEvent_t)req;
    enum kvr_status st = event_wait(c, ev, "a point-to-point transfer");
    cudaEventDestroy(ev);
    return st;
}

static enum kvr_status nccl_sync(struct kvr_comm *c)
{
    cudaEvent_t ev;
    KVR_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    KVR_CUDA_CHECK(cudaEventRecord(ev, NS(c)->stream));
    enum kvr_status st = event_wait(c, ev, "a collective");
    cudaEventDestroy(ev);
    return st;
}

static enum kvr_status nccl_allgather(struct kvr_comm *c, const void *send, void *recv,
                                      size_t bytes_each)
{
    KVR_NCCL_CHECK(ncclAllGather(send, recv, bytes_each, ncclChar, NS(c)->comm, NS(c)->stream));
    return nccl_sync(c);
}

static enum kvr_status nccl_allreduce(struct kvr_comm *c, float *buf, size_t count)
{
    KVR_NCCL_CHECK(ncclAllReduce(buf, buf, count, ncclFloat, ncclSum, NS(c)->comm, NS(c)->stream));
    return nccl_sync(c);
}

static enum kvr_status nccl_reduce_scatter(struct kvr_comm *c, const float *send, float *recv,
                                           size_t count_each)
{
    KVR_NCCL_CHECK(
        ncclReduceScatter(send, recv, count_each, ncclFloat, ncclSum, NS(c)->comm, NS(c)->stream));
    return nccl_sync(c);
}

static enum kvr_status nccl_group(struct kvr_comm *c, bool start)
{
    struct nccl_state *s = NS(c);
    KVR_NCCL_CHECK(start ? ncclGroupStart() : ncclGroupEnd());
    s->in_group = start;
    for (; !start && s->n_pending > 0; s->n_pending--)
        KVR_CUDA_CHECK(cudaEventRecord(s->pending[s->n_pending - 1], s->stream));
    return KVR_OK;
}

/* A barrier: this rank's NCCL work done, then MPI's barrier. */
static enum kvr_status nccl_barrier(struct kvr_comm *c)
{
    enum kvr_status st = nccl_sync(c);
    return st ? st : kvr_comm_mpi_host.barrier(c);
}

const struct kvr_comm_ops kvr_comm_nccl_ops = {
    .name = "nccl",
    .device_buffers = true,
    .open = nccl_open,
    .close = nccl_close,
    .abort = nccl_abort,
    .version = nccl_version,
    .p2p = nccl_p2p,
    .wait = nccl_wait,
    .group = nccl_group,
    .allgather = nccl_allgather,
    .allreduce_f32 = nccl_allreduce,
    .reduce_scatter_f32 = nccl_reduce_scatter,
    .barrier = nccl_barrier,
    .host = &kvr_comm_mpi_host,
};
