/* Hybrid layouts (sim/kvr_layout.h): t = 1 is the plain scheme number for number (results and
 * every timeline event, every hand-off mode and ring pass), t = p is Megatron TP (the tp
 * scheme's own code), the bytes on the links, between nodes and the memory per GPU against
 * closed forms, t chains side by side, invariants (mappings on one node, more bandwidth), and
 * the refusals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_layout.h"
#include "kvr_search.h"
#include "kvr_sim.h"
#include "tap.h"

static struct kvr_machine mach, permuted; /* large: link matrices */
enum { CAP = 200000 };
static struct kvr_event ev_a[CAP], ev_b[CAP];

static enum kvr_status run(const struct kvr_model *m, const struct kvr_machine *h,
                           const struct kvr_plan *plan, struct kvr_sim_result *r,
                           struct kvr_timeline *tl)
{
    struct kvr_sim *sim;
    enum kvr_status st = kvr_sim_open(m, h, &sim);
    if (st) return st;
    st = kvr_plan_check(plan, h);
    if (!st && h->noise.mode != KVR_NOISE_NONE) st = kvr_sim_draw_noise(sim, 3);
    if (!st) st = kvr_sim_run(sim, plan, r, tl);
    kvr_sim_free(sim);
    return st;
}

/* The first field that differs, or NULL: every number of the results. */
static const char *diff_results(const struct kvr_sim_result *a, const struct kvr_sim_result *b,
                                int p)
{
    if (a->ttft_s != b->ttft_s) return "ttft";
    if (a->lower_bound_s != b->lower_bound_s) return "lower bound";
    if (a->bytes_sent_total != b->bytes_sent_total) return "bytes sent";
    if (a->bytes_inter_node != b->bytes_inter_node) return "bytes between nodes";
    for (int r = 0; r < p; r++) {
        const struct kvr_rank_result *x = &a->rank[r], *y = &b->rank[r];
        if (x->tokens != y->tokens || x->end_s != y->end_s) return "tokens or end";
        if (x->compute_s != y->compute_s || x->comm_s != y->comm_s || x->wait_s != y->wait_s)
            return "compute, comm or wait";
        if (x->mem_bytes != y->mem_bytes || x->weight_bytes != y->weight_bytes ||
            x->kv_bytes != y->kv_bytes || x->act_bytes != y->act_bytes || x->fits != y->fits)
            return "memory";
    }
    return NULL;
}

static const char *diff_events(const struct kvr_timeline *a, const struct kvr_timeline *b)
{
    if (a->n != b->n || a->n_dropped || b->n_dropped) return "event count";
    for (size_t i = 0; i < a->n; i++) {
        const struct kvr_event *x = &a->events[i], *y = &b->events[i];
        if (x->rank != y->rank || x->layer != y->layer || x->kind != y->kind ||
            strcmp(x->what, y->what) || x->start_s != y->start_s || x->end_s != y->end_s ||
            x->bytes != y->bytes || x->peer != y->peer)
            return "an event";
    }
    return NULL;
}

/* tp = 1 (a layout of one GPU per stage) against tp = 0 (the scheme as it is). */
static void test_t1(const char *model, const struct kvr_machine *h, struct kvr_plan plan,
                    const char *what)
{
    const struct kvr_model *m = kvr_model_preset_find(model);
    if (plan.scheme == KVR_SCHEME_KVR)
        kvr_plan_balanced(&plan, m, &h->gpu);
    else
        kvr_plan_even(&plan);
    struct kvr_plan hybrid = plan;
    hybrid.tp = 1;
    struct kvr_sim_result a, b;
    struct kvr_timeline ta = {.events = ev_a, .cap = CAP}, tb = {.events = ev_b, .cap = CAP};
    enum kvr_status st = run(m, h, &plan, &a, &ta);
    if (!st) st = run(m, h, &hybrid, &b, &tb);
    const char *d = st ? "status" : diff_results(&a, &b, plan.p);
    if (!d) d = diff_events(&ta, &tb);
    if (!ok(!d && ta.n > 0, "t = 1 is %s (%s, %s): %s p=%d ctx=%llu %s",
            kvr_scheme_name(plan.scheme), kvr_kv_forward_name(plan.kv_forward),
            kvr_ring_pass_name(plan.ring_pass), model, plan.p, (unsigned long long)plan.ctx, what))
        printf("#   differs: %s (%s)\n", d ? d : "no events", st ? kvr_error_message() : "");
}

