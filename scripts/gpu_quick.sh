#!/bin/bash
# A quick device check: incremental build, the GPU tests, the attention kernel at 16k and 32k,
# and Llama-7B at 32k with its profile. (scripts/gpu_run.sh is the whole thing.)
set -uo pipefail
. .gpu-deps/env.sh
[ -f build-gpu/build.ninja ] || meson setup build-gpu --buildtype=release -Dcuda=enabled -Dmpi=enabled >/dev/null
"$(dirname "$0")/../build-gpu/experiments/kvr" --version 2>/dev/null | tail -1
meson compile -C build-gpu 2>&1 | grep -E "error" | head
kvr=build-gpu/experiments/kvr
meson test -C build-gpu --suite gpu --suite mpi --print-errorlogs 2>&1 | grep -E "exec_|sweep_|not ok" | head -30
grep -E '^(not )?ok' build-gpu/meson-logs/testlog.txt | grep -E 'cuda:|not ok' | head -20
for v in ${KVR_VARIANTS:-3}; do
    $kvr bench attention --ctx 16k --variant $v --check
    $kvr bench attention --ctx 16k --heads 71 --kv-heads 1 --head-dim 64 --variant $v --check
    $kvr bench attention --ctx 32k --variant $v --reps 5
done
for m in ${KVR_MODELS:-llama-7b}; do $kvr exec --model $m --ctx 32k --reps 3 --profile; done
