#include "kvr_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvr_model.h"
#include "kvr_units.h"

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
    fprintf(out, "Exit codes: 0 ok, 1 runtime failure, 2 usage or input error, 3 a plan that does "
                 "not fit in GPU memory.\n");
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

#define MAX_LIST 100000

static enum kvr_status push(uint64_t **out, size_t *n, size_t *cap, uint64_t v, const char *opt)
{
    if (*n == MAX_LIST) return kvr_error(KVR_ERR_INPUT, "%s: more than %d values", opt, MAX_LIST);
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        uint64_t *grown = realloc(*out, nc * sizeof *grown);
        if (!grown) return kvr_error(KVR_ERR_NOMEM, "%s: out of memory", opt);
        *out = grown, *cap = nc;
    }
    (*out)[(*n)++] = v;
    return KVR_OK;
}

/* One item: "N" or "A-B[+S]". */
static enum kvr_status parse_range(const char *opt, char *item, uint64_t **out, size_t *n,
                                   size_t *cap)
{
    char *dash = strchr(item, '-'), *plus = dash ? strchr(dash, '+') : NULL;
    uint64_t a, b = 0, step = 1024;
    if (dash) *dash = 0;
    if (plus) *plus = 0;
    if (kvr_parse_tokens(item, KVR_MAX_CTX, &a) ||
        (dash && kvr_parse_tokens(dash + 1, KVR_MAX_CTX, &b)) ||
        (plus && kvr_parse_tokens(plus + 1, KVR_MAX_CTX, &step)))
        return kvr_error_prefix(KVR_ERR_INPUT, "%s: ", opt);
    if (!dash) b = a;
    if (a == 0 || step == 0)
        return kvr_error(KVR_ERR_INPUT, "%s: token counts and steps must be positive", opt);
    if (b < a)
        return kvr_error(KVR_ERR_INPUT, "%s: empty range %llu-%llu", opt, (unsigned long long)a,
                         (unsigned long long)b);
    enum kvr_status st = KVR_OK;
    for (uint64_t v = a; v <= b && !st; v += step) st = push(out, n, cap, v, opt);
    return st;
}

enum kvr_status kvr_cli_parse_ctx_list(const char *opt, const char *text, uint64_t **out, size_t *n)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", text) >= (int)sizeof buf || !*text)
        return kvr_error(KVR_ERR_INPUT, "%s: '%s' is empty or too long", opt, text);
    *out = NULL, *n = 0;
    size_t cap = 0;
    enum kvr_status st = KVR_OK;
    for (char *save = NULL, *it = strtok_r(buf, ",", &save); it && !st;
         it = strtok_r(NULL, ",", &save))
        st = parse_range(opt, it, out, n, &cap);
    if (!st && *n == 0) st = kvr_error(KVR_ERR_INPUT, "%s: '%s' lists nothing", opt, text);
    if (st) free(*out), *out = NULL, *n = 0;
    return st;
}

enum kvr_status kvr_cli_parse_int_list(const char *opt, const char *text, int lo, int hi, int *out,
                                       int cap, int *n)
{
    char buf[1024];
    const char *parts[256];
    snprintf(buf, sizeof buf, "%s", text);
    int k = kvr_cli_split(buf, parts, cap < 256 ? cap : 256);
    if (k <= 0)
        return kvr_error(KVR_ERR_INPUT, "%s: '%s' is not a list of 1..%d values", opt, text, cap);
    for (int i = 0; i < k; i++) {
        uint64_t v;
        if (kvr_parse_u64(parts[i], (uint64_t)hi, &v) || v < (uint64_t)lo)
            return kvr_error(KVR_ERR_INPUT, "%s: '%s' is not an integer in %d..%d", opt, parts[i],
                             lo, hi);
        out[i] = (int)v;
    }
    *n = k;
    return KVR_OK;
}

int kvr_cli_split(char *buf, const char **parts, int cap)
{
    int n = 0;
    for (char *s = buf;; s++) {
        if (n == cap) return -1;
        parts[n++] = s;
        s = strchr(s, ',');
        if (!s) break;
        *s = 0;
    }
    for (int i = 0; i < n; i++)
        if (!*parts[i]) return -1; /* "a,,b" */
    return n;
}

void kvr_cli_join_argv(int argc, char **argv, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "kvr");
    for (int i = 0; i < argc && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, " %s", argv[i]);
}

double kvr_cli_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void kvr_cli_progress(const char *label, size_t done, size_t total, double elapsed_s)
{
    if (!isatty(STDERR_FILENO) || total == 0) return;
    int width = 30, fill = (int)((double)width * (double)done / (double)total);
    double eta = done ? elapsed_s * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu ETA %.0fs ", label, fill,
            "==============================", width - fill, "", done, total, eta);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}
