/* Plans at cluster scale (issue 18): hier against the strong oracle at p = 16..32 on one node
 * and across nodes, with noise; the grid it reports; plans that do not fit are refused; the
 * chain mapping on a machine with a slow one-way link; the plan on fewer GPUs; KVR-P's
 * bottleneck representation by leave-one-out; memory capacities and the dense-TSP score block;
 * tp's head check and 4M tokens on Llama-2-70B. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_interp.h"
#include "kvr_search_plan.h"
#include "tap.h"

/* n_nodes x gpn A100s: 300 GB/s inside a node, 25 GB/s between (data/machines/a100-NxG.ini). */
static struct kvr_machine cluster(int n_nodes, int gpn, int p)
{
    struct kvr_machine h;
    if (kvr_machine_resolve("a100-nvlink", &h)) abort();
    h.n_nodes = n_nodes, h.gpus_per_node = gpn, h.n_gpus = p;
    kvr_machine_build_links(&h);
    return h;
}

static struct kvr_objective *objective(const struct kvr_model *m, const struct kvr_machine *h,
                                       uint64_t trials)
{
    struct kvr_objective_opts o = {.scheme = KVR_SCHEME_KVR, .trials = trials};
    struct kvr_objective *obj = NULL;
    if (kvr_objective_open(m, h, &o, &obj)) {
        printf("# %s\n", kvr_error_message());
        abort();
    }
    return obj;
}

static void against_oracle(const struct kvr_model *m, struct kvr_machine h, uint64_t ctx,
                           uint64_t trials, const char *label)
{
    struct kvr_objective *obj = objective(m, &h, trials);
    struct kvr_search_opts o;
    kvr_search_opts_default(&o);
    o.nm_starts = 2;
    struct kvr_search_result hier, orc, desc;
    enum kvr_status st = kvr_search_hier(obj, ctx, &o, &hier);
    if (!st) st = kvr_search_multistart(obj, ctx, &o, &orc);
    if (!st) st = kvr_search_descent(obj, ctx, &o, &desc);
    ok(!st, "%s: hier, multistart and descent run", label);
    double gap = 100 * (hier.ttft_s - orc.ttft_s) / orc.ttft_s;
    ok(gap <= 0.5, "%s: hier within 0.5%% of the strong oracle (%.3f%%; descent %+.3f%%)", label,
       gap, 100 * (desc.ttft_s - orc.ttft_s) / orc.ttft_s);
    ok(orc.ttft_s <= desc.ttft_s * (1 + 1e-12), "%s: the strong oracle is never worse than descent",
       label);
    ok(kvr_search_on_grid(hier.tokens, h.n_gpus, hier.granularity) && hier.granularity == 64,
       "%s: on the 64-token grid it reports", label);
    kvr_objective_free(obj);
}

static void test_oracle(void)
{
    struct kvr_model llama;
    if (kvr_model_resolve("llama-7b", &llama)) abort();
    against_oracle(&llama, cluster(1, 64, 16), 16384, 1, "one node p=16 16k");
    against_oracle(&llama, cluster(8, 8, 32), 16384, 1, "8x8 p=32 16k");
    struct kvr_machine h = cluster(2, 4, 8);
    if (kvr_machine_set_noise(&h, "random:0.5")) abort();
    against_oracle(&llama, h, 8192, 4, "2x4 p=8 8k noise");
    h = cluster(1, 8, 8);
    if (kvr_machine_set_all_bw(&h, "10GB/s")) abort();
    against_oracle(&llama, h, 16384, 1, "10 GB/s p=8 16k");
    /* a sliding window (4096) makes every rank but the last cost about the same: the best plan
     * moves tokens from the last rank to the front ones (hier's refinement was 0.81% behind) */
    struct kvr_model mistral;
    if (kvr_model_resolve("mistral-7b", &mistral)) abort();
    against_oracle(&mistral, cluster(8, 8, 16), 16384, 1, "mistral-7b 8x8 p=16 16k");
}

