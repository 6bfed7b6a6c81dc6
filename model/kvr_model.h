/* struct kvr_model: a decoder-only transformer, its presets, and its loaders.
 * The exact per-operation counts live in kvr_counts.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kvr_status.h"

enum kvr_norm { KVR_NORM_RMSNORM, KVR_NORM_LAYERNORM };
enum kvr_mlp { KVR_MLP_SWIGLU, KVR_MLP_GELU };
enum kvr_dtype { KVR_DTYPE_BF16, KVR_DTYPE_FP16, KVR_DTYPE_FP32 };

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
    bool bias;            /* biases on every linear layer of attention and MLP */
    bool tied_embeddings; /* LM head shares the embedding matrix */
    enum kvr_dtype dtype;
};

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
int kvr_norm_from_name(const char *s);
int kvr_mlp_from_name(const char *s);
int kvr_dtype_from_name(const char *s);
uint32_t kvr_dtype_bytes(enum kvr_dtype d);
