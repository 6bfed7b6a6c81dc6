# The attention kernel, the prefill profiles, and kvr exec against PyTorch.
# The kernel is checked against its oracle and timed (KVR_VARIANTS, default 3); Llama-7B and
# Falcon-7B at 32k are profiled; then scripts/bench_exec.sh runs kvr exec beside PyTorch +
# Hugging Face (KVR_SKIP_BENCH=1 skips it). `bench clocks` instead samples the SM clock and
# throttle reasons during the kernel and a 32k prefill. Logs: attention.log, profile.log,
# bench/, clocks.csv. A failed check or run makes the call exit 1.
# Regenerates: exec/bench/RESULTS.md and exec/bench/results.jsonl (from $out/bench).
parts=" $* "
parts_check clocks # the one argument there is
if [ "${1:-}" = clocks ]; then
    sample() { exec nvidia-smi --query-gpu=clocks.sm,power.draw,clocks_event_reasons.active --format=csv,noheader -lms 200; }
    sample >"$out/clocks.csv" 2>/dev/null & pid=$!
    $kvr bench attention --ctx 32k --reps 5 || bad=1
    $kvr bench attention --ctx 32k --reps 60 || bad=1
    $kvr exec --model llama-7b --ctx 32k --reps 3 --warmup 1 || bad=1
    kill $pid; wait $pid 2>/dev/null
    sort "$out/clocks.csv" | uniq -c | sort -rn | head -12
    return 0 # gpu.sh: the call fails when bad=1
fi
# the loops run in pipelines' subshells (| tee): each exits with $bad, read back after
{
    for v in ${KVR_VARIANTS:-3}; do
        for hd in 128 64; do for d in "" --dense; do
            $kvr bench attention --ctx 16k --heads $((hd == 128 ? 32 : 64)) --head-dim $hd --variant $v $d --check ||
                bad=1
        done; done
        $kvr bench attention --ctx 32k --variant $v --reps 5 || bad=1
    done
    exit $bad
} 2>&1 | tee "$out/attention.log"
[ "${PIPESTATUS[0]}" = 0 ] || bad=1
{
    for m in llama-7b falcon-7b; do $kvr exec --model $m --ctx 32k --reps 3 --profile || bad=1; done
    exit $bad
} 2>&1 | tee "$out/profile.log"
[ "${PIPESTATUS[0]}" = 0 ] || bad=1
stamp profiled
${KVR_SKIP_BENCH:+true} scripts/bench_exec.sh build-gpu "$out/bench" 2>&1 | tail -40
[ "${PIPESTATUS[0]}" = 0 ] || bad=1
stamp benchmarked
