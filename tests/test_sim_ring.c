/* The simulator's ring (zig-zag ring attention, pass-KV and pass-Q) against closed forms at
 * p = 2 and invariants: the bytes it moves, more bandwidth never adding time, the overlap cap
 * applying to the overlapped passes only, the zig-zag chunks. */
#include <math.h>
#include <stdlib.h>

#include "kvr_cost.h"
#include "kvr_sim.h"
#include "fixtures.h"
#include "tap.h"
#include "unit_machine.h"

static struct kvr_machine mach; /* large: link matrices */

static enum kvr_status run(const struct kvr_model *m, const struct kvr_machine *h,
                           struct kvr_plan *plan, struct kvr_sim_result *r)
{
    struct kvr_sim *sim;
    enum kvr_status st = kvr_sim_open(m, h, &sim);
    if (!st) st = kvr_plan_check(plan, h);
    if (!st) st = kvr_sim_run(sim, plan, r, NULL);
    kvr_sim_free(sim);
    return st;
}

static struct kvr_plan ring_plan(int p, uint64_t ctx, enum kvr_ring_pass pass)
{
    struct kvr_plan plan = {.scheme = KVR_SCHEME_RING, .p = p, .ctx = ctx, .ring_pass = pass};
    kvr_plan_even(&plan);
    return plan;
}

static void test_zigzag(void)
{
    uint64_t lo[2], hi[2], seen[45] = {0};
    for (int i = 0; i < 4; i++) {
        kvr_zigzag_chunks(45, 4, i, lo, hi);
        for (int h = 0; h < 2; h++)
            for (uint64_t x = lo[h]; x < hi[h]; x++) seen[x]++;
    }
    int once = 1;
    for (int x = 0; x < 45; x++) once &= seen[x] == 1;
    ok(once, "zig-zag on 4 ranks covers 45 tokens once each");
    kvr_zigzag_chunks(45, 4, 0, lo, hi);
    /* 8 chunks of 45: the first 5 of 6 tokens, the last 3 of 5 */
    ok(lo[0] == 0 && hi[0] == 6 && lo[1] == 40 && hi[1] == 45,
       "rank 0 holds chunk 0 [0, 6) and chunk 7 [40, 45): the last token");
    kvr_zigzag_chunks(45, 4, 3, lo, hi);
    ok(lo[0] == 18 && hi[0] == 24 && lo[1] == 24 && hi[1] == 30, "rank 3 holds chunks 3 and 4");
    struct kvr_plan plan = ring_plan(4, 45, KVR_RING_PASS_KV);
    kvr_plan_zigzag(&plan);
    ok(plan.tokens[0] == 11 && plan.tokens[1] == 11 && plan.tokens[2] == 11 && plan.tokens[3] == 12,
       "kvr_plan_zigzag: 11, 11, 11, 12 tokens");
}

/* p = 2, 8 tokens: rank 0 holds [0, 2) and [6, 8), rank 1 [2, 6); 4 tokens each. Their own
 * blocks have 3 + 4 + 3 = 10 causal pairs, the other's 8 (rank 0: chunk 3 against chunks 1 and
 * 2; rank 1: chunks 1 and 2 against chunk 0). Both ranks run the same costs, so per layer:
 *   pass-KV  pre + max(attn(10 pairs), 1 + KV block / 1 B/s) + attn(8) + merge + finish + post
 *   pass-Q   pre + pack + max(attn(10), 1 + Q block) + attn(8) + (1 + partial) + merge + finish
 *            + post
 * TTFT = embed + n_layers x layer + head (rank 0: the last token). The merges, the packing and
 * the finish move bytes only, free on this machine. */
static void test_closed_form_p2(void)
{
    const struct kvr_model *m = &tiny;
    unit_machine(&mach, 2);
    const struct kvr_gpu *g = &mach.gpu;
    double pre = kvr_cost_pre_s(m, g, 4), post = kvr_cost_post_s(m, g, 4);
    double a10 = kvr_cost_attn_block_s(m, g, 4, 4, 10), a8 = kvr_cost_attn_block_s(m, g, 4, 4, 8);
    double kv = 4.0 * kvr_model_kv_bytes_per_token_layer(m);
    double q = 4.0 * m->n_heads * m->head_dim * 2, part = 4.0 * m->n_heads * (m->head_dim + 1) * 4;
    double ends = kvr_cost_embed_s(m, g, 4) + kvr_cost_head_s(m, g);
    double want_kv = ends + m->n_layers * (pre + fmax(a10, 1 + kv) + a8 + post);
    double want_q = ends + m->n_layers * (pre + fmax(a10, 1 + q) + a8 + 1 + part + post);
    struct kvr_sim_result r;
    struct kvr_plan plan = ring_plan(2, 8, KVR_RING_PASS_KV);
    ok(run(m, &mach, &plan, &r) == KVR_OK, "ring pass-KV, p = 2, runs");
    is_dbl(r.ttft_s, want_kv, 1e-9,
           "pass-KV TTFT = embed + layers x (pre + max(attn, link) + ...)");
    is_dbl(r.bytes_sent_total, m->n_layers * 2 * kv, 1e-12, "pass-KV: each block crosses once");
    ok(r.rank[0].tokens == 4 && r.rank[1].tokens == 4, "4 tokens each");
    is_dbl(r.rank[0].end_s, want_kv, 1e-9, "rank 0 ends last: it computes the logits");
    plan = ring_plan(2, 8, KVR_RING_PASS_Q);
    ok(run(m, &mach, &plan, &r) == KVR_OK, "ring pass-Q, p = 2, runs");
    is_dbl(r.ttft_s, want_q, 1e-9, "pass-Q TTFT adds the partials' way back");
    is_dbl(r.bytes_sent_total, m->n_layers * 2 * (q + part), 1e-12,
           "pass-Q: queries out, partial outputs back");
}