static void test_t1_all(void)
{
    static const struct kvr_plan plans[] = {
        {.scheme = KVR_SCHEME_KVR},
        {.scheme = KVR_SCHEME_KVR, .kv_forward = KVR_FWD_STREAMED},
        {.scheme = KVR_SCHEME_KVR, .kv_forward = KVR_FWD_DIRECT},
        {.scheme = KVR_SCHEME_TSP},
        {.scheme = KVR_SCHEME_TSP_CAUSAL},
        {.scheme = KVR_SCHEME_TSP_PAPER},
        {.scheme = KVR_SCHEME_RING},
        {.scheme = KVR_SCHEME_RING, .ring_pass = KVR_RING_PASS_Q},
        {.scheme = KVR_SCHEME_RING_PASS}};
    static const char *const models[] = {"llama-7b", "falcon-7b", "mistral-7b", "llama-2-70b"};
    for (size_t k = 0; k < sizeof plans / sizeof *plans; k++)
        for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
            struct kvr_plan p = plans[k];
            kvr_machine_resolve("a100-nvlink", &mach);
            p.p = 8, p.ctx = 16384;
            test_t1(models[i], &mach, p, "a100-nvlink");
            p.p = 3, p.ctx = 5000;
            test_t1(models[i], &mach, p, "a100-nvlink");
            kvr_machine_set_link(&mach, "1-2=2GB/s");
            kvr_machine_set_noise(&mach, "random:0.5");
            mach.gpu.attn_keys_exp = 0.7;
            p.p = 4, p.ctx = 40000;
            test_t1(models[i], &mach, p, "slow link, noise, keys exponent");
        }
}

/* t = p: one stage, plain Megatron TP: kvr and tsp-causal are the tp scheme. */
static void test_tp(const char *model, const char *machine, enum kvr_scheme s, int p, uint64_t ctx)
{
    const struct kvr_model *m = kvr_model_preset_find(model);
    kvr_machine_resolve(machine, &mach);
    if (p > mach.gpus_per_node) mach.n_nodes = 2, kvr_machine_build_links(&mach);
    mach.n_gpus = p;
    mach.gpu.attn_keys_exp = 0.5;
    struct kvr_plan tp = {.scheme = KVR_SCHEME_TP, .p = p, .ctx = ctx};
    kvr_plan_even(&tp);
    struct kvr_plan hy = {.scheme = s, .p = p, .ctx = ctx, .tp = p};
    kvr_plan_even(&hy);
    struct kvr_sim_result a, b;
    enum kvr_status st = run(m, &mach, &tp, &a, NULL);
    if (!st) st = run(m, &mach, &hy, &b, NULL);
    bool same = !st && fabs(a.ttft_s - b.ttft_s) <= 1e-12 * a.ttft_s &&
                a.bytes_sent_total == b.bytes_sent_total;
    for (int r = 0; same && r < p; r++)
        same = a.rank[r].mem_bytes == b.rank[r].mem_bytes &&
               fabs(a.rank[r].comm_s - b.rank[r].comm_s) <= 1e-12 * a.rank[r].comm_s &&
               fabs(a.rank[r].compute_s - b.rank[r].compute_s) <= 1e-12 * a.rank[r].compute_s;
    if (!ok(same, "%s x %d is tp: %s on %s, ctx %llu", kvr_scheme_name(s), p, model, machine,
            (unsigned long long)ctx))
        printf("#   ttft %.17g vs %.17g (%s)\n", a.ttft_s, b.ttft_s, st ? kvr_error_message() : "");
}

/* Llama-2-70B (80 layers, d = 8192, 8 KV heads of 128, bf16) in 2 stages of t = 4 on 8 GPUs,
 * chunks 20480 and 12288 (32k): a shard holds 2 KV heads, K and V 2 x 2 x 128 x 2 bytes a
 * token and layer; a layer's all-reduces, by hand: each stage all-reduces c_i x d (bf16) twice,
 * a ring 2(t - 1) times the buffer. */
