/* Shared pieces of the kvr program's subcommands. */
#pragma once

#include <getopt.h>
#include <stdbool.h>

#include "kvr_status.h"

/* A subcommand: name, one-line summary, and its entry point (argv[0] is its own name). */
struct kvr_command {
    const char *name;
    const char *summary;
    enum kvr_status (*run)(int argc, char **argv);
};

/* Runs getopt_long over argv with error reporting of the house: unknown options and missing
 * arguments become KVR_ERR_USAGE with a message naming the option. Returns the option code,
 * -1 at the end, or '?' after recording the error. Call kvr_cli_opt_reset() first. */
void kvr_cli_opt_reset(void);
int kvr_cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

/* Dispatches argv[1] among cmds (NULL-terminated by name); "help" and --help print usage. */
enum kvr_status kvr_cli_dispatch(const char *prog, const struct kvr_command *cmds, int argc,
                                 char **argv);

/* The command groups. */
enum kvr_status kvr_cmd_model(int argc, char **argv);
enum kvr_status kvr_cmd_sim(int argc, char **argv);
enum kvr_status kvr_cmd_bench(int argc, char **argv);
