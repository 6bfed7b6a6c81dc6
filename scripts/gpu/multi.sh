# Several GPUs of one host (one rank per GPU, NCCL): the multi-GPU measurements.
# The rank counts: KVR_GPUS_LIST (default "2 P", P = the GPUs of this host; e.g. "2 4 8" on 8
# GPUs, so that one lease measures p = 2, 4 and 8; the same list on every call) for phases a, b
# and kvr, KVR_P (default P) for the phases that run on one count; each from 2 to P, else the
# call stops at once naming it (scripts/gpu_env.sh). Below, p0 is the list's smallest, pmax its
# largest. In calls that fit the 10-minute limit (each run bounded by what is left of the call,
# gpu_env.sh's run: one with too little left is skipped, saying so; the database copied to $out
# after each model, count or step, so that a call cut short keeps what it measured):
#   multi a     nccl against one rank on pmax ranks (the logits of kvr, tsp, tsp-causal,
#               tsp-paper, ring-pass and ring, pass-KV and pass-Q; tsp and kvr with link
#               emulation too); the links
#               (kvr bench comm on each count of the list); the profile: the committed operation
#               fit of this GPU kind plus the alpha and beta measured on pmax (kvr calibrate
#               --from --link-lat --link-bw), then its overlap cap beside GEMMs (one KVR
#               timeline: Llama-7B at 32k on pmax GPUs, kvr validate --timeline's rate of the
#               transfers a receiver waited for, the profile fitted again with --overlap-bw;
#               a step that fails, or no rate, stops the call and removes the profile); the
#               lookup tables on it (each count); single; then everything on p0 GPUs
#   multi b     everything on each of the other counts (about 2 minutes a count on 4 H100s;
#               the tables searched first for a count that has none, one phase a's list did not
#               have), and the validation
#   multi kvr   only kvr's measurements again (each count), with the tables searched again on
#               the committed profile of this GPU kind and pmax (data/machines/GPUxPMAX-nccl.ini:
#               h100x4, h200x8), into a copy of its committed database
#               (data/measurements/GPUxPMAX-multi.sqlite); and one timeline (pmax); without
#               either file the call stops naming it and the phases that make it
#   multi today [MODELS]   today's models (default llama-3.1-8b; also qwen2-7b, mistral-7b: one
#               a call, five runs each): single on one GPU, then tsp, tsp-causal, ring (pass-KV),
#               KVR-E, ring pass-Q, tsp-paper (alone, at the contexts where kvr sim finds its expanded
#               K/V fits: Llama-3.1-8B's not at 64k and 128k on 4 GPUs, and a plan that does
#               not fit would end the process's list) and KVR-S (the table searched on the profile)
#               on KVR_P GPUs at $CTX (default 16k-128k); p = 4 and 8 on one 8-GPU lease: one
#               call with KVR_P=4, one without
#   multi hybrid check|tp|2|4|kvr2|kvr4   the hybrid layouts (issue #21, for #25): Llama-2-70B
#               (seeded weights, 128.5 GiB: no layout with t = 1 fits an 80 GiB card) on KVR_P = 8
#               GPUs with nccl. check: at 8k the logits of kvr x t, tsp x t, tsp-causal x t and ring x t
#               (t = 2, 4) against TP-8 (relative error, top token); tp: TP-8 at 8k-128k; 2, 4:
#               tsp x t (the paper's baseline; kvr exec --scheme tsp --tp: the scheme table marks
#               tsp a layout), tsp-causal x t and ring x t at 8k-128k (one process; every one
#               fits at t = 2 and 4 by the predictions); kvr2, kvr4: kvr x t with the plan searched
#               by kvr search --tp t on the profile (phase a's, else measured now), read by kvr
#               exec --db (KVR-S at each context); each step one call (a run takes most of one);
#               tp, 2, 4, kvr2 and kvr4 store their rows (with t) in the phases' database, checked
#               by kvr validate --multi-gpu. JSON lines into $out/hybrid-*.jsonl.
# "Everything" for each model: tsp, tsp-causal, tsp-paper (K/V gathered expanded to every query
# head), ring-pass, ring (zig-zag, overlapped; pass-KV, then pass-Q) and KVR-E at 4k-32k; KVR-S
# and KVR-P (24k lies between the table's rows) at full speed; kvr, tsp, tsp-paper, ring-pass
# and ring with every link emulated at 10 GB/s and with link 0-1 at 10 GB/s. One process runs each list of contexts and
# schemes. Measurements go to build-gpu/multi3.sqlite (kept while the machine stays warm) and
# are copied to $out (multi3-PHASE.sqlite) with the profile (GPU-nccl.ini: the operation fit of
# this kind of GPU, data/calibration/GPU-ops.csv, with the measured links and overlap cap),
# comm*.json, the overlap timeline and its validation (tl-overlap-*.tsv,
# overlap-validate-p*.json), and phase kvr's timeline. A failed run, search or validation makes
# the call exit 1 (a failed step of the profile stops it at once).
# Regenerates: data/measurements/h100x4-multi.sqlite (the phases' databases merged; kvr: the kvr
# rows again), data/machines/h100x4-nccl.ini, data/measurements/h100x4-comm-nccl-p2.json and
# -p4.json, data/measurements/h100x4-timeline-llama-7b-32k-kvr.tsv (phase kvr); on 8 H200s
# with KVR_GPUS_LIST="2 4 8": the same files named h200x8 (comm: -p2, -p4, -p8).
phase=${1:-a}
# an unknown phase ran phase b's measurements (the last branch below); extra words were ignored
case $phase in
a | b | kvr) [ $# -le 1 ] || { echo "multi $phase: takes no more arguments (given: ${*:2})" >&2; exit 2; } ;;
today | hybrid) [ $# -le 2 ] || { echo "multi $phase: one more argument at most (given: ${*:2})" >&2; exit 2; } ;;
*) echo "multi: no phase '$phase' (the phases: a b kvr today hybrid)" >&2; exit 2 ;;
esac
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1
db=build-gpu/multi3.sqlite prof=$gpu_nccl
# each phase checks only the count it uses: the list (a, b, kvr) or the one (today, hybrid)
case $phase in
today | hybrid)
    p1=$(one_count) || exit 1
    echo "one count: $p1 (KVR_P); this host: $P GPUs"
    ;;
