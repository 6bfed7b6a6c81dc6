/* The executor on the ref backend: chunked prefill equals monolithic prefill (logits and the
 * whole KV cache), causality, the first layer's K and V against a closed form, the
 * safetensors loader against seeded weights, and every kind of bad weight file. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "exec_models.h"
#include "kvr_rng.h"
#include "kvr_weights.h"
#include "st_write.h"
#include "tap.h"

static float *tensor_rand(const struct kvr_model *m, enum kvr_tensor t, uint32_t layer)
{
    float *v = malloc(kvr_tensor_numel(m, t) * sizeof *v);
    kvr_tensor_fill_random(m, t, layer, 7, v);
    return v;
}

/* Rows [first, first + n) of a [rows][cols] tensor (cols = 1 for vectors). */
static void add_rows(struct st_writer *w, const char *name, int bf16, const float *v,
                     uint64_t first, uint64_t n, uint64_t cols, int vec)
{
    st_add(w, name, bf16, n, vec ? 0 : cols, v + first * cols);
}

static void add_whole(struct st_writer *w, const struct kvr_model *m, const char *name, int bf16,
                      enum kvr_tensor t, uint32_t layer)
{
    struct kvr_tensor_shape sh = kvr_tensor_shape(m, t);
    float *v = tensor_rand(m, t, layer);
    if (sh.rows == 1)
        st_add(w, name, bf16, sh.cols, 0, v);
    else
        st_add(w, name, bf16, sh.rows, sh.cols, v);
    free(v);
}

static void write_llama(const struct kvr_model *m, int bf16, const char *path, const char *skip)
{
    struct st_writer w;
    st_begin(&w);
    char n[160];
    uint64_t d = m->d_model, q = m->n_heads * m->head_dim, kv = m->n_kv_heads * m->head_dim;
    for (uint32_t l = 0; l < m->n_layers; l++) {
#define NAME(fmt) (snprintf(n, sizeof n, "model.layers.%u." fmt, l), n)
        add_whole(&w, m, NAME("input_layernorm.weight"), bf16, KVR_T_ATTN_NORM_W, l);
        add_whole(&w, m, NAME("post_attention_layernorm.weight"), bf16, KVR_T_MLP_NORM_W, l);
        float *qkv = tensor_rand(m, KVR_T_WQKV, l), *up = tensor_rand(m, KVR_T_WUP, l);
        if (!skip || strcmp(skip, "k_proj"))
            add_rows(&w, NAME("self_attn.k_proj.weight"), bf16, qkv, q, kv, d, 0);
        add_rows(&w, NAME("self_attn.q_proj.weight"), bf16, qkv, 0, q, d, 0);
        add_rows(&w, NAME("self_attn.v_proj.weight"), bf16, qkv, q + kv, kv, d, 0);
        add_rows(&w, NAME("mlp.gate_proj.weight"), bf16, up, 0, m->d_ffn, d, 0);
        add_rows(&w, NAME("mlp.up_proj.weight"), bf16, up, m->d_ffn, m->d_ffn, d, 0);
        free(qkv), free(up);
        add_whole(&w, m, NAME("self_attn.o_proj.weight"), bf16, KVR_T_WO, l);
        add_whole(&w, m, NAME("mlp.down_proj.weight"), bf16, KVR_T_WDOWN, l);
#undef NAME
    }
    add_whole(&w, m, "model.embed_tokens.weight", bf16, KVR_T_EMBED, 0);
    add_whole(&w, m, "model.norm.weight", bf16, KVR_T_FINAL_NORM_W, 0);
    add_whole(&w, m, "lm_head.weight", bf16, KVR_T_LM_HEAD, 0);
    st_finish(&w, path);
}

