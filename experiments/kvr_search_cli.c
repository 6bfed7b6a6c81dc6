#include "kvr_search_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvr_cli.h"
#include "kvr_opt.h"
#include "kvr_out.h"
#include "kvr_units.h"
#include "kvr_hash.h"
#include "kvr_layout_search.h"
#include "kvr_machine_hash.h"
#include "kvr_version.h"

#define BATCH_ROWS 32
#define BATCH_S    0.5

void kvr_search_args_default(struct kvr_search_args *a)
{
    *a = (struct kvr_search_args){.models = "llama-7b",
                                  .ctx = "1k-16k+1k",
                                  .method = "hier",
                                  .scheme = "kvr",
                                  .kv_forward = "whole",
                                  .granularity = 64,
                                  .mach = {.machine = "a100-nvlink", .trials = 16}};
}

enum kvr_status kvr_search_args_finish(struct kvr_search_args *a)
{
    if (a->granularity_arg &&
        (kvr_parse_tokens(a->granularity_arg, KVR_MAX_CTX, &a->granularity) || !a->granularity))
        return kvr_error(KVR_ERR_INPUT, "--granularity: '%s' must be 1..%u tokens",
                         a->granularity_arg, KVR_MAX_CTX);
    enum kvr_status st = kvr_machine_args_finish(&a->mach);
    return st ? st : kvr_path_check("--db", a->db);
}

static enum kvr_status prepare_lists(const struct kvr_search_args *a, struct kvr_search_job *job,
                                     uint64_t **ctx, size_t *n_ctx)
{
    char buf[2048];
    const char *parts[KVR_SEARCH_MAX_LIST];
    job->n_models = kvr_cli_split_copy(a->models, buf, sizeof buf, parts, KVR_SEARCH_MAX_LIST);
    if (job->n_models < 1)
        return kvr_error(KVR_ERR_INPUT, "--model: '%s' is not a list of 1..%d models", a->models,
                         KVR_SEARCH_MAX_LIST);
    enum kvr_status dup = kvr_cli_check_unique("--model", parts, job->n_models);
    if (dup) return dup;
    for (int i = 0; i < job->n_models; i++) {
        enum kvr_status st = kvr_model_resolve(parts[i], &job->models[i]);
        if (st) return kvr_error_prefix(st, "--model: ");
        kvr_hash_hex(kvr_model_hash(&job->models[i]), job->model_hashes[i]);
    }
    job->n_machines =
        kvr_cli_split_copy(a->mach.machine, buf, sizeof buf, parts, KVR_SEARCH_MAX_LIST);
    if (job->n_machines < 1)
        return kvr_error(KVR_ERR_INPUT, "--machine: '%s' is not a list of 1..%d profiles",
                         a->mach.machine, KVR_SEARCH_MAX_LIST);
    if ((dup = kvr_cli_check_unique("--machine", parts, job->n_machines))) return dup;
    for (int i = 0; i < job->n_machines; i++)
        snprintf(job->machine_names[i], sizeof job->machine_names[i], "%s", parts[i]);
    return kvr_cli_parse_ctx_list("--ctx", a->ctx, ctx, n_ctx);
}

/* Every machine at every p, built once now so a bad value stops us before any I/O. */
static enum kvr_status check_machines(const struct kvr_search_args *a, struct kvr_search_job *job)
{
    static struct kvr_machine h;
    for (int i = 0; i < job->n_machines; i++) {
        enum kvr_status st = kvr_machine_args_build(&a->mach, job->machine_names[i], NULL, &h);
        if (st) return st;
        kvr_machine_args_key(&a->mach, h.name, job->machine_keys[i], sizeof job->machine_keys[i]);
        if (!a->gpus) job->gpus[0] = h.n_gpus, job->n_gpus = 1;
        kvr_hash_hex(kvr_machine_hash(&h), job->machine_hashes[i][h.n_gpus]);
        for (int k = 0; a->gpus && k < job->n_gpus; k++) {
            char g[16];
            snprintf(g, sizeof g, "%d", job->gpus[k]);
            if ((st = kvr_machine_args_build(&a->mach, job->machine_names[i], g, &h))) return st;
            kvr_hash_hex(kvr_machine_hash(&h), job->machine_hashes[i][h.n_gpus]);
        }
    }
    return KVR_OK;
}

