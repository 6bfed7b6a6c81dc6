#!/bin/bash
# Issue 9 on one host with several GPUs (one rank per GPU, NCCL, multicast off): correctness of
# the nccl path against one rank, the link bandwidths (kvr bench comm), then Llama-7B and
# Falcon-7B prefills: single, tsp, tsp-causal, KVR-E, KVR-S (the lookup table's partition),
# ring, stored in $OUT/multi.sqlite for `kvr validate --multi-gpu`.
. scripts/gpu_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpus.txt"
run() { timeout "${T:-120}" mpirun -np "$1" --bind-to none -x NCCL_NVLS_ENABLE "${@:2}"; }
db=$out/multi.sqlite
# 1. nccl and mpi against one rank (small model, head_dim 64)
printf '[model]\nname = gqa64\nn_layers = 3\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/m.ini
c="--model /tmp/m.ini --ctx 1024 --backend cuda --reps 1 --warmup 0"
run 1 $kvr exec $c --scheme single --dump-logits /tmp/r.l >/dev/null
for s in kvr tsp ring-pass; do
    T=60 run $P $kvr exec $c --timeout 20 --scheme $s --comm nccl --dump-logits /tmp/n.l --json 2>&1 | grep -E '"first_token"|error' | tr -d '\n'
    python3 -c "
import array,math,sys
a,b=array.array('f'),array.array('f'); a.frombytes(open('/tmp/r.l','rb').read()); b.frombytes(open('/tmp/n.l','rb').read())
print(' nccl $s p=$P rel err %.2e' % math.sqrt(sum((x-y)**2 for x,y in zip(a,b))/sum(y*y for y in a)))"
done 2>&1 | tee "$out/nccl_check.txt"
# 2. links
T=60 run $P $kvr bench comm --comm nccl --max-bytes 256MB --iters 10 | tee "$out/comm_nccl.txt" | tail -4
# 3. prefills
$kvr search --db "$db" --model llama-7b,falcon-7b --machine data/machines/h100-calibrated.ini --gpus $P --ctx 16k,32k >/dev/null
for m in llama-7b falcon-7b; do
    for ctx in 16k 32k; do
        k="--model $m --ctx $ctx --backend cuda --reps 3 --warmup 1 --db $db --json --timeout 20"
        run 1 $kvr exec $k --scheme single | grep -E '"ttft_s"' | sed "s/^/$m $ctx single /"
        part=$($kvr lookup --db "$db" --model $m --machine data/machines/h100-calibrated.ini --gpus $P --ctx $ctx --json | python3 -c "import json,sys; print(','.join(map(str,json.load(sys.stdin)['partition_tokens'])))")
        for s in "kvr" "kvr --partition $part" tsp tsp-causal ring-pass; do
            run $P $kvr exec $k --comm nccl --scheme $s 2>&1 | grep -E '"ttft_s"|error' | sed "s/^/$m $ctx $s /"
        done
    done
done 2>&1 | tee "$out/prefill.txt"
$kvr validate --multi-gpu --db "$db" --machine data/machines/h100-calibrated.ini 2>&1 | tail -40
