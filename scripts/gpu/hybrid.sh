# The hybrid layouts (--tp) on one GPU: ranks sharing it against one rank.
# tests/test_exec_tp_cuda.sh (tp, kvr, tsp, ring... x t with p ranks on the GPU, bf16 bounds),
# the Hugging Face goldens on cuda (the unsharded path through the changed LM head), then
# Llama-7B (seeded on the device) as tp x2 and kvr x2 on 2 and 4 ranks sharing the GPU against
# one rank (relative error, top token; times of ranks sharing a GPU mean nothing).
# Logs: hybrid.log, tp_cuda.log. Regenerates: nothing.
no_args "$@"
{
    stamp built
    sh tests/test_exec_tp_cuda.sh $kvr >"$out/tp_cuda.log" 2>&1 || bad=1
    echo "exec_tp_cuda: rc $bad, $(grep -c '^ok' "$out/tp_cuda.log") ok, $(grep -c '^not ok' "$out/tp_cuda.log") not ok"
    grep -A3 '^not ok' "$out/tp_cuda.log" | head -30
    stamp "exec_tp_cuda done"
    rc=0
    sh tests/test_hf_goldens.sh $kvr cuda >"$out/hf_cuda.log" 2>&1 || rc=1 bad=1
    echo "hf goldens cuda: rc $rc, $(grep -c '^ok' "$out/hf_cuda.log") ok"
    grep -A2 '^not ok' "$out/hf_cuda.log" | head -10
    stamp "hf goldens (cuda) done"
    c="--model llama-7b --ctx 2k --backend cuda --reps 1 --warmup 0 --timeout 120"
    rm -f /tmp/r7.l # an earlier call's reference must not stand in for a failed one
    T=100 run 1 $kvr exec $c --dump-logits /tmp/r7.l | grep -E "TTFT|first"
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "llama-7b 2k one rank: FAILED"; bad=1; } # kvr's, not grep's
    for s in "2 tp" "4 kvr --tp 2 --partition 1200,848"; do
        set -- $s
        rm -f /tmp/t7.l
        # into a file, not through head: a closed pipe would fail the run
        T=100 run $1 $kvr exec $c --scheme "${@:2}" --dump-logits /tmp/t7.l >/tmp/t7.log 2>&1 ||
            { echo "llama-7b 2k $s: FAILED"; bad=1; }
        grep -E "first|error|memory" /tmp/t7.log | head -3
        logits_vs /tmp/r7.l /tmp/t7.l "llama-7b 2k $s" || bad=1
        stamp "llama-7b $s"
    done
    exit $bad
} 2>&1 | tee "$out/hybrid.log"
[ "${PIPESTATUS[0]}" = 0 ]
