#!/bin/sh
# The hybrid layouts on real ranks (ref backend, mpi communicator, --tp T): p ranks as p/T
# stages of T tensor-parallel shards (ranks sT..sT+T-1), the scheme between the stages shard by
# shard. For kvr (uneven partitions, each KV hand-off mode), tsp, tsp-causal, ring (pass-KV and
# pass-Q), ring-pass and tp (one stage of all the ranks), p up to 8 and T in 1, 2, 4, over MHA,
# GQA (T above the KV heads too: replicated KV heads), MQA (Falcon's parallel block, tied
# head), biases with an untied head and MLP columns and a vocabulary T does not divide, a
# sliding window, and Hugging Face checkpoints (Llama's separate q/k/v and gate/up, Falcon's
# fused grouped QKV with and without biases, Mistral's window): the logits stage's logits and
# the whole KV cache (its shards' heads gathered) equal the single rank's within float32
# rounding: max |diff| <= 1e-5 max(1, max |single|) (sums of the shards' partial products run
# in another order). Then the refusals. Skipped (77) without mpirun or an MPI build.
# Usage: test_exec_tp.sh KVR
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
G="$src/tests/golden/hf"
mpi_setup

# same A B: same_scaled (tap_helpers.sh)
same() { same_scaled "$@"; }

rank_models "$tmp" # gqa: 4 heads over 2 KV heads; mqa: 3 heads, not for T = 2 or 4
printf '[model]\nname = mha\nn_layers = 2\nd_model = 128\nn_heads = 4\nn_kv_heads = 4\nd_ffn = 160\nvocab = 64\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >"$tmp/mha.ini"
printf '[model]\nname = mqa4\nn_layers = 2\nd_model = 192\nn_heads = 4\nn_kv_heads = 1\nd_ffn = 256\nvocab = 80\nnorm = layernorm\nmlp = gelu\nparallel_attn = true\nblock_norms = 1\ntied_embeddings = true\ndtype = bf16\n' >"$tmp/mqa4.ini"
# biases (QKV column-parallel and sliced; output and down row-parallel, added once), untied head,
# two parallel norms; d_ffn 190 and vocab 90 split unevenly over 4 shards
printf '[model]\nname = bias\nn_layers = 2\nd_model = 128\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 190\nvocab = 90\nnorm = layernorm\nmlp = gelu\nparallel_attn = true\nblock_norms = 2\nbias_qkv = true\nbias_out = true\nbias_mlp = true\ndtype = bf16\n' >"$tmp/bias.ini"
printf '[model]\nname = window\nn_layers = 2\nd_model = 128\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 192\nvocab = 96\nnorm = rmsnorm\nmlp = swiglu\nsliding_window = 8\ndtype = bf16\n' >"$tmp/window.ini"

ctx=37 backend=ref cmp=same what="equal single"

layouts gqa 2:2:tp 4:4:tp 4:1:kvr:15,10,7,5 \
    4:2:kvr:25,12 "4:2:kvr:25,12:--kv-forward streamed" "4:2:kvr:25,12:--kv-forward direct" \
    4:2:tsp 4:2:tsp-causal 4:2:ring "4:2:ring::--ring-pass q" 4:2:ring-pass \
    6:2:kvr:20,10,7 8:2:kvr:15,10,7,5 "8:2:kvr:15,10,7,5:--kv-forward streamed" \
    "8:2:kvr:15,10,7,5:--kv-forward direct" 8:2:tsp 8:2:ring \
    8:4:kvr:25,12 8:4:tsp-causal 8:4:ring "8:4:kvr:25,12:--kv-forward direct"
layouts mha 4:4:tp 8:2:kvr:15,10,7,5 8:4:ring 4:2:tsp
layouts mqa4 4:2:kvr:25,12 8:4:tsp 4:4:tp 8:2:ring
layouts bias 4:4:tp "8:4:kvr:25,12:--kv-forward streamed" 4:2:tsp 8:2:ring 2:2:kvr
layouts window 8:2:ring 4:4:tp 8:4:tsp-causal 4:2:tsp 4:2:ring-pass "4:2:ring::--ring-pass q"
layouts window 4:2:kvr:25,12 "8:2:kvr:15,10,7,5:--kv-forward direct"

