#include "kvr_hash.h"

#include <stdio.h>
#include <string.h>

#include "kvr_model_fields.h"

uint64_t kvr_hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t kvr_hash_str(uint64_t h, const char *s)
{
    return kvr_hash_bytes(h, s, strlen(s));
}

void kvr_hash_hex(uint64_t h, char out[KVR_HASH_HEX])
{
    snprintf(out, KVR_HASH_HEX, "%016llx", (unsigned long long)h);
}

uint64_t kvr_model_hash(const struct kvr_model *m)
{
    uint64_t h = KVR_HASH_INIT;
    char value[128], line[192];
    for (int f = 0; f < KVR_N_FIELDS; f++) {
        if (f == KVR_F_NAME) continue;
        kvr_model_field_format(m, (enum kvr_model_field)f, value, sizeof value);
        snprintf(line, sizeof line, "%s=%s\n", kvr_model_field_key((enum kvr_model_field)f), value);
        h = kvr_hash_str(h, line);
    }
    return h;
}
