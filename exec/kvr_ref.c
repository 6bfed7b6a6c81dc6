/* The reference backend: plain C float32, written for clarity. It is the oracle that the CUDA
 * backend and the multi-rank schemes are tested against, and what CI runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvr_backend.h"
#include "kvr_rng.h"

struct ref {
    struct kvr_model m;
    uint32_t max_ctx, max_chunk;
    float *w[KVR_N_TENSORS]; /* [layer][numel] for layer tensors, else [numel] */
    float *buf[KVR_N_BUFS];
    float *k, *v;      /* [layer][max_ctx][kv][hd] */
    int32_t *tokens;   /* [max_chunk]: the uploaded prompt */
    double *inv_freq;  /* [rotary dims / 2] for the prompt's length (kvr_rope_inv_freq) */
    double rope_scale; /* multiplies cos and sin (yarn's attention factor) */
    float *logits;     /* [vocab] */
    double t0;
    double stamps[KVR_MAX_STAMPS];
    uint64_t held_bytes;
    struct ref_ring *ring; /* ring attention's workspace, or NULL */
    uint32_t v0, n_vocab;  /* the LM head's rows (kvr_ref_create) */
};

static void ref_ring_free(struct ref *r);

static uint64_t buf_width(const struct kvr_model *m, enum kvr_buf b)
{
    switch (b) {
    case KVR_BUF_QKV:
        return kvr_qkv_width(m);
    case KVR_BUF_ATT:
        return (uint64_t)m->n_heads * m->head_dim;
    case KVR_BUF_UP:
        return kvr_up_width(m);
    case KVR_BUF_ACT:
        return m->d_ffn;
    default:
        return m->d_model;
    }
}

/* The floats of tensor t over every layer, the LM head's n_vocab rows. */
static uint64_t tensor_count(const struct kvr_model *m, uint32_t n_vocab, enum kvr_tensor t)
{
    if (!kvr_tensor_present(m, t)) return 0;
    return kvr_backend_tensor_numel(m, n_vocab, t) * (kvr_tensor_is_layer(t) ? m->n_layers : 1);
}

static uint64_t kv_floats(const struct kvr_model *m, uint32_t max_ctx)
{
    return (uint64_t)m->n_layers * max_ctx * m->n_kv_heads * m->head_dim;
}

uint64_t kvr_ref_bytes_needed(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk)
{
    uint64_t n = 2 * kv_floats(m, max_ctx);
    for (int t = 0; t < KVR_N_TENSORS; t++) n += tensor_count(m, m->vocab, (enum kvr_tensor)t);
    for (int b = 0; b < KVR_N_BUFS; b++) n += (uint64_t)max_chunk * buf_width(m, (enum kvr_buf)b);
    return n * sizeof(float);
}

static float *tensor(struct ref *r, enum kvr_tensor t, uint32_t layer)
{
    if (!r->w[t]) return NULL;
    return r->w[t] + (kvr_tensor_is_layer(t) ? (uint64_t)layer * kvr_tensor_numel(&r->m, t) : 0);
}

static float *kv_at(const struct ref *r, float *base, uint32_t layer, uint32_t pos)
{
    uint64_t row = (uint64_t)r->m.n_kv_heads * r->m.head_dim;
    return base + ((uint64_t)layer * r->max_ctx + pos) * row;
}

static void ref_destroy(void *be)
{
    struct ref *r = be;
    if (!r) return;
    for (int t = 0; t < KVR_N_TENSORS; t++) free(r->w[t]);
    for (int b = 0; b < KVR_N_BUFS; b++) free(r->buf[b]);
    free(r->k), free(r->v), free(r->tokens), free(r->logits), free(r->inv_freq);
    ref_ring_free(r);
    free(r);
}

static enum kvr_status ref_set_tensor(void *be, enum kvr_tensor t, uint32_t layer,
                                      const float *data)
{
    struct ref *r = be;
    float *dst = tensor(r, t, layer);
    if (!dst)
        return kvr_error(KVR_ERR_INPUT, "model %s has no tensor %s", r->m.name, kvr_tensor_name(t));
    memcpy(dst, data, kvr_backend_tensor_numel(&r->m, r->n_vocab, t) * sizeof *dst);
    return KVR_OK;
}

