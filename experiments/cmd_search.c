/* kvr search: fill the lookup table. For every model x machine x p x ctx not yet in the
 * database (or all with --force), run the partition search on the simulator and write the
 * plan rows in batched transactions, so an interrupted search keeps what it finished and a
 * re-run completes only what is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvr_cli.h"
#include "kvr_json.h"
#include "kvr_machine_args.h"
#include "kvr_search.h"
#include "kvr_search_cli.h"
#include "kvr_store.h"
#include "kvr_units.h"
#include "kvr_version.h"

static const char search_help[] =
    "usage: kvr search --db FILE [options]\n"
    "\n"
    "Searches the KV-Runahead partition of every (model, machine, p, ctx) with the simulator\n"
    "and stores it in the lookup table (SQLite table `plan`). Keys already present are skipped.\n"
    "\n"
    "  -d, --db FILE           SQLite database, created when missing   (required)\n"
    "  -m, --model LIST        presets or files, comma-separated       (default llama-7b)\n"
    "  -H, --machine LIST      profiles, comma-separated               (default a100-nvlink)\n"
    "  -g, --gpus LIST         GPU counts, e.g. 2,4,8                  (default: all of the "
    "profile)\n"
    "  -c, --ctx LIST          tokens: 1k-16k+1k (from-to+step), 4k,8k (default 1k-16k+1k)\n"
    "  -M, --method M          hier, exhaustive, nelder-mead, even, balanced (default hier)\n"
    "  -G, --granularity N     chunk granularity in tokens             (default 64)\n"
    "  -s, --scheme S          scheme taking a partition               (default "
    "kvr)\n"
    "  -F, --kv-forward MODE   the chain's hand-off: whole, streamed, direct, or auto (each,\n"
    "                          the fastest stored with its mode)       (default "
    "whole)\n" KVR_MACHINE_ARGS_HELP
    "  -f, --force             search keys already present again and replace them\n"
    "  -j, --json              print JSON instead of a table\n"
    "  -h, --help              this help\n";

static enum kvr_status parse_args(int argc, char **argv, struct kvr_search_args *a)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"model", required_argument, NULL, 'm'},
                                         KVR_MACHINE_ARGS_OPTIONS,
                                         {"gpus", required_argument, NULL, 'g'},
                                         {"ctx", required_argument, NULL, 'c'},
                                         {"method", required_argument, NULL, 'M'},
                                         {"granularity", required_argument, NULL, 'G'},
                                         {"scheme", required_argument, NULL, 's'},
                                         {"kv-forward", required_argument, NULL, 'F'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    kvr_search_args_default(a);
    int c;
    enum kvr_status st = KVR_OK;
    kvr_cli_opt_reset();
    while (!st && (c = kvr_cli_getopt(argc, argv, "d:m:H:g:c:M:G:s:F:fjh", opts)) != -1) {
        switch (c) {
        case '?':
            return KVR_ERR_USAGE;
        case 'h':
            a->help = true;
            return KVR_OK;
        case 'd':
            a->db = optarg;
            break;
        case 'm':
            a->models = optarg;
            break;
        case 'g':
            a->gpus = optarg;
            break;
        case 'c':
            a->ctx = optarg;
            break;
        case 'M':
            a->method = optarg;
            break;
        case 's':
            a->scheme = optarg;
            break;
        case 'F':
            a->kv_forward = optarg;
            break;
        case 'f':
            a->force = true;
            break;
        case 'j':
            a->json = true;
            break;
        case 'G':
            if (kvr_parse_tokens(optarg, KVR_MAX_CTX, &a->granularity) || a->granularity == 0)
                st = kvr_error(KVR_ERR_INPUT, "--granularity: '%s' must be 1..%u tokens", optarg,
                               KVR_MAX_CTX);
            break;
        default:
            kvr_machine_args_take(&a->mach, c, optarg, &st);
        }
    }
    if (!st && optind != argc)
        st = kvr_error(KVR_ERR_USAGE, "search: unexpected argument '%s'", argv[optind]);
    if (!st && !a->db) st = kvr_error(KVR_ERR_USAGE, "search: --db FILE is required");
    return st;
}

static void print_rows(const struct kvr_plan_row *rows, size_t n, size_t skipped, double wall_s,
                       bool json)
{
    if (!json) {
        printf("%-10s %-24s %3s %7s %-8s %-8s %12s %7s  %s\n", "model", "machine", "p", "ctx",
               "method", "forward", "TTFT", "evals", "partition");
        for (size_t i = 0; i < n; i++) {
            char t[32], part[KVR_MAX_GPUS * 21];
            kvr_store_format_tokens(rows[i].tokens, rows[i].p, part, sizeof part);
            printf("%-10s %-24s %3d %7llu %-8s %-8s %12s %7llu  %s\n", rows[i].model,
                   rows[i].machine, rows[i].p, (unsigned long long)rows[i].ctx_tokens,
                   rows[i].method, rows[i].kv_forward,
                   kvr_format_duration(t, sizeof t, rows[i].predicted_ttft_s),
                   (unsigned long long)rows[i].evaluations, part);
        }
        printf("%zu searched, %zu already present, %.2f s\n", n, skipped, wall_s);
        return;
    }
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
    kvr_json_kv_u64(&j, "searches", n);
    kvr_json_kv_u64(&j, "skipped", skipped);
    kvr_json_kv_dbl(&j, "wall_s", wall_s);
    kvr_json_key(&j, "rows");
    kvr_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) kvr_search_json_row(&j, &rows[i]);
    kvr_json_array_end(&j);
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
}

enum kvr_status kvr_cmd_search(int argc, char **argv)
{
    struct kvr_search_args a;
    enum kvr_status st = parse_args(argc, argv, &a);
    if (st || a.help) return st ? st : (fputs(search_help, stdout), KVR_OK);
    struct kvr_search_job job;
    if ((st = kvr_search_job_prepare(&a, &job))) return st;
    struct kvr_store *store = NULL;
    st = kvr_store_open(a.db, KVR_STORE_WRITE, &store);
    if (!st) st = kvr_search_job_skip_present(&job, store, a.force);
    char argv_text[4096];
    kvr_cli_join_argv(argc, argv, argv_text, sizeof argv_text);
    double t0 = kvr_cli_now_s();
    if (!st) st = kvr_search_job_run(&job, store, argv_text, a.force);
    if (!st) print_rows(job.done, job.n_done, job.n_skipped, kvr_cli_now_s() - t0, a.json);
    kvr_search_job_free(&job);
    kvr_store_close(store);
    return st;
}
