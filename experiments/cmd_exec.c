/* kvr exec: a real prefill on one backend, timed, as the simulator's `single` scheme. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_exec.h"
#include "kvr_timeline_out.h"
#include "kvr_cli.h"
#include "kvr_config.h"
#include "kvr_exec.h"
#include "kvr_exec_ranks.h"
#include "kvr_json.h"
#include "kvr_measure.h"
#include "kvr_mpi.h"
#include "kvr_opt.h"
#include "kvr_out.h"
#include "kvr_st_index.h"
#include "kvr_units.h"

static const char usage[] =
    "usage: kvr exec --model M --ctx N [--scheme S] [--backend cuda|ref] [options]\n"
    "       mpirun -np P kvr exec --model M --ctx N[,N..] --scheme S[,S..] [options]\n"
    "\nRuns a real prefill of N seeded tokens and reports its TTFT (median, min and "
    "max over\nthe reps; CUDA events on the cuda backend), tokens/s, TFLOP/s and MFU "
    "(model FLOPs,\ncausal pairs only), peak device memory, the first token and a "
    "checksum of the last\ntoken's logits. Under mpirun each rank holds the full "
    "weights and runs its chunk; TTFT\nis the time from a common barrier until the "
    "last rank has the first token. The\noptions marked 'under mpirun' are refused in "
    "one process.\n";

/* What one process cannot honour: the plan on ranks and everything about it. */
static const char *const ranks_only[] = {"partition", "machine", "bw", "link", "noise",
                                         "comm",      "timeout", "tp", NULL};
static struct kvr_opt_result exec_res;

static enum kvr_status parse_int(const char *opt, const char *text, int lo, int hi, int *out)
{
    uint64_t v;
    if (kvr_parse_u64(text, (uint64_t)hi, &v) || (int)v < lo)
        return kvr_error(KVR_ERR_USAGE, "%s: '%s' is not an integer in [%d, %d]", opt, text, lo,
                         hi);
    *out = (int)v;
    return KVR_OK;
}

static enum kvr_status parse_ctxs(struct exec_args *a, const char *arg)
{
    uint64_t *v = NULL;
    size_t n = 0;
    enum kvr_status st = kvr_cli_parse_ctx_list("--ctx", arg, &v, &n);
    if (!st && n > KVR_EXEC_MAX_LIST)
        st = kvr_error(KVR_ERR_USAGE, "--ctx: '%s' has more than %d contexts", arg,
                       KVR_EXEC_MAX_LIST);
    a->n_ctx = st ? 0 : (int)n, a->ctx = 0;
    for (int i = 0; i < a->n_ctx; i++) {
        a->ctxs[i] = v[i];
        if (v[i] > a->ctx) a->ctx = v[i];
    }
    free(v);
    return st;
}

static enum kvr_status parse_schemes(struct exec_args *a, const char *arg)
{
    char buf[256];
    const char *parts[KVR_EXEC_MAX_LIST];
    a->n_schemes = kvr_cli_split_copy(arg, buf, sizeof buf, parts, KVR_EXEC_MAX_LIST);
    if (a->n_schemes <= 0)
        return kvr_error(KVR_ERR_USAGE, "--scheme: '%s' is not a list of 1..%d schemes", arg,
                         KVR_EXEC_MAX_LIST);
    enum kvr_status dup = kvr_cli_check_unique("--scheme", parts, a->n_schemes);
    if (dup) return dup;
    for (int i = 0; i < a->n_schemes; i++) {
        int v = kvr_scheme_from_name(parts[i]);
        if (v < 0 || !kvr_dist_runs((enum kvr_scheme)v)) {
            char names[256];
            kvr_scheme_list_text(KVR_LIST_EXECUTES, names, sizeof names);
            return kvr_error(KVR_ERR_USAGE, "--scheme: '%s' is not one the executor runs (%s)",
                             parts[i], names);
        }
        a->schemes[i] = (enum kvr_scheme)v;
    }
    a->scheme = a->schemes[0];
    return KVR_OK;
}

