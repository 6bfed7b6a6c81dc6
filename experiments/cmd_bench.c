/* kvr bench sim: how many KV-Runahead evaluations per second the simulator does on one core
 * (Llama-7B, p = 8, a100-nvlink, 16k context, the balanced partition; no timeline, no
 * allocation inside the loop). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kvr_bench.h"
#include "kvr_cli.h"
#include "kvr_opt.h"
#include "kvr_json.h"
#include "kvr_sim.h"

static enum kvr_status bench_sim(bool json)
{
    struct kvr_model m;
    static struct kvr_machine h;
    enum kvr_status st;
    if ((st = kvr_model_resolve("llama-7b", &m)) || (st = kvr_machine_resolve("a100-nvlink", &h)))
        return st;
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = 8, .ctx = 16384};
    kvr_plan_balanced(&plan, &m, &h.gpu);
    struct kvr_sim *sim;
    if ((st = kvr_sim_open(&m, &h, &sim))) return st;
    struct kvr_sim_result res;
    long n = 0;
    double sink = 0, t0 = kvr_cli_now_s(), t1 = t0;
    while (t1 - t0 < 1.0) { /* batches of 1000 keep the clock out of the measurement */
        for (int k = 0; k < 1000; k++) {
            plan.tokens[k & 7] += 1, plan.tokens[(k + 1) & 7] -= 1; /* vary the plan */
            kvr_sim_run(sim, &plan, &res, NULL);
            sink += res.ttft_s;
        }
        n += 1000;
        t1 = kvr_cli_now_s();
    }
    kvr_sim_free(sim);
    double rate = (double)n / (t1 - t0);
    if (json) {
        struct kvr_json j;
        kvr_json_begin(&j, stdout);
        kvr_json_kv_str(&j, "bench", "sim");
        kvr_json_kv_str(&j, "case", "kvr llama-7b a100-nvlink p=8 ctx=16k");
        kvr_json_kv_u64(&j, "evals", (uint64_t)n);
        kvr_json_kv_dbl(&j, "wall_s", t1 - t0);
        kvr_json_kv_dbl(&j, "evals_per_s", rate);
        kvr_json_kv_dbl(&j, "us_per_eval", 1e6 / rate);
        kvr_json_end(&j);
    } else {
        printf("sim: %ld evaluations in %.2f s: %.0f per second (%.2f us each); checksum %.3g\n", n,
               t1 - t0, rate, 1e6 / rate, sink);
    }
    return KVR_OK;
}

struct bench_args {
    bool json, quiet, help;
};
static const struct kvr_opt bench_opts[] = {KVR_OPT_COMMON_END(struct bench_args)};
static const struct kvr_opt_spec bench_spec = {
    .usage =
        "usage: kvr bench sim [--json]\n       kvr bench search [paper|scale|table|kvrp] [--json]\n"
        "       kvr bench "
        "attention --help\n       kvr bench comm --help\n\nsim: simulator evaluations per "
        "second; search: the paper's 192-search table,\ntime and quality (paper), then the "
        "cluster-scale cases (scale): p = 8-64 on one\nnode and on 2x4, 4x8, 8x8 profiles, "
        "with and without noise; table: the issue's\ntable of one search per p; kvrp: "
        "KVR-P leave-one-out at large p. The profiles are\n"
        "data/machines/a100-*.ini in the data directory ($KVR_DATADIR or PREFIX/share/kvrun).\n",
    .opts = bench_opts,
    .min_args = 1,
    .max_args = 2};

enum kvr_status kvr_cmd_bench(int argc, char **argv)
{
    static char attention[] = "bench attention", comm[] = "bench comm"; /* names in messages */
    if (argc >= 2 && !strcmp(argv[1], "attention"))
        return argv[1] = attention, kvr_bench_attention(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "comm"))
        return argv[1] = comm, kvr_bench_comm(argc - 1, argv + 1);
    for (int i = 1; i < argc; i++) /* named before --help is honoured: bench takes flags only */
        if (argv[i][0] != '-' && strcmp(argv[i], "sim") && strcmp(argv[i], "search"))
            return kvr_error(KVR_ERR_USAGE,
                             "bench: unknown benchmark '%s' (sim, search, attention or comm)",
                             argv[i]);
        else if (argv[i][0] != '-')
            break;
    struct bench_args a = {0};
    struct kvr_opt_result res;
    enum kvr_status st;
    if (kvr_opt_start(&bench_spec, argc, argv, &a, &res, &st)) return st;
    if (!strcmp(res.args[0], "search")) {
        const char *part = res.n_args == 2 ? res.args[1] : "";
        if (!strcmp(part, "kvrp")) return kvr_bench_search_scale_loo(a.json);
        if (!strcmp(part, "table")) return kvr_bench_search_issue(a.json);
        if (*part && strcmp(part, "paper") && strcmp(part, "scale"))
            return kvr_error(KVR_ERR_USAGE,
                             "bench search: expected 'paper', 'scale', 'table', 'kvrp' or nothing");
        st = strcmp(part, "scale") ? kvr_bench_search(a.json) : KVR_OK;
        return st || !strcmp(part, "paper") ? st : kvr_bench_search_scale(a.json);
    }
    if (strcmp(res.args[0], "sim"))
        return kvr_error(KVR_ERR_USAGE,
                         "bench: unknown benchmark '%s' (sim, search, attention or comm)",
                         res.args[0]);
    if (res.n_args != 1)
        return kvr_error(KVR_ERR_USAGE, "bench sim: unexpected argument '%s'", res.args[1]);
    return bench_sim(a.json);
}
