/* Named fields of struct kvr_model, shared by the INI loader and the printers. Internal to
 * model/. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kvr_model.h"

enum kvr_model_field {
    KVR_F_NAME,
    KVR_F_N_LAYERS,
    KVR_F_D_MODEL,
    KVR_F_N_HEADS,
    KVR_F_N_KV_HEADS,
    KVR_F_HEAD_DIM,
    KVR_F_D_FFN,
    KVR_F_VOCAB,
    KVR_F_NORM,
    KVR_F_MLP,
    KVR_F_PARALLEL_ATTN,
    KVR_F_BLOCK_NORMS,
    KVR_F_ROTARY,
    KVR_F_BIAS, /* all three biases at once (older profiles); not with the three below */
    KVR_F_TIED,
    KVR_F_DTYPE,
    KVR_F_BIAS_QKV,
    KVR_F_BIAS_OUT,
    KVR_F_BIAS_MLP,
    KVR_F_NORM_EPS,
    KVR_F_ROPE_THETA,
    KVR_F_ROTARY_FRACTION,
    KVR_F_ROPE_SCALING,
    KVR_F_ROPE_FACTOR,
    KVR_F_ROPE_LOW_FREQ,
    KVR_F_ROPE_HIGH_FREQ,
    KVR_F_ROPE_ORIG_CTX,
    KVR_F_ROPE_BETA_FAST,
    KVR_F_ROPE_BETA_SLOW,
    KVR_F_ROPE_ATTN_FACTOR,
    KVR_F_ROPE_TRUNCATE,
    KVR_F_MAX_POS,
    KVR_F_SLIDING_WINDOW,
    KVR_N_FIELDS
};

/* The field called key, or -1. */
int kvr_model_field_find(const char *key);
const char *kvr_model_field_key(enum kvr_model_field f);
/* Whether a file must set this field (others have defaults, see kvr_model_fill_defaults). */
int kvr_model_field_required(enum kvr_model_field f);

/* Sets one field from text; the message names the key and the value. */
enum kvr_status kvr_model_field_set(struct kvr_model *m, enum kvr_model_field f, const char *value);

/* The field's value as a file would spell it (the inverse of kvr_model_field_set). */
void kvr_model_field_format(const struct kvr_model *m, enum kvr_model_field f, char *buf,
                            size_t cap);

/* Defaults of the optional fields given which ones were set (bit i = field i). */
void kvr_model_fill_defaults(struct kvr_model *m, uint64_t set_mask);
/* The rotary defaults of every family: base 10000, whole head, no scaling. */
void kvr_model_rope_defaults(struct kvr_model *m);

/* kvr_model_validate, also telling which field is at fault (for file:line messages). */
enum kvr_status kvr_model_check(const struct kvr_model *m, int *bad_field);
