/* Fuzz target: every unit parser on arbitrary text. */
#include <string.h>

#include "fuzz.h"
#include "kvr_units.h"

const char *const kvr_fuzz_seeds[] = {"16k", "1.5k", "80GiB",     "10GB/s", "100Gbps",
                                      "5us", "2ms",  "312TFLOPS", "0",      "18446744073709551615",
                                      NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[256];
    if (size >= sizeof text) size = sizeof text - 1;
    memcpy(text, data, size);
    text[size] = '\0';
    uint64_t u;
    double d;
    kvr_parse_u64(text, UINT64_MAX, &u);
    kvr_parse_tokens(text, UINT64_MAX, &u);
    kvr_parse_bytes(text, &d);
    kvr_parse_rate_Bps(text, &d);
    kvr_parse_duration_s(text, &d);
    kvr_parse_flops_rate(text, &d);
    return 0;
}
