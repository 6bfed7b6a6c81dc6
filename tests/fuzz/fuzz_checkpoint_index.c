/* Fuzz target: the sharded checkpoint index reader (model.safetensors.index.json). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kvr_st_index.h"

const char *const kvr_fuzz_seeds[] = {
    "{\"metadata\": {\"total_size\": 10}, \"weight_map\": {\"model.embed_tokens.weight\": "
    "\"model-00001-of-00002.safetensors\", \"lm_head.weight\": "
    "\"model-00002-of-00002.safetensors\"}}",
    "{\"weight_map\": {\"a\": \"x.safetensors\", \"b\": \"x.safetensors\"}}",
    "{\"weight_map\": {\"a\": \"../x\"}}", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size), text[size] = 0;
    struct kvr_st_index ix;
    if (kvr_st_index_parse("fuzz.json", "dir", text, &ix) == KVR_OK) {
        (void)kvr_st_index_shard(&ix, "a");
        kvr_st_index_free(&ix);
    }
    free(text);
    return 0;
}
