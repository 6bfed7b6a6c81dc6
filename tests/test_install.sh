#!/bin/sh
# meson install into a temporary prefix, moved elsewhere (the tree is relocatable), then the
# main job (every sweep file, every figure) and kvr validate from the installed tree alone: no
# source or build path in the program, and (where `unshare -m` may mount) the source and build
# folders hidden under empty tmpfs mounts while it runs, then kvr paper, export and lookup on its
# table. Also: the man page renders; the bash completion offers each command's option table,
# sub-commands, help topics, figures and files; the relocatable .pc file (with and without
# --define-prefix) builds consumers of libkvr_lookup (C11, static, C++17 with a c-header
# export); a program without a data directory, or a data directory without a default file,
# refuses with exit 2 naming what it looked for; bench search reads its profiles from there.
# Usage: test_install.sh MESON BUILD_DIR   (TAP on stdout)
meson=$1 build=$(realpath "$2")
n=0 failed=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/tap_helpers.sh"
src=$(realpath "${KVR_SOURCE_ROOT:-$(dirname "$0")/..}")

"$meson" install -C "$build" --no-rebuild --quiet --destdir "$tmp/stage" >"$tmp/install.log" 2>&1
report $? "meson install --destdir" "$(tail -n 5 "$tmp/install.log")"
stage_prefix=$(find "$tmp/stage" -path '*/bin/kvr' | head -n 1 | sed 's|/bin/kvr$||')
P=$tmp/moved
mv "$stage_prefix" "$P"
kvr=$P/bin/kvr
share=$P/share/kvrun
[ -x "$kvr" ] && [ -f "$share/data/machines/h100-calibrated.ini" ] && [ -f "$share/data/models/tiny.ini" ] &&
    [ -f "$share/data/calibration/h100-ops.csv" ] && [ -f "$share/plots/style.gp" ] &&
    [ -f "$share/experiments/sweeps/fig1.ini" ] && [ -f "$share/partition/kvrun-lookup-table-2.schema.json" ]
report $? "installed: kvr, share/kvrun/{data,plots,experiments/sweeps,partition}" "$(find "$P" -maxdepth 3 | head -n 30)"
# (nvcc's fat binaries name their .cu sources; no path to data, plots, sweeps or build/share)
! grep -a -q -e "$src/data" -e "$src/plots" -e "$src/experiments" -e "$build/share" "$kvr"
report $? "the installed kvr holds no path into the source's data, plots or sweeps" "$(grep -a -o -e "$src/[a-z]*" "$kvr" | sort -u | head -n 5)"

