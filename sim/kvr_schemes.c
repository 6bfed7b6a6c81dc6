/* The schemes as timelines. Each rank keeps a clock; compute advances it, waiting for data or
 * a collective advances it idly, and sends run on the link asynchronously (a link carries one
 * send at a time). Layers are identical, so per-chunk costs are computed once per scheme run. */
#include <string.h>

#include "kvr_cost.h"
#include "kvr_sim.h"

struct clocks {
    double t[KVR_MAX_GPUS];
};

static double share(const struct kvr_sim *sim, int layer, int i, int j)
{
    const double *n = kvr_sim_layer_noise(sim, layer);
    return n ? n[i * sim->machine->n_gpus + j] : 0;
}

static void compute(struct kvr_sim *sim, struct clocks *c, int r, int layer, const char *what,
                    double dur)
{
    kvr_sim_event(sim, r, layer, KVR_EV_COMPUTE, what, c->t[r], c->t[r] + dur, 0, -1);
    c->t[r] += dur;
    sim->res->rank[r].compute_s += dur;
}

static void wait_until(struct kvr_sim *sim, struct clocks *c, int r, int layer, double t)
{
    if (t <= c->t[r]) return;
    kvr_sim_event(sim, r, layer, KVR_EV_WAIT, "wait", c->t[r], t, 0, -1);
    sim->res->rank[r].wait_s += t - c->t[r];
    c->t[r] = t;
}

/* A send from r to peer, not before `ready`, serialised on the link; returns the arrival time.
 * `overlapped`: asynchronous, beside compute at both ends (kvr_link_overlap_s). */
static double send(struct kvr_sim *sim, double *link_free, int r, int peer, int layer, double ready,
                   double bytes, bool overlapped)
{
    double start = ready > *link_free ? ready : *link_free, nz = share(sim, layer, r, peer);
    double dur = overlapped ? kvr_link_overlap_s(sim->machine, r, peer, bytes, nz)
                            : kvr_link_s(sim->machine, r, peer, bytes, nz);
    kvr_sim_event(sim, r, layer, KVR_EV_SEND, "kv", start, start + dur, bytes, peer);
    sim->res->rank[r].comm_s += dur;
    sim->res->bytes_sent_total += bytes;
    *link_free = start + dur;
    return start + dur;
}

static void finish(struct kvr_sim *sim, struct clocks *c, const struct kvr_plan *plan, int last)
{
    const struct kvr_model *m = sim->model;
    compute(sim, c, last, (int)m->n_layers, "head", kvr_cost_head_s(m, &sim->machine->gpu));
    for (int r = 0; r < plan->p; r++) sim->res->rank[r].end_s = c->t[r];
    sim->res->ttft_s = c->t[last];
}

void kvr_scheme_single(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    struct clocks c = {{0}};
    uint64_t n = plan->ctx;
    sim->res->rank[0].tokens = n;
    compute(sim, &c, 0, -1, "embed", kvr_cost_embed_s(m, g, n));
    double pre = kvr_cost_pre_s(m, g, n), attn = kvr_cost_attn_s(m, g, 0, n, KVR_MASK_CAUSAL);
    double post = kvr_cost_post_s(m, g, n);
    for (int l = 0; l < (int)m->n_layers; l++) {
        compute(sim, &c, 0, l, "pre", pre);
        compute(sim, &c, 0, l, "attn", attn);
        compute(sim, &c, 0, l, "post", post);
    }
    finish(sim, &c, plan, 0);
}

/* Contiguous chunks in rank order (kvr, ring-pass): each rank's tokens, its per-layer costs
 * (causal attention after the chunks before it) and its embedding. */
static void contiguous_chunks(struct kvr_sim *sim, struct clocks *c, const struct kvr_plan *plan,
                              double *pre, double *attn, double *post)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    uint64_t s = 0;
    for (int i = 0; i < plan->p; i++) {
        uint64_t n = plan->tokens[i];
        sim->res->rank[i].tokens = n;
        pre[i] = kvr_cost_pre_s(m, g, n);
        attn[i] = kvr_cost_attn_s(m, g, s, n, KVR_MASK_CAUSAL);
        post[i] = kvr_cost_post_s(m, g, n);
        s += n;
        compute(sim, c, i, -1, "embed", kvr_cost_embed_s(m, g, n));
    }
}

