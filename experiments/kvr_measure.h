/* Writing executor measurements: one measurement row with a run row of provenance. */
#pragma once

#include "kvr_exec.h"
#include "kvr_machine.h"
#include "kvr_store.h"

/* Fills the row's device and driver from ex, opens db for writing, adds the run (argv, host,
 * device, time) and the row. */
/* A measurement names the commit that produced it: refused (usage error) when this kvr was
 * built from a tree with uncommitted changes (a "-dirty" version), unless allow_dirty. */
enum kvr_status kvr_measure_check_clean(bool allow_dirty);
/* --db before the run, changing nothing: an existing file must open as a kvrun database and be
 * writable, a new one needs its folder (a run of minutes, then a refused database, lost it). */
enum kvr_status kvr_measure_check_db(const char *db);

enum kvr_status kvr_measure_store(const char *db, const char *argv_text, struct kvr_exec *ex,
                                  struct kvr_measurement_row *x);

/* The row of a single-device run (p = 1, scheme single). */
void kvr_measure_single(struct kvr_measurement_row *x, const struct kvr_model *m,
                        const struct kvr_exec_result *r, const char *backend, int warmup, int reps);

/* The simulator's TTFT for a measured plan: scheme (single, tsp, tsp-causal, kvr, ring) on p
 * GPUs of machine's topology, kvr with tokens (p chunks), the others split evenly; method (may
 * be NULL) is the row's: for ring, pass-q predicts pass-Q. kv_forward: a hand-off mode's name
 * ("" = whole); tp > 1: a hybrid layout (p / tp stages of tp GPUs, tokens one chunk per stage,
 * as kvr sim --tp; 0 and 1 the plain scheme); p = 1 with the last layer on every row when
 * full_last_layer (a measurement row's last_layer 'full': an executor before commit b4e1d92;
 * refused with p > 1). */
enum kvr_status kvr_measure_predict(const struct kvr_model *m, const struct kvr_machine *machine,
                                    const char *scheme, const char *kv_forward, int tp, int p,
                                    uint64_t ctx, const uint64_t *tokens, const char *method,
                                    bool full_last_layer, double *ttft);
