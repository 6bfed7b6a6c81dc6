/* Fuzz target: safetensors files through kvr_safetensors_check (header JSON, dtypes, shapes,
 * offsets, unique names, finite values). The input is the header JSON, then "\n--\n", then the
 * data bytes; the target adds the 8-byte length, so mutations reach the JSON and the data. The
 * raw input is tried as a whole file too. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "kvr_safetensors.h"

const char *const kvr_fuzz_seeds[] = {
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
    "\"__metadata__\":{\"format\":\"pt\"}}\n--\n\x01\x01\x80?\x01\x01\x01@",
    "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
    "\"b\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[8,10]}}\n--\n\x80?\x80?\x80?\x80?<<",
    "{\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}\n--\nABCD", NULL};

static void write_file(const char *path, const uint8_t *data, size_t size, int framed)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    const uint8_t *sep = NULL;
    for (size_t i = 0; framed && i + 4 <= size && !sep; i++)
        if (!memcmp(data + i, "\n--\n", 4)) sep = data + i;
    if (framed) {
        uint64_t n = sep ? (uint64_t)(sep - data) : size;
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(n >> (8 * i));
        fwrite(len8, 1, 8, f);
        fwrite(data, 1, (size_t)n, f);
        if (sep) fwrite(sep + 4, 1, size - (size_t)n - 4, f);
    } else {
        fwrite(data, 1, size, f);
    }
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/kvr-fuzz-st-%d.safetensors", (int)getpid());
    for (int framed = 1; framed >= 0; framed--) {
        write_file(path, data, size, framed);
        size_t n = 0;
        (void)kvr_safetensors_check(path, &n);
    }
    unlink(path);
    return 0;
}
