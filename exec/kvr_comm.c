/* The communicator: opening picks the kind's method table (kvr_comm_int.h), and every call
 * goes through it: mpi in kvr_comm_mpi.c, nccl in kvr_comm_nccl.c. A kind that was not built
 * is refused at open with what to do instead. */
#include "kvr_comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvr_comm_int.h"
#include "kvr_config.h"

#define KVR_COMM_NCCL_BUILT (KVR_HAVE_NCCL && KVR_HAVE_CUDA && KVR_HAVE_MPI)

static const char *const kind_names[] = {[KVR_COMM_MPI] = "mpi", [KVR_COMM_NCCL] = "nccl"};

const char *kvr_comm_kind_name(enum kvr_comm_kind k)
{
    return k == KVR_COMM_NCCL ? kind_names[k] : kind_names[KVR_COMM_MPI];
}

int kvr_comm_kind_from_name(const char *s)
{
    for (int k = 0; k < (int)(sizeof kind_names / sizeof *kind_names); k++)
        if (!strcmp(kind_names[k], s)) return k;
    return -1;
}

double kvr_comm_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void kvr_comm_backoff(double waited_s)
{
    if (waited_s > 2e-3) nanosleep(&(struct timespec){.tv_nsec = 20000}, NULL);
}

/* The method table of a kind, or NULL with the reason when it was not built. */
static const struct kvr_comm_ops *ops_of(enum kvr_comm_kind kind)
{
    if (!KVR_HAVE_MPI) {
        kvr_error(KVR_ERR_INPUT, "the multi-rank schemes need MPI: this kvr was built without it "
                                 "(install Open MPI and rebuild)");
        return NULL;
    }
    if (kind == KVR_COMM_NCCL && !KVR_COMM_NCCL_BUILT) {
        kvr_error(KVR_ERR_INPUT, "--comm nccl: this kvr was built without NCCL and CUDA (use "
                                 "--comm mpi, or build on a machine with both)");
        return NULL;
    }
#if KVR_COMM_NCCL_BUILT
    if (kind == KVR_COMM_NCCL) return &kvr_comm_nccl_ops;
#endif
#if KVR_HAVE_MPI
    return &kvr_comm_mpi_ops;
#else
    return NULL;
#endif
}

void kvr_comm_close(struct kvr_comm *c)
{
    if (!c) return;
    if (c->ops->close) c->ops->close(c);
    if (c->mpi) c->ops->host->comm_free(c);
    free(c);
}

/* c, opened (st is KVR_OK), to *out; else closed. */
static enum kvr_status opened(struct kvr_comm *c, enum kvr_status st, struct kvr_comm **out)
{
    if (st)
        kvr_comm_close(c);
    else
        *out = c;
    return st;
}

enum kvr_status kvr_comm_split(struct kvr_comm *parent, int color, int key, struct kvr_comm **out)
{
    *out = NULL;
    struct kvr_comm *c = calloc(1, sizeof *c);
    if (!c) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    *c = (struct kvr_comm){.ops = parent->ops,
                           .kind = parent->kind,
                           .device = parent->device,
                           .timeout_s = parent->timeout_s};
    enum kvr_status st = parent->ops->host->split(parent, color, key, c);
    if (!st) st = c->ops->open(c); /* rank and size in the sub-communicator, the kind's set-up */
    return opened(c, st, out);
}

enum kvr_status kvr_comm_open(enum kvr_comm_kind kind, int device, double timeout_s,
                              struct kvr_comm **out)
{
    *out = NULL;
    const struct kvr_comm_ops *ops = ops_of(kind);
    if (!ops) return KVR_ERR_INPUT;
    struct kvr_comm *c = calloc(1, sizeof *c);
    if (!c) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    *c = (struct kvr_comm){
        .ops = ops, .kind = kind, .device = device, .timeout_s = timeout_s > 0 ? timeout_s : 1e9};
    enum kvr_status st = ops->open(c);
    return opened(c, st, out);
}

void kvr_comm_versions(const struct kvr_comm *c, char *mpi, size_t mpi_cap, char *nccl,
                       size_t nccl_cap)
{
    snprintf(mpi, mpi_cap, "none"), snprintf(nccl, nccl_cap, "none");
    if (c) c->ops->host->version(mpi, mpi_cap);
#if KVR_COMM_NCCL_BUILT
    if (c) kvr_comm_nccl_ops.version(c, nccl, nccl_cap); /* the NCCL built in, either kind */
#endif
}

enum kvr_status kvr_comm_isend(struct kvr_comm *c, const void *buf, size_t bytes, int peer, int tag,
                               struct kvr_comm_req **req)
{
    return c->ops->p2p(c, (void *)buf, bytes, peer, tag, true, req);
}

enum kvr_status kvr_comm_irecv(struct kvr_comm *c, void *buf, size_t bytes, int peer, int tag,
                               struct kvr_comm_req **req)
{
    return c->ops->p2p(c, buf, bytes, peer, tag, false, req);
}

enum kvr_status kvr_comm_wait(struct kvr_comm *c, struct kvr_comm_req *req)
{
    return c->ops->wait(c, req);
}

