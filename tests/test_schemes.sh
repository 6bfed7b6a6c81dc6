#!/bin/sh
# The scheme table against every subcommand: `kvr help schemes --json` lists each scheme once,
# and sim, exec, sweep and validate take exactly its names, list them in their help and errors,
# and take a partition exactly where the table says; every subcommand with a --scheme option
# (sim, exec, search, lookup, export, validate) names, takes and refuses the schemes by the
# table's columns.
# Usage: test_schemes.sh PATH/TO/kvr   (TAP on stdout)
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"

"$kvr" help schemes --json >"$tmp/schemes.json"
report $? "kvr help schemes --json runs"
# field F of every scheme (or, with a filter expression on s, of those that pass), one a line
field() {
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('\n'.join(str(s[sys.argv[2]]) for s in d['schemes'] if eval(sys.argv[3])))" "$tmp/schemes.json" "$1" "${2:-True}"
}
names=$(field name)
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); n=[s['name'] for s in d['schemes']]; sys.exit(0 if len(n) >= 7 and len(set(n)) == len(n) and all(s['simulator'] and s['label'] and s['help'] for s in d['schemes']) else 1)" "$tmp/schemes.json"
report $? "every scheme once, each with a label, a simulator entry and a help line"
"$kvr" help schemes >"$tmp/table"
ok=0; for s in $names; do grep -q "^$s " "$tmp/table" || ok=1; done
report $ok "the plain table has a row per scheme"

# sim/README.md's drawing of the table: a row per scheme, in the table's order, with its label
# and an exec entry exactly where the table has one
python3 - "$tmp/schemes.json" "$src/sim/README.md" >"$tmp/readme" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
rows, on = [], False
for line in open(sys.argv[2]):
    if re.match(r'^    kvr_scheme_list\.h\s+id\s', line): on = True; continue
    if on and not line.strip(): break
    if on: rows.append(line.split())
want = [[s['name'], s['label'], s['executor']] for s in d['schemes']]
got = [[r[1], r[2], r[4].startswith('kvr_dist_')] for r in rows if len(r) > 4]
print('README:', got, '\ntable:', want)
sys.exit(0 if got == want and len(rows) == len(want) else 1)
PY
report $? "sim/README.md draws the table: its names, labels and exec entries" "$(cat "$tmp/readme")"

# kvr sim: its help and its error list name every scheme; each simulates
"$kvr" sim --help >"$tmp/help"
ok=0; for s in $names; do grep -qw -- "$s" "$tmp/help" || ok=1; done
report $ok "kvr sim --help lists every scheme"
"$kvr" sim --scheme nope 2>"$tmp/err"
ok=0; for s in $names; do grep -qw -- "$s" "$tmp/err" || ok=1; done
report $ok "kvr sim's unknown-scheme error lists every scheme" "$(cat "$tmp/err")"
one_gpu=" $(field name "s['one_gpu']" | tr '\n' ' ') " # those refuse --gpus 2
for s in $names; do
    g=2; case "$one_gpu" in *" $s "*) g=1 ;; esac
    json_check "kvr sim --scheme $s simulates" "d['scheme'] == '$s' and d['ttft_s'] > 0" -- sim --scheme "$s" --gpus $g --ctx 4k --json
done
# --partition exactly for the schemes that take any partition
for s in $(field name "s['any_partition']"); do
    json_check "kvr sim --scheme $s takes --partition" "d['partition'] == [3072, 1024]" -- sim --scheme "$s" --gpus 2 --ctx 4k --partition 3k,1k --json
done
for s in $(field name "not s['any_partition'] and not s['one_gpu']"); do
    expect 2 "--partition applies to" "kvr sim --scheme $s refuses --partition" -- sim --scheme "$s" --gpus 2 --ctx 4k --partition 3k,1k
done

# kvr exec: its help lists the executor's schemes; the others are refused by name
model="--model $src/data/models/tiny.ini --ctx 37 --backend ref --reps 1 --warmup 0"
"$kvr" exec --help >"$tmp/help"
ok=0; for s in $(field name "s['executor']"); do grep -qw -- "$s" "$tmp/help" || ok=1; done
report $ok "kvr exec --help lists every scheme the executor runs"
for s in $(field name "not s['executor']"); do
    "$kvr" exec $model --scheme "$s" >/dev/null 2>"$tmp/err"; rc=$?
    [ $rc = 2 ] && { grep -q "not one the executor runs" "$tmp/err" || grep -q "simulated only" "$tmp/err"; }
    report $? "kvr exec refuses the simulator-only scheme $s" "$(cat "$tmp/err")"