void kvr_scheme_kvr(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const int p = plan->p;
    double pre[KVR_MAX_GPUS], attn[KVR_MAX_GPUS], post[KVR_MAX_GPUS], link_free[KVR_MAX_GPUS];
    double arrive[KVR_MAX_GPUS], kv_bytes[KVR_MAX_GPUS];
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(m);
    struct clocks c = {{0}};
    contiguous_chunks(sim, &c, plan, pre, attn, post);
    uint64_t s = 0;
    for (int i = 0; i < p; i++) {
        s += plan->tokens[i];
        /* rank i hands on the cache of [0, S_i); with a sliding window W only the part later
         * ranks can still attend, [S_i - (W-1), S_i) (#17; exec/kvr_dist.c sends the same) */
        kv_bytes[i] = (double)(s - kvr_window_first(m, s)) * kvb;
        link_free[i] = 0;
    }
    for (int l = 0; l < (int)m->n_layers; l++)
        for (int i = 0; i < p; i++) {
            compute(sim, &c, i, l, "pre", pre[i]);
            double have = i > 0 && arrive[i] > c.t[i] ? arrive[i] : c.t[i];
            /* the concatenated cache goes down the chain before this rank's own attention */
            if (i + 1 < p)
                arrive[i + 1] = send(sim, &link_free[i], i, i + 1, l, have, kv_bytes[i], true);
            if (i > 0) wait_until(sim, &c, i, l, arrive[i]);
            compute(sim, &c, i, l, "attn", attn[i]);
            compute(sim, &c, i, l, "post", post[i]);
        }
    finish(sim, &c, plan, p - 1);
}

/* Barrier plus a collective on all p ranks starting when the last one is ready. */
static void collective(struct kvr_sim *sim, struct clocks *c, int p, int layer, const char *what,
                       double dur, double bytes_total)
{
    double start = 0;
    for (int r = 0; r < p; r++) start = c->t[r] > start ? c->t[r] : start;
    for (int r = 0; r < p; r++) {
        wait_until(sim, c, r, layer, start);
        kvr_sim_event(sim, r, layer, KVR_EV_COLLECTIVE, what, start, start + dur, bytes_total / p,
                      -1);
        c->t[r] = start + dur;
        sim->res->rank[r].comm_s += dur;
    }
    sim->res->bytes_sent_total += bytes_total;
}

void kvr_scheme_tsp(struct kvr_sim *sim, const struct kvr_plan *plan, bool causal)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    const int p = plan->p;
    struct kvr_plan even = *plan;
    kvr_plan_even(&even);
    double pre[KVR_MAX_GPUS], attn[KVR_MAX_GPUS], post[KVR_MAX_GPUS];
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(m), block = 0;
    struct clocks c = {{0}};
    uint64_t s = 0;
    for (int i = 0; i < p; i++) {
        uint64_t n = even.tokens[i];
        sim->res->rank[i].tokens = n;
        pre[i] = kvr_cost_pre_s(m, g, n);
        /* dense: all ctx keys against the chunk's queries; causal: only the unmasked pairs
         * (c s + c(c+1)/2), as a flash kernel that skips the masked triangle computes them */
        attn[i] = causal ? kvr_cost_attn_s(m, g, s, n, KVR_MASK_CAUSAL)
                         : kvr_cost_attn_s(m, g, plan->ctx - n, n, KVR_MASK_DENSE);
        post[i] = kvr_cost_post_s(m, g, n);
        block = (double)n * kvb > block ? (double)n * kvb : block;
        s += n;
        compute(sim, &c, i, -1, "embed", kvr_cost_embed_s(m, g, n));
    }
    for (int l = 0; l < (int)m->n_layers; l++) {
        for (int i = 0; i < p; i++) compute(sim, &c, i, l, "pre", pre[i]);
        double dur = kvr_allgather_s(sim->machine, p, block, kvr_sim_layer_noise(sim, l),
                                     sim->machine->n_gpus);
        collective(sim, &c, p, l, "allgather", dur, block * p * (p - 1));
        for (int i = 0; i < p; i++) {
            compute(sim, &c, i, l, "attn", attn[i]);
            compute(sim, &c, i, l, "post", post[i]);
        }
    }
    finish(sim, &c, plan, p - 1);
}

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

