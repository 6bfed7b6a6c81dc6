/* Built without NCCL (or CUDA, or MPI): --comm nccl says so. */
#include "kvr_comm_impl.h"

#include <stdio.h>

enum kvr_status kvr_comm_nccl_open(struct kvr_comm *c)
{
    (void)c;
    return kvr_error(KVR_ERR_INPUT, "--comm nccl: this kvr was built without NCCL and CUDA "
                                    "(use --comm mpi, or build on a machine with both)");
}

#define NO_NCCL return kvr_error(KVR_ERR_RUNTIME, "built without NCCL")
void kvr_comm_nccl_close(struct kvr_comm *c)
{
    (void)c;
}
void kvr_comm_nccl_abort(struct kvr_comm *c)
{
    (void)c;
}
void kvr_comm_nccl_version(const struct kvr_comm *c, char *buf, size_t cap)
{
    (void)c;
    snprintf(buf, cap, "none");
}
enum kvr_status kvr_comm_nccl_p2p(struct kvr_comm *c, void *b, size_t n, int p, bool s,
                                  struct kvr_comm_req **r)
{
    (void)c, (void)b, (void)n, (void)p, (void)s, (void)r;
    NO_NCCL;
}
enum kvr_status kvr_comm_nccl_wait(struct kvr_comm *c, struct kvr_comm_req *r)
{
    (void)c, (void)r;
    NO_NCCL;
}
enum kvr_status kvr_comm_nccl_allgather(struct kvr_comm *c, const void *s, void *r, size_t n)
{
    (void)c, (void)s, (void)r, (void)n;
    NO_NCCL;
}
enum kvr_status kvr_comm_nccl_allreduce(struct kvr_comm *c, float *b, size_t n)
{
    (void)c, (void)b, (void)n;
    NO_NCCL;
}
enum kvr_status kvr_comm_nccl_reduce_scatter(struct kvr_comm *c, const float *s, float *r, size_t n)
{
    (void)c, (void)s, (void)r, (void)n;
    NO_NCCL;
}
enum kvr_status kvr_comm_nccl_sync(struct kvr_comm *c)
{
    (void)c;
    NO_NCCL;
}
enum kvr_status kvr_comm_nccl_group(struct kvr_comm *c, bool start)
{
    (void)c, (void)start;
    return KVR_OK;
}
