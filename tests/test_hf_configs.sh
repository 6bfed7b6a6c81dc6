#!/bin/sh
# Issue #17's rule on the configs people use (tests/golden/hf_configs, written by
# scripts/hf_configs.py with transformers' own config classes, v5 spelling and v4 copies): each
# is honoured (kvr model show gives the fields transformers computes with, kvr sim runs at 32k,
# kvr exec --backend ref runs a shrunk copy with the same structural keys) or refused with exit
# 2 naming the file and the key. Then edits of real configs that kvrun used to accept and
# compute wrongly: each must be refused by name.
# Usage: test_hf_configs.sh KVR
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$(realpath "$1")"
G="$src/tests/golden/hf_configs"

# honoured NAME PYTHON-EXPR: model show's JSON holds the fields; sim at 32k on 4 GPUs and the
# ref executor on a shrunk copy (2 layers, width 64) run
honoured() {
    json_check "$1: honoured ($2)" "$2" -- model show "$G/$1.json" --json
    runs "$1: kvr sim at 32k on 4 GPUs runs" -- sim --model "$G/$1.json" --gpus 4 --ctx 32k --allow-oom
    shrink "$1"
    runs "$1: kvr exec --backend ref on a shrunk copy runs" -- exec --model "$tmp/small/$1/config.json" \
        --backend ref --ctx 40 --reps 1 --warmup 0
}
# runs NAME -- ARGS...: kvr exits 0
runs() {
    name=$1; shift 2
    "$kvr" "$@" >"$tmp/out" 2>"$tmp/err"
    report $? "$name" "$(cat "$tmp/err")"
}
# shrink NAME: $tmp/small/NAME/config.json, the same keys at a tiny size (head_dim kept apart
# from hidden/heads where it was, MQA/GQA/MHA kept, the window 8 tokens)
shrink() {
    mkdir -p "$tmp/small/$1"
    python3 - "$G/$1.json" "$tmp/small/$1/config.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
h, hd = d.get('num_attention_heads', d.get('n_head')), None
if d.get('head_dim') and d['head_dim'] != d['hidden_size'] // h: hd = 32
kv = d.get('num_key_value_heads', d.get('num_kv_heads', d.get('n_head_kv', h)))
kv = 4 if kv == h else (1 if kv == 1 else 2)
for k, v in {'hidden_size': 64, 'num_hidden_layers': 2, 'n_layer': 2, 'num_attention_heads': 4,
             'n_head': 4, 'intermediate_size': 96, 'ffn_hidden_size': 256, 'vocab_size': 256,
             'num_key_value_heads': kv, 'num_kv_heads': kv, 'n_head_kv': kv}.items():
    if k in d: d[k] = v
if 'head_dim' in d: d['head_dim'] = hd or 16
if d.get('sliding_window'): d['sliding_window'] = 8
if isinstance(d.get('layer_types'), list): d['layer_types'] = d['layer_types'][:2]
if 'max_window_layers' in d: d['max_window_layers'] = min(d['max_window_layers'], 2)
json.dump(d, open(sys.argv[2], 'w'))
PY
}
# refused NAME NEEDLE [FILE]: exit 2 naming the file and NEEDLE
refused() {
    f=${3:-$G/$1.json}
    expect 2 "$(basename "$f"): key \"$2" "$1: refused, naming \"$2\"" -- model show "$f"
}