# the main job, from the installed tree only
cat >"$tmp/job.sh" <<JOB
set -e
cd "$tmp/run"
"$kvr" sweep "$share"/experiments/sweeps/*.ini --db out/kvrun.db
"$kvr" plot all --db out/kvrun.db --out out/figures
"$kvr" validate --json >validate.json
"$kvr" paper --db out/kvrun.db >paper.txt
"$kvr" export --db out/kvrun.db --format json --out table.json
"$kvr" lookup --db out/kvrun.db --model llama-7b --machine a100-nvlink --gpus 4 --ctx 12.5k --json >lookup.json
JOB
mkdir -p "$tmp/run/out/figures"
hidden=no
hide="mount -t tmpfs none '$build' && mount -t tmpfs none '$src'"
if unshare -m sh -c "$hide && [ -z \"\$(ls -A '$src')\" ]" 2>/dev/null; then
    hidden=yes
    env -u KVR_DATADIR unshare -m sh -c "$hide && sh '$tmp/job.sh'" >"$tmp/job.log" 2>&1
else
    env -u KVR_DATADIR sh "$tmp/job.sh" >"$tmp/job.log" 2>&1
fi
rc=$?
pngs=$(ls "$tmp/run/out/figures"/*.png 2>/dev/null | wc -l)
want=$(ls "$src"/plots/fig*.gp | wc -l)
[ $rc = 0 ] && [ "$pngs" = "$want" ]
report $? "main job (every sweep, every figure) from the moved install, source and build hidden: $hidden" "exit $rc, $pngs PNGs: $(tail -n 8 "$tmp/job.log")"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['points'] == 16 and d['mape_pct'] < 10 else 1)" "$tmp/run/validate.json" 2>"$tmp/err"
report $? "  kvr validate reads its committed data from share/kvrun" "$(head -c 300 "$tmp/run/validate.json") $(cat "$tmp/err")"
python3 -c "
import json, sys
t = json.load(open(sys.argv[1])); a = json.load(open(sys.argv[2]))
ok = t['format_version'] == 2 and len(t['rows']) > 100 and a['ctx_tokens'] == 12800 and sum(a['partition_tokens']) == 12800
sys.exit(0 if ok and 'Llama-7B' in open(sys.argv[3]).read() else 1)" "$tmp/run/table.json" "$tmp/run/lookup.json" "$tmp/run/paper.txt" 2>"$tmp/err"
report $? "  kvr paper, export and lookup on the job's table, from the installed tree" "$(cat "$tmp/err")"

# no data directory: refused, naming where it looked; KVR_DATADIR points elsewhere
mkdir -p "$tmp/lonely/bin" && cp "$kvr" "$tmp/lonely/bin/kvr"
env -u KVR_DATADIR "$tmp/lonely/bin/kvr" validate --json >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "no kvrun data directory" "$tmp/err"
report $? "a program without a data directory exits 2 and says so" "exit $rc: $(cat "$tmp/err")"
KVR_DATADIR=$share "$tmp/lonely/bin/kvr" validate --json >"$tmp/out" 2>"$tmp/err"
report $? "  KVR_DATADIR names one" "$(cat "$tmp/err")"
KVR_DATADIR=$tmp/nowhere "$tmp/lonely/bin/kvr" validate >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "KVR_DATADIR: '$tmp/nowhere'" "$tmp/err"
report $? "  a KVR_DATADIR that does not exist exits 2" "exit $rc: $(cat "$tmp/err")"

# a data directory without the defaults: each refusal says which default, from where
mkdir -p "$tmp/empty"
KVR_DATADIR=$tmp/empty "$kvr" validate >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "\-\-db not given, and its default data/measurements/h100.sqlite is not in the data directory (named by KVR_DATADIR): '$tmp/empty/" "$tmp/err"
report $? "  validate in an empty KVR_DATADIR: exit 2 naming the default it looked for" "exit $rc: $(cat "$tmp/err")"
KVR_DATADIR=$tmp/empty "$kvr" plot fig1 --db "$tmp/run/out/kvrun.db" --out "$tmp/empty" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "\-\-scripts not given, and its default plots/style.gp is not in the data directory" "$tmp/err"
report $? "  plot in an empty KVR_DATADIR: exit 2 naming --scripts' default" "exit $rc: $(cat "$tmp/err")"
# kvr bench search scale reads its cluster profiles from the data directory, not the working
# folder (run in the source root, which has them: it used to run the whole benchmark)
(cd "$src" && KVR_DATADIR=$tmp/empty timeout 60 "$kvr" bench search scale --json >"$tmp/out" 2>"$tmp/err"); rc=$?
[ $rc = 2 ] && grep -q "the cluster profile data/machines/a100-1x64.ini is not in the data directory" "$tmp/err"
report $? "  bench search scale: its profiles from the data directory" "exit $rc: $(cat "$tmp/err")"
rm -f "$tmp/p.db"; "$kvr" search --model llama-7b --gpus 2 --ctx 1k --db "$tmp/p.db" -q >/dev/null 2>&1
"$kvr" paper --db "$tmp/p.db" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -qF "run kvr sweep $share/experiments/sweeps/paper.ini --db" "$tmp/err"
report $? "  paper without its sweep names the installed sweep file" "exit $rc: $(cat "$tmp/err")"

# man page and bash completion
man_page=$P/share/man/man1/kvr.1
MANWIDTH=100 man -l "$man_page" >"$tmp/man.txt" 2>"$tmp/err" && grep -q "kvr search --db FILE" "$tmp/man.txt" &&
    grep -q -- "--granularity" "$tmp/man.txt" && grep -q "KVR_DATADIR" "$tmp/man.txt" &&
    grep -q "KVR_LOG" "$tmp/man.txt" && grep -q "3 *a plan that does not fit" "$tmp/man.txt"
report $? "man -l kvr.1 renders every command's help" "$(cat "$tmp/err"; head -n 5 "$tmp/man.txt")"
comp=$P/share/bash-completion/completions/kvr
cat >"$tmp/comp.sh" <<'COMP'
. "$1"; kvr=$2
words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _kvr; printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort -u; }
# each command's and sub-command's options: the lines of its option table (kvr_opt_help), no more
cmds=$("$kvr" help | sed -n '/^commands:/,/^$/s/^  \([a-z]*\) .*/\1/p')
for c in $cmds "model list" "model show" "bench sim" "bench search" "bench attention" "bench comm"; do
    case $c in model | bench) continue ;; esac
    want=$("$kvr" $c --help | grep -oE '^  (-[A-Za-z0-9], |    )--[a-z][a-z0-9-]*' | grep -oE -- '--[a-z0-9-]+' | sort -u)
    got=$(words kvr $c --)
    [ "$got" = "$want" ] || echo "kvr $c --<TAB>: extra [$(comm -13 <(echo "$want") <(echo "$got") | tr '\n' ' ')] missing [$(comm -23 <(echo "$want") <(echo "$got") | tr '\n' ' ')]"
