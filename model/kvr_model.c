#include "kvr_model.h"
#include "kvr_file.h"
#include "kvr_model_fields.h"

#include <stdio.h>
#include <string.h>

/* Presets. Every number is from the model's published Hugging Face config.json; data/README.md
 * names each source and the parameter count the reference framework reports for it. */
#define ROPE_PLAIN(th)                                                                             \
    .rotary = true, .rope_theta = th, .rotary_fraction = 1, .rope_scaling = KVR_ROPE_NONE,         \
    .rope_factor = 1, .rope_low_freq = 1, .rope_high_freq = 4, .rope_beta_fast = 32,               \
    .rope_beta_slow = 1, .rope_attn_factor = 1, .rope_truncate = true
#define LLAMA_BODY(nm, L, d, h, kv, f, V, eps, mp)                                                 \
    .name = nm, .n_layers = L, .d_model = d, .n_heads = h, .n_kv_heads = kv, .head_dim = d / h,    \
    .d_ffn = f, .vocab = V, .norm = KVR_NORM_RMSNORM, .mlp = KVR_MLP_SWIGLU,                       \
    .parallel_attn = false, .block_norms = 2, .tied_embeddings = false, .dtype = KVR_DTYPE_BF16,   \
    .norm_eps = eps, .max_pos = mp
#define LLAMA(nm, L, d, h, kv, f, V, eps, mp, th)                                                  \
    {                                                                                              \
        LLAMA_BODY(nm, L, d, h, kv, f, V, eps, mp), ROPE_PLAIN(th)                                 \
    }

static const struct kvr_model presets[] = {
    LLAMA("llama-7b", 32, 4096, 32, 32, 11008, 32000, 1e-6, 2048, 10000),
    LLAMA("llama-13b", 40, 5120, 40, 40, 13824, 32000, 1e-6, 2048, 10000),
    LLAMA("llama-30b", 60, 6656, 52, 52, 17920, 32000, 1e-6, 2048, 10000),
    LLAMA("llama-2-70b", 80, 8192, 64, 8, 28672, 32000, 1e-5, 4096, 10000),
    LLAMA("llama-3-8b", 32, 4096, 32, 8, 14336, 128256, 1e-5, 8192, 500000),
    /* Llama-3.1: rope_scaling llama3, factor 8, low 1, high 4, original 8192 */
    {LLAMA_BODY("llama-3.1-8b", 32, 4096, 32, 8, 14336, 128256, 1e-5, 131072), .rotary = true,
     .rope_theta = 500000, .rotary_fraction = 1, .rope_scaling = KVR_ROPE_LLAMA3, .rope_factor = 8,
     .rope_low_freq = 1, .rope_high_freq = 4, .rope_orig_ctx = 8192, .rope_beta_fast = 32,
     .rope_beta_slow = 1, .rope_attn_factor = 1, .rope_truncate = true},
    /* Mistral-7B-v0.1: every layer attends a 4096-token window */
    {LLAMA_BODY("mistral-7b", 32, 4096, 32, 8, 14336, 32000, 1e-5, 32768), ROPE_PLAIN(10000),
     .sliding_window = 4096},
    /* Qwen2-7B: Q, K, V biases, rotary base 1e6, use_sliding_window false */
    {LLAMA_BODY("qwen2-7b", 28, 3584, 28, 4, 18944, 152064, 1e-6, 131072), ROPE_PLAIN(1000000),
     .bias_qkv = true},
    {.name = "falcon-7b",
     .n_layers = 32,
     .d_model = 4544,
     .n_heads = 71,
     .n_kv_heads = 1,
     .head_dim = 64,
     .d_ffn = 18176,
     .vocab = 65024,
     .norm = KVR_NORM_LAYERNORM,
     .mlp = KVR_MLP_GELU,
     .parallel_attn = true,
     .block_norms = 1,
     .tied_embeddings = true,
     .dtype = KVR_DTYPE_BF16,
     .norm_eps = 1e-5,
     .max_pos = 2048,
     ROPE_PLAIN(10000)},
};

int kvr_model_preset_count(void)
{
    return (int)(sizeof presets / sizeof presets[0]);
}

const struct kvr_model *kvr_model_preset_at(int i)
{
    return (i >= 0 && i < kvr_model_preset_count()) ? &presets[i] : NULL;
}

const struct kvr_model *kvr_model_preset_find(const char *name)
{
    for (int i = 0; i < kvr_model_preset_count(); i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

enum kvr_status kvr_model_validate(const struct kvr_model *m)
{
    int field;
    return kvr_model_check(m, &field);
}

static const char *const norm_names[] = {"rmsnorm", "layernorm"};
static const char *const mlp_names[] = {"swiglu", "gelu"};
static const char *const dtype_names[] = {"bf16", "fp16", "fp32"};
static const char *const rope_names[] = {"none", "linear", "dynamic", "llama3", "yarn"};

static int index_of(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return -1;
}

const char *kvr_norm_name(enum kvr_norm n)
{
    return norm_names[n];
}
const char *kvr_mlp_name(enum kvr_mlp m)
{
    return mlp_names[m];
}
const char *kvr_dtype_name(enum kvr_dtype d)
{
    return dtype_names[d];
}
const char *kvr_rope_scaling_name(enum kvr_rope_scaling r)
{
    return rope_names[r];
}
int kvr_rope_scaling_from_name(const char *s)
{
    return index_of(rope_names, 5, s);
}
int kvr_norm_from_name(const char *s)
{
    return index_of(norm_names, 2, s);
}
int kvr_mlp_from_name(const char *s)
{
    return index_of(mlp_names, 2, s);
}
int kvr_dtype_from_name(const char *s)
{
    return index_of(dtype_names, 3, s);
}

bool kvr_model_any_bias(const struct kvr_model *m)
{
    return m->bias_qkv || m->bias_out || m->bias_mlp;
}

uint32_t kvr_dtype_bytes(enum kvr_dtype d)
{
    return d == KVR_DTYPE_FP32 ? 4 : 2;
}

enum kvr_status kvr_model_resolve(const char *name_or_file, struct kvr_model *out)
{
    const struct kvr_model *p = kvr_model_preset_find(name_or_file);
    if (p) {
        *out = *p;
        return KVR_OK;
    }
    if (kvr_file_has_suffix(name_or_file, ".ini")) return kvr_model_load_ini(name_or_file, out);
    if (kvr_file_has_suffix(name_or_file, ".json"))
        return kvr_model_load_hf_config(name_or_file, out);
    return kvr_error(KVR_ERR_INPUT,
                     "unknown model '%s': not a preset (see `kvr model list`) and not a "
                     ".ini or .json file",
                     name_or_file);
}
