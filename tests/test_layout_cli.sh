#!/bin/sh
# kvr sim's hybrid layouts from the command line (#21): --tp 1 prints the plain scheme's every
# number, --tp p is tp, the mappings (block, strided, a list) through the machine as the ranks
# see it, the bytes between nodes, and the refusals (exit 2, the option named).
# Usage: test_layout_cli.sh PATH/TO/kvr   (TAP on stdout; run from the source root)
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"

# every number of the JSON
numbers() {
    python3 -c "
import json, sys
print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))" "$1"
}
for scheme in kvr tsp tsp-causal tsp-paper ring; do
    for args in "--model llama-7b --ctx 16k" "--model mistral-7b --ctx 9000 --gpus 3 --noise random:0.4 --trials 3" \
        "--model llama-2-70b --ctx 32k --machine data/machines/h100-2x8.ini --gpus 16 --allow-oom"; do
        "$kvr" sim $args --scheme $scheme --json >"$tmp/a.json" 2>"$tmp/err" &&
            "$kvr" sim $args --scheme $scheme --tp 1 --json >"$tmp/b.json" 2>>"$tmp/err" &&
            [ "$(numbers "$tmp/a.json")" = "$(numbers "$tmp/b.json")" ] &&
            grep -q '"tp": 1' "$tmp/b.json"
        report $? "--tp 1 prints every number of $scheme ($args)" "$(cat "$tmp/err")"
    done
done
"$kvr" sim --model llama-2-70b --ctx 20k --scheme tp --json >"$tmp/a.json" &&
    "$kvr" sim --model llama-2-70b --ctx 20k --scheme kvr --tp 8 --json >"$tmp/b.json" &&
    python3 -c "
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
ok = abs(a['ttft_s'] - b['ttft_s']) <= 1e-12 * a['ttft_s'] and a['bytes_sent_total'] == b['bytes_sent_total']
ok = ok and [r['mem_bytes'] for r in a['ranks']] == [r['mem_bytes'] for r in b['ranks']]
sys.exit(0 if ok and b['stages'] == 1 and b['partition'] == [20480] else 1)" "$tmp/a.json" "$tmp/b.json"
report $? "--tp 8 is tp: Llama-2-70B at 20k, one stage"
json_check "kvr x 2 on Llama-2-70B: 4 stages of 2, every GPU fits, weights halved" \
    "d['stages'] == 4 and len(d['partition']) == 4 and all(r['fits'] for r in d['ranks']) and [r['shard'] for r in d['ranks']] == [0, 1] * 4" \
    -- sim --model llama-2-70b --machine h100-nvlink --ctx 16k --scheme kvr --tp 2 --json
json_check "--map strided puts the chain on consecutive GPUs" \
    "[r['gpu'] for r in d['ranks']] == [0, 4, 1, 5, 2, 6, 3, 7] and d['map'] == 'strided'" \
    -- sim --model llama-2-70b --ctx 16k --scheme kvr --tp 2 --map strided --json
json_check "--map as a list of GPUs" \
    "d['mapping'] == [7, 6, 5, 4, 3, 2, 1, 0] and d['map'] == '7;6;5;4;3;2;1;0'" \
    -- sim --model llama-2-70b --ctx 16k --scheme kvr --tp 2 --map 7,6,5,4,3,2,1,0 --json
json_check "--partition takes one chunk per stage" "d['partition'] == [10000, 6384]" \
    -- sim --model llama-2-70b --ctx 16k --scheme kvr --tp 4 --partition 10000,6384 --json
# 2 x 8 H100, kvr x 8 at 128k: block puts each stage in a node, so only the chain's hand-off
# crosses: 8 shards x S_0 tokens x 1 KV head x 128 x 2 (K, V) x 2 bytes per layer, 80 layers
json_check "2 x 8, kvr x 8, block: the KV hand-off alone crosses the nodes" \
    "d['bytes_inter_node'] == 80 * 8 * 65536 * 512 and all(r['fits'] for r in d['ranks'])" \
    -- sim --model llama-2-70b --machine data/machines/h100-2x8.ini --ctx 128k --scheme kvr --tp 8 --partition 64k,64k --json
json_check "2 x 8, kvr x 8, strided: the all-reduces cross instead, and it is slower" \
    "d['bytes_inter_node'] > 80 * 8 * 65536 * 512" \
    -- sim --model llama-2-70b --machine data/machines/h100-2x8.ini --ctx 128k --scheme kvr --tp 8 --partition 64k,64k --map strided --json