/* Falcon's fused QKV, grouped per KV head: its query heads, its K, its V. */
static void add_falcon_qkv(struct st_writer *w, const struct kvr_model *m, const char *name,
                           enum kvr_tensor t, uint32_t l)
{
    float *v = tensor_rand(m, t, l);
    uint64_t unit = t == KVR_T_WQKV ? m->d_model : 1, blk = m->head_dim * unit;
    uint32_t G = m->n_heads / m->n_kv_heads, out = 0;
    float *g = malloc(kvr_tensor_numel(m, t) * sizeof *g);
    for (uint32_t k = 0; k < m->n_kv_heads; k++) {
        for (uint32_t j = 0; j < G; j++) memcpy(g + blk * out++, v + blk * (k * G + j), blk * 4);
        memcpy(g + blk * out++, v + blk * (m->n_heads + k), blk * 4);
        memcpy(g + blk * out++, v + blk * (m->n_heads + m->n_kv_heads + k), blk * 4);
    }
    if (unit == 1)
        st_add(w, name, 0, kvr_qkv_width(m), 0, g);
    else
        st_add(w, name, 0, kvr_qkv_width(m), unit, g);
    free(v), free(g);
}

static void write_falcon(const struct kvr_model *m, const char *path)
{
    struct st_writer w;
    st_begin(&w);
    char n[160];
    bool two = m->block_norms == 2;
    for (uint32_t l = 0; l < m->n_layers; l++) {
#define NAME(fmt) (snprintf(n, sizeof n, "transformer.h.%u." fmt, l), n)
        add_whole(&w, m, two ? NAME("ln_attn.weight") : NAME("input_layernorm.weight"), 0,
                  KVR_T_ATTN_NORM_W, l);
        add_whole(&w, m, two ? NAME("ln_attn.bias") : NAME("input_layernorm.bias"), 0,
                  KVR_T_ATTN_NORM_B, l);
        if (two) {
            add_whole(&w, m, NAME("ln_mlp.weight"), 0, KVR_T_MLP_NORM_W, l);
            add_whole(&w, m, NAME("ln_mlp.bias"), 0, KVR_T_MLP_NORM_B, l);
        }
        add_falcon_qkv(&w, m, NAME("self_attention.query_key_value.weight"), KVR_T_WQKV, l);
        add_whole(&w, m, NAME("self_attention.dense.weight"), 0, KVR_T_WO, l);
        add_whole(&w, m, NAME("mlp.dense_h_to_4h.weight"), 0, KVR_T_WUP, l);
        add_whole(&w, m, NAME("mlp.dense_4h_to_h.weight"), 0, KVR_T_WDOWN, l);
        if (m->bias_qkv) {
            add_falcon_qkv(&w, m, NAME("self_attention.query_key_value.bias"), KVR_T_BQKV, l);
            add_whole(&w, m, NAME("self_attention.dense.bias"), 0, KVR_T_BO, l);
            add_whole(&w, m, NAME("mlp.dense_h_to_4h.bias"), 0, KVR_T_BUP, l);
            add_whole(&w, m, NAME("mlp.dense_4h_to_h.bias"), 0, KVR_T_BDOWN, l);
        }
#undef NAME
    }
    add_whole(&w, m, "transformer.word_embeddings.weight", 0, KVR_T_EMBED, 0);
    add_whole(&w, m, "transformer.ln_f.weight", 0, KVR_T_FINAL_NORM_W, 0);
    add_whole(&w, m, "transformer.ln_f.bias", 0, KVR_T_FINAL_NORM_B, 0);
    if (!m->tied_embeddings) add_whole(&w, m, "lm_head.weight", 0, KVR_T_LM_HEAD, 0);
    st_finish(&w, path);
}

