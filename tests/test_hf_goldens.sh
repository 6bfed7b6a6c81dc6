#!/bin/sh
# Hugging Face goldens (tests/golden/hf, scripts/hf_goldens.py): the ref backend on every case
# matches transformers' float32 last-token logits within 1e-4 (max |diff| / max |logit|), on
# one process and through mpirun as a 3-rank KV-Runahead chain whose chunks (20, 12, 8) cross
# the sliding window's edge (W = 8); the prompt comes from --tokens (text, JSON and .npy); one
# case is sharded. Then the refusals: every config key kvrun cannot honour, tensors the config
# lacks, a tensor missing from its shard, prompts outside the vocabulary.
# Usage: test_hf_goldens.sh KVR [cuda]  (cuda: the GPU test, cosine >= 0.999 and the same top
# token on every case, the sliding-window ones included, on one rank and as the same 3-rank
# chain on ranks sharing the GPU; exits 77 without a GPU)
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$(realpath "$1")"
mode=${2:-ref}
G="$src/tests/golden/hf"

# cmp_logits GOT WANT: prints "maxrel cosine top_same" and exits 0 within the tolerance
cmp_logits() {
    python3 - "$1" "$2" "$3" <<'PY'
import array, math, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
if len(a) != len(b) or not b: print("sizes differ"); sys.exit(1)
rel = max(abs(x - y) for x, y in zip(a, b)) / max(abs(y) for y in b)
cos = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
top = max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__)
print(f"maxrel {rel:.3g} cosine {cos:.6f} top {'same' if top else 'DIFFERS'}")
ok = (rel <= 1e-4) if sys.argv[3] == 'ref' else (cos >= 0.999 and top)
sys.exit(0 if ok else 1)
PY
}
prompt() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['prompt'])" "$G/$1/case.json"; }
# the case's model: its config.json, or a kvrun profile (model.ini) where transformers' config
# is of a family kvrun does not load (phi3_partial: Phi-3's partial rotary on Llama's layout)
model() { python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('model', 'config.json'))" "$G/$1/case.json"; }
# run_case LAUNCH CASE BACKEND OUT [ARGS...]: the case's prefill (LAUNCH: "$kvr", or "mpi 3" for
# ranks), its last-token logits to OUT, stderr to $tmp/err
run_case() {
    launch=$1 c=$2 be=$3 o=$4
    shift 4
    $launch exec --model "$G/$c/$(model "$c")" --weights "$G/$c" --tokens "$G/$c/$(prompt "$c")" \
        --backend "$be" --reps 1 --warmup 0 --dump-logits "$o" "$@" >/dev/null 2>"$tmp/err"
}
# have_mpi: mpirun and an MPI build, with Open MPI's settings for ranks as root on one host
have_mpi() {
    command -v mpirun >/dev/null && "$kvr" --version | grep -q "mpi=yes" || return 1
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
}
cases=$(ls "$G" | while read -r c; do [ -f "$G/$c/case.json" ] && echo "$c"; done)

if [ "$mode" = cuda ]; then
    gpu_setup
    for c in $cases; do
        run_case "$kvr" "$c" cuda "$tmp/l" &&
            cmp_logits "$tmp/l" "$G/$c/logits.f32" cuda >"$tmp/cmp"
        report $? "cuda $c: $(cat "$tmp/cmp" 2>/dev/null)" "$(cat "$tmp/err")"
    done
    for c in mistral_window llama_dynamic; do
        run_case "$kvr" "$c" cuda "$tmp/l" --chunk 16 &&
            cmp_logits "$tmp/l" "$G/$c/logits.f32" cuda >"$tmp/cmp"
        report $? "cuda $c in sub-chunks of 16 tokens: $(cat "$tmp/cmp" 2>/dev/null)" "$(cat "$tmp/err")"
    done
    # over ranks sharing the GPU: a 3-rank KV-Runahead chain (20, 12, 8) against Hugging Face
    if have_mpi; then
        for c in $cases; do
            run_case "mpi 3" "$c" cuda "$tmp/m.l" --scheme kvr --partition 20,12,8 &&
                cmp_logits "$tmp/m.l" "$G/$c/logits.f32" cuda >"$tmp/cmp"
            report $? "cuda 3-rank kvr (20,12,8) $c: $(cat "$tmp/cmp" 2>/dev/null)" "$(cat "$tmp/err")"
        done
    else
        echo "# no mpirun: the cuda chains are not run"
    fi
    echo "1..$n"; [ "$failed" = 0 ]; exit
fi

