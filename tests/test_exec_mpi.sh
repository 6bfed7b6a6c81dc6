#!/bin/sh
# The schemes on real ranks (ref backend, mpi communicator): for kvr (each KV hand-off mode:
# whole, streamed, direct), tsp, tsp-causal, tsp-paper and ring-pass
# on p = 1, 2, 3, 4 and 8 ranks, uneven KV-Runahead partitions included, the last rank's logits
# and whole KV cache equal the single-rank run's (max abs diff <= 1e-5). Then the measurement
# row, link emulation, the timeline, and the faults: a partition for the wrong rank count, a
# rank that dies, a rank that hangs, nccl without a GPU. Skipped (77) without mpirun or an MPI
# build. Usage: test_exec_mpi.sh KVR
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
mpi_setup

rank_models "$tmp"

cmp=same_f32
for model in gqa mqa; do
    common="--model $tmp/$model.ini --ctx 37 --backend ref --reps 1 --warmup 0"
    ref_run "$model: single-rank reference"
    for p in 1 2 3 4 8; do
        case $p in 3) part="--partition 20,10,7" ;; 4) part="--partition 15,10,7,5" ;;
            8) part="--partition 8,7,6,5,4,3,2,2" ;; *) part= ;; esac
        chains_vs_ref $p "$part" "$model: " "last rank's logits and KV cache equal single"
    done
done

# an option is given once (kvr refuses a second value): runs that change one start from $base
base="--model $tmp/gqa.ini --backend ref --warmup 1"
common="$base --ctx 37 --reps 3"
mpi 3 exec $common --scheme kvr --partition 20,10,7 --db "$tmp/m.db" --allow-dirty --json >"$tmp/out" 2>"$tmp/err" &&
    [ "$(sql "$tmp/m.db" "SELECT scheme || ' ' || method || ' ' || p || ' ' || partition_tokens || ' ' || comm FROM measurement")" = "kvr given 3 20;10;7 mpi" ] &&
    [ -n "$(sql "$tmp/m.db" "SELECT mpi_version FROM measurement")" ] &&
    [ "$(sql "$tmp/m.db" "SELECT count(*) FROM measurement JOIN run ON run.id = measurement.run_id")" = 1 ]
report $? "rank 0 stores one measurement row with its provenance" "$(cat "$tmp/err")"
mpi 3 exec $base --ctx 37 --reps 1 --scheme kvr --partition 20,10,7 --kv-forward direct --db "$tmp/m.db" --allow-dirty >/dev/null 2>"$tmp/err" &&
    [ "$(sql "$tmp/m.db" "SELECT group_concat(kv_forward) FROM measurement")" = "whole,direct" ]
report $? "the measurement row records the KV hand-off mode" "$(cat "$tmp/err")"
"$kvr" search --db "$tmp/fwd.db" --model "$tmp/gqa.ini" --machine a100-10GBps --gpus 3 --ctx 37 --granularity 1 --kv-forward streamed >/dev/null 2>"$tmp/err" &&
    mpi 3 exec $base --ctx 37 --reps 1 --scheme kvr --machine a100-10GBps --db "$tmp/fwd.db" --allow-dirty --json >"$tmp/out" 2>>"$tmp/err" &&
    grep -q '"kv_forward": "streamed"' "$tmp/out" && grep -q '"method": "kvr-s"' "$tmp/out" &&
    [ "$(sql "$tmp/fwd.db" "SELECT kv_forward FROM measurement")" = streamed ]
report $? "kvr exec --db runs the table row's hand-off mode and records it" "$(cat "$tmp/err" "$tmp/out")"
mpi 3 exec $common --scheme kvr --machine a100-10GBps --bw 2MB/s --json >"$tmp/out" 2>"$tmp/err"
python3 - "$tmp/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
links = {(l['from'], l['to']): l for l in d['links']}
ok = set(links) == {(0, 1), (1, 2)} and all(l['achieved_Bps'] <= 2e6 * 1.02 for l in links.values())
# rank 2 waits for 3 layers of [0, 26) rows (K and V, 2 KV heads of 32, float32) at 2 MB/s
ok = ok and d['ttft_s'] >= 3 * 26 * 2 * 64 * 4 / 2e6
sys.exit(0 if ok else 1)
PY
report $? "link emulation: 2 MB/s links are never beaten, and the chain waits for them" "$(cat "$tmp/out" "$tmp/err")"
for mode in streamed direct; do
    mpi 3 exec $common --scheme kvr --kv-forward $mode --machine a100-10GBps --bw 2MB/s --json >"$tmp/out" 2>"$tmp/err"
    python3 - "$tmp/out" $mode <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
links = {(l['from'], l['to']): l for l in d['links']}
want = {(0, 1), (1, 2)} if sys.argv[2] == 'streamed' else {(0, 1), (0, 2), (1, 2)}
ok = d['kv_forward'] == sys.argv[2] and set(links) == want
ok = ok and all(l['achieved_Bps'] <= 2e6 * 1.02 for l in links.values())
# the links carry what whole's chain does, [0, S_i) for i < 2 of each of 3 layers in each of
# 3 reps (13 + 25 rows of K and V, 2 KV heads of 32, float32)
ok = ok and sum(l['bytes'] for l in links.values()) == 3 * 3 * (13 + 25) * 2 * 64 * 4
sys.exit(0 if ok else 1)
PY
    report $? "link emulation, --kv-forward $mode: the links the mode uses, at 2 MB/s at most" "$(cat "$tmp/out" "$tmp/err")"
