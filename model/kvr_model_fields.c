#include "kvr_model_fields.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_units.h"

enum field_type { T_NAME, T_SIZE, T_U32, T_BOOL, T_REAL, T_NORM, T_MLP, T_DTYPE, T_ROPE, T_BIAS };

#define AT(f) offsetof(struct kvr_model, f)
static const struct {
    const char *key;
    int required;
    enum field_type type;
    size_t at;
} fields[KVR_N_FIELDS] = {
    [KVR_F_NAME] = {"name", 0, T_NAME, AT(name)},
    [KVR_F_N_LAYERS] = {"n_layers", 1, T_SIZE, AT(n_layers)},
    [KVR_F_D_MODEL] = {"d_model", 1, T_SIZE, AT(d_model)},
    [KVR_F_N_HEADS] = {"n_heads", 1, T_SIZE, AT(n_heads)},
    [KVR_F_N_KV_HEADS] = {"n_kv_heads", 0, T_SIZE, AT(n_kv_heads)},
    [KVR_F_HEAD_DIM] = {"head_dim", 0, T_SIZE, AT(head_dim)},
    [KVR_F_D_FFN] = {"d_ffn", 1, T_SIZE, AT(d_ffn)},
    [KVR_F_VOCAB] = {"vocab", 1, T_SIZE, AT(vocab)},
    [KVR_F_NORM] = {"norm", 1, T_NORM, AT(norm)},
    [KVR_F_MLP] = {"mlp", 1, T_MLP, AT(mlp)},
    [KVR_F_PARALLEL_ATTN] = {"parallel_attn", 0, T_BOOL, AT(parallel_attn)},
    [KVR_F_BLOCK_NORMS] = {"block_norms", 0, T_SIZE, AT(block_norms)},
    [KVR_F_ROTARY] = {"rotary", 0, T_BOOL, AT(rotary)},
    [KVR_F_BIAS] = {"bias", 0, T_BIAS, AT(bias_qkv)}, /* and the other two follow it */
    [KVR_F_TIED] = {"tied_embeddings", 0, T_BOOL, AT(tied_embeddings)},
    [KVR_F_DTYPE] = {"dtype", 0, T_DTYPE, AT(dtype)},
    [KVR_F_BIAS_QKV] = {"bias_qkv", 0, T_BOOL, AT(bias_qkv)},
    [KVR_F_BIAS_OUT] = {"bias_out", 0, T_BOOL, AT(bias_out)},
    [KVR_F_BIAS_MLP] = {"bias_mlp", 0, T_BOOL, AT(bias_mlp)},
    [KVR_F_NORM_EPS] = {"norm_eps", 0, T_REAL, AT(norm_eps)},
    [KVR_F_ROPE_THETA] = {"rope_theta", 0, T_REAL, AT(rope_theta)},
    [KVR_F_ROTARY_FRACTION] = {"rotary_fraction", 0, T_REAL, AT(rotary_fraction)},
    [KVR_F_ROPE_SCALING] = {"rope_scaling", 0, T_ROPE, AT(rope_scaling)},
    [KVR_F_ROPE_FACTOR] = {"rope_factor", 0, T_REAL, AT(rope_factor)},
    [KVR_F_ROPE_LOW_FREQ] = {"rope_low_freq_factor", 0, T_REAL, AT(rope_low_freq)},
    [KVR_F_ROPE_HIGH_FREQ] = {"rope_high_freq_factor", 0, T_REAL, AT(rope_high_freq)},
    [KVR_F_ROPE_ORIG_CTX] = {"rope_original_max_pos", 0, T_U32, AT(rope_orig_ctx)},
    [KVR_F_ROPE_BETA_FAST] = {"rope_beta_fast", 0, T_REAL, AT(rope_beta_fast)},
    [KVR_F_ROPE_BETA_SLOW] = {"rope_beta_slow", 0, T_REAL, AT(rope_beta_slow)},
    [KVR_F_ROPE_ATTN_FACTOR] = {"rope_attention_factor", 0, T_REAL, AT(rope_attn_factor)},
    [KVR_F_ROPE_TRUNCATE] = {"rope_truncate", 0, T_BOOL, AT(rope_truncate)},
    [KVR_F_MAX_POS] = {"max_position_embeddings", 0, T_U32, AT(max_pos)},
    [KVR_F_SLIDING_WINDOW] = {"sliding_window", 0, T_U32, AT(sliding_window)},
};
#undef AT

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

/* A size; zero is rejected here (unless allowed) so the error keeps its file and line. */
static enum kvr_status parse_size(const char *key, const char *v, bool zero_ok, uint32_t *out)
{
    uint64_t x;
    if (kvr_parse_u64(v, UINT32_MAX, &x)) return kvr_error_prefix(KVR_ERR_INPUT, "%s: ", key);
    if (x == 0 && !zero_ok) return kvr_error(KVR_ERR_INPUT, "%s = %s must be positive", key, v);
    *out = (uint32_t)x;
    return KVR_OK;
}

