#!/bin/sh
# The measurement's last_layer (store schema 9) is what the executor did, not a date: kvr exec
# --db on one rank (ref backend) records 'pruned' (kvr_exec_chunk runs the last layer's
# attention and MLP on the last row alone), a chain of ranks 'full' (every layer on every row),
# one tensor-parallel stage (--scheme tp) 'full' too (a stage runs every row, as the
# simulator's TP counts it); --json says the same; kvr validate --multi-gpu predicts both, and
# refuses a one-stage row marked 'pruned' (a run of the executor between b4e1d92 and this
# change: nothing predicts it). The one-rank part runs without MPI; the rest is skipped
# without mpirun or an MPI build. Usage: test_last_layer_db.sh KVR
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
rank_models "$tmp"
db="$tmp/m.db"
common="--model $tmp/gqa.ini --backend ref --reps 1 --warmup 0 --ctx 96 --allow-dirty"
"$kvr" exec $common --scheme single --db "$db" --json >"$tmp/out" 2>"$tmp/err" &&
    [ "$(sql "$db" "SELECT group_concat(p || ' ' || last_layer) FROM measurement")" = "1 pruned" ] &&
    python3 -c "import json,sys; sys.exit(json.load(open(sys.argv[1]))['last_layer'] != 'pruned')" "$tmp/out"
report $? "kvr exec --db on one rank: last_layer 'pruned' in the row and in --json" "$(cat "$tmp/err" "$tmp/out")"
[ "$(sql "$db" 'PRAGMA user_version')" = 9 ]
report $? "the store is schema 9"
if command -v mpirun >/dev/null && "$kvr" --version | grep -q "mpi=yes"; then
    mpi_setup
    mpi 2 exec $common --scheme kvr --partition 64,32 --db "$db" >"$tmp/out" 2>"$tmp/err" &&
        [ "$(sql "$db" "SELECT last_layer FROM measurement WHERE scheme = 'kvr'")" = full ]
    report $? "mpirun -np 2 kvr exec --scheme kvr --db: a chain runs every row, 'full'" "$(cat "$tmp/err")"
    mpi 2 exec $common --scheme tp --db "$db" --json >"$tmp/out" 2>"$tmp/err" &&
        [ "$(sql "$db" "SELECT last_layer || ' ' || tp FROM measurement WHERE scheme = 'tp'")" = "full 2" ] &&
        python3 -c "import json,sys; sys.exit(json.load(open(sys.argv[1]))['last_layer'] != 'full')" "$tmp/out"
    report $? "mpirun -np 2 kvr exec --scheme tp --db: one stage runs every row, 'full'" "$(cat "$tmp/err" "$tmp/out")"
    # validate resolves a row's model by name: the profile's path instead
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE measurement SET model = ?', (sys.argv[2],)); c.commit()" "$db" "$tmp/gqa.ini"
    json_check "kvr validate --multi-gpu predicts the chain's row and the stage's ('full')" \
        "len(d['rows']) == 2 and all(r['last_layer'] == 'full' for r in d['rows'])" -- \
        validate --multi-gpu --db "$db" --machine a100-nvlink --json
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE measurement SET last_layer = 'pruned' WHERE scheme = 'tp'\"); c.commit()" "$db"
    expect 2 "ran the last layer on the last row alone (last_layer 'pruned')" \
        "kvr validate --multi-gpu refuses a one-stage row marked 'pruned': nothing predicts it" -- \
        validate --multi-gpu --db "$db" --machine a100-nvlink
else
    echo "# no mpirun or kvr built without MPI: the rank checks are skipped"
fi
echo "1..$n"
[ "$failed" = 0 ]
