/* Hugging Face config.json: rotary parameters and the sliding window. transformers v5 writes
 * "rope_parameters" {rope_type, rope_theta, factor, ...}; v4 wrote "rope_theta" and
 * "rope_scaling" {type or rope_type, factor, ...}. Both are read; every key of the object is
 * either used or refused by name, and rope types kvrun does not implement are refused. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kvr_model_fields.h"
#include "kvr_model_hf.h"

static int get_real(struct hf *h, const char *obj, const char *key, double *out)
{
    char path[128];
    snprintf(path, sizeof path, "%s.%s", obj, key);
    return kvr_hf_get(h, path, HF_REAL, NULL, (char *)out, sizeof *out);
}

typedef enum kvr_status (*key_fn)(struct hf *h, const char *obj, const char *key, const char *type,
                                  const struct kvr_model *m);

/* fn on every key of the object obj (with its JSON type), until one fails. */
static enum kvr_status each_key(struct hf *h, const char *obj, key_fn fn, const struct kvr_model *m)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT key, type FROM json_each(?1, '$.%s')", obj);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(h->db, sql, -1, &q, NULL) != SQLITE_OK)
        return kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(h->db));
    sqlite3_bind_text(q, 1, h->text, -1, SQLITE_STATIC);
    enum kvr_status st = KVR_OK;
    while (!st && sqlite3_step(q) == SQLITE_ROW)
        st = fn(h, obj, (const char *)sqlite3_column_text(q, 0),
                (const char *)sqlite3_column_text(q, 1), m);
    sqlite3_finalize(q);
    return st;
}

/* The keys of the object the rope type reads (transformers' _validate_<type>_rope_parameters:
 * it warns about any other and ignores it; kvrun refuses it). */
static bool type_reads(enum kvr_rope_scaling r, const char *k)
{
    static const char *const common[] = {"rope_type", "type", "rope_theta", "partial_rotary_factor",
                                         NULL};
    static const char *const none[] = {NULL};
    static const char *const factor[] = {"factor", NULL};
    static const char *const llama3[] = {"factor", "low_freq_factor", "high_freq_factor",
                                         "original_max_position_embeddings", NULL};
    static const char *const yarn[] = {"factor",
                                       "original_max_position_embeddings",
                                       "attention_factor",
                                       "beta_fast",
                                       "beta_slow",
                                       "mscale",
                                       "mscale_all_dim",
                                       "truncate",
                                       NULL};
    const char *const *own = r == KVR_ROPE_LLAMA3 ? llama3
                             : r == KVR_ROPE_YARN ? yarn
                             : r == KVR_ROPE_NONE ? none
                                                  : factor;
    for (const char *const *l = common; *l; l++)
        if (!strcmp(*l, k)) return true;
    for (; *own; own++)
        if (!strcmp(*own, k)) return true;
    return false;
}

/* The keys an object may hold (those some rope type reads), so that a parameter kvrun would
 * ignore is refused instead. */
static enum kvr_status known_key(struct hf *h, const char *obj, const char *k, const char *type,
                                 const struct kvr_model *m)
{
    static const enum kvr_rope_scaling readers[] = {KVR_ROPE_LINEAR, KVR_ROPE_LLAMA3,
                                                    KVR_ROPE_YARN};
    /* transformers reads these with .get() and treats None as absent (beta_fast "or 32", ...);
     * any other null (factor, rope_theta, truncate, original_max_position_embeddings, ...) it
     * fails on, or reads as false, so kvrun refuses it rather than take a default */
    static const char *const nullable[] = {"attention_factor", "beta_fast", "beta_slow", "mscale",
                                           "mscale_all_dim"};
    (void)m;
    bool may_be_null = false;
    for (size_t i = 0; i < sizeof nullable / sizeof *nullable; i++)
        may_be_null = may_be_null || !strcmp(k, nullable[i]);
    if (!strcmp(type, "null") && !may_be_null)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"%s.%s\" = null is not supported: give its value or remove it",
                         h->path, obj, k);
    for (size_t i = 0; i < sizeof readers / sizeof *readers; i++)
        if (type_reads(readers[i], k)) return KVR_OK;
    if (!strcmp(type, "object"))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"%s.%s\": rotary parameters per layer type are not supported",
                         h->path, obj, k);
    return kvr_error(KVR_ERR_INPUT, "%s: key \"%s.%s\" is not a rotary parameter kvrun knows",
                     h->path, obj, k);
}

