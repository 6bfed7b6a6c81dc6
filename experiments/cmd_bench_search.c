/* kvr bench search: the paper's whole lookup table on the A100 presets (Llama-7B and
 * Falcon-7B x p in {2,4,8} x ctx 1k-16k step 1k x {300 GB/s, 10 GB/s} = 192 searches), timed;
 * its quality against the oracles; and KVR-P against KVR-S on held-out contexts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvr_bench.h"
#include "kvr_cli.h"
#include "kvr_interp.h"
#include "kvr_json.h"
#include "kvr_search_cli.h"

struct gaps {
    double sum, max;
    size_t n;
};

static void add_gap(struct gaps *g, double v, double ref)
{
    double x = 100 * (v - ref) / ref;
    g->sum += x, g->n++;
    g->max = g->n == 1 || x > g->max ? x : g->max;
}

static double table_cpu_s; /* CPU seconds of the table (the dev machine's cores are shared) */

static enum kvr_status build_table(struct kvr_search_job *job, double *wall_s)
{
    struct kvr_search_args a = {0};
    kvr_search_args_default(&a);
    a.models = "llama-7b,falcon-7b";
    a.mach.machine = "a100-nvlink,a100-10GBps";
    a.gpus = "2,4,8";
    enum kvr_status st = kvr_search_job_prepare(&a, job);
    double t0 = kvr_cli_now_s(), c0 = kvr_cli_cpu_s();
    if (!st) st = kvr_search_job_run(job, NULL, NULL, false);
    *wall_s = kvr_cli_now_s() - t0, table_cpu_s = kvr_cli_cpu_s() - c0;
    return st;
}

static enum kvr_status open_obj(const struct kvr_search_job *job, const struct kvr_plan_row *r,
                                struct kvr_objective **obj)
{
    static struct kvr_machine h;
    char g[16];
    snprintf(g, sizeof g, "%d", r->p);
    int mi = !strcmp(r->model, job->models[0].name) ? 0 : 1;
    enum kvr_status st = kvr_machine_args_build(&job->mach, r->machine, g, &h);
    return st ? st : kvr_objective_open(&job->models[mi], &h, &job->objective, obj);
}

/* Against the exhaustive optimum on the same grid (p = 2 always; p = 4 up to 4k) and against
 * Nelder-Mead on the relaxation, with the hierarchical search on the one-token grid too
 * (p = 4 and 8 at 4k, 8k and 16k). */
static enum kvr_status oracle_gaps(const struct kvr_search_job *job, struct gaps *ex,
                                   struct gaps *nm)
{
    enum kvr_status st = KVR_OK;
    for (size_t i = 0; i < job->n_done && !st; i++) {
        const struct kvr_plan_row *r = &job->done[i];
        bool do_ex = r->p == 2 || (r->p == 4 && r->ctx_tokens <= 4096);
        bool do_nm =
            r->p >= 4 && (r->ctx_tokens == 4096 || r->ctx_tokens == 8192 || r->ctx_tokens == 16384);
        if (!do_ex && !do_nm) continue;
        struct kvr_objective *obj = NULL;
        struct kvr_search_result o, h1;
        struct kvr_search_opts opts = job->opts;
        if ((st = open_obj(job, r, &obj))) break;
        if (do_ex && !(st = kvr_search_exhaustive(obj, r->ctx_tokens, &opts, &o)))
            add_gap(ex, r->predicted_ttft_s, o.ttft_s);
        opts.granularity = 1;
        if (!st && do_nm && !(st = kvr_search_nelder_mead(obj, r->ctx_tokens, &opts, &o)) &&
            !(st = kvr_search_hier(obj, r->ctx_tokens, &opts, &h1)))
            add_gap(nm, h1.ttft_s, o.ttft_s);
        kvr_objective_free(obj);
    }
    return st;
}

