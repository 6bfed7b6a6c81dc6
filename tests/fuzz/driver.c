/* Seeded mutation driver for the fuzz targets: runs each seed, then N mutated inputs (bit flips,
 * byte changes, insertions, deletions, splices with another seed). A crash or sanitizer report
 * fails the test; any status code is a pass. Usage: fuzz_X [iterations] [seed]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define MAX_INPUT 4096

static uint64_t rng_state;

static uint64_t rng(void) /* xorshift64*: small, seedable, good enough to pick mutations */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static size_t mutate(uint8_t *buf, size_t n, int n_seeds)
{
    static const char *const tokens[] = {"=",   "[",           "]",    "\n",   "\"", "{",
                                         "}",   ":",           ",",    "-1",   "0",  "k",
                                         "GiB", "99999999999", "true", "null", ";",  "."};
    size_t pos = n ? rng() % n : 0;
    switch (rng() % 6) {
    case 0:
        if (n) buf[pos] ^= (uint8_t)(1u << (rng() % 8));
        break;
    case 1:
        if (n) buf[pos] = (uint8_t)rng();
        break;
    case 2:
        if (n) {
            memmove(buf + pos, buf + pos + 1, n - pos - 1);
            n--;
        }
        break;
    case 3: {
        const char *t = tokens[rng() % (sizeof tokens / sizeof tokens[0])];
        size_t k = strlen(t);
        if (n + k < MAX_INPUT) {
            memmove(buf + pos + k, buf + pos, n - pos);
            memcpy(buf + pos, t, k);
            n += k;
        }
        break;
    }
    case 4:
        n = pos;
        break; /* truncate */
    default: {
        const char *other = kvr_fuzz_seeds[rng() % (uint64_t)n_seeds];
        size_t k = strlen(other), from = k ? rng() % k : 0, len = k - from;
        if (pos + len > MAX_INPUT) len = MAX_INPUT - pos;
        memcpy(buf + pos, other + from, len);
        n = pos + len;
    }
    }
    return n;
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 20000;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) | 1 : 0x9e3779b97f4a7c15ull;
    int n_seeds = 0;
    while (kvr_fuzz_seeds[n_seeds]) n_seeds++;
    static uint8_t buf[MAX_INPUT + 1];
    for (int i = 0; i < n_seeds; i++)
        LLVMFuzzerTestOneInput((const uint8_t *)kvr_fuzz_seeds[i], strlen(kvr_fuzz_seeds[i]));
    for (long it = 0; it < iterations; it++) {
        const char *seed = kvr_fuzz_seeds[rng() % (uint64_t)n_seeds];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        for (int k = 1 + (int)(rng() % 4); k > 0; k--) n = mutate(buf, n, n_seeds);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("1..1\nok 1 - %ld mutated inputs and %d seeds ran without a crash\n", iterations,
           n_seeds);
    return 0;
}