/* The numbers and names given as text, converted and checked. */
static enum kvr_status convert(struct exec_args *a)
{
    enum kvr_status st = KVR_OK;
    int v;
    if (a->ctx_arg) st = parse_ctxs(a, a->ctx_arg);
    if (!st && a->scheme_arg) st = parse_schemes(a, a->scheme_arg);
    if (!st && a->backend_arg &&
        !(st = kvr_cli_parse_name("--backend", a->backend_arg, kvr_backend_from_name, "cuda or ref",
                                  &v)))
        a->backend = (enum kvr_backend_kind)v;
    if (!st && !(st = kvr_cli_parse_name("--comm", a->comm_arg, kvr_comm_kind_from_name,
                                         "mpi or nccl", &v)))
        a->comm = (enum kvr_comm_kind)v;
    if (!st) st = parse_int("--reps", a->reps_arg, 1, 100000, &a->reps);
    if (!st) st = parse_int("--tp", a->tp_arg, 1, KVR_MAX_GPUS, &a->tp);
    if (!st) st = parse_int("--warmup", a->warmup_arg, 0, 100000, &a->warmup);
    if (!st && a->device_arg) st = parse_int("--device", a->device_arg, 0, 1023, &a->device);
    a->device_set = a->device_arg != NULL;
    if (!st && kvr_parse_decimal("seconds", a->timeout_arg, 0.001, 1e6, &a->timeout_s))
        st = kvr_error_prefix(KVR_ERR_USAGE, "--timeout: ");
    if (!st) st = kvr_machine_args_finish(&a->mach);
    a->seed = a->mach.seed;
    a->links = a->mach.machine || a->mach.bw || a->mach.noise || a->mach.n_links;
    if (!st && a->ring_pass_arg &&
        !(st = kvr_cli_parse_name("--ring-pass", a->ring_pass_arg, kvr_ring_pass_from_name,
                                  "kv, q or auto", &v)))
        a->ring_pass = (enum kvr_ring_pass)v, a->ring_pass_set = true;
    if (!st && a->kv_forward_arg &&
        !(st = kvr_cli_parse_name("--kv-forward", a->kv_forward_arg, kvr_kv_forward_from_name,
                                  "whole, streamed or direct", &v)))
        a->kv_forward = (enum kvr_kv_forward)v, a->kv_forward_set = true;
    return st;
}

