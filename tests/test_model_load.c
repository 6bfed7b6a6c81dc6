/* Model loaders: INI profiles and Hugging Face config.json files written here, compared with
 * the presets, and every kind of bad input with the place it names. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvr_config.h"
#include "kvr_counts.h"
#include "kvr_hash.h"
#include "kvr_model.h"
#include "tap.h"

/* Same counts as the preset: parameters, KV bytes, and a layer's cost for a chunk. */
static void same_counts(const struct kvr_model *got, const char *preset, const char *what)
{
    const struct kvr_model *want = kvr_model_preset_find(preset);
    is_u64(kvr_model_param_count(got), kvr_model_param_count(want), "%s: params as %s", what,
           preset);
    is_u64(kvr_model_kv_bytes_per_token_layer(got), kvr_model_kv_bytes_per_token_layer(want),
           "%s: KV bytes as %s", what, preset);
    struct kvr_op_cost a, b;
    kvr_layer_cost(got, 3000, 1000, KVR_MASK_CAUSAL, &a);
    kvr_layer_cost(want, 3000, 1000, KVR_MASK_CAUSAL, &b);
    ok(!memcmp(&a, &b, sizeof a), "%s: layer costs as %s", what, preset);
}

static void load_ok(enum kvr_status (*load)(const char *, struct kvr_model *), const char *name,
                    const char *text, const char *preset)
{
    struct kvr_model m;
    enum kvr_status st = load(tap_write(name, text), &m);
    if (ok(st == KVR_OK, "%s loads (%s)", name, st ? kvr_error_message() : "ok"))
        same_counts(&m, preset, name);
}

static void load_bad(enum kvr_status (*load)(const char *, struct kvr_model *), const char *name,
                     const char *text, enum kvr_status want, const char *needle)
{
    struct kvr_model m;
    const char *path = tap_write(name, text);
    enum kvr_status st = load(path, &m);
    ok(st == want, "%s is rejected with '%s' (got '%s')", name, kvr_status_name(want),
       kvr_status_name(st));
    like(kvr_error_message(), needle, "  %s: message names the value and place", name);
}

#define LLAMA7B_INI                                                                                \
    "; Llama 7B\n[model]\nname = llama7b-ini\nn_layers = 32\nd_model = 4096\nn_heads = 32\n"       \
    "d_ffn = 11008\nvocab = 32000\nnorm = rmsnorm\nmlp = swiglu\n"

