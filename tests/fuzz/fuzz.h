/* Fuzz targets: libFuzzer's entry point, so `clang -fsanitize=fuzzer` builds them as they are;
 * the test suite runs them through driver.c with seeded mutations under ASan+UBSan. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Seed inputs of the target, NULL-terminated. */
extern const char *const kvr_fuzz_seeds[];

/* The entry point of a target whose reader takes a path: the input written to
 * /tmp/kvr-fuzz-PID-NAME (one file a process), reader(path), the file removed. */
static inline int kvr_fuzz_file(const uint8_t *data, size_t size, const char *name,
                                void (*reader)(const char *path))
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/kvr-fuzz-%d-%s", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    reader(path);
    unlink(path);
    return 0;
}
