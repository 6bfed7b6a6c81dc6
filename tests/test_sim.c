/* The simulator against closed forms, invariants, and a timeline derived by hand. */
#include <math.h>
#include <stdlib.h>

#include "kvr_config.h"
#include "kvr_cost.h"
#include "kvr_sim.h"
#include "fixtures.h"
#include "tap.h"
#include "unit_machine.h"

static struct kvr_machine mach; /* large: link matrices */

static double ttft(const struct kvr_model *m, const struct kvr_machine *h, struct kvr_plan *plan)
{
    struct kvr_sim *sim;
    struct kvr_sim_result r;
    if (kvr_sim_open(m, h, &sim)) return NAN;
    if (plan->scheme == KVR_SCHEME_SINGLE) plan->p = 1;
    if (kvr_plan_check(plan, h) || kvr_sim_run(sim, plan, &r, NULL)) r.ttft_s = NAN;
    kvr_sim_free(sim);
    return r.ttft_s;
}

static struct kvr_plan make_plan(enum kvr_scheme s, int p, uint64_t ctx)
{
    struct kvr_plan plan = {.scheme = s, .p = s == KVR_SCHEME_SINGLE ? 1 : p, .ctx = ctx};
    kvr_plan_even(&plan);
    return plan;
}

/* Links that take no time: the limit of infinite bandwidth and zero latency. */
static void infinite_links(struct kvr_machine *h)
{
    for (int i = 0; i < KVR_MAX_GPUS; i++)
        for (int j = 0; j < KVR_MAX_GPUS; j++)
            h->link_Bps[i][j] = 1e300, h->link_lat_s[i][j] = 1e-300;
}

static void test_hand_timeline(void)
{
    /* tiny, 2 ranks, partition (3, 2), links 1 B/s with 1 s latency. FLOPs per phase:
     * rank 0 (c=3, s=0): pre 96+768+108 = 972, attn (6 pairs) 96+60+96 = 252,
     *   post 384+96+1536+240+768+48 = 3072.
     * rank 1 (c=2, s=3): pre 64+512+72 = 648, attn (9 pairs) 144+90+144 = 378, post 2048.
     * KV of 3 tokens = 3 * 16 B = 48 B: a send takes 1 + 48 = 49 s.
     * layer 0: r0 pre [0,972], sends [972,1021], attn [972,1224], post [1224,4296];
     *          r1 pre [0,648], waits [648,1021], attn [1021,1399], post [1399,3447].
     * layer 1: r0 pre [4296,5268], sends [5268,5317], attn, post until 8592;
     *          r1 pre [3447,4095], waits [4095,5317], attn [5317,5695], post [5695,7743],
     *          head (32 + 160) [7743,7935].  TTFT = 7935; r1 waited 373 + 1222 = 1595. */
    unit_machine(&mach, 2);
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = 2, .ctx = 5, .tokens = {3, 2}};
    struct kvr_sim *sim;
    struct kvr_sim_result r;
    struct kvr_event ev[64];
    struct kvr_timeline tl = {.events = ev, .cap = 64};
    ok(kvr_sim_open(&tiny, &mach, &sim) == KVR_OK, "toy simulator opens");
    ok(kvr_sim_run(sim, &plan, &r, &tl) == KVR_OK, "toy plan runs");
    is_dbl(r.ttft_s, 7935, 1e-9, "toy TTFT = 7935 s");
    is_dbl(r.rank[1].wait_s, 1595, 1e-9, "rank 1 waits 373 + 1222 s");
    is_dbl(r.rank[1].compute_s, 2 * (648 + 378 + 2048) + 192, 1e-9, "rank 1 compute");
    is_dbl(r.rank[0].comm_s, 98, 1e-9, "rank 0 sends twice for 49 s");
    is_dbl(r.rank[0].end_s, 8592, 1e-9, "rank 0 ends at 8592 s");
    is_dbl(r.bytes_sent_total, 96, 1e-12, "96 bytes sent");
    int found = 0;
    for (size_t i = 0; i < tl.n; i++) {
        const struct kvr_event *e = &ev[i];
        if (e->kind == KVR_EV_SEND && e->layer == 1)
            found += fabs(e->start_s - 5268) < 1e-9 && fabs(e->end_s - 5317) < 1e-9;
        if (e->kind == KVR_EV_WAIT && e->rank == 1 && e->layer == 0)
            found += fabs(e->start_s - 648) < 1e-9 && fabs(e->end_s - 1021) < 1e-9;
    }
    ok(found == 2, "timeline holds the layer-1 send and rank 1's first wait");
    ok(tl.n_dropped == 0, "no event dropped");
    kvr_sim_free(sim);
}

