#include "kvr_sim_int.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cost.h"
#include "kvr_layout.h"
#include "kvr_units.h"

const char *kvr_event_kind_name(enum kvr_event_kind k)
{
    static const char *const names[] = {"compute", "send", "wait", "collective"};
    return names[k];
}

void kvr_plan_even(struct kvr_plan *plan)
{
    int n = kvr_plan_stages(plan);
    for (int i = 0; i < n; i++)
        plan->tokens[i] = plan->ctx / (uint64_t)n + ((uint64_t)i < plan->ctx % (uint64_t)n);
}

/* Seconds per token of a layer's token-local work and per attention pair, at the GPU's
 * asymptotic efficiencies (at the bf16 peak: the peak cancels in the balance, a / b). */
static void balance_coefficients(const struct kvr_model *m, const struct kvr_gpu *g, double *a,
                                 double *b)
{
    *a = *b = 0;
    for (int op = 0; op < KVR_N_LAYER_OPS; op++) {
        struct kvr_op_cost x;
        enum kvr_op_class cls = kvr_op_class((enum kvr_op)op);
        double rate = g->peak_flops * g->compute_eff[cls];
        if (cls == KVR_CLASS_ATTENTION) {
            kvr_attn_cost(m, (enum kvr_op)op, 1, 1, 1, &x);
            *b += (double)x.flops / rate;
        } else {
            kvr_op_cost(m, (enum kvr_op)op, 0, 1, KVR_MASK_CAUSAL, &x);
            *a += (double)x.flops / rate;
        }
    }
}

/* The work of the prefix [0, S), a S + b pairs(S), and its inverse: pairs(S) = S^2 / 2, or
 * with a sliding window W past it W^2 / 2 + (S - W) W (each query then sees W keys). */
static double prefix_work(double a, double b, double w, double S)
{
    return w > 0 && S > w ? a * S + b * (w * w / 2 + (S - w) * w) : a * S + b * S * S / 2;
}

static double prefix_end(double a, double b, double w, double f)
{
    if (w > 0 && f > prefix_work(a, b, w, w))
        return w + (f - prefix_work(a, b, w, w)) / (a + b * w);
    return b > 0 ? (-a + sqrt(a * a + 2 * b * f)) / b : f / a;
}

void kvr_plan_balanced(struct kvr_plan *plan, const struct kvr_model *m, const struct kvr_gpu *g)
{
    double a, b, C = (double)plan->ctx, w = (double)m->sliding_window;
    balance_coefficients(m, g, &a, &b); /* a stage's shards scale a and b alike by 1/t */
    double total = prefix_work(a, b, w, C);
    uint64_t prev = 0;
    int n = kvr_plan_stages(plan);
    for (int i = 0; i < n; i++) {
        double f = total * (i + 1) / n;
        double S = prefix_end(a, b, w, f);
        uint64_t end = i + 1 == n ? plan->ctx : (uint64_t)llround(S);
        uint64_t lo = prev + 1, hi = plan->ctx - (uint64_t)(n - 1 - i); /* keep chunks non-empty */
        end = end < lo ? lo : end > hi ? hi : end;
        plan->tokens[i] = end - prev;
        prev = end;
    }
}