static void test_ini(void)
{
    load_ok(kvr_model_load_ini, "llama.ini", LLAMA7B_INI, "llama-7b");
    char path[512];
    snprintf(path, sizeof path, "%s/models/falcon-7b.ini", KVR_SOURCE_DATADIR);
    struct kvr_model m;
    if (ok(kvr_model_load_ini(path, &m) == KVR_OK, "data/models/falcon-7b.ini loads"))
        same_counts(&m, "falcon-7b", "data/models/falcon-7b.ini");
    snprintf(path, sizeof path, "%s/models/llama-2-70b.ini", KVR_SOURCE_DATADIR);
    if (ok(kvr_model_load_ini(path, &m) == KVR_OK, "data/models/llama-2-70b.ini loads"))
        same_counts(&m, "llama-2-70b", "data/models/llama-2-70b.ini");

    load_bad(kvr_model_load_ini, "unknown-key.ini", LLAMA7B_INI "colour = red\n", KVR_ERR_INPUT,
             "unknown-key.ini:11: unknown key 'colour'");
    load_bad(kvr_model_load_ini, "missing.ini", "[model]\nn_layers = 2\n", KVR_ERR_INPUT,
             "missing key 'd_model'");
    load_bad(kvr_model_load_ini, "zero.ini",
             "[model]\nn_layers = 0\nd_model = 8\nn_heads = 2\nd_ffn = 8\nvocab = 4\n"
             "norm = rmsnorm\nmlp = swiglu\n",
             KVR_ERR_INPUT, "zero.ini:2: n_layers = 0 must be positive");
    load_bad(kvr_model_load_ini, "negative.ini", "[model]\nd_model = -8\n", KVR_ERR_INPUT,
             "negative.ini:2: d_model: integer '-8' is negative");
    load_bad(kvr_model_load_ini, "heads.ini", LLAMA7B_INI "head_dim = 5000\n", KVR_ERR_INPUT,
             "heads.ini:11: n_heads * head_dim = 160000 exceeds");
    load_bad(kvr_model_load_ini, "divide.ini",
             "[model]\nn_layers = 2\nd_model = 10\nn_heads = 3\nd_ffn = 8\nvocab = 4\n"
             "norm = rmsnorm\nmlp = swiglu\n",
             KVR_ERR_INPUT, "divide.ini:4: n_heads = 3 does not divide d_model = 10");
    load_bad(kvr_model_load_ini, "kv.ini", LLAMA7B_INI "n_kv_heads = 5\n", KVR_ERR_INPUT,
             "kv.ini:11: n_kv_heads = 5 does not divide n_heads = 32");
    load_bad(kvr_model_load_ini, "malformed.ini", "[model]\nn_layers 32\n", KVR_ERR_PARSE,
             "malformed.ini:2: malformed line");
    load_bad(kvr_model_load_ini, "section.ini", "[modle]\nn_layers = 2\n", KVR_ERR_INPUT,
             "section.ini:2: unknown section [modle]");
    load_bad(kvr_model_load_ini, "enum.ini", LLAMA7B_INI "dtype = fp8\n", KVR_ERR_INPUT,
             "enum.ini:11: dtype = 'fp8' is not one of bf16, fp16, fp32");
    load_bad(kvr_model_load_ini, "suffix.ini", "[model]\nd_ffn = 11k\n", KVR_ERR_INPUT,
             "suffix.ini:2: d_ffn: integer '11k' has trailing characters 'k'");
    load_bad(kvr_model_load_ini, "overflow.ini", "[model]\nvocab = 99999999999999999999\n",
             KVR_ERR_INPUT,
             "overflow.ini:2: vocab: integer '99999999999999999999' is out of range");
    load_bad(kvr_model_load_ini, "dup.ini", LLAMA7B_INI "n_layers = 5000\n", KVR_ERR_INPUT,
             "dup.ini:11: key 'n_layers' repeats the one on line 4");
    load_bad(kvr_model_load_ini, "limit.ini",
             "[model]\nn_layers = 5000\nd_model = 8\nn_heads = 2\nd_ffn = 8\nvocab = 4\n"
             "norm = rmsnorm\nmlp = swiglu\n",
             KVR_ERR_INPUT, "limit.ini:2: n_layers = 5000 exceeds the limit 4096");
    load_bad(kvr_model_load_ini, "bool.ini", LLAMA7B_INI "bias = maybe\n", KVR_ERR_INPUT,
             "bool.ini:11: bias = 'maybe' is not a boolean");
    /* a scaling type's factor is not taken as 1 (dynamic NTK would still move the base) */
    load_bad(kvr_model_load_ini, "nofactor.ini",
             LLAMA7B_INI "rope_scaling = dynamic\nmax_position_embeddings = 2048\n", KVR_ERR_INPUT,
             "nofactor.ini:11: rope_scaling = dynamic needs rope_factor");
    /* reals are the data files' (kvr_parse_real): strtod alone read hex, rope_theta 0x10 as 16 */
    load_bad(kvr_model_load_ini, "hexreal.ini", LLAMA7B_INI "rope_theta = 0x10\n", KVR_ERR_INPUT,
             "hexreal.ini:11: rope_theta = '0x10' is not a finite positive number");
    load_bad(kvr_model_load_ini, "hexeps.ini", LLAMA7B_INI "norm_eps = 0x1p-20\n", KVR_ERR_INPUT,
             "hexeps.ini:11: norm_eps = '0x1p-20' is not a finite positive number");
    ok(kvr_model_load_ini("/nonexistent/x.ini", &m) == KVR_ERR_IO, "missing INI file: I/O error");
    like(kvr_error_message(), "/nonexistent/x.ini: cannot open", "  names the path");
}

#define LLAMA7B_JSON                                                                               \
    "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_act\": \"silu\", \"hidden_size\": "      \
    "4096, \"intermediate_size\": 11008, \"max_position_embeddings\": 2048, \"model_type\": "      \
    "\"llama\", \"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"rms_norm_eps\": 1e-06, " \
    "\"tie_word_embeddings\": false, \"torch_dtype\": \"float16\", \"vocab_size\": 32000"

