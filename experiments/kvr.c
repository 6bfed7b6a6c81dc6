/* kvr: the one program of kvrun. Subcommands live in cmd_*.c; this file dispatches, prints
 * the version, and turns a status into the exit code (0 ok, 1 runtime failure, 2 usage or
 * input error, 3 a plan that does not fit in GPU memory). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_config.h"
#include "kvr_json.h"
#include "kvr_log.h"
#include "kvr_opt.h"
#include "kvr_version.h"

static void print_version(void)
{
    printf("kvr %s (git %s)\nfeatures: cuda=%s nccl=%s mpi=%s\n", KVR_PROJECT_VERSION,
           KVR_GIT_VERSION, KVR_HAVE_CUDA ? "yes" : "no", KVR_HAVE_NCCL ? "yes" : "no",
           KVR_HAVE_MPI ? "yes" : "no");
}

struct version_args {
    bool json, quiet, help;
};
static const struct kvr_opt version_opts[] = {KVR_OPT_COMMON_END(struct version_args)};
static const struct kvr_opt_spec version_spec = {
    .usage = "usage: kvr version [--json]\n\nThe version (from git) and the features built. "
             "--json keys: version, git, features (cuda, nccl, mpi).\n",
    .opts = version_opts};

static enum kvr_status cmd_version(int argc, char **argv)
{
    struct version_args a = {0};
    enum kvr_status st;
    if (kvr_opt_start(&version_spec, argc, argv, &a, NULL, &st)) return st;
    if (!a.json) return print_version(), KVR_OK;
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
    kvr_json_kv_str(&j, "version", KVR_PROJECT_VERSION);
    kvr_json_kv_str(&j, "git", KVR_GIT_VERSION);
    kvr_json_key(&j, "features");
    kvr_json_object_begin(&j);
    kvr_json_kv_bool(&j, "cuda", KVR_HAVE_CUDA);
    kvr_json_kv_bool(&j, "nccl", KVR_HAVE_NCCL);
    kvr_json_kv_bool(&j, "mpi", KVR_HAVE_MPI);
    kvr_json_object_end(&j);
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
    return KVR_OK;
}

static const struct kvr_command commands[] = {
    {"model", "list model presets; show a model's shape, parameters, bytes and FLOPs",
     kvr_cmd_model, true},
    {"sim", "predict the TTFT of one plan with the analytical simulator", kvr_cmd_sim, false},
    {"search", "search KV-Runahead partitions and store them in the lookup table (SQLite)",
     kvr_cmd_search, false},
    {"lookup", "the partition for any context from the lookup table (exact or interpolated)",
     kvr_cmd_lookup, false},
    {"export", "write the lookup table as JSON, CSV or a C header for deployments", kvr_cmd_export,
     false},
    {"sweep", "run sweep files (the experiments behind the figures) into the database",
     kvr_cmd_sweep, false},
    {"plot", "export each figure's data from the database and render it with gnuplot", kvr_cmd_plot,
     false},
    {"exec", "run a real prefill on a backend (cuda or ref) and time it", kvr_cmd_exec, false},
    {"calibrate", "fit the simulator's GPU parameters to the executor's measured operations",
     kvr_cmd_calibrate, false},
    {"validate", "the simulator's TTFT predictions against stored executor measurements",
     kvr_cmd_validate, false},
    {"paper", "the KV-Runahead paper's claims against the simulator (the paper sweep's points)",
     kvr_cmd_paper, false},
    {"bench",
     "benchmarks: `kvr bench sim`, `kvr bench search`, `kvr bench attention`, `kvr bench comm`",
     kvr_cmd_bench, true},
    {"version", "print the version and the features built", cmd_version, false},
    {NULL, NULL, NULL, false},
};

/* Every byte of standard output must have reached it: a full disk or a closed pipe at any
 * point (ferror stays set after a failed flush) is a failure, never exit 0, nor 3 (a plan that
 * does not fit: its result is printed, then 3; a lost result is a runtime failure). */
static int finish_stdout(enum kvr_status st)
{
    errno = 0;
    bool bad = fflush(stdout) != 0 || ferror(stdout);
    int e = errno;
    if (fclose(stdout) != 0 && !bad) bad = true, e = errno;
    if (bad && (!st || st == KVR_ERR_NOFIT)) {
        fprintf(stderr, "kvr: error writing standard output: %s\n", strerror(e ? e : EIO));
        return 1;
    }
    return kvr_status_exit_code(st);
}

/* The environment's knobs are checked as options are: a value that means nothing is refused. */
static enum kvr_status check_env(void)
{
    const char *lv = getenv("KVR_LOG");
    if (lv && *lv && kvr_log_level_from_name(lv) < 0)
        return kvr_error(KVR_ERR_USAGE, "KVR_LOG=%s (environment): not error, warn, info or debug",
                         lv);
    return KVR_OK;
}

int main(int argc, char **argv)
{
    enum kvr_status st = check_env();
    if (st) {
        fprintf(stderr, "kvr: %s: %s\n", kvr_status_name(st), kvr_error_message());
        return kvr_status_exit_code(st);
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        static char name[] = "version"; /* kvr --version [OPTIONS] = kvr version [OPTIONS] */
        argv[1] = name;
        st = cmd_version(argc - 1, argv + 1);
        if (st) fprintf(stderr, "kvr: %s: %s\n", kvr_status_name(st), kvr_error_message());
        return finish_stdout(st);
    }
    if (argc >= 3 && !strcmp(argv[1], "help") && !strcmp(argv[2], "schemes"))
        st = kvr_cmd_help_schemes(argc - 2, argv + 2); /* kvr help schemes: the scheme table */
    else
        st = kvr_cli_dispatch("kvr", commands, argc, argv);
    if (st) fprintf(stderr, "kvr: %s: %s\n", kvr_status_name(st), kvr_error_message());
    if (st == KVR_ERR_USAGE) fprintf(stderr, "Try 'kvr help' or 'kvr <command> --help'.\n");
    return finish_stdout(st);
}
