#!/bin/bash
# One device call: build for sm_90, the unit and GPU tests, compute-sanitizer on small shapes,
# the attention kernel's variants, then the benchmark against PyTorch (scripts/bench_exec.sh).
# Logs under $OUT (the device tool's folder) or ./gpu-out.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
. .gpu-deps/env.sh
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    meson setup build-gpu --buildtype=release -Dcuda=enabled >/dev/null && meson compile -C build-gpu 2>&1 | grep -E "error|spill|flash" | head -20
} 2>&1 | tee "$out/build.log"
kvr=build-gpu/experiments/kvr
[ -x $kvr ] || { echo "build failed"; exit 1; }
meson test -C build-gpu --suite gpu --suite unit --print-errorlogs 2>&1 | tail -15 | tee "$out/test.log"
grep -E "^(not )?ok" build-gpu/meson-logs/testlog.txt | grep -E "attention|cuda|not ok" | head -60 >"$out/gpu-tests.txt"
printf '[model]\nname = small\nn_layers = 2\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/small.ini
for args in "--ctx 300 --prefix 100 --heads 4 --kv-heads 2 --head-dim 64" "--ctx 200 --prefix 37 --heads 2 --head-dim 128 --dense"; do
    compute-sanitizer --tool memcheck --error-exitcode 9 $kvr bench attention $args --check --reps 1 2>&1 | tail -3
done | tee "$out/sanitizer.log"
compute-sanitizer --tool memcheck --error-exitcode 9 $kvr exec --model /tmp/small.ini --ctx 150 --reps 1 --warmup 0 2>&1 | tail -4 | tee -a "$out/sanitizer.log"
compute-sanitizer --tool racecheck --error-exitcode 9 $kvr bench attention --ctx 130 --heads 2 --head-dim 128 --reps 1 2>&1 | tail -2 | tee -a "$out/sanitizer.log"
for v in ${KVR_VARIANTS:-2 3 4}; do for hd in 128 64; do for d in "" --dense; do
    $kvr bench attention --ctx 16k --heads $((hd == 128 ? 32 : 64)) --head-dim $hd --variant $v $d --check
done; done; done 2>&1 | tee "$out/attention.log"
for v in ${KVR_VARIANTS:-2 3 4}; do $kvr bench attention --ctx 32k --variant $v --reps 5; done 2>&1 | tee -a "$out/attention.log"
for m in llama-7b falcon-7b; do $kvr exec --model $m --ctx 32k --reps 3 --profile; done 2>&1 | tee "$out/profile.log"
${KVR_SKIP_BENCH:+true} scripts/bench_exec.sh build-gpu "$out/bench" 2>&1 | tail -40