/* The t of model m on p GPUs: --tp's list (each must apply: refused otherwise), every t the
 * model allows (auto), or 1. */
static enum kvr_status item_tps(const struct kvr_search_job *job, int m, int p, int *tps, int *n)
{
    *n = 0;
    if (!job->n_tps && !job->tp_auto) return tps[(*n)++] = 1, KVR_OK;
    for (int t = 1; job->tp_auto && t <= p; t++)
        if (!kvr_layout_check_tp(&job->models[m], p, t, "--tp")) tps[(*n)++] = t;
    for (int k = 0; k < job->n_tps; k++) {
        enum kvr_status st = kvr_layout_check_tp(&job->models[m], p, job->tps[k], "--tp");
        if (st) return kvr_error_prefix(st, "%s on %d GPUs: ", job->models[m].name, p);
        tps[(*n)++] = job->tps[k];
    }
    return KVR_OK;
}

static enum kvr_status make_items(struct kvr_search_job *job, const uint64_t *ctx, size_t n_ctx)
{
    for (int g = 0; g < job->n_gpus; g++) /* every rank needs a token: refused before any I/O */
        for (size_t c = 0; c < n_ctx; c++)
            if (ctx[c] < (uint64_t)job->gpus[g])
                return kvr_error(KVR_ERR_INPUT, "--ctx: %llu is smaller than --gpus %d",
                                 (unsigned long long)ctx[c], job->gpus[g]);
    int tps[KVR_MAX_GPUS], n_tps;
    size_t n_groups = 0; /* (model, machine, p, t) */
    for (int m = 0; m < job->n_models; m++)
        for (int g = 0; g < job->n_gpus; g++) {
            enum kvr_status st = item_tps(job, m, job->gpus[g], tps, &n_tps);
            if (st) return st;
            n_groups += (size_t)n_tps * (size_t)job->n_machines;
        }
    job->n_items = n_groups * n_ctx;
    job->items = calloc(job->n_items ? job->n_items : 1, sizeof *job->items);
    job->done = calloc(job->n_items ? job->n_items : 1, sizeof *job->done);
    if (!job->items || !job->done)
        return kvr_error(KVR_ERR_NOMEM, "search: out of memory for %zu searches", job->n_items);
    size_t k = 0;
    for (int m = 0; m < job->n_models; m++)
        for (int h = 0; h < job->n_machines; h++)
            for (int g = 0; g < job->n_gpus; g++) {
                enum kvr_status st = item_tps(job, m, job->gpus[g], tps, &n_tps);
                if (st) return st;
                for (int t = 0; t < n_tps; t++) /* a group per (model, machine, p, t) */
                    for (size_t c = 0; c < n_ctx; c++)
                        job->items[k++] =
                            (struct kvr_search_item){m, h, job->gpus[g], tps[t], ctx[c], false};
            }
    job->n_items = k;
    return KVR_OK;
}

enum kvr_status kvr_search_check_names(const char *method, const char *scheme)
{
    int s = kvr_scheme_from_name(scheme);
    if (kvr_method_from_name(method) < 0)
        return kvr_error(KVR_ERR_INPUT,
                         "--method: unknown method '%s' (hier, exhaustive, "
                         "nelder-mead, even, balanced, descent, multistart)",
                         method);
    char names[256];
    if (s < 0) {
        kvr_scheme_list_text(KVR_LIST_SCHEMES, names, sizeof names);
        return kvr_error(KVR_ERR_INPUT, "--scheme: unknown scheme '%s' (%s)", scheme, names);
    }
    if (!(kvr_scheme_get(s)->options & KVR_SO_SEARCHED)) {
        kvr_scheme_list_text(KVR_LIST_SEARCHED, names, sizeof names);
        return kvr_error(KVR_ERR_INPUT,
                         "--scheme: '%s' does not take a partition that the search optimises "
                         "(only %s)",
                         scheme, names);
    }
    return KVR_OK;
}