static void test_grid_and_memory(void)
{
    struct kvr_model llama, big;
    if (kvr_model_resolve("llama-7b", &llama) || kvr_model_resolve("llama-2-70b", &big)) abort();
    struct kvr_machine h = cluster(1, 8, 8);
    struct kvr_objective *obj = objective(&llama, &h, 1);
    struct kvr_search_opts o;
    kvr_search_opts_default(&o);
    o.granularity = 16;
    struct kvr_search_result r;
    ok(!kvr_search_hier(obj, 10000, &o, &r) && r.granularity == 16 &&
           kvr_search_on_grid(r.tokens, 8, 16),
       "--granularity 16 (vLLM's block): every boundary on it");
    kvr_objective_free(obj);
    if (kvr_machine_set_all_bw(&h, "10GB/s")) abort();
    obj = objective(&big, &h, 1);
    kvr_search_opts_default(&o);
    enum kvr_status st = kvr_search_hier(obj, 32768, &o, &r);
    ok(st == KVR_ERR_NOFIT && strstr(kvr_error_message(), "bytes"),
       "llama-2-70b 32k on 8 A100s: no plan fits, exit 3 with the bytes (%s)", kvr_error_message());
    ok(kvr_search_descent(obj, 32768, &o, &r) == KVR_ERR_NOFIT, "  the descent oracle refuses too");
    kvr_objective_free(obj);
    /* llama-7b at 133000 on 8 A100s: the last rank's whole cache leaves room for 6606 tokens of
     * activations, so the balanced split (last chunk 9607) and the even one do not fit, but
     * plans with a shorter last chunk do; the oracles must find them, not refuse or fail */
    h = cluster(1, 8, 8);
    obj = objective(&llama, &h, 1);
    struct kvr_search_result hr, dr, nr, er;
    st = kvr_search_hier(obj, 133000, &o, &hr);
    ok(!st && hr.tokens[7] <= 6606, "133000 tokens: hier fits, last chunk %llu",
       (unsigned long long)hr.tokens[7]);
    st = kvr_search_descent(obj, 133000, &o, &dr);
    ok(!st && dr.ttft_s <= hr.ttft_s * 1.005,
       "  the descent oracle finds a plan that fits from starts that do not (%s)",
       st ? kvr_error_message() : "ok");
    st = kvr_search_nelder_mead(obj, 133000, &o, &nr);
    ok(!st && isfinite(kvr_objective_eval(obj, 133000, nr.tokens)),
       "  Nelder-Mead too (no GSL error on the plans that do not fit: %s)",
       st ? kvr_error_message() : "ok");
    st = kvr_search_run(obj, KVR_METHOD_EVEN, 133000, &o, &er);
    ok(st == KVR_ERR_NOFIT && strstr(kvr_error_message(), "the even split"),
       "  the even split does not fit, and the error says so, not that no partition does (%s)",
       kvr_error_message());
    kvr_objective_free(obj);
    ok(fabs(h.gpu.mem_bytes - 80.0 * 1073741824) < 1 && h.gpu.mem_reserve_bytes == 2147483648.0,
       "A100: 80 GiB as the card reports, 2 GiB reserve");
    struct kvr_machine h200;
    ok(!kvr_machine_resolve("h200-nvlink", &h200) &&
           fabs(h200.gpu.mem_bytes - 143771.0 * 1048576) < 1,
       "H200: 143771 MiB");
}

