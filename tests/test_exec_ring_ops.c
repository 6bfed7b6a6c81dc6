/* Ring attention's backend operations (kvr_exec_ring_*): on the ref backend, the LSE merge of a
 * rank's zig-zag blocks equals the attention against all keys at once (float64, 1e-9); on the
 * cuda backend (when a GPU is present) its fast path (the warp-specialised kernel per block,
 * vectorised merge) matches the ref oracle within bf16 bounds, queries from QKV and from a
 * packed slot alike; MHA, GQA, MQA. With a GPU, the fast kernels against the plain ones on
 * random data: MHA/GQA/MQA, head_dim 64 and 128, blocks not multiples of a tile, diagonal and
 * off-diagonal steps, windows, split and unsplit key ranges. */
#include <math.h>
#include <stdlib.h>

#include "exec_models.h"
#include "kvr_sim.h"
#include "kvr_weights.h"
#include "tap.h"

enum { CTX = 97, P = 2 };

/* Layer 0's K/V of every position in the cache, rank 0's rows' Q in QKV; then slot 0 = rank 0's
 * queries against every key at once, slot 1 = against its own block merged with rank 1's,
 * slot 2 = the packed queries against rank 1's block alone. */
static enum kvr_status ring_blocks(struct kvr_exec *ex, const int32_t *tok, uint32_t window)
{
    struct kvr_span s0 = kvr_zigzag_span(CTX, P, 0), s1 = kvr_zigzag_span(CTX, P, 1),
                    all = {{0, 0}, {CTX, 0}};
    int32_t t[CTX];
    enum kvr_status st = KVR_OK;
    for (int r = 1; r >= 0 && !st; r--) {
        struct kvr_span s = r ? s1 : s0;
        uint32_t n = 0;
        for (int h = 0; h < 2; h++)
            for (uint32_t x = s.pos[h]; x < s.pos[h] + s.n[h]; x++) t[n++] = tok[x];
        if (!(st = kvr_exec_embed(ex, t, n))) st = kvr_exec_layer_qkv_span(ex, 0, &s);
    }
    uint32_t rows = kvr_span_rows(&s0);
    if (!st) st = kvr_exec_ring_setup(ex, rows, 1, 4);
    if (!st) st = kvr_exec_ring_attn(ex, 0, -1, &s0, &all, window, 0);
    if (!st) st = kvr_exec_ring_attn(ex, 0, -1, &s0, &s0, window, 1);
    if (!st) st = kvr_exec_ring_attn(ex, 0, -1, &s0, &s1, window, 3);
    if (!st) st = kvr_exec_ring_merge(ex, 1, 3, rows);
    if (!st) st = kvr_exec_ring_q_pack(ex, 0, rows);
    if (!st) st = kvr_exec_ring_attn(ex, 0, 0, &s0, &s1, window, 2);
    return st;
}

/* A slot's rows as doubles (ref: double; cuda: float, rows padded to 16 bytes), without the
 * padding: [rows][n_heads (head_dim + 1)]. */
static double *slot_values(struct kvr_exec *ex, uint32_t slot, uint32_t rows, size_t *n)
{
    void *at;
    size_t row;
    if (kvr_exec_ring_area(ex, KVR_RING_O, slot, &at, &row)) return NULL;
    unsigned char *raw = malloc(row * rows);
    const struct kvr_model *m = kvr_exec_model(ex);
    size_t w = (size_t)m->n_heads * (m->head_dim + 1);
    bool dbl = row == sizeof(double) * w; /* ref */
    size_t each = dbl ? sizeof(double) : sizeof(float), stride = row / each;
    *n = w * rows;
    double *v = raw ? malloc(*n * sizeof *v) : NULL;
    if (v && !kvr_exec_ring_copy(ex, KVR_RING_O, slot, rows, raw, true))
        for (size_t i = 0; i < *n; i++) {
            size_t at_i = i / w * stride + i % w;
            v[i] = dbl ? ((double *)raw)[at_i] : ((float *)raw)[at_i];
        }
    free(raw);
    return v;
}

