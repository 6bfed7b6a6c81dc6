/* The ref backend's math of one layer, operation by operation, in float32 (norms, rotary and
 * attention in double): embedding, norms, linear maps, rotary, attention, activation, logits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_ref_int.h"

enum kvr_status kvr_ref_embed(void *be, uint32_t c)
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

enum kvr_status kvr_ref_norm(void *be, enum kvr_buf out, enum kvr_tensor w, uint32_t layer,
                             uint32_t c)
{
    struct ref *r = be;
    const float *wt = ref_tensor(r, w, layer), *bt = ref_tensor(r, (enum kvr_tensor)(w + 1), layer);
    uint32_t d = r->m.d_model;
    for (uint32_t i = 0; i < c; i++)
        norm_row(&r->m, r->buf[KVR_BUF_X] + (uint64_t)i * d, wt, bt, r->buf[out] + (uint64_t)i * d);
    return KVR_OK;
}

enum kvr_status kvr_ref_linear(void *be, enum kvr_buf out, enum kvr_buf in, enum kvr_tensor w,
                               uint32_t layer, uint32_t c, bool accumulate)
{
    struct ref *r = be;
    struct kvr_tensor_shape sh = kvr_tensor_shape(&r->m, w);
    const float *wt = ref_tensor(r, w, layer), *bt = ref_tensor(r, (enum kvr_tensor)(w + 1), layer);
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

enum kvr_status kvr_ref_set_prompt(void *be, uint32_t ctx)
{
    struct ref *r = be;
    if (r->m.rotary) kvr_rope_inv_freq(&r->m, ctx, r->inv_freq, &r->rope_scale);
    return KVR_OK;
}

enum kvr_status kvr_ref_rotary(void *be, uint32_t layer, uint32_t s, uint32_t c)
{
    struct ref *r = be;
    const struct kvr_model *m = &r->m;
    uint32_t hd = m->head_dim, kvw = m->n_kv_heads * hd, rot = kvr_rotary_dims(m);
    for (uint32_t i = 0; i < c; i++) {
        float *q = r->buf[KVR_BUF_QKV] + i * kvr_qkv_width(m);
        float *k = q + (uint64_t)m->n_heads * hd, *v = k + kvw;
        for (uint32_t h = 0; m->rotary && h < m->n_heads + m->n_kv_heads; h++)
            rotate(r, q + (uint64_t)h * hd, rot, s + i); /* Q heads, then K heads */
        memcpy(ref_kv_at(r, r->k, layer, s + i), k, kvw * sizeof(float));
        memcpy(ref_kv_at(r, r->v, layer, s + i), v, kvw * sizeof(float));
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
        const float *k = ref_kv_at(r, r->k, layer, j) + (uint64_t)g * hd;
        double dot = 0;
        for (uint32_t e = 0; e < hd; e++) dot += (double)q[e] * k[e];
        p[j] = dot * scale;
        if (p[j] > mx) mx = p[j];
    }
    for (uint32_t j = k0; j < n_keys; j++) sum += p[j] = exp(p[j] - mx);
    for (uint32_t e = 0; e < hd; e++) {
        double acc = 0;
        for (uint32_t j = k0; j < n_keys; j++)
            acc += p[j] * ref_kv_at(r, r->v, layer, j)[g * hd + e];
        out[e] = (float)(acc / sum);
    }
}

enum kvr_status kvr_ref_attention(void *be, uint32_t layer, uint32_t s, uint32_t c,
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

enum kvr_status kvr_ref_activation(void *be, uint32_t c)
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

enum kvr_status kvr_ref_logits(void *be, uint32_t row)
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
