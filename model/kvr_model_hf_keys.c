/* Hugging Face config.json: every top-level key is one kvrun reads (its family's), one that does
 * not change a prefill's logits (token ids, dropout, generation defaults, bookkeeping), or one
 * that is inert only when off; any other key is refused by name, since kvrun cannot know what
 * it would change (honour or refuse: a key is never accepted and ignored). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_model_hf.h"

/* Keys of transformers' PretrainedConfig (v4 and v5) and of every config.json that leave the
 * prefill's arithmetic alone, plus the keys the loader reads for every family (or refuses by
 * value: quantization_config and the ones in hf_refusals). */
static const char *const common[] = {
    "_name_or_path", "_commit_hash", "_attn_implementation", "_attn_implementation_autoset",
    "attn_implementation", "architectures", "transformers_version", "model_type", "dtype",
    "torch_dtype", "use_bfloat16", "use_cache", "bos_token_id", "eos_token_id", "pad_token_id",
    "sep_token_id", "decoder_start_token_id", "initializer_range", "attention_dropout",
    "classifier_dropout", "output_attentions", "output_hidden_states", "return_dict", "torchscript",
    "tf_legacy_loss", "is_decoder", "chunk_size_feed_forward", "id2label", "label2id", "num_labels",
    "problem_type", "finetuning_task", "tokenizer_class", "prefix", "task_specific_params",
    /* generation defaults (generation_config): the first token is the logits' argmax */
    "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups",
    "diversity_penalty", "temperature", "top_k", "top_p", "typical_p", "repetition_penalty",
    "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
    "num_return_sequences", "output_scores", "return_dict_in_generate", "forced_bos_token_id",
    "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty",
    "suppress_tokens", "begin_suppress_tokens",
    /* read (or refused by value) for every family */
    "max_position_embeddings", "original_max_position_embeddings", "tie_word_embeddings",
    "rope_theta", "rope_scaling", "rope_parameters", "quantization_config", "partial_rotary_factor",
    "attn_logit_softcapping", "final_logit_softcapping", "qk_layernorm", "use_qk_norm", NULL};

/* Keys that are inert only when null, false, 0, {} or []. */
static const char *const off_only[] = {
    "is_encoder_decoder",  "add_cross_attention", "cross_attention_hidden_size",
    "tie_encoder_decoder", "pruned_heads",        NULL};

/* The Llama-shaped families' keys, then each one's own. */
static const char *const llama_like[] = {
    "hidden_size",       "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "vocab_size",        "num_key_value_heads",
    "head_dim",          "rms_norm_eps",      "hidden_act",
    "attention_bias",    "mlp_bias",          NULL};
static const char *const llama[] = {"pretraining_tp", NULL};
static const char *const mistral[] = {"sliding_window", "layer_types", NULL};
static const char *const qwen2[] = {"sliding_window", "use_sliding_window", "max_window_layers",
                                    "layer_types", NULL};
static const char *const none[] = {NULL};
static const char *const falcon[] = {"hidden_size",
                                     "num_hidden_layers",
                                     "n_layer",
                                     "num_attention_heads",
                                     "n_head",
                                     "vocab_size",
                                     "ffn_hidden_size",
                                     "new_decoder_architecture",
                                     "multi_query",
                                     "alibi",
                                     "parallel_attn",
                                     "bias",
                                     "layer_norm_epsilon",
                                     "activation",
                                     "num_kv_heads",
                                     "n_head_kv",
                                     "num_ln_in_parallel_attn",
                                     "apply_residual_connection_post_layernorm",
                                     "hidden_dropout",
                                     NULL};

/* Keys that change the computation and have no null meaning: transformers 5's typed configs
 * (huggingface_hub's @strict) refuse null for them, 4 reads null as false (tie_word_embeddings,
 * Falcon's multi_query and parallel_attn: a different model than the family's default) or
 * fails. kvrun refuses null rather than take the default. Keys whose null means something
 * (num_key_value_heads, head_dim, sliding_window, num_kv_heads, num_ln_in_parallel_attn,
 * ffn_hidden_size, rope_scaling, layer_types, dtype) are read by the loader as absent. */
static const char *const no_null[] = {"hidden_size",
                                      "num_hidden_layers",
                                      "num_attention_heads",
                                      "intermediate_size",
                                      "vocab_size",
                                      "rms_norm_eps",
                                      "hidden_act",
                                      "attention_bias",
                                      "mlp_bias",
                                      "tie_word_embeddings",
                                      "max_position_embeddings",
                                      "original_max_position_embeddings",
                                      "rope_theta",
                                      "use_sliding_window",
                                      "max_window_layers",
                                      "n_layer",
                                      "n_head",
                                      "new_decoder_architecture",
                                      "multi_query",
                                      "alibi",
                                      "parallel_attn",
                                      "bias",
                                      "layer_norm_epsilon",
                                      "activation",
                                      "apply_residual_connection_post_layernorm",
                                      NULL};

