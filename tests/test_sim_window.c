/* Sliding-window attention in the simulator (#17) against numbers derived by hand: the
 * attention efficiency's pairs, what each scheme sends and what each rank keeps
 * (sim/README.md, "Sliding-window attention"). The tiny model (fixtures.h) with a window of
 * W = 2 (query i sees keys i-1 and i) on the unit machine (op time = FLOPs seconds, links 1 B/s
 * with 1 s latency). Tiny's attention is 42 FLOPs a pair (scores 16, softmax 10, PV 16), its
 * K/V 16 bytes a token and layer; pre is 972 FLOPs for 3 tokens and 648 for 2, post 3072 and
 * 2048, the LM head 192 (test_sim.c). */
#include <math.h>
#include <string.h>

#include "kvr_calib.h"
#include "kvr_cost.h"
#include "kvr_search.h"
#include "kvr_sim.h"
#include "fixtures.h"
#include "tap.h"
#include "unit_machine.h"

static struct kvr_machine mach; /* large: link matrices */

static struct kvr_model windowed(uint32_t w)
{
    struct kvr_model m = tiny;
    m.sliding_window = w;
    return m;
}

static enum kvr_status run(const struct kvr_model *m, struct kvr_plan *plan,
                           struct kvr_sim_result *r, struct kvr_timeline *tl)
{
    struct kvr_sim *sim;
    enum kvr_status st = kvr_sim_open(m, &mach, &sim);
    if (!st) st = kvr_plan_check(plan, &mach);
    if (!st) st = kvr_sim_run(sim, plan, r, tl);
    kvr_sim_free(sim);
    return st;
}

/* The scheme on 2 unit GPUs, chunks 3, 3 of the tiny model with a window of 2. */
static enum kvr_status run_even_w2(enum kvr_scheme s, struct kvr_sim_result *r)
{
    unit_machine(&mach, 2);
    struct kvr_model w = windowed(2);
    struct kvr_plan plan = {.scheme = s, .p = 2, .ctx = 6};
    kvr_plan_even(&plan);
    return run(&w, &plan, r, NULL);
}

/* The attention efficiency's rows count the pairs the op computes. With half_tokens 1.75 and
 * attn_keys_exp 1 the rows are the mean keys per query and eff = rows / (rows + 1.75):
 *   s = 0, c = 4, causal: pairs 1+2+2+2 = 7, rows 7/4 = 1.75, eff 1/2: 7 x 42 / 0.5 = 588 s
 *     (the causal count, 10 pairs, gave rows 2.5 and 294 x 4.25 / 2.5 = 499.8 s);
 *   s = 3, c = 2, causal: pairs 2+2 = 4, rows 2, eff 2/3.75: 168 x 3.75 / 2 = 315 s (233.3);
 *   s = 3, c = 2, dense: keys [2, 5), 2 x 3 = 6 pairs, rows 3: 252 x 4.75 / 3 = 399 s (340.2);
 *   no window, s = 0, c = 4: 10 pairs, 420 x 4.25 / 2.5 = 714 s (unchanged).
 * The calibration's prediction of the attention over a prefill of 4: 2 layers x 588 s with the
 * last layer on every row; as the executor prunes it, 588 s + the last query's (s = 3, c = 1:
 * 2 pairs, rows 2, eff 2/3.75: 84 x 3.75 / 2 = 157.5 s) = 745.5 s. */
