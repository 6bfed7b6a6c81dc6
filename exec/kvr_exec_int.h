/* The executor's state (internal to kvr_exec*.c): struct kvr_exec and the helpers its files
 * share (kvr_exec.c: open and close; kvr_exec_layer.c: the layer and the chunked prefill;
 * kvr_exec_run.c: timed runs; kvr_exec_ring.c: ring attention). */
#pragma once

#include "kvr_backend.h"
#include "kvr_exec.h"
#include "kvr_exec_tp.h"

struct kvr_exec {
    struct kvr_model model;
    struct kvr_exec_opts opts;
    struct kvr_backend be;
    bool profile;
    uint32_t n_stamps;                    /* recorded, not yet collected */
    uint8_t stamp_op[KVR_MAX_STAMPS / 2]; /* kvr_op of each pair */
    double op_s[KVR_N_OPS];               /* collected seconds per op */
    int32_t *tokens;                      /* the prompt (kvr_exec_set_tokens), or NULL: seeded */
    uint32_t n_tokens;
    float *logits; /* the last kvr_exec_run_single's last-token logits, or NULL */
    uint32_t ring_rows, ring_n_q, ring_n_o; /* the ring attention workspace (0: none) */
    struct kvr_model full;  /* the whole model; `model` is its shard with tensor parallelism */
    struct kvr_exec_tp *tp; /* tensor-parallel shard (kvr_exec_tp.h), or NULL: the whole model */
    bool last_layer_pruned; /* the last layer's rest last ran on one row (kvr_exec_chunk) */
};

#define OPS(ex) ((ex)->be.ops)
#define BE(ex)  ((ex)->be.state)

/* KVR_ERR_INPUT unless a chunk of c rows at positions [s, s+c) fits the buffers and the cache. */
enum kvr_status kvr_exec_check_chunk(const struct kvr_exec *ex, uint32_t s, uint32_t c);
/* KVR_ERR_INPUT unless a prompt of ctx tokens fits the cache. */
enum kvr_status kvr_exec_check_prompt(const struct kvr_exec *ex, uint32_t ctx);
/* The prompt of a timed run: the given tokens (their count must be ctx), else seeded. */
enum kvr_status kvr_exec_prompt_tokens(const struct kvr_exec *ex, uint32_t ctx, uint64_t seed,
                                       int32_t *out);
/* Profiling (kvr_exec_layer.c): the stamp before (end false) or after an operation, and the
 * seconds of the stamps recorded so far added to their operations. */
enum kvr_status kvr_exec_prof_mark(struct kvr_exec *ex, enum kvr_op op, bool end);
enum kvr_status kvr_exec_prof_collect(struct kvr_exec *ex);
/* Norms and QKV of rows [0, c) of layer (before the rotary). */
enum kvr_status kvr_exec_norms_qkv(struct kvr_exec *ex, uint32_t layer, uint32_t c);

/* One primitive operation, profiled when asked. */
#define STEP(op, call)                                                                             \
    do {                                                                                           \
        if ((st = kvr_exec_prof_mark(ex, op, false)) || (st = (call)) ||                           \
            (st = kvr_exec_prof_mark(ex, op, true)))                                               \
            return st;                                                                             \
    } while (0)
