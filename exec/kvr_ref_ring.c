/* The ref backend's ring attention: query slots of float, output slots of double, each block's
 * attention with its log-sum-exp and the float64 merge (the oracle of kvr_cuda_ring.cu). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_ref_int.h"

static uint64_t ring_q_width(const struct kvr_model *m)
{
    return (uint64_t)m->n_heads * m->head_dim;
}

static uint64_t ring_o_width(const struct kvr_model *m)
{
    return (uint64_t)m->n_heads * (m->head_dim + 1);
}

void kvr_ref_ring_free(struct ref *r)
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
enum kvr_status kvr_ref_rotary_rows(void *be, uint32_t layer, uint32_t row0, uint32_t s, uint32_t c)
{
    struct ref *r = be;
    float *whole = r->buf[KVR_BUF_QKV];
    r->buf[KVR_BUF_QKV] = whole + (uint64_t)row0 * kvr_qkv_width(&r->m);
    enum kvr_status st = kvr_ref_rotary(be, layer, s, c);
    r->buf[KVR_BUF_QKV] = whole;
    return st;
}

enum kvr_status kvr_ref_ring_setup(void *be, uint32_t rows, uint32_t n_q, uint32_t n_o)
{
    struct ref *r = be;
    kvr_ref_ring_free(r);
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

enum kvr_status kvr_ref_ring_q_pack(void *be, uint32_t q_slot, uint32_t n)
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
            const float *kr = ref_kv_at(r, r->k, layer, j) + (uint64_t)g * hd;
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
            const float *vr = ref_kv_at(r, r->v, layer, j) + (uint64_t)g * hd;
            for (uint32_t e = 0; e < hd; e++) out[e] += p[n] * vr[e];
        }
    for (uint32_t e = 0; e < hd; e++) out[e] /= sum;
    *lse = mx + log(sum);
}

enum kvr_status kvr_ref_ring_attn(void *be, uint32_t layer, int q_slot, const struct kvr_span *q,
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

enum kvr_status kvr_ref_ring_merge(void *be, uint32_t dst, uint32_t src, uint32_t n)
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

enum kvr_status kvr_ref_ring_finish(void *be, uint32_t o_slot, uint32_t n)
{
    struct ref *r = be;
    uint64_t w = ring_q_width(&r->m);
    for (uint32_t i = 0; i < n; i++)
        for (uint64_t e = 0; e < w; e++)
            r->buf[KVR_BUF_ATT][i * w + e] = (float)ring_o(r, o_slot)[i * ring_o_width(&r->m) + e];
    return KVR_OK;
}

enum kvr_status kvr_ref_ring_area(void *be, enum kvr_ring_part part, uint32_t slot, void **ptr,
                                  size_t *row_bytes)
{
    struct ref *r = be;
    *ptr = part == KVR_RING_Q ? (void *)ring_q(r, slot) : (void *)ring_o(r, slot);
    *row_bytes = part == KVR_RING_Q ? ring_q_width(&r->m) * sizeof(float)
                                    : ring_o_width(&r->m) * sizeof(double);
    return KVR_OK;
}

enum kvr_status kvr_ref_ring_copy(void *be, enum kvr_ring_part part, uint32_t slot, uint32_t n,
                                  void *host, bool to_host)
{
    void *at;
    size_t row;
    kvr_ref_ring_area(be, part, slot, &at, &row);
    memcpy(to_host ? host : at, to_host ? at : host, n * row);
    return KVR_OK;
}
