/* The option parser of every subcommand. Short options mean one thing in the whole program:
 *   -b --backend  -c --ctx  -d --db  -f --format  -g --gpus  -G --granularity  -h --help
 *   -H --machine  -i --interp  -j --json  -J --jobs  -m --model  -M --method  -o --out
 *   -P --partition  -q --quiet  -r --reps  -s --scheme  -t --timeline  -w --warmup
 * (bench attention keeps its own -p --prefix). Everything else is long only. */
#include "kvr_opt.h"

#include "kvr_cli.h"
#include "kvr_out.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_OPTS 64

bool kvr_opt_quiet;

static int count_opts(const struct kvr_opt *o)
{
    int n = 0;
    while (o[n].name) n++;
    return n;
}

static void store_defaults(const struct kvr_opt *o, int n, void *base)
{
    for (int i = 0; i < n; i++) {
        char *at = (char *)base + o[i].offset;
        if (!o[i].arg)
            *(bool *)at = false;
        else if (o[i].kind == KVR_OPT_TEXT)
            *(const char **)at = o[i].def;
        else
            *(int *)((char *)base + o[i].count_offset) = 0;
    }
}

static const char *text_of(const struct kvr_opt *o, const void *base)
{
    bool text = o->arg && o->kind == KVR_OPT_TEXT;
    return text ? *(const char *const *)((const char *)base + o->offset) : NULL;
}

static enum kvr_status take(const struct kvr_opt *o, void *base, const char *arg)
{
    char *at = (char *)base + o->offset;
    if (!o->arg) {
        *(bool *)at = true;
        return KVR_OK;
    }
    if (o->kind == KVR_OPT_TEXT) {
        *(const char **)at = arg;
        return KVR_OK;
    }
    int *n = (int *)((char *)base + o->count_offset);
    if (*n == o->max)
        return kvr_error(KVR_ERR_USAGE, "--%s: given more than %d times", o->name, o->max);
    ((const char **)at)[(*n)++] = arg;
    return KVR_OK;
}

/* getopt_long's tables from ours: a short name returns itself, a long-only one 256 + index. */
static void build(const struct kvr_opt *o, int n, struct option *lo, char *shorts)
{
    size_t k = 0;
    shorts[k++] = ':'; /* report missing arguments as ':' */
    for (int i = 0; i < n; i++) {
        int has = o[i].arg ? required_argument : no_argument;
        lo[i] = (struct option){o[i].name, has, NULL, o[i].short_name ? o[i].short_name : 256 + i};
        if (o[i].short_name) {
            shorts[k++] = o[i].short_name;
            if (has == required_argument) shorts[k++] = ':';
        }
    }
    lo[n] = (struct option){0};
    shorts[k] = 0;
}

static int index_of(const struct kvr_opt *o, int n, int c)
{
    for (int i = 0; i < n; i++)
        if ((o[i].short_name && o[i].short_name == c) || 256 + i == c) return i;
    return -1;
}

static int index_of(const struct kvr_opt *o, int n, int c);

static enum kvr_status bad_option(const struct kvr_opt *o, int n, char **argv, int c)
{
    const char *bad = argv[optind - 1];
    if (c == ':') return kvr_error(KVR_ERR_USAGE, "%s: option '%s' needs a value", argv[0], bad);
    int i = optopt ? index_of(o, n, optopt) : -1;
    if (i >= 0 && !strncmp(bad, "--", 2) && strchr(bad, '=')) /* "--json=yes": a flag's value */
        return kvr_error(KVR_ERR_USAGE, "%s: option '--%s' takes no value ('%s')", argv[0],
                         o[i].name, bad);
    if (optopt && optopt < 256 && strncmp(bad, "--", 2))
        return kvr_error(KVR_ERR_USAGE, "%s: unknown option '-%c'", argv[0], optopt);
    return kvr_error(KVR_ERR_USAGE, "%s: unknown option '%s'", argv[0], bad);
}

