/* Ring attention's executor operations (kvr_exec.h): the zig-zag spans, the checks of spans and
 * slots, and the profiled backend calls. */
#include "kvr_exec_int.h"
#include "kvr_sim.h"

struct kvr_span kvr_zigzag_span(uint32_t ctx, int p, int r)
{
    uint64_t lo[2], hi[2];
    kvr_zigzag_chunks(ctx, p, r, lo, hi);
    return (struct kvr_span){{(uint32_t)lo[0], (uint32_t)lo[1]},
                             {(uint32_t)(hi[0] - lo[0]), (uint32_t)(hi[1] - lo[1])}};
}

static enum kvr_status check_span(const struct kvr_exec *ex, const struct kvr_span *sp)
{
    uint32_t rows = kvr_span_rows(sp);
    enum kvr_status st = kvr_exec_check_chunk(ex, 0, rows);
    for (int h = 0; h < 2 && !st; h++)
        if ((uint64_t)sp->pos[h] + sp->n[h] > ex->opts.max_ctx)
            st = kvr_error(KVR_ERR_INPUT, "span [%u, %u) exceeds the KV cache of %u positions",
                           sp->pos[h], sp->pos[h] + sp->n[h], ex->opts.max_ctx);
    return st;
}

static enum kvr_status ring_ready(const struct kvr_exec *ex, uint32_t rows, int q_slot,
                                  uint32_t o_slot)
{
    if (!ex->ring_rows)
        return kvr_error(KVR_ERR_INPUT, "ring attention: kvr_exec_ring_setup was not called");
    if (rows > ex->ring_rows || (q_slot >= 0 && (uint32_t)q_slot >= ex->ring_n_q) ||
        o_slot >= ex->ring_n_o)
        return kvr_error(KVR_ERR_INPUT,
                         "ring attention: %u rows, query slot %d, output slot %u outside the "
                         "workspace (%u rows, %u and %u slots)",
                         rows, q_slot, o_slot, ex->ring_rows, ex->ring_n_q, ex->ring_n_o);
    return KVR_OK;
}

enum kvr_status kvr_exec_layer_qkv_span(struct kvr_exec *ex, uint32_t layer,
                                        const struct kvr_span *sp)
{
    enum kvr_status st = check_span(ex, sp);
    if (st || (st = kvr_exec_norms_qkv(ex, layer, kvr_span_rows(sp)))) return st;
    for (int h = 0; h < 2; h++)
        if (sp->n[h])
            STEP(KVR_OP_ROTARY,
                 OPS(ex)->rotary_rows(BE(ex), layer, h ? sp->n[0] : 0, sp->pos[h], sp->n[h]));
    return KVR_OK;
}

enum kvr_status kvr_exec_ring_setup(struct kvr_exec *ex, uint32_t rows, uint32_t n_q, uint32_t n_o)
{
    if (rows == 0 || rows > ex->opts.max_chunk || n_o == 0)
        return kvr_error(KVR_ERR_INPUT, "ring workspace of %u rows (at most %u), %u output slots",
                         rows, ex->opts.max_chunk, n_o);
    if (rows <= ex->ring_rows && n_q <= ex->ring_n_q && n_o <= ex->ring_n_o) return KVR_OK;
    enum kvr_status st = OPS(ex)->ring_setup(BE(ex), rows, n_q, n_o);
    if (!st) ex->ring_rows = rows, ex->ring_n_q = n_q, ex->ring_n_o = n_o;
    return st;
}

enum kvr_status kvr_exec_ring_q_pack(struct kvr_exec *ex, uint32_t q_slot, uint32_t n)
{
    enum kvr_status st = ring_ready(ex, n, (int)q_slot, 0);
    if (st) return st;
    STEP(KVR_OP_ATTN_SCORES, OPS(ex)->ring_q_pack(BE(ex), q_slot, n));
    return KVR_OK;
}

enum kvr_status kvr_exec_ring_attn(struct kvr_exec *ex, uint32_t layer, int q_slot,
                                   const struct kvr_span *q, const struct kvr_span *k,
                                   uint32_t window, uint32_t o_slot)
{
    enum kvr_status st = layer >= ex->model.n_layers
                             ? kvr_error(KVR_ERR_INPUT, "ring attention: layer %u", layer)
                             : check_span(ex, q);
    if (!st) st = check_span(ex, k);
    if (!st) st = ring_ready(ex, kvr_span_rows(q), q_slot, o_slot);
    if (st) return st;
    STEP(KVR_OP_ATTN_SCORES, OPS(ex)->ring_attn(BE(ex), layer, q_slot, q, k, window, o_slot));
    return KVR_OK;
}

enum kvr_status kvr_exec_ring_merge(struct kvr_exec *ex, uint32_t dst, uint32_t src, uint32_t n)
{
    enum kvr_status st = ring_ready(ex, n, -1, dst > src ? dst : src);
    if (st) return st;
    STEP(KVR_OP_ATTN_SCORES, OPS(ex)->ring_merge(BE(ex), dst, src, n));
    return KVR_OK;
}

enum kvr_status kvr_exec_ring_finish(struct kvr_exec *ex, uint32_t o_slot, uint32_t n)
{
    enum kvr_status st = ring_ready(ex, n, -1, o_slot);
    if (st) return st;
    STEP(KVR_OP_ATTN_SCORES, OPS(ex)->ring_finish(BE(ex), o_slot, n));
    return KVR_OK;
}

enum kvr_status kvr_exec_ring_area(struct kvr_exec *ex, enum kvr_ring_part part, uint32_t slot,
                                   void **ptr, size_t *row_bytes)
{
    enum kvr_status st =
        ring_ready(ex, 1, part == KVR_RING_Q ? (int)slot : -1, part == KVR_RING_O ? slot : 0);
    return st ? st : OPS(ex)->ring_area(BE(ex), part, slot, ptr, row_bytes);
}

enum kvr_status kvr_exec_ring_copy(struct kvr_exec *ex, enum kvr_ring_part part, uint32_t slot,
                                   uint32_t n, void *host, bool to_host)
{
    enum kvr_status st =
        ring_ready(ex, n, part == KVR_RING_Q ? (int)slot : -1, part == KVR_RING_O ? slot : 0);
    return st ? st : OPS(ex)->ring_copy(BE(ex), part, slot, n, host, to_host);
}
