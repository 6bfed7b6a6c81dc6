/* kvr exec: a real prefill on one backend, timed, as the simulator's `single` scheme. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_config.h"
#include "kvr_exec.h"
#include "kvr_json.h"
#include "kvr_units.h"

static const char help[] =
    "usage: kvr exec --model M --ctx N [--scheme single] [--backend cuda|ref] [options]\n"
    "\n"
    "Runs a real prefill of N seeded tokens and reports its TTFT (median, min and max over\n"
    "the reps; CUDA events on the cuda backend), tokens/s, TFLOP/s and MFU (model FLOPs,\n"
    "causal pairs only), peak device memory, the first token and a checksum of the last\n"
    "token's logits.\n"
    "\n"
    "  -m, --model M       preset, INI profile or Hugging Face config.json\n"
    "  -c, --ctx N         prompt tokens (k = 1024; 16k = 16384)\n"
    "  -s, --scheme S      single (default); the multi-rank schemes run under mpirun\n"
    "  -b, --backend B     cuda or ref (default: cuda when built with CUDA, else ref)\n"
    "  -r, --reps R        timed runs (default 5)\n"
    "  -w, --warmup W      untimed runs first (default 2)\n"
    "      --seed S        seed of the random weights and tokens (default 1)\n"
    "      --weights FILE  load weights from a .safetensors file instead\n"
    "      --device D      CUDA device ordinal (default 0)\n"
    "      --profile       one more run, timing every operation (device events)\n"
    "  -j, --json          print JSON\n"
    "  -h, --help          this help\n";

struct exec_args {
    const char *model, *weights;
    uint64_t ctx, seed;
    int reps, warmup, device;
    enum kvr_backend_kind backend;
    bool json, help, profile;
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

static enum kvr_status parse_args(int argc, char **argv, struct exec_args *a)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"ctx", required_argument, 0, 'c'},
                                         {"scheme", required_argument, 0, 's'},
                                         {"backend", required_argument, 0, 'b'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {"seed", required_argument, 0, 'S'},
                                         {"weights", required_argument, 0, 'W'},
                                         {"device", required_argument, 0, 'D'},
                                         {"profile", no_argument, 0, 'P'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *a = (struct exec_args){.seed = 1,
                            .reps = 5,
                            .warmup = 2,
                            .backend = KVR_HAVE_CUDA ? KVR_BACKEND_CUDA : KVR_BACKEND_REF};
    enum kvr_status st = KVR_OK;
    kvr_cli_opt_reset();
    for (int c; !st && (c = kvr_cli_getopt(argc, argv, "m:c:s:b:r:w:jh", opts)) != -1;) {
        switch (c) {
        case 'm':
            a->model = optarg;
            break;
        case 'c':
            if (kvr_parse_tokens(optarg, KVR_MAX_CTX, &a->ctx) || a->ctx == 0)
                st =
                    kvr_error(KVR_ERR_USAGE, "--ctx: '%s' is not a token count in [1, 4M]", optarg);
            break;
        case 's':
            if (strcmp(optarg, "single"))
                st = kvr_error(KVR_ERR_USAGE,
                               "--scheme: '%s' runs on several ranks; on one process only "
                               "'single' runs",
                               optarg);
            break;
        case 'b': {
            int b = kvr_backend_from_name(optarg);
            if (b < 0) st = kvr_error(KVR_ERR_USAGE, "--backend: '%s' is not cuda or ref", optarg);
            a->backend = (enum kvr_backend_kind)b;
            break;
        }
        case 'r':
            st = parse_int("--reps", optarg, 1, 100000, &a->reps);
            break;
        case 'w':
            st = parse_int("--warmup", optarg, 0, 100000, &a->warmup);
            break;
        case 'S':
            if (kvr_parse_u64(optarg, UINT64_MAX, &a->seed))
                st = kvr_error(KVR_ERR_USAGE, "--seed: '%s' is not an integer", optarg);
            break;
        case 'W':
            a->weights = optarg;
            break;
        case 'D':
            st = parse_int("--device", optarg, 0, 1023, &a->device);
            break;
        case 'j':
            a->json = true;
            break;
        case 'P':
            a->profile = true;
            break;
        case 'h':
            a->help = true;
            return KVR_OK;
        default:
            return KVR_ERR_USAGE;
        }
    }
    if (!st && optind < argc)
        st = kvr_error(KVR_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!st && (!a->model || !a->ctx))
        st = kvr_error(KVR_ERR_USAGE, "--model and --ctx are required");
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
    printf("\nprofile (one more run; device time per operation, all layers)\n");
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
    if (st || a.help) return st ? st : (fputs(help, stdout), KVR_OK);
    struct kvr_model m;
    if ((st = kvr_model_resolve(a.model, &m))) return kvr_error_prefix(st, "--model: ");
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
    if (!st && a.profile) st = kvr_exec_profile_single(ex, (uint32_t)a.ctx, a.seed, op_s);
    kvr_exec_close(ex);
    if (st) return st;
    if (a.json)
        print_json(&m, &a, &r, a.profile ? op_s : NULL);
    else
        print_table(&m, &a, &r);
    if (!a.json && a.profile) print_ops(op_s);
    return KVR_OK;
}
