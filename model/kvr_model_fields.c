#include "kvr_model_fields.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kvr_units.h"

static const struct {
    const char *key;
    int required;
} fields[KVR_N_FIELDS] = {
    [KVR_F_NAME] = {"name", 0},
    [KVR_F_N_LAYERS] = {"n_layers", 1},
    [KVR_F_D_MODEL] = {"d_model", 1},
    [KVR_F_N_HEADS] = {"n_heads", 1},
    [KVR_F_N_KV_HEADS] = {"n_kv_heads", 0},
    [KVR_F_HEAD_DIM] = {"head_dim", 0},
    [KVR_F_D_FFN] = {"d_ffn", 1},
    [KVR_F_VOCAB] = {"vocab", 1},
    [KVR_F_NORM] = {"norm", 1},
    [KVR_F_MLP] = {"mlp", 1},
    [KVR_F_PARALLEL_ATTN] = {"parallel_attn", 0},
    [KVR_F_BLOCK_NORMS] = {"block_norms", 0},
    [KVR_F_ROTARY] = {"rotary", 0},
    [KVR_F_BIAS] = {"bias", 0},
    [KVR_F_TIED] = {"tied_embeddings", 0},
    [KVR_F_DTYPE] = {"dtype", 0},
};

int kvr_model_field_find(const char *key)
{
    for (int i = 0; i < KVR_N_FIELDS; i++)
        if (strcmp(fields[i].key, key) == 0) return i;
    return -1;
}

const char *kvr_model_field_key(enum kvr_model_field f)
{
    return fields[f].key;
}

int kvr_model_field_required(enum kvr_model_field f)
{
    return fields[f].required;
}

static enum kvr_status parse_bool(const char *key, const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
        *out = false;
    else
        return kvr_error(KVR_ERR_INPUT, "%s = '%s' is not a boolean (true or false)", key, v);
    return KVR_OK;
}

/* A positive size; zero is rejected here so the error keeps its file and line. */
static enum kvr_status parse_size(const char *key, const char *v, uint32_t *out)
{
    uint64_t x;
    if (kvr_parse_u64(v, UINT32_MAX, &x)) return kvr_error_prefix(KVR_ERR_INPUT, "%s: ", key);
    if (x == 0) return kvr_error(KVR_ERR_INPUT, "%s = %s must be positive", key, v);
    *out = (uint32_t)x;
    return KVR_OK;
}

static enum kvr_status parse_enum(const char *key, const char *v, int idx, const char *choices,
                                  int *out)
{
    if (idx < 0) return kvr_error(KVR_ERR_INPUT, "%s = '%s' is not one of %s", key, v, choices);
    *out = idx;
    return KVR_OK;
}

enum kvr_status kvr_model_field_set(struct kvr_model *m, enum kvr_model_field f, const char *v)
{
    const char *k = fields[f].key;
    int e = 0;
    enum kvr_status st = KVR_OK;
    switch (f) {
    case KVR_F_NAME:
        if (!*v || strlen(v) >= KVR_NAME_CAP)
            return kvr_error(KVR_ERR_INPUT, "name = '%s' must have 1 to %d characters", v,
                             KVR_NAME_CAP - 1);
        snprintf(m->name, sizeof m->name, "%s", v);
        return KVR_OK;
    case KVR_F_N_LAYERS:
        return parse_size(k, v, &m->n_layers);
    case KVR_F_D_MODEL:
        return parse_size(k, v, &m->d_model);
    case KVR_F_N_HEADS:
        return parse_size(k, v, &m->n_heads);
    case KVR_F_N_KV_HEADS:
        return parse_size(k, v, &m->n_kv_heads);
    case KVR_F_HEAD_DIM:
        return parse_size(k, v, &m->head_dim);
    case KVR_F_D_FFN:
        return parse_size(k, v, &m->d_ffn);
    case KVR_F_VOCAB:
        return parse_size(k, v, &m->vocab);
    case KVR_F_BLOCK_NORMS:
        return parse_size(k, v, &m->block_norms);
    case KVR_F_PARALLEL_ATTN:
        return parse_bool(k, v, &m->parallel_attn);
    case KVR_F_ROTARY:
        return parse_bool(k, v, &m->rotary);
    case KVR_F_BIAS:
        return parse_bool(k, v, &m->bias);
    case KVR_F_TIED:
        return parse_bool(k, v, &m->tied_embeddings);
    case KVR_F_NORM:
        st = parse_enum(k, v, kvr_norm_from_name(v), "rmsnorm, layernorm", &e);
        m->norm = (enum kvr_norm)e;
        return st;
    case KVR_F_MLP:
        st = parse_enum(k, v, kvr_mlp_from_name(v), "swiglu, gelu", &e);
        m->mlp = (enum kvr_mlp)e;
        return st;
    case KVR_F_DTYPE:
        st = parse_enum(k, v, kvr_dtype_from_name(v), "bf16, fp16, fp32", &e);
        m->dtype = (enum kvr_dtype)e;
        return st;
    case KVR_N_FIELDS:
        break;
    }
    return kvr_error(KVR_ERR_INPUT, "unknown model field %d", (int)f);
}