static enum kvr_status ref_upload(void *be, const int32_t *tokens, uint32_t c)
{
    struct ref *r = be;
    memcpy(r->tokens, tokens, c * sizeof *tokens);
    return KVR_OK;
}

static enum kvr_status ref_embed(void *be, uint32_t c)
{
    struct ref *r = be;
    const int32_t *tokens = r->tokens;
    uint32_t d = r->m.d_model;
    for (uint32_t i = 0; i < c; i++)
        memcpy(r->buf[KVR_BUF_X] + (uint64_t)i * d, r->w[KVR_T_EMBED] + (uint64_t)tokens[i] * d,
               d * sizeof(float));
    return KVR_OK;
}

/* One row: RMSNorm x / rms(x) * w, or LayerNorm (x - mean) / std * w + b. */
static void norm_row(const struct kvr_model *m, const float *x, const float *w, const float *b,
                     float *out)
{
    uint32_t d = m->d_model;
    double mean = 0, sq = 0;
    if (m->norm == KVR_NORM_LAYERNORM) {
        for (uint32_t j = 0; j < d; j++) mean += x[j];
        mean /= d;
    }
    for (uint32_t j = 0; j < d; j++) sq += (x[j] - mean) * (x[j] - mean);
    float rstd = (float)(1.0 / sqrt(sq / d + m->norm_eps));
    for (uint32_t j = 0; j < d; j++)
        out[j] = (float)(x[j] - mean) * rstd * w[j] + (b ? b[j] : 0.0f);
}

static enum kvr_status ref_norm(void *be, enum kvr_buf out, enum kvr_tensor w, uint32_t layer,
                                uint32_t c)
{
    struct ref *r = be;
    const float *wt = tensor(r, w, layer), *bt = tensor(r, (enum kvr_tensor)(w + 1), layer);
    uint32_t d = r->m.d_model;
    for (uint32_t i = 0; i < c; i++)
        norm_row(&r->m, r->buf[KVR_BUF_X] + (uint64_t)i * d, wt, bt, r->buf[out] + (uint64_t)i * d);
    return KVR_OK;
}

static enum kvr_status ref_linear(void *be, enum kvr_buf out, enum kvr_buf in, enum kvr_tensor w,
                                  uint32_t layer, uint32_t c, bool accumulate)
{
    struct ref *r = be;
    struct kvr_tensor_shape sh = kvr_tensor_shape(&r->m, w);
    const float *wt = tensor(r, w, layer), *bt = tensor(r, (enum kvr_tensor)(w + 1), layer);
    for (uint32_t i = 0; i < c; i++) {
        const float *x = r->buf[in] + i * sh.cols;
        float *y = r->buf[out] + i * sh.rows;
        for (uint64_t o = 0; o < sh.rows; o++) {
            const float *wr = wt + o * sh.cols;
            float acc = bt ? bt[o] : 0.0f;
            for (uint64_t k = 0; k < sh.cols; k++) acc += x[k] * wr[k];
            y[o] = accumulate ? y[o] + acc : acc;
        }
    }
    return KVR_OK;
}

/* Rotate-half rotary embedding (Llama and Falcon in transformers) of the first rot
 * dimensions: pairs (j, j + rot/2) at angle pos * inv_freq[j]; cos and sin times the scale. */
static void rotate(const struct ref *r, float *x, uint32_t rot, uint32_t pos)
{
    for (uint32_t j = 0; j < rot / 2; j++) {
        double ang = (double)pos * r->inv_freq[j];
        double cs = cos(ang) * r->rope_scale, sn = sin(ang) * r->rope_scale;
        double a = x[j], b = x[j + rot / 2];
        x[j] = (float)(a * cs - b * sn);
        x[j + rot / 2] = (float)(b * cs + a * sn);
    }
}

static enum kvr_status ref_set_prompt(void *be, uint32_t ctx)
{
    struct ref *r = be;
    if (r->m.rotary) kvr_rope_inv_freq(&r->m, ctx, r->inv_freq, &r->rope_scale);
    return KVR_OK;
}