static void test_mapping_and_fewer(void)
{
    struct kvr_model llama;
    if (kvr_model_resolve("llama-7b", &llama)) abort();
    struct kvr_machine h = cluster(2, 4, 8);
    if (kvr_machine_set_link(&h, "1>2=2GB/s")) abort(); /* one slow direction */
    struct kvr_objective *obj = objective(&llama, &h, 1);
    struct kvr_search_opts o;
    kvr_search_opts_default(&o);
    struct kvr_search_result id;
    struct kvr_plan_search ps;
    enum kvr_status st = kvr_search_hier(obj, 16384, &o, &id);
    if (!st) st = kvr_search_plan(obj, 16384, &o, &ps);
    ok(!st && ps.n_mappings >= 2, "a slow one-way link: %d distinct mappings searched",
       ps.n_mappings);
    ok(!st && ps.best.ttft_s < id.ttft_s * 0.99,
       "  the best mapping avoids it: %.4f s against %.4f s in GPU order", ps.best.ttft_s,
       id.ttft_s);
    bool uses_slow = false;
    for (int i = 0; i + 1 < 8; i++) uses_slow |= ps.map[i] == 1 && ps.map[i + 1] == 2;
    ok(!uses_slow, "  and its chain never sends 1 -> 2");
    kvr_objective_free(obj);
    /* the direct hand-off sends from each rank to every later one: a slow one-way link between
     * GPUs that are never adjacent in a chain (0 > 2) still matters, and the orders with GPUs
     * descending never send on it (the mappings were deduplicated by the adjacent hops alone) */
    h = cluster(2, 4, 8);
    if (kvr_machine_set_link(&h, "0>2=1GB/s")) abort();
    struct kvr_objective_opts od = {
        .scheme = KVR_SCHEME_KVR, .trials = 1, .kv_forward = KVR_FWD_DIRECT};
    if (kvr_objective_open(&llama, &h, &od, &obj)) abort();
    st = kvr_search_hier(obj, 16384, &o, &id);
    if (!st) st = kvr_search_plan(obj, 16384, &o, &ps);
    bool sends_slow = false;
    for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++) sends_slow |= ps.map[i] == 0 && ps.map[j] == 2;
    ok(!st && ps.n_mappings >= 2 && ps.best.ttft_s < id.ttft_s * 0.95 && !sends_slow,
       "direct, slow one-way link 0 > 2: %d mappings, the best never sends 0 -> 2 (%.4f s "
       "against %.4f s in GPU order)",
       ps.n_mappings, ps.best.ttft_s, id.ttft_s);
    kvr_objective_free(obj);
    h = cluster(1, 8, 8);
    if (kvr_machine_set_all_bw(&h, "10GB/s")) abort();
    obj = objective(&llama, &h, 1);
    st = kvr_search_plan(obj, 16384, &o, &ps);
    ok(!st && ps.n_mappings == 1, "a uniform node: one mapping");
    ok(!st && ps.fewer_p >= 1 && ps.fewer_p < 8 &&
           ps.fewer.ttft_s <= ps.best.ttft_s * (1 + KVR_FEWER_TOLERANCE),
       "10 GB/s p=8 16k: %d GPUs are as fast (%.4f s against %.4f s)", ps.fewer_p, ps.fewer.ttft_s,
       ps.best.ttft_s);
    uint64_t sum = 0;
    for (int i = 0; i < ps.fewer_p; i++) sum += ps.fewer.tokens[i];
    is_u64(sum, 16384, "  the fewer-GPU partition sums to ctx");
    /* the fewer-GPU searches run in the objective's hand-off mode as set (kvr search
     * --kv-forward streamed|auto sets it after opening): streamed on 5 GPUs is faster than on
     * 8 here, which the fewer searches in the whole mode did not see */
    kvr_objective_set_kv_forward(obj, KVR_FWD_STREAMED);
    st = kvr_search_plan(obj, 16384, &o, &ps);
    double fewer_streamed = NAN;
    if (!st && ps.fewer_p > 0) {
        struct kvr_machine hq = h;
        hq.n_gpus = ps.fewer_p;
        struct kvr_objective_opts os = {
            .scheme = KVR_SCHEME_KVR, .trials = 1, .kv_forward = KVR_FWD_STREAMED};
        struct kvr_objective *oq = NULL;
        if (kvr_objective_open(&llama, &hq, &os, &oq)) abort();
        fewer_streamed = kvr_objective_eval(oq, 16384, ps.fewer.tokens);
        kvr_objective_free(oq);
    }
    ok(!st && ps.fewer_p >= 1 && ps.fewer_p < 8 &&
           fabs(fewer_streamed - ps.fewer.ttft_s) <= 1e-12 * ps.fewer.ttft_s,
       "  streamed: %d GPUs as fast, their TTFT the streamed one (%.4f s; streamed %.4f s)",
       ps.fewer_p, ps.fewer.ttft_s, fewer_streamed);
    kvr_objective_free(obj);
}

/* The mapping search on fewer GPUs than the topology, against every node sequence of the chain
 * (2 x 4 A100s, 25 GB/s between the nodes; p = 5, 6 of 8): each sequence's chain on its GPUs
 * in order, searched by hier; kvr_search_plan's plan is never slower than the best of them. */