static bool listed(const char *const *list, const char *key)
{
    for (; *list; list++)
        if (!strcmp(*list, key)) return true;
    return false;
}

/* A family's keys: its base list (*base) and its own (the return). */
static const char *const *family_keys(const char *family, const char *const **base)
{
    *base = llama_like;
    if (!strcmp(family, "llama")) return llama;
    if (!strcmp(family, "mistral")) return mistral;
    if (!strcmp(family, "qwen2")) return qwen2;
    *base = falcon; /* falcon, RefinedWeb, RefinedWebModel */
    return none;
}

/* Whether a value is off: null, false, 0, {} or []. */
static bool is_off(const char *type, const char *text)
{
    if (!strcmp(type, "null") || !strcmp(type, "false")) return true;
    if (!strcmp(type, "integer") || !strcmp(type, "real")) return text && strtod(text, NULL) == 0;
    return text && (!strcmp(text, "{}") || !strcmp(text, "[]"));
}

/* auto_map: remote code for the causal LM computes what it likes, unless it is the family's own
 * class (the Falcon repositories ship a copy of transformers' FalconForCausalLM; the RefinedWeb
 * originals RWForCausalLM, whose two layouts the loader knows). Other Auto classes are inert. */
static enum kvr_status auto_map(struct hf *h)
{
    static const char *const own[][2] = {
        {"llama", "LlamaForCausalLM"},   {"mistral", "MistralForCausalLM"},
        {"qwen2", "Qwen2ForCausalLM"},   {"falcon", "FalconForCausalLM"},
        {"RefinedWeb", "RWForCausalLM"}, {"RefinedWebModel", "RWForCausalLM"}};
    char v[256];
    int rc = kvr_hf_get(h, "auto_map.AutoModelForCausalLM", HF_TEXT, NULL, v, sizeof v);
    if (rc == 1) return KVR_OK;
    if (rc) return (enum kvr_status)rc;
    const char *cls = strrchr(v, '.');
    cls = cls ? cls + 1 : v;
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        if (!strcmp(h->family, own[i][0]) && !strcmp(cls, own[i][1])) return KVR_OK;
    return kvr_error(KVR_ERR_INPUT,
                     "%s: key \"auto_map.AutoModelForCausalLM\" = \"%s\" is remote modelling code "
                     "whose computation kvrun cannot know (model_type \"%s\" is transformers' "
                     "own class); remove it if the model is that",
                     h->path, v, h->family);
}

static enum kvr_status check_key(struct hf *h, const char *key, const char *type, const char *text)
{
    const char *const *base, *const *own = family_keys(h->family, &base);
    if (listed(common, key) || listed(base, key) || listed(own, key)) return KVR_OK;
    if (!strcmp(key, "auto_map")) return auto_map(h);
    if (listed(off_only, key)) {
        if (is_off(type, text)) return KVR_OK;
        return kvr_error(KVR_ERR_INPUT,
                         "%s: key \"%s\" = %s is not supported (a causal decoder without it)",
                         h->path, key, text ? text : type);
    }
    return kvr_error(KVR_ERR_INPUT,
                     "%s: key \"%s\" is not one kvrun knows for model_type \"%s\": it may change "
                     "the computation, so it is refused (remove it if it does not)",
                     h->path, key, h->family);
}

enum kvr_status kvr_hf_check_keys(struct hf *h)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(h->db, "SELECT key, type, json_quote(value) FROM json_each(?1)", -1, &q,
                           NULL) != SQLITE_OK)
        return kvr_error(KVR_ERR_RUNTIME, "sqlite: %s", sqlite3_errmsg(h->db));
    sqlite3_bind_text(q, 1, h->text, -1, SQLITE_STATIC);
    enum kvr_status st = KVR_OK;
    while (!st && sqlite3_step(q) == SQLITE_ROW)
        st = check_key(h, (const char *)sqlite3_column_text(q, 0),
                       (const char *)sqlite3_column_text(q, 1),
                       (const char *)sqlite3_column_text(q, 2));
    sqlite3_finalize(q);
    return st;
}

enum kvr_status kvr_hf_check_nulls(struct hf *h)
{
    for (const char *const *k = no_null; *k; k++) {
        char t[16];
        if (!kvr_hf_has(h, *k)) continue;
        kvr_hf_type(h, *k, t, sizeof t);
        if (!strcmp(t, "null"))
            return kvr_error(KVR_ERR_INPUT,
                             "%s: key \"%s\" = null is not supported: give its value "
                             "(transformers 5 refuses null for it; 4 reads it as false or fails)",
                             h->path, *k);
    }
    return KVR_OK;
}
