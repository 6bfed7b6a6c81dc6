# The edges of issue #24's checks: compute-sanitizer racecheck of the ring's steps on the
# persistent attention kernel at the smallest shapes (it ran past 330 s at 256-512 tokens on 4
# ranks), and Llama-7B at the largest context the executor plans to fit one GPU (EDGE_CTX,
# --chunk auto), with the memory it planned beside the peak it used: the first of EDGE_CTX that
# fits (a context kvr refuses as too large for the GPU is a result; a racecheck that fails or
# times out, or any other failed run, makes the call exit 1). Logs: edge.log.
# Regenerates: nothing committed by itself (the numbers go into exec/bench/RESULTS.md).
no_args "$@"
{
    stamp "built $(cat .kvr-version 2>/dev/null)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.free --format=csv,noheader
    for shape in "128 2 1" "256 2 1" "256 4 2"; do
        set -- $shape
        s0=$(date +%s)
        timeout 200 compute-sanitizer --tool racecheck --error-exitcode 9 $kvr bench attention \
            --ctx $1 --heads $3 --kv-heads 1 --ring $2 --check --reps 1 >/tmp/race.log 2>&1
        rc=$?; [ $rc = 0 ] || bad=1 # 124: timed out, the check not done
        echo "racecheck persistent ring: ctx $1, $2 ranks, $3 heads: rc=$rc in $(($(date +%s) - s0)) s: $(grep -E 'RACECHECK SUMMARY' /tmp/race.log)"
        grep -iE "persist|variant" /tmp/race.log | head -3
    done
    stamp racecheck
    for ctx in ${EDGE_CTX:-258048 253952}; do
        timeout 150 $kvr exec --model llama-7b --ctx $ctx --backend cuda --chunk auto --warmup 0 \
            --reps 1 --json >/tmp/edge.json 2>/tmp/edge.err
        rc=$?
        echo "llama-7b $ctx: rc=$rc $(tail -2 /tmp/edge.err)"
        if [ $rc != 0 ]; then
            nofit $rc /tmp/edge.err && echo "llama-7b $ctx: does not fit" || bad=1
            stamp "llama-7b $ctx"
            continue
        fi
        python3 -c '
import json, sys
r = json.load(open("/tmp/edge.json"))
print("kvrun %s %d: TTFT %.3f s, MFU %.1f%%, sub-chunks %d, planned %.2f GB, peak %.2f GB (peak / planned %.4f)" % (
    r["model"], r["ctx"], r["ttft_s"], 100 * r["mfu"], r["chunk_tokens"], r["mem_predicted_bytes"] / 1e9,
    r["peak_mem_bytes"] / 1e9, r["peak_mem_bytes"] / r["mem_predicted_bytes"]))' || bad=1
        cp /tmp/edge.json "$out/edge-$ctx.json"
        break
    done
    stamp done
    exit $bad
} 2>&1 | tee "$out/edge.log"
[ "${PIPESTATUS[0]}" = 0 ]
