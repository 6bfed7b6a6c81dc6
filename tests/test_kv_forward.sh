#!/bin/sh
# kvr sim --kv-forward: `whole` gives exactly what the kvr scheme gave before the hand-off
# modes (tests/golden/kvr_sim_whole*.tsv, from main at 19e62a6: every key of the old JSON, and
# the timeline byte for byte); the modes' JSON; refusals. Usage: test_kv_forward.sh PATH/TO/kvr
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
root=${KVR_SOURCE_ROOT:-.}
cd "$root" || exit 1

# every key and value of each golden JSON, exactly
grep -v '^#' tests/golden/kvr_sim_whole.tsv | while IFS="$(printf '\t')" read -r args golden; do
    for extra in "" "--kv-forward whole"; do
        # shellcheck disable=SC2086
        "$kvr" sim $args $extra --json >"$tmp/out" 2>"$tmp/err" </dev/null
        rc=$?
        python3 - "$tmp/out" "$golden" >"$tmp/diff" 2>&1 <<'PY'
import json, sys
got, want = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
def same(g, w, path):
    if isinstance(w, dict):
        return all(same(g.get(k), v, path + "." + k) for k, v in w.items())
    if isinstance(w, list):
        return len(g) == len(w) and all(same(a, b, path + "[%d]" % i) for i, (a, b) in enumerate(zip(g, w)))
    if g != w or type(g) != type(w):
        print(path, "got", repr(g), "want", repr(w)); return False
    return True
sys.exit(0 if same(got, want, "") else 1)
PY
        report $(( rc | $? )) "sim $args ${extra:-(default)}: exactly the numbers before the modes" \
            "$(cat "$tmp/err" "$tmp/diff" | head -5)"
    done
done > "$tmp/tap"
cat "$tmp/tap"
n=$(grep -c '^\(not \)\?ok' "$tmp/tap")
failed=$(grep -c '^not ok' "$tmp/tap")

for extra in "" "--kv-forward whole"; do
    # shellcheck disable=SC2086
    "$kvr" sim -H data/machines/h100x4-nccl.ini -g 4 -c 16k $extra --timeline "$tmp/tl.tsv" >/dev/null 2>&1
    cmp -s "$tmp/tl.tsv" tests/golden/kvr_sim_whole_timeline.tsv
    report $? "sim --timeline ${extra:-(default)}: the timeline byte for byte"
done

json_check "streamed: the mode, and the last rank's start-up wait below whole's" \
    "d['kv_forward'] == 'streamed' and 0 < d['last_first_wait_s'] < 0.0079904 and d['last_first_wait_s'] == d['ranks'][-1]['first_wait_s']" \
    -- sim -H data/machines/h100x4-nccl.ini -g 4 -c 16k --kv-forward streamed --json
json_check "direct: the mode and as many bytes as whole" \
    "d['kv_forward'] == 'direct' and d['bytes_sent_total'] == 14785970176" \
    -- sim -H data/machines/h100x4-nccl.ini -g 4 -c 16k --kv-forward direct --json
json_check "tsp has no hand-off mode in its JSON" "'kv_forward' not in d" -- sim --scheme tsp --json
"$kvr" sim -H data/machines/h100x4-nccl.ini -g 4 -c 16k --kv-forward streamed >"$tmp/out" 2>&1 &&
    grep -q "KV hand-off streamed   last rank's start-up wait (layer 0)" "$tmp/out"
report $? "the table names the mode and the start-up wait"
expect 2 "--kv-forward: unknown mode 'bogus' (whole, streamed, direct)" "an unknown mode is refused" \
    -- sim --kv-forward bogus
expect 2 "scheme tsp has no KV chain to forward" "a mode on tsp is refused" \
    -- sim --scheme tsp --kv-forward streamed

# kvr search --kv-forward: a fixed mode is the objective's; auto tries each and keeps the
# fastest, with its mode: the oracle is the three searches run apart
S="--model llama-7b --machine data/machines/h100x4-nccl.ini --gpus 4 --ctx 8k,16k,32k"
for mode in whole streamed direct; do
    "$kvr" search $S --kv-forward $mode --db "$tmp/$mode.db" --json >"$tmp/$mode.json" 2>"$tmp/err"
    report $? "search --kv-forward $mode" "$(cat "$tmp/err")"
done
"$kvr" search $S --kv-forward auto --db "$tmp/auto.db" --json >"$tmp/auto.json" 2>"$tmp/err"
python3 - "$tmp" <<'PY' >"$tmp/diff" 2>&1
import json, sys
t = sys.argv[1]
one = {m: {r['ctx_tokens']: r for r in json.load(open(f"{t}/{m}.json"))['rows']} for m in ('whole', 'streamed', 'direct')}
ok = True
for r in json.load(open(f"{t}/auto.json"))['rows']:
    best = min(('whole', 'streamed', 'direct'), key=lambda m: one[m][r['ctx_tokens']]['predicted_ttft_s'])
    b = one[best][r['ctx_tokens']]
    ok &= r['kv_forward'] == best and r['predicted_ttft_s'] == b['predicted_ttft_s'] and r['partition_tokens'] == b['partition_tokens']
    ok &= r['evaluations'] == sum(one[m][r['ctx_tokens']]['evaluations'] for m in one)
    ok &= all(one[m][r['ctx_tokens']]['kv_forward'] == m for m in one)
    print(r['ctx_tokens'], r['kv_forward'], best)
