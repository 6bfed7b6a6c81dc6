/* kvr bench attention: the flash-attention kernel alone, TFLOP/s over unmasked pairs. */
#include <stdio.h>
#include <string.h>

#include "kvr_bench.h"
#include "kvr_cli.h"
#include "kvr_opt.h"
#include "kvr_exec.h"
#include "kvr_json.h"
#include "kvr_machine.h"
#include "kvr_units.h"

static const char usage[] =
    "usage: kvr bench attention [options]\n\nTimes the attention kernel alone (CUDA "
    "events, median of the reps) for N queries at\npositions [S, S+N) against keys "
    "[0, S+N); TFLOP/s counts unmasked pairs only (inside the window when one\nis given).\n";

struct attn_args {
    const char *ctx, *prefix, *heads, *kv_heads, *head_dim, *variant, *reps, *window, *ring;
    bool dense, lse, check, json, quiet, help;
    struct kvr_attn_bench b; /* converted from the above */
    uint32_t n_ring;         /* --ring P (0: the prefill kernel) */
};

static enum kvr_status uint_opt(const char *opt, const char *text, uint64_t max, uint32_t *out)
{
    uint64_t v;
    if (kvr_parse_tokens(text, max, &v))
        return kvr_error(KVR_ERR_USAGE, "%s: '%s' is not a count in [0, %llu]", opt, text,
                         (unsigned long long)max);
    *out = (uint32_t)v;
    return KVR_OK;
}

/* The shape the kernels take, named by option before any device is looked for. */
static enum kvr_status check_shape(const struct attn_args *a)
{
    const struct kvr_attn_bench *b = &a->b;
    if (b->head_dim != 64 && b->head_dim != 128)
        return kvr_error(KVR_ERR_USAGE, "--head-dim: '%s' is not 64 or 128", a->head_dim);
    if (!b->c || !b->n_heads || !b->reps)
        return kvr_error(KVR_ERR_USAGE, "--%s: '%s' must be at least 1",
                         !b->c         ? "ctx"
                         : !b->n_heads ? "heads"
                                       : "reps",
                         !b->c         ? a->ctx
                         : !b->n_heads ? a->heads
                                       : a->reps);
    if (!b->n_kv || b->n_heads % b->n_kv)
        return kvr_error(KVR_ERR_USAGE, "--kv-heads: '%s' does not divide --heads %u", a->kv_heads,
                         b->n_heads);
    if (a->n_ring && b->c < 2 * a->n_ring)
        return kvr_error(KVR_ERR_USAGE, "--ring %u: --ctx %u gives fewer than 2 tokens a rank",
                         a->n_ring, b->c);
    return KVR_OK;
}

static enum kvr_status check_args(void *args, const struct kvr_opt_result *res)
{
    struct attn_args *a = args;
    struct kvr_attn_bench *b = &a->b;
    enum kvr_status st = KVR_OK;
    (void)res;
    *b = (struct kvr_attn_bench){.warmup = 3, .dense = a->dense, .check = a->check, .lse = a->lse};
    uint32_t v = 0;
    a->n_ring = 0;
    if (!st) st = uint_opt("--ctx", a->ctx, KVR_MAX_CTX, &b->c);
    if (!st) st = uint_opt("--prefix", a->prefix, KVR_MAX_CTX, &b->s);
    if (!st) st = uint_opt("--heads", a->heads, 1024, &b->n_heads);
    if (!st && a->kv_heads) st = uint_opt("--kv-heads", a->kv_heads, 1024, &b->n_kv);
    if (!st) st = uint_opt("--head-dim", a->head_dim, 1024, &b->head_dim);
    if (!st) st = uint_opt("--window", a->window, KVR_MAX_CTX, &b->window);
    if (!st) st = uint_opt("--variant", a->variant, KVR_ATTN_N_VARIANTS, &v), b->mt = (int)v;
    if (!st) st = uint_opt("--reps", a->reps, 100000, &v), b->reps = (int)v;
    if (!st) st = uint_opt("--ring", a->ring, KVR_MAX_GPUS, &a->n_ring);
    if (!st && a->n_ring && (b->s || b->mt || b->dense || b->lse))
        st = kvr_error(KVR_ERR_USAGE,
                       "--ring %u: takes no --prefix, --variant, --dense or --lse (the ring's "
                       "steps run on the default kernel from key 0 and always write the LSE)",
                       a->n_ring);
    if (!st && a->kv_heads && !b->n_kv)
        st = kvr_error(KVR_ERR_USAGE, "--kv-heads: '%s' must be at least 1", a->kv_heads);
    if (!b->n_kv) b->n_kv = b->n_heads;
    return st ? st : check_shape(a);
}

