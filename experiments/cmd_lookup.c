/* kvr lookup: the partition for any context length from the lookup table. An exact row when
 * there is one, else interpolated between its neighbours (KVR-P), rounded to the table's
 * granularity; the predicted TTFT is the simulator's for the returned partition. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_interp.h"
#include "kvr_json.h"
#include "kvr_machine_args.h"
#include "kvr_search.h"
#include "kvr_store.h"
#include "kvr_units.h"

static const char lookup_help[] =
    "usage: kvr lookup --db FILE --gpus P --ctx N [options]\n"
    "\n"
    "Returns the KV-Runahead partition for a context length: the stored row, or one\n"
    "interpolated between the neighbouring rows, rounded to the table's granularity.\n"
    "\n"
    "  -d, --db FILE         SQLite database written by kvr search     (required)\n"
    "  -m, --model M         preset or file                            (default llama-7b)\n"
    "  -H, --machine H       profile; with the options below, the key kvr search used\n"
    "                                                                  (default a100-nvlink)\n"
    "  -g, --gpus P          GPU count                                 (required)\n"
    "  -c, --ctx LIST        tokens: 12k, or a list/range 1k-16k+1     (required)\n"
    "  -i, --interp I        linear (chunk fractions, the paper's), steffen (monotone cubic),\n"
    "                        balanced (closed form + the rows' correction) or bottleneck (hier's\n"
    "                        greedy at the rows' bottleneck ratio: within 1% up to p = 64)\n"
    "                                                                  (default linear)\n"
    "      --clamp           outside the table, use the nearest end row's fractions\n"
    "  -M, --method M        the search method of the rows             (default hier)\n"
    "  -s, --scheme S        the scheme of the rows                    (default "
    "kvr)\n" KVR_MACHINE_ARGS_HELP "  -j, --json            print JSON instead of a table\n"
    "  -h, --help            this help\n";

struct lookup_args {
    const char *db, *model, *gpus, *ctx, *interp, *method, *scheme;
    struct kvr_machine_args mach;
    bool clamp, json, help;
};

enum { OPT_CLAMP = KVR_OPT_FIRST_FREE };

static enum kvr_status parse_args(int argc, char **argv, struct lookup_args *a)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"model", required_argument, NULL, 'm'},
                                         KVR_MACHINE_ARGS_OPTIONS,
                                         {"gpus", required_argument, NULL, 'g'},
                                         {"ctx", required_argument, NULL, 'c'},
                                         {"interp", required_argument, NULL, 'i'},
                                         {"method", required_argument, NULL, 'M'},
                                         {"scheme", required_argument, NULL, 's'},
                                         {"clamp", no_argument, NULL, OPT_CLAMP},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *a = (struct lookup_args){.model = "llama-7b",
                              .interp = "linear",
                              .method = "hier",
                              .scheme = "kvr",
                              .mach = {.machine = "a100-nvlink", .trials = 16}};
    int c;
    enum kvr_status st = KVR_OK;
    kvr_cli_opt_reset();
    while (!st && (c = kvr_cli_getopt(argc, argv, "d:m:H:g:c:i:M:s:jh", opts)) != -1) {
        switch (c) {
        case '?':
            return KVR_ERR_USAGE;
        case 'h':
            a->help = true;
            return KVR_OK;
        case 'd':
            a->db = optarg;
            break;
        case 'm':
            a->model = optarg;
            break;
        case 'g':
            a->gpus = optarg;
            break;
        case 'c':
            a->ctx = optarg;
            break;
        case 'i':
            a->interp = optarg;
            break;
        case 'M':
            a->method = optarg;
            break;
        case 's':
            a->scheme = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case OPT_CLAMP:
            a->clamp = true;
            break;
        default:
            kvr_machine_args_take(&a->mach, c, optarg, &st);
        }
    }
    if (!st && optind != argc)
        st = kvr_error(KVR_ERR_USAGE, "lookup: unexpected argument '%s'", argv[optind]);
    if (!st && (!a->db || !a->gpus || !a->ctx))
        st = kvr_error(KVR_ERR_USAGE, "lookup: --db, --gpus and --ctx are required");
    if (!st && kvr_interp_from_name(a->interp) < 0)
        st = kvr_error(KVR_ERR_INPUT,
                       "--interp: unknown method '%s' (linear, steffen, balanced, bottleneck)",
                       a->interp);
    return st;
}

struct answer {
    uint64_t ctx;
    struct kvr_lookup_answer a;
    double ttft_s;
    const struct kvr_plan_row *row; /* the lower neighbour: its mapping, and its fewer-GPU plan
                                       when the answer is that row */
};

