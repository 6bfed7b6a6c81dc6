/* kvr exec: a real prefill on one backend, timed, as the simulator's `single` scheme. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_exec.h"
#include "kvr_cli.h"
#include "kvr_config.h"
#include "kvr_exec.h"
#include "kvr_json.h"
#include "kvr_measure.h"
#include "kvr_mpi.h"
#include "kvr_units.h"

static const char help[] =
    "usage: kvr exec --model M --ctx N [--scheme S] [--backend cuda|ref] [options]\n"
    "       mpirun -np P kvr exec --model M --ctx N[,N..] --scheme S[,S..] [options]\n"
    "\n"
    "Runs a real prefill of N seeded tokens and reports its TTFT (median, min and max over\n"
    "the reps; CUDA events on the cuda backend), tokens/s, TFLOP/s and MFU (model FLOPs,\n"
    "causal pairs only), peak device memory, the first token and a checksum of the last\n"
    "token's logits. Under mpirun each rank holds the full weights and runs its chunk; TTFT\n"
    "is the time from a common barrier until the last rank has the first token.\n"
    "\n"
    "  -m, --model M       preset, INI profile or Hugging Face config.json\n"
    "  -c, --ctx N         prompt tokens (k = 1024; 16k = 16384)\n"
    "  -s, --scheme S      single (default), or under mpirun: @EXEC_SCHEMES@\n"
    "                      ('kvr help schemes' says what each is). Under mpirun --ctx and\n"
    "                      --scheme take lists\n"
    "                      (4k,8k / kvr,tsp): one process runs every pair in turn, a report\n"
    "                      and a measurement row each, sharing the weights\n"
    "  -b, --backend B     cuda or ref (default: cuda when built with CUDA, else ref)\n"
    "  -r, --reps R        timed runs (default 5)\n"
    "  -w, --warmup W      untimed runs first (default 2)\n"
    "      --seed S        seed of the random weights, tokens and link noise (default 1)\n"
    "      --weights FILE  load weights from a .safetensors file instead\n"
    "      --device D      CUDA device ordinal (default: 0; under mpirun the local rank)\n"
    "      --profile       reps more runs, timing every operation (device events; each op's\n"
    "                      median; the token upload and the logits download are not ops)\n"
    "  -p, --partition L   chunks of @PART_SCHEMES@, one per rank (\"6k,4k,3.5k,2.5k\");\n"
    "                      default: kvr from --db, else even\n"
    "      --db FILE       lookup table for kvr's partition (exact row: KVR-S, else\n"
    "                      interpolated: KVR-P), and where rank 0 stores the measurement\n"
    "      --kv-forward M  kvr's hand-off of the KV cache: whole (store-and-forward, the\n"
    "                      default), streamed (each piece on as it arrives), direct (each\n"
    "                      chunk to every later rank)\n"
    "  -H, --machine NAME  profile whose links are emulated (each message held until its link\n"
    "                      could have delivered it); default: full speed\n"
    "      --bw, --link, --noise   as for kvr sim\n"
    "      --comm C        mpi (host-staged, any backend; default) or nccl (cuda)\n"
    "      --timeout S     seconds before a rank that waits on a dead or hung peer gives up\n"
    "                      (default 120)\n"
    "      --timeline FILE one more, synchronous run's per-rank events as TSV (kvr sim's form)\n"
    "      --dump-logits FILE, --dump-kv FILE   the last rank's logits / whole KV cache\n"
    "                      (float32; for the tests)\n"
    "  -j, --json          print JSON\n"
    "  -h, --help          this help\n";

enum {
    OPT_DB = KVR_OPT_FIRST_FREE,
    OPT_COMM,
    OPT_TIMEOUT,
    OPT_TIMELINE,
    OPT_DUMP_L,
    OPT_DUMP_KV,
    OPT_KV_FORWARD
};

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
    snprintf(buf, sizeof buf, "%s", arg);
    a->n_schemes = kvr_cli_split(buf, parts, KVR_EXEC_MAX_LIST);
    if (a->n_schemes <= 0)
        return kvr_error(KVR_ERR_USAGE, "--scheme: '%s' is not a list of 1..%d schemes", arg,
                         KVR_EXEC_MAX_LIST);
    for (int i = 0; i < a->n_schemes; i++) {
        int v = kvr_scheme_from_name(parts[i]);
        if (v == KVR_SCHEME_RING)
            return kvr_error(KVR_ERR_USAGE,
                             "--scheme: the executor runs 'ring-pass' (contiguous chunks, pass-KV "
                             "steps, then attention); zig-zag ring attention with overlap is "
                             "simulated only (kvr sim --scheme ring)");
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

/* The options that name things. */
static enum kvr_status take_text(struct exec_args *a, int c, const char *arg)
{
    int v;
    switch (c) {
    case 'm':
        a->model = arg;
        break;
    case 'W':
        a->weights = arg;
        break;
    case 'p':
        a->partition = arg;
        break;
    case OPT_DB:
        a->db = arg;
        break;
    case OPT_TIMELINE:
        a->timeline = arg;
        break;
    case OPT_DUMP_L:
        a->dump_logits = arg;
        break;
    case OPT_DUMP_KV:
        a->dump_kv = arg;
        break;
    case 's':
        return parse_schemes(a, arg);
    case 'b':
        if ((v = kvr_backend_from_name(arg)) < 0)
            return kvr_error(KVR_ERR_USAGE, "--backend: '%s' is not cuda or ref", arg);
        a->backend = (enum kvr_backend_kind)v;
        break;
    case OPT_KV_FORWARD:
        if ((v = kvr_kv_forward_from_name(arg)) < 0)
            return kvr_error(KVR_ERR_USAGE, "--kv-forward: '%s' is not whole, streamed or direct",
                             arg);
        a->kv_forward = (enum kvr_kv_forward)v, a->kv_forward_set = true;
        break;
    case OPT_COMM:
        if ((v = kvr_comm_kind_from_name(arg)) < 0)
            return kvr_error(KVR_ERR_USAGE, "--comm: '%s' is not mpi or nccl", arg);
        a->comm = (enum kvr_comm_kind)v;
        break;
    default:
        return KVR_ERR_USAGE;
    }
    return KVR_OK;
}

