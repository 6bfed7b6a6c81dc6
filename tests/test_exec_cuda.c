/* The cuda backend against the ref backend (bf16 bounds), and every flash-attention kernel
 * against the plain kernel over shapes: MHA, GQA, MQA, head_dim 64 and 128, odd lengths,
 * prefix offsets (split key ranges), dense and causal, sliding windows, the LSE output.
 * Skipped (77) without a GPU. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec_models.h"
#include "kvr_cuda_gemm.h"
#include "kvr_cuda_kernels.h"
#include "kvr_cuda_tp.h"
#include "kvr_rng.h"
#include "kvr_weights.h"
#include "tap.h"

struct shape {
    uint32_t s, c, h, kv, window;
    int dense;
};

static void test_attention_ramp(struct shape sh, uint32_t hd, bool lse, int mt, float ramp)
{
    uint32_t s = sh.s, c = sh.c, h = sh.h, kv = sh.kv;
    int dense = sh.dense;
    struct kvr_attn_bench b = {.s = s,
                               .c = c,
                               .n_heads = h,
                               .n_kv = kv,
                               .head_dim = hd,
                               .dense = dense,
                               .window = sh.window,
                               .mt = mt,
                               .reps = 1,
                               .check = true,
                               .lse = lse,
                               .k_ramp = ramp};
    enum kvr_status st = kvr_exec_bench_attention(&b);
    if (!ok(!st && kvr_attn_check_passed(&b),
            "attention s=%u c=%u heads %u/%u hd %u%s window %u variant %d%s: rel err %.3g, max "
            "abs %.3g%s lse err %.3g",
            s, c, h, kv, hd, dense ? " dense" : "", sh.window, mt, ramp > 0 ? " keys ramped" : "",
            b.rel_err, b.max_abs_err, lse ? "," : ", no", lse ? b.lse_err : 0.0))
        printf("#   %s\n", st ? kvr_error_message() : "");
}

static void test_attention(struct shape sh, uint32_t hd, bool lse, int mt)
{
    test_attention_ramp(sh, hd, lse, mt, 0);
}

/* Lazy rescaling (KVR_ATTN_LAZY, default 1) against rescaling at every rise (0), both against
 * the plain kernel, on keys whose scores grow along the context: the running max rises by more
 * than the threshold every few tiles, so both the skipped and the taken rescale run. */
static void test_attention_lazy(void)
{
    static const struct shape ramped[] = {{0, 1000, 4, 2, 0, 0},
                                          {513, 700, 4, 1, 0, 1},
                                          {300, 500, 4, 4, 129, 0},
                                          {0, 2000, 2, 2, 0, 0}};
    for (int lazy = 1; lazy >= 0; lazy--) {
        setenv("KVR_ATTN_LAZY", lazy ? "1" : "0", 1);
        for (int mt = 0; mt <= KVR_ATTN_N_VARIANTS; mt++)
            for (uint32_t hd = 64; hd <= (kvr_cu_attn_variant_x3(mt) ? 64 : 128) && mt != 4;
                 hd += 64)
                for (size_t i = 0; i < sizeof ramped / sizeof *ramped; i++)
                    test_attention_ramp(ramped[i], hd, i % 2 == 0, mt, 0.03f);
    }
    setenv("KVR_ATTN_LAZY", "x", 1);
    struct kvr_attn_bench bad = {.c = 10, .n_heads = 1, .n_kv = 1, .head_dim = 64, .reps = 1};
    ok(kvr_exec_bench_attention(&bad) == KVR_ERR_INPUT &&
           strstr(kvr_error_message(), "KVR_ATTN_LAZY=x"),
       "KVR_ATTN_LAZY=x is refused, named: %s", kvr_error_message());
    unsetenv("KVR_ATTN_LAZY");
}