/* Chunked prefill (uneven chunks, prefix offsets) equals one monolithic chunk. */
static void test_chunked(const struct kvr_model *m)
{
    struct prompt pr = prompt(m, 3, 37);
    struct kvr_exec *a = exec_open(m, KVR_BACKEND_REF, pr.n, NULL);
    struct kvr_exec *b = exec_open(m, KVR_BACKEND_REF, pr.n, NULL);
    float *la = malloc(m->vocab * 4), *lb = malloc(m->vocab * 4);
    uint32_t one[] = {pr.n}, three[] = {17, 1, 19};
    ok(a && b && !exec_chunks(a, pr.tok, one, 1, la) && !exec_chunks(b, pr.tok, three, 3, lb),
       "%s: monolithic and chunked prefill run", m->name);
    ok(max_abs_diff(lb, la, m->vocab) <= 1e-5,
       "%s: chunks 17+1+19 give the monolithic logits (max diff %.3g)", m->name,
       max_abs_diff(lb, la, m->vocab));
    double worst = kv_worst(a, b, m, pr.n, max_abs_diff);
    ok(worst <= 1e-5, "%s: chunked KV cache equals the monolithic one (max diff %.3g)", m->name,
       worst);
    /* causality: a prefix of 20 tokens builds the same cache (K and V) for those positions */
    struct kvr_exec *c = exec_open(m, KVR_BACKEND_REF, pr.n, NULL);
    uint32_t twenty[] = {20};
    exec_chunks(c, pr.tok, twenty, 1, lb);
    worst = kv_worst(a, c, m, 20, max_abs_diff);
    ok(worst <= 1e-5, "%s: later tokens do not change earlier positions' cache (causal)", m->name);
    kvr_exec_close(a), kvr_exec_close(b), kvr_exec_close(c);
    free(la), free(lb);
}

/* Layer 0's K and V depend only on the token at that position: norm, projection, rotation
 * by angle pos * theta^(-2j/hd) (rotate-half pairs), computed here in double. */
static void test_closed_form_kv(const struct kvr_model *m)
{
    enum { CTX = 9 };
    struct prompt pr = prompt(m, 5, CTX);
    struct kvr_exec *ex = exec_open(m, KVR_BACKEND_REF, CTX, NULL);
    uint32_t one[] = {CTX};
    float *logits = malloc(m->vocab * 4);
    exec_chunks(ex, pr.tok, one, 1, logits);
    uint32_t d = m->d_model, hd = m->head_dim, kvw = m->n_kv_heads * hd, q = m->n_heads * hd;
    float *emb = tensor_rand(m, KVR_T_EMBED, 0), *nw = tensor_rand(m, KVR_T_ATTN_NORM_W, 0);
    float *w = tensor_rand(m, KVR_T_WQKV, 0), *k = malloc(CTX * kvw * 4),
          *v = malloc(CTX * kvw * 4);
    kvr_exec_kv_read(ex, 0, 0, CTX, k, v);
    double worst = 0;
    for (uint32_t p = 0; p < CTX; p++) {
        const float *x = emb + (size_t)pr.tok[p] * d;
        double ss = 0, xn[512], kk[512];
        for (uint32_t j = 0; j < d; j++) ss += (double)x[j] * x[j];
        for (uint32_t j = 0; j < d; j++) xn[j] = x[j] / sqrt(ss / d + 1e-5) * nw[j];
        for (uint32_t o = 0; o < 2 * kvw; o++) {
            double acc = 0;
            for (uint32_t j = 0; j < d; j++) acc += xn[j] * w[(size_t)(q + o) * d + j];
            kk[o] = acc;
        }
        for (uint32_t o = 0; o < kvw; o++) {
            uint32_t j = o % hd, i = j % (hd / 2);
            double ang = p * pow(10000.0, -2.0 * i / hd);
            double rot = j < hd / 2 ? kk[o] * cos(ang) - kk[o + hd / 2] * sin(ang)
                                    : kk[o] * cos(ang) + kk[o - hd / 2] * sin(ang);
            worst = fmax(worst, fabs(rot - k[p * kvw + o]) + fabs(kk[kvw + o] - v[p * kvw + o]));
        }
    }
    ok(worst < 1e-4, "%s: layer-0 K (rotated) and V match the closed form (max diff %.3g)", m->name,
       worst);
    free(emb), free(nw), free(w), free(k), free(v), free(logits);
    kvr_exec_close(ex);
}