"$kvr" sim --model llama-2-70b --machine data/machines/h100-2x8.ini --ctx 32k --scheme kvr --tp 8 --json >"$tmp/a.json" &&
    "$kvr" sim --model llama-2-70b --machine data/machines/h100-2x8.ini --ctx 32k --scheme kvr --tp 8 --sp --json >"$tmp/b.json" &&
    python3 -c "
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
sys.exit(0 if b['ttft_s'] < a['ttft_s'] and b['sp'] and a['bytes_sent_total'] == b['bytes_sent_total'] else 1)" "$tmp/a.json" "$tmp/b.json"
report $? "--sp: faster, the same bytes"

json_check "help schemes: the scheme table marks the schemes with a layout" \
    "sorted(s['name'] for s in d['schemes'] if s['layout']) == ['kvr', 'ring', 'ring-pass', 'tsp', 'tsp-causal', 'tsp-paper']" \
    -- help schemes --json
# a timeline holds every event (the LM head, the last, is there) for the busiest schedules
for args in "--scheme ring --ring-pass q" "--scheme ring --ring-pass q --tp 2" "--scheme kvr --tp 2 --kv-forward direct"; do
    "$kvr" sim --model llama-7b --ctx 4k --gpus 8 $args --timeline "$tmp/tl.tsv" >/dev/null 2>"$tmp/err" &&
        [ "$(grep -c "	head	" "$tmp/tl.tsv")" = 1 ] && [ "$(awk -F'\t' '$4 == "pre"' "$tmp/tl.tsv" | wc -l)" = $((8 * 32)) ]
    report $? "--timeline keeps every event: $args" "$(cat "$tmp/err")"
done
expect 2 "--tp 3: must divide the 8 GPUs" "--tp that does not divide p exits 2" -- sim --tp 3
expect 2 "does not divide the 71 heads" "--tp that does not divide the heads exits 2" -- sim --model falcon-7b --tp 2
expect 2 "no tensor-parallel layout" "--tp on a scheme without a layout exits 2" -- sim --scheme single --gpus 1 --tp 1
expect 2 "--scheme tp runs one stage of all 8 GPUs: not --tp 2" "--scheme tp with --tp other than p exits 2 (kvr exec's rule)" -- sim --scheme tp --tp 2
expect 2 "--tp: 'x' is not a TP degree" "a --tp that is no number exits 2" -- sim --tp x
expect 2 "--map: block, strided or a list" "a short --map exits 2" -- sim --tp 2 --map 0,1
expect 2 "not 8 distinct GPUs" "a --map that is no permutation exits 2" -- sim --tp 2 --map 0,0,1,2,3,4,5,6
expect 2 "--sp needs --tp" "--sp without --tp exits 2" -- sim --sp
expect 2 "--sp: sequence parallelism needs --tp 2" "--sp with --tp 1 exits 2" -- sim --sp --tp 1
expect 2 "has 8 chunks, but the plan has 4 stages" "--partition of p chunks with --tp 2 exits 2" \
    -- sim --tp 2 --partition 2k,2k,2k,2k,2k,2k,2k,2k

# kvr lookup --tp answers each context with its own row's mapping: a row without one is GPU
# order, not the mapping of a context answered before it in the same call
M=data/machines/h100-2x4.ini
look() {
    "$kvr" lookup --db "$tmp/mt.db" --model llama-7b --machine $M --gpus 8 --tp 2 --ctx "$1" --json |
        python3 -c 'import json, sys; d = json.load(sys.stdin); print((d if isinstance(d, list) else [d])[-1]["predicted_ttft_s"])'
}
"$kvr" search --model llama-7b --machine $M --gpus 8 --tp 2 --ctx 8k,16k --db "$tmp/mt.db" --quiet >/dev/null 2>"$tmp/err" &&
    python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE plan SET mapping = ? WHERE ctx_tokens = 8192", ("0;4;1;5;2;6;3;7",)); c.commit()' "$tmp/mt.db" 2>>"$tmp/err" &&
    alone=$(look 16k) && after=$(look 8k,16k) && [ -n "$alone" ] && [ "$alone" = "$after" ]
report $? "lookup --tp: 16k after a mapped 8k answers as 16k alone ($alone, $after)" "$(cat "$tmp/err")"

echo "1..$n"
[ "$failed" = 0 ]
