#!/bin/sh
# Issue #17's rule, audited on real-world config.json files and their common edits
# (tests/hf_audit, from the configs in tests/golden/hf_configs; what each tests is in
# tests/hf_audit/README.md): a key that changes the computation is honoured (model show gives
# what transformers computes; the effect is checked against a closed form or an equivalent
# config; kvr sim runs; kvr exec --backend ref runs a shrunk copy), or refused with exit 2 by
# model show, sim and exec alike, naming the file, the key and its value.
# Usage: test_hf_audit.sh KVR
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$(realpath "$1")"
A="$src/tests/hf_audit"
G="$src/tests/golden/hf_configs"

# refused NAME NEEDLE: model show, sim and exec each exit 2 naming NAME.json and NEEDLE
refused() {
    expect 2 "$1.json: " "$1: model show refuses, naming the file" -- model show "$A/$1.json"
    grep -qF -- "$2" "$tmp/err"
    report $? "$1: the message names $2" "$(cat "$tmp/err")"
    expect 2 "$2" "$1: kvr sim refuses it too" -- sim --model "$A/$1.json" --gpus 2 --ctx 4k
    expect 2 "$2" "$1: kvr exec refuses it too" -- exec --model "$A/$1.json" --backend ref --ctx 8 --reps 1 --warmup 0
}
field() { "$kvr" model show "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
# same_hash A B: the two configs resolve to one model (every field but the name)
same_hash() {
    a=$(field "$1" hash) b=$(field "$2" hash)
    [ -n "$a" ] && [ "$a" = "$b" ]
    report $? "$(basename "$1") and $(basename "$2") are one model (hash $a, $b)"
}
# shrink FILE OUT: the same keys at a tiny size (2 layers, width 64, 4 heads, KV layout kept;
# as many heads as the family's default KV heads when num_key_value_heads is absent)
shrink() {
    python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
h = d.get('num_attention_heads', d.get('n_head'))
kv = d.get('num_key_value_heads', d.get('num_kv_heads'))
for k, v in {'hidden_size': 64, 'num_hidden_layers': 2, 'num_attention_heads': 4,
             'intermediate_size': 96, 'ffn_hidden_size': 256, 'vocab_size': 256}.items():
    if d.get(k) is not None: d[k] = v
if kv is not None and 'num_key_value_heads' in d: d['num_key_value_heads'] = 4 if kv == h else 2
if d.get('num_kv_heads') is not None: d['num_kv_heads'] = 4 if kv == h else 1
if 'head_dim' in d: d['head_dim'] = 16
# num_key_value_heads absent: the family's default (Mistral 8, Qwen2 32) must divide the heads
default_kv = {'mistral': 8, 'qwen2': 32}.get(d['model_type'])
if 'num_key_value_heads' not in d and default_kv:
    d['num_attention_heads'], d['hidden_size'] = default_kv, 4 * default_kv
if d.get('sliding_window'): d['sliding_window'] = 8
json.dump(d, open(sys.argv[2], 'w'))
PY
}
# honoured NAME PYTHON-EXPR: model show holds the fields; sim runs; exec ref runs on a shrunk
# copy and dumps its logits to $tmp/NAME.l
honoured() {
    json_check "$1: honoured ($2)" "$2" -- model show "$A/$1.json" --json
    "$kvr" sim --model "$A/$1.json" --gpus 4 --ctx 32k --allow-oom >/dev/null 2>"$tmp/err"
    report $? "$1: kvr sim at 32k on 4 GPUs runs" "$(cat "$tmp/err")"
    shrink "$A/$1.json" "$tmp/$1.json"
    "$kvr" exec --model "$tmp/$1.json" --backend ref --ctx 40 --reps 1 --warmup 0 \
        --dump-logits "$tmp/$1.l" >/dev/null 2>"$tmp/err"
    report $? "$1: kvr exec --backend ref on a shrunk copy runs" "$(cat "$tmp/err")"
}
same_bytes() { cmp -s "$1" "$2"; report $? "$3"; }

# hidden_act "swish" is transformers' alias of silu (ACT2FN: both nn.SiLU)
honoured llama2-7b-swish "d['mlp'] == 'swiglu'"
same_hash "$A/llama2-7b-swish.json" "$G/llama2-7b.json"
shrink "$G/llama2-7b.json" "$tmp/silu.json"
"$kvr" exec --model "$tmp/silu.json" --backend ref --ctx 40 --reps 1 --warmup 0 --dump-logits "$tmp/silu.l" >/dev/null 2>&1
same_bytes "$tmp/llama2-7b-swish.l" "$tmp/silu.l" "swish and silu: the same logits, bit for bit"
# pretraining_tp splits Llama's projections into slices summed back (transformers <= 4.44):
# the same products
honoured llama2-7b-tp2 "d['n_heads'] == 32"
same_hash "$A/llama2-7b-tp2.json" "$G/llama2-7b.json"
# num_key_value_heads absent: MistralConfig's default is 8 and Qwen2Config's 32 (not the heads)
honoured mistral-7b-v0.1-nokv "d['n_kv_heads'] == 8 and d['kv_bytes_per_token'] == 2 * 32 * 8 * 128 * 2"
same_hash "$A/mistral-7b-v0.1-nokv.json" "$G/mistral-7b-v0.1.json"
honoured qwen1.5-7b "d['n_kv_heads'] == 32 and d['kv_bytes_per_token'] == 2 * 32 * 32 * 128 * 2 and d['bias_qkv'] and d['sliding_window'] == 0"
same_hash "$A/qwen1.5-7b.json" "$A/qwen1.5-7b-kv32.json"
# "type" and "rope_type" both given and equal
honoured llama3.1-8b-v4-both-types "d['rope_scaling'] == 'llama3'"
same_hash "$A/llama3.1-8b-v4-both-types.json" "$G/llama3.1-8b-v4.json"
# yarn: attention factor mscale(f, mscale) / mscale(f, mscale_all_dim) when both are given
# (DeepSeek's 0.707 and 0.707: exactly 1), else 0.1 ln(f) + 1 (mscale alone is ignored)
honoured llama-yarn-deepseek-mscale "d['rope_scaling'] == 'yarn' and d['rope_factor'] == 40 and d['rope_original_max_pos'] == 4096 and d['rope_attention_factor'] == 1"
honoured llama-yarn-mscale-only "abs(d['rope_attention_factor'] - (0.1 * __import__('math').log(4) + 1)) < 1e-15"
# Falcon's rotary scaling (FalconRotaryEmbedding reads rope_parameters like Llama's): used
honoured falcon-7b-linear "d['rope_scaling'] == 'linear' and d['rope_factor'] == 2 and d['n_kv_heads'] == 1"
shrink "$G/falcon-7b.json" "$tmp/falcon.json"
"$kvr" exec --model "$tmp/falcon.json" --backend ref --ctx 40 --reps 1 --warmup 0 --dump-logits "$tmp/falcon.l" >/dev/null 2>&1
! cmp -s "$tmp/falcon-7b-linear.l" "$tmp/falcon.l"
report $? "falcon-7b with linear scaling: other logits than without"
# Falcon's keys whose null has a meaning: num_kv_heads (the heads, unused with multi_query),
# num_ln_in_parallel_attn (derived), ffn_hidden_size (4 hidden_size)
honoured falcon-7b-v4-nullable "d['n_kv_heads'] == 1 and d['block_norms'] == 1 and d['d_ffn'] == 4 * 4544"

# versions of transformers that compute different models from one file
refused rope-type-conflict '"rope_scaling.rope_type" = "llama3" and "rope_scaling.type" = "linear" differ'
refused llama2-theta-both '"rope_theta" = 10000 and "rope_scaling.rope_theta" = 500000 differ'
refused qwen2-types-disagree 'key "layer_types" (every layer slides) disagrees with "use_sliding_window", "sliding_window" and "max_window_layers" = 24'
# JSON that Python and SQLite read differently
refused nested-dup 'key "rope_scaling.factor" appears more than once'
refused escaped-key 'key "num_hidden\u005flayers" is spelled with a backslash escape'
# nulls: transformers 5 refuses them, 4 reads false (Falcon: untied, multi-head, sequential)
refused falcon-7b-null-tie 'key "tie_word_embeddings" = null is not supported'
refused falcon-7b-null-multi-query 'key "multi_query" = null is not supported'
refused falcon-7b-null-parallel 'key "parallel_attn" = null is not supported'
refused llama3-8b-null-eps 'key "rms_norm_eps" = null is not supported'
refused llama3-8b-null-act 'key "hidden_act" = null is not supported'
refused llama3-8b-null-theta 'key "rope_parameters.rope_theta" = null is not supported'
refused qwen2.5-yarn-null-truncate 'key "rope_parameters.truncate" = null is not supported'
# rotary parameters transformers fails on (or divides by zero with)
refused qwen2.5-yarn-no-factor 'rope type yarn needs key "rope_parameters.factor"'
refused qwen2.5-yarn-beta-negative 'rope_beta_fast = -32 must be a finite positive number'
refused qwen2.5-yarn-attn-zero 'rope_attention_factor = 0 must be a finite positive number'
refused llama2-linear-factor-0 'rope_factor = 0 must be a finite positive number (rope type linear)'
refused llama3.1-low-freq-0 'rope_low_freq_factor = 0 must be a finite positive number'
refused llama-odd-head-dim 'head_dim * rotary_fraction = 127 rotated dimensions is odd'
refused llama-longrope '"rope_scaling.type" = "longrope": rotary scaling of this type is not supported'
refused llama-su '"rope_scaling.type" = "su": rotary scaling of this type is not supported'
refused llama-dynamic-orig 'key "rope_scaling.original_max_position_embeddings" is not a parameter of rope type dynamic'
# windows and families
refused mistral-window-0 'key "sliding_window" = 0 is not supported'
refused qwen2-attention-bias 'key "attention_bias" is not supported for model_type "qwen2"'
refused qwen3-8b-as-qwen2 'key "attention_bias" is not supported for model_type "qwen2"'
refused mixtral-8x7b-as-mistral 'num_experts_per_tok'
refused llama-gelu 'key "hidden_act" = "gelu" is not supported'
refused llama-gelu-tanh 'key "hidden_act" = "gelu_pytorch_tanh" is not supported'
# dtype, quantization, shapes, JSON types
refused llama-dtype-auto 'key "dtype" = "auto" is not supported'
refused llama-dtype-junk 'key "dtype" = "bf16" is not supported'
refused llama-dtype-float64 'key "torch_dtype" = "float64" is not supported'
refused llama-gptq 'key "quantization_config" is set'
refused llama-kv-5 'key "num_key_value_heads": n_kv_heads = 5 does not divide n_heads = 32'
refused llama-vocab-0 'key "vocab_size" = 0 must be positive'
refused llama-vocab-huge 'key "vocab_size" = 1099511627776 is out of range'
refused llama-layers-1e1 'key "num_hidden_layers" must be an integer, got real'
refused llama-tie-string 'key "tie_word_embeddings" must be true or false, got text'
echo "1..$n"
[ "$failed" = 0 ]
