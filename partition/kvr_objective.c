/* The search objective: a plan's simulated TTFT, or its mean / percentile over noise trials.
 * One simulator per trial, each drawn once, so every candidate sees the same draws. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_layout.h"
#include "kvr_lookup_int.h"
#include "kvr_search.h"
#include "kvr_stats.h"

struct kvr_objective {
    struct kvr_model model;
    struct kvr_machine base;    /* as opened */
    struct kvr_machine machine; /* base with the chain mapping applied (what the sims read) */
    int map[KVR_MAX_GPUS];      /* chain position -> GPU of base */
    /* refusals for memory at context nofit_ctx only: one objective serves many contexts (kvr
     * search's list), and a refusal at another context says nothing about this one */
    uint64_t nofit_ctx, n_nofit; /* evaluations refused for memory */
    double nofit_min_bytes;      /* the least any refused plan's worst rank needed */
    double nofit_avail_bytes;
    double last_nofit_ratio; /* the last evaluation's worst rank need / available; 0: fit */
    struct kvr_sim **sims;
    struct kvr_machine screen_machine; /* machine with random noise at its mean share */
    struct kvr_sim *screen_sim;        /* opened at the first screen */
    uint64_t n_trials, n_evals;
    double percentile;
    double *vals;
    struct kvr_plan plan;
    struct kvr_objective_opts opts;
};

static const char *const method_names[KVR_N_METHODS] = {
    "hier", "exhaustive", "nelder-mead", "even", "balanced", "descent", "multistart"};

const char *kvr_method_name(enum kvr_method m)
{
    return m >= 0 && m < KVR_N_METHODS ? method_names[m] : "?";
}

int kvr_method_from_name(const char *name)
{
    for (int i = 0; i < KVR_N_METHODS; i++)
        if (!strcmp(name, method_names[i])) return i;
    return -1;
}

static enum kvr_status open_sims(struct kvr_objective *obj)
{
    obj->sims = calloc(obj->n_trials, sizeof *obj->sims);
    obj->vals = calloc(obj->n_trials, sizeof *obj->vals);
    if (!obj->sims || !obj->vals)
        return kvr_error(KVR_ERR_NOMEM, "search: out of memory for %llu trials",
                         (unsigned long long)obj->n_trials);
    for (uint64_t t = 0; t < obj->n_trials; t++) {
        enum kvr_status st = kvr_sim_open(&obj->model, &obj->machine, &obj->sims[t]);
        if (st || (st = kvr_sim_draw_noise(obj->sims[t], t))) return st;
    }
    return KVR_OK;
}

void kvr_objective_free(struct kvr_objective *obj)
{
    if (!obj) return;
    for (uint64_t t = 0; obj->sims && t < obj->n_trials; t++) kvr_sim_free(obj->sims[t]);
    kvr_sim_free(obj->screen_sim);
    free(obj->sims);
    free(obj->vals);
    free(obj);
}

enum kvr_status kvr_objective_open(const struct kvr_model *model, const struct kvr_machine *machine,
                                   const struct kvr_objective_opts *opts,
                                   struct kvr_objective **out)
{
    if (opts->scheme != KVR_SCHEME_KVR)
        return kvr_error(KVR_ERR_INPUT, "scheme %s does not take a partition (only kvr does)",
                         kvr_scheme_name(opts->scheme));
    if (!(opts->percentile >= 0 && opts->percentile <= 100))
        return kvr_error(KVR_ERR_INPUT, "percentile %g is outside (0, 100]", opts->percentile);
    struct kvr_objective *obj = calloc(1, sizeof *obj);
    if (!obj) return kvr_error(KVR_ERR_NOMEM, "search: out of memory");
    obj->model = *model;
    obj->base = obj->machine = *machine;
    for (int i = 0; i < KVR_MAX_GPUS; i++) obj->map[i] = i;
    obj->nofit_min_bytes = INFINITY;
    /* without noise every trial is the same: one is enough */
    obj->n_trials = machine->noise.mode == KVR_NOISE_NONE || opts->trials < 1 ? 1 : opts->trials;
    obj->percentile = opts->percentile;
    obj->opts = *opts;
    obj->plan = (struct kvr_plan){.scheme = opts->scheme,
                                  .p = machine->n_gpus,
                                  .kv_forward = opts->kv_forward,
                                  .tp = opts->tp,
                                  .sp = opts->sp};
    enum kvr_status st = opts->tp > 0 ? kvr_layout_check(model, &obj->plan) : KVR_OK;
    if (!st) st = open_sims(obj);
    if (st)
        kvr_objective_free(obj);
    else
        *out = obj;
    return st;
}

