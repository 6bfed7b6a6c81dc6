/* Internal to the communicator: its state, and the nccl implementation's entry points
 * (kvr_comm_nccl.c, or its stub without NCCL). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kvr_comm.h"

struct kvr_comm {
    enum kvr_comm_kind kind;
    int rank, size, device;
    double timeout_s;
    void *nccl; /* struct nccl_state, nccl only */
};

double kvr_comm_now_s(void);
/* Between two polls of a pending operation, `waited_s` into the wait: nothing for the first
 * 2 ms (a sleep costs 50-80 us of timer slack, which every hop of the chain would pay), then a
 * short sleep so that long waits leave the core alone. */
void kvr_comm_backoff(double waited_s);

enum kvr_status kvr_comm_nccl_open(struct kvr_comm *c);
void kvr_comm_nccl_close(struct kvr_comm *c);
void kvr_comm_nccl_version(const struct kvr_comm *c, char *buf, size_t cap);
enum kvr_status kvr_comm_nccl_p2p(struct kvr_comm *c, void *buf, size_t bytes, int peer, bool send,
                                  struct kvr_comm_req **req);
enum kvr_status kvr_comm_nccl_wait(struct kvr_comm *c, struct kvr_comm_req *req);
enum kvr_status kvr_comm_nccl_allgather(struct kvr_comm *c, const void *send, void *recv,
                                        size_t bytes_each);
enum kvr_status kvr_comm_nccl_allreduce(struct kvr_comm *c, float *buf, size_t count);
enum kvr_status kvr_comm_nccl_reduce_scatter(struct kvr_comm *c, const float *send, float *recv,
                                             size_t count_each);
enum kvr_status kvr_comm_nccl_sync(struct kvr_comm *c);
void kvr_comm_nccl_abort(struct kvr_comm *c);
enum kvr_status kvr_comm_nccl_group(struct kvr_comm *c, bool start);
