/* The layout search (partition/kvr_layout_search.h) against brute force: for schemes without a
 * partition, every (t, mapping) simulated directly, the best the fastest that fits; for kvr,
 * each t's searched partition no worse than the even and balanced splits of that t, and within
 * 0.5% of the strong oracle (multistart); the best never a plan that does not fit; the best
 * candidate's bytes between nodes by hand. */
#include <math.h>
#include <string.h>

#include "kvr_layout_search.h"
#include "tap.h"

static struct kvr_machine mach, mapped;

static bool sim_plan(const struct kvr_model *m, const struct kvr_plan *plan, const int *map,
                     double *ttft, bool *fits)
{
    struct kvr_sim *sim;
    static struct kvr_sim_result r;
    mapped = mach;
    if (kvr_machine_permute(&mach, map, &mapped) || kvr_sim_open(m, &mapped, &sim)) return false;
    enum kvr_status st = kvr_plan_check(plan, &mapped);
    if (!st) st = kvr_sim_run(sim, plan, &r, NULL);
    kvr_sim_free(sim);
    *ttft = r.ttft_s, *fits = kvr_sim_fits(&r);
    return !st;
}

/* Brute force over t and both mappings, even split. */
static double brute_best(const struct kvr_model *m, enum kvr_scheme s, uint64_t ctx, int *best_t)
{
    double best = INFINITY;
    int p = mach.n_gpus, total = mach.n_nodes * mach.gpus_per_node, map[KVR_MAX_GPUS];
    for (int t = 1; t <= p; t++) {
        if (kvr_layout_check_tp(m, p, t, "t")) continue;
        for (int k = 0; k < KVR_N_MAPS; k++) {
            struct kvr_plan plan = {.scheme = s, .p = p, .ctx = ctx, .tp = t};
            kvr_layout_map((enum kvr_map)k, p, t, total, map);
            kvr_plan_even(&plan);
            double v;
            bool fits;
            if (sim_plan(m, &plan, map, &v, &fits) && fits && v < best) best = v, *best_t = t;
        }
    }
    return best;
}

static void test_even_schemes(const char *machine, int p, uint64_t ctx)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-2-70b");
    kvr_machine_resolve(machine, &mach);
    mach.n_gpus = p;
    static const enum kvr_scheme schemes[] = {KVR_SCHEME_TSP_CAUSAL, KVR_SCHEME_RING};
    for (int i = 0; i < 2; i++) {
        struct kvr_layout_opts o;
        kvr_layout_opts_default(&o);
        o.scheme = schemes[i];
        static struct kvr_layout_result res;
        int bt = 0;
        double want = brute_best(m, schemes[i], ctx, &bt);
        bool ran = kvr_layout_search(m, &mach, ctx, &o, &res) == KVR_OK && res.best >= 0;
        ok(ran && res.cand[res.best].ttft_s == want && res.cand[res.best].plan.tp == bt,
           "%s on %s, p = %d, %llu: the best is brute force's (t = %d, %g s)",
           kvr_scheme_name(schemes[i]), machine, p, (unsigned long long)ctx, bt, want);
        ok(ran && !res.cand[0].fits && res.cand[0].plan.tp == 1,
           "  t = 1 (the whole model per GPU) does not fit, and is not the best");
    }
}

