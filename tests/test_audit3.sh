#!/bin/bash
# Round 3 of the reliability audit (#16's classes, on the options and inputs added since round
# 2): a table of command lines with the exit code each must give (audit/round3.cases, the
# fixtures made by audit/mk_inputs.py), then the checks a table cannot make (nothing created by
# a command refused, a read-only folder). A code of 124 or more (a hang, a crash) always fails.
# Usage: test_audit3.sh PATH/TO/kvr PATH/TO/kvr-lookup-example   (TAP on stdout)
kvr=$(realpath "$1") example=$(realpath "$2") n=0 failed=0
src=$(realpath "${KVR_SOURCE_ROOT:-$(dirname "$0")/..}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-test-audit3-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
F=$tmp/fx
E="exec --model $F/tiny.ini --backend ref --reps 1 --warmup 0"
mkdir -p "$F"

fixtures() {
    "$kvr" search --db "$F/q.db" --ctx 1k-4k+1k --gpus 2 -q >/dev/null 2>&1 || return 1
    "$kvr" sim --gpus 2 --ctx 1k --partition 600,424 --timeline "$F/tl.tsv" >/dev/null 2>&1 || return 1
    cp "$src/data/models/tiny.ini" "$F/tiny.ini"
    mkfifo "$F/fifo.txt" "$F/fifo.ini" "$F/fifo.json" "$F/fifo.safetensors" || return 1
    python3 "$src/tests/audit/mk_inputs.py" "$src" "$F"
}

report() { # OK NAME [DETAIL]
    n=$((n + 1))
    if [ "$1" = 0 ]; then echo "ok $n - $2"; else
        failed=$((failed + 1))
        echo "not ok $n - $2"
        [ -n "$3" ] && printf '%s\n' "$3" | head -3 | sed 's/^/#   /'
    fi
}

run() { # NAME CODE ARGS
    local prog=$kvr args=$3
    case $args in LIB\ *) prog=$example args=${args#LIB } ;; esac
    (cd "$tmp" && eval "timeout 60 \"$prog\" $args" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null)
    local rc=$?
    [ "$rc" = "$2" ] && [ "$rc" -lt 124 ]
    report $? "$1 (exit $rc, want $2)" "$(cat "$tmp/stderr")"
}

if ! fixtures; then echo "1..0 # SKIP the fixtures could not be made"; exit 1; fi
while IFS='|' read -r name want args; do
    [ -z "$name" ] || [ "${name#\#}" != "$name" ] && continue
    run "$name" "$want" "$args"
done <"$src/tests/audit/round3.cases"

# a refused command leaves nothing behind
for db in n1 n2 d1 d3 s1 s3 dbdir dbdir2 dbdir3 dbdir4; do
    [ ! -e "$F/$db.db" ]
    report $? "refused: $db.db was not created"
done
# seeds s and s + 2^32 drew the same noise: the largest seed still differs from seed 0
"$kvr" sim --gpus 4 --ctx 1k --noise random:0.3 --trials 3 --seed 4294967295 --json >"$tmp/a" 2>&1 &&
    "$kvr" sim --gpus 4 --ctx 1k --noise random:0.3 --trials 3 --seed 0 --json >"$tmp/b" 2>&1 &&
    ! cmp -s "$tmp/a" "$tmp/b"
report $? "seed 4294967295 and seed 0 draw different noise"
# kvr plot's own files in --out: a link planted there was written through (fig14's data over
# its measurements database, exit 0); a link to a picture still gets the picture
if command -v gnuplot >/dev/null; then
    printf 'not a picture\n' >"$tmp/victim"
    mkdir -p "$tmp/p1/data" "$tmp/p2" "$tmp/p3" "$tmp/p4" "$tmp/elsewhere"
    ln -s "$tmp/victim" "$tmp/p1/data/fig14-0.tsv"
    "$kvr" plot fig14 --out "$tmp/p1" >/dev/null 2>&1
    [ $? = 2 ] && [ "$(cat "$tmp/victim")" = "not a picture" ]
    report $? "plot: a symlink in DIR/data refused (exit 2), its target untouched"
    ln -s "$tmp/elsewhere" "$tmp/p2/data"
    "$kvr" plot fig14 --out "$tmp/p2" >/dev/null 2>&1
    [ $? = 2 ] && [ -z "$(ls -A "$tmp/elsewhere")" ]
    report $? "plot: DIR/data a symlink to another folder refused, nothing written there"
    ln -s "$tmp/victim" "$tmp/p3/fig14.png"
    "$kvr" plot fig14 --out "$tmp/p3" >/dev/null 2>&1
    [ $? = 2 ] && [ "$(cat "$tmp/victim")" = "not a picture" ]
    report $? "plot: DIR/fig14.png a symlink to a file that is not a picture refused"
    "$kvr" plot fig14 --out "$tmp/p4" >/dev/null 2>&1 && cp "$tmp/p4/fig14.png" "$tmp/pic.png" &&
        rm "$tmp/p4/fig14.png" && ln -s "$tmp/pic.png" "$tmp/p4/fig14.png" &&
        "$kvr" plot fig14 --out "$tmp/p4" >/dev/null 2>&1 && [ -L "$tmp/p4/fig14.png" ]
    report $? "plot: DIR/fig14.png a symlink to a picture gets the picture (the link stays)"
else
    for i in 1 2 3 4; do echo "ok $((n += 1)) # SKIP no gnuplot"; done
fi
# a read-only folder (a private mount namespace; skipped where it is not allowed)
mkdir -p "$tmp/ro"
if unshare -m true 2>/dev/null; then
    unshare -m bash -c 'mount --bind -o ro "$1" "$1" || exit 77
        "$2" sim --gpus 2 --ctx 1k --timeline "$1/t.json" >/dev/null 2>&1; a=$?
        "$2" '"$E"' --dump-kv "$1/kv.bin" >/dev/null 2>&1; b=$?
        "$2" search --db "$1/s.db" --gpus 2 --ctx 1k >/dev/null 2>&1; c=$?
        [ $a = 2 ] && [ $b = 2 ] && [ $c = 2 ] && [ -z "$(ls -A "$1")" ]' _ "$tmp/ro" "$kvr"
    rc=$?
    if [ $rc = 77 ]; then echo "ok $((n += 1)) # SKIP no bind mount"; else
        report $rc "a read-only folder: timeline, dump and database refused (exit 2), nothing made"
    fi
else
    echo "ok $((n += 1)) # SKIP no private mount namespace"
fi
echo "1..$n"
[ "$failed" = 0 ]
