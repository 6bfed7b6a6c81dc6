/* Sharded checkpoints: model.safetensors.index.json ({"weight_map": {tensor: shard file}}),
 * and what --weights names (a .safetensors file, an index, or a folder holding either). The
 * JSON is read with SQLite's JSON functions. */
#pragma once

#include <stddef.h>

#include "kvr_status.h"

struct kvr_st_index {
    char **shards; /* shard paths (the index's folder joined), in the index's order */
    size_t n_shards;
    char **names; /* tensor names of the weight map, in its order */
    size_t *shard_of;
    size_t n_names;
};

/* Reads an index; every shard name must be a plain file name (no '/'). */
enum kvr_status kvr_st_index_read(const char *path, struct kvr_st_index *ix);
/* Index text already in memory (for the fuzz target); dir is joined to the shard names. */
enum kvr_status kvr_st_index_parse(const char *path, const char *dir, const char *json,
                                   struct kvr_st_index *ix);
void kvr_st_index_free(struct kvr_st_index *ix);
/* The shard the index puts tensor `name` in, or NULL. */
const char *kvr_st_index_shard(const struct kvr_st_index *ix, const char *name);

/* KVR_ERR_USAGE when output out (named what) is one of the files --weights reads: the file, the
 * index or one of its shards (a --dump-kv into the checkpoint's folder replaced a shard); an
 * unreadable --weights or index is its own error. NULL weights or out: KVR_OK. */
enum kvr_status kvr_st_check_not_input(const char *weights, const char *what, const char *out);

/* What --weights names: a folder becomes its model.safetensors.index.json, else its
 * model.safetensors; a folder holding both is refused (transformers reads the file, the
 * index may name other tensors). *is_index tells which. */
enum kvr_status kvr_st_resolve(const char *weights, char *out, size_t cap, int *is_index);