enum kvr_status kvr_opt_parse(const struct kvr_opt_spec *spec, int argc, char **argv, void *base,
                              struct kvr_opt_result *res)
{
    const struct kvr_opt *o = spec->opts;
    int n = count_opts(o);
    static struct option lo[MAX_OPTS + 1];
    static char shorts[3 * MAX_OPTS + 2];
    if (n > MAX_OPTS) return kvr_error(KVR_ERR_RUNTIME, "%s: too many options", argv[0]);
    *res = (struct kvr_opt_result){.spec = spec};
    store_defaults(o, n, base);
    build(o, n, lo, shorts);
    optind = 0, opterr = 0;
    enum kvr_status st = KVR_OK;
    for (int c; !st && (c = getopt_long(argc, argv, shorts, lo, NULL)) != -1;) {
        int i = c == '?' || c == ':' ? -1 : index_of(o, n, c);
        if (i < 0) return bad_option(o, n, argv, c);
        /* one value per option: a second one would silently win over the first */
        if (o[i].arg && o[i].kind == KVR_OPT_TEXT && (res->given >> i & 1))
            return kvr_error(KVR_ERR_USAGE, "%s: --%s given twice ('%s', then '%s')", argv[0],
                             o[i].name, text_of(&o[i], base), optarg);
        res->given |= 1ull << i;
        st = take(&o[i], base, optarg);
        if (!strcmp(o[i].name, "help")) res->help = true;
        if (!strcmp(o[i].name, "quiet")) kvr_opt_quiet = true;
    }
    if (st) return st;
    res->args = argv + optind, res->n_args = argc - optind;
    /* refused with --help too, as an unknown option is: one rule for what a command takes */
    if (res->n_args > spec->max_args && spec->max_args >= 0)
        return kvr_error(KVR_ERR_USAGE, "%s: unexpected argument '%s'", argv[0],
                         argv[optind + (spec->max_args > 0 ? spec->max_args : 0)]);
    if (res->help) return KVR_OK;
    if (res->n_args < spec->min_args)
        return kvr_error(KVR_ERR_USAGE, "%s: missing argument (see kvr %s --help)", argv[0],
                         argv[0]);
    return KVR_OK;
}

/* "--name" of an entry, for messages. */
static const char *dashed(const struct kvr_opt *o, char *buf, size_t cap)
{
    snprintf(buf, cap, "--%s", o->name);
    return buf;
}

/* The file path writes (kvr_out follows links so): a symlink's final target, link by link,
 * else path itself; a dangling link names the file to create. */
static enum kvr_status link_target(const char *what, const char *path, char *cur, size_t cap)
{
    char link[4096], dir[4096];
    if ((size_t)snprintf(cur, cap, "%s", path) >= cap)
        return kvr_error(KVR_ERR_USAGE, "%s: '%s': path too long", what, path);
    for (int hops = 0;; hops++) {
        struct stat sb;
        if (lstat(cur, &sb) != 0 || !S_ISLNK(sb.st_mode)) return KVR_OK;
        if (hops == 40) return kvr_error(KVR_ERR_USAGE, "%s: '%s': too many links", what, path);
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0) return kvr_error(KVR_ERR_IO, "%s: '%s': %s", what, cur, strerror(errno));
        link[n] = 0;
        snprintf(dir, sizeof dir, "%s", cur);
        const char *d = dirname(dir);
        int k = link[0] == '/' || !strcmp(d, ".") ? snprintf(cur, cap, "%s", link)
                                                  : snprintf(cur, cap, "%s/%s", d, link);
        if (k < 0 || (size_t)k >= cap)
            return kvr_error(KVR_ERR_USAGE, "%s: '%s': path too long", what, path);
    }
}

/* An output the command could not write is named before any work (a run of minutes, then a
 * lost result): a folder, or a new file in a folder that is not there, also when a symlink
 * names it (before, a dangling link was taken as writable and the run failed at its end). */
static enum kvr_status out_writable(const char *what, const char *path)
{
    struct stat sb;
    size_t n = strlen(path);
    if (n && path[n - 1] == '/') /* a file made there could never be renamed to the name */
        return kvr_error(KVR_ERR_USAGE, "%s: '%s' ends in '/': a folder's name, not a file's", what,
                         path);
    if (!strcmp(path, "-")) return KVR_OK;
    char target[4096], dir[4096];
    enum kvr_status st = link_target(what, path, target, sizeof target);
    if (st) return st;
    if (stat(target, &sb) == 0)
        return S_ISDIR(sb.st_mode) ? kvr_error(KVR_ERR_USAGE, "%s: '%s' is a folder", what, path)
                                   : KVR_OK;
    snprintf(dir, sizeof dir, "%s", target);
    const char *d = dirname(dir);
    int e = stat(d, &sb) != 0 ? errno : 0;
    if (!e && S_ISDIR(sb.st_mode)) return KVR_OK;
    const char *why = e ? strerror(e) : "not a folder";
    if (strcmp(target, path))
        return kvr_error(KVR_ERR_IO, "%s: '%s' is a symlink to '%s': cannot write in '%s': %s",
                         what, path, target, d, why);
    return kvr_error(KVR_ERR_IO, "%s: cannot write in '%s': %s", what, d, why);
}

/* An output named "-" has standard output to itself: a second one, or --json's result beside it,
 * is refused; otherwise the command's own printing moves to stderr (kvr_out_stdout_for_data). */
