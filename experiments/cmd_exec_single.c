/* kvr exec on one process: the prompt from --tokens, the warning past the model's positions,
 * and the outputs of the run (--dump-logits, --dump-kv, --timeline) that the ranks' run also
 * writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_exec.h"
#include "kvr_sim.h"
#include "kvr_tokens.h"

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

static enum kvr_status write_floats(FILE *f, const char *path, const float *v, size_t n)
{
    if (fwrite(v, sizeof *v, n, f) != n) return kvr_error(KVR_ERR_IO, "%s: write failed", path);
    return KVR_OK;
}

/* The whole KV cache, layer by layer: K [ctx][kv][hd], then V, as float32 (the ranks' form). */
static enum kvr_status dump_kv(struct kvr_exec *ex, const char *path, uint32_t ctx)
{
    const struct kvr_model *m = kvr_exec_model(ex);
    size_t n = (size_t)ctx * m->n_kv_heads * m->head_dim;
    float *k = malloc(n * sizeof *k), *v = malloc(n * sizeof *v);
    FILE *f = fopen(path, "wb");
    enum kvr_status st = k && v && f ? KVR_OK : kvr_error(KVR_ERR_IO, "%s: cannot write", path);
    for (uint32_t l = 0; l < m->n_layers && !st; l++)
        if (!(st = kvr_exec_kv_read(ex, l, 0, ctx, k, v)) && !(st = write_floats(f, path, k, n)))
            st = write_floats(f, path, v, n);
    if (f && fclose(f) != 0 && !st) st = kvr_error(KVR_ERR_IO, "%s: write failed", path);
    free(k), free(v);
    return st;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void event(FILE *f, int layer, const char *what, double t0, double base)
{
    fprintf(f, "0\t%d\tcompute\t%s\t%.9f\t%.9f\t0\t-1\n", layer, what, t0 - base, now_s() - base);
}

/* One more, synchronous prefill: rank 0's compute events in kvr sim's TSV form. */
static enum kvr_status timeline(struct kvr_exec *ex, const char *path, const int32_t *tokens,
                                uint32_t ctx, float *logits)
{
    const struct kvr_model *m = kvr_exec_model(ex);
    FILE *f = fopen(path, "w");
    if (!f) return kvr_error(KVR_ERR_IO, "--timeline: cannot write %s", path);
    fprintf(f, "rank\tlayer\tkind\twhat\tstart_s\tend_s\tbytes\tpeer\n");
    double base = now_s(), t = base;
    enum kvr_status st = kvr_exec_embed(ex, tokens, ctx);
    if (!st) st = kvr_exec_sync(ex);
    event(f, -1, "embed", t, base);
    for (uint32_t l = 0; l < m->n_layers && !st; l++) {
        t = now_s();
        if (!(st = kvr_exec_layer_qkv(ex, l, 0, ctx))) st = kvr_exec_sync(ex);
        event(f, (int)l, "pre", t, base);
        t = now_s();
        if (!st && !(st = kvr_exec_layer_rest(ex, l, 0, ctx, KVR_MASK_CAUSAL)))
            st = kvr_exec_sync(ex);
        event(f, (int)l, "attn+post", t, base);
    }
    t = now_s();
    if (!st) st = kvr_exec_logits(ex, ctx, logits);
    event(f, (int)m->n_layers, "head", t, base);
    if (fclose(f) != 0 && !st) st = kvr_error(KVR_ERR_IO, "--timeline: write failed");
    return st;
}

enum kvr_status kvr_exec_single_outputs(const struct exec_args *a, struct kvr_exec *ex)
{
    const struct kvr_model *m = kvr_exec_model(ex);
    uint32_t ctx = (uint32_t)a->ctx;
    enum kvr_status st = KVR_OK;
    if (a->dump_logits) {
        FILE *f = fopen(a->dump_logits, "wb");
        const float *l = kvr_exec_last_logits(ex);
        st = f && l ? write_floats(f, a->dump_logits, l, m->vocab)
                    : kvr_error(KVR_ERR_IO, "%s: cannot write", a->dump_logits);
        if (f && fclose(f) != 0 && !st)
            st = kvr_error(KVR_ERR_IO, "%s: write failed", a->dump_logits);
    }
    if (!st && a->dump_kv) st = dump_kv(ex, a->dump_kv, ctx);
    if (!st && a->timeline) {
        int32_t *tokens = malloc((size_t)ctx * sizeof *tokens);
        float *logits = malloc((size_t)m->vocab * sizeof *logits);
        if (!tokens || !logits) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
        if (!st && a->tokens) memcpy(tokens, a->tokens, (size_t)ctx * sizeof *tokens);
        if (!st && !a->tokens) kvr_tokens_random(a->seed, m->vocab, ctx, tokens);
        if (!st) st = timeline(ex, a->timeline, tokens, ctx, logits);
        free(tokens), free(logits);
    }
    return st;
}
