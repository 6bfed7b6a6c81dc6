/* Hugging Face config.json (Llama, Mistral and Falcon families). The JSON is read with SQLite's
 * JSON functions on an in-memory database: no hand-written JSON parser. Every error names the
 * file and the JSON key. */
#include <limits.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_file.h"
#include "kvr_json_query.h"
#include "kvr_model.h"
#include "kvr_model_fields.h"
#include "kvr_model_hf.h"

#define HF_CONFIG_MAX_BYTES (4u << 20)

#define hf_get kvr_hf_get

int kvr_hf_get(struct hf *h, const char *key, enum hf_kind kind, long long *i, char *buf,
               size_t cap)
{
    char jpath[128];
    snprintf(jpath, sizeof jpath, "$.%s", key);
    sqlite3_reset(h->get);
    sqlite3_bind_text(h->get, 1, h->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(h->get, 2, jpath, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(h->get) != SQLITE_ROW)
        return kvr_error(KVR_ERR_RUNTIME, "%s: sqlite: %s", h->path, sqlite3_errmsg(h->db));
    const char *type = (const char *)sqlite3_column_text(h->get, 0);
    if (!type || !strcmp(type, "null")) return 1;
    if (kind == HF_INT && !strcmp(type, "integer")) {
        *i = sqlite3_column_int64(h->get, 1);
        return KVR_OK;
    }
    if (kind == HF_BOOL && (!strcmp(type, "true") || !strcmp(type, "false"))) {
        *i = !strcmp(type, "true");
        return KVR_OK;
    }
    if (kind == HF_TEXT && !strcmp(type, "text")) {
        /* a value cut at a NUL or at cap would be read as another string ("x.LlamaForCausalLM"
         * + more) */
        const char *v = (const char *)sqlite3_column_text(h->get, 1);
        size_t n = (size_t)sqlite3_column_bytes(h->get, 1);
        if (strlen(v) != n || n >= cap)
            return kvr_error(KVR_ERR_INPUT,
                             "%s: key \"%s\" must be a string of at most %zu bytes "
                             "without a NUL character",
                             h->path, key, cap - 1);
        memcpy(buf, v, n + 1);
        return KVR_OK;
    }
    if (kind == HF_REAL && (!strcmp(type, "integer") || !strcmp(type, "real"))) {
        *(double *)(void *)buf = sqlite3_column_double(h->get, 1);
        return KVR_OK;
    }
    static const char *const want[] = {"an integer", "true or false", "a string", "a number"};
    return kvr_error(KVR_ERR_INPUT, "%s: key \"%s\" must be %s, got %s", h->path, key, want[kind],
                     type);
}

void kvr_hf_type(struct hf *h, const char *key, char *buf, size_t cap)
{
    char jpath[128];
    snprintf(jpath, sizeof jpath, "$.%s", key);
    sqlite3_reset(h->get);
    sqlite3_bind_text(h->get, 1, h->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(h->get, 2, jpath, -1, SQLITE_TRANSIENT);
    const char *t = NULL;
    if (sqlite3_step(h->get) == SQLITE_ROW) t = (const char *)sqlite3_column_text(h->get, 0);
    snprintf(buf, cap, "%s", t ? t : "null");
}

int kvr_hf_has(struct hf *h, const char *key)
{
    char jpath[128];
    snprintf(jpath, sizeof jpath, "$.%s", key);
    sqlite3_reset(h->get);
    sqlite3_bind_text(h->get, 1, h->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(h->get, 2, jpath, -1, SQLITE_TRANSIENT);
    return sqlite3_step(h->get) == SQLITE_ROW && sqlite3_column_type(h->get, 0) != SQLITE_NULL;
}

/* An integer key that must be present (or any of two spellings), in [1, UINT32_MAX]. */
static enum kvr_status hf_size(struct hf *h, const char *key, const char *alt, int required,
                               uint32_t *out)
{
    long long v = 0;
    int rc = hf_get(h, key, HF_INT, &v, NULL, 0);
    if (rc == 1 && alt) rc = hf_get(h, key = alt, HF_INT, &v, NULL, 0);
    if (rc == 1) {
        if (!required) return KVR_OK;
        return kvr_error(KVR_ERR_INPUT, "%s: missing key \"%s\"", h->path, key);
    }
    if (rc) return (enum kvr_status)rc;
    if (v == LLONG_MAX || v == LLONG_MIN) /* SQLite saturates integers beyond 64 bits */
        return kvr_error(KVR_ERR_INPUT, "%s: key \"%s\" is out of range", h->path, key);
    if (v <= 0)
        return kvr_error(KVR_ERR_INPUT, "%s: key \"%s\" = %lld must be positive", h->path, key, v);
    if (v > (long long)UINT32_MAX)
        return kvr_error(KVR_ERR_INPUT, "%s: key \"%s\" = %lld is out of range", h->path, key, v);
    *out = (uint32_t)v;
    return KVR_OK;
}

static enum kvr_status hf_bool(struct hf *h, const char *key, bool *out)
{
    long long v = 0;
    int rc = hf_get(h, key, HF_BOOL, &v, NULL, 0);
    if (rc == 1) return KVR_OK; /* keep the default */
    if (rc) return (enum kvr_status)rc;
    *out = v != 0;
    return KVR_OK;
}

/* "dtype" (transformers >= 4.56) or "torch_dtype" (older); both must agree. */
static enum kvr_status hf_dtype(struct hf *h, struct kvr_model *m)
{
    char s[32], t[32];
    const char *key = "dtype";
    int rc = hf_get(h, "dtype", HF_TEXT, NULL, s, sizeof s);
    int rc2 = hf_get(h, "torch_dtype", HF_TEXT, NULL, t, sizeof t);
    if (rc > 1 || rc2 > 1) return (enum kvr_status)(rc > 1 ? rc : rc2);
    if (rc == 0 && rc2 == 0 && strcmp(s, t))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: keys \"dtype\" = \"%s\" and \"torch_dtype\" = \"%s\" differ", h->path,
                         s, t);
    if (rc == 1 && rc2 == 1) return KVR_OK;
    if (rc == 1) memcpy(s, t, sizeof s), key = "torch_dtype";
    if (!strcmp(s, "bfloat16"))
        m->dtype = KVR_DTYPE_BF16;
    else if (!strcmp(s, "float16"))
        m->dtype = KVR_DTYPE_FP16;
    else if (!strcmp(s, "float32"))
        m->dtype = KVR_DTYPE_FP32;
    else
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"%s\" = \"%s\" is not supported (bfloat16, float16, float32)",
                         h->path, key, s);
    return KVR_OK;
}

static const char *const llama_keys[KVR_N_FIELDS] = {[KVR_F_N_LAYERS] = "num_hidden_layers",
                                                     [KVR_F_D_MODEL] = "hidden_size",
                                                     [KVR_F_N_HEADS] = "num_attention_heads",
                                                     [KVR_F_N_KV_HEADS] = "num_key_value_heads",
                                                     [KVR_F_HEAD_DIM] = "head_dim",
                                                     [KVR_F_D_FFN] = "intermediate_size",
                                                     [KVR_F_VOCAB] = "vocab_size"};

static const char *const falcon_keys[KVR_N_FIELDS] = {[KVR_F_N_LAYERS] = "num_hidden_layers",
                                                      [KVR_F_D_MODEL] = "hidden_size",
                                                      [KVR_F_N_HEADS] = "num_attention_heads",
                                                      [KVR_F_N_KV_HEADS] = "num_kv_heads",
                                                      [KVR_F_BLOCK_NORMS] =
                                                          "num_ln_in_parallel_attn",
                                                      [KVR_F_D_FFN] = "ffn_hidden_size",
                                                      [KVR_F_VOCAB] = "vocab_size"};

/* A number key; absent or null keeps *out. */
static enum kvr_status hf_real(struct hf *h, const char *key, double *out)
{
    double v;
    int rc = hf_get(h, key, HF_REAL, NULL, (char *)&v, sizeof v);
    if (rc == 1) return KVR_OK;
    if (rc) return (enum kvr_status)rc;
    *out = v;
    return KVR_OK;
}

/* A text key that, when present, must be `want` (what transformers' family computes). */
static enum kvr_status hf_text_is(struct hf *h, const char *key, const char *want)
{
    char v[64];
    int rc = hf_get(h, key, HF_TEXT, NULL, v, sizeof v);
    if (rc > 1) return (enum kvr_status)rc;
    if (rc == 0 && strcmp(v, want) != 0)
        return kvr_error(KVR_ERR_INPUT, "%s: key \"%s\" = \"%s\" is not supported (%s)", h->path,
                         key, v, want);
    return KVR_OK;
}

/* A key this family's transformers code does not have, refused when true. */
static enum kvr_status hf_refuse_true(struct hf *h, const char *key)
{
    bool v = false;
    enum kvr_status st = hf_bool(h, key, &v);
    if (!st && v)
        return kvr_error(KVR_ERR_INPUT, "%s: key \"%s\" = true: model_type \"%s\" has no such bias",
                         h->path, key, h->family);
    return st;
}

/* num_key_value_heads when the key is absent: LlamaConfig's default is None (one KV head per
 * query head), MistralConfig's 8 and Qwen2Config's 32 (transformers 4 and 5); null is None. */
static enum kvr_status hf_kv_heads(struct hf *h, struct kvr_model *m, int kind)
{
    m->n_kv_heads = m->n_heads;
    if (!kvr_hf_has(h, "num_key_value_heads")) {
        if (kind) m->n_kv_heads = kind == 1 ? 8 : 32;
        return KVR_OK;
    }
    return hf_size(h, "num_key_value_heads", NULL, 0, &m->n_kv_heads);
}

/* hidden_act of the gated MLP: "silu" or its alias "swish" (transformers' ACT2FN maps both to
 * nn.SiLU); any other (gelu, gelu_pytorch_tanh, relu, ...) would gate with another function. */
static enum kvr_status hf_act(struct hf *h)
{
    char v[64];
    int rc = hf_get(h, "hidden_act", HF_TEXT, NULL, v, sizeof v);
    if (rc > 1) return (enum kvr_status)rc;
    if (rc == 0 && strcmp(v, "silu") && strcmp(v, "swish"))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"hidden_act\" = \"%s\" is not supported (silu or swish: "
                         "kvrun's gated MLP is SwiGLU)",
                         h->path, v);
    return KVR_OK;
}