/* On 4 GPUs of a real profile: the bytes each pass moves; more bandwidth never adds time; the
 * overlap cap slows the passes that overlap (pass-KV's and pass-Q's steps), not the return. */
static void test_invariants(void)
{
    const struct kvr_model *m = kvr_model_preset_find("llama-7b");
    struct kvr_sim_result r;
    for (int k = 0; k < 2; k++) {
        enum kvr_ring_pass pass = k ? KVR_RING_PASS_Q : KVR_RING_PASS_KV;
        const char *name = kvr_ring_pass_name(pass);
        kvr_machine_resolve("a100-nvlink", &mach);
        struct kvr_plan plan = ring_plan(4, 16384, pass);
        ok(run(m, &mach, &plan, &r) == KVR_OK, "pass-%s on 4 GPUs runs", name);
        double per_token = k ? (double)m->n_heads * m->head_dim * 2
                             : (double)kvr_model_kv_bytes_per_token_layer(m);
        double want = m->n_layers * 3.0 * 16384 * per_token; /* p - 1 steps of every block */
        if (k) want += m->n_layers * 3.0 * 16384 * m->n_heads * (m->head_dim + 1) * 4;
        is_dbl(r.bytes_sent_total, want, 1e-12, "pass-%s moves (p-1) x the context's blocks", name);
        double t = r.ttft_s, prev = INFINITY;
        int monotone = 1;
        for (double bw = 1e9; bw <= 1e12; bw *= 4) {
            kvr_machine_resolve("a100-nvlink", &mach);
            mach.intra_Bps = bw;
            kvr_machine_build_links(&mach);
            monotone &= run(m, &mach, &plan, &r) == KVR_OK && r.ttft_s <= prev * (1 + 1e-12);
            prev = r.ttft_s;
        }
        ok(monotone, "pass-%s: more bandwidth never adds time", name);
        kvr_machine_resolve("a100-nvlink", &mach);
        mach.overlap_Bps = 1e9;
        double capped = run(m, &mach, &plan, &r) ? NAN : r.ttft_s;
        ok(capped > t * 1.2,
           "pass-%s: a 1 GB/s overlap cap slows the overlapped passes (%.3g -> %.3g s)", name, t,
           capped);
    }
    kvr_machine_resolve("a100-nvlink", &mach);
    struct kvr_plan kvp = ring_plan(8, 65536, KVR_RING_PASS_KV), qp = kvp;
    qp.ring_pass = KVR_RING_PASS_Q;
    double tk = run(m, &mach, &kvp, &r) ? NAN : r.ttft_s;
    double tq = run(m, &mach, &qp, &r) ? NAN : r.ttft_s;
    ok(tk > 0 && tq > 0, "both passes at 64k on 8 GPUs (%.4g s pass-KV, %.4g s pass-Q)", tk, tq);
}

/* auto: the faster of the two passes, and it says which; with a 10 GB/s overlap cap the ring is
 * link-bound and pass-Q (half the bytes of Llama-7B's K/V) wins for Llama-7B, so both answers
 * occur. */
static void test_auto(void)
{
    const char *models[] = {"llama-7b", "falcon-7b"};
    uint64_t ctxs[] = {16384, 65536};
    int n_q = 0;
    for (int k = 0; k < 8; k++) {
        kvr_machine_resolve("a100-nvlink", &mach);
        if (k >= 4) mach.overlap_Bps = 10e9;
        const struct kvr_model *m = kvr_model_preset_find(models[k % 2]);
        struct kvr_plan kv = ring_plan(4, ctxs[k / 2 % 2], KVR_RING_PASS_KV), q = kv, a = kv;
        q.ring_pass = KVR_RING_PASS_Q, a.ring_pass = KVR_RING_PASS_AUTO;
        struct kvr_sim_result r;
        double tk = run(m, &mach, &kv, &r) ? NAN : r.ttft_s;
        double tq = run(m, &mach, &q, &r) ? NAN : r.ttft_s;
        enum kvr_status st = run(m, &mach, &a, &r);
        n_q += !st && r.ring_pass == KVR_RING_PASS_Q;
        ok(!st && r.ttft_s == fmin(tk, tq) &&
               r.ring_pass == (tq < tk ? KVR_RING_PASS_Q : KVR_RING_PASS_KV),
           "auto, %s at %llu%s: the faster pass (%s; kv %.4g s, q %.4g s)", models[k % 2],
           (unsigned long long)kv.ctx, k >= 4 ? ", overlap cap 10 GB/s" : "",
           kvr_ring_pass_name(r.ring_pass), tk, tq);
    }
    ok(n_q > 0, "auto picks pass-Q somewhere (%d of 8)", n_q);
}

int main(void)
{
    test_zigzag();
    test_closed_form_p2();
    test_invariants();
    test_auto();
    return tap_done();
}