# checkpoints: the slices of each tensor the loader reads (40-token prompts)
golden() { # golden CASE P:T:SCHEME[:PARTITION]...
    c=$1; shift
    w="--model $G/$c/config.json --weights $G/$c --tokens $G/$c/tokens.txt --backend ref --reps 1 --warmup 0"
    mpi 1 exec $w --dump-logits "$tmp/ref.l" >/dev/null 2>"$tmp/err"
    report $? "$c: single-rank reference" "$(cat "$tmp/err")"
    for case in "$@"; do
        p=$(echo "$case" | cut -d: -f1) t=$(echo "$case" | cut -d: -f2) scheme=$(echo "$case" | cut -d: -f3)
        part=$(echo "$case" | cut -d: -f4)
        rm -f "$tmp/l"
        mpi "$p" exec $w --scheme "$scheme" --tp "$t" ${part:+--partition $part} --dump-logits "$tmp/l" >/dev/null 2>"$tmp/err" &&
            same "$tmp/l" "$tmp/ref.l"
        report $? "$c checkpoint: $scheme x$t on $p ranks ${part:-even}: logits equal single" "$(cat "$tmp/err")"
    done
}
golden falcon40b 4:2:kvr:24,16 2:2:tp
golden falcon_bias 4:2:tsp 2:2:tp
golden llama_base 8:2:kvr:14,10,9,7
golden mistral_window 4:2:ring
golden qwen2_bias 2:2:tp

# the check can fail: a layout's logits against another seed's weights
common="--model $tmp/gqa.ini --ctx 37 --backend ref --reps 1 --warmup 0"
mpi 1 exec $common --seed 1 --dump-logits "$tmp/ref.l" >/dev/null 2>&1
mpi 4 exec $common --scheme kvr --tp 2 --dump-logits "$tmp/l" >/dev/null 2>&1
! same "$tmp/l" "$tmp/ref.l"
report $? "the check can fail: kvr x2 against another seed's single run differs"

# refusals (naming the option)
common="--model $tmp/gqa.ini --ctx 37 --backend ref --reps 1 --warmup 0"
refuse() { # refuse NP NEEDLE NAME -- ARGS...: every rank refuses (kvr exits 2; mpirun's code
    # races between the ranks' aborts, so only its failure is checked) and nothing runs
    np=$1 needle=$2 name=$3; shift 4
    mpi "$np" exec "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ "$rc" != 0 ] && grep -qF -- "$needle" "$tmp/err" && ! grep -q TTFT "$tmp/out"; then report 0 "$name"
    else report 1 "$name" "exit $rc (want a failure); stderr: $(cat "$tmp/err")"; fi
}
refuse 4 "--tp: '0' is not an integer" "--tp 0 is refused" -- $common --scheme kvr --tp 0
refuse 4 "--tp: 'x' is not an integer" "--tp x is refused" -- $common --scheme kvr --tp x
refuse 4 "--tp 3 does not divide the 4 ranks" "t must divide the ranks" -- $common --scheme kvr --tp 3
refuse 6 "--tp 3: does not divide the 4 heads" "t must divide the heads" -- $common --scheme kvr --tp 3
printf '[model]\nname = kv3\nn_layers = 1\nd_model = 96\nn_heads = 6\nn_kv_heads = 3\nd_ffn = 64\nvocab = 32\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >"$tmp/kv3.ini"
refuse 2 "--tp 2: neither divides nor is a multiple of the 3 KV heads" "t must divide the KV heads or be a multiple of them" \
    -- --model "$tmp/kv3.ini" --ctx 16 --backend ref --scheme kvr --tp 2
refuse 2 "--tp 2: scheme single has no tensor-parallel layout (tsp, tsp-causal, tsp-paper, ring, kvr, ring-pass have;" "--tp with --scheme single names the layouts the executor runs" -- $common --scheme single --tp 2
refuse 4 "--scheme tp runs one stage of all 4 ranks: not --tp 2" "--scheme tp with --tp other than P" -- $common --scheme tp --tp 2
refuse 4 "give --tp 4" "--scheme tp in a list without --tp P" -- $common --scheme kvr,tp
refuse 4 "--tp 2: --bw (it sets the links inside the stages too" "--tp with --bw (every link, the stages' too)" -- $common --scheme kvr --tp 2 --bw 10GB/s
refuse 4 "--timeline not yet" "--tp with --timeline" -- $common --scheme kvr --tp 2 --timeline "$tmp/t.tsv"
refuse 4 "--partition (2 stages of --tp 2)" "the partition has one chunk per stage" -- $common --scheme kvr --tp 2 --partition 10,10,10,7
expect 2 "--tp" "--tp in one process is refused" -- exec $common --tp 2
echo "1..$n"
[ "$failed" = 0 ]