static enum kvr_status hf_llama_shape(struct hf *h, struct kvr_model *m, int kind)
{
    enum kvr_status st;
    if ((st = hf_size(h, "hidden_size", NULL, 1, &m->d_model)) ||
        (st = hf_size(h, "num_hidden_layers", NULL, 1, &m->n_layers)) ||
        (st = hf_size(h, "num_attention_heads", NULL, 1, &m->n_heads)) ||
        (st = hf_size(h, "intermediate_size", NULL, 1, &m->d_ffn)) ||
        (st = hf_size(h, "vocab_size", NULL, 1, &m->vocab)))
        return st;
    m->head_dim = m->d_model / m->n_heads;
    if ((st = hf_kv_heads(h, m, kind))) return st;
    return hf_size(h, "head_dim", NULL, 0, &m->head_dim);
}

/* Llama, Mistral and Qwen2 (transformers' LlamaConfig, MistralConfig, Qwen2Config defaults):
 * RMSNorm (eps 1e-6 unless given), SwiGLU of silu. Llama's attention_bias covers q, k, v and o,
 * mlp_bias the MLP; Qwen2 always has q, k, v biases and no others; Mistral none. */
static enum kvr_status hf_llama(struct hf *h, struct kvr_model *m, int kind)
{
    enum kvr_status st;
    h->keys = llama_keys;
    *m = (struct kvr_model){.norm = KVR_NORM_RMSNORM,
                            .mlp = KVR_MLP_SWIGLU,
                            .block_norms = 2,
                            .rotary = true,
                            .dtype = KVR_DTYPE_BF16,
                            .norm_eps = 1e-6,
                            .max_pos = kind == 1   ? 131072
                                       : kind == 2 ? 32768
                                                   : 2048};
    if ((st = hf_llama_shape(h, m, kind)) ||
        (st = hf_bool(h, "tie_word_embeddings", &m->tied_embeddings)) ||
        (st = hf_real(h, "rms_norm_eps", &m->norm_eps)) || (st = hf_act(h)))
        return st;
    if (kind == 2 && kvr_hf_has(h, "attention_bias"))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"attention_bias\" is not supported for model_type \"qwen2\": "
                         "transformers' Qwen2 always has q, k and v biases and no output bias, "
                         "whatever it says (remove it)",
                         h->path);
    if (kind == 0) {
        bool attn_bias = false;
        if ((st = hf_bool(h, "attention_bias", &attn_bias)) ||
            (st = hf_bool(h, "mlp_bias", &m->bias_mlp)))
            return st;
        m->bias_qkv = m->bias_out = attn_bias;
    } else if ((st = hf_refuse_true(h, "attention_bias")) || (st = hf_refuse_true(h, "mlp_bias"))) {
        return st;
    }
    m->bias_qkv = m->bias_qkv || kind == 2;
    if ((st = hf_size(h, "max_position_embeddings", NULL, 0, &m->max_pos))) return st;
    return kind ? kvr_hf_window(h, m, kind == 2) : KVR_OK;
}

