#include "kvr_counts.h"

#include <math.h>
#include <stdbool.h>

/* Counts are formed in 128 bits and checked once on the way out, so no intermediate product
 * can wrap silently. */
__extension__ typedef unsigned __int128 u128;

static const char *const op_names[KVR_N_OPS] = {
    "norm_attn", "qkv",      "rotary",   "attn_scores", "attn_softmax",
    "attn_pv",   "out_proj", "norm_mlp", "mlp_up",      "mlp_act",
    "mlp_down",  "residual", "embed",    "final_norm",  "lm_head"};

const char *kvr_op_name(enum kvr_op op)
{
    return (op >= 0 && op < KVR_N_OPS) ? op_names[op] : "?";
}

enum kvr_op_class kvr_op_class(enum kvr_op op)
{
    switch (op) {
    case KVR_OP_QKV:
    case KVR_OP_OUT_PROJ:
    case KVR_OP_MLP_UP:
    case KVR_OP_MLP_DOWN:
    case KVR_OP_LM_HEAD:
        return KVR_CLASS_GEMM;
    case KVR_OP_ATTN_SCORES:
    case KVR_OP_ATTN_SOFTMAX:
    case KVR_OP_ATTN_PV:
        return KVR_CLASS_ATTENTION;
    default:
        return KVR_CLASS_ELEMENTWISE;
    }
}

uint64_t kvr_op_cost_bytes(const struct kvr_op_cost *c)
{
    return c->weight_bytes + c->act_read_bytes + c->act_write_bytes + c->kv_read_bytes +
           c->kv_write_bytes;
}

static uint64_t norm_params(const struct kvr_model *m)
{
    return m->norm == KVR_NORM_LAYERNORM ? 2ull * m->d_model : m->d_model;
}

/* Widths of the projections: all query heads, and K plus V. */
static uint64_t q_dim(const struct kvr_model *m)
{
    return (uint64_t)m->n_heads * m->head_dim;
}
static uint64_t kv_dim(const struct kvr_model *m)
{
    return (uint64_t)m->n_kv_heads * m->head_dim;
}
static uint64_t mlp_in_mats(const struct kvr_model *m)
{
    return m->mlp == KVR_MLP_SWIGLU ? 2 : 1; /* gate + up, or up */
}

static uint64_t layer_params(const struct kvr_model *m)
{
    uint64_t d = m->d_model, f = m->d_ffn, qkv = q_dim(m) + 2 * kv_dim(m);
    uint64_t bq = m->bias_qkv, bo = m->bias_out, bm = m->bias_mlp;
    uint64_t attn = d * qkv + bq * qkv + q_dim(m) * d + bo * d;
    uint64_t mlp = mlp_in_mats(m) * (d * f + bm * f) + f * d + bm * d;
    return m->block_norms * norm_params(m) + attn + mlp;
}

uint64_t kvr_model_param_count(const struct kvr_model *m)
{
    uint64_t embed = (uint64_t)m->vocab * m->d_model;
    uint64_t head = m->tied_embeddings ? 0 : embed;
    return embed + m->n_layers * layer_params(m) + norm_params(m) + head;
}

uint64_t kvr_model_weight_bytes(const struct kvr_model *m)
{
    return kvr_model_param_count(m) * kvr_dtype_bytes(m->dtype);
}

uint64_t kvr_model_kv_bytes_per_token_layer(const struct kvr_model *m)
{
    return 2 * kv_dim(m) * kvr_dtype_bytes(m->dtype);
}

uint64_t kvr_attn_pairs(uint64_t s, uint64_t c, enum kvr_mask mask)
{
    if (mask == KVR_MASK_DENSE) return c * (s + c);
    return c * s + c * (c + 1) / 2;
}

/* Query i sees keys [kvr_window_first(i), i]: the keys of the chunk [s, s+c) span
 * [first(s), s+c), so min(s, W-1) + c of them (s + c without a window). */
uint64_t kvr_model_attn_keys(const struct kvr_model *m, uint64_t s, uint64_t c)
{
    return s + c - kvr_window_first(m, s);
}

