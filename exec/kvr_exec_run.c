/* Timed runs of one rank: the memory plan and the sub-chunk that fits, the prefill timed over
 * repetitions and profiled per operation, the first token. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_exec_int.h"
#include "kvr_stats.h"
#include "kvr_weights.h"

/* The prompt of a timed run: the given tokens (their count must be ctx), else seeded. */
enum kvr_status kvr_exec_prompt_tokens(const struct kvr_exec *ex, uint32_t ctx, uint64_t seed,
                                       int32_t *out)
{
    if (!ex->tokens) {
        kvr_tokens_random(seed, ex->model.vocab, ctx, out);
        return KVR_OK;
    }
    if (ex->n_tokens != ctx)
        return kvr_error(KVR_ERR_INPUT, "the prompt has %u tokens, not ctx = %u", ex->n_tokens,
                         ctx);
    memcpy(out, ex->tokens, (size_t)ctx * sizeof *out);
    return KVR_OK;
}

int32_t kvr_logits_argmax(const float *logits, uint32_t vocab)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < vocab; i++)
        if (logits[i] > logits[best]) best = i;
    return (int32_t)best;
}

double kvr_logits_checksum(const float *logits, uint32_t vocab)
{
    double sum = 0;
    for (uint32_t i = 0; i < vocab; i++) sum += logits[i];
    return sum;
}

enum kvr_status kvr_logits_check(const float *logits, uint32_t vocab)
{
    for (uint32_t i = 0; i < vocab; i++)
        if (!isfinite(logits[i]))
            return kvr_error(KVR_ERR_RUNTIME,
                             "the last token's logit %u is %s: the prefill overflowed float "
                             "(the weights or the prompt drive the activations past its range)",
                             i, isnan(logits[i]) ? "NaN" : "infinite");
    return KVR_OK;
}

uint64_t kvr_exec_bytes_needed(const struct kvr_model *m, const struct kvr_exec_opts *o)
{
    uint32_t chunk = o->max_chunk ? o->max_chunk : o->max_ctx;
    return o->backend == KVR_BACKEND_CUDA ? kvr_cuda_bytes_needed(m, o->max_ctx, chunk)
                                          : kvr_ref_bytes_needed(m, o->max_ctx, chunk);
}

enum kvr_status kvr_exec_fit_chunk(const struct kvr_model *m, const struct kvr_exec_opts *o,
                                   uint32_t *chunk)
{
    *chunk = o->max_ctx;
    if (o->backend != KVR_BACKEND_CUDA) return KVR_OK;
    uint64_t free_b = kvr_cuda_free_bytes(o->device);
    if (free_b == 0 || kvr_cuda_bytes_needed(m, o->max_ctx, o->max_ctx) <= free_b)
        return KVR_OK; /* fits whole, or no device: kvr_exec_open says why */
    uint32_t c = o->max_ctx / 1024 * 1024;
    while (c >= 1024 && kvr_cuda_bytes_needed(m, o->max_ctx, c) > free_b) c -= 1024;
    if (c < 1024)
        return kvr_error(
            KVR_ERR_INPUT,
            "%s at %u tokens: weights and KV cache with sub-chunks of 1024 tokens need "
            "%.2f GB of GPU memory; device %d has %.2f GB free",
            m->name, o->max_ctx, kvr_cuda_bytes_needed(m, o->max_ctx, 1024) / 1e9, o->device,
            free_b / 1e9);
    *chunk = c;
    return KVR_OK;
}

static enum kvr_status time_reps(struct kvr_exec *ex, const int32_t *tokens, uint32_t ctx,
                                 int warmup, int reps, double *times, float *logits)
{
    const struct kvr_backend_ops *o = OPS(ex);
    enum kvr_status st;
    for (int i = 0; i < warmup + reps; i++) {
        double dt = 0;
        if ((st = o->timer(BE(ex), 0, NULL)) || (st = kvr_exec_prefill(ex, tokens, ctx, logits)) ||
            (st = o->timer(BE(ex), 1, &dt)))
            return st;
        if (i >= warmup) times[i - warmup] = dt;
    }
    return KVR_OK;
}

/* The report of reps timed runs (times: their seconds, sorted here) of a prefill of ctx tokens
 * that executes `flops`, whose last run gave `logits`. */