/* The mean over sims[0..n_sims) (the objective itself on obj's trials). */
static double eval_sims(struct kvr_objective *obj, uint64_t ctx, const uint64_t *tokens,
                        struct kvr_sim **sims, uint64_t n_sims)
{
    struct kvr_plan *plan = &obj->plan;
    uint64_t sum = 0;
    obj->n_evals++;
    obj->last_nofit_ratio = 0;
    int n = kvr_plan_stages(plan);
    for (int i = 0; i < n; i++) {
        if (tokens[i] == 0) return INFINITY;
        sum += tokens[i];
    }
    if (sum != ctx || ctx > KVR_MAX_CTX) return INFINITY;
    plan->ctx = ctx;
    memcpy(plan->tokens, tokens, (size_t)n * sizeof *tokens);
    double mean = 0;
    for (uint64_t t = 0; t < n_sims; t++) {
        struct kvr_sim_result res;
        if (kvr_sim_run(sims[t], plan, &res, NULL)) return INFINITY;
        if (!kvr_sim_fits(&res)) { /* memory does not depend on the noise: refuse it at once */
            double need = kvr_sim_mem_needed(&res);
            if (obj->nofit_ctx != ctx)
                obj->nofit_ctx = ctx, obj->n_nofit = 0, obj->nofit_min_bytes = INFINITY;
            obj->n_nofit++;
            obj->nofit_min_bytes = need < obj->nofit_min_bytes ? need : obj->nofit_min_bytes;
            obj->nofit_avail_bytes = res.mem_available_bytes;
            obj->last_nofit_ratio = need / res.mem_available_bytes;
            return INFINITY;
        }
        if (sims != obj->sims) return res.ttft_s; /* the screen: one run */
        obj->vals[t] = res.ttft_s;
        mean += res.ttft_s / (double)obj->n_trials;
    }
    if (obj->n_trials == 1) return obj->vals[0];
    return obj->percentile > 0 ? kvr_quantile(obj->vals, obj->n_trials, obj->percentile / 100)
                               : mean;
}

double kvr_objective_eval(struct kvr_objective *obj, uint64_t ctx, const uint64_t *tokens)
{
    return eval_sims(obj, ctx, tokens, obj->sims, obj->n_trials);
}

double kvr_noise_mean_share(double share)
{
    return 1 - share / -log1p(-share);
}

/* The screen's machine: the mapped one with random noise replaced by its mean share. */
static void screen_machine(struct kvr_objective *obj)
{
    obj->screen_machine = obj->machine;
    struct kvr_noise *nz = &obj->screen_machine.noise;
    if (nz->mode == KVR_NOISE_RANDOM)
        nz->mode = KVR_NOISE_CONSTANT, nz->share = kvr_noise_mean_share(nz->share);
}

double kvr_objective_screen(struct kvr_objective *obj, uint64_t ctx, const uint64_t *tokens)
{
    if (obj->n_trials == 1) return kvr_objective_eval(obj, ctx, tokens);
    if (!obj->screen_sim) {
        screen_machine(obj);
        if (kvr_sim_open(&obj->model, &obj->screen_machine, &obj->screen_sim) ||
            kvr_sim_draw_noise(obj->screen_sim, 0))
            return INFINITY;
    }
    return eval_sims(obj, ctx, tokens, &obj->screen_sim, 1);
}

uint64_t kvr_objective_trials(const struct kvr_objective *obj)
{
    return obj->n_trials;
}

void kvr_objective_set_kv_forward(struct kvr_objective *obj, enum kvr_kv_forward f)
{
    obj->plan.kv_forward = f;
    obj->opts.kv_forward = f; /* and the objectives opened from it (kvr_objective_open_fewer) */
}

enum kvr_kv_forward kvr_objective_kv_forward(const struct kvr_objective *obj)
{
    return obj->plan.kv_forward;
}

double kvr_objective_last_nofit_ratio(const struct kvr_objective *obj)
{
    return obj->last_nofit_ratio;
}

uint64_t kvr_objective_evals(const struct kvr_objective *obj)
{
    return obj->n_evals;
}

int kvr_objective_p(const struct kvr_objective *obj)
{
    return kvr_plan_stages(&obj->plan);
}

int kvr_objective_tp(const struct kvr_objective *obj)
{
    return kvr_plan_tp(&obj->plan);
}

void kvr_search_start(const struct kvr_objective *obj, uint64_t ctx, uint64_t g, uint64_t *tokens)
{
    struct kvr_plan plan = {
        .scheme = KVR_SCHEME_KVR, .p = obj->plan.p, .ctx = ctx, .tp = obj->plan.tp};
    kvr_plan_balanced(&plan, &obj->model, &obj->machine.gpu);
    double frac[KVR_MAX_GPUS];
    int n = kvr_plan_stages(&plan);
    kvr_lookup_fractions(plan.tokens, n, frac);
    kvr_lookup_round(frac, n, ctx, g, tokens);
}

