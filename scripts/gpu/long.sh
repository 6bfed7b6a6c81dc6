# Long context on one GPU (issue #24): Llama-3.1-8B at 64k and 128k, kvrun beside PyTorch + Hugging
# Face (SDPA, eager; out of memory is reported as such), and Llama-7B at the largest context that
# fits (sub-chunks chosen by --chunk auto; LONG_PEER=0 leaves PyTorch and the 16k sub-chunks
# out, LONG_7B_CTX the contexts tried, LONG_TEST=0 the kernel tests); each kvrun run prints the memory it planned before
# allocating beside the peak it used. A context kvr refuses as too large for the GPU is reported
# as "does not fit", a result; any other failure (a test, a kvr run, hf_prefill.py) makes the
# call exit 1. Logs: long.log, long.jsonl. Regenerates:
# exec/bench/long_h200.{log,jsonl} (copied by hand with the commit).
no_args "$@"
{
    stamp "built $(cat .kvr-version 2>/dev/null)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    timeout 120 meson test -C build-gpu hf_goldens_cuda 2>&1 | grep -E "^ *[0-9]+/"
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "meson test hf_goldens_cuda: FAILED"; bad=1; }
    grep -E "sub-chunks|^not ok" build-gpu/meson-logs/testlog.txt | head -6
    # one MODEL CTX [kvr options]: kvrun, one JSON line, and its memory; status 3 when kvr refuses
    # the context as too large for the GPU (gpu_env.sh's nofit), 1 on any other failure
    one() {
        local rc what="$1 $2${3:+ ${*:3}}"
        timeout 200 $kvr exec --model "$1" --ctx "$2" --backend cuda --warmup 1 --reps 2 --json "${@:3}" \
            >/tmp/long.json 2>/tmp/long.err
        rc=$?
        cat /tmp/long.err
        if [ $rc != 0 ]; then
            nofit $rc /tmp/long.err && { echo "$what: does not fit"; return 3; }
            echo "kvrun $what: FAILED, rc $rc"
            return 1
        fi
        tee -a "$out/long.jsonl" </tmp/long.json | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("kvrun %s %d: TTFT %.3f s, MFU %.1f%%, sub-chunks %d, planned %.2f GB, peak %.2f GB (peak / planned %.3f)" % (
    r["model"], r["ctx"], r["ttft_s"], 100 * r["mfu"], r["chunk_tokens"], r["mem_predicted_bytes"] / 1e9,
    r["peak_mem_bytes"] / 1e9, r["peak_mem_bytes"] / r["mem_predicted_bytes"]))'
    }
    if [ "${LONG_TEST:-1}" = 1 ]; then
        timeout 60 build-gpu/tests/test_exec_cuda >"$out/exec_cuda.tap" 2>&1
        rc=$?; [ $rc = 0 ] || bad=1
        echo "exec_cuda rc=$rc $(grep -c '^ok' "$out/exec_cuda.tap") ok $(grep -c '^not ok' "$out/exec_cuda.tap") not ok"
    fi
    for ctx in 65536 131072; do
        one llama-3.1-8b $ctx || [ $? = 3 ] || bad=1 # not fitting is a result, not a failure
        stamp "kvrun llama-3.1-8b $ctx"
        [ "${LONG_PEER:-1}" = 1 ] || continue
        # PyTorch's out of memory is a row of hf_prefill.py's ("error"), not its failure
        timeout 240 python3 exec/bench/hf_prefill.py --kvr $kvr --model llama-3.1-8b --ctx $ctx \
            --warmup 1 --reps 2 2>"$out/hf-$ctx.err" | tee -a "$out/long.jsonl" ||
            { echo "hf_prefill.py llama-3.1-8b $ctx: FAILED"; tail -3 "$out/hf-$ctx.err"; bad=1; }
        stamp "pytorch llama-3.1-8b $ctx"
    done
    if [ "${LONG_PEER:-1}" = 1 ]; then
        one llama-3.1-8b 131072 --chunk 16k || [ $? = 3 ] || bad=1
        stamp "llama-3.1-8b 128k in 16k sub-chunks"
    fi
    for ctx in ${LONG_7B_CTX:-229376 262144}; do
        one llama-7b $ctx || [ $? = 3 ] || bad=1
        stamp "llama-7b $ctx"
    done
    exit $bad
} 2>&1 | tee "$out/long.log"
[ "${PIPESTATUS[0]}" = 0 ]