LLAMA="d['norm'] == 'rmsnorm' and d['mlp'] == 'swiglu' and not d['parallel_attn'] and d['rotary']"
honoured llama2-7b "$LLAMA and d['n_kv_heads'] == 32 and d['norm_eps'] == 1e-5 and d['rope_theta'] == 1e4 and d['dtype'] == 'fp16' and d['params'] == 6738415616"
honoured llama2-7b-v4 "d['dtype'] == 'fp16' and d['rope_theta'] == 1e4 and d['params'] == 6738415616"
honoured llama3-8b "$LLAMA and d['n_kv_heads'] == 8 and d['rope_theta'] == 5e5 and d['rope_scaling'] == 'none' and d['max_position_embeddings'] == 8192 and d['params'] == 8030261248"
honoured llama3-8b-v4 "d['rope_theta'] == 5e5 and d['rope_scaling'] == 'none' and d['dtype'] == 'bf16'"
L31="d['rope_scaling'] == 'llama3' and d['rope_theta'] == 5e5 and d['rope_low_freq_factor'] == 1 and d['rope_high_freq_factor'] == 4 and d['rope_original_max_pos'] == 8192"
honoured llama3.1-8b "$L31 and d['rope_factor'] == 8 and not d['tied_embeddings'] and d['max_position_embeddings'] == 131072"
honoured llama3.1-8b-v4 "$L31 and d['rope_factor'] == 8"
honoured llama3.2-1b "$L31 and d['rope_factor'] == 32 and d['tied_embeddings'] and d['head_dim'] == 64 and d['params'] == 1235814400"
honoured llama3.2-1b-v4 "$L31 and d['rope_factor'] == 32 and d['tied_embeddings']"
honoured mistral-7b-v0.1 "$LLAMA and d['sliding_window'] == 4096 and d['n_kv_heads'] == 8 and d['norm_eps'] == 1e-5"
honoured mistral-7b-v0.1-v4 "d['sliding_window'] == 4096"
honoured mistral-7b-v0.3 "d['sliding_window'] == 0 and d['rope_theta'] == 1e6 and d['vocab'] == 32768"
honoured mistral-7b-v0.3-v4 "d['sliding_window'] == 0 and d['rope_theta'] == 1e6"
honoured mistral-nemo "d['head_dim'] == 128 and d['d_model'] == 5120 and d['params'] == 12247782400"
QWEN2="d['bias_qkv'] and not d['bias_out'] and not d['bias_mlp'] and d['rope_theta'] == 1e6 and d['norm_eps'] == 1e-6"
honoured qwen2-7b "$QWEN2 and d['sliding_window'] == 0 and d['params'] == 7615616512"
honoured qwen2-7b-v4 "$QWEN2 and d['sliding_window'] == 0"
honoured qwen2.5-0.5b "$QWEN2 and d['tied_embeddings'] and d['params'] == 494032768"
YARN="d['rope_scaling'] == 'yarn' and d['rope_factor'] == 4 and d['rope_original_max_pos'] == 32768 and abs(d['rope_attention_factor'] - 1.1386294361119891) < 1e-12"
honoured qwen2.5-7b-yarn "$QWEN2 and $YARN"
honoured qwen2.5-7b-yarn-v4 "$QWEN2 and $YARN"
honoured qwen2-swa-all "$QWEN2 and d['sliding_window'] == 4096"
FALCON="d['norm'] == 'layernorm' and d['mlp'] == 'gelu' and d['parallel_attn'] and d['rotary'] and not d['bias_qkv']"
honoured falcon-7b "$FALCON and d['n_kv_heads'] == 1 and d['block_norms'] == 1 and d['tied_embeddings']"
honoured falcon-7b-v4 "$FALCON and d['n_kv_heads'] == 1 and d['block_norms'] == 1"
honoured falcon-7b-refinedweb "$FALCON and d['n_kv_heads'] == 1 and d['block_norms'] == 1 and d['n_layers'] == 32"
honoured falcon-40b "$FALCON and d['n_kv_heads'] == 8 and d['block_norms'] == 2"
honoured falcon-40b-v4 "$FALCON and d['n_kv_heads'] == 8 and d['block_norms'] == 2"
honoured falcon-40b-refinedweb "$FALCON and d['n_kv_heads'] == 8 and d['block_norms'] == 2 and d['n_layers'] == 60"
honoured falcon-180b "$FALCON and d['n_kv_heads'] == 8 and d['block_norms'] == 2 and d['n_heads'] == 232"
honoured falcon-11b "$FALCON and d['n_kv_heads'] == 8 and d['block_norms'] == 1 and d['rope_theta'] == 500042 and not d['tied_embeddings']"