enum kvr_status kvr_search_job_prepare(const struct kvr_search_args *a, struct kvr_search_job *job)
{
    memset(job, 0, sizeof *job);
    job->mach = a->mach;
    uint64_t *ctx = NULL;
    size_t n_ctx = 0;
    int method = kvr_method_from_name(a->method), scheme = kvr_scheme_from_name(a->scheme);
    enum kvr_status st = kvr_search_check_names(a->method, a->scheme);
    job->kv_forward = strcmp(a->kv_forward, "auto") ? kvr_kv_forward_from_name(a->kv_forward) : -1;
    if (!st && job->kv_forward < 0 && strcmp(a->kv_forward, "auto"))
        st = kvr_error(KVR_ERR_INPUT,
                       "--kv-forward: unknown mode '%s' (whole, streamed, direct, auto)",
                       a->kv_forward);
    if (!st && a->tp && !strcmp(a->tp, "auto"))
        job->tp_auto = true;
    else if (!st && a->tp)
        st = kvr_cli_parse_int_list("--tp", a->tp, 1, KVR_MAX_GPUS, job->tps, KVR_MAX_GPUS,
                                    &job->n_tps);
    if (!st && a->sp && !a->tp) st = kvr_error(KVR_ERR_INPUT, "--sp needs --tp LIST|auto");
    bool staged = job->tp_auto; /* --sp acts inside TP groups: some t must be 2 or more */
    for (int i = 0; i < job->n_tps; i++) staged = staged || job->tps[i] > 1;
    if (!st && a->sp && !staged)
        st = kvr_error(KVR_ERR_INPUT,
                       "--sp: sequence parallelism needs a TP degree of 2 or more, not --tp %s",
                       a->tp);
    job->sp = a->sp;
    if (!st) st = kvr_machine_args_percentile(&a->mach, &job->objective.percentile);
    if (!st && a->gpus)
        st = kvr_cli_parse_int_list("--gpus", a->gpus, 1, KVR_MAX_GPUS, job->gpus, KVR_MAX_GPUS,
                                    &job->n_gpus);
    if (!st) st = prepare_lists(a, job, &ctx, &n_ctx);
    if (!st) st = check_machines(a, job);
    if (!st) st = make_items(job, ctx, n_ctx);
    free(ctx);
    job->method = (enum kvr_method)method;
    job->objective.scheme = scheme < 0 ? KVR_SCHEME_KVR : (enum kvr_scheme)scheme;
    job->objective.trials = a->mach.trials;
    kvr_search_opts_default(&job->opts);
    job->opts.granularity = a->granularity;
    return st;
}

static void fill_key(const struct kvr_search_job *job, const struct kvr_search_item *it,
                     struct kvr_plan_row *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", job->models[it->model].name);
    snprintf(r->machine, sizeof r->machine, "%s", job->machine_keys[it->machine]);
    snprintf(r->scheme, sizeof r->scheme, "%s", kvr_scheme_name(job->objective.scheme));
    snprintf(r->method, sizeof r->method, "%s", kvr_method_name(job->method));
    r->p = it->p;
    r->tp = it->tp;
    r->ctx_tokens = it->ctx;
    snprintf(r->model_hash, sizeof r->model_hash, "%s", job->model_hashes[it->model]);
    snprintf(r->machine_hash, sizeof r->machine_hash, "%s",
             job->machine_hashes[it->machine][it->p]);
}

static enum kvr_status open_group(struct kvr_search_job *job, const struct kvr_search_item *it,
                                  struct kvr_objective **obj);

/* Rows from before content hashes with this item's names: a row whose stored TTFT the current
 * definitions reproduce (to 1e-9) was searched on them and takes their hashes; any other is
 * marked stale and never served again. */
