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

size_t kvr_model_canonical(const struct kvr_model *m, char *buf, size_t cap)
{
    char value[128];
    size_t n = 0;
    if (cap) buf[0] = 0;
    for (int f = 0; f < KVR_N_FIELDS; f++) {
        if (f == KVR_F_NAME) continue;
        kvr_model_field_format(m, (enum kvr_model_field)f, value, sizeof value);
        int k = snprintf(n < cap ? buf + n : NULL, n < cap ? cap - n : 0, "%s=%s\n",
                         kvr_model_field_key((enum kvr_model_field)f), value);
        n += (size_t)(k > 0 ? k : 0);
    }
    return n;
}

uint64_t kvr_model_hash(const struct kvr_model *m)
{
    char text[4096];
    kvr_model_canonical(m, text, sizeof text);
    return kvr_hash_str(KVR_HASH_INIT, text);
}