/* ring-pass on the same toy (chunks 3, 2; block 0 = 48 B takes 49 s, block 1 = 32 B 33 s):
 * layer 0: pre ends at 972 (r0) and 648 (r1); both transfers start when both ranks are in the
 *   step (972): 0->1 ends 1021, 1->0 ends 1005, so both leave the step at 1021;
 *   r0 attn + post until 1021 + 252 + 3072 = 4345, r1 until 1021 + 378 + 2048 = 3447.
 * layer 1: pre until 5317 (r0) and 4095 (r1); the step ends at 5317 + 49 = 5366;
 *   r1 until 5366 + 378 + 2048 = 7792, head 192: TTFT 7984; r1 waited 373 + 1271. */
static void test_ring_pass_timeline(void)
{
    unit_machine(&mach, 2);
    struct kvr_plan plan = {.scheme = KVR_SCHEME_RING_PASS, .p = 2, .ctx = 5, .tokens = {3, 2}};
    struct kvr_sim *sim;
    struct kvr_sim_result r;
    ok(kvr_sim_open(&tiny, &mach, &sim) == KVR_OK && kvr_sim_run(sim, &plan, &r, NULL) == KVR_OK,
       "ring-pass toy plan runs");
    is_dbl(r.ttft_s, 7984, 1e-9, "ring-pass toy TTFT = 7984 s");
    is_dbl(r.rank[1].wait_s, 373 + 1271, 1e-9, "ring-pass: rank 1 waits 373 + 1271 s");
    is_dbl(r.rank[0].end_s, 5366 + 252 + 3072, 1e-9, "ring-pass: rank 0 ends at 8690 s");
    is_dbl(r.bytes_sent_total, 2 * (48 + 32), 1e-12, "ring-pass: each block crosses once a layer");
    kvr_sim_free(sim);
}

static void test_closed_forms(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-7b");
    kvr_machine_resolve("a100-nvlink", &mach);
    const struct kvr_gpu *g = &mach.gpu;
    uint64_t C = 8192;
    double sum = kvr_cost_embed_s(m, g, C) + kvr_cost_head_s(m, g), full = sum;
    for (int op = 0; op < KVR_N_LAYER_OPS; op++) {
        struct kvr_op_cost x, one;
        kvr_op_cost(m, (enum kvr_op)op, 0, C, KVR_MASK_CAUSAL, &x);
        kvr_op_cost(m, (enum kvr_op)op, C - 1, 1, KVR_MASK_CAUSAL, &one);
        /* a preset's attention goes by its queries too (attn_keys_exp 0) */
        double t = kvr_cost_op_s(g, &x, kvr_op_class((enum kvr_op)op), (double)C);
        full += m->n_layers * t;
        /* the last layer: pre on every row, attention (1 query, C keys) to residual on 1 */
        sum += (m->n_layers - 1) * t +
               (op < KVR_OP_ATTN_SCORES ? t
                                        : kvr_cost_op_s(g, &one, kvr_op_class((enum kvr_op)op), 1));
    }
    struct kvr_plan single = make_plan(KVR_SCHEME_SINGLE, 1, C);
    is_dbl(ttft(m, &mach, &single), sum, 1e-12,
           "single = sum of the operation costs (last layer on the last row)");
    single.full_last_layer = true;
    is_dbl(ttft(m, &mach, &single), full, 1e-12,
           "single with a full last layer: every layer on every row");
    single.full_last_layer = false;
    struct kvr_plan kvr1 = make_plan(KVR_SCHEME_KVR, 1, C);
    is_dbl(ttft(m, &mach, &kvr1), sum, 1e-12, "kvr with p = 1 = single");

    /* tsp with (practically) infinite links: every rank computes the same, so TTFT is the
     * busiest rank's compute. */
    static struct kvr_machine fast;
    fast = mach;
    infinite_links(&fast);
    struct kvr_plan tsp = make_plan(KVR_SCHEME_TSP, 8, C);
    struct kvr_sim *sim;
    struct kvr_sim_result r;
    kvr_sim_open(m, &fast, &sim);
    kvr_sim_run(sim, &tsp, &r, NULL);
    double busiest = 0;
    for (int i = 0; i < 8; i++) busiest = fmax(busiest, r.rank[i].compute_s);
    is_dbl(r.ttft_s, busiest, 1e-9, "tsp at infinite bandwidth = the busiest rank's compute");
    kvr_sim_free(sim);
}

