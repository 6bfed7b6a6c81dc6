#!/bin/bash
# The attention engineer's device call (issue #24): build, a smoke run of the warp-specialised
# kernel, the GPU tests, kvrun against PyTorch SDPA side by side, compute-sanitizer.
#   bash scripts/gpu/attn.sh [all|bench|sanitize]     (logs and results under $OUT)
set -uo pipefail
task=${1:-all}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
out=${OUT:-gpu-out}
mkdir -p "$out"
. .gpu-deps/env.sh
t0=$(date +%s)
stamp() { echo "== $1 ($(( $(date +%s) - t0 )) s)"; }
[ -f build-gpu/build.ninja ] || meson setup build-gpu --buildtype=release -Dcuda=enabled >"$out/setup.log" 2>&1
meson compile -C build-gpu >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
grep -A3 "ws_kernel\|hopper_kernel" "$out/build.log" | grep -E "registers|spill" | sort | uniq -c
kvr=build-gpu/experiments/kvr
commit=$(cat COMMIT 2>/dev/null || echo unknown)
stamp built
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw --format=csv,noheader
smoke() { timeout 30 $kvr bench attention "$@" --reps 3 --check --lse; }
ok=1
for v in 6 7; do
    smoke --ctx 1000 --prefix 300 --heads 4 --kv-heads 2 --variant $v --window 200 || ok=0
    smoke --ctx 777 --heads 4 --kv-heads 1 --head-dim 64 --variant $v || ok=0
done
stamp smoke
if [ $ok = 0 ]; then # the new kernel is wrong or hangs: check the others' window and LSE, stop
    for v in 1 2 3 5; do smoke --ctx 1000 --prefix 300 --heads 4 --kv-heads 2 --variant $v --window 200; done
    exit 1
fi
if [ "$task" = all ]; then
    timeout 300 build-gpu/tests/test_exec_cuda >"$out/test_exec_cuda.tap" 2>&1
    echo "test_exec_cuda rc=$? $(grep -c '^ok' "$out/test_exec_cuda.tap") ok, $(grep -c '^not ok' "$out/test_exec_cuda.tap") not ok"
    grep -A1 '^not ok' "$out/test_exec_cuda.tap" | head -20
    stamp tests
fi
if [ "$task" = all ] || [ "$task" = bench ]; then
    timeout 330 python3 exec/bench/attn_peer.py $kvr "$out/attn_peer.jsonl" "$out/attn_peer.md" \
        --commit "$commit" --variants "${KVR_VARIANTS:-0,6}" >"$out/attn_peer.log" 2>&1
    echo "attn_peer rc=$?"; grep -i "error" "$out/attn_peer.log" | head -5
    stamp bench
fi
if [ "$task" = all ] || [ "$task" = sanitize ]; then
    for tool in memcheck racecheck; do
        for v in 6 7; do
            timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 $kvr bench attention --ctx 300 \
                --prefix 200 --heads 2 --kv-heads 1 --variant $v --window 150 --lse --reps 1 --check \
                >"$out/san-$tool-v$v.log" 2>&1
            echo "$tool variant $v hd128: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/san-$tool-v$v.log")"
            timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 $kvr bench attention --ctx 200 \
                --heads 2 --kv-heads 2 --head-dim 64 --variant $v --reps 1 --check \
                >>"$out/san-$tool-v$v.log" 2>&1
            echo "$tool variant $v hd64: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/san-$tool-v$v.log" | tail -1)"
        done
    done
    stamp sanitize
fi
[ -f "$out/attn_peer.md" ] && cat "$out/attn_peer.md"
