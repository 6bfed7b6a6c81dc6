/* A small streaming JSON writer for --json output (writing only; kvrun never parses JSON by
 * hand). Keys and strings are escaped; doubles are printed with 17 significant digits so they
 * read back exactly. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define KVR_JSON_MAX_DEPTH 32

struct kvr_json {
    FILE *out;
    int depth;
    bool first[KVR_JSON_MAX_DEPTH]; /* no element written yet at this depth */
    bool after_key;
};

void kvr_json_init(struct kvr_json *j, FILE *out);
void kvr_json_object_begin(struct kvr_json *j);
void kvr_json_object_end(struct kvr_json *j);
void kvr_json_array_begin(struct kvr_json *j);
void kvr_json_array_end(struct kvr_json *j);
void kvr_json_key(struct kvr_json *j, const char *key);
void kvr_json_str(struct kvr_json *j, const char *s);
void kvr_json_u64(struct kvr_json *j, uint64_t v);
void kvr_json_i64(struct kvr_json *j, int64_t v);
void kvr_json_dbl(struct kvr_json *j, double v); /* non-finite values become null */
void kvr_json_bool(struct kvr_json *j, bool v);
void kvr_json_null(struct kvr_json *j);
/* Ends the document with a newline. */
void kvr_json_finish(struct kvr_json *j);
/* A document that is one object: init and its "{"; its "}" and the finish. */
void kvr_json_begin(struct kvr_json *j, FILE *out);
void kvr_json_end(struct kvr_json *j);

/* key + value in one call */
void kvr_json_kv_str(struct kvr_json *j, const char *key, const char *v);
void kvr_json_kv_u64(struct kvr_json *j, const char *key, uint64_t v);
void kvr_json_kv_dbl(struct kvr_json *j, const char *key, double v);
void kvr_json_kv_bool(struct kvr_json *j, const char *key, bool v);