enum kvr_status kvr_plan_parse_partition(struct kvr_plan *plan, const char *text)
{
    char buf[1024];
    if ((size_t)snprintf(buf, sizeof buf, "%s", text) >= sizeof buf) /* never cut, then read */
        return kvr_error(KVR_ERR_INPUT, "--partition: '%.40s...' is longer than %zu characters",
                         text, sizeof buf - 1);
    int n = 0;
    for (char *tok = buf, *next; tok; tok = next) { /* "a,,b", ",a", "a,": an empty chunk */
        if ((next = strchr(tok, ','))) *next++ = 0;
        if (!*tok) return kvr_error(KVR_ERR_INPUT, "--partition: empty item in '%s'", text);
        if (n == KVR_MAX_GPUS)
            return kvr_error(KVR_ERR_INPUT, "--partition: more than %d chunks", KVR_MAX_GPUS);
        if (kvr_parse_tokens(tok, KVR_MAX_CTX, &plan->tokens[n]))
            return kvr_error_prefix(KVR_ERR_INPUT, "--partition: ");
        n++;
    }
    if (plan->tp > 1 && n != kvr_plan_stages(plan))
        return kvr_error(KVR_ERR_INPUT,
                         "--partition '%s' has %d chunks, but the plan has %d stages (--gpus %d / "
                         "--tp %d)",
                         text, n, kvr_plan_stages(plan), plan->p, plan->tp);
    if (plan->tp <= 1 && n != plan->p)
        return kvr_error(KVR_ERR_INPUT, "--partition '%s' has %d chunks, but --gpus is %d", text, n,
                         plan->p);
    return KVR_OK;
}

enum kvr_status kvr_plan_check(const struct kvr_plan *plan, const struct kvr_machine *machine)
{
    if (plan->p < 1 || plan->p > machine->n_gpus)
        return kvr_error(KVR_ERR_INPUT, "p = %d is outside 1..%d GPUs of %s", plan->p,
                         machine->n_gpus, machine->name);
    enum kvr_status st = kvr_scheme_check_forward(plan->scheme, plan->kv_forward);
    if (st) return st;
    const struct kvr_scheme_desc *d = kvr_scheme_get(plan->scheme);
    if (plan->full_last_layer && plan->p != 1)
        return kvr_error(KVR_ERR_INPUT,
                         "a full last layer is a one-GPU plan's (the executor's ranks run every "
                         "layer on every row), not p = %d's",
                         plan->p);
    if (plan->chunk && plan->p != 1)
        return kvr_error(KVR_ERR_INPUT,
                         "sub-chunks (--chunk) are a one-GPU prefill's, not p = %d's", plan->p);
    if ((d->options & KVR_SO_ONE_GPU) && plan->p != 1)
        return kvr_error(KVR_ERR_INPUT, "scheme %s runs on one GPU, not %d", d->name, plan->p);
    if (plan->ctx < 1 || plan->ctx > KVR_MAX_CTX)
        return kvr_error(KVR_ERR_INPUT, "ctx %llu is outside 1..%u", (unsigned long long)plan->ctx,
                         KVR_MAX_CTX);
    if (plan->tp < 0 || (plan->tp > 0 && (plan->tp > plan->p || plan->p % plan->tp)))
        return kvr_error(KVR_ERR_INPUT, "--tp %d does not divide p = %d", plan->tp, plan->p);
    if (plan->tp > 1 && !kvr_layout_scheme_ok(plan->scheme))
        return kvr_error(KVR_ERR_INPUT, "--tp: scheme %s has no tensor-parallel layout", d->name);
    /* every stage (a rank without --tp) holds a chunk; tp's ranks all hold the whole prompt */
    if (d->options & KVR_SO_SHARDED) return KVR_OK;
    int n = kvr_plan_stages(plan);
    if (plan->ctx < (uint64_t)n && n == plan->p)
        return kvr_error(KVR_ERR_INPUT, "ctx %llu < p = %d: every rank needs a token at least",
                         (unsigned long long)plan->ctx, plan->p);
    if (plan->ctx < (uint64_t)n)
        return kvr_error(KVR_ERR_INPUT,
                         "ctx %llu < %d stages (p = %d, --tp %d): every stage needs a token at "
                         "least",
                         (unsigned long long)plan->ctx, n, plan->p, plan->tp);
    if ((d->options & KVR_SO_ZIGZAG) && plan->ctx < 2 * (uint64_t)n)
        return kvr_error(KVR_ERR_INPUT, "%s needs ctx >= 2p (%d) for zig-zag chunks", d->name,
                         2 * n);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        if (plan->tokens[i] == 0) return kvr_error(KVR_ERR_INPUT, "partition chunk %d is empty", i);
        sum += plan->tokens[i];
    }
    if (sum != plan->ctx)
        return kvr_error(KVR_ERR_INPUT, "partition sums to %llu, not ctx = %llu",
                         (unsigned long long)sum, (unsigned long long)plan->ctx);
    return KVR_OK;
}

