/* kvr exec under mpirun: the timed multi-rank prefill of one plan, what rank 0 reports and
 * stores, the timeline, and the last rank's dumps for the tests; and the staging of kvr exec's
 * output files (one process or ranks). */
#pragma once

#include "kvr_dist.h"
#include "kvr_exec.h"
#include "kvr_out.h"

/* kvr exec's outputs of one run (--timeline, --dump-logits, --dump-kv), staged: each written to
 * its temp (kvr_out) and kept there until the whole run, the --db row included, succeeded; then
 * all are renamed into place, or on a failure all are removed and the old files stay as they
 * were (before, each was renamed as soon as written, and a later failure left a mix). "-" is
 * written as it comes: standard output cannot be taken back. Zero-initialise. */
#define KVR_STAGED_MAX 3
struct kvr_staged {
    struct kvr_out out[KVR_STAGED_MAX];
    int n;
};

/* kvr_out_open into the next slot: write to (*o)->f. */
enum kvr_status kvr_staged_open(struct kvr_staged *s, const char *what, const char *path,
                                struct kvr_out **o);
/* fwrite to o, and a write error so far as the house says it: exit 1 (KVR_ERR_RUNTIME), the
 * option, the file and the system's reason. */
enum kvr_status kvr_staged_write(const struct kvr_out *o, const void *v, size_t bytes);
enum kvr_status kvr_staged_check(const struct kvr_out *o);
/* Flushes and fsyncs every staged file, renaming none: a full disk surfaces here. */
enum kvr_status kvr_staged_sync(struct kvr_staged *s);
/* Renames them all into place (standard output first); after a failure the rest are removed. */
enum kvr_status kvr_staged_commit(struct kvr_staged *s);
/* Removes every temp not committed (the targets untouched); safe to call twice. */
void kvr_staged_abort(struct kvr_staged *s);

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
    struct kvr_staged *staged; /* where this rank's outputs are staged (the caller commits) */
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

/* All ranks call it; the result is complete on rank 0, the outputs staged in a->staged on the
 * ranks that write them (rank 0 the timeline, the logits rank the dumps). */
enum kvr_status kvr_ranks_run(const struct kvr_ranks_args *a, struct kvr_ranks_result *r);
