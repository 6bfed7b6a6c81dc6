/* Exact counts: tiny models derived by hand, presets against published parameter counts,
 * and structural invariants of the attention pair count. */
#include "kvr_config.h"
#include "kvr_counts.h"
#include "fixtures.h"
#include "kvr_tp.h"
#include "tap.h"

static void test_tiny_params(void)
{
    /* embed 10*8 = 80; per layer: norms 2*8 = 16, qkv 8*(8+2*4) = 128, out 8*8 = 64,
     * mlp 3*8*16 = 384 -> 592, two layers 1184; final norm 8; untied head 80. Total 1352. */
    is_u64(kvr_model_param_count(&tiny), 1352, "tiny: params");
    is_u64(kvr_model_weight_bytes(&tiny), 2704, "tiny: weight bytes (bf16)");
    /* K and V of 1 head of 4, 2 bytes each: 2*4*2 = 16 */
    is_u64(kvr_model_kv_bytes_per_token_layer(&tiny), 16, "tiny: KV bytes per token per layer");
}

struct want {
    enum kvr_op op;
    uint64_t flops, weight, act_r, act_w, kv_r, kv_w;
};

/* The embedding reads each distinct row once: a uniformly random prompt of c tokens holds
 * V (1 - (1 - 1/V)^c) distinct ones on average (V = 10: 1.9 of 2 tokens, 9.85 of 40). */
static void test_embed_rows(void)
{
    struct kvr_op_cost c2, c40;
    ok(kvr_op_cost(&tiny, KVR_OP_EMBED, 0, 2, KVR_MASK_CAUSAL, &c2) == KVR_OK &&
           kvr_op_cost(&tiny, KVR_OP_EMBED, 0, 40, KVR_MASK_CAUSAL, &c40) == KVR_OK,
       "embedding costs compute");
    is_u64(c2.weight_bytes, 2 * 8 * 2, "2 tokens of 10: 2 rows of 8 bf16 read");
    is_u64(c40.weight_bytes, 10 * 8 * 2, "40 tokens of 10: the 10 rows once each");
    is_u64(c40.act_write_bytes, 40 * 8 * 2, "40 tokens of 10: 40 rows written");
}

static void test_tiny_ops(void)
{
    /* Chunk c = 2 after prefix s = 3: causal pairs 2*3 + 2*3/2 = 9 per head.
     * Bytes are element counts times 2 (bf16). */
    static const struct want w[] = {
        {KVR_OP_NORM_ATTN, 4 * 2 * 8, 16, 32, 32, 0, 0},
        {KVR_OP_QKV, 2 * 2 * 8 * 16, 256, 32, 2 * 16 * 2, 0, 0}, /* Q, K, V of 2 tokens */
        /* reads Q, K, V and the table; writes Q, K in place and K, V of 2 tokens to the cache */
        {KVR_OP_ROTARY, 3 * 2 * 12, 0, (2 * 16 + 2 * 4) * 2, 2 * 12 * 2, 0, 2 * 2 * 4 * 2},
        {KVR_OP_ATTN_SCORES, 2 * 9 * 8, 0, 2 * 8 * 2, 0, 5 * 4 * 2, 0}, /* K of 5 positions */
        {KVR_OP_ATTN_SOFTMAX, 5 * 9 * 2, 0, 0, 0, 0, 0},
        {KVR_OP_ATTN_PV, 2 * 9 * 8, 0, 0, 2 * 8 * 2, 5 * 4 * 2, 0},
        {KVR_OP_OUT_PROJ, 2 * 2 * 8 * 8, 128, 32, 32, 0, 0},
        {KVR_OP_NORM_MLP, 4 * 2 * 8, 16, 32, 32, 0, 0},
        {KVR_OP_MLP_UP, 2 * 2 * 8 * 32, 512, 32, 128, 0, 0},
        {KVR_OP_MLP_ACT, 5 * 2 * 16, 0, 128, 64, 0, 0},
        {KVR_OP_MLP_DOWN, 2 * 2 * 16 * 8, 256, 64, 32, 0, 0},
        {KVR_OP_RESIDUAL, 2 * 2 * 8, 0, 4 * 16 * 2, 2 * 16 * 2, 0, 0},
        {KVR_OP_FINAL_NORM, 4 * 8, 16, 16, 16, 0, 0},
        {KVR_OP_LM_HEAD, 2 * 8 * 10, 160, 16, 20, 0, 0},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        struct kvr_op_cost c;
        ok(kvr_op_cost(&tiny, w[i].op, 3, 2, KVR_MASK_CAUSAL, &c) == KVR_OK, "%s computes",
           kvr_op_name(w[i].op));
        is_u64(c.flops, w[i].flops, "  %s flops", kvr_op_name(w[i].op));
        is_u64(c.weight_bytes, w[i].weight, "  %s weight bytes", kvr_op_name(w[i].op));
        is_u64(c.act_read_bytes, w[i].act_r, "  %s activation reads", kvr_op_name(w[i].op));
        is_u64(c.act_write_bytes, w[i].act_w, "  %s activation writes", kvr_op_name(w[i].op));
        is_u64(c.kv_read_bytes, w[i].kv_r, "  %s KV reads", kvr_op_name(w[i].op));
        is_u64(c.kv_write_bytes, w[i].kv_w, "  %s KV writes", kvr_op_name(w[i].op));
    }
    struct kvr_op_cost layer, dense;
    kvr_layer_cost(&tiny, 3, 2, KVR_MASK_CAUSAL, &layer);
    /* 64+512+72+144+90+144+256+64+1024+160+512+32 */
    is_u64(layer.flops, 3074, "tiny: layer flops for (s=3, c=2)");
    /* dense block: 2*(3+2) = 10 pairs instead of 9: scores and PV +16 each, softmax +10 */
    kvr_op_cost(&tiny, KVR_OP_ATTN_SCORES, 3, 2, KVR_MASK_DENSE, &dense);
    is_u64(dense.flops, 2 * 10 * 8, "tiny: dense scores count the masked block");
}