/* A Falcon key that, when given, must equal `want`: what transformers' FalconAttention and
 * FalconDecoderLayer compute for this layout (they ignore the key, or fail). */
static enum kvr_status hf_falcon_agrees(struct hf *h, const char *key, uint32_t want,
                                        const char *why)
{
    uint32_t v = want;
    enum kvr_status st = hf_size(h, key, NULL, 0, &v);
    if (!st && v != want)
        return kvr_error(KVR_ERR_INPUT, "%s: key \"%s\" = %u is not supported: %s", h->path, key, v,
                         why);
    return st;
}

/* The attention and block layout, as transformers' FalconAttention and FalconDecoderLayer: the
 * new architecture (40B, 180B, 11B; model_type "RefinedWeb" of the original remote code,
 * whose 40B is the new layout) has num_kv_heads groups and num_ln_in_parallel_attn norms (2
 * unless given); the old one (7B) is multi-query, or multi-head, with one norm when parallel. */
static enum kvr_status hf_falcon_layout(struct hf *h, struct kvr_model *m, bool new_arch,
                                        bool multi_query)
{
    enum kvr_status st;
    m->n_kv_heads = new_arch ? m->n_heads : (multi_query ? 1 : m->n_heads);
    m->block_norms = new_arch ? 2 : (m->parallel_attn ? 1 : 2);
    if (new_arch) {
        if (!m->parallel_attn)
            return kvr_error(KVR_ERR_INPUT,
                             "%s: key \"parallel_attn\" = false with the new decoder architecture "
                             "is not supported (transformers' Falcon cannot run it)",
                             h->path);
        if ((st = hf_size(h, "num_kv_heads", "n_head_kv", 0, &m->n_kv_heads)) ||
            (st = hf_size(h, "num_ln_in_parallel_attn", NULL, 0, &m->block_norms)))
            return st;
        if (m->block_norms != 1 && m->block_norms != 2)
            return kvr_error(KVR_ERR_INPUT,
                             "%s: key \"num_ln_in_parallel_attn\" = %u is not supported (1 or 2)",
                             h->path, m->block_norms);
        return KVR_OK;
    }
    const char *why = "the old decoder architecture has one shared norm, or two in sequence";
    if ((st = hf_falcon_agrees(h, "num_ln_in_parallel_attn", m->block_norms, why))) return st;
    if (multi_query) return KVR_OK; /* transformers ignores num_kv_heads: one KV head */
    why = "the old decoder architecture without multi_query has a KV head per query head";
    if ((st = hf_falcon_agrees(h, "num_kv_heads", m->n_heads, why)) ||
        (st = hf_falcon_agrees(h, "n_head_kv", m->n_heads, why)))
        return st;
    return KVR_OK;
}

