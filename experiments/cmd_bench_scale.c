/* kvr bench search, the cluster-scale part: p = 16, 32, 64 on one node (a100-1x64) and 2x4,
 * 4x8, 8x8 nodes (a100-2x4, a100-4x8, a100-8x8; data/machines/ in the data directory,
 * kvr_datadir.h), at 16k and 128k (Llama-7B) and 1M (Falcon-7B: the one preset whose whole 1M
 * cache fits the chain's last rank), without and with noise (random:0.5, 8 trials). Each case: the
 * product's plan search (hier over the mappings, and the fewer-GPU plan), its evaluations and
 * wall time, the gap to the strong oracle (multistart on the same mapping and grid) and
 * KVR-P's gap (linear interpolation from rows at ctx * 2^(k/4), k = +-1..+-4, leave-one-out;
 * above 128k, where Llama-7B's whole cache soon overflows the last rank, rows at +256 k). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvr_bench.h"
#include "kvr_cli.h"
#include "kvr_datadir.h"
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
    double wall_s, cpu_s, oracle_ttft_s, gap_pct, kvrp_gap_pct, oracle_wall_s;
    uint64_t evals, oracle_evals;
    enum kvr_status st;
    char error[160];
};

static enum kvr_status open_case(const struct scale_case *c, const struct kvr_model *m,
                                 struct kvr_objective **obj)
{
    static struct kvr_machine h;
    char rel[256], path[4200], g[16];
    snprintf(rel, sizeof rel, "data/machines/%s.ini", c->machine);
    snprintf(g, sizeof g, "%d", c->p);
    /* the committed profile, from the data directory (kvr_datadir.h), not the working folder */
    enum kvr_status st = kvr_datadir_default("the cluster profile", rel, path, sizeof path);
    if (st) return st;
    struct kvr_machine_args a = {
        .machine = path, .noise = c->noise ? "random:0.5" : NULL, .seed = 1, .trials = 8};
    st = kvr_machine_args_build(&a, NULL, g, &h);
    struct kvr_objective_opts oo = {.scheme = KVR_SCHEME_KVR, .trials = 8};
    return st ? st : kvr_objective_open(m, &h, &oo, obj);
}

static const struct kvr_model *model_of(const struct kvr_objective *obj)
{
    return kvr_objective_model(obj);
}

/* KVR-P (bottleneck representation) at c->ctx from hier's rows at ctx * 2^(k/4), k = +-1..+-4, on
 * the plan's mapping. */
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
        if (k > 0 && c->ctx == 131072) /* Llama-7B's cache fills a rank just above 128k */
            row->ctx_tokens = c->ctx + 256 * (uint64_t)k;
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
    if (!st)
        st = kvr_interp_partition_model(rows, (size_t)n, c->ctx, KVR_INTERP_BOTTLENECK, false,
                                        model_of(obj), kvr_objective_machine(obj), &a);
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
    double t0 = kvr_cli_now_s(), c0 = kvr_cli_cpu_s();
    uint64_t e0 = obj ? kvr_objective_evals(obj) : 0;
    if (!st) st = kvr_search_plan(obj, c->ctx, &o, &x->plan);
    x->wall_s = kvr_cli_now_s() - t0, x->cpu_s = kvr_cli_cpu_s() - c0;
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
        kvr_json_kv_dbl(j, "cpu_s", x->cpu_s);
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
    printf("%-9s %3d %-10s %6lluk %-5s %10.4f %4d %8llu %8.3f %8.3f %8.3f %8.3f %6d %9.3f\n",
           c->machine, c->p, c->model, (unsigned long long)(c->ctx / 1024), c->noise ? "yes" : "no",
           x->plan.best.ttft_s, x->plan.n_searches, (unsigned long long)x->evals, x->wall_s,
           x->cpu_s, x->gap_pct, x->kvrp_gap_pct, x->plan.fewer_p, x->oracle_wall_s);
}

/* Least-squares slope of log(CPU s) against log(p) over the no-noise 16k cases of one machine;
 * NAN with fewer than two. */
