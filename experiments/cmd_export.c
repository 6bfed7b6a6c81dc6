/* kvr export: the lookup table for deployments, as JSON, CSV (read by the kvr_lookup library)
 * or a C header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_export.h"
#include "kvr_store.h"
#include "kvr_units.h"
#include "kvr_config.h"
#include "kvr_version.h"

static const char export_help[] =
    "usage: kvr export --db FILE --format F --out FILE [filters]\n"
    "\n"
    "Writes the plan rows (the lookup table) for deployments; the formats are in\n"
    "partition/README.md. The file is replaced only once it is complete.\n"
    "\n"
    "  -d, --db FILE        SQLite database written by kvr search      (required)\n"
    "  -f, --format F       json, csv or c-header                      (default json)\n"
    "  -o, --out FILE       output file, - for stdout                  (required)\n"
    "  -m, --model M        only this model name                       (default: all)\n"
    "  -H, --machine KEY    only this machine key, as stored           (default: all)\n"
    "  -g, --gpus P         only this GPU count                        (default: all)\n"
    "  -M, --method M       only this search method                    (default hier)\n"
    "  -s, --scheme S       only this scheme                           (default kvr)\n"
    "  -h, --help           this help\n";

struct export_args {
    const char *db, *format, *out, *model, *machine, *method, *scheme;
    uint64_t gpus;
    bool help;
};

static enum kvr_status parse_args(int argc, char **argv, struct export_args *a)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},      {"format", required_argument, NULL, 'f'},
        {"out", required_argument, NULL, 'o'},     {"model", required_argument, NULL, 'm'},
        {"machine", required_argument, NULL, 'H'}, {"gpus", required_argument, NULL, 'g'},
        {"method", required_argument, NULL, 'M'},  {"scheme", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    *a = (struct export_args){.format = "json", .method = "hier", .scheme = "kvr"};
    int c;
    kvr_cli_opt_reset();
    while ((c = kvr_cli_getopt(argc, argv, "d:f:o:m:H:g:M:s:h", opts)) != -1) {
        switch (c) {
        case '?':
            return KVR_ERR_USAGE;
        case 'h':
            a->help = true;
            return KVR_OK;
        case 'd':
            a->db = optarg;
            break;
        case 'f':
            a->format = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'm':
            a->model = optarg;
            break;
        case 'H':
            a->machine = optarg;
            break;
        case 'M':
            a->method = optarg;
            break;
        case 's':
            a->scheme = optarg;
            break;
        case 'g':
            if (kvr_parse_u64(optarg, KVR_MAX_GPUS, &a->gpus) || a->gpus == 0)
                return kvr_error(KVR_ERR_INPUT, "--gpus: '%s' must be 1..%d", optarg, KVR_MAX_GPUS);
            break;
        }
    }
    if (optind != argc)
        return kvr_error(KVR_ERR_USAGE, "export: unexpected argument '%s'", argv[optind]);
    if (!a->db || !a->out) return kvr_error(KVR_ERR_USAGE, "export: --db and --out are required");
    if (kvr_export_format_from_name(a->format) < 0)
        return kvr_error(KVR_ERR_INPUT, "--format: unknown format '%s' (json, csv, c-header)",
                         a->format);
    return KVR_OK;
}

enum kvr_status kvr_cmd_export(int argc, char **argv)
{
    struct export_args a;
    enum kvr_status st = parse_args(argc, argv, &a);
    if (st || a.help) return st ? st : (fputs(export_help, stdout), KVR_OK);
    struct kvr_store *store = NULL;
    struct kvr_plan_row *rows = NULL;
    size_t n = 0;
    struct kvr_plan_filter f = {a.model, a.machine, a.scheme, a.method, (int)a.gpus};
    st = kvr_store_open(a.db, KVR_STORE_READ, &store);
    if (!st) st = kvr_store_list_plans(store, &f, &rows, &n);
    kvr_store_close(store);
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
        st =
            kvr_export_plans(rows, n, (enum kvr_export_format)kvr_export_format_from_name(a.format),
                             generator, a.out);
    if (!st && strcmp(a.out, "-"))
        fprintf(stderr, "export: %zu rows written to %s (%s)\n", n, a.out, a.format);
    free(rows);
    return st;
}
