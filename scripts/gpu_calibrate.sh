#!/bin/bash
# Calibration data on the GPU machine: times Llama-7B and Falcon-7B at 1k-32k (kvr calibrate:
# every operation and the TTFT), fits on 1k, 4k, 16k, checks 2k, 8k, 32k, and writes the
# operation times (CSV), the TTFT measurements (SQLite) and the calibrated profile under $OUT.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
. .gpu-deps/env.sh
[ -f build-gpu/build.ninja ] || meson setup build-gpu --buildtype=release -Dcuda=enabled >/dev/null
meson compile -C build-gpu 2>&1 | grep -E "error" | head
kvr=build-gpu/experiments/kvr
rm -f "$out/h100.sqlite"
$kvr calibrate --backend cuda --models llama-7b,falcon-7b --fit-ctx 1k,4k,16k \
    --check-ctx 2k,8k,12k,24k,32k --save "$out/h100-ops.csv" --db "$out/h100.sqlite" \
    --out "$out/h100-calibrated.ini" --name h100-calibrated 2>&1 | tee "$out/calibrate.log"
$kvr validate --db "$out/h100.sqlite" --machine "$out/h100-calibrated.ini" 2>&1 | tail -25