static enum kvr_status ref_rotary(void *be, uint32_t layer, uint32_t s, uint32_t c)
{
    struct ref *r = be;
    const struct kvr_model *m = &r->m;
    uint32_t hd = m->head_dim, kvw = m->n_kv_heads * hd, rot = kvr_rotary_dims(m);
    for (uint32_t i = 0; i < c; i++) {
        float *q = r->buf[KVR_BUF_QKV] + i * kvr_qkv_width(m);
        float *k = q + (uint64_t)m->n_heads * hd, *v = k + kvw;
        for (uint32_t h = 0; m->rotary && h < m->n_heads + m->n_kv_heads; h++)
            rotate(r, q + (uint64_t)h * hd, rot, s + i); /* Q heads, then K heads */
        memcpy(kv_at(r, r->k, layer, s + i), k, kvw * sizeof(float));
        memcpy(kv_at(r, r->v, layer, s + i), v, kvw * sizeof(float));
    }
    return KVR_OK;
}

/* One query row of one head against keys [k0, n_keys): softmax(q k^T / sqrt(hd)) v. */
static void attend_row(const struct ref *r, uint32_t layer, uint32_t g, const float *q, uint32_t k0,
                       uint32_t n_keys, double *p, float *out)
{
    uint32_t hd = r->m.head_dim;
    double mx = -INFINITY, sum = 0, scale = 1.0 / sqrt((double)hd);
    for (uint32_t j = 0; j < k0; j++) p[j] = 0; /* outside the window */
    for (uint32_t j = k0; j < n_keys; j++) {
        const float *k = kv_at(r, r->k, layer, j) + (uint64_t)g * hd;
        double dot = 0;
        for (uint32_t e = 0; e < hd; e++) dot += (double)q[e] * k[e];
        p[j] = dot * scale;
        if (p[j] > mx) mx = p[j];
    }
    for (uint32_t j = k0; j < n_keys; j++) sum += p[j] = exp(p[j] - mx);
    for (uint32_t e = 0; e < hd; e++) {
        double acc = 0;
        for (uint32_t j = k0; j < n_keys; j++) acc += p[j] * kv_at(r, r->v, layer, j)[g * hd + e];
        out[e] = (float)(acc / sum);
    }
}

static enum kvr_status ref_attention(void *be, uint32_t layer, uint32_t s, uint32_t c,
                                     enum kvr_mask mask)
{
    (void)mask; /* dense and causal give the same result; only their cost differs */
    struct ref *r = be;
    const struct kvr_model *m = &r->m;
    uint32_t hd = m->head_dim, group = m->n_heads / m->n_kv_heads;
    double *p = malloc(((size_t)s + c) * sizeof *p);
    if (!p) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < c; i++)
        for (uint32_t h = 0; h < m->n_heads; h++)
            attend_row(r, layer, h / group, r->buf[KVR_BUF_QKV] + i * kvr_qkv_width(m) + h * hd,
                       (uint32_t)kvr_window_first(m, s + i), s + i + 1, p,
                       r->buf[KVR_BUF_ATT] + ((uint64_t)i * m->n_heads + h) * hd);
    free(p);
    return KVR_OK;
}

static enum kvr_status ref_activation(void *be, uint32_t c)
{
    struct ref *r = be;
    uint64_t f = r->m.d_ffn, w = kvr_up_width(&r->m);
    for (uint64_t i = 0; i < c; i++)
        for (uint64_t j = 0; j < f; j++) {
            float *up = r->buf[KVR_BUF_UP] + i * w;
            float a = up[j];
            r->buf[KVR_BUF_ACT][i * f + j] = r->m.mlp == KVR_MLP_SWIGLU
                                                 ? a / (1.0f + expf(-a)) * up[f + j]
                                                 : 0.5f * a * (1.0f + erff(a * (float)M_SQRT1_2));
        }
    return KVR_OK;
}

static enum kvr_status ref_logits_read(void *be, float *out)
{
    struct ref *r = be;
    memcpy(out, r->logits, r->n_vocab * sizeof *out);
    return KVR_OK;
}

