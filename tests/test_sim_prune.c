/* The one-GPU prefill as the executor runs it (#17's rule, #24's calibration): the last layer's
 * pre on every row, its attention and post on the last row alone (sim/README.md, "single").
 * Hand-derived timelines on the unit machine (op time = FLOPs seconds), the simulator's FLOPs
 * against the executor's own count (kvr_exec_prefill_flops), and the calibration's operation
 * groups over the layers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_calib.h"
#include "kvr_cost.h"
#include "kvr_exec.h"
#include "kvr_sim.h"
#include "fixtures.h"
#include "tap.h"
#include "unit_machine.h"

static struct kvr_machine mach; /* large: link matrices */

static double ttft(const struct kvr_model *m, struct kvr_plan plan)
{
    struct kvr_sim *sim;
    struct kvr_sim_result r;
    if (kvr_sim_open(m, &mach, &sim)) return NAN;
    if (kvr_plan_check(&plan, &mach) || kvr_sim_run(sim, &plan, &r, NULL)) r.ttft_s = NAN;
    kvr_sim_free(sim);
    return r.ttft_s;
}

/* tiny (fixtures.h), 2 layers, C = 5 tokens: pre 324 FLOPs a token (norm 32, QKV 256, rotary
 * 36), attention 42 a pair, post 1024 a token (out 128, norm 32, up 512, act 80, down 256,
 * residual 16), head 192, the embedding free (no FLOPs, memory free).
 *   a whole layer: 324*5 + 42*15 + 1024*5 = 1620 + 630 + 5120 = 7370
 *   the last layer pruned: 1620 + 42*5 (the last query sees 5 keys) + 1024 = 2854
 *   full: 2*7370 + 192 = 14932; pruned: 7370 + 2854 + 192 = 10416.
 * With a window of 2: causal pairs 1+2+2+2+2 = 9, the last query's 2:
 *   layer 1620 + 378 + 5120 = 7118, last 1620 + 84 + 1024 = 2728: 7118 + 2728 + 192 = 10038. */
static void test_hand(void)
{
    unit_machine(&mach, 4);
    struct kvr_plan one = {.scheme = KVR_SCHEME_SINGLE, .p = 1, .ctx = 5, .tokens = {5}};
    is_dbl(ttft(&tiny, one), 10416, 1e-9, "tiny C = 5: pruned last layer 7370 + 2854 + 192 s");
    one.full_last_layer = true;
    is_dbl(ttft(&tiny, one), 14932, 1e-9, "  full last layer 2 x 7370 + 192 s");
    struct kvr_model w = tiny;
    w.sliding_window = 2;
    one.full_last_layer = false;
    is_dbl(ttft(&w, one), 10038, 1e-9, "  window 2: the last query's 2 keys (7118 + 2728 + 192)");
    one.ctx = one.tokens[0] = 1; /* one row: nothing to prune */
    double t1 = ttft(&tiny, one);
    one.full_last_layer = true;
    is_dbl(ttft(&tiny, one), t1, 0, "C = 1: pruned = full");
    is_dbl(t1, 2 * (324 + 42 + 1024) + 192, 1e-9, "  = 2 x 1390 + 192 s");
    /* p = 1 of any scheme is one rank's kvr_exec_chunk on the executor: single's timeline */
    const enum kvr_scheme any[] = {KVR_SCHEME_KVR, KVR_SCHEME_TSP, KVR_SCHEME_RING_PASS,
                                   KVR_SCHEME_RING, KVR_SCHEME_TP};
    for (size_t i = 0; i < sizeof any / sizeof any[0]; i++) {
        struct kvr_plan p1 = {.scheme = any[i], .p = 1, .ctx = 5, .tokens = {5}};
        is_dbl(ttft(&tiny, p1), 10416, 1e-9, "p = 1 of %s = single's 10416 s",
               kvr_scheme_get(any[i])->name);
    }
    struct kvr_plan two = {.scheme = KVR_SCHEME_KVR, .p = 2, .ctx = 5, .tokens = {3, 2}};
    is_dbl(ttft(&tiny, two), 7935, 1e-9, "kvr on 2 ranks keeps every row (test_sim.c's 7935 s)");
    two.full_last_layer = true;
    struct kvr_sim *sim;
    kvr_sim_open(&tiny, &mach, &sim);
    ok(kvr_plan_check(&two, &mach) == KVR_ERR_INPUT, "full_last_layer with p = 2 is refused");
    kvr_sim_free(sim);
}

/* Models whose last layer differs: MHA, MQA with one norm (Falcon-7B), a parallel block with
 * two norms (the second runs with the first, on every row), GQA with a window. */
