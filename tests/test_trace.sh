#!/bin/sh
# Chrome trace / Perfetto JSON timelines (Trace Event Format) of a 4-rank KV-Runahead run, from
# the simulator and (with mpirun and an MPI build) from the executor on CPU ranks: the file
# parses, has one track per rank and one per link the chain uses, every event lies inside the
# run's TTFT, and transfers carry their bytes and peers. Usage: test_trace.sh KVR (TAP)
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"

# check_trace FILE P SOURCE: the checks above, for a kvr chain over P ranks
check_trace() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); p = int(sys.argv[2]); source = sys.argv[3]
ev, other = d["traceEvents"], d["otherData"]
assert other["source"] == source and other["p"] == p and other["scheme"] == "kvr", other
names = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
ranks = sorted(v for (pid, _), v in names.items() if pid == 1)
links = sorted(v for (pid, _), v in names.items() if pid == 2)
assert ranks == ["rank %d" % r for r in range(p)], ranks
want_links = sorted("link %d->%d" % (r, r + 1) for r in range(p - 1))
assert links == want_links, (links, want_links)
X = [e for e in ev if e["ph"] == "X"]
assert X and all(e["ph"] in ("M", "X") for e in ev)
ttft_us = other["ttft_s"] * 1e6
for e in X:
    assert (e["pid"], e["tid"]) in names, e
    assert isinstance(e["ts"], (int, float)) and e["dur"] >= 0 and e["ts"] >= 0, e
    assert e["ts"] + e["dur"] <= ttft_us * (1 + 1e-9) + 1e-3, (e, ttft_us)
sends = [e for e in X if e["pid"] == 2]
assert sends and all(e["cat"] == "send" and e["args"]["bytes"] > 0 and e["args"]["to"] == e["args"]["from"] + 1 and names[(2, e["tid"])] == "link %d->%d" % (e["args"]["from"], e["args"]["to"]) for e in sends)
own = [e for e in X if e["pid"] == 1]
assert all(e["args"]["rank"] == e["tid"] and "to" not in e["args"] and "from" not in e["args"] for e in own), [e for e in own if "to" in e["args"]][:2]
busy = {r: sum(e["dur"] for e in X if e["pid"] == 1 and e["tid"] == r) for r in range(p)}
assert all(v > 0 for v in busy.values()), busy
print("# %d events, %d transfers, TTFT %.3f ms" % (len(X), len(sends), ttft_us / 1e3))
PY
}

"$kvr" sim --gpus 4 --ctx 16k --scheme kvr --machine a100-10GBps --timeline "$tmp/s.json" >/dev/null 2>"$tmp/err" &&
    check_trace "$tmp/s.json" 4 simulator >"$tmp/chk" 2>&1
report $? "sim --timeline t.json: a Chrome trace, a track per rank and per link, every event inside the TTFT" "$(cat "$tmp/err" "$tmp/chk")"
cat "$tmp/chk" 2>/dev/null | grep '^#'
"$kvr" sim --gpus 4 --ctx 16k --timeline "$tmp/s.trace" --timeline-format chrome >/dev/null 2>&1 &&
    check_trace "$tmp/s.trace" 4 simulator >/dev/null 2>&1
report $? "--timeline-format chrome whatever the suffix"
"$kvr" sim --gpus 4 --ctx 16k --timeline "$tmp/t.json" --timeline-format tsv >/dev/null 2>&1 &&
    head -n 1 "$tmp/t.json" | grep -q "^rank	layer	kind	what"
report $? "--timeline-format tsv writes TSV even to a .json name"
expect 2 "--timeline-format: unknown format 'xml' (chrome, tsv)" "an unknown --timeline-format exits 2" \
    -- sim --timeline "$tmp/x" --timeline-format xml
expect 2 "--timeline-format needs --timeline FILE" "--timeline-format without --timeline exits 2" -- sim --timeline-format chrome
[ ! -e "$tmp/x" ] && [ ! -e "$tmp/x.tmp" ]; report $? "  and writes nothing"
"$kvr" sim --gpus 4 --ctx 16k --machine a100-10GBps --timeline "$tmp/S.JSON" >/dev/null 2>&1 &&
    check_trace "$tmp/S.JSON" 4 simulator >/dev/null 2>&1
report $? "the suffix rule ignores case: t.JSON is a Chrome trace"
expect 2 "kvr writes timelines uncompressed" "a compressed suffix (t.json.gz) is refused, not written as plain text" \
    -- sim --timeline "$tmp/t.json.gz"
[ ! -e "$tmp/t.json.gz" ]; report $? "  and writes nothing"
# --timeline -: standard output holds the timeline alone (the result table goes to stderr)
"$kvr" sim --gpus 4 --ctx 16k --machine a100-10GBps --timeline - >"$tmp/o.tsv" 2>"$tmp/err"
awk -F '\t' 'NR > 1 && NF != 8 { bad = 1 } END { exit bad || NR < 100 }' "$tmp/o.tsv" && grep -q "TTFT" "$tmp/err"
report $? "sim --timeline -: the TSV alone on stdout, the result on stderr" "$(head -c 300 "$tmp/err"; tail -n 3 "$tmp/o.tsv")"
"$kvr" sim --gpus 4 --ctx 16k --machine a100-10GBps --timeline - --timeline-format chrome >"$tmp/o.json" 2>/dev/null &&
    check_trace "$tmp/o.json" 4 simulator >/dev/null 2>&1
report $? "  --timeline - --timeline-format chrome: a trace on stdout"
expect 2 "--timeline -: standard output would carry it and --json's result" "  --timeline - with --json is refused (both on stdout)" \
    -- sim --timeline - --json
expect 2 "--save - and --out -: one standard output for two outputs" "two outputs on standard output are refused" \
    -- calibrate --from "$src/data/calibration/h100-ops.csv" --save - --out -

printf '[model]\nname = gqa\nn_layers = 3\nd_model = 128\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 192\nvocab = 96\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >"$tmp/gqa.ini"
"$kvr" exec --model "$tmp/gqa.ini" --ctx 16 --backend ref --reps 1 --warmup 0 --timeline "$tmp/one.json" >"$tmp/out" 2>&1 &&
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if len(d['traceEvents']) > 3 else 1)" "$tmp/one.json"
report $? "exec --timeline on one process writes a Chrome trace (.json)" "$(cat "$tmp/out")"
if command -v mpirun >/dev/null && "$kvr" --version | grep -q "mpi=yes"; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
    timeout 300 mpirun -np 4 --oversubscribe "$kvr" exec --model "$tmp/gqa.ini" --ctx 64 --backend ref --reps 1 --warmup 0 \
        --scheme kvr --partition 24,16,14,10 --timeline "$tmp/e.json" >/dev/null 2>"$tmp/err" &&
        check_trace "$tmp/e.json" 4 executor >"$tmp/chk" 2>&1
    report $? "exec --timeline t.json on 4 CPU ranks: the same trace checks" "$(cat "$tmp/err" "$tmp/chk")"
else
    echo "# exec --timeline: no mpirun or kvr built without MPI (skipped)"
fi

echo "1..$n"
[ "$failed" = 0 ]