/* A finite positive real number, written as the data files' reals (kvr_parse_real): strtod
 * alone took hex ("rope_theta = 0x10" read as 16) and "infinity"-like spellings. */
static enum kvr_status parse_real(const char *key, const char *v, double *out)
{
    double x;
    if (kvr_parse_real(key, v, -DBL_MAX, DBL_MAX, &x) || x <= 0)
        return kvr_error(KVR_ERR_INPUT, "%s = '%s' is not a finite positive number", key, v);
    *out = x;
    return KVR_OK;
}

static enum kvr_status parse_enum(const char *key, const char *v, int idx, const char *choices,
                                  int *out)
{
    if (idx < 0) return kvr_error(KVR_ERR_INPUT, "%s = '%s' is not one of %s", key, v, choices);
    *out = idx;
    return KVR_OK;
}

static enum kvr_status set_enum(struct kvr_model *m, enum kvr_model_field f, const char *v)
{
    const char *k = fields[f].key;
    int e = 0, *dst = (int *)((char *)m + fields[f].at);
    enum kvr_status st;
    switch (fields[f].type) {
    case T_NORM:
        st = parse_enum(k, v, kvr_norm_from_name(v), "rmsnorm, layernorm", &e);
        break;
    case T_MLP:
        st = parse_enum(k, v, kvr_mlp_from_name(v), "swiglu, gelu", &e);
        break;
    case T_DTYPE:
        st = parse_enum(k, v, kvr_dtype_from_name(v), "bf16, fp16, fp32", &e);
        break;
    default:
        st = parse_enum(k, v, kvr_rope_scaling_from_name(v), "none, linear, dynamic, llama3, yarn",
                        &e);
        break;
    }
    if (!st) *dst = e;
    return st;
}

enum kvr_status kvr_model_field_set(struct kvr_model *m, enum kvr_model_field f, const char *v)
{
    if ((unsigned)f >= KVR_N_FIELDS)
        return kvr_error(KVR_ERR_INPUT, "unknown model field %d", (int)f);
    const char *k = fields[f].key;
    void *dst = (char *)m + fields[f].at;
    enum kvr_status st;
    switch (fields[f].type) {
    case T_NAME:
        if (!*v || strlen(v) >= KVR_NAME_CAP)
            return kvr_error(KVR_ERR_INPUT, "name = '%s' must have 1 to %d characters", v,
                             KVR_NAME_CAP - 1);
        snprintf(m->name, sizeof m->name, "%s", v);
        return KVR_OK;
    case T_SIZE:
    case T_U32:
        return parse_size(k, v, fields[f].type == T_U32, dst);
    case T_BOOL:
        return parse_bool(k, v, dst);
    case T_REAL:
        return parse_real(k, v, dst);
    case T_BIAS:
        if (!(st = parse_bool(k, v, dst))) m->bias_out = m->bias_mlp = m->bias_qkv;
        return st;
    default:
        return set_enum(m, f, v);
    }
}

/* The name of an enum field's value. */
static const char *enum_name(const struct kvr_model *m, enum field_type t)
{
    switch (t) {
    case T_NORM:
        return kvr_norm_name(m->norm);
    case T_MLP:
        return kvr_mlp_name(m->mlp);
    case T_DTYPE:
        return kvr_dtype_name(m->dtype);
    default:
        return kvr_rope_scaling_name(m->rope_scaling);
    }
}

void kvr_model_field_format(const struct kvr_model *m, enum kvr_model_field f, char *buf,
                            size_t cap)
{
    const void *at = (const char *)m + fields[f].at;
    switch ((unsigned)f < KVR_N_FIELDS ? (int)fields[f].type : -1) {
    case T_NAME:
        snprintf(buf, cap, "%s", m->name);
        return;
    case T_SIZE:
    case T_U32:
        snprintf(buf, cap, "%u", *(const uint32_t *)at);
        return;
    case T_BOOL:
        snprintf(buf, cap, "%s", *(const bool *)at ? "true" : "false");
        return;
    case T_REAL:
        snprintf(buf, cap, "%.17g", *(const double *)at);
        return;
    case T_BIAS: /* derived from the three: "mixed" when they differ */
        snprintf(buf, cap, "%s",
                 m->bias_qkv && m->bias_out && m->bias_mlp      ? "true"
                 : !m->bias_qkv && !m->bias_out && !m->bias_mlp ? "false"
                                                                : "mixed");
        return;
    case T_NORM:
    case T_MLP:
    case T_DTYPE:
    case T_ROPE:
        snprintf(buf, cap, "%s", enum_name(m, fields[f].type));
        return;
    default:
        snprintf(buf, cap, "?");
    }
}

