/* struct kvr_model: a decoder-only transformer, its presets, and its loaders.
 * The exact per-operation counts live in kvr_counts.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kvr_status.h"

enum kvr_norm { KVR_NORM_RMSNORM, KVR_NORM_LAYERNORM };
enum kvr_mlp { KVR_MLP_SWIGLU, KVR_MLP_GELU };
enum kvr_dtype { KVR_DTYPE_BF16, KVR_DTYPE_FP16, KVR_DTYPE_FP32 };
/* Rotary scaling, as transformers' rope types: none ("default"), linear, dynamic (NTK, the base
 * recomputed for the prompt's length), llama3, yarn. */
enum kvr_rope_scaling {
    KVR_ROPE_NONE,
    KVR_ROPE_LINEAR,
    KVR_ROPE_DYNAMIC,
    KVR_ROPE_LLAMA3,
    KVR_ROPE_YARN
};

/* Limits that keep every per-layer count inside uint64_t (see kvr_counts.h). */
#define KVR_MAX_LAYERS 4096u
#define KVR_MAX_DMODEL 131072u /* also bounds n_heads * head_dim */
#define KVR_MAX_DFFN   524288u
#define KVR_MAX_VOCAB  16777216u
#define KVR_MAX_CTX    4194304u /* tokens: 4M */
#define KVR_NAME_CAP   64

struct kvr_model {
    char name[KVR_NAME_CAP];
    uint32_t n_layers;
    uint32_t d_model;
    uint32_t n_heads;    /* query heads */
    uint32_t n_kv_heads; /* == n_heads: MHA; 1: MQA; otherwise GQA */
    uint32_t head_dim;
    uint32_t d_ffn;
    uint32_t vocab;
    enum kvr_norm norm;
    enum kvr_mlp mlp;
    bool parallel_attn;   /* Falcon: attention and MLP read the same normed input */
    uint32_t block_norms; /* norms per block: 2 (sequential or Falcon-40B), 1 (Falcon-7B) */
    bool rotary;          /* rotary embeddings on Q and K (no parameters either way) */
    bool bias_qkv;        /* biases of the Q, K and V projections */
    bool bias_out;        /* bias of the attention output projection */
    bool bias_mlp;        /* biases of the MLP's projections (gate, up, down) */
    bool tied_embeddings; /* LM head shares the embedding matrix */
    enum kvr_dtype dtype;
    double norm_eps; /* RMSNorm / LayerNorm epsilon */
    /* Rotary embedding (transformers' rope parameters): the first rotary_fraction of each
     * head's dimensions are rotated, pairs (j, j + rot/2), at angle pos * inv_freq[j]. */
    double rope_theta;      /* base */
    double rotary_fraction; /* partial_rotary_factor, in (0, 1] */
    enum kvr_rope_scaling rope_scaling;
    double rope_factor;                    /* linear, dynamic, llama3, yarn */
    double rope_low_freq, rope_high_freq;  /* llama3: low_freq_factor, high_freq_factor */
    uint32_t rope_orig_ctx;                /* llama3, yarn: original_max_position_embeddings */
    double rope_beta_fast, rope_beta_slow; /* yarn */
    double rope_attn_factor;               /* yarn: scales cos and sin (1 otherwise) */
    bool rope_truncate;                    /* yarn: floor/ceil the correction range */
    uint32_t max_pos;        /* max_position_embeddings (0: unknown); dynamic NTK's reference */
    uint32_t sliding_window; /* 0: none; else query i sees key j iff 0 <= i - j < W, all layers */
};

/* Designated initializers of the fields that older code does not name: norm eps 1e-5, rotary
 * base 10000 on the whole head, no scaling, no window (as profiles default them). */
#define KVR_MODEL_DEFAULTS                                                                         \
    .norm_eps = 1e-5, .rope_theta = 10000, .rotary_fraction = 1, .rope_factor = 1,                 \
    .rope_low_freq = 1, .rope_high_freq = 4, .rope_beta_fast = 32, .rope_beta_slow = 1,            \
    .rope_attn_factor = 1, .rope_truncate = true

/* Whether the MLP or any projection has a bias. */
bool kvr_model_any_bias(const struct kvr_model *m);

/* Rotated dimensions per head: int(head_dim * rotary_fraction), as transformers, even. */
uint32_t kvr_rotary_dims(const struct kvr_model *m);

/* The rotary inverse frequencies inv_freq[0 .. rot/2) for a prompt of ctx tokens (only dynamic
 * scaling depends on it), as transformers computes them, and the factor that multiplies cos
 * and sin (yarn's attention factor; 1 otherwise). */
void kvr_rope_inv_freq(const struct kvr_model *m, uint32_t ctx, double *inv_freq,
                       double *attn_factor);

/* Keys a query at position i attends in a prompt: [kvr_window_first(m, i), i]. */
uint64_t kvr_window_first(const struct kvr_model *m, uint64_t i);

/* Checks every field; the message names the field and its value. */
enum kvr_status kvr_model_validate(const struct kvr_model *m);

/* Built-in presets (sources in data/README.md). */
int kvr_model_preset_count(void);
const struct kvr_model *kvr_model_preset_at(int i);
const struct kvr_model *kvr_model_preset_find(const char *name);

/* Loads NAME (a preset), an INI file (*.ini) or a Hugging Face config.json (*.json). */
enum kvr_status kvr_model_resolve(const char *name_or_file, struct kvr_model *out);
enum kvr_status kvr_model_load_ini(const char *path, struct kvr_model *out);
enum kvr_status kvr_model_load_hf_config(const char *path, struct kvr_model *out);

/* Names of enum values, and their inverse (returns -1 for an unknown name). */
const char *kvr_norm_name(enum kvr_norm n);
const char *kvr_mlp_name(enum kvr_mlp m);
const char *kvr_dtype_name(enum kvr_dtype d);
const char *kvr_rope_scaling_name(enum kvr_rope_scaling r);
int kvr_rope_scaling_from_name(const char *s);
int kvr_norm_from_name(const char *s);
int kvr_mlp_from_name(const char *s);
int kvr_dtype_from_name(const char *s);
uint32_t kvr_dtype_bytes(enum kvr_dtype d);
