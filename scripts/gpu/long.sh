# Long context on one GPU (issue #24): Llama-3.1-8B at 64k and 128k, kvrun beside PyTorch + Hugging
# Face (SDPA, eager; out of memory is reported as such), and Llama-7B at the largest context that
# fits (sub-chunks chosen by --chunk auto; LONG_PEER=0 leaves PyTorch and the 16k sub-chunks
# out, LONG_7B_CTX the contexts tried, LONG_TEST=0 the kernel tests); each kvrun run prints the memory it planned before
# allocating beside the peak it used. Logs: long.log, long.jsonl. Regenerates:
# exec/bench/long_h200.{log,jsonl} (copied by hand with the commit).
{
    stamp "built $(cat .kvr-version 2>/dev/null)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    timeout 120 meson test -C build-gpu hf_goldens_cuda 2>&1 | grep -E "^ *[0-9]+/"
    grep -E "sub-chunks|^not ok" build-gpu/meson-logs/testlog.txt | head -6
    one() { # one MODEL CTX [kvr options]: kvrun, one JSON line, and its memory
        timeout 200 $kvr exec --model "$1" --ctx "$2" --backend cuda --warmup 1 --reps 2 --json "${@:3}" |
            tee -a "$out/long.jsonl" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("kvrun %s %d: TTFT %.3f s, MFU %.1f%%, sub-chunks %d, planned %.2f GB, peak %.2f GB (peak / planned %.3f)" % (
    r["model"], r["ctx"], r["ttft_s"], 100 * r["mfu"], r["chunk_tokens"], r["mem_predicted_bytes"] / 1e9,
    r["peak_mem_bytes"] / 1e9, r["peak_mem_bytes"] / r["mem_predicted_bytes"]))'
    }
    [ "${LONG_TEST:-1}" = 1 ] && { timeout 60 build-gpu/tests/test_exec_cuda >"$out/exec_cuda.tap" 2>&1; echo "exec_cuda rc=$? $(grep -c '^ok' "$out/exec_cuda.tap") ok $(grep -c '^not ok' "$out/exec_cuda.tap") not ok"; }
    for ctx in 65536 131072; do
        one llama-3.1-8b $ctx
        stamp "kvrun llama-3.1-8b $ctx"
        [ "${LONG_PEER:-1}" = 1 ] || continue
        timeout 240 python3 exec/bench/hf_prefill.py --kvr $kvr --model llama-3.1-8b --ctx $ctx \
            --warmup 1 --reps 2 2>"$out/hf-$ctx.err" | tee -a "$out/long.jsonl" || tail -3 "$out/hf-$ctx.err"
        stamp "pytorch llama-3.1-8b $ctx"
    done
    [ "${LONG_PEER:-1}" = 1 ] && one llama-3.1-8b 131072 --chunk 16k &&
        stamp "llama-3.1-8b 128k in 16k sub-chunks"
    for ctx in ${LONG_7B_CTX:-229376 262144}; do
        one llama-7b $ctx || echo "llama-7b $ctx: does not fit"
        stamp "llama-7b $ctx"
    done
} 2>&1 | tee "$out/long.log"