for c in $cases; do
    run_case "$kvr" "$c" ref "$tmp/$c.l" &&
        cmp_logits "$tmp/$c.l" "$G/$c/logits.f32" ref >"$tmp/cmp"
    report $? "ref $c ($(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['what'])" "$G/$c/case.json")): $(cat "$tmp/cmp" 2>/dev/null)" "$(cat "$tmp/err")"
done
# sub-chunks (--chunk): each after the cache of the ones before, crossing the sliding window's
# edge (mistral_window, qwen2_window) and dynamic NTK's whole-prompt length: Hugging Face's logits
for c in llama_base llama_dynamic mistral_window qwen2_window falcon7b; do
    run_case "$kvr" "$c" ref "$tmp/c.l" --chunk 7 &&
        cmp_logits "$tmp/c.l" "$G/$c/logits.f32" ref >"$tmp/cmp"
    report $? "ref $c in sub-chunks of 7 tokens: $(cat "$tmp/cmp" 2>/dev/null)" "$(cat "$tmp/err")"
done
# misses MODEL WEIGHTS TOKENS GOLDEN: the run succeeds with the golden's count of logits and
# misses the golden (a control: the goldens can fail)
misses() {
    rm -f "$tmp/x.l"
    "$kvr" exec --model "$1" --weights "$2" --tokens "$3" --backend ref --reps 1 --warmup 0 \
        --dump-logits "$tmp/x.l" >/dev/null 2>"$tmp/err" || { echo "the run failed"; return 1; }
    [ "$(wc -c <"$tmp/x.l")" = "$(wc -c <"$4")" ] || { echo "logit counts differ"; return 1; }
    ! cmp_logits "$tmp/x.l" "$4" ref
}
# bare CASE: the case's weights alone in $tmp/bare-CASE (no config.json beside them, which kvr
# would check against --model), for the runs below that read them into another model on purpose
bare() {
    mkdir -p "$tmp/bare-$1" && cp "$G/$1/model.safetensors" "$tmp/bare-$1/" && echo "$tmp/bare-$1"
}
# the config.json beside the weights is the model they were saved from: another one is refused
expect 2 "llama_theta5e5/config.json beside it describes another model than --model (llama_base;" \
    "weights beside a config.json that is not --model's: refused, naming both" \
    -- exec --model "$G/llama_base/config.json" --weights "$G/llama_theta5e5" \
    --tokens "$G/llama_base/tokens.txt" --backend ref --reps 1 --warmup 0
# ... but its dtype (the run's choice) is not compared, and one kvrun cannot read is a warning
mkdir -p "$tmp/f32" "$tmp/newkey" && cp "$G"/llama_base/* "$tmp/f32/" && cp "$G"/llama_base/* "$tmp/newkey/"
python3 - "$tmp" <<'PY'
import json, sys
for d, k, v in (("f32", "dtype", "float32"), ("newkey", "some_new_key", 1)):
    p = f"{sys.argv[1]}/{d}/config.json"
    c = json.load(open(p)); c[k] = v; json.dump(c, open(p, "w"))
PY
"$kvr" exec --model "$G/llama_base/config.json" --weights "$tmp/f32" --tokens "$G/llama_base/tokens.txt" \
    --backend ref --reps 1 --warmup 0 >/dev/null 2>"$tmp/err"
report $? "weights beside the same config saved as float32: run" "$(cat "$tmp/err")"
"$kvr" exec --model "$G/llama_base/config.json" --weights "$tmp/newkey" --tokens "$G/llama_base/tokens.txt" \
    --backend ref --reps 1 --warmup 0 >/dev/null 2>"$tmp/err" && grep -q "is not a config kvrun reads" "$tmp/err"
report $? "weights beside a config kvrun cannot read: run, with a warning" "$(cat "$tmp/err")"
# the same weights under another rotary base are far off
misses "$G/llama_base/config.json" "$(bare llama_theta5e5)" "$G/llama_base/tokens.txt" \
    "$G/llama_theta5e5/logits.f32" >"$tmp/cmp"
report $? "the base-10000 config on the base-500000 golden misses it ($(cat "$tmp/cmp"))" "$(cat "$tmp/err")"
# and partial rotary is what matches Phi-3: the same profile rotating every dimension misses it
sed 's/^rotary_fraction = .*/rotary_fraction = 1/' "$G/phi3_partial/model.ini" >"$tmp/full.ini"
misses "$tmp/full.ini" "$G/phi3_partial" "$G/phi3_partial/tokens.txt" "$G/phi3_partial/logits.f32" >"$tmp/cmp"
report $? "rotary_fraction 1 on the partial-rotary (0.5) golden misses it ($(cat "$tmp/cmp"))" "$(cat "$tmp/err")"

