/* ring: ring attention with zig-zag sharding (2p chunks, rank i holds chunks i and 2p-1-i),
 * block-wise attention overlapped with the passes, partial outputs merged by their
 * log-sum-exp: the executor's schedule (exec/kvr_dist_ring.c), step for step.
 *
 * pass-KV, per layer: pre; p steps; at step j rank i holds the K/V block of rank (i-j) mod p.
 * A step's transfer (rank i sends that block to i+1 and receives the next from i-1, one NCCL
 * group) starts once both ends have entered the step and runs beside the attention (capped at
 * overlap_Bps); the rank attends its queries to the block in hand (exact causal pairs, one
 * block op), merges the partial output into its running one (steps after the first), and
 * leaves the step when its send and its receive are done. Then the output is written out
 * (finish) and post.
 * pass-Q, per layer: pre; the queries are packed; at step j rank i holds the queries of rank
 * b = (i-j) mod p, passes them on as above and attends them to its own K/V, keeping the
 * partial output and LSE; after the p steps the partials go back to their owners in p-1
 * pairwise rounds (ring_return), each merged as it arrives; finish, post.
 * Rank 0 holds chunk 2p-1, so the last token: it computes the logits.
 * Over a layout's stages (kvr_layout.h) the ring's members are the n = p / t stages: shard j's
 * ring runs over shard j of every stage (t rings side by side, on one shard's heads), and each
 * stage's post has its TP all-reduces; with t = 1 every loop is the plain scheme's. */
#include <string.h>

#include "kvr_cost.h"
#include "kvr_layout.h"
#include "kvr_sim_int.h"
#include "kvr_trim.h"

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

void kvr_zigzag_chunks(uint64_t ctx, int p, int i, uint64_t lo[2], uint64_t hi[2])
{
    uint64_t n = 2 * (uint64_t)p, base = ctx / n, extra = ctx % n;
    for (int h = 0; h < 2; h++) {
        uint64_t k = h == 0 ? (uint64_t)i : n - 1 - (uint64_t)i;
        lo[h] = k * base + (k < extra ? k : extra);
        hi[h] = lo[h] + base + (k < extra);
    }
}

void kvr_plan_zigzag(struct kvr_plan *plan)
{
    int n = kvr_plan_stages(plan);
    for (int i = 0; i < n; i++) {
        uint64_t lo[2], hi[2];
        kvr_zigzag_chunks(plan->ctx, n, i, lo, hi);
        plan->tokens[i] = hi[0] - lo[0] + hi[1] - lo[1];
    }
}

const char *kvr_ring_pass_name(enum kvr_ring_pass r)
{
    return r == KVR_RING_PASS_Q ? "q" : r == KVR_RING_PASS_AUTO ? "auto" : "kv";
}

int kvr_ring_pass_from_name(const char *s)
{
    if (!strcmp(s, "kv")) return KVR_RING_PASS_KV;
    if (!strcmp(s, "q")) return KVR_RING_PASS_Q;
    if (!strcmp(s, "auto")) return KVR_RING_PASS_AUTO;
    return -1;
}

enum kvr_status kvr_sim_ring_auto(struct kvr_sim *sim, const struct kvr_plan *plan,
                                  struct kvr_sim_result *res, struct kvr_timeline *timeline)
{
    struct kvr_plan kv = *plan, q = *plan;
    kv.ring_pass = KVR_RING_PASS_KV, q.ring_pass = KVR_RING_PASS_Q;
    enum kvr_status st = kvr_sim_run(sim, &q, res, NULL);
    double t_q = res->ttft_s;
    if (!st) st = kvr_sim_run(sim, &kv, res, timeline);
    if (!st && t_q < res->ttft_s) st = kvr_sim_run(sim, &q, res, timeline);
    return st;
}

/* The model's sliding window (0: none), as exec/kvr_dist_ring.c's. */
static uint64_t model_window(const struct kvr_model *m)
{
    return m->sliding_window;
}

/* Causal pairs of stage qi's queries against stage ki's keys (n stages); with a sliding window
 * w the pairs with i - j >= w drop out: the causal pairs of the same queries against the keys
 * shifted by w. */