/* Largest difference of outputs and of log-sum-exps (both -inf counts as equal). */
static void diff(const struct kvr_model *m, const double *a, const double *b, size_t n,
                 double *d_out, double *d_lse)
{
    size_t w = (size_t)m->n_heads * (m->head_dim + 1), q = (size_t)m->n_heads * m->head_dim;
    *d_out = *d_lse = 0;
    for (size_t i = 0; i < n; i++) {
        bool lse = i % w >= q;
        double d = a[i] == b[i] ? 0 : fabs(a[i] - b[i]);
        if (!(d <= (lse ? *d_lse : *d_out))) *(lse ? d_lse : d_out) = d;
    }
}

/* The cuda backend's slots against the ref oracle's output `full` (all keys at once). */
static void check_cuda(const struct kvr_model *m, const int32_t *tok, uint32_t window,
                       const double *full, uint32_t rows)
{
    struct kvr_exec *cu = exec_open(m, KVR_BACKEND_CUDA, CTX, NULL);
    enum kvr_status st = cu ? ring_blocks(cu, tok, window) : KVR_ERR_INPUT;
    size_t n;
    double d_o, d_l;
    if (ok(!st, "%s window %u: cuda ring blocks run", m->name, window)) {
        double *cf = slot_values(cu, 0, rows, &n), *cm = slot_values(cu, 1, rows, &n);
        double *cp = slot_values(cu, 2, rows, &n), *cq = slot_values(cu, 3, rows, &n);
        diff(m, cf, full, n, &d_o, &d_l);
        ok(d_o <= 3e-2 && d_l <= 3e-2, "%s window %u: cuda all keys vs ref: out %.2g, lse %.2g",
           m->name, window, d_o, d_l);
        diff(m, cm, full, n, &d_o, &d_l);
        ok(d_o <= 3e-2 && d_l <= 3e-2, "%s window %u: cuda merged vs ref: out %.2g, lse %.2g",
           m->name, window, d_o, d_l);
        diff(m, cp, cq, n, &d_o, &d_l);
        ok(d_o == 0 && d_l == 0, "%s window %u: cuda packed queries = QKV's", m->name, window);
        free(cf), free(cm), free(cp), free(cq);
    } else {
        printf("#   %s\n", kvr_error_message());
    }
    kvr_exec_close(cu);
}

/* Without a window and with one of 30 positions (rank 0's last chunk then sees no key of the
 * first): the merge equals all keys at once, one block alone does not, nor does the other
 * window. */
static void test_model(const struct kvr_model *m, bool gpu)
{
    int32_t tok[CTX];
    kvr_tokens_random(3, m->vocab, CTX, tok);
    struct kvr_span s0 = kvr_zigzag_span(CTX, P, 0);
    uint32_t rows = kvr_span_rows(&s0), windows[2] = {0, 30};
    double *full[2] = {NULL, NULL};
    size_t n = 0;
    for (int w = 0; w < 2; w++) {
        struct kvr_exec *ref = exec_open(m, KVR_BACKEND_REF, CTX, NULL);
        enum kvr_status st = ref ? ring_blocks(ref, tok, windows[w]) : KVR_ERR_INPUT;
        if (!ok(!st && rows == 49, "%s window %u: ref ring blocks run (rank 0 of 2: 25 + 24 rows)",
                m->name, windows[w])) {
            printf("#   %s\n", kvr_error_message());
            kvr_exec_close(ref);
            continue;
        }
        full[w] = slot_values(ref, 0, rows, &n);
        double *merged = slot_values(ref, 1, rows, &n), *part = slot_values(ref, 3, rows, &n);
        double d_o, d_l;
        diff(m, merged, full[w], n, &d_o, &d_l);
        ok(d_o <= 1e-9 && d_l <= 1e-9,
           "%s window %u: ref: own block merged with the other's = all keys at once (out %.2g, "
           "lse %.2g)",
           m->name, windows[w], d_o, d_l);
        diff(m, part, full[w], n, &d_o, &d_l);
        ok(d_o > 1e-3, "%s window %u: ref: one block alone differs (%.2g): the check can fail",
           m->name, windows[w], d_o);
        if (gpu) check_cuda(m, tok, windows[w], full[w], rows);
        free(merged), free(part);
        kvr_exec_close(ref);
    }
    double d_o = 0, d_l = 0;
    if (full[0] && full[1]) diff(m, full[0], full[1], n, &d_o, &d_l);
    ok(d_o > 1e-3, "%s: the window of 30 changes the output (%.2g)", m->name, d_o);
    free(full[0]), free(full[1]);
}

