/* Fuzz targets: libFuzzer's entry point, so `clang -fsanitize=fuzzer` builds them as they are;
 * the test suite runs them through driver.c with seeded mutations under ASan+UBSan. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Seed inputs of the target, NULL-terminated. */
extern const char *const kvr_fuzz_seeds[];
