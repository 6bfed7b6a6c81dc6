/* Options described once: each subcommand has one table (long name, short name, argument,
 * default, unit, help line) from which kvr_opt_parse fills the command's struct and
 * kvr_opt_help prints the help, so a default shown is the default used. Short names have one
 * meaning across the program (see kvr_opt.c). Values are stored as text (the command converts
 * and checks them, naming the option); flags as bool; repeatable options append. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvr_status.h"

/* What an option with an argument stores; one without (arg NULL) is a flag: bool at offset. */
enum kvr_opt_kind {
    KVR_OPT_TEXT, /* const char * at offset */
    KVR_OPT_MULTI /* const char *[max] at offset, int count at count_offset; repeatable */
};

/* What an option's value names when it names a file. kvr_opt_start checks these before the
 * command's own check: each one given is a usable path (kvr_path_check; not the NAME ones), and
 * no OUT one names the file of another (kvr_out_check_not_input), in table order. */
enum kvr_opt_file {
    KVR_OPT_NOT_FILE,
    KVR_OPT_FILE_IN,  /* read, or a database updated in place: no output may replace it */
    KVR_OPT_FILE_OUT, /* written by the command */
    KVR_OPT_FILE_NAME /* a preset's name or a file read (--model): no output may replace it */
};

struct kvr_opt {
    const char *name; /* long name, without "--" */
    char short_name;  /* 0: long only */
    const char *arg;  /* the argument's name in the help ("FILE"); NULL: a flag */
    const char *def;  /* the default value stored before parsing (NULL: none) */
    const char *unit; /* unit of the value, shown after the default ("tokens"), or NULL */
    const char *help; /* one line; '\n' starts a continuation line */
    enum kvr_opt_kind kind;
    size_t offset, count_offset;
    int max;
    const char *def_help; /* the default in words when it is not a value ("all of the profile") */
    enum kvr_opt_file file;
    /* KVR_OPT_FILE_OUT: the output may be standard output ("-", /dev/stdout), the command then
     * keeping its own report off it; without, one naming standard output is refused (it would
     * be mixed with the report, or with another output) */
    bool to_stdout;
};

/* One entry: the long name, the short one (0: none), the argument's name (NULL: a flag's), the
 * field's offset, then the help line and any other field by name (.def, .unit, .kind, ...). */
#define KVR_OPT(name_, short_, arg_, offset_, ...)                                                 \
    {                                                                                              \
        .name = name_, .short_name = short_, .arg = arg_, .offset = offset_, .help = __VA_ARGS__   \
    }

#define KVR_OPT_END                                                                                \
    {                                                                                              \
        0                                                                                          \
    }

struct kvr_opt_result;

/* A subcommand's table and its help text around it. */
struct kvr_opt_spec {
    const char *usage;  /* "usage: kvr sim [options]\n\nPredicts ...\n" */
    const char *footer; /* printed after the options, or NULL */
    const struct kvr_opt *opts;
    int min_args, max_args; /* positional arguments allowed (max -1: any) */
    /* Converts and checks the values once parsed (not after --help), or NULL; args is the
     * command's struct. */
    enum kvr_status (*check)(void *args, const struct kvr_opt_result *res);
};

/* What a parse saw: the positional arguments and which options were given. */
struct kvr_opt_result {
    const struct kvr_opt_spec *spec; /* the table parsed */
    char **args;
    int n_args;
    uint64_t given; /* bit i: opts[i] appeared on the command line */
    bool help;      /* --help: print kvr_opt_help and succeed */
};

/* Stores the defaults into the struct at base, then parses argv (argv[0] is the command's
 * name). Unknown options, missing values and wrong argument counts are KVR_ERR_USAGE. */
enum kvr_status kvr_opt_parse(const struct kvr_opt_spec *spec, int argc, char **argv, void *base,
                              struct kvr_opt_result *res);
/* The start of every subcommand: kvr_opt_parse, then on --help the help on stdout, else the
 * files the options name (kvr_opt.file) and spec->check. True when the command is done: *st is its
 * status (KVR_OK after the help). res may be NULL when the command needs nothing more from the
 * parse. */
bool kvr_opt_start(const struct kvr_opt_spec *spec, int argc, char **argv, void *args,
                   struct kvr_opt_result *res, enum kvr_status *st);
/* Whether the option with that long name was given. */
bool kvr_opt_given(const struct kvr_opt_result *res, const char *name);
/* KVR_ERR_USAGE naming the first of the listed options (NULL-terminated) that was given, with
 * why (e.g. "applies under mpirun only"): the house's "used or refused". */
enum kvr_status kvr_opt_refuse(const struct kvr_opt_result *res, const char *const *names,
                               const char *why);
void kvr_opt_help(const struct kvr_opt_spec *spec, FILE *out);

/* The end of every table: the shared --json, --quiet and --help entries (for a struct with
 * bool json, quiet, help), then KVR_OPT_END. */
#define KVR_OPT_COMMON_END(type)                                                                   \
    KVR_OPT("json", 'j', NULL, offsetof(type, json), "print JSON instead of a table"),             \
        KVR_OPT("quiet", 'q', NULL, offsetof(type, quiet), "no progress bars or notes on stderr"), \
        KVR_OPT("help", 'h', NULL, offsetof(type, help), "this help"), KVR_OPT_END

/* Set by --quiet (any command): progress bars and notes stay off. */
extern bool kvr_opt_quiet;
