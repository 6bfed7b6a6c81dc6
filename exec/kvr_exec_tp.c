/* Megatron tensor parallelism inside the executor (kvr_exec_tp.h): slices of the full model's
 * tensors for shard j of t, the seeded shard, the stage's collectives. */
#include "kvr_exec_tp.h"

#include <stdlib.h>
#include <string.h>

struct kvr_exec_tp {
    struct kvr_model full;
    int t, j;
    uint32_t v0, n_vocab; /* the LM head's rows */
    struct kvr_comm *stage;
    float *host; /* staging of X (c rows) or of the logits part, sized on first use */
    size_t host_floats;
};

/* A shard's slice of a full [rows][cols] tensor: the rows (or, with cols, the columns) of up
 * to three segments of the full tensor, in order; none: the whole tensor. zero: the shard holds
 * zeros (a row-parallel bias on shards j > 0). */
struct seg {
    uint64_t src, n;
};
struct slice {
    int n_seg;
    struct seg seg[3];
    bool cols, zero;
};

/* The first element of part j of n split over t as kvr_tp_shard splits it. */
static uint32_t part0(uint32_t n, int t, int j)
{
    uint32_t q = n / (uint32_t)t, r = n % (uint32_t)t;
    return q * (uint32_t)j + ((uint32_t)j < r ? (uint32_t)j : r);
}

static struct slice slice_of(const struct kvr_exec_tp *tp, enum kvr_tensor x)
{
    const struct kvr_model *m = &tp->full;
    struct kvr_model part;
    kvr_tp_shard(m, tp->t, tp->j, &part);
    uint64_t hd = m->head_dim, H = m->n_heads, KV = m->n_kv_heads, F = m->d_ffn;
    uint64_t h0 = kvr_tp_head0(m, tp->t, tp->j), kv0 = kvr_tp_kv_head0(m, tp->t, tp->j);
    uint64_t f0 = part0(m->d_ffn, tp->t, tp->j), fs = part.d_ffn;
    struct slice s = {0};
    switch (x) {
    case KVR_T_WQKV:
    case KVR_T_BQKV: /* Q heads, then their K heads, then their V heads */
        s = (struct slice){.n_seg = 3,
                           .seg = {{h0 * hd, part.n_heads * hd},
                                   {(H + kv0) * hd, part.n_kv_heads * hd},
                                   {(H + KV + kv0) * hd, part.n_kv_heads * hd}},
                           .cols = x == KVR_T_BQKV};
        break;
    case KVR_T_WO:
        s = (struct slice){.n_seg = 1, .seg = {{h0 * hd, part.n_heads * hd}}, .cols = true};
        break;
    case KVR_T_WUP:
    case KVR_T_BUP: /* SwiGLU: the gate's columns, then the same of up */
        s = (struct slice){.n_seg = m->mlp == KVR_MLP_SWIGLU ? 2 : 1,
                           .seg = {{f0, fs}, {F + f0, fs}},
                           .cols = x == KVR_T_BUP};
        break;
    case KVR_T_WDOWN:
        s = (struct slice){.n_seg = 1, .seg = {{f0, fs}}, .cols = true};
        break;
    case KVR_T_BO:
    case KVR_T_BDOWN:
        s.zero = tp->j > 0;
        break;
    case KVR_T_LM_HEAD:
        s = (struct slice){.n_seg = 1, .seg = {{tp->v0, tp->n_vocab}}};
        break;
    default:
        break; /* norms, the embedding: whole */
    }
    return s;
}

/* Elements of the shard's slice of tensor x. */
static uint64_t slice_numel(const struct kvr_exec_tp *tp, enum kvr_tensor x)
{
    struct kvr_tensor_shape sh = kvr_tensor_shape(&tp->full, x);
    struct slice s = slice_of(tp, x);
    uint64_t n = 0;
    for (int i = 0; i < s.n_seg; i++) n += s.seg[i].n;
    return !s.n_seg ? sh.rows * sh.cols : s.cols ? sh.rows * n : n * sh.cols;
}