static void json_answer(struct kvr_json *j, const struct lookup_args *args, const char *model,
                        const char *machine, const struct answer *x)
{
    kvr_json_object_begin(j);
    kvr_json_kv_str(j, "model", model);
    kvr_json_kv_str(j, "machine", machine);
    kvr_json_kv_u64(j, "p", (uint64_t)x->a.p);
    kvr_json_kv_u64(j, "ctx", x->ctx);
    kvr_json_key(j, "partition");
    kvr_json_array_begin(j);
    for (int i = 0; i < x->a.p; i++) kvr_json_u64(j, x->a.tokens[i]);
    kvr_json_array_end(j);
    kvr_json_kv_str(j, "method", x->a.exact ? "exact" : "interpolated");
    kvr_json_kv_str(j, "interp", x->a.exact || x->a.clamped ? "none" : args->interp);
    kvr_json_kv_bool(j, "clamped", x->a.clamped);
    kvr_json_kv_dbl(j, "predicted_ttft_s", x->ttft_s);
    kvr_json_key(j, "mapping");
    kvr_json_array_begin(j);
    for (int i = 0; i < x->a.p; i++)
        kvr_json_u64(j, (uint64_t)(x->row && x->row->n_mapping ? x->row->mapping[i] : i));
    kvr_json_array_end(j);
    int fewer = x->a.exact && x->row ? x->row->fewer_p : 0;
    kvr_json_kv_u64(j, "fewer_p", (uint64_t)fewer);
    if (fewer) {
        kvr_json_key(j, "fewer_partition");
        kvr_json_array_begin(j);
        for (int i = 0; i < fewer; i++) kvr_json_u64(j, x->row->fewer_tokens[i]);
        kvr_json_array_end(j);
        kvr_json_kv_dbl(j, "fewer_predicted_ttft_s", x->row->fewer_predicted_ttft_s);
    }
    kvr_json_key(j, "neighbours");
    kvr_json_array_begin(j);
    kvr_json_u64(j, x->a.lo_ctx);
    if (x->a.hi_ctx != x->a.lo_ctx) kvr_json_u64(j, x->a.hi_ctx);
    kvr_json_array_end(j);
    kvr_json_object_end(j);
}

static void print_answers(const struct lookup_args *args, const char *model, const char *machine,
                          const struct answer *x, size_t n)
{
    if (args->json) {
        struct kvr_json j;
        kvr_json_init(&j, stdout);
        if (n > 1) kvr_json_array_begin(&j);
        for (size_t i = 0; i < n; i++) json_answer(&j, args, model, machine, &x[i]);
        if (n > 1) kvr_json_array_end(&j);
        kvr_json_finish(&j);
        return;
    }
    printf("%s on %s, p = %d\n%8s %-13s %12s  %s\n", model, machine, x[0].a.p, "ctx", "method",
           "TTFT", "partition");
    for (size_t i = 0; i < n; i++) {
        char t[32], part[KVR_MAX_GPUS * 21], how[32];
        kvr_store_format_tokens(x[i].a.tokens, x[i].a.p, part, sizeof part);
        snprintf(how, sizeof how, "%s",
                 x[i].a.exact     ? "exact"
                 : x[i].a.clamped ? "clamped"
                                  : args->interp);
        printf("%8llu %-13s %12s  %s\n", (unsigned long long)x[i].ctx, how,
               kvr_format_duration(t, sizeof t, x[i].ttft_s), part);
        const struct kvr_plan_row *r = x[i].row;
        if (x[i].a.exact && r && r->fewer_p) {
            kvr_store_format_tokens(r->fewer_tokens, r->fewer_p, part, sizeof part);
            printf("%8s fewer GPUs are as fast: %d GPUs, %s, partition %s\n", "", r->fewer_p,
                   kvr_format_duration(t, sizeof t, r->fewer_predicted_ttft_s), part);
        }
    }
}

