/* Partition search against its oracles: the hierarchical search is within 0.1% TTFT of the
 * exhaustive optimum on a fixed set of cases and never worse than the even or balanced split;
 * the Nelder-Mead oracle agrees; the objective's mean and percentile match hand computation;
 * rounding keeps every invariant. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_lookup_int.h"
#include "kvr_search.h"
#include "tap.h"

static struct kvr_machine machine(const char *name, int p)
{
    struct kvr_machine h;
    char gpus[8];
    snprintf(gpus, sizeof gpus, "%d", p);
    if (kvr_machine_resolve(name, &h) || kvr_machine_set_gpus(&h, gpus)) abort();
    return h;
}

static struct kvr_objective *objective(const struct kvr_model *m, const struct kvr_machine *h,
                                       uint64_t trials, double pct)
{
    struct kvr_objective_opts o = {.scheme = KVR_SCHEME_KVR, .trials = trials, .percentile = pct};
    struct kvr_objective *obj = NULL;
    if (kvr_objective_open(m, h, &o, &obj)) {
        printf("# %s\n", kvr_error_message());
        abort();
    }
    return obj;
}

static struct kvr_model model(const char *name)
{
    struct kvr_model m;
    if (kvr_model_resolve(name, &m)) abort();
    return m;
}

static struct kvr_search_opts default_opts(void)
{
    struct kvr_search_opts o;
    kvr_search_opts_default(&o);
    return o;
}

static double gap(double v, double ref)
{
    return (v - ref) / ref;
}

/* hier vs exhaustive vs even vs balanced on one case. */
static void check_case(const struct kvr_model *m, struct kvr_machine *h, uint64_t ctx,
                       const char *label, double *max_gap)
{
    struct kvr_objective *obj = objective(m, h, 8, 0);
    struct kvr_search_opts o = default_opts();
    struct kvr_search_result hier, ex, even, bal;
    enum kvr_status st = kvr_search_run(obj, KVR_METHOD_HIER, ctx, &o, &hier);
    st = st ? st : kvr_search_run(obj, KVR_METHOD_EXHAUSTIVE, ctx, &o, &ex);
    st = st ? st : kvr_search_run(obj, KVR_METHOD_EVEN, ctx, &o, &even);
    st = st ? st : kvr_search_run(obj, KVR_METHOD_BALANCED, ctx, &o, &bal);
    ok(!st, "%s: searches run", label);
    double g = gap(hier.ttft_s, ex.ttft_s);
    *max_gap = fmax(*max_gap, g);
    ok(g <= 1e-3,
       "%s: hier within 0.1%% of exhaustive (gap %.4f%%, %llu vs %llu "
       "evals)",
       label, 100 * g, (unsigned long long)hier.n_evals, (unsigned long long)ex.n_evals);
    /* KVR-E is the exact even split; hier stays on the grid, so compare with even on it */
    double frac[KVR_MAX_GPUS];
    uint64_t grid_even[KVR_MAX_GPUS];
    for (int i = 0; i < h->n_gpus; i++) frac[i] = 1.0 / h->n_gpus;
    kvr_lookup_round(frac, h->n_gpus, ctx, hier.granularity, grid_even);
    double even_grid = kvr_objective_eval(obj, ctx, grid_even);
    ok(hier.ttft_s <= even_grid && hier.ttft_s <= bal.ttft_s,
       "%s: hier never worse than even on its grid (%.3f%%) or balanced", label,
       100 * gap(hier.ttft_s, even_grid));
    ok(kvr_search_on_grid(hier.tokens, h->n_gpus, hier.granularity) &&
           hier.granularity == kvr_lookup_grain(h->n_gpus, ctx, o.granularity),
       "%s: hier's partition is on the grid it reports (%llu)", label,
       (unsigned long long)hier.granularity);
    (void)even;
    uint64_t sum = 0;
    for (int i = 0; i < h->n_gpus; i++) sum += hier.tokens[i];
    is_u64(sum, ctx, "%s: partition sums to ctx", label);
    kvr_objective_free(obj);
}