/* Falcon keys that change the computation in ways kvrun does not implement. */
static enum kvr_status hf_falcon_refusals(struct hf *h, bool alibi)
{
    bool post_ln = false;
    enum kvr_status st = hf_bool(h, "apply_residual_connection_post_layernorm", &post_ln);
    if (st) return st;
    if (alibi)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"alibi\" = true: ALiBi attention biases are not supported "
                         "(rotary only)",
                         h->path);
    if (post_ln)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"apply_residual_connection_post_layernorm\" = true is not "
                         "supported (the residual is the block's input)",
                         h->path);
    return KVR_OK;
}

/* The RefinedWeb spellings n_layer, n_head, n_head_kv under model_type "falcon": transformers'
 * FalconConfig reads them over num_hidden_layers, num_attention_heads, num_kv_heads in 4.31-4.32
 * (attribute_map, n_head_kv) and ignores them from 4.33 (their defaults 32, 71, the heads):
 * accepted only beside the new spelling with the same value. */
static enum kvr_status hf_falcon_old_key(struct hf *h, const char *key, const char *old)
{
    uint32_t v = 0, v_old = 0;
    enum kvr_status st;
    if (strcmp(h->family, "falcon") || !kvr_hf_has(h, old)) return KVR_OK;
    if ((st = hf_size(h, key, NULL, 0, &v)) || (st = hf_size(h, old, NULL, 0, &v_old))) return st;
    if (v && v == v_old) return KVR_OK;
    return kvr_error(KVR_ERR_INPUT,
                     "%s: key \"%s\" is not supported for model_type \"falcon\" unless \"%s\" "
                     "says the same: transformers 4.31-4.32 read it over \"%s\", 4.33 on ignore "
                     "it",
                     h->path, old, key, key);
}