static const double KVB_SHARD = 2.0 * 2 * 128 * 2;

static struct kvr_plan two_stages(enum kvr_scheme s)
{
    struct kvr_plan plan = {.scheme = s, .p = 8, .ctx = 32768, .tp = 4};
    plan.tokens[0] = 20480, plan.tokens[1] = 12288;
    return plan;
}

static double allreduce_bytes(const struct kvr_plan *plan)
{
    double act = 2.0 * 8192, ar = 0;
    for (int i = 0; i < 2; i++) ar += 2 * 2.0 * (4 - 1) * (double)plan->tokens[i] * act;
    return ar;
}

/* Bytes on the links per layer, by hand: kvr's chain hands stage i's [0, S_i) of each shard's
 * KV heads to the next stage (t messages); ring-pass x 4's 4 chains each send both stages'
 * blocks once a layer (n - 1 = 1 step), and every GPU keeps the whole cache of its heads; both
 * beside the stages' all-reduces. */
static void test_bytes_memory(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-2-70b");
    kvr_machine_resolve("h100-nvlink", &mach);
    struct kvr_plan plan = two_stages(KVR_SCHEME_KVR), ring = two_stages(KVR_SCHEME_RING_PASS);
    struct kvr_sim_result r;
    ok(!run(m, &mach, &plan, &r, NULL), "kvr x 4 runs");
    double chain = 4 * 20480 * KVB_SHARD;
    is_dbl(r.bytes_sent_total, 80 * (chain + allreduce_bytes(&plan)), 1e-12,
           "bytes: chain + all-reduces, by hand");
    ok(r.bytes_inter_node == 0, "one node: nothing between nodes");
    /* the last stage keeps the whole cache of its shard's heads: ctx x 80 layers x kvb / 4 */
    is_dbl(r.rank[7].kv_bytes, 32768.0 * 80 * KVB_SHARD, 1e-12, "KV of a last-stage GPU");
    is_dbl(r.rank[0].kv_bytes, 20480.0 * 80 * KVB_SHARD, 1e-12, "KV of a first-stage GPU");
    struct kvr_model shard = *m;
    shard.n_heads = 16, shard.n_kv_heads = 2, shard.d_ffn = 28672 / 4, shard.vocab = 32000 / 4;
    is_dbl(r.rank[3].weight_bytes, (double)kvr_model_weight_bytes(&shard), 1e-12,
           "weights of a GPU: the shard's");
    for (int g = 1; g < 4; g++) /* rank 7 alone computes the LM head */
        ok(r.rank[g].end_s == r.rank[0].end_s && r.rank[g].compute_s == r.rank[0].compute_s &&
               (g == 3 || r.rank[g + 4].compute_s == r.rank[4].compute_s),
           "shard %d of each stage keeps its stage's clock", g);
    ok(!run(m, &mach, &ring, &r, NULL), "ring-pass x 4 runs");
    double rings = 4 * 32768 * KVB_SHARD; /* 4 chains, blocks of 20480 and 12288 tokens */
    is_dbl(r.bytes_sent_total, 80 * (rings + allreduce_bytes(&ring)), 1e-12,
           "ring-pass x 4 bytes: rings + all-reduces, by hand");
    is_dbl(r.rank[0].kv_bytes, 32768.0 * 80 * KVB_SHARD, 1e-12,
           "ring-pass x 4: the whole cache of a shard's heads");
}

/* The hand-off modes over stages: with identical GPUs every shard of a stage keeps its stage's
 * clock (t chains side by side), and direct's bytes by hand: stage i sends its chunk to every
 * later stage, on each of its t shards. */
