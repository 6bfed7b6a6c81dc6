#include "kvr_cli.h"

#include "kvr_scheme.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvr_model.h"
#include "kvr_opt.h"
#include "kvr_plot.h"
#include "kvr_units.h"

static void print_commands(FILE *out, const char *prog, const struct kvr_command *cmds)
{
    fprintf(out, "usage: %s <command> [options]\n\ncommands:\n", prog);
    for (const struct kvr_command *c = cmds; c->name; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out,
            "\nRun '%s <command> --help' for a command's options, '%s help schemes' for the "
            "schemes.\n",
            prog, prog);
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
        for (const struct kvr_command *c = cmds; argc >= 3 && argc <= 4 && c->name; c++)
            if (!strcmp(c->name, argv[2]) && (argc == 3 || c->subcommands)) {
                /* kvr help CMD [SUB] = kvr CMD [SUB] --help */
                char *sub[] = {argv[2], argv[3], "--help", NULL};
                if (argc == 3) sub[1] = "--help", sub[2] = NULL;
                return c->run(argc - 1, sub);
            }
        if (argc > 3) return kvr_error(KVR_ERR_USAGE, "%s help: one topic at most", prog);
        if (argc == 3)
            return kvr_error(KVR_ERR_USAGE, "%s help: unknown command '%s'", prog, argv[2]);
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
    char *dash = *item ? strchr(item + 1, '-') : NULL; /* "-1" is a count, a bad one */
    char *plus = dash ? strchr(dash, '+') : NULL;
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
    /* With its step given, B bounds the range (1000-9000+7 ends at 8994); without one, an end
     * the default step misses would be dropped unseen ("1-2" ran 1 alone). */
    if (!plus && dash && (b - a) % step)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: range %llu-%llu in the default steps of %llu does not reach %llu "
                         "(its last value would be %llu); give an end the steps reach, or the "
                         "step (A-B+S)",
                         opt, (unsigned long long)a, (unsigned long long)b,
                         (unsigned long long)step, (unsigned long long)b,
                         (unsigned long long)(b - (b - a) % step));
    enum kvr_status st = KVR_OK;
    for (uint64_t v = a; v <= b && !st; v += step) st = push(out, n, cap, v, opt);
    return st;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* A value listed twice ("1k,1k", "1k-4k+1k,2k") would be run, searched or printed twice. */
static enum kvr_status ctx_unique(const char *opt, const char *text, const uint64_t *v, size_t n)
{
    uint64_t *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return kvr_error(KVR_ERR_NOMEM, "%s: out of memory", opt);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_u64);
    size_t i = 1;
    while (i < n && s[i] != s[i - 1]) i++;
    uint64_t twice = i < n ? s[i] : 0;
    free(s);
    if (i < n)
        return kvr_error(KVR_ERR_INPUT, "%s: %llu tokens listed twice in '%s'", opt,
                         (unsigned long long)twice, text);
    return KVR_OK;
}

enum kvr_status kvr_cli_check_unique(const char *opt, const char *const *parts, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(parts[i], parts[j]))
                return kvr_error(KVR_ERR_INPUT, "%s: '%s' is listed twice", opt, parts[i]);
    return KVR_OK;
}

enum kvr_status kvr_cli_parse_ctx_list(const char *opt, const char *text, uint64_t **out, size_t *n)
{
    *out = NULL, *n = 0;
    if (!*text) return kvr_error(KVR_ERR_INPUT, "%s: the list is empty", opt);
    char *buf = strdup(text);
    if (!buf) return kvr_error(KVR_ERR_NOMEM, "%s: out of memory", opt);
    size_t cap = 0;
    enum kvr_status st = KVR_OK;
    for (char *it = buf, *next; it && !st; it = next) {
        if ((next = strchr(it, ','))) *next++ = 0;
        st = *it ? parse_range(opt, it, out, n, &cap)
                 : kvr_error(KVR_ERR_INPUT, "%s: empty item in '%s'", opt, text);
    }
    free(buf);
    if (!st && *n == 0) st = kvr_error(KVR_ERR_INPUT, "%s: '%s' lists nothing", opt, text);
    if (!st) st = ctx_unique(opt, text, *out, *n);
    if (st) free(*out), *out = NULL, *n = 0;
    return st;
}