static enum kvr_status settle_legacy(struct kvr_search_job *job, struct kvr_store *store,
                                     const struct kvr_search_item *it)
{
    struct kvr_plan_row key, *rows = NULL;
    fill_key(job, it, &key);
    struct kvr_plan_filter f = {.model = key.model,
                                .machine = key.machine,
                                .scheme = key.scheme,
                                .method = key.method,
                                .p = key.p};
    size_t n = 0;
    int64_t *ids = NULL;
    bool *matched = NULL;
    struct kvr_objective *obj = NULL;
    enum kvr_status st = kvr_store_list_legacy(store, &f, &rows, &n, &ids);
    if (!st && n && !(matched = calloc(n, sizeof *matched)))
        st = kvr_error(KVR_ERR_NOMEM, "search: out of memory");
    if (!st && n) st = open_group(job, it, &obj);
    for (size_t i = 0; i < n && !st; i++) {
        double t = kvr_objective_eval(obj, rows[i].ctx_tokens, rows[i].tokens);
        matched[i] = fabs(t - rows[i].predicted_ttft_s) <= 1e-9 * rows[i].predicted_ttft_s;
        job->n_legacy_matched += matched[i], job->n_legacy_stale += !matched[i];
    }
    if (!st) st = kvr_store_settle_legacy(store, ids, matched, n, key.model_hash, key.machine_hash);
    kvr_objective_free(obj);
    free(rows), free(ids), free(matched);
    return st;
}

enum kvr_status kvr_search_job_skip_present(struct kvr_search_job *job, struct kvr_store *store,
                                            bool force)
{
    for (size_t i = 0; i < job->n_items; i++) {
        const struct kvr_search_item *it = &job->items[i], *prev = i ? it - 1 : NULL;
        if (it->tp > 1 || (prev && prev->model == it->model && prev->machine == it->machine &&
                           prev->p == it->p && prev->tp == it->tp))
            continue; /* rows from before content hashes are all t = 1: once per group */
        enum kvr_status st = settle_legacy(job, store, it);
        if (st) return st;
    }
    for (size_t i = 0; i < job->n_items && !force; i++) {
        struct kvr_plan_row key;
        fill_key(job, &job->items[i], &key);
        uint64_t g;
        enum kvr_status st = kvr_store_plan_grain(store, &key, &job->items[i].present, &g);
        if (!st && job->items[i].present) /* a row on another grid is not the one asked for */
            st = kvr_plan_row_check_grain(&key, g, job->opts.granularity, "--granularity");
        if (st) return st;
        job->n_skipped += job->items[i].present;
    }
    return KVR_OK;
}

void kvr_search_provenance(const char *argv_text, const char *device, struct kvr_provenance *p,
                           char *host, size_t host_cap)
{
    if (gethostname(host, host_cap) != 0) snprintf(host, host_cap, "unknown");
    host[host_cap - 1] = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *p = (struct kvr_provenance){.version = KVR_GIT_VERSION,
                                 .host = host,
                                 .device = device,
                                 .argv = argv_text,
                                 .started_unix_s = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec};
}

/* Every model and every machine at every p of the job, each stored once (by hash). */
static enum kvr_status put_definitions(const struct kvr_search_job *job, struct kvr_store *store,
                                       int64_t run_id)
{
    static struct kvr_machine h;
    struct kvr_definition d;
    enum kvr_status st = KVR_OK;
    for (int m = 0; m < job->n_models && !st; m++) {
        if (!(st = kvr_definition_of_model(&job->models[m], &d)))
            st = kvr_store_put_definition(store, &d, run_id);
        kvr_definition_free(&d);
    }
    for (int i = 0; i < job->n_machines && !st; i++)
        for (int g = 0; g < job->n_gpus && !st; g++) {
            char p[16];
            snprintf(p, sizeof p, "%d", job->gpus[g]);
            if ((st = kvr_machine_args_build(&job->mach, job->machine_names[i], p, &h))) break;
            if (!(st = kvr_definition_of_machine(&h, job->machine_keys[i], job->machine_names[i],
                                                 &d)))
                st = kvr_store_put_definition(store, &d, run_id);
            kvr_definition_free(&d);
        }
    return st;
}