static enum kvr_status check_keys(struct hf *h, const char *obj)
{
    return each_key(h, obj, known_key, NULL);
}

static enum kvr_status type_key(struct hf *h, const char *obj, const char *k, const char *type,
                                const struct kvr_model *m)
{
    (void)type;
    if (type_reads(m->rope_scaling, k)) return KVR_OK;
    return kvr_error(KVR_ERR_INPUT,
                     "%s: key \"%s.%s\" is not a parameter of rope type %s (transformers "
                     "ignores it); remove it or give the type that uses it",
                     h->path, obj, k, kvr_rope_scaling_name(m->rope_scaling));
}

static enum kvr_status check_type_keys(struct hf *h, const char *obj, const struct kvr_model *m)
{
    return each_key(h, obj, type_key, m);
}

/* "rope_type", or the older "type". Both given and different: transformers 4's configs copy
 * "type" over "rope_type" (LlamaConfig: "BC: if there is a 'type' field, copy it to
 * 'rope_type'"), 5's standardize_rope_params keeps "rope_type" (setdefault), so the two
 * versions compute different models: refused. */
static enum kvr_status rope_type(struct hf *h, const char *obj, struct kvr_model *m)
{
    char path[128], t[64] = "default", old[64] = "";
    snprintf(path, sizeof path, "%s.type", obj);
    int rc_old = kvr_hf_get(h, path, HF_TEXT, NULL, old, sizeof old);
    snprintf(path, sizeof path, "%s.rope_type", obj);
    int rc = kvr_hf_get(h, path, HF_TEXT, NULL, t, sizeof t);
    if (rc > 1 || rc_old > 1) return (enum kvr_status)(rc > 1 ? rc : rc_old);
    if (rc == 0 && rc_old == 0 && strcmp(t, old))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: keys \"%s.rope_type\" = \"%s\" and \"%s.type\" = \"%s\" differ "
                         "(transformers 4 computes the second, 5 the first); give one",
                         h->path, obj, t, obj, old);
    if (rc == 1 && rc_old == 0) {
        memcpy(t, old, sizeof t);
        snprintf(path, sizeof path, "%s.type", obj);
    }
    int r = !strcmp(t, "default") ? KVR_ROPE_NONE : kvr_rope_scaling_from_name(t);
    if (r < 0 || !strcmp(t, "none"))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"%s\" = \"%s\": rotary scaling of this type is not supported "
                         "(default, linear, dynamic, llama3, yarn; not longrope or su, whose "
                         "factors depend on the prompt's length per dimension)",
                         h->path, path, t);
    m->rope_scaling = (enum kvr_rope_scaling)r;
    return KVR_OK;
}

/* A parameter the type needs (transformers reads it without a default). */
static enum kvr_status need(struct hf *h, const char *obj, const char *key,
                            const struct kvr_model *m, double *out)
{
    int rc = get_real(h, obj, key, out);
    if (rc == 1)
        return kvr_error(KVR_ERR_INPUT, "%s: rope type %s needs key \"%s.%s\"", h->path,
                         kvr_rope_scaling_name(m->rope_scaling), obj, key);
    return (enum kvr_status)rc;
}

static double mscale(double factor, double ms)
{
    return factor <= 1 ? 1.0 : 0.1 * ms * log(factor) + 1.0;
}

