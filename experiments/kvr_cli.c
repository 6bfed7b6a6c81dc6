#include "kvr_cli.h"

#include <stdio.h>
#include <string.h>

void kvr_cli_opt_reset(void)
{
    optind = 0; /* glibc: 0 also resets getopt's internal state between subcommands */
    opterr = 0;
}

int kvr_cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    char spec[64];
    snprintf(spec, sizeof spec, ":%s", shortopts); /* leading ':' reports missing arguments */
    int c = getopt_long(argc, argv, spec, longopts, NULL);
    const char *bad = argv[optind - 1];
    if (c == '?') {
        if (optopt)
            kvr_error(KVR_ERR_USAGE, "%s: unknown option '-%c'", argv[0], optopt);
        else
            kvr_error(KVR_ERR_USAGE, "%s: unknown option '%s'", argv[0], bad);
        return '?';
    }
    if (c == ':') {
        kvr_error(KVR_ERR_USAGE, "%s: option '%s' needs a value", argv[0], bad);
        return '?';
    }
    return c;
}

static void print_commands(FILE *out, const char *prog, const struct kvr_command *cmds)
{
    fprintf(out, "usage: %s <command> [options]\n\ncommands:\n", prog);
    for (const struct kvr_command *c = cmds; c->name; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out, "\nRun '%s <command> --help' for a command's options.\n", prog);
}

enum kvr_status kvr_cli_dispatch(const char *prog, const struct kvr_command *cmds, int argc,
                                 char **argv)
{
    if (argc < 2) {
        print_commands(stderr, prog, cmds);
        return kvr_error(KVR_ERR_USAGE, "%s: missing command", prog);
    }
    const char *name = argv[1];
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        print_commands(stdout, prog, cmds);
        return KVR_OK;
    }
    for (const struct kvr_command *c = cmds; c->name; c++)
        if (!strcmp(c->name, name)) return c->run(argc - 1, argv + 1);
    return kvr_error(KVR_ERR_USAGE, "%s: unknown command '%s' (see '%s help')", prog, name, prog);
}
