/* Tensor-parallel shards of the executor without ranks (ref backend): each shard's seeded
 * weights are the slice of the whole model's at the full tensors' indices, so after the
 * embedding and the first layer's QKV half (norms, the column-parallel QKV with its bias,
 * rotary), the K and V a shard writes to its cache are exactly the whole model's for its KV
 * heads (replicated ones included). The rest of a layer needs the shard's stage and says so;
 * degrees that do not shard a model are refused naming --tp. */
#include <math.h>

#include "exec_models.h"
#include "kvr_tp.h"
#include "kvr_weights.h"
#include "tap.h"

enum { CTX = 23 };

static struct kvr_exec *open_shard(const struct kvr_model *m, int t, int j)
{
    struct kvr_exec_opts o = {
        .backend = KVR_BACKEND_REF, .max_ctx = CTX, .seed = 7, .tp = t, .tp_rank = j};
    struct kvr_exec *ex = NULL;
    return kvr_exec_open(m, &o, &ex) ? NULL : ex;
}

/* Layer 0's K and V of [0, CTX) after the embedding and the QKV half. */
static bool first_kv(struct kvr_exec *ex, const int32_t *tokens, float *k, float *v)
{
    return !kvr_exec_embed(ex, tokens, CTX) && !kvr_exec_layer_qkv(ex, 0, 0, CTX) &&
           !kvr_exec_kv_read(ex, 0, 0, CTX, k, v);
}

/* Shard j's KV heads equal the whole model's heads kv0 .. kv0 + kvs - 1, bit for bit. */
static bool heads_equal(const struct kvr_model *m, const float *full, const float *part,
                        uint32_t kv0, uint32_t kvs)
{
    size_t hd = m->head_dim;
    for (uint32_t i = 0; i < CTX; i++)
        if (memcmp(full + ((size_t)i * m->n_kv_heads + kv0) * hd, part + (size_t)i * kvs * hd,
                   kvs * hd * sizeof(float)))
            return false;
    return true;
}

static void check_model(const struct kvr_model *m, int t)
{
    size_t n = (size_t)CTX * m->n_kv_heads * m->head_dim;
    float *k = calloc(n, sizeof *k), *v = calloc(n, sizeof *v);
    float *pk = calloc(n, sizeof *pk), *pv = calloc(n, sizeof *pv);
    int32_t tokens[CTX];
    kvr_tokens_random(3, m->vocab, CTX, tokens);
    struct kvr_exec *whole = exec_open(m, KVR_BACKEND_REF, CTX, NULL);
    bool ok_all = whole && first_kv(whole, tokens, k, v);
    for (int j = 0; j < t && ok_all; j++) {
        struct kvr_exec *ex = open_shard(m, t, j);
        struct kvr_model part;
        kvr_tp_shard(m, t, j, &part);
        ok_all = ex && kvr_exec_tp_degree(ex) == t && kvr_exec_tp_shard(ex) == j &&
                 kvr_exec_model(ex)->n_kv_heads == part.n_kv_heads &&
                 kvr_exec_model(ex)->vocab == m->vocab && first_kv(ex, tokens, pk, pv);
        uint32_t kv0 = kvr_tp_kv_head0(m, t, j);
        ok_all = ok_all && heads_equal(m, k, pk, kv0, part.n_kv_heads) &&
                 heads_equal(m, v, pv, kv0, part.n_kv_heads);
        if (ok_all && j == t - 1) {
            enum kvr_status st = kvr_exec_layer_rest(ex, 0, 0, CTX, KVR_MASK_CAUSAL);
            ok(st == KVR_ERR_INPUT, "%s x%d: the rest of a layer without the stage is refused",
               m->name, t);
            like(kvr_error_message(), "mpirun",
                 "  the message says tensor parallelism runs under mpirun");
        }
        kvr_exec_close(ex);
    }
    ok(ok_all, "%s x%d: each shard's first-layer K and V are the whole model's for its KV heads",
       m->name, t);
    kvr_exec_close(whole);
    free(k), free(v), free(pk), free(pv);
}

int main(void)
{
    for (int i = 0; i < N_EXEC_MODELS; i++)
        for (int t = 2; t <= 4; t++)
            if (!kvr_tp_check(&exec_models[i], t, "--tp")) check_model(&exec_models[i], t);
    const struct kvr_model *gqa = &exec_models[0]; /* 4 heads over 2 KV heads */
    ok(!open_shard(gqa, 3, 0), "--tp 3 on 4 heads is refused");
    like(kvr_error_message(), "--tp 3", "  naming --tp");
    like(kvr_error_message(), gqa->name, "  and the model");
    ok(!open_shard(gqa, 2, 2), "shard 2 of 2 is refused");
    struct kvr_exec *ex = open_shard(gqa, 1, 0);
    ok(ex && kvr_exec_tp_degree(ex) == 1 && kvr_exec_set_stage(ex, NULL) == KVR_OK,
       "--tp 1 is the whole model");
    kvr_exec_close(ex);
    (void)exec_chunks;
    return tap_done();
}