/* attn_keys_exp a: attention's efficiency rows are queries^(1-a) * (pairs / queries)^a. */
static void test_attn_keys_exp(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-7b");
    kvr_machine_resolve("a100-nvlink", &mach);
    struct kvr_gpu g = mach.gpu;
    uint64_t s = 8192, c = 1024;
    double pairs = (double)c * s + c * (c + 1) / 2.0;
    for (int k = 0; k < 3; k++) {
        double a = k * 0.5, want = 0;
        g.attn_keys_exp = a;
        for (int op = KVR_OP_ATTN_SCORES; op <= KVR_OP_ATTN_PV; op++) {
            struct kvr_op_cost x;
            kvr_op_cost(m, (enum kvr_op)op, s, c, KVR_MASK_CAUSAL, &x);
            double rows = pow((double)c, 1 - a) * pow(pairs / c, a);
            want += kvr_cost_op_s(&g, &x, KVR_CLASS_ATTENTION, rows);
        }
        is_dbl(kvr_cost_attn_s(m, &g, s, c, KVR_MASK_CAUSAL), want, 1e-12,
               "attn_keys_exp %.1f: 1k queries after 8k keys cost as their rows say", a);
    }
    g.attn_keys_exp = 0;
    double by_queries = kvr_cost_attn_s(m, &g, s, c, KVR_MASK_CAUSAL);
    g.attn_keys_exp = 1;
    ok(kvr_cost_attn_s(m, &g, s, c, KVR_MASK_CAUSAL) < by_queries,
       "a long prefix makes few queries more efficient when the keys count");
}

/* overlap_Bps caps the asynchronous transfers (kvr's chain) only: tsp's all-gather and
 * ring-pass's steps, where nothing computes meanwhile, keep the link's bandwidth. */
static void test_overlap_cap(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-7b");
    enum kvr_scheme schemes[] = {KVR_SCHEME_KVR, KVR_SCHEME_TSP, KVR_SCHEME_RING_PASS};
    for (int k = 0; k < 3; k++) {
        kvr_machine_resolve("a100-nvlink", &mach);
        struct kvr_plan plan = make_plan(schemes[k], 4, 16384);
        double free_links = ttft(m, &mach, &plan);
        mach.overlap_Bps = 1e9;
        double capped = ttft(m, &mach, &plan);
        if (k == 0)
            ok(capped > free_links * 1.5,
               "kvr: a 1 GB/s overlap cap slows the chain (%.3g -> %.3g s)", free_links, capped);
        else
            is_dbl(capped, free_links, 0, "%s: the overlap cap changes nothing",
                   kvr_scheme_name(schemes[k]));
    }
}

static const enum kvr_scheme all_schemes[] = {
    KVR_SCHEME_SINGLE, KVR_SCHEME_TSP, KVR_SCHEME_TSP_CAUSAL, KVR_SCHEME_KVR,
    KVR_SCHEME_RING,   KVR_SCHEME_TP,  KVR_SCHEME_RING_PASS};