done
mpi 3 exec $common --scheme kvr --kv-forward streamed --timeline "$tmp/tl.tsv" >/dev/null 2>"$tmp/err" &&
    [ "$(awk -F'\t' '$1 == 1 && $3 == "send" && $2 == 0' "$tmp/tl.tsv" | wc -l)" = 2 ]
report $? "--kv-forward streamed: rank 1 sends two pieces a layer (its own, then rank 0's)" "$(cat "$tmp/err")"
mpi 2 exec --model "$tmp/gqa.ini" --ctx 37 --backend ref --scheme tsp --kv-forward direct >/dev/null 2>"$tmp/err"
[ $? = 2 ] && grep -q "no scheme in --scheme has a KV chain" "$tmp/err"
report $? "--kv-forward on tsp alone is refused" "$(cat "$tmp/err")"
tiny="--model $(dirname "$0")/../data/models/tiny.ini --ctx 37 --backend ref --warmup 0 --reps 1 --scheme kvr --partition 13,12,12 --db $tmp/e.db --allow-dirty"
mpi 3 exec $tiny --machine a100-10GBps --bw 2MB/s >/dev/null 2>"$tmp/err" && mpi 3 exec $tiny >/dev/null 2>>"$tmp/err" &&
    "$kvr" validate --multi-gpu --db "$tmp/e.db" --machine a100-10GBps --json >"$tmp/out" 2>>"$tmp/err" &&
    python3 - "$tmp/out" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))['rows']
# the emulated run is predicted at 2 MB/s: rank 2 waits for 2 layers of [0, 25) fp32 K and V
# rows (2 KV heads of 16) at least; the full-speed one at the profile's 10 GB/s, far less
slow, fast = rows[0]['predicted_s'], rows[1]['predicted_s']
sys.exit(0 if len(rows) == 2 and slow >= 2 * 25 * 2 * 32 * 4 / 2e6 and fast < slow / 10 else 1)
PY
report $? "validate predicts each row on the links it emulated (the machine key's --bw)" "$(cat "$tmp/out" "$tmp/err")"
mpi 4 exec $common --scheme ring-pass --timeline "$tmp/tl.tsv" >/dev/null 2>"$tmp/err" &&
    head -1 "$tmp/tl.tsv" | grep -q "^rank	layer	kind	what" &&
    [ "$(cut -f1 "$tmp/tl.tsv" | sort -u | grep -c '^[0-3]$')" = 4 ] && grep -q "	send	kv	" "$tmp/tl.tsv" && grep -q "	wait	kv	" "$tmp/tl.tsv"
report $? "--timeline: every rank's compute, send and wait events as TSV" "$(cat "$tmp/err")"

"$kvr" search --db "$tmp/p.db" --model "$tmp/gqa.ini" --machine a100-nvlink --gpus 3 --ctx 256,512 --granularity 16 >/dev/null 2>&1
for c in 256:kvr-s 384:kvr-p; do
    ctx=${c%%:*} method=${c#*:}
    "$kvr" lookup --db "$tmp/p.db" --model "$tmp/gqa.ini" --machine a100-nvlink --gpus 3 --ctx $ctx --json >"$tmp/want" 2>"$tmp/err"
    mpi 3 exec --model "$tmp/gqa.ini" --ctx $ctx --backend ref --reps 1 --warmup 0 --scheme kvr --db "$tmp/p.db" --allow-dirty --machine a100-nvlink --json >"$tmp/out" 2>>"$tmp/err"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); w=json.load(open(sys.argv[2])); sys.exit(0 if d['method'] == sys.argv[3] and d['partition'] == w['partition_tokens'] and w['method'] == ('exact' if sys.argv[3] == 'kvr-s' else 'interpolated') else 1)" "$tmp/out" "$tmp/want" $method
    report $? "kvr at $ctx tokens takes its partition from the lookup table ($method, as kvr lookup)" "$(cat "$tmp/out" "$tmp/want" "$tmp/err")"
done
mpi 3 bench comm --max-bytes 64KB --iters 3 --json >"$tmp/out" 2>"$tmp/err"
python3 - "$tmp/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
f = {'sendrecv': 1, 'all_gather': 2 / 3, 'reduce_scatter': 2 / 3, 'all_reduce': 4 / 3}
ok = d['ranks'] == 3 and d['alpha_s'] >= 0 and d['beta_Bps'] > 0 and set(r['op'] for r in d['rows']) == set(f)
ok = ok and all(abs(r['busbw_Bps'] - r['algbw_Bps'] * f[r['op']]) <= 1e-9 * r['algbw_Bps'] and
                abs(r['algbw_Bps'] - r['bytes'] / r['time_s']) <= 1e-9 * r['algbw_Bps'] for r in d['rows'])