static void run_logits(const struct kvr_model *m, const char *weights, float *out,
                       enum kvr_status *st)
{
    struct prompt pr = prompt(m, 11, 23);
    struct kvr_exec_opts o = {
        .backend = KVR_BACKEND_REF, .max_ctx = pr.n, .seed = 7, .weights = weights};
    struct kvr_exec *ex = NULL;
    *st = kvr_exec_open(m, &o, &ex);
    if (!*st) *st = kvr_exec_chunk(ex, pr.tok, 0, pr.n, KVR_MASK_CAUSAL, out);
    kvr_exec_close(ex);
}

static void test_loader_equal(const struct kvr_model *m, const char *path, double tol,
                              const char *what)
{
    float *seeded = malloc(m->vocab * 4), *loaded = malloc(m->vocab * 4);
    enum kvr_status s1, s2;
    run_logits(m, NULL, seeded, &s1);
    run_logits(m, path, loaded, &s2);
    if (!ok(!s1 && !s2, "%s: %s loads and runs", m->name, what))
        printf("#   %s\n", kvr_error_message());
    double e = rel_err(loaded, seeded, m->vocab);
    ok(e <= tol, "%s: %s gives the seeded model's logits (rel err %.3g <= %.3g)", m->name, what, e,
       tol);
    free(seeded), free(loaded);
}

