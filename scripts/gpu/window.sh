# A sliding window's trimmed hand-offs (#17) on the cuda backend, ranks sharing one GPU: tsp,
# tsp-causal, ring (pass-KV, pass-Q), ring-pass and kvr (each hand-off mode) on 2 and 4 ranks
# against the single rank's logits (bf16 bounds: relative error, top token), a window smaller
# than a chunk; fails when any differs. Logs: window.log. Regenerates: nothing.
no_args "$@"
printf '[model]\nname = win100\nn_layers = 3\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\nsliding_window = 100\ndtype = bf16\n' >/tmp/win.ini
c="--model /tmp/win.ini --ctx 601 --backend cuda --reps 1 --warmup 0"
bad=0
{
    $kvr exec $c --dump-logits /tmp/w1.l >/dev/null 2>&1 || { echo "single: failed"; exit 1; }
    for np in 2 4; do
        for s in "tsp" "tsp-causal" "ring" "ring --ring-pass q" "ring-pass" "kvr" \
            "kvr --kv-forward streamed" "kvr --kv-forward direct"; do
            rm -f /tmp/wn.l
            run $np $kvr exec $c --scheme $s --dump-logits /tmp/wn.l >/tmp/wn.log 2>&1 ||
                { echo "np $np $s: failed: $(tail -2 /tmp/wn.log)"; bad=1; continue; }
            logits_vs /tmp/w1.l /tmp/wn.l "np $np $s" || bad=1
        done
    done
    stamp window
    exit $bad
} 2>&1 | tee "$out/window.log"
[ "${PIPESTATUS[0]}" = 0 ]