*)
    ps=$(rank_counts) || exit 1
    p0=${ps%% *} pmax=${ps##* }
    echo "rank counts: $ps (KVR_GPUS_LIST); this host: $P GPUs"
    ;;
esac
stamp built

# A step of the profile (links, profile, overlap) that fails stops the call and removes the
# profile so far (and its copy in $out), so that no later phase or task (gpu_env.sh's gpu_prof)
# searches on, and no one commits, a profile without its links or overlap cap.
die() {
    echo "multi: $*" >&2
    rm -f $prof "$out/${prof##*/}"
    exit 1
}
# The links of p GPUs: bench comm's alpha-beta fit; then the profile (on the links of p GPUs).
links() {
    rm -f build-gpu/comm$1.json
    T=90 run $1 $kvr bench comm --comm nccl --max-bytes 256MB --iters 8 --json >build-gpu/comm$1.json ||
        die "links: kvr bench comm on $1 ranks failed"
    cp build-gpu/comm$1.json "$out/"
    python3 -c "
import json; d = json.load(open('build-gpu/comm$1.json'))
big = max(r['bytes'] for r in d['rows'])
bw = {r['op']: r['busbw_Bps'] for r in d['rows'] if r['bytes'] == big}
print('p=$1 alpha %.2f us beta %.1f GB/s; at %d MB busbw: %s' % (d['alpha_s'] * 1e6, d['beta_Bps'] / 1e9, big >> 20,
      ', '.join('%s %.0f GB/s' % (k, v / 1e9) for k, v in sorted(bw.items()))))" ||
        die "links: no alpha-beta fit in build-gpu/comm$1.json"
}
# profile p [OVERLAP]: fitted on the links of p GPUs (and the overlap cap, a rate)
profile() {
    local lat bw
    read -r lat bw < <(python3 -c "import json; d = json.load(open('build-gpu/comm$1.json')); print('%.9fs %.0fB/s' % (d['alpha_s'], d['beta_Bps']))")
    [ -n "$bw" ] || die "profile: no links of $1 GPUs in build-gpu/comm$1.json"
    [ -f "$gpu_ops" ] || die "no operation fit of a $gpu ($gpu_ops): run scripts/gpu.sh calibrate first"
    rm -f $prof
    $kvr calibrate --from "$gpu_ops" --base "$gpu_base" --link-lat "$lat" --link-bw "$bw" \
        ${2:+--overlap-bw "$2"} --name $gpu-nccl --out $prof >build-gpu/calibrate.log 2>&1 && [ -s $prof ] ||
        { tail -3 build-gpu/calibrate.log; die "profile: kvr calibrate on the links of $1 GPUs${2:+ with --overlap-bw $2} failed"; }
    head -3 build-gpu/calibrate.log
    cp $prof "$out/" || die "profile: cannot copy $prof to $out"
}

# The overlap cap beside GEMMs (issue 25, run 1) on p GPUs, the way data/machines/h100x4-nccl.ini
# got its own: one timeline of Llama-7B at 32k, kvr with the partition searched on the profile
# so far (no cap; a scratch table) and the whole hand-off; kvr validate --timeline --json on it
# (every rank's steps in the simulator's order, else it fails), whose median rate of the
# transfers a receiver waited for (scripts/overlap_rate.py) becomes the profile's --overlap-bw.
# Anything missing stops the call: no table may be searched on a profile without its cap.
overlap() {
    local p=$1 tl="$out/tl-overlap-llama-7b-32k-p$1.tsv" part rate
    rm -f build-gpu/overlap.sqlite
    part=$($kvr search --db build-gpu/overlap.sqlite --model llama-7b --machine $prof --gpus $p --ctx 32k --json |
        python3 -c "import json, sys; print(','.join(map(str, json.load(sys.stdin)['rows'][0]['partition_tokens'])))") &&
        [ -n "$part" ] || die "overlap: no searched partition of llama-7b 32k on $p GPUs"
    rm -f "$tl" "$out/overlap-validate-p$p.json"
    T=120 run $p $kvr exec --model llama-7b --ctx 32k --backend cuda --comm nccl --scheme kvr \
        --partition $part --kv-forward whole --reps 1 --warmup 1 --timeline "$tl" >build-gpu/overlap-exec.log 2>&1 &&
        [ -s "$tl" ] || { tail -3 build-gpu/overlap-exec.log; die "overlap: the timeline run (kvr exec on $p ranks) failed"; }
    grep TTFT build-gpu/overlap-exec.log
    $kvr validate --timeline "$tl" --model llama-7b --scheme kvr --partition $part \
        --kv-forward whole --machine $prof --json >"$out/overlap-validate-p$p.json" ||
        die "overlap: kvr validate --timeline $tl failed"
    rate=$(python3 scripts/overlap_rate.py "$out/overlap-validate-p$p.json") ||
        die "overlap: no rate of the waited transfers in $out/overlap-validate-p$p.json"
    echo "overlap cap on $p GPUs (llama-7b 32k, partition $part): $rate"
    profile $p "$rate"
}

# The lookup tables of both models on each rank count given, at full speed and with the
# emulated links.
tables() {
    for p in "$@"; do
        for extra in "" "--bw 10GB/s" "--link 0-1=10GB/s"; do
            $kvr search --db $db --model llama-7b,falcon-7b --machine $prof $extra --gpus $p \
                --ctx 4k,8k,16k,32k >/dev/null || { echo "search failed: p=$p $extra"; bad=1; }
        done
    done
}

# has_tables p: the database holds the tables' plans of p GPUs (no database: it does not)
has_tables() {
    python3 - "$db" "$1" <<'PY' 2>/dev/null
import sqlite3, sys
c = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True)
sys.exit(0 if c.execute("SELECT 1 FROM plan WHERE p = ? AND model = 'llama-7b' LIMIT 1", (int(sys.argv[2]),)).fetchone() else 1)
PY
}