static enum kvr_status ref_logits(void *be, uint32_t row)
{
    struct ref *r = be;
    float *out = r->logits;
    const struct kvr_model *m = &r->m;
    float *xn = r->buf[KVR_BUF_XN];
    norm_row(m, r->buf[KVR_BUF_X] + (uint64_t)row * m->d_model, r->w[KVR_T_FINAL_NORM_W],
             r->w[KVR_T_FINAL_NORM_B], xn);
    const float *head =
        m->tied_embeddings ? r->w[KVR_T_EMBED] + (uint64_t)r->v0 * m->d_model : r->w[KVR_T_LM_HEAD];
    for (uint64_t o = 0; o < r->n_vocab; o++) {
        float acc = 0;
        for (uint32_t k = 0; k < m->d_model; k++) acc += xn[k] * head[o * m->d_model + k];
        out[o] = acc;
    }
    return KVR_OK;
}

static enum kvr_status ref_kv_read(void *be, uint32_t layer, uint32_t pos0, uint32_t n, float *k,
                                   float *v)
{
    struct ref *r = be;
    size_t bytes = (size_t)n * r->m.n_kv_heads * r->m.head_dim * sizeof(float);
    memcpy(k, kv_at(r, r->k, layer, pos0), bytes);
    memcpy(v, kv_at(r, r->v, layer, pos0), bytes);
    return KVR_OK;
}

static enum kvr_status ref_kv_copy(void *be, uint32_t layer, uint32_t pos0, uint32_t n, void *k,
                                   void *v, bool to_host)
{
    struct ref *r = be;
    size_t bytes = (size_t)n * r->m.n_kv_heads * r->m.head_dim * sizeof(float);
    float *ck = kv_at(r, r->k, layer, pos0), *cv = kv_at(r, r->v, layer, pos0);
    memcpy(to_host ? k : (void *)ck, to_host ? (void *)ck : k, bytes);
    memcpy(to_host ? v : (void *)cv, to_host ? (void *)cv : v, bytes);
    return KVR_OK;
}