/* out = the slice of src, the full tensor. */
static void slice_fill(const struct kvr_exec_tp *tp, enum kvr_tensor x, const float *src,
                       float *out)
{
    struct kvr_tensor_shape sh = kvr_tensor_shape(&tp->full, x);
    struct slice s = slice_of(tp, x);
    uint64_t k = 0;
#define PUT(idx) out[k++] = src[idx]
    if (s.zero) {
        memset(out, 0, sh.rows * sh.cols * sizeof *out);
    } else if (!s.n_seg) {
        for (uint64_t i = 0; i < sh.rows * sh.cols; i++) PUT(i);
    } else if (!s.cols) {
        for (int g = 0; g < s.n_seg; g++)
            for (uint64_t row = s.seg[g].src; row < s.seg[g].src + s.seg[g].n; row++)
                for (uint64_t c = 0; c < sh.cols; c++) PUT(row * sh.cols + c);
    } else {
        for (uint64_t row = 0; row < sh.rows; row++)
            for (int g = 0; g < s.n_seg; g++)
                for (uint64_t c = s.seg[g].src; c < s.seg[g].src + s.seg[g].n; c++)
                    PUT(row * sh.cols + c);
    }
#undef PUT
}

enum kvr_status kvr_exec_tp_open(const struct kvr_model *full, int t, int j,
                                 struct kvr_exec_tp **out, struct kvr_model *shard)
{
    *out = NULL;
    enum kvr_status st = kvr_tp_check(full, t, "--tp");
    if (st) return st;
    if (j < 0 || j >= t)
        return kvr_error(KVR_ERR_INPUT, "tensor-parallel shard %d of %d is out of range", j, t);
    if ((uint32_t)t > full->vocab || (uint32_t)t > full->d_ffn)
        return kvr_error(KVR_ERR_INPUT, "--tp %d: more shards than %s has MLP columns or words", t,
                         full->name);
    struct kvr_exec_tp *tp = calloc(1, sizeof *tp);
    if (!tp) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    tp->full = *full, tp->t = t, tp->j = j;
    kvr_tp_shard(full, t, j, shard);
    tp->v0 = part0(full->vocab, t, j), tp->n_vocab = shard->vocab;
    shard->vocab = full->vocab; /* the embedding is whole; the LM head's rows: kvr_exec_tp_vocab */
    *out = tp;
    return KVR_OK;
}

void kvr_exec_tp_free(struct kvr_exec_tp *tp)
{
    if (tp) free(tp->host);
    free(tp);
}

void kvr_exec_tp_vocab(const struct kvr_exec_tp *tp, uint32_t *v0, uint32_t *n)
{
    if (tp) *v0 = tp->v0, *n = tp->n_vocab;
}

enum kvr_status kvr_exec_tp_setup(struct kvr_exec_tp *tp, struct kvr_backend *be)
{
    if (!be->ops->x_area || !be->ops->x_copy)
        return kvr_error(KVR_ERR_INPUT, "--tp %d: the %s backend has no tensor parallelism", tp->t,
                         be->ops->name);
    return KVR_OK;
}

enum kvr_status kvr_exec_tp_set_tensor(const struct kvr_exec_tp *tp, struct kvr_backend *be,
                                       enum kvr_tensor x, uint32_t layer, const float *src)
{
    float *part = malloc(slice_numel(tp, x) * sizeof *part + 1);
    if (!part)
        return kvr_error(KVR_ERR_NOMEM, "out of memory for a slice of %s", kvr_tensor_name(x));
    slice_fill(tp, x, src, part);
    enum kvr_status st = be->ops->set_tensor(be->state, x, layer, part);
    free(part);
    return st;
}

/* Tensor x of layer seeded on the backend: the whole tensor (tp NULL), else the shard's
 * segments one by one (a column-parallel segment is contiguous in the full tensor; a
 * row-parallel one is a column range of every row). */