static void test_mapping_windows(void)
{
    struct kvr_model llama;
    if (kvr_model_resolve("llama-7b", &llama)) abort();
    struct kvr_search_opts o;
    kvr_search_opts_default(&o);
    for (int p = 5; p <= 6; p++) {
        struct kvr_machine h = cluster(2, 4, p);
        struct kvr_objective *obj = objective(&llama, &h, 1);
        struct kvr_plan_search ps;
        enum kvr_status st = kvr_search_plan(obj, 65536, &o, &ps);
        double best = INFINITY;
        int best_seq = -1, n_seq = 0;
        for (int seq = 0; seq < 1 << p && !st; seq++) {
            int map[8], k = 0, used[2] = {0, 0};
            for (int i = 0; i < p; i++) {
                int node = seq >> i & 1;
                map[k++] = node * 4 + used[node]++;
            }
            if (used[0] > 4 || used[1] > 4) continue;
            for (int g = 0; g < 8; g++) { /* the unused GPUs after the chain */
                bool in = false;
                for (int i = 0; i < p; i++) in |= map[i] == g;
                if (!in) map[k++] = g;
            }
            struct kvr_search_result r;
            n_seq++;
            if ((st = kvr_objective_set_mapping(obj, map)) ||
                (st = kvr_search_hier(obj, 65536, &o, &r)))
                break;
            if (r.ttft_s < best) best = r.ttft_s, best_seq = seq;
        }
        ok(!st && ps.best.ttft_s <= best * (1 + 1e-9),
           "2 x 4, p = %d, 64k: the mapping search (%d candidates, %.4f s) is as fast as the best "
           "of %d node sequences (%.4f s, sequence %#x)",
           p, ps.n_mappings, ps.best.ttft_s, n_seq, best, best_seq);
        kvr_objective_free(obj);
    }
}

/* KVR-P by leave-one-out on rows 2k..16k: the bottleneck representation within 1.5%. */
static void test_kvrp(int p)
{
    struct kvr_model llama;
    if (kvr_model_resolve("llama-7b", &llama)) abort();
    struct kvr_machine h = cluster(1, 64, p);
    struct kvr_objective *obj = objective(&llama, &h, 1);
    struct kvr_search_opts o;
    kvr_search_opts_default(&o);
    struct kvr_plan_row rows[8], rest[8];
    for (int k = 0; k < 8; k++) {
        struct kvr_search_result r;
        memset(&rows[k], 0, sizeof rows[k]);
        rows[k].p = p, rows[k].ctx_tokens = 2048 * (uint64_t)(k + 1),
        rows[k].granularity_tokens = 64;
        if (kvr_search_hier(obj, rows[k].ctx_tokens, &o, &r)) abort();
        memcpy(rows[k].tokens, r.tokens, sizeof r.tokens);
        rows[k].predicted_ttft_s = r.ttft_s;
    }
    double sum[2] = {0, 0};
    for (int k = 1; k < 7; k++) {
        int n = 0;
        for (int j = 0; j < 8; j++)
            if (j != k) rest[n++] = rows[j];
        for (int how = 0; how < 2; how++) {
            struct kvr_lookup_answer a;
            enum kvr_interp e = how ? KVR_INTERP_BOTTLENECK : KVR_INTERP_LINEAR;
            if (kvr_interp_partition_model(rest, 7, rows[k].ctx_tokens, e, false, &llama, &h, &a))
                abort();
            double v = kvr_objective_eval(obj, rows[k].ctx_tokens, a.tokens);
            sum[how] += 100 * (v - rows[k].predicted_ttft_s) / rows[k].predicted_ttft_s / 6;
        }
    }
    ok(sum[1] <= 1.5,
       "KVR-P p=%d leave-one-out: bottleneck mean gap %.3f%% <= 1.5%% (linear %.3f%%)", p, sum[1],
       sum[0]);
    kvr_objective_free(obj);
}

