/* Megatron tensor-parallel shards of a model (kvr_tp.h). */
#include "kvr_tp.h"

static uint32_t shard(uint32_t n, int t, int j)
{
    return n / (uint32_t)t + ((uint32_t)j < n % (uint32_t)t);
}

void kvr_tp_shard(const struct kvr_model *m, int t, int j, struct kvr_model *out)
{
    *out = *m;
    out->n_heads = shard(m->n_heads, t, j);
    out->n_kv_heads = m->n_kv_heads >= (uint32_t)t ? shard(m->n_kv_heads, t, j) : 1;
    out->d_ffn = shard(m->d_ffn, t, j);
    out->vocab = shard(m->vocab, t, j);
}

enum kvr_status kvr_tp_check(const struct kvr_model *m, int t, const char *what)
{
    if (t < 1) return kvr_error(KVR_ERR_INPUT, "%s %d: must be at least 1", what, t);
    if (m->n_heads % (uint32_t)t)
        return kvr_error(KVR_ERR_INPUT, "%s %d: does not divide the %u heads of %s", what, t,
                         m->n_heads, m->name);
    uint32_t kv = m->n_kv_heads;
    if ((uint32_t)t <= kv ? kv % (uint32_t)t : (uint32_t)t % kv)
        return kvr_error(KVR_ERR_INPUT,
                         "%s %d: neither divides nor is a multiple of the %u KV heads of %s", what,
                         t, kv, m->name);
    return KVR_OK;
}

uint32_t kvr_tp_head0(const struct kvr_model *m, int t, int j)
{
    return m->n_heads / (uint32_t)t * (uint32_t)j;
}

uint32_t kvr_tp_kv_head0(const struct kvr_model *m, int t, int j)
{
    uint32_t group = m->n_heads / m->n_kv_heads; /* query heads per KV head */
    return kvr_tp_head0(m, t, j) / group;
}