# the presets are these models: the same content hash (every field but the name)
hash() { "$kvr" model show "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['hash'])"; }
for pair in llama-3-8b:llama3-8b llama-3.1-8b:llama3.1-8b mistral-7b:mistral-7b-v0.1 qwen2-7b:qwen2-7b-v4 falcon-7b:falcon-7b; do
    a=$(hash "${pair%%:*}") b=$(hash "$G/${pair#*:}.json")
    [ -n "$a" ] && [ "$a" = "$b" ]
    report $? "preset ${pair%%:*} = ${pair#*:}.json (hash $a, $b)"
done

# architectures kvrun does not run: refused by model_type, saying what they need
refused mixtral-8x7b 'model_type" = "mixtral" is not supported (llama, mistral, qwen2, falcon): it needs mixture of experts'
refused qwen3-8b 'model_type" = "qwen3'
refused gemma-7b 'model_type" = "gemma'
refused gemma2-9b 'model_type" = "gemma2'
refused phi3-mini-128k 'model_type" = "phi3'
refused pythia-1b 'model_type" = "gpt_neox'
refused deepseek-v2-lite 'model_type" = "deepseek_v2'
refused deepseek-v3 'model_type" = "deepseek_v3'
refused qwen2-swa-mixed 'layer_types": 3 sliding and 21 full layers'
# ALiBi (falcon-rw-1b): accepted before and computed without any position information
refused falcon-rw-1b 'alibi" = true'

# edit NAME FROM PYTHON-EDIT: a copy of FROM's config with d edited, in $tmp/edit/NAME.json
edit() {
    mkdir -p "$tmp/edit"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $3; json.dump(d, open(sys.argv[2], 'w'))" \
        "$G/$2.json" "$tmp/edit/$1.json"
}
# refused_edit NAME FROM PYTHON-EDIT NEEDLE: the edited copy is refused naming NEEDLE
refused_edit() { edit "$1" "$2" "$3"; refused "$1" "$4" "$tmp/edit/$1.json"; }
# every layer sliding but the window off: named so (the message had said sliding_window is null
# where the file gives 4096)
refused_edit qwen2-swa-off qwen2-swa-all "d['use_sliding_window'] = False" 'layer_types" has sliding layers but there is no window ("sliding_window" null, or "use_sliding_window" false'

# another family's config relabelled (as "llamafied" checkpoints are): its own keys are refused
relabel() { # relabel FROM TYPE NEEDLE
    refused_edit "$1-as-$2" "$1" "d['model_type'] = '$2'" "$3"
}
relabel mixtral-8x7b mistral num_experts_per_tok
relabel qwen3-8b llama layer_types
relabel gemma2-9b llama attn_logit_softcapping
relabel gemma-7b llama hidden_act
relabel phi3-mini-128k mistral embd_pdrop
relabel pythia-1b llama hidden_act
relabel deepseek-v3 llama first_k_dense_replace
# keys HF ignores for the family but that say the model computes otherwise
refused_edit llama-window llama3-8b "d['sliding_window'] = 4096" sliding_window
refused_edit llama-layer-types llama3-8b "d['layer_types'] = ['sliding_attention'] * 32" layer_types
refused_edit llama-unknown llama3-8b "d['foo_scale'] = 2.0" foo_scale
refused_edit llama-pruned llama3-8b "d['pruned_heads'] = {'0': [1]}" pruned_heads
edit llama-noprune llama3-8b "d['pruned_heads'] = {}; d['temperature'] = 0.6; d['auto_map'] = {}"
runs "llama3-8b with empty pruned_heads, generation defaults and auto_map: accepted" -- model show "$tmp/edit/llama-noprune.json"
refused_edit llama-remote llama3-8b "d['auto_map'] = {'AutoModelForCausalLM': 'modeling_x.XForCausalLM'}" auto_map.AutoModelForCausalLM
# the tiiuae repositories' auto_map: their copy of transformers' own Falcon classes
edit falcon-own-map falcon-7b "d['auto_map'] = {'AutoConfig': 'configuration_falcon.FalconConfig', 'AutoModelForCausalLM': 'modeling_falcon.FalconForCausalLM'}"
runs "falcon-7b with auto_map naming modeling_falcon.FalconForCausalLM: accepted" -- model show "$tmp/edit/falcon-own-map.json"
edit llama-tok-map llama3-8b "d['auto_map'] = {'AutoTokenizer': ['tok.T', None]}"
runs "llama3-8b with an auto_map of a tokenizer only: accepted" -- model show "$tmp/edit/llama-tok-map.json"
refused_edit llama-cross llama3-8b "d['add_cross_attention'] = True" add_cross_attention
refused_edit mistral-mixed mistral-7b-v0.1 "d['layer_types'] = ['sliding_attention', 'full_attention'] * 16" layer_types
refused_edit mistral-full-types mistral-7b-v0.1 "d['layer_types'] = ['full_attention'] * 32" layer_types
edit mistral-types mistral-7b-v0.1 "d['layer_types'] = ['sliding_attention'] * 32"
json_check "mistral-7b-v0.1 with layer_types all sliding: the window on every layer" "d['sliding_window'] == 4096" \
    -- model show "$tmp/edit/mistral-types.json" --json