static void test_model(const struct kvr_model *m)
{
    enum { CTX = 131 };
    struct prompt pr = prompt(m, 9, CTX);
    struct kvr_exec *ref = exec_open(m, KVR_BACKEND_REF, CTX, NULL);
    struct kvr_exec *cu = exec_open(m, KVR_BACKEND_CUDA, CTX, NULL);
    struct kvr_exec *cu2 = exec_open(m, KVR_BACKEND_CUDA, CTX, NULL);
    if (!ok(ref && cu && cu2, "%s: ref and cuda executors open", m->name)) {
        printf("#   %s\n", kvr_error_message());
        return;
    }
    float *lr = malloc(m->vocab * 4), *lc = malloc(m->vocab * 4), *lc2 = malloc(m->vocab * 4);
    uint32_t one[] = {CTX}, chunks[] = {64, 1, 66};
    ok(!exec_chunks(ref, pr.tok, one, 1, lr) && !exec_chunks(cu, pr.tok, one, 1, lc) &&
           !exec_chunks(cu2, pr.tok, chunks, 3, lc2),
       "%s: prefills run", m->name);
    double e1 = rel_err(lc, lr, m->vocab), e2 = rel_err(lc2, lr, m->vocab);
    ok(e1 <= 3e-2, "%s: cuda logits vs ref: rel err %.3g <= 3e-2", m->name, e1);
    ok(e2 <= 3e-2, "%s: cuda chunks 64+1+66 vs ref: rel err %.3g <= 3e-2", m->name, e2);
    float *lf = malloc(m->vocab * 4);
    double e3 =
        exec_full_layers(cu, pr.tok, CTX, m->n_layers, lf) ? INFINITY : rel_err(lc, lf, m->vocab);
    ok(e3 <= 1e-2, "%s: cuda pruned last layer vs every row: rel err %.3g <= 1e-2", m->name, e3);
    free(lf);
    double worst = kv_worst(ref, cu2, m, CTX, rel_err);
    ok(worst <= 2e-2, "%s: chunked cuda KV cache vs ref: rel err %.3g <= 2e-2", m->name, worst);
    kvr_exec_close(ref), kvr_exec_close(cu), kvr_exec_close(cu2);
    free(lr), free(lc), free(lc2);
}

/* KVR_GEMM_OWN: a value that is not 0, 1 or 2, or the own kernel with the tuner off, refused by
 * name; and 2 (the own kernel wherever it takes the shape, the fused SwiGLU among them: d_ffn a
 * multiple of 128) against the ref backend as every model is. */
static void test_gemm_env(void)
{
    static const struct kvr_model fused = LLAMA_LIKE("llama-ffn256", 128, 2, 1, 64, 256);
    struct kvr_exec_opts o = {.backend = KVR_BACKEND_CUDA, .max_ctx = 256};
    struct kvr_exec *ex = NULL;
    setenv("KVR_GEMM_OWN", "3", 1);
    ok(kvr_exec_open(&fused, &o, &ex) == KVR_ERR_INPUT &&
           strstr(kvr_error_message(), "KVR_GEMM_OWN=3"),
       "KVR_GEMM_OWN=3 is refused, named: %s", kvr_error_message());
    kvr_exec_close(ex), ex = NULL;
    setenv("KVR_GEMM_OWN", "2", 1), setenv("KVR_GEMM_TUNE", "0", 1);
    ok(kvr_exec_open(&fused, &o, &ex) == KVR_ERR_INPUT &&
           strstr(kvr_error_message(), "KVR_GEMM_TUNE=0"),
       "KVR_GEMM_OWN=2 with KVR_GEMM_TUNE=0 is refused, named: %s", kvr_error_message());
    kvr_exec_close(ex);
    unsetenv("KVR_GEMM_TUNE");
    test_model(&fused);
    unsetenv("KVR_GEMM_OWN");
}

static void test_too_big(void)
{
    struct kvr_exec_opts o = {.backend = KVR_BACKEND_CUDA, .max_ctx = KVR_MAX_CTX};
    struct kvr_exec *ex = NULL;
    ok(kvr_exec_open(kvr_model_preset_find("llama-7b"), &o, &ex) == KVR_ERR_INPUT,
       "llama-7b at 4M tokens is refused before allocating");
    like(kvr_error_message(), "GB of GPU memory", "the message states the memory needed");
    kvr_exec_close(ex);
}

/* Every cuBLASLt algorithm the GEMM tuner may pick against cublasGemmEx (the plain path). */
static void test_gemm(uint64_t rows, uint64_t n, uint64_t k, bool f32, bool acc)
{
    double worst = INFINITY;
    int n_algos = 0;
    enum kvr_status st = kvr_cu_gemm_check(rows, n, k, f32, acc, &worst, &n_algos);
    double bound = f32 ? 1e-4 : 1e-2;
    if (!ok(!st && n_algos > 0 && worst <= bound,
            "gemm %llux%llux%llu %s%s: %d cuBLASLt algorithms against cublasGemmEx, worst rel err "
            "%.3g <= %.0e",
            (unsigned long long)rows, (unsigned long long)n, (unsigned long long)k,
            f32 ? "float32" : "bf16", acc ? " accumulate" : "", n_algos, worst, bound))
        printf("#   %s\n", st ? kvr_error_message() : "");
}