static void test_efficiency_pairs(void)
{
    unit_machine(&mach, 1);
    mach.gpu.half_tokens[KVR_CLASS_ATTENTION] = 1.75;
    mach.gpu.attn_keys_exp = 1;
    struct kvr_model w = windowed(2);
    const struct kvr_gpu *g = &mach.gpu;
    is_dbl(kvr_cost_attn_s(&w, g, 0, 4, KVR_MASK_CAUSAL), 588, 1e-12,
           "window 2, 4 queries from 0: 7 pairs, rows 1.75, 588 s");
    is_dbl(kvr_cost_attn_s(&w, g, 3, 2, KVR_MASK_CAUSAL), 315, 1e-12,
           "window 2, 2 queries after 3: 4 pairs, rows 2, 315 s");
    is_dbl(kvr_cost_attn_s(&w, g, 3, 2, KVR_MASK_DENSE), 399, 1e-12,
           "window 2, dense 2 queries after 3: 6 pairs, rows 3, 399 s");
    is_dbl(kvr_cost_attn_s(&tiny, g, 0, 4, KVR_MASK_CAUSAL), 714, 1e-12,
           "no window, 4 queries: 10 pairs, rows 2.5, 714 s");
    is_dbl(kvr_cost_model_eff_rows(&w, g, KVR_OP_ATTN_PV, 0, 4, KVR_MASK_CAUSAL), 1.75, 1e-15,
           "kvr_cost_model_eff_rows: 7 pairs / 4 queries");
    is_dbl(kvr_calib_predict_last(&w, g, 4, KVR_OP_ATTN_SCORES, true), 2 * 588, 1e-12,
           "calibration's attention prediction over 4 tokens, full: 2 layers x 588 s");
    is_dbl(kvr_calib_predict(&w, g, 4, KVR_OP_ATTN_SCORES), 588 + 157.5, 1e-12,
           "  pruned: 588 + the last query's 157.5 s");
}

static double attn_of(const struct kvr_timeline *tl, int rank)
{
    double t = 0;
    for (size_t k = 0; k < tl->n; k++)
        if (tl->events[k].rank == rank && !strcmp(tl->events[k].what, "attn"))
            t += tl->events[k].end_s - tl->events[k].start_s;
    return t;
}

/* kvr, whole, chunks 3 and 2 (test_sim.c's timeline: TTFT 7935 s without a window). Rank 0
 * hands on [first(3), 3) = [2, 3): one token, 16 B, 17 s; attention 5 pairs (210 s) on rank
 * 0 and 4 (168 s) on rank 1.
 *   layer 0: r0 pre [0, 972], send [972, 989], attn, post until 4254;
 *            r1 pre [0, 648], waits until 989, attn [989, 1157], post until 3205;
 *   layer 1: r0 pre [4254, 5226], send [5226, 5243]; r1 pre [3205, 3853], waits until 5243,
 *            attn until 5411, post until 7459, head until 7651.
 * TTFT 7651 s; rank 1 waits 341 + 1390 = 1731 s; 2 x 16 = 32 B sent. Kept: rank 0 [0, 3),
 * rank 1 [2, 5): 3 tokens x 2 layers x 16 B = 96 B each (rank 1: 160 B without the window). */
static void test_kvr_whole(void)
{
    unit_machine(&mach, 2);
    struct kvr_model w = windowed(2);
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = 2, .ctx = 5, .tokens = {3, 2}};
    struct kvr_sim_result r;
    ok(!run(&w, &plan, &r, NULL), "kvr whole, window 2, chunks 3 + 2 runs");
    is_dbl(r.ttft_s, 7651, 1e-9, "kvr whole, window 2: TTFT 7651 s");
    is_dbl(r.rank[1].wait_s, 1731, 1e-9, "kvr whole, window 2: rank 1 waits 341 + 1390 s");
    is_dbl(r.bytes_sent_total, 32, 1e-12, "kvr whole, window 2: one token a layer, 32 B");
    is_dbl(r.rank[0].kv_bytes, 96, 1e-12, "kvr whole, window 2: rank 0 keeps [0, 3): 96 B");
    is_dbl(r.rank[1].kv_bytes, 96, 1e-12, "kvr whole, window 2: rank 1 keeps [2, 5): 96 B");
    ok(!run(&tiny, &plan, &r, NULL) && fabs(r.rank[1].kv_bytes - 160) < 1e-9 &&
           fabs(r.bytes_sent_total - 96) < 1e-9,
       "kvr whole, no window: rank 1 keeps 160 B, 96 B sent");
}

