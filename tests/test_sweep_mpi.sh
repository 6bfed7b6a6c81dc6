#!/bin/sh
# kvr sweep under mpirun -np 3: the points spread over the ranks give the serial run's numbers
# and plan rows; an interrupted MPI sweep resumes; --jobs does not mix with mpirun; a hung rank ends the job. Skipped (77)
# without mpirun or without an MPI build. Usage: test_sweep_mpi.sh KVR
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
mpi_setup

cat >"$tmp/small.ini" <<'INI'
[sweep]
figure = fig1
[axes]
models = llama-7b, falcon-7b
machines = a100-nvlink, a100-10GBps
gpus = 2, 4
ctx = 1k-4k+1k
schemes = tsp, kvr-even, kvr-s, kvr-p
INI
"$kvr" sweep "$tmp/small.ini" --db "$tmp/serial.db" >"$tmp/out" 2>&1
report $? "serial sweep of 128 points" "$(cat "$tmp/out")"
mpi 3 sweep "$tmp/small.ini" --db "$tmp/mpi.db" --stop-after 50 >"$tmp/out" 2>&1
[ "$(sql "$tmp/mpi.db" "SELECT count(*) FROM sweep_point WHERE state = 'done'")" = 50 ]
report $? "mpirun -np 3 with --stop-after 50 finishes exactly 50 points" "$(cat "$tmp/out")"
mpi 3 sweep "$tmp/small.ini" --db "$tmp/mpi.db" --json >"$tmp/out" 2>&1
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['run']==78 and d['already_done']==50 and d['failed']==0 else 1)" "$tmp/out"
report $? "the MPI sweep resumes the 78 open points, and only rank 0 prints" "$(cat "$tmp/out")"
q="SELECT group_concat(point_key || '=' || ttft_s || '/' || partition_tokens, ';') FROM (SELECT * FROM sweep_point ORDER BY point_key)"
[ "$(sql "$tmp/serial.db" "$q")" = "$(sql "$tmp/mpi.db" "$q")" ]
report $? "every point's TTFT and partition equal the serial run's"
p="SELECT group_concat(model || machine || p || ctx_tokens || partition_tokens, ';') FROM (SELECT * FROM plan ORDER BY model, machine, p, ctx_tokens)"
[ "$(sql "$tmp/serial.db" "$p")" = "$(sql "$tmp/mpi.db" "$p")" ]
report $? "the plans searched on the ranks are stored once by rank 0, as the serial run's"
[ "$(sql "$tmp/mpi.db" "SELECT count(DISTINCT run_id) FROM sweep_point")" = 2 ]
report $? "two MPI runs, two run rows"
mpi 3 sweep "$tmp/small.ini" --db "$tmp/j.db" --jobs 2 >"$tmp/out" 2>"$tmp/err"
[ $? = 2 ] && grep -q "do not mix" "$tmp/err"
report $? "-j under mpirun exits 2" "$(cat "$tmp/err")"
# never hang: a rank that stops answering ends the job within --timeout, with an error that
# names the peer correctly (no "rank :" or "all-gather-1" from a bad format)
t0=$(date +%s)
KVR_TEST_FAULT=hang@1 timeout 120 mpirun -np 2 --oversubscribe -x KVR_TEST_FAULT "$kvr" sweep \
    "$tmp/small.ini" --db "$tmp/hang.db" --timeout 3 >"$tmp/out" 2>"$tmp/err"
rc=$? t1=$(date +%s)
[ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "timed out after 3 s waiting for" "$tmp/err" &&
    ! grep -q "rank :\|-1:" "$tmp/err"
report $? "a hung rank stops the MPI sweep within its timeout (exit $rc after $((t1 - t0)) s)" "$(tail -5 "$tmp/err")"
echo "1..$n"
[ "$failed" = 0 ]