if have_mpi; then
    for c in $cases; do
        run_case "mpi 3" "$c" ref "$tmp/m.l" --scheme kvr --partition 20,12,8 &&
            cmp_logits "$tmp/m.l" "$G/$c/logits.f32" ref >"$tmp/cmp" &&
            python3 -c "
import array, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
sys.exit(0 if max(abs(x - y) for x, y in zip(a, b)) <= 1e-5 else 1)" "$tmp/m.l" "$tmp/$c.l"
        report $? "3-rank kvr (20,12,8) $c: $(cat "$tmp/cmp" 2>/dev/null), equals the single rank" "$(cat "$tmp/err")"
    done
else
    echo "# no mpirun: the 3-rank cases are not run"
fi

# Refusals: exit 2, naming the key and where it came from.
cfg() { # cfg NAME PYTHON-EDIT [CASE]: a copy of CASE's config (llama_base's) with d edited
    mkdir -p "$tmp/$1"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $2; json.dump(d, open(sys.argv[2], 'w'))" \
        "$G/${3:-llama_base}/config.json" "$tmp/$1/config.json"
}
refused() { # refused NAME PYTHON-EDIT NEEDLE WHAT [CASE]: kvr model show exits 2 on cfg's copy, naming NEEDLE
    cfg "$1" "$2" "$5"
    expect 2 "$3" "$4" -- model show "$tmp/$1/config.json"
}
refused partial "d['rope_parameters']['partial_rotary_factor'] = 0.5" 'rope_parameters.partial_rotary_factor' "partial_rotary_factor 0.5 on llama: refused"
refused longrope "d['rope_parameters'] = {'rope_type': 'longrope', 'rope_theta': 1e4, 'short_factor': [1], 'long_factor': [1]}" '"rope_parameters.rope_type" = "longrope": rotary scaling of this type is not supported' "rope_parameters with longrope's keys: refused, naming the type"
refused longrope2 "d['rope_parameters'] = {'rope_type': 'longrope', 'rope_theta': 1e4}" '"rope_parameters.rope_type" = "longrope"' "rope type longrope: refused by name"
cfg v4 "d.pop('rope_parameters'); d['rope_theta'] = 5e5; d['rope_scaling'] = {'type': 'linear', 'factor': 2.0}"
json_check "v4 rope_theta + rope_scaling {type: linear}: read" "d['rope_theta'] == 5e5 and d['rope_scaling'] == 'linear' and d['rope_factor'] == 2" -- model show "$tmp/v4/config.json" --json
refused both "d['rope_scaling'] = {'type': 'linear', 'factor': 2.0}" 'both set' "rope_parameters and rope_scaling together: refused"
refused act "d['hidden_act'] = 'gelu'" '"hidden_act" = "gelu" is not supported' "llama with hidden_act gelu: refused"
refused mbias "d['model_type'] = 'mistral'; d['attention_bias'] = True" '"attention_bias" = true: model_type "mistral" has no such bias' "attention_bias on mistral: refused"
refused quant "d['quantization_config'] = {'quant_method': 'gptq'}" 'quantization_config' "quantization_config: refused"
refused dt "d['dtype'] = 'float32'; d['torch_dtype'] = 'bfloat16'" 'differ' "dtype and torch_dtype that differ: refused"
refused qmix "d['layer_types'] = ['full_attention', 'sliding_attention']" 'layer_types' "qwen2 with one sliding and one full layer: refused" qwen2_window
refused qmwl "d.pop('layer_types'); d['max_window_layers'] = 1" '"max_window_layers" = 1' "qwen2 max_window_layers inside the model: refused" qwen2_window
json_check "model show: llama3 golden's rope fields and a hash" \
    "d['rope_scaling'] == 'llama3' and d['rope_factor'] == 8 and d['rope_original_max_pos'] == 16 and len(d['hash']) == 16 and d['name'] == 'llama3'" \
    -- model show "$G/llama3/config.json" --json
( cd "$G/llama3" && "$kvr" model show config.json --json ) >"$tmp/a.json" 2>&1
python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))['name'] == 'llama3' else 1)" "$tmp/a.json"
report $? "the name comes from the folder, not the path's spelling (config.json from inside it)"