static enum kvr_status yarn(struct hf *h, const char *obj, struct kvr_model *m)
{
    double f = 0, af = 0, ms = 0, msa = 0, bf = 0, bs = 0;
    /* factor is required: transformers 5 reads rope_parameters["factor"] (absent: KeyError;
     * null: max_position_embeddings / original), 4 fails on both */
    enum kvr_status st = need(h, obj, "factor", m, &f);
    if (st) return st;
    m->rope_factor = f;
    /* absent or null: the default; any other non-number is an error (transformers fails on
     * it), never read as absent */
    int rc_bf = get_real(h, obj, "beta_fast", &bf), rc_bs = get_real(h, obj, "beta_slow", &bs);
    int rc_af = get_real(h, obj, "attention_factor", &af), rc_ms = get_real(h, obj, "mscale", &ms);
    int rc_msa = get_real(h, obj, "mscale_all_dim", &msa);
    int rcs[] = {rc_bf, rc_bs, rc_af, rc_ms, rc_msa};
    for (size_t i = 0; i < sizeof rcs / sizeof *rcs; i++)
        if (rcs[i] > 1) return (enum kvr_status)rcs[i];
    if (rc_bf == 0 && bf) m->rope_beta_fast = bf;
    if (rc_bs == 0 && bs) m->rope_beta_slow = bs;
    char path[128];
    long long tr = 1;
    snprintf(path, sizeof path, "%s.truncate", obj);
    int rc = kvr_hf_get(h, path, HF_BOOL, &tr, NULL, 0);
    if (rc > 1) return (enum kvr_status)rc;
    m->rope_truncate = tr != 0;
    if (rc_af == 0)
        m->rope_attn_factor = af;
    else
        m->rope_attn_factor = ms && msa ? mscale(f, ms) / mscale(f, msa) : mscale(f, 1);
    return KVR_OK;
}

/* original_max_position_embeddings of llama3 and yarn, as transformers' standardize_rope_params:
 * the object's, the top level's, else max_position_embeddings. An integer, as the other sizes:
 * transformers computes with 8192.5 as given, which a whole token count cannot hold. */
static enum kvr_status orig_ctx(struct hf *h, const char *obj, struct kvr_model *m)
{
    char path[128];
    long long in = 0, top = 0;
    snprintf(path, sizeof path, "%s.original_max_position_embeddings", obj);
    int rc_obj = kvr_hf_get(h, path, HF_INT, &in, NULL, 0);
    int rc_top = kvr_hf_get(h, "original_max_position_embeddings", HF_INT, &top, NULL, 0);
    if (rc_obj > 1 || rc_top > 1) return (enum kvr_status)(rc_obj > 1 ? rc_obj : rc_top);
    if (rc_obj == 0 && rc_top == 0 && in != top)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"original_max_position_embeddings\" = %lld and key "
                         "\"%s.original_max_position_embeddings\" = %lld differ (transformers 5 "
                         "reads the first, 4 the second); give one",
                         h->path, top, obj, in);
    if (rc_obj == 1) in = rc_top == 0 ? top : m->max_pos;
    if (!(in >= 1 && in <= UINT32_MAX))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: original_max_position_embeddings = %lld is out of range", h->path,
                         in);
    m->rope_orig_ctx = (uint32_t)in;
    return KVR_OK;
}

/* The scaling type's own parameters. */
static enum kvr_status scaling(struct hf *h, const char *obj, struct kvr_model *m)
{
    enum kvr_status st = KVR_OK;
    if ((m->rope_scaling == KVR_ROPE_LLAMA3 || m->rope_scaling == KVR_ROPE_YARN) &&
        (st = orig_ctx(h, obj, m)))
        return st;
    switch (m->rope_scaling) {
    case KVR_ROPE_LINEAR:
    case KVR_ROPE_DYNAMIC:
        return need(h, obj, "factor", m, &m->rope_factor);
    case KVR_ROPE_LLAMA3:
        if ((st = need(h, obj, "factor", m, &m->rope_factor)) ||
            (st = need(h, obj, "low_freq_factor", m, &m->rope_low_freq)) ||
            (st = need(h, obj, "high_freq_factor", m, &m->rope_high_freq)))
            return st;
        return KVR_OK;
    case KVR_ROPE_YARN:
        return yarn(h, obj, m);
    default:
        return KVR_OK;
    }
}

/* rope_theta at the top level and in the object, different: transformers 4 reads the top
 * level's (config.rope_theta), 5 the object's (setdefault keeps it): refused. */
static enum kvr_status theta_once(struct hf *h, const char *obj)
{
    double top = 0, in = 0;
    int rc_top = kvr_hf_get(h, "rope_theta", HF_REAL, NULL, (char *)&top, sizeof top);
    int rc_in = get_real(h, obj, "rope_theta", &in);
    if (rc_top > 1 || rc_in > 1) return (enum kvr_status)(rc_top > 1 ? rc_top : rc_in);
    if (rc_top == 0 && rc_in == 0 && top != in)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: keys \"rope_theta\" = %g and \"%s.rope_theta\" = %g differ "
                         "(transformers 4 reads the first, 5 the second); give one",
                         h->path, top, obj, in);
    return KVR_OK;
}