/* streamed and direct hand on only the rows the receivers see (sim/kvr_trim.h), as the
 * executor does (exec/kvr_dist_kvr.c): chunks 3, 2, 1 of 6, window 2, per layer rank 0's key 2
 * to rank 1 and rank 1's key 4 to rank 2 (streamed: rank 0's piece goes no further than rank 1,
 * rank 2 sees none of it; direct: rank 0 sends rank 2 nothing): 2 tokens x 16 B x 2 layers =
 * 64 B; ranks keep [0, 3), [2, 5), [4, 6): 96, 96, 64 B. Without the window whole pieces, 8
 * tokens a layer (256 B), each rank [0, S_i): 96, 160, 192 B. */
static void test_kvr_pieces(void)
{
    unit_machine(&mach, 3);
    struct kvr_model w = windowed(2);
    for (int mode = KVR_FWD_STREAMED; mode <= KVR_FWD_DIRECT; mode++) {
        struct kvr_plan plan = {
            .scheme = KVR_SCHEME_KVR, .p = 3, .ctx = 6, .tokens = {3, 2, 1}, .kv_forward = mode};
        struct kvr_sim_result r;
        ok(!run(&w, &plan, &r, NULL) && fabs(r.bytes_sent_total - 64) < 1e-9 &&
               fabs(r.rank[0].kv_bytes - 96) < 1e-9 && fabs(r.rank[1].kv_bytes - 96) < 1e-9 &&
               fabs(r.rank[2].kv_bytes - 64) < 1e-9,
           "kvr %s, window 2: the rows seen, 64 B sent, keeps 96, 96, 64 B",
           mode == KVR_FWD_STREAMED ? "streamed" : "direct");
        ok(!run(&tiny, &plan, &r, NULL) && fabs(r.bytes_sent_total - 256) < 1e-9 &&
               fabs(r.rank[0].kv_bytes - 96) < 1e-9 && fabs(r.rank[1].kv_bytes - 160) < 1e-9 &&
               fabs(r.rank[2].kv_bytes - 192) < 1e-9,
           "kvr %s, no window: whole pieces, 256 B sent, keeps 96, 160, 192 B",
           mode == KVR_FWD_STREAMED ? "streamed" : "direct");
    }
}

/* tsp and tsp-causal, p = 2, ctx 6 (chunks 3, 3): without the window the all-gather moves
 * whole chunks, one step of 1 + 48 = 49 s, 2 x 48 B a layer, every rank keeps all 6 tokens
 * (192 B); with window 2 a halo (sim/kvr_trim.h): rank 1 receives [first(3), 3) = [2, 3) from
 * rank 0, 1 + 16 = 17 s, 16 B a layer (32 B), and rank 0 nothing; rank 0 keeps its 3 tokens
 * (96 B), rank 1 [2, 6) (128 B). Attention on rank 1 (the last chunk):
 *   tsp         dense block of 3 queries against keys [2, 6): 12 pairs, 504 s (18, 756 s);
 *   tsp-causal  3 queries after 3: 2 + 2 + 2 = 6 pairs, 252 s (15 pairs, 630 s).
 * Layer: pre 972, the exchange (all-gather 49, halo 17), attention, post 3072 (rank 1 is the
 * later one at every layer); then the head 192: tsp 2 (972 + 17 + 504 + 3072) + 192 = 9322 s
 * (9890 without the window; 9386 with the window's whole all-gather before the halo),
 * tsp-causal 8818 s (9638; 8882). tsp's dense block is fused as the executor runs it; tsp-paper
 * (eager) holds its score block and probabilities of the keys it computes: 2 x 3 x 4 x 2 heads x 2
 * B = 96 B (144 B without the window). */
