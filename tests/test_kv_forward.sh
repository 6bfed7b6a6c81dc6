#!/bin/sh
# kvr sim --kv-forward: `whole` gives exactly what the kvr scheme gave before the hand-off
# modes (tests/golden/kvr_sim_whole*.tsv, from main at 19e62a6: every key of the old JSON, and
# the timeline byte for byte); the modes' JSON; refusals. Usage: test_kv_forward.sh PATH/TO/kvr
kvr=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
n=0 failed=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/tap_helpers.sh"
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

echo "1..$n"
[ "$failed" = 0 ]