/* With a sliding window W (#17) the pairs with i - j >= W drop out: they are the causal pairs
 * of the same queries against the keys shifted by W. */
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

void kvr_scheme_ring(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    const int p = plan->p;
    double pre[KVR_MAX_GPUS], post[KVR_MAX_GPUS], link_free[KVR_MAX_GPUS] = {0};
    double avail[KVR_MAX_GPUS], next[KVR_MAX_GPUS], block_bytes[KVR_MAX_GPUS];
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(m);
    static _Thread_local double attn[KVR_MAX_GPUS][KVR_MAX_GPUS]; /* queries of i, keys of k */
    struct clocks c = {{0}};
    for (int i = 0; i < p; i++) {
        uint64_t lo[2], hi[2];
        zigzag(plan, i, lo, hi);
        uint64_t n = hi[0] - lo[0] + hi[1] - lo[1];
        sim->res->rank[i].tokens = n;
        pre[i] = kvr_cost_pre_s(m, g, n);
        post[i] = kvr_cost_post_s(m, g, n);
        block_bytes[i] = (double)n * kvb;
        compute(sim, &c, i, -1, "embed", kvr_cost_embed_s(m, g, n));
    }
    for (int i = 0; i < p; i++)
        for (int k = 0; k < p; k++) {
            uint64_t n_keys = sim->res->rank[k].tokens,
                     pairs = zigzag_pairs(plan, i, k, m->sliding_window);
            attn[i][k] =
                pairs ? kvr_cost_attn_block_s(m, g, sim->res->rank[i].tokens, n_keys, pairs) : 0;
        }
    for (int l = 0; l < (int)m->n_layers; l++) {
        for (int i = 0; i < p; i++) compute(sim, &c, i, l, "pre", pre[i]), avail[i] = c.t[i];
        for (int j = 0; j < p; j++) {
            /* pass the block held at step j on to the next rank, overlapping the compute */
            for (int i = 0; j + 1 < p && i < p; i++) {
                int k = ((i - j) % p + p) % p, to = (i + 1) % p;
                next[to] = send(sim, &link_free[i], i, to, l, avail[i], block_bytes[k], true);
            }
            for (int i = 0; i < p; i++) {
                wait_until(sim, &c, i, l, avail[i]);
                compute(sim, &c, i, l, "attn", attn[i][((i - j) % p + p) % p]);
            }
            memcpy(avail, next, sizeof avail);
        }
        for (int i = 0; i < p; i++) compute(sim, &c, i, l, "post", post[i]);
    }
    finish(sim, &c, plan, 0); /* rank 0 holds the last chunk, so the last token */
}

/* The executor's ring (exec/kvr_dist.c): contiguous chunks; per layer, p-1 steps in which every
 * rank sends the block it got last to the next rank and receives one from the previous, as one
 * NCCL group (a transfer starts once both ends have entered the step); then causal attention
 * over the gathered prefix. Nothing overlaps, and the last chunk's rank does the most
 * attention: the cost of skipping ring attention's zig-zag and block-wise overlap. */
void kvr_scheme_ring_pass(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const int p = plan->p;
    double pre[KVR_MAX_GPUS], attn[KVR_MAX_GPUS], post[KVR_MAX_GPUS], block[KVR_MAX_GPUS];
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(m);
    struct clocks c = {{0}};
    contiguous_chunks(sim, &c, plan, pre, attn, post);
    for (int i = 0; i < p; i++) block[i] = (double)plan->tokens[i] * kvb;
    for (int l = 0; l < (int)m->n_layers; l++) {
        for (int i = 0; i < p; i++) compute(sim, &c, i, l, "pre", pre[i]);
        for (int t = 1; t < p; t++) {
            double done[KVR_MAX_GPUS], link_free = 0;
            for (int i = 0; i < p; i++) done[i] = c.t[i];
            for (int i = 0; i < p; i++) {
                int to = (i + 1) % p, b = ((i - t + 1) % p + p) % p;
                double ready = c.t[i] > c.t[to] ? c.t[i] : c.t[to];
                double end = send(sim, &link_free, i, to, l, ready, block[b], false);
                link_free = 0; /* each rank's own link */
                if (end > done[i]) done[i] = end;
                if (end > done[to]) done[to] = end;
            }
            for (int i = 0; i < p; i++) wait_until(sim, &c, i, l, done[i]);
        }
        for (int i = 0; i < p; i++) {
            compute(sim, &c, i, l, "attn", attn[i]);
            compute(sim, &c, i, l, "post", post[i]);
        }
    }
    finish(sim, &c, plan, p - 1);
}

