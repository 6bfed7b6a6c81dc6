/* Fuzz target: the prompt reader (--tokens): text, JSON and .npy by the input's first byte. */
#include <stdlib.h>

#include "fuzz.h"
#include "kvr_tokens.h"

const char *const kvr_fuzz_seeds[] = {"1\n2\n3\n",
                                      " 7 \r\n0\n",
                                      "[1, 2, 3]",
                                      "[1, \"2\", 3.5]",
                                      "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': "
                                      "False, 'shape': (2,), }        \n\x01\0\0\0\0\0\0\0",
                                      NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fmt = size && data[0] == '[' ? 'j' : size && data[0] == 0x93 ? 'n' : 't';
    int32_t *ids = NULL;
    uint32_t n = 0;
    if (kvr_tokens_parse("fuzz", fmt, (const char *)data, size, 100, &ids, &n) == KVR_OK) free(ids);
    return 0;
}