static void test_tsp(void)
{
    unit_machine(&mach, 2);
    struct kvr_model w = windowed(2);
    const double want[2][2] = {{9322, 9890}, {8818, 9638}};
    for (int causal = 0; causal < 2; causal++)
        for (int win = 0; win < 2; win++) {
            struct kvr_plan plan = {
                .scheme = causal ? KVR_SCHEME_TSP_CAUSAL : KVR_SCHEME_TSP, .p = 2, .ctx = 6};
            kvr_plan_even(&plan);
            struct kvr_sim_result r;
            const char *name = causal ? "tsp-causal" : "tsp";
            ok(!run(win ? &tiny : &w, &plan, &r, NULL), "%s runs", name);
            is_dbl(r.ttft_s, want[causal][win], 1e-9, "%s, %s: TTFT %.0f s", name,
                   win ? "no window" : "window 2", want[causal][win]);
            ok(fabs(r.bytes_sent_total - (win ? 192 : 32)) < 1e-9 &&
                   fabs(r.rank[0].kv_bytes - (win ? 192 : 96)) < 1e-9 &&
                   fabs(r.rank[1].kv_bytes - (win ? 192 : 128)) < 1e-9,
               "%s, %s: %s, KV kept %s", name, win ? "no window" : "window 2",
               win ? "whole chunks gathered (192 B)" : "a halo of one token (32 B)",
               win ? "192 B per rank" : "96 and 128 B");
            if (!causal) {
                double fused = r.rank[1].act_bytes;
                struct kvr_plan c = plan;
                c.scheme = KVR_SCHEME_TSP_CAUSAL;
                ok(!run(win ? &tiny : &w, &c, &r, NULL) && fabs(r.rank[1].act_bytes - fused) < 1e-9,
                   "tsp, %s: the dense block is fused (the activations of tsp-causal)",
                   win ? "no window" : "window 2");
                double causal_act = r.rank[1].act_bytes;
                c.scheme = KVR_SCHEME_TSP_PAPER;
                ok(!run(win ? &tiny : &w, &c, &r, NULL) &&
                       fabs(r.rank[1].act_bytes - causal_act - (win ? 144 : 96)) < 1e-9,
                   "tsp-paper, %s: the dense score block adds %s B", win ? "no window" : "window 2",
                   win ? "144" : "96");
            }
        }
}

/* tsp-paper gathers K/V expanded to tiny's 2 query heads: 32 B a token, a step of 1 + 96 =
 * 97 s, 2 x 96 B a layer (384 B), 12 expanded tokens kept (384 B), the window or not; the dense
 * block as tsp's: 2 (972 + 97 + 504 + 3072) + 192 = 9482 s. */
static void test_tsp_paper(void)
{
    struct kvr_sim_result r;
    ok(!run_even_w2(KVR_SCHEME_TSP_PAPER, &r), "tsp-paper, window 2 runs");
    is_dbl(r.ttft_s, 9482, 1e-9, "tsp-paper, window 2: TTFT 9482 s");
    ok(fabs(r.bytes_sent_total - 384) < 1e-9 && fabs(r.rank[1].kv_bytes - 384) < 1e-9,
       "tsp-paper, window 2: 384 B gathered (expanded, whole chunks), 384 B kept per rank");
}

/* ring-pass, p = 2, chunks 3, 3, window 2: the one step moves the rows of rank 0's block
 * that rank 1 sees, [first(3), 3) = [2, 3), 16 B a layer (32 B), and nothing from rank 1 to
 * rank 0 (a block that wrapped around); rank 0 keeps 3 tokens (96 B), rank 1 [2, 6) (128 B).
 * Without the window whole blocks, 2 x 48 B a layer (192 B), 192 B kept per rank. */
static void test_ring_pass(void)
{
    struct kvr_sim_result r;
    ok(!run_even_w2(KVR_SCHEME_RING_PASS, &r) && fabs(r.bytes_sent_total - 32) < 1e-9 &&
           fabs(r.rank[0].kv_bytes - 96) < 1e-9 && fabs(r.rank[1].kv_bytes - 128) < 1e-9,
       "ring-pass, window 2: one token's rows (32 B), 96 and 128 B of KV kept");
    struct kvr_plan plan = {.scheme = KVR_SCHEME_RING_PASS, .p = 2, .ctx = 6};
    kvr_plan_even(&plan);
    ok(!run(&tiny, &plan, &r, NULL) && fabs(r.bytes_sent_total - 192) < 1e-9 &&
           fabs(r.rank[0].kv_bytes - 192) < 1e-9 && fabs(r.rank[1].kv_bytes - 192) < 1e-9,
       "ring-pass, no window: whole blocks (192 B), 192 B of KV kept per rank");
}