static enum kvr_status hf_falcon(struct hf *h, struct kvr_model *m)
{
    enum kvr_status st;
    h->keys = falcon_keys;
    *m = (struct kvr_model){.norm = KVR_NORM_LAYERNORM,
                            .mlp = KVR_MLP_GELU,
                            .parallel_attn = true,
                            .tied_embeddings = true,
                            .dtype = KVR_DTYPE_BF16,
                            .norm_eps = 1e-5,
                            .max_pos = 2048};
    bool bias = false;
    if ((st = hf_falcon_old_key(h, "num_hidden_layers", "n_layer")) ||
        (st = hf_falcon_old_key(h, "num_attention_heads", "n_head")) ||
        (st = hf_falcon_old_key(h, "num_kv_heads", "n_head_kv")) ||
        (st = hf_size(h, "hidden_size", NULL, 1, &m->d_model)) ||
        (st = hf_size(h, "num_hidden_layers", "n_layer", 1, &m->n_layers)) ||
        (st = hf_size(h, "num_attention_heads", "n_head", 1, &m->n_heads)) ||
        (st = hf_size(h, "vocab_size", NULL, 1, &m->vocab)))
        return st;
    m->d_ffn = 4 * m->d_model;
    bool new_arch = !strcmp(h->family, "RefinedWeb"), multi_query = true, alibi = false;
    if ((st = hf_size(h, "ffn_hidden_size", NULL, 0, &m->d_ffn)) ||
        (st = hf_bool(h, "new_decoder_architecture", &new_arch)) ||
        (st = hf_bool(h, "multi_query", &multi_query)) || (st = hf_bool(h, "alibi", &alibi)) ||
        (st = hf_bool(h, "parallel_attn", &m->parallel_attn)) || (st = hf_bool(h, "bias", &bias)) ||
        (st = hf_bool(h, "tie_word_embeddings", &m->tied_embeddings)) ||
        (st = hf_real(h, "layer_norm_epsilon", &m->norm_eps)) ||
        (st = hf_size(h, "max_position_embeddings", NULL, 0, &m->max_pos)) ||
        (st = hf_text_is(h, "activation", "gelu")) || (st = hf_falcon_refusals(h, alibi)))
        return st;
    m->bias_qkv = m->bias_out = m->bias_mlp = bias; /* Falcon's one flag: every linear layer */
    m->rotary = true;
    m->head_dim = m->d_model / m->n_heads;
    return hf_falcon_layout(h, m, new_arch, multi_query);
}