sys.exit(0 if ok else 1)
PY
report $? "bench comm: every operation and size, algbw = bytes/time, busbw with nccl-tests' factors, an alpha-beta fit" "$(head -c 600 "$tmp/out"; cat "$tmp/err")"
# lists: one process runs every (ctx, scheme) pair; each equals its own run
mpi 3 exec $base --reps 3 --ctx 30,37 --scheme kvr,tsp-causal --db "$tmp/l.db" --allow-dirty --json >"$tmp/out" 2>"$tmp/err" &&
    mpi 3 exec $base --reps 3 --ctx 30 --scheme tsp-causal --json >"$tmp/one" 2>>"$tmp/err" &&
    python3 - "$tmp/out" "$tmp/one" <<'PY'
import json, sys
def objs(path):
    text, out, i, dec = open(path).read(), [], 0, json.JSONDecoder()
    while text[i:].strip():
        while text[i].isspace(): i += 1
        o, i = dec.raw_decode(text, i); out.append(o)
    return out
runs, one = objs(sys.argv[1]), objs(sys.argv[2])[0]
keys = [(r['ctx'], r['scheme']) for r in runs]
ok = keys == [(30, 'kvr'), (30, 'tsp-causal'), (37, 'kvr'), (37, 'tsp-causal')]
ok = ok and runs[1]['logits_checksum'] == one['logits_checksum'] and runs[1]['first_token'] == one['first_token']
sys.exit(0 if ok else 1)
PY
[ $? = 0 ] && [ "$(sql "$tmp/l.db" "SELECT group_concat(ctx_tokens || scheme, ' ') FROM (SELECT * FROM measurement ORDER BY id)")" = "30kvr 30tsp-causal 37kvr 37tsp-causal" ]
report $? "--ctx and --scheme lists: every pair runs in turn, a report and a row each, as its own run" "$(cat "$tmp/err")"
"$kvr" exec $base --reps 3 --ctx 30,37 >/dev/null 2>"$tmp/err"
[ $? = 2 ] && grep -q "mpirun" "$tmp/err"
report $? "lists without mpirun: exit 2, naming mpirun" "$(cat "$tmp/err")"
"$kvr" exec $common --scheme kvr,tsp --timeline "$tmp/t.tsv" >/dev/null 2>"$tmp/err"
[ $? = 2 ] && grep -q "describe one run" "$tmp/err" && [ ! -e "$tmp/t.tsv" ]
report $? "a list with --timeline: exit 2, nothing written" "$(cat "$tmp/err")"
mpi 2 exec $common --scheme tsp-papers >/dev/null 2>"$tmp/err"
[ $? != 0 ] && grep -q "not one the executor runs" "$tmp/err" && grep -q "ring" "$tmp/err" && grep -q "tsp-paper" "$tmp/err"
report $? "--scheme tsp-papers: refused, naming the schemes the executor runs (ring and tsp-paper among them)" "$(cat "$tmp/err")"
mpi 3 exec $common --scheme kvr --partition 20,17 >/dev/null 2>"$tmp/err"
[ $? != 0 ] && grep -q "3 ranks" "$tmp/err"
report $? "a partition for 2 ranks on 3 fails, naming the rank count" "$(cat "$tmp/err")"
t0=$(date +%s)
KVR_TEST_FAULT=die@1 mpi 3 exec $common --scheme kvr --timeout 5 >/dev/null 2>"$tmp/err"
rc=$?; t1=$(date +%s)
[ $rc != 0 ] && [ $((t1 - t0)) -lt 60 ]
report $? "a rank that dies: the job ends with an error within 60 s (took $((t1 - t0)) s)" "$(cat "$tmp/err")"
t0=$(date +%s)
KVR_TEST_FAULT=hang@1 mpi 3 exec $common --scheme kvr --timeout 3 >/dev/null 2>"$tmp/err"
rc=$?; t1=$(date +%s)
[ $rc != 0 ] && [ $((t1 - t0)) -lt 60 ] && grep -q "timed out" "$tmp/err"
report $? "a rank that hangs: the others time out with a clear error within 60 s (took $((t1 - t0)) s)" "$(cat "$tmp/err")"
grep "timed out" "$tmp/err" | grep -q "waiting for a receive with rank [0-9]\|waiting for a send with rank [0-9]\|waiting for an all-gather: \|waiting for a [a-z-]*: " &&
    ! grep -q "with rank :\|all-gather-1\|rank -1" "$tmp/err"
report $? "  the timeout names the peer (or the collective) correctly" "$(grep "timed out" "$tmp/err")"
if [ "$("$kvr" bench attention --ctx 64 --reps 1 >/dev/null 2>&1; echo $?)" != 0 ]; then
    mpi 2 exec $common --scheme kvr --comm nccl >/dev/null 2>"$tmp/err"
    [ $? != 0 ] && grep -qi "nccl" "$tmp/err"
    report $? "--comm nccl without a GPU fails with a clear error" "$(cat "$tmp/err")"
fi
echo "1..$n"
[ "$failed" = 0 ]