sys.exit(0 if ok else 1)
PY
report $? "search --kv-forward auto keeps the fastest mode's plan, and records the mode" "$(cat "$tmp/err" "$tmp/diff")"
[ "$(sql "$tmp/auto.db" "SELECT count(DISTINCT kv_forward) > 0 AND count(*) = 3 FROM plan")" = 1 ] &&
    [ "$(sql "$tmp/whole.db" "SELECT group_concat(kv_forward) FROM plan")" = "whole,whole,whole" ]
report $? "the plan rows' kv_forward column"
expect 2 "was searched for kv_forward" "export refuses plans of a mode its formats cannot carry" \
    -- export --db "$tmp/streamed.db" --format json --out "$tmp/t.json"
"$kvr" export --db "$tmp/whole.db" --format json --out "$tmp/t.json" >/dev/null 2>"$tmp/err"
report $? "export of whole plans as before" "$(cat "$tmp/err")"
expect 2 "--kv-forward: unknown mode 'fast'" "search refuses an unknown mode" -- search $S --kv-forward fast --db "$tmp/x.db"

# a schema-5 store (before the column) reads as before: lookups take its rows, as whole
cp "$tmp/whole.db" "$tmp/v3.db"
python3 "$(dirname "$0")/store_to_v5.py" "$tmp/v3.db"
"$kvr" lookup --model llama-7b --machine data/machines/h100x4-nccl.ini --gpus 4 --ctx 16k --db "$tmp/v3.db" --json >"$tmp/o3" 2>"$tmp/err" &&
    "$kvr" lookup --model llama-7b --machine data/machines/h100x4-nccl.ini --gpus 4 --ctx 16k --db "$tmp/whole.db" --json >"$tmp/o4" 2>>"$tmp/err" &&
    cmp -s "$tmp/o3" "$tmp/o4" && [ "$(sql "$tmp/v3.db" "PRAGMA user_version")" = 5 ]
report $? "a schema-5 store reads as today, unchanged" "$(cat "$tmp/err" "$tmp/o3")"
"$kvr" search $S --db "$tmp/v3.db" --force >/dev/null 2>"$tmp/err" &&
    [ "$(sql "$tmp/v3.db" "PRAGMA user_version")" = 9 ] &&
    [ "$(sql "$tmp/v3.db" "SELECT group_concat(DISTINCT kv_forward) FROM plan")" = whole ] &&
    [ "$(sql "$tmp/v3.db" "SELECT group_concat(DISTINCT tp) FROM plan")" = 1 ]
report $? "a writing command migrates it to 9: kv_forward 'whole' and tp 1 on every row" "$(cat "$tmp/err")"

# sweeps: the kv_forward axis multiplies KVR-E (each mode its series and key suffix), not tsp;
# KVR-S runs its table row's mode; a point's TTFT is kvr sim's in that mode
prof=$(pwd)/data/machines/h100x4-nccl.ini # a sweep file reads relative paths beside itself
cat >"$tmp/fwd.ini" <<INI
[sweep]
figure = figx
[axes]
models = llama-7b
machines = $prof
gpus = 4
ctx = 8k, 16k
schemes = tsp, kvr-even, kvr-s
kv_forward = whole, streamed, direct
INI
"$kvr" search --model llama-7b --machine "$prof" --gpus 4 --ctx 8k,16k \
    --kv-forward auto --db "$tmp/sw.db" >/dev/null 2>"$tmp/err" &&
    "$kvr" sweep "$tmp/fwd.ini" --db "$tmp/sw.db" >/dev/null 2>>"$tmp/err" &&
    "$kvr" sim -H "$prof" -g 4 -c 16k --scheme kvr-even --kv-forward streamed --json >"$tmp/sim.json" 2>>"$tmp/err"
python3 - "$tmp/sw.db" "$tmp/sim.json" <<'PY' >"$tmp/diff" 2>&1
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
pts = {(r[0], r[1]): r[2:] for r in c.execute("SELECT ctx_tokens, series, kv_forward, state, ttft_s, point_key FROM sweep_point")}
want = {'TSP', 'KVR-E', 'KVR-E streamed', 'KVR-E direct', 'KVR-S'}
ok = len(pts) == 10 and {s for _, s in pts} == want and all(v[1] == 'done' for v in pts.values())
ok = ok and pts[(16384, 'KVR-E streamed')][0] == 'streamed' and pts[(16384, 'KVR-E streamed')][3].split('|def=')[0].endswith('|kvr-even|fwd=streamed')
ok = ok and pts[(16384, 'KVR-E')][3].split('|def=')[0].endswith('|kvr-even') and pts[(16384, 'TSP')][0] == 'whole'
ok = ok and pts[(16384, 'KVR-E streamed')][2] == json.load(open(sys.argv[2]))['ttft_s']
table = dict(c.execute("SELECT ctx_tokens, kv_forward FROM plan"))
ok = ok and all(pts[(x, 'KVR-S')][0] == table[x] for x in (8192, 16384))
print(pts, table)
sys.exit(0 if ok else 1)
PY
report $? "sweep kv_forward axis: KVR-E per mode, KVR-S in its row's mode, TTFT as kvr sim" "$(cat "$tmp/err" "$tmp/diff")"
printf '[sweep]\nfigure = f\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nctx = 1k\nschemes = kvr-even\nkv_forward = whole, sideways\n' >"$tmp/bad.ini"
expect 2 "kv_forward: 'sideways' is not whole, streamed or direct" "a bad kv_forward axis is refused" \
    -- sweep "$tmp/bad.ini" --db "$tmp/bad.db"

echo "1..$n"
[ "$failed" = 0 ]