done
for s in $(field name "s['executor']"); do
    "$kvr" exec $model --scheme "$s" >/dev/null 2>"$tmp/err"
    ! grep -q "not one the executor runs\|simulated only" "$tmp/err"
    report $? "kvr exec takes the scheme $s (or asks for mpirun)" "$(cat "$tmp/err")"
done

# kvr search: its help lists the schemes the search optimises; the others are refused
"$kvr" search --help >"$tmp/help"
ok=0; for s in $(field name "s['searched']"); do grep -qw -- "$s" "$tmp/help" || ok=1; done
report $ok "kvr search --help lists every scheme the search optimises"
for s in $(field name "not s['searched']"); do
    expect 2 "does not take a partition that the search optimises" "kvr search refuses $s" -- search --db "$tmp/q.db" --scheme "$s" --gpus 2 --ctx 1k
done

# kvr sweep: every scheme's sweep names parse (and are the error's list)
sweep_names=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(', '.join(n for s in d['schemes'] for n in s['sweep_names']))" "$tmp/schemes.json")
printf '[sweep]\nfigure = t\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nctx = 1k, 2k\nschemes = %s\n' "$sweep_names" >"$tmp/all.ini"
"$kvr" sweep "$tmp/all.ini" --db "$tmp/s.db" --json >"$tmp/out" 2>"$tmp/err"
[ $? = 0 ] && [ "$(sql "$tmp/s.db" "SELECT count(DISTINCT scheme) FROM sweep_point WHERE state = 'done'")" = "$(echo "$sweep_names" | tr ',' '\n' | wc -l)" ]
report $? "kvr sweep runs every scheme's sweep names ($sweep_names)" "$(cat "$tmp/err")"
"$kvr" sweep --help >"$tmp/help"
ok=0; for s in $(echo "$sweep_names" | tr -d ','); do grep -qw -- "$s" "$tmp/help" || ok=1; done
report $ok "kvr sweep --help lists every sweep name"
printf '[sweep]\nfigure = t\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nctx = 1k\nschemes = nope\n' >"$tmp/bad.ini"
expect 2 "($sweep_names)" "kvr sweep's unknown-scheme error lists the table's sweep names" -- sweep "$tmp/bad.ini" --db "$tmp/b.db"
sql "$tmp/s.db" "SELECT group_concat(series, ',') FROM (SELECT DISTINCT series, series_rank FROM sweep_point ORDER BY series_rank)" >"$tmp/series"
want=$(python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
src = {x['suffix']: x['label'] for x in d['partition_sources'] if x['suffix']}
out = []
for s in d['schemes']:
    for n in s['sweep_names']:
        out.append(s['label'] if n == s['name'] else s['label'] + '-' + src[n[len(s['name']) + 1:]])
print(','.join(out))" "$tmp/schemes.json")
[ "$(cat "$tmp/series")" = "$want" ]
report $? "sweep series carry the table's labels, in table order" "$(cat "$tmp/series") vs $want"

# kvr validate --timeline: its scheme error lists the table
printf 'rank\tlayer\tkind\twhat\tstart_s\tend_s\tbytes\tpeer\n' >"$tmp/tl.tsv"
"$kvr" validate --timeline "$tmp/tl.tsv" --model llama-7b --scheme nope --partition 1k,1k 2>"$tmp/err"
ok=$?; [ $ok = 2 ] && ok=0
for s in $names; do grep -qw -- "$s" "$tmp/err" || ok=1; done
report $ok "kvr validate --timeline's unknown-scheme error lists every scheme" "$(cat "$tmp/err")"

# Every subcommand that takes --scheme (kvr help's commands whose help names the option), both
# ways, from the table's columns: the option's help names exactly the schemes of the command's
# column, each of those gets past --scheme and every other one is refused with the column's
# reason, and an unknown name is refused with exit 2, named. The columns: sim and validate
# (which predicts a run's timeline on the simulator) the simulator's, exec the executor's,
# search, lookup and export the schemes the search optimises.
column() { # the table column kvr $1 takes its --scheme from
    case $1 in
    sim | validate) echo simulator ;; exec) echo executor ;; search | lookup | export) echo searched ;;
    esac
}
refusal() { # the reason kvr $1 gives for a scheme outside its column
    case $(column "$1") in
    executor) echo "not one the executor runs" ;; searched) echo "does not take a partition that the search optimises" ;;
    *) echo "--scheme" ;;
    esac
}
probe() { # probe CMD SCHEME: runs kvr CMD --scheme SCHEME on a small plan, exit code in $rc
    g=2 part=1k,1k; case "$one_gpu" in *" $2 "*) g=1 part=1k ;; esac
    rm -f "$tmp/p.db" "$tmp/p.out"
    case $1 in
    sim) "$kvr" sim --scheme "$2" --gpus $g --ctx 4k --json >/dev/null 2>"$tmp/err" ;;
    exec) "$kvr" exec $model --scheme "$2" >/dev/null 2>"$tmp/err" ;;
    search) "$kvr" search --db "$tmp/p.db" --scheme "$2" --gpus 2 --ctx 1k >/dev/null 2>"$tmp/err" ;;
    lookup | export) # on the rows a search of the scheme stored (none where it refuses)
        "$kvr" search --db "$tmp/p.db" --scheme "$2" --gpus 2 --ctx 1k >/dev/null 2>&1
        if [ "$1" = lookup ]; then
            "$kvr" lookup --db "$tmp/p.db" --scheme "$2" --gpus 2 --ctx 1k >/dev/null 2>"$tmp/err"
        else "$kvr" export --db "$tmp/p.db" --scheme "$2" --format json --out "$tmp/p.out" >/dev/null 2>"$tmp/err"; fi ;;
    validate) "$kvr" validate --timeline "$tmp/tl.tsv" --model llama-7b --scheme "$2" --partition $part 2>"$tmp/err" ;;
    esac
    rc=$?
}
accepted() { # did probe's run of kvr $1 get past --scheme $2? (a run, or the error that comes after)
    case $1 in
    exec) [ $rc = 0 ] || { [ $rc = 2 ] && grep -q "runs on several ranks: start it with mpirun" "$tmp/err"; } ;;
    validate) [ $rc = 2 ] && grep -q "holds no events" "$tmp/err" ;;
    lookup) [ $rc = 0 ] ;;
    export) [ $rc = 0 ] && python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1])) else 1)" "$tmp/p.out" ;;
    *) [ $rc = 0 ] ;;
    esac
}
# the names of the table that the --scheme option's help of kvr $1 names
help_names() {
    "$kvr" "$1" --help | python3 -c "
import re, sys
names = set(sys.argv[1].split())
text, on = [], False
for line in sys.stdin:
    if re.match(r'^  (-\w, )?--scheme\b', line): on = True
    elif on and re.match(r'^\s{0,8}-', line): break
    if on: text.append(line)
words = re.findall(r'[a-z][a-z0-9]*(?:-[a-z0-9]+)*', ' '.join(text).replace('kvr help schemes', ''))
print(' '.join(sorted(names & set(words))))" "$names"
}
takers=
for c in $("$kvr" help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }'); do
    "$kvr" "$c" --help 2>/dev/null | grep -q -- "--scheme" && takers="$takers $c"