/* The own warp-specialised GEMM (kvr_cuda_gemm_ws.cu) against cublasGemmEx, and its SwiGLU
 * epilogue against the GEMM and the activation kernel, on shapes off its 128 x 256 x 64 tiles
 * (rows, columns) as well as the model's; a shape it does not take is refused. Each runs whole
 * and with its last round split over k; split: a shape whose few pairs (at most 20, 4 k-steps
 * a part) split on any GPU of 40 clusters or more, so the split must have run. */
static void test_gemm_ws(uint64_t rows, uint64_t n, uint64_t k, int epi, bool split)
{
    static const char *const names[] = {"bf16", "float32 accumulate", "swiglu"};
    double err = INFINITY;
    int parts = 0;
    enum kvr_status st = kvr_cu_gemm_ws_check(rows, n, k, epi, &err, &parts);
    double bound = epi == KVR_GEMM_EPI_F32_ACC ? 1e-5 : 1e-2;
    if (!ok(!st && err <= bound && (!split || parts >= 2),
            "own gemm %llux%llux%llu %s: rel err %.3g <= %.0e, whole and in %d parts%s",
            (unsigned long long)rows, (unsigned long long)n, (unsigned long long)k, names[epi], err,
            bound, parts, split ? " (>= 2)" : ""))
        printf("#   %s\n", st ? kvr_error_message() : "");
}

/* The own GEMM's rotary epilogue (the QKV projection, Q rotated in place, K and V to the
 * caches) against cublasGemmEx and the rotary kernel: MHA and GQA, head_dim 64 and 128, rows off
 * the 128-row tile, with and without a table. The reference rounds to bf16 twice, the epilogue
 * once. */
static void test_gemm_rope(uint64_t rows, uint32_t n_heads, uint32_t n_kv, uint32_t hd, uint64_t k,
                           bool rotate)
{
    double err[3] = {INFINITY, INFINITY, INFINITY};
    enum kvr_status st = kvr_cu_gemm_ws_rope_check(rows, n_heads, n_kv, hd, k, rotate, err);
    if (!ok(!st && err[0] <= 1e-2 && err[1] <= 1e-2 && err[2] <= 1e-2,
            "own gemm rotary %llu rows, %u/%u heads of %u, k %llu%s: rel err Q %.3g, K %.3g, V "
            "%.3g <= 1e-02",
            (unsigned long long)rows, n_heads, n_kv, hd, (unsigned long long)k,
            rotate ? "" : ", no rotation", err[0], err[1], err[2]))
        printf("#   %s\n", st ? kvr_error_message() : "");
}

/* The device's seeded fills (kvr_cu_fill_random, and a shard's slice, kvr_cu_fill_random_rows)
 * against the host's kvr_rng_value rounded to bf16, bit for bit: kvr_rng.h is their one
 * formula, so the cuda backend's seeded weights are the host's (kvr_weights.c, ref). */
static void test_seeded_fill(void)
{
    enum { ROWS = 37, COLS = 301, PART = 100, SRC0 = 50 };
    const uint64_t n = (uint64_t)ROWS * COLS;
    static const float rule[][2] = {{0.1f, 1.0f}, {0.02f, 0.0f}, {1.0f, 0.0f}, {0.0625f, 0.5f}};
    uint16_t *h = malloc(n * sizeof *h);
    void *d = NULL;
    bool whole = h && !kvr_exec_device_buffer(0, n * sizeof *h, &d), part = whole;
    for (int r = 0; r < 4 && whole && part; r++) {
        float scale = rule[r][0], offset = rule[r][1];
        uint64_t sid = 11 + (uint64_t)r;
        whole = !kvr_cu_fill_random(d, n, 7, sid, scale, offset, NULL) &&
                cudaMemcpy(h, d, n * sizeof *h, cudaMemcpyDeviceToHost) == cudaSuccess;
        for (uint64_t i = 0; i < n && whole; i++)
            whole = h[i] == kvr_float_to_bf16(kvr_rng_value(7, sid, i, scale, offset));
        part = !kvr_cu_fill_random_rows(d, ROWS, PART, PART, SRC0, COLS, 7, sid, scale, offset,
                                        NULL) &&
               cudaMemcpy(h, d, n * sizeof *h, cudaMemcpyDeviceToHost) == cudaSuccess;
        for (uint64_t i = 0; i < (uint64_t)ROWS * PART && part; i++)
            part = h[i] == kvr_float_to_bf16(kvr_rng_value(
                               7, sid, SRC0 + i / PART * COLS + i % PART, scale, offset));
    }
    ok(whole,
       "seeded fill: the device's kvr_cu_fill_random equals the host's kvr_rng_value in bf16");
    ok(part, "seeded fill: the device's kvr_cu_fill_random_rows equals the host's slice in bf16");
    kvr_exec_device_free(d);
    free(h);
}

