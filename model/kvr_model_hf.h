/* Internal to model/: the JSON access of the Hugging Face config loader, shared by its two
 * files (kvr_model_hf.c: families and shapes; kvr_model_hf_rope.c: rotary parameters, the
 * sliding window and the keys that are refused). */
#pragma once

#include <sqlite3.h>
#include <stddef.h>

#include "kvr_model.h"

struct hf {
    sqlite3 *db;
    sqlite3_stmt *get; /* SELECT json_type(?1, ?2), json_extract(?1, ?2) */
    const char *path;
    const char *text;
    const char *const *keys; /* JSON key of each kvr_model field, for messages */
    const char *family;      /* model_type as given */
    char family_buf[64];
};

enum hf_kind { HF_INT, HF_BOOL, HF_TEXT, HF_REAL };

/* Reads $.key (key may be a path: "rope_parameters.factor") as kind into *i, or into buf
 * (text), or into *(double *)buf (HF_REAL). Returns KVR_OK, or 1 with no message when the key
 * is absent or null, or an error naming the key. */
int kvr_hf_get(struct hf *h, const char *key, enum hf_kind kind, long long *i, char *buf,
               size_t cap);
/* json_type of $.key: "null" when absent too. */
void kvr_hf_type(struct hf *h, const char *key, char *buf, size_t cap);
/* Whether $.key exists at all (null included). */
int kvr_hf_has(struct hf *h, const char *key);

/* Rotary parameters (rope_parameters, or rope_theta and rope_scaling), for every family. */
enum kvr_status kvr_hf_rope(struct hf *h, struct kvr_model *m);
/* The window of Mistral (every layer) and Qwen2 (layer_types, or use_sliding_window and
 * max_window_layers); a model whose layers differ is refused. */
enum kvr_status kvr_hf_window(struct hf *h, struct kvr_model *m, int qwen2);
/* Every top-level key is read, inert, or off; any other is refused by name (kvr_model_hf_keys.c).
 */
enum kvr_status kvr_hf_check_keys(struct hf *h);
/* Keys that change the computation and have no null meaning are refused when null. */
enum kvr_status kvr_hf_check_nulls(struct hf *h);