done
[ "$(words kvr se)" = search ] || echo "kvr se: $(words kvr se)"
[ "$(words kvr help '' | tr '\n' ' ')" = "$(printf '%s\n' $cmds schemes | sort | tr '\n' ' ')" ] || echo "kvr help <TAB>: $(words kvr help '')"
[ "$(words kvr help model '' | tr '\n' ' ')" = "list show " ] || echo "kvr help model <TAB>: $(words kvr help model '')"
[ "$(words kvr model '' | tr '\n' ' ')" = "list show " ] || echo "kvr model <TAB>: $(words kvr model '')"
[ "$(words kvr bench '' | tr '\n' ' ')" = "attention comm search sim " ] || echo "kvr bench <TAB>: $(words kvr bench '')"
[ "$(words kvr bench search '' | tr '\n' ' ')" = "kvrp paper scale table " ] || echo "kvr bench search <TAB>: $(words kvr bench search '')"
[ -z "$(words kvr bench sim '')" ] || echo "kvr bench sim <TAB>: $(words kvr bench sim '')"
figs=$(cd "$3/plots" && ls fig*.gp | sed 's/\.gp$//'; echo all)
[ "$(words kvr plot '')" = "$(echo "$figs" | sort)" ] || echo "kvr plot <TAB>: $(words kvr plot '' | tr '\n' ' ') (want $(echo $figs))"
mkdir -p "$4/d" && touch "$4/d/t.json" && cd "$4/d"
[ "$(words kvr sim --timeline t)" = t.json ] || echo "kvr sim --timeline t<TAB>: $(words kvr sim --timeline t)"
[ "$(words kvr model show t)" = t.json ] || echo "kvr model show t<TAB>: $(words kvr model show t)"
[ -z "$(words kvr sim --ctx '')" ] || echo "kvr sim --ctx <TAB>: $(words kvr sim --ctx '' | tr '\n' ' ')"
[ "$(words kvr model show llama-2)" = llama-2-70b ] || echo "kvr model show llama-2<TAB>: $(words kvr model show llama-2)"
COMP
out=$(bash "$tmp/comp.sh" "$comp" "$kvr" "$share" "$tmp" 2>&1)
[ -z "$out" ]
report $? "bash completion: every command's and sub-command's options as its option table, sub-commands, help topics, figures, files after a path option" "$out"

