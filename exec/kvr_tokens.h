/* A prompt's token ids from a file: one integer a line (text), a JSON array (.json), or a
 * NumPy .npy of int32 or int64 (1-D, little-endian, C order). Each id is checked against the
 * vocabulary; errors name the file and the line (text), element (JSON) or index (.npy). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kvr_status.h"

#define KVR_TOKENS_MAX_BYTES (256u << 20)

/* *out (malloc'd) holds *n ids in [0, vocab). */
enum kvr_status kvr_tokens_read(const char *path, uint32_t vocab, int32_t **out, uint32_t *n);
/* The same on bytes in memory (for the fuzz target); fmt 't' text, 'j' JSON, 'n' npy. */
enum kvr_status kvr_tokens_parse(const char *path, int fmt, const char *data, size_t size,
                                 uint32_t vocab, int32_t **out, uint32_t *n);
