#!/bin/sh
# kvr sim and kvr exec (ref backend, mpi, CPU ranks) agree on the plans on ranks (issue #21-#23
# audit): the same combinations of scheme, hand-off mode, ring pass, --tp, ranks, context and
# partition are accepted by both or refused by both (exit 2, the option named); the executor's
# timeline lists every rank's steps (computes, sends; not the waits) in the simulator's order,
# which kvr validate --timeline checks and a deliberately wrong order fails; every rank's
# times are on one clock (a rank that leaves the start's barrier late makes no link rate
# negative). Skipped (77) without mpirun or an MPI build. Usage: test_exec_consistency.sh KVR
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
mpi_setup

rank_models "$tmp" # gqa: 3 layers, 4 heads over 2 KV heads
printf '[model]\nname = window\nn_layers = 2\nd_model = 128\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 192\nvocab = 96\nnorm = rmsnorm\nmlp = swiglu\nsliding_window = 5\ndtype = bf16\n' >"$tmp/window.ini"
printf '[model]\nname = kv3\nn_layers = 1\nd_model = 96\nn_heads = 6\nn_kv_heads = 3\nd_ffn = 64\nvocab = 32\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >"$tmp/kv3.ini"

# both NP MODEL CTX WANT NAME -- ARGS: kvr sim on NP GPUs and kvr exec on NP ranks, the same
# ARGS; WANT ok: both run (exit 0), refuse: sim exits 2 and exec fails with a kvr usage or
# input error (mpirun's own code races between the ranks' aborts)
both() {
    np=$1 model=$2 ctx=$3 want=$4 name=$5; shift 6
    "$kvr" sim --model "$tmp/$model.ini" --machine a100-nvlink --gpus "$np" --ctx "$ctx" "$@" \
        >/dev/null 2>"$tmp/serr"
    src=$?
    mpi "$np" exec --model "$tmp/$model.ini" --ctx "$ctx" --backend ref --reps 1 --warmup 0 "$@" \
        >/dev/null 2>"$tmp/eerr"
    erc=$?
    if [ "$want" = ok ]; then [ $src = 0 ] && [ $erc = 0 ]
    else [ $src = 2 ] && [ $erc != 0 ] && grep -q "kvr: .*\(usage\|input\) error" "$tmp/eerr"; fi
    report $? "$name: sim and exec both $([ "$want" = ok ] && echo run || echo refuse)" \
        "sim exit $src: $(cat "$tmp/serr"); exec exit $erc: $(grep 'kvr:' "$tmp/eerr" | head -2)"
}
both 4 gqa 37 refuse "--kv-forward whole with tsp" -- --scheme tsp --kv-forward whole
both 4 gqa 37 refuse "--kv-forward streamed with ring" -- --scheme ring --kv-forward streamed
both 4 gqa 37 refuse "--ring-pass q with kvr" -- --scheme kvr --ring-pass q
both 4 gqa 37 refuse "--partition with tsp" -- --scheme tsp --partition 10,9,9,9
both 4 gqa 37 refuse "--partition with ring (zig-zag only)" -- --scheme ring --partition 9,9,9,10
both 4 gqa 37 refuse "a partition summing to 38, not ctx" -- --scheme kvr --partition 20,10,7,1
both 4 gqa 37 refuse "a partition of 2 chunks on 4" -- --scheme kvr --partition 20,17
both 4 gqa 37 refuse "an empty chunk" -- --scheme ring-pass --partition 20,17,0,0
both 4 gqa 3 refuse "p > ctx (tsp)" -- --scheme tsp
both 4 gqa 3 refuse "p > ctx (kvr)" -- --scheme kvr
both 4 gqa 7 refuse "ring with ctx < 2p" -- --scheme ring
both 8 gqa 7 refuse "ring x2 with ctx < 2 stages x 2" -- --scheme ring --tp 2
both 4 gqa 37 refuse "--tp 3 not dividing 4" -- --scheme kvr --tp 3
both 6 gqa 37 refuse "--tp 3 not dividing the 4 heads" -- --scheme kvr --tp 3
both 2 kv3 16 refuse "--tp 2 over 3 KV heads" -- --scheme kvr --tp 2
both 4 gqa 37 refuse "--scheme tp with --tp 2 on 4" -- --scheme tp --tp 2
both 4 gqa 37 ok "--scheme tp with --tp 4 on 4 (t = P)" -- --scheme tp --tp 4
both 4 gqa 3 ok "--scheme tp with ctx 3 on 4 (every rank holds the prompt)" -- --scheme tp
both 8 gqa 3 ok "kvr x4 on 8 with ctx 3 (2 stages)" -- --scheme kvr --tp 4
both 8 gqa 1 refuse "kvr x4 on 8 with ctx 1 (2 stages)" -- --scheme kvr --tp 4
both 8 gqa 8 ok "ring x2 on 8 with ctx 8 (4 stages)" -- --scheme ring --tp 2
both 4 gqa 37 ok "kvr x2, one chunk per stage" -- --scheme kvr --tp 2 --partition 30,7 --kv-forward direct
both 4 gqa 37 refuse "kvr x2 with one chunk per rank" -- --scheme kvr --tp 2 --partition 10,10,10,7
# a list with a scheme that takes no partition: refused before any pair runs (before: kvr ran,
# was reported (and stored with --db), then ring failed)
mpi 2 exec --model "$tmp/gqa.ini" --ctx 37 --backend ref --reps 1 --warmup 0 --scheme kvr,ring \
    --partition 20,17 --db "$tmp/l.db" --allow-dirty >"$tmp/out" 2>"$tmp/err"