/* Causal: sum over queries i in [s, s+c) of min(i+1, W): the first n1 = clamp(W - s, 0, c)
 * queries see all of their i+1 keys (n1 s + n1(n1+1)/2), the rest W each. Dense: every
 * query against every key the chunk spans. */
uint64_t kvr_model_attn_pairs(const struct kvr_model *m, uint64_t s, uint64_t c, enum kvr_mask mask)
{
    uint64_t w = m->sliding_window;
    if (mask == KVR_MASK_DENSE) return c * kvr_model_attn_keys(m, s, c);
    if (!w) return kvr_attn_pairs(s, c, mask);
    uint64_t n1 = w > s ? (w - s < c ? w - s : c) : 0;
    return n1 * s + n1 * (n1 + 1) / 2 + (c - n1) * w;
}

/* One op's cost in 128-bit element counts; bytes are multiplied by the dtype size later. */
struct wide_cost {
    u128 flops, weight, act_read, act_write, kv_read, kv_write;
};

static void norm_cost(const struct kvr_model *m, u128 tokens, struct wide_cost *w)
{
    u128 per = m->norm == KVR_NORM_LAYERNORM ? 7 : 4;
    w->flops = per * tokens * m->d_model;
    w->weight = norm_params(m);
    w->act_read = w->act_write = tokens * m->d_model;
}

/* A (tokens x k) by (k x n) GEMM with an optional bias. */
static void gemm_cost(u128 tokens, u128 k, u128 n, int bias, struct wide_cost *w)
{
    w->flops = 2 * tokens * k * n + (bias ? tokens * n : 0);
    w->weight = k * n + (bias ? n : 0);
    w->act_read = tokens * k;
    w->act_write = tokens * n;
}

static void attention_block_cost(const struct kvr_model *m, enum kvr_op op, u128 n_queries,
                                 u128 n_keys, u128 pairs, struct wide_cost *w)
{
    u128 keys = n_keys * kv_dim(m);
    if (op == KVR_OP_ATTN_SCORES) {
        w->flops = 2 * pairs * q_dim(m);
        w->act_read = n_queries * q_dim(m);
        w->kv_read = keys; /* K */
    } else if (op == KVR_OP_ATTN_SOFTMAX) {
        w->flops = 5 * pairs * m->n_heads;
    } else {
        w->flops = 2 * pairs * q_dim(m);
        w->kv_read = keys; /* V */
        w->act_write = n_queries * q_dim(m);
    }
}

static void attention_cost(const struct kvr_model *m, enum kvr_op op, u128 s, u128 c,
                           enum kvr_mask mask, struct wide_cost *w)
{
    u128 pairs = kvr_model_attn_pairs(m, (uint64_t)s, (uint64_t)c, mask);
    attention_block_cost(m, op, c, kvr_model_attn_keys(m, (uint64_t)s, (uint64_t)c), pairs, w);
}

static void mlp_elementwise_cost(const struct kvr_model *m, u128 c, struct wide_cost *w)
{
    u128 n = c * m->d_ffn;
    w->flops = (m->mlp == KVR_MLP_SWIGLU ? 5 : 8) * n;
    w->act_read = mlp_in_mats(m) * n;
    w->act_write = n;
}