/* Rank i's shard of n items split over p (the first n % p ranks get one more). */
static uint32_t shard(uint32_t n, int p, int i)
{
    return n / (uint32_t)p + ((uint32_t)i < n % (uint32_t)p);
}

/* Rank i's part of the model under tensor parallelism: heads and MLP columns split, KV heads
 * split when there are at least p of them, else replicated (one per rank). */
void kvr_tp_shard(const struct kvr_model *m, int p, int i, struct kvr_model *out)
{
    *out = *m;
    out->n_heads = shard(m->n_heads, p, i);
    out->n_kv_heads = m->n_kv_heads >= (uint32_t)p ? shard(m->n_kv_heads, p, i) : 1;
    out->d_ffn = shard(m->d_ffn, p, i);
    out->vocab = shard(m->vocab, p, i);
}

static double tp_ops_s(const struct kvr_model *full, const struct kvr_model *part,
                       const struct kvr_gpu *g, enum kvr_op first, enum kvr_op last, uint64_t n)
{
    double t = 0;
    for (int op = first; op <= (int)last; op++) {
        enum kvr_op o = (enum kvr_op)op;
        bool replicated = o == KVR_OP_NORM_ATTN || o == KVR_OP_NORM_MLP || o == KVR_OP_RESIDUAL;
        struct kvr_op_cost x;
        if (kvr_op_cost(replicated ? full : part, o, 0, n, KVR_MASK_CAUSAL, &x) == KVR_OK)
            t += kvr_cost_model_op_s(full, g, o, &x, (double)n);
    }
    return t;
}

void kvr_scheme_tp(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    const int p = plan->p;
    const uint64_t n = plan->ctx;
    double attn_part[KVR_MAX_GPUS], mlp_part[KVR_MAX_GPUS];
    double act_bytes = (double)n * m->d_model * kvr_dtype_bytes(m->dtype);
    struct clocks c = {{0}};
    for (int i = 0; i < p; i++) {
        struct kvr_model part;
        kvr_tp_shard(m, p, i, &part);
        sim->res->rank[i].tokens = n;
        attn_part[i] = tp_ops_s(m, &part, g, KVR_OP_NORM_ATTN, KVR_OP_OUT_PROJ, n);
        mlp_part[i] = tp_ops_s(m, &part, g, KVR_OP_NORM_MLP, KVR_OP_RESIDUAL, n);
        compute(sim, &c, i, -1, "embed", kvr_cost_embed_s(m, g, n));
    }
    for (int l = 0; l < (int)m->n_layers; l++) {
        const double *nz = kvr_sim_layer_noise(sim, l);
        double ar = kvr_allreduce_s(sim->machine, p, act_bytes, nz, sim->machine->n_gpus);
        double ar_bytes = 2.0 * (p - 1) * act_bytes; /* ring: 2(p-1)/p of the buffer per rank */
        for (int i = 0; i < p; i++) compute(sim, &c, i, l, "attn", attn_part[i]);
        /* a parallel block (Falcon) sums attention and MLP before one all-reduce */
        if (!m->parallel_attn) collective(sim, &c, p, l, "allreduce", ar, ar_bytes);
        for (int i = 0; i < p; i++) compute(sim, &c, i, l, "mlp", mlp_part[i]);
        collective(sim, &c, p, l, "allreduce", ar, ar_bytes);
    }
    finish(sim, &c, plan, p - 1);
}
