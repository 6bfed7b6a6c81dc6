#!/bin/sh
# kvr exec's output files (--dump-logits, --dump-kv, --timeline) are all or nothing: a run that
# fails at any step (a write error on a later output, the --db store) leaves every old file
# byte for byte, no temp file and no report; an output that cannot be written (a dangling
# symlink into a missing folder) is refused before the run (exit 2); a write error exits 1
# naming the option, the file and why; and a run that succeeds writes them all. The same under
# mpirun where it runs. Usage: test_exec_outputs.sh PATH/TO/kvr   (TAP on stdout)
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
model=$src/data/models/tiny.ini
E="exec -m $model -b ref -c 64 -r 1 -w 0"
L=$tmp/L.bin KV=$tmp/KV.bin T=$tmp/T.tsv

# olds: known content in the three outputs; intact: still that, and no temp file anywhere
olds() { echo "old logits" >"$L"; echo "old kv" >"$KV"; echo "old timeline" >"$T"; }
intact() {
    [ "$(cat "$L")" = "old logits" ] && [ "$(cat "$KV")" = "old kv" ] &&
        [ "$(cat "$T")" = "old timeline" ] && [ -z "$(find "$tmp" -name '.*.tmp-*')" ]
}
# limited BLOCKS ARGS...: kvr under a file-size limit (SIGXFSZ ignored: the write fails EFBIG)
limited() { b=$1; shift; (trap '' XFSZ; ulimit -f "$b"; exec "$kvr" "$@"); }
state() { echo "exit $rc; stdout: $(head -c 300 "$tmp/out"); stderr: $(cat "$tmp/err")"; }

# the successful run replaces all three (logits: vocab 128 floats; KV: 2 layers x K,V x 64 x 32)
olds
# shellcheck disable=SC2086
"$kvr" $E --dump-logits "$L" --dump-kv "$KV" --timeline "$T" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 0 ] && [ "$(wc -c <"$L")" = 512 ] && [ "$(wc -c <"$KV")" = 32768 ] &&
    head -1 "$T" | grep -q "^rank	layer" && grep -q "first token" "$tmp/out" &&
    [ -z "$(find "$tmp" -name '.*.tmp-*')" ]
report $? "a run that succeeds writes every output and the report" "$(state)"
cp "$L" "$tmp/L.good"

# a write error on --dump-kv (file-size limit: 512-byte logits fit, the 32 KiB cache not),
# after --dump-logits was written: before, L.bin was replaced and the exit was 2
olds
# shellcheck disable=SC2086
limited 16 $E --dump-logits "$L" --dump-kv "$KV" --timeline "$T" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && intact && [ ! -s "$tmp/out" ]
report $? "a write error on --dump-kv: exit 1, every old output intact, no report" "$(state)"
grep -q -- "--dump-kv: error writing '.*KV.bin': File too large" "$tmp/err"
report $? "  the message names --dump-kv, the file and the system's reason" "$(state)"

# the --db store fails last (a new database's schema exceeds the limit; the outputs fit)
olds
# shellcheck disable=SC2086
limited 16 $E --dump-logits "$L" --timeline "$T" --db "$tmp/fresh.db" --allow-dirty \
    >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && intact && [ ! -s "$tmp/out" ]
report $? "the --db store failing after the run: exit 1, the outputs intact, no report" "$(state)"

# a full disk (a 16 KiB tmpfs in a private mount namespace) under --dump-kv, --dump-logits outside
mkdir -p "$tmp/mnt"
has_ns=no
unshare -rm sh -c 'mount -t tmpfs -o size=16k tmpfs "$1"' sh "$tmp/mnt" 2>/dev/null && has_ns=yes
if [ "$has_ns" = yes ]; then
    olds
    unshare -rm sh -c 'mount -t tmpfs -o size=16k tmpfs "$1/mnt" && echo "old kv" >"$1/mnt/KV.bin" &&
        "$2" '"$E"' --dump-logits "$1/L.bin" --dump-kv "$1/mnt/KV.bin" >"$1/out" 2>"$1/err"; rc=$?
        [ "$(cat "$1/mnt/KV.bin")" = "old kv" ] && [ -z "$(ls -A "$1/mnt" | grep tmp-)" ] || exit 99
        exit $rc' sh "$tmp" "$kvr"
    rc=$?
    [ $rc = 1 ] && intact && grep -q -- "--dump-kv: error writing .*No space left on device" "$tmp/err"
    report $? "a full disk under --dump-kv: exit 1 naming it and ENOSPC, --dump-logits intact" \
        "$(state)"
else
    skip "a full disk under --dump-kv" "no private mount namespace"
fi

# a dangling symlink into a folder that is not there: refused before the run, nothing touched
olds
ln -s "$tmp/nowhere/kv.bin" "$tmp/dangle"
# shellcheck disable=SC2086
"$kvr" $E --dump-logits "$L" --dump-kv "$tmp/dangle" --timeline "$T" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && intact && [ ! -s "$tmp/out" ] && [ -L "$tmp/dangle" ] && [ ! -e "$tmp/nowhere" ] &&
    grep -q -- "--dump-kv: '.*dangle' is a symlink to '.*nowhere/kv.bin': cannot write in" "$tmp/err"
report $? "a dangling symlink into a missing folder: exit 2 before the run, naming it" "$(state)"
ln -s nowhere2/x "$tmp/dangle2" # relative: to the link's folder
# shellcheck disable=SC2086
"$kvr" $E --timeline "$tmp/dangle2" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q -- "--timeline: '.*dangle2' is a symlink" "$tmp/err"
report $? "  also --timeline, a relative link" "$(state)"
# one into a folder that is there names the file to make (the link stays)
ln -s "$tmp/made.bin" "$tmp/link"
# shellcheck disable=SC2086
"$kvr" $E --dump-logits "$tmp/link" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 0 ] && [ -L "$tmp/link" ] && cmp -s "$tmp/made.bin" "$tmp/L.good"
report $? "  a dangling symlink into a folder that is there: its target is written" "$(state)"