enum kvr_status kvr_cli_parse_int_list(const char *opt, const char *text, int lo, int hi, int *out,
                                       int cap, int *n)
{
    char buf[1024];
    const char *parts[256];
    int k = kvr_cli_split_copy(text, buf, sizeof buf, parts, cap < 256 ? cap : 256);
    if (k <= 0)
        return kvr_error(KVR_ERR_INPUT, "%s: '%s' is not a list of 1..%d values", opt, text, cap);
    for (int i = 0; i < k; i++) {
        uint64_t v;
        if (kvr_parse_u64(parts[i], (uint64_t)hi, &v) || v < (uint64_t)lo)
            return kvr_error(KVR_ERR_INPUT, "%s: '%s' is not an integer in %d..%d", opt, parts[i],
                             lo, hi);
        out[i] = (int)v;
        for (int j = 0; j < i; j++)
            if (out[j] == out[i])
                return kvr_error(KVR_ERR_INPUT, "%s: %d is listed twice in '%s'", opt, out[i],
                                 text);
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

int kvr_cli_split_copy(const char *text, char *buf, size_t cap, const char **parts, int max)
{
    if ((size_t)snprintf(buf, cap, "%s", text) >= cap) return -1;
    return kvr_cli_split(buf, parts, max);
}

enum kvr_status kvr_cli_parse_name(const char *opt, const char *text,
                                   int (*from_name)(const char *), const char *names, int *v)
{
    if ((*v = from_name(text)) < 0)
        return kvr_error(KVR_ERR_USAGE, "%s: '%s' is not %s", opt, text, names);
    return KVR_OK;
}

void kvr_cli_join_argv(int argc, char **argv, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "kvr");
    for (int i = 0; i < argc && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, " %s", argv[i]);
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double kvr_cli_now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}
double kvr_cli_cpu_s(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static bool progress_drawn; /* a bar is on stderr, its line not ended */

void kvr_cli_progress_end(void)
{
    if (progress_drawn) fputc('\n', stderr), fflush(stderr);
    progress_drawn = false;
}

void kvr_cli_progress(const char *label, size_t done, size_t total, double elapsed_s)
{
    static double last_s = -1;
    if (kvr_opt_quiet || !isatty(STDERR_FILENO) || total == 0) return;
    double now = kvr_cli_now_s(); /* redrawn at most ten times a second, and at the end */
    if (done != total && last_s >= 0 && now - last_s < 0.1 && now >= last_s) return;
    last_s = done == total ? -1 : now;
    int width = 30, fill = (int)((double)width * (double)done / (double)total);
    double eta = done ? elapsed_s * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu ETA %.0fs ", label, fill,
            "==============================", width - fill, "", done, total, eta);
    if (done == total) fputc('\n', stderr);
    progress_drawn = done != total;
    fflush(stderr);
}

/* The list a help token stands for (kvr_cli_print_help). */
static bool help_token(const char *s, size_t *len, char *list, size_t cap)
{
    static const struct {
        const char *token;
        enum kvr_scheme_filter which;
    } tokens[] = {{"@SCHEMES@", KVR_LIST_SCHEMES},        {"@EXEC_SCHEMES@", KVR_LIST_EXECUTES},
                  {"@SIM_SCHEMES@", KVR_LIST_SIM},        {"@SERIES@", KVR_LIST_SERIES},
                  {"@PART_SCHEMES@", KVR_LIST_PARTITION}, {"@SEARCHED_SCHEMES@", KVR_LIST_SEARCHED},
                  {"@LAYOUT_SCHEMES@", KVR_LIST_LAYOUT}};
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++)
        if (!strncmp(s, tokens[i].token, *len = strlen(tokens[i].token))) {
            kvr_scheme_list_text(tokens[i].which, list, cap);
            return true;
        }
    if (strncmp(s, "@FIGURES@", *len = strlen("@FIGURES@"))) return false;
    size_t at = 0; /* the figures kvr plot draws, from its table */
    list[0] = 0;
    for (int i = 0; kvr_plot_at(i) && at < cap; i++)
        at += (size_t)snprintf(list + at, cap - at, "%s%s", i ? ", " : "", kvr_plot_at(i)->name);
    return true;
}

/* Writes a list at column col, wrapped before 96 columns at its commas, continuing at col. */
static void print_wrapped(FILE *out, const char *list, size_t col)
{
    size_t at = col;
    for (const char *s = list; *s;) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) + 1 : strlen(s);
        if (at > col && at + n + 1 > 96)
            fprintf(out, "\n%*s", (int)col, ""), at = col;
        else if (at > col)
            fputc(' ', out), at++;
        fwrite(s, 1, n, out), at += n;
        s += n;
        while (*s == ' ') s++;
    }
}

void kvr_cli_print_help(FILE *out, const char *text)
{
    size_t col = 0, len;
    char list[1024];
    for (const char *s = text; *s;) {
        if (*s == '@' && help_token(s, &len, list, sizeof list)) {
            print_wrapped(out, list, col);
            s += len;
            continue;
        }
        fputc(*s, out);
        col = *s++ == '\n' ? 0 : col + 1;
    }
}