#define OFF(f) offsetof(struct attn_args, f)
static const struct kvr_opt attn_opts[] = {
    KVR_OPT("ctx", 'c', "N", OFF(ctx), "queries", .def = "16k", .unit = "tokens"),
    KVR_OPT("prefix", 'p', "S", OFF(prefix), "keys before the first query", .def = "0",
            .unit = "tokens"),
    KVR_OPT("heads", 0, "H", OFF(heads), "query heads", .def = "32"),
    KVR_OPT("kv-heads", 0, "G", OFF(kv_heads), "KV heads", .def_help = "H"),
    KVR_OPT("head-dim", 0, "D", OFF(head_dim), "64 or 128", .def = "128"),
    KVR_OPT("dense", 0, NULL, OFF(dense), "also compute the masked blocks (the paper's TSP)"),
    KVR_OPT("window", 0, "W", OFF(window),
            "sliding window: query i sees key j iff 0 <= i-j < W (0: none)", .def = "0",
            .unit = "tokens"),
    KVR_OPT("lse", 0, NULL, OFF(lse), "also write each row's log-sum-exp (checked with --check)"),
    KVR_OPT("variant", 0, "V", OFF(variant),
            "0 default, 1-2 mma.sync kernel with 1 or 2 row tiles per warp,\n3 Hopper wgmma "
            "kernel, 4 the same with V's strides swapped (wrong\non purpose: a layout check), 5 "
            "Hopper with one warpgroup per block,\n6 warp-specialised TMA kernel (key range "
            "split when the grid is\nsmall), 7 the same with every key range split in 3, 8 the "
            "same\nwith 3 consumer warpgroups (head_dim 64 only), 9 and 10: 6 and 8\npersistent "
            "(one block per SM taking work from a counter)",
            .def = "0"),
    KVR_OPT("reps", 'r', "R", OFF(reps), "timed runs, after 3 warm-ups", .def = "20"),
    KVR_OPT("ring", 0, "P", OFF(ring),
            "ring attention's kernels instead: every step of P ranks under zig-zag\nsharding "
            "of the context (--prefix 0, --variant 0), beside the prefill\nkernel on the same "
            "pairs; --check compares them with the plain kernels",
            .def = "0"),
    KVR_OPT(
        "check", 0, NULL, OFF(check),
        "compare with the plain kernel first; exit 1 past rel err 1e-2, max abs 3e-2, LSE 1e-2"),
    KVR_OPT_COMMON_END(struct attn_args)};
#undef OFF

static const struct kvr_opt_spec attn_spec = {
    .usage = usage, .opts = attn_opts, .check = check_args};

static const char *ring_kinds[3] = {"diagonal", "earlier", "later"};

static double ring_kind_tflops(const struct kvr_ring_bench *r, int k)
{
    return r->kind_s[k] > 0 ? (double)r->kind_flops[k] / r->kind_s[k] / 1e12 : 0;
}

static void ring_json(const struct kvr_ring_bench *r, const struct kvr_attn_bench *b)
{
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_kv_u64(&j, "ctx", r->ctx);
    kvr_json_kv_u64(&j, "ranks", (uint64_t)r->p);
    kvr_json_kv_u64(&j, "heads", r->n_heads);
    kvr_json_kv_u64(&j, "kv_heads", r->n_kv);
    kvr_json_kv_u64(&j, "head_dim", r->head_dim);
    kvr_json_kv_u64(&j, "window", r->window);
    kvr_json_kv_u64(&j, "flops", r->flops);
    kvr_json_kv_dbl(&j, "steps_time_s", r->time_s);
    kvr_json_kv_dbl(&j, "steps_tflops", r->tflops);
    for (int k = 0; k < 3; k++) {
        char key[32];
        snprintf(key, sizeof key, "%s_tflops", ring_kinds[k]);
        kvr_json_kv_dbl(&j, key, ring_kind_tflops(r, k));
    }
    kvr_json_kv_dbl(&j, "merge_time_s", r->merge_s);
    kvr_json_kv_dbl(&j, "finish_time_s", r->finish_s);
    kvr_json_kv_dbl(&j, "prefill_time_s", b->time_s);
    kvr_json_kv_dbl(&j, "prefill_tflops", b->tflops);
    if (r->check) {
        kvr_json_kv_dbl(&j, "step_max_abs_err", r->step_err);
        kvr_json_kv_dbl(&j, "step_lse_max_abs_err", r->step_lse_err);
        kvr_json_kv_dbl(&j, "merged_max_abs_err", r->merged_err);
        kvr_json_kv_dbl(&j, "merged_lse_max_abs_err", r->merged_lse_err);
        kvr_json_kv_dbl(&j, "merge_max_abs_err", r->merge_err);
        kvr_json_kv_dbl(&j, "merge_lse_max_abs_err", r->merge_lse_err);
        kvr_json_kv_bool(&j, "finish_equal", r->finish_equal);
    }
    kvr_json_end(&j);
}

