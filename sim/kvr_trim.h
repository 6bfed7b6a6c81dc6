/* Sliding-window trimming (#17): what a scheme moves when the model's window W (0 < W < ctx)
 * leaves part of a block out of every receiver's sight. A query at x sees the keys
 * [kvr_window_first(x), x]; a block whose keys (or, pass-Q, queries) no receiver can use is not
 * sent, and a block that some can use is cut to the rows they use. Without a window (W = 0 or
 * W >= ctx) every function returns the whole block: the schemes move what they always moved.
 * Shared by the simulator's schemes and the executor's (exec/kvr_dist_*.c), so both move the
 * same rows. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kvr_model.h"

/* Whether the window trims anything at ctx tokens: 0 < W < ctx. */
bool kvr_trim_active(const struct kvr_model *m, uint64_t ctx);

/* Keys [k0, k1) that the queries [q0, q1) see: rows [*lo, *lo + n), n returned (0: none). A
 * block of keys before the queries keeps a tail. Inactive window: [k0, k1) if k0 < q1. */
uint64_t kvr_trim_keys(const struct kvr_model *m, uint64_t ctx, uint64_t k0, uint64_t k1,
                       uint64_t q0, uint64_t q1, uint64_t *lo);

/* ring (zig-zag, 2p chunks, rank r holds chunks r and 2p-1-r), pass-KV: rank k's block travels
 * hops 0..p-2, hop h from rank (k+h) mod p to (k+h+1) mod p. The rows of its two chunks that
 * the receivers of hops [h_lo, h_hi) attend to (per chunk the longest tail any of them needs):
 * hop h carries kvr_trim_ring_kv(.., h, p - 1, ..), and the receiver of hop h attends to
 * kvr_trim_ring_kv(.., h, h + 1, ..). pos, n: the span's two ranges (n[x] = 0: none). */
void kvr_trim_ring_kv(const struct kvr_model *m, uint64_t ctx, int p, int k, int h_lo, int h_hi,
                      uint64_t pos[2], uint64_t n[2]);

/* ring, pass-Q: the queries of rank b (packed: chunk b's rows, then chunk 2p-1-b's) that the
 * receivers of hops [h_lo, h_hi) attend to, as a prefix of the packed rows (the workspace's
 * rows [0, n) are what travels): per chunk the longest head a receiver needs; when the second
 * chunk is needed, the first travels whole. Returns the prefix's rows. */
uint64_t kvr_trim_ring_q(const struct kvr_model *m, uint64_t ctx, int p, int b, int h_lo, int h_hi);