static void test_lower_bound_and_bandwidth(void)
{
    static const char *const models[] = {"llama-7b", "falcon-7b", "llama-2-70b"};
    static const char *const bws[] = {"1GB/s", "10GB/s", "50GB/s", "300GB/s", "3TB/s"};
    int below = 0, worse = 0, n = 0;
    for (int mi = 0; mi < 3; mi++)
        for (int si = 0; si < 7; si++)
            for (int p = 2; p <= 8; p *= 2) {
                double prev = INFINITY;
                for (int b = 0; b < 5; b++) {
                    kvr_machine_resolve("a100-nvlink", &mach);
                    kvr_machine_set_all_bw(&mach, bws[b]);
                    struct kvr_plan plan = make_plan(all_schemes[si], p, 12288);
                    struct kvr_sim *sim;
                    struct kvr_sim_result r;
                    kvr_sim_open(kvr_model_preset_find(models[mi]), &mach, &sim);
                    kvr_sim_run(sim, &plan, &r, NULL);
                    kvr_sim_free(sim);
                    below += r.ttft_s < r.lower_bound_s;
                    worse += r.ttft_s > prev * (1 + 1e-12);
                    prev = r.ttft_s;
                    n++;
                }
            }
    ok(below == 0, "no prediction is below the lower bound (%d cases, %d below)", n, below);
    ok(worse == 0, "more bandwidth never increases TTFT (%d cases, %d worse)", n, worse);
}

static void test_flop_scaling(void)
{
    /* pure compute: memory traffic free, no launch cost; double every FLOP rate */
    const struct kvr_model *m = kvr_model_preset_find("falcon-7b");
    for (int si = 0; si < 7; si++) {
        kvr_machine_resolve("a100-nvlink", &mach);
        infinite_links(&mach);
        mach.gpu.mem_Bps = 1e300, mach.gpu.launch_s = 0;
        struct kvr_plan plan = make_plan(all_schemes[si], 4, 10000);
        /* tp cannot shard Falcon-7B's 71 heads over 4 GPUs (refused): Llama-7B there */
        const struct kvr_model *mm =
            all_schemes[si] == KVR_SCHEME_TP ? kvr_model_preset_find("llama-7b") : m;
        double t1 = ttft(mm, &mach, &plan);
        mach.gpu.peak_flops *= 2;
        double t2 = ttft(mm, &mach, &plan);
        is_dbl(t2, t1 / 2, 1e-9, "%s: doubling FLOP rates halves pure-compute TTFT",
               kvr_scheme_name(all_schemes[si]));
    }
}

/* An fp32 model computes at the fp32 peak: pure compute at an fp32 peak of peak / 8 takes 8x
 * the bf16 model's time, and the lower bound moves with it; without an fp32 peak the profile
 * cannot time the model and the simulator refuses it. */
static void test_fp32_peak(void)
{
    struct kvr_model m32 = *kvr_model_preset_find("llama-7b"), m16 = m32;
    m32.dtype = KVR_DTYPE_FP32;
    for (int si = 0; si < 7; si++) {
        kvr_machine_resolve("a100-nvlink", &mach);
        infinite_links(&mach);
        mach.gpu.mem_Bps = 1e300, mach.gpu.launch_s = 0;
        mach.gpu.peak_fp32_flops = mach.gpu.peak_flops / 8;
        struct kvr_plan plan = make_plan(all_schemes[si], 4, 10000);
        is_dbl(ttft(&m32, &mach, &plan), 8 * ttft(&m16, &mach, &plan),
               1e-9 * ttft(&m32, &mach, &plan),
               "%s: an fp32 model at an fp32 peak of peak / 8 takes 8x the bf16 time",
               kvr_scheme_name(all_schemes[si]));
    }
    struct kvr_sim *sim = NULL;
    struct kvr_sim_result r16, r32;
    struct kvr_plan plan = make_plan(KVR_SCHEME_KVR, 4, 10000);
    ok(!kvr_sim_open(&m16, &mach, &sim) && !kvr_sim_run(sim, &plan, &r16, NULL), "bf16 runs");
    kvr_sim_free(sim);
    ok(!kvr_sim_open(&m32, &mach, &sim) && !kvr_sim_run(sim, &plan, &r32, NULL), "fp32 runs");
    kvr_sim_free(sim);
    is_dbl(r32.lower_bound_s, 8 * r16.lower_bound_s, 1e-9 * r32.lower_bound_s,
           "the lower bound of an fp32 model is at the fp32 peak");
    mach.gpu.peak_fp32_flops = 0;
    sim = NULL;
    ok(kvr_sim_open(&m32, &mach, &sim) == KVR_ERR_INPUT && !sim,
       "a profile without an fp32 peak refuses an fp32 model");
    ok(kvr_sim_open(&m16, &mach, &sim) == KVR_OK, "... and still times a bf16 one");
    kvr_sim_free(sim);
    ok(kvr_machine_resolve("h200-nvlink", &mach) == KVR_OK && mach.gpu.peak_fp32_flops == 66.9e12,
       "the H200 preset has the datasheet's fp32 peak");
}