enum kvr_status kvr_sim_open(const struct kvr_model *model, const struct kvr_machine *machine,
                             struct kvr_sim **out)
{
    enum kvr_status st = kvr_model_validate(model);
    if (st || (st = kvr_machine_validate(machine)) ||
        (st = kvr_gpu_check_dtype(&machine->gpu, model, machine->name)))
        return st;
    struct kvr_sim *sim = calloc(1, sizeof *sim);
    if (!sim) return kvr_error(KVR_ERR_NOMEM, "simulator: out of memory");
    sim->model = model;
    sim->machine = machine;
    if (machine->noise.mode != KVR_NOISE_NONE) {
        size_t n = (size_t)model->n_layers * (size_t)machine->n_gpus * (size_t)machine->n_gpus;
        sim->noise = calloc(n, sizeof *sim->noise);
        gsl_set_error_handler_off();
        sim->rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!sim->noise || !sim->rng) {
            kvr_sim_free(sim);
            return kvr_error(KVR_ERR_NOMEM, "simulator: out of memory for the noise table");
        }
        kvr_sim_draw_noise(sim, 0);
    }
    *out = sim;
    return KVR_OK;
}

void kvr_sim_free(struct kvr_sim *sim)
{
    if (!sim) return;
    if (sim->rng) gsl_rng_free(sim->rng);
    free(sim->noise);
    free(sim);
}

enum kvr_status kvr_sim_draw_noise(struct kvr_sim *sim, uint64_t trial)
{
    const struct kvr_noise *nz = &sim->machine->noise;
    if (!sim->noise) return KVR_OK;
    int p = sim->machine->n_gpus;
    /* one stream per trial: the same seed and trial give the same draws everywhere */
    gsl_rng_set(sim->rng, (unsigned long)(nz->seed * 1000003u + trial));
    for (uint32_t l = 0; l < sim->model->n_layers; l++)
        for (int i = 0; i < p; i++)
            for (int j = 0; j < p; j++) {
                double share = 0;
                if (nz->all_links || nz->on[i][j])
                    share = nz->mode == KVR_NOISE_RANDOM ? nz->share * gsl_rng_uniform(sim->rng)
                                                         : nz->share;
                sim->noise[((size_t)l * p + i) * p + j] = share;
            }
    return KVR_OK;
}

const double *kvr_sim_layer_noise(const struct kvr_sim *sim, int layer)
{
    if (!sim->noise || layer < 0) return NULL;
    int p = sim->machine->n_gpus;
    return sim->noise + (size_t)layer * p * p;
}

void kvr_sim_event(struct kvr_sim *sim, int rank, int layer, enum kvr_event_kind kind,
                   const char *what, double start_s, double end_s, double bytes, int peer)
{
    struct kvr_timeline *tl = sim->tl;
    if (!tl) return;
    if (tl->n == tl->cap) {
        tl->n_dropped++;
        return;
    }
    tl->events[tl->n++] = (struct kvr_event){.rank = rank,
                                             .layer = layer,
                                             .kind = kind,
                                             .what = what,
                                             .start_s = start_s,
                                             .end_s = end_s,
                                             .bytes = bytes,
                                             .peer = peer};
}

static const kvr_sim_scheme_fn entries[KVR_N_SCHEMES] = {
#define KVR_SCHEME(id, name, label, sim, exec, options, help) [KVR_SCHEME_##id] = sim,
#include "kvr_scheme_list.h"
#undef KVR_SCHEME
};

/* Megatron shards heads and KV heads: p must divide the heads, and the KV heads, or be a
 * multiple of the KV heads (each then replicated on p / kv ranks, as vLLM does for MQA/GQA). */
