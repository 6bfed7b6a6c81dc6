# The GEMM tuner timing its candidates at the power cap (KVR_GEMM_HOT=1, the default) against cold (0), #24.
# Parts (`hot.sh PART...`, default: tests tune e2e): `tests` meson's exec_cuda and hf_goldens_cuda;
# `tune` each Llama-7B shape's times and choice (KVR_GEMM_LOG=1) hot and cold at KVR_TUNE_CTX
# (default 2048 16384); `e2e` Llama-7B end to end, kvrun hot and cold beside PyTorch + Hugging
# Face eager and torch.compile in alternating rounds (exec/bench/e2e_rounds.py; KVR_E2E_CTX,
# KVR_E2E_ROUNDS, KVR_E2E_COMPILE as persist.sh's).
# Logs: hot_*.log, e2e_rounds.jsonl. Regenerates: nothing (exec/bench/RESULTS.md by hand).
parts=" ${*:-tests tune e2e} "
has() { [[ "$parts" == *" $1 "* ]]; }
rm -f "$out/hot_failed"
fail() { echo "FAILED: $1" | tee -a "$out/hot_failed"; } # the parts run in pipelines' subshells
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,power.limit --format=csv,noheader
stamp "built $(cat .kvr-version 2>/dev/null)"
if has tests; then
    timeout 300 meson test -C build-gpu ${KVR_TESTS:-exec_cuda hf_goldens_cuda} --print-errorlogs \
        >/tmp/mt.log 2>&1 || fail "meson test"
    grep -E "^ *[0-9]+/|Ok:|Fail:|Timeout:" /tmp/mt.log
    grep -E "^not ok" -A3 build-gpu/meson-logs/testlog.txt | head -30
    grep -E "KVR_GEMM_HOT" build-gpu/meson-logs/testlog.txt | head -4
    echo "TAP points: $(grep -c '^ok' build-gpu/meson-logs/testlog.txt) ok, $(grep -c '^not ok' build-gpu/meson-logs/testlog.txt) not ok"
    stamp tested
fi 2>&1 | tee "$out/hot_tests.log"
if has tune; then
    for ctx in ${KVR_TUNE_CTX:-2048 16384}; do
        for hot in 1 0; do
            echo "ctx $ctx KVR_GEMM_HOT=$hot"
            KVR_GEMM_HOT=$hot KVR_GEMM_LOG=1 timeout 120 $kvr exec --model llama-7b --ctx $ctx --reps 5 --warmup 2 2>&1 |
                grep -E "^gemm|TTFT|MFU" || fail "tune $ctx $hot"
        done
    done
    stamp tuned
fi 2>&1 | tee "$out/hot_tune.log"
if has e2e; then
    PYTHONUNBUFFERED=1 timeout ${KVR_E2E_TIMEOUT:-360} python3 exec/bench/e2e_rounds.py --kvr $kvr --model llama-7b \
        --ctx ${KVR_E2E_CTX:-2048,4096,16384,32768} --compile-ctx ${KVR_E2E_COMPILE:-2048,4096} \
        --kvr-env KVR_GEMM_HOT=1 --kvr-env KVR_GEMM_HOT=0 --rounds ${KVR_E2E_ROUNDS:-2} \
        >"$out/e2e_rounds.jsonl" || fail e2e
    stamp e2e
fi 2>&1 | tee "$out/hot_e2e.log"
[ ! -e "$out/hot_failed" ] # the task's status: every check passed