static enum kvr_status check_stdout(const struct kvr_opt *o, const void *base)
{
    int first = -1;
    bool json = false;
    char a[64], b[64];
    for (int i = 0; o[i].name; i++) {
        if (!strcmp(o[i].name, "json") && !o[i].arg)
            json = *(const bool *)((const char *)base + o[i].offset);
        const char *v = o[i].file == KVR_OPT_FILE_OUT ? text_of(&o[i], base) : NULL;
        if (!v || strcmp(v, "-")) continue;
        if (first >= 0)
            return kvr_error(KVR_ERR_USAGE, "%s - and %s -: one standard output for two outputs",
                             dashed(&o[first], a, sizeof a), dashed(&o[i], b, sizeof b));
        first = i;
    }
    if (first >= 0 && json)
        return kvr_error(KVR_ERR_USAGE,
                         "%s -: standard output would carry it and --json's result: give %s a "
                         "file",
                         dashed(&o[first], a, sizeof a), dashed(&o[first], b, sizeof b));
    return first >= 0 ? kvr_out_stdout_for_data() : KVR_OK;
}

static enum kvr_status check_files(const struct kvr_opt *o, const void *base)
{
    char out[64], in[64];
    enum kvr_status st = KVR_OK;
    for (int i = 0; o[i].name && !st; i++) {
        bool path = o[i].file == KVR_OPT_FILE_IN || o[i].file == KVR_OPT_FILE_OUT;
        if (path && text_of(&o[i], base))
            st = kvr_path_check(dashed(&o[i], in, sizeof in), text_of(&o[i], base));
        if (!st && o[i].file == KVR_OPT_FILE_OUT && text_of(&o[i], base))
            st = out_writable(dashed(&o[i], in, sizeof in), text_of(&o[i], base));
        /* "-" takes standard output alone (check_stdout); another name of it would mix */
        if (!st && o[i].file == KVR_OPT_FILE_OUT && !o[i].to_stdout && text_of(&o[i], base) &&
            strcmp(text_of(&o[i], base), "-") && kvr_out_is_stdout(text_of(&o[i], base)))
            st = kvr_error(KVR_ERR_USAGE,
                           "%s '%s' is standard output, which carries the command's report: "
                           "name a file, or '-' (which then has it alone)",
                           dashed(&o[i], in, sizeof in), text_of(&o[i], base));
    }
    for (int w = 0; o[w].name && !st; w++)
        for (int i = 0; o[w].file == KVR_OPT_FILE_OUT && o[i].name && !st; i++)
            if (i != w && o[i].file)
                st = kvr_out_check_not_input(dashed(&o[w], out, sizeof out), text_of(&o[w], base),
                                             dashed(&o[i], in, sizeof in), text_of(&o[i], base));
    return st ? st : check_stdout(o, base);
}

bool kvr_opt_start(const struct kvr_opt_spec *spec, int argc, char **argv, void *args,
                   struct kvr_opt_result *res, enum kvr_status *st)
{
    struct kvr_opt_result own;
    if (!res) res = &own;
    *st = kvr_opt_parse(spec, argc, argv, args, res);
    if (!*st && res->help) return kvr_opt_help(spec, stdout), true;
    if (!*st) *st = check_files(spec->opts, args);
    if (!*st && spec->check) *st = spec->check(args, res);
    return *st != KVR_OK;
}

bool kvr_opt_given(const struct kvr_opt_result *res, const char *name)
{
    const struct kvr_opt *o = res->spec->opts;
    for (int i = 0; o[i].name; i++)
        if (!strcmp(o[i].name, name)) return res->given >> i & 1;
    return false;
}

enum kvr_status kvr_opt_refuse(const struct kvr_opt_result *res, const char *const *names,
                               const char *why)
{
    for (int k = 0; names[k]; k++)
        if (kvr_opt_given(res, names[k])) return kvr_error(KVR_ERR_USAGE, "--%s %s", names[k], why);
    return KVR_OK;
}

/* "  -m, --model M" padded to the help column, then the help, then the default. */
static void help_line(const struct kvr_opt *o, FILE *out)
{
    char head[64];
    int k = snprintf(head, sizeof head, "  %c%c%s--%s%s%s", o->short_name ? '-' : ' ',
                     o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
    fprintf(out, "%s%*s", head, k < 25 ? 25 - k : 1, "");
    for (const char *h = o->help; *h; h++) {
        fputc(*h, out);
        if (*h == '\n') fprintf(out, "%25s", "");
    }
    if (o->def || o->def_help)
        fprintf(out, " (default %s%s%s)", o->def ? o->def : o->def_help,
                o->unit && o->def ? " " : "", o->unit && o->def ? o->unit : "");
    else if (o->unit)
        fprintf(out, " (%s)", o->unit);
    fputc('\n', out);
}

/* The help is rendered first, then printed through kvr_cli_print_help, so a help string may
 * name a list of the scheme table (@SCHEMES@, @SIM_SCHEMES@, ...) that can't drift from it. */
void kvr_opt_help(const struct kvr_opt_spec *spec, FILE *out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    FILE *to = mem ? mem : out;
    fputs(spec->usage, to);
    fputc('\n', to);
    for (const struct kvr_opt *o = spec->opts; o->name; o++) help_line(o, to);
    if (spec->footer) fputs(spec->footer, to);
    if (!mem) return;
    if (fclose(mem) == 0 && text) kvr_cli_print_help(out, text);
    free(text);
}
