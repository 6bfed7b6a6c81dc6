#include "kvr_weights.h"

#include <math.h>
#include <string.h>

#include "kvr_rng.h"

static const char *const names[KVR_N_TENSORS] = {
    [KVR_T_ATTN_NORM_W] = "attn_norm.weight",
    [KVR_T_ATTN_NORM_B] = "attn_norm.bias",
    [KVR_T_MLP_NORM_W] = "mlp_norm.weight",
    [KVR_T_MLP_NORM_B] = "mlp_norm.bias",
    [KVR_T_WQKV] = "qkv.weight",
    [KVR_T_BQKV] = "qkv.bias",
    [KVR_T_WO] = "out.weight",
    [KVR_T_BO] = "out.bias",
    [KVR_T_WUP] = "up.weight",
    [KVR_T_BUP] = "up.bias",
    [KVR_T_WDOWN] = "down.weight",
    [KVR_T_BDOWN] = "down.bias",
    [KVR_T_EMBED] = "embed.weight",
    [KVR_T_FINAL_NORM_W] = "final_norm.weight",
    [KVR_T_FINAL_NORM_B] = "final_norm.bias",
    [KVR_T_LM_HEAD] = "lm_head.weight",
};

const char *kvr_tensor_name(enum kvr_tensor t)
{
    return (unsigned)t < KVR_N_TENSORS ? names[t] : "?";
}

bool kvr_tensor_is_layer(enum kvr_tensor t)
{
    return t < KVR_N_LAYER_TENSORS;
}

uint64_t kvr_qkv_width(const struct kvr_model *m)
{
    return (uint64_t)(m->n_heads + 2u * m->n_kv_heads) * m->head_dim;
}

uint64_t kvr_up_width(const struct kvr_model *m)
{
    return (m->mlp == KVR_MLP_SWIGLU ? 2u : 1u) * (uint64_t)m->d_ffn;
}

bool kvr_tensor_present(const struct kvr_model *m, enum kvr_tensor t)
{
    bool ln = m->norm == KVR_NORM_LAYERNORM;
    switch (t) {
    case KVR_T_ATTN_NORM_B:
    case KVR_T_FINAL_NORM_B:
        return ln;
    case KVR_T_MLP_NORM_W:
        return m->block_norms == 2;
    case KVR_T_MLP_NORM_B:
        return ln && m->block_norms == 2;
    case KVR_T_BQKV:
        return m->bias_qkv;
    case KVR_T_BO:
        return m->bias_out;
    case KVR_T_BUP:
    case KVR_T_BDOWN:
        return m->bias_mlp;
    case KVR_T_LM_HEAD:
        return !m->tied_embeddings;
    default:
        return (unsigned)t < KVR_N_TENSORS;
    }
}

struct kvr_tensor_shape kvr_tensor_shape(const struct kvr_model *m, enum kvr_tensor t)
{
    uint64_t d = m->d_model, attn = (uint64_t)m->n_heads * m->head_dim;
    switch (t) {
    case KVR_T_WQKV:
        return (struct kvr_tensor_shape){kvr_qkv_width(m), d};
    case KVR_T_BQKV:
        return (struct kvr_tensor_shape){1, kvr_qkv_width(m)};
    case KVR_T_WO:
        return (struct kvr_tensor_shape){d, attn};
    case KVR_T_WUP:
        return (struct kvr_tensor_shape){kvr_up_width(m), d};
    case KVR_T_BUP:
        return (struct kvr_tensor_shape){1, kvr_up_width(m)};
    case KVR_T_WDOWN:
        return (struct kvr_tensor_shape){d, m->d_ffn};
    case KVR_T_EMBED:
    case KVR_T_LM_HEAD:
        return (struct kvr_tensor_shape){m->vocab, d};
    default:
        return (struct kvr_tensor_shape){1, d}; /* norms, out and down biases */
    }
}

uint64_t kvr_tensor_numel(const struct kvr_model *m, enum kvr_tensor t)
{
    struct kvr_tensor_shape s = kvr_tensor_shape(m, t);
    return s.rows * s.cols;
}

struct kvr_init_rule kvr_tensor_init_rule(const struct kvr_model *m, enum kvr_tensor t,
                                          uint32_t layer)
{
    struct kvr_init_rule r = {.stream = (uint64_t)t << 32 | layer, .scale = 0.02f};
    switch (t) {
    case KVR_T_ATTN_NORM_W:
    case KVR_T_MLP_NORM_W:
    case KVR_T_FINAL_NORM_W:
        r.scale = 0.1f, r.offset = 1.0f;
        break;
    case KVR_T_WQKV:
    case KVR_T_WO:
    case KVR_T_WUP:
    case KVR_T_WDOWN:
    case KVR_T_LM_HEAD:
        /* uniform on [-a, a] has variance a^2/3: a = sqrt(3/in) gives variance 1/in */
        r.scale = sqrtf(3.0f / (float)kvr_tensor_shape(m, t).cols);
        break;
    case KVR_T_EMBED:
        r.scale = 1.0f;
        break;
    default:
        break; /* biases */
    }
    return r;
}

void kvr_tensor_fill_random(const struct kvr_model *m, enum kvr_tensor t, uint32_t layer,
                            uint64_t seed, float *out)
{
    struct kvr_init_rule r = kvr_tensor_init_rule(m, t, layer);
    uint64_t n = kvr_tensor_numel(m, t);
    for (uint64_t i = 0; i < n; i++) out[i] = kvr_rng_value(seed, r.stream, i, r.scale, r.offset);
}

void kvr_tokens_random(uint64_t seed, uint32_t vocab, uint32_t n, int32_t *out)
{
    for (uint32_t i = 0; i < n; i++) out[i] = (int32_t)(kvr_rng_bits(seed, UINT64_MAX, i) % vocab);
}

uint16_t kvr_float_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(u >> 16 | 0x40);
    return (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
}

float kvr_bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