enum kvr_status kvr_hf_rope(struct hf *h, struct kvr_model *m)
{
    char tp[16], ts[16];
    kvr_model_rope_defaults(m);
    kvr_hf_type(h, "rope_parameters", tp, sizeof tp);
    kvr_hf_type(h, "rope_scaling", ts, sizeof ts);
    const char *obj = !strcmp(tp, "object") ? "rope_parameters" : "rope_scaling";
    if (!strcmp(tp, "object") && !strcmp(ts, "object"))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: keys \"rope_parameters\" and \"rope_scaling\" are both set; give one",
                         h->path);
    if (strcmp(tp, "null") && strcmp(tp, "object"))
        return kvr_error(KVR_ERR_INPUT, "%s: key \"rope_parameters\" must be an object", h->path);
    if (strcmp(ts, "null") && strcmp(ts, "object"))
        return kvr_error(KVR_ERR_INPUT, "%s: key \"rope_scaling\" must be an object", h->path);
    int rc = kvr_hf_get(h, "rope_theta", HF_REAL, NULL, (char *)&m->rope_theta, sizeof(double));
    if (rc > 1) return (enum kvr_status)rc;
    bool have_obj = !strcmp(tp, "object") || !strcmp(ts, "object");
    if (have_obj) {
        enum kvr_status st;
        if ((st = rope_type(h, obj, m)) || (st = check_keys(h, obj)) ||
            (st = check_type_keys(h, obj, m)) || (st = theta_once(h, obj)))
            return st;
    }
    char to[16];
    kvr_hf_type(h, "original_max_position_embeddings", to, sizeof to);
    if (m->rope_scaling != KVR_ROPE_LLAMA3 && m->rope_scaling != KVR_ROPE_YARN &&
        strcmp(to, "null"))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"original_max_position_embeddings\" is read only by rope types "
                         "llama3 and yarn, not %s",
                         h->path, kvr_rope_scaling_name(m->rope_scaling));
    if (!have_obj) return KVR_OK;
    if ((rc = get_real(h, obj, "rope_theta", &m->rope_theta)) > 1) return (enum kvr_status)rc;
    return scaling(h, obj, m);
}

/* Qwen2's layer types: all full (no window), or all sliding; a mix is refused. */
static enum kvr_status layer_types(struct hf *h, struct kvr_model *m, uint32_t window)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT sum(value = 'sliding_attention'), sum(value = 'full_attention'),"
                           " count(*) FROM json_each(?1, '$.layer_types')",
                           -1, &q, NULL) != SQLITE_OK)
        return kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(h->db));
    sqlite3_bind_text(q, 1, h->text, -1, SQLITE_STATIC);
    long long sl = 0, full = 0, n = 0;
    if (sqlite3_step(q) == SQLITE_ROW)
        sl = sqlite3_column_int64(q, 0), full = sqlite3_column_int64(q, 1),
        n = sqlite3_column_int64(q, 2);
    sqlite3_finalize(q);
    if (n != m->n_layers || sl + full != n)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"layer_types\" must list \"full_attention\" or "
                         "\"sliding_attention\" for each of the %u layers",
                         h->path, m->n_layers);
    if (sl && full)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"layer_types\": %lld sliding and %lld full layers; kvrun "
                         "models one window for every layer",
                         h->path, sl, full);
    if (sl && !window) /* Qwen2: null, or off by use_sliding_window (Qwen2Config: None then) */
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"layer_types\" has sliding layers but there is no window "
                         "(\"sliding_window\" null, or \"use_sliding_window\" false or absent)",
                         h->path);
    m->sliding_window = sl ? window : 0;
    return KVR_OK;
}

/* Mistral's layer_types: transformers' MistralModel ignores them (it warns and slides every
 * layer by sliding_window; Ministral would honour them), so they must say what it computes. */