static enum kvr_status check_args(void *args, const struct kvr_opt_result *res)
{
    struct exec_args *a = args;
    enum kvr_status st;
    if ((st = convert(a))) return st;
    a->tp_set = kvr_opt_given(res, "tp");
    if (a->device_arg && a->backend != KVR_BACKEND_CUDA)
        st = kvr_error(KVR_ERR_USAGE, "--device picks a CUDA device: not for --backend ref");
    /* under mpirun (one process refuses the rank options by name, below) */
    bool ranks = kvr_mpi_launched();
    if (!st && ranks && a->comm == KVR_COMM_NCCL && a->backend != KVR_BACKEND_CUDA)
        st = kvr_error(KVR_ERR_USAGE,
                       "--comm nccl moves device buffers: it needs --backend cuda, not %s "
                       "(--comm mpi runs every backend)",
                       kvr_backend_name(a->backend));
    if (!st && (!a->model || (!a->ctx && !a->tokens_path)))
        st = kvr_error(KVR_ERR_USAGE, "--model and --ctx (or --tokens) are required");
    if (!st && a->tokens_path && a->n_ctx > 1)
        st = kvr_error(KVR_ERR_USAGE, "--tokens is one prompt, not a list in --ctx");
    if (!st && a->partition && a->n_ctx > 1)
        st = kvr_error(KVR_ERR_USAGE, "--partition fits one context, not a list in --ctx");
    if (!st && (a->n_ctx > 1 || a->n_schemes > 1) && (a->timeline || a->dump_logits || a->dump_kv))
        st = kvr_error(KVR_ERR_USAGE, "--timeline, --dump-logits and --dump-kv describe one run: "
                                      "give one context and one scheme");
    if (!st && a->timeline_format && !a->timeline)
        st = kvr_error(KVR_ERR_USAGE, "--timeline-format needs --timeline FILE");
    enum kvr_timeline_format fmt;
    if (!st && a->timeline) st = kvr_timeline_format_pick(a->timeline_format, a->timeline, &fmt);
    if (!a->n_schemes) a->schemes[a->n_schemes++] = a->scheme;
    if (!st && a->db) st = kvr_measure_check_clean(a->allow_dirty);
    if (!st && a->allow_dirty && !a->db)
        st = kvr_error(KVR_ERR_USAGE, "--allow-dirty applies with --db only (nothing is stored)");
    /* the seed draws the weights, the prompt and the link noise: with none of them drawn it
     * would be taken and change nothing */
    if (!st && kvr_opt_given(res, "seed") && a->weights && a->tokens_path && !a->links)
        st = kvr_error(KVR_ERR_USAGE,
                       "--seed %s: nothing is drawn (the weights come from --weights, the prompt "
                       "from --tokens, and no link is emulated)",
                       a->mach.seed_arg);
    if (!st && a->allow_unused && !a->weights)
        st = kvr_error(KVR_ERR_USAGE, "--allow-unused applies with --weights only");
    /* the option table checks each output against --weights as named; not its index or shards */
    if (!st) st = kvr_st_check_not_input(a->weights, "--dump-logits", a->dump_logits);
    if (!st) st = kvr_st_check_not_input(a->weights, "--dump-kv", a->dump_kv);
    if (!st) st = kvr_st_check_not_input(a->weights, "--timeline", a->timeline);
    /* every scheme of the list takes the partition, or none runs (before: the pairs before
     * the first that cannot ran, were reported and stored, then the run failed) */
    for (int i = 0; !st && ranks && a->partition && i < a->n_schemes; i++)
        if (!(kvr_scheme_get(a->schemes[i])->options & KVR_SO_PARTITION)) {
            char names[256];
            kvr_scheme_list_text(KVR_LIST_PARTITION, names, sizeof names);
            st = kvr_error(KVR_ERR_USAGE, "--partition applies to schemes %s only, not %s", names,
                           kvr_scheme_name(a->schemes[i]));
        }
    bool ring = false;
    for (int i = 0; i < a->n_schemes; i++) ring |= a->schemes[i] == KVR_SCHEME_RING;
    if (!st && a->ring_pass_set && !ring)
        st = kvr_error(KVR_ERR_USAGE, "--ring-pass applies to --scheme ring only");
    bool chain = false;
    for (int i = 0; i < a->n_schemes; i++)
        chain |= (kvr_scheme_get(a->schemes[i])->options & KVR_SO_FORWARD) != 0;
    if (!st && a->kv_forward_set && !chain)
        st = kvr_error(KVR_ERR_USAGE, "--kv-forward %s: no scheme in --scheme has a KV chain (kvr)",
                       kvr_kv_forward_name(a->kv_forward));
    return st;
}