static void test_relabelling(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-7b");
    /* the same bandwidth given per link or all at once */
    kvr_machine_resolve("a100-nvlink", &mach);
    kvr_machine_set_all_bw(&mach, "20GB/s");
    struct kvr_plan plan = make_plan(KVR_SCHEME_KVR, 8, 16384);
    kvr_plan_balanced(&plan, m, &mach.gpu);
    double all = ttft(m, &mach, &plan);
    kvr_machine_resolve("a100-nvlink", &mach);
    char spec[64];
    for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++) {
            snprintf(spec, sizeof spec, "%d-%d=20GB/s", i, j);
            kvr_machine_set_link(&mach, spec);
        }
    is_dbl(ttft(m, &mach, &plan), all, 1e-15, "per-link bandwidths equal to --bw give the same");
    /* one slow link anywhere in the ring gates an all-gather the same way */
    double t[3];
    const char *slow[] = {"0-1=2GB/s", "3-4=2GB/s", "7-0=2GB/s"};
    for (int k = 0; k < 3; k++) {
        kvr_machine_resolve("a100-nvlink", &mach);
        kvr_machine_set_link(&mach, slow[k]);
        struct kvr_plan tsp = make_plan(KVR_SCHEME_TSP, 8, 16384);
        t[k] = ttft(m, &mach, &tsp);
    }
    ok(t[0] == t[1] && t[1] == t[2], "tsp: moving the slow link around the ring changes nothing");
}

static void test_monotone_ctx(void)
{
    int bad = 0;
    for (int si = 0; si < 7; si++) {
        double prev = 0;
        for (uint64_t ctx = 1024; ctx <= 16384; ctx += 1024) {
            kvr_machine_resolve("a100-10GBps", &mach);
            struct kvr_plan plan = make_plan(all_schemes[si], 4, ctx);
            if (all_schemes[si] == KVR_SCHEME_KVR)
                kvr_plan_balanced(&plan, kvr_model_preset_find("llama-7b"), &mach.gpu);
            double t = ttft(kvr_model_preset_find("llama-7b"), &mach, &plan);
            bad += !(t > prev);
            prev = t;
        }
    }
    ok(bad == 0, "TTFT grows with ctx for every scheme (%d violations)", bad);
}

static void test_pairs_between(void)
{
    int bad = 0;
    for (uint64_t q0 = 0; q0 < 9; q0++)
        for (uint64_t q1 = q0; q1 < 10; q1++)
            for (uint64_t k0 = 0; k0 < 9; k0++)
                for (uint64_t k1 = k0; k1 < 10; k1++) {
                    uint64_t n = 0;
                    for (uint64_t q = q0; q < q1; q++)
                        for (uint64_t k = k0; k < k1; k++) n += k <= q;
                    bad += kvr_pairs_between(q0, q1, k0, k1) != n;
                }
    ok(bad == 0, "pairs between ranges equal brute force (%d wrong)", bad);
}