[ $? != 0 ] && grep -q "partition applies to schemes kvr, ring-pass only, not ring" "$tmp/err" &&
    [ ! -s "$tmp/out" ] && [ ! -e "$tmp/l.db" ]
report $? "--scheme kvr,ring --partition: refused before kvr runs, nothing printed or stored" "$(cat "$tmp/out" "$tmp/err")"
# --ring-pass auto with --tp: the pass kvr sim --tp predicts for the layout (refused before)
mpi 4 exec --model "$tmp/gqa.ini" --ctx 37 --backend ref --reps 1 --warmup 0 --scheme ring --tp 2 \
    --ring-pass auto --machine a100-10GBps --json >"$tmp/out" 2>"$tmp/err" &&
    "$kvr" sim --model "$tmp/gqa.ini" --machine a100-10GBps --gpus 4 --ctx 37 --scheme ring --tp 2 \
        --ring-pass auto --json >"$tmp/sim" 2>>"$tmp/err" &&
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); s=json.load(open(sys.argv[2])); sys.exit(0 if r['method'] == 'pass-' + s['ring_pass'] and r['tp'] == s['tp'] == 2 else 1)" "$tmp/out" "$tmp/sim"
report $? "ring x2 --ring-pass auto: runs the pass kvr sim --tp 2 picks" "$(cat "$tmp/out" "$tmp/sim" "$tmp/err")"
mpi 2 exec --model "$tmp/gqa.ini" --ctx 37 --backend ref --scheme kvr --comm nccl >/dev/null 2>"$tmp/err"
[ $? != 0 ] && grep -q "nccl moves device buffers: it needs --backend cuda, not ref" "$tmp/err"
report $? "--comm nccl with --backend ref: refused before anything runs, naming the backend" "$(cat "$tmp/err")"