static void layer_op_cost(const struct kvr_model *m, enum kvr_op op, u128 s, u128 c,
                          enum kvr_mask mask, struct wide_cost *w)
{
    u128 d = m->d_model, f = m->d_ffn;
    switch (op) {
    case KVR_OP_NORM_ATTN:
        norm_cost(m, c, w);
        break;
    case KVR_OP_QKV:
        gemm_cost(c, d, q_dim(m) + 2 * kv_dim(m), m->bias_qkv, w); /* Q, K, V as activations */
        break;
    case KVR_OP_ROTARY:
        /* rotates Q and K in place, then copies K and V into the cache (the executor's fused
         * kernel; a model without rotary still copies): reads Q, K, V (+ the cos/sin table),
         * writes Q, K and the cache's K, V */
        /* the first kvr_rotary_dims of each Q and K head turn (partial rotary: fewer) */
        if (m->rotary) w->flops = 3 * c * ((u128)m->n_heads + m->n_kv_heads) * kvr_rotary_dims(m);
        w->act_read = m->rotary ? c * (q_dim(m) + 2 * kv_dim(m)) + c * kvr_rotary_dims(m) : 0;
        w->act_read += m->rotary ? 0 : 2 * c * kv_dim(m);
        w->act_write = m->rotary ? c * (q_dim(m) + kv_dim(m)) : 0;
        w->kv_write = 2 * c * kv_dim(m);
        break;
    case KVR_OP_ATTN_SCORES:
    case KVR_OP_ATTN_SOFTMAX:
    case KVR_OP_ATTN_PV:
        attention_cost(m, op, s, c, mask, w);
        break;
    case KVR_OP_OUT_PROJ:
        gemm_cost(c, q_dim(m), d, m->bias_out, w);
        break;
    case KVR_OP_NORM_MLP:
        if (m->block_norms == 2) norm_cost(m, c, w);
        break;
    case KVR_OP_MLP_UP:
        gemm_cost(c, d, mlp_in_mats(m) * f, m->bias_mlp, w);
        break;
    case KVR_OP_MLP_ACT:
        mlp_elementwise_cost(m, c, w);
        break;
    case KVR_OP_MLP_DOWN:
        gemm_cost(c, f, d, m->bias_mlp, w);
        break;
    case KVR_OP_RESIDUAL:
        w->flops = 2 * c * d;
        /* sequential: (x + attn) then (+ mlp): 4 reads, 2 writes; parallel: x + attn + mlp */
        w->act_read = (m->parallel_attn ? 3 : 4) * c * d;
        w->act_write = (m->parallel_attn ? 1 : 2) * c * d;
        break;
    case KVR_OP_EMBED:
        /* the distinct rows gathered: a prompt of c tokens drawn uniformly from the vocabulary
         * V holds V (1 - (1 - 1/V)^c) of them on average (the executor's seeded prompts are;
         * real text repeats more) */
        w->weight = (u128)(m->vocab * -expm1((double)c * log1p(-1.0 / m->vocab)) + 0.5) * d;
        w->act_write = c * d;
        break;
    case KVR_OP_FINAL_NORM:
        norm_cost(m, 1, w);
        break;
    case KVR_OP_LM_HEAD:
        gemm_cost(1, d, m->vocab, 0, w);
        break;
    default:
        break;
    }
}

static enum kvr_status narrow(u128 v, uint64_t *out, const char *what)
{
    if (v > (u128)UINT64_MAX) return kvr_error(KVR_ERR_RANGE, "%s overflows 64 bits", what);
    *out = (uint64_t)v;
    return KVR_OK;
}

static enum kvr_status narrow_cost(const struct kvr_model *m, const struct wide_cost *w,
                                   struct kvr_op_cost *out);

enum kvr_status kvr_op_cost(const struct kvr_model *m, enum kvr_op op, uint64_t s, uint64_t c,
                            enum kvr_mask mask, struct kvr_op_cost *out)
{
    if (op < 0 || op >= KVR_N_OPS) return kvr_error(KVR_ERR_INPUT, "unknown op %d", (int)op);
    if (s > KVR_MAX_CTX || c > KVR_MAX_CTX - s)
        return kvr_error(KVR_ERR_RANGE, "context %llu + %llu exceeds the limit of %u tokens",
                         (unsigned long long)s, (unsigned long long)c, KVR_MAX_CTX);
    struct wide_cost w = {0};
    layer_op_cost(m, op, s, c, mask, &w);
    return narrow_cost(m, &w, out);
}

enum kvr_status kvr_attn_cost(const struct kvr_model *m, enum kvr_op op, uint64_t n_queries,
                              uint64_t n_keys, uint64_t pairs, struct kvr_op_cost *out)
{
    if (kvr_op_class(op) != KVR_CLASS_ATTENTION)
        return kvr_error(KVR_ERR_INPUT, "%s is not an attention op", kvr_op_name(op));
    struct wide_cost w = {0};
    attention_block_cost(m, op, n_queries, n_keys, pairs, &w);
    return narrow_cost(m, &w, out);
}