/* What an architecture kvrun does not run needs, for the refusal's message. */
static const char *hf_unsupported_why(const char *type)
{
    static const char *const why[][2] = {
        {"mixtral", "mixture of experts"},
        {"qwen2_moe", "mixture of experts"},
        {"qwen3", "RMSNorm on queries and keys"},
        {"qwen3_moe", "RMSNorm on queries and keys, mixture of experts"},
        {"gemma", "GeGLU, scaled embeddings, RMSNorm with 1 + weight"},
        {"gemma2", "logit soft-capping, sliding window on alternating layers, "
                   "query_pre_attn_scalar, four norms per block"},
        {"gemma3", "sliding window on most layers, RMSNorm on queries and keys"},
        {"phi3", "fused QKV and gate/up projections, longrope scaling"},
        {"gpt_neox", "partial rotary, parallel residual, LayerNorm with biases"},
        {"deepseek_v2", "multi-head latent attention, mixture of experts"},
        {"deepseek_v3", "multi-head latent attention, mixture of experts"},
    };
    for (size_t i = 0; i < sizeof why / sizeof *why; i++)
        if (!strcmp(type, why[i][0])) return why[i][1];
    return NULL;
}

static enum kvr_status hf_family(struct hf *h, struct kvr_model *m)
{
    char type[64];
    int rc = hf_get(h, "model_type", HF_TEXT, NULL, type, sizeof type);
    if (rc == 1) return kvr_error(KVR_ERR_INPUT, "%s: missing key \"model_type\"", h->path);
    if (rc) return (enum kvr_status)rc;
    snprintf(h->family_buf, sizeof h->family_buf, "%s", type);
    h->family = h->family_buf;
    int kind = !strcmp(type, "llama")     ? 0
               : !strcmp(type, "mistral") ? 1
               : !strcmp(type, "qwen2")   ? 2
               : (!strcmp(type, "falcon") || !strcmp(type, "RefinedWebModel") ||
                  !strcmp(type, "RefinedWeb"))
                   ? 3
                   : -1;
    if (kind < 0)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"model_type\" = \"%s\" is not supported (llama, mistral, "
                         "qwen2, falcon)%s%s",
                         h->path, type, hf_unsupported_why(type) ? ": it needs " : "",
                         hf_unsupported_why(type) ? hf_unsupported_why(type) : "");
    /* no key null that must not be, before any is read */
    enum kvr_status st = kvr_hf_check_nulls(h);
    if (st) return st;
    return kind == 3 ? hf_falcon(h, m) : hf_llama(h, m, kind);
}

/* Name: the config's "_name_or_path" (its last component), else the real name of the folder
 * holding config.json (or the file's stem), whatever the path's spelling ("config", ".",
 * "Meta-Llama-3-8B/"). */
static void hf_name(struct hf *h, char *buf, size_t cap)
{
    char v[512];
    if (hf_get(h, "_name_or_path", HF_TEXT, NULL, v, sizeof v) == 0) {
        size_t n = strlen(v);
        while (n > 0 && v[n - 1] == '/') v[--n] = 0;
        const char *base = strrchr(v, '/');
        base = base ? base + 1 : v;
        if (*base && strlen(base) < cap) {
            snprintf(buf, cap, "%s", base);
            return;
        }
    }
    char *real = realpath(h->path, NULL);
    const char *p = real ? real : h->path;
    kvr_file_stem(p, buf, cap);
    const char *slash = strrchr(p, '/');
    if (!strcmp(buf, "config") && slash && slash != p) {
        const char *start = slash - 1;
        while (start > p && start[-1] != '/') start--;
        snprintf(buf, cap, "%.*s", (int)(slash - start), start);
    }
    free(real);
}

/* Whether a number key equals 1 (partial_rotary_factor = 1 rotates everything). */
static bool is_one(struct hf *h, const char *key)
{
    double v = 0;
    return hf_real(h, key, &v) == KVR_OK && v == 1.0;
}

