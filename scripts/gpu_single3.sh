#!/bin/bash
# One single-GPU device call after the LM-head GEMV, the vectorised embedding and the shared
# attention-argument builder: build, the GPU and MPI tests (cuda against ref, ranks sharing the
# GPU), compute-sanitizer on a small prefill, the attention kernel checked against its oracle,
# Llama-7B and Falcon-7B at 32k with their profiles, then the calibration
# (scripts/gpu_calibrate.sh: every operation, attention at (queries, prefix) shapes, the fit and
# the validation). Logs and data under $OUT.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
. .gpu-deps/env.sh
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*"; }
{
    nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv
    meson setup build-gpu --buildtype=release -Dcuda=enabled -Dmpi=enabled >/dev/null
    meson compile -C build-gpu 2>&1 | grep -E "error" | head -20
} 2>&1
kvr=build-gpu/experiments/kvr
[ -x $kvr ] || { echo "build failed"; exit 1; }
stamp built
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_NVLS_ENABLE=0
meson test -C build-gpu --suite gpu --suite unit --print-errorlogs 2>&1 | grep -E "^ *[0-9]+/|Ok:|Fail:"
grep -E "^not ok" -A4 build-gpu/meson-logs/testlog.txt | head -40
stamp tested
printf '[model]\nname = small\nn_layers = 2\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/small.ini
printf '[model]\nname = odd\nn_layers = 2\nd_model = 196\nn_heads = 2\nn_kv_heads = 1\nhead_dim = 64\nd_ffn = 300\nvocab = 333\nnorm = layernorm\nmlp = gelu\ndtype = bf16\n' >/tmp/odd.ini
for m in small odd; do
    compute-sanitizer --tool memcheck --error-exitcode 9 $kvr exec --model /tmp/$m.ini --ctx 150 --reps 1 --warmup 0 2>&1 | tail -2
done
$kvr bench attention --ctx 16k --check 2>&1 | tail -2
$kvr bench attention --ctx 16k --heads 71 --kv-heads 1 --head-dim 64 --check 2>&1 | tail -2
for m in llama-7b falcon-7b; do $kvr exec --model $m --ctx 32k --reps 3 --profile; done 2>&1
stamp profiled
scripts/gpu_calibrate.sh 2>&1 | tail -30
stamp calibrated