# the relocatable .pc file: pkg-config finds the moved prefix, with and without --define-prefix
# (which resets ${prefix} to the folder two above the .pc file: PREFIX/lib under a multiarch
# libdir); a consumer builds and runs, as C11, as C++17, and linked statically
pc=$(find "$P" -name kvr_lookup.pc | head -n 1)
libdir=$(dirname "$(dirname "$pc")")
# a sanitizer build's library needs its runtime first in the program: the consumers link it too
san=
if ldd "$libdir/libkvr_lookup.so" 2>/dev/null | grep -q libasan; then san="-fsanitize=address,undefined"; fi
printf '#include <kvr_lookup.h>\n#include <stdio.h>\nint main(void){ printf("%%d %%s\\n", KVR_LOOKUP_FORMAT_VERSION, kvr_lookup_rc_name(KVR_LOOKUP_NOT_FOUND)); return 0; }\n' >"$tmp/c.c"
for how in plain --define-prefix; do
    def=; [ "$how" = plain ] || def=$how
    flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config $def --cflags --libs kvr_lookup 2>"$tmp/err")
    case $flags in *"$P"*) ;; *) false ;; esac && cc $san -std=c11 -Wall -pedantic "$tmp/c.c" $flags -o "$tmp/c" 2>>"$tmp/err" &&
        [ "$(LD_LIBRARY_PATH=$libdir "$tmp/c")" = "2 not found" ]
    report $? "kvr_lookup.pc is relocatable ($how): '$flags'" "$(cat "$tmp/err")"
done
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --static --cflags --libs kvr_lookup)
if [ -z "$san" ]; then
    cc -std=c11 "$tmp/c.c" $flags -static -o "$tmp/cs" 2>"$tmp/err" && [ "$("$tmp/cs")" = "2 not found" ]
    report $? "  a static consumer: '$flags'" "$(cat "$tmp/err")"
else
    echo "# a sanitizer build: no static consumer (the sanitizers do not link statically)"
fi
cxx=$(command -v c++ || command -v g++)
if [ -n "$cxx" ]; then
    # the installed header and a c-header export (kvr export --format c-header) in one C++17
    # program, against the installed library
    "$kvr" export --db "$tmp/p.db" --format c-header --out "$tmp/table.h" >/dev/null 2>"$tmp/err"
    cat >"$tmp/c.cpp" <<'CXX'
#include <kvr_lookup.h>
#include <cstdio>
#include "table.h"
int main()
{
    char err[256];
    kvr_lookup *t = nullptr;
    if (kvr_lookup_from_rows(kvr_table_rows, kvr_table_n_rows, &t, err, sizeof err)) return 1;
    kvr_lookup_query q{};
    q.model = "llama-7b", q.machine = "a100-nvlink", q.p = 2, q.ctx_tokens = 1024;
    kvr_lookup_answer a;
    int rc = kvr_lookup_partition(t, &q, &a, err, sizeof err);
    std::printf("%d %s %d\n", KVR_LOOKUP_FORMAT_VERSION, rc ? err : "ok", a.exact);
    kvr_lookup_free(t);
    return rc;
}
CXX
    flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs kvr_lookup)
    "$cxx" $san -std=c++17 -Wall -pedantic -I"$tmp" "$tmp/c.cpp" $flags -o "$tmp/cxx" 2>>"$tmp/err" &&
        [ "$(LD_LIBRARY_PATH=$libdir "$tmp/cxx")" = "2 ok 1" ]
    report $? "  the installed header and a c-header export as C++17" "$(cat "$tmp/err")"
else
    echo "# no C++ compiler: the C++17 consumer is not built"
fi

echo "1..$n"
[ "$failed" = 0 ]
