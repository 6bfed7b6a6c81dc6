/* kvr: the one program of kvrun. Subcommands live in cmd_*.c; this file dispatches, prints
 * the version, and turns a status into the exit code (0 ok, 1 runtime failure, 2 usage or
 * input error, 3 a plan that does not fit in GPU memory). */
#include <stdio.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_config.h"
#include "kvr_version.h"

static void print_version(void)
{
    printf("kvr %s (git %s)\nfeatures: cuda=%s nccl=%s mpi=%s\n", KVR_PROJECT_VERSION,
           KVR_GIT_VERSION, KVR_HAVE_CUDA ? "yes" : "no", KVR_HAVE_NCCL ? "yes" : "no",
           KVR_HAVE_MPI ? "yes" : "no");
}

static enum kvr_status cmd_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    print_version();
    return KVR_OK;
}

static const struct kvr_command commands[] = {
    {"model", "list model presets; show a model's shape, parameters, bytes and FLOPs",
     kvr_cmd_model},
    {"sim", "predict the TTFT of one plan with the analytical simulator", kvr_cmd_sim},
    {"search", "search KV-Runahead partitions and store them in the lookup table (SQLite)",
     kvr_cmd_search},
    {"lookup", "the partition for any context from the lookup table (exact or interpolated)",
     kvr_cmd_lookup},
    {"export", "write the lookup table as JSON, CSV or a C header for deployments", kvr_cmd_export},
    {"sweep", "run sweep files (the experiments behind the figures) into the database",
     kvr_cmd_sweep},
    {"plot", "export each figure's data from the database and render it with gnuplot",
     kvr_cmd_plot},
    {"exec", "run a real prefill on a backend (cuda or ref) and time it", kvr_cmd_exec},
    {"calibrate", "fit the simulator's GPU parameters to the executor's measured operations",
     kvr_cmd_calibrate},
    {"validate", "the simulator's TTFT predictions against stored executor measurements",
     kvr_cmd_validate},
    {"bench",
     "benchmarks: `kvr bench sim`, `kvr bench search`, `kvr bench attention`, `kvr bench comm`",
     kvr_cmd_bench},
    {"version", "print the version and the features built", cmd_version},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        print_version();
        return 0;
    }
    enum kvr_status st = kvr_cli_dispatch("kvr", commands, argc, argv);
    if (st) fprintf(stderr, "kvr: %s: %s\n", kvr_status_name(st), kvr_error_message());
    if (st == KVR_ERR_USAGE) fprintf(stderr, "Try 'kvr help' or 'kvr <command> --help'.\n");
    if (fflush(stdout) != 0 && !st) {
        fprintf(stderr, "kvr: error writing output\n");
        return 1;
    }
    return kvr_status_exit_code(st);
}
