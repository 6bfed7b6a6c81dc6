#include "kvr_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kvr_status kvr_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kvr_error(KVR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(max_bytes + 1);
    if (!buf) {
        fclose(f);
        return kvr_error(KVR_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, max_bytes + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return kvr_error(KVR_ERR_IO, "%s: read error", path);
    }
    if (n > max_bytes) {
        free(buf);
        return kvr_error(KVR_ERR_INPUT, "%s: larger than %zu bytes", path, max_bytes);
    }
    buf[n] = '\0';
    *out = buf;
    if (out_len) *out_len = n;
    return KVR_OK;
}

void kvr_file_stem(const char *path, char *buf, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    snprintf(buf, cap, "%.*s", (int)n, base);
}

bool kvr_file_has_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && strcmp(path + n - k, suffix) == 0;
}