static void test_modes(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-2-70b");
    kvr_machine_resolve("h100-nvlink", &mach);
    static const enum kvr_kv_forward modes[] = {KVR_FWD_STREAMED, KVR_FWD_DIRECT};
    for (int k = 0; k < 2; k++) {
        struct kvr_plan plan = {
            .scheme = KVR_SCHEME_KVR, .p = 8, .ctx = 32768, .tp = 2, .kv_forward = modes[k]};
        uint64_t c[4] = {12288, 8192, 7168, 5120};
        memcpy(plan.tokens, c, sizeof c);
        struct kvr_sim_result r;
        bool same = !run(m, &mach, &plan, &r, NULL);
        for (int i = 0; same && i < 4; i++) /* rank 7 alone adds the LM head */
            same = (i == 3 || r.rank[2 * i].end_s == r.rank[2 * i + 1].end_s) &&
                   r.rank[2 * i].wait_s == r.rank[2 * i + 1].wait_s &&
                   r.rank[2 * i].comm_s == r.rank[2 * i + 1].comm_s && r.rank[2 * i].wait_s >= 0;
        ok(same && r.rank[6].wait_s > 0, "kvr x 2 %s: both shards of every stage keep its clock",
           kvr_kv_forward_name(modes[k]));
        double kvb = 2.0 * 4 * 128 * 2, act = 2.0 * 8192, want = 0; /* a shard: 4 KV heads */
        for (int i = 0; i < 4; i++) {
            double chain = modes[k] == KVR_FWD_DIRECT ? (3 - i) * (double)c[i]
                                                      : (i < 3) * (double)(c[0] + 0.0);
            if (modes[k] == KVR_FWD_STREAMED) { /* stage i forwards [0, S_i) piece by piece */
                chain = 0;
                for (int q = 0; q <= i && i < 3; q++) chain += (double)c[q];
            }
            want += 2 * chain * kvb + 2 * 2.0 * 1 * (double)c[i] * act;
        }
        is_dbl(r.bytes_sent_total, 80 * want, 1e-12, "  its bytes by hand: chains + all-reduces");
    }
}

/* Two nodes of 4, kvr x 4 in 2 stages: block keeps each stage in a node, so only the chain's
 * hand-off crosses (4 shards x S_0 tokens x the shard's KV per layer); strided puts every
 * stage across the nodes, so the all-reduces cross instead and the chain stays inside. */
static void test_between_nodes(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-2-70b");
    kvr_machine_resolve("a100-nvlink", &mach);
    mach.n_nodes = 2, mach.gpus_per_node = 4, mach.inter_Bps = 25e9;
    kvr_machine_build_links(&mach);
    struct kvr_plan plan = two_stages(KVR_SCHEME_KVR);
    struct kvr_sim_result a, b;
    int map[KVR_MAX_GPUS];
    ok(!run(m, &mach, &plan, &a, NULL), "block runs on 2 x 4");
    is_dbl(a.bytes_inter_node, 80 * 4 * 20480 * KVB_SHARD, 1e-12,
           "block: the KV hand-off crosses, by hand (%g B)", a.bytes_inter_node);
    kvr_layout_map(KVR_MAP_STRIDED, 8, 4, 8, map);
    ok(map[1] == 2 && map[4] == 1 && map[7] == 7, "strided: rank s*t+j on GPU j*n+s");
    permuted = mach;
    ok(!kvr_machine_permute(&mach, map, &permuted), "strided permutes");
    ok(!run(m, &permuted, &plan, &b, NULL), "strided runs");
    /* a stage's ring 0,2,4,6 / 1,3,5,7 crosses at 2 of its 4 hops: half of each all-reduce */
    is_dbl(b.bytes_inter_node, 80 * allreduce_bytes(&plan) / 2, 1e-12,
           "strided: half the all-reduces cross");
    ok(a.ttft_s < b.ttft_s, "TP inside the node beats TP across (%g < %g)", a.ttft_s, b.ttft_s);
}

/* Relabelling identical GPUs changes nothing; faster links never add time. */
static void test_invariants(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-2-70b");
    struct kvr_sim_result a, b;
    int map[KVR_MAX_GPUS];
    kvr_machine_resolve("a100-nvlink", &mach);
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = 8, .ctx = 16384, .tp = 2};
    kvr_plan_balanced(&plan, m, &mach.gpu);
    kvr_layout_map(KVR_MAP_STRIDED, 8, 2, 8, map);
    permuted = mach;
    kvr_machine_permute(&mach, map, &permuted);
    run(m, &mach, &plan, &a, NULL);
    run(m, &permuted, &plan, &b, NULL);
    is_dbl(b.ttft_s, a.ttft_s, 1e-15, "one node: strided = block");
    kvr_machine_set_all_bw(&mach, "600GB/s");
    run(m, &mach, &plan, &b, NULL);
    ok(b.ttft_s < a.ttft_s, "faster links never add time (%g < %g)", b.ttft_s, a.ttft_s);
    plan.scheme = KVR_SCHEME_RING, plan.tp = 4;
    kvr_plan_even(&plan);
    run(m, &mach, &plan, &a, NULL);
    ok(a.rank[0].tokens + a.rank[4].tokens == 16384 && a.rank[3].tokens == a.rank[0].tokens,
       "ring x 4: two stages of zig-zag halves, each on its 4 shards");
}

