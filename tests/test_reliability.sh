#!/bin/sh
# Reliability of the kvr program, one block per class of defect (issue #16): writes never
# destroy a file, failures never exit 0, readers refuse what they cannot read correctly, nothing
# hangs, parsers take long lines and refuse junk. Cases that need a private mount namespace
# (disk full on a tiny tmpfs, a read-only folder as root) are skipped where it is not allowed.
# Usage: test_reliability.sh PATH/TO/kvr   (TAP on stdout)
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
ops=$src/data/calibration/h100-ops.csv
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# same FILE FILE: equal, but for the export's creation time (JSON created_utc/created_unix_s)
same() {
    [ "$(sed -E 's/"created_(utc|unix_s)": [^,]*,//g' "$1")" = "$(sed -E 's/"created_(utc|unix_s)": [^,]*,//g' "$2")" ]
}
has_ns=no
unshare -rm sh -c 'mount -t tmpfs -o size=16k tmpfs "$1"' sh "$tmp" 2>/dev/null && has_ns=yes
# in_ns SCRIPT ARGS...: SCRIPT under sh in a private mount namespace, $tmp/mnt a tmpfs of
# $ns_size (24 KiB unless set)
in_ns() {
    mkdir -p "$tmp/mnt"
    s=$1; shift
    unshare -rm sh -c "mount -t tmpfs -o size=${ns_size:-24k} tmpfs '$tmp/mnt' && $s" sh "$@"
}

"$kvr" search --db "$tmp/q.db" --ctx 1k-8k+1k --gpus 2 >/dev/null 2>&1
report $? "set-up: a lookup table of 8 rows"
"$kvr" export --db "$tmp/q.db" --out "$tmp/good.json" 2>/dev/null
"$kvr" calibrate --from "$ops" --out "$tmp/good.ini" --save "$tmp/good.csv" >/dev/null 2>&1
report $? "set-up: a calibrated profile and its measurements"

## 1. Writes never destroy. Every output goes through one writer (model/kvr_out.c).
# an output that is one of the command's inputs is refused, the input untouched (4 commands)
cp "$tmp/q.db" "$tmp/q0.db"
expect 2 "is the --db" "export --out DB refuses to overwrite its database" \
    -- export --db "$tmp/q.db" --out "$tmp/q.db"
same "$tmp/q.db" "$tmp/q0.db"; report $? "  and the database is unchanged"
cp "$tmp/good.csv" "$tmp/c0.csv"
expect 2 "is the --from" "calibrate --save CSV refuses to overwrite its --from" \
    -- calibrate --from "$tmp/good.csv" --save "$tmp/good.csv"
same "$tmp/good.csv" "$tmp/c0.csv"; report $? "  and the measurements are unchanged"
cp "$src/data/models/falcon-7b.ini" "$tmp/m.ini"
expect 2 "is the --model" "sim --timeline MODEL.ini refuses to overwrite its model" \
    -- sim --model "$tmp/m.ini" --gpus 2 --ctx 1k --timeline "$tmp/m.ini"
for o in --dump-kv --dump-logits --timeline; do # the executor's outputs likewise
    expect 2 "$o '$tmp/m.ini' is the --model" "exec $o MODEL.ini refuses to overwrite its model" \
        -- exec --model "$tmp/m.ini" --ctx 8 --backend ref "$o" "$tmp/m.ini"
done
same "$src/data/models/falcon-7b.ini" "$tmp/m.ini"; report $? "  and the model is unchanged"
expect 2 "--dump-logits '$tmp/new.bin' is the --dump-kv '$tmp/new.bin'" \
    "exec --dump-logits and --dump-kv naming one new file are refused" \
    -- exec --model "$tmp/m.ini" --ctx 8 --backend ref --dump-logits "$tmp/new.bin" --dump-kv "$tmp/new.bin"
[ ! -e "$tmp/new.bin" ]; report $? "  before writing either"
expect 2 "is the --base" "calibrate --out refuses to overwrite its --base profile" \
    -- calibrate --from "$ops" --base "$tmp/good.ini" --out "$tmp/good.ini"
# ... spelled another way, a database's WAL, journal or -shm, or one new file named twice
cp "$tmp/q.db" "$tmp/qs.db"; "$kvr" lookup --db "$tmp/qs.db" --gpus 2 --ctx 1k >/dev/null 2>&1
for o in "$tmp/qs.db-wal" "$tmp/./qs.db-journal" "$tmp/qs.db-shm"; do
    expect 2 "database's" "export --out ${o##*/} (a file of its --db) is refused" \
        -- export --db "$tmp/qs.db" --out "$o"
done
[ ! -e "$tmp/qs.db-journal" ]; report $? "  and no journal was made beside the database"
expect 2 "is the --dump-kv" "exec --dump-logits new.bin --dump-kv ./new.bin (one new file) is refused" \
    -- exec --model "$tmp/m.ini" --ctx 8 --backend ref --dump-logits "$tmp/new2.bin" --dump-kv "$tmp/./new2.bin"
# an input that is a FIFO is read once, by its reader alone (the output checks never open it)
mkfifo "$tmp/tok.fifo"
printf '1\n2\n3\n' >"$tmp/tok.fifo" &
timeout 60 "$kvr" exec --model "$src/data/models/tiny.ini" --backend ref --reps 1 --warmup 0 --tokens "$tmp/tok.fifo" \
    --dump-logits "$tmp/tok.l" >"$tmp/out" 2>"$tmp/err"
rc=$?; wait
[ "$rc" = 0 ] && grep -q "3 tokens" "$tmp/out" && [ -s "$tmp/tok.l" ]
report $? "exec --tokens FIFO --dump-logits F: the tokens read through the FIFO" "exit $rc: $(cat "$tmp/err")"
# an output that cannot be written is named before any work (before the model is even sized)
for o in --timeline --dump-logits --dump-kv; do
    expect 2 "$o: cannot write in '$tmp/nodir'" "exec $o in a missing folder exits 2 before the run" \
        -- exec --model llama-7b --ctx 16 --backend ref "$o" "$tmp/nodir/x"
done
# a --db that cannot take the row is refused before the run (it was after: the run, then the
# dumps replaced, then exit 2), on one process and on ranks alike
printf 'old\n' >"$tmp/keep.l" && printf '{}\n' >"$tmp/notdb.json"
for d in "$tmp/notdb.json|corrupt or not a database" "$tmp/nodir/m.db|--db: cannot create"; do
    expect 2 "${d#*|}" "exec --db ${d%%|*}: refused before the run" \
        -- exec --model "$src/data/models/tiny.ini" --ctx 8 --backend ref --reps 1 --warmup 0 \
        --allow-dirty --dump-logits "$tmp/keep.l" --db "${d%%|*}"
    [ "$(cat "$tmp/keep.l")" = old ]; report $? "  and --dump-logits is left as it was"
done
expect 2 "--out: cannot write in '$tmp/nodir'" "calibrate --out in a missing folder exits 2 before the fit" \
    -- calibrate --from "$ops" --out "$tmp/nodir/c.ini"
# an option given twice is refused, not the last value silently taken (any command's table)
expect 2 "--out given twice ('$tmp/o1.json', then '$tmp/o2.json')" "export --out A --out B exits 2" \
    -- export --db "$tmp/q.db" --out "$tmp/o1.json" --out "$tmp/o2.json"
[ ! -e "$tmp/o1.json" ] && [ ! -e "$tmp/o2.json" ]; report $? "  writing neither"
expect 2 "--ctx given twice" "sim --ctx 1k -c 2k exits 2" -- sim --ctx 1k -c 2k
expect 2 "--link 1-0=5GB/s: link 1-0 is given twice" "sim --link 0-1=1GB/s --link 1-0=5GB/s exits 2" \
    -- sim --gpus 2 --ctx 1k --link 0-1=1GB/s --link 1-0=5GB/s
"$kvr" sim --gpus 2 --ctx 1k --link '0>1=1GB/s' --link '1>0=5GB/s' >/dev/null 2>"$tmp/err"
report $? "  one link's two directions, each once, are taken" "$(cat "$tmp/err")"
# a symlink is followed: its target is written, the link stays a link (3 commands)
ln -s "$tmp/t-export.json" "$tmp/l1"; ln -s "$tmp/t-sim.tsv" "$tmp/l2"
ln -s "$tmp/t-cal.ini" "$tmp/l3"
"$kvr" export --db "$tmp/q.db" --out "$tmp/l1" 2>/dev/null &&
    "$kvr" sim --gpus 2 --ctx 1k --timeline "$tmp/l2" >/dev/null &&
    "$kvr" calibrate --from "$ops" --out "$tmp/l3" >/dev/null &&
    [ -L "$tmp/l1" ] && [ -L "$tmp/l2" ] && [ -L "$tmp/l3" ] && [ -s "$tmp/t-export.json" ] &&
    [ -s "$tmp/t-sim.tsv" ] && [ -s "$tmp/t-cal.ini" ]
report $? "export, sim --timeline, calibrate --out write a symlink's target and keep the link"
# a FIFO is written through, never replaced (2 commands)
mkfifo "$tmp/fifo"
for c in "export --db $tmp/q.db --format csv --out $tmp/fifo" \
    "sim --gpus 2 --ctx 1k --timeline $tmp/fifo"; do
    cat "$tmp/fifo" >"$tmp/fifo.out" &
    # shellcheck disable=SC2086
    "$kvr" $c >/dev/null 2>&1; rc=$?
    wait
    [ "$rc" = 0 ] && [ -p "$tmp/fifo" ] && [ -s "$tmp/fifo.out" ]
    report $? "kvr ${c%% *} writes through a FIFO and leaves it a FIFO"
done
mkfifo "$tmp/fifo2"
t0=$(date +%s)
expect 2 "no process reads the FIFO" "a FIFO nobody reads is refused, not waited for forever" \
    -- export --db "$tmp/q.db" --out "$tmp/fifo2"
