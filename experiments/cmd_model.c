/* kvr model list | show: the model catalogue and its exact counts. */
#include <stdio.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_opt.h"
#include "kvr_counts.h"
#include "kvr_hash.h"
#include "kvr_json.h"
#include "kvr_model.h"
#include "kvr_units.h"

struct model_args {
    const char *ctx;
    bool json, quiet, help;
};

static const struct kvr_opt show_opts[] = {
    KVR_OPT("ctx", 'c', "N", offsetof(struct model_args, ctx),
            "also count the FLOPs of a prefill of N tokens, per operation\n(k = 1024, so 16k = "
            "16384)",
            .unit = "tokens", .def_help = "none"),
    KVR_OPT_COMMON_END(struct model_args)};
static const struct kvr_opt_spec show_spec = {
    .usage = "usage: kvr model show NAME|FILE [--ctx N] [--json]\n\nShows a model's shape, "
             "exact parameter count, weight bytes and KV-cache bytes.\nNAME is a preset (kvr "
             "model list); FILE is an INI profile (*.ini) or a Hugging Face\nconfig.json "
             "(*.json).\n",
    .opts = show_opts,
    .min_args = 1,
    .max_args = 1};

static const struct kvr_opt list_opts[] = {KVR_OPT_COMMON_END(struct model_args)};
static const struct kvr_opt_spec list_spec = {
    .usage = "usage: kvr model list [--json]\n\nLists the built-in model presets.\n",
    .opts = list_opts};

static const char group_help[] =
    "usage: kvr model <list|show> [options]\n"
    "\n"
    "  list           list the built-in model presets\n"
    "  show NAME|FILE a model's shape, parameters, bytes and prefill FLOPs\n";

static const char *attention_kind(const struct kvr_model *m)
{
    if (m->n_kv_heads == m->n_heads) return "MHA";
    return m->n_kv_heads == 1 ? "MQA" : "GQA";
}

static void json_model_fields(struct kvr_json *j, const struct kvr_model *m)
{
    kvr_json_kv_str(j, "name", m->name);
    kvr_json_kv_u64(j, "n_layers", m->n_layers);
    kvr_json_kv_u64(j, "d_model", m->d_model);
    kvr_json_kv_u64(j, "n_heads", m->n_heads);
    kvr_json_kv_u64(j, "n_kv_heads", m->n_kv_heads);
    kvr_json_kv_u64(j, "head_dim", m->head_dim);
    kvr_json_kv_u64(j, "d_ffn", m->d_ffn);
    kvr_json_kv_u64(j, "vocab", m->vocab);
    kvr_json_kv_str(j, "attention", attention_kind(m));
    kvr_json_kv_str(j, "norm", kvr_norm_name(m->norm));
    kvr_json_kv_str(j, "mlp", kvr_mlp_name(m->mlp));
    kvr_json_kv_bool(j, "parallel_attn", m->parallel_attn);
    kvr_json_kv_u64(j, "block_norms", m->block_norms);
    kvr_json_kv_bool(j, "rotary", m->rotary);
    kvr_json_kv_bool(j, "bias", kvr_model_any_bias(m));
    kvr_json_kv_bool(j, "bias_qkv", m->bias_qkv);
    kvr_json_kv_bool(j, "bias_out", m->bias_out);
    kvr_json_kv_bool(j, "bias_mlp", m->bias_mlp);
    kvr_json_kv_bool(j, "tied_embeddings", m->tied_embeddings);
    kvr_json_kv_str(j, "dtype", kvr_dtype_name(m->dtype));
    kvr_json_kv_dbl(j, "norm_eps", m->norm_eps);
    kvr_json_kv_dbl(j, "rope_theta", m->rope_theta);
    kvr_json_kv_dbl(j, "rotary_fraction", m->rotary_fraction);
    kvr_json_kv_u64(j, "rotary_dims", m->rotary ? kvr_rotary_dims(m) : 0);
    kvr_json_kv_str(j, "rope_scaling", kvr_rope_scaling_name(m->rope_scaling));
    kvr_json_kv_dbl(j, "rope_factor", m->rope_factor);
    kvr_json_kv_dbl(j, "rope_low_freq_factor", m->rope_low_freq);
    kvr_json_kv_dbl(j, "rope_high_freq_factor", m->rope_high_freq);
    kvr_json_kv_u64(j, "rope_original_max_pos", m->rope_orig_ctx);
    kvr_json_kv_dbl(j, "rope_beta_fast", m->rope_beta_fast);
    kvr_json_kv_dbl(j, "rope_beta_slow", m->rope_beta_slow);
    kvr_json_kv_dbl(j, "rope_attention_factor", m->rope_attn_factor);
    kvr_json_kv_bool(j, "rope_truncate", m->rope_truncate);
    kvr_json_kv_u64(j, "max_position_embeddings", m->max_pos);
    kvr_json_kv_u64(j, "sliding_window", m->sliding_window);
    char hash[KVR_HASH_HEX];
    kvr_hash_hex(kvr_model_hash(m), hash);
    kvr_json_kv_str(j, "hash", hash);
    kvr_json_kv_u64(j, "params", kvr_model_param_count(m));
    kvr_json_kv_u64(j, "weight_bytes", kvr_model_weight_bytes(m));
    /* all layers; the per-layer figure is the second key */
    kvr_json_kv_u64(j, "kv_bytes_per_token", kvr_model_kv_bytes_per_token_layer(m) * m->n_layers);
    kvr_json_kv_u64(j, "kv_bytes_per_token_per_layer", kvr_model_kv_bytes_per_token_layer(m));
}