common="--backend ref --reps 1 --warmup 0"
expect 2 "is not used by model llama_base (its config does not have it" "a checkpoint with biases the config lacks: refused, naming the tensor" \
    -- exec --model "$G/llama_base/config.json" --weights "$(bare llama_bias)" --tokens "$G/llama_base/tokens.txt" $common
"$kvr" exec --model "$G/llama_base/config.json" --weights "$tmp/bare-llama_bias/model.safetensors" --tokens "$G/llama_base/tokens.txt" $common --allow-unused >/dev/null 2>"$tmp/err"
report $? "--allow-unused accepts it" "$(cat "$tmp/err")"
mkdir -p "$tmp/shards" && cp "$G"/llama_sharded/*.safetensors "$tmp/shards/"
python3 - "$G/llama_sharded/model.safetensors.index.json" "$tmp/shards/model.safetensors.index.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
wm = d['weight_map']
name = 'model.layers.1.mlp.down_proj.weight'
others = sorted(set(wm.values()) - {wm[name]})
wm[name] = others[0]  # the index points at a shard that does not hold it
json.dump(d, open(sys.argv[2], 'w'))
PY
expect 2 "is missing from shard" "a tensor missing from the shard its index names: refused, naming the shard" \
    -- exec --model "$G/llama_base/config.json" --weights "$tmp/shards" --tokens "$G/llama_base/tokens.txt" $common
printf '1\n2\n64\n' >"$tmp/oov.txt"
expect 2 "oov.txt:3: token 64 is outside the vocabulary [0, 64)" "a prompt id outside the vocabulary: file:line" \
    -- exec --model "$G/llama_base/config.json" --weights "$G/llama_base" --tokens "$tmp/oov.txt" $common
printf '1\nx\n' >"$tmp/bad.txt"
expect 2 "bad.txt:2: 'x' is not an integer" "a prompt line that is not an integer: file:line" \
    -- exec --model "$G/llama_base/config.json" --weights "$G/llama_base" --tokens "$tmp/bad.txt" $common
expect 2 "holds 40 tokens, but --ctx is 39" "--tokens and a different --ctx: refused" \
    -- exec --model "$G/llama_base/config.json" --weights "$G/llama_base" --tokens "$G/llama_base/tokens.txt" --ctx 39 $common
expect 0 "exceeds the model's max_position_embeddings (16)" "--ctx past max_position_embeddings warns" \
    -- exec --model "$G/llama_dynamic/config.json" --weights "$G/llama_dynamic" --tokens "$G/llama_dynamic/tokens.txt" $common
# a header edited in one place (st_edit NAME PYTHON-EDIT: llama_base's file, its header h as
# text edited, the data kept): what safetensors' own reader refuses is refused too
st_edit() {
    mkdir -p "$tmp/$1"
    python3 - "$G/llama_base/model.safetensors" "$tmp/$1/model.safetensors" "$2" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = b[8:8 + n].decode()
exec(sys.argv[3])
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(h)) + h.encode() + b[8 + n:])
PY
}
lb="--model $G/llama_base/config.json --tokens $G/llama_base/tokens.txt $common"
st_edit dtype2 "h = h.replace('\"model.norm.weight\":{\"dtype\":\"BF16\"', '\"model.norm.weight\":{\"dtype\":\"F16\",\"dtype\":\"BF16\"')"
expect 2 'key "model.norm.weight.dtype" appears more than once' \
    "a tensor's dtype given twice (F16, then BF16): refused, not read as the first" \
    -- exec $lb --weights "$tmp/dtype2"
st_edit offs3 "import json; d = json.loads(h); d['model.norm.weight']['data_offsets'].append(7); h = json.dumps(d)"
expect 2 "model.norm.weight lacks dtype, shape or data_offsets (two integers)" \
    "data_offsets of three numbers: refused" -- exec $lb --weights "$tmp/offs3"
st_edit meta "import json; d = json.loads(h); d['__metadata__'] = {'format': 'pt', 'step': 3}; h = json.dumps(d)"
expect 2 "__metadata__ is not an object of strings" "__metadata__ with a number: refused" \
    -- exec $lb --weights "$tmp/meta"
st_edit nul "h = h.replace('\"model.norm.weight\"', '\"model.norm.weight\\\\u0000x\"')"
expect 2 'a string holds \u0000, a NUL character' \
    "a tensor named model.norm.weight\\u0000x: refused (SQLite's JSON cut it to model.norm.weight)" \
    -- exec $lb --weights "$tmp/nul"
st_edit shape "import json; d = json.loads(h); d['model.norm.weight']['shape'] = [1, 64]; h = json.dumps(d)"
expect 2 "model.norm.weight has shape [1, 64], the model (llama_base) needs [64]" \
    "a wrong shape's message gives both shapes as they are" -- exec $lb --weights "$tmp/shape"
# a profile the Llama names cannot hold: the GELU MLP's one up projection (gate_proj was read
# as it, up_proj written past it), a LayerNorm's biases (left as the buffer's last contents)
for v in "mlp = gelu|up.weight of 64 rows; the Llama checkpoint layout's names hold 128" \
    "norm = layernorm|attn_norm.bias of 64 rows; the Llama checkpoint layout's names hold 0"; do
    printf '[model]\nname = lb\nn_layers = 2\nd_model = 64\nn_heads = 2\nn_kv_heads = 1\nd_ffn = 64\nvocab = 64\nnorm = rmsnorm\nmlp = swiglu\nnorm_eps = 1e-06\n' |
        sed "s/^${v%% =*} = .*/${v%%|*}/" >"$tmp/lb.ini"
    expect 2 "${v#*|}" "Llama's names for a profile with ${v%%|*}: refused, naming the tensor" \
        -- exec --model "$tmp/lb.ini" --weights "$(bare llama_base)" --tokens "$G/llama_base/tokens.txt" $common