# one clock: rank 1 leaves the start's barrier 0.2 s after the others; it starts late on the
# common clock (the chain waits for it: TTFT >= 0.2 s), and no link's achieved rate is negative
# (with each rank's own barrier exit as its origin, rank 1 timed rank 0's message as received
# before it was sent)
common="--model $tmp/gqa.ini --ctx 37 --backend ref --reps 1 --warmup 0"
for s in "kvr --partition 20,10,7" "ring" "kvr --kv-forward direct --partition 20,10,7"; do
    # shellcheck disable=SC2086
    KVR_TEST_FAULT=late@1 mpi 3 exec $common --scheme $s --json >"$tmp/out" 2>"$tmp/err" &&
        python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if d['ttft_s'] >= 0.2 and d['links'] and all(l['achieved_Bps'] > 0 for l in d['links']) else 1)" "$tmp/out"
    report $? "$s, rank 1 late by 0.2 s: TTFT from the common start, every link's rate positive" \
        "$(cat "$tmp/out" "$tmp/err")"
done

# bytes: with float32 K/V (what the ref backend moves) every run's links carry what the
# simulator's sends add up to (tsp's all-gather pads each rank's chunk to the largest on both;
# the executor counted the unpadded rows). Not pass-Q: the ref backend's partial outputs are
# float64 (the oracle's merge), the simulator's float32 as the cuda backend's.
sed 's/dtype = bf16/dtype = fp32/' "$tmp/gqa.ini" >"$tmp/gqa32.ini"
sed 's/dtype = bf16/dtype = fp32/' "$tmp/window.ini" >"$tmp/window32.ini"
for c in "gqa32 5 --scheme tsp" "gqa32 5 --scheme tsp-causal" "window32 5 --scheme tsp" \
    "window32 4 --scheme kvr --partition 30,1,5,1" "window32 4 --scheme kvr --partition 30,1,5,1 --kv-forward streamed" \
    "window32 4 --scheme kvr --partition 30,1,5,1 --kv-forward direct" "gqa32 4 --scheme ring-pass --partition 1,30,5,1" \
    "window32 6 --scheme ring" "gqa32 5 --scheme ring" "gqa32 5 --scheme tsp-paper" \
    "window32 3 --scheme tsp-paper"; do
    # shellcheck disable=SC2086
    set -- $c
    model=$1 np=$2
    shift 2
    mpi "$np" exec --model "$tmp/$model.ini" --ctx 37 --backend ref --reps 1 --warmup 0 "$@" \
        --machine a100-nvlink --json >"$tmp/out" 2>"$tmp/err" &&
        "$kvr" sim --model "$tmp/$model.ini" --ctx 37 --machine a100-nvlink --gpus "$np" "$@" \
            --json >"$tmp/sim" 2>>"$tmp/err" &&
        python3 -c "import json,sys; r=json.load(open(sys.argv[1])); s=json.load(open(sys.argv[2])); sys.exit(0 if sum(l['bytes'] for l in r['links']) == s['bytes_sent_total'] > 0 else 1)" "$tmp/out" "$tmp/sim"
    report $? "$model on $np ranks $*: the links carry the simulator's bytes" "$(cat "$tmp/err"; grep -h '"bytes' "$tmp/out" "$tmp/sim" | head -12)"
done

# timelines: the executor's steps in the simulator's order, rank by rank (kvr validate
# --timeline); the zig-zag split of 37 tokens on 4 ranks is 9,9,9,10
tl_case() { # tl_case NP MODEL PARTITION NAME -- EXEC-ARGS (validate gets --scheme ... too)
    np=$1 model=$2 part=$3 name=$4; shift 5
    rm -f "$tmp/tl.tsv"
    vpart="--partition $part" # validate's plan: the run's own --partition, else its split
    case "$*" in *--partition*) vpart= ;; esac
    mpi "$np" exec --model "$tmp/$model.ini" --ctx 37 --backend ref --reps 1 --warmup 0 "$@" \
        --timeline "$tmp/tl.tsv" >/dev/null 2>"$tmp/err" &&
        "$kvr" validate --timeline "$tmp/tl.tsv" --model "$tmp/$model.ini" --machine a100-nvlink \
            $vpart "$@" >/dev/null 2>>"$tmp/err"
    report $? "$name: every rank's steps in the simulator's order" "$(cat "$tmp/err")"
}
tl_case 3 gqa 20,10,7 "kvr whole" -- --scheme kvr --partition 20,10,7
for m in streamed direct; do
    tl_case 4 window 30,1,5,1 "kvr $m, window 5, chunks of 1" -- --scheme kvr --partition 30,1,5,1 --kv-forward $m
