/* kvr export: the lookup table for deployments (format 2), as JSON, CSV (read by the kvr_lookup
 * library and the kvrun Python package) or a C header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kvr_cli.h"
#include "kvr_export.h"
#include "kvr_json.h"
#include "kvr_opt.h"
#include "kvr_out.h"
#include "kvr_search_cli.h"
#include "kvr_store.h"
#include "kvr_units.h"
#include "kvr_config.h"
#include "kvr_version.h"

static const char usage[] =
    "usage: kvr export --db FILE --format F --out FILE [filters]\n\nWrites the plan "
    "rows (the lookup table) for deployments; the formats are in\npartition/README.md. "
    "The file is replaced only once it is complete. --json prints\nthe summary (rows, "
    "format, out) on stdout.\n";

struct export_args {
    const char *db, *format, *out, *model, *machine, *method, *scheme, *gpus_arg, *model_hash,
        *machine_hash, *tp_arg;
    uint64_t gpus, tp;
    bool json, quiet, help;
};

static bool suffix_is(const char *path, const char *sfx)
{
    size_t n = strlen(path), k = strlen(sfx);
    return n >= k && !strcasecmp(path + n - k, sfx);
}

/* A definition's hash as stored: 16 hex digits, lower case (kvr_hash_hex). */
static enum kvr_status check_hash(const char *opt, const char *h)
{
    if (!h) return KVR_OK;
    size_t n = strspn(h, "0123456789abcdef");
    if (n != 16 || h[n])
        return kvr_error(KVR_ERR_INPUT,
                         "%s: '%s' is not a definition's hash (16 hex digits 0-9a-f, as stored)",
                         opt, h);
    return KVR_OK;
}

static enum kvr_status check_args(void *args, const struct kvr_opt_result *res)
{
    struct export_args *a = args;
    /* as --timeline does: a table.csv holding JSON would be read as a broken CSV */
    if (!kvr_opt_given(res, "format"))
        a->format = a->out && suffix_is(a->out, ".csv") ? "csv"
                    : a->out && suffix_is(a->out, ".h") ? "c-header"
                                                        : "json";
    enum kvr_status st = check_hash("--model-hash", a->model_hash);
    if (!st) st = check_hash("--machine-hash", a->machine_hash);
    if (!st) st = kvr_search_check_names(a->method, a->scheme);
    if (st) return st;
    if (a->gpus_arg && (kvr_parse_u64(a->gpus_arg, KVR_MAX_GPUS, &a->gpus) || a->gpus == 0))
        return kvr_error(KVR_ERR_INPUT, "--gpus: '%s' must be 1..%d", a->gpus_arg, KVR_MAX_GPUS);
    if (a->tp_arg && (kvr_parse_u64(a->tp_arg, KVR_MAX_GPUS, &a->tp) || a->tp == 0))
        return kvr_error(KVR_ERR_INPUT, "--tp: '%s' must be 1..%d", a->tp_arg, KVR_MAX_GPUS);
    if (!a->db || !a->out) return kvr_error(KVR_ERR_USAGE, "export: --db and --out are required");
    if (a->json && kvr_out_is_stdout(a->out))
        return kvr_error(KVR_ERR_USAGE, "--json prints the summary on stdout: give --out a file");
    if (kvr_export_format_from_name(a->format) < 0)
        return kvr_error(KVR_ERR_INPUT, "--format: unknown format '%s' (json, csv, c-header)",
                         a->format);
    return KVR_OK;
}

