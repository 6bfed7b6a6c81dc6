#!/bin/bash
# What issue 9 still lacks, for the next session with a multi-GPU kind (run after
# scripts/gpu_multi.sh on the same machine): 2 and P GPUs at 4k and 8k too, KVR-P (24k,
# interpolated), links emulated at 10 GB/s and one slow link (nccl with the send times over
# MPI), into $OUT/multi3.sqlite; then the validation of everything.
set -uo pipefail
export NCCL_NVLS_ENABLE=0 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
out=${OUT:-gpu-out}; mkdir -p "$out"; . .gpu-deps/env.sh
P=$(nvidia-smi -L | wc -l)
[ -f build-gpu/build.ninja ] || meson setup build-gpu --buildtype=release -Dcuda=enabled -Dmpi=enabled >/dev/null 2>&1
meson compile -C build-gpu 2>&1 | grep -E "error" | head
kvr=build-gpu/experiments/kvr; db=$out/multi3.sqlite; prof=data/machines/h100-calibrated.ini
run() { timeout 120 mpirun -np "$1" --bind-to none -x NCCL_NVLS_ENABLE "${@:2}"; }
for p in 2 $P; do
    $kvr search --db "$db" --model llama-7b,falcon-7b --machine $prof --gpus $p --ctx 4k,8k,16k,32k >/dev/null
    $kvr search --db "$db" --model llama-7b,falcon-7b --machine $prof --bw 10GB/s --gpus $p --ctx 4k,8k,16k,32k >/dev/null
done
for p in 2 $P; do for m in llama-7b falcon-7b; do for ctx in 4k 8k 16k 24k 32k; do
    k="--model $m --ctx $ctx --backend cuda --reps 3 --warmup 1 --db $db --json --timeout 30 --comm nccl"
    [ $p = 2 ] && run 1 $kvr exec $k --scheme single | grep -E '"ttft_s"' | sed "s/^/$m $ctx single /"
    for s in kvr tsp tsp-causal ring-pass; do
        extra=; [ $s = kvr ] && extra="--machine $prof" # KVR-S or KVR-P from the table
        run $p $kvr exec $k --scheme $s $extra 2>&1 | grep -E '"ttft_s"|"method"|rror' | tr -d '\n' | sed "s/^/p=$p $m $ctx $s /"; echo
    done
    run $p $kvr exec $k --scheme kvr --machine $prof --bw 10GB/s 2>&1 | grep -E '"ttft_s"|"method"|achieved|rror' | tr -d '\n' | sed "s/^/p=$p $m $ctx kvr 10GB\/s /"; echo
    run $p $kvr exec $k --scheme kvr --machine $prof --link 0-1=10GB/s 2>&1 | grep -E '"ttft_s"|achieved|rror' | tr -d '\n' | sed "s/^/p=$p $m $ctx kvr slow 0-1 /"; echo
done; done; done 2>&1 | tee "$out/prefill3.txt"
$kvr validate --multi-gpu --db "$db" --machine $prof 2>&1 | tail -60
