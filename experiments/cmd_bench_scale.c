/* kvr bench search, the cluster-scale part: p = 16, 32, 64 on one node (a100-1x64) and 2x4,
 * 4x8, 8x8 nodes (a100-2x4, a100-4x8, a100-8x8; data/machines/, read from the working
 * folder), at 16k and 128k (Llama-7B) and 1M (Falcon-7B: the one preset whose whole 1M cache
 * fits the chain's last rank), without and with noise (random:0.5, 8 trials). Each case: the
 * product's plan search (hier over the mappings, and the fewer-GPU plan), its evaluations and
 * wall time, the gap to the strong oracle (multistart on the same mapping and grid) and
 * KVR-P's gap (linear interpolation from rows at ctx * 2^(k/4), k = +-1..+-4, leave-one-out). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_bench.h"
#include "kvr_cli.h"
#include "kvr_interp.h"
#include "kvr_json.h"
#include "kvr_machine_args.h"
#include "kvr_search.h"
#include "kvr_search_plan.h"

struct scale_case {
    const char *machine;
    int p;
    const char *model;
    uint64_t ctx;
    bool noise;
};

struct scale_result {
    struct kvr_plan_search plan;
    double wall_s, oracle_ttft_s, gap_pct, kvrp_gap_pct, oracle_wall_s;
    uint64_t evals, oracle_evals;
    enum kvr_status st;
    char error[160];
};

static enum kvr_status open_case(const struct scale_case *c, const struct kvr_model *m,
                                 struct kvr_objective **obj)
{
    static struct kvr_machine h;
    char path[256], g[16];
    snprintf(path, sizeof path, "data/machines/%s.ini", c->machine);
    snprintf(g, sizeof g, "%d", c->p);
    struct kvr_machine_args a = {
        .machine = path, .noise = c->noise ? "random:0.5" : NULL, .seed = 1, .trials = 8};
    enum kvr_status st = kvr_machine_args_build(&a, NULL, g, &h);
    struct kvr_objective_opts oo = {.scheme = KVR_SCHEME_KVR, .trials = 8};
    return st ? st : kvr_objective_open(m, &h, &oo, obj);
}

/* KVR-P at c->ctx from hier's rows at ctx * 2^(k/4), k = +-1..+-4, on the plan's mapping. */
static enum kvr_status kvrp_gap(struct kvr_objective *obj, const struct scale_case *c,
                                const struct kvr_search_opts *o, const char *model,
                                const struct kvr_search_result *best, double *gap)
{
    struct kvr_plan_row rows[8];
    int n = 0;
    enum kvr_status st = KVR_OK;
    for (int k = -4; k <= 4 && !st; k++) {
        if (k == 0) continue;
        struct kvr_search_result r;
        struct kvr_plan_row *row = &rows[n++];
        memset(row, 0, sizeof *row);
        snprintf(row->model, sizeof row->model, "%s", model);
        snprintf(row->scheme, sizeof row->scheme, "kvr");
        snprintf(row->method, sizeof row->method, "hier");
        row->p = c->p;
        row->ctx_tokens = (uint64_t)llround((double)c->ctx * pow(2, k / 4.0)) / 64 * 64;
        if (row->ctx_tokens > KVR_MAX_CTX) row->ctx_tokens = KVR_MAX_CTX;
        st = kvr_search_hier(obj, row->ctx_tokens, o, &r);
        if (st == KVR_ERR_NOFIT) { /* past what fits: no row there */
            st = KVR_OK, n--;
            continue;
        }
        if (st) break;
        memcpy(row->tokens, r.tokens, (size_t)c->p * sizeof *r.tokens);
        row->granularity_tokens = r.granularity;
    }
    struct kvr_lookup_answer a;
    if (!st) st = kvr_interp_partition(rows, (size_t)n, c->ctx, KVR_INTERP_LINEAR, false, &a);
    if (!st) *gap = 100 * (kvr_objective_eval(obj, c->ctx, a.tokens) - best->ttft_s) / best->ttft_s;
    return st;
}

static void run_case(const struct scale_case *c, struct scale_result *x)
{
    struct kvr_model m;
    struct kvr_objective *obj = NULL;
    struct kvr_search_opts o;
    kvr_search_opts_default(&o);
    o.nm_starts = c->p > 16 ? 2 : 4;
    memset(x, 0, sizeof *x);
    enum kvr_status st = kvr_model_resolve(c->model, &m);
    if (!st) st = open_case(c, &m, &obj);
    double t0 = kvr_cli_now_s();
    uint64_t e0 = obj ? kvr_objective_evals(obj) : 0;
    if (!st) st = kvr_search_plan(obj, c->ctx, &o, &x->plan);
    x->wall_s = kvr_cli_now_s() - t0;
    if (!st) x->evals = kvr_objective_evals(obj) - e0 + x->plan.fewer_evals;
    struct kvr_search_result orc;
    if (!st) st = kvr_objective_set_mapping(obj, x->plan.map);
    t0 = kvr_cli_now_s();
    if (!st) st = kvr_search_multistart(obj, c->ctx, &o, &orc);
    x->oracle_wall_s = kvr_cli_now_s() - t0;
    if (!st) {
        x->oracle_ttft_s = fmin(orc.ttft_s, x->plan.best.ttft_s);
        x->oracle_evals = orc.n_evals;
        x->gap_pct = 100 * (x->plan.best.ttft_s - x->oracle_ttft_s) / x->oracle_ttft_s;
        st = kvrp_gap(obj, c, &o, m.name, &x->plan.best, &x->kvrp_gap_pct);
    }
    x->st = st;
    if (st) snprintf(x->error, sizeof x->error, "%s", kvr_error_message());
    kvr_objective_free(obj);
}

