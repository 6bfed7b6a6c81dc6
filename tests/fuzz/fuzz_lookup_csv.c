/* Fuzz target: the kvr_lookup CSV table loader, then a few queries on whatever loads. */
#include <stdio.h>
#include <unistd.h>

#include "fuzz.h"
#include "kvr_lookup.h"

const char *const kvr_fuzz_seeds[] = {
    "# kvrun lookup table, format 1\n"
    "model,machine,p,scheme,method,granularity_tokens,ctx_tokens,predicted_ttft_s,"
    "partition_tokens\n"
    "llama-7b,a100-nvlink,2,kvr,hier,64,1024,0.01,576;448\n"
    "llama-7b,a100-nvlink,2,kvr,hier,64,2048,0.02,1088;960\n",
    "# kvrun lookup table, format 1\n"
    "model,machine,p,scheme,method,granularity_tokens,ctx_tokens,predicted_ttft_s,"
    "partition_tokens\n"
    "\"a,b\",\"x\"\"y\",3,kvr,hier,1,3,1e-3,1;1;1\n",
    KVR_LOOKUP_CSV2_HEADER
    "\r\n"
    "2,llama-7b,2ac73f3fa25ed2b5,a100-nvlink,dcbdcc66874abebf,2,1,kvr,hier,mean,1,64,1024,0.01,"
    "576;448,0;1\r\n"
    "2,llama-7b,2ac73f3fa25ed2b5,a100-nvlink,dcbdcc66874abebf,2,1,kvr,hier,mean,1,64,2048,0.02,"
    "1088;960,0;1\r\n",
    NULL};

static void load_and_query(const char *path)
{
    struct kvr_lookup *t = NULL;
    char err[256];
    if (kvr_lookup_load_csv(path, &t, err, sizeof err) == KVR_LOOKUP_OK) {
        for (uint64_t ctx = 1; ctx < 10000; ctx += 499) {
            struct kvr_lookup_query q = {"llama-7b", "a100-nvlink",     NULL, NULL,
                                         2,          ctx % 5000,        1,    NULL,
                                         NULL,       ctx < 5000 ? 0 : 2};
            struct kvr_lookup_answer a;
            (void)kvr_lookup_partition(t, &q, &a, err, sizeof err);
        }
    }
    kvr_lookup_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return kvr_fuzz_file(data, size, "lookup.csv", load_and_query);
}