void kvr_model_rope_defaults(struct kvr_model *m)
{
    m->rope_theta = 10000, m->rotary_fraction = 1, m->rope_scaling = KVR_ROPE_NONE;
    m->rope_factor = 1, m->rope_low_freq = 1, m->rope_high_freq = 4, m->rope_orig_ctx = 0;
    m->rope_beta_fast = 32, m->rope_beta_slow = 1, m->rope_attn_factor = 1;
    m->rope_truncate = true;
}

/* yarn's attention factor when the file gives none: 0.1 ln(factor) + 1 (transformers) */
static double yarn_mscale(double factor)
{
    return factor <= 1 ? 1.0 : 0.1 * log(factor) + 1.0;
}

void kvr_model_fill_defaults(struct kvr_model *m, uint64_t set)
{
#define UNSET(f) (!(set & (1ull << (f))))
    struct kvr_model d = {0};
    kvr_model_rope_defaults(&d);
    if (UNSET(KVR_F_N_KV_HEADS)) m->n_kv_heads = m->n_heads;
    if (UNSET(KVR_F_HEAD_DIM) && m->n_heads) m->head_dim = m->d_model / m->n_heads;
    if (UNSET(KVR_F_PARALLEL_ATTN)) m->parallel_attn = false;
    if (UNSET(KVR_F_BLOCK_NORMS)) m->block_norms = m->parallel_attn ? 1 : 2;
    if (UNSET(KVR_F_ROTARY)) m->rotary = true;
    if (UNSET(KVR_F_TIED)) m->tied_embeddings = false;
    if (UNSET(KVR_F_DTYPE)) m->dtype = KVR_DTYPE_BF16;
    if (UNSET(KVR_F_NORM_EPS)) m->norm_eps = 1e-5;
    /* every other field defaults to the rotary defaults, no bias, no window, 0 */
    for (int f = KVR_F_ROPE_THETA; f <= KVR_F_ROPE_TRUNCATE; f++) {
        if (!UNSET(f)) continue;
        size_t at = fields[f].at;
        size_t n = fields[f].type == T_REAL   ? sizeof(double)
                   : fields[f].type == T_BOOL ? sizeof(bool)
                   : fields[f].type == T_ROPE ? sizeof(enum kvr_rope_scaling)
                                              : sizeof(uint32_t);
        memcpy((char *)m + at, (const char *)&d + at, n);
    }
    if (UNSET(KVR_F_ROPE_ATTN_FACTOR) && m->rope_scaling == KVR_ROPE_YARN)
        m->rope_attn_factor = yarn_mscale(m->rope_factor);
#undef UNSET
}

static enum kvr_status check_size(const struct kvr_model *m, int f, uint32_t max, int *bad)
{
    uint32_t v; /* a T_SIZE field */
    memcpy(&v, (const char *)m + fields[f].at, sizeof v);
    *bad = f;
    if (v == 0) return kvr_error(KVR_ERR_INPUT, "%s must be positive, got 0", fields[f].key);
    if (v > max)
        return kvr_error(KVR_ERR_INPUT, "%s = %u exceeds the limit %u", fields[f].key, v, max);
    return KVR_OK;
}

/* Whether field f holds its default (kvr_model_rope_defaults): fields that a rotary scaling
 * type does not use must, so that one computation has one description (and one hash). */
static bool at_default(const struct kvr_model *m, int f)
{
    struct kvr_model d = {0};
    kvr_model_rope_defaults(&d);
    char a[64], b[64];
    kvr_model_field_format(m, (enum kvr_model_field)f, a, sizeof a);
    kvr_model_field_format(&d, (enum kvr_model_field)f, b, sizeof b);
    return strcmp(a, b) == 0;
}

/* The rotary fields each scaling type reads (bit per field). */
static uint64_t rope_uses(const struct kvr_model *m)
{
#define B(f) (1ull << (f))
    if (!m->rotary) return 0;
    uint64_t u = B(KVR_F_ROPE_THETA) | B(KVR_F_ROTARY_FRACTION) | B(KVR_F_ROPE_SCALING);
    switch (m->rope_scaling) {
    case KVR_ROPE_LINEAR:
    case KVR_ROPE_DYNAMIC:
        return u | B(KVR_F_ROPE_FACTOR);
    case KVR_ROPE_LLAMA3:
        return u | B(KVR_F_ROPE_FACTOR) | B(KVR_F_ROPE_LOW_FREQ) | B(KVR_F_ROPE_HIGH_FREQ) |
               B(KVR_F_ROPE_ORIG_CTX);
    case KVR_ROPE_YARN:
        return u | B(KVR_F_ROPE_FACTOR) | B(KVR_F_ROPE_ORIG_CTX) | B(KVR_F_ROPE_BETA_FAST) |
               B(KVR_F_ROPE_BETA_SLOW) | B(KVR_F_ROPE_ATTN_FACTOR) | B(KVR_F_ROPE_TRUNCATE);
    default:
        return u;
    }
#undef B
}

