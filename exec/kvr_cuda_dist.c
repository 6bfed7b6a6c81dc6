/* The cuda backend's operations for the schemes on ranks: ring attention's slots and kernels
 * (kvr_cuda_ring.cu), the residual stream for a stage's all-reduce, a shard's seeded slice. */
#include "kvr_cuda_int.h"
#include "kvr_cuda_kernels.h"
#include "kvr_cuda_ring.h"
#include "kvr_cuda_tp.h"

/* Ring attention: bf16 query slots, float output slots (kvr_cuda_ring.cu's fast path: the
 * warp-specialised kernel on each block, vectorised merge and finish; rows padded to 16 bytes). */
static uint64_t ring_q_width(const struct kvr_model *m)
{
    return (uint64_t)m->n_heads * m->head_dim;
}

static uint64_t ring_o_width(const struct kvr_model *m)
{
    return ((uint64_t)m->n_heads * (m->head_dim + 1) + 3) / 4 * 4;
}

static void *ring_q_at(struct cu *c, uint32_t slot)
{
    return (char *)c->ring_q + 2 * (uint64_t)slot * c->ring_rows * ring_q_width(&c->m);
}

static float *ring_o_at(struct cu *c, uint32_t slot)
{
    return c->ring_o + (uint64_t)slot * c->ring_rows * ring_o_width(&c->m);
}

/* The rotary of QKV's rows [row0, row0+n): the whole-chunk rotary on a view that starts there. */
enum kvr_status kvr_cuda_rotary_rows(void *be, uint32_t layer, uint32_t row0, uint32_t s,
                                     uint32_t n)
{
    struct cu *c = be;
    void *whole = c->buf[KVR_BUF_QKV];
    c->buf[KVR_BUF_QKV] = (char *)whole + 2 * (uint64_t)row0 * kvr_qkv_width(&c->m);
    enum kvr_status st = kvr_cuda_rotary(be, layer, s, n);
    c->buf[KVR_BUF_QKV] = whole;
    return st;
}

enum kvr_status kvr_cuda_ring_setup(void *be, uint32_t rows, uint32_t n_q, uint32_t n_o)
{
    struct cu *c = be;
    KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    cudaFree(c->ring_q), cudaFree(c->ring_o);
    c->held -= c->ring_bytes;
    c->ring_q = NULL, c->ring_o = NULL, c->ring_rows = 0, c->ring_bytes = 0;
    uint64_t qb = 2 * (uint64_t)n_q * rows * ring_q_width(&c->m);
    uint64_t ob = 4 * (uint64_t)n_o * rows * ring_o_width(&c->m);
    if (cudaMalloc(&c->ring_q, qb ? qb : 1) != cudaSuccess ||
        cudaMalloc((void **)&c->ring_o, ob) != cudaSuccess) {
        cudaGetLastError();
        return kvr_error(KVR_ERR_INPUT,
                         "--backend cuda: the ring attention workspace (%.3g GB for %u rows) "
                         "does not fit beside the model",
                         (double)(qb + ob) / 1e9, rows);
    }
    c->held += qb + ob;
    c->ring_rows = rows, c->ring_bytes = qb + ob;
    return KVR_OK;
}

enum kvr_status kvr_cuda_wide_area(void *be, uint64_t bytes, void **ptr)
{
    struct cu *c = be;
    if (c->wide_bytes < bytes) {
        KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
        cudaFree(c->wide);
        c->held -= c->wide_bytes, c->wide_bytes = 0;
        if (cudaMalloc(&c->wide, bytes) != cudaSuccess) {
            cudaGetLastError();
            c->wide = NULL;
            return kvr_error(KVR_ERR_INPUT,
                             "--backend cuda: tsp-paper's expanded K/V (%.3g GB) does not fit "
                             "beside the model",
                             (double)bytes / 1e9);
        }
        c->held += bytes, c->wide_bytes = bytes;
    }
    *ptr = c->wide;
    return KVR_OK;
}

enum kvr_status kvr_cuda_kv_regroup(void *be, void *dst, const void *src, uint64_t rows,
                                    uint32_t group, bool expand)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(kvr_cu_kv_regroup(dst, src, rows, c->m.n_kv_heads, group, c->m.head_dim,
                                       expand, c->stream));
    return KVR_OK;
}

enum kvr_status kvr_cuda_ring_q_pack(void *be, uint32_t q_slot, uint32_t n)
{
    struct cu *c = be;
    uint64_t w = ring_q_width(&c->m);
    KVR_CUDA_CHECK(cudaMemcpy2DAsync(ring_q_at(c, q_slot), 2 * w, c->buf[KVR_BUF_QKV],
                                     2 * kvr_qkv_width(&c->m), 2 * w, n, cudaMemcpyDeviceToDevice,
                                     c->stream));
    return KVR_OK;
}

