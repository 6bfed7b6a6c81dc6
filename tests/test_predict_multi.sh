#!/bin/sh
# scripts/predict_multi.sh (the predictions for the multi-GPU runs on 4 and 8 H200s, issue #25):
# its reduced set (KVR_PREDICT_QUICK=1) must give, row for row under the same headings, what the
# committed data/measurements/h200x8-PREDICTIONS.md says (so the file cannot drift from the
# simulator, the profile or the script silently: regenerate it with the script), the committed
# file must name the profile's current sha256, and a few cells must equal `kvr sim` of the same
# plan run here (the script reports the simulator, nothing else). Usage: test_predict_multi.sh KVR
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
cd "$src" || exit 1
file=data/measurements/h200x8-PREDICTIONS.md prof=data/machines/h200x8-predicted.ini
regen="regenerate: scripts/predict_multi.sh $file"

KVR_PREDICT_QUICK=1 sh scripts/predict_multi.sh "$tmp/q.md" "$kvr" >"$tmp/out" 2>&1
report $? "predict_multi.sh: the reduced set runs" "$(tail -5 "$tmp/out")"

# every table row of sections 1-5 of the reduced run, under its heading, in the committed file
python3 - "$tmp/q.md" "$file" >"$tmp/diff" 2>&1 <<'PY'
import sys
def rows(path):
    out, head, on = set(), None, False
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("## "):
            on = line[3:4].isdigit()
        if line.startswith("#"):
            head = line
        elif on and line.startswith("| ") and not line.startswith("|---"):
            out.add((head, line))
    return out
quick, committed = rows(sys.argv[1]), rows(sys.argv[2])
heads = {h for h, _ in quick}
missing = sorted(quick - committed)
for h, r in missing[:8]:
    print(h, "::", r)
sys.exit(0 if len(quick) >= 30 and len(heads) >= 12 and not missing else 1)
PY
report $? "the reduced set's rows equal the committed file's ($regen)" "$(cat "$tmp/diff")"

sha=$(sha256sum "$prof" | cut -d' ' -f1)
grep -q "sha256 \`$sha\`" "$file"
report $? "the committed file names the profile's sha256 ($regen)" "profile sha256 $sha"

# cells against kvr sim of the same plan: section 1's single and TSP (Llama-7B, full, p = 4,
# 16k) and section 2's KVR-S rows (their partitions)
ms() { "$kvr" sim --machine "$prof" --json --quiet "$@" |
    python3 -c "import json,sys; print('%.1f' % (1e3 * json.load(sys.stdin)['ttft_s']))"; }
row=$(grep '^| 4 | 16k | ' "$tmp/q.md" | head -1)
single=$(ms --model llama-7b --gpus 1 --ctx 16k --scheme single) tsp=$(ms --model llama-7b --gpus 4 --ctx 16k --scheme tsp)
case "$row" in "| 4 | 16k | $single | $tsp | "*) r=0 ;; *) r=1 ;; esac
report $r "section 1: single and TSP are kvr sim's ($single, $tsp ms)" "row: $row"
grep '| searched here |' "$tmp/q.md" | head -3 >"$tmp/s2"
r=1
while IFS='|' read -r _ p ctx _ mode partition ttft _; do
    mode=$(echo "$mode" | sed 's/.*: //; s/ //g') partition=$(echo "$partition" | tr -d ' ')
    want=$(ms --model llama-7b --gpus "$(echo $p)" --ctx "$(echo $ctx)" --scheme kvr --partition "$partition" --kv-forward "$mode")
    [ "$want" = "$(echo $ttft)" ] && r=0 || { r=1; break; }
done <"$tmp/s2"
report $r "section 2: each mode's TTFT is kvr sim of its partition" "$(cat "$tmp/s2"); kvr sim: $want"

# the hybrid row: TP-8 at 8k is kvr sim --scheme tp
tp=$(ms --model llama-2-70b --gpus 8 --ctx 8k --scheme tp)
grep -q "^| 8k | $tp | " "$tmp/q.md"
report $? "section 4: TP-8 at 8k is kvr sim's ($tp ms)" "$(grep '^| 8k |' "$tmp/q.md" | tail -1)"

sh scripts/predict_multi.sh "$tmp/x.md" "$tmp/no-kvr" >"$tmp/out" 2>&1
[ $? = 2 ] && grep -q "no kvr program" "$tmp/out"
report $? "a missing kvr program is refused (exit 2)" "$(cat "$tmp/out")"

echo "1..$n"
[ "$failed" = 0 ]
