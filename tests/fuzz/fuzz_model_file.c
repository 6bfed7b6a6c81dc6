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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    int json = size > 0 && data[0] == '{';
    snprintf(path, sizeof path, "/tmp/kvr-fuzz-%d.%s", (int)getpid(), json ? "json" : "ini");
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct kvr_model m;
    enum kvr_status st = json ? kvr_model_load_hf_config(path, &m) : kvr_model_load_ini(path, &m);
    if (!json) {
        static struct kvr_machine h;
        (void)kvr_machine_load_ini(path, &h);
    }
    unlink(path);
    if (st == KVR_OK) {
        struct kvr_prefill_flops pf;
        (void)kvr_model_param_count(&m);
        (void)kvr_prefill_flops(&m, 4096, KVR_MASK_CAUSAL, &pf);
    }
    return 0;
}