static enum kvr_status ref_sync(void *be)
{
    (void)be;
    return KVR_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static enum kvr_status ref_timer(void *be, int mark, double *elapsed_s)
{
    struct ref *r = be;
    if (mark == 0)
        r->t0 = now_s();
    else
        *elapsed_s = now_s() - r->t0;
    return KVR_OK;
}

static enum kvr_status ref_stamp(void *be, uint32_t idx)
{
    ((struct ref *)be)->stamps[idx] = now_s();
    return KVR_OK;
}

static enum kvr_status ref_stamp_span(void *be, uint32_t a, uint32_t b, double *seconds)
{
    struct ref *r = be;
    *seconds = r->stamps[b] - r->stamps[a];
    return KVR_OK;
}

static void ref_memory(void *be, uint64_t *held, uint64_t *peak)
{
    *held = ((struct ref *)be)->held_bytes;
    *peak = 0;
}

static void ref_device(void *be, char *name, int cap, double *peak)
{
    (void)be;
    snprintf(name, (size_t)cap, "cpu (ref, float32)");
    *peak = 0;
}

/* Ring attention: query slots of float, output slots of double (the float64 merge). */
struct ref_ring {
    uint32_t rows, n_q, n_o;
    float *q;  /* [n_q][rows][n_heads hd] */
    double *o; /* [n_o][rows][n_heads hd + n_heads] */
};

static uint64_t ring_q_width(const struct kvr_model *m)
{
    return (uint64_t)m->n_heads * m->head_dim;
}

static uint64_t ring_o_width(const struct kvr_model *m)
{
    return (uint64_t)m->n_heads * (m->head_dim + 1);
}

static void ref_ring_free(struct ref *r)
{
    if (r->ring) free(r->ring->q), free(r->ring->o);
    free(r->ring);
    r->ring = NULL;
}

static float *ring_q(const struct ref *r, uint32_t slot)
{
    return r->ring->q + (uint64_t)slot * r->ring->rows * ring_q_width(&r->m);
}

static double *ring_o(const struct ref *r, uint32_t slot)
{
    return r->ring->o + (uint64_t)slot * r->ring->rows * ring_o_width(&r->m);
}

/* The rotary of QKV's rows [row0, row0+c): the whole-chunk rotary on a view that starts there. */
static enum kvr_status ref_rotary_rows(void *be, uint32_t layer, uint32_t row0, uint32_t s,
                                       uint32_t c)
{
    struct ref *r = be;
    float *whole = r->buf[KVR_BUF_QKV];
    r->buf[KVR_BUF_QKV] = whole + (uint64_t)row0 * kvr_qkv_width(&r->m);
    enum kvr_status st = ref_rotary(be, layer, s, c);
    r->buf[KVR_BUF_QKV] = whole;
    return st;
}

static enum kvr_status ref_ring_setup(void *be, uint32_t rows, uint32_t n_q, uint32_t n_o)
{
    struct ref *r = be;
    ref_ring_free(r);
    struct ref_ring *g = calloc(1, sizeof *g);
    if (g) {
        g->q = malloc(((uint64_t)n_q * rows * ring_q_width(&r->m) + 1) * sizeof *g->q);
        g->o = malloc((uint64_t)n_o * rows * ring_o_width(&r->m) * sizeof *g->o);
    }
    if (!g || !g->q || !g->o) {
        if (g) free(g->q), free(g->o);
        free(g);
        return kvr_error(KVR_ERR_NOMEM, "out of memory for the ring attention workspace");
    }
    g->rows = rows, g->n_q = n_q, g->n_o = n_o;
    r->ring = g;
    return KVR_OK;
}

static enum kvr_status ref_ring_q_pack(void *be, uint32_t q_slot, uint32_t n)
{
    struct ref *r = be;
    uint64_t w = ring_q_width(&r->m);
    for (uint32_t i = 0; i < n; i++)
        memcpy(ring_q(r, q_slot) + i * w, r->buf[KVR_BUF_QKV] + i * kvr_qkv_width(&r->m),
               w * sizeof(float));
    return KVR_OK;
}

static uint32_t span_pos(const struct kvr_span *s, uint32_t row)
{
    return row < s->n[0] ? s->pos[0] + row : s->pos[1] + (row - s->n[0]);
}

/* One query (head h, KV head g, position x) against the keys of span k at positions in
 * [first, x], in double: out = the normalised output, *lse its log-sum-exp (-inf and 0 without
 * keys). */
static void ring_row(const struct ref *r, uint32_t layer, uint32_t g, const float *q, uint32_t x,
                     uint32_t first, const struct kvr_span *k, double *p, double *out, double *lse)
{
    uint32_t hd = r->m.head_dim, n = 0;
    double mx = -INFINITY, sum = 0, scale = 1.0 / sqrt((double)hd);
    for (int h = 0; h < 2; h++)
        for (uint32_t j = k->pos[h] > first ? k->pos[h] : first; j < k->pos[h] + k->n[h] && j <= x;
             j++) {
            const float *kr = kv_at(r, r->k, layer, j) + (uint64_t)g * hd;
            double dot = 0;
            for (uint32_t e = 0; e < hd; e++) dot += (double)q[e] * kr[e];
            p[n] = dot * scale;
            mx = p[n] > mx ? p[n] : mx;
            n++;
        }
    memset(out, 0, hd * sizeof *out);
    *lse = -INFINITY;
    if (!n) return;
    for (uint32_t j = 0; j < n; j++) sum += p[j] = exp(p[j] - mx);
    n = 0;
    for (int h = 0; h < 2; h++)
        for (uint32_t j = k->pos[h] > first ? k->pos[h] : first; j < k->pos[h] + k->n[h] && j <= x;
             j++, n++) {
            const float *vr = kv_at(r, r->v, layer, j) + (uint64_t)g * hd;
            for (uint32_t e = 0; e < hd; e++) out[e] += p[n] * vr[e];
        }
    for (uint32_t e = 0; e < hd; e++) out[e] /= sum;
    *lse = mx + log(sum);
}

static enum kvr_status ref_ring_attn(void *be, uint32_t layer, int q_slot, const struct kvr_span *q,
                                     const struct kvr_span *k, uint32_t window, uint32_t o_slot)
{
    struct ref *r = be;
    const struct kvr_model *m = &r->m;
    uint32_t hd = m->head_dim, group = m->n_heads / m->n_kv_heads, rows = kvr_span_rows(q);
    double *p = malloc(((size_t)kvr_span_rows(k) + 1) * sizeof *p);
    if (!p) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < rows; i++) {
        const float *qr = q_slot < 0 ? r->buf[KVR_BUF_QKV] + i * kvr_qkv_width(m)
                                     : ring_q(r, (uint32_t)q_slot) + i * ring_q_width(m);
        double *o = ring_o(r, o_slot) + i * ring_o_width(m);
        uint32_t x = span_pos(q, i), first = window && x + 1 > window ? x + 1 - window : 0;
        for (uint32_t h = 0; h < m->n_heads; h++)
            ring_row(r, layer, h / group, qr + (uint64_t)h * hd, x, first, k, p,
                     o + (uint64_t)h * hd, o + ring_q_width(m) + h);
    }
    free(p);
    return KVR_OK;
}

