/* Sliding-window trimming of what tsp, tsp-causal, ring-pass and ring move (#17,
 * sim/kvr_trim.h), Mistral-7B-v0.1 (W = 4096) at 32k on 8 GPUs, against bytes derived by hand
 * (sim/README.md, "Sliding-window attention"); and the window-free bytes unchanged. K/V of a
 * token and layer: 2 x 8 KV heads x 128 x 2 B = 4096 B; queries 32 x 128 x 2 = 8192 B; a
 * partial output with its LSEs (fp32) 32 x (128 + 1) x 4 = 16512 B; 32 layers.
 *
 * tsp, tsp-causal, ring-pass (even chunks of 4096 = W): rank i >= 1 sees the 4095 positions
 * before its chunk, all in rank i-1's: 7 x 4095 x 4096 = 117,411,840 B a layer (ring-pass: one
 * hop each, its later hops empty), 3,757,178,880 B in all; rank i keeps 4096 + min(4096 i, 4095)
 * tokens (rank 0 4096: 536,870,912 B; rank 7 8191: 1,073,610,752 B).
 *
 * ring (zig-zag, 16 chunks of c = 2048; rank k holds chunks k and 15-k; W - 1 = 2c - 1, so a
 * query chunk sees all of the chunk before it and the last c - 1 rows of the one before that).
 * pass-KV, block k's hops 0..6 (receiver of hop h: rank k+h+1; chunk k is needed by the
 * holders of chunks k+1 (c rows) and k+2 (c-1), chunk 15-k by ranks k-1 (c) and k-2 (c-1), the
 * last two on the way):
 *   k = 0      hop 0 c, hop 1 c-1, then nothing                 2c - 1
 *   k = 1..5   hop 0 2c, hop 1 2c-1, hops 2..6 c (chunk 15-k)   9c - 1 each
 *   k = 6      hop 0 c + c (rank 7 needs c of chunk 6), then c   8c
 *   k = 7      every hop c-1 (rank 6 holds chunk 9) + c          14c - 7
 *   sum 69c - 13 = 141,299 rows x 4096 = 578,760,704 B a layer (whole blocks: 56 x 4096 rows,
 *   939,524,096 B), 18,520,342,528 B in all.
 * pass-Q, block b's queries (chunk b needed by ranks b-1 (all c) and b-2 (the first c-1),
 * chunk 15-b by b+1 (c) and b+2 (c-1)); the prefix of the packed rows travels, chunk b whole
 * once chunk 15-b is needed:
 *   b = 0      hop 0 2c, hop 1 2c-1, then nothing                4c - 1
 *   b = 1..5   2c, 2c-1, then c (for rank b-1)                   9c - 1 each
 *   b = 6      2c (rank 7), then c                               8c
 *   b = 7      every hop c + c-1 (rank 6: the head of chunk 8)   14c - 7
 *   sum 71c - 13 = 145,395 rows x 8192 B; partial outputs back, the rows each rank attended:
 *   b = 0: ranks 1, 2: 2c + 2c-1; b = 1: + rank 0 c: 5c - 1; b = 2..5: 2c + 2c-1 + c + c-1 =
 *   6c - 2; b = 6: rank 7 2c, ranks 5, 4: c, c-1; b = 7: rank 6 2c-1, rank 5 c-1: 40c - 13 =
 *   81,907 rows x 16512 B; 2,543,524,224 B a layer (5,666,504,704 whole), 81,392,775,168 in all.
 * kvr (even chunks), every hand-off mode: the halo's 117,411,840 B a layer (whole, streamed:
 * each link i -> i+1 the rows ranks i+1.. see; direct: each rank its own).
 * tsp-paper is the paper's baseline as it ran: its gather is not trimmed. */
#include <string.h>

#include "kvr_sim.h"
#include "tap.h"

static struct kvr_machine mach;
static enum kvr_kv_forward fwd = KVR_FWD_WHOLE; /* kvr's hand-off */

static double bytes_of(const char *model, enum kvr_scheme s, enum kvr_ring_pass rp, uint32_t ctx,
                       struct kvr_sim_result *r)
{
    const struct kvr_model *m = kvr_model_preset_find(model);
    struct kvr_plan plan = {.scheme = s, .p = 8, .ctx = ctx, .ring_pass = rp, .kv_forward = fwd};
    if (s == KVR_SCHEME_RING)
        kvr_plan_zigzag(&plan);
    else
        kvr_plan_even(&plan);
    struct kvr_sim *sim;
    enum kvr_status st = m ? kvr_sim_open(m, &mach, &sim) : KVR_ERR_INPUT;
    if (!st) st = kvr_sim_run(sim, &plan, r, NULL), kvr_sim_free(sim);
    return st ? -1 : r->bytes_sent_total;
}