static enum kvr_status mistral_layer_types(struct hf *h, const struct kvr_model *m)
{
    char t[16];
    kvr_hf_type(h, "layer_types", t, sizeof t);
    if (!strcmp(t, "null")) return KVR_OK;
    const char *want = m->sliding_window ? "sliding_attention" : "full_attention";
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT sum(value = ?2), count(*) FROM json_each(?1, '$.layer_types')",
                           -1, &q, NULL) != SQLITE_OK)
        return kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(h->db));
    sqlite3_bind_text(q, 1, h->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, want, -1, SQLITE_STATIC);
    long long same = -1, n = 0;
    if (strcmp(t, "array") == 0 && sqlite3_step(q) == SQLITE_ROW)
        same = sqlite3_column_int64(q, 0), n = sqlite3_column_int64(q, 1);
    sqlite3_finalize(q);
    if (same != n || n != m->n_layers)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"layer_types\" is not supported for model_type \"%s\" unless it "
                         "lists \"%s\" for each of the %u layers (transformers' Mistral ignores "
                         "it; \"sliding_window\" applies to every layer)",
                         h->path, h->family, want, m->n_layers);
    return KVR_OK;
}

/* Qwen2's layer_types (transformers >= 4.53 writes them) against the keys transformers 4 reads
 * instead (Qwen2Attention: a layer slides iff use_sliding_window and layer_idx >=
 * max_window_layers): a config on which they disagree is two different models. */
static enum kvr_status qwen2_agree(struct hf *h, const struct kvr_model *m, long long w,
                                   long long first)
{
    bool legacy_all = w && first <= 0, legacy_none = !w || first >= (long long)m->n_layers;
    if (m->sliding_window ? legacy_all : legacy_none) return KVR_OK;
    return kvr_error(KVR_ERR_INPUT,
                     "%s: key \"layer_types\" (%s) disagrees with \"use_sliding_window\", "
                     "\"sliding_window\" and \"max_window_layers\" = %lld (transformers before "
                     "4.53 reads those: layers i >= max_window_layers slide when "
                     "use_sliding_window); make them agree",
                     h->path, m->sliding_window ? "every layer slides" : "no layer slides", first);
}

enum kvr_status kvr_hf_window(struct hf *h, struct kvr_model *m, int qwen2)
{
    long long w = 4096; /* MistralConfig's and Qwen2Config's default */
    int rc = kvr_hf_get(h, "sliding_window", HF_INT, &w, NULL, 0);
    if (rc > 1) return (enum kvr_status)rc;
    bool given = rc == 0;
    if (rc == 1 && kvr_hf_has(h, "sliding_window")) w = 0; /* null: none */
    if (w < 0 || w > UINT32_MAX)
        return kvr_error(KVR_ERR_INPUT, "%s: key \"sliding_window\" = %lld is out of range",
                         h->path, w);
    long long first = 28, use = 0;
    if (qwen2 && (rc = kvr_hf_get(h, "use_sliding_window", HF_BOOL, &use, NULL, 0)) > 1)
        return (enum kvr_status)rc;
    /* 0 is not "no window": transformers' mask keeps keys j with i - j < 0, none (null is) */
    if (given && w == 0 && (!qwen2 || use))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"sliding_window\" = 0 is not supported: a window of 0 tokens "
                         "masks every key (transformers computes NaN); null means no window",
                         h->path);
    if (!qwen2) {
        m->sliding_window = (uint32_t)w;
        return mistral_layer_types(h, m);
    }
    if (!use) w = 0; /* Qwen2Config: sliding_window = None unless use_sliding_window */
    if ((rc = kvr_hf_get(h, "max_window_layers", HF_INT, &first, NULL, 0)) > 1)
        return (enum kvr_status)rc;
    char t[16];
    kvr_hf_type(h, "layer_types", t, sizeof t);
    if (!strcmp(t, "array")) {
        enum kvr_status st = layer_types(h, m, (uint32_t)w);
        return st ? st : qwen2_agree(h, m, w, first);
    }
    /* layers i >= max_window_layers slide */
    if (w && first > 0 && first < (long long)m->n_layers)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"max_window_layers\" = %lld: layers from %lld on slide and "
                         "the others do not; kvrun models one window for every layer",
                         h->path, first, first);
    m->sliding_window = w && first <= 0 ? (uint32_t)w : 0;
    return KVR_OK;
}