static enum kvr_status seed_tensor(const struct kvr_exec_tp *tp, struct kvr_backend *be,
                                   const struct kvr_model *full, enum kvr_tensor x, uint32_t layer,
                                   uint64_t seed)
{
    struct kvr_tensor_shape sh = kvr_tensor_shape(full, x);
    struct slice s = tp ? slice_of(tp, x) : (struct slice){0};
    struct kvr_init_rule r = kvr_tensor_init_rule(full, x, layer);
    const struct kvr_backend_ops *o = be->ops;
    if (s.zero) r.scale = 0, r.offset = 0;
    if (!s.n_seg)
        return o->seed_rows(be->state, x, layer, 0, 1, sh.rows * sh.cols, 0, 0, 0, seed, &r);
    uint64_t width = 0, at = 0;
    for (int g = 0; g < s.n_seg; g++) width += s.seg[g].n;
    enum kvr_status st = KVR_OK;
    for (int g = 0; g < s.n_seg && !st; g++) {
        const struct seg *e = &s.seg[g];
        st = s.cols ? o->seed_rows(be->state, x, layer, at, sh.rows, e->n, width, e->src, sh.cols,
                                   seed, &r)
                    : o->seed_rows(be->state, x, layer, at * sh.cols, 1, e->n * sh.cols, 0,
                                   e->src * sh.cols, 0, seed, &r);
        at += e->n;
    }
    return st;
}

enum kvr_status kvr_exec_tp_seed(const struct kvr_exec_tp *tp, struct kvr_backend *be,
                                 const struct kvr_model *m, uint64_t seed)
{
    const struct kvr_model *full = tp ? &tp->full : m;
    if (tp && !be->ops->seed_rows)
        return kvr_error(KVR_ERR_INPUT, "--tp %d: the %s backend cannot seed a shard", tp->t,
                         be->ops->name);
    enum kvr_status st = KVR_OK;
    for (int x = 0; x < KVR_N_TENSORS && !st; x++) {
        if (!kvr_tensor_present(full, (enum kvr_tensor)x)) continue;
        uint32_t n_l = kvr_tensor_is_layer((enum kvr_tensor)x) ? full->n_layers : 1;
        for (uint32_t l = 0; l < n_l && !st; l++)
            st = seed_tensor(tp, be, full, (enum kvr_tensor)x, l, seed);
    }
    return st ? st : be->ops->sync(be->state);
}

enum kvr_status kvr_exec_tp_set_comm(struct kvr_exec_tp *tp, struct kvr_comm *stage)
{
    if (stage && kvr_comm_size(stage) != tp->t)
        return kvr_error(KVR_ERR_INPUT, "--tp %d: the stage's communicator has %d ranks", tp->t,
                         kvr_comm_size(stage));
    if (stage && kvr_comm_rank(stage) != tp->j)
        return kvr_error(KVR_ERR_INPUT, "tensor-parallel shard %d sits at rank %d of its stage",
                         tp->j, kvr_comm_rank(stage));
    tp->stage = stage;
    return KVR_OK;
}

static enum kvr_status host_reserve(struct kvr_exec_tp *tp, size_t floats)
{
    if (tp->host_floats >= floats) return KVR_OK;
    free(tp->host);
    tp->host_floats = 0;
    if (!(tp->host = malloc(floats * sizeof *tp->host)))
        return kvr_error(KVR_ERR_NOMEM, "out of memory for %zu floats of staging", floats);
    tp->host_floats = floats;
    return KVR_OK;
}

static enum kvr_status need_stage(const struct kvr_exec_tp *tp)
{
    return tp->stage ? KVR_OK
                     : kvr_error(KVR_ERR_INPUT,
                                 "--tp %d: shard %d runs without its stage (kvr_exec_set_stage): "
                                 "tensor parallelism runs under mpirun",
                                 tp->t, tp->j);
}