static uint64_t zigzag_pairs(uint64_t ctx, int n, int qi, int ki, uint64_t w)
{
    uint64_t qlo[2], qhi[2], klo[2], khi[2], sum = 0;
    kvr_zigzag_chunks(ctx, n, qi, qlo, qhi);
    kvr_zigzag_chunks(ctx, n, ki, klo, khi);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            sum += kvr_pairs_between(qlo[a], qhi[a], klo[b], khi[b]);
            if (w) sum -= kvr_pairs_between(qlo[a], qhi[a], klo[b] + w, khi[b] + w);
        }
    return sum;
}

/* Each rank keeps its own tokens' KV (all layers) and the workspace of one layer, counted as
 * KV tokens of in-flight memory: pass-KV two K/V blocks (the one in hand, the one arriving)
 * and two fp32 output slots (the running output, a partial); pass-Q two query blocks and n + 2
 * output slots (running, received, one per other stage's queries). One shard's heads. */
static void kv_held(struct kvr_sim *sim, const struct kvr_plan *plan, const struct kvr_stages *S,
                    double most_hop)
{
    const struct kvr_model *m = &S->part;
    double biggest = 0, kvb = (double)kvr_model_kv_bytes_per_token_layer(m);
    double elem = kvb / (2.0 * m->n_kv_heads * m->head_dim);
    double q_row = (double)m->n_heads * m->head_dim * elem,
           o_row = m->n_heads * (m->head_dim + 1) * 4.0;
    for (int i = 0; i < plan->p; i++)
        if (sim->res->rank[i].tokens > biggest) biggest = (double)sim->res->rank[i].tokens;
    /* the blocks in flight: the most rows a hop carries (a window's trimmed blocks) */
    double flight = plan->ring_pass == KVR_RING_PASS_Q
                        ? 2 * most_hop * q_row + biggest * (S->n + 2) * o_row
                        : 2 * most_hop * kvb + biggest * 2 * o_row;
    for (int i = 0; i < plan->p; i++)
        sim->kv_tokens[i] = (double)sim->res->rank[i].tokens,
        sim->kv_flight_tokens[i] = flight / kvb;
}

/* A memory-bound element-wise pass over `bytes` (the merges, the packing, the finish). */
static double elementwise_s(const struct kvr_gpu *g, double rows, double bytes)
{
    struct kvr_op_cost x = {.act_read_bytes = (uint64_t)bytes};
    return kvr_cost_op_s(g, &x, KVR_CLASS_ELEMENTWISE, rows);
}

/* One stage's per-layer costs and its blocks' sizes (one shard's heads). */
struct ring_costs {
    struct kvr_stage_cost sc[KVR_MAX_GPUS];
    double merge[KVR_MAX_GPUS], finish[KVR_MAX_GPUS], pack[KVR_MAX_GPUS];
    /* what block b carries on hop h (K/V, or Q; kvr_trim.h: trimmed by a window) */
    double hop_bytes[KVR_MAX_GPUS][KVR_MAX_GPUS], most_hop_rows;
    /* pass-Q: the rows of b's queries that i attends (0: none, nothing computed or sent back),
     * their partial output and LSE (fp32) and their merge */
    uint64_t q_rows[KVR_MAX_GPUS][KVR_MAX_GPUS];
    double partial_bytes[KVR_MAX_GPUS][KVR_MAX_GPUS], q_merge[KVR_MAX_GPUS][KVR_MAX_GPUS];
    double attn[KVR_MAX_GPUS][KVR_MAX_GPUS]; /* queries of i against keys of k */
    bool skip[KVR_MAX_GPUS][KVR_MAX_GPUS];   /* pass-KV: i sees no key of k's block */
};

/* The rows each block carries on each hop and what each receiver attends (kvr_trim.h); the
 * attention op of i's queries (pass-Q: the rows of them that k attends) against k's keys
 * (pass-KV: the rows of them that i attends). */