static void test_tiny_prefill(void)
{
    /* ctx = 5, causal pairs 15. Per layer linear: norms 2*4*5*8 = 320, qkv 1280, rotary 180,
     * out 640, up 2560, act 400, down 1280, residual 80 -> 6740; attention 240+150+240 = 630.
     * Two layers: 13480 + 1260; final norm 32 and LM head 160 on the last token. */
    struct kvr_prefill_flops pf;
    ok(kvr_prefill_flops(&tiny, 5, KVR_MASK_CAUSAL, &pf) == KVR_OK, "tiny prefill computes");
    is_u64(pf.linear, 13480 + 32 + 160, "tiny prefill: linear flops");
    is_u64(pf.attention, 1260, "tiny prefill: attention flops");
    is_u64(pf.total, 14932, "tiny prefill: total flops");
}

static void test_tiny_falcon(void)
{
    /* tiny (d 8, 2 heads of 4 over 1 KV head: MQA, vocab 10, rotary) as one Falcon layer:
     * LayerNorm, GELU of d_ffn 32, parallel block with one norm, tied, biases on, fp32.
     * embed 80; layer: LN 16, qkv 8*16+16 = 144, out 64+8 = 72, up 8*32+32 = 288,
     * down 32*8+8 = 264 -> 784; final LN 16; tied head 0. Total 880. */
    struct kvr_model f = tiny;
    snprintf(f.name, sizeof f.name, "tiny-falcon");
    f.n_layers = 1, f.d_ffn = 32, f.norm = KVR_NORM_LAYERNORM, f.mlp = KVR_MLP_GELU;
    f.parallel_attn = true, f.block_norms = 1, f.tied_embeddings = true, f.dtype = KVR_DTYPE_FP32;
    f.bias_qkv = f.bias_out = f.bias_mlp = true;
    ok(kvr_model_validate(&f) == KVR_OK, "tiny falcon is valid");
    is_u64(kvr_model_param_count(&f), 880, "tiny falcon: params");
    is_u64(kvr_model_weight_bytes(&f), 3520, "tiny falcon: weight bytes (fp32)");
    struct kvr_op_cost c;
    kvr_op_cost(&f, KVR_OP_NORM_MLP, 0, 4, KVR_MASK_CAUSAL, &c);
    is_u64(c.flops, 0, "one shared norm: no second norm");
    kvr_op_cost(&f, KVR_OP_NORM_ATTN, 0, 4, KVR_MASK_CAUSAL, &c);
    is_u64(c.flops, 7 * 4 * 8, "LayerNorm: 7 flops per element");
    kvr_op_cost(&f, KVR_OP_MLP_UP, 0, 4, KVR_MASK_CAUSAL, &c);
    is_u64(c.flops, 2 * 4 * 8 * 32 + 4 * 32, "GELU up projection with bias");
    kvr_op_cost(&f, KVR_OP_MLP_ACT, 0, 4, KVR_MASK_CAUSAL, &c);
    is_u64(c.flops, 8 * 4 * 32, "GELU: 8 flops per element");
}