/* Sequence parallelism: the same bytes on the links, less time (the norms and residuals on
 * 1/t of the tokens). */
static void test_sp(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-2-70b");
    kvr_machine_resolve("h100-nvlink", &mach);
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = 8, .ctx = 32768, .tp = 8};
    kvr_plan_even(&plan);
    struct kvr_plan sp = plan;
    sp.sp = true;
    struct kvr_sim_result a, b;
    run(m, &mach, &plan, &a, NULL);
    run(m, &mach, &sp, &b, NULL);
    ok(b.ttft_s < a.ttft_s && b.bytes_sent_total == a.bytes_sent_total,
       "sp: TP-8 faster (%g < %g s), the same bytes", b.ttft_s, a.ttft_s);
}

static void refused(const struct kvr_plan *plan, const char *model, const char *needle)
{
    struct kvr_sim_result r;
    kvr_machine_resolve("a100-nvlink", &mach);
    enum kvr_status st = run(kvr_model_preset_find(model), &mach, plan, &r, NULL);
    ok(st == KVR_ERR_INPUT, "refused: %s", needle);
    like(kvr_error_message(), needle, "  its message");
}

static void test_refusals(void)
{
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = 8, .ctx = 8192, .tp = 3};
    kvr_plan_even(&plan);
    refused(&plan, "llama-7b", "does not divide p");
    plan = (struct kvr_plan){.scheme = KVR_SCHEME_KVR, .p = 8, .ctx = 8192, .tp = 8};
    kvr_plan_even(&plan);
    refused(&plan, "falcon-7b", "71 heads");
    plan.scheme = KVR_SCHEME_TP;
    refused(&plan, "llama-7b", "no tensor-parallel layout");
    plan = (struct kvr_plan){.scheme = KVR_SCHEME_KVR, .p = 8, .ctx = 8192, .tp = 1, .sp = true};
    kvr_plan_even(&plan);
    refused(&plan, "llama-7b", "--sp");
    int map[KVR_MAX_GPUS] = {0, 1, 2, 2};
    ok(kvr_machine_permute(&mach, map, &permuted) == KVR_ERR_INPUT, "a map that repeats a GPU");
    kvr_layout_map(KVR_MAP_STRIDED, 4, 2, 4, map);
    ok(map[1] == 2 && map[2] == 1 && kvr_layout_map_kind(map, 4, 2) == KVR_MAP_STRIDED,
       "0,2,1,3 at p = 4, t = 2 is strided");
    ok(kvr_layout_map_kind(map, 4, 1) == -1, "and no named mapping at t = 1");
}

int main(void)
{
    test_t1_all();
    test_tp("llama-7b", "a100-nvlink", KVR_SCHEME_KVR, 8, 16384);
    test_tp("llama-2-70b", "a100-nvlink", KVR_SCHEME_KVR, 8, 32768);
    test_tp("llama-2-70b", "h100-nvlink", KVR_SCHEME_TSP_CAUSAL, 8, 5000);
    test_tp("llama-2-70b", "h100-nvlink", KVR_SCHEME_RING_PASS, 8, 5000);
    test_tp("llama-3-8b", "h100-nvlink", KVR_SCHEME_KVR, 4, 12345);
    test_tp("mistral-7b", "a100-10GBps", KVR_SCHEME_KVR, 8, 20000);
    test_tp("llama-2-70b", "h100-nvlink", KVR_SCHEME_KVR, 16, 65536); /* KV heads replicated */
    test_bytes_memory();
    test_modes();
    test_between_nodes();
    test_invariants();
    test_sp();
    test_refusals();
    return tap_done();
}
