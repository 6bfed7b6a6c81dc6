#include "kvr_model.h"
#include "kvr_file.h"
#include "kvr_model_fields.h"

#include <stdio.h>
#include <string.h>

/* Presets. Every number is from the model's published Hugging Face config.json; data/README.md
 * names each source and the parameter count the reference framework reports for it. */
#define LLAMA(nm, L, d, h, kv, f, V)                                                               \
    {                                                                                              \
        .name = nm, .n_layers = L, .d_model = d, .n_heads = h, .n_kv_heads = kv,                   \
        .head_dim = d / h, .d_ffn = f, .vocab = V, .norm = KVR_NORM_RMSNORM,                       \
        .mlp = KVR_MLP_SWIGLU, .parallel_attn = false, .block_norms = 2, .rotary = true,           \
        .bias = false, .tied_embeddings = false, .dtype = KVR_DTYPE_BF16                           \
    }

static const struct kvr_model presets[] = {
    LLAMA("llama-7b", 32, 4096, 32, 32, 11008, 32000),
    LLAMA("llama-13b", 40, 5120, 40, 40, 13824, 32000),
    LLAMA("llama-30b", 60, 6656, 52, 52, 17920, 32000),
    LLAMA("llama-2-70b", 80, 8192, 64, 8, 28672, 32000),
    LLAMA("llama-3-8b", 32, 4096, 32, 8, 14336, 128256),
    LLAMA("mistral-7b", 32, 4096, 32, 8, 14336, 32000),
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
     .rotary = true,
     .bias = false,
     .tied_embeddings = true,
     .dtype = KVR_DTYPE_BF16},
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