# '-' is standard output: the timeline alone there, the report on stderr (README)
# shellcheck disable=SC2086
"$kvr" $E --timeline - >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 0 ] && head -1 "$tmp/out" | grep -q "^rank	layer" && ! grep -q "first token" "$tmp/out" &&
    grep -q "first token" "$tmp/err"
report $? "--timeline -: the timeline on stdout, the report on stderr" "$(state)"

# a --db held by another writer (an exclusive transaction): the store gives up after SQLite's
# 30 s busy wait, after the run; hold LOCKED DB until $tmp/stop (at most 250 s)
hold_lock() {
    rm -f "$tmp/locked" "$tmp/stop"
    python3 -c 'import sqlite3, sys, os, time
c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close(); t = time.time()
while not os.path.exists(sys.argv[3]) and time.time() - t < 250: time.sleep(0.1)' \
        "$1" "$tmp/locked" "$tmp/stop" &
    lock_pid=$!
    i=0; while [ ! -e "$tmp/locked" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$tmp/locked" ]
}
release_lock() { touch "$tmp/stop"; wait "$lock_pid"; }
have_lock=no
# shellcheck disable=SC2086
python3 -c 'import sqlite3' 2>/dev/null &&
    "$kvr" $E --db "$tmp/m.db" --allow-dirty >/dev/null 2>"$tmp/err" && have_lock=yes
if [ $have_lock = yes ] && hold_lock "$tmp/m.db"; then
    olds
    # shellcheck disable=SC2086
    "$kvr" $E --dump-logits "$L" --dump-kv "$KV" --timeline "$T" --db "$tmp/m.db" --allow-dirty \
        >"$tmp/out" 2>"$tmp/err"; rc=$?
    release_lock
    [ $rc = 1 ] && intact && [ ! -s "$tmp/out" ] && grep -q "locked" "$tmp/err"
    report $? "a --db locked by another process: exit 1, every output intact, no report" "$(state)"
else
    skip "a --db locked by another process" "no python3 sqlite3 or no database made"
fi

# under mpirun (2 ranks: rank 0 writes the timeline, rank 1 the dumps, rank 0 the row)
if command -v mpirun >/dev/null && "$kvr" --version | grep -q "mpi=yes"; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
    mkdir -p "$tmp/ompi" && export OMPI_MCA_orte_tmpdir_base="$tmp/ompi"
    olds
    # shellcheck disable=SC2086
    mpi 2 $E -s kvr --dump-logits "$L" --dump-kv "$KV" --timeline "$T" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 0 ] && [ "$(wc -c <"$L")" = 512 ] && [ "$(wc -c <"$KV")" = 32768 ] &&
        head -1 "$T" | grep -q "^rank	layer" && grep -q "first token" "$tmp/out"
    report $? "mpirun: a run that succeeds writes every output and the report" "$(state)"
    # rank 1's --dump-kv on a full disk (found when its temps are synced), rank 0's timeline
    # (mpirun in the namespace probed first: where it does not start there, skipped)
    if [ "$has_ns" = yes ] && unshare -rm timeout 60 mpirun -np 1 true >/dev/null 2>&1; then
        olds
        unshare -rm sh -c 'mount -t tmpfs -o size=16k tmpfs "$1/mnt" && echo "old kv" >"$1/mnt/KV.bin" &&
            timeout 300 mpirun -np 2 --oversubscribe "$2" '"$E"' -s kvr --dump-logits "$1/L.bin" \
                --dump-kv "$1/mnt/KV.bin" --timeline "$1/T.tsv" >"$1/out" 2>"$1/err"; rc=$?
            [ "$(cat "$1/mnt/KV.bin")" = "old kv" ] && [ -z "$(ls -A "$1/mnt" | grep tmp-)" ] || exit 99
            exit $rc' sh "$tmp" "$kvr"
        rc=$?
        [ $rc = 1 ] && intact && [ ! -s "$tmp/out" ] &&
            grep -q -- "rank 1: .*--dump-kv: error writing .*No space left on device" "$tmp/err"
        report $? "mpirun: a full disk under rank 1's --dump-kv: exit 1, every output intact" \
            "$(state)"
    else
        skip "mpirun: a full disk under --dump-kv" "no private mount namespace for mpirun"
    fi
    if [ $have_lock = yes ] && hold_lock "$tmp/m.db"; then
        olds
        # shellcheck disable=SC2086
        mpi 2 $E -s kvr --dump-logits "$L" --dump-kv "$KV" --timeline "$T" --db "$tmp/m.db" \
            --allow-dirty >"$tmp/out" 2>"$tmp/err"; rc=$?
        release_lock
        [ $rc != 0 ] && intact && [ ! -s "$tmp/out" ] && grep -q "locked" "$tmp/err"
        report $? "mpirun: a --db locked: non-zero exit, every rank's output intact, no report" \
            "$(state)"
    else
        skip "mpirun: a --db locked" "no python3 sqlite3 or no database made"
    fi
else
    skip "mpirun: outputs" "no mpirun or kvr built without MPI"
    skip "mpirun: a full disk under --dump-kv" "no mpirun or kvr built without MPI"
    skip "mpirun: a --db locked" "no mpirun or kvr built without MPI"
fi

echo "1..$n"
[ "$failed" = 0 ]