enum kvr_status kvr_comm_host_isend(struct kvr_comm *c, const void *buf, size_t bytes, int peer,
                                    int tag, struct kvr_comm_req **req)
{
    return c->ops->host->p2p(c, (void *)buf, bytes, peer, tag, true, req);
}

enum kvr_status kvr_comm_host_irecv(struct kvr_comm *c, void *buf, size_t bytes, int peer, int tag,
                                    struct kvr_comm_req **req)
{
    return c->ops->host->p2p(c, buf, bytes, peer, tag, false, req);
}

enum kvr_status kvr_comm_host_wait(struct kvr_comm *c, struct kvr_comm_req *req)
{
    return c->ops->host->wait(c, req);
}

enum kvr_status kvr_comm_group(struct kvr_comm *c, bool start)
{
    return c ? c->ops->group(c, start) : KVR_OK;
}

enum kvr_status kvr_comm_allgather(struct kvr_comm *c, const void *send, void *recv,
                                   size_t bytes_each)
{
    return c->ops->allgather(c, send, recv, bytes_each);
}

enum kvr_status kvr_comm_allreduce_f32(struct kvr_comm *c, float *buf, size_t count)
{
    return c->ops->allreduce_f32(c, buf, count);
}

enum kvr_status kvr_comm_reduce_scatter_f32(struct kvr_comm *c, const float *send, float *recv,
                                            size_t count_each)
{
    return c->ops->reduce_scatter_f32(c, send, recv, count_each);
}

enum kvr_status kvr_comm_barrier(struct kvr_comm *c)
{
    return c->ops->barrier(c);
}

enum kvr_status kvr_comm_max_f64(struct kvr_comm *c, double *v)
{
    return c->ops->host->max_f64(c, v);
}

enum kvr_status kvr_comm_bcast(struct kvr_comm *c, void *buf, size_t bytes, int root)
{
    return c->ops->host->bcast(c, buf, bytes, root);
}

enum kvr_status kvr_comm_gather(struct kvr_comm *c, const void *mine, size_t bytes, void **all,
                                size_t *all_bytes)
{
    return c->ops->host->gather(c, mine, bytes, all, all_bytes);
}

void kvr_comm_abort(struct kvr_comm *c, int code)
{
    if (!c) return;
    if (c->ops->abort) c->ops->abort(c);
    c->ops->host->abort(code);
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
    return c && c->ops->device_buffers;
}

double kvr_comm_clock_offset_s(const struct kvr_comm *c)
{
    return c ? c->clock_offset_s : 0;
}

/* Whether every rank of c runs on rank 0's host (rank 0's host name broadcast, each compares). */
static enum kvr_status one_host(struct kvr_comm *c, bool *same)
{
    char mine[256] = "", root[256] = "";
    gethostname(mine, sizeof mine - 1);
    memcpy(root, mine, sizeof root);
    enum kvr_status st = kvr_comm_bcast(c, root, sizeof root, 0);
    double other = strcmp(mine, root) != 0;
    if (!st) st = kvr_comm_max_f64(c, &other);
    *same = other == 0;
    return st;
}

/* Ranks on other hosts: rank 0 answers each rank's 16 pings with its clock in turn; a rank's
 * offset is its clock at the middle of its fastest round trip less rank 0's answer. */
static enum kvr_status ping_offsets(struct kvr_comm *c)
{
    enum { ROUNDS = 16, TAG = 32000 };
    enum kvr_status st = KVR_OK;
    double best = 1e30;
    for (int r = 1; r < c->size && !st; r++)
        for (int k = 0; k < ROUNDS && !st && (c->rank == 0 || c->rank == r); k++) {
            struct kvr_comm_req *q = NULL;
            double t1 = kvr_comm_now_s(), t0 = 0, ping = 0;
            if (c->rank == 0) {
                if (!(st = kvr_comm_host_irecv(c, &ping, sizeof ping, r, TAG, &q)) &&
                    !(st = kvr_comm_host_wait(c, q))) {
                    t0 = kvr_comm_now_s();
                    if (!(st = kvr_comm_host_isend(c, &t0, sizeof t0, r, TAG, &q)))
                        st = kvr_comm_host_wait(c, q);
                }
                continue;
            }
            if (!(st = kvr_comm_host_isend(c, &t1, sizeof t1, 0, TAG, &q)) &&
                !(st = kvr_comm_host_wait(c, q)) &&
                !(st = kvr_comm_host_irecv(c, &t0, sizeof t0, 0, TAG, &q)) &&
                !(st = kvr_comm_host_wait(c, q))) {
                double t2 = kvr_comm_now_s();
                if (t2 - t1 < best) best = t2 - t1, c->clock_offset_s = (t1 + t2) / 2 - t0;
            }
        }
    return st;
}

enum kvr_status kvr_comm_sync_clock(struct kvr_comm *c)
{
    if (!c || c->clock_synced) return KVR_OK;
    bool same = false;
    c->clock_offset_s = 0;
    enum kvr_status st = one_host(c, &same);
    if (!st && !same) st = ping_offsets(c);
    c->clock_synced = !st;
    return st;
}
