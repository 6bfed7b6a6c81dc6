# The persistent attention kernel (variants 9, 10) against the plain grid (6, 8), and the norm in registers (#24).
# Parts (`persist.sh PART...`, default: smoke tests sanitize attn e2e): `smoke` the new variants
# with --check (stops the task when one fails), `tests` meson's GPU tests, `sanitize`
# compute-sanitizer memcheck and racecheck on variants 9, 10 and the ring's blocks, `attn`
# kvr bench attention plain against persistent in alternating rounds (KVR_ROUNDS, default 2),
# `e2e` Llama-7B (KVR_E2E_MODEL) end to end: kvrun persistent and plain (KVR_ATTN_PERSIST) beside PyTorch +
# Hugging Face eager and torch.compile in alternating rounds (exec/bench/e2e_rounds.py;
# KVR_E2E_DEFAULT=1: kvrun as it is, one peer; KVR_E2E_ENV the kvrun settings side by side
# (default "KVR_ATTN_PERSIST=1 KVR_ATTN_PERSIST=0"); KVR_E2E_CTX, KVR_E2E_ROUNDS, KVR_E2E_REPS, KVR_E2E_WARMUP, KVR_E2E_TIMEOUT; KVR_E2E_COMPILE
# the contexts torch.compile runs (default 2048,4096; set empty: none); KVR_E2E_SDPA eager HF with SDPA backends
# forced too, e.g. cudnn,flash; KVR_E2E_COMPILE_CAUSAL the contexts of torch.compile with SDPA's
# is_causal and no mask tensor (default none); KVR_E2E_SAME_WEIGHTS=DIR kvrun also on Hugging Face's weights
# and prompt, saved to DIR: keep it outside $OUT, 13 GB for Llama-7B).
# Logs: persist_*.log, e2e_rounds.jsonl (e2e_rounds.partial.jsonl when e2e_rounds.py failed or
# timed out). A failed check, run or script makes the call exit 1 (each part's log says which).
# Regenerates: nothing (exec/bench/RESULTS.md by hand).
parts=" ${*:-smoke tests sanitize attn e2e} "
parts_check smoke tests sanitize attn e2e
has() { [[ "$parts" == *" $1 "* ]]; }
# each part runs in a pipeline's subshell (| tee): it exits with $bad, which is read back after
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,power.limit --format=csv,noheader
stamp "built $(cat .kvr-version 2>/dev/null)"
if has smoke; then
    ok=1
    chk() { timeout 30 $kvr bench attention "$@" --reps 3 --check | tail -1 || ok=0; }
    for v in 6 9; do
        chk --ctx 1000 --prefix 300 --heads 4 --kv-heads 2 --variant $v --window 200 --lse
        chk --ctx 777 --heads 4 --kv-heads 1 --head-dim 64 --variant $v
        chk --ctx 5000 --heads 8 --kv-heads 8 --variant $v
        chk --ctx 64 --prefix 20000 --heads 8 --kv-heads 2 --variant $v
    done
    for v in 8 10; do
        chk --ctx 1000 --prefix 300 --heads 4 --kv-heads 1 --head-dim 64 --variant $v --window 200
        chk --ctx 3000 --heads 6 --kv-heads 3 --head-dim 64 --variant $v
    done
    chk --ctx 4096 --heads 8 --kv-heads 2 --ring 4
    chk --ctx 3000 --heads 4 --kv-heads 1 --head-dim 64 --ring 3 --window 500
    stamp smoke
    [ $ok = 1 ] || { echo "persist: a smoke check failed, stopping"; exit 1; }
fi 2>&1 | tee "$out/persist_smoke.log"
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
if has tests; then
    timeout 400 meson test -C build-gpu ${KVR_TESTS:-exec_cuda hf_goldens_cuda exec_mpi_cuda exec_tp_cuda} \
        --print-errorlogs >/tmp/mt.log 2>&1 || { echo "persist: meson test failed"; bad=1; }
    grep -E "^ *[0-9]+/|Ok:|Fail:|Timeout:" /tmp/mt.log
    grep -E "^not ok" -A3 build-gpu/meson-logs/testlog.txt | head -30
    echo "TAP points of these tests: $(grep -c '^ok' build-gpu/meson-logs/testlog.txt) ok, $(grep -c '^not ok' build-gpu/meson-logs/testlog.txt) not ok"
    stamp tested
    exit $bad