/* Writer state: the run row is added with the first batch, so a search with nothing to do
 * writes nothing. */
struct writer {
    struct kvr_store *store;
    const char *argv_text;
    int64_t run_id;
    size_t flushed;
    double last_s;
    bool replace;
};

static enum kvr_status flush(struct writer *w, struct kvr_search_job *job, bool force)
{
    if (!w->store || w->flushed == job->n_done) return KVR_OK;
    if (!force && job->n_done - w->flushed < BATCH_ROWS && kvr_cli_now_s() - w->last_s < BATCH_S)
        return KVR_OK;
    if (w->run_id == 0) {
        char host[256];
        struct kvr_provenance p;
        kvr_search_provenance(w->argv_text, "simulator", &p, host, sizeof host);
        enum kvr_status st = kvr_store_add_run(w->store, &p, &w->run_id);
        if (!st) st = put_definitions(job, w->store, w->run_id);
        if (st) return st;
    }
    for (size_t i = w->flushed; i < job->n_done; i++) job->done[i].run_id = w->run_id;
    enum kvr_status st =
        kvr_store_put_plans(w->store, job->done + w->flushed, job->n_done - w->flushed, w->replace);
    w->flushed = job->n_done;
    w->last_s = kvr_cli_now_s();
    return st;
}

static enum kvr_status open_group(struct kvr_search_job *job, const struct kvr_search_item *it,
                                  struct kvr_objective **obj)
{
    static struct kvr_machine h;
    char g[16];
    snprintf(g, sizeof g, "%d", it->p);
    kvr_objective_free(*obj);
    *obj = NULL;
    enum kvr_status st = kvr_machine_args_build(&job->mach, job->machine_names[it->machine], g, &h);
    return st ? st : kvr_objective_open(&job->models[it->model], &h, &job->objective, obj);
}

/* A layout of t > 1 GPUs a stage (kvr_layout_search.h over both mappings), in the job's
 * hand-off mode or each; *found false when no candidate fits. */
static enum kvr_status search_layout(struct kvr_search_job *job, const struct kvr_search_item *it,
                                     struct kvr_plan_row *r, bool *found)
{
    static _Thread_local struct kvr_machine h;
    static _Thread_local struct kvr_layout_result res;
    char g[16];
    snprintf(g, sizeof g, "%d", it->p);
    enum kvr_status st = kvr_machine_args_build(&job->mach, job->machine_names[it->machine], g, &h);
    struct kvr_layout_opts o;
    kvr_layout_opts_default(&o);
    o.method = job->method, o.tp_only = it->tp, o.search = job->opts;
    o.objective = job->objective, o.objective.sp = job->sp;
    int lo = job->kv_forward < 0 ? 0 : job->kv_forward,
        hi = job->kv_forward < 0 ? KVR_N_FWD - 1 : lo;
    double best = INFINITY;
    enum kvr_status nofit = KVR_OK;
    for (int fm = lo; !st && fm <= hi; fm++) {
        o.objective.kv_forward = (enum kvr_kv_forward)fm;
        if ((st = kvr_layout_search(&job->models[it->model], &h, it->ctx, &o, &res))) break;
        struct kvr_plan_row x = *r;
        if ((nofit = kvr_layout_row_set(&res, &h, &x))) continue;
        r->evaluations += x.evaluations;
        if (x.predicted_ttft_s >= best) continue;
        best = x.predicted_ttft_s, x.evaluations = r->evaluations, *r = x;
        snprintf(r->kv_forward, sizeof r->kv_forward, "%s", kvr_kv_forward_name(fm));
    }
    *found = isfinite(best);
    if (!st && !*found) st = nofit;
    return st == KVR_ERR_NOFIT ? KVR_OK : st;
}