static enum kvr_status narrow_cost(const struct kvr_model *m, const struct wide_cost *wp,
                                   struct kvr_op_cost *out)
{
    struct wide_cost w = *wp;
    u128 b = kvr_dtype_bytes(m->dtype);
    enum kvr_status st;
    if ((st = narrow(w.flops, &out->flops, "flops")) ||
        (st = narrow(w.weight * b, &out->weight_bytes, "weight bytes")) ||
        (st = narrow(w.act_read * b, &out->act_read_bytes, "activation bytes")) ||
        (st = narrow(w.act_write * b, &out->act_write_bytes, "activation bytes")) ||
        (st = narrow(w.kv_read * b, &out->kv_read_bytes, "KV bytes")) ||
        (st = narrow(w.kv_write * b, &out->kv_write_bytes, "KV bytes")))
        return st;
    return KVR_OK;
}

/* Every byte and FLOP field of a cost, so sums and scalings name each field once. */
#define KVR_COST_FIELDS(X)                                                                         \
    X(flops) X(weight_bytes) X(act_read_bytes) X(act_write_bytes) X(kv_read_bytes) X(kv_write_bytes)

static enum kvr_status add_cost(struct kvr_op_cost *sum, const struct kvr_op_cost *x)
{
    bool overflow = false;
#define ADD(f) overflow |= __builtin_add_overflow(sum->f, x->f, &sum->f);
    KVR_COST_FIELDS(ADD)
#undef ADD
    return overflow ? kvr_error(KVR_ERR_RANGE, "cost sum overflows 64 bits") : KVR_OK;
}

static enum kvr_status scale_cost(struct kvr_op_cost *c, uint64_t k)
{
    bool overflow = false;
#define MUL(f) overflow |= __builtin_mul_overflow(c->f, k, &c->f);
    KVR_COST_FIELDS(MUL)
#undef MUL
    return overflow ? kvr_error(KVR_ERR_RANGE, "cost times %llu overflows 64 bits",
                                (unsigned long long)k)
                    : KVR_OK;
}

enum kvr_status kvr_layer_cost(const struct kvr_model *m, uint64_t s, uint64_t c,
                               enum kvr_mask mask, struct kvr_op_cost *out)
{
    *out = (struct kvr_op_cost){0};
    for (int op = 0; op < KVR_N_LAYER_OPS; op++) {
        struct kvr_op_cost x;
        enum kvr_status st = kvr_op_cost(m, (enum kvr_op)op, s, c, mask, &x);
        if (st || (st = add_cost(out, &x))) return st;
    }
    return KVR_OK;
}

enum kvr_status kvr_prefill_op_cost(const struct kvr_model *m, enum kvr_op op, uint64_t ctx,
                                    enum kvr_mask mask, struct kvr_op_cost *out)
{
    enum kvr_status st = kvr_op_cost(m, op, 0, ctx, mask, out);
    if (st || op >= KVR_N_LAYER_OPS) return st;
    return scale_cost(out, m->n_layers);
}

enum kvr_status kvr_prefill_flops(const struct kvr_model *m, uint64_t ctx, enum kvr_mask mask,
                                  struct kvr_prefill_flops *out)
{
    u128 linear = 0, attention = 0;
    for (int op = 0; op < KVR_N_OPS; op++) {
        struct kvr_op_cost x;
        enum kvr_status st = kvr_prefill_op_cost(m, (enum kvr_op)op, ctx, mask, &x);
        if (st) return st;
        if (kvr_op_class((enum kvr_op)op) == KVR_CLASS_ATTENTION)
            attention += x.flops;
        else
            linear += x.flops;
    }
    if (linear + attention > (u128)UINT64_MAX) /* the totals are 64-bit: say where it ends */
        return kvr_error(KVR_ERR_RANGE,
                         "%s at %llu tokens: the whole prefill is %.4g FLOPs, beyond the 64-bit "
                         "totals (%.4g); per-layer and per-operation counts stay exact, and the "
                         "simulator sums in double",
                         m->name, (unsigned long long)ctx, (double)(linear + attention),
                         (double)UINT64_MAX);
    out->linear = (uint64_t)linear, out->attention = (uint64_t)attention;
    out->total = (uint64_t)(linear + attention);
    return KVR_OK;
}
