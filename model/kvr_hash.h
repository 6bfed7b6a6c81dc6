/* Content hashes: a definition's identity is what it computes, not what it is called.
 * FNV-1a 64 over a canonical text (key=value lines in a fixed order); printed as 16 hex digits.
 * Not cryptographic: it guards against stale plans, not against an adversary. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kvr_model.h"

#define KVR_HASH_INIT 0xcbf29ce484222325ull
#define KVR_HASH_HEX  17 /* 16 hex digits and the NUL */

/* Extends h with n bytes of data (start with KVR_HASH_INIT). */
uint64_t kvr_hash_bytes(uint64_t h, const void *data, size_t n);
/* Extends h with a NUL-terminated string. */
uint64_t kvr_hash_str(uint64_t h, const char *s);
void kvr_hash_hex(uint64_t h, char out[KVR_HASH_HEX]);

/* The model's identity: the hash of every field but its name, each as "key=value\n" in the
 * order of the field table (kvr_model_fields.c), so a field added there enters the hash. */
uint64_t kvr_model_hash(const struct kvr_model *m);
/* The text kvr_model_hash hashes ("n_layers=32\n..."), written to buf (truncated at cap);
 * returns its full length. The store keeps it beside the hash, so a table can be re-read. */
size_t kvr_model_canonical(const struct kvr_model *m, char *buf, size_t cap);
