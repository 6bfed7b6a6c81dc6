/* kvr validate --timeline: a measured run's per-rank timeline against the simulator's, phase by
 * phase (compute apart from the waits and collectives that the links and the schedule add). */
#pragma once

#include <stdbool.h>

#include "kvr_status.h"

struct kvr_validate_timeline_args {
    const char *path;       /* kvr exec --timeline's TSV */
    const char *model;      /* the measured plan */
    const char *scheme;     /* the run's scheme (the scheme table) */
    const char *partition;  /* one chunk per rank, "a,b,c" */
    const char *machine;    /* the profile to predict on */
    const char *kv_forward; /* the run's KV hand-off (NULL: whole) */
    const char *ring_pass;  /* ring: the pass that ran, kv or q (NULL: kv) */
    bool json;
};

enum kvr_status kvr_validate_timeline(const struct kvr_validate_timeline_args *a);