static struct kvr_cu_span cu_span(const struct kvr_span *s)
{
    return (struct kvr_cu_span){{s->pos[0], s->pos[1]}, {s->n[0], s->n[1]}};
}

enum kvr_status kvr_cuda_ring_attn(void *be, uint32_t layer, int q_slot, const struct kvr_span *q,
                                   const struct kvr_span *k, uint32_t window, uint32_t o_slot)
{
    struct cu *c = be;
    const struct kvr_model *m = &c->m;
    const void *qp = q_slot < 0 ? c->buf[KVR_BUF_QKV] : ring_q_at(c, (uint32_t)q_slot);
    uint64_t qs = q_slot < 0 ? kvr_qkv_width(m) : ring_q_width(m);
    KVR_LAUNCH_CHECK(kvr_cu_ring_attn_fast(
        qp, qs, cu_kv_at(c, c->k, layer, 0), cu_kv_at(c, c->v, layer, 0), cu_kv_row(m),
        ring_o_at(c, o_slot), ring_o_width(m), cu_span(q), cu_span(k), window, m->n_heads,
        m->n_kv_heads, m->head_dim, c->stream));
    return KVR_OK;
}

enum kvr_status kvr_cuda_ring_merge(void *be, uint32_t dst, uint32_t src, uint32_t n)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(kvr_cu_ring_merge_fast(ring_o_at(c, dst), ring_o_at(c, src),
                                            ring_o_width(&c->m), n, c->m.n_heads, c->m.head_dim,
                                            c->stream));
    return KVR_OK;
}

enum kvr_status kvr_cuda_ring_finish(void *be, uint32_t o_slot, uint32_t n)
{
    struct cu *c = be;
    KVR_LAUNCH_CHECK(kvr_cu_ring_finish_fast(c->buf[KVR_BUF_ATT], ring_o_at(c, o_slot),
                                             ring_o_width(&c->m), n, c->m.n_heads, c->m.head_dim,
                                             c->stream));
    return KVR_OK;
}

enum kvr_status kvr_cuda_ring_area(void *be, enum kvr_ring_part part, uint32_t slot, void **ptr,
                                   size_t *row_bytes)
{
    struct cu *c = be;
    *ptr = part == KVR_RING_Q ? ring_q_at(c, slot) : (void *)ring_o_at(c, slot);
    *row_bytes = part == KVR_RING_Q ? 2 * ring_q_width(&c->m) : 4 * ring_o_width(&c->m);
    return KVR_OK;
}

enum kvr_status kvr_cuda_ring_copy(void *be, enum kvr_ring_part part, uint32_t slot, uint32_t n,
                                   void *host, bool to_host)
{
    struct cu *c = be;
    void *at;
    size_t row;
    kvr_cuda_ring_area(be, part, slot, &at, &row);
    KVR_CUDA_CHECK(cudaMemcpyAsync(to_host ? host : at, to_host ? at : host, n * row,
                                   to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice,
                                   c->stream));
    KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return KVR_OK;
}

/* Tensor parallelism: the residual stream for the stage's all-reduce. */
enum kvr_status kvr_cuda_x_area(void *be, float **x)
{
    *x = ((struct cu *)be)->buf[KVR_BUF_X];
    return KVR_OK;
}

enum kvr_status kvr_cuda_x_copy(void *be, uint32_t n, float *host, bool to_host)
{
    struct cu *c = be;
    size_t bytes = (size_t)n * c->m.d_model * sizeof(float);
    void *x = c->buf[KVR_BUF_X];
    KVR_CUDA_CHECK(cudaMemcpyAsync(to_host ? host : x, to_host ? x : host, bytes,
                                   to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice,
                                   c->stream));
    KVR_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return KVR_OK;
}

/* A shard's seeded slice on the device (kvr_cuda_tp.cu). */
enum kvr_status kvr_cuda_seed_rows(void *be, enum kvr_tensor t, uint32_t layer, uint64_t dst0,
                                   uint64_t rows, uint64_t row_len, uint64_t dst_stride,
                                   uint64_t src0, uint64_t src_stride, uint64_t seed,
                                   const struct kvr_init_rule *r)
{
    struct cu *c = be;
    char *dst = cu_tensor(c, t, layer);
    if (!dst) return kvr_error(KVR_ERR_INPUT, "no tensor %s", kvr_tensor_name(t));
    KVR_LAUNCH_CHECK(kvr_cu_fill_random_rows(dst + 2 * dst0, rows, row_len, dst_stride, src0,
                                             src_stride, seed, r->stream, r->scale, r->offset,
                                             c->stream));
    return KVR_OK; /* on the stream: kvr_exec_tp_seed syncs once */
}
