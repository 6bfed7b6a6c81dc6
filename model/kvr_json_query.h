/* JSON read with SQLite's JSON functions (kvrun parses no JSON by hand): the checks the
 * Hugging Face config and safetensors loaders share. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "kvr_status.h"

/* The first row of sql (parameter 1: the JSON text; column 0: a json_tree fullkey) as a plain
 * path in key ("rope_scaling.factor": SQLite's "$." and quotes removed); *found false: none. */
enum kvr_status kvr_json_first_key(sqlite3 *db, const char *sql, const char *json, char *key,
                                   size_t cap, bool *found);

/* JSON leaves a repeated key undefined (SQLite reads the first, Python and safetensors' own
 * reader the last, or fail): status code naming path and the first repeated key at any depth. */
enum kvr_status kvr_json_check_unique(sqlite3 *db, const char *path, const char *json,
                                      enum kvr_status code);

/* A string escape \u0000 is a NUL character to Python and to safetensors' reader, but SQLite's
 * JSON functions (3.40) cut the string there ("silu\u0000x" reads as "silu"): status code
 * naming path and the line, wherever it is. json must be valid JSON. */
enum kvr_status kvr_json_check_no_nul(const char *path, const char *json, enum kvr_status code);