int main(void)
{
    kvr_machine_resolve("h200-nvlink", &mach);
    struct kvr_sim_result r;
    const double L = 32, c = 2048;
    is_dbl(bytes_of("mistral-7b", KVR_SCHEME_TSP, 0, 32768, &r), L * 7 * 4095 * 4096, 0,
           "mistral-7b 32k p 8, tsp: a halo of 7 x 4095 tokens a layer, 3,757,178,880 B");
    is_dbl(r.rank[0].kv_bytes, 536870912.0, 0, "  rank 0 keeps its 4096 tokens");
    is_dbl(r.rank[7].kv_bytes, 1073610752.0, 0, "  rank 7 keeps 4096 + 4095 tokens");
    is_dbl(bytes_of("mistral-7b", KVR_SCHEME_TSP_CAUSAL, 0, 32768, &r), 3757178880.0, 0,
           "mistral-7b 32k p 8, tsp-causal: the same halo");
    is_dbl(bytes_of("mistral-7b", KVR_SCHEME_RING_PASS, 0, 32768, &r), 3757178880.0, 0,
           "mistral-7b 32k p 8, ring-pass: one hop of 4095 tokens per rank, the rest empty");
    is_dbl(r.rank[7].kv_bytes, 1073610752.0, 0, "  rank 7 keeps 4096 + 4095 tokens");
    is_dbl(bytes_of("mistral-7b", KVR_SCHEME_RING, KVR_RING_PASS_KV, 32768, &r),
           L * (69 * c - 13) * 4096, 0,
           "mistral-7b 32k p 8, ring pass-KV: 69c - 13 rows a layer, 18,520,342,528 B");
    is_dbl(bytes_of("mistral-7b", KVR_SCHEME_RING, KVR_RING_PASS_Q, 32768, &r),
           L * ((71 * c - 13) * 8192 + (40 * c - 13) * 16512), 0,
           "mistral-7b 32k p 8, ring pass-Q: 71c - 13 query rows and 40c - 13 partials a layer");
    is_dbl(bytes_of("mistral-7b", KVR_SCHEME_TSP_PAPER, 0, 32768, &r), L * 56 * 4096 * 16384, 0,
           "mistral-7b 32k p 8, tsp-paper: the paper's all-gather of expanded K/V, untrimmed");
    /* kvr, even chunks: every hand-off mode moves what the ranks see, the halo's bytes */
    for (fwd = KVR_FWD_WHOLE; fwd <= KVR_FWD_DIRECT; fwd++) {
        is_dbl(bytes_of("mistral-7b", KVR_SCHEME_KVR, 0, 32768, &r), 3757178880.0, 0,
               "mistral-7b 32k p 8, kvr %s: 7 x 4095 tokens a layer", kvr_kv_forward_name(fwd));
        is_dbl(r.rank[7].kv_bytes, 1073610752.0, 0, "  rank 7 keeps 4096 + 4095 tokens");
        is_dbl(bytes_of("llama-3.1-8b", KVR_SCHEME_KVR, 0, 32768, &r), L * 28 * 4096 * 4096, 0,
               "llama-3.1-8b 32k p 8, kvr %s: sum of S_i = 28 x 4096 tokens a layer",
               kvr_kv_forward_name(fwd));
    }
    fwd = KVR_FWD_WHOLE;
    /* window-free: Llama-3.1-8B has Mistral's K/V and query widths, and Mistral at 4096 tokens
     * (W = ctx) is not trimmed either: the all-gathers and whole blocks of before */
    const double whole = L * 56 * 4096 * 4096;
    is_dbl(bytes_of("llama-3.1-8b", KVR_SCHEME_TSP, 0, 32768, &r), whole, 0,
           "llama-3.1-8b 32k p 8, tsp: the all-gather, 56 x 4096 tokens a layer");
    is_dbl(r.rank[0].kv_bytes, L * 32768 * 4096, 0, "  every rank keeps all 32k tokens");
    is_dbl(bytes_of("llama-3.1-8b", KVR_SCHEME_TSP_CAUSAL, 0, 32768, &r), whole, 0,
           "llama-3.1-8b, tsp-causal: the same");
    is_dbl(bytes_of("llama-3.1-8b", KVR_SCHEME_RING_PASS, 0, 32768, &r), whole, 0,
           "llama-3.1-8b, ring-pass: 7 hops of whole blocks");
    is_dbl(bytes_of("llama-3.1-8b", KVR_SCHEME_RING, KVR_RING_PASS_KV, 32768, &r), whole, 0,
           "llama-3.1-8b, ring pass-KV: whole blocks");
    is_dbl(bytes_of("llama-3.1-8b", KVR_SCHEME_RING, KVR_RING_PASS_Q, 32768, &r),
           L * 56 * 4096 * (8192 + 16512), 0,
           "llama-3.1-8b, ring pass-Q: whole blocks and partials");
    is_dbl(bytes_of("mistral-7b", KVR_SCHEME_TSP, 0, 4096, &r), L * 56 * 512 * 4096, 0,
           "mistral-7b at 4096 tokens (W = ctx), tsp: the all-gather");
    is_dbl(bytes_of("mistral-7b", KVR_SCHEME_RING, KVR_RING_PASS_KV, 4096, &r), L * 56 * 512 * 4096,
           0, "mistral-7b at 4096 tokens, ring pass-KV: whole blocks");
    is_dbl(bytes_of("mistral-7b", KVR_SCHEME_RING_PASS, 0, 4096, &r), L * 56 * 512 * 4096, 0,
           "mistral-7b at 4096 tokens, ring-pass: whole blocks");
    return tap_done();
}
