/* Timelines to files, for `kvr sim --timeline` and `kvr exec --timeline`:
 *   tsv     rank, layer, kind, what, start_s, end_s, bytes, peer (what validate --timeline reads);
 *           the header line (the column names) ends with one more field, the plan the events
 *           are of: "# kvrun-plan KEY=VALUE ..." (source, scheme, model, model_hash, machine,
 *           ranks, p, tp, ctx, partition, kv_forward, ring_pass; values %XX-escaped), so
 *           validate --timeline refuses a timeline of another plan; line 1 stays the header and
 *           every later line an event, as before (a reader that skips line 1 reads it as ever)
 *   chrome  the Trace Event Format (Chrome's about:tracing, Perfetto): JSON with one track
 *           (pid 1, tid = rank) per rank for compute, waits and collectives, and one track
 *           (pid 2) per link i->j for the transfers on it; complete ("X") events in
 *           microseconds from the run's start, with layer, bytes, from and to as args;
 *           otherData holds the run's TTFT, scheme, model and machine.
 * Written through kvr_out (a temp file renamed), so a failure never leaves a half-written file. */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "kvr_sim.h"

enum kvr_timeline_format { KVR_TIMELINE_TSV, KVR_TIMELINE_CHROME };

/* --timeline-format NAME (tsv, chrome), or with NULL by the file's suffix: .json is chrome. */
enum kvr_status kvr_timeline_format_pick(const char *name, const char *path,
                                         enum kvr_timeline_format *fmt);

struct kvr_timeline_meta {
    const char *scheme, *model, *machine, *source; /* source: "simulator" or "executor" */
    int p;                                         /* ranks in the events: every GPU */
    double ttft_s;
    /* The plan the events are of (TSV: recorded in the header line); NULL: not recorded.
     * plan->p is the chain's stages, plan->tokens one chunk per stage, ring_pass resolved. */
    const struct kvr_plan *plan;
    uint64_t model_hash;
};

enum kvr_status kvr_timeline_write(const char *path, enum kvr_timeline_format fmt,
                                   const struct kvr_event *ev, size_t n,
                                   const struct kvr_timeline_meta *meta);
/* The same into an open stream (an output the caller commits with others: kvr exec's); write
 * errors stay in ferror(f). */
void kvr_timeline_put(FILE *f, enum kvr_timeline_format fmt, const struct kvr_event *ev, size_t n,
                      const struct kvr_timeline_meta *meta);
