#!/bin/bash
# The reliability audit of issue #16 as a table of command lines, each with the exit code it
# must give: every numeric option of every command with 0, negative, huge, NaN, inf, hex,
# trailing junk, blank-led and empty values (audit/numeric.list: COMMAND|OPTION|VALUES TAKEN),
# every writer and reader against folders, devices, FIFOs, symlinks, truncated, empty, binary
# and foreign files and its own inputs (audit/files.cases), and standard output on /dev/full
# for every command that prints (audit/stdout.cases). A case line is NAME|CODE|ARGS, ARGS
# evaluated with $F the fixture folder; a code of 124 or more (a hang, a crash) always fails.
# Usage: test_audit.sh PATH/TO/kvr   (TAP on stdout)
kvr=$(realpath "$1") n=0 failed=0
src=$(realpath "${KVR_SOURCE_ROOT:-$(dirname "$0")/..}")
cases=$src/tests/audit
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-test-audit-XXXXXX") || exit 1
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
F=$tmp/fx
export F

fixtures() {
    mkdir -p "$F/dir" "$F/dir.ini"
    "$kvr" search --db "$F/q.db" --ctx 1k-8k+1k --gpus 2 -q >/dev/null 2>&1 || return 1
    "$kvr" export --db "$F/q.db" --out "$F/good.json" 2>/dev/null || return 1
    "$kvr" export --db "$F/q.db" --format csv --out "$F/good.csv" 2>/dev/null || return 1
    cp "$src/data/calibration/h100-ops.csv" "$F/ops.csv"
    "$kvr" calibrate --from "$F/ops.csv" --out "$F/good.ini" >/dev/null 2>&1 || return 1
    cp "$src/data/models/tiny.ini" "$F/tiny.ini"
    cp "$src/data/models/falcon-7b.ini" "$F/m.ini"
    printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nschemes = tsp\nctx = 1k,2k\n' >"$F/sw.ini"
    "$kvr" sim --gpus 2 --ctx 1k --partition 600,424 --timeline "$F/tl.tsv" >/dev/null 2>&1 || return 1
    printf '1\n2\n3\n' >"$F/tok.txt"
    printf '1\n99999\n3\n' >"$F/tokbig.txt"
    printf '1\n-2\n3\n' >"$F/tokneg.txt"
    : >"$F/empty"; : >"$F/empty.ini"; : >"$F/empty.json"; : >"$F/empty.safetensors"
    head -c 3000 /dev/urandom | tr '\0' '\1' >"$F/binary"; printf '\0' >>"$F/binary"
    for e in ini json safetensors; do cp "$F/binary" "$F/binary.$e"; done
    head -c 100 "$F/q.db" >"$F/trunc.db"; head -c 50 "$F/good.csv" >"$F/trunc.csv"
    head -c 200 "$src/tests/golden/hf_configs/deepseek-v2-lite.json" >"$F/trunc-config.json"
    ln -s /dev/zero "$F/zero.ini"; ln -s /dev/zero "$F/zero.json"
    ln -s "$F/q.db" "$F/link.db"; ln -s "$F/nowhere.json" "$F/dangle.json"
}

# run NAME CODE ARGS: one case
run() {
    name=$1 want=$2 args=$3
    (cd "$tmp" && eval "timeout 60 \"$kvr\" $args" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null)
    rc=$?
    n=$((n + 1))
    if [ "$rc" = "$want" ] && [ "$rc" -lt 124 ]; then echo "ok $n - $name (exit $rc)"; else
        failed=$((failed + 1))
        echo "not ok $n - $name: exit $rc, want $want"
        head -2 "$tmp/stderr" | sed 's/^/#   /'
    fi
}

if ! fixtures; then echo "1..0 # SKIP the fixtures could not be made"; exit 1; fi
vals=(0 -1 99999999999999999999999 nan inf 0x10 12junk "" " 12" 1e400)
while IFS='|' read -r base opt skip; do
    for v in "${vals[@]}"; do
        taken=no # VALUES TAKEN: blank-separated words, compared whole (the empty value is never one)
        for w in $skip; do [ "$w" = "$v" ] && taken=yes; done
        [ $taken = yes ] && continue
        run "$base $opt '$v'" 2 "$base $opt $(printf '%q' "$v")"
    done
done <"$cases/numeric.list"
for f in files stdout; do
    while IFS='|' read -r name want args; do
        [ -z "$name" ] || [ "${name#\#}" != "$name" ] && continue
        run "$name" "$want" "$args"
    done <"$cases/$f.cases"
done
echo "1..$n"
[ "$failed" = 0 ]