static enum kvr_status ref_ring_merge(void *be, uint32_t dst, uint32_t src, uint32_t n)
{
    struct ref *r = be;
    const struct kvr_model *m = &r->m;
    uint32_t hd = m->head_dim;
    for (uint32_t i = 0; i < n; i++) {
        double *a = ring_o(r, dst) + i * ring_o_width(m), *b = ring_o(r, src) + i * ring_o_width(m);
        for (uint32_t h = 0; h < m->n_heads; h++) {
            double *la = a + ring_q_width(m) + h, lb = b[ring_q_width(m) + h];
            if (lb == -INFINITY) continue;
            double mx = *la > lb ? *la : lb, wa = exp(*la - mx), wb = exp(lb - mx);
            for (uint32_t e = 0; e < hd; e++)
                a[h * hd + e] = (wa * a[h * hd + e] + wb * b[h * hd + e]) / (wa + wb);
            *la = mx + log(wa + wb);
        }
    }
    return KVR_OK;
}

static enum kvr_status ref_ring_finish(void *be, uint32_t o_slot, uint32_t n)
{
    struct ref *r = be;
    uint64_t w = ring_q_width(&r->m);
    for (uint32_t i = 0; i < n; i++)
        for (uint64_t e = 0; e < w; e++)
            r->buf[KVR_BUF_ATT][i * w + e] = (float)ring_o(r, o_slot)[i * ring_o_width(&r->m) + e];
    return KVR_OK;
}

static enum kvr_status ref_ring_area(void *be, enum kvr_ring_part part, uint32_t slot, void **ptr,
                                     size_t *row_bytes)
{
    struct ref *r = be;
    *ptr = part == KVR_RING_Q ? (void *)ring_q(r, slot) : (void *)ring_o(r, slot);
    *row_bytes = part == KVR_RING_Q ? ring_q_width(&r->m) * sizeof(float)
                                    : ring_o_width(&r->m) * sizeof(double);
    return KVR_OK;
}

static enum kvr_status ref_ring_copy(void *be, enum kvr_ring_part part, uint32_t slot, uint32_t n,
                                     void *host, bool to_host)
{
    void *at;
    size_t row;
    ref_ring_area(be, part, slot, &at, &row);
    memcpy(to_host ? host : at, to_host ? at : host, n * row);
    return KVR_OK;
}

static enum kvr_status ref_keep_row(void *be, enum kvr_buf b, uint32_t row)
{
    struct ref *r = be;
    uint64_t w = buf_width(&r->m, b);
    memmove(r->buf[b], r->buf[b] + row * w, w * sizeof(float));
    return KVR_OK;
}

/* Tensor parallelism: the residual stream for the stage's all-reduce. */
static enum kvr_status ref_x_area(void *be, float **x)
{
    *x = ((struct ref *)be)->buf[KVR_BUF_X];
    return KVR_OK;
}

static enum kvr_status ref_x_copy(void *be, uint32_t c, float *host, bool to_host)
{
    struct ref *r = be;
    size_t bytes = (size_t)c * r->m.d_model * sizeof(float);
    memcpy(to_host ? host : r->buf[KVR_BUF_X], to_host ? r->buf[KVR_BUF_X] : host, bytes);
    return KVR_OK;
}