/* Every number of a prefill, computed before anything is printed, so an overflow leaves no
 * half-written output. */
struct prefill {
    uint64_t ctx;
    struct kvr_prefill_flops flops;
    struct kvr_op_cost ops[KVR_N_OPS];
};

static enum kvr_status prefill_compute(const struct kvr_model *m, uint64_t ctx, struct prefill *pr)
{
    pr->ctx = ctx;
    enum kvr_status st = kvr_prefill_flops(m, ctx, KVR_MASK_CAUSAL, &pr->flops);
    for (int op = 0; op < KVR_N_OPS && !st; op++)
        st = kvr_prefill_op_cost(m, (enum kvr_op)op, ctx, KVR_MASK_CAUSAL, &pr->ops[op]);
    return st;
}

static void json_prefill(struct kvr_json *j, const struct prefill *pr)
{
    kvr_json_kv_u64(j, "ctx", pr->ctx);
    kvr_json_kv_u64(j, "prefill_flops", pr->flops.total);
    kvr_json_kv_u64(j, "prefill_flops_linear", pr->flops.linear);
    kvr_json_kv_u64(j, "prefill_flops_attention", pr->flops.attention);
    kvr_json_key(j, "ops");
    kvr_json_array_begin(j);
    for (int op = 0; op < KVR_N_OPS; op++) {
        kvr_json_object_begin(j);
        kvr_json_kv_str(j, "op", kvr_op_name((enum kvr_op)op));
        kvr_json_kv_u64(j, "flops", pr->ops[op].flops);
        kvr_json_kv_u64(j, "bytes", kvr_op_cost_bytes(&pr->ops[op]));
        kvr_json_object_end(j);
    }
    kvr_json_array_end(j);
}

static void print_rope(const struct kvr_model *m)
{
    if (!m->rotary) {
        printf("rotary       none\n");
        return;
    }
    printf("rotary       base %g, %u of %u dims, scaling %s", m->rope_theta, kvr_rotary_dims(m),
           m->head_dim, kvr_rope_scaling_name(m->rope_scaling));
    if (m->rope_scaling != KVR_ROPE_NONE) printf(" (factor %g", m->rope_factor);
    if (m->rope_scaling == KVR_ROPE_LLAMA3)
        printf(", low %g, high %g, original %u", m->rope_low_freq, m->rope_high_freq,
               m->rope_orig_ctx);
    if (m->rope_scaling == KVR_ROPE_YARN)
        printf(", beta %g/%g, original %u, attention factor %g", m->rope_beta_fast,
               m->rope_beta_slow, m->rope_orig_ctx, m->rope_attn_factor);
    printf("%s\n", m->rope_scaling != KVR_ROPE_NONE ? ")" : "");
}

static void print_model_table(const struct kvr_model *m)
{
    char a[32], b[32];
    printf("model        %s\n", m->name);
    printf("layers       %u\n", m->n_layers);
    printf("width        %u (d_ffn %u, %s MLP)\n", m->d_model, m->d_ffn,
           m->mlp == KVR_MLP_SWIGLU ? "SwiGLU" : "GELU");
    printf("heads        %u query, %u KV (%s), head_dim %u\n", m->n_heads, m->n_kv_heads,
           attention_kind(m), m->head_dim);
    printf("vocab        %u (%s embeddings)\n", m->vocab, m->tied_embeddings ? "tied" : "untied");
    printf("block        %s, %u norm%s (%s, eps %g), biases:%s%s%s%s\n",
           m->parallel_attn ? "parallel attention+MLP" : "sequential", m->block_norms,
           m->block_norms == 1 ? "" : "s", m->norm == KVR_NORM_RMSNORM ? "RMSNorm" : "LayerNorm",
           m->norm_eps, m->bias_qkv ? " qkv" : "", m->bias_out ? " out" : "",
           m->bias_mlp ? " mlp" : "", kvr_model_any_bias(m) ? "" : " none");
    print_rope(m);
    if (m->sliding_window)
        printf("window       %u tokens (query i attends keys i-%u .. i), every layer\n",
               m->sliding_window, m->sliding_window - 1);
    else
        printf("window       none (full causal attention)\n");
    if (m->max_pos) printf("max context  %u (max_position_embeddings)\n", m->max_pos);
    printf("params       %llu (%s)\n", (unsigned long long)kvr_model_param_count(m),
           kvr_format_count(a, sizeof a, (double)kvr_model_param_count(m)));
    printf("weights      %s in %s\n",
           kvr_format_bytes(a, sizeof a, (double)kvr_model_weight_bytes(m)),
           kvr_dtype_name(m->dtype));
    uint64_t kv = kvr_model_kv_bytes_per_token_layer(m);
    printf("KV cache     %s per token per layer, %s per token\n",
           kvr_format_bytes(a, sizeof a, (double)kv),
           kvr_format_bytes(b, sizeof b, (double)kv * m->n_layers));
    char hash[KVR_HASH_HEX];
    kvr_hash_hex(kvr_model_hash(m), hash);
    printf("hash         %s (every field but the name)\n", hash);
}

