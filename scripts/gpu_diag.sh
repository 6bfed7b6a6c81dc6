#!/bin/bash
# Clock and throttle diagnosis: the attention kernel alone, short and sustained, and a whole
# Llama-7B prefill at 32k, with the SM clock and throttle reasons sampled meanwhile.
set -uo pipefail
kvr=build-gpu/experiments/kvr
sample() { exec nvidia-smi --query-gpu=clocks.sm,power.draw,clocks_event_reasons.active --format=csv,noheader -lms 200; }
sample >"${OUT:-.}/clocks.csv" 2>/dev/null & pid=$!
$kvr bench attention --ctx 32k --reps 5
$kvr bench attention --ctx 32k --reps 60
$kvr exec --model llama-7b --ctx 32k --reps 3 --warmup 1
kill $pid; wait $pid 2>/dev/null
sort "${OUT:-.}/clocks.csv" | uniq -c | sort -rn | head -12
