#!/bin/bash
# Second multi-GPU pass: the nccl ring after the group-event fix, KVR-E, the NCCL link
# bandwidths, and KV-Runahead and TSP with links emulated at 10 GB/s (mpi communicator).
set -uo pipefail
export NCCL_NVLS_ENABLE=0 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
out=${OUT:-gpu-out}; mkdir -p "$out"; . .gpu-deps/env.sh
P=$(nvidia-smi -L | wc -l)
[ -f build-gpu/build.ninja ] || meson setup build-gpu --buildtype=release -Dcuda=enabled -Dmpi=enabled >/dev/null 2>&1
meson compile -C build-gpu 2>&1 | grep -E "error" | head
kvr=build-gpu/experiments/kvr; db=$out/multi2.sqlite
run() { timeout 90 mpirun -np "$1" --bind-to none -x NCCL_NVLS_ENABLE "${@:2}"; }
printf '[model]\nname = gqa64\nn_layers = 3\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/m.ini
c="--model /tmp/m.ini --ctx 1024 --backend cuda --reps 1 --warmup 0 --timeout 20"
run 1 $kvr exec $c --scheme single --dump-logits /tmp/r.l >/dev/null
for s in ring-pass kvr; do
    run $P $kvr exec $c --scheme $s --comm nccl --dump-logits /tmp/n.l >/dev/null 2>&1
    python3 -c "
import array,math
a,b=array.array('f'),array.array('f'); a.frombytes(open('/tmp/r.l','rb').read()); b.frombytes(open('/tmp/n.l','rb').read())
print('nccl $s p=$P rel err %.2e' % math.sqrt(sum((x-y)**2 for x,y in zip(a,b))/sum(y*y for y in a)))"
done 2>&1 | tee "$out/nccl_check2.txt"
run $P $kvr bench comm --comm nccl --max-bytes 256MB --iters 10 2>&1 | tail -8 | tee "$out/comm_nccl.txt"
for m in llama-7b falcon-7b; do for ctx in 16k 32k; do
    run $P $kvr exec --model $m --ctx $ctx --backend cuda --reps 3 --warmup 1 --db $db --json --timeout 20 --comm nccl --scheme kvr 2>&1 | grep -E '"ttft_s"|rror' | sed "s/^/$m $ctx kvr-e nccl /"
done; done | tee "$out/prefill2.txt"
for s in kvr tsp; do
    run $P $kvr exec --model llama-7b --ctx 16k --backend cuda --reps 2 --warmup 1 --db $db --json --timeout 30 --comm mpi --scheme $s --machine data/machines/h100-calibrated.ini --bw 10GB/s 2>&1 | grep -E '"ttft_s"|achieved|"method"|rror' | tr -d '\n' | sed "s/^/llama 16k $s mpi 10GB\/s /"; echo
done | tee -a "$out/prefill2.txt"
