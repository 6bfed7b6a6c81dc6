#!/bin/sh
# kvr sweep and kvr plot end to end: expand, run, resume after a simulated interruption, render,
# and the bad inputs of sweep files (file:line, exit 2).
# Usage: test_sweep_cli.sh PATH/TO/kvr   (TAP on stdout)
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"


cat >"$tmp/small.ini" <<'INI'
; 2 machines x 2 p x 4 ctx x 4 schemes = 64 points
[sweep]
figure = fig1
[axes]
models = llama-7b
machines = a100-nvlink, a100-10GBps
gpus = 2, 4
ctx = 1k-4k+1k
schemes = tsp, kvr-even, kvr-s, kvr-p
INI
db=$tmp/s.db
"$kvr" sweep "$tmp/small.ini" --db "$db" --stop-after 20 >"$tmp/out" 2>&1
[ "$(sql "$db" "SELECT count(*) FROM sweep_point")" = 64 ] && [ "$(sql "$db" "SELECT count(*) FROM sweep_point WHERE state = 'done'")" = 20 ]
report $? "expand: all 64 points recorded, 20 done when interrupted" "$(cat "$tmp/out")"
sql "$db" "SELECT group_concat(ttft_s) FROM (SELECT ttft_s FROM sweep_point WHERE state = 'done' ORDER BY id)" >"$tmp/first20"
"$kvr" sweep "$tmp/small.ini" --db "$db" --json >"$tmp/out" 2>&1
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['points']==64 and d['run']==44 and d['already_done']==20 and d['failed']==0 else 1)" "$tmp/out"
report $? "resume runs only the 44 open points" "$(cat "$tmp/out")"
sql "$db" "SELECT group_concat(ttft_s) FROM (SELECT ttft_s FROM sweep_point WHERE id IN (SELECT id FROM sweep_point ORDER BY id LIMIT 20) ORDER BY id)" >"$tmp/again20"
cmp -s "$tmp/first20" "$tmp/again20"; report $? "  and leaves the finished points as they were"
"$kvr" sweep "$tmp/small.ini" --db "$db" --json >"$tmp/out" 2>&1
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['run']==0 and d['already_done']==64 else 1)" "$tmp/out"
report $? "a finished sweep recomputes nothing"
[ "$(sql "$db" "SELECT count(*) FROM sweep_point WHERE series = 'KVR-S' AND ttft_s > (SELECT t.ttft_s FROM sweep_point t WHERE t.point_key = replace(sweep_point.point_key, '|kvr-s', '|kvr-even'))")" = 0 ]
report $? "KVR-S is never slower than KVR-E at any point"
# -j: the same points on 3 threads (interrupted, then resumed) give the same numbers
jdb=$tmp/j.db
"$kvr" sweep "$tmp/small.ini" --db "$jdb" --jobs 3 --stop-after 25 >"$tmp/out" 2>&1
[ "$(sql "$jdb" "SELECT count(*) FROM sweep_point WHERE state = 'done'")" = 25 ]
report $? "--jobs 3 with --stop-after 25 finishes exactly 25 points" "$(cat "$tmp/out")"
"$kvr" sweep "$tmp/small.ini" --db "$jdb" --jobs 3 --json >"$tmp/out" 2>&1
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['run']==39 and d['already_done']==25 and d['failed']==0 else 1)" "$tmp/out"
report $? "--jobs 3 resumes the 39 open points" "$(cat "$tmp/out")"
q="SELECT group_concat(point_key || '=' || ttft_s || '/' || partition_tokens, ';') FROM (SELECT * FROM sweep_point ORDER BY point_key)"
[ "$(sql "$db" "$q")" = "$(sql "$jdb" "$q")" ] && [ "$(sql "$jdb" "SELECT count(*) FROM plan")" = "$(sql "$db" "SELECT count(*) FROM plan")" ]
report $? "--jobs 3 gives the serial run's TTFTs and partitions, and the same plan rows once each"
expect 2 "--jobs: '0' is not a thread count" "sweep --jobs 0 exits 2" -- sweep "$tmp/small.ini" --db "$jdb" --jobs 0

mkdir "$tmp/fig"
"$kvr" plot fig1 --db "$db" --out "$tmp/fig" >"$tmp/out" 2>&1 && [ -s "$tmp/fig/fig1.png" ] && [ -s "$tmp/fig/fig1.svg" ] &&
    head -c 8 "$tmp/fig/fig1.png" | od -c | grep -q "P   N   G"