enum kvr_status kvr_plan_check_model(const struct kvr_plan *plan, const struct kvr_model *m)
{
    if (plan->tp > 0) return kvr_layout_check(m, plan);
    if (plan->scheme != KVR_SCHEME_TP) return KVR_OK;
    uint32_t p = (uint32_t)plan->p, kv = m->n_kv_heads;
    if (m->n_heads % p != 0 || (kv % p != 0 && p % kv != 0))
        return kvr_error(KVR_ERR_INPUT,
                         "tp on %u GPUs: %s has %u heads and %u KV heads; p must divide the heads "
                         "and divide or be a multiple of the KV heads",
                         p, m->name, m->n_heads, kv);
    return KVR_OK;
}

/* The whole prefill's causal FLOPs in double: per-layer counts are exact 64-bit integers up to
 * KVR_MAX_CTX, a sum over 80 layers at 4M tokens is not (llama-2-70b: 2.3e19 > 2^64). Pruned:
 * less the last layer's ops that run on its last row alone, on every other row. */
enum kvr_status kvr_sim_prefill_flops(const struct kvr_model *m, uint64_t ctx, bool full_last_layer,
                                      double *out)
{
    struct kvr_op_cost x, one;
    enum kvr_status st = kvr_layer_cost(m, 0, ctx, KVR_MASK_CAUSAL, &x);
    if (st) return st;
    *out = (double)x.flops * m->n_layers;
    for (int op = KVR_N_LAYER_OPS; op < KVR_N_OPS; op++) {
        if ((st = kvr_op_cost(m, (enum kvr_op)op, 0, ctx, KVR_MASK_CAUSAL, &x))) return st;
        *out += (double)x.flops;
    }
    for (int op = 0; op < KVR_N_LAYER_OPS && !full_last_layer && ctx > 1; op++) {
        if (!kvr_cost_last_row_op(m, (enum kvr_op)op)) continue;
        if ((st = kvr_op_cost(m, (enum kvr_op)op, 0, ctx, KVR_MASK_CAUSAL, &x)) ||
            (st = kvr_op_cost(m, (enum kvr_op)op, ctx - 1, 1, KVR_MASK_CAUSAL, &one)))
            return st;
        *out -= (double)x.flops - (double)one.flops;
    }
    return KVR_OK;
}

/* The noise table is laid out for the machine's p GPUs; a plan on fewer ranks reads its
 * top-left corner through kvr_sim_layer_noise with the machine's stride. */
enum kvr_status kvr_sim_run(struct kvr_sim *sim, const struct kvr_plan *plan,
                            struct kvr_sim_result *res, struct kvr_timeline *timeline)
{
    if (plan->scheme == KVR_SCHEME_RING && plan->ring_pass == KVR_RING_PASS_AUTO)
        return kvr_sim_ring_auto(sim, plan, res, timeline);
    memset(res, 0, sizeof *res);
    enum kvr_status st = kvr_plan_check_model(plan, sim->model);
    if (st) return st;
    res->scheme = plan->scheme;
    res->p = plan->p;
    sim->tl = timeline;
    sim->res = res;
    if (timeline) timeline->n = timeline->n_dropped = 0;
    if ((st = kvr_scheme_check_forward(plan->scheme, plan->kv_forward))) return st;
    for (int r = 0; r < plan->p; r++)
        sim->kv_tokens[r] = (double)plan->ctx, sim->kv_flight_tokens[r] = 0, sim->act_rows[r] = 0;
    sim->sharded = false;
    sim->tp_t = 0;
    bool one = plan->p == 1 && plan->tp <= 1;
    (one ? kvr_sim_single : entries[plan->scheme])(sim, plan);
    double flops = 0;
    if ((st = kvr_sim_prefill_flops(sim->model, plan->ctx, !one || plan->full_last_layer, &flops)))
        return st;
    res->lower_bound_s =
        flops / (plan->p * kvr_gpu_peak_flops(&sim->machine->gpu, sim->model->dtype));
    kvr_sim_memory(sim, plan);
    sim->tl = NULL;
    return KVR_OK;
}