done
mkdir -p "$tmp/both" && cp "$G"/llama_sharded/* "$tmp/both/" && cp "$G/llama_base/model.safetensors" "$tmp/both/"
expect 2 "holds both model.safetensors and model.safetensors.index.json" \
    "a folder with a single file and an index: refused (transformers reads the file)" \
    -- exec $lb --weights "$tmp/both"
mkdir -p "$tmp/wm2" && cp "$G"/llama_sharded/*.safetensors "$tmp/wm2/"
python3 -c "import sys; t = open(sys.argv[1]).read().rstrip(); open(sys.argv[2], 'w').write(t[:-1] + ', \"weight_map\": {\"x\": \"y.safetensors\"}}')" \
    "$G/llama_sharded/model.safetensors.index.json" "$tmp/wm2/model.safetensors.index.json"
expect 2 'key "weight_map" appears more than once' \
    "an index with weight_map twice: refused (Python reads the last)" -- exec $lb --weights "$tmp/wm2"
# finite weights whose activations overflow float (norm weights of bf16's largest value): the
# logits are NaN, and their argmax (token 0) was reported as the first token, exit 0
mkdir -p "$tmp/huge" && printf 'kept\n' >"$tmp/huge.l"
python3 - "$G/llama_base/model.safetensors" "$tmp/huge/model.safetensors" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
for k, v in json.loads(b[8:8 + n]).items():
    if k.endswith('layernorm.weight') or k == 'model.norm.weight':
        a, e = v['data_offsets']
        b[8 + n + a:8 + n + e] = struct.pack('<H', 0x7f7f) * ((e - a) // 2)
open(sys.argv[2], 'wb').write(bytes(b))
PY
expect 1 "logit 0 is NaN: the prefill overflowed float" \
    "NaN logits from overflowing activations: exit 1, not a first token" \
    -- exec $lb --weights "$tmp/huge" --dump-logits "$tmp/huge.l"
[ "$(cat "$tmp/huge.l")" = kept ]; report $? "  and --dump-logits is left as it was"
if have_mpi; then
    mpi 2 exec $lb --weights "$tmp/huge" --scheme kvr >/dev/null 2>"$tmp/err"
    rc=$?
    [ "$rc" = 1 ] && grep -q "logit 0 is NaN" "$tmp/err"
    report $? "  the same on a 2-rank chain: exit 1" "exit $rc: $(head -3 "$tmp/err")"
fi
expect 2 "--seed 5: nothing is drawn" "--seed with --weights and --tokens (nothing seeded): refused" \
    -- exec $lb --weights "$G/llama_base" --seed 5
"$kvr" exec --model "$G/mistral_window/config.json" --weights "$G/mistral_window" --tokens "$G/mistral_window/tokens.txt" $common \
    --dump-kv "$tmp/kv" --timeline "$tmp/tl.tsv" >/dev/null 2>"$tmp/err" &&
    [ "$(wc -c <"$tmp/kv")" = $((2 * 2 * 40 * 64 * 4)) ] && head -1 "$tmp/tl.tsv" | grep -q "^rank	layer	kind" &&
    [ "$(grep -c "	compute	" "$tmp/tl.tsv")" = 6 ]
report $? "one process honours --dump-kv and --timeline" "$(cat "$tmp/err")"
echo "1..$n"
[ "$failed" = 0 ]