/* The options that are numbers. */
static enum kvr_status take_number(struct exec_args *a, int c, const char *arg)
{
    switch (c) {
    case 'c':
        return parse_ctxs(a, arg);
    case 'r':
        return parse_int("--reps", arg, 1, 100000, &a->reps);
    case 'w':
        return parse_int("--warmup", arg, 0, 100000, &a->warmup);
    case 'D':
        a->device_set = true;
        return parse_int("--device", arg, 0, 1023, &a->device);
    case OPT_TIMEOUT:
        return kvr_parse_decimal("--timeout", arg, 0.001, 1e6, &a->timeout_s);
    case KVR_OPT_SEED:
        if (kvr_parse_u64(arg, UINT64_MAX, &a->seed))
            return kvr_error(KVR_ERR_USAGE, "--seed: '%s' is not an integer", arg);
        a->mach.seed = a->seed;
        return KVR_OK;
    default:
        return take_text(a, c, arg);
    }
}

static enum kvr_status parse_args(int argc, char **argv, struct exec_args *a)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"ctx", required_argument, 0, 'c'},
                                         {"scheme", required_argument, 0, 's'},
                                         {"backend", required_argument, 0, 'b'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {"seed", required_argument, 0, KVR_OPT_SEED},
                                         {"weights", required_argument, 0, 'W'},
                                         {"device", required_argument, 0, 'D'},
                                         {"profile", no_argument, 0, 'P'},
                                         {"partition", required_argument, 0, 'p'},
                                         {"db", required_argument, 0, OPT_DB},
                                         {"machine", required_argument, 0, 'H'},
                                         {"bw", required_argument, 0, KVR_OPT_BW},
                                         {"link", required_argument, 0, KVR_OPT_LINK},
                                         {"noise", required_argument, 0, KVR_OPT_NOISE},
                                         {"comm", required_argument, 0, OPT_COMM},
                                         {"timeout", required_argument, 0, OPT_TIMEOUT},
                                         {"timeline", required_argument, 0, OPT_TIMELINE},
                                         {"dump-logits", required_argument, 0, OPT_DUMP_L},
                                         {"dump-kv", required_argument, 0, OPT_DUMP_KV},
                                         {"kv-forward", required_argument, 0, OPT_KV_FORWARD},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *a = (struct exec_args){.seed = 1,
                            .reps = 5,
                            .warmup = 2,
                            .timeout_s = 120,
                            .backend = KVR_HAVE_CUDA ? KVR_BACKEND_CUDA : KVR_BACKEND_REF};
    a->mach.seed = 1, a->mach.trials = 1;
    enum kvr_status st = KVR_OK;
    kvr_cli_opt_reset();
    for (int c; !st && (c = kvr_cli_getopt(argc, argv, "m:c:s:b:r:w:p:H:jh", opts)) != -1;) {
        if (c == '?') return KVR_ERR_USAGE;
        if (c == 'h')
            a->help = true;
        else if (c == 'j')
            a->json = true;
        else if (c == 'P')
            a->profile = true;
        else if (c != KVR_OPT_SEED && kvr_machine_args_take(&a->mach, c, optarg, &st))
            a->links = true;
        else
            st = take_number(a, c, optarg);
    }
    if (!st && !a->help && optind < argc)
        st = kvr_error(KVR_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!st && !a->help && (!a->model || !a->ctx))
        st = kvr_error(KVR_ERR_USAGE, "--model and --ctx are required");
    if (!st && a->partition && a->n_ctx > 1)
        st = kvr_error(KVR_ERR_USAGE, "--partition fits one context, not a list in --ctx");
    if (!st && (a->n_ctx > 1 || a->n_schemes > 1) && (a->timeline || a->dump_logits || a->dump_kv))
        st = kvr_error(KVR_ERR_USAGE, "--timeline, --dump-logits and --dump-kv describe one run: "
                                      "give one context and one scheme");
    if (!a->n_schemes) a->schemes[a->n_schemes++] = a->scheme;
    bool chain = false;
    for (int i = 0; i < a->n_schemes; i++)
        chain |= (kvr_scheme_get(a->schemes[i])->options & KVR_SO_FORWARD) != 0;
    if (!st && !a->help && a->kv_forward_set && !chain)
        st = kvr_error(KVR_ERR_USAGE, "--kv-forward %s: no scheme in --scheme has a KV chain (kvr)",
                       kvr_kv_forward_name(a->kv_forward));
    return st;
}

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
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
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
    kvr_json_key(&j, "first_token");
    kvr_json_i64(&j, r->first_token);
    kvr_json_kv_dbl(&j, "logits_checksum", r->logits_checksum);
    if (op_s) json_ops(&j, op_s);
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
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
    printf("\nmemory       %s peak\n", kvr_format_bytes(b, sizeof b, (double)r->peak_mem_bytes));
    printf("first token  %d (logits checksum %.6e)\n", r->first_token, r->logits_checksum);
}