void kvr_model_field_format(const struct kvr_model *m, enum kvr_model_field f, char *buf,
                            size_t cap)
{
    switch (f) {
    case KVR_F_NAME:
        snprintf(buf, cap, "%s", m->name);
        return;
    case KVR_F_N_LAYERS:
        snprintf(buf, cap, "%u", m->n_layers);
        return;
    case KVR_F_D_MODEL:
        snprintf(buf, cap, "%u", m->d_model);
        return;
    case KVR_F_N_HEADS:
        snprintf(buf, cap, "%u", m->n_heads);
        return;
    case KVR_F_N_KV_HEADS:
        snprintf(buf, cap, "%u", m->n_kv_heads);
        return;
    case KVR_F_HEAD_DIM:
        snprintf(buf, cap, "%u", m->head_dim);
        return;
    case KVR_F_D_FFN:
        snprintf(buf, cap, "%u", m->d_ffn);
        return;
    case KVR_F_VOCAB:
        snprintf(buf, cap, "%u", m->vocab);
        return;
    case KVR_F_BLOCK_NORMS:
        snprintf(buf, cap, "%u", m->block_norms);
        return;
    case KVR_F_PARALLEL_ATTN:
        snprintf(buf, cap, "%s", m->parallel_attn ? "true" : "false");
        return;
    case KVR_F_ROTARY:
        snprintf(buf, cap, "%s", m->rotary ? "true" : "false");
        return;
    case KVR_F_BIAS:
        snprintf(buf, cap, "%s", m->bias ? "true" : "false");
        return;
    case KVR_F_TIED:
        snprintf(buf, cap, "%s", m->tied_embeddings ? "true" : "false");
        return;
    case KVR_F_NORM:
        snprintf(buf, cap, "%s", kvr_norm_name(m->norm));
        return;
    case KVR_F_MLP:
        snprintf(buf, cap, "%s", kvr_mlp_name(m->mlp));
        return;
    case KVR_F_DTYPE:
        snprintf(buf, cap, "%s", kvr_dtype_name(m->dtype));
        return;
    case KVR_N_FIELDS:
        break;
    }
    snprintf(buf, cap, "?");
}

void kvr_model_fill_defaults(struct kvr_model *m, unsigned set)
{
#define UNSET(f) (!(set & (1u << (f))))
    if (UNSET(KVR_F_N_KV_HEADS)) m->n_kv_heads = m->n_heads;
    if (UNSET(KVR_F_HEAD_DIM) && m->n_heads) m->head_dim = m->d_model / m->n_heads;
    if (UNSET(KVR_F_PARALLEL_ATTN)) m->parallel_attn = false;
    if (UNSET(KVR_F_BLOCK_NORMS)) m->block_norms = m->parallel_attn ? 1 : 2;
    if (UNSET(KVR_F_ROTARY)) m->rotary = true;
    if (UNSET(KVR_F_BIAS)) m->bias = false;
    if (UNSET(KVR_F_TIED)) m->tied_embeddings = false;
    if (UNSET(KVR_F_DTYPE)) m->dtype = KVR_DTYPE_BF16;
#undef UNSET
}