/* Rows of the key; an empty table is an input error that says what to run. */
static enum kvr_status load_rows(const struct lookup_args *a, const struct kvr_plan_filter *f,
                                 struct kvr_plan_row **rows, size_t *n)
{
    struct kvr_store *store = NULL;
    enum kvr_status st = kvr_store_open(a->db, KVR_STORE_READ, &store);
    if (!st) st = kvr_store_list_plans(store, f, rows, n);
    kvr_store_close(store);
    if (!st && *n == 0) {
        free(*rows);
        *rows = NULL;
        st = kvr_error(KVR_ERR_INPUT,
                       "%s: no plan rows for model %s, machine %s, p = %d, scheme %s, method %s "
                       "(run 'kvr search' first)",
                       a->db, f->model, f->machine, f->p, f->scheme, f->method);
    }
    return st;
}

static enum kvr_status answer_all(const struct lookup_args *a, const struct kvr_model *m,
                                  const struct kvr_machine *h, const struct kvr_plan_row *rows,
                                  size_t n_rows, const uint64_t *ctx, struct answer *out, size_t n)
{
    struct kvr_objective_opts oo = {.scheme = KVR_SCHEME_KVR, .trials = a->mach.trials};
    enum kvr_status st = kvr_machine_args_percentile(&a->mach, &oo.percentile);
    struct kvr_objective *obj = NULL;
    if (!st) st = kvr_objective_open(m, h, &oo, &obj);
    enum kvr_interp how = (enum kvr_interp)kvr_interp_from_name(a->interp);
    for (size_t i = 0; i < n && !st; i++) {
        out[i].ctx = ctx[i];
        st = kvr_interp_partition_model(rows, n_rows, ctx[i], how, a->clamp, m, h, &out[i].a);
        if (st) {
            st = kvr_error_prefix(st, "--ctx %llu: ", (unsigned long long)ctx[i]);
            break;
        }
        for (size_t k = 0; k < n_rows; k++)
            if (rows[k].ctx_tokens == out[i].a.lo_ctx) out[i].row = &rows[k];
        if (out[i].row && out[i].row->n_mapping) {
            int map[KVR_MAX_GPUS];
            st = kvr_mapping_complete(out[i].row->mapping, out[i].row->n_mapping,
                                      h->n_nodes * h->gpus_per_node, map);
            if (!st) st = kvr_objective_set_mapping(obj, map);
        }
        /* never an answer that does not fit: exit 3 with the bytes */
        if (!st) out[i].ttft_s = kvr_objective_eval(obj, ctx[i], out[i].a.tokens);
        if (!st && !isfinite(out[i].ttft_s))
            st =
                kvr_error_prefix(kvr_objective_nofit_error(obj, ctx[i]),
                                 "--ctx %llu: the table's partition: ", (unsigned long long)ctx[i]);
    }
    kvr_objective_free(obj);
    return st;
}

enum kvr_status kvr_cmd_lookup(int argc, char **argv)
{
    struct lookup_args a;
    enum kvr_status st = parse_args(argc, argv, &a);
    if (st || a.help) return st ? st : (fputs(lookup_help, stdout), KVR_OK);
    struct kvr_model m;
    static struct kvr_machine h;
    char key[512];
    uint64_t *ctx = NULL;
    size_t n_ctx = 0, n_rows = 0;
    if ((st = kvr_model_resolve(a.model, &m)) ||
        (st = kvr_machine_args_build(&a.mach, NULL, a.gpus, &h)) ||
        (st = kvr_cli_parse_ctx_list("--ctx", a.ctx, &ctx, &n_ctx)))
        return st;
    kvr_machine_args_key(&a.mach, h.name, key, sizeof key);
    struct kvr_plan_filter f = {m.name, key, a.scheme, a.method, h.n_gpus};
    struct kvr_plan_row *rows = NULL;
    struct answer *out = calloc(n_ctx, sizeof *out);
    st = out ? load_rows(&a, &f, &rows, &n_rows) : kvr_error(KVR_ERR_NOMEM, "lookup: no memory");
    if (!st) st = answer_all(&a, &m, &h, rows, n_rows, ctx, out, n_ctx);
    if (!st) print_answers(&a, m.name, key, out, n_ctx);
    free(out), free(rows), free(ctx);
    return st;
}