/* A layout's row, or its refusal: said on stderr; counted as a failure unless --tp auto. */
static enum kvr_status search_layout_item(struct kvr_search_job *job,
                                          const struct kvr_search_item *it)
{
    double t0 = kvr_cli_now_s();
    struct kvr_plan_row *r = &job->done[job->n_done];
    fill_key(job, it, r);
    bool found = false;
    enum kvr_status st = search_layout(job, it, r, &found);
    if (st) return st;
    if (!found) {
        if (!job->tp_auto || !kvr_opt_quiet)
            fprintf(stderr, "kvr: search: %s on %s, p = %d, tp = %d, ctx = %llu: %s\n",
                    job->models[it->model].name, job->machine_keys[it->machine], it->p, it->tp,
                    (unsigned long long)it->ctx, kvr_error_message());
        job->tp_auto ? job->n_tp_nofit++ : job->n_nofit++;
        return KVR_OK;
    }
    r->search_wall_s = kvr_cli_now_s() - t0;
    job->n_done++;
    return KVR_OK;
}

/* The search in the job's hand-off mode, or in each (auto), keeping the fastest (the first of
 * equals: whole before streamed before direct). */
static enum kvr_status search_item(struct kvr_search_job *job, const struct kvr_search_item *it,
                                   struct kvr_objective *obj)
{
    struct kvr_plan_search ps, best;
    double t0 = kvr_cli_now_s();
    enum kvr_status st = KVR_OK;
    /* --kv-forward auto tries every hand-off mode and keeps the fastest, with its mode */
    int lo = job->kv_forward < 0 ? 0 : job->kv_forward,
        hi = job->kv_forward < 0 ? KVR_N_FWD - 1 : lo, mode = -1;
    uint64_t evals = 0;
    for (int fm = lo; fm <= hi; fm++) {
        kvr_objective_set_kv_forward(obj, (enum kvr_kv_forward)fm);
        if (job->method == KVR_METHOD_HIER) { /* the product: over mappings, and fewer GPUs */
            st = kvr_search_plan(obj, it->ctx, &job->opts, &ps);
        } else {
            memset(&ps, 0, sizeof ps);
            for (int g = 0; g < KVR_MAX_GPUS; g++) ps.map[g] = g;
            st = kvr_search_run(obj, job->method, it->ctx, &job->opts, &ps.best);
        }
        if (st == KVR_ERR_NOFIT) continue;
        if (st) return st;
        evals += ps.best.n_evals;
        if (mode < 0 || ps.best.ttft_s < best.best.ttft_s) best = ps, mode = fm;
    }
    if (mode < 0 && job->tp_auto) { /* --tp auto: t = 1 not fitting is one of the layouts */
        if (!kvr_opt_quiet)
            fprintf(stderr, "kvr: search: %s on %s, p = %d, tp = 1, ctx = %llu: %s\n",
                    job->models[it->model].name, job->machine_keys[it->machine], it->p,
                    (unsigned long long)it->ctx, kvr_error_message());
        job->n_tp_nofit++;
        return KVR_OK;
    }
    if (mode < 0) { /* never stored: said, counted, and the exit code is 3 */
        fprintf(stderr, "kvr: search: %s on %s, p = %d, ctx = %llu: %s\n",
                job->models[it->model].name, job->machine_keys[it->machine], it->p,
                (unsigned long long)it->ctx, kvr_error_message());
        job->n_nofit++;
        return KVR_OK;
    }
    ps = best;
    struct kvr_plan_row *r = &job->done[job->n_done++];
    fill_key(job, it, r);
    kvr_plan_row_set_search(r, &ps);
    snprintf(r->kv_forward, sizeof r->kv_forward, "%s", kvr_kv_forward_name(mode));
    r->evaluations = evals; /* over every mode tried */
    r->search_wall_s = kvr_cli_now_s() - t0;
    return KVR_OK;
}