/* Keys that change the computation in ways kvrun does not implement. */
static enum kvr_status hf_refusals(struct hf *h)
{
    static const char *const refused[] = {"quantization_config",
                                          "partial_rotary_factor",
                                          "rope_parameters.partial_rotary_factor",
                                          "attn_logit_softcapping",
                                          "final_logit_softcapping",
                                          "qk_layernorm",
                                          "use_qk_norm"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        char t[16];
        kvr_hf_type(h, refused[i], t, sizeof t);
        bool off = !strcmp(t, "null") || !strcmp(t, "false") ||
                   (strstr(refused[i], "rotary_factor") && is_one(h, refused[i]));
        if (!off)
            return kvr_error(KVR_ERR_INPUT,
                             "%s: key \"%s\" is set: model_type \"%s\" as kvrun (and transformers) "
                             "computes it does not take it",
                             h->path, refused[i], h->family);
    }
    return KVR_OK;
}

/* JSON leaves repeated keys undefined (SQLite reads the first, Python the last): refuse them at
 * every depth ("rope_scaling": {"factor": 8, "factor": 2} too). A key spelled with a backslash
 * escape ("num_hidden\u005flayers") is what Python reads as the plain key, but SQLite's JSON
 * paths (3.40) do not find it: refused, naming it, rather than read as absent. */
static enum kvr_status hf_check_unique(struct hf *h)
{
    char key[256];
    bool found = false;
    enum kvr_status st = kvr_json_check_unique(h->db, h->path, h->text, KVR_ERR_PARSE);
    if (!st)
        st = kvr_json_first_key(h->db,
                                "SELECT fullkey FROM json_tree(?1) WHERE instr(fullkey, '\\') > 0 "
                                "LIMIT 1",
                                h->text, key, sizeof key, &found);
    if (!st && found)
        st = kvr_error(KVR_ERR_PARSE,
                       "%s: key \"%s\" is spelled with a backslash escape (write it plainly)",
                       h->path, key);
    return st;
}

static enum kvr_status hf_open(struct hf *h)
{
    if (sqlite3_open_v2(":memory:", &h->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h->db, "SELECT json_type(?1, ?2), json_extract(?1, ?2)", -1, &h->get,
                           NULL) != SQLITE_OK)
        return kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(h->db));
    sqlite3_stmt *valid = NULL;
    int ok = sqlite3_prepare_v2(h->db, "SELECT json_valid(?1) AND json_type(?1) = 'object'", -1,
                                &valid, NULL) == SQLITE_OK;
    if (ok) sqlite3_bind_text(valid, 1, h->text, -1, SQLITE_STATIC);
    ok = ok && sqlite3_step(valid) == SQLITE_ROW && sqlite3_column_int(valid, 0);
    sqlite3_finalize(valid);
    if (!ok) return kvr_error(KVR_ERR_PARSE, "%s: malformed JSON (expected one object)", h->path);
    enum kvr_status st = hf_check_unique(h);
    return st ? st : kvr_json_check_no_nul(h->path, h->text, KVR_ERR_PARSE);
}

enum kvr_status kvr_model_load_hf_config(const char *path, struct kvr_model *out)
{
    char *text = NULL;
    enum kvr_status st = kvr_file_read_text(path, HF_CONFIG_MAX_BYTES, &text, NULL);
    if (st) return st;
    struct hf h = {.path = path, .text = text};
    struct kvr_model m;
    st = hf_open(&h);
    if (!st) st = hf_family(&h, &m);
    if (!st) st = hf_dtype(&h, &m);
    if (!st) st = hf_refusals(&h);
    if (!st) st = kvr_hf_check_keys(&h);
    if (!st && m.rotary) st = kvr_hf_rope(&h, &m);
    if (!st && !m.rotary) kvr_model_rope_defaults(&m), m.rotary = false;
    if (!st) hf_name(&h, m.name, sizeof m.name);
    sqlite3_finalize(h.get);
    sqlite3_close(h.db);
    free(text);
    if (st) return st;
    int bad;
    st = kvr_model_check(&m, &bad);
    if (st && h.keys[bad]) return kvr_error_prefix(st, "%s: key \"%s\": ", path, h.keys[bad]);
    if (st) return kvr_error_prefix(st, "%s: ", path);
    *out = m;
    return KVR_OK;
}