#define OFF(f) offsetof(struct exec_args, f)
static const struct kvr_opt exec_opts[] = {
    KVR_OPT("model", 'm', "M", OFF(model),
            "preset, INI profile or Hugging Face config.json (required)",
            .file = KVR_OPT_FILE_NAME),
    KVR_OPT("ctx", 'c', "N", OFF(ctx_arg),
            "prompt tokens, k = 1024 (required); under mpirun a list 4k,8k", .unit = "tokens"),
    KVR_OPT("scheme", 's', "S", OFF(scheme_arg),
            "single, or under mpirun: @EXEC_SCHEMES@\n('kvr help schemes' says what each "
            "is); under mpirun a list kvr,tsp:\nevery (ctx, scheme) pair runs in turn",
            .def = "single"),
    KVR_OPT("backend", 'b', "B", OFF(backend_arg), "cuda or ref",
            .def_help = "cuda when built with CUDA, else ref"),
    KVR_OPT("reps", 'r', "R", OFF(reps_arg), "timed runs", .def = "5"),
    KVR_OPT("warmup", 'w', "W", OFF(warmup_arg), "untimed runs first", .def = "2"),
    KVR_OPT("seed", 0, "S", OFF(mach.seed_arg),
            "seed of the random weights, tokens and link noise, 0..4294967295",
            .def_help = KVR_SEED_DEFAULT),
    KVR_OPT("weights", 0, "PATH", OFF(weights),
            "load weights from a .safetensors file, a sharded\nmodel.safetensors.index.json, "
            "or a folder holding either",
            .file = KVR_OPT_FILE_IN),
    KVR_OPT("allow-unused", 0, NULL, OFF(allow_unused),
            "accept checkpoint tensors the model does not use", .def_help = "an error"),
    KVR_OPT("tokens", 0, "FILE", OFF(tokens_path),
            "the prompt's token ids instead of seeded ones: one integer a line,\na JSON "
            "array (.json) or an int32/int64 .npy; --ctx defaults to their count",
            .file = KVR_OPT_FILE_IN),
    KVR_OPT("device", 0, "D", OFF(device_arg), "CUDA device ordinal",
            .def_help = "0; under mpirun the local rank"),
    KVR_OPT("chunk", 0, "N", OFF(chunk_arg),
            "one process: prefill in sub-chunks of N tokens (each after the cache of\nthe ones "
            "before: the same logits, one sub-chunk's activations held); auto:\nthe whole "
            "prompt when it fits the GPU, else the largest multiple of 1024 that does",
            .def = "auto", .unit = "tokens"),
    KVR_OPT("profile", 0, NULL, OFF(profile),
            "reps more runs, timing every operation (each op's median)"),
    KVR_OPT("db", 'd', "FILE", OFF(db),
            "where the measurement row is stored; under mpirun also the lookup table\n"
            "for kvr's partition (exact row: KVR-S, else interpolated: KVR-P; with\n--machine; "
            "with --tp T the rows of that t)",
            .file = KVR_OPT_FILE_IN),
    KVR_OPT("allow-dirty", 0, NULL, OFF(allow_dirty),
            "store the row although this kvr was built from uncommitted changes\n(refused "
            "otherwise: the row names the commit that produced it)"),
    KVR_OPT("partition", 'P', "L", OFF(partition),
            "under mpirun: chunks of @PART_SCHEMES@, one per rank (6k,4k,3.5k,2.5k)",
            .def_help = "from --db, else even"),
    KVR_OPT("machine", 'H', "NAME", OFF(mach.machine),
            "under mpirun: profile whose links are emulated (with --tp: the chains'\nlinks, "
            "stage s to s+1 of each shard)",
            .def_help = "full speed", .file = KVR_OPT_FILE_NAME),
    KVR_OPT("bw", 0, "RATE", OFF(mach.bw), "under mpirun: every emulated link's bandwidth"),
    KVR_OPT("link", 0, "I-J=RATE[,LAT]", OFF(mach.links),
            "under mpirun: one emulated link; repeatable", .kind = KVR_OPT_MULTI,
            .count_offset = OFF(mach.n_links), .max = KVR_MAX_GPUS * 2),
    KVR_OPT("noise", 0, "SPEC", OFF(mach.noise), "under mpirun: emulated background traffic"),
    KVR_OPT("comm", 0, "C", OFF(comm_arg),
            "under mpirun: mpi (host-staged, any backend) or nccl (cuda)", .def = "mpi"),
    KVR_OPT("timeout", 0, "S", OFF(timeout_arg),
            "under mpirun: seconds before a rank waiting on a dead peer gives up", .def = "120",
            .unit = "s"),
    KVR_OPT("timeline", 't', "FILE", OFF(timeline),
            "one more, synchronous run's per-rank events (TSV; a Chrome trace for *.json)",
            .file = KVR_OPT_FILE_OUT),
    KVR_OPT("timeline-format", 0, "F", OFF(timeline_format),
            "tsv or chrome (Trace Event Format, for Perfetto)", .def_help = "by the suffix"),
    KVR_OPT("kv-forward", 'F', "MODE", OFF(kv_forward_arg),
            "under mpirun, kvr: the chain's hand-off, whole, streamed or direct",
            .def_help = "the table row's mode with --db, else whole"),
    KVR_OPT("tp", 0, "T", OFF(tp_arg),
            "under mpirun: hybrid layout, each of the P/T stages a Megatron\ntensor-parallel "
            "group of T ranks (ranks sT..sT+T-1; the scheme runs\nbetween the stages shard by "
            "shard); --scheme tp is T = P",
            .def = "1"),
    KVR_OPT("ring-pass", 0, "P", OFF(ring_pass_arg),
            "under mpirun, --scheme ring: kv passes the K/V blocks (default), q the\nqueries, "
            "auto the faster for the shape (needs --machine)"),
    KVR_OPT("dump-logits", 0, "FILE", OFF(dump_logits), "the last rank's logits (float32)",
            .file = KVR_OPT_FILE_OUT),
    KVR_OPT("dump-kv", 0, "FILE", OFF(dump_kv), "the last rank's whole KV cache (float32)",
            .file = KVR_OPT_FILE_OUT),
    KVR_OPT_COMMON_END(struct exec_args)};