refused_edit mistral-use-swa mistral-7b-v0.1 "d['use_sliding_window'] = False" use_sliding_window
# Qwen2's window in the v4 spelling (no layer_types): use_sliding_window and max_window_layers
edit qwen2-v4-swa-none qwen2-7b-v4 "d['use_sliding_window'] = True"
json_check "qwen2-7b-v4, use_sliding_window with max_window_layers 28 of 28: no layer slides" "d['sliding_window'] == 0" \
    -- model show "$tmp/edit/qwen2-v4-swa-none.json" --json
edit qwen2-v4-swa-all qwen2-7b-v4 "d['use_sliding_window'] = True; d['max_window_layers'] = 0"
json_check "qwen2-7b-v4, use_sliding_window with max_window_layers 0: every layer slides" "d['sliding_window'] == 131072" \
    -- model show "$tmp/edit/qwen2-v4-swa-all.json" --json
refused_edit qwen2-v4-swa-half qwen2-7b-v4 "d['use_sliding_window'] = True; d['max_window_layers'] = 14" max_window_layers
# rotary parameters transformers ignores (it warns), or reads differently across versions
refused_edit rope-default-factor llama3-8b "d['rope_parameters']['factor'] = 8.0" 'rope_parameters.factor'
refused_edit rope-per-layer-type llama3-8b "d['rope_parameters']['full_attention'] = {'rope_type': 'default'}" 'rope_parameters.full_attention'
refused_edit rope-dynamic-orig llama3-8b "d['rope_parameters'] = {'rope_type': 'dynamic', 'factor': 2.0, 'original_max_position_embeddings': 4096}" 'rope_parameters.original_max_position_embeddings'
refused_edit rope-v4-linear-low llama3-8b-v4 "d['rope_scaling'] = {'type': 'linear', 'factor': 2.0, 'low_freq_factor': 1.0}" 'rope_scaling.low_freq_factor'
refused_edit rope-orig-both llama3.1-8b "d['original_max_position_embeddings'] = 4096" 'original_max_position_embeddings" = 4096 and'
refused_edit rope-orig-default llama3-8b "d['original_max_position_embeddings'] = 4096" 'original_max_position_embeddings" is read only by rope types llama3 and yarn'
edit rope-orig-top llama3.1-8b "d['rope_parameters'].pop('original_max_position_embeddings'); d['original_max_position_embeddings'] = 4096"
json_check "llama3.1-8b with original_max_position_embeddings at the top level only: read (as transformers 5)" \
    "d['rope_original_max_pos'] == 4096" -- model show "$tmp/edit/rope-orig-top.json" --json