/* A small Llama config with n layers and no optional keys. */
#define SMALL_JSON(n)                                                                              \
    "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, "                \
    "\"num_attention_heads\": 4, \"vocab_size\": 100, \"num_hidden_layers\": " #n

static void test_hf(void)
{
    load_ok(kvr_model_load_hf_config, "llama.json", LLAMA7B_JSON "}", "llama-7b");
    load_ok(kvr_model_load_hf_config, "llama2-70b.json",
            "{\"model_type\": \"llama\", \"hidden_size\": 8192, \"intermediate_size\": 28672, "
            "\"num_attention_heads\": 64, \"num_hidden_layers\": 80, \"num_key_value_heads\": 8, "
            "\"vocab_size\": 32000, \"rope_theta\": 10000.0, \"torch_dtype\": \"float16\"}",
            "llama-2-70b");
    load_ok(kvr_model_load_hf_config, "llama3.json",
            "{\"model_type\": \"llama\", \"hidden_size\": 4096, \"intermediate_size\": 14336, "
            "\"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"num_key_value_heads\": 8, "
            "\"vocab_size\": 128256, \"rope_theta\": 500000.0, \"attention_bias\": false, "
            "\"mlp_bias\": false, \"head_dim\": 128, \"torch_dtype\": \"bfloat16\"}",
            "llama-3-8b");
    load_ok(kvr_model_load_hf_config, "mistral.json",
            "{\"model_type\": \"mistral\", \"hidden_size\": 4096, \"intermediate_size\": 14336, "
            "\"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"num_key_value_heads\": 8, "
            "\"vocab_size\": 32000, \"sliding_window\": 4096, \"hidden_act\": \"silu\"}",
            "mistral-7b");
    load_ok(kvr_model_load_hf_config, "falcon.json",
            "{\"alibi\": false, \"bias\": false, \"hidden_size\": 4544, \"model_type\": "
            "\"falcon\", \"multi_query\": true, \"new_decoder_architecture\": false, "
            "\"num_attention_heads\": 71, \"num_hidden_layers\": 32, \"parallel_attn\": true, "
            "\"torch_dtype\": \"bfloat16\", \"vocab_size\": 65024}",
            "falcon-7b");
    load_ok(kvr_model_load_hf_config, "falcon-rw.json",
            "{\"model_type\": \"RefinedWebModel\", \"hidden_size\": 4544, \"n_head\": 71, "
            "\"n_layer\": 32, \"multi_query\": true, \"parallel_attn\": true, \"bias\": false, "
            "\"vocab_size\": 65024}",
            "falcon-7b");
}