#undef OFF

static const struct kvr_opt_spec exec_spec = {
    .usage = usage, .opts = exec_opts, .check = check_args};

/* Seconds per operation of one profiled prefill (op_s NULL: not profiled). */
static void json_ops(struct kvr_json *j, const double *op_s)
{
    kvr_json_key(j, "ops");
    kvr_json_array_begin(j);
    for (int op = 0; op < KVR_N_OPS; op++) {
        if (op == KVR_OP_ATTN_SOFTMAX || op == KVR_OP_ATTN_PV || op == KVR_OP_FINAL_NORM ||
            op == KVR_OP_RESIDUAL)
            continue;
        kvr_json_object_begin(j);
        kvr_json_kv_str(j, "op",
                        op == KVR_OP_ATTN_SCORES ? "attention" : kvr_op_name((enum kvr_op)op));
        kvr_json_kv_dbl(j, "time_s", op_s[op]);
        kvr_json_object_end(j);
    }
    kvr_json_array_end(j);
}

static void print_ops(const double *op_s)
{
    double total = 0;
    char t[32];
    for (int op = 0; op < KVR_N_OPS; op++) total += op_s[op];
    printf("\nprofile (median of reps more runs; device time per operation, all layers)\n");
    for (int op = 0; op < KVR_N_OPS; op++) {
        if (op == KVR_OP_ATTN_SOFTMAX || op == KVR_OP_ATTN_PV || op == KVR_OP_FINAL_NORM ||
            op == KVR_OP_RESIDUAL)
            continue;
        printf("  %-14s %10s %5.1f%%\n",
               op == KVR_OP_ATTN_SCORES ? "attention" : kvr_op_name((enum kvr_op)op),
               kvr_format_duration(t, sizeof t, op_s[op]), total > 0 ? 100 * op_s[op] / total : 0);
    }
}

static void print_json(const struct kvr_model *m, const struct exec_args *a,
                       const struct kvr_exec_result *r, const double *op_s)
{
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_kv_str(&j, "model", m->name);
    kvr_json_kv_str(&j, "backend", kvr_backend_name(a->backend));
    kvr_json_kv_str(&j, "scheme", "single");
    kvr_json_kv_str(&j, "device", r->device);
    kvr_json_kv_u64(&j, "ctx", r->ctx);
    kvr_json_kv_u64(&j, "reps", r->reps);
    kvr_json_kv_dbl(&j, "ttft_s", r->ttft_s);
    kvr_json_kv_dbl(&j, "ttft_min_s", r->ttft_min_s);
    kvr_json_kv_dbl(&j, "ttft_max_s", r->ttft_max_s);
    kvr_json_kv_dbl(&j, "tokens_per_s", r->tokens_per_s);
    kvr_json_kv_u64(&j, "flops", r->flops);
    kvr_json_kv_dbl(&j, "tflops", r->tflops);
    kvr_json_kv_dbl(&j, "mfu", r->mfu);
    kvr_json_kv_u64(&j, "peak_mem_bytes", r->peak_mem_bytes);
    kvr_json_kv_u64(&j, "mem_predicted_bytes", r->mem_predicted_bytes);
    kvr_json_kv_u64(&j, "chunk_tokens", r->chunk);
    kvr_json_key(&j, "first_token");
    kvr_json_i64(&j, r->first_token);
    kvr_json_kv_dbl(&j, "logits_checksum", r->logits_checksum);
    kvr_json_kv_str(&j, "last_layer", r->last_layer_pruned ? "pruned" : "full");
    if (op_s) json_ops(&j, op_s);
    kvr_json_end(&j);
}