enum kvr_status kvr_exec_tp_allreduce(struct kvr_exec_tp *tp, struct kvr_backend *be, uint32_t c)
{
    enum kvr_status st = need_stage(tp);
    size_t n = (size_t)c * tp->full.d_model;
    float *x = NULL;
    if (!st) st = be->ops->x_area(be->state, &x);
    bool host_be = !be->ops->kv_device; /* ref: X is host memory */
    if (!st && host_be && kvr_comm_device_buffers(tp->stage))
        st = kvr_error(KVR_ERR_INPUT, "--comm nccl needs --backend cuda (device buffers)");
    if (!st) st = be->ops->sync(be->state);
    if (st) return st;
    if (kvr_comm_device_buffers(tp->stage) || host_be)
        return kvr_comm_allreduce_f32(tp->stage, x, n);
    if ((st = host_reserve(tp, n)) || (st = be->ops->x_copy(be->state, c, tp->host, true)) ||
        (st = kvr_comm_allreduce_f32(tp->stage, tp->host, n)))
        return st;
    return be->ops->x_copy(be->state, c, tp->host, false);
}

enum kvr_status kvr_exec_tp_logits(struct kvr_exec_tp *tp, struct kvr_backend *be, float *out)
{
    enum kvr_status st = need_stage(tp);
    void *all = NULL;
    size_t all_bytes = 0;
    if (!st) st = host_reserve(tp, tp->n_vocab);
    if (!st) st = be->ops->logits_read(be->state, tp->host);
    /* over the stage's MPI side: the parts in shard order are the vocabulary in order */
    if (!st)
        st = kvr_comm_gather(tp->stage, tp->host, tp->n_vocab * sizeof(float), &all, &all_bytes);
    if (!st && tp->j == 0 && all_bytes != tp->full.vocab * sizeof(float))
        st = kvr_error(KVR_ERR_RUNTIME, "the stage's logits are %zu bytes, not %u floats",
                       all_bytes, tp->full.vocab);
    if (!st && tp->j == 0) memcpy(out, all, all_bytes);
    free(all);
    return st ? st : kvr_comm_bcast(tp->stage, out, tp->full.vocab * sizeof(float), 0);
}

/* Shard 0 places each shard's KV heads (n rows of [n_kv][hd] each, K then V) at their heads. */
static void kv_place(const struct kvr_exec_tp *tp, const float *all, uint32_t n, float *k, float *v)
{
    const struct kvr_model *m = &tp->full;
    struct kvr_model part;
    size_t off = 0, hd = m->head_dim;
    for (int j = 0; j < tp->t; j++) {
        kvr_tp_shard(m, tp->t, j, &part);
        size_t kvs = part.n_kv_heads, g0 = kvr_tp_kv_head0(m, tp->t, j);
        for (int half = 0; half < 2; half++, off += (size_t)n * kvs * hd)
            for (uint32_t i = 0; i < n; i++)
                memcpy((half ? v : k) + ((size_t)i * m->n_kv_heads + g0) * hd,
                       all + off + (size_t)i * kvs * hd, kvs * hd * sizeof(float));
    }
}

enum kvr_status kvr_exec_tp_kv_gather(struct kvr_exec_tp *tp, struct kvr_backend *be,
                                      uint32_t layer, uint32_t n, float *k, float *v)
{
    struct kvr_model part;
    kvr_tp_shard(&tp->full, tp->t, tp->j, &part);
    size_t mine = (size_t)n * part.n_kv_heads * tp->full.head_dim;
    void *all = NULL;
    size_t all_bytes = 0;
    enum kvr_status st = need_stage(tp);
    if (!st) st = host_reserve(tp, 2 * mine);
    if (!st) st = be->ops->kv_read(be->state, layer, 0, n, tp->host, tp->host + mine);
    if (!st) st = kvr_comm_gather(tp->stage, tp->host, 2 * mine * sizeof(float), &all, &all_bytes);
    if (!st && tp->j == 0) kv_place(tp, all, n, k, v);
    free(all);
    return st;
}