static void test_hf_bad(void)
{
    load_bad(kvr_model_load_hf_config, "malformed.json", LLAMA7B_JSON, KVR_ERR_PARSE,
             "malformed.json: malformed JSON");
    load_bad(kvr_model_load_hf_config, "array.json", "[1, 2]", KVR_ERR_PARSE, "malformed JSON");
    load_bad(kvr_model_load_hf_config, "missing.json",
             "{\"model_type\": \"llama\", \"num_hidden_layers\": 2}", KVR_ERR_INPUT,
             "missing.json: missing key \"hidden_size\"");
    load_bad(kvr_model_load_hf_config, "type.json",
             LLAMA7B_JSON ", \"num_key_value_heads\": \"8\"}", KVR_ERR_INPUT,
             "key \"num_key_value_heads\" must be an integer, got text");
    load_bad(kvr_model_load_hf_config, "zero.json", LLAMA7B_JSON ", \"num_key_value_heads\": 0}",
             KVR_ERR_INPUT, "key \"num_key_value_heads\" = 0 must be positive");
    load_bad(kvr_model_load_hf_config, "neg.json", LLAMA7B_JSON ", \"head_dim\": -128}",
             KVR_ERR_INPUT, "key \"head_dim\" = -128 must be positive");
    load_bad(kvr_model_load_hf_config, "kvdiv.json", LLAMA7B_JSON ", \"num_key_value_heads\": 5}",
             KVR_ERR_INPUT,
             "key \"num_key_value_heads\": n_kv_heads = 5 does not divide n_heads = 32");
    load_bad(kvr_model_load_hf_config, "div.json",
             "{\"model_type\": \"falcon\", \"hidden_size\": 4545, \"num_attention_heads\": 71, "
             "\"num_hidden_layers\": 32, \"vocab_size\": 65024}",
             KVR_ERR_INPUT, "key \"num_attention_heads\": n_heads = 71 does not divide");
    load_bad(kvr_model_load_hf_config, "huge.json",
             LLAMA7B_JSON ", \"num_key_value_heads\": 99999999999999999999}", KVR_ERR_INPUT,
             "key \"num_key_value_heads\" is out of range");
    load_bad(kvr_model_load_hf_config, "big.json",
             LLAMA7B_JSON ", \"num_key_value_heads\": 8589934592}", KVR_ERR_INPUT,
             "key \"num_key_value_heads\" = 8589934592 is out of range");
    load_bad(kvr_model_load_hf_config, "family.json", "{\"model_type\": \"gpt2\"}", KVR_ERR_INPUT,
             "key \"model_type\" = \"gpt2\" is not supported");
    load_bad(kvr_model_load_hf_config, "act.json", SMALL_JSON(2) ", \"hidden_act\": \"relu\"}",
             KVR_ERR_INPUT, "key \"hidden_act\" = \"relu\" is not supported");
    load_bad(kvr_model_load_hf_config, "dtype.json", SMALL_JSON(2) ", \"torch_dtype\": \"int8\"}",
             KVR_ERR_INPUT, "key \"torch_dtype\" = \"int8\"");
    load_bad(kvr_model_load_hf_config, "limit.json", SMALL_JSON(9999) "}", KVR_ERR_INPUT,
             "key \"num_hidden_layers\": n_layers = 9999 exceeds the limit");
    load_bad(kvr_model_load_hf_config, "dup.json", LLAMA7B_JSON ", \"hidden_act\": \"relu\"}",
             KVR_ERR_PARSE, "dup.json: key \"hidden_act\" appears more than once");
    struct kvr_model m;
    ok(kvr_model_load_hf_config("/nonexistent/config.json", &m) == KVR_ERR_IO, "missing JSON: I/O");
}

static void test_resolve(void)
{
    struct kvr_model m;
    ok(kvr_model_resolve("falcon-7b", &m) == KVR_OK && !strcmp(m.name, "falcon-7b"),
       "resolve finds a preset");
    ok(kvr_model_resolve("llama-8b", &m) == KVR_ERR_INPUT, "resolve rejects an unknown name");
    like(kvr_error_message(), "unknown model 'llama-8b'", "  message names the model");
    mkdir(tap_path("my-llama"), 0700);
    ok(kvr_model_resolve(tap_write("my-llama/config.json", LLAMA7B_JSON "}"), &m) == KVR_OK,
       "resolve loads a config.json");
    ok(!strcmp(m.name, "my-llama"), "config.json is named after its folder: %s", m.name);
    ok(m.dtype == KVR_DTYPE_FP16, "torch_dtype float16 is read");
}

/* The model's hash follows its content, not its name: renaming keeps it, any field changes it. */
static void test_hash(void)
{
    struct kvr_model a = *kvr_model_preset_find("llama-7b"), b = a;
    snprintf(b.name, sizeof b.name, "renamed");
    ok(kvr_model_hash(&a) == kvr_model_hash(&b), "hash ignores the name");
    b.n_layers = 80;
    ok(kvr_model_hash(&a) != kvr_model_hash(&b), "hash changes with n_layers");
    b = a;
    b.tied_embeddings = !a.tied_embeddings;
    ok(kvr_model_hash(&a) != kvr_model_hash(&b), "hash changes with a boolean field");
    char hex[KVR_HASH_HEX];
    kvr_hash_hex(kvr_hash_str(KVR_HASH_INIT, "a"), hex);
    ok(!strcmp(hex, "af63dc4c8601ec8c"), "FNV-1a 64 of 'a' is the published vector: %s", hex);
}

int main(void)
{
    tap_mkdtemp("model");
    test_ini();
    test_hf();
    test_hf_bad();
    test_resolve();
    test_hash();
    tap_rmdir(tap_dir);
    return tap_done();
}