# Falcon: layouts transformers cannot run, or computes otherwise than the keys say
refused_edit falcon-postln falcon-7b "d['apply_residual_connection_post_layernorm'] = True" apply_residual_connection_post_layernorm
edit falcon-postln-off falcon-7b "d['apply_residual_connection_post_layernorm'] = False"
runs "falcon-7b with apply_residual_connection_post_layernorm false: accepted" -- model show "$tmp/edit/falcon-postln-off.json"
refused_edit falcon40-seq falcon-40b "d['parallel_attn'] = False" parallel_attn
refused_edit falcon40-ln3 falcon-40b "d['num_ln_in_parallel_attn'] = 3" num_ln_in_parallel_attn
refused_edit falcon7-ln2 falcon-7b "d['num_ln_in_parallel_attn'] = 2" num_ln_in_parallel_attn
refused_edit falcon-mha-kv falcon-7b "d['multi_query'] = False; d['num_kv_heads'] = 1" num_kv_heads
edit falcon-mha falcon-7b "d['multi_query'] = False"
json_check "falcon-7b without multi_query: a KV head per query head" "d['n_kv_heads'] == 71" -- model show "$tmp/edit/falcon-mha.json" --json
refused_edit rw40-7b-style falcon-40b-refinedweb "d['new_decoder_architecture'] = False; d['multi_query'] = False" n_head_kv
refused_edit falcon-embed falcon-7b "d['n_embed'] = 4544" n_embed
# JSON SQLite reads otherwise than Python: a \u0000 in a string cut the value there
# ("silu\u0000x" read as silu, "llama\u0000x" as llama), and a string longer than kvrun's buffer
# was cut to a class name it accepts
edit llama-nul-act llama3-8b "d['hidden_act'] = 'silu\\x00gelu'"
expect 2 'llama-nul-act.json:' "a hidden_act with a NUL character: refused" -- model show "$tmp/edit/llama-nul-act.json"
edit llama-nul-type llama3-8b "d['model_type'] = 'llama\\x00x'"
expect 2 'a string holds \u0000' "a model_type with a NUL character: refused" -- model show "$tmp/edit/llama-nul-type.json"
edit llama-nul-name llama3-8b "d['_name_or_path'] = 'a\\\\u0000'"
json_check "an escaped backslash before u0000 is no NUL: accepted" "d['name'] == 'a\\\\u0000'" -- model show "$tmp/edit/llama-nul-name.json" --json
refused_edit llama-long-map llama3-8b "d['auto_map'] = {'AutoModelForCausalLM': 'm' * 238 + '.LlamaForCausalLMEvil'}" 'auto_map.AutoModelForCausalLM" must be a string of at most 255 bytes'
# yarn parameters of the wrong type (transformers fails on them) were read as absent
refused_edit yarn-beta-str qwen2.5-7b-yarn "d['rope_parameters']['beta_fast'] = 'x'" 'rope_parameters.beta_fast" must be a number'
refused_edit yarn-mscale-str qwen2.5-7b-yarn "d['rope_parameters']['mscale'] = 'x'; d['rope_parameters']['mscale_all_dim'] = 1.0" 'rope_parameters.mscale" must be a number'
refused_edit yarn-attn-str qwen2.5-7b-yarn "d['rope_parameters']['attention_factor'] = 'x'" 'rope_parameters.attention_factor" must be a number'
# original_max_position_embeddings 8192.7 was cut to 8192 (transformers computes with 8192.7)
refused_edit llama3-orig-real llama3.1-8b "d['rope_parameters']['original_max_position_embeddings'] = 8192.7" 'rope_parameters.original_max_position_embeddings" must be an integer'
refused_edit yarn-orig-top-real qwen2.5-7b-yarn-v4 "d['rope_scaling'].pop('original_max_position_embeddings'); d['original_max_position_embeddings'] = 32768.5" 'original_max_position_embeddings" must be an integer'
# RefinedWeb's spellings under model_type falcon: transformers 4.31-4.32 read them, 4.33 on not
refused_edit falcon-n-layer falcon-7b "d.pop('num_hidden_layers'); d['n_layer'] = 60" 'n_layer" is not supported for model_type "falcon"'
refused_edit falcon-n-head-differs falcon-7b "d['n_head'] = 32" 'n_head" is not supported for model_type "falcon"'
refused_edit falcon40-n-head-kv falcon-40b "d['n_head_kv'] = 1" 'n_head_kv" is not supported for model_type "falcon"'
edit falcon-n-layer-same falcon-7b "d['n_layer'] = 32; d['n_head'] = 71"
json_check "falcon-7b with n_layer and n_head equal to the new keys: accepted" "d['n_layers'] == 32 and d['n_heads'] == 71" -- model show "$tmp/edit/falcon-n-layer-same.json" --json
echo "1..$n"
[ "$failed" = 0 ]
