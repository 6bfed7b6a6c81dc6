# The own warp-specialised GEMM and its fused epilogues, SwiGLU and rotary (kvr_cuda_gemm_ws.cu, #24).
# Parts (`gemm.sh PART...`, default: tests tune ab sanitize): `tests` test_exec_cuda's GEMM
# checks (and the whole binary's result), then hf_goldens_cuda with KVR_GEMM_OWN=2 (the own
# kernel wherever it fits) and at the default; `tune` the tuner's side-by-side times of every
# Llama-7B GEMM shape (KVR_GEMM_LOG=1) at 2k, 4k, 16k and 32k; `ab` Llama-7B end to end with the own kernel
# as a candidate (KVR_GEMM_OWN=1) and without (0), alternating, KVR_ROUNDS rounds (default 2);
# `sanitize` compute-sanitizer memcheck and racecheck on a small prefill with KVR_GEMM_OWN=2
# (memcheck on GQA 2:1 at head_dim 64: every epilogue runs, rotary among them).
# Logs: gemm_*.log (gemm_failed names what failed; the call then exits 1). Regenerates: nothing
# (exec/bench/RESULTS.md by hand).
parts=" ${*:-tests tune ab sanitize} "
parts_check tests tune ab sanitize
rm -f "$out/gemm_failed"
fail() { echo "FAILED: $1" | tee -a "$out/gemm_failed"; } # the parts run in pipelines' subshells
has() { [[ "$parts" == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,power.limit --format=csv,noheader
stamp "built $(cat .kvr-version 2>/dev/null)"
if has tests; then
    timeout 300 build-gpu/tests/test_exec_cuda >/tmp/tec.log 2>&1 || fail test_exec_cuda
    echo "test_exec_cuda: $(grep -c '^ok' /tmp/tec.log) ok, $(grep -c '^not ok' /tmp/tec.log) not ok"
    grep -E "gemm" /tmp/tec.log
    grep -E "^not ok" -A2 /tmp/tec.log | head -20
    for own in ${KVR_GOLDEN_OWN:-2}; do
        KVR_GEMM_OWN=$own timeout 300 meson test -C build-gpu hf_goldens_cuda --print-errorlogs >/tmp/hg.log 2>&1 ||
            fail "hf_goldens_cuda KVR_GEMM_OWN=$own"
        echo "hf_goldens_cuda KVR_GEMM_OWN=$own: $(grep -E 'Ok:|Fail:' /tmp/hg.log | tr -s ' \n' ' ')"
        grep -E "^not ok" -A3 build-gpu/meson-logs/testlog.txt | head -12
    done
    stamp tested
fi 2>&1 | tee "$out/gemm_tests.log"
if has tune; then
    for ctx in ${KVR_TUNE_CTX:-2048 4096 16384 32768}; do
        KVR_GEMM_LOG=1 timeout 120 $kvr exec --model llama-7b --ctx $ctx --reps 3 --warmup 1 2>&1 |
            grep -E "^gemm|TTFT|first token|MFU|throughput|error"
        [ "${PIPESTATUS[0]}" = 0 ] || fail "tune ctx $ctx" # kvr's status, not grep's
    done
    stamp tuned
fi 2>&1 | tee "$out/gemm_tune.log"
if has ab; then
    for r in $(seq "${KVR_ROUNDS:-2}"); do
        for ctx in ${KVR_AB_CTX:-2048 4096 16384}; do
            for own in 1 0; do
                KVR_GEMM_OWN=$own capture timeout 120 $kvr exec --model llama-7b --ctx $ctx --reps 10 \
                    --warmup 2 || fail "ab round $r ctx $ctx KVR_GEMM_OWN=$own"
                echo "round $r ctx $ctx KVR_GEMM_OWN=$own: $(grep -E 'TTFT|throughput|first token' <<<"$got" | tr -s ' \n' ' ')"
            done
        done
    done
    stamp ab
fi 2>&1 | tee "$out/gemm_ab.log"
if has sanitize; then
    # memcheck on GQA 2:1 at head_dim 64 (every epilogue runs, rotary among them); racecheck on
    # the model before (rotary not fused there): on the GQA one it exits with an error and no
    # message even with KVR_GEMM_OWN=0, without the own kernel (exec/bench/RESULTS.md)
    small() { printf '[model]\nname = small\nn_layers = 2\nd_model = %s\nn_heads = %s\nn_kv_heads = %s\nd_ffn = %s\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' "$@"; }
    small 512 8 4 1024 >/tmp/small-memcheck.ini
    small 256 4 2 512 >/tmp/small-racecheck.ini
    for tool in memcheck racecheck; do
        KVR_GEMM_OWN=2 KVR_GEMM_LOG=1 timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 $kvr exec \
            --model /tmp/small-$tool.ini --ctx 300 --reps 1 --warmup 1 >/tmp/san.log 2>&1 || fail "$tool"
        echo "$tool kvr exec small 300 tokens, own GEMM everywhere: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.log)"
        grep -E "Race reported|Error:|^gemm" -A4 /tmp/san.log | head -24
    done
    stamp sanitized
fi 2>&1 | tee "$out/gemm_sanitize.log"
[ ! -e "$out/gemm_failed" ] # the task's status: every check passed
