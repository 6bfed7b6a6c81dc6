/* kvr (KV-Runahead): rank i computes pre; it hands the cache on to the later ranks in the
 * plan's mode (kvr_scheme.h, enum kvr_kv_forward), waits for the keys [0, S_{i-1}) if they are
 * late, then attends its c_i queries to S_i keys and computes post.
 *   whole     once it has its K/V and [0, S_{i-1}) from rank i-1, it sends [0, S_i) to i+1;
 *   streamed  every piece (one rank's chunk of the layer) goes on to i+1 as soon as rank i has
 *             it: at layer 0 its own chunk first, then the upstream pieces as they arrive; at
 *             later layers the upstream pieces (received while it computed) first, then its
 *             own (the executor's order on one NCCL stream, kvr_dist_kvr.c);
 *   direct    its own chunk goes to every later rank, nearest first.
 * Every transfer is asynchronous beside compute (the overlap cap). A rank's outgoing transfers
 * share its port: they leave one at a time, in the order above, each at the link's speed.
 * Over a layout's stages (kvr_layout.h) "rank i" is stage i, and shard j of stage i hands its
 * heads' KV to shard j of the later stages: t chains side by side, each stage's post phase with
 * its TP all-reduces (kvr_sim_stage_post). With t = 1 every loop is the plain scheme's. */
#include "kvr_cost.h"
#include "kvr_sim_int.h"
#include "kvr_trim.h"

struct chain {
    double kvb;                               /* bytes of one shard's token K and V, one layer */
    int t;                                    /* shards per stage */
    double out_free[KVR_MAX_GPUS];            /* when each rank's outgoing port is free */
    double arrive[KVR_MAX_GPUS];              /* whole: when [0, S_{i-1}) is at rank i */
    double piece[KVR_MAX_GPUS][KVR_MAX_GPUS]; /* streamed, direct: stage k's piece at rank r */
};

/* Shard j of stage i sends `tokens` of K/V to shard j of stage k. */
static double chain_send(struct kvr_sim *sim, struct chain *ch, int i, int k, int j, int l,
                         double ready, double tokens)
{
    int r = i * ch->t + j;
    return kvr_sim_send(sim, &ch->out_free[r], r, k * ch->t + j, l, ready, tokens * ch->kvb, true);
}

/* When every piece of [0, S_{i-1}) is at rank r (stage i). */
static double all_pieces(const struct chain *ch, int r, int i)
{
    double t = 0;
    for (int k = 0; k < i; k++) t = ch->piece[r][k] > t ? ch->piece[r][k] : t;
    return t;
}

/* Tokens of stage k's piece that stages [to, to_end) see: the whole piece without a window
 * (kvr_trim.h; streamed: the stages from the receiver on, direct: the receiver). */
static double piece_rows(const struct kvr_sim *sim, const struct kvr_plan *plan,
                         const uint64_t *start, int k, int to, int to_end)
{
    uint64_t lo;
    return (double)kvr_trim_keys(sim->model, plan->ctx, start[k], start[k + 1], start[to],
                                 start[to_end], &lo);
}

/* The piece of stage k from shard j of stage i to stage `to`, `rows` tokens, not before
 * `ready`: its arrival, or 0 when a window left nothing of it to send. */
static double piece_send(struct kvr_sim *sim, struct chain *ch, int i, int to, int j, int l,
                         double ready, double rows)
{
    return rows > 0 ? chain_send(sim, ch, i, to, j, l, ready, rows) : 0;
}

/* Shard j of stage i's hand-off at layer l, its K/V computed at `ready`; returns when its keys
 * are in. n stages; start[] the stages' boundaries. */
