/* Fuzz target: the profile loaders: Hugging Face JSON when the input starts with '{', else
 * both the model INI and the machine INI loaders; then the counts of whatever model loads. */
#include <stdio.h>
#include <unistd.h>

#include "fuzz.h"
#include "kvr_counts.h"
#include "kvr_machine.h"
#include "kvr_model.h"

const char *const kvr_fuzz_seeds[] = {
    "[model]\nname = t\nn_layers = 2\nd_model = 64\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 160\n"
    "vocab = 128\nnorm = rmsnorm\nmlp = swiglu\nparallel_attn = false\nbias = true\n",
    "[model]\nn_layers = 32\nd_model = 4544\nn_heads = 71\nn_kv_heads = 1\nd_ffn = 18176\n"
    "vocab = 65024\nnorm = layernorm\nmlp = gelu\nparallel_attn = true\nblock_norms = 1\n",
    "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, "
    "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"num_hidden_layers\": 2, "
    "\"vocab_size\": 100, \"torch_dtype\": \"bfloat16\", \"tie_word_embeddings\": true}",
    "{\"model_type\": \"falcon\", \"hidden_size\": 4544, \"num_attention_heads\": 71, "
    "\"num_hidden_layers\": 32, \"vocab_size\": 65024, \"multi_query\": true, "
    "\"new_decoder_architecture\": false, \"parallel_attn\": true, \"alibi\": false}",
    NULL};

static void counts(const struct kvr_model *m)
{
    struct kvr_prefill_flops pf;
    (void)kvr_model_param_count(m);
    (void)kvr_prefill_flops(m, 4096, KVR_MASK_CAUSAL, &pf);
}

static void load_json(const char *path)
{
    struct kvr_model m;
    if (kvr_model_load_hf_config(path, &m) == KVR_OK) counts(&m);
}

static void load_ini(const char *path)
{
    struct kvr_model m;
    static struct kvr_machine h;
    if (kvr_model_load_ini(path, &m) == KVR_OK) counts(&m);
    (void)kvr_machine_load_ini(path, &h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == '{') return kvr_fuzz_file(data, size, "model.json", load_json);
    return kvr_fuzz_file(data, size, "model.ini", load_ini);
}
