/* kvr bench attention: the flash-attention kernel alone, TFLOP/s over unmasked pairs. */
#include <stdio.h>
#include <string.h>

#include "kvr_bench.h"
#include "kvr_cli.h"
#include "kvr_exec.h"
#include "kvr_json.h"
#include "kvr_units.h"

static const char help[] =
    "usage: kvr bench attention [--ctx N] [--prefix S] [--heads H] [--kv-heads G]\n"
    "                           [--head-dim 64|128] [--dense] [--variant V] [--reps R] [--check]\n"
    "                           [--json]\n"
    "\n"
    "Times the attention kernel alone (CUDA events, median of the reps) for N queries at\n"
    "positions [S, S+N) against keys [0, S+N); TFLOP/s counts unmasked pairs only.\n"
    "\n"
    "  -c, --ctx N        queries (tokens; default 16k)\n"
    "  -p, --prefix S     keys before the first query (tokens; default 0)\n"
    "      --heads H      query heads (default 32)\n"
    "      --kv-heads G   KV heads (default: H)\n"
    "      --head-dim D   64 or 128 (default 128)\n"
    "      --dense        also compute the masked blocks (the paper's TSP)\n"
    "      --variant V    0 default, 1-2 mma.sync kernel with 1 or 2 row tiles per warp,\n"
    "                     3 Hopper wgmma kernel, 4 the same with V's strides swapped (wrong\n"
    "                     on purpose: a layout check), 5 Hopper with one warpgroup per block\n"
    "  -r, --reps R       timed runs (default 20, after 3 warm-ups)\n"
    "      --check        compare with the plain kernel first\n"
    "  -j, --json         print JSON\n";

static enum kvr_status uint_opt(const char *opt, const char *text, uint64_t max, uint32_t *out)
{
    uint64_t v;
    if (kvr_parse_tokens(text, max, &v))
        return kvr_error(KVR_ERR_USAGE, "%s: '%s' is not a count in [0, %llu]", opt, text,
                         (unsigned long long)max);
    *out = (uint32_t)v;
    return KVR_OK;
}

static enum kvr_status parse(int argc, char **argv, struct kvr_attn_bench *b, bool *json,
                             bool *help_)
{
    static const struct option opts[] = {
        {"ctx", required_argument, 0, 'c'},      {"prefix", required_argument, 0, 'p'},
        {"heads", required_argument, 0, 'H'},    {"kv-heads", required_argument, 0, 'G'},
        {"head-dim", required_argument, 0, 'D'}, {"dense", no_argument, 0, 'd'},
        {"variant", required_argument, 0, 'M'},  {"reps", required_argument, 0, 'r'},
        {"check", no_argument, 0, 'k'},          {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    *b = (struct kvr_attn_bench){
        .c = 16384, .n_heads = 32, .head_dim = 128, .warmup = 3, .reps = 20};
    enum kvr_status st = KVR_OK;
    uint32_t v = 0;
    kvr_cli_opt_reset();
    for (int c; !st && (c = kvr_cli_getopt(argc, argv, "c:p:r:jh", opts)) != -1;) {
        switch (c) {
        case 'c':
            st = uint_opt("--ctx", optarg, KVR_MAX_CTX, &b->c);
            break;
        case 'p':
            st = uint_opt("--prefix", optarg, KVR_MAX_CTX, &b->s);
            break;
        case 'H':
            st = uint_opt("--heads", optarg, 1024, &b->n_heads);
            break;
        case 'G':
            st = uint_opt("--kv-heads", optarg, 1024, &b->n_kv);
            break;
        case 'D':
            st = uint_opt("--head-dim", optarg, 1024, &b->head_dim);
            break;
        case 'd':
            b->dense = 1;
            break;
        case 'M':
            st = uint_opt("--variant", optarg, 5, &v), b->mt = (int)v;
            break;
        case 'r':
            st = uint_opt("--reps", optarg, 100000, &v), b->reps = (int)v;
            break;
        case 'k':
            b->check = true;
            break;
        case 'j':
            *json = true;
            break;
        case 'h':
            *help_ = true;
            return KVR_OK;
        default:
            return KVR_ERR_USAGE;
        }
    }
    if (!st && optind < argc)
        st = kvr_error(KVR_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!b->n_kv) b->n_kv = b->n_heads;
    return st;
}

enum kvr_status kvr_bench_attention(int argc, char **argv)
{
    struct kvr_attn_bench b;
    bool json = false, want_help = false;
    enum kvr_status st = parse(argc, argv, &b, &json, &want_help);
    if (st || want_help) return st ? st : (fputs(help, stdout), KVR_OK);
    if ((st = kvr_exec_bench_attention(&b))) return st;
    if (json) {
        struct kvr_json j;
        kvr_json_begin(&j, stdout);
        kvr_json_kv_u64(&j, "ctx", b.c);
        kvr_json_kv_u64(&j, "prefix", b.s);
        kvr_json_kv_u64(&j, "heads", b.n_heads);
        kvr_json_kv_u64(&j, "kv_heads", b.n_kv);
        kvr_json_kv_u64(&j, "head_dim", b.head_dim);
        kvr_json_kv_bool(&j, "dense", b.dense);
        kvr_json_kv_u64(&j, "flops", b.flops);
        kvr_json_kv_dbl(&j, "time_s", b.time_s);
        kvr_json_kv_dbl(&j, "time_min_s", b.time_min_s);
        kvr_json_kv_dbl(&j, "tflops", b.tflops);
        if (b.check) {
            kvr_json_kv_dbl(&j, "max_abs_err", b.max_abs_err);
            kvr_json_kv_dbl(&j, "rel_err", b.rel_err);
        }
        kvr_json_end(&j);
        return KVR_OK;
    }
    char t[32];
    printf("attention c=%u s=%u heads=%u/%u hd=%u%s: %s median, %.1f TFLOP/s (unmasked pairs)", b.c,
           b.s, b.n_heads, b.n_kv, b.head_dim, b.dense ? " dense" : "",
           kvr_format_duration(t, sizeof t, b.time_s), b.tflops);
    if (b.check)
        printf("; vs plain kernel: max abs err %.3g, rel err %.3g", b.max_abs_err, b.rel_err);
    printf("\n");
    return KVR_OK;
}