/* ring (zig-zag), pass-KV, p = 2, ctx 8: rank 0 holds [0, 2) and [6, 8), rank 1 [2, 6). The
 * one exchange a layer sends each rank only the rows its queries see (sim/kvr_trim.h): window
 * 2, rank 0's key 1 (query 2 sees it) and rank 1's key 5 (query 6), 16 B each, 64 B in all
 * (whole blocks, 256 B, without the trimming). Window 2 pairs: rank 0 own 3 + 3, against
 * rank 1's keys 1 (query 6, key 5); rank 1 own 1 + 2 + 2 + 2 = 7, against rank 0's 1 (query 2,
 * key 1): attention 2 x 7 x 42 = 588 s on rank 0 and 2 x 8 x 42 = 672 s on rank 1. Window 1
 * (each query its own key): the blocks of the other rank hold no pair, attention 2 x 4 x 42 =
 * 336 s on each rank, and nothing is sent. */
static void test_ring(void)
{
    unit_machine(&mach, 2);
    struct kvr_event ev[256];
    for (uint32_t win = 1; win <= 2; win++) {
        struct kvr_model w = windowed(win);
        struct kvr_plan plan = {
            .scheme = KVR_SCHEME_RING, .p = 2, .ctx = 8, .ring_pass = KVR_RING_PASS_KV};
        kvr_plan_zigzag(&plan);
        struct kvr_timeline tl = {.events = ev, .cap = 256};
        struct kvr_sim_result r;
        ok(!run(&w, &plan, &r, &tl) && tl.n_dropped == 0, "ring, window %u runs", win);
        is_dbl(r.bytes_sent_total, win == 2 ? 64 : 0, 1e-12, "ring, window %u: %s", win,
               win == 2 ? "one row each way a layer, 64 B" : "nothing seen, nothing sent");
        is_dbl(attn_of(&tl, 0), win == 2 ? 588 : 336, 1e-12, "ring, window %u: rank 0 attends %s s",
               win, win == 2 ? "588" : "336");
        is_dbl(attn_of(&tl, 1), win == 2 ? 672 : 336, 1e-12, "ring, window %u: rank 1 attends %s s",
               win, win == 2 ? "672" : "336");
    }
}

/* The balanced split (kvr_plan_balanced): a = 1348 FLOPs of token-local work a token (pre 324,
 * post 1024), b = 42 a pair. ctx 100 on 2 ranks, window 2: the prefix's work is 2a + 2b =
 * 2780 up to the window, then a + 2b = 1432 a token; half of 134800 + 42 (2 + 98 x 2) = 143116
 * is 71558, reached at S = 2 + (71558 - 2780) / 1432 = 50.03: (50, 50). Without the window half
 * of 134800 + 42 x 5000 is 172400 = 1348 S + 21 S^2 at S = 64.03: (64, 36). */
static void test_balanced(void)
{
    unit_machine(&mach, 2);
    struct kvr_model w = windowed(2);
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = 2, .ctx = 100};
    kvr_plan_balanced(&plan, &w, &mach.gpu);
    ok(plan.tokens[0] == 50 && plan.tokens[1] == 50, "balanced, window 2, ctx 100: 50 + 50 (%llu)",
       (unsigned long long)plan.tokens[0]);
    kvr_plan_balanced(&plan, &tiny, &mach.gpu);
    ok(plan.tokens[0] == 64 && plan.tokens[1] == 36, "balanced, no window, ctx 100: 64 + 36 (%llu)",
       (unsigned long long)plan.tokens[0]);
}

