#!/bin/sh
# The hybrid layouts on the cuda backend (--tp T): p ranks share the one GPU (mpi
# communicator, host-staged all-reduces and KV), so this proves the sharded CUDA path (the
# slices on the device, the row-parallel residual adds, the vocabulary-parallel LM head), not its
# speed. The logits stage's logits and KV cache match the single-rank cuda run within bf16
# bounds (relative L2 error <= 2e-2) for tp, kvr (uneven, each hand-off mode), tsp, tsp-causal,
# ring and ring-pass over GQA (T above the KV heads too), MQA and biases; and a Falcon fused-QKV
# checkpoint. Skipped (77) without a GPU, mpirun or an MPI build. Usage: SCRIPT KVR
kvr=$1
src=$(cd "$(dirname "$0")/.." && pwd)
G="$src/tests/golden/hf"
tmp=$(mktemp -d /tmp/kvr-test-exec-tp-cuda-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
. "$(dirname "$0")/tap_helpers.sh"
if ! "$kvr" bench attention --ctx 64 --reps 1 >/dev/null 2>&1; then
    echo "1..0 # SKIP no GPU"
    exit 77
fi
mpi_setup
close() {
    python3 - "$1" "$2" <<'PY'
import array, math, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
num = sum((x - y) ** 2 for x, y in zip(a, b)); den = sum(y * y for y in b)
sys.exit(0 if len(a) == len(b) > 0 and math.sqrt(num / den) <= 2e-2 else 1)
PY
}
printf '[model]\nname = gqa64\nn_layers = 3\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >"$tmp/gqa.ini"
printf '[model]\nname = mqa64\nn_layers = 2\nd_model = 256\nn_heads = 4\nn_kv_heads = 1\nd_ffn = 512\nvocab = 500\nnorm = layernorm\nmlp = gelu\nparallel_attn = true\nblock_norms = 1\ntied_embeddings = true\ndtype = bf16\n' >"$tmp/mqa.ini"
printf '[model]\nname = bias64\nn_layers = 2\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 510\nvocab = 498\nnorm = layernorm\nmlp = gelu\nparallel_attn = true\nblock_norms = 2\nbias_qkv = true\nbias_out = true\nbias_mlp = true\ndtype = bf16\n' >"$tmp/bias.ini"
layouts() { # layouts MODEL P:T:SCHEME[:PARTITION[:OPTION VALUE]]...
    model=$1; shift
    common="--model $tmp/$model.ini --ctx 301 --backend cuda --reps 1 --warmup 0"
    mpi 1 exec $common --scheme single --dump-logits "$tmp/ref.l" --dump-kv "$tmp/ref.kv" >/dev/null 2>"$tmp/err"
    report $? "$model: single-rank cuda reference" "$(cat "$tmp/err")"
    for case in "$@"; do
        p=$(echo "$case" | cut -d: -f1) t=$(echo "$case" | cut -d: -f2) scheme=$(echo "$case" | cut -d: -f3)
        part=$(echo "$case" | cut -d: -f4) opt=$(echo "$case" | cut -d: -f5)
        rm -f "$tmp/l" "$tmp/kv"
        mpi "$p" exec $common --scheme "$scheme" --tp "$t" ${part:+--partition $part} $opt \
            --dump-logits "$tmp/l" --dump-kv "$tmp/kv" >/dev/null 2>"$tmp/err" &&
            close "$tmp/l" "$tmp/ref.l" && close "$tmp/kv" "$tmp/ref.kv"
        report $? "cuda: $model $scheme x$t on $p ranks ${part:-even}${opt:+ $opt}: logits and KV cache within bf16 bounds" "$(cat "$tmp/err")"
    done
}
layouts gqa 2:2:tp 4:4:tp 4:2:kvr:180,121 "4:2:kvr:180,121:--kv-forward streamed" \
    "4:2:kvr:180,121:--kv-forward direct" 4:2:tsp 4:2:tsp-causal 4:2:ring "4:2:ring::--ring-pass q" \
    4:2:ring-pass 8:4:kvr:180,121 6:2:kvr:150,90,61
layouts mqa 4:4:tp 4:2:kvr:180,121 4:2:ring
layouts bias 4:4:tp 4:2:tsp
w="--model $G/falcon40b/config.json --weights $G/falcon40b --tokens $G/falcon40b/tokens.txt --backend cuda --reps 1 --warmup 0"
mpi 1 exec $w --dump-logits "$tmp/ref.l" >/dev/null 2>"$tmp/err" &&
    mpi 4 exec $w --scheme kvr --tp 2 --partition 24,16 --dump-logits "$tmp/l" >/dev/null 2>>"$tmp/err" &&
    close "$tmp/l" "$tmp/ref.l"
report $? "cuda: Falcon fused-QKV checkpoint, kvr x2 on 4 ranks within bf16 bounds of one rank" "$(cat "$tmp/err")"
echo "1..$n"
[ "$failed" = 0 ]
