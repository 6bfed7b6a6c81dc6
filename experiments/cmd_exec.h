/* kvr exec's options, shared by the one-process run (cmd_exec.c) and the run on ranks
 * (cmd_exec_ranks.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kvr_comm.h"
#include "kvr_dist.h"
#include "kvr_exec.h"
#include "kvr_machine_args.h"

#define KVR_EXEC_MAX_LIST 16 /* contexts or schemes one process under mpirun runs in turn */

struct exec_args {
    const char *model, *weights, *partition, *db, *timeline, *dump_logits, *dump_kv;
    const char *tokens_path;     /* --tokens FILE: the prompt (else seeded) */
    int32_t *tokens;             /* read from tokens_path once the model's vocabulary is known */
    bool allow_unused;           /* --allow-unused: checkpoint tensors the model does not use */
    const char *timeline_format; /* tsv, chrome; NULL: by the file's suffix */
    uint64_t ctx, seed;          /* ctx: the largest of ctxs, what the executor is sized for */
    uint64_t ctxs[KVR_EXEC_MAX_LIST];
    enum kvr_scheme schemes[KVR_EXEC_MAX_LIST];
    int n_ctx, n_schemes;
    int reps, warmup, device;
    bool device_set, links, json, quiet, help, profile, allow_dirty, ring_pass_set;
    enum kvr_ring_pass ring_pass; /* --ring-pass: what ring passes around */
    const char *ctx_arg, *scheme_arg, *backend_arg, *reps_arg, *warmup_arg, *device_arg, *comm_arg,
        *timeout_arg, *ring_pass_arg, *kv_forward_arg; /* as given; converted by cmd_exec.c */
    double timeout_s;
    enum kvr_backend_kind backend;
    enum kvr_scheme scheme;
    enum kvr_comm_kind comm;
    enum kvr_kv_forward kv_forward; /* --kv-forward: kvr's hand-off (whole by default) */
    bool kv_forward_set;
    const char *chunk_arg; /* --chunk N|auto: one process's sub-chunks (auto: whole if it fits) */
    const char *tp_arg;    /* --tp T: tensor-parallel degree of each stage (hybrid layouts) */
    int tp;                /* converted (1 without --tp); kvr_exec_ranks_cmd resolves --scheme tp */
    bool tp_set;           /* --tp was given */
    struct kvr_machine_args mach;
};

/* The executor's options as the command gives them (backend, the largest context, seed,
 * weights, device); the run on ranks sets its own device and layout. */
struct kvr_exec_opts kvr_exec_opts_of(const struct exec_args *a);

/* Under mpirun: the plan's partition, the timed run on every rank, rank 0's report and
 * measurement row. */
enum kvr_status kvr_exec_ranks_cmd(const struct exec_args *a, const struct kvr_model *m,
                                   const char *argv_text, int rank, int size);

/* One process (cmd_exec_single.c): reads --tokens (setting ctx to their count) and warns when
 * ctx exceeds the model's max_position_embeddings; then, after the timed run, writes
 * --dump-logits, --dump-kv and --timeline staged in out (kvr_exec_ranks.h), which the caller
 * commits once everything else succeeded, or aborts. */
struct kvr_staged;
enum kvr_status kvr_exec_prompt(struct exec_args *a, const struct kvr_model *m);
enum kvr_status kvr_exec_single_outputs(const struct exec_args *a, struct kvr_exec *ex,
                                        struct kvr_staged *out);