static void fill_result(struct kvr_exec *ex, uint32_t ctx, int reps, double *times, uint64_t flops,
                        const float *logits, struct kvr_exec_result *r)
{
    const struct kvr_model *m = &ex->model;
    memset(r, 0, sizeof *r);
    r->ctx = ctx, r->reps = (uint32_t)reps;
    r->chunk = ctx < ex->opts.max_chunk ? ctx : ex->opts.max_chunk;
    r->mem_predicted_bytes = kvr_exec_bytes_needed(&ex->model, &ex->opts);
    r->ttft_s = kvr_quantile(times, (size_t)reps, 0.5); /* sorts times */
    r->ttft_min_s = times[0], r->ttft_max_s = times[reps - 1];
    r->tokens_per_s = ctx / r->ttft_s;
    r->flops = flops;
    r->tflops = (double)flops / r->ttft_s / 1e12;
    OPS(ex)->device(BE(ex), r->device, sizeof r->device, &r->peak_flops);
    r->mfu = r->peak_flops > 0 ? r->tflops * 1e12 / r->peak_flops : NAN;
    uint64_t held = 0;
    OPS(ex)->memory(BE(ex), &held, &r->peak_mem_bytes);
    if (!r->peak_mem_bytes) r->peak_mem_bytes = held;
    r->last_layer_pruned = ex->last_layer_pruned;
    r->first_token = kvr_logits_argmax(logits, m->vocab);
    r->logits_checksum = kvr_logits_checksum(logits, m->vocab);
}

enum kvr_status kvr_exec_run_single(struct kvr_exec *ex, uint32_t ctx, uint64_t token_seed,
                                    int warmup, int reps, struct kvr_exec_result *r)
{
    const struct kvr_model *m = &ex->model;
    enum kvr_status st = kvr_exec_check_prompt(ex, ctx);
    if (st) return st;
    if (reps < 1 || warmup < 0)
        return kvr_error(KVR_ERR_INPUT, "reps = %d must be >= 1 and warmup = %d >= 0", reps,
                         warmup);
    int32_t *tokens = malloc((size_t)ctx * sizeof *tokens);
    float *logits = malloc((size_t)m->vocab * sizeof *logits);
    double *times = malloc((size_t)reps * sizeof *times);
    uint64_t flops = 0;
    if (!tokens || !logits || !times) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st) st = kvr_exec_prefill_flops(m, ctx, KVR_MASK_CAUSAL, &flops);
    if (!st) st = kvr_exec_set_prompt_len(ex, ctx);
    if (!st) st = kvr_exec_prompt_tokens(ex, ctx, token_seed, tokens);
    if (!st) st = time_reps(ex, tokens, ctx, warmup, reps, times, logits);
    if (!st) st = kvr_logits_check(logits, m->vocab);
    if (!st) {
        fill_result(ex, ctx, reps, times, flops, logits, r);
        free(ex->logits);
        ex->logits = logits, logits = NULL;
    }
    free(tokens), free(logits), free(times);
    return st;
}

enum kvr_status kvr_exec_profile_single(struct kvr_exec *ex, uint32_t ctx, uint64_t token_seed,
                                        int runs, double op_s[KVR_N_OPS])
{
    enum kvr_status st = runs < 1 ? kvr_error(KVR_ERR_INPUT, "profile: %d runs", runs)
                                  : kvr_exec_check_chunk(ex, 0, ctx);
    int32_t *tokens = st ? NULL : malloc((size_t)ctx * sizeof *tokens);
    float *logits = st ? NULL : malloc((size_t)ex->model.vocab * sizeof *logits);
    double *each = st ? NULL : malloc((size_t)runs * KVR_N_OPS * sizeof *each);
    if (!st && (!tokens || !logits || !each)) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st) st = kvr_exec_set_prompt_len(ex, ctx);
    if (!st) st = kvr_exec_prompt_tokens(ex, ctx, token_seed, tokens);
    for (int r = 0; r < runs && !st; r++) { /* each op's median over the runs */
        kvr_exec_profile_reset(ex);
        kvr_exec_set_profile(ex, true);
        st = kvr_exec_chunk(ex, tokens, 0, ctx, KVR_MASK_CAUSAL, logits);
        kvr_exec_set_profile(ex, false);
        double one[KVR_N_OPS];
        kvr_exec_profile_get(ex, one);
        for (int op = 0; op < KVR_N_OPS; op++) each[op * runs + r] = one[op];
    }
    for (int op = 0; op < KVR_N_OPS && !st; op++)
        op_s[op] = kvr_quantile(each + op * runs, (size_t)runs, 0.5);
    free(tokens), free(logits), free(each);
    return st;
}