static double hand_off(struct kvr_sim *sim, struct chain *ch, const struct kvr_plan *plan, int n,
                       int i, int j, int l, double ready, const uint64_t *start)
{
    const int t = ch->t, r = i * t + j, nx = (i + 1) * t + j;
    if (plan->kv_forward == KVR_FWD_WHOLE) {
        double have = i > 0 && ch->arrive[r] > ready ? ch->arrive[r] : ready;
        /* with a sliding window W only what later ranks can still attend goes on:
         * [S_i - (W-1), S_i) (exec/kvr_dist_kvr.c's whole hand-off sends the same) */
        double send = (double)(start[i + 1] - kvr_window_first(sim->model, start[i + 1]));
        if (i + 1 < n) ch->arrive[nx] = chain_send(sim, ch, i, i + 1, j, l, have, send);
        return i > 0 ? ch->arrive[r] : ready;
    }
    if (plan->kv_forward == KVR_FWD_DIRECT) {
        for (int k = i + 1; k < n; k++)
            ch->piece[k * t + j][i] =
                piece_send(sim, ch, i, k, j, l, ready, piece_rows(sim, plan, start, i, k, k + 1));
        return all_pieces(ch, r, i);
    }
    if (i + 1 < n) { /* streamed: stage i-1 sent its pieces in the order stage i forwards them */
        double own = piece_rows(sim, plan, start, i, i + 1, n);
        if (l == 0) ch->piece[nx][i] = piece_send(sim, ch, i, i + 1, j, l, ready, own);
        for (int q = 0; q < i; q++) {
            int k = l == 0 ? i - 1 - q : q;
            ch->piece[nx][k] = piece_send(sim, ch, i, i + 1, j, l, ch->piece[r][k],
                                          piece_rows(sim, plan, start, k, i + 1, n));
        }
        if (l > 0) ch->piece[nx][i] = piece_send(sim, ch, i, i + 1, j, l, ready, own);
    }
    return all_pieces(ch, r, i);
}

/* Each stage's tokens (on every shard), costs and embedding; the KV each rank keeps. */
static void chain_setup(struct kvr_sim *sim, const struct kvr_plan *plan,
                        const struct kvr_stages *S, struct kvr_clocks *c, struct kvr_stage_cost *sc,
                        double *attn, uint64_t *start)
{
    const struct kvr_model *m = sim->model;
    const struct kvr_gpu *g = &sim->machine->gpu;
    start[0] = 0;
    for (int i = 0; i < S->n; i++) {
        uint64_t n = plan->tokens[i];
        kvr_stage_cost(sim, S, n, &sc[i]);
        attn[i] = kvr_cost_attn_s(&S->part, g, start[i], n, KVR_MASK_CAUSAL);
        start[i + 1] = start[i] + n;
        /* rank i keeps the cache of [0, S_i); with a sliding window what it received,
         * [first(S_{i-1}), S_{i-1}), and its own chunk (every mode hands on only those rows) */
        uint64_t first = kvr_window_first(m, start[i]);
        for (int j = 0; j < S->t; j++) {
            int r = i * S->t + j;
            sim->res->rank[r].tokens = n;
            sim->kv_tokens[r] = (double)(start[i + 1] - first);
            kvr_sim_compute(sim, c, r, -1, "embed", kvr_cost_embed_s(m, g, n));
        }
    }
}

void kvr_sim_kvr(struct kvr_sim *sim, const struct kvr_plan *plan)
{
    const struct kvr_model *m = sim->model;
    struct kvr_stages S;
    kvr_sim_stages(sim, plan, &S);
    const int n = S.n, t = S.t;
    struct kvr_stage_cost sc[KVR_MAX_GPUS];
    double attn[KVR_MAX_GPUS];
    uint64_t start[KVR_MAX_GPUS + 1];
    static _Thread_local struct chain ch; /* 33 KB: no allocation in the run */
    ch.kvb = (double)kvr_model_kv_bytes_per_token_layer(&S.part);
    ch.t = t;
    for (int r = 0; r < plan->p; r++) ch.out_free[r] = 0;
    struct kvr_clocks c = {{0}};
    chain_setup(sim, plan, &S, &c, sc, attn, start);
    for (int l = 0; l < (int)m->n_layers; l++)
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < t; j++) {
                int r = i * t + j;
                kvr_sim_compute(sim, &c, r, l, "pre", sc[i].pre);
                /* the cache goes on before this rank's own attention */
                double keys = hand_off(sim, &ch, plan, n, i, j, l, c.t[r], start);
                if (i > 0) kvr_sim_wait_until(sim, &c, r, l, keys);
                kvr_sim_compute(sim, &c, r, l, "attn", attn[i]);
            }
            kvr_sim_stage_post(sim, &c, &S, &sc[i], i, l, plan->tokens[i], 0);
        }
    kvr_sim_finish(sim, &c, plan, plan->p - 1);
}