static void test_sim_checks(void)
{
    struct kvr_model falcon, big;
    if (kvr_model_resolve("falcon-7b", &falcon) || kvr_model_resolve("llama-2-70b", &big)) abort();
    struct kvr_machine h = cluster(1, 8, 4);
    struct kvr_sim *sim = NULL;
    struct kvr_sim_result r;
    struct kvr_plan plan = {.scheme = KVR_SCHEME_TP, .p = 4, .ctx = 4096};
    kvr_plan_even(&plan);
    if (kvr_sim_open(&falcon, &h, &sim)) abort();
    ok(kvr_sim_run(sim, &plan, &r, NULL) == KVR_ERR_INPUT &&
           strstr(kvr_error_message(), "71 heads"),
       "tp: 4 GPUs cannot shard Falcon-7B's 71 heads (refused)");
    plan.scheme = KVR_SCHEME_TSP_PAPER;
    double dense, causal, fused;
    kvr_sim_run(sim, &plan, &r, NULL), dense = r.rank[0].act_bytes;
    plan.scheme = KVR_SCHEME_TSP_CAUSAL;
    kvr_sim_run(sim, &plan, &r, NULL), causal = r.rank[0].act_bytes;
    plan.scheme = KVR_SCHEME_TSP;
    kvr_sim_run(sim, &plan, &r, NULL), fused = r.rank[0].act_bytes;
    is_dbl(dense - causal, 2.0 * 1024 * 4096 * 71 * 2, 1, "tsp-paper holds its score block");
    is_dbl(fused, causal, 0, "tsp's dense block is fused, as the executor runs it: no score block");
    kvr_sim_free(sim);
    h.n_gpus = 8;
    plan = (struct kvr_plan){.scheme = KVR_SCHEME_KVR, .p = 8, .ctx = KVR_MAX_CTX};
    kvr_plan_even(&plan);
    if (kvr_sim_open(&big, &h, &sim)) abort();
    enum kvr_status st = kvr_sim_run(sim, &plan, &r, NULL);
    ok(st == KVR_OK && isfinite(r.lower_bound_s) && r.lower_bound_s > 0 && !kvr_sim_fits(&r),
       "llama-2-70b at 4M tokens: simulated (lower bound %.0f s), and does not fit",
       r.lower_bound_s);
    kvr_sim_free(sim);
}

/* ctx = p * granularity: every rank holds one grain, so u (the ranks holding more) says nothing
 * about how many GPUs the work needs; the fewer-GPU plan must still be the best p' < p (it was
 * p / 2 = 32 GPUs at 0.0383 s where 16 take 0.0365 s). The oracle: hier on every p' < 64. */
static void test_fewer_coarse_grid(void)
{
    struct kvr_model llama;
    if (kvr_model_resolve("llama-7b", &llama)) abort();
    struct kvr_machine h = cluster(8, 8, 64);
    struct kvr_objective *obj = objective(&llama, &h, 1);
    struct kvr_search_opts o;
    kvr_search_opts_default(&o);
    struct kvr_plan_search ps;
    enum kvr_status st = kvr_search_plan(obj, 4096, &o, &ps);
    double best = INFINITY;
    int best_q = 0;
    for (int q = 1; q < 64 && !st; q++) {
        struct kvr_objective *fo = NULL;
        struct kvr_search_result r;
        if ((st = kvr_objective_open_fewer(obj, q, &fo))) break;
        if (!(st = kvr_search_hier(fo, 4096, &o, &r)) && r.ttft_s < best)
            best = r.ttft_s, best_q = q;
        kvr_objective_free(fo);
    }
    ok(!st && ps.fewer_p >= 1 && ps.fewer.ttft_s <= best * (1 + KVR_FEWER_TOLERANCE),
       "4096 tokens on 64 GPUs (one grain each, %.4f s): the plan on %d GPUs (%.4f s) is within "
       "0.5%% of the best on fewer (%d GPUs, %.4f s)",
       ps.best.ttft_s, ps.fewer_p, ps.fewer.ttft_s, best_q, best);
    kvr_objective_free(obj);
}

int main(void)
{
    test_sim_checks();
    test_grid_and_memory();
    test_mapping_and_fewer();
    test_fewer_coarse_grid();
    test_mapping_windows();
    test_oracle();
    test_kvrp(16);
    test_kvrp(64);
    return tap_done();
}