static enum kvr_status ref_seed_rows(void *be, enum kvr_tensor t, uint32_t layer, uint64_t dst0,
                                     uint64_t rows, uint64_t row_len, uint64_t dst_stride,
                                     uint64_t src0, uint64_t src_stride, uint64_t seed,
                                     const struct kvr_init_rule *r)
{
    float *dst = tensor(be, t, layer);
    if (!dst) return kvr_error(KVR_ERR_INPUT, "no tensor %s", kvr_tensor_name(t));
    for (uint64_t i = 0; i < rows; i++)
        for (uint64_t k = 0; k < row_len; k++)
            dst[dst0 + i * dst_stride + k] =
                kvr_rng_value(seed, r->stream, src0 + i * src_stride + k, r->scale, r->offset);
    return KVR_OK;
}

static const struct kvr_backend_ops ref_ops = {
    .name = "ref",
    .destroy = ref_destroy,
    .set_tensor = ref_set_tensor,
    .upload = ref_upload,
    .embed = ref_embed,
    .norm = ref_norm,
    .linear = ref_linear,
    .rotary = ref_rotary,
    .set_prompt = ref_set_prompt,
    .attention = ref_attention,
    .activation = ref_activation,
    .logits = ref_logits,
    .logits_read = ref_logits_read,
    .kv_read = ref_kv_read,
    .kv_copy = ref_kv_copy,
    .kv_elem_bytes = 4,
    .sync = ref_sync,
    .timer = ref_timer,
    .stamp = ref_stamp,
    .stamp_span = ref_stamp_span,
    .memory = ref_memory,
    .device = ref_device,
    .rotary_rows = ref_rotary_rows,
    .ring_setup = ref_ring_setup,
    .ring_q_pack = ref_ring_q_pack,
    .ring_attn = ref_ring_attn,
    .ring_merge = ref_ring_merge,
    .ring_finish = ref_ring_finish,
    .ring_area = ref_ring_area,
    .ring_copy = ref_ring_copy,
    .keep_row = ref_keep_row,
    .x_area = ref_x_area,
    .x_copy = ref_x_copy,
    .seed_rows = ref_seed_rows,
};

enum kvr_status kvr_ref_create(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk,
                               uint32_t v0, uint32_t n_vocab, struct kvr_backend *out)
{
    uint64_t need = kvr_ref_bytes_needed(m, max_ctx, max_chunk);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (have > 0 && (double)need > have)
        return kvr_error(KVR_ERR_INPUT,
                         "the ref backend needs %.3g GB for %s at %u tokens; this machine has "
                         "%.3g GB (the ref backend is for small models)",
                         need / 1e9, m->name, max_ctx, have / 1e9);
    struct ref *r = calloc(1, sizeof *r);
    if (!r) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    /* held: what is allocated, the LM head's n_vocab rows (need counts it whole) */
    uint64_t head_less =
        tensor_count(m, m->vocab, KVR_T_LM_HEAD) - tensor_count(m, n_vocab, KVR_T_LM_HEAD);
    r->m = *m, r->max_ctx = max_ctx, r->max_chunk = max_chunk;
    r->held_bytes = need - head_less * sizeof(float);
    r->v0 = v0, r->n_vocab = n_vocab;
    bool fail = !(r->k = malloc(kv_floats(m, max_ctx) * sizeof(float))) ||
                !(r->v = malloc(kv_floats(m, max_ctx) * sizeof(float))) ||
                !(r->tokens = malloc(max_chunk * sizeof *r->tokens)) ||
                !(r->logits = malloc(m->vocab * sizeof *r->logits)) ||
                !(r->inv_freq = malloc((kvr_rotary_dims(m) / 2 + 1) * sizeof *r->inv_freq));
    for (int t = 0; t < KVR_N_TENSORS && !fail; t++) {
        uint64_t n = tensor_count(m, n_vocab, (enum kvr_tensor)t);
        fail = n && !(r->w[t] = malloc(n * sizeof(float)));
    }
    for (int b = 0; b < KVR_N_BUFS && !fail; b++)
        fail = !(r->buf[b] =
                     malloc((uint64_t)max_chunk * buf_width(m, (enum kvr_buf)b) * sizeof(float)));
    if (fail) {
        ref_destroy(r);
        return kvr_error(KVR_ERR_NOMEM, "the ref backend could not allocate %.3g GB", need / 1e9);
    }
    ref_set_prompt(r, max_ctx);
    *out = (struct kvr_backend){&ref_ops, r};
    return KVR_OK;
}