done
[ -n "$takers" ] && case "$takers" in *" sim"*" exec"*) true ;; *) false ;; esac
report $? "kvr help's commands that take --scheme are found (${takers# })"
for c in $takers; do
    col=$(column "$c")
    [ -n "$col" ]
    report $? "test_schemes.sh knows which column of the table kvr $c's --scheme takes"
    [ -n "$col" ] || continue
    want=$(field name "s['$col']" | sort | tr '\n' ' ' | sed 's/ $//')
    got=$(help_names "$c")
    [ "$got" = "$want" ]
    report $? "kvr $c --help's --scheme names exactly the $col schemes" "names: $got; the table's: $want"
    for s in $names; do
        probe "$c" "$s"
        if [ "$(field "$col" "s['name'] == '$s'")" = True ]; then
            accepted "$c" "$s"
            report $? "kvr $c takes --scheme $s (the table: $col)" "exit $rc: $(cat "$tmp/err")"
        else
            [ $rc = 2 ] && grep -qF -- "'$s'" "$tmp/err" && grep -qF -- "$(refusal "$c")" "$tmp/err"
            report $? "kvr $c refuses --scheme $s, saying why (the table: not $col)" "exit $rc: $(cat "$tmp/err")"
        fi
    done
    probe "$c" nope
    [ $rc = 2 ] && grep -q -- "--scheme: .*'nope'" "$tmp/err"
    report $? "kvr $c refuses the unknown --scheme nope with exit 2, naming it" "exit $rc: $(cat "$tmp/err")"
done

echo "1..$n"
[ "$failed" = 0 ]
