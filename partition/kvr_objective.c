/* The search objective: a plan's simulated TTFT, or its mean / percentile over noise trials.
 * One simulator per trial, each drawn once, so every candidate sees the same draws. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_lookup.h"
#include "kvr_search.h"

struct kvr_objective {
    struct kvr_model model;
    struct kvr_machine machine;
    struct kvr_sim **sims;
    uint64_t n_trials, n_evals;
    double percentile;
    double *vals;
    struct kvr_plan plan;
};

static const char *const method_names[KVR_N_METHODS] = {"hier", "exhaustive", "nelder-mead", "even",
                                                        "balanced"};

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
    obj->machine = *machine;
    /* without noise every trial is the same: one is enough */
    obj->n_trials = machine->noise.mode == KVR_NOISE_NONE || opts->trials < 1 ? 1 : opts->trials;
    obj->percentile = opts->percentile;
    obj->plan = (struct kvr_plan){
        .scheme = opts->scheme, .p = machine->n_gpus, .kv_forward = opts->kv_forward};
    enum kvr_status st = open_sims(obj);
    if (st) {
        kvr_objective_free(obj);
        return st;
    }
    *out = obj;
    return KVR_OK;
}

void kvr_objective_free(struct kvr_objective *obj)
{
    if (!obj) return;
    for (uint64_t t = 0; obj->sims && t < obj->n_trials; t++) kvr_sim_free(obj->sims[t]);
    free(obj->sims);
    free(obj->vals);
    free(obj);
}

double kvr_objective_eval(struct kvr_objective *obj, uint64_t ctx, const uint64_t *tokens)
{
    struct kvr_plan *plan = &obj->plan;
    uint64_t sum = 0;
    obj->n_evals++;
    for (int i = 0; i < plan->p; i++) {
        if (tokens[i] == 0) return INFINITY;
        sum += tokens[i];
    }
    if (sum != ctx || ctx > KVR_MAX_CTX) return INFINITY;
    plan->ctx = ctx;
    memcpy(plan->tokens, tokens, (size_t)plan->p * sizeof *tokens);
    double mean = 0;
    for (uint64_t t = 0; t < obj->n_trials; t++) {
        struct kvr_sim_result res;
        if (kvr_sim_run(obj->sims[t], plan, &res, NULL)) return INFINITY;
        obj->vals[t] = res.ttft_s;
        mean += res.ttft_s / (double)obj->n_trials;
    }
    if (obj->n_trials == 1) return obj->vals[0];
    return obj->percentile > 0 ? kvr_quantile(obj->vals, obj->n_trials, obj->percentile / 100)
                               : mean;
}

void kvr_objective_set_kv_forward(struct kvr_objective *obj, enum kvr_kv_forward f)
{
    obj->plan.kv_forward = f;
}

uint64_t kvr_objective_evals(const struct kvr_objective *obj)
{
    return obj->n_evals;
}

int kvr_objective_p(const struct kvr_objective *obj)
{
    return obj->plan.p;
}

void kvr_search_start(const struct kvr_objective *obj, uint64_t ctx, uint64_t g, uint64_t *tokens)
{
    struct kvr_plan plan = {.scheme = KVR_SCHEME_KVR, .p = obj->plan.p, .ctx = ctx};
    kvr_plan_balanced(&plan, &obj->model, &obj->machine.gpu);
    double frac[KVR_MAX_GPUS];
    kvr_lookup_fractions(plan.tokens, plan.p, frac);
    kvr_lookup_round(frac, plan.p, ctx, g, tokens);
}