#define OFF(f) offsetof(struct export_args, f)
static const struct kvr_opt export_opts[] = {
    KVR_OPT("db", 'd', "FILE", OFF(db), "SQLite database written by kvr search (required)",
            .file = KVR_OPT_FILE_IN),
    KVR_OPT("format", 'f', "F", OFF(format), "json, csv or c-header",
            .def_help = "by --out's suffix: .csv csv, .h c-header, else json"),
    KVR_OPT("out", 'o', "FILE", OFF(out),
            "output file, - for stdout (required); a symlink's target is written",
            .file = KVR_OPT_FILE_OUT, .to_stdout = true),
    KVR_OPT("model", 'm', "M", OFF(model), "only this model name", .def_help = "all"),
    KVR_OPT("machine", 'H', "KEY", OFF(machine), "only this machine key, as stored",
            .def_help = "all"),
    KVR_OPT("gpus", 'g', "P", OFF(gpus_arg), "only this GPU count", .def_help = "all"),
    KVR_OPT("tp", 0, "T", OFF(tp_arg), "only the rows of layout t (1: the plain plans)",
            .def_help = "every t"),
    KVR_OPT("method", 'M', "M", OFF(method), "only this search method", .def = "hier"),
    KVR_OPT("scheme", 's', "S", OFF(scheme), "only this scheme: @SEARCHED_SCHEMES@", .def = "kvr"),
    KVR_OPT("model-hash", 0, "H", OFF(model_hash), "only this model definition (16 hex digits)",
            .def_help = "all"),
    KVR_OPT("machine-hash", 0, "H", OFF(machine_hash), "only this machine definition",
            .def_help = "all"),
    KVR_OPT_COMMON_END(struct export_args)};
#undef OFF

static const struct kvr_opt_spec export_spec = {
    .usage = usage, .opts = export_opts, .check = check_args};

static void print_summary(const struct export_args *a, size_t n)
{
    if (!a->json) {
        if (!kvr_out_is_stdout(a->out) && !a->quiet)
            fprintf(stderr, "export: %zu rows written to %s (%s)\n", n, a->out, a->format);
        return;
    }
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
    kvr_json_kv_u64(&j, "rows", n);
    kvr_json_kv_str(&j, "format", a->format);
    kvr_json_kv_str(&j, "out", a->out);
    kvr_json_kv_str(&j, "db", a->db);
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
}

enum kvr_status kvr_cmd_export(int argc, char **argv)
{
    struct export_args a = {0};
    enum kvr_status st;
    if (kvr_opt_start(&export_spec, argc, argv, &a, NULL, &st)) return st;
    struct kvr_store *store = NULL;
    struct kvr_plan_row *rows = NULL;
    size_t n = 0;
    struct kvr_plan_filter f = {.model = a.model,
                                .machine = a.machine,
                                .scheme = a.scheme,
                                .method = a.method,
                                .p = (int)a.gpus,
                                .tp = a.tp_arg ? (int)a.tp : -1,
                                .model_hash = a.model_hash,
                                .machine_hash = a.machine_hash};
    st = kvr_store_open(a.db, KVR_STORE_READ, &store);
    if (!st) st = kvr_store_list_plans(store, &f, &rows, &n);
    if (!st && n == 0)
        st = kvr_error(KVR_ERR_INPUT, "%s: no plan rows match the filters (nothing written)", a.db);
    for (size_t i = 0; !st && i < n; i++) /* the formats have no field for it yet */
        if (rows[i].kv_forward[0] && strcmp(rows[i].kv_forward, "whole"))
            st = kvr_error(KVR_ERR_INPUT,
                           "%s: the plan of %s at p = %d, ctx %llu was searched for kv_forward %s, "
                           "which the export formats cannot carry (nothing written)",
                           a.db, rows[i].model, rows[i].p, (unsigned long long)rows[i].ctx_tokens,
                           rows[i].kv_forward);
    char generator[128];
    snprintf(generator, sizeof generator, "kvr %s (git %s)", KVR_PROJECT_VERSION, KVR_GIT_VERSION);
    if (!st)
        st = kvr_export_plans(store, rows, n,
                              (enum kvr_export_format)kvr_export_format_from_name(a.format),
                              generator, a.out);
    kvr_store_close(store);
    if (!st) print_summary(&a, n);
    free(rows);
    return st;
}
