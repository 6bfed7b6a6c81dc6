/* ring: ring attention with pass-KV and zig-zag sharding (2p chunks, rank i holds chunks i and
 * 2p-1-i), block-wise attention overlapped with the passes. */
#include <string.h>

#include "kvr_cost.h"
#include "kvr_sim_int.h"

uint64_t kvr_pairs_between(uint64_t q0, uint64_t q1, uint64_t k0, uint64_t k1)
{
    if (q1 <= q0 || k1 <= k0) return 0;
    uint64_t total = 0;
    /* queries inside [k0, k1) see q - k0 + 1 keys */
    uint64_t a = q0 > k0 ? q0 : k0, b = q1 < k1 ? q1 : k1;
    if (a < b) total += (b - a) * (a - k0 + 1 + b - k0) / 2;
    /* queries at or after k1 see all k1 - k0 keys */
    uint64_t from = q0 > k1 ? q0 : k1;
    if (from < q1) total += (q1 - from) * (k1 - k0);
    return total;
}

/* Zig-zag: 2p near-equal chunks, rank i holds chunks i and 2p-1-i. */
static void zigzag(const struct kvr_plan *plan, int i, uint64_t lo[2], uint64_t hi[2])
{
    uint64_t n = 2 * (uint64_t)plan->p, base = plan->ctx / n, extra = plan->ctx % n;
    for (int h = 0; h < 2; h++) {
        uint64_t k = h == 0 ? (uint64_t)i : n - 1 - (uint64_t)i;
        lo[h] = k * base + (k < extra ? k : extra);
        hi[h] = lo[h] + base + (k < extra);
    }
}

/* With a sliding window W the pairs with i - j >= W drop out: they are the causal pairs of the
 * same queries against the keys shifted by W. */
static uint64_t zigzag_pairs(const struct kvr_plan *plan, int qi, int ki, uint64_t w)
{
    uint64_t qlo[2], qhi[2], klo[2], khi[2], sum = 0;
    zigzag(plan, qi, qlo, qhi);
    zigzag(plan, ki, klo, khi);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            sum += kvr_pairs_between(qlo[a], qhi[a], klo[b], khi[b]);
            if (w) sum -= kvr_pairs_between(qlo[a], qhi[a], klo[b] + w, khi[b] + w);
        }
    return sum;
}

/* Each rank keeps its own tokens' KV (all layers) and two in-flight blocks of one layer: the one
 * being used and the one arriving. */
static void kv_held(struct kvr_sim *sim, int p)
{
    double biggest = 0;
    for (int i = 0; i < p; i++)
        if (sim->res->rank[i].tokens > biggest) biggest = (double)sim->res->rank[i].tokens;
    for (int i = 0; i < p; i++)
        sim->kv_tokens[i] = (double)sim->res->rank[i].tokens,
        sim->kv_flight_tokens[i] = 2 * biggest;
}

void kvr_sim_ring(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    const int p = plan->p;
    double pre[KVR_MAX_GPUS], post[KVR_MAX_GPUS], link_free[KVR_MAX_GPUS] = {0};
    double avail[KVR_MAX_GPUS], next[KVR_MAX_GPUS], block_bytes[KVR_MAX_GPUS];
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(m);
    static _Thread_local double attn[KVR_MAX_GPUS][KVR_MAX_GPUS]; /* queries of i, keys of k */
    struct kvr_clocks c = {{0}};
    for (int i = 0; i < p; i++) {
        uint64_t lo[2], hi[2];
        zigzag(plan, i, lo, hi);
        uint64_t n = hi[0] - lo[0] + hi[1] - lo[1];
        sim->res->rank[i].tokens = n;
        pre[i] = kvr_cost_pre_s(m, g, n);
        post[i] = kvr_cost_post_s(m, g, n);
        block_bytes[i] = (double)n * kvb;
        kvr_sim_compute(sim, &c, i, -1, "embed", kvr_cost_embed_s(m, g, n));
    }
    kv_held(sim, p);
    for (int i = 0; i < p; i++)
        for (int k = 0; k < p; k++) {
            uint64_t n_keys = sim->res->rank[k].tokens,
                     pairs = zigzag_pairs(plan, i, k, m->sliding_window);
            attn[i][k] =
                pairs ? kvr_cost_attn_block_s(m, g, sim->res->rank[i].tokens, n_keys, pairs) : 0;
        }
    for (int l = 0; l < (int)m->n_layers; l++) {
        for (int i = 0; i < p; i++)
            kvr_sim_compute(sim, &c, i, l, "pre", pre[i]), avail[i] = c.t[i];
        for (int j = 0; j < p; j++) {
            /* pass the block held at step j on to the next rank, overlapping the compute */
            for (int i = 0; j + 1 < p && i < p; i++) {
                int k = ((i - j) % p + p) % p, to = (i + 1) % p;
                next[to] =
                    kvr_sim_send(sim, &link_free[i], i, to, l, avail[i], block_bytes[k], true);
            }
            for (int i = 0; i < p; i++) {
                kvr_sim_wait_until(sim, &c, i, l, avail[i]);
                kvr_sim_compute(sim, &c, i, l, "attn", attn[i][((i - j) % p + p) % p]);
            }
            memcpy(avail, next, sizeof avail);
        }
        for (int i = 0; i < p; i++) kvr_sim_compute(sim, &c, i, l, "post", post[i]);
    }
    kvr_sim_finish(sim, &c, plan, 0); /* rank 0 holds the last chunk, so the last token */
}