enum kvr_status kvr_search_job_run(struct kvr_search_job *job, struct kvr_store *store,
                                   const char *argv_text, bool replace)
{
    struct writer w = {store, argv_text, 0, 0, kvr_cli_now_s(), replace};
    struct kvr_objective *obj = NULL;
    const struct kvr_search_item *prev = NULL;
    size_t todo = job->n_items - job->n_skipped, n = 0;
    double t0 = kvr_cli_now_s();
    enum kvr_status st = KVR_OK;
    for (size_t i = 0; i < job->n_items && !st; i++) {
        const struct kvr_search_item *it = &job->items[i];
        if (it->present) continue;
        if (it->tp > 1) {
            st = search_layout_item(job, it);
        } else {
            if (!prev || prev->model != it->model || prev->machine != it->machine ||
                prev->p != it->p)
                st = open_group(job, it, &obj);
            prev = it;
            if (!st) st = search_item(job, it, obj);
        }
        if (!st) st = flush(&w, job, false);
        kvr_cli_progress("search", ++n, todo, kvr_cli_now_s() - t0);
    }
    kvr_cli_progress_end();
    enum kvr_status fst = flush(&w, job, true); /* keep what finished, even after an error */
    kvr_objective_free(obj);
    if (!st && !fst && job->n_nofit)
        return kvr_error(KVR_ERR_NOFIT,
                         "search: %zu of %zu plans do not fit in GPU memory (not "
                         "stored)",
                         job->n_nofit, todo);
    return st ? st : fst;
}

void kvr_search_job_free(struct kvr_search_job *job)
{
    free(job->items);
    free(job->done);
    job->items = NULL, job->done = NULL;
}

void kvr_search_json_definitions(struct kvr_json *j, const char *model, const char *model_hash,
                                 const char *machine, const char *machine_hash)
{
    kvr_json_kv_str(j, "model", model);
    kvr_json_kv_str(j, "model_hash", model_hash);
    kvr_json_kv_str(j, "machine", machine);
    kvr_json_kv_str(j, "machine_hash", machine_hash);
}

void kvr_search_json_row(struct kvr_json *j, const struct kvr_plan_row *r)
{
    kvr_json_object_begin(j);
    kvr_search_json_definitions(j, r->model, r->model_hash, r->machine, r->machine_hash);
    kvr_json_kv_u64(j, "p", (uint64_t)r->p);
    kvr_json_kv_u64(j, "tp", (uint64_t)(r->tp > 1 ? r->tp : 1));
    kvr_json_kv_u64(j, "ctx_tokens", r->ctx_tokens);
    kvr_json_kv_str(j, "scheme", r->scheme);
    kvr_json_kv_str(j, "method", r->method);
    kvr_json_kv_str(j, "kv_forward", r->kv_forward[0] ? r->kv_forward : "whole");
    kvr_json_key(j, "partition_tokens"); /* one chunk per stage */
    kvr_json_array_begin(j);
    for (int i = 0; i < kvr_plan_row_chunks(r); i++) kvr_json_u64(j, r->tokens[i]);
    kvr_json_array_end(j);
    kvr_json_kv_dbl(j, "predicted_ttft_s", r->predicted_ttft_s);
    kvr_json_kv_u64(j, "granularity_tokens", r->granularity_tokens);
    kvr_json_kv_u64(j, "evaluations", r->evaluations);
    kvr_json_kv_dbl(j, "search_wall_s", r->search_wall_s);
    kvr_json_key(j, "mapping");
    kvr_json_array_begin(j);
    for (int i = 0; i < r->p; i++) kvr_json_u64(j, (uint64_t)(r->n_mapping ? r->mapping[i] : i));
    kvr_json_array_end(j);
    kvr_json_kv_u64(j, "fewer_p", (uint64_t)r->fewer_p);
    if (r->fewer_p > 0) {
        kvr_json_key(j, "fewer_partition");
        kvr_json_array_begin(j);
        for (int i = 0; i < r->fewer_p; i++) kvr_json_u64(j, r->fewer_tokens[i]);
        kvr_json_array_end(j);
        kvr_json_kv_dbl(j, "fewer_predicted_ttft_s", r->fewer_predicted_ttft_s);
    }
    kvr_json_object_end(j);
}
