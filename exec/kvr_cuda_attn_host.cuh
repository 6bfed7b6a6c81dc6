/* The warp-specialised attention kernel's host side (kvr_cuda_attn_host.cu; internal to
 * exec/, for .cu files only). */
#pragma once

#include <cuda.h>
#include <cuda_bf16.h>
#include <stddef.h>
#include <stdint.h>

/* A [rows][cols] bf16 matrix of row stride `stride` elements, read in boxes of 64 x box_rows
 * with the 128-byte swizzle (rows past the end read as zeros); false where TMA cannot. */
bool kvr_ws_tensor_map(CUtensorMap *m, const void *base, uint64_t cols, uint64_t rows,
                       uint64_t stride, uint32_t box_rows);
/* A [rows][cols] bf16 (or, f32, float) matrix written in boxes of 128 bytes x 64 rows with the
 * 128-byte swizzle (the GEMM's epilogue); false where TMA cannot. */
bool kvr_ws_store_map(CUtensorMap *m, void *base, bool f32, uint64_t cols, uint64_t rows,
                      uint64_t stride);
int kvr_ws_sm_count(void);
/* The key-range splits that fill the SMs for `blocks` blocks of at most max_tiles tiles. */
int kvr_ws_auto_splits(uint64_t blocks, int max_tiles);
/* The split partials' buffer of at least `bytes`, grown on demand and kept (one per device). */
float *kvr_ws_workspace(size_t bytes);
/* The persistent kernel's words for a stream: two counters (zero between launches), then for
 * each of at most KVR_WS_MAX_BLOCKS blocks the item its producer hands to its consumers and
 * the block's tile count before it. */
#define KVR_WS_MAX_BLOCKS 1024
#define KVR_WS_CTR_WORDS  (2 + 2 * KVR_WS_MAX_BLOCKS)
unsigned *kvr_ws_counters(void *stream);
/* Whether a launch of n_items runs persistent: persist 0 or 1 as given, < 0 the default's
 * choice. */
bool kvr_ws_persist(int persist, uint32_t n_items);
/* The merge of n_split partials [split][c][n_heads][hd] (and their LSE) into bf16 out (row
 * stride os) and lse; or, 32, into float o32 with the LSE at lse (acc: merged into what is
 * there). */
int kvr_ws_merge(int hd, const float *part_o, const float *part_lse, __nv_bfloat16 *out,
                 uint64_t os, float *lse, uint32_t c, uint32_t n_heads, int n_split, void *stream);
int kvr_ws_merge32(int hd, const float *part_o, const float *part_lse, float *o32, uint64_t o32s,
                   float *lse, uint64_t lses, uint32_t c, uint32_t n_heads, int n_split, int acc,
                   void *stream);