report $? "plot renders a non-empty PNG and an SVG" "$(cat "$tmp/out")"
python3 - "$tmp/fig/data" <<'PY'
import sys, os
d = sys.argv[1]
panels = [l.split('\t')[0] for l in open(os.path.join(d, 'fig1.list'))]
ok = len(panels) == 4
for p in panels:
    blocks = [b for b in open(os.path.join(d, p)).read().split('\n\n\n') if b.strip()]
    rows = [len(b.strip().split('\n')) - 1 for b in blocks]
    ok = ok and len(blocks) == 4 and rows == [4, 4, 4, 4]
sys.exit(0 if ok else 1)
PY
report $? "the exported data: 4 panels x 4 series x 4 points"

# bad input: file:line and exit 2
printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\ncolour = red\n' >"$tmp/key.ini"
expect 2 "key.ini:5: unknown axis 'colour'" "an unknown axis names file:line" -- sweep "$tmp/key.ini" --db "$tmp/x.db"
printf '[sweep]\nfigure = fig1\nfast = yes\n' >"$tmp/skey.ini"
expect 2 "skey.ini:3: unknown key 'fast'" "an unknown key names file:line" -- sweep "$tmp/skey.ini" --db "$tmp/x.db"
printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nctx = 8k-1k\n' >"$tmp/range.ini"
expect 2 "range.ini:5: ctx: empty range 8192-1024" "an empty range names file:line" -- sweep "$tmp/range.ini" --db "$tmp/x.db"
printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nschemes = zigzag\n' >"$tmp/sch.ini"
expect 2 "sch.ini:5: schemes: unknown scheme 'zigzag'" "an unknown scheme names file:line" -- sweep "$tmp/sch.ini" --db "$tmp/x.db"
[ ! -e "$tmp/x.db" ]; report $? "  and no database is created"
expect 2 "'$tmp/nodir' is not an existing directory" "plot into a missing folder exits 2" -- plot fig1 --db "$db" --out "$tmp/nodir"
expect 2 "gnuplot: cannot run '/no/gnuplot'" "gnuplot missing exits 2" -- plot fig1 --db "$db" --out "$tmp/fig" --gnuplot /no/gnuplot
cp "$db" "$tmp/v10.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version = 10'); c.commit()" "$tmp/v10.db"
expect 2 "written by a newer kvrun (schema 10" "plot from a DB of another schema version exits 2" -- plot fig1 --db "$tmp/v10.db" --out "$tmp/fig"
expect 2 "written by a newer kvrun (schema 10" "sweep into a DB of another schema version exits 2" -- sweep "$tmp/small.ini" --db "$tmp/v10.db"
expect 2 "unknown figure 'fig99'" "unknown figure exits 2" -- plot fig99 --db "$db" --out "$tmp/fig"
for f in "$src"/experiments/sweeps/*.ini; do
    "$kvr" sweep "$f" --db "$tmp/check.db" --stop-after 0 >/dev/null 2>"$tmp/err" || { report 1 "sweep file $(basename "$f") loads" "$(cat "$tmp/err")"; continue; }
done
report 0 "every committed sweep file loads and expands"

# the tp axis (#21): layouts for the schemes that have them, none for the others, no point for
# a t that does not divide p; a point that does not fit is 'infeasible'; KVR-S of a layout
# equals kvr sim with its stored partition; kvr x p is TP
cat >"$tmp/tp.ini" <<'INI'
[sweep]
figure = fig13
[axes]
models = llama-2-70b
machines = h100-nvlink
gpus = 4, 8
ctx = 8k, 16k
schemes = tp, ring, kvr-s
tp = none, 2, 8
INI
tdb=$tmp/tp.db
"$kvr" sweep "$tmp/tp.ini" --db "$tdb" >"$tmp/out" 2>&1
# tp: 2 p x 2 ctx; ring and kvr-s: (none, 2) at p = 4 and (none, 2, 8) at p = 8, x 2 ctx
[ "$(sql "$tdb" "SELECT count(*) FROM sweep_point")" = $((4 + 2 * 2 * 5)) ] &&
    [ "$(sql "$tdb" "SELECT count(*) FROM sweep_point WHERE scheme = 'tp' AND tp <> 0")" = 0 ] &&
    [ "$(sql "$tdb" "SELECT count(*) FROM sweep_point WHERE tp = 0 AND scheme <> 'tp' AND state <> 'infeasible'")" = 0 ] &&
    [ "$(sql "$tdb" "SELECT count(*) FROM sweep_point WHERE tp = 2 AND state = 'done'")" = 8 ]
report $? "sweep tp axis: the points, none for tp, the plain 70B never fits, t = 2 does" "$(cat "$tmp/out")"
part=$(sql "$tdb" "SELECT replace(partition_tokens, ';', ',') FROM sweep_point WHERE scheme = 'kvr-s' AND tp = 2 AND p = 8 AND ctx_tokens = 16384")
want=$(sql "$tdb" "SELECT ttft_s FROM sweep_point WHERE scheme = 'kvr-s' AND tp = 2 AND p = 8 AND ctx_tokens = 16384")
json_check "  KVR-S x 2 is kvr sim --tp 2 with its partition ($part)" "abs(d['ttft_s'] - $want) <= 1e-12 * $want and len(d['partition']) == 4" \
    -- sim --model llama-2-70b --machine h100-nvlink --ctx 16k --scheme kvr --tp 2 --partition "$part" --json
[ "$(sql "$tdb" "SELECT count(*) FROM sweep_point a JOIN sweep_point b ON a.p = b.p AND a.ctx_tokens = b.ctx_tokens WHERE a.scheme = 'tp' AND b.scheme = 'kvr-s' AND b.tp = a.p")" = 2 ] &&
[ "$(sql "$tdb" "SELECT count(*) FROM sweep_point a JOIN sweep_point b ON a.p = b.p AND a.ctx_tokens = b.ctx_tokens WHERE a.scheme = 'tp' AND b.scheme = 'kvr-s' AND b.tp = a.p AND abs(a.ttft_s - b.ttft_s) > 1e-9 * a.ttft_s")" = 0 ]
report $? "  KVR-S x p is TP"
[ "$(sql "$tdb" "SELECT count(*) FROM plan WHERE tp = 2")" = 4 ]
report $? "  the layouts' rows are in the lookup table with their tp"
printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nctx = 1k\nschemes = tsp\ntp = 3x\n' >"$tmp/bad_tp.ini"
expect 2 "tp: '3x' is not none or a TP degree" "a bad tp value exits 2" -- sweep "$tmp/bad_tp.ini" --db "$tmp/bad.db"
# a seed listed twice, across a range (its points were collapsed into one, exit 0)
printf '[sweep]\nfigure = fig7\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nctx = 1k\nschemes = tsp\nnoise = 0.1\nseeds = 0-3, 2\n' >"$tmp/seeds2.ini"
expect 2 "seeds2.ini:10: seeds: 2 is listed twice" "a seed listed twice (0-3, 2) exits 2 with file:line" -- sweep "$tmp/seeds2.ini" --db "$tmp/bad.db"
# a granularity without kvr-s or kvr-p grids no partition (it was taken, changing nothing)
printf '[sweep]\nfigure = fig1\ngranularity = 16\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nctx = 1k\nschemes = tsp, kvr-even\n' >"$tmp/gran.ini"
expect 2 "gran.ini:3: granularity reaches no point" "a granularity with no kvr-s or kvr-p series exits 2 with file:line" -- sweep "$tmp/gran.ini" --db "$tmp/bad.db"

# a committed schema-2 database (with the figure views it had) opens for reading untouched, and
# a writing command migrates it to the current schema, which keeps no figure labels
cp "$src/data/measurements/h100x4-multi.sqlite" "$tmp/v2.db"
"$kvr" validate --multi-gpu --db "$tmp/v2.db" --json >"$tmp/out" 2>&1 &&
    [ "$(sql "$tmp/v2.db" "PRAGMA user_version")" = 2 ]
report $? "validate reads a schema-2 database and leaves it at schema 2" "$(head -c 300 "$tmp/out")"
"$kvr" sweep "$tmp/small.ini" --db "$tmp/v2.db" >"$tmp/out" 2>&1 &&
    [ "$(sql "$tmp/v2.db" "PRAGMA user_version")" = 9 ] &&
    [ "$(sql "$tmp/v2.db" "SELECT group_concat(DISTINCT tp) FROM measurement")" = 1 ] &&
    [ "$(sql "$tmp/v2.db" "SELECT group_concat(DISTINCT last_layer) FROM measurement")" = full ] &&
    [ "$(sql "$tmp/v2.db" "SELECT count(*) FROM sqlite_schema WHERE sql LIKE '%KVR-%'")" = 0 ]
report $? "a writing command migrates schema 2 to 9 (old measurements t = 1, last layer full: 65dfa94's runs predate the pruning): no figure label left in the schema" "$(cat "$tmp/out")"

echo "1..$n"
[ "$failed" = 0 ]