# save [NAME]: the database (its log checkpointed) to $out/NAME (default multi3-PHASE.sqlite),
# after each model, count or step
save() {
    python3 -c "import sqlite3; c = sqlite3.connect('$db'); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.close()"
    cp $db "$out/${1:-multi3-$phase.sqlite}"
}

# Every measurement of model m on p GPUs (only kvr's with KVR_ONLY=1).
measure() {
    local p=$1 m=$2 k="--model $2 --backend cuda --db $db --json --timeout 60 --comm nccl"
    local full=tsp,tsp-causal,tsp-paper,ring-pass,ring,kvr emul=kvr,tsp,tsp-paper,ring-pass,ring
    [ "${KVR_ONLY:-0}" = 1 ] && full=kvr emul=kvr
    show() { grep -E '"(ctx|scheme|method|ttft_s)"' | paste -sd' ' | sed 's/"ctx"/\n"ctx"/g; s/  */ /g' | grep . | sed "s|^|p=$p $m $1: |"; }
    run $p $kvr exec $k --reps 3 --warmup 1 --ctx 4k,8k,16k,24k,32k --scheme $full | show full || bad=1
    run $p $kvr exec $k --reps 3 --warmup 1 --ctx 4k,8k,16k,24k,32k --scheme kvr --machine $prof | show table || bad=1
    [ "${KVR_ONLY:-0}" = 1 ] || run $p $kvr exec $k --reps 3 --warmup 1 --ctx 4k,8k,16k,24k,32k --scheme ring --ring-pass q | show pass-q ||
        bad=1
    run $p $kvr exec $k --reps 2 --warmup 1 --ctx 8k,16k,32k --scheme $emul --machine $prof --bw 10GB/s | show 10GB/s || bad=1
    run $p $kvr exec $k --reps 2 --warmup 1 --ctx 16k,32k --scheme $emul --machine $prof --link 0-1=10GB/s | show slow-0-1 || bad=1
}