static void write_raw(const char *path, const char *header, size_t data_bytes,
                      uint64_t hlen_override)
{
    FILE *f = fopen(path, "wb");
    uint64_t hlen = hlen_override ? hlen_override : strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(len8, 1, 8, f);
    fputs(header, f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

static void bad_file(const struct kvr_model *m, const char *path, enum kvr_status want,
                     const char *needle, const char *what)
{
    float *l = malloc(m->vocab * 4);
    enum kvr_status st;
    run_logits(m, path, l, &st);
    ok(st == want, "%s: %s (status %d, want %d)", what, kvr_status_name(st), st, want);
    like(kvr_error_message(), needle, "%s: the message names %s", what, needle);
    free(l);
}

static void test_bad_files(const struct kvr_model *m)
{
    const char *p = tap_path("bad.safetensors");
    bad_file(m, tap_path("absent.safetensors"), KVR_ERR_IO, "absent.safetensors", "missing file");
    FILE *f = fopen(p, "wb");
    fputs("abc", f);
    fclose(f);
    bad_file(m, p, KVR_ERR_INPUT, "too short", "a 3-byte file");
    write_raw(p, "{}", 0, 1u << 20);
    bad_file(m, p, KVR_ERR_INPUT, "header length", "a header length beyond the file");
    write_raw(p, "{\"a\": [1,", 0, 0);
    bad_file(m, p, KVR_ERR_PARSE, "not a JSON object", "a header that is not JSON");
    write_raw(
        p,
        "{\"model.embed_tokens.weight\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
        2, 0);
    bad_file(m, p, KVR_ERR_INPUT, "dtype I8", "an unsupported dtype");
    write_raw(
        p,
        "{\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
        8, 0);
    bad_file(m, p, KVR_ERR_INPUT, "data_offsets", "offsets beyond the data");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0);
    bad_file(m, p, KVR_ERR_INPUT, "neither", "a file of another family");
    write_llama(m, 0, p, "k_proj");
    bad_file(m, p, KVR_ERR_INPUT, "model.layers.0.self_attn.k_proj.weight is missing",
             "a missing tensor");
    struct kvr_model other = *m;
    other.d_ffn += 8;
    write_llama(&other, 0, p, NULL);
    bad_file(m, p, KVR_ERR_INPUT, "mlp.gate_proj.weight has shape", "a tensor of the wrong shape");
}

static void test_bad_input(const struct kvr_model *m)
{
    struct kvr_exec *ex = exec_open(m, KVR_BACKEND_REF, 8, NULL);
    int32_t tok[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    ok(kvr_exec_chunk(ex, tok, 4, 5, KVR_MASK_CAUSAL, NULL) == KVR_ERR_INPUT,
       "a chunk beyond the cache is refused");
    like(kvr_error_message(), "exceeds the KV cache", "its message says so");
    tok[2] = (int32_t)m->vocab;
    ok(kvr_exec_chunk(ex, tok, 0, 4, KVR_MASK_CAUSAL, NULL) == KVR_ERR_INPUT,
       "a token outside the vocabulary is refused");
    like(kvr_error_message(), "outside the vocabulary", "its message says so");
    kvr_exec_close(ex);
    struct kvr_model bad = *m;
    bad.rotary = false;
    struct kvr_exec_opts o = {.backend = KVR_BACKEND_REF, .max_ctx = 8};
    ok(kvr_exec_open(&bad, &o, &ex) == KVR_ERR_INPUT, "a model without rotary (ALiBi) is refused");
    like(kvr_error_message(), "ALiBi", "its message says why");
}

/* Every operation the model has shows up in the profile, and their sum is within the run. */
static void test_profile(const struct kvr_model *m)
{
    struct kvr_exec *ex = exec_open(m, KVR_BACKEND_REF, 40, NULL);
    double op_s[KVR_N_OPS], sum = 0;
    struct kvr_exec_result r;
    ok(ex && !kvr_exec_run_single(ex, 40, 1, 0, 1, &r) &&
           !kvr_exec_profile_single(ex, 40, 1, 3, op_s),
       "%s: a profiled run", m->name);
    int missing = 0;
    static const enum kvr_op used[] = {
        KVR_OP_EMBED,    KVR_OP_NORM_ATTN, KVR_OP_QKV,     KVR_OP_ROTARY,   KVR_OP_ATTN_SCORES,
        KVR_OP_OUT_PROJ, KVR_OP_MLP_UP,    KVR_OP_MLP_ACT, KVR_OP_MLP_DOWN, KVR_OP_LM_HEAD};
    for (size_t i = 0; i < sizeof used / sizeof *used; i++) missing += !(op_s[used[i]] > 0);
    for (int op = 0; op < KVR_N_OPS; op++) sum += op_s[op];
    ok(!missing, "%s: every operation has a time (%d missing)", m->name, missing);
    ok(op_s[KVR_OP_RESIDUAL] == 0 && op_s[KVR_OP_ATTN_PV] == 0, "%s: fused ops have none", m->name);
    ok(sum > 0 && sum < 3 * r.ttft_max_s + 0.01, "%s: the ops sum to %.3g s, a run took %.3g s",
       m->name, sum, r.ttft_max_s);
    kvr_exec_close(ex);
}

/* kvr_exec_chunk runs the last layer's attention and MLP on the last token alone: the same
 * logits and cache as every layer on every row, and fewer FLOPs counted for it. */
static void test_pruned(const struct kvr_model *m)
{
    enum { CTX = 29 };
    struct prompt pr = prompt(m, 11, CTX);
    struct kvr_exec *a = exec_open(m, KVR_BACKEND_REF, CTX, NULL);
    struct kvr_exec *b = exec_open(m, KVR_BACKEND_REF, CTX, NULL);
    float *la = malloc(m->vocab * 4), *lb = malloc(m->vocab * 4);
    uint32_t one[] = {CTX};
    ok(a && b && !exec_chunks(a, pr.tok, one, 1, la) &&
           !exec_full_layers(b, pr.tok, CTX, m->n_layers, lb),
       "%s: pruned and full last layer run", m->name);
    ok(max_abs_diff(la, lb, m->vocab) <= 1e-5,
       "%s: the pruned last layer gives the full layer's logits (max diff %.3g)", m->name,
       max_abs_diff(la, lb, m->vocab));
    kvr_exec_close(a), kvr_exec_close(b);
    free(la), free(lb);
    uint64_t e1 = 0, e = 0;
    struct kvr_prefill_flops f1, f;
    ok(!kvr_exec_prefill_flops(m, 1, KVR_MASK_CAUSAL, &e1) &&
           !kvr_prefill_flops(m, 1, KVR_MASK_CAUSAL, &f1) && e1 == f1.total &&
           !kvr_exec_prefill_flops(m, CTX, KVR_MASK_CAUSAL, &e) &&
           !kvr_prefill_flops(m, CTX, KVR_MASK_CAUSAL, &f) && e < f.total &&
           f.total - e < f.total / m->n_layers,
       "%s: executed FLOPs: all of them for one token, less than 1/%u fewer for %u", m->name,
       m->n_layers, CTX);
}

/* The seeded values (kvr_rng.h: the one fill formula of every backend, host and device)
 * pinned to numbers printed once: a change to the generator or the formula changes every
 * seeded model, so it fails here first. The host fill follows the formula element by element. */
static void test_seeded_values(const struct kvr_model *m)
{
    static const struct {
        uint64_t index;
        float sym, norm, bias; /* kvr_rng_sym(7, 3, .); a norm's (0.1, 1); a bias's (0.02, 0) */
    } pin[] = {{0, 0x1.0203fp-1f, 0x1.0ce698p+0f, -0x1.2de91ep-10f},
               {1, -0x1.3a37a4p-1f, 0x1.e0940ap-1f, 0x1.c648p-7f},
               {12345, 0x1.18aa64p-1f, 0x1.0e0884p+0f, 0x1.f20cb2p-7f},
               {1ull << 40, -0x1.60964p-2f, 0x1.ee5ee4p-1f, -0x1.33f948p-10f}};
    bool same = kvr_rng_bits(7, UINT64_MAX, 0) == 0x21fc44cf1ce11025ull;
    for (size_t i = 0; i < sizeof pin / sizeof *pin; i++)
        same &= kvr_rng_sym(7, 3, pin[i].index) == pin[i].sym &&
                kvr_rng_value(7, 3, pin[i].index, 0.1f, 1.0f) == pin[i].norm &&
                kvr_rng_value(7, 2ull << 32 | 5, pin[i].index, 0.02f, 0.0f) == pin[i].bias;
    ok(same, "seeded values: kvr_rng_bits, kvr_rng_sym and kvr_rng_value give the pinned numbers");
    enum kvr_tensor ts[] = {KVR_T_ATTN_NORM_W, KVR_T_WQKV, KVR_T_EMBED};
    bool fill = true;
    for (size_t x = 0; x < sizeof ts / sizeof *ts; x++) {
        float *v = tensor_rand(m, ts[x], 1);
        struct kvr_init_rule r = kvr_tensor_init_rule(m, ts[x], 1);
        for (uint64_t i = 0; i < kvr_tensor_numel(m, ts[x]); i++)
            fill &= v[i] == kvr_rng_value(7, r.stream, i, r.scale, r.offset);
        free(v);
    }
    ok(fill, "%s: kvr_tensor_fill_random is kvr_rng_value at each tensor's rule", m->name);
}

int main(void)
{
    tap_mkdtemp("exec");
    test_seeded_values(&exec_models[0]);
    for (int i = 0; i < N_EXEC_MODELS; i++) test_chunked(&exec_models[i]);
    for (int i = 0; i < N_EXEC_MODELS; i++) test_pruned(&exec_models[i]);
    test_closed_form_kv(&exec_models[0]);
    test_closed_form_kv(&exec_models[1]);
    write_llama(&exec_models[0], 0, tap_path("llama.safetensors"), NULL);
    test_loader_equal(&exec_models[0], tap_path("llama.safetensors"), 0, "an F32 Llama file");
    write_llama(&exec_models[1], 1, tap_path("llama-bf16.safetensors"), NULL);
    test_loader_equal(&exec_models[1], tap_path("llama-bf16.safetensors"), 3e-2,
                      "a BF16 Llama file");
    write_falcon(&exec_models[2], tap_path("falcon.safetensors"));
    test_loader_equal(&exec_models[2], tap_path("falcon.safetensors"), 0,
                      "an F32 Falcon-7B-style file");
    write_falcon(&exec_models[3], tap_path("falcon40.safetensors"));
    test_loader_equal(&exec_models[3], tap_path("falcon40.safetensors"), 0,
                      "an F32 Falcon-40B-style file");
    test_bad_files(&exec_models[0]);
    test_bad_input(&exec_models[0]);
    test_profile(&exec_models[0]);
    tap_rmdir(tap_dir);
    return tap_done();
}
