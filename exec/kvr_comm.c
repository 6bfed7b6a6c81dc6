/* The communicator: the mpi implementation here, nccl in kvr_comm_nccl.c. Nonblocking MPI
 * calls everywhere (collectives too), completed by polling with a deadline, so a dead or hung
 * peer is an error after timeout_s instead of a hang. */
#include "kvr_comm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvr_comm_impl.h"
#include "kvr_config.h"

const char *kvr_comm_kind_name(enum kvr_comm_kind k)
{
    return k == KVR_COMM_NCCL ? "nccl" : "mpi";
}

int kvr_comm_kind_from_name(const char *s)
{
    if (!strcmp(s, "mpi")) return KVR_COMM_MPI;
    if (!strcmp(s, "nccl")) return KVR_COMM_NCCL;
    return -1;
}

double kvr_comm_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if KVR_HAVE_MPI
#include <mpi.h>

#include "kvr_mpi_check.h"

struct kvr_comm_req {
    MPI_Request r;
    int peer, tag;
    const char *what;
};

void kvr_comm_backoff(double waited_s)
{
    if (waited_s > 2e-3) nanosleep(&(struct timespec){.tv_nsec = 20000}, NULL);
}

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

enum kvr_status kvr_comm_open(enum kvr_comm_kind kind, int device, double timeout_s,
                              struct kvr_comm **out)
{
    *out = NULL;
    int init = 0;
    MPI_Initialized(&init);
    if (!init) return kvr_error(KVR_ERR_USAGE, "the multi-rank schemes run under mpirun");
    struct kvr_comm *c = calloc(1, sizeof *c);
    if (!c) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    c->kind = kind, c->timeout_s = timeout_s > 0 ? timeout_s : 1e9, c->device = device;
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    enum kvr_status st = kind == KVR_COMM_NCCL ? kvr_comm_nccl_open(c) : KVR_OK;
    if (st) {
        free(c);
        return st;
    }
    *out = c;
    return KVR_OK;
}

void kvr_comm_close(struct kvr_comm *c)
{
    if (!c) return;
    if (c->kind == KVR_COMM_NCCL) kvr_comm_nccl_close(c);
    free(c);
}

void kvr_comm_versions(const struct kvr_comm *c, char *mpi, size_t mpi_cap, char *nccl,
                       size_t nccl_cap)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    v[strcspn(v, ",\n")] = 0; /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
    snprintf(mpi, mpi_cap, "%s", v);
    kvr_comm_nccl_version(c, nccl, nccl_cap);
}

/* Point-to-point over MPI (host memory), whatever the communicator's kind. */
static enum kvr_status mpi_p2p(void *buf, size_t bytes, int peer, int tag, bool send,
                               struct kvr_comm_req **req)
{
    if (bytes > INT32_MAX) return kvr_error(KVR_ERR_RANGE, "MPI: message of %zu bytes", bytes);
    struct kvr_comm_req *r = calloc(1, sizeof *r);
    if (!r) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    *r = (struct kvr_comm_req){.peer = peer, .tag = tag, .what = send ? "a send" : "a receive"};
    int rc = send ? MPI_Isend(buf, (int)bytes, MPI_BYTE, peer, tag, MPI_COMM_WORLD, &r->r)
                  : MPI_Irecv(buf, (int)bytes, MPI_BYTE, peer, tag, MPI_COMM_WORLD, &r->r);
    if (rc != MPI_SUCCESS) free(r);
    KVR_MPI_CHECK(rc);
    *req = r;
    return KVR_OK;
}

enum kvr_status kvr_comm_isend(struct kvr_comm *c, const void *buf, size_t bytes, int peer, int tag,
                               struct kvr_comm_req **req)
{
    if (c->kind == KVR_COMM_NCCL) return kvr_comm_nccl_p2p(c, (void *)buf, bytes, peer, true, req);
    return mpi_p2p((void *)buf, bytes, peer, tag, true, req);
}

enum kvr_status kvr_comm_irecv(struct kvr_comm *c, void *buf, size_t bytes, int peer, int tag,
                               struct kvr_comm_req **req)
{
    if (c->kind == KVR_COMM_NCCL) return kvr_comm_nccl_p2p(c, buf, bytes, peer, false, req);
    return mpi_p2p(buf, bytes, peer, tag, false, req);
}

enum kvr_status kvr_comm_wait(struct kvr_comm *c, struct kvr_comm_req *req)
{
    if (c->kind == KVR_COMM_NCCL) return kvr_comm_nccl_wait(c, req);
    return kvr_comm_host_wait(c, req);
}