static void ring_print(const struct kvr_ring_bench *r, const struct kvr_attn_bench *b)
{
    char t[32], u[32], w[32];
    printf(
        "ring attention c=%u on %d ranks, heads=%u/%u hd=%u window=%u: %d steps %s (%.1f TFLOP/s "
        "over unmasked pairs; ",
        r->ctx, r->p, r->n_heads, r->n_kv, r->head_dim, r->window, r->p * r->p,
        kvr_format_duration(t, sizeof t, r->time_s), r->tflops);
    for (int k = 0; k < 3; k++)
        if (r->kind_s[k] > 0)
            printf("%s%s %.1f", k ? ", " : "", ring_kinds[k], ring_kind_tflops(r, k));
    printf("), merges %s, finishes %s; prefill kernel on the same pairs %s (%.1f TFLOP/s)\n",
           kvr_format_duration(u, sizeof u, r->merge_s),
           kvr_format_duration(t, sizeof t, r->finish_s),
           kvr_format_duration(w, sizeof w, b->time_s), b->tflops);
    if (r->check)
        printf("vs plain kernels: step max abs err %.3g (lse %.3g), merged steps vs all keys %.3g "
               "(lse %.3g), fast merge %.3g (lse %.3g), finish %s\n",
               r->step_err, r->step_lse_err, r->merged_err, r->merged_lse_err, r->merge_err,
               r->merge_lse_err, r->finish_equal ? "equal" : "DIFFERS");
}

/* The ring's steps, then the prefill kernel on the same context (the same pairs in all). */
static enum kvr_status bench_ring(struct kvr_attn_bench *b, int p, bool json)
{
    struct kvr_ring_bench r = {.ctx = b->c,
                               .n_heads = b->n_heads,
                               .n_kv = b->n_kv,
                               .head_dim = b->head_dim,
                               .window = b->window,
                               .p = p,
                               .warmup = b->warmup,
                               .reps = b->reps,
                               .check = b->check};
    enum kvr_status st = kvr_exec_bench_ring(&r);
    b->check = false; /* the prefill kernel's own checks are test_exec_cuda's */
    if (!st) st = kvr_exec_bench_attention(b);
    if (st) return st;
    (json ? ring_json : ring_print)(&r, b);
    if (r.check && !kvr_ring_check_passed(&r))
        return kvr_error(KVR_ERR_RUNTIME,
                         "--check: the ring's fast path is off the plain kernels (max abs err "
                         "above %g, LSE above %g, the merge above %g, or the finish differs)",
                         KVR_ATTN_CHECK_ABS, KVR_ATTN_CHECK_LSE, KVR_RING_CHECK_MERGE);
    return KVR_OK;
}

/* A check beyond the tolerances fails the command, after the numbers are printed. */
static enum kvr_status check_verdict(const struct kvr_attn_bench *b)
{
    if (!b->check || kvr_attn_check_passed(b)) return KVR_OK;
    return kvr_error(KVR_ERR_RUNTIME,
                     "--check: variant %d is off the plain kernel: rel err %.3g (at most %g), max "
                     "abs err %.3g (%g)%s",
                     b->mt, b->rel_err, KVR_ATTN_CHECK_REL, b->max_abs_err, KVR_ATTN_CHECK_ABS,
                     b->lse && !(b->lse_err <= KVR_ATTN_CHECK_LSE) ? ", LSE off" : "");
}

enum kvr_status kvr_bench_attention(int argc, char **argv)
{
    struct attn_args a = {0};
    enum kvr_status st;
    if (kvr_opt_start(&attn_spec, argc, argv, &a, NULL, &st)) return st;
    struct kvr_attn_bench b = a.b;
    bool json = a.json;
    if (a.n_ring) return bench_ring(&b, (int)a.n_ring, json);
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
        return check_verdict(&b);
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
    return check_verdict(&b);
}