/* The search's model of the chain (kvr_search_hier.c) hands on what kvr_scheme_kvr.c does:
 * chunks 3, 2 on a link of 0.001 B/s, the hop [first(3), 3) is 1 + 16 / 0.001 = 16001 s
 * (48001 s for [0, 3) without the window), above both ranks' cycles (4254 s, 2864 s). */
static void test_search_hop(void)
{
    unit_machine(&mach, 2);
    mach.link_Bps[0][1] = 1e-3;
    struct kvr_model w = windowed(2);
    const uint64_t tokens[2] = {3, 2};
    is_dbl(kvr_bottleneck_of(&w, &mach, 2, tokens), 16001, 1e-12,
           "search's bottleneck, window 2: the hop of one token, 16001 s");
    is_dbl(kvr_bottleneck_of(&tiny, &mach, 2, tokens), 48001, 1e-12,
           "search's bottleneck, no window: the hop of 3 tokens, 48001 s");
}

/* The presets at 32k on 4 GPUs, chunks of 8k, by hand: K/V of a token and layer 2 x 8 x 128 x 2
 * = 4096 B (Mistral-7B, Llama-3.1-8B; 32 layers), 2 x 4 x 128 x 2 = 2048 B (Qwen2-7B, 28 layers,
 * no window: use_sliding_window false). KVR's whole hand-off, per layer:
 *   Mistral (W 4096)  3 hops x 4095 tokens x 4096 B x 32 = 1,610,219,520 B;
 *   Llama-3.1         (8k + 16k + 24k) x 4096 x 32 = 6,442,450,944 B;
 *   Qwen2             (8k + 16k + 24k) x 2048 x 28 = 2,818,572,288 B.
 * Mistral's last rank keeps [24576 - 4095, 32768) = 12287 tokens: 12287 x 32 x 4096 =
 * 1,610,481,664 B; TSP's halo moves what KVR hands on, 3 x 4095 x 4096 x 32 = 1,610,219,520 B
 * (its all-gather moved 4 x 3 x 8192 x 4096 x 32 = 12,884,901,888 B), its rank 0 keeps its
 * 8192 tokens (1,073,741,824 B) and rank 3 12287 (as KVR's last rank). */
static void test_presets(void)
{
    static const struct {
        const char *model;
        double bytes;
    } want[] = {
        {"mistral-7b", 1610219520.0}, {"llama-3.1-8b", 6442450944.0}, {"qwen2-7b", 2818572288.0}};
    kvr_machine_resolve("a100-nvlink", &mach);
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        const struct kvr_model *m = kvr_model_preset_find(want[k].model);
        struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = 4, .ctx = 32768};
        kvr_plan_even(&plan);
        struct kvr_sim_result r;
        ok(m && !run(m, &plan, &r, NULL), "%s at 32k on 4 GPUs runs", want[k].model);
        is_dbl(r.bytes_sent_total, want[k].bytes, 1e-15, "%s, kvr whole: %.0f B handed on",
               want[k].model, want[k].bytes);
        if (k) continue;
        is_dbl(r.rank[3].kv_bytes, 1610481664.0, 1e-15,
               "mistral-7b: the last rank keeps 12287 tokens");
        plan.scheme = KVR_SCHEME_TSP;
        ok(!run(m, &plan, &r, NULL) && r.bytes_sent_total == 1610219520.0 &&
               r.rank[0].kv_bytes == 1073741824.0 && r.rank[3].kv_bytes == 1610481664.0,
           "mistral-7b, tsp: a halo of 1,610,219,520 B, 1,073,741,824 and 1,610,481,664 B kept");
    }
}

int main(void)
{
    test_efficiency_pairs();
    test_kvr_whole();
    test_kvr_pieces();
    test_tsp();
    test_tsp_paper();
    test_ring_pass();
    test_ring();
    test_balanced();
    test_search_hop();
    test_presets();
    return tap_done();
}