enum kvr_status kvr_comm_host_isend(struct kvr_comm *c, const void *buf, size_t bytes, int peer,
                                    int tag, struct kvr_comm_req **req)
{
    (void)c;
    return mpi_p2p((void *)buf, bytes, peer, tag, true, req);
}

enum kvr_status kvr_comm_host_irecv(struct kvr_comm *c, void *buf, size_t bytes, int peer, int tag,
                                    struct kvr_comm_req **req)
{
    (void)c;
    return mpi_p2p(buf, bytes, peer, tag, false, req);
}

enum kvr_status kvr_comm_host_wait(struct kvr_comm *c, struct kvr_comm_req *req)
{
    enum kvr_status st = mpi_wait(c, &req->r, req->what, req->peer);
    free(req);
    return st;
}

enum kvr_status kvr_comm_allgather(struct kvr_comm *c, const void *send, void *recv,
                                   size_t bytes_each)
{
    if (c->kind == KVR_COMM_NCCL) return kvr_comm_nccl_allgather(c, send, recv, bytes_each);
    if (bytes_each > INT32_MAX)
        return kvr_error(KVR_ERR_RANGE, "MPI: all-gather of %zu bytes", bytes_each);
    MPI_Request r;
    KVR_MPI_CHECK(MPI_Iallgather(send, (int)bytes_each, MPI_BYTE, recv, (int)bytes_each, MPI_BYTE,
                                 MPI_COMM_WORLD, &r));
    return mpi_wait(c, &r, "an all-gather", -1);
}

enum kvr_status kvr_comm_allreduce_f32(struct kvr_comm *c, float *buf, size_t count)
{
    if (c->kind == KVR_COMM_NCCL) return kvr_comm_nccl_allreduce(c, buf, count);
    MPI_Request r;
    KVR_MPI_CHECK(
        MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r));
    return mpi_wait(c, &r, "an all-reduce", -1);
}

enum kvr_status kvr_comm_reduce_scatter_f32(struct kvr_comm *c, const float *send, float *recv,
                                            size_t count_each)
{
    if (c->kind == KVR_COMM_NCCL) return kvr_comm_nccl_reduce_scatter(c, send, recv, count_each);
    MPI_Request r;
    KVR_MPI_CHECK(MPI_Ireduce_scatter_block(send, recv, (int)count_each, MPI_FLOAT, MPI_SUM,
                                            MPI_COMM_WORLD, &r));
    return mpi_wait(c, &r, "a reduce-scatter", -1);
}

enum kvr_status kvr_comm_barrier(struct kvr_comm *c)
{
    if (c->kind == KVR_COMM_NCCL) {
        enum kvr_status st = kvr_comm_nccl_sync(c);
        if (st) return st;
    }
    MPI_Request r;
    KVR_MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &r));
    return mpi_wait(c, &r, "a barrier", -1);
}

enum kvr_status kvr_comm_max_f64(struct kvr_comm *c, double *v)
{
    MPI_Request r;
    KVR_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD, &r));
    return mpi_wait(c, &r, "a maximum", -1);
}

enum kvr_status kvr_comm_bcast(struct kvr_comm *c, void *buf, size_t bytes, int root)
{
    if (bytes > INT32_MAX) return kvr_error(KVR_ERR_RANGE, "MPI: broadcast of %zu bytes", bytes);
    MPI_Request r;
    KVR_MPI_CHECK(MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD, &r));
    return mpi_wait(c, &r, "a broadcast", -1);
}

/* Sizes first, then the bytes; rank 0 gets them concatenated in rank order. */
enum kvr_status kvr_comm_gather(struct kvr_comm *c, const void *mine, size_t bytes, void **all,
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
    enum kvr_status st = MPI_Igather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD, &r)
                             ? kvr_error(KVR_ERR_RUNTIME, "MPI: gathering sizes failed")
                             : mpi_wait(c, &r, "a gather", -1);
    size_t total = 0;
    for (int k = 0; !st && c->rank == 0 && k < c->size; k++)
        displs[k] = (int)total, total += (size_t)counts[k];
    if (!st && total > INT32_MAX) st = kvr_error(KVR_ERR_RANGE, "MPI: gather of %zu bytes", total);
    char *buf = !st && c->rank == 0 ? malloc(total ? total : 1) : NULL;
    if (!st && c->rank == 0 && !buf) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st)
        st = MPI_Igatherv(mine, n, MPI_BYTE, buf, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD, &r)
                 ? kvr_error(KVR_ERR_RUNTIME, "MPI: gather failed")
                 : mpi_wait(c, &r, "a gather", -1);
    free(counts), free(displs);
    if (st)
        free(buf);
    else
        *all = buf, *all_bytes = total;
    return st;
}

