/* The schemes on real ranks: one rank per process (mpirun), each with its own executor holding
 * the full weights, the KV cache moved by a communicator.
 *   kvr         KV-Runahead: rank i prefills chunk [S(i-1), S(i)); per layer it receives layer
 *               l's cache [0, S(i-1)) from rank i-1, appends its own K/V and sends [0, S(i)) to
 *               rank i+1 (asynchronously, before its own attention), then attends; or, with
 *               kv_forward streamed, every piece (a rank's chunk of the layer) forwarded as
 *               it arrives, or direct, each rank's chunk sent to every later rank.
 *   tsp, tsp-causal   even chunks; per layer an all-gather gives every rank the whole K and V;
 *               tsp computes the masked blocks too (the paper's baseline).
 *   ring-pass   pass-KV: p-1 ring steps per layer move every rank's block to every other rank,
 *               then each rank attends its queries to the prefix it now holds (contiguous
 *               chunks, no overlap: the simulator's ring-pass).
 *   ring        zig-zag ring attention (kvr_dist_ring.c): rank i holds chunks i and 2p-1-i of
 *               2p; per layer p steps, each step's transfer (the K/V blocks, or with pass-Q the
 *               queries) overlapped with the attention on the block in hand, the partial
 *               outputs merged by their log-sum-exp.
 * The logits rank (kvr_dist_logits_rank: the last rank; rank 0 for ring, which holds the last
 * token) ends with the first token and, after kvr_dist_assemble_kv, the whole KV cache. With a
 * machine profile every received message is held until its link, at the profiled bandwidth and
 * latency (less the simulator's noise share for that layer and link, same seed), could have
 * delivered it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kvr_comm.h"
#include "kvr_exec.h"
#include "kvr_machine.h"
#include "kvr_sim.h"

/* The schemes with an executor entry in the scheme table (kvr_scheme_list.h). */
bool kvr_dist_runs(enum kvr_scheme s);

struct kvr_dist_opts {
    enum kvr_scheme scheme;
    uint32_t ctx;
    uint64_t partition[KVR_MAX_GPUS]; /* p chunks, summing to ctx */
    const struct kvr_machine *links;  /* link emulation; NULL: full speed */
    uint64_t noise_trial;             /* which draw of the machine's noise model */
    struct kvr_timeline *timeline;    /* this rank's events (synchronous run), or NULL */
    enum kvr_ring_pass ring_pass;     /* ring: what travels (kvr_sim.h) */
    enum kvr_kv_forward kv_forward;   /* the chain's hand-off (kvr; whole for the others) */
    /* Hybrid layouts (tensor parallelism t > 1): the scheme runs over comm, the chain of shard j
     * of every stage (t chains side by side), each executor a shard whose stage all-reduces
     * inside its layers; every rank of `world` leaves one barrier together. NULL: comm. */
    struct kvr_comm *world;
};

/* The rank that holds the last token and computes the logits: p - 1, or 0 for ring. */
int kvr_dist_logits_rank(enum kvr_scheme s, int p);

/* What this rank saw: its end time and, per peer, the bytes received and the seconds from
 * their send to their delivery (the achieved link bandwidth is their ratio). */
struct kvr_dist_stats {
    double end_s;
    double recv_bytes[KVR_MAX_GPUS], recv_s[KVR_MAX_GPUS];
};

/* Checks the partition against the communicator's size and the scheme's needs. */
enum kvr_status kvr_dist_check(const struct kvr_dist_opts *o, int n_ranks);

/* One prefill of tokens[0..ctx) on every rank (all ranks call it). logits: vocab floats,
 * written on the last rank. */
enum kvr_status kvr_dist_prefill(struct kvr_exec *ex, struct kvr_comm *comm,
                                 const struct kvr_dist_opts *o, const int32_t *tokens,
                                 float *logits, struct kvr_dist_stats *stats);

/* After a prefill (all ranks call it): the logits rank's cache holds every position's K/V of
 * every layer. A no-op for the schemes that end so already (ring with pass-Q, and every scheme
 * whose hand-offs a sliding window trims (sim/kvr_trim.h), send each rank's own rows there: for
 * the checks and dumps, not part of the timed prefill). */
enum kvr_status kvr_dist_assemble_kv(struct kvr_exec *ex, struct kvr_comm *comm,
                                     const struct kvr_dist_opts *o);
