/* kvr bench sim: how many KV-Runahead evaluations per second the simulator does on one core
 * (Llama-7B, p = 8, a100-nvlink, 16k context, the balanced partition; no timeline, no
 * allocation inside the loop). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kvr_bench.h"
#include "kvr_cli.h"
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
        kvr_json_init(&j, stdout);
        kvr_json_object_begin(&j);
        kvr_json_kv_str(&j, "bench", "sim");
        kvr_json_kv_str(&j, "case", "kvr llama-7b a100-nvlink p=8 ctx=16k");
        kvr_json_kv_u64(&j, "evals", (uint64_t)n);
        kvr_json_kv_dbl(&j, "wall_s", t1 - t0);
        kvr_json_kv_dbl(&j, "evals_per_s", rate);
        kvr_json_kv_dbl(&j, "us_per_eval", 1e6 / rate);
        kvr_json_object_end(&j);
        kvr_json_finish(&j);
    } else {
        printf("sim: %ld evaluations in %.2f s: %.0f per second (%.2f us each); checksum %.3g\n", n,
               t1 - t0, rate, 1e6 / rate, sink);
    }
    return KVR_OK;
}

enum kvr_status kvr_cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool json = false;
    int c;
    if (argc >= 2 && !strcmp(argv[1], "attention")) return kvr_bench_attention(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "comm")) return kvr_bench_comm(argc - 1, argv + 1);
    kvr_cli_opt_reset();
    while ((c = kvr_cli_getopt(argc, argv, "jh", opts)) != -1) {
        if (c == '?') return KVR_ERR_USAGE;
        if (c == 'h')
            return fputs("usage: kvr bench sim|search [paper|scale|table|kvrp] [--json]\n       "
                         "kvr bench "
                         "attention "
                         "--help\n       kvr bench comm --help\n",
                         stdout),
                   KVR_OK;
        if (c == 'j') json = true;
    }
    if (optind < argc && !strcmp(argv[optind], "search")) {
        const char *part = optind + 2 == argc ? argv[optind + 1] : optind + 1 == argc ? "" : NULL;
        if (part && !strcmp(part, "kvrp")) return kvr_bench_search_scale_loo(json);
        if (part && !strcmp(part, "table")) return kvr_bench_search_issue(json);
        if (!part || (*part && strcmp(part, "paper") && strcmp(part, "scale")))
            return kvr_error(KVR_ERR_USAGE,
                             "bench search: expected 'paper', 'scale', 'table', 'kvrp' or nothing");
        enum kvr_status st = strcmp(part, "scale") ? kvr_bench_search(json) : KVR_OK;
        return st || !strcmp(part, "paper") ? st : kvr_bench_search_scale(json);
    }
    if (optind + 1 != argc || strcmp(argv[optind], "sim"))
        return kvr_error(KVR_ERR_USAGE, "bench: expected 'sim', 'search' or 'attention'");
    return bench_sim(json);
}