static void test_kvr(const char *machine, int p, uint64_t ctx)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-2-70b");
    kvr_machine_resolve(machine, &mach);
    if (p > mach.gpus_per_node) /* two nodes of 8, 50 GB/s between (data/machines/h100-2x8) */
        mach.n_nodes = 2, mach.inter_Bps = 50e9, kvr_machine_build_links(&mach);
    mach.n_gpus = p;
    struct kvr_layout_opts o;
    kvr_layout_opts_default(&o);
    static struct kvr_layout_result res;
    ok(kvr_layout_search(m, &mach, ctx, &o, &res) == KVR_OK && res.best >= 0,
       "kvr layout search on %s, p = %d, %llu", machine, p, (unsigned long long)ctx);
    for (int k = 0; k < res.n_cand; k++) {
        const struct kvr_layout_candidate *c = &res.cand[k];
        if (!c->fits) continue;
        struct kvr_plan even = c->plan, bal = even;
        kvr_plan_even(&even);
        kvr_plan_balanced(&bal, m, &mach.gpu);
        double ve = 0, vb = 0, vs = 0;
        bool f;
        bool ran = sim_plan(m, &even, c->map, &ve, &f) && sim_plan(m, &bal, c->map, &vb, &f) &&
                   sim_plan(m, &c->plan, c->map, &vs, &f);
        ok(ran && vs == c->ttft_s && vs <= ve && vs <= vb * (1 + 1e-12),
           "  t = %d %s: searched %g <= even %g, balanced %g", c->plan.tp,
           kvr_map_name(c->map_kind), vs, ve, vb);
        ok(c->ttft_s >= res.cand[res.best].ttft_s, "  and no faster than the best that fits");
    }
    const struct kvr_layout_candidate *b = &res.cand[res.best];
    /* the strong oracle on the best layout's t and mapping */
    struct kvr_objective_opts oo = {.scheme = KVR_SCHEME_KVR, .trials = 1, .tp = b->plan.tp};
    struct kvr_objective *obj = NULL;
    struct kvr_search_result sr;
    bool ran = !kvr_objective_open(m, &mach, &oo, &obj) &&
               !kvr_objective_set_mapping(obj, b->map) &&
               !kvr_search_run(obj, KVR_METHOD_MULTISTART, ctx, &o.search, &sr);
    ok(ran && b->ttft_s <= sr.ttft_s * 1.005, "  the best within 0.5%% of multistart (%g vs %g)",
       b->ttft_s, ran ? sr.ttft_s : 0);
    kvr_objective_free(obj);
    if (mach.n_nodes > 1) {
        int t = b->plan.tp, n = p / t;
        /* block: the chain crosses between the nodes once, t chains of shard KV [0, S_i) */
        uint64_t s = 0;
        for (int i = 0; i < n / 2; i++) s += b->plan.tokens[i];
        double kvb = 2.0 * 2 * 128 * (8 / t > 1 ? 8 / t : 1); /* K, V of the shard's KV heads */
        ok(b->map_kind == KVR_MAP_BLOCK && fabs(b->bytes_inter_node_per_layer - t * s * kvb) < 1,
           "  two nodes: block mapping, %g bytes between nodes per layer (%d chains of %llu "
           "tokens)",
           b->bytes_inter_node_per_layer, t, (unsigned long long)s);
    }
}

/* On fewer GPUs than the topology (2 nodes of 8, 25 GB/s between; kvr x 2 on 12 GPUs: 6
 * stages), the search's best is as fast as the best of every way to put the stages on the
 * nodes in chain order (each stage inside a node, at most 4 per node), each searched by hier. */
static void test_windows(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-7b");
    kvr_machine_resolve("h100-nvlink", &mach);
    mach.n_nodes = 2, mach.inter_Bps = 25e9, mach.n_gpus = 12;
    kvr_machine_build_links(&mach);
    struct kvr_layout_opts o;
    kvr_layout_opts_default(&o);
    o.tp_only = 2;
    static struct kvr_layout_result res;
    bool ran = kvr_layout_search(m, &mach, 65536, &o, &res) == KVR_OK && res.best >= 0;
    double best = INFINITY;
    int best_seq = -1;
    for (int seq = 0; seq < 1 << 6 && ran; seq++) {
        int map[16], used[2] = {0, 0}, k = 0;
        for (int s = 0; s < 6; s++) {
            int node = seq >> s & 1;
            map[k++] = node * 8 + 2 * used[node], map[k++] = node * 8 + 2 * used[node] + 1;
            used[node]++;
        }
        if (used[0] > 4 || used[1] > 4) continue;
        for (int g = 0; g < 16; g++) {
            bool in = false;
            for (int i = 0; i < 12; i++) in |= map[i] == g;
            if (!in) map[k++] = g;
        }
        struct kvr_objective_opts oo = {.scheme = KVR_SCHEME_KVR, .trials = 1, .tp = 2};
        struct kvr_objective *obj = NULL;
        struct kvr_search_result sr;
        ran = !kvr_objective_open(m, &mach, &oo, &obj) && !kvr_objective_set_mapping(obj, map) &&
              !kvr_search_run(obj, KVR_METHOD_HIER, 65536, &o.search, &sr);
        kvr_objective_free(obj);
        if (ran && sr.ttft_s < best) best = sr.ttft_s, best_seq = seq;
    }
    const struct kvr_layout_candidate *b = ran ? &res.cand[res.best] : NULL;
    ok(ran && b->ttft_s <= best * (1 + 1e-9),
       "kvr x 2 on 12 of 2 x 8 GPUs, 64k: the best (offset %d, %g s) is as fast as the best "
       "stage-to-node sequence (%#x, %g s)",
       b ? b->offset : -1, b ? b->ttft_s : 0, best_seq, best);
}

int main(void)
{
    test_windows();
    test_even_schemes("h100-nvlink", 8, 32768);
    test_even_schemes("a100-nvlink", 8, 131072);
    test_kvr("h100-nvlink", 8, 32768);
    test_kvr("h100-nvlink", 16, 65536);
    return tap_done();
}
