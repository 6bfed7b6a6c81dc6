/* Weights from a .safetensors file (Hugging Face names of the Llama and Falcon families).
 * The header is JSON, read with SQLite's JSON functions; the tensors are read with pread and
 * converted from F32, BF16 or F16 one tensor at a time, so host memory stays at one tensor.
 * Every error names the file and the tensor. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvr_status.h"

struct kvr_exec;

/* path: a .safetensors file, a model.safetensors.index.json, or a folder holding either. A
 * tensor the model does not use is an error unless allow_unused. */
enum kvr_status kvr_safetensors_load(const char *path, struct kvr_exec *ex, bool allow_unused);

/* Reads the header and every tensor without an executor, with the loader's checks (dtype,
 * integer shape, offsets, unique names, finite values); for the fuzz target and tests. */
enum kvr_status kvr_safetensors_check(const char *path, size_t *n_tensors);