static void json_case(struct kvr_json *j, const struct scale_case *c, const struct scale_result *x)
{
    kvr_json_object_begin(j);
    kvr_json_kv_str(j, "machine", c->machine);
    kvr_json_kv_u64(j, "p", (uint64_t)c->p);
    kvr_json_kv_str(j, "model", c->model);
    kvr_json_kv_u64(j, "ctx", c->ctx);
    kvr_json_kv_bool(j, "noise", c->noise);
    if (x->st) {
        kvr_json_kv_str(j, "error", x->error);
    } else {
        kvr_json_kv_dbl(j, "ttft_s", x->plan.best.ttft_s);
        kvr_json_kv_u64(j, "evaluations", x->evals);
        kvr_json_kv_u64(j, "searches", (uint64_t)x->plan.n_searches);
        kvr_json_kv_dbl(j, "wall_s", x->wall_s);
        kvr_json_kv_dbl(j, "oracle_ttft_s", x->oracle_ttft_s);
        kvr_json_kv_u64(j, "oracle_evaluations", x->oracle_evals);
        kvr_json_kv_dbl(j, "oracle_wall_s", x->oracle_wall_s);
        kvr_json_kv_dbl(j, "gap_pct", x->gap_pct);
        kvr_json_kv_dbl(j, "kvrp_gap_pct", x->kvrp_gap_pct);
        kvr_json_kv_u64(j, "fewer_p", (uint64_t)x->plan.fewer_p);
        kvr_json_kv_dbl(j, "fewer_ttft_s", x->plan.fewer_p ? x->plan.fewer.ttft_s : 0);
    }
    kvr_json_object_end(j);
}

static void print_row(const struct scale_case *c, const struct scale_result *x)
{
    if (x->st) {
        printf("%-9s %3d %-10s %6lluk %-5s  %s\n", c->machine, c->p, c->model,
               (unsigned long long)(c->ctx / 1024), c->noise ? "yes" : "no", x->error);
        return;
    }
    printf("%-9s %3d %-10s %6lluk %-5s %10.4f %4d %8llu %8.3f %8.3f %8.3f %6d %9.3f\n", c->machine,
           c->p, c->model, (unsigned long long)(c->ctx / 1024), c->noise ? "yes" : "no",
           x->plan.best.ttft_s, x->plan.n_searches, (unsigned long long)x->evals, x->wall_s,
           x->gap_pct, x->kvrp_gap_pct, x->plan.fewer_p, x->oracle_wall_s);
}

/* Least-squares slope of log(wall) against log(p) over the no-noise 16k cases of one machine
 * family; NAN with fewer than two. */
static double exponent(const struct scale_case *cs, const struct scale_result *xs, size_t n,
                       const char *prefix)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (cs[i].noise || cs[i].ctx != 16384 || xs[i].st || strncmp(cs[i].machine, prefix, 6))
            continue;
        double x = log(cs[i].p), y = log(xs[i].wall_s);
        sx += x, sy += y, sxx += x * x, sxy += x * y, k++;
    }
    return k < 2 ? NAN : (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

enum kvr_status kvr_bench_search_scale(bool json)
{
    static const struct {
        const char *machine;
        int p;
    } m[] = {{"a100-1x64", 8}, {"a100-1x64", 16}, {"a100-1x64", 32}, {"a100-1x64", 64},
             {"a100-2x4", 8},  {"a100-4x8", 32},  {"a100-8x8", 64}};
    static const struct {
        const char *model;
        uint64_t ctx;
    } w[] = {{"llama-7b", 16384}, {"llama-7b", 131072}, {"falcon-7b", 1048576}};
    enum { N = 7 * 3 * 2 };
    static struct scale_case cs[N];
    static struct scale_result xs[N];
    size_t n = 0;
    for (int noise = 0; noise < 2; noise++)
        for (size_t i = 0; i < 7; i++)
            for (size_t k = 0; k < 3; k++)
                cs[n++] = (struct scale_case){m[i].machine, m[i].p, w[k].model, w[k].ctx, noise};
    if (!json)
        printf("%-9s %3s %-10s %7s %-5s %10s %4s %8s %8s %8s %8s %6s %9s\n", "machine", "p",
               "model", "ctx", "noise", "ttft_s", "srch", "evals", "wall_s", "gap%", "kvrp%",
               "fewer", "oracle_s");
    for (size_t i = 0; i < n; i++) {
        run_case(&cs[i], &xs[i]);
        if (!json) print_row(&cs[i], &xs[i]), fflush(stdout);
    }
    double e1 = exponent(cs, xs, n, "a100-1"), e8 = exponent(cs, xs, n, "a100-");
    if (!json) {
        printf("search time ~ p^%.2f (one node, p = 8..64, 16k, no noise); ~ p^%.2f over every "
               "profile\n",
               e1, e8);
        return KVR_OK;
    }
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
    kvr_json_kv_dbl(&j, "time_exponent_one_node", e1);
    kvr_json_kv_dbl(&j, "time_exponent_all", e8);
    kvr_json_key(&j, "cases");
    kvr_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) json_case(&j, &cs[i], &xs[i]);
    kvr_json_array_end(&j);
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
    return KVR_OK;
}