static void ring_trim(struct kvr_sim *sim, const struct kvr_plan *plan, const struct kvr_stages *S,
                      struct ring_costs *rc, double kvb, double q_row, double o_row)
{
    const struct kvr_model *m = &S->part;
    const struct kvr_gpu *g = &sim->machine->gpu;
    const int n = S->n;
    bool q = plan->ring_pass == KVR_RING_PASS_Q;
    rc->most_hop_rows = n > 1 ? 0 : (double)sim->res->rank[0].tokens; /* one stage: no hops */
    for (int b = 0; b < n; b++)
        for (int h = 0; h + 1 < n; h++) {
            uint64_t pos[2], rows[2], r;
            kvr_trim_ring_kv(m, plan->ctx, n, b, h, n - 1, pos, rows);
            r = q ? kvr_trim_ring_q(m, plan->ctx, n, b, h, n - 1) : rows[0] + rows[1];
            rc->hop_bytes[b][h] = (double)r * (q ? q_row : kvb);
            rc->most_hop_rows = (double)r > rc->most_hop_rows ? (double)r : rc->most_hop_rows;
        }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            uint64_t pairs = zigzag_pairs(plan->ctx, n, i, k, model_window(m)), pos[2], rows[2];
            uint64_t nq = sim->res->rank[i * S->t].tokens, nk = sim->res->rank[k * S->t].tokens;
            int h = ((k - i) % n + n) % n - 1; /* pass-Q: i's queries reach k on hop h */
            rc->q_rows[i][k] = i == k ? nq : kvr_trim_ring_q(m, plan->ctx, n, i, h, h + 1);
            if (q) nq = rc->q_rows[i][k];
            h = ((i - k) % n + n) % n - 1; /* pass-KV: k's keys reach i on hop h */
            if (i != k) kvr_trim_ring_kv(m, plan->ctx, n, k, h, h + 1, pos, rows);
            if (i != k && !q) nk = rows[0] + rows[1];
            rc->skip[i][k] = i != k && kvr_trim_active(m, plan->ctx) && !(rows[0] + rows[1]);
            rc->attn[i][k] = pairs ? kvr_cost_attn_block_s(m, g, nq, nk, pairs) : 0;
            rc->partial_bytes[i][k] = (double)rc->q_rows[i][k] * o_row;
            rc->q_merge[i][k] =
                elementwise_s(g, (double)rc->q_rows[i][k], 3.0 * (double)rc->q_rows[i][k] * o_row);
        }
}

static void ring_costs(struct kvr_sim *sim, const struct kvr_plan *plan, const struct kvr_stages *S,
                       struct ring_costs *rc)
{
    const struct kvr_model *m = &S->part;
    const struct kvr_gpu *g = &sim->machine->gpu;
    double kvb = (double)kvr_model_kv_bytes_per_token_layer(m);
    double elem = kvb / (2.0 * m->n_kv_heads * m->head_dim), qw = (double)m->n_heads * m->head_dim;
    for (int i = 0; i < S->n; i++) {
        double n = (double)sim->res->rank[i * S->t].tokens;
        kvr_stage_cost(sim, S, (uint64_t)n, &rc->sc[i]);
        rc->merge[i] = elementwise_s(g, n, 3 * n * (qw + m->n_heads) * 4);
        rc->finish[i] = elementwise_s(g, n, n * qw * (4 + elem));
        rc->pack[i] = elementwise_s(g, n, 2 * n * qw * elem);
    }
    ring_trim(sim, plan, S, rc, kvb, qw * elem, (qw + m->n_heads) * 4);
}

/* The n steps of one layer: the block of stage (i-j) mod n in hand at step j; pass-KV attends
 * this stage's queries to it and merges, pass-Q attends its queries to this stage's keys. Shard
 * q of stage i sends to shard q of stage i+1. */
static void ring_steps(struct kvr_sim *sim, struct kvr_clocks *c, const struct kvr_plan *plan,
                       const struct kvr_stages *S, const struct ring_costs *rc, int l,
                       double *link_free)
{
    const int n = S->n, t = S->t;
    bool q = plan->ring_pass == KVR_RING_PASS_Q;
    for (int j = 0; j < n; j++) {
        double enter[KVR_MAX_GPUS], arrive[KVR_MAX_GPUS] = {0};
        memcpy(enter, c->t, sizeof enter);
        for (int h = 0; j + 1 < n && h < t; h++)
            for (int i = 0; i < n; i++) {
                int b = ((i - j) % n + n) % n, x = i * t + h, to = (i + 1) % n * t + h;
                double start = enter[x] > enter[to] ? enter[x] : enter[to];
                if (rc->hop_bytes[b][j] > 0) /* a block no one ahead sees is not sent */
                    arrive[to] = kvr_sim_send_what(sim, &link_free[x], x, to, l, start,
                                                   rc->hop_bytes[b][j], true, q ? "q" : "kv");
            }
        for (int r = 0; r < plan->p; r++) {
            int i = r / t, b = ((i - j) % n + n) % n;
            if (q ? !rc->q_rows[b][i] : rc->skip[i][b]) continue; /* nothing it sees */
            kvr_sim_compute(sim, c, r, l, "attn", q ? rc->attn[b][i] : rc->attn[i][b]);
            if (j > 0 && !q) kvr_sim_compute(sim, c, r, l, "merge", rc->merge[i]);
        }
        for (int r = 0; j + 1 < n && r < plan->p; r++) {
            int nx = (r / t + 1) % n * t + r % t;
            double done = arrive[r] > arrive[nx] ? arrive[r] : arrive[nx];
            kvr_sim_wait_until(sim, c, r, l, done);
        }
    }
}