static void test_against_exhaustive(void)
{
    struct kvr_model llama = model("llama-7b"), falcon = model("falcon-7b");
    const struct kvr_model *models[] = {&llama, &falcon};
    const char *machines[] = {"a100-nvlink", "a100-10GBps"};
    double max_gap = 0;
    for (int mi = 0; mi < 2; mi++)
        for (int hi = 0; hi < 2; hi++)
            for (int p = 2; p <= 4; p++)
                for (uint64_t ctx = 1024; ctx <= 4096; ctx *= 2) {
                    if (p == 4 && ctx == 4096 && hi == 0) continue; /* keep the test quick */
                    struct kvr_machine h = machine(machines[hi], p);
                    char label[128];
                    snprintf(label, sizeof label, "%s %s p=%d ctx=%llu", models[mi]->name,
                             machines[hi], p, (unsigned long long)ctx);
                    check_case(models[mi], &h, ctx, label, &max_gap);
                }
    /* a slow middle link and background noise (mean over 8 seeded trials) */
    struct kvr_machine h = machine("a100-nvlink", 4);
    if (kvr_machine_set_link(&h, "1-2=2GB/s")) abort();
    check_case(&llama, &h, 3072, "slow link 1-2", &max_gap);
    h = machine("a100-10GBps", 3);
    if (kvr_machine_set_noise(&h, "random:0.6")) abort();
    check_case(&falcon, &h, 4096, "random noise", &max_gap);
    printf("# largest hier gap to the exhaustive optimum: %.5f%%\n", 100 * max_gap);
}

static void test_nelder_mead(void)
{
    struct kvr_model m = model("llama-7b");
    struct kvr_machine h = machine("a100-10GBps", 3);
    struct kvr_objective *obj = objective(&m, &h, 1, 0);
    struct kvr_search_opts o = default_opts();
    o.granularity = 1; /* the relaxation's optimum is on the one-token grid */
    struct kvr_search_result nm, ex;
    ok(!kvr_search_run(obj, KVR_METHOD_NM, 1024, &o, &nm) &&
           !kvr_search_run(obj, KVR_METHOD_EXHAUSTIVE, 1024, &o, &ex),
       "Nelder-Mead and exhaustive run");
    double g = gap(nm.ttft_s, ex.ttft_s);
    ok(fabs(g) <= 1e-3, "Nelder-Mead relaxation within 0.1%% of exhaustive at 1 token (%.4f%%)",
       100 * g);
    kvr_objective_free(obj);
}

