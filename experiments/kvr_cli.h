/* Shared pieces of the kvr program's subcommands. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvr_status.h"

/* A subcommand's entry point (argv[0] is its own name). */
typedef enum kvr_status kvr_cmd_fn(int argc, char **argv);

/* A subcommand: name, one-line summary, and its entry point. */
struct kvr_command {
    const char *name;
    const char *summary;
    kvr_cmd_fn *run;
    bool subcommands; /* "kvr help CMD SUB" is "kvr CMD SUB --help" (model, bench) */
};

/* Options: kvr_opt.h (one table per subcommand, one parser). */

/* Dispatches argv[1] among cmds (NULL-terminated by name); "help" and --help print usage,
 * "help CMD" the command's own help ("help CMD SUB" a subcommand's, where CMD has them). */
enum kvr_status kvr_cli_dispatch(const char *prog, const struct kvr_command *cmds, int argc,
                                 char **argv);

/* Prints a help text with the scheme table's lists in place of its tokens, wrapped at their
 * column: @SCHEMES@ (every scheme), @EXEC_SCHEMES@ (those the executor runs), @SIM_SCHEMES@
 * (kvr sim's names), @SERIES@ (a sweep's), @PART_SCHEMES@ (those that take any partition),
 * @SEARCHED_SCHEMES@ (those the partition search optimises). */
void kvr_cli_print_help(FILE *out, const char *text);

/* The command groups (one cmd_*.c each), and `kvr help schemes`. */
kvr_cmd_fn kvr_cmd_model, kvr_cmd_sim, kvr_cmd_bench, kvr_cmd_search, kvr_cmd_lookup,
    kvr_cmd_export, kvr_cmd_sweep, kvr_cmd_plot, kvr_cmd_exec, kvr_cmd_calibrate, kvr_cmd_validate,
    kvr_cmd_paper, kvr_cmd_help_schemes;

/* A list of token counts: "1k,2k,4k", ranges "1k-16k+1k" (from-to+step, step default 1k), or
 * both mixed, no value twice. At most max_n values; message names the option. Free *out with
 * free(). */
enum kvr_status kvr_cli_parse_ctx_list(const char *opt, const char *text, uint64_t **out,
                                       size_t *n);
/* A comma list of integers in [lo, hi] ("2,4,8"), none twice. */
enum kvr_status kvr_cli_parse_int_list(const char *opt, const char *text, int lo, int hi, int *out,
                                       int cap, int *n);
/* KVR_ERR_INPUT naming the option and the first item of parts[n] given twice: a list never
 * holds a value twice (every list parser here refuses it too). */
enum kvr_status kvr_cli_check_unique(const char *opt, const char *const *parts, int n);
/* Splits a comma list into at most cap parts in buf (modified copy). */
int kvr_cli_split(char *buf, const char **parts, int cap);
/* kvr_cli_split of a copy of text in buf[cap]: -1 also when text does not fit (never cut). */
int kvr_cli_split_copy(const char *text, char *buf, size_t cap, const char **parts, int max);

/* text as one of the names from_name knows (its value in *v), else KVR_ERR_USAGE naming the
 * option and the names it takes ("--comm: 'x' is not mpi or nccl"). */
enum kvr_status kvr_cli_parse_name(const char *opt, const char *text,
                                   int (*from_name)(const char *), const char *names, int *v);

/* "kvr search --model ..." as one string for provenance. */
void kvr_cli_join_argv(int argc, char **argv, char *buf, size_t cap);
/* A progress bar on stderr when it is a terminal and not --quiet, redrawn at most ten times a
 * second: "label [=====>    ] 42/192 ETA 3s". */
void kvr_cli_progress(const char *label, size_t done, size_t total, double elapsed_s);
/* Ends a bar left short of its total (an interruption, --stop-after, an error): its line ends
 * before anything else is printed. */
void kvr_cli_progress_end(void);
double kvr_cli_now_s(void); /* monotonic wall seconds */
/* CPU seconds of this process: the dev machine's cores are shared, so wall time overstates a
 * search's cost; the benchmark tables show both. */
double kvr_cli_cpu_s(void);
