/* kvr exec on one process: the prompt from --tokens, the warning past the model's positions,
 * and the outputs of the run (--dump-logits, --dump-kv, --timeline) that the ranks' run also
 * writes, staged for the caller to commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_exec.h"
#include "kvr_cli.h"
#include "kvr_exec_ranks.h"
#include "kvr_sim.h"
#include "kvr_hash.h"
#include "kvr_timeline_out.h"
#include "kvr_tokens.h"
#include "kvr_weights.h"

enum kvr_status kvr_exec_prompt(struct exec_args *a, const struct kvr_model *m)
{
    if (a->tokens_path) {
        uint32_t n = 0;
        enum kvr_status st = kvr_tokens_read(a->tokens_path, m->vocab, &a->tokens, &n);
        if (st) return kvr_error_prefix(st, "--tokens: ");
        if (a->ctx && a->ctx != n)
            return kvr_error(KVR_ERR_USAGE, "--tokens %s holds %u tokens, but --ctx is %llu",
                             a->tokens_path, n, (unsigned long long)a->ctx);
        a->ctx = n;
        if (!a->n_ctx) a->ctxs[a->n_ctx++] = n;
    }
    if (m->max_pos && a->ctx > m->max_pos)
        fprintf(stderr,
                "kvr: warning: --ctx %llu exceeds the model's max_position_embeddings (%u)\n",
                (unsigned long long)a->ctx, m->max_pos);
    return KVR_OK;
}

/* The outputs are staged (kvr_exec_ranks.h): renamed into place by the caller once the whole
 * run succeeded, so a later failure leaves every old file as it was. */
static enum kvr_status dump_logits(struct kvr_staged *out, const char *path, const float *l,
                                   size_t n)
{
    struct kvr_out *o;
    enum kvr_status st = l ? kvr_staged_open(out, "--dump-logits", path, &o)
                           : kvr_error(KVR_ERR_RUNTIME, "--dump-logits: no logits");
    return st ? st : kvr_staged_write(o, l, n * sizeof *l);
}

/* The whole KV cache, layer by layer: K [ctx][kv][hd], then V, as float32 (the ranks' form). */
static enum kvr_status dump_kv(struct kvr_staged *out, struct kvr_exec *ex, const char *path,
                               uint32_t ctx)
{
    const struct kvr_model *m = kvr_exec_model(ex);
    size_t n = (size_t)ctx * m->n_kv_heads * m->head_dim;
    float *k = malloc(n * sizeof *k), *v = malloc(n * sizeof *v);
    struct kvr_out *o;
    enum kvr_status st = k && v ? kvr_staged_open(out, "--dump-kv", path, &o)
                                : kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < m->n_layers && !st; l++)
        if (!(st = kvr_exec_kv_read(ex, l, 0, ctx, k, v)) &&
            !(st = kvr_staged_write(o, k, n * sizeof *k)))
            st = kvr_staged_write(o, v, n * sizeof *v);
    free(k), free(v);
    return st;
}

struct events {
    struct kvr_event *v;
    size_t n;
    double base;
};

static void event(struct events *e, int layer, const char *what, double t0)
{
    e->v[e->n++] = (struct kvr_event){
        0, layer, KVR_EV_COMPUTE, what, t0 - e->base, kvr_cli_now_s() - e->base, 0, -1};
}

/* One more, synchronous prefill: rank 0's compute events, as TSV (kvr sim's form) or a Chrome
 * trace (kvr_timeline_out.h). */
static enum kvr_status timeline(const struct exec_args *a, struct kvr_staged *out,
                                struct kvr_exec *ex, const int32_t *tokens, uint32_t ctx,
                                float *logits)
{
    const struct kvr_model *m = kvr_exec_model(ex);
    struct events e = {calloc(2 * (size_t)m->n_layers + 2, sizeof *e.v), 0, kvr_cli_now_s()};
    if (!e.v) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    double t = e.base;
    enum kvr_status st = kvr_exec_embed(ex, tokens, ctx);
    if (!st) st = kvr_exec_sync(ex);
    event(&e, -1, "embed", t);
    for (uint32_t l = 0; l < m->n_layers && !st; l++) {
        t = kvr_cli_now_s();
        if (!(st = kvr_exec_layer_qkv(ex, l, 0, ctx))) st = kvr_exec_sync(ex);
        event(&e, (int)l, "pre", t);
        t = kvr_cli_now_s();
        if (!st && !(st = kvr_exec_layer_rest(ex, l, 0, ctx, KVR_MASK_CAUSAL)))
            st = kvr_exec_sync(ex);
        event(&e, (int)l, "attn+post", t);
    }
    t = kvr_cli_now_s();
    if (!st) st = kvr_exec_logits(ex, ctx, logits);
    event(&e, (int)m->n_layers, "head", t);
    enum kvr_timeline_format fmt;
    struct kvr_plan plan = {.scheme = KVR_SCHEME_SINGLE, .p = 1, .ctx = ctx, .tokens = {ctx}};
    struct kvr_timeline_meta meta = {
        "single", m->name,          "one device", "executor", 1, kvr_cli_now_s() - e.base,
        &plan,    kvr_model_hash(m)};
    struct kvr_out *o;
    if (!st) st = kvr_timeline_format_pick(a->timeline_format, a->timeline, &fmt);
    if (!st) st = kvr_staged_open(out, "--timeline", a->timeline, &o);
    if (!st) kvr_timeline_put(o->f, fmt, e.v, e.n, &meta);
    if (!st) st = kvr_staged_check(o);
    free(e.v);
    return st;
}

enum kvr_status kvr_exec_single_outputs(const struct exec_args *a, struct kvr_exec *ex,
                                        struct kvr_staged *out)
{
    const struct kvr_model *m = kvr_exec_model(ex);
    uint32_t ctx = (uint32_t)a->ctx;
    enum kvr_status st = KVR_OK;
    if (a->dump_logits) st = dump_logits(out, a->dump_logits, kvr_exec_last_logits(ex), m->vocab);
    if (!st && a->dump_kv) st = dump_kv(out, ex, a->dump_kv, ctx);
    if (!st && a->timeline) {
        int32_t *tokens = malloc((size_t)ctx * sizeof *tokens);
        float *logits = malloc((size_t)m->vocab * sizeof *logits);
        if (!tokens || !logits) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
        if (!st && a->tokens) memcpy(tokens, a->tokens, (size_t)ctx * sizeof *tokens);
        if (!st && !a->tokens) kvr_tokens_random(a->seed, m->vocab, ctx, tokens);
        if (!st) st = timeline(a, out, ex, tokens, ctx, logits);
        free(tokens), free(logits);
    }
    return st;
}