/* The objective against kvr_sim_run by hand: mean and 95th percentile over trials. */
static void test_objective(void)
{
    struct kvr_model m = model("falcon-7b");
    struct kvr_machine h = machine("a100-10GBps", 4);
    if (kvr_machine_set_noise(&h, "random:0.5")) abort();
    h.noise.seed = 7;
    uint64_t tokens[4] = {3000, 2000, 1800, 1392};
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = 4, .ctx = 8192};
    memcpy(plan.tokens, tokens, sizeof tokens);
    struct kvr_sim *sim;
    if (kvr_sim_open(&m, &h, &sim)) abort();
    double v[5], mean = 0;
    for (int t = 0; t < 5; t++) {
        struct kvr_sim_result r;
        kvr_sim_draw_noise(sim, (uint64_t)t);
        kvr_sim_run(sim, &plan, &r, NULL);
        v[t] = r.ttft_s, mean += r.ttft_s / 5;
    }
    kvr_sim_free(sim);
    for (int i = 1; i < 5; i++) /* insertion sort */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double x = v[j];
            v[j] = v[j - 1], v[j - 1] = x;
        }
    struct kvr_objective *o_mean = objective(&m, &h, 5, 0), *o_p95 = objective(&m, &h, 5, 95);
    is_dbl(kvr_objective_eval(o_mean, 8192, tokens), mean, 1e-12, "objective: mean of 5 trials");
    /* 95th percentile of 5: position 0.95 * 4 = 3.8 between v[3] and v[4] */
    is_dbl(kvr_objective_eval(o_p95, 8192, tokens), v[3] + 0.8 * (v[4] - v[3]), 1e-12,
           "objective: 95th percentile of 5 trials");
    uint64_t bad[4] = {3000, 2000, 1800, 1000};
    ok(isinf(kvr_objective_eval(o_mean, 8192, bad)), "objective: a partition not summing to ctx "
                                                     "is infinite");
    is_u64(kvr_objective_evals(o_mean), 2, "objective counts evaluations");
    /* the screen under noise: one run with every noisy link at the mean share, which gives a
     * transfer its expected time, E[1 / (1 - U s)] = -ln(1 - s) / s (2 ln 2 at s = 0.5) */
    is_dbl(1 / (1 - kvr_noise_mean_share(0.5)), 2 * log(2), 1e-12,
           "the mean share gives the expected transfer time");
    struct kvr_machine hm = h;
    hm.noise.mode = KVR_NOISE_CONSTANT, hm.noise.share = kvr_noise_mean_share(0.5);
    struct kvr_sim_result r;
    if (kvr_sim_open(&m, &hm, &sim) || kvr_sim_draw_noise(sim, 0) ||
        kvr_sim_run(sim, &plan, &r, NULL))
        abort();
    kvr_sim_free(sim);
    is_dbl(kvr_objective_screen(o_mean, 8192, tokens), r.ttft_s, 1e-12,
           "screen: one run at the links' mean share");
    ok(fabs(r.ttft_s - mean) > 1e-9 * mean, "screen: not the mean of the trials");
    is_u64(kvr_objective_evals(o_mean), 3, "a screen counts as an evaluation");
    kvr_objective_free(o_mean), kvr_objective_free(o_p95);
    h.noise.mode = KVR_NOISE_NONE;
    struct kvr_objective *o_one = objective(&m, &h, 5, 0);
    is_u64(kvr_objective_trials(o_one), 1, "without noise one trial");
    is_dbl(kvr_objective_screen(o_one, 8192, tokens), kvr_objective_eval(o_one, 8192, tokens), 0,
           "without noise the screen is the objective");
    kvr_objective_free(o_one);
}

/* Rounding: sums exactly, chunks non-empty, boundaries on the grain; exact fractions kept. */
static void test_rounding(void)
{
    uint64_t state = 12345;
    int bad = 0;
    for (int trial = 0; trial < 20000; trial++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int p = 1 + (int)(state >> 59) % 9;
        uint64_t ctx = 1 + (state >> 20) % 40000, g = 1 + (state >> 40) % 128, t[16];
        double f[16], sum = 0;
        for (int i = 0; i < p; i++) {
            state = state * 6364136223846793005ull + 1;
            f[i] = (double)(state >> 40) * ((state >> 63) ? 1 : 1e-6), sum += f[i];
        }
        for (int i = 0; i < p; i++) f[i] /= sum;
        if (ctx < (uint64_t)p) ctx = (uint64_t)p;
        kvr_lookup_round(f, p, ctx, g, t);
        uint64_t total = 0, ge = ctx >= (uint64_t)p * g ? g : 1;
        for (int i = 0; i < p; i++) {
            total += t[i];
            if (t[i] == 0 || (i + 1 < p && total % ge)) bad++;
        }
        if (total != ctx) bad++;
    }
    is_u64((uint64_t)bad, 0, "rounding: 20000 random cases sum to ctx, non-empty, on the grain");
    uint64_t t[4], want[4] = {6144, 4096, 3584, 2560};
    double f[4];
    kvr_lookup_fractions(want, 4, f);
    kvr_lookup_round(f, 4, 16384, 64, t);
    ok(!memcmp(t, want, sizeof t), "rounding: a partition on the grain rounds to itself");
    kvr_lookup_round(f, 4, 8192, 64, t);
    ok(t[0] == 3072 && t[1] == 2048 && t[2] == 1792 && t[3] == 1280,
       "rounding: halving ctx halves the chunks");
}

