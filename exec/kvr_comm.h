/* Communicators of the multi-rank executor: one interface, two implementations.
 *   mpi   host buffers (the schemes stage device data through the host), any backend;
 *   nccl  device buffers, one rank per GPU, its unique id bootstrapped over MPI.
 * Both live on MPI_COMM_WORLD, which the program has initialised. Every wait has a timeout: a
 * rank that died or hangs makes the others fail with a clear error instead of waiting forever.
 * Requests complete in any order; kvr_comm_wait frees them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kvr_status.h"

enum kvr_comm_kind { KVR_COMM_MPI, KVR_COMM_NCCL };

struct kvr_comm;
struct kvr_comm_req;

const char *kvr_comm_kind_name(enum kvr_comm_kind k);
int kvr_comm_kind_from_name(const char *s); /* -1 when unknown */

/* timeout_s > 0 bounds every wait. nccl needs CUDA and NCCL (and device: the GPU of this rank). */
enum kvr_status kvr_comm_open(enum kvr_comm_kind kind, int device, double timeout_s,
                              struct kvr_comm **out);
void kvr_comm_close(struct kvr_comm *c);
/* A sub-communicator of c, of c's kind (every rank of c calls it): the ranks of c with the same
 * color, ranked by key. mpi: MPI_Comm_split; nccl: a new NCCL communicator over those ranks, its
 * unique id broadcast over the MPI sub-communicator. Close it before c. */
enum kvr_status kvr_comm_split(struct kvr_comm *c, int color, int key, struct kvr_comm **out);
int kvr_comm_rank(const struct kvr_comm *c);
int kvr_comm_size(const struct kvr_comm *c);
bool kvr_comm_device_buffers(const struct kvr_comm *c); /* nccl: buffers are device memory */
/* Library versions for provenance ("Open MPI v4.1.4", "NCCL 2.28.3"). */
void kvr_comm_versions(const struct kvr_comm *c, char *mpi, size_t mpi_cap, char *nccl,
                       size_t nccl_cap);

enum kvr_status kvr_comm_isend(struct kvr_comm *c, const void *buf, size_t bytes, int peer, int tag,
                               struct kvr_comm_req **req);
enum kvr_status kvr_comm_irecv(struct kvr_comm *c, void *buf, size_t bytes, int peer, int tag,
                               struct kvr_comm_req **req);
enum kvr_status kvr_comm_wait(struct kvr_comm *c, struct kvr_comm_req *req);
/* Small host messages over MPI beside an nccl communicator (the send times that link
 * emulation needs); wait for them with kvr_comm_host_wait. */
enum kvr_status kvr_comm_host_isend(struct kvr_comm *c, const void *buf, size_t bytes, int peer,
                                    int tag, struct kvr_comm_req **req);
enum kvr_status kvr_comm_host_irecv(struct kvr_comm *c, void *buf, size_t bytes, int peer, int tag,
                                    struct kvr_comm_req **req);
enum kvr_status kvr_comm_host_wait(struct kvr_comm *c, struct kvr_comm_req *req);
/* Brackets sends and receives that must be issued together (a ring step): NCCL groups them,
 * MPI needs nothing. */
enum kvr_status kvr_comm_group(struct kvr_comm *c, bool start);

/* recv holds size * bytes_each: rank r's part at r * bytes_each. */
enum kvr_status kvr_comm_allgather(struct kvr_comm *c, const void *send, void *recv,
                                   size_t bytes_each);
/* Sums of float32: all-reduce in place; reduce-scatter leaves rank r the sum of part r. */
enum kvr_status kvr_comm_allreduce_f32(struct kvr_comm *c, float *buf, size_t count);
enum kvr_status kvr_comm_reduce_scatter_f32(struct kvr_comm *c, const float *send, float *recv,
                                            size_t count_each);
enum kvr_status kvr_comm_barrier(struct kvr_comm *c);
/* The largest of every rank's value (for TTFT: the last rank to finish). */
enum kvr_status kvr_comm_max_f64(struct kvr_comm *c, double *v);
/* root's bytes to every rank. */
enum kvr_status kvr_comm_bcast(struct kvr_comm *c, void *buf, size_t bytes, int root);
/* Every rank's bytes (any number per rank) to rank 0, concatenated in rank order into *all
 * and *all_bytes (rank 0 only; free()). */
enum kvr_status kvr_comm_gather(struct kvr_comm *c, const void *mine, size_t bytes, void **all,
                                size_t *all_bytes);
/* A clock every rank of c reads alike: rank 0's CLOCK_MONOTONIC. kvr_comm_sync_clock (every
 * rank calls it; it runs once per communicator) finds this rank's offset to it: 0 when every
 * rank runs on one host (one clock), else the offset of the fastest of 16 round trips to rank
 * 0. kvr_comm_clock_offset_s: that offset (0 before the sync). */
enum kvr_status kvr_comm_sync_clock(struct kvr_comm *c);
double kvr_comm_clock_offset_s(const struct kvr_comm *c);

/* Ends every rank (after a failure the others cannot see). */
void kvr_comm_abort(struct kvr_comm *c, int code);