static void test_presets(void)
{
    /* Published parameter counts (transformers' num_parameters(), data/README.md). */
    static const struct {
        const char *name;
        uint64_t params;
    } pub[] = {{"llama-7b", 6738415616ull},   {"llama-13b", 13015864320ull},
               {"llama-30b", 32528943616ull}, {"llama-2-70b", 68976648192ull},
               {"llama-3-8b", 8030261248ull}, {"llama-3.1-8b", 8030261248ull},
               {"qwen2-7b", 7615616512ull},   {"mistral-7b", 7241732096ull},
               {"falcon-7b", 6921720704ull}};
    is_u64(kvr_model_preset_count(), 9, "nine presets");
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++) {
        const struct kvr_model *m = kvr_model_preset_find(pub[i].name);
        if (!ok(m != NULL, "preset %s exists", pub[i].name)) continue;
        ok(kvr_model_validate(m) == KVR_OK, "  %s is valid", pub[i].name);
        is_u64(kvr_model_param_count(m), pub[i].params, "  %s parameter count", pub[i].name);
        is_u64(kvr_model_weight_bytes(m), 2 * pub[i].params, "  %s bf16 weight bytes", pub[i].name);
    }
    /* KV bytes: Llama-7B 2*32*128*2 = 16 KiB; Falcon-7B MQA 2*1*64*2 = 256 B (64x smaller). */
    is_u64(kvr_model_kv_bytes_per_token_layer(kvr_model_preset_find("llama-7b")), 16384,
           "llama-7b KV bytes per token per layer");
    is_u64(kvr_model_kv_bytes_per_token_layer(kvr_model_preset_find("falcon-7b")), 256,
           "falcon-7b KV bytes per token per layer");
    is_u64(kvr_model_kv_bytes_per_token_layer(kvr_model_preset_find("llama-2-70b")), 4096,
           "llama-2-70b GQA KV bytes per token per layer");
}

/* data/golden/hf_param_counts.tsv: transformers' num_parameters() for each preset's config,
 * written by scripts/hf_param_counts.py on the GPU machine. */
static void test_reference_framework(void)
{
    char path[512], line[256], name[64];
    snprintf(path, sizeof path, "%s/golden/hf_param_counts.tsv", KVR_SOURCE_DATADIR);
    FILE *f = fopen(path, "r");
    if (!ok(f != NULL, "golden file %s opens", path)) return;
    int rows = 0;
    unsigned long long params;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%63s %llu", name, &params) != 2) continue; /* comment and header */
        const struct kvr_model *m = kvr_model_preset_find(name);
        rows++;
        if (ok(m != NULL, "golden row %s is a preset", name))
            is_u64(kvr_model_param_count(m), params, "  %s: params as transformers reports", name);
    }
    fclose(f);
    is_u64(rows, kvr_model_preset_count(), "every preset has a reference count");
}

static void test_pairs(void)
{
    /* Brute force: pairs (q, k) with q in [s, s+c), k <= q. */
    int all_ok = 1;
    for (uint64_t s = 0; s < 20; s++)
        for (uint64_t c = 0; c < 20; c++) {
            uint64_t n = 0;
            for (uint64_t q = s; q < s + c; q++) n += q + 1;
            all_ok &= kvr_attn_pairs(s, c, KVR_MASK_CAUSAL) == n;
            all_ok &= kvr_attn_pairs(s, c, KVR_MASK_DENSE) == c * (s + c);
        }
    ok(all_ok, "causal pairs equal the brute-force count; dense is c*(s+c)");
    /* Chunks of any partition add up to the monolithic prefill's pairs. */
    uint64_t chunks[] = {6144, 4096, 3072, 3072}, s = 0, sum = 0;
    for (int i = 0; i < 4; i++)
        sum += kvr_attn_pairs(s, chunks[i], KVR_MASK_CAUSAL), s += chunks[i];
    is_u64(sum, kvr_attn_pairs(0, 16384, KVR_MASK_CAUSAL), "partitioned pairs sum to the whole");
}

static void test_limits(void)
{
    const struct kvr_model *big = kvr_model_preset_find("llama-2-70b");
    struct kvr_op_cost c;
    ok(kvr_op_cost(big, KVR_OP_ATTN_SCORES, 0, KVR_MAX_CTX, KVR_MASK_DENSE, &c) == KVR_OK,
       "largest context counts without overflow");
    ok(kvr_op_cost(big, KVR_OP_QKV, 1, KVR_MAX_CTX, KVR_MASK_CAUSAL, &c) == KVR_ERR_RANGE,
       "context beyond the limit is refused");
    like(kvr_error_message(), "exceeds the limit", "  message says why");
    struct kvr_prefill_flops pf;
    ok(kvr_prefill_flops(kvr_model_preset_find("llama-7b"), KVR_MAX_CTX, KVR_MASK_CAUSAL, &pf) ==
           KVR_OK,
       "7B prefill at 4M tokens fits in 64 bits");
    ok(pf.total == pf.linear + pf.attention, "total = linear + attention");
    /* 80 layers * 4 * 8192 * (4M)^2 dense attention FLOPs is about 4.6e19 > 2^64 */
    ok(kvr_prefill_flops(big, KVR_MAX_CTX, KVR_MASK_DENSE, &pf) == KVR_ERR_RANGE,
       "70B dense prefill at 4M tokens overflows and says so");
    like(kvr_error_message(), "overflows", "  overflow message");
}