/* pass-Q: every partial back to its owner in n-1 rounds; in round j stage i sends the partial
 * of block i-j to its owner and receives its own from stage i+j (one group, shard to shard),
 * each transfer once both ends are in the round, at full speed (nothing computes meanwhile); a
 * rank leaves the round when its send and its receive are done, merges what it received, and
 * enters the next. */
static void ring_return(struct kvr_sim *sim, struct kvr_clocks *c, const struct kvr_plan *plan,
                        const struct kvr_stages *S, const struct ring_costs *rc, int l,
                        double *link_free)
{
    const int n = S->n, t = S->t;
    double sent[KVR_MAX_GPUS];
    for (int j = 1; j < n; j++) {
        for (int h = 0; h < t; h++)
            for (int i = 0; i < n; i++) {
                int b = ((i - j) % n + n) % n, x = i * t + h, to = b * t + h;
                double start = c->t[x] > c->t[to] ? c->t[x] : c->t[to];
                sent[x] = rc->q_rows[b][i]
                              ? kvr_sim_send_what(sim, &link_free[x], x, to, l, start,
                                                  rc->partial_bytes[b][i], false, "out")
                              : 0; /* i attended none of b's queries */
            }
        for (int r = 0; r < plan->p; r++) {
            int from = (r / t + j) % n;
            double got = sent[from * t + r % t];
            kvr_sim_wait_until(sim, c, r, l, sent[r] > got ? sent[r] : got);
            if (rc->q_rows[r / t][from])
                kvr_sim_compute(sim, c, r, l, "merge", rc->q_merge[r / t][from]);
        }
    }
}

void kvr_sim_ring(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    struct kvr_stages S;
    kvr_sim_stages(sim, plan, &S);
    static _Thread_local struct ring_costs rc;
    double link_free[KVR_MAX_GPUS] = {0};
    struct kvr_clocks c = {{0}};
    for (int r = 0; r < plan->p; r++) {
        uint64_t lo[2], hi[2];
        kvr_zigzag_chunks(plan->ctx, S.n, r / S.t, lo, hi);
        uint64_t n = hi[0] - lo[0] + hi[1] - lo[1];
        sim->res->rank[r].tokens = n;
        kvr_sim_compute(sim, &c, r, -1, "embed", kvr_cost_embed_s(m, g, n));
    }
    sim->res->ring_pass = plan->ring_pass;
    ring_costs(sim, plan, &S, &rc);
    kv_held(sim, plan, &S, rc.most_hop_rows);
    bool q = plan->ring_pass == KVR_RING_PASS_Q;
    for (int l = 0; l < (int)m->n_layers; l++) {
        for (int r = 0; r < plan->p; r++) {
            kvr_sim_compute(sim, &c, r, l, "pre", rc.sc[r / S.t].pre);
            if (q) kvr_sim_compute(sim, &c, r, l, "pack", rc.pack[r / S.t]);
        }
        ring_steps(sim, &c, plan, &S, &rc, l, link_free);
        if (q) ring_return(sim, &c, plan, &S, &rc, l, link_free);
        /* the output written out, then the rest of the layer: the executor's "post" */
        for (int i = 0; i < S.n; i++)
            kvr_sim_stage_post(sim, &c, &S, &rc.sc[i], i, l, sim->res->rank[i * S.t].tokens,
                               rc.finish[i]);
    }
    kvr_sim_finish(sim, &c, plan, 0); /* rank 0 holds the last chunk, so the last token */
}