/* The scaling parameters a type uses are finite and positive: a factor of 0 divides by zero,
 * low_freq_factor 0 too (transformers: ZeroDivisionError), a negative beta takes the log of a
 * negative number (ValueError), an attention factor <= 0 zeroes or flips cos and sin. */
static enum kvr_status check_positive(const struct kvr_model *m, uint64_t uses, int *bad)
{
    static const int pos[] = {KVR_F_ROPE_FACTOR,    KVR_F_ROPE_LOW_FREQ,  KVR_F_ROPE_HIGH_FREQ,
                              KVR_F_ROPE_BETA_FAST, KVR_F_ROPE_BETA_SLOW, KVR_F_ROPE_ATTN_FACTOR};
    for (size_t i = 0; i < sizeof pos / sizeof *pos; i++) {
        double v;
        memcpy(&v, (const char *)m + fields[pos[i]].at, sizeof v);
        *bad = pos[i];
        if ((uses & (1ull << pos[i])) && !(v > 0 && isfinite(v)))
            return kvr_error(KVR_ERR_INPUT,
                             "%s = %g must be a finite positive number (rope type %s)",
                             fields[pos[i]].key, v, kvr_rope_scaling_name(m->rope_scaling));
    }
    return KVR_OK;
}

static enum kvr_status check_rope(const struct kvr_model *m, int *bad)
{
    enum kvr_status st;
    uint64_t uses = rope_uses(m);
    for (int f = KVR_F_ROPE_THETA; f <= KVR_F_ROPE_TRUNCATE; f++) {
        *bad = f;
        if (!(uses & (1ull << f)) && !at_default(m, f))
            return kvr_error(KVR_ERR_INPUT, "%s is set but %s does not use it", fields[f].key,
                             m->rotary ? kvr_rope_scaling_name(m->rope_scaling) : "rotary = false");
    }
    if (!m->rotary) return KVR_OK;
    *bad = KVR_F_ROPE_THETA;
    if (!(m->rope_theta > 1 && isfinite(m->rope_theta)))
        return kvr_error(KVR_ERR_INPUT, "rope_theta = %g must be above 1", m->rope_theta);
    *bad = KVR_F_ROTARY_FRACTION;
    if (!(m->rotary_fraction > 0 && m->rotary_fraction <= 1) || kvr_rotary_dims(m) < 2 ||
        (m->rope_scaling == KVR_ROPE_DYNAMIC && kvr_rotary_dims(m) < 4))
        return kvr_error(KVR_ERR_INPUT,
                         "rotary_fraction = %g must be in (0, 1] and rotate at least 2 of the "
                         "head's %u dimensions (4 with dynamic scaling)",
                         m->rotary_fraction, m->head_dim);
    *bad = KVR_F_ROTARY_FRACTION;
    if ((uint32_t)((double)m->head_dim * m->rotary_fraction) % 2)
        return kvr_error(KVR_ERR_INPUT,
                         "head_dim * rotary_fraction = %u rotated dimensions is odd: rotary "
                         "embeddings rotate pairs (transformers fails on it)",
                         (uint32_t)((double)m->head_dim * m->rotary_fraction));
    if ((st = check_positive(m, uses, bad))) return st;
    *bad = KVR_F_ROPE_ORIG_CTX;
    if ((uses & (1ull << KVR_F_ROPE_ORIG_CTX)) && m->rope_orig_ctx == 0)
        return kvr_error(KVR_ERR_INPUT, "rope_scaling = %s needs rope_original_max_pos",
                         kvr_rope_scaling_name(m->rope_scaling));
    *bad = KVR_F_MAX_POS;
    if (m->rope_scaling == KVR_ROPE_DYNAMIC && m->max_pos == 0)
        return kvr_error(KVR_ERR_INPUT, "rope_scaling = dynamic needs max_position_embeddings");
    *bad = KVR_F_ROPE_HIGH_FREQ;
    if (m->rope_scaling == KVR_ROPE_LLAMA3 && !(m->rope_high_freq > m->rope_low_freq))
        return kvr_error(KVR_ERR_INPUT, "rope_high_freq_factor = %g must exceed the low one, %g",
                         m->rope_high_freq, m->rope_low_freq);
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
    *bad = KVR_F_NORM_EPS;
    if (!(m->norm_eps > 0 && m->norm_eps < 1))
        return kvr_error(KVR_ERR_INPUT, "norm_eps = %g must be in (0, 1)", m->norm_eps);
    return check_rope(m, bad);
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