static void print_table(const struct kvr_model *m, const struct exec_args *a,
                        const struct kvr_exec_result *r)
{
    char t0[32], t1[32], t2[32], b[32], n[32];
    printf("%s, %s tokens, scheme single, backend %s on %s\n", m->name,
           kvr_format_tokens(n, sizeof n, r->ctx), kvr_backend_name(a->backend), r->device);
    printf("TTFT         %s median (min %s, max %s, %u reps)\n",
           kvr_format_duration(t0, sizeof t0, r->ttft_s),
           kvr_format_duration(t1, sizeof t1, r->ttft_min_s),
           kvr_format_duration(t2, sizeof t2, r->ttft_max_s), r->reps);
    printf("throughput   %.0f tokens/s, %.1f TFLOP/s", r->tokens_per_s, r->tflops);
    if (r->peak_flops > 0) printf(", MFU %.1f%%", 100 * r->mfu);
    printf("\nmemory       %s peak, ", kvr_format_bytes(b, sizeof b, (double)r->peak_mem_bytes));
    printf("%s planned\n", kvr_format_bytes(b, sizeof b, (double)r->mem_predicted_bytes));
    if (r->chunk < r->ctx)
        printf("sub-chunks   %s tokens each (one sub-chunk's activations held)\n",
               kvr_format_tokens(n, sizeof n, r->chunk));
    printf("first token  %d (logits checksum %.6e)\n", r->first_token, r->logits_checksum);
}

struct kvr_exec_opts kvr_exec_opts_of(const struct exec_args *a)
{
    return (struct kvr_exec_opts){.backend = a->backend,
                                  .max_ctx = (uint32_t)a->ctx,
                                  .seed = a->seed,
                                  .weights = a->weights,
                                  .allow_unused = a->allow_unused,
                                  .device = a->device};
}

/* --chunk: the sub-chunk of one process's prefill (auto: kvr_exec_fit_chunk); --profile and
 * --timeline time one whole chunk and a measurement row (--db) cannot say it ran in sub-chunks,
 * so they refuse them. */
static enum kvr_status single_chunk(const struct exec_args *a, const struct kvr_model *m,
                                    struct kvr_exec_opts *o)
{
    uint64_t c = 0;
    enum kvr_status st = KVR_OK;
    if (!strcmp(a->chunk_arg, "auto")) {
        uint32_t fit;
        if ((st = kvr_exec_fit_chunk(m, o, &fit))) return st;
        c = fit;
    } else if (kvr_parse_tokens(a->chunk_arg, KVR_MAX_CTX, &c) || c == 0) {
        return kvr_error(KVR_ERR_USAGE, "--chunk: '%s' is neither auto nor a token count >= 1",
                         a->chunk_arg);
    }
    o->max_chunk = (uint32_t)(c < a->ctx ? c : a->ctx);
    if (o->max_chunk < a->ctx && a->db)
        return kvr_error(KVR_ERR_USAGE,
                         "--db: a measurement row has no sub-chunk column, and the prefill runs in "
                         "sub-chunks of %u tokens (--chunk %s): give --chunk %llu or a smaller "
                         "--ctx",
                         o->max_chunk, a->chunk_arg, (unsigned long long)a->ctx);
    if (o->max_chunk < a->ctx && (a->profile || a->timeline))
        return kvr_error(KVR_ERR_USAGE,
                         "--%s times one whole chunk, but the prefill runs in sub-chunks of %u "
                         "tokens (--chunk %s): give --chunk %llu or a smaller --ctx",
                         a->profile ? "profile" : "timeline", o->max_chunk, a->chunk_arg,
                         (unsigned long long)a->ctx);
    return st;
}