const struct kvr_model *kvr_objective_model(const struct kvr_objective *obj)
{
    return &obj->model;
}

const struct kvr_machine *kvr_objective_machine(const struct kvr_objective *obj)
{
    return &obj->machine;
}

/* Chain position i runs on GPU map[i] of the opened machine: the links (and which links carry
 * noise) are permuted, so position i -> i+1 is the link map[i] -> map[i+1]. */
enum kvr_status kvr_machine_permute(const struct kvr_machine *base, const int *map,
                                    struct kvr_machine *out)
{
    int n = base->n_nodes * base->gpus_per_node;
    bool seen[KVR_MAX_GPUS] = {false};
    for (int i = 0; i < n; i++) {
        if (map[i] < 0 || map[i] >= n || seen[map[i]])
            return kvr_error(KVR_ERR_INPUT,
                             "mapping: entry %d (GPU %d) is not a permutation of 0..%d", i, map[i],
                             n - 1);
        seen[map[i]] = true;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            out->link_Bps[i][j] = base->link_Bps[map[i]][map[j]];
            out->link_lat_s[i][j] = base->link_lat_s[map[i]][map[j]];
            out->noise.on[i][j] = base->noise.on[map[i]][map[j]];
        }
    for (int i = 0; i < n; i++) out->gpu_of[i] = base->permuted ? base->gpu_of[map[i]] : map[i];
    out->permuted = true;
    return KVR_OK;
}

enum kvr_status kvr_mapping_complete(const int *chain, int p, int n_total, int *map)
{
    bool used[KVR_MAX_GPUS] = {false};
    int k = 0;
    for (int i = 0; i < p; i++) {
        if (chain[i] < 0 || chain[i] >= n_total || used[chain[i]])
            return kvr_error(KVR_ERR_INPUT,
                             "mapping: GPU %d at chain position %d is not one of "
                             "0..%d, or repeats",
                             chain[i], i, n_total - 1);
        used[map[k++] = chain[i]] = true;
    }
    for (int j = 0; j < n_total; j++)
        if (!used[j]) map[k++] = j;
    return KVR_OK;
}

enum kvr_status kvr_objective_set_mapping(struct kvr_objective *obj, const int *map)
{
    const struct kvr_machine *b = &obj->base;
    int n = b->n_nodes * b->gpus_per_node;
    enum kvr_status st = kvr_machine_permute(b, map, &obj->machine);
    if (st) return st;
    memcpy(obj->map, map, (size_t)n * sizeof *map);
    for (uint64_t t = 0; t < obj->n_trials; t++)
        if ((st = kvr_sim_draw_noise(obj->sims[t], t))) return st;
    if (obj->screen_sim) screen_machine(obj), st = kvr_sim_draw_noise(obj->screen_sim, 0);
    return st;
}

enum kvr_status kvr_objective_nofit_error(const struct kvr_objective *obj, uint64_t ctx)
{
    if (obj->n_nofit == 0 || obj->nofit_ctx != ctx)
        return kvr_error(KVR_ERR_RUNTIME, "search found no valid partition of %llu on %d ranks",
                         (unsigned long long)ctx, obj->plan.p);
    if (obj->plan.tp > 1)
        return kvr_error(KVR_ERR_NOFIT,
                         "no partition of %llu tokens on %d GPUs as %d stages of tp %d fits in GPU "
                         "memory: the best needs %.0f bytes on its fullest GPU, %.0f are available",
                         (unsigned long long)ctx, obj->plan.p, kvr_plan_stages(&obj->plan),
                         obj->plan.tp, obj->nofit_min_bytes, obj->nofit_avail_bytes);
    return kvr_error(KVR_ERR_NOFIT,
                     "no partition of %llu tokens on %d ranks fits in GPU memory: the best needs "
                     "%.0f bytes on its fullest rank, %.0f are available per rank",
                     (unsigned long long)ctx, obj->plan.p, obj->nofit_min_bytes,
                     obj->nofit_avail_bytes);
}

const struct kvr_machine *kvr_objective_base_machine(const struct kvr_objective *obj)
{
    return &obj->base;
}

enum kvr_status kvr_objective_open_fewer(const struct kvr_objective *obj, int p,
                                         struct kvr_objective **out)
{
    static _Thread_local struct kvr_machine h; /* large: link matrices */
    h = obj->base;
    h.n_gpus = p;
    return kvr_objective_open(&obj->model, &h, &obj->opts, out);
}