static void test_against_exec(void)
{
    unit_machine(&mach, 1);
    struct kvr_model f40 = *kvr_model_preset_find("falcon-7b");
    f40.block_norms = 2;
    snprintf(f40.name, sizeof f40.name, "falcon-7b-2norms");
    const struct kvr_model *models[] = {&tiny, kvr_model_preset_find("llama-7b"),
                                        kvr_model_preset_find("falcon-7b"), &f40,
                                        kvr_model_preset_find("mistral-7b")};
    const uint32_t ctx[] = {1, 2, 1000, 4096, 32768};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        for (size_t k = 0; k < sizeof ctx / sizeof ctx[0]; k++) {
            const struct kvr_model *m = models[i];
            uint64_t ex = 0;
            double sim_f = 0, full_f = 0;
            struct kvr_prefill_flops all;
            struct kvr_plan one = {.scheme = KVR_SCHEME_SINGLE, .p = 1, .ctx = ctx[k]};
            one.tokens[0] = ctx[k];
            ok(!kvr_exec_prefill_flops(m, ctx[k], KVR_MASK_CAUSAL, &ex) &&
                   !kvr_sim_prefill_flops(m, ctx[k], false, &sim_f) &&
                   !kvr_sim_prefill_flops(m, ctx[k], true, &full_f) &&
                   !kvr_prefill_flops(m, ctx[k], KVR_MASK_CAUSAL, &all),
               "%s %u: counts", m->name, ctx[k]);
            is_dbl(sim_f, (double)ex, 1e-15, "%s %u: simulator FLOPs = executor's", m->name,
                   ctx[k]);
            is_dbl(full_f, (double)all.total, 0, "%s %u: full = the causal prefill's", m->name,
                   ctx[k]);
            /* on the unit machine the timeline's TTFT is its FLOPs (seconds) */
            is_dbl(ttft(m, one), (double)ex, 1e-12, "%s %u: TTFT = executed FLOPs s", m->name,
                   ctx[k]);
        }
}

/* The calibration's groups: the profile sums every layer, the last one pruned. On the unit
 * machine tiny at C = 5, per group over the 2 layers: attention 630 + 210, out-proj
 * 640 + 128, norm_mlp 160 + 32, mlp_up 2560 + 512, mlp_down (+ residual) 1360 + 272; qkv
 * 2 x 1280 either way. */
static void test_calib(void)
{
    unit_machine(&mach, 1);
    const struct kvr_gpu *g = &mach.gpu;
    static const struct {
        enum kvr_op op;
        bool full;
        double want;
        const char *what;
    } cases[] = {
        {KVR_OP_ATTN_SCORES, false, 840, "attention 630 + 210"},
        {KVR_OP_ATTN_SCORES, true, 1260, "attention full 2 x 630"},
        {KVR_OP_OUT_PROJ, false, 768, "out_proj 640 + 128"},
        {KVR_OP_NORM_MLP, false, 192, "norm_mlp 160 + 32"},
        {KVR_OP_MLP_UP, false, 3072, "mlp_up 2560 + 512"},
        {KVR_OP_MLP_DOWN, false, 1632, "mlp_down + residual 1360 + 272"},
        {KVR_OP_QKV, false, 2560, "qkv on every row 2 x 1280"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        is_dbl(kvr_calib_predict_last(&tiny, g, 5, cases[i].op, cases[i].full), cases[i].want, 1e-9,
               "calib: %s", cases[i].what);
    is_dbl(kvr_calib_predict(&tiny, g, 5, KVR_OP_MLP_UP), 3072, 1e-9,
           "calib: kvr_calib_predict is the pruned one");
}

/* Sub-chunks (plan.chunk, kvr exec --chunk), tiny C = 5 in chunks of 2: [0, 2), [2, 4), [4, 5).
 *   [0, 2): layer 1 pre 648 + attention 3 pairs 126 + post 2048; the last layer's pre 648 alone
 *           (a later sub-chunk reads only its K/V): 3470
 *   [2, 4): 648 + 7 pairs 294 + 2048, then 648: 3638
 *   [4, 5): one row, 5 keys: 324 + 210 + 1024 in both layers: 3116; head 192
 * = 10416 s, the whole prefill's FLOPs; one sub-chunk's activations held. */
static void test_chunks(void)
{
    unit_machine(&mach, 2);
    struct kvr_plan one = {.scheme = KVR_SCHEME_SINGLE, .p = 1, .ctx = 5, .tokens = {5}};
    struct kvr_sim *sim;
    struct kvr_sim_result whole, sub;
    static struct kvr_event ev[256];
    struct kvr_timeline tl_buf = {.events = ev, .cap = 256}, *tl = &tl_buf;
    if (kvr_sim_open(&tiny, &mach, &sim)) abort();
    ok(!kvr_sim_run(sim, &one, &whole, NULL), "one chunk runs");
    one.chunk = 2;
    ok(!kvr_sim_run(sim, &one, &sub, tl), "sub-chunks of 2 run");
    is_dbl(sub.ttft_s, 3470 + 3638 + 3116 + 192, 1e-9,
           "sub-chunks of 2: 3470 + 3638 + 3116 + 192 s");
    int embeds = 0;
    for (size_t i = 0; i < tl->n; i++) embeds += !strcmp(tl->events[i].what, "embed");
    ok(embeds == 3, "three sub-chunks, three embeddings (%d)", embeds);
    ok(sub.rank[0].act_bytes < whole.rank[0].act_bytes &&
           sub.rank[0].kv_bytes == whole.rank[0].kv_bytes,
       "activations of 2 rows held, the whole cache kept");
    one.chunk = 5;
    ok(!kvr_sim_run(sim, &one, &sub, NULL) && sub.ttft_s == whole.ttft_s,
       "a chunk of ctx is one chunk");
    kvr_sim_free(sim);
    struct kvr_plan two = {
        .scheme = KVR_SCHEME_KVR, .p = 2, .ctx = 5, .tokens = {3, 2}, .chunk = 2};
    ok(kvr_plan_check(&two, &mach) == KVR_ERR_INPUT, "sub-chunks on 2 ranks: refused");
}

int main(void)
{
    test_hand();
    test_chunks();
    test_against_exec();
    test_calib();
    return tap_done();
}