done
tl_case 5 window 8,8,7,7,7 "tsp-causal, window 5 (halos)" -- --scheme tsp-causal
tl_case 3 gqa 13,12,12 "tsp (all-gather)" -- --scheme tsp
tl_case 3 gqa 13,12,12 "tsp-paper (expanded all-gather)" -- --scheme tsp-paper
tl_case 4 window 1,30,5,1 "ring-pass, window 5" -- --scheme ring-pass --partition 1,30,5,1
tl_case 4 gqa 9,9,9,10 "ring pass-KV" -- --scheme ring
tl_case 4 window 9,9,9,10 "ring pass-Q, window 5" -- --scheme ring --ring-pass q
# the check can fail
mpi 4 exec $common --scheme ring --ring-pass q --timeline "$tmp/q.tsv" >/dev/null 2>&1
V="validate --model $tmp/gqa.ini --machine a100-nvlink"
expect 2 "is a run of ring pass q (its header), but --ring-pass gives kv" \
    "a pass-Q run validated as pass-KV: exit 2 (the plan its header records)" \
    -- $V --timeline "$tmp/q.tsv" --scheme ring --partition 9,9,9,10
# without the header's plan (a file from before kvrun recorded it) the step order catches it
sed '1s/	# kvrun-plan.*//' "$tmp/q.tsv" >"$tmp/q-old.tsv"
expect 2 "rank 0's step 2 is layer 0 compute pack" "  and without the header's plan: exit 2 at the first step" \
    -- $V --timeline "$tmp/q-old.tsv" --scheme ring --partition 9,9,9,10
expect 2 "scheme ring runs its own split of 37 tokens on 4 ranks, 9,9,9,10 (zig-zag)" \
    "a ring timeline with another split than the zig-zag one: exit 2" \
    -- $V --timeline "$tmp/q.tsv" --scheme ring --ring-pass q --partition 10,9,9,9
expect 2 "--ring-pass applies to --scheme ring only" "--ring-pass with kvr: exit 2" \
    -- $V --timeline "$tmp/q.tsv" --scheme kvr --ring-pass q --partition 9,9,9,10
mpi 3 exec $common --scheme kvr --partition 20,10,7 --kv-forward streamed --timeline "$tmp/s.tsv" >/dev/null 2>&1
python3 - "$tmp/s.tsv" "$tmp/bad.tsv" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
mine = [i for i, l in enumerate(lines) if l.startswith('1\t1\t')]  # rank 1, layer 1
a = next(i for i in mine if '\tsend\t' in lines[i])
b = next(i for i in mine if '\tattn+post\t' in lines[i])
lines[a], lines[b] = lines[b], lines[a]  # its attention before its send
open(sys.argv[2], 'w').write('\n'.join(lines) + '\n')
PY
"$kvr" $V --timeline "$tmp/s.tsv" --scheme kvr --partition 20,10,7 --kv-forward streamed >/dev/null 2>"$tmp/err"
report $? "kvr streamed: the run's timeline passes" "$(cat "$tmp/err")"
expect 2 "rank 1's step 6 is layer 1 compute attn+post, the simulator's plan has layer 1 send kv (peer 2)" \
    "the same timeline with rank 1's layer-1 send after its attention: exit 2, naming the step" \
    -- $V --timeline "$tmp/bad.tsv" --scheme kvr --partition 20,10,7 --kv-forward streamed
expect 2 "not a run of this plan" "a streamed run validated as whole: exit 2" \
    -- $V --timeline "$tmp/s.tsv" --scheme kvr --partition 20,10,7
echo "1..$n"
[ "$failed" = 0 ]