/* tsp-paper's expansion (kvr_cu_kv_regroup) against the rule written out: expanded head h of
 * row r is KV head h / g of row r; back, each group's first copy; for GQA 4:2 at head_dim 128
 * and Falcon-7B's MQA 71:1 at head_dim 64. */
static void test_kv_regroup(uint32_t n_kv, uint32_t g, uint32_t hd)
{
    enum { ROWS = 5 };
    uint64_t narrow = (uint64_t)ROWS * n_kv * hd, wide = narrow * g;
    uint16_t *h = malloc(narrow * 2), *w = malloc(wide * 2), *back = malloc(narrow * 2);
    void *dn = NULL, *dw = NULL, *db = NULL;
    bool good = h && w && back && !kvr_exec_device_buffer(0, narrow * 2, &dn) &&
                !kvr_exec_device_buffer(0, wide * 2, &dw) &&
                !kvr_exec_device_buffer(0, narrow * 2, &db);
    for (uint64_t i = 0; good && i < narrow; i++) h[i] = (uint16_t)(i * 2654435761u >> 7);
    good = good && cudaMemcpy(dn, h, narrow * 2, cudaMemcpyHostToDevice) == cudaSuccess &&
           !kvr_cu_kv_regroup(dw, dn, ROWS, n_kv, g, hd, 1, NULL) &&
           !kvr_cu_kv_regroup(db, dw, ROWS, n_kv, g, hd, 0, NULL) &&
           cudaMemcpy(w, dw, wide * 2, cudaMemcpyDeviceToHost) == cudaSuccess &&
           cudaMemcpy(back, db, narrow * 2, cudaMemcpyDeviceToHost) == cudaSuccess;
    bool expanded = good, compact = good;
    for (uint64_t i = 0; good && i < wide; i++) {
        uint64_t r = i / ((uint64_t)n_kv * g * hd), head = i / hd % ((uint64_t)n_kv * g);
        expanded &= w[i] == h[(r * n_kv + head / g) * hd + i % hd];
    }
    for (uint64_t i = 0; good && i < narrow; i++) compact &= back[i] == h[i];
    ok(expanded, "kv_regroup %u KV heads x %u, hd %u: each KV head repeated in place", n_kv, g, hd);
    ok(compact, "kv_regroup %u KV heads x %u, hd %u: back to the cache's rows exactly", n_kv, g,
       hd);
    kvr_exec_device_free(dn), kvr_exec_device_free(dw), kvr_exec_device_free(db);
    free(h), free(w), free(back);
}