static void test_small_cases(void)
{
    struct kvr_model m = model("llama-7b");
    struct kvr_machine h = machine("a100-nvlink", 1);
    struct kvr_objective *obj = objective(&m, &h, 1, 0);
    struct kvr_search_opts o = default_opts();
    struct kvr_search_result r;
    ok(!kvr_search_run(obj, KVR_METHOD_HIER, 5000, &o, &r) && r.tokens[0] == 5000,
       "p = 1: the whole context");
    kvr_objective_free(obj);
    h = machine("a100-nvlink", 4);
    obj = objective(&m, &h, 1, 0);
    ok(!kvr_search_run(obj, KVR_METHOD_HIER, 100, &o, &r) &&
           r.tokens[0] + r.tokens[1] + r.tokens[2] + r.tokens[3] == 100,
       "ctx < p * granularity: grain 1, sums to ctx");
    ok(kvr_search_run(obj, KVR_METHOD_HIER, 3, &o, &r) == KVR_ERR_INPUT, "ctx < p is refused");
    o.exhaustive_max = 1000;
    like(kvr_search_run(obj, KVR_METHOD_EXHAUSTIVE, 16384, &o, &r) ? kvr_error_message() : "",
         "would evaluate", "exhaustive refuses beyond its limit");
    kvr_objective_free(obj);
    struct kvr_objective_opts oo = {.scheme = KVR_SCHEME_TSP, .trials = 1};
    ok(kvr_objective_open(&m, &h, &oo, &obj) == KVR_ERR_INPUT, "tsp takes no partition: refused");
}

/* The bytes a refusal names ("the best needs N bytes"), 0 when it names none. */
static double nofit_need(const char *msg)
{
    const char *at = strstr(msg, "needs ");
    return at ? strtod(at + 6, NULL) : 0;
}

/* One objective serves kvr search's every context: a refusal names this context's plans, not
 * the smaller ones of a context searched before (it said 86011024384 bytes at 136k, 132k's). */
static void test_nofit_per_context(void)
{
    struct kvr_model m = model("llama-7b");
    struct kvr_machine h = machine("a100-nvlink", 4);
    struct kvr_search_opts o = default_opts();
    struct kvr_search_result r;
    struct kvr_objective *fresh = objective(&m, &h, 1, 0), *reused = objective(&m, &h, 1, 0);
    ok(kvr_search_run(fresh, KVR_METHOD_HIER, 139264, &o, &r) == KVR_ERR_NOFIT, "136k: no fit");
    double alone = nofit_need(kvr_error_message());
    ok(kvr_search_run(reused, KVR_METHOD_HIER, 135168, &o, &r) == KVR_ERR_NOFIT, "132k: no fit");
    ok(kvr_search_run(reused, KVR_METHOD_HIER, 139264, &o, &r) == KVR_ERR_NOFIT, "then 136k");
    double after = nofit_need(kvr_error_message());
    is_dbl(after, alone, 0, "  136k after 132k names the bytes of 136k alone");
    /* the last rank keeps all 139264 tokens: weights + ctx x 32 layers x 16 KiB at least */
    double floor = (double)kvr_model_weight_bytes(&m) + 139264.0 * 32 * 16384;
    ok(after >= floor, "  %.0f bytes >= the last rank's weights and cache, %.0f", after, floor);
    kvr_objective_free(fresh);
    kvr_objective_free(reused);
}

int main(void)
{
    test_rounding();
    test_objective();
    test_small_cases();
    test_nofit_per_context();
    test_nelder_mead();
    test_against_exhaustive();
    return tap_done();
}