if [ "$phase" = a ]; then
    rm -f $db $prof
    c="--model /tmp/gqa64.ini --ctx 1024 --backend cuda --reps 1 --warmup 0 --timeout 30"
    rm -f /tmp/r.l
    run 1 $kvr exec $c --scheme single --dump-logits /tmp/r.l >/dev/null || { echo "multi a: the one-rank reference failed"; bad=1; }
    for s in "kvr" "tsp" "tsp-causal" "tsp-paper" "ring-pass" "ring" "ring --ring-pass q" \
        "tsp --machine a100-10GBps" "kvr --machine a100-10GBps"; do
        rm -f /tmp/n.l
        T=60 run $pmax $kvr exec $c --scheme $s --comm nccl --dump-logits /tmp/n.l --json >/dev/null 2>/tmp/e ||
            { head -3 /tmp/e; bad=1; }
        logits_vs /tmp/r.l /tmp/n.l "nccl $s on $pmax ranks" || bad=1
    done
    stamp checked
    for p in $ps; do links $p; done
    profile $pmax
    overlap $pmax
    tables $ps
    stamp profiled
    for m in llama-7b falcon-7b; do
        run 1 $kvr exec --model $m --backend cuda --db $db --json --reps 3 --warmup 1 --ctx 4k,8k,16k,24k,32k --scheme single |
            grep -E '"(ctx|ttft_s)"' | paste -sd' ' | sed "s/^/single $m: /" || bad=1
        measure $p0 $m
        stamp "p=$p0 $m"
        save
    done
elif [ "$phase" = kvr ]; then # kvr again after an executor change, on the committed tables
    # the committed files of this kind and the list's largest count (h100x4, h200x8)
    cprof=data/machines/${gpu}x$pmax-nccl.ini cdb=data/measurements/${gpu}x$pmax-multi.sqlite
    missing=
    for f in $cprof $cdb; do [ -f $f ] || missing="$missing $f"; done
    [ -z "$missing" ] || {
        echo "multi kvr: measures kvr again on the committed $cprof and $cdb; missing:$missing"
        echo "  (phase a makes the profile, $out/$gpu-nccl.ini; phases a and b the database," \
            "$out/multi3-a.sqlite and multi3-b.sqlite merged; on $pmax ${gpu}s, KVR_GPUS_LIST=\"$ps\")"
        exit 1
    }
    cp $cprof $prof
    cp $cdb $db
    # the tables again on the committed profile (its overlap cap, the fitted attention rows)
    python3 -c "import sqlite3; c = sqlite3.connect('$db'); c.execute('DELETE FROM plan'); c.commit()"
    tables $ps
    for p in $ps; do for m in llama-7b falcon-7b; do KVR_ONLY=1 measure $p $m; stamp "kvr p=$p $m"; save; done; done
    part=$($kvr lookup --db $db --model llama-7b --machine $prof --gpus $pmax --ctx 32k --json |
        python3 -c "import json, sys; print(','.join(map(str, json.load(sys.stdin)['partition_tokens'])))") ||
        { echo "multi kvr: no partition of llama-7b 32k on $pmax GPUs in $db"; bad=1; }
    echo "timeline: llama-7b 32k kvr --partition $part"
    run $pmax $kvr exec --model llama-7b --ctx 32k --backend cuda --comm nccl --scheme kvr \
        --partition $part --reps 1 --warmup 1 --timeline "$out/tl-llama-7b-32k-kvr.tsv" | grep TTFT || bad=1
