/* Sliding-window trimming of the blocks the schemes move (kvr_trim.h). */
#include "kvr_trim.h"

#include "kvr_sim.h"

bool kvr_trim_active(const struct kvr_model *m, uint64_t ctx)
{
    return m->sliding_window > 0 && m->sliding_window < ctx;
}

uint64_t kvr_trim_keys(const struct kvr_model *m, uint64_t ctx, uint64_t k0, uint64_t k1,
                       uint64_t q0, uint64_t q1, uint64_t *lo)
{
    uint64_t first = kvr_trim_active(m, ctx) ? kvr_window_first(m, q0) : 0;
    uint64_t a = k0 > first ? k0 : first, b = k1 < q1 ? k1 : q1;
    *lo = a;
    return b > a ? b - a : 0;
}

/* Rows at the head of query chunk [q0, q1) that see a key of [k0, k1) (k1 <= q0): the queries
 * before k1 + W - 1 (all of them without a window; none when the keys come after). */
static uint64_t q_head(const struct kvr_model *m, uint64_t ctx, uint64_t q0, uint64_t q1,
                       uint64_t k0, uint64_t k1)
{
    if (k1 > q0 || k1 <= k0) return 0;
    if (!kvr_trim_active(m, ctx)) return q1 - q0;
    uint64_t end = k1 + m->sliding_window - 1;
    return end <= q0 ? 0 : (end < q1 ? end : q1) - q0;
}

void kvr_trim_ring_kv(const struct kvr_model *m, uint64_t ctx, int p, int k, int h_lo, int h_hi,
                      uint64_t pos[2], uint64_t n[2])
{
    uint64_t klo[2], khi[2];
    kvr_zigzag_chunks(ctx, p, k, klo, khi);
    bool all = !kvr_trim_active(m, ctx); /* the whole block travels every hop */
    for (int x = 0; x < 2; x++) {
        uint64_t tail = 0;
        for (int h = h_lo; h < h_hi; h++) {
            uint64_t qlo[2], qhi[2], at;
            kvr_zigzag_chunks(ctx, p, (k + h + 1) % p, qlo, qhi);
            for (int y = 0; y < 2; y++)
                if (khi[x] <= qlo[y]) { /* keys before the queries: a tail */
                    uint64_t rows = kvr_trim_keys(m, ctx, klo[x], khi[x], qlo[y], qhi[y], &at);
                    tail = rows > tail ? rows : tail;
                }
        }
        if (all) tail = khi[x] - klo[x];
        n[x] = tail, pos[x] = khi[x] - tail;
    }
}

uint64_t kvr_trim_ring_q(const struct kvr_model *m, uint64_t ctx, int p, int b, int h_lo, int h_hi)
{
    uint64_t qlo[2], qhi[2], head[2] = {0, 0};
    kvr_zigzag_chunks(ctx, p, b, qlo, qhi);
    if (!kvr_trim_active(m, ctx)) return qhi[0] - qlo[0] + qhi[1] - qlo[1];
    for (int h = h_lo; h < h_hi; h++) {
        uint64_t klo[2], khi[2];
        kvr_zigzag_chunks(ctx, p, (b + h + 1) % p, klo, khi);
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 2; x++) {
                uint64_t rows = q_head(m, ctx, qlo[y], qhi[y], klo[x], khi[x]);
                head[y] = rows > head[y] ? rows : head[y];
            }
    }
    return head[1] ? qhi[0] - qlo[0] + head[1] : head[0];
}