[ -p "$tmp/fifo2" ] && [ $(($(date +%s) - t0)) -lt 60 ]; report $? "  within a minute, the FIFO left as it is"
# /dev/stdout on a pipe (/proc/self/fd/1 -> "pipe:[N]", no path): written through
{ "$kvr" export --db "$tmp/q.db" --out /dev/stdout 2>"$tmp/err"; echo "rc=$?" >"$tmp/rc"; } | cat >"$tmp/piped.json"
[ "$(cat "$tmp/rc")" = rc=0 ] && same "$tmp/piped.json" "$tmp/good.json"
report $? "export --out /dev/stdout into a pipe writes the table through" "$(cat "$tmp/rc" "$tmp/err")"
# a device is written through: /dev/full stays a device and the error reaches the exit code
expect 1 "error writing '/dev/full'" "export --out /dev/full exits 1" \
    -- export --db "$tmp/q.db" --out /dev/full
[ -c /dev/full ]; report $? "  and /dev/full is still a character device"
expect 1 "/dev/full" "sim --timeline /dev/full exits 1" -- sim --gpus 2 --ctx 1k --timeline /dev/full
# a write that fails half-way (file-size limit) leaves the old file whole, no temp file (4 outputs)
cp "$tmp/good.json" "$tmp/x.json"; cp "$tmp/good.ini" "$tmp/x.ini"; cp "$tmp/good.csv" "$tmp/x.csv"
cp "$tmp/good.json" "$tmp/x.tsv"
# (export reads a database whose 32 KiB -shm file must be written under the limit too: its
# table of 256 rows, 184 KB, under 100 blocks, 50 KiB in dash's 512-byte blocks, 100 KiB in
# bash's; the others under 1 block). The message must be the
# output's, with the system's reason: a failure elsewhere (SQLite's) would pass unseen.
"$kvr" search --db "$tmp/big.db" --ctx 1k-256k+1k --gpus 2 >/dev/null 2>&1
"$kvr" export --db "$tmp/big.db" --out "$tmp/good.big" --format json 2>/dev/null
cp "$tmp/good.big" "$tmp/x.big"
for c in "100 export --db $tmp/big.db --format json --out $tmp/x.big" \
    "1 calibrate --from $ops --out $tmp/x.ini" \
    "1 calibrate --from $ops --save $tmp/x.csv" "1 sim --gpus 2 --ctx 1k --timeline $tmp/x.tsv"; do
    # shellcheck disable=SC2086
    (trap '' XFSZ; ulimit -f ${c%% *}; exec "$kvr" ${c#* }) >/dev/null 2>"$tmp/err"; rc=$?
    c=${c#* }
    out=$(echo "$c" | sed 's/.* //')
    good=$tmp/good.${out##*.}; [ "${out##*.}" = tsv ] && good=$tmp/good.json
    [ "$rc" = 1 ] && same "$out" "$good" && [ -z "$(ls -A "$tmp" | grep '\.tmp-')" ] &&
        grep -q "error writing '$out': File too large" "$tmp/err"
    report $? "file-size limit: kvr ${c%% *} ${out##*.} exits 1, the old file intact" \
        "exit $rc; $(cat "$tmp/err")"
done
"$kvr" sim --machine "$tmp/x.ini" --gpus 1 --scheme single >/dev/null
report $? "  the calibrated profile still loads after the failed rewrite"
# the same with SIGXFSZ at its default (it kills): the signal's status, the old file, no temp
(ulimit -f 100; exec "$kvr" export --db "$tmp/big.db" --format json --out "$tmp/x.big") >/dev/null 2>&1
rc=$?
[ "$rc" -gt 128 ] && same "$tmp/x.big" "$tmp/good.big" && [ -z "$(ls -A "$tmp" | grep '\.tmp-')" ]
report $? "SIGXFSZ (file-size limit, default action): exit $rc, the old file intact, no temp left" \
    "$(ls -A "$tmp" | grep '\.tmp-')"
# the same on a full disk (a 24 KiB tmpfs): export and calibrate
if [ "$has_ns" = yes ]; then
    in_ns 'cp "$1" "$3/mnt/q.json" && dd if=/dev/zero of="$3/mnt/fill" bs=1k count=19 2>/dev/null;
        "$2" export --db "$4" --out "$3/mnt/q.json" 2>"$3/err"; rc=$?;
        cmp -s "$1" "$3/mnt/q.json" && [ $rc = 1 ] && [ -z "$(ls -A "$3/mnt" | grep tmp-)" ]' \
        "$tmp/good.json" "$kvr" "$tmp" "$tmp/q.db"
    report $? "full disk: export exits 1, the old file intact, no temp file left" "$(cat "$tmp/err")"
else
    skip "full disk: export exits 1" "no private mount namespace"
fi
# concurrent writers to one path: each result is one whole file, never a mix
ok=0
for round in 1 2 3 4 5 6 7 8; do
    for f in json csv c-header; do
        "$kvr" export --db "$tmp/q.db" --format $f --out "$tmp/race.out" 2>/dev/null &
    done
    wait
    "$kvr" export --db "$tmp/q.db" --format json --out "$tmp/r.json" 2>/dev/null
    "$kvr" export --db "$tmp/q.db" --format csv --out "$tmp/r.csv" 2>/dev/null
    "$kvr" export --db "$tmp/q.db" --format c-header --out "$tmp/r.h" 2>/dev/null
    if same "$tmp/race.out" "$tmp/r.json" || same "$tmp/race.out" "$tmp/r.csv" ||
        same "$tmp/race.out" "$tmp/r.h"; then :; else ok=1; fi
done
[ "$ok" = 0 ] && [ -z "$(ls -A "$tmp" | grep '\.tmp-')" ]
report $? "3 concurrent exports to one path, 8 rounds: always one whole format, no temp files"
# nothing is created before the input is validated (5 commands)
expect 2 "smaller than --gpus 8" "search --ctx 4 --gpus 8 exits 2" -- search --db "$tmp/s.db" --ctx 4 --gpus 8
[ ! -e "$tmp/s.db" ]; report $? "  and creates no database"
mkdir "$tmp/fig"
expect 2 "cannot open database" "plot --db missing.db exits 2" \
    -- plot fig1 --db "$tmp/missing.db" --out "$tmp/fig"
[ ! -e "$tmp/fig/data" ] && [ ! -e "$tmp/missing.db" ]; report $? "  and creates neither data/ nor the db"
printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\nctx = 1k\nschemes = tsp\ngpus = 16\n' >"$tmp/g16.ini"
printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\nctx = 1k\nschemes = tsp\ngpus = 2\n' >"$tmp/ok.ini"
expect 2 "g16.ini:8: gpus" "sweep: gpus = 16 on an 8-GPU machine is found at read time, file:line" \
    -- sweep "$tmp/ok.ini" "$tmp/g16.ini" --db "$tmp/sw.db"
[ ! -e "$tmp/sw.db" ]; report $? "  and not even the good file before it ran (no database)"
expect 2 "--format: unknown" "export --format bogus exits 2" \
    -- export --db "$tmp/q.db" --format bogus --out "$tmp/none.json"
expect 2 "--name" "calibrate --name '' exits 2" -- calibrate --from "$ops" --name '' --out "$tmp/none.ini"
cp "$ops" "$tmp/a. Fitted on b.csv" && cp "$ops" "$tmp/two
lines.csv" && cp "$ops" "$tmp/timed now"
expect 2 "cannot carry" "calibrate --from with the record's separator in its path exits 2" \
    -- calibrate --from "$tmp/a. Fitted on b.csv" --out "$tmp/none.ini"
expect 2 "a control character" "calibrate --from with a newline in its path exits 2" \
    -- calibrate --from "$tmp/two
lines.csv" --out "$tmp/none.ini"
(k=$(realpath "$kvr") && cd "$tmp" && "$k" calibrate --from "timed now" --out none.ini >/dev/null 2>"$tmp/err")
[ $? = 2 ] && grep -q "the record's word for no CSV" "$tmp/err"
report $? "calibrate --from 'timed now' (the record's word for no CSV) exits 2" "$(cat "$tmp/err")"
[ ! -e "$tmp/none.json" ] && [ ! -e "$tmp/none.ini" ]; report $? "  neither writes its --out"
# a gnuplot that fails half-way through a picture leaves the old figure whole (2 commands)
gnuplot_ok=
if command -v gnuplot >/dev/null; then
    gnuplot_ok=yes
    "$kvr" sweep "$src/experiments/sweeps/fig3.ini" --db "$tmp/p.db" >/dev/null 2>&1
    mkdir -p "$tmp/figs"
    "$kvr" plot fig3 --db "$tmp/p.db" --out "$tmp/figs" >/dev/null 2>&1
    report $? "set-up: fig3 rendered"
    cp "$tmp/figs/fig3.png" "$tmp/fig3-old.png"
    printf '#!/bin/sh
[ "$1" = --version ] && exit 0
eval "$2"
echo partial >"$outdir/$name.$term"
exit 1
' >"$tmp/badplot"
    chmod +x "$tmp/badplot"
    expect 1 "gnuplot failed" "plot with a gnuplot that fails mid-picture exits 1" \
        -- plot fig3 --db "$tmp/p.db" --out "$tmp/figs" --gnuplot "$tmp/badplot"
    same "$tmp/figs/fig3.png" "$tmp/fig3-old.png" && [ -z "$(ls -A "$tmp/figs/data" | grep render)" ]
    report $? "  the old fig3.png is whole, no render folder left"
    # a figure that is a symlink: its target is written, the link stays (as every output)
    mkdir "$tmp/lfig"; ln -s "$tmp/fig3-target.png" "$tmp/lfig/fig3.png"
    "$kvr" plot fig3 --db "$tmp/p.db" --out "$tmp/lfig" >/dev/null 2>"$tmp/err" &&
        [ -L "$tmp/lfig/fig3.png" ] && [ -s "$tmp/fig3-target.png" ]
    report $? "plot: OUT/fig3.png a symlink: its target written, the link kept" "$(cat "$tmp/err")"
    # a folder gnuplot's shell quoting cannot carry is refused before anything is written
    mkdir "$tmp/q'd"
    expect 2 "holds ''', which cannot be passed to gnuplot" "plot --out with a quote exits 2" \
        -- plot fig3 --db "$tmp/p.db" --out "$tmp/q'd"
    expect 2 "holds ''', which cannot be passed to gnuplot" "validate --out with a quote exits 2" \
        -- validate --out "$tmp/q'd"
    [ ! -s "$tmp/out" ] && [ -z "$(ls -A "$tmp/q'd")" ]; report $? "  printing and writing nothing"
    expect 1 "gnuplot failed" "validate --out with a failing gnuplot exits 1" \
        -- validate --out "$tmp/figs" --gnuplot "$tmp/badplot"
    [ ! -e "$tmp/figs/validate.png" ]; report $? "  and leaves no partial validate.png"
    # SIGKILL during a render leaves its folder (nothing can remove it then); the next plot into
    # the same --out removes it (nobody holds its lock), never a live plot's folder or look-alikes
    printf '#!/bin/sh
[ "$1" = --version ] && exit 0
eval "$2"
echo picture >"$outdir/$name.$term"
echo $$ >>"$KVR_TEST_PIDS"
exec sleep "$KVR_TEST_SLEEP"
' >"$tmp/slowplot"
    chmod +x "$tmp/slowplot"
    renders() { (cd "$tmp/figs/data" && ls -A | grep '^\.render-' | tr '\n' ' '); }
    wait_renders() { # COUNT: until that many render folders exist (10 s at most)
        for _ in $(seq 500); do [ "$(renders | wc -w)" -ge "$1" ] && return; sleep 0.02; done
    }
    KVR_TEST_PIDS="$tmp/dead.pids" KVR_TEST_SLEEP=60 "$kvr" plot fig3 --db "$tmp/p.db" \
        --out "$tmp/figs" --gnuplot "$tmp/slowplot" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 500); do [ -s "$tmp/dead.pids" ] && break; sleep 0.02; done
    kill -KILL $pid; wait $pid 2>/dev/null
    kill $(cat "$tmp/dead.pids") 2>/dev/null # its gnuplot, orphaned (nothing else: it sleeps still)
    dead=$(renders | tr -d " ")
    mkdir "$tmp/figs/data/.render-abc12" "$tmp/figs/data/.render-abc1234"
    KVR_TEST_PIDS="$tmp/live.pids" KVR_TEST_SLEEP=3 "$kvr" plot fig3 --db "$tmp/p.db" \
        --out "$tmp/figs" --gnuplot "$tmp/slowplot" >/dev/null 2>&1 &
    live=$!
    for _ in $(seq 500); do # until the live plot has swept and made its own folder
        live_dir=$(renders | tr " " "\n" | grep . | grep -v -x -e "$dead" -e .render-abc12 -e .render-abc1234)
        [ -n "$live_dir" ] && break
        sleep 0.02
    done
    [ -n "$dead" ] && [ ! -e "$tmp/figs/data/$dead" ] && [ -n "$live_dir" ] &&
        [ -d "$tmp/figs/data/.render-abc12" ] && [ -d "$tmp/figs/data/.render-abc1234" ]
    report $? "SIGKILL during a plot leaves its render folder ($dead); the next plot removes it, not look-alikes" \
        "now: $(renders)"
    "$kvr" plot fig3 --db "$tmp/p.db" --out "$tmp/figs" >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc = 0 ] && [ -d "$tmp/figs/data/$live_dir" ]
    report $? "  a plot beside a live one (exit $rc) leaves the live one's folder" "now: $(renders) $(cat "$tmp/err")"
    wait $live; rc=$?
    [ $rc = 0 ] && [ ! -e "$tmp/figs/data/$live_dir" ] && [ -s "$tmp/figs/fig3.png" ]
    report $? "  the live plot ends whole (exit $rc) and removes its own folder" "left: $(renders)"
    rmdir "$tmp/figs/data/.render-abc12" "$tmp/figs/data/.render-abc1234"
else
    skip "plot with a failing gnuplot" "no gnuplot"
fi
# plot on a full disk: an error, not a crash (the data file was closed twice)
if [ "$has_ns" = yes ] && command -v gnuplot >/dev/null; then
    in_ns 'dd if=/dev/zero of="$3/mnt/fill" bs=1k count=22 2>/dev/null;
        "$1" plot fig3 --db "$2" --out "$3/mnt" >/dev/null 2>"$3/err"; [ $? = 1 ] || [ $? = 2 ]' \
        "$kvr" "$tmp/p.db" "$tmp"
    report $? "full disk: plot exits with an error, no abort" "$(cat "$tmp/err")"
else
    skip "full disk: plot" "no private mount namespace or gnuplot"
fi

## 2. Failures never exit 0.
printf '[model]\nn_layers = 2\nd_model = 64\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 128\nvocab = 100\nnorm = rmsnorm\nmlp = swiglu\n' >"$tmp/tiny.ini"
# every output error reaches the exit code: --json > /dev/full (14 commands)
for c in "model list --json" "model show llama-7b --json" "sim --json" \
    "search --db $tmp/q.db --ctx 1k --gpus 2 --json" \
    "lookup --db $tmp/q.db --gpus 2 --ctx 1536 --json" \
    "export --db $tmp/q.db --out $tmp/e.json --json" "sweep $tmp/ok.ini --db $tmp/ok.db --json" \
    "version --json" "--version" "calibrate --from $ops --json" "validate --json" "help" \
    "exec --model $tmp/tiny.ini --ctx 8 --backend ref --reps 1 --warmup 0 --json" \
    ${gnuplot_ok:+"plot fig3 --db $tmp/p.db --out $tmp/figs --json"}; do
    # shellcheck disable=SC2086
    "$kvr" $c >/dev/full 2>"$tmp/err"; rc=$?
    [ "$rc" = 1 ]; report $? "kvr $c > /dev/full exits 1" "exit $rc: $(cat "$tmp/err")"
done
# --db '' is refused everywhere a database is named (6 commands)
for c in "search --ctx 1k --gpus 2" "lookup --gpus 2 --ctx 1k" "export --out $tmp/e2.json" \
    "sweep $tmp/ok.ini" "plot fig1 --out $tmp/fig" "exec --model llama-7b --ctx 16 --backend ref"; do
    # shellcheck disable=SC2086
    "$kvr" $c --db '' >/dev/null 2>"$tmp/err"; rc=$?
    [ "$rc" = 2 ] && grep -q -- "--db" "$tmp/err"
    report $? "kvr ${c%% *} --db '' exits 2" "exit $rc: $(cat "$tmp/err")"
done
# a sweep file with an empty value or a repeated key is refused with file:line (not "0 run now")
printf '[sweep]\nname =\nfigure = fig1\n' >"$tmp/empty.ini"
expect 2 "empty.ini:2: key 'name' has no value" "sweep name = (empty) exits 2 with file:line" \
    -- sweep "$tmp/empty.ini" --db "$tmp/e.db"
bad_axis() { # bad_axis NAME LINE NEEDLE: ok.ini and LINE as its line 9, refused at read time
    { cat "$tmp/ok.ini"; echo "$2"; } >"$tmp/$1.ini"
    expect 2 "$1.ini:9: $3" "sweep $2: file:line at read time" -- sweep "$tmp/$1.ini" --db "$tmp/e.db"
}
bad_axis bw0 "bw = 0GB/s" "bw: '0GB/s' must be positive"
bad_axis nz "noise = random:3" noise
bad_axis ln "links = 0-1=fast" links
[ ! -e "$tmp/e.db" ]; report $? "  none of them creates the database"
cp "$tmp/ok.ini" "$tmp/ok0.ini"
expect 2 "not a database" "sweep --db naming the sweep file exits 2" -- sweep "$tmp/ok.ini" --db "$tmp/ok.ini"
same "$tmp/ok.ini" "$tmp/ok0.ini"; report $? "  and leaves the file as it was"
# every option is used or refused (exec x 6, sim x 3, search, calibrate x 3, sweep, validate)
for o in "--partition 8,8" "--machine a100-nvlink" "--bw 10GB/s" "--comm nccl"; do
    # shellcheck disable=SC2086
    expect 2 "applies to the schemes on ranks" "single-process exec refuses $o" \
        -- exec --model llama-7b --ctx 16 --backend ref $o
done
# ... and honours the dumps and the timeline (model-fidelity issue): each file is written
"$kvr" exec --model "$src/data/models/tiny.ini" --ctx 16 --backend ref --reps 1 --warmup 0 \
    --dump-logits "$tmp/l.bin" --dump-kv "$tmp/kv.bin" --timeline "$tmp/t.tsv" >"$tmp/out" 2>&1 &&
    [ -s "$tmp/l.bin" ] && [ -s "$tmp/kv.bin" ] && [ -s "$tmp/t.tsv" ]
report $? "single-process exec writes --dump-logits, --dump-kv and --timeline" "$(cat "$tmp/out")"
if "$kvr" --version | grep -q "cuda=yes"; then # the environment's knobs are 0 or 1, or refused
    export KVR_ATTN_PERSIST=x
    expect 2 "KVR_ATTN_PERSIST=x (environment): 0 or 1" "bench attention refuses KVR_ATTN_PERSIST=x" \
        -- bench attention --ctx 100
    expect 2 "KVR_ATTN_PERSIST=x (environment): 0 or 1" "bench attention --ring refuses it too" \
        -- bench attention --ctx 100 --ring 2
    unset KVR_ATTN_PERSIST
    export KVR_ATTN_LAZY=2
    expect 2 "KVR_ATTN_LAZY=2 (environment): 0 or 1" "bench attention refuses KVR_ATTN_LAZY=2" \
        -- bench attention --ctx 100
    expect 2 "KVR_ATTN_LAZY=2 (environment): 0 or 1" "bench attention --ring refuses it too" \
        -- bench attention --ctx 100 --ring 2
    unset KVR_ATTN_LAZY
fi
# the cuda backend's switches are checked before any device, on either backend (kvr_exec_env.c)
tiny_exec() { env "$@" "$kvr" exec --model "$src/data/models/tiny.ini" --ctx 16 --backend ref --reps 1 --warmup 0; }
for kv in KVR_GEMM_TUNE=banana KVR_GEMM_SPLIT=2 KVR_GEMM_LOG=yes KVR_GEMM_LOG= KVR_ATTN_LAZY= KVR_ATTN_PERSIST=on; do
    tiny_exec "$kv" >"$tmp/out" 2>"$tmp/err"; rc=$?
    [ "$rc" = 2 ] && grep -qF "$kv (environment): 0 or 1" "$tmp/err"
    report $? "exec refuses $kv by name" "exit $rc: $(cat "$tmp/err")"
done
tiny_exec KVR_GEMM_OWN=3 >"$tmp/out" 2>"$tmp/err"; rc=$?
[ "$rc" = 2 ] && grep -qF "KVR_GEMM_OWN=3 (environment): 0, 1 or 2" "$tmp/err"
report $? "exec refuses KVR_GEMM_OWN=3 by name" "exit $rc: $(cat "$tmp/err")"
for pair in "KVR_GEMM_SPLIT=0 KVR_GEMM_OWN=0" "KVR_GEMM_SPLIT=1 KVR_GEMM_TUNE=0"; do
    # shellcheck disable=SC2086
    tiny_exec $pair >"$tmp/out" 2>"$tmp/err"; rc=$?
    [ "$rc" = 2 ] && grep -qF "the own GEMM never runs, so its split means nothing" "$tmp/err"
    report $? "exec refuses $pair (a switch of a kernel that never runs)" "exit $rc: $(cat "$tmp/err")"
done
tiny_exec KVR_GEMM_LOG=0 KVR_GEMM_SPLIT=0 KVR_ATTN_LAZY=1 >"$tmp/out" 2>"$tmp/err"
report $? "exec takes good values of them" "$(cat "$tmp/err")"
expect 2 "--device picks a CUDA device" "exec --device with --backend ref exits 2" \
    -- exec --model llama-7b --ctx 16 --backend ref --device 1
expect 2 "--attn-shapes times the cuda attention kernel" "calibrate --backend ref --attn-shapes exits 2" \
    -- calibrate --backend ref --attn-shapes 1k:0
expect 2 "--timeout bounds the waits between MPI ranks" "sweep --timeout without mpirun exits 2" \
    -- sweep "$tmp/ok.ini" --db "$tmp/ok3.db" --timeout 5
[ ! -e "$tmp/ok3.db" ]; report $? "  before creating the database"
expect 2 "--objective: 'bogus'" "sim --objective bogus exits 2" -- sim --objective bogus --noise 0.1
expect 2 "no link after '@'" "sim --noise SHARE@ with no link exits 2 (was: noise on no link, exit 0)" \
    -- sim --gpus 4 --noise random:0.5@
# a long link list is read whole (it was cut at 256 bytes): 200 times 0-1, then 2-3, is 0-1,2-3
# 1 KB of distinct links off the chain of 64 GPUs (a link listed twice is refused), then 2-3
long=$(python3 -c 'print(",".join(f"{i}-{j}" for i in range(4, 64) for j in range(i + 2, 64))[:1100].rsplit(",", 1)[0])')
m64=$src/data/machines/a100-1x64.ini
"$kvr" sim --machine "$m64" --gpus 64 --noise "0.5@$long,2-3" --json >"$tmp/nl" 2>&1 &&
    "$kvr" sim --machine "$m64" --gpus 64 --noise "0.5@2-3" --json >"$tmp/ns" 2>&1 &&
    "$kvr" sim --machine "$m64" --gpus 64 --noise "0.5@$long" --json >"$tmp/n1" 2>&1 &&
    python3 -c 'import json, sys; t = [json.load(open(f))["ttft_s"] for f in sys.argv[1:]]; sys.exit(not (t[0] == t[1] != t[2]))' \
        "$tmp/nl" "$tmp/ns" "$tmp/n1"
report $? "sim --noise with a 1 KB link list reads its last link" "$(cat "$tmp/nl")"
expect 2 "--trials applies with random noise only" "sim --trials without --noise exits 2" -- sim --trials 5
expect 2 "--seed applies with --noise only" "search --seed without --noise exits 2" \
    -- search --db "$tmp/q.db" --ctx 1k --gpus 2 --seed 3
json_check "sim --objective p95 is honoured (objective_s = ttft_p95_s)" \
    "d['objective'] == 'p95' and d['objective_s'] == d['ttft_p95_s'] and d['objective_s'] != d['ttft_mean_s']" \
    -- sim --scheme tsp --noise random:0.5 --seed 3 --trials 20 --objective p95 --json
expect 2 "--db: stores the measurements timed now" "calibrate --db with --from exits 2" \
    -- calibrate --from "$ops" --db "$tmp/m.db"
expect 2 "--models times operations" "calibrate --models with --from exits 2" \
    -- calibrate --from "$ops" --models llama-7b
expect 2 "--model applies with --timeline only" "validate --model without --timeline exits 2" \
    -- validate --model llama-7b
expect 2 "--allow-dirty applies with --db only" "calibrate --allow-dirty without --db exits 2" \
    -- calibrate --from "$ops" --allow-dirty
expect 2 "--check-ctx times operations" "calibrate --check-ctx with --from exits 2 (every other context is held out)" \
    -- calibrate --from "$ops" --check-ctx 3k
expect 2 "--fit-ctx: no measurement at 3072 tokens" "calibrate --fit-ctx 3k absent from --from exits 2, naming it" \
    -- calibrate --from "$ops" --fit-ctx 1k,3k
# the timing lists are checked before any device is opened (no item empty, every model known)
expect 2 "--models: 'llama-7b,,falcon-7b' is not a list" "calibrate --models A,,B exits 2" \
    -- calibrate --backend ref --models llama-7b,,falcon-7b
expect 2 "--attn-shapes: 'bogus' is not QUERIES:PREFIX" "calibrate --attn-shapes bogus exits 2" \
    -- calibrate --attn-shapes bogus
# lists: an empty item is refused, not skipped (ctx of search, exec, sweep)
expect 2 "--ctx: empty item in '1k,,2k'" "search --ctx 1k,,2k exits 2" \
    -- search --db "$tmp/ei.db" --ctx 1k,,2k --gpus 2
[ ! -e "$tmp/ei.db" ]; report $? "  before creating the database"
expect 2 "--ctx: empty item in '8,'" "exec --ctx 8, exits 2" -- exec --model llama-7b --ctx 8, --backend ref
sed 's/^ctx = 1k$/ctx = 1k,/' "$tmp/ok.ini" >"$tmp/ec.ini"
expect 2 "ec.ini:6: ctx: empty item" "sweep ctx = 1k, exits 2 with file:line" -- sweep "$tmp/ec.ini" --db "$tmp/ei.db"
# what only the written profile holds is refused without --out (accepted and ignored before)
for o in "--name foo" "--link-lat 5us" "--link-bw 10GB/s" "--overlap-bw 20GB/s"; do
    # shellcheck disable=SC2086
    expect 2 "${o%% *} sets the profile --out writes" "calibrate $o without --out exits 2" -- calibrate --from "$ops" $o
done
# calibrate never writes a profile kvr sim refuses (3 cases), and help takes its topic
expect 2 "--link-bw: '0GB/s' must be positive" "calibrate --link-bw 0GB/s exits 2" \
    -- calibrate --from "$ops" --link-bw 0GB/s --out "$tmp/bad.ini"
expect 2 "--name" "calibrate --name with a newline exits 2" \
    -- calibrate --from "$ops" --name "$(printf 'a\nb')" --out "$tmp/bad.ini"
expect 2 "--name" "calibrate --name with a comment character exits 2" \
    -- calibrate --from "$ops" --name "a;b" --out "$tmp/bad.ini"
"$kvr" help sim >"$tmp/out" 2>&1 && grep -q "usage: kvr sim" "$tmp/out" &&
    grep -q -- "--partition LIST" "$tmp/out"
report $? "kvr help sim prints sim's help"
# ... and the rest of the options no mode uses (sim x 1, exec x 2, validate x 1), the bench's
# shape named by option before any device is looked for, the environment's KVR_LOG
expect 2 "--gpus 2: scheme single runs on one GPU" "sim --scheme single --gpus 2 exits 2" \
    -- sim --scheme single --gpus 2
expect 2 "--allow-dirty applies with --db only" "exec --allow-dirty without --db exits 2" \
    -- exec --model llama-7b --ctx 16 --backend ref --allow-dirty
expect 2 "--allow-unused applies with --weights only" "exec --allow-unused without --weights exits 2" \
    -- exec --model llama-7b --ctx 16 --backend ref --allow-unused
expect 2 "--gnuplot draws the figures of --out" "validate --gnuplot without --out exits 2" \
    -- validate --gnuplot gnuplot
expect 2 "--head-dim: '96' is not 64 or 128" "bench attention --head-dim 96 exits 2 naming it" \
    -- bench attention --head-dim 96
expect 2 "--kv-heads: '5' does not divide --heads 32" "bench attention --kv-heads 5 exits 2 naming it" \
    -- bench attention --kv-heads 5
KVR_LOG=verbose "$kvr" sim --gpus 2 --ctx 1k >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" = 2 ] && grep -q "KVR_LOG=verbose (environment)" "$tmp/err"
report $? "KVR_LOG=verbose exits 2 naming the environment variable" "exit $rc: $(cat "$tmp/err")"
# a sweep whose axes make no point is refused (it would store nothing and exit 0)
{ cat "$tmp/ok.ini"; echo "tp = 3"; } >"$tmp/tp3.ini"
expect 2 "tp3.ini:9: tp = 3 reaches no point" "sweep tp = 3 at gpus = 2 (no point) exits 2" \
    -- sweep "$tmp/tp3.ini" --db "$tmp/tp3.db"
[ ! -e "$tmp/tp3.db" ]; report $? "  creating no database"
# two files of one sweep name and different figures: the second is refused, not "already done"
sed 's/^figure = fig1$/figure = fig3\nname = ok/' "$tmp/ok.ini" >"$tmp/ok-fig3.ini"
"$kvr" sweep "$tmp/ok.ini" --db "$tmp/nm.db" >/dev/null 2>&1
expect 2 "sweep name 'ok' already holds the points of figure fig1" \
    "sweep: a name another figure's points hold is refused" -- sweep "$tmp/ok-fig3.ini" --db "$tmp/nm.db"
[ "$(sql "$tmp/nm.db" "SELECT count(*) FROM sweep_point")" = 1 ]; report $? "  and records nothing"
# every command takes --quiet and the table's options, kvr help CMD [SUB] each one's help
for c in "paper --db $tmp/q.db" "help schemes" "version"; do
    # shellcheck disable=SC2086
    "$kvr" $c -q >/dev/null 2>"$tmp/err"; rc=$?
    ! grep -q "unknown" "$tmp/err"; report $? "kvr $c takes -q" "exit $rc: $(cat "$tmp/err")"
done
for t in "bench attention" "bench comm" "model show" "model list"; do
    # shellcheck disable=SC2086
    "$kvr" help $t >"$tmp/out" 2>&1 && grep -q "usage: .*kvr $t" "$tmp/out"
    report $? "kvr help $t prints its help" "$(head -3 "$tmp/out")"
done
expect 2 "one topic at most" "kvr help sim extra exits 2 (sim has no subcommands)" -- help sim extra
expect 2 "unexpected argument 'extra'" "kvr --version --json extra exits 2" -- --version --json extra
expect 2 "see kvr model show --help" "model show without a model names 'kvr model show'" -- model show
"$kvr" search --db "$tmp/q.db" --ctx 1k-8k+1k --gpus 2 --force --quiet >"$tmp/out" 2>&1 &&
    [ "$(wc -l <"$tmp/out")" = 1 ] && grep -q "^8 searched" "$tmp/out"
report $? "search --quiet prints the summary line, not every row" "$(cat "$tmp/out")"
# --quiet: no progress bar even on a terminal (script(1) gives the command one)
if command -v script >/dev/null; then
    script -qec "'$kvr' search --db '$tmp/pq.db' --ctx 1k-4k+1k --gpus 2 >/dev/null" /dev/null >"$tmp/tty1" 2>&1
    script -qec "'$kvr' search --db '$tmp/pq.db' --ctx 1k-4k+1k --gpus 2 --force --quiet >/dev/null" /dev/null >"$tmp/tty2" 2>&1
    grep -q "search \[" "$tmp/tty1" && ! grep -q "search \[" "$tmp/tty2"
    report $? "a terminal shows search's progress bar, --quiet hides it"
    # a bar ends its line before the summary, on threads and after --stop-after too
    printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\nctx = 1k-128k+1k\nschemes = tsp, kvr-even\ngpus = 2, 4\n' >"$tmp/bar.ini"
    for o in "--jobs 2" "--stop-after 300"; do
        rm -f "$tmp/bar.db"
        script -qec "'$kvr' sweep '$tmp/bar.ini' --db '$tmp/bar.db' $o" /dev/null >"$tmp/tty3" 2>&1
        tr '\r' '\n' <"$tmp/tty3" | grep -q "^sweep bar (fig1): 512 points"
        report $? "sweep $o on a terminal: the bar's line ends before the summary" "$(tail -c 300 "$tmp/tty3")"
    done
else
    skip "--quiet hides the progress bar" "no script(1)"
fi
# one meaning per short option across every command's help (generated from the tables)
for c in "model show" "model list" sim search lookup export sweep plot exec calibrate validate \
    bench "bench attention" "bench comm" version; do
    # shellcheck disable=SC2086
    "$kvr" $c --help
done 2>&1 | sed -n 's/^  -\(.\), --\([a-z-]*\).*/\1 \2/p' | sort -u >"$tmp/shorts"
dups=$(cut -d' ' -f1 "$tmp/shorts" | uniq -d)
[ -s "$tmp/shorts" ] && [ -z "$dups" ]
report $? "every short option means one long option in all 15 commands' help" "$(grep "^[$dups] " "$tmp/shorts" 2>/dev/null)"
# the defaults the help shows are the ones used (both come from the option table)
"$kvr" sim --help >"$tmp/h" 2>&1
hctx=$(sed -n 's/.*--ctx N .*(default \([0-9]*\)k tokens).*/\1/p' "$tmp/h")
hmodel=$(sed -n 's/.*--model M .*(default \([a-z0-9-]*\)).*/\1/p' "$tmp/h")
json_check "sim's help defaults (ctx ${hctx}k, model $hmodel) are what sim uses" \
    "d['ctx'] == ${hctx:-0} * 1024 and d['model'] == '$hmodel' and d['scheme'] == 'kvr'" -- sim --json
# one meaning per short option: -j is --json everywhere, -P the partition
json_check "sweep -j is --json" "d['points'] == 1" -- sweep "$tmp/ok.ini" --db "$tmp/ok2.db" -j
json_check "sim -P is --partition" "d['partition'] == [600, 424]" -- sim -g 2 -c 1024 -P 600,424 -j

## 3. A database that cannot be read correctly is refused (exit 2), never read partially.
cp "$tmp/q.db" "$tmp/nt.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DROP TABLE measurement'); c.commit()" "$tmp/nt.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('PRAGMA journal_mode').fetchone()[0])" "$tmp/nt.db" >"$tmp/mode0"
cp "$tmp/nt.db" "$tmp/nt0.db"
for c in "export --out $tmp/nt.json" "lookup --gpus 2 --ctx 1k" "search --ctx 1k --gpus 2"; do
    # shellcheck disable=SC2086
    "$kvr" $c --db "$tmp/nt.db" >/dev/null 2>"$tmp/err"; rc=$?
    [ "$rc" = 2 ] && grep -q "without its TABLE 'measurement'" "$tmp/err" && same "$tmp/nt.db" "$tmp/nt0.db"
    report $? "kvr ${c%% *}: a kvrun database missing a table exits 2, the file untouched" "exit $rc: $(cat "$tmp/err")"
done
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('PRAGMA journal_mode').fetchone()[0])" "$tmp/nt.db" >"$tmp/mode1"
same "$tmp/mode0" "$tmp/mode1"; report $? "  and its journal mode is unchanged"
# a database cut short (not whole pages, or fewer than its header counts) is refused: SQLite
# reads the missing bytes as zeros and the rows there would silently be gone
"$kvr" search --db "$tmp/big.db" --ctx 1k-256k+1k --gpus 2,4 >/dev/null 2>&1
sz=$(stat -c %s "$tmp/big.db")
for cut in 100 4096; do
    cp "$tmp/big.db" "$tmp/cut.db"; truncate -s $((sz - cut)) "$tmp/cut.db"; cp "$tmp/cut.db" "$tmp/cut0.db"
    for c in "export --format csv --out $tmp/cut.csv" "lookup --gpus 2 --ctx 1k" \
        "search --ctx 1k --gpus 2"; do
        # shellcheck disable=SC2086
        "$kvr" $c --db "$tmp/cut.db" >/dev/null 2>"$tmp/err"; rc=$?
        [ "$rc" = 2 ] && grep -q "truncated" "$tmp/err" && same "$tmp/cut.db" "$tmp/cut0.db"
        report $? "kvr ${c%% *}: a database cut by $cut bytes exits 2, untouched" "exit $rc: $(cat "$tmp/err")"
    done
done
[ ! -e "$tmp/cut.csv" ]; report $? "  and no export was written"
# a WAL that was not checkpointed, no -shm, in a read-only folder: refused, not read stale
if [ "$has_ns" = yes ]; then
    cp "$tmp/q.db" "$tmp/w.db"
    python3 - "$tmp/w.db" <<'PY'
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA wal_autocheckpoint = 0")
c.execute("UPDATE plan SET predicted_ttft_s = 2 * predicted_ttft_s")
c.commit()
os._exit(0)  # leave the WAL un-checkpointed
PY
    [ -s "$tmp/w.db-wal" ]; report $? "set-up: a database whose rows are in its WAL"
    ns_size=4m in_ns 'cp "$3/w.db" "$3/w.db-wal" "$3/mnt/" && mount -o remount,ro "$3/mnt" &&
        "$1" export --db "$3/mnt/w.db" --format csv --out - >"$3/wal.out" 2>"$3/err"; [ $? = 2 ]' \
        "$kvr" "" "$tmp"
    report $? "read-only folder, WAL without -shm: export exits 2" "$(cat "$tmp/err")"
    grep -q "write-ahead log" "$tmp/err" && [ ! -s "$tmp/wal.out" ]
    report $? "  naming the log, and prints no rows"
else
    skip "read-only folder, WAL without -shm" "no private mount namespace"
fi

## 4. Never hang: a link to /dev/zero as any text input is refused at its size cap (5 readers)
ln -s /dev/zero "$tmp/zero.ini"; ln -s /dev/zero "$tmp/zero.csv"
for c in "model show $tmp/zero.ini" "sim --machine $tmp/zero.ini" "sweep $tmp/zero.ini --db $tmp/z.db" \
    "calibrate --from $tmp/zero.csv" \
    "validate --timeline $tmp/zero.csv --model llama-7b --scheme kvr --partition 8,8"; do
    # shellcheck disable=SC2086
    timeout 60 "$kvr" $c >/dev/null 2>"$tmp/err"; rc=$?
    [ "$rc" = 2 ] && grep -q "larger than" "$tmp/err"
    report $? "kvr ${c%% *} on /dev/zero exits 2 at the size cap" "exit $rc: $(cat "$tmp/err")"
done

# --noise and --link on a link the plan never uses: an end on a GPU the plan does not run on is
# refused (sim, exec); a link between its GPUs that the scheme sends nothing on is honoured
for o in "--noise 0.5@5-6|--noise '0.5@5-6': GPU 5 is not one the plan runs on (GPUs 0,1,2,3)" \
    "--noise random:0.3@3-4|GPU 4 is not one the plan runs on" "--link 5-6=1GB/s|--link 5-6=1GB/s: GPU 5" \
    "--map 0,1,2,4 --link 2-3=1GB/s|GPU 3 is not one the plan runs on (GPUs 0,1,2,4)"; do
    # shellcheck disable=SC2086
    expect 2 "${o#*|}" "sim --gpus 4 ${o%%|*} exits 2" -- sim --gpus 4 --ctx 4k ${o%%|*}
done
if command -v mpirun >/dev/null && "$kvr" --version | grep -q "mpi=yes"; then
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
        OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_orte_tmpdir_base="$tmp" \
        timeout 300 mpirun -np 3 --oversubscribe "$kvr" exec --model "$src/data/models/tiny.ini" --ctx 60 \
        --backend ref --machine a100-nvlink --noise 0.5@2-3 --reps 1 --warmup 0 >/dev/null 2>"$tmp/err"
    rc=$?
    [ "$rc" = 2 ] && grep -q "GPU 3 is not one the plan runs on (GPUs 0,1,2)" "$tmp/err"
    report $? "exec on 3 ranks --noise 0.5@2-3 exits 2" "exit $rc: $(head -3 "$tmp/err")"
else skip "exec on 3 ranks --noise 0.5@2-3 exits 2" "no mpirun"; fi
ttft() { "$kvr" sim --gpus 4 --ctx 4k --bw 10GB/s "$@" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['ttft_s'])"; }
t0=$(ttft) t1=$(ttft --noise 0.5@0-2) t2=$(ttft --kv-forward direct) t3=$(ttft --kv-forward direct --noise 0.5@0-2)
t4=$(ttft --noise 0.5@5-6 --map 4,5,6,7) t5=$(ttft --map 4,5,6,7)
[ "$t0" = "$t1" ] && [ -n "$t2" ] && [ "$t2" != "$t3" ] && [ -n "$t5" ] && [ "$t4" != "$t5" ]
report $? "noise on 0-2 leaves the whole chain as it was, slows the direct hand-off; 5-6 is used under --map 4,5,6,7" \
    "$t0 $t1 / $t2 $t3 / $t4 $t5"

## 5. Parsers: long lines are legal and line numbers stay right; junk is refused.
long=$(seq -s, 1024 1024 80000) # 462 characters
printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nschemes = tsp\nctx = %s\n\nbogus\n' "$long" >"$tmp/long.ini"
expect 2 "long.ini:10: malformed line" "sweep: a 470-byte ctx line is legal, the next error is on line 10" \
    -- sweep "$tmp/long.ini" --db "$tmp/l.db"
pad=$(printf '%0300d' 0)
printf '[model]\n; %s\nn_layers = 2\nd_model = 10\nn_heads = 3\nd_ffn = 8\nvocab = 4\nnorm = rmsnorm\nmlp = swiglu\n' "$pad" >"$tmp/lm.ini"
expect 2 "lm.ini:5: n_heads = 3 does not divide" "model INI: after a 300-byte comment the line number is right" \
    -- model show "$tmp/lm.ini"
{ echo "; $pad"; cat "$tmp/good.ini"; echo "[gpu]"; echo "peak = 1TFLOPS"; } >"$tmp/dup.ini"
lines=$(wc -l <"$tmp/dup.ini")
expect 2 "dup.ini:$lines: key 'peak' repeats the one on line" "machine INI: a repeated key is refused at its line" \
    -- sim --machine "$tmp/dup.ini" --gpus 1 --scheme single
printf '[model]\nn_layers = 2\0\nd_model = 64\n' >"$tmp/nul.ini"
expect 2 "nul.ini:2: NUL byte" "model INI: a NUL byte is refused at its line" -- model show "$tmp/nul.ini"
printf '[sweep]\nfigure = fig1\nfigure = fig2\n' >"$tmp/dup2.ini"
expect 2 "dup2.ini:3: key 'figure' repeats the one on line 2" "sweep INI: a repeated key is refused" \
    -- sweep "$tmp/dup2.ini" --db "$tmp/e.db"
# calibrate CSV: strict numbers and known names with file:line, long lines legal (9 cases)
for bad in "llama-7b,-1024,attention,0.001" "llama-7b,99999999999999,attention,1" \
    "llama-7b,1024,attention,2.7e-05junk" "llama-7b,1024,attention,inf" \
    "llama-7b,1024,attention,nan" "llama-7b,1024,attention,0x10" "llama-7b,1024,attention, 1" \
    "llama-7b,1024,bogus-op,1" "bogus-model,1024,attention,1"; do
    { head -3 "$ops"; echo "# $pad"; echo "$bad"; } >"$tmp/b.csv"
    expect 2 "b.csv:5:" "calibrate CSV refuses '$bad' at line 5 (after a 300-byte line)" \
        -- calibrate --from "$tmp/b.csv"
done
# timeline TSV: strict numbers and kinds (6 cases), long fields legal
"$kvr" sim --gpus 2 --ctx 1k --partition 600,424 --timeline "$tmp/tl.tsv" >/dev/null
"$kvr" validate --timeline "$tmp/tl.tsv" --model llama-7b --scheme kvr --partition 600,424 \
    --machine a100-nvlink >/dev/null 2>"$tmp/err"
report $? "validate --timeline reads kvr sim's timeline" "$(cat "$tmp/err")"
zeros=$(printf '%0250d' 0)
# (a wait: validate compares every other step's order with the simulator's)
{ head -2 "$tmp/tl.tsv"; printf '0\t0\twait\twait\t0.%s1\t0.5\t0\t-1\n' "$zeros"; tail -n +3 "$tmp/tl.tsv"; } >"$tmp/tl2.tsv"
"$kvr" validate --timeline "$tmp/tl2.tsv" --model llama-7b --scheme kvr --partition 600,424 \
    --machine a100-nvlink >/dev/null 2>"$tmp/err"
report $? "a 280-byte timeline line is legal" "$(cat "$tmp/err")"
for bad in '0\t0\tcompute\tpre\t0\tinf\t0\t-1' '0\t0\tcompute\tpre\t0\t1.0abc\t0\t-1' \
    '0\t0\tcompute\tpre\t0\tnan\t0\t-1' '5\t0\tcompute\tpre\t0\t1\t0\t-1' \
    '0\t0\tcompute\tpre\t2\t1\t0\t-1' '0\t0\tcomputer\tpre\t0\t1\t0\t-1'; do
    { head -3 "$tmp/tl2.tsv"; printf "$bad\n"; } >"$tmp/tl3.tsv"
    expect 2 "tl3.tsv:4:" "timeline TSV refuses '$bad' at line 4" \
        -- validate --timeline "$tmp/tl3.tsv" --model llama-7b --scheme kvr --partition 600,424 --machine a100-nvlink
done

# a timeline of another plan: its header records the plan (scheme, partition, hand-off, ring
# pass, model's hash, tp), and validate refuses another one, naming both (7 cases)
v="validate --machine a100-nvlink --timeline"
for c in "--model llama-7b --scheme kvr --partition 512,512|partition 600,424 (its header), but --partition gives 512,512" \
    "--model llama-7b --scheme kvr --partition 600,423,1|partition 600,424 (its header), but --partition gives 600,423,1" \
    "--model llama-7b --scheme tsp --partition 512,512|scheme kvr (its header), but --scheme gives tsp" \
    "--model llama-7b --scheme kvr --partition 600,424 --kv-forward streamed|KV hand-off whole (its header), but --kv-forward gives streamed" \
    "--model falcon-7b --scheme kvr --partition 600,424|model llama-7b (hash b8a554fa8fe9d810) (its header), but --model gives falcon-7b"; do
    # shellcheck disable=SC2086
    expect 2 "${c#*|}" "validate --timeline (kvr 600,424) ${c%%|*} exits 2" -- $v "$tmp/tl.tsv" ${c%%|*}
done
"$kvr" sim --gpus 4 --ctx 1k --scheme ring --ring-pass q --timeline "$tmp/tlr.tsv" >/dev/null
expect 2 "ring pass q (its header), but --ring-pass gives kv" "validate --timeline of ring pass-Q as pass-KV exits 2" \
    -- $v "$tmp/tlr.tsv" --model llama-7b --scheme ring --partition 256,256,256,256
"$kvr" $v "$tmp/tlr.tsv" --model llama-7b --scheme ring --ring-pass q --partition 256,256,256,256 >/dev/null 2>"$tmp/err"
report $? "  and with --ring-pass q it is validated" "$(cat "$tmp/err")"
"$kvr" sim --gpus 4 --ctx 1k --scheme kvr --tp 2 --timeline "$tmp/tlt.tsv" >/dev/null
expect 2 "a layout of tensor-parallel degree 2" "validate --timeline of a --tp 2 layout exits 2" \
    -- $v "$tmp/tlt.tsv" --model llama-7b --scheme kvr --partition "$(sed -n '1s/.* partition=\([^ ]*\).*/\1/p' "$tmp/tlt.tsv")"
# the header line is read strictly; a timeline written before the plan was recorded still reads
sed '1s/ p=2/ p=2 p=3/' "$tmp/tl.tsv" >"$tmp/tlb.tsv"
expect 2 "tlb.tsv:1: plan: p is given twice" "a timeline header with a key twice exits 2" -- $v "$tmp/tlb.tsv" --model llama-7b --scheme kvr --partition 600,424
sed '1s/partition=600,424/partition=600%2C424%/' "$tmp/tl.tsv" >"$tmp/tlb.tsv"
expect 2 "tlb.tsv:1: plan: partition: '600%2C424%' has a bad %XX escape" "a timeline header with a bad escape exits 2" -- $v "$tmp/tlb.tsv" --model llama-7b --scheme kvr --partition 600,424
sed '1s/\tpeer\t/\tpeers\t/' "$tmp/tl.tsv" >"$tmp/tlb.tsv"
expect 2 "tlb.tsv:1: header: expected the columns" "a timeline header with other columns exits 2" -- $v "$tmp/tlb.tsv" --model llama-7b --scheme kvr --partition 600,424
sed '1s/\t# kvrun-plan.*//' "$tmp/tl.tsv" >"$tmp/tlo.tsv"
expect 0 "records no plan" "a timeline without the plan (written before it was recorded) is read, with a warning" \
    -- $v "$tmp/tlo.tsv" --model llama-7b --scheme kvr --partition 600,424
# a timeline from before the embedding and the head were timed (no plan, neither step) is
# compared without them: the committed 4xH100 run (it was refused at its first step, exit 2)
h4=$KVR_SOURCE_ROOT/data/measurements/h100x4-timeline-llama-7b-32k-kvr.tsv
"$kvr" validate --timeline "$h4" --model llama-7b --scheme kvr --partition 11648,8448,6784,5888 \
    --machine "$KVR_SOURCE_ROOT/data/machines/h100x4-nccl.ini" >"$tmp/h4.txt" 2>"$tmp/err" &&
    grep -q "measured 1376.479 ms, predicted 1361.367 ms, -1.10%" "$tmp/h4.txt"
report $? "validate --timeline of the committed 4xH100 run (no embed or head steps) gives its RESULTS.md's -1.10%" "$(cat "$tmp/err" "$tmp/h4.txt")"
grep -Pv "\t(embed|head)\t" "$tmp/tl.tsv" >"$tmp/tle.tsv"
expect 2 "step 0 is layer 0 compute pre, the simulator's plan has layer -1 compute embed" "  a timeline that records its plan still needs the embed and head steps" \
    -- $v "$tmp/tle.tsv" --model llama-7b --scheme kvr --partition 600,424
grep -Pv "\tembed\t" "$tmp/tlo.tsv" >"$tmp/tle.tsv"
expect 2 "the simulator's plan has layer -1 compute embed" "  as does one without the plan that has a head step but no embed" \
    -- $v "$tmp/tle.tsv" --model llama-7b --scheme kvr --partition 600,424
# and, without the plan, fewer ranks than --partition's chunks, or a peer no rank has
expect 2 "has no compute or wait of rank 2" "validate --timeline of 2 ranks with a 3-chunk --partition exits 2" \
    -- validate --timeline "$tmp/tlo.tsv" --model llama-7b --scheme kvr --partition 600,423,1 --machine a100-nvlink
grep -v "^1	" "$tmp/tl.tsv" >"$tmp/tl1.tsv"
expect 2 "has no compute or wait of rank 1" "validate --timeline missing a rank's events exits 2" \
    -- validate --timeline "$tmp/tl1.tsv" --model llama-7b --scheme kvr --partition 600,424 --machine a100-nvlink
{ head -3 "$tmp/tl2.tsv"; printf '0\t0\tsend\tkv\t0\t1\t100\t5\n'; } >"$tmp/tl3.tsv"
expect 2 "tl3.tsv:4: peer '5' is outside [-1, 1]" "timeline TSV refuses a peer outside the ranks" \
    -- validate --timeline "$tmp/tl3.tsv" --model llama-7b --scheme kvr --partition 600,424 --machine a100-nvlink

## 6. Round 2 (issue #16): each class over every command or file it applies to.
# a database path that is not a regular file is refused before SQLite opens it (a FIFO hung,
# /dev/full and /dev/null were runtime errors, exit 1), and so is another database's -wal,
# -shm or -journal (a database made in an empty -wal, exit 0, vanished at q.db's next open)
mkfifo "$tmp/db.fifo"; mkdir -p "$tmp/db.dir"
for c in "search --gpus 2 --ctx 1k" "sweep $tmp/sw1.ini" "export --out $tmp/x.json" \
    "lookup --gpus 2 --ctx 1k" "exec --model $src/data/models/tiny.ini --backend ref --ctx 8 --reps 1 --warmup 0 --allow-dirty"; do
    printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nschemes = tsp\nctx = 1k\n' >"$tmp/sw1.ini"
    for d in "$tmp/db.fifo|is a FIFO" "/dev/null|is a device" "/dev/full|is a device" "$tmp/db.dir|is a folder" \
        "$tmp/qs.db-wal|is the wal file of the database" "$tmp/qs.db-journal|is the journal file of the database"; do
        [ "${d%%|*}" = "$tmp/qs.db-journal" ] && : >"$tmp/qs.db-journal"
        # shellcheck disable=SC2086
        timeout 60 "$kvr" ${c%% *} --db "${d%%|*}" ${c#* } >/dev/null 2>"$tmp/err" </dev/null
        rc=$?
        [ "$rc" = 2 ] && grep -qF "${d#*|}" "$tmp/err"
        report $? "${c%% *} --db ${d%%|*} exits 2 (${d#*|})" "exit $rc: $(cat "$tmp/err")"
    done
done
rm -f "$tmp/qs.db-journal"
expect 2 "'-' (standard output) cannot hold a database" "search --db - exits 2 (it made a database file named '-')" \
    -- search --db - --gpus 2 --ctx 1k
[ ! -e ./- ]; report $? "  and no file named '-' is made"
# an output naming standard output other than '-' where the command prints its report there is
# refused (sim --timeline /dev/stdout mixed TSV into the table); '-' has standard output alone
# (the report goes to stderr), except beside --json (sim --json --timeline - printed TSV into
# the JSON); export (its report on stderr) writes there either way
for c in "sim --gpus 2 --ctx 1k --timeline /dev/stdout" "calibrate --from $ops --save /dev/stdout" \
    "exec --model $src/data/models/tiny.ini --backend ref --ctx 8 --reps 1 --warmup 0 --dump-logits /dev/stdout"; do
    # shellcheck disable=SC2086
    expect 2 "is standard output, which carries the command's report" "$c exits 2" -- $c
done
expect 2 "standard output would carry it and --json's result" "sim --json --timeline - exits 2" \
    -- sim --gpus 2 --ctx 1k --json --timeline -
"$kvr" calibrate --from "$ops" --out - >"$tmp/cal-out.ini" 2>"$tmp/err" &&
    "$kvr" sim --machine "$tmp/cal-out.ini" --gpus 1 --ctx 1k >/dev/null 2>>"$tmp/err"
report $? "calibrate --out - > F: F is the profile alone, and it loads" "$(cat "$tmp/err")"
"$kvr" exec --model "$src/data/models/tiny.ini" --backend ref --ctx 8 --reps 1 --warmup 0 --dump-kv - >"$tmp/kv.bin" 2>"$tmp/err" &&
    "$kvr" exec --model "$src/data/models/tiny.ini" --backend ref --ctx 8 --reps 1 --warmup 0 --dump-kv "$tmp/kv2.bin" >/dev/null 2>>"$tmp/err" &&
    cmp -s "$tmp/kv.bin" "$tmp/kv2.bin"
report $? "exec --dump-kv - > F: F is the dump alone, the file's bytes" "$(cat "$tmp/err")"
"$kvr" sim --gpus 2 --ctx 1k --timeline "$tmp/so.tsv" >"$tmp/so.tsv" 2>"$tmp/err"
rc=$?; [ "$rc" = 2 ] && grep -q "is standard output" "$tmp/err"
report $? "sim --timeline F > F (the file stdout is) exits 2" "exit $rc: $(cat "$tmp/err")"
"$kvr" sim --gpus 2 --ctx 1k --timeline /dev/null >/dev/null 2>"$tmp/err"
report $? "sim --timeline /dev/null > /dev/null is taken" "$(cat "$tmp/err")"
"$kvr" export --db "$tmp/q.db" --out - 2>"$tmp/err" | python3 -c "import json, sys; json.load(sys.stdin)"
report $? "export --out - still writes the table alone on stdout" "$(cat "$tmp/err")"
expect 2 "--json prints the summary on stdout" "export --json --out /dev/stdout exits 2" \
    -- export --db "$tmp/q.db" --json --out /dev/stdout
# an output path ending in '/' names a folder: refused before any work (it was exit 1 after it)
for c in "export --db $tmp/q.db --out $tmp/n.json/" "sim --gpus 2 --ctx 1k --timeline $tmp/n.tsv/" \
    "calibrate --from $ops --out $tmp/n.ini/"; do
    # shellcheck disable=SC2086
    expect 2 "ends in '/': a folder's name, not a file's" "$c exits 2" -- $c
done
# a link spec longer than its buffer was cut: --link 0-000...012 (GPU 12 of 8) read as link 0-1
z=$(printf '%060d' 0)
expect 2 "is longer than 63 characters" "sim --link 0-${z}12=1GB/s exits 2 (was link 0-1)" -- sim --gpus 4 --ctx 4k --link "0-${z}12=1GB/s"
expect 2 "is longer than 63 characters" "sim --noise 0.5@0-${z}12 exits 2" -- sim --gpus 4 --ctx 4k --noise "0.5@0-${z}12"
# export --model-hash/--machine-hash: a value that is no stored hash is named (it answered
# "no plan rows match the filters", upper case included)
for h in B8A554FA8FE9D810 12 nan b8a554fa8fe9d8100; do
    expect 2 "--model-hash: '$h' is not a definition's hash" "export --model-hash $h exits 2 naming it" \
        -- export --db "$tmp/q.db" --out - --model-hash "$h"
done
expect 2 "--machine-hash: 'x' is not a definition's hash" "export --machine-hash x exits 2 naming it" \
    -- export --db "$tmp/q.db" --out - --machine-hash x

# a sweep axis value that no scheme of the file takes is refused at its line (kv_forward =
# streamed with tsp and kvr-s only, tp = 2 with single: each collapsed into the points without
# it, exit 0)
for c in "tsp, kvr-s|kv_forward = streamed|kv_forward = streamed reaches no point" \
    "single|tp = none, 2|tp = 2 reaches no point"; do
    sch=${c%%|*} rest=${c#*|}
    printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 4\nschemes = %s\nctx = 1k\n%s\n' \
        "$sch" "${rest%%|*}" >"$tmp/reach.ini"
    expect 2 "reach.ini:9: ${rest#*|}" "sweep: schemes = $sch with ${rest%%|*} exits 2 at its line" \
        -- sweep "$tmp/reach.ini" --db "$tmp/reach.db"
done
[ ! -e "$tmp/reach.db" ]; report $? "  and no database is made"
printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 4\nschemes = tsp, kvr-even\nctx = 1k\nkv_forward = whole, direct\n' >"$tmp/reach.ini"
"$kvr" sweep "$tmp/reach.ini" --db "$tmp/reach.db" --json >"$tmp/out" 2>"$tmp/err"
report $? "  kv_forward = whole, direct with kvr-even beside tsp still runs" "$(cat "$tmp/err")"
# seeds and trials draw the noise: with every noise value none they reach no point (seeds =
# 0-3 ran one point, exit 0), as sim refuses --seed and --trials without --noise
for c in "seeds = 0-3|noise = none|10|seeds" "seeds = 1|bw = profile|10|seeds" "trials = 4|[sweep]|10|trials"; do
    printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nschemes = tsp\nctx = 1k\n%s\n%s\n' \
        "$(echo "$c" | cut -d'|' -f2)" "${c%%|*}" >"$tmp/sn.ini"
    expect 2 "sn.ini:$(echo "$c" | cut -d'|' -f3): ${c##*|} reaches no point: it applies with noise only" \
        "sweep: ${c%%|*} beside $(echo "$c" | cut -d'|' -f2) exits 2 at its line" -- sweep "$tmp/sn.ini" --db "$tmp/sn.db"
done
[ ! -e "$tmp/sn.db" ]; report $? "  and no database is made"
printf '[sweep]\nfigure = fig1\ntrials = 2\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nschemes = tsp\nctx = 1k\nnoise = none; random:0.2\nseeds = 0-1\n' >"$tmp/sn.ini"
"$kvr" sweep "$tmp/sn.ini" --db "$tmp/sn.db" --json >"$tmp/out" 2>"$tmp/err" &&
    python3 -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))['points'] == 3 else 1)" "$tmp/out"
report $? "  seeds = 0-1 and trials = 2 beside noise = none; random:0.2: 3 points (none collapses)" "$(cat "$tmp/out" "$tmp/err")"

# a plan row whose partition is not one of its context (chunks not summing to ctx, an empty
# chunk) or whose TTFT is no time is refused by every reader: lookup served it (interpolated,
# exit 0; exact, exit 1 "no valid partition") and export wrote it (exit 0)
for v in "100;100|sums to 200 tokens, not its ctx 1024" "1024;0|chunk 1 of 0 tokens" \
    "512;512|neg|predicted_ttft_s -1 is not a time"; do
    cp "$tmp/q.db" "$tmp/pt.db"
    part=${v%%|*} rest=${v#*|} ttft=0.04
    case $rest in neg*) ttft=-1 part=512\;512 rest=${rest#neg|} ;; esac
    python3 -c "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('UPDATE plan SET partition_tokens = ?, predicted_ttft_s = ? WHERE ctx_tokens = 1024', (sys.argv[2], float(sys.argv[3]))); c.commit()" "$tmp/pt.db" "$part" "$ttft"
    for c in "lookup --gpus 2 --ctx 1k" "lookup --gpus 2 --ctx 1536" "export --out $tmp/pt.json"; do
        # shellcheck disable=SC2086
        expect 2 "plan of llama-7b at p = 2, ctx 1024: " "$c of a row $part (TTFT $ttft) exits 2" -- ${c%% *} --db "$tmp/pt.db" ${c#* }
        grep -qF "$rest" "$tmp/err" || report 1 "  naming it: $rest" "$(cat "$tmp/err")"
    done
done
[ ! -e "$tmp/pt.json" ]; report $? "  and no export is written"

# a sweep point of an edited profile is run again, its new row replacing the old one (it was
# "already done" with the old definition's TTFT); a key from before the hash likewise
mkdir -p "$tmp/swd"; cp "$src/data/machines/h100x4-nccl.ini" "$tmp/swd/m.ini"
printf '[sweep]\nfigure = fig1\nname = s\n[axes]\nmodels = llama-7b\nmachines = m.ini\ngpus = 2\nschemes = tsp\nctx = 1k\n' >"$tmp/swd/s.ini"
"$kvr" sweep "$tmp/swd/s.ini" --db "$tmp/swd/s.db" -q >/dev/null 2>&1
t0=$(sql "$tmp/swd/s.db" "SELECT ttft_s FROM sweep_point")
sed -i 's/^peak = .*/peak = 100TFLOPS/' "$tmp/swd/m.ini"
"$kvr" sweep "$tmp/swd/s.ini" --db "$tmp/swd/s.db" --json >"$tmp/out" 2>"$tmp/err"
t1=$(sql "$tmp/swd/s.db" "SELECT ttft_s FROM sweep_point") rows=$(sql "$tmp/swd/s.db" "SELECT count(*) FROM sweep_point")
[ "$rows" = 1 ] && python3 -c "import sys; sys.exit(0 if float(sys.argv[2]) > 5 * float(sys.argv[1]) else 1)" "$t0" "$t1"
report $? "sweep after its profile was edited: the point run again, one row, the new TTFT" "$rows rows, $t0 -> $t1: $(cat "$tmp/err")"
python3 -c "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE sweep_point SET point_key = substr(point_key, 1, instr(point_key, '|def=') - 1), ttft_s = 1\"); c.commit()" "$tmp/swd/s.db"
"$kvr" sweep "$tmp/swd/s.ini" --db "$tmp/swd/s.db" -q >/dev/null 2>"$tmp/err"
[ "$(sql "$tmp/swd/s.db" "SELECT count(*) || ' ' || (ttft_s = $t1) FROM sweep_point")" = "1 1" ]
report $? "  a row of a key without the hash is replaced too" "$(sql "$tmp/swd/s.db" "SELECT group_concat(point_key || '=' || ttft_s) FROM sweep_point") $(cat "$tmp/err")"

# validate --timeline reads every transfer of a timeline (it kept the first 4096 sends and
# waits, and the rates of more waited pairs overflowed a 4096-entry buffer): 16 ring ranks at
# 1 GB/s make 7680 sends; the count and the median rate against a brute-force oracle
part16=$(python3 -c "print(','.join(['2048'] * 16))")
"$kvr" sim --machine "$src/data/machines/a100-1x64.ini" --gpus 16 --ctx 32k --bw 1GB/s --scheme ring \
    --timeline "$tmp/ring16.tsv" >/dev/null 2>"$tmp/err"
want=$(python3 - "$tmp/ring16.tsv" <<'PY'
import sys, statistics
S, W = [], []
for i, l in enumerate(open(sys.argv[1])):
    f = l.rstrip('\n').split('\t')
    if i == 0: continue
    if f[2] == 'send': S.append((int(f[1]), int(f[7]), float(f[4]), float(f[6])))
    if f[2] == 'wait': W.append((int(f[0]), int(f[1]), float(f[4]), float(f[5])))
R = [b / (w1 - t0) for (la, peer, t0, b) in S for (wr, wl, w0, w1) in W
     if wr == peer and wl == la and w1 - w0 > 1e-4 and w1 > t0]
print(len(S), len(R), statistics.median(R))
PY
)
got=$("$kvr" validate --timeline "$tmp/ring16.tsv" --model llama-7b --scheme ring --partition "$part16" \
    --machine "$src/data/machines/a100-1x64.ini" --json 2>>"$tmp/err" | python3 -c "import json, sys; d = json.load(sys.stdin); print(d['waited_transfers'], d['waited_transfer_Bps'])")
w_sends=${want%% *} w_rest=${want#* }
[ "${w_sends:-0}" -gt 4096 ] && [ -n "$got" ] && python3 -c "import sys; a = sys.argv[1].split(); b = sys.argv[2].split(); sys.exit(0 if int(a[0]) == int(b[0]) and abs(float(a[1]) / float(b[1]) - 1) < 1e-9 else 1)" "$w_rest" "$got"
report $? "validate --timeline of 16 ring ranks ($w_sends sends): every waited transfer counted, the median rate exact" \
    "want $w_rest, got $got: $(cat "$tmp/err")"

# SIGTERM, SIGINT or SIGHUP while an output is being written: the temp file is removed, the
# target never made, and the exit status is the signal's (a killed writer left .NAME.tmp-*)
mkdir -p "$tmp/sig"
for sg in TERM INT HUP; do
    # a background job starts with SIGINT ignored (and stays so): restore its default first
    python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
        "$kvr" sim --model llama-2-70b --machine "$src/data/machines/a100-1x64.ini" --gpus 64 --ctx 64k \
        --scheme ring --timeline "$tmp/sig/big.tsv" >/dev/null 2>&1 &
    pid=$! seen=no
    for _ in $(seq 1500); do
        ls "$tmp/sig"/.big.tsv.tmp-* >/dev/null 2>&1 && { kill -"$sg" $pid; seen=yes; break; }
        kill -0 $pid 2>/dev/null || break
        sleep 0.02
    done
    wait $pid; rc=$?
    if [ $seen = no ]; then skip "SIG$sg during a write" "the write ended before its temp file was seen"; continue; fi
    left=$(ls -A "$tmp/sig")
    if [ "$rc" -le 128 ] && [ "$left" = big.tsv ]; then # renamed and exited between ls and kill
        skip "SIG$sg during a write" "the write ended before the signal came"
        rm -rf "$tmp/sig"/* "$tmp/sig"/.[!.]*
        continue
    fi
    [ "$rc" -gt 128 ] && [ -z "$left" ]
    report $? "SIG$sg during sim --timeline's write: exit $rc (the signal's), no temp file, no target" "left: $left"
    rm -rf "$tmp/sig"/* "$tmp/sig"/.[!.]*
done
# SIGKILL cannot be caught: the killed writer's temp stays, and the next write of the same
# target removes it (nobody holds its lock); a look-alike and another target's temp stay
"$kvr" sim --model llama-2-70b --machine "$src/data/machines/a100-1x64.ini" --gpus 64 --ctx 64k \
    --scheme ring --timeline "$tmp/sig/big.tsv" >/dev/null 2>&1 &
pid=$! seen=no
for _ in $(seq 1500); do
    ls "$tmp/sig"/.big.tsv.tmp-* >/dev/null 2>&1 && { kill -KILL $pid; seen=yes; break; }
    kill -0 $pid 2>/dev/null || break
    sleep 0.02
done
wait $pid; rc=$?
left=$(cd "$tmp/sig" && ls -A | grep '^\.big\.tsv\.tmp-')
if [ $seen = no ] || [ "$rc" != 137 ] || [ -z "$left" ]; then
    skip "SIGKILL during a write" "the write ended before the kill (exit $rc)"
else
    : >"$tmp/sig/.big.tsv.tmp-old" && : >"$tmp/sig/.other.tsv.tmp-AbC123"
    "$kvr" sim --model "$src/data/models/tiny.ini" --machine "$src/data/machines/a100-1x64.ini" \
        --gpus 2 --ctx 1k --scheme ring --timeline "$tmp/sig/big.tsv" >/dev/null 2>"$tmp/err"
    rc=$?
    now=$(ls -A "$tmp/sig" | tr '\n' ' ')
    [ $rc = 0 ] && [ ! -e "$tmp/sig/$left" ] && [ -s "$tmp/sig/big.tsv" ] &&
        [ "$now" = ".big.tsv.tmp-old .other.tsv.tmp-AbC123 big.tsv " ]
    report $? "SIGKILL during sim --timeline's write leaves $left; the next sim --timeline to it removes it, only it" \
        "exit $rc, left: $now $(cat "$tmp/err")"
fi
rm -rf "$tmp/sig"

echo "1..$n"
[ "$failed" = 0 ]
