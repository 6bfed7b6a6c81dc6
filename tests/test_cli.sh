#!/bin/sh
# The kvr program end to end: outputs, JSON keys, exit codes and messages for bad input.
# Usage: test_cli.sh PATH/TO/kvr   (TAP on stdout)
kvr=$1
n=0 failed=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

report() { # report PASS NAME [DETAIL]
    n=$((n + 1))
    if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); [ -n "$3" ] && printf '%s\n' "$3" | sed 's/^/#   /'; fi
}

# expect CODE NEEDLE NAME -- ARGS...: exit code and a substring of stderr
expect() {
    code=$1 needle=$2 name=$3; shift 4
    "$kvr" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ "$rc" = "$code" ] && grep -qF -- "$needle" "$tmp/err"; then report 0 "$name"
    else report 1 "$name" "exit $rc (want $code); stderr: $(cat "$tmp/err")"; fi
}

# json_check NAME PYTHON-EXPR -- ARGS...: stdout is JSON and the expression on it (d) holds
json_check() {
    name=$1 expr=$2; shift 3
    "$kvr" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($expr) else 1)" "$tmp/out" 2>"$tmp/perr"
    py=$?
    if [ "$rc" = 0 ] && [ "$py" = 0 ]; then report 0 "$name"
    else report 1 "$name" "exit $rc, check $py: $(head -c 400 "$tmp/out") $(cat "$tmp/err" "$tmp/perr")"; fi
}

keys="['name','n_layers','d_model','n_heads','n_kv_heads','head_dim','d_ffn','vocab','params','weight_bytes','kv_bytes_per_token']"
json_check "model show llama-7b --json: keys and exact count" \
    "all(k in d for k in $keys) and d['params'] == 6738415616 and d['weight_bytes'] == 2*6738415616 and d['kv_bytes_per_token'] == 32*16384" \
    -- model show llama-7b --json
json_check "model show falcon-7b --json: keys and exact count" \
    "all(k in d for k in $keys) and d['params'] == 6921720704 and d['n_kv_heads'] == 1 and d['kv_bytes_per_token'] == 32*256" \
    -- model show falcon-7b --json
# Causal attention FLOPs for ctx C: layers * (2+2) * h*dh * C(C+1)/2 + softmax 5*h*C(C+1)/2
json_check "model show --ctx 16k: prefill FLOPs split" \
    "d['prefill_flops_attention'] == 32*(4*4096+5*32)*16384*16385//2 and d['prefill_flops'] == d['prefill_flops_linear'] + d['prefill_flops_attention'] and len(d['ops']) == 15" \
    -- model show llama-7b --ctx 16k --json
json_check "model list --json lists the seven presets" \
    "len(d) == 7 and {m['name'] for m in d} >= {'llama-7b','falcon-7b','llama-2-70b','llama-3-8b','mistral-7b','llama-13b','llama-30b'}" \
    -- model list --json
json_check "model show FILE.ini" "d['params'] == 6921720704" \
    -- model show "$KVR_SOURCE_ROOT/data/models/falcon-7b.ini" --json

"$kvr" model show llama-7b >"$tmp/out" 2>&1
report $? "model show prints a table" 
grep -q "6738415616" "$tmp/out"; report $? "the table shows the exact parameter count"
"$kvr" --version >"$tmp/out" 2>&1 && grep -q "^kvr " "$tmp/out" && grep -q "features: cuda=" "$tmp/out"
report $? "--version prints version and features"
"$kvr" model show --help >"$tmp/out" 2>&1 && grep -q "default" "$tmp/out" && grep -q "16k" "$tmp/out"
report $? "help shows defaults and units"
"$kvr" help >"$tmp/out" 2>&1 && grep -q "model" "$tmp/out"
report $? "kvr help lists commands"

printf '[model]\nn_layers = 2\nd_model = 10\nn_heads = 3\nd_ffn = 8\nvocab = 4\nnorm = rmsnorm\nmlp = swiglu\n' >"$tmp/div.ini"
printf '{"model_type": "llama", "hidden_size": 64,' >"$tmp/bad.json"
printf '{"model_type": "llama", "num_hidden_layers": 2}' >"$tmp/missing.json"
expect 2 "unknown model 'gpt-5'" "unknown model exits 2" -- model show gpt-5
expect 2 "div.ini:4: n_heads = 3 does not divide d_model = 10" "heads not dividing the width exit 2" -- model show "$tmp/div.ini"
expect 2 "bad.json: malformed JSON" "malformed JSON exits 2" -- model show "$tmp/bad.json"
expect 2 "missing key \"hidden_size\"" "missing JSON key exits 2" -- model show "$tmp/missing.json"
expect 2 "cannot open" "missing file exits 2" -- model show "$tmp/none.ini"
expect 2 "--ctx: token count '16q' has unknown suffix 'q'" "unknown unit suffix exits 2" -- model show llama-7b --ctx 16q
expect 2 "--ctx: '0' must be positive" "zero context exits 2" -- model show llama-7b --ctx 0
expect 2 "out of range" "context out of range exits 2" -- model show llama-7b --ctx 99999999999999999999999
expect 2 "unknown option '--bogus'" "unknown option exits 2" -- model show llama-7b --bogus
expect 2 "needs a value" "option without its value exits 2" -- model show llama-7b --ctx
expect 2 "unknown command 'frobnicate'" "unknown command exits 2" -- frobnicate
expect 2 "missing command" "no command exits 2" --

echo "1..$n"
[ "$failed" = 0 ]
