/* kvr bench attention: the flash-attention kernel alone, TFLOP/s over unmasked pairs. */
#include <stdio.h>
#include <string.h>

#include "kvr_bench.h"
#include "kvr_cli.h"
#include "kvr_opt.h"
#include "kvr_exec.h"
#include "kvr_json.h"
#include "kvr_units.h"

struct attn_args {
    const char *ctx, *prefix, *heads, *kv_heads, *head_dim, *variant, *reps, *window;
    bool dense, lse, check, json, quiet, help;
};

#define OFF(f) offsetof(struct attn_args, f)
static const struct kvr_opt attn_opts[] = {
    {.name = "ctx",
     .short_name = 'c',
     .arg = "N",
     .def = "16k",
     .unit = "tokens",
     .help = "queries",
     .offset = OFF(ctx)},
    {.name = "prefix",
     .short_name = 'p',
     .arg = "S",
     .def = "0",
     .unit = "tokens",
     .help = "keys before the first query",
     .offset = OFF(prefix)},
    {.name = "heads", .arg = "H", .def = "32", .help = "query heads", .offset = OFF(heads)},
    {.name = "kv-heads", .arg = "G", .help = "KV heads", .def_help = "H", .offset = OFF(kv_heads)},
    {.name = "head-dim", .arg = "D", .def = "128", .help = "64 or 128", .offset = OFF(head_dim)},
    {.name = "dense",
     .help = "also compute the masked blocks (the paper's TSP)",
     .kind = KVR_OPT_FLAG,
     .offset = OFF(dense)},
    {.name = "window",
     .arg = "W",
     .def = "0",
     .unit = "tokens",
     .help = "sliding window: query i sees key j iff 0 <= i-j < W (0: none)",
     .offset = OFF(window)},
    {.name = "lse",
     .help = "also write each row's log-sum-exp (checked with --check)",
     .kind = KVR_OPT_FLAG,
     .offset = OFF(lse)},
    {.name = "variant",
     .arg = "V",
     .def = "0",
     .help = "0 default, 1-2 mma.sync kernel with 1 or 2 row tiles per warp,\n3 Hopper wgmma "
             "kernel, 4 the same with V's strides swapped (wrong\non purpose: a layout check), 5 "
             "Hopper with one warpgroup per block,\n6 warp-specialised TMA kernel (key range "
             "split when the grid is\nsmall), 7 the same with every key range split in 3, 8 the "
             "same\nwith 3 consumer warpgroups (head_dim 64 only)",
     .offset = OFF(variant)},
    {.name = "reps",
     .short_name = 'r',
     .arg = "R",
     .def = "20",
     .help = "timed runs, after 3 warm-ups",
     .offset = OFF(reps)},
    {.name = "check",
     .help = "compare with the plain kernel first",
     .kind = KVR_OPT_FLAG,
     .offset = OFF(check)},
    KVR_OPT_COMMON(struct attn_args),
    KVR_OPT_END};
#undef OFF

static const struct kvr_opt_spec attn_spec = {
    .usage =
        "usage: kvr bench attention [options]\n\nTimes the attention kernel alone (CUDA "
        "events, median of the reps) for N queries at\npositions [S, S+N) against keys "
        "[0, S+N); TFLOP/s counts unmasked pairs only (inside the window when one\nis given).\n",
    .opts = attn_opts};

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
    struct attn_args a;
    struct kvr_opt_result res;
    enum kvr_status st = kvr_opt_parse(&attn_spec, argc, argv, &a, &res);
    *help_ = a.help, *json = a.json;
    if (st || a.help) return st;
    *b = (struct kvr_attn_bench){.warmup = 3, .dense = a.dense, .check = a.check, .lse = a.lse};
    uint32_t v = 0;
    if (!st) st = uint_opt("--ctx", a.ctx, KVR_MAX_CTX, &b->c);
    if (!st) st = uint_opt("--prefix", a.prefix, KVR_MAX_CTX, &b->s);
    if (!st) st = uint_opt("--heads", a.heads, 1024, &b->n_heads);
    if (!st && a.kv_heads) st = uint_opt("--kv-heads", a.kv_heads, 1024, &b->n_kv);
    if (!st) st = uint_opt("--head-dim", a.head_dim, 1024, &b->head_dim);
    if (!st) st = uint_opt("--window", a.window, KVR_MAX_CTX, &b->window);
    if (!st) st = uint_opt("--variant", a.variant, KVR_ATTN_N_VARIANTS, &v), b->mt = (int)v;
    if (!st) st = uint_opt("--reps", a.reps, 100000, &v), b->reps = (int)v;
    if (!b->n_kv) b->n_kv = b->n_heads;
    return st;
}

enum kvr_status kvr_bench_attention(int argc, char **argv)
{
    struct kvr_attn_bench b;
    bool json = false, want_help = false;
    enum kvr_status st = parse(argc, argv, &b, &json, &want_help);
    if (st || want_help) return st ? st : (kvr_opt_help(&attn_spec, stdout), KVR_OK);
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
        kvr_json_kv_u64(&j, "window", b.window);
        kvr_json_kv_u64(&j, "variant", (uint64_t)b.mt);
        kvr_json_kv_u64(&j, "flops", b.flops);
        kvr_json_kv_dbl(&j, "time_s", b.time_s);
        kvr_json_kv_dbl(&j, "time_min_s", b.time_min_s);
        kvr_json_kv_dbl(&j, "tflops", b.tflops);
        if (b.check) {
            kvr_json_kv_dbl(&j, "max_abs_err", b.max_abs_err);
            kvr_json_kv_dbl(&j, "rel_err", b.rel_err);
            if (b.lse) kvr_json_kv_dbl(&j, "lse_max_abs_err", b.lse_err);
        }
        kvr_json_end(&j);
        return KVR_OK;
    }
    char t[32];
    printf("attention c=%u s=%u heads=%u/%u hd=%u%s window=%u variant %d: %s median, %.1f TFLOP/s "
           "(unmasked pairs)",
           b.c, b.s, b.n_heads, b.n_kv, b.head_dim, b.dense ? " dense" : "", b.window, b.mt,
           kvr_format_duration(t, sizeof t, b.time_s), b.tflops);
    if (b.check)
        printf("; vs plain kernel: max abs err %.3g, rel err %.3g", b.max_abs_err, b.rel_err);
    if (b.check && b.lse) printf(", lse max abs err %.3g", b.lse_err);
    printf("\n");
    return KVR_OK;
}
