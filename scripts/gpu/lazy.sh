# Lazy rescaling in the attention kernels' softmax (KVR_ATTN_LAZY, #24) against rescaling at every rise.
# Parts (`lazy.sh PART...`, default: tests sanitize attn e2e): `tests` meson's GPU tests
# (test_exec_cuda runs every variant with keys whose scores keep rising, lazy and not, against
# the plain kernel); `sanitize` compute-sanitizer memcheck and racecheck on variants 6, 8, 9, 10;
# `attn` kvr bench attention with KVR_ATTN_LAZY=1 and 0 in alternating rounds (KVR_ROUNDS,
# default 2); `e2e` Llama-7B end to end, kvrun lazy and not beside PyTorch + Hugging Face eager
# and torch.compile in alternating rounds (exec/bench/e2e_rounds.py; KVR_E2E_CTX, KVR_E2E_ROUNDS,
# KVR_E2E_COMPILE as persist.sh's).
# Logs: lazy_*.log, e2e_rounds.jsonl (e2e_rounds.partial.jsonl when e2e_rounds.py failed or
# timed out; lazy_failed names what failed, the call then exits 1). Regenerates: nothing
# (exec/bench/RESULTS.md by hand).
parts=" ${*:-tests sanitize attn e2e} "
parts_check tests sanitize attn e2e
has() { [[ "$parts" == *" $1 "* ]]; }
rm -f "$out/lazy_failed"
fail() { echo "FAILED: $1" | tee -a "$out/lazy_failed"; } # the parts run in pipelines' subshells
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,power.limit --format=csv,noheader
stamp "built $(cat .kvr-version 2>/dev/null)"
if has tests; then
    timeout 300 meson test -C build-gpu ${KVR_TESTS:-exec_cuda hf_goldens_cuda exec_tp_cuda} \
        --print-errorlogs >/tmp/mt.log 2>&1 || fail "meson test"
    grep -E "^ *[0-9]+/|Ok:|Fail:|Timeout:" /tmp/mt.log
    grep -E "^not ok" -A3 build-gpu/meson-logs/testlog.txt | head -30
    grep -E "keys ramped" build-gpu/meson-logs/testlog.txt | head -4
    echo "TAP points: $(grep -c '^ok' build-gpu/meson-logs/testlog.txt) ok, $(grep -c '^not ok' build-gpu/meson-logs/testlog.txt) not ok; ramped: $(grep -c '^ok.*keys ramped' build-gpu/meson-logs/testlog.txt) ok"
    stamp tested
fi 2>&1 | tee "$out/lazy_tests.log"
if has sanitize; then
    for tool in memcheck racecheck; do
        for v in 6 8 9 10; do
            for hd in 64 128; do
                { [ $v = 8 ] || [ $v = 10 ]; } && [ $hd = 128 ] && continue
                timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 $kvr bench attention --ctx 300 \
                    --prefix 200 --heads 2 --kv-heads 1 --head-dim $hd --variant $v --window 150 --lse \
                    --reps 2 --check >/tmp/san.log 2>&1
                rc=$?
                [ $rc = 0 ] || fail "$tool variant $v hd$hd"
                echo "$tool variant $v hd$hd: rc=$rc $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.log)"
                grep -m3 -A4 "Race reported\|Error:" /tmp/san.log
            done
        done
    done
    stamp sanitized
fi 2>&1 | tee "$out/lazy_sanitize.log"
if has attn; then
    shapes=("--ctx 2k" "--ctx 4k" "--ctx 8k" "--ctx 16k" "--ctx 32k"
        "--ctx 2k --prefix 30k" "--ctx 32k --kv-heads 8" "--ctx 32k --kv-heads 8 --window 4096"
        "--ctx 16k --heads 71 --kv-heads 1 --head-dim 64")
    for r in $(seq "${KVR_ROUNDS:-2}"); do
        for s in "${shapes[@]}"; do
            for lz in 1 0; do
                KVR_ATTN_LAZY=$lz capture $kvr bench attention $s --reps 20 || fail "attn lazy $lz $s"
                echo "round $r lazy $lz $s: $(grep -m1 -oE '[0-9.]+ [mu]s median, [0-9.]+ TFLOP/s' <<<"$got")"
            done
        done
    done
    stamp attention
fi 2>&1 | tee "$out/lazy_attn.log"
if has e2e; then
    # the rows into e2e_rounds.partial.jsonl, renamed e2e_rounds.jsonl once the script succeeded
    PYTHONUNBUFFERED=1 keep_if_ok "$out/e2e_rounds.jsonl" \
        timeout ${KVR_E2E_TIMEOUT:-330} python3 exec/bench/e2e_rounds.py --kvr $kvr --model llama-7b \
        --ctx ${KVR_E2E_CTX:-2048,4096,16384,32768} --compile-ctx ${KVR_E2E_COMPILE:-2048,4096} \
        --kvr-env KVR_ATTN_LAZY=1 --kvr-env KVR_ATTN_LAZY=0 --rounds ${KVR_E2E_ROUNDS:-2} || fail e2e
    stamp e2e
fi 2>&1 | tee "$out/lazy_e2e.log"
[ ! -e "$out/lazy_failed" ] # the task's status: every check passed