/* Sliding window (#17): brute force over (i, j) with 0 <= i - j < W, and Mistral-7B at 32k by
 * hand: W(W+1)/2 + (C - W) W = 8,390,656 + 117,440,512 = 125,831,168 pairs per head and layer,
 * attention FLOPs 32 x 125,831,168 x (4 * 4096 + 5 * 32) = 66,616,026,988,544. */
static void test_window(void)
{
    struct kvr_model m = tiny;
    m.sliding_window = 5;
    int bad = 0;
    for (uint64_t s = 0; s < 14; s++)
        for (uint64_t c = 1; c < 14; c++) {
            uint64_t brute = 0, keys_lo = s + c;
            for (uint64_t i = s; i < s + c; i++)
                for (uint64_t j = 0; j <= i; j++)
                    if (i - j < 5) brute++, keys_lo = j < keys_lo ? j : keys_lo;
            bad += kvr_model_attn_pairs(&m, s, c, KVR_MASK_CAUSAL) != brute;
            bad += kvr_model_attn_keys(&m, s, c) != s + c - keys_lo;
        }
    is_u64((uint64_t)bad, 0, "windowed pairs and keys equal the brute-force count (W = 5)");
    const struct kvr_model *mi = kvr_model_preset_find("mistral-7b");
    is_u64(kvr_model_attn_pairs(mi, 0, 32768, KVR_MASK_CAUSAL), 125831168ull,
           "mistral-7b at 32k: W(W+1)/2 + (C-W)W pairs");
    struct kvr_prefill_flops pf;
    kvr_prefill_flops(mi, 32768, KVR_MASK_CAUSAL, &pf);
    is_u64(pf.attention, 66616026988544ull, "mistral-7b at 32k: attention FLOPs by hand");
    m.sliding_window = 0;
    is_u64(kvr_model_attn_pairs(&m, 3, 4, KVR_MASK_CAUSAL), kvr_attn_pairs(3, 4, KVR_MASK_CAUSAL),
           "no window: the causal count");
}

/* Megatron shards: even splits, KV heads replicated past their count, the refusals. */
static void test_tp(void)
{
    struct kvr_model m = {.name = "x", .n_heads = 32, .n_kv_heads = 8, .d_ffn = 100, .vocab = 7};
    struct kvr_model s;
    kvr_tp_shard(&m, 3, 0, &s);
    ok(s.n_heads == 11 && s.n_kv_heads == 3 && s.d_ffn == 34 && s.vocab == 3,
       "shard 0 of 3 gets one more");
    kvr_tp_shard(&m, 16, 15, &s);
    ok(s.n_heads == 2 && s.n_kv_heads == 1, "16 shards of 8 KV heads: one replicated each");
    ok(kvr_tp_check(&m, 4, "--tp") == KVR_OK && kvr_tp_check(&m, 16, "--tp") == KVR_OK,
       "t = 4 and 16 shard 32 heads over 8 KV heads");
    ok(kvr_tp_check(&m, 3, "--tp") == KVR_ERR_INPUT, "t = 3 does not divide 32 heads");
    m.n_kv_heads = 4;
    ok(kvr_tp_check(&m, 8, "--tp") == KVR_OK && kvr_tp_check(&m, 32, "--tp") == KVR_OK,
       "8, 32 over 4 KV heads");
    m.n_kv_heads = 12, m.n_heads = 48;
    ok(kvr_tp_check(&m, 8, "--tp") == KVR_ERR_INPUT,
       "8 neither divides nor is a multiple of 12 KV heads");
    ok(kvr_tp_check(&m, 0, "--tp") == KVR_ERR_INPUT, "t = 0 refused");
    m.n_heads = 32, m.n_kv_heads = 8;
    ok(kvr_tp_head0(&m, 4, 3) == 24 && kvr_tp_kv_head0(&m, 4, 3) == 6,
       "shard 3 of 4: heads 24.., KV heads 6..");
    ok(kvr_tp_head0(&m, 16, 5) == 10 && kvr_tp_kv_head0(&m, 16, 5) == 2,
       "shard 5 of 16: heads 10, 11 on KV head 2");
}

int main(void)
{
    test_tp();
    test_window();
    test_tiny_params();
    test_embed_rows();
    test_tiny_ops();
    test_tiny_prefill();
    test_tiny_falcon();
    test_presets();
    test_reference_framework();
    test_pairs();
    test_limits();
    return tap_done();
}