elif [ "$phase" = today ]; then # today's models (issue 25, run 3), one a call by default
    models=${2:-llama-3.1-8b} ctxs=${CTX:-16k,32k,64k,128k}
    [ -f $prof ] || { links $p1; profile $p1; overlap $p1; }
    for m in $models; do
        k="--model $m --backend cuda --db $db --json --timeout 120"
        run 1 $kvr exec $k --reps 2 --warmup 1 --ctx $ctxs --scheme single |
            grep -E '"(ctx|ttft_s)"' | paste -sd' ' | sed "s/^/single $m: /" || bad=1
        stamp "single $m"
        T=570 run $p1 $kvr exec $k --comm nccl --reps 2 --warmup 1 --ctx $ctxs \
            --scheme tsp,tsp-causal,ring,kvr | grep -E '"(ctx|scheme|method|ttft_s)"' | paste -sd' ' |
            sed 's/"ctx"/\n"ctx"/g' | grep . | sed "s/^/p=$p1 $m: /" || bad=1
        T=570 run $p1 $kvr exec $k --comm nccl --reps 2 --warmup 1 --ctx $ctxs \
            --scheme ring --ring-pass q | grep -E '"(ctx|scheme|ttft_s)"' | paste -sd' ' |
            sed 's/"ctx"/\n"ctx"/g' | grep . | sed "s/^/p=$p1 $m pass-q: /" || bad=1
        fit=$(for c in $(echo $ctxs | tr , ' '); do
            $kvr sim --model $m --machine $prof --gpus $p1 --ctx $c --scheme tsp-paper --json 2>/dev/null |
                python3 -c "import json, sys; sys.exit(0 if all(r['fits'] for r in json.load(sys.stdin)['ranks']) else 1)" && echo $c
        done | paste -sd,)
        echo "tsp-paper $m on $p1 GPUs: the contexts whose expanded K/V fits: ${fit:-none}"
        [ -z "$fit" ] || T=570 run $p1 $kvr exec $k --comm nccl --reps 2 --warmup 1 --ctx $fit \
            --scheme tsp-paper | grep -E '"(ctx|scheme|ttft_s)"' | paste -sd' ' |
            sed 's/"ctx"/\n"ctx"/g' | grep . | sed "s/^/p=$p1 $m: /" || bad=1
        $kvr search --db $db --model $m --machine $prof --gpus $p1 --ctx $ctxs >/dev/null ||
            [ $? = 3 ] || { echo "search failed: $m"; bad=1; } # 3: some plans do not fit, a result
        T=570 run $p1 $kvr exec $k --comm nccl --reps 2 --warmup 1 --ctx $ctxs --scheme kvr \
            --machine $prof | grep -E '"(ctx|method|ttft_s)"' | paste -sd' ' |
            sed 's/"ctx"/\n"ctx"/g' | grep . | sed "s/^/p=$p1 $m KVR-S: /" || bad=1
        stamp "p=$p1 $m"
        save
    done
    $kvr validate --multi-gpu --db $db --machine $prof 2>&1 | sed -n '/^kvr: \|points: MAPE/,$p' || bad=1