enum kvr_status kvr_cmd_exec(int argc, char **argv)
{
    struct exec_args a;
    enum kvr_status st = parse_args(argc, argv, &a);
    if (st || a.help) return st ? st : (kvr_cli_print_help(stdout, help), KVR_OK);
    struct kvr_model m;
    if ((st = kvr_model_resolve(a.model, &m))) return kvr_error_prefix(st, "--model: ");
    if (a.scheme != KVR_SCHEME_SINGLE || a.n_schemes > 1 || a.n_ctx > 1 || kvr_mpi_launched()) {
        if (!kvr_mpi_launched() && (a.n_schemes > 1 || a.n_ctx > 1))
            return kvr_error(KVR_ERR_USAGE, "lists in --ctx or --scheme run under mpirun");
        if (!kvr_mpi_launched())
            return kvr_error(KVR_ERR_USAGE,
                             "--scheme %s runs on several ranks: start it with mpirun -np P",
                             kvr_scheme_name(a.scheme));
        int rank, size;
        char argv_text[4096];
        kvr_cli_join_argv(argc, argv, argv_text, sizeof argv_text);
        if ((st = kvr_mpi_init(&rank, &size))) return st;
        st = kvr_exec_ranks_cmd(&a, &m, argv_text, rank, size);
        if (st && size > 1) { /* the others may be waiting for this rank: stop them all */
            fprintf(stderr, "kvr: rank %d: %s: %s\n", rank, kvr_status_name(st),
                    kvr_error_message());
            fflush(stderr);
            kvr_mpi_abort(kvr_status_exit_code(st));
        }
        kvr_mpi_finalize();
        return st;
    }
    struct kvr_exec_opts o = {.backend = a.backend,
                              .max_ctx = (uint32_t)a.ctx,
                              .seed = a.seed,
                              .weights = a.weights,
                              .device = a.device};
    struct kvr_exec *ex = NULL;
    struct kvr_exec_result r;
    double op_s[KVR_N_OPS];
    if (!(st = kvr_exec_open(&m, &o, &ex)))
        st = kvr_exec_run_single(ex, (uint32_t)a.ctx, a.seed, a.warmup, a.reps, &r);
    if (!st && a.profile) st = kvr_exec_profile_single(ex, (uint32_t)a.ctx, a.seed, a.reps, op_s);
    if (!st && a.db) {
        struct kvr_measurement_row x;
        char argv_text[4096];
        kvr_cli_join_argv(argc, argv, argv_text, sizeof argv_text);
        kvr_measure_single(&x, &m, &r, kvr_backend_name(a.backend), a.warmup, a.reps);
        st = kvr_measure_store(a.db, argv_text, ex, &x);
    }
    kvr_exec_close(ex);
    if (st) return st;
    if (a.json)
        print_json(&m, &a, &r, a.profile ? op_s : NULL);
    else
        print_table(&m, &a, &r);
    if (!a.json && a.profile) print_ops(op_s);
    return KVR_OK;
}
