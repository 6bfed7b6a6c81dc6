#!/bin/sh
# No Hopper kernel's wgmma pipeline is serialised: ptxas's notes C7510-C7519 ("wgmma.mma_async
# instructions are serialized", "warpgroup.wait is injected") on each file that issues wgmma,
# compiled as the build does. Such a kernel still computes the right numbers (no GPU test can
# see it) but waits for every MMA: a loop counter change once cost the own GEMM 5%.
# First tests/ptxas_serialized.cu, which ptxas must find serialised, so that a compiler that
# stopped saying so fails the test rather than passing it blind.
# Usage: test_ptxas.sh NVCC BUILD_ROOT
. "$(dirname "$0")/tap_helpers.sh"
tap_begin none
nvcc=$1 build=$2
notes() { # notes FILE: ptxas's serialisation notes on FILE
    "$nvcc" -DNDEBUG -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -Xptxas=-v \
        -I"$src/exec" -I"$build" -I"$build/exec" -o "$tmp/o.o" -c "$1" >"$tmp/log" 2>&1 ||
        { echo "nvcc failed: $(tail -5 "$tmp/log")"; return; }
    grep -E '\(C751[0-9]\)' "$tmp/log"
}
seen=$(notes "$src/tests/ptxas_serialized.cu")
case $seen in
*"(C751"*) report 0 "the detector sees ptxas's notes on a serialised kernel" ;;
*) report 1 "the detector sees ptxas's notes on a serialised kernel" "got: ${seen:-nothing}" ;;
esac
for f in $(grep -l 'kvr_cuda_wgmma.cuh' "$src"/exec/*.cu); do
    got=$(notes "$f")
    report "$([ -z "$got" ] && echo 0 || echo 1)" "$(basename "$f"): no wgmma serialised" "$got"
done
echo "1..$n"
[ "$failed" = 0 ]