static void print_prefill_table(const struct prefill *pr)
{
    char a[32], b[32], c[32];
    printf("\nprefill of %llu tokens: %s FLOP (linear %s, attention %s)\n",
           (unsigned long long)pr->ctx, kvr_format_count(a, sizeof a, (double)pr->flops.total),
           kvr_format_count(b, sizeof b, (double)pr->flops.linear),
           kvr_format_count(c, sizeof c, (double)pr->flops.attention));
    printf("  %-13s %22s %22s\n", "op", "FLOP", "bytes");
    for (int op = 0; op < KVR_N_OPS; op++)
        printf("  %-13s %22llu %22llu\n", kvr_op_name((enum kvr_op)op),
               (unsigned long long)pr->ops[op].flops,
               (unsigned long long)kvr_op_cost_bytes(&pr->ops[op]));
}

static enum kvr_status model_show(int argc, char **argv)
{
    struct model_args a = {0};
    struct kvr_opt_result res;
    enum kvr_status st;
    if (kvr_opt_start(&show_spec, argc, argv, &a, &res, &st)) return st;
    bool json = a.json;
    uint64_t ctx = 0;
    const char *ctx_text = a.ctx;
    if (ctx_text) {
        if (kvr_parse_tokens(ctx_text, KVR_MAX_CTX, &ctx))
            return kvr_error_prefix(KVR_ERR_INPUT, "--ctx: ");
        if (ctx == 0) return kvr_error(KVR_ERR_INPUT, "--ctx: '%s' must be positive", ctx_text);
    }
    struct kvr_model m;
    struct prefill pr;
    st = kvr_model_resolve(res.args[0], &m);
    if (st || (ctx && (st = prefill_compute(&m, ctx, &pr)))) return st;
    if (!json) {
        print_model_table(&m);
        if (ctx) print_prefill_table(&pr);
        return KVR_OK;
    }
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    json_model_fields(&j, &m);
    if (ctx) json_prefill(&j, &pr);
    kvr_json_end(&j);
    return KVR_OK;
}

static enum kvr_status model_list(int argc, char **argv)
{
    struct model_args a = {0};
    enum kvr_status st;
    if (kvr_opt_start(&list_spec, argc, argv, &a, NULL, &st)) return st;
    bool json = a.json;
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    if (json)
        kvr_json_array_begin(&j);
    else
        printf("%-12s %6s %6s %5s %4s %6s %7s %16s\n", "name", "layers", "d_model", "heads", "kv",
               "d_ffn", "vocab", "params");
    for (int i = 0; i < kvr_model_preset_count(); i++) {
        const struct kvr_model *m = kvr_model_preset_at(i);
        if (json) {
            kvr_json_object_begin(&j);
            json_model_fields(&j, m);
            kvr_json_object_end(&j);
        } else {
            printf("%-12s %6u %7u %5u %4u %6u %7u %16llu\n", m->name, m->n_layers, m->d_model,
                   m->n_heads, m->n_kv_heads, m->d_ffn, m->vocab,
                   (unsigned long long)kvr_model_param_count(m));
        }
    }
    if (json) kvr_json_array_end(&j), kvr_json_finish(&j);
    return KVR_OK;
}

enum kvr_status kvr_cmd_model(int argc, char **argv)
{
    static char show[] = "model show", list[] = "model list"; /* the name in messages */
    if (argc >= 2 && !strcmp(argv[1], "show"))
        return argv[1] = show, model_show(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return argv[1] = list, model_list(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        return fputs(group_help, stdout), KVR_OK;
    fputs(group_help, stderr);
    if (argc < 2) return kvr_error(KVR_ERR_USAGE, "model: missing subcommand (list or show)");
    return kvr_error(KVR_ERR_USAGE, "model: unknown subcommand '%s' (list or show)", argv[1]);
}