/* KVR-P (linear interpolation from the table) against KVR-S searched at held-out contexts. */
static enum kvr_status kvrp_gaps(const struct kvr_search_job *job, struct gaps *g, struct gaps *gb)
{
    enum kvr_status st = KVR_OK;
    size_t per_key = 16; /* the table's rows come in runs of 16 contexts per key */
    for (size_t k = 0; k + per_key <= job->n_done && !st; k += per_key) {
        const struct kvr_plan_row *rows = &job->done[k];
        struct kvr_objective *obj = NULL;
        if ((st = open_obj(job, rows, &obj))) break;
        for (uint64_t ctx = 1536; ctx < 16384 && !st; ctx += 1024) {
            struct kvr_lookup_answer a;
            struct kvr_search_result s;
            st = kvr_interp_partition(rows, per_key, ctx, KVR_INTERP_LINEAR, false, &a);
            if (!st) st = kvr_search_hier(obj, ctx, &job->opts, &s);
            if (!st) add_gap(g, kvr_objective_eval(obj, ctx, a.tokens), s.ttft_s);
            if (!st)
                st = kvr_interp_partition_model(rows, per_key, ctx, KVR_INTERP_BOTTLENECK, false,
                                                kvr_objective_model(obj),
                                                kvr_objective_machine(obj), &a);
            if (!st) add_gap(gb, kvr_objective_eval(obj, ctx, a.tokens), s.ttft_s);
        }
        kvr_objective_free(obj);
    }
    return st;
}

static void print(bool json, size_t searches, double wall_s, uint64_t evals, const struct gaps *ex,
                  const struct gaps *nm, const struct gaps *p, const struct gaps *pb)
{
    struct gaps all = {ex->sum + nm->sum, fmax(ex->max, nm->max), ex->n + nm->n};
    if (!json) {
        printf("table: %zu plan searches (hier with the fewer-GPU plans) in %.3f s wall, %.3f s "
               "CPU (%.2f ms each, %llu evaluations)\n",
               searches, wall_s, table_cpu_s, 1e3 * table_cpu_s / (double)searches,
               (unsigned long long)evals);
        printf("vs exhaustive (%zu cases): mean gap %.4f%%, max %.4f%%\n", ex->n, ex->sum / ex->n,
               ex->max);
        printf("vs Nelder-Mead relaxation (%zu cases): mean gap %.4f%%, max %.4f%%\n", nm->n,
               nm->sum / nm->n, nm->max);
        printf("KVR-P vs KVR-S on %zu held-out contexts: mean gap %.4f%%, max %.4f%% (linear); "
               "%.4f%%, max %.4f%% (bottleneck)\n",
               p->n, p->sum / p->n, p->max, pb->sum / pb->n, pb->max);
        return;
    }
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_kv_u64(&j, "searches", searches);
    kvr_json_kv_dbl(&j, "wall_s", wall_s);
    kvr_json_kv_dbl(&j, "cpu_s", table_cpu_s);
    kvr_json_kv_u64(&j, "evaluations", evals);
    kvr_json_kv_dbl(&j, "mean_gap_pct", all.sum / (double)all.n);
    kvr_json_kv_dbl(&j, "max_gap_pct", all.max);
    kvr_json_kv_u64(&j, "oracle_cases", all.n);
    kvr_json_kv_dbl(&j, "exhaustive_mean_gap_pct", ex->sum / (double)ex->n);
    kvr_json_kv_dbl(&j, "nelder_mead_mean_gap_pct", nm->sum / (double)nm->n);
    kvr_json_kv_dbl(&j, "kvrp_mean_gap_pct", p->sum / (double)p->n);
    kvr_json_kv_dbl(&j, "kvrp_max_gap_pct", p->max);
    kvr_json_kv_u64(&j, "kvrp_cases", p->n);
    kvr_json_kv_dbl(&j, "kvrp_bottleneck_mean_gap_pct", pb->sum / (double)pb->n);
    kvr_json_kv_dbl(&j, "kvrp_bottleneck_max_gap_pct", pb->max);
    kvr_json_end(&j);
}

enum kvr_status kvr_bench_search(bool json)
{
    struct kvr_search_job job;
    double wall_s;
    struct gaps ex = {0}, nm = {0}, p = {0}, pb = {0};
    enum kvr_status st = build_table(&job, &wall_s);
    if (!st) st = oracle_gaps(&job, &ex, &nm);
    if (!st) st = kvrp_gaps(&job, &p, &pb);
    uint64_t evals = 0;
    for (size_t i = 0; i < job.n_done; i++) evals += job.done[i].evaluations;
    if (!st) print(json, job.n_done, wall_s, evals, &ex, &nm, &p, &pb);
    kvr_search_job_free(&job);
    return st;
}