/* The claims the simulator must show (issue: "What it must show"). */
static void test_paper_claims(void)
{
    static const char *const models[] = {"llama-7b", "falcon-7b"};
    static const char *const machines[] = {"a100-nvlink", "a100-10GBps"};
    int losses = 0, n = 0;
    for (int mi = 0; mi < 2; mi++)
        for (int hi = 0; hi < 2; hi++)
            for (int p = 2; p <= 8; p *= 2)
                for (uint64_t ctx = 4096; ctx <= 16384; ctx += 4096) {
                    const struct kvr_model *m = kvr_model_preset_find(models[mi]);
                    kvr_machine_resolve(machines[hi], &mach);
                    struct kvr_plan tsp = make_plan(KVR_SCHEME_TSP, p, ctx);
                    struct kvr_plan kvr = make_plan(KVR_SCHEME_KVR, p, ctx);
                    kvr_plan_balanced(&kvr, m, &mach.gpu);
                    losses += ttft(m, &mach, &kvr) >= ttft(m, &mach, &tsp);
                    n++;
                }
    ok(losses == 0, "balanced KVR beats TSP on the A100 presets (%d cases, %d losses)", n, losses);

    /* under noise TSP degrades more than KVR (Llama-7B, p = 8, 16k, 300 GB/s, 50% random) */
    const struct kvr_model *m = kvr_model_preset_find("llama-7b");
    double deg[2];
    for (int k = 0; k < 2; k++) {
        struct kvr_plan plan = make_plan(k ? KVR_SCHEME_KVR : KVR_SCHEME_TSP, 8, 16384);
        kvr_machine_resolve("a100-nvlink", &mach);
        if (k) kvr_plan_balanced(&plan, m, &mach.gpu);
        double clean = ttft(m, &mach, &plan);
        kvr_machine_set_noise(&mach, "random:0.9");
        deg[k] = ttft(m, &mach, &plan) / clean;
    }
    ok(deg[0] > deg[1] && deg[1] >= 1, "noise slows tsp (x%.3f) more than kvr (x%.3f)", deg[0],
       deg[1]);
}

static void test_bad_input(void)
{
    kvr_machine_resolve("a100-nvlink", &mach);
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = 4, .ctx = 1000};
    ok(kvr_plan_parse_partition(&plan, "300,300,300") == KVR_ERR_INPUT, "3 chunks for p = 4");
    like(kvr_error_message(), "has 3 chunks, but --gpus is 4", "  message");
    kvr_plan_parse_partition(&plan, "300,300,300,300");
    ok(kvr_plan_check(&plan, &mach) == KVR_ERR_INPUT, "partition not summing to ctx");
    like(kvr_error_message(), "sums to 1200, not ctx = 1000", "  message");
    kvr_plan_parse_partition(&plan, "500,500,0,0");
    ok(kvr_plan_check(&plan, &mach) == KVR_ERR_INPUT, "empty chunk");
    like(kvr_error_message(), "chunk 2 is empty", "  message");
    ok(kvr_machine_set_link(&mach, "3-9=1GB/s") == KVR_ERR_INPUT, "unknown link");
    like(kvr_error_message(), "unknown link '3-9'", "  message");
    ok(kvr_machine_set_link(&mach, "3-4=0GB/s") == KVR_ERR_INPUT, "zero bandwidth");
    like(kvr_error_message(), "must be > 0", "  message");
    ok(kvr_machine_set_link(&mach, "3-4=1GB/s,0us") == KVR_ERR_INPUT, "zero latency");
    ok(kvr_machine_set_all_bw(&mach, "-1GB/s") == KVR_ERR_INPUT, "negative bandwidth");
    ok(kvr_machine_set_noise(&mach, "1.0") == KVR_ERR_INPUT, "noise share 1");
    like(kvr_error_message(), "must be a number in [0, 1)", "  message");
    ok(kvr_machine_set_noise(&mach, "-0.1") == KVR_ERR_INPUT, "negative noise");
    ok(kvr_machine_set_gpus(&mach, "16") == KVR_ERR_INPUT, "p beyond the topology");
    like(kvr_error_message(), "larger than the topology of a100-nvlink (8 GPUs)", "  message");
}

