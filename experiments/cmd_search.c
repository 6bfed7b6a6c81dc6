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
#include "kvr_opt.h"
#include "kvr_search.h"
#include "kvr_search_cli.h"
#include "kvr_store.h"
#include "kvr_units.h"
#include "kvr_version.h"

static const char usage[] =
    "usage: kvr search --db FILE [options]\n\nSearches the KV-Runahead partition of "
    "every (model, machine, p, ctx) with the simulator\nand stores it in the lookup "
    "table (SQLite table `plan`). Keys already present are skipped.\nhier also searches "
    "the chain's mapping to GPUs on multi-node profiles and the best\nplan on fewer GPUs "
    "(stored with the row when within 0.5%). A plan that does not fit\nin GPU memory is "
    "never stored: it is named on stderr and the exit code is 3. --quiet prints only the\n"
    "summary line, not every row.\n";

static enum kvr_status check_args(void *args, const struct kvr_opt_result *res)
{
    struct kvr_search_args *a = args;
    if (!a->db) return kvr_error(KVR_ERR_USAGE, "search: --db FILE is required");
    enum kvr_status st = kvr_machine_args_refuse_noiseless(&a->mach, res, KVR_NOISE_ONLY_IN_KEY);
    return st ? st : kvr_search_args_finish(a);
}

#define OFF(f) offsetof(struct kvr_search_args, f)
static const struct kvr_opt search_opts[] = {
    KVR_OPT("db", 'd', "FILE", OFF(db), "SQLite database, created when missing (required)"),
    KVR_OPT("model", 'm', "LIST", OFF(models), "presets or files, comma-separated",
            .def = "llama-7b"),
    KVR_MACHINE_OPTS(struct kvr_search_args, mach, "a100-nvlink", "16"),
    KVR_OPT("gpus", 'g', "LIST", OFF(gpus), "GPU counts, e.g. 2,4,8",
            .def_help = "all of the profile"),
    KVR_OPT("ctx", 'c', "LIST", OFF(ctx), "from-to+step, or a list: 4k,8k", .def = "1k-16k+1k",
            .unit = "tokens"),
    KVR_OPT("method", 'M', "M", OFF(method),
            "hier, exhaustive, nelder-mead, even, balanced, descent,\nmultistart (oracles)",
            .def = "hier"),
    KVR_OPT("granularity", 'G', "N", OFF(granularity_arg),
            "chunk granularity, e.g. 16 (vLLM's KV block); every stored\nboundary is on it",
            .def = "64", .unit = "tokens"),
    KVR_OPT("scheme", 's', "S", OFF(scheme),
            "@SEARCHED_SCHEMES@ (the schemes the search optimises)", .def = "kvr"),
    KVR_OPT("kv-forward", 'F', "MODE", OFF(kv_forward),
            "the chain's hand-off: whole, streamed, direct, or auto (each; the\nfastest stored "
            "with its mode)",
            .def = "whole"),
    KVR_OPT("tp", 0, "LIST", OFF(tp),
            "hybrid layouts: a list of TP degrees t (p/t stages of t GPUs; a row\nper t, the "
            "best of the block and strided mappings), or auto (every t\nthat divides p and the "
            "model's heads; those that do not fit are said and\nskipped)",
            .def_help = "the plain scheme (t = 1)"),
    KVR_OPT("sp", 0, NULL, OFF(sp), "with --tp: Megatron's sequence parallelism inside the stages"),
    KVR_OPT("force", 0, NULL, OFF(force), "search keys already present again and replace them"),
    KVR_OPT_COMMON_END(struct kvr_search_args)};
#undef OFF

static const struct kvr_opt_spec search_spec = {
    .usage = usage, .opts = search_opts, .check = check_args};

static void print_rows(const struct kvr_plan_row *rows, size_t n, size_t skipped, size_t unfit,
                       double wall_s, bool json)
{
    size_t n_print = kvr_opt_quiet ? 0 : n; /* --quiet: the summary line alone */
    if (!json) {
        if (n_print)
            printf("%-10s %-24s %3s %3s %7s %-8s %12s %7s %5s  %s\n", "model", "machine", "p", "tp",
                   "ctx", "method", "TTFT", "evals", "fewer", "partition");
        for (size_t i = 0; i < n_print; i++) {
            char t[32], part[KVR_MAX_GPUS * 21];
            kvr_store_format_tokens(rows[i].tokens, kvr_plan_row_chunks(&rows[i]), part,
                                    sizeof part);
            printf("%-10s %-24s %3d %3d %7llu %-8s %12s %7llu %5d  %s\n", rows[i].model,
                   rows[i].machine, rows[i].p, rows[i].tp > 1 ? rows[i].tp : 1,
                   (unsigned long long)rows[i].ctx_tokens, rows[i].method,
                   kvr_format_duration(t, sizeof t, rows[i].predicted_ttft_s),
                   (unsigned long long)rows[i].evaluations, rows[i].fewer_p, part);
        }
        printf("%zu searched, %zu already present, %.2f s\n", n, skipped, wall_s);
        if (unfit) printf("%zu layouts do not fit (not stored)\n", unfit);
        return;
    }
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_kv_u64(&j, "searches", n);
    kvr_json_kv_u64(&j, "skipped", skipped);
    kvr_json_kv_u64(&j, "unfit_layouts", unfit); /* --tp auto: the t that do not fit */
    kvr_json_kv_dbl(&j, "wall_s", wall_s);
    kvr_json_key(&j, "rows");
    kvr_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) kvr_search_json_row(&j, &rows[i]);
    kvr_json_array_end(&j);
    kvr_json_end(&j);
}

enum kvr_status kvr_cmd_search(int argc, char **argv)
{
    struct kvr_search_args a = {0};
    kvr_search_args_default(&a);
    enum kvr_status st;
    if (kvr_opt_start(&search_spec, argc, argv, &a, NULL, &st)) return st;
    struct kvr_search_job job;
    if ((st = kvr_search_job_prepare(&a, &job))) return st;
    struct kvr_store *store = NULL;
    st = kvr_store_open(a.db, KVR_STORE_WRITE, &store);
    if (!st) st = kvr_search_job_skip_present(&job, store, a.force);
    char argv_text[4096];
    kvr_cli_join_argv(argc, argv, argv_text, sizeof argv_text);
    double t0 = kvr_cli_now_s();
    if (!st) st = kvr_search_job_run(&job, store, argv_text, a.force);
    /* plans that do not fit are named on stderr and not stored; the others are printed */
    if (!st || st == KVR_ERR_NOFIT)
        print_rows(job.done, job.n_done, job.n_skipped, job.n_tp_nofit, kvr_cli_now_s() - t0,
                   a.json);
    kvr_search_job_free(&job);
    kvr_store_close(store);
    return st;
}