int main(void)
{
    if (kvr_exec_cuda_devices() == 0) {
        printf("1..0 # SKIP no CUDA device\n"); /* exit 77: skipped */
        return 77;
    }
    test_seeded_fill();
    test_kv_regroup(2, 2, 128);
    test_kv_regroup(1, 71, 64);
    test_gemm(131, 320, 256, false, false);
    test_gemm(131, 256, 320, true, true);
    test_gemm(1, 4096, 4096, true, true);
    test_gemm(77, 96, 64, false, false);
    test_gemm(2048, 4096, 11008, true, true);
    test_gemm(2048, 12288, 4096, false, false);
    test_gemm_ws(2048, 12288, 4096, KVR_GEMM_EPI_BF16, false);
    test_gemm_ws(131, 320, 256, KVR_GEMM_EPI_BF16, false);
    test_gemm_ws(1, 264, 64, KVR_GEMM_EPI_BF16, false);
    test_gemm_ws(300, 4104, 192, KVR_GEMM_EPI_BF16, false);
    test_gemm_ws(2048, 4096, 11008, KVR_GEMM_EPI_F32_ACC, false);
    test_gemm_ws(131, 256, 320, KVR_GEMM_EPI_F32_ACC, false);
    test_gemm_ws(2048, 22016, 4096, KVR_GEMM_EPI_SWIGLU, false);
    test_gemm_ws(200, 768, 128, KVR_GEMM_EPI_SWIGLU, false);
    test_gemm_ws(2600, 768, 128, KVR_GEMM_EPI_BF16, false); /* 11 row pairs: a partial group */
    test_gemm_ws(2600, 512, 64, KVR_GEMM_EPI_SWIGLU, false);
    test_gemm_ws(4100, 264, 128, KVR_GEMM_EPI_F32_ACC, false);
    test_gemm_ws(1, 512, 64, KVR_GEMM_EPI_SWIGLU, false);
    test_gemm_ws(131, 4096, 1024, KVR_GEMM_EPI_BF16, true);  /* 16 pairs: 4 parts of 4 steps */
    test_gemm_ws(131, 5120, 512, KVR_GEMM_EPI_BF16, true);   /* 20 pairs, 8 steps: 2 parts */
    test_gemm_ws(131, 2048, 1216, KVR_GEMM_EPI_BF16, true);  /* 19 steps: parts of 4 and 5 */
    test_gemm_ws(1, 4096, 4096, KVR_GEMM_EPI_F32_ACC, true); /* the accumulate, split */
    test_gemm_ws(200, 4096, 576, KVR_GEMM_EPI_SWIGLU, true); /* 16 pairs, 9 steps: 2 parts */
    {
        double err = 0;
        int parts = 0;
        ok(kvr_cu_gemm_ws_check(64, 320, 64, KVR_GEMM_EPI_SWIGLU, &err, &parts) == KVR_ERR_INPUT &&
               kvr_cu_gemm_ws_check(64, 256, 100, KVR_GEMM_EPI_BF16, &err, &parts) == KVR_ERR_INPUT,
           "own gemm: SwiGLU halves off the 128-column tile and k off 64 are refused");
    }
    test_gemm_rope(2048, 32, 32, 128, 4096, true); /* Llama-7B */
    test_gemm_rope(300, 32, 8, 128, 192, true);    /* GQA 4:1 */
    test_gemm_rope(131, 8, 4, 64, 128, true);
    test_gemm_rope(1, 4, 4, 64, 64, true);
    test_gemm_rope(200, 8, 4, 64, 128, false);
    test_gemm_rope(131, 8, 8, 128, 1024, true); /* 12 pairs: its last round split */
    {
        double err[3];
        ok(kvr_cu_gemm_ws_rope_check(64, 8, 2, 64, 128, true, err) == KVR_ERR_INPUT &&
               kvr_cu_gemm_ws_rope_check(64, 4, 4, 96, 128, true, err) == KVR_ERR_INPUT,
           "own gemm rotary: K's width off 256 and head_dim 96 are refused");
    }
    static const struct shape shapes[] = {
        {0, 1, 4, 4, 0, 0},      {0, 37, 4, 2, 0, 0},      {100, 77, 6, 1, 0, 0},
        {0, 1000, 8, 2, 0, 0},   {4000, 300, 4, 4, 0, 0},  {513, 700, 4, 1, 0, 1},
        {0, 1000, 4, 2, 100, 0}, {300, 500, 4, 4, 129, 0}, {2000, 64, 4, 1, 1000, 0},
        {0, 777, 2, 2, 1, 0},    {513, 700, 4, 1, 200, 1}, {5000, 3, 8, 8, 0, 0},
    };
    for (int mt = 1; mt <= KVR_ATTN_N_VARIANTS; mt++) /* 4 is the deliberately wrong layout */
        for (uint32_t hd = 64; hd <= (kvr_cu_attn_variant_x3(mt) ? 64 : 128) && mt != 4; hd += 64)
            for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
                test_attention(shapes[i], hd, i % 2 == 1, mt);
    test_attention_lazy();
    bool pairs_ok = true; /* the window's pair count against a plain sum */
    for (uint32_t w = 1; w < 40; w += 3)
        for (uint32_t st = 0; st < 50; st += 7) {
            uint64_t sum = 0;
            for (uint32_t q = st; q < st + 30; q++) sum += q + 1 < w ? q + 1 : w;
            pairs_ok &= kvr_attn_window_pairs(st, 30, w) == sum;
        }
    ok(pairs_ok && kvr_attn_window_pairs(7, 30, 0) == 7 * 30 + 30 * 31 / 2,
       "window pair counts match the plain sum");
    struct kvr_attn_bench wrong = {
        .c = 300, .n_heads = 4, .n_kv = 4, .head_dim = 128, .mt = 4, .reps = 1, .check = true};
    enum kvr_status wst = kvr_exec_bench_attention(&wrong);
    ok(!wst && wrong.rel_err > 0.1, "the check catches a wrong V layout (variant 4: rel err %.3g)",
       wrong.rel_err);
    for (int mt = 0; mt <= 6; mt += 6) {
        test_attention((struct shape){0, 16384, 32, 32, 0, 0}, 128, false, mt);
        test_attention((struct shape){0, 16384, 71, 1, 0, 0}, 64, true, mt);
        test_attention((struct shape){30720, 2048, 32, 8, 0, 0}, 128, true, mt);
        test_attention((struct shape){0, 8192, 32, 8, 4096, 0}, 128, true, mt);
    }
    for (int i = 0; i < N_EXEC_MODELS; i++) test_model(&exec_models[i]);
    test_too_big();
    test_gemm_env();
    return tap_done();
}
