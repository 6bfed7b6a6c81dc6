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
#include "kvr_opt.h"
#include "kvr_search.h"
#include "kvr_search_cli.h"
#include "kvr_store.h"
#include "kvr_units.h"

static const char usage[] =
    "usage: kvr lookup --db FILE --gpus P --ctx N [options]\n\nReturns the "
    "KV-Runahead partition for a context length: the stored row, or one\ninterpolated "
    "between the neighbouring rows, rounded to the table's granularity.\nThe machine "
    "options name the key kvr search used.\n";

struct lookup_args {
    const char *db, *model, *gpus, *ctx, *interp, *method, *scheme, *tp;
    struct kvr_machine_args mach;
    bool clamp, json, quiet, help;
};

static enum kvr_status check_args(void *args, const struct kvr_opt_result *res)
{
    struct lookup_args *a = args;
    enum kvr_status st;
    if (!a->db || !a->gpus || !a->ctx)
        return kvr_error(KVR_ERR_USAGE, "lookup: --db, --gpus and --ctx are required");
    if ((st = kvr_machine_args_finish(&a->mach)) ||
        (st = kvr_machine_args_refuse_noiseless(&a->mach, res, KVR_NOISE_ONLY_IN_KEY)))
        return st;
    uint64_t t;
    if (strcmp(a->tp, "best") && (kvr_parse_u64(a->tp, KVR_MAX_GPUS, &t) || t == 0))
        return kvr_error(KVR_ERR_INPUT, "--tp: '%s' is not a TP degree 1..%d or best", a->tp,
                         KVR_MAX_GPUS);
    if ((st = kvr_search_check_names(a->method, a->scheme))) return st;
    if (kvr_interp_from_name(a->interp) < 0)
        return kvr_error(KVR_ERR_INPUT,
                         "--interp: unknown method '%s' (linear, steffen, balanced, bottleneck)",
                         a->interp);
    return KVR_OK;
}

#define OFF(f) offsetof(struct lookup_args, f)
static const struct kvr_opt lookup_opts[] = {
    KVR_OPT("db", 'd', "FILE", OFF(db), "SQLite database written by kvr search (required)"),
    KVR_OPT("model", 'm', "M", OFF(model), "preset or file", .def = "llama-7b"),
    KVR_MACHINE_OPTS(struct lookup_args, mach, "a100-nvlink", "16"),
    KVR_OPT("gpus", 'g', "P", OFF(gpus), "GPU count (required)"),
    KVR_OPT("ctx", 'c', "LIST", OFF(ctx), "12k, or a list/range 1k-16k+1 (required)",
            .unit = "tokens"),
    KVR_OPT("interp", 'i', "I", OFF(interp),
            "linear (chunk fractions, the paper's), steffen (monotone cubic),\nbalanced "
            "(closed form + the rows' correction) or bottleneck (hier's\ngreedy at the rows' "
            "bottleneck ratio: within 1% up to p = 64)",
            .def = "linear"),
    KVR_OPT("clamp", 0, NULL, OFF(clamp), "outside the table, use the nearest end row's fractions"),
    KVR_OPT("method", 'M', "M", OFF(method), "the search method of the rows", .def = "hier"),
    KVR_OPT("scheme", 's', "S", OFF(scheme), "the scheme of the rows: @SEARCHED_SCHEMES@",
            .def = "kvr"),
    KVR_OPT("tp", 0, "T", OFF(tp),
            "the rows' layout: a TP degree t (p/t stages of t GPUs), or best (the\nfastest t "
            "the table has for each context)",
            .def = "1"),
    KVR_OPT_COMMON_END(struct lookup_args)};
#undef OFF

static const struct kvr_opt_spec lookup_spec = {
    .usage = usage, .opts = lookup_opts, .check = check_args};

struct answer {
    uint64_t ctx;
    int p, tp; /* GPUs and the layout's t; a.p is the partition's chunks (p / t stages) */
    struct kvr_lookup_answer a;
    double ttft_s;
    const struct kvr_plan_row *row; /* the lower neighbour: its mapping, and its fewer-GPU plan
                                       when the answer is that row (NULL or &lower) */
    struct kvr_plan_row lower;
    enum kvr_kv_forward fwd; /* the rows' hand-off, the one the TTFT is simulated in */
};