void kvr_comm_abort(struct kvr_comm *c, int code)
{
    if (c && c->kind == KVR_COMM_NCCL) kvr_comm_nccl_abort(c);
    MPI_Abort(MPI_COMM_WORLD, code);
}

#else /* built without MPI */

enum kvr_status kvr_comm_open(enum kvr_comm_kind kind, int device, double timeout_s,
                              struct kvr_comm **out)
{
    (void)kind, (void)device, (void)timeout_s;
    *out = NULL;
    return kvr_error(KVR_ERR_INPUT, "the multi-rank schemes need MPI: this kvr was built without "
                                    "it (install Open MPI and rebuild)");
}

void kvr_comm_close(struct kvr_comm *c)
{
    (void)c;
}

void kvr_comm_versions(const struct kvr_comm *c, char *mpi, size_t mpi_cap, char *nccl,
                       size_t nccl_cap)
{
    (void)c;
    snprintf(mpi, mpi_cap, "none"), snprintf(nccl, nccl_cap, "none");
}

#define NO_MPI return kvr_error(KVR_ERR_RUNTIME, "built without MPI")
enum kvr_status kvr_comm_isend(struct kvr_comm *c, const void *b, size_t n, int p, int t,
                               struct kvr_comm_req **r)
{
    (void)c, (void)b, (void)n, (void)p, (void)t, (void)r;
    NO_MPI;
}
enum kvr_status kvr_comm_irecv(struct kvr_comm *c, void *b, size_t n, int p, int t,
                               struct kvr_comm_req **r)
{
    (void)c, (void)b, (void)n, (void)p, (void)t, (void)r;
    NO_MPI;
}
enum kvr_status kvr_comm_wait(struct kvr_comm *c, struct kvr_comm_req *r)
{
    (void)c, (void)r;
    NO_MPI;
}
enum kvr_status kvr_comm_host_isend(struct kvr_comm *c, const void *b, size_t n, int p, int t,
                                    struct kvr_comm_req **r)
{
    (void)c, (void)b, (void)n, (void)p, (void)t, (void)r;
    NO_MPI;
}
enum kvr_status kvr_comm_host_irecv(struct kvr_comm *c, void *b, size_t n, int p, int t,
                                    struct kvr_comm_req **r)
{
    (void)c, (void)b, (void)n, (void)p, (void)t, (void)r;
    NO_MPI;
}
enum kvr_status kvr_comm_host_wait(struct kvr_comm *c, struct kvr_comm_req *r)
{
    (void)c, (void)r;
    NO_MPI;
}
enum kvr_status kvr_comm_allgather(struct kvr_comm *c, const void *s, void *r, size_t n)
{
    (void)c, (void)s, (void)r, (void)n;
    NO_MPI;
}
enum kvr_status kvr_comm_allreduce_f32(struct kvr_comm *c, float *b, size_t n)
{
    (void)c, (void)b, (void)n;
    NO_MPI;
}
enum kvr_status kvr_comm_reduce_scatter_f32(struct kvr_comm *c, const float *s, float *r, size_t n)
{
    (void)c, (void)s, (void)r, (void)n;
    NO_MPI;
}
enum kvr_status kvr_comm_barrier(struct kvr_comm *c)
{
    (void)c;
    NO_MPI;
}
enum kvr_status kvr_comm_max_f64(struct kvr_comm *c, double *v)
{
    (void)c, (void)v;
    NO_MPI;
}
enum kvr_status kvr_comm_bcast(struct kvr_comm *c, void *b, size_t n, int root)
{
    (void)c, (void)b, (void)n, (void)root;
    NO_MPI;
}
enum kvr_status kvr_comm_gather(struct kvr_comm *c, const void *m, size_t n, void **a, size_t *an)
{
    (void)c, (void)m, (void)n, (void)a, (void)an;
    NO_MPI;
}
void kvr_comm_abort(struct kvr_comm *c, int code)
{
    (void)c, (void)code;
}
#endif

enum kvr_status kvr_comm_group(struct kvr_comm *c, bool start)
{
    return c && c->kind == KVR_COMM_NCCL ? kvr_comm_nccl_group(c, start) : KVR_OK;
}

int kvr_comm_rank(const struct kvr_comm *c)
{
    return c ? c->rank : 0;
}

int kvr_comm_size(const struct kvr_comm *c)
{
    return c ? c->size : 1;
}

bool kvr_comm_device_buffers(const struct kvr_comm *c)
{
    return c && c->kind == KVR_COMM_NCCL;
}