elif [ "$phase" = hybrid ]; then # the hybrid layouts (--tp): Llama-2-70B on KVR_P GPUs
    step=${2:-check} m=llama-2-70b ctxs="8k 16k 32k 64k 128k"
    k="--model $m --backend cuda --comm nccl --timeout 600 --json"
    [ "$p1" = 8 ] || echo "hybrid: written for 8 GPUs, running on $p1 (KVR_P; this host has $P)"
    hout="$out/hybrid-$step.jsonl"
    if [ "$step" = check ]; then
        c="--ctx 8k --reps 1 --warmup 0"
        T=300 run $p1 $kvr exec $k $c --scheme tp --dump-logits /tmp/tp8.l >>"$hout" || bad=1
        for lay in "kvr --tp 2" "kvr --tp 4" "tsp --tp 2" "tsp --tp 4" "tsp-causal --tp 2" "tsp-causal --tp 4" \
            "ring --tp 2" "ring --tp 4"; do
            rm -f /tmp/h.l
            T=300 run $p1 $kvr exec $k $c --scheme $lay --dump-logits /tmp/h.l >>"$hout" ||
                { echo "failed: $lay"; bad=1; }
            logits_vs /tmp/tp8.l /tmp/h.l "$m 8k $lay against TP-$p1" || bad=1
            stamp "checked $lay"
        done
    elif [ "$step" = tp ]; then
        T=570 run $p1 $kvr exec $k --db $db --reps 2 --warmup 1 --ctx "$(echo $ctxs | tr ' ' ,)" --scheme tp >>"$hout" ||
            bad=1
    else
        t=${step#kvr} all=$(echo $ctxs | tr ' ' ,)
        case $t in
        2 | 4) ;;
        *) echo "multi hybrid: no step '$step' (check, tp, 2, 4, kvr2, kvr4)" >&2; exit 2 ;;
        esac
        if [ "$t" = "$step" ]; then
            T=570 run $p1 $kvr exec $k --db $db --reps 2 --warmup 1 --ctx "$all" --scheme tsp,tsp-causal,ring --tp $t >>"$hout" ||
                bad=1
            stamp "tsp, tsp-causal, ring x$t"
        else
            # kvr x t: the plan searched on the profile (the stages' chain; plans that do not fit
            # are not stored), read from the table by kvr exec --db (its chains' links emulated)
            [ -f $prof ] || { links $p1; profile $p1; overlap $p1; }
            $kvr search --db $db --model $m --machine $prof --gpus $p1 --ctx "$all" --tp $t | tail -7 ||
                [ $? = 3 ] || bad=1 # 3 (pipefail: kvr's): plans that do not fit, not stored
            fit=$(python3 -c "import sqlite3; c = sqlite3.connect('$db'); print(','.join(str(r[0]) for r in c.execute(
    \"SELECT DISTINCT ctx_tokens FROM plan WHERE model = '$m' AND p = $p1 AND tp = $t AND scheme = 'kvr' ORDER BY 1\")))")
            echo "kvr x$t: the contexts whose plan fits: ${fit:-none}"
            [ -z "$fit" ] || T=570 run $p1 $kvr exec $k --db $db --machine $prof --reps 2 --warmup 1 \
                --ctx "$fit" --scheme kvr --tp $t >>"$hout" || bad=1
            stamp "kvr x$t (KVR-S)"
        fi
    fi
    grep -hE '"(scheme|method|tp|ctx|ttft_s)"' "$hout" | paste -sd' ' | sed 's/"model"/\n"model"/g' | grep . | tail -20
    [ "$step" = check ] || [ ! -f $prof ] || $kvr validate --multi-gpu --db $db --machine $prof 2>&1 | sed -n '/^kvr: \|points: MAPE/,$p' ||
        bad=1
    [ "$step" = check ] || save "multi3-hybrid-$step.sqlite"
    stamp done
    exit $bad
else
    [ -f $prof ] || { for p in $ps; do links $p; done; profile $pmax; overlap $pmax; tables $ps; }
    [ "$ps" != "$p0" ] || echo "multi b: the list ($ps) has no count beyond phase a's p0 = $p0"
    for p in ${ps#$p0}; do
        # a count phase a's list did not have: its tables now
        has_tables $p || { echo "multi b: no tables of p = $p in $db (not in phase a's list): searching them"; tables $p; }
    done
    for p in ${ps#$p0}; do
        for m in llama-7b falcon-7b; do
            measure $p $m
            stamp "p=$p $m"
            save
        done
    done
    $kvr validate --multi-gpu --db $db --machine $prof 2>&1 | sed -n '/^kvr: \|points: MAPE/,$p' || bad=1
fi
save
cp build-gpu/comm*.json "$out/" 2>/dev/null
stamp done