/* A row's hand-off ("" reads as whole; the store refuses unknown names). */
static enum kvr_kv_forward row_forward(const struct kvr_plan_row *r)
{
    int f = r->kv_forward[0] ? kvr_kv_forward_from_name(r->kv_forward) : KVR_FWD_WHOLE;
    return f < 0 ? KVR_FWD_WHOLE : (enum kvr_kv_forward)f;
}

/* The hand-off answer x is simulated in: its neighbours' (the rows at lo_ctx and hi_ctx),
 * which must agree: a partition interpolated between plans of two hand-offs is neither's. */
static enum kvr_status answer_forward(const struct kvr_plan_row *orig, size_t n_rows,
                                      struct answer *x)
{
    const struct kvr_plan_row *lo = NULL, *hi = NULL;
    for (size_t k = 0; k < n_rows; k++) {
        if (orig[k].ctx_tokens == x->a.lo_ctx) lo = &orig[k];
        if (orig[k].ctx_tokens == x->a.hi_ctx) hi = &orig[k];
    }
    x->fwd = lo ? row_forward(lo) : KVR_FWD_WHOLE;
    if (lo && hi && row_forward(hi) != x->fwd)
        return kvr_error(KVR_ERR_INPUT,
                         "--ctx %llu: its neighbours were searched for different KV hand-offs "
                         "(ctx %llu %s, ctx %llu %s): run 'kvr search' again with one "
                         "--kv-forward",
                         (unsigned long long)x->ctx, (unsigned long long)lo->ctx_tokens,
                         kvr_kv_forward_name(x->fwd), (unsigned long long)hi->ctx_tokens,
                         kvr_kv_forward_name(row_forward(hi)));
    return KVR_OK;
}

