# Power and clocks: attention alone at 32k (20 and 200 reps, with LSE, persistent) and a Llama-7B
# 32k prefill with its profile, beside nvidia-smi dmon (power, SM clock, once a second). A failed
# run makes the call exit 1.
# Regenerates: exec/bench/power_h200_dmon.log (from $out/dmon.log).
no_args "$@"
nvidia-smi dmon -s pc -d 1 >"$out/dmon.log" 2>&1 &
dm=$!
# pipefail: kvr's status through tail (which reads everything)
for r in 20 200; do $kvr bench attention --ctx 32k --reps $r --quiet | tail -3 || bad=1; done
$kvr bench attention --ctx 32k --reps 20 --lse --quiet | tail -2 || bad=1
KVR_ATTN_PERSIST=1 $kvr bench attention --ctx 32k --reps 20 --quiet | tail -2 || bad=1
stamp bench
$kvr exec --model llama-7b --ctx 32k --backend cuda --warmup 1 --reps 3 --profile 2>&1 |
    grep -E "TTFT|attention|qkv|mlp_up|error"
[ "${PIPESTATUS[0]}" = 0 ] || bad=1 # kvr's status, not grep's
stamp exec
kill $dm
cat "$out/dmon.log"
