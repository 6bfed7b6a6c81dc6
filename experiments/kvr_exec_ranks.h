/* kvr exec under mpirun: the timed multi-rank prefill of one plan, what rank 0 reports and
 * stores, the timeline, and the last rank's dumps for the tests. */
#pragma once

#include "kvr_dist.h"
#include "kvr_exec.h"

struct kvr_ranks_args {
    struct kvr_exec *ex;
    struct kvr_comm *comm; /* the chain the scheme runs on (every rank without --tp) */
    /* --tp t > 1: every rank (the reports, TTFT's maximum), and t: world rank s t + j is shard j
     * of stage s, rank s of chain j; NULL and 1 without it */
    struct kvr_comm *world;
    int tp;
    struct kvr_dist_opts dist;
    uint64_t seed;
    const int32_t *tokens; /* the prompt (dist.ctx ids), or NULL: seeded */
    int warmup, reps;
    const char *timeline_path;         /* TSV as `kvr sim --timeline` writes it, or NULL */
    const char *timeline_format;       /* tsv, chrome; NULL: by the suffix (kvr_timeline_out.h) */
    const char *machine_name;          /* for the trace's otherData */
    const char *dump_logits, *dump_kv; /* raw float32 files from the last rank, or NULL */
};

struct kvr_ranks_result {
    double ttft_s, ttft_min_s, ttft_max_s; /* median, min, max over the reps */
    int32_t first_token;
    double logits_checksum;
    double peak_mem_bytes;                         /* the largest rank's */
    double link_bytes[KVR_MAX_GPUS][KVR_MAX_GPUS]; /* from -> to, over the timed reps */
    double link_s[KVR_MAX_GPUS][KVR_MAX_GPUS];
    /* the ranks whose last layer ran on its last row alone (kvr_exec_last_layer_pruned) */
    int n_pruned_ranks;
};

/* All ranks call it; the result is complete on rank 0. */
enum kvr_status kvr_ranks_run(const struct kvr_ranks_args *a, struct kvr_ranks_result *r);