/* Field names as in the export (format 2): ctx_tokens, partition_tokens, the hashes. */
static void json_answer(struct kvr_json *j, const struct lookup_args *args,
                        const struct kvr_plan_filter *f, const struct answer *x)
{
    kvr_json_object_begin(j);
    kvr_search_json_definitions(j, f->model, f->model_hash, f->machine, f->machine_hash);
    kvr_json_kv_u64(j, "p", (uint64_t)x->p);
    kvr_json_kv_u64(j, "tp", (uint64_t)x->tp);
    kvr_json_kv_u64(j, "ctx_tokens", x->ctx);
    kvr_json_key(j, "partition_tokens");
    kvr_json_array_begin(j);
    for (int i = 0; i < x->a.p; i++) kvr_json_u64(j, x->a.tokens[i]);
    kvr_json_array_end(j);
    kvr_json_kv_str(j, "method", x->a.exact ? "exact" : "interpolated");
    kvr_json_kv_str(j, "interp", x->a.exact || x->a.clamped ? "none" : args->interp);
    kvr_json_kv_bool(j, "clamped", x->a.clamped);
    kvr_json_kv_dbl(j, "predicted_ttft_s", x->ttft_s);
    kvr_json_kv_str(j, "kv_forward", kvr_kv_forward_name(x->fwd));
    kvr_json_key(j, "mapping");
    kvr_json_array_begin(j);
    for (int i = 0; i < x->p; i++) /* the GPU of each rank stage * tp + shard */
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

static void print_answers(const struct lookup_args *args, const struct kvr_plan_filter *f,
                          const struct answer *x, size_t n)
{
    const char *model = f->model, *machine = f->machine;
    if (args->json) {
        struct kvr_json j;
        kvr_json_init(&j, stdout);
        if (n > 1) kvr_json_array_begin(&j);
        for (size_t i = 0; i < n; i++) json_answer(&j, args, f, &x[i]);
        if (n > 1) kvr_json_array_end(&j);
        kvr_json_finish(&j);
        return;
    }
    printf("%s (%s) on %s (%s), p = %d\n%8s %3s %-13s %12s  %s\n", model, f->model_hash, machine,
           f->machine_hash, x[0].p, "ctx", "tp", "method", "TTFT", "partition");
    for (size_t i = 0; i < n; i++) {
        char t[32], part[KVR_MAX_GPUS * 21], how[32];
        kvr_store_format_tokens(x[i].a.tokens, x[i].a.p, part, sizeof part);
        snprintf(how, sizeof how, "%s",
                 x[i].a.exact     ? "exact"
                 : x[i].a.clamped ? "clamped"
                                  : args->interp);
        printf("%8llu %3d %-13s %12s  %s\n", (unsigned long long)x[i].ctx, x[i].tp, how,
               kvr_format_duration(t, sizeof t, x[i].ttft_s), part);
        if (x[i].fwd != KVR_FWD_WHOLE)
            printf("%8s KV hand-off %s (the rows' kv_forward; the TTFT is simulated in it)\n", "",
                   kvr_kv_forward_name(x[i].fwd));
        const struct kvr_plan_row *r = x[i].row;
        if (r && r->n_mapping) { /* JSON's mapping: chain position (rank) i on GPU m[i] */
            kvr_mapping_format(r->mapping, x[i].p, part, sizeof part); /* all p GPUs */
            printf("%8s on GPUs %s (rank i on the i-th%s)\n", "", part,
                   x[i].tp > 1 ? "; stage s is ranks s*tp .. s*tp + tp - 1" : "");
        }
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
    size_t n_other = 0;
    if (!st && *n == 0) st = kvr_store_count_other_definitions(store, f, &n_other);
    kvr_store_close(store);
    if (!st && *n == 0) {
        free(*rows);
        *rows = NULL;
        if (n_other)
            return kvr_error(KVR_ERR_INPUT,
                             "%s: only older definitions of model %s / machine %s have plan rows "
                             "at p = %d (%zu rows; the current ones hash to %s / %s: the model "
                             "or the profile changed since, or the rows predate content hashes); "
                             "run 'kvr search' again",
                             a->db, f->model, f->machine, f->p, n_other, f->model_hash,
                             f->machine_hash);
        char tp[32] = "";
        if (f->tp != 0) snprintf(tp, sizeof tp, ", tp %s", a->tp);
        st = kvr_error(KVR_ERR_INPUT,
                       "%s: no plan rows for model %s, machine %s, p = %d%s, scheme %s, method %s "
                       "(run 'kvr search%s' first)",
                       a->db, f->model, f->machine, f->p, tp, f->scheme, f->method,
                       f->tp ? " --tp ..." : "");
    }
    return st;
}

/* The rows of layout t, as the interpolation sees them: one chunk per stage. */
static size_t rows_of_tp(const struct kvr_plan_row *rows, size_t n, int t, struct kvr_plan_row *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if ((rows[i].tp > 1 ? rows[i].tp : 1) == t) {
            out[k++] = kvr_plan_row_staged(&rows[i]);
        }
    return k;
}

/* The answers of layout t (rows already of t, staged by rows_of_tp; orig: the rows as stored,
 * for their mappings). */
static enum kvr_status answer_tp(const struct lookup_args *a, const struct kvr_model *m,
                                 const struct kvr_machine *h, int t,
                                 const struct kvr_plan_row *rows, const struct kvr_plan_row *orig,
                                 size_t n_rows, const uint64_t *ctx, struct answer *out, size_t n)
{
    struct kvr_objective_opts oo = {
        .scheme = KVR_SCHEME_KVR, .trials = a->mach.trials, .tp = t > 1 ? t : 0};
    enum kvr_status st = kvr_machine_args_percentile(&a->mach, &oo.percentile);
    struct kvr_objective *obj = NULL;
    if (!st) st = kvr_objective_open(m, h, &oo, &obj);
    enum kvr_interp how = (enum kvr_interp)kvr_interp_from_name(a->interp);
    if (!st && t > 1 && how != KVR_INTERP_LINEAR && how != KVR_INTERP_STEFFEN)
        st = kvr_error(KVR_ERR_INPUT,
                       "--interp %s models a chain of whole GPUs: with --tp %d "
                       "use linear or steffen",
                       a->interp, t);
    for (size_t i = 0; i < n && !st; i++) {
        out[i] = (struct answer){.ctx = ctx[i], .p = h->n_gpus, .tp = t};
        st = kvr_interp_partition_model(rows, n_rows, ctx[i], how, a->clamp, m, h, &out[i].a);
        if (st) {
            st = kvr_error_prefix(st, "--ctx %llu: ", (unsigned long long)ctx[i]);
            break;
        }
        for (size_t k = 0; k < n_rows; k++)
            if (rows[k].ctx_tokens == out[i].a.lo_ctx)
                out[i].lower = orig[k], out[i].row = &out[i].lower;
        /* the lower row's mapping, or GPU order: never the mapping of an earlier context */
        int map[KVR_MAX_GPUS], size = h->n_nodes * h->gpus_per_node;
        for (int g = 0; g < size; g++) map[g] = g;
        if (out[i].row && out[i].row->n_mapping)
            st = kvr_mapping_complete(out[i].row->mapping, out[i].row->n_mapping, size, map);
        if (!st) st = kvr_objective_set_mapping(obj, map);
        /* the rows' hand-off: a plan searched for direct is timed as direct */
        if (!st) st = answer_forward(orig, n_rows, &out[i]);
        if (!st) kvr_objective_set_kv_forward(obj, out[i].fwd);
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

/* --tp T: that layout's answers; best: each t the rows have that answers every context with a
 * plan that fits, the fastest per context. */
static enum kvr_status answer_all(const struct lookup_args *a, const struct kvr_model *m,
                                  const struct kvr_machine *h, const struct kvr_plan_row *rows,
                                  size_t n_rows, const uint64_t *ctx, struct answer *out, size_t n)
{
    struct kvr_plan_row *staged = calloc(n_rows ? n_rows : 1, sizeof *staged),
                        *orig = calloc(n_rows ? n_rows : 1, sizeof *orig);
    struct answer *cand = calloc(n, sizeof *cand);
    bool best = !strcmp(a->tp, "best"), any = false;
    enum kvr_status last = KVR_OK;
    enum kvr_status st =
        staged && orig && cand ? KVR_OK : kvr_error(KVR_ERR_NOMEM, "lookup: no memory");
    for (int t = 1; !st && t <= h->n_gpus; t++) {
        if (!best && t != atoi(a->tp)) continue;
        size_t k = rows_of_tp(rows, n_rows, t, staged);
        if (k == 0) continue;
        for (size_t i = 0, j = 0; i < n_rows; i++)
            if ((rows[i].tp > 1 ? rows[i].tp : 1) == t) orig[j++] = rows[i];
        st = answer_tp(a, m, h, t, staged, orig, k, ctx, cand, n);
        /* best: a t whose rows do not answer every context, or whose answer does not fit, is
         * left out; the others compete */
        if (best && (st == KVR_ERR_NOFIT || st == KVR_ERR_INPUT)) {
            last = st, st = KVR_OK;
            continue;
        }
        for (size_t i = 0; !st && i < n; i++)
            if (!any || cand[i].ttft_s < out[i].ttft_s) {
                out[i] = cand[i];
                if (out[i].row) out[i].row = &out[i].lower;
            }
        if (!st) any = true;
    }
    if (!st && !any && last) st = last; /* its message names why */
    if (!st && !any) st = kvr_error(KVR_ERR_INPUT, "%s: no plan rows with tp %s", a->db, a->tp);
    free(staged), free(orig), free(cand);
    return st;
}

enum kvr_status kvr_cmd_lookup(int argc, char **argv)
{
    struct lookup_args a = {0};
    enum kvr_status st;
    if (kvr_opt_start(&lookup_spec, argc, argv, &a, NULL, &st)) return st;
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
    struct kvr_plan_row hk;
    kvr_plan_row_set_hashes(&hk, &m, &h);
    struct kvr_plan_filter f = {.model = m.name,
                                .machine = key,
                                .scheme = a.scheme,
                                .method = a.method,
                                .p = h.n_gpus,
                                .tp = strcmp(a.tp, "best") ? atoi(a.tp) : -1,
                                .model_hash = hk.model_hash,
                                .machine_hash = hk.machine_hash};
    struct kvr_plan_row *rows = NULL;
    struct answer *out = calloc(n_ctx, sizeof *out);
    st = out ? load_rows(&a, &f, &rows, &n_rows) : kvr_error(KVR_ERR_NOMEM, "lookup: no memory");
    if (!st) st = answer_all(&a, &m, &h, rows, n_rows, ctx, out, n_ctx);
    if (!st) print_answers(&a, &f, out, n_ctx);
    free(out), free(rows), free(ctx);
    return st;
}