/* Unmasked pairs per head of a causal prefill of ctx tokens in a window (0: none), summed. */
static uint64_t prefill_pairs(uint32_t ctx, uint32_t window)
{
    uint64_t n = 0;
    for (uint64_t q = 0; q < ctx; q++) n += window && q + 1 > window ? window : q + 1;
    return n;
}

/* The fast ring path's kernels against the plain ones on random data (kvr_exec_bench_ring's
 * check): every step of every rank, the merged steps against all keys at once, the fast merge,
 * the finish; and all steps together are exactly the prefill's pairs. */
static void test_ring_kernels(void)
{
    static const struct {
        uint32_t ctx, p, h, kv, hd, window;
    } shapes[] = {
        {1000, 2, 4, 4, 64, 0},    {1001, 3, 4, 2, 128, 0},   {777, 4, 3, 1, 64, 0},
        {1500, 4, 8, 2, 128, 100}, {2000, 2, 4, 1, 64, 129},  {4099, 4, 2, 2, 128, 1000},
        {300, 8, 4, 4, 64, 0},     {130, 2, 2, 1, 128, 1},    {97, 2, 3, 1, 64, 30},
        {2048, 2, 128, 16, 64, 0}, {2048, 2, 96, 96, 128, 0}, {2500, 5, 96, 12, 128, 300},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        struct kvr_ring_bench b = {.ctx = shapes[i].ctx,
                                   .p = (int)shapes[i].p,
                                   .n_heads = shapes[i].h,
                                   .n_kv = shapes[i].kv,
                                   .head_dim = shapes[i].hd,
                                   .window = shapes[i].window,
                                   .reps = 1,
                                   .check = true};
        enum kvr_status st = kvr_exec_bench_ring(&b);
        uint64_t want = 4ull * b.head_dim * b.n_heads * prefill_pairs(b.ctx, b.window);
        if (!ok(!st && kvr_ring_check_passed(&b) && b.flops == want,
                "fast ring kernels, ctx %u on %u ranks, heads %u/%u hd %u window %u: step %.2g "
                "(lse %.2g), merged vs all keys %.2g (lse %.2g), merge %.2g (lse %.2g), finish "
                "%s, pairs %s",
                b.ctx, b.p, b.n_heads, b.n_kv, b.head_dim, b.window, b.step_err, b.step_lse_err,
                b.merged_err, b.merged_lse_err, b.merge_err, b.merge_lse_err,
                b.finish_equal ? "equal" : "differs", b.flops == want ? "the prefill's" : "WRONG"))
            printf("#   %s\n", st ? kvr_error_message() : "");
    }
}

int main(void)
{
    (void)exec_chunks; /* exec_models.h's, unused here */
    bool gpu = kvr_exec_cuda_devices() > 0;
    for (int i = 0; i < N_EXEC_MODELS; i++) test_model(&exec_models[i], gpu);
    if (gpu) test_ring_kernels();
    if (!gpu) printf("# no GPU: the cuda half is skipped\n");
    return tap_done();
}