static void test_machine_ini(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/machines/h100-2x4.ini", KVR_SOURCE_DATADIR);
    ok(kvr_machine_resolve(path, &mach) == KVR_OK, "data/machines/h100-2x4.ini loads (%s)",
       kvr_error_message());
    ok(mach.n_gpus == 8 && mach.n_nodes == 2, "two nodes of four");
    ok(mach.link_Bps[0][1] == 450e9 && mach.link_Bps[3][4] == 50e9, "intra vs inter links");
    ok(mach.link_Bps[1][2] == 100e9 && mach.link_Bps[2][1] == 450e9, "directed override 1>2");
    const char *bad = tap_write("link.ini", "[gpu]\npeak = 312TFLOPS\nmem_bw = 2TB/s\nmem = 80GB\n"
                                            "[topology]\ngpus_per_node = 4\nintra_bw = 300GB/s\n"
                                            "[links]\n1-7 = 1GB/s\n");
    ok(kvr_machine_load_ini(bad, &mach) == KVR_ERR_INPUT, "a link outside the topology");
    like(kvr_error_message(), ":9: --link: unknown link '1-7'", "  message has file:line");
    const char *noise = tap_write(
        "noise.ini", "[gpu]\npeak = 312TFLOPS\nmem_bw = 2TB/s\nmem = 80GB\neff.gemm = 0.625\n"
                     "[topology]\ngpus_per_node = 4\nintra_bw = 300GB/s\n[noise]\n"
                     "share = 0.123456789\nmode = random\nlinks = 0-1,2>3\nseed = 7\n");
    ok(kvr_machine_load_ini(noise, &mach) == KVR_OK, "[noise] section loads (%s)",
       kvr_error_message());
    ok(mach.noise.share == 0.123456789 && mach.noise.mode == KVR_NOISE_RANDOM &&
           mach.noise.seed == 7,
       "noise share, mode and seed are kept exactly");
    ok(!mach.noise.all_links && mach.noise.on[0][1] && mach.noise.on[1][0] && mach.noise.on[2][3] &&
           !mach.noise.on[3][2] && !mach.noise.on[1][2],
       "noise only on the chosen links, 2>3 one way");
    ok(mach.gpu.compute_eff[KVR_CLASS_GEMM] == 0.625, "eff.gemm is read");
    const char *eff = tap_write("eff.ini", "[gpu]\npeak = 312TFLOPS\nmem_bw = 2TB/s\nmem = 80GB\n"
                                           "eff.gemm = 1.5\n[topology]\ngpus_per_node = 4\n"
                                           "intra_bw = 300GB/s\n");
    ok(kvr_machine_load_ini(eff, &mach) == KVR_ERR_INPUT, "an efficiency above 1");
    like(kvr_error_message(), ":5: eff.gemm = '1.5' must be in (0, 1]", "  message has file:line");
    /* op_scale 0 is the cost model's "not set": a profile's 0 ran every qkv at x 1 */
    const char *zero = tap_write("zero.ini", "[gpu]\npeak = 312TFLOPS\nmem_bw = 2TB/s\nmem = 80GB\n"
                                             "op_scale.qkv = 0\n[topology]\ngpus_per_node = 4\n"
                                             "intra_bw = 300GB/s\n");
    ok(kvr_machine_load_ini(zero, &mach) == KVR_ERR_INPUT, "an op_scale of 0");
    like(kvr_error_message(), ":5: op_scale.qkv = '0' must be a number in (0, 100]",
         "  message has file:line");
}

int main(void)
{
    test_hand_timeline();
    test_ring_pass_timeline();
    test_closed_forms();
    test_attn_keys_exp();
    test_overlap_cap();
    test_lower_bound_and_bandwidth();
    test_flop_scaling();
    test_fp32_peak();
    test_relabelling();
    test_monotone_ctx();
    test_pairs_between();
    test_paper_claims();
    test_bad_input();
    tap_mkdtemp("sim");
    test_machine_ini();
    tap_rmdir(tap_dir);
    return tap_done();
}
