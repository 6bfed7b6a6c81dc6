#!/bin/bash
# The KV hand-off modes on one host's GPUs (issue 22's runs, for the multi-GPU issue 25): one
# rank per GPU, NCCL, multicast off. Target: Llama-7B at 16k on 4 GPUs at >= 88% of ideal
# (single / 4 / TTFT), up from 83.9% with `whole` (data/measurements/h100x4-RESULTS.md).
#   [KVR_P=p] [KVR_MODELS="M..."] scripts/gpu/chain.sh [CTX...]   (default 16k 32k)
# KVR_P: the ranks (default all the GPUs of this host; KVR_P=4 on 8 GPUs for the target; from 2
# to the host's GPUs, else it stops: scripts/gpu_env.sh's one_count). KVR_MODELS: the models
# swept, in turn (default llama-7b; then KVR_MODELS=falcon-7b: Falcon-7B's multi-query K/V is
# 32 times smaller, so the modes differ less); about 5 minutes a model on 4 GPUs, so within the
# device's 10-minute limit one model a call. Each run is bounded by what is left of the call
# (gpu_env.sh's run_t: one with too little left is skipped, saying so), and the database is
# copied to $OUT after each model.
# For each model and context: single on one GPU; kvr on KVR_P GPUs in each mode (whole, streamed, direct)
# with the partition searched for that mode on the committed profile (kvr search --kv-forward
# MODE), then auto's plan (the fastest mode, searched); every run's first token and logits
# checksum against whole's. At the first context one timeline per mode (the last rank's layer-0
# wait, measured). Then the simulator's predictions (Llama-7B's). Logs (the model's name
# first: llama-7b-kvr-whole-16k.json) and build-gpu/chain.sqlite to $OUT. A failed search, run,
# validation or prediction makes the call exit 1.
. scripts/gpu_env.sh
ctxs=("$@")
[ $# -eq 0 ] && ctxs=(16k 32k)
models=${KVR_MODELS:-llama-7b}
prof=${gpu_prof:?no multi-GPU profile of this GPU kind (scripts/gpu_env.sh)} db=build-gpu/chain.sqlite
run() { # gpu_env.sh's run, with T's default 240
    local t
    t=$(run_t "${T:-240}" "mpirun -np $*") || return 1
    timeout "$t" mpirun -np "$1" --bind-to none -x NCCL_NVLS_ENABLE "${@:2}"
}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1
p1=$(one_count) || exit 1
echo "p = $p1 ranks (KVR_P) of the $P GPUs"

# one plan of model $m: the search in MODE, then the run; prints TTFT, share of ideal, logits
# against whole
one() {
    local ctx=$1 mode=$2 single=$3 part fwd
    $kvr search --db $db --model $m --machine $prof --gpus "$p1" --ctx "$ctx" \
        --kv-forward "$mode" --force --json >"$out/$m-search-$mode-$ctx.json" || {
        [ $? = 3 ] && echo "$m $mode $ctx: no plan fits" || { echo "search failed: $m $mode $ctx"; bad=1; }
        return
    }
    read -r part fwd < <(python3 -c "import json,sys; r = json.load(open(sys.argv[1]))['rows'][0]; print(','.join(map(str, r['partition_tokens'])), r['kv_forward'])" "$out/$m-search-$mode-$ctx.json")
    echo "$mode:$part:$fwd" >>"$out/$m-plans-$ctx.txt"
    run "$p1" $kvr exec --model $m --ctx "$ctx" --backend cuda --comm nccl --scheme kvr \
        --partition "$part" --kv-forward "$fwd" --db $db --reps 5 --warmup 2 --timeout 60 \
        --json >"$out/$m-kvr-$mode-$ctx.json" 2>"$out/$m-kvr-$mode-$ctx.err" ||
        { echo "$m kvr $mode $ctx failed"; tail -3 "$out/$m-kvr-$mode-$ctx.err"; bad=1; return; }
    python3 - "$out/$m-kvr-$mode-$ctx.json" "$out/$m-kvr-whole-$ctx.json" "$single" "$p1" "$m $ctx" "$mode" <<'PY'
import json, sys
d, w = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
single, p = float(sys.argv[3]), int(sys.argv[4])
eff = single / p / d['ttft_s']
same = d['first_token'] == w['first_token'] and d['logits_checksum'] == w['logits_checksum']
print("%s %-8s (runs %s) partition %s: TTFT %.1f ms, %.1f%% of ideal (target 88%%), logits %s whole's"
      % (sys.argv[5], sys.argv[6], d.get('kv_forward'), d['partition'], 1e3 * d['ttft_s'], 100 * eff,
         "equal to" if same else "DIFFER from"))
PY
    [ $? = 0 ] || bad=1
}

for m in $models; do
    for ctx in "${ctxs[@]}"; do
        rm -f "$out/$m-plans-$ctx.txt"
        t=$(run_t 240 "$m $ctx single") || { bad=1; break; }
        timeout "$t" $kvr exec --model $m --ctx "$ctx" --backend cuda --reps 5 --warmup 2 --json >"$out/$m-single-$ctx.json"
        single=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ttft_s'])" "$out/$m-single-$ctx.json") ||
            { echo "$m $ctx single failed"; bad=1; continue; }
        echo "$m $ctx single: $(python3 -c "print('%.1f ms' % (1e3 * $single))")"
        for mode in whole streamed direct auto; do one "$ctx" $mode "$single"; done
    done

    # the chain's layer-0 wait per mode, measured on a synchronous run's timeline
    for mode in whole streamed direct; do
        part=$(grep "^$mode:" "$out/$m-plans-${ctxs[0]}.txt" | cut -d: -f2)
        [ -n "$part" ] || { echo "$m timeline $mode: no plan (its search above)"; continue; }
        tl="$out/$m-timeline-$mode.tsv"
        run "$p1" $kvr exec --model $m --ctx "${ctxs[0]}" --backend cuda --comm nccl --scheme kvr \
            --partition "$part" --kv-forward $mode --reps 1 --warmup 1 \
            --timeline "$tl" >/dev/null 2>&1 || { echo "$m timeline $mode failed"; bad=1; continue; }
        awk -F'\t' -v r=$((p1 - 1)) -v m="$m $mode" '$1 == r && $2 == 0 && $3 == "wait" {w += $6 - $5}
            END {printf "%s: the last rank waits %.2f ms at layer 0 (measured)\n", m, 1e3 * w}' "$tl"
        $kvr validate --timeline "$tl" --model $m --scheme kvr \
            --partition "$part" --machine $prof --kv-forward $mode >"$out/$m-validate-$mode.txt" 2>&1 ||
            { echo "$m validate --timeline $mode failed"; bad=1; }
        tail -4 "$out/$m-validate-$mode.txt"
    done
    cp $db "$out/" 2>/dev/null
done
sh scripts/kv_forward_predict.sh $kvr >"$out/predicted.txt" || { echo "kv_forward_predict.sh failed"; bad=1; }
cat "$out/predicted.txt"
cp $db "$out/" 2>/dev/null
[ "$bad" = 0 ] # the status, run by itself too (bash scripts/gpu/chain.sh)