static enum kvr_status check_size(const struct kvr_model *m, int f, uint32_t max, int *bad)
{
    static const size_t offsets[KVR_N_FIELDS] = {
        [KVR_F_N_LAYERS] = offsetof(struct kvr_model, n_layers),
        [KVR_F_D_MODEL] = offsetof(struct kvr_model, d_model),
        [KVR_F_N_HEADS] = offsetof(struct kvr_model, n_heads),
        [KVR_F_N_KV_HEADS] = offsetof(struct kvr_model, n_kv_heads),
        [KVR_F_HEAD_DIM] = offsetof(struct kvr_model, head_dim),
        [KVR_F_D_FFN] = offsetof(struct kvr_model, d_ffn),
        [KVR_F_VOCAB] = offsetof(struct kvr_model, vocab)};
    uint32_t v;
    memcpy(&v, (const char *)m + offsets[f], sizeof v);
    *bad = f;
    if (v == 0) return kvr_error(KVR_ERR_INPUT, "%s must be positive, got 0", fields[f].key);
    if (v > max)
        return kvr_error(KVR_ERR_INPUT, "%s = %u exceeds the limit %u", fields[f].key, v, max);
    return KVR_OK;
}

/* Relations between fields; *bad names the field a user would change. */
static enum kvr_status check_relations(const struct kvr_model *m, int *bad)
{
    *bad = KVR_F_N_HEADS;
    if (m->d_model % m->n_heads)
        return kvr_error(KVR_ERR_INPUT, "n_heads = %u does not divide d_model = %u", m->n_heads,
                         m->d_model);
    *bad = KVR_F_HEAD_DIM;
    if ((uint64_t)m->n_heads * m->head_dim > KVR_MAX_DMODEL)
        return kvr_error(KVR_ERR_INPUT, "n_heads * head_dim = %llu exceeds the limit %u",
                         (unsigned long long)m->n_heads * m->head_dim, KVR_MAX_DMODEL);
    *bad = KVR_F_N_KV_HEADS;
    if (m->n_heads % m->n_kv_heads)
        return kvr_error(KVR_ERR_INPUT, "n_kv_heads = %u does not divide n_heads = %u",
                         m->n_kv_heads, m->n_heads);
    *bad = KVR_F_BLOCK_NORMS;
    if (m->block_norms != 1 && m->block_norms != 2)
        return kvr_error(KVR_ERR_INPUT, "block_norms must be 1 or 2, got %u", m->block_norms);
    if (m->block_norms == 1 && !m->parallel_attn)
        return kvr_error(KVR_ERR_INPUT,
                         "block_norms = 1 needs parallel_attn = true (a sequential block has 2)");
    *bad = KVR_F_NAME;
    if (m->name[0] == '\0') return kvr_error(KVR_ERR_INPUT, "the model has no name");
    return KVR_OK;
}

enum kvr_status kvr_model_check(const struct kvr_model *m, int *bad)
{
    enum kvr_status st;
    if ((st = check_size(m, KVR_F_N_LAYERS, KVR_MAX_LAYERS, bad)) ||
        (st = check_size(m, KVR_F_D_MODEL, KVR_MAX_DMODEL, bad)) ||
        (st = check_size(m, KVR_F_N_HEADS, KVR_MAX_DMODEL, bad)) ||
        (st = check_size(m, KVR_F_N_KV_HEADS, KVR_MAX_DMODEL, bad)) ||
        (st = check_size(m, KVR_F_HEAD_DIM, KVR_MAX_DMODEL, bad)) ||
        (st = check_size(m, KVR_F_D_FFN, KVR_MAX_DFFN, bad)) ||
        (st = check_size(m, KVR_F_VOCAB, KVR_MAX_VOCAB, bad)))
        return st;
    return check_relations(m, bad);
}
