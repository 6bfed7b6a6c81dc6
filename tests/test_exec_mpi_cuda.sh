#!/bin/sh
# The schemes on real ranks with the cuda backend: p ranks share the one GPU (mpi
# communicator, host-staged), so this proves the multi-rank CUDA path, not its speed. The last
# rank's logits and KV cache match the single-rank cuda run within bf16 bounds (relative L2
# error <= 2e-2), kvr in each KV hand-off mode; ring (on the fast attention kernel) pass-KV and
# pass-Q for MHA, GQA and MQA; tsp-paper for MQA too. Skipped (77) without a GPU, mpirun or an MPI build.
# Usage: SCRIPT KVR; KVR_TEST_RING_ONLY=1 runs the ring's cases alone, on 4 ranks.
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
gpu_setup
mpi_setup
printf '[model]\nname = gqa64\nn_layers = 3\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >"$tmp/m.ini"
common="--model $tmp/m.ini --ctx 301 --backend cuda --reps 1 --warmup 0"
cmp=close_bf16
ref_run "single-rank cuda reference"
[ -n "${KVR_TEST_RING_ONLY:-}" ] && ps_other= || ps_other="2 3 4"
for p in $ps_other; do
    case $p in 3) part="--partition 150,90,61" ;; 4) part="--partition 120,80,60,41" ;; *) part= ;; esac
    chains_vs_ref $p "$part" "cuda: " "logits and KV cache within bf16 bounds"
done
# ring (zig-zag, rank 0 holds the last token and dumps), pass-KV and pass-Q, MHA, GQA and MQA
printf '[model]\nname = mha64\nn_layers = 2\nd_model = 256\nn_heads = 4\nn_kv_heads = 4\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >"$tmp/mha.ini"
printf '[model]\nname = mqa64\nn_layers = 2\nd_model = 256\nn_heads = 4\nn_kv_heads = 1\nd_ffn = 512\nvocab = 500\nnorm = layernorm\nmlp = gelu\nparallel_attn = true\nblock_norms = 1\ntied_embeddings = true\ndtype = bf16\n' >"$tmp/mqa.ini"
[ -n "${KVR_TEST_RING_ONLY:-}" ] && ps=4 || ps="2 3 4"
# 301: blocks shorter than a tile; 1537 (gqa): blocks of several tiles, not multiples of one
for case in m:301 mha:301 mqa:301 m:1537; do
    model=${case%:*} ctx=${case#*:}
    common="--model $tmp/$model.ini --ctx $ctx --backend cuda --reps 1 --warmup 0"
    ref_run "$model ctx $ctx: single-rank cuda reference"
    for p in $ps; do
        rings_vs_ref $p "cuda: $model ctx $ctx: " "rank 0's logits and KV cache within bf16 bounds"
    done
done
# tsp-paper for MQA (GQA runs in chains_vs_ref above): K/V expanded to 4 query heads
if [ -z "${KVR_TEST_RING_ONLY:-}" ]; then
    common="--model $tmp/mqa.ini --ctx 301 --backend cuda --reps 1 --warmup 0"
    ref_run "mqa ctx 301: single-rank cuda reference"
    vs_ref 3 "cuda: mqa ctx 301: tsp-paper on 3 ranks: logits and KV cache within bf16 bounds" --scheme tsp-paper
fi
echo "1..$n"
[ "$failed" = 0 ]