fi 2>&1 | tee "$out/persist_tests.log"
[ "${PIPESTATUS[0]}" = 0 ] || bad=1
if has sanitize; then
    for tool in memcheck racecheck; do
        for v in 9 10; do
            for hd in 64 128; do
                [ $v = 10 ] && [ $hd = 128 ] && continue
                timeout 90 compute-sanitizer --tool $tool --error-exitcode 9 $kvr bench attention --ctx 300 \
                    --prefix 200 --heads 2 --kv-heads 1 --head-dim $hd --variant $v --window 150 --lse \
                    --reps 2 --check >/tmp/san.log 2>&1
                rc=$?; [ $rc = 0 ] || bad=1
                echo "$tool variant $v hd$hd: rc=$rc $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.log)"
                grep -m3 -A4 "Race reported\|Error:" /tmp/san.log
            done
        done
        timeout 240 compute-sanitizer --tool $tool --error-exitcode 9 $kvr bench attention --ctx 512 \
            --heads 2 --kv-heads 1 --ring 4 --reps 1 --check >/tmp/san.log 2>&1
        rc=$?; [ $rc = 0 ] || bad=1
        echo "$tool ring 4: rc=$rc $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.log)"
    done
    printf '[model]\nname = small\nn_layers = 2\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/small.ini
    timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $kvr exec --model /tmp/small.ini \
        --ctx 150 --reps 1 --warmup 1 >/tmp/san.log 2>&1
    rc=$?; [ $rc = 0 ] || bad=1
    echo "memcheck kvr exec small 150 tokens: rc=$rc $(grep 'ERROR SUMMARY' /tmp/san.log)"
    stamp sanitized
    exit $bad
fi 2>&1 | tee "$out/persist_sanitize.log"
[ "${PIPESTATUS[0]}" = 0 ] || bad=1
if has attn; then
    shapes=("--ctx 1k" "--ctx 2k" "--ctx 4k" "--ctx 8k" "--ctx 16k" "--ctx 32k"
        "--ctx 2k --prefix 30k" "--ctx 32k --kv-heads 8" "--ctx 32k --kv-heads 8 --window 4096"
        "--ctx 16k --heads 71 --kv-heads 1 --head-dim 64")
    for r in $(seq "${KVR_ROUNDS:-2}"); do
        for s in "${shapes[@]}"; do
            pair="6 9"; [[ "$s" == *"head-dim 64"* ]] && pair="8 10"
            for v in $pair; do
                capture $kvr bench attention $s --variant $v --reps 20 || bad=1
                echo "round $r variant $v $s: $(grep -m1 -oE '[0-9.]+ [mu]s median, [0-9.]+ TFLOP/s' <<<"$got")"
            done
        done
    done
    stamp attention
    exit $bad
fi 2>&1 | tee "$out/persist_attn.log"
[ "${PIPESTATUS[0]}" = 0 ] || bad=1
if has e2e; then
    # the rows into e2e_rounds.partial.jsonl, renamed e2e_rounds.jsonl once the script succeeded
    PYTHONUNBUFFERED=1 keep_if_ok "$out/e2e_rounds.jsonl" \
        timeout ${KVR_E2E_TIMEOUT:-480} python3 exec/bench/e2e_rounds.py --kvr $kvr \
        --model "${KVR_E2E_MODEL:-llama-7b}" --warmup ${KVR_E2E_WARMUP:-2} \
        --ctx ${KVR_E2E_CTX:-2048,4096,8192,16384,32768} --compile-ctx "${KVR_E2E_COMPILE-2048,4096}" \
        --compile-causal-ctx "${KVR_E2E_COMPILE_CAUSAL:-}" \
        --sdpa "${KVR_E2E_SDPA:-}" --reps ${KVR_E2E_REPS:-5} \
        $(for e in ${KVR_E2E_ENV:-KVR_ATTN_PERSIST=1 KVR_ATTN_PERSIST=0}; do
            [ "${KVR_E2E_DEFAULT:-0}" = 1 ] || echo --kvr-env "$e"; done) \
        --rounds ${KVR_E2E_ROUNDS:-3} ${KVR_E2E_SAME_WEIGHTS:+--same-weights "$KVR_E2E_SAME_WEIGHTS"} ||
        bad=1
    stamp e2e
    exit $bad
fi 2>&1 | tee "$out/persist_e2e.log"
[ "${PIPESTATUS[0]}" = 0 ] || bad=1