/* The command after its options: every return goes back through kvr_cmd_exec, which frees
 * the prompt read from --tokens. */
static enum kvr_status exec_parsed(int argc, char **argv, struct exec_args *a)
{
    enum kvr_status st;
    struct kvr_model m;
    if ((st = kvr_model_resolve(a->model, &m))) return kvr_error_prefix(st, "--model: ");
    if ((st = kvr_exec_prompt(a, &m))) return st;
    if (a->db && (st = kvr_measure_check_db(a->db))) return st;
    if (a->scheme != KVR_SCHEME_SINGLE || a->n_schemes > 1 || a->n_ctx > 1 || kvr_mpi_launched()) {
        if (!kvr_mpi_launched() && (a->n_schemes > 1 || a->n_ctx > 1))
            return kvr_error(KVR_ERR_USAGE, "lists in --ctx or --scheme run under mpirun");
        if (!kvr_mpi_launched())
            return kvr_error(KVR_ERR_USAGE,
                             "--scheme %s runs on several ranks: start it with mpirun -np P",
                             kvr_scheme_name(a->scheme));
        static const char *const one_process[] = {"profile", "chunk", NULL};
        if ((st = kvr_opt_refuse(&exec_res, one_process,
                                 "times the operations of one process: run it without mpirun")))
            return st;
        int rank, size;
        char argv_text[4096];
        kvr_cli_join_argv(argc, argv, argv_text, sizeof argv_text);
        if ((st = kvr_mpi_init(&rank, &size))) return st;
        st = kvr_exec_ranks_cmd(a, &m, argv_text, rank, size);
        kvr_mpi_abort_failed(st, rank, size); /* the others may be waiting for this rank */
        kvr_mpi_finalize();
        return st;
    }
    if ((st = kvr_opt_refuse(&exec_res, ranks_only,
                             "applies to the schemes on ranks: start them with mpirun -np P")))
        return st;
    struct kvr_exec_opts o = kvr_exec_opts_of(a);
    if ((st = single_chunk(a, &m, &o))) return st;
    struct kvr_exec *ex = NULL;
    struct kvr_exec_result r;
    double op_s[KVR_N_OPS];
    static struct kvr_staged out; /* large: not on the stack */
    if (!(st = kvr_exec_open(&m, &o, &ex)) && a->tokens)
        st = kvr_exec_set_tokens(ex, a->tokens, (uint32_t)a->ctx);
    if (!st) st = kvr_exec_run_single(ex, (uint32_t)a->ctx, a->seed, a->warmup, a->reps, &r);
    if (!st) st = kvr_exec_single_outputs(a, ex, &out);
    if (!st && a->profile)
        st = kvr_exec_profile_single(ex, (uint32_t)a->ctx, a->seed, a->reps, op_s);
    /* the outputs are renamed into place only once everything, the row too, succeeded */
    if (!st) st = kvr_staged_sync(&out);
    if (!st && a->db) {
        struct kvr_measurement_row x;
        char argv_text[4096];
        kvr_cli_join_argv(argc, argv, argv_text, sizeof argv_text);
        kvr_measure_single(&x, &m, &r, kvr_backend_name(a->backend), a->warmup, a->reps);
        st = kvr_measure_store(a->db, argv_text, ex, &x);
    }
    if (!st) st = kvr_staged_commit(&out);
    kvr_staged_abort(&out);
    kvr_exec_close(ex);
    if (st) return st;
    if (a->json)
        print_json(&m, a, &r, a->profile ? op_s : NULL);
    else
        print_table(&m, a, &r);
    if (!a->json && a->profile) print_ops(op_s);
    return KVR_OK;
}

enum kvr_status kvr_cmd_exec(int argc, char **argv)
{
    struct exec_args a = {.backend = KVR_HAVE_CUDA ? KVR_BACKEND_CUDA : KVR_BACKEND_REF};
    a.mach.trials = 1;
    enum kvr_status st;
    if (kvr_opt_start(&exec_spec, argc, argv, &a, &exec_res, &st)) return st;
    st = exec_parsed(argc, argv, &a);
    free(a.tokens);
    return st;
}