static double exponent(const struct scale_case *cs, const struct scale_result *xs, size_t n,
                       const char *prefix)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (cs[i].noise || cs[i].ctx != 16384 || xs[i].st || strcmp(cs[i].machine, prefix))
            continue;
        double x = log(cs[i].p), y = log(xs[i].cpu_s);
        sx += x, sy += y, sxx += x * x, sxy += x * y, k++;
    }
    return k < 2 ? NAN : (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

/* KVR-P by leave-one-out on one key: hier's rows at 2k..32k step 2k (Llama-7B, no noise); each
 * interior row is dropped and interpolated from the others; the gap is to its searched TTFT. */
struct loo {
    const char *machine;
    int p;
    double mean_pct, max_pct;
    size_t n;
    enum kvr_interp how;
};

static enum kvr_status kvrp_loo(struct loo *l)
{
    enum { N_ROWS = 16 };
    struct kvr_plan_row rows[N_ROWS], rest[N_ROWS];
    struct kvr_model m;
    struct kvr_objective *obj = NULL;
    struct scale_case c = {l->machine, l->p, "llama-7b", 0, false};
    struct kvr_search_opts o;
    kvr_search_opts_default(&o);
    enum kvr_status st = kvr_model_resolve(c.model, &m);
    if (!st) st = open_case(&c, &m, &obj);
    for (int k = 0; k < N_ROWS && !st; k++) {
        struct kvr_search_result r;
        memset(&rows[k], 0, sizeof rows[k]);
        rows[k].p = l->p, rows[k].ctx_tokens = 2048 * (uint64_t)(k + 1);
        st = kvr_search_hier(obj, rows[k].ctx_tokens, &o, &r);
        memcpy(rows[k].tokens, r.tokens, sizeof r.tokens);
        rows[k].granularity_tokens = o.granularity, rows[k].predicted_ttft_s = r.ttft_s;
    }
    l->mean_pct = l->max_pct = 0, l->n = 0;
    for (int k = 1; k + 1 < N_ROWS && !st; k++) {
        int n = 0;
        for (int j = 0; j < N_ROWS; j++)
            if (j != k) rest[n++] = rows[j];
        struct kvr_lookup_answer a;
        st = kvr_interp_partition_model(rest, (size_t)n, rows[k].ctx_tokens, l->how, false, &m,
                                        kvr_objective_machine(obj), &a);
        if (st) break;
        double v = kvr_objective_eval(obj, rows[k].ctx_tokens, a.tokens);
        double gap = 100 * (v - rows[k].predicted_ttft_s) / rows[k].predicted_ttft_s;
        l->mean_pct += gap, l->max_pct = fmax(l->max_pct, gap), l->n++;
    }
    if (l->n) l->mean_pct /= (double)l->n;
    kvr_objective_free(obj);
    return st;
}

static enum kvr_status print_loo(bool json, struct kvr_json *j)
{
    static const struct loo base[] = {
        {.machine = "a100-1x64", .p = 8},  {.machine = "a100-1x64", .p = 16},
        {.machine = "a100-1x64", .p = 32}, {.machine = "a100-1x64", .p = 64},
        {.machine = "a100-2x4", .p = 8},   {.machine = "a100-4x8", .p = 32},
        {.machine = "a100-8x8", .p = 64}};
    if (!json)
        printf("\nKVR-P leave-one-out, Llama-7B, rows 2k..32k step 2k (14 held out each):\n");
    if (json) kvr_json_key(j, "kvrp_loo"), kvr_json_array_begin(j);
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        for (int how = 0; how < 3; how++) {
            static const enum kvr_interp hows[] = {KVR_INTERP_LINEAR, KVR_INTERP_BALANCED,
                                                   KVR_INTERP_BOTTLENECK};
            struct loo l = base[i];
            l.how = hows[how];
            enum kvr_status st = kvrp_loo(&l);
            if (st) return st;
            if (!json) {
                printf("  %-9s p = %2d  %-8s mean %.3f%%  max %.3f%%\n", l.machine, l.p,
                       kvr_interp_name(l.how), l.mean_pct, l.max_pct);
                continue;
            }
            kvr_json_object_begin(j);
            kvr_json_kv_str(j, "machine", l.machine);
            kvr_json_kv_u64(j, "p", (uint64_t)l.p);
            kvr_json_kv_str(j, "interp", kvr_interp_name(l.how));
            kvr_json_kv_dbl(j, "mean_gap_pct", l.mean_pct);
            kvr_json_kv_dbl(j, "max_gap_pct", l.max_pct);
            kvr_json_kv_u64(j, "cases", l.n);
            kvr_json_object_end(j);
        }
    if (json) kvr_json_array_end(j);
    return KVR_OK;
}

/* The issue's table: one search at 16k (Llama-7B) on p = 8, 16, 32, 64 GPUs of one node
 * (a100-1x64) and of the 8x8 cluster (a100-8x8, its first p GPUs); hier (best of 3, CPU
 * seconds) and the descent oracle (the earlier product), each against the strong oracle. */
struct issue_row {
    const char *machine;
    int p;
    double hier_s, descent_s, hier_gap, descent_gap;
    uint64_t hier_evals, descent_evals;
};

static enum kvr_status issue_row(struct issue_row *x)
{
    struct kvr_model m;
    struct kvr_objective *obj = NULL;
    struct scale_case c = {x->machine, x->p, "llama-7b", 16384, false};
    struct kvr_search_opts o;
    kvr_search_opts_default(&o);
    o.nm_starts = 2;
    struct kvr_search_result h, d, s;
    enum kvr_status st = kvr_model_resolve(c.model, &m);
    if (!st) st = open_case(&c, &m, &obj);
    x->hier_s = INFINITY;
    for (int k = 0; k < 3 && !st; k++) {
        double t0 = kvr_cli_cpu_s();
        st = kvr_search_hier(obj, c.ctx, &o, &h);
        x->hier_s = fmin(x->hier_s, kvr_cli_cpu_s() - t0);
    }
    double t0 = kvr_cli_cpu_s();
    if (!st) st = kvr_search_descent(obj, c.ctx, &o, &d);
    x->descent_s = kvr_cli_cpu_s() - t0;
    if (!st) st = kvr_search_multistart(obj, c.ctx, &o, &s);
    if (!st) {
        double best = fmin(s.ttft_s, fmin(h.ttft_s, d.ttft_s));
        x->hier_gap = 100 * (h.ttft_s - best) / best;
        x->descent_gap = 100 * (d.ttft_s - best) / best;
        x->hier_evals = h.n_evals, x->descent_evals = d.n_evals;
    }
    kvr_objective_free(obj);
    return st;
}

static double fit_exponent(const struct issue_row *r, int n, const char *machine, bool hier)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(r[i].machine, machine)) continue;
        double x = log(r[i].p), y = log(hier ? r[i].hier_s : r[i].descent_s);
        sx += x, sy += y, sxx += x * x, sxy += x * y, k++;
    }
    return k < 2 ? NAN : (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

enum kvr_status kvr_bench_search_issue(bool json)
{
    static struct issue_row r[8];
    static const char *const machines[2] = {"a100-1x64", "a100-8x8"};
    int n = 0;
    enum kvr_status st = KVR_OK;
    for (int mi = 0; mi < 2 && !st; mi++)
        for (int p = 8; p <= 64 && !st; p *= 2) {
            r[n] = (struct issue_row){.machine = machines[mi], .p = p};
            st = issue_row(&r[n++]);
        }
    if (st) return st;
    double e[4] = {fit_exponent(r, n, machines[0], true), fit_exponent(r, n, machines[1], true),
                   fit_exponent(r, n, machines[0], false), fit_exponent(r, n, machines[1], false)};
    if (!json) {
        printf("one search at 16k, Llama-7B; gaps to the strong oracle (multistart)\n");
        printf("%-9s %3s %10s %7s %8s %11s %8s %9s\n", "machine", "p", "hier_s", "evals", "gap%",
               "descent_s", "evals", "gap%");
        for (int i = 0; i < n; i++)
            printf("%-9s %3d %10.4f %7llu %8.3f %11.3f %8llu %9.3f\n", r[i].machine, r[i].p,
                   r[i].hier_s, (unsigned long long)r[i].hier_evals, r[i].hier_gap, r[i].descent_s,
                   (unsigned long long)r[i].descent_evals, r[i].descent_gap);
        printf("search time ~ p^e over p = 8..64: hier e = %.2f (one node), %.2f (8 nodes); "
               "descent e = %.2f, %.2f\n",
               e[0], e[1], e[2], e[3]);
        return KVR_OK;
    }
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
    kvr_json_kv_dbl(&j, "hier_exponent_one_node", e[0]);
    kvr_json_kv_dbl(&j, "hier_exponent_8_nodes", e[1]);
    kvr_json_kv_dbl(&j, "descent_exponent_one_node", e[2]);
    kvr_json_kv_dbl(&j, "descent_exponent_8_nodes", e[3]);
    kvr_json_key(&j, "rows");
    kvr_json_array_begin(&j);
    for (int i = 0; i < n; i++) {
        kvr_json_object_begin(&j);
        kvr_json_kv_str(&j, "machine", r[i].machine);
        kvr_json_kv_u64(&j, "p", (uint64_t)r[i].p);
        kvr_json_kv_dbl(&j, "hier_cpu_s", r[i].hier_s);
        kvr_json_kv_u64(&j, "hier_evaluations", r[i].hier_evals);
        kvr_json_kv_dbl(&j, "hier_gap_pct", r[i].hier_gap);
        kvr_json_kv_dbl(&j, "descent_cpu_s", r[i].descent_s);
        kvr_json_kv_u64(&j, "descent_evaluations", r[i].descent_evals);
        kvr_json_kv_dbl(&j, "descent_gap_pct", r[i].descent_gap);
        kvr_json_object_end(&j);
    }
    kvr_json_array_end(&j);
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
    return KVR_OK;
}

enum kvr_status kvr_bench_search_scale_loo(bool json)
{
    struct kvr_json j;
    if (json) kvr_json_init(&j, stdout), kvr_json_object_begin(&j);
    enum kvr_status st = print_loo(json, &j);
    if (json) kvr_json_object_end(&j), kvr_json_finish(&j);
    return st;
}

/* Every case is printed, failed or not; then the run fails with the first failed case. */
static enum kvr_status first_failure(const struct scale_result *xs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (xs[i].st)
            return kvr_error(xs[i].st, "case %zu of %zu failed: %s", i + 1, n, xs[i].error);
    return KVR_OK;
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
        printf("%-9s %3s %-10s %7s %-5s %10s %4s %8s %8s %8s %8s %8s %6s %9s\n", "machine", "p",
               "model", "ctx", "noise", "ttft_s", "srch", "evals", "wall_s", "cpu_s", "gap%",
               "kvrp%", "fewer", "oracle_s");
    for (size_t i = 0; i < n; i++) {
        run_case(&cs[i], &xs[i]);
        if (!json) print_row(&cs[i], &xs[i]), fflush(stdout);
    }
    double e1 = exponent(cs, xs, n, "a100-1x64");
    if (!json) {
        printf("plan search CPU time (hier on each mapping and the fewer-GPU searches) ~ p^%.2f "
               "(one node, p = 8..64, 16k, no noise; one search alone: kvr bench search table)\n",
               e1);
        return first_failure(xs, n);
    }
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
    kvr_json_kv_dbl(&j, "time_exponent_one_node", e1);
    kvr_json_key(&j, "cases");
    kvr_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) json_case(&j, &cs[i], &xs[i]);
    kvr_json_array_end(&j);
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
    return first_failure(xs, n);
}
