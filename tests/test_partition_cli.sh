#!/bin/sh
# kvr search / lookup / export end to end, the kvr_lookup deployment library against kvr lookup,
# and the store's reliability: corrupt, newer, read-only and missing databases, two writers at
# once, and a search killed with SIGKILL.
# Usage: test_partition_cli.sh PATH/TO/kvr PATH/TO/kvr-lookup-example   (TAP on stdout)
kvr=$1 example=$2
n=0 failed=0
tmp=$(mktemp -d) || exit 1
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/tap_helpers.sh"
src=${KVR_SOURCE_ROOT:-$(dirname "$0")/..}


db=$tmp/plans.db
S="--model llama-7b --machine a100-10GBps"
json_check "search fills 16 rows that sum to ctx" \
    "d['searches'] == 16 and d['skipped'] == 0 and all(sum(r['partition']) == r['ctx'] for r in d['rows'])" \
    -- search $S --gpus 2,4 --ctx 1k-8k+1k --db "$db" --json
json_check "a second search skips every key already present" "d['searches'] == 0 and d['skipped'] == 16" \
    -- search $S --gpus 2,4 --ctx 1k-8k+1k --db "$db" --json
json_check "--force searches them again" "d['searches'] == 16" \
    -- search $S --gpus 2,4 --ctx 1k-8k+1k --db "$db" --json --force
[ "$(sql "$db" 'SELECT count(*) FROM plan')" = 16 ] && [ "$(sql "$db" 'PRAGMA user_version')" = 4 ] &&
    [ "$(sql "$db" 'PRAGMA journal_mode')" = wal ] && [ "$(sql "$db" 'SELECT count(*) FROM run')" = 2 ]
report $? "the store: 16 plan rows, schema 4, WAL, one run row per writing search"
"$kvr" search $S --gpus 4 --ctx 3k --db "$db" --json --force >"$tmp/s3" 2>&1
json_check "lookup of a stored ctx returns the row" \
    "d['method'] == 'exact' and d['partition'] == json.load(open('$tmp/s3'))['rows'][0]['partition'] and d['neighbours'] == [3072]" \
    -- lookup $S --gpus 4 --ctx 3k --db "$db" --json
json_check "lookup between rows interpolates (KVR-P) on the grain" \
    "d['method'] == 'interpolated' and d['neighbours'] == [2048, 3072] and sum(d['partition']) == 2560 and all(t % 64 == 0 for t in d['partition'][:-1]) and d['predicted_ttft_s'] > 0" \
    -- lookup $S --gpus 4 --ctx 2.5k --db "$db" --json
json_check "lookup --interp steffen" "d['method'] == 'interpolated' and d['interp'] == 'steffen' and sum(d['partition']) == 5000" \
    -- lookup $S --gpus 4 --ctx 5000 --interp steffen --db "$db" --json
json_check "lookup of a range lists every ctx" "len(d) == 7169 and all(sum(x['partition']) == x['ctx'] for x in d)" \
    -- lookup $S --gpus 2 --ctx 1024-8192+1 --db "$db" --json
expect 2 "outside the table's range [1024, 8192]" "lookup beyond the table exits 2" -- lookup $S --gpus 4 --ctx 9k --db "$db"
json_check "lookup --clamp says so" "d['clamped'] and sum(d['partition']) == 9216" \
    -- lookup $S --gpus 4 --ctx 9k --clamp --db "$db" --json
expect 2 "no plan rows for model llama-7b, machine a100-nvlink" "lookup of a key not searched exits 2" \
    -- lookup --gpus 4 --ctx 2k --db "$db"

# export, and the deployment library against kvr lookup on every ctx from 1k to 16k
"$kvr" search $S --gpus 4 --ctx 1k-16k+1k --db "$db" >/dev/null 2>&1
json_check "export --format json: versioned schema" \
    "d['format'] == 'kvrun-lookup-table' and d['format_version'] == 1 and len(d['rows']) == 16 and all(sum(r['partition_tokens']) == r['ctx_tokens'] for r in d['rows'])" \
    -- export --db "$db" --gpus 4 --format json --out -
"$kvr" export --db "$db" --format csv --out "$tmp/table.csv" 2>/dev/null && head -1 "$tmp/table.csv" | grep -q "format 1"
report $? "export --format csv"
"$kvr" lookup $S --gpus 4 --ctx 1024-16384+1 --db "$db" --json >"$tmp/kvr.json" 2>"$tmp/err" &&
    "$example" "$tmp/table.csv" llama-7b a100-10GBps 4 1024 16384 1 >"$tmp/lib.jsonl" 2>>"$tmp/err"
python3 -c "
import json,sys
a=json.load(open(sys.argv[1])); b=[json.loads(l) for l in open(sys.argv[2])]
bad=[(x['ctx'],x['partition'],y['partition']) for x,y in zip(a,b) if (x['ctx'],x['partition'],x['method'])!=(y['ctx'],y['partition'],y['method'])]
print('# compared', len(a), 'contexts;', len(bad), 'differ', bad[:3]); sys.exit(0 if len(a)==len(b)==15361 and not bad else 1)" "$tmp/kvr.json" "$tmp/lib.jsonl"
report $? "kvr_lookup (CSV) agrees with kvr lookup on every ctx 1k..16k" "$(cat "$tmp/err")"
"$kvr" export --db "$db" --format c-header --out "$tmp/table.h" 2>/dev/null
cat >"$tmp/hdr.c" <<'C'
#include <stdio.h>
#include "table.h"
int main(void) {
    struct kvr_lookup *t; char err[256]; struct kvr_lookup_answer a;
    if (kvr_lookup_from_rows(kvr_table_rows, kvr_table_n_rows, &t, err, sizeof err)) return 1;
    for (uint64_t ctx = 1024; ctx <= 16384; ctx += 7) {
        struct kvr_lookup_query q = {"llama-7b", "a100-10GBps", NULL, NULL, 4, ctx, 0};
        if (kvr_lookup_partition(t, &q, &a, err, sizeof err)) return 1;
        printf("%llu", (unsigned long long)ctx);
        for (int i = 0; i < a.p; i++) printf(" %llu", (unsigned long long)a.tokens[i]);
        printf("\n");
    }
    kvr_lookup_free(t);
    return 0;
}
C
cc -std=c11 -I"$src/partition/lookup" -I"$tmp" "$tmp/hdr.c" "$src/partition/lookup/kvr_lookup.c" -lm -o "$tmp/hdr" 2>"$tmp/err" &&
    "$tmp/hdr" >"$tmp/hdr.txt" &&
    python3 -c "
import json,sys
a={x['ctx']: x['partition'] for x in json.load(open(sys.argv[1]))}
rows=[list(map(int,l.split())) for l in open(sys.argv[2])]
sys.exit(0 if len(rows) > 2000 and all(a[r[0]] == r[1:] for r in rows) else 1)" "$tmp/kvr.json" "$tmp/hdr.txt"
report $? "export --format c-header compiles and agrees with kvr lookup" "$(cat "$tmp/err")"
printf '# kvrun lookup table, format 2\n' >"$tmp/v2.csv"
"$example" "$tmp/v2.csv" llama-7b a100-10GBps 4 1024 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "v2.csv:1: format 2" "$tmp/err"; report $? "kvr_lookup refuses a newer table format (file:line)" "$(cat "$tmp/err")"
sed '3s/;[0-9]*$/;0/' "$tmp/table.csv" >"$tmp/bad.csv"
"$example" "$tmp/bad.csv" llama-7b a100-10GBps 4 1024 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "bad.csv:3: " "$tmp/err"; report $? "kvr_lookup refuses an empty chunk" "$(cat "$tmp/err")"

# reliability: every refusal exits 2 and leaves the file byte for byte as it was
unchanged() { cmp -s "$1" "$2"; }
head -c 8192 /dev/urandom >"$tmp/corrupt.db"; cp "$tmp/corrupt.db" "$tmp/corrupt.orig"
expect 2 "corrupt or not a database" "search into a corrupt DB exits 2" -- search $S --gpus 2 --ctx 1k --db "$tmp/corrupt.db"
unchanged "$tmp/corrupt.db" "$tmp/corrupt.orig"; report $? "  and leaves it unchanged"
expect 2 "corrupt or not a database" "lookup in a corrupt DB exits 2" -- lookup $S --gpus 2 --ctx 1k --db "$tmp/corrupt.db"
"$kvr" search $S --gpus 2 --ctx 1k,2k --db "$tmp/new.db" >/dev/null 2>&1
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version = 99'); c.commit(); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.close()" "$tmp/new.db"
cp "$tmp/new.db" "$tmp/new.orig"
expect 2 "written by a newer kvrun (schema 99" "search into a DB from a newer kvrun exits 2" -- search $S --gpus 2 --ctx 3k --db "$tmp/new.db"
expect 2 "written by a newer kvrun" "lookup in a DB from a newer kvrun exits 2" -- lookup $S --gpus 2 --ctx 1k --db "$tmp/new.db"
unchanged "$tmp/new.db" "$tmp/new.orig"; report $? "  and leaves it unchanged"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE t(x)'); c.commit()" "$tmp/other.db"
expect 2 "not a kvrun database" "a foreign SQLite file exits 2" -- search $S --gpus 2 --ctx 1k --db "$tmp/other.db"
expect 2 "cannot open database" "lookup in a missing DB exits 2" -- lookup $S --gpus 2 --ctx 1k --db "$tmp/missing.db"
[ ! -e "$tmp/missing.db" ]; report $? "  and creates no file"

# read-only: root ignores file modes, so run as nobody there (setpriv, from util-linux)
mkdir "$tmp/ro" && cp "$tmp/plans.db" "$tmp/ro/" && cp "$kvr" "$tmp/ro/kvr" && chmod 444 "$tmp/ro/plans.db" && chmod 555 "$tmp/ro" && chmod 755 "$tmp"
cp "$tmp/ro/plans.db" "$tmp/ro.orig"
as_user=
if [ "$(id -u)" = 0 ]; then as_user="setpriv --reuid=65534 --regid=65534 --clear-groups"; fi
$as_user "$tmp/ro/kvr" search $S --gpus 2 --ctx 12k --db "$tmp/ro/plans.db" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "read-only" "$tmp/err"; report $? "search into a read-only DB exits 2 naming it" "exit $rc: $(cat "$tmp/err")"
unchanged "$tmp/ro/plans.db" "$tmp/ro.orig"; report $? "  and leaves it unchanged"
$as_user "$tmp/ro/kvr" lookup $S --gpus 2 --ctx 1500 --db "$tmp/ro/plans.db" >"$tmp/out" 2>"$tmp/err"
report $? "lookup still reads a read-only DB" "$(cat "$tmp/err")"
chmod 755 "$tmp/ro"

# two writers at once into one new DB: both succeed, no row lost
cdb=$tmp/concurrent.db
"$kvr" search $S --gpus 2,3,4 --ctx 1k-48k+512 --db "$cdb" >"$tmp/c1" 2>&1 & p1=$!
"$kvr" search $S --gpus 5,6,7 --ctx 1k-48k+512 --db "$cdb" >"$tmp/c2" 2>&1 & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
rows=$(sql "$cdb" 'SELECT count(*) FROM plan')
[ $r1 = 0 ] && [ $r2 = 0 ] && [ "$rows" = $((6 * 95)) ]
report $? "two concurrent searches both succeed and keep all $((6 * 95)) rows" "exit $r1 $r2, rows $rows: $(tail -n 2 "$tmp/c1" "$tmp/c2")"

# SIGKILL in the middle: the DB stays consistent and a re-run completes only what is missing
kdb=$tmp/killed.db
"$kvr" search $S --gpus 8 --ctx 1k-400k+1k --db "$kdb" >/dev/null 2>&1 & pk=$!
i=0; while [ $i -lt 100 ] && [ "$(sql "$kdb" 'SELECT count(*) FROM plan' 2>/dev/null || echo 0)" -lt 40 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL $pk 2>/dev/null; wait $pk 2>/dev/null
before=$(sql "$kdb" 'SELECT count(*) FROM plan')
ok=$(sql "$kdb" 'PRAGMA integrity_check')
[ "$ok" = ok ] && [ "$before" -gt 0 ] && [ "$before" -lt 400 ]
report $? "a search killed with SIGKILL leaves a consistent DB ($before of 400 rows)" "integrity $ok, rows $before"
json_check "  and a re-run searches only the missing keys" "d['skipped'] == $before and d['searches'] == 400 - $before" \
    -- search $S --gpus 8 --ctx 1k-400k+1k --db "$kdb" --json

# bad input
expect 2 "unknown method 'fast'" "unknown --method exits 2" -- search --db "$db" --method fast
expect 2 "'tsp' does not take a partition" "a scheme without partitions exits 2" -- search --db "$db" --scheme tsp
expect 2 "larger than the topology" "--gpus beyond the profile exits 2" -- search --db "$db" --gpus 2,9
expect 2 "empty range 4096-1024" "an empty ctx range exits 2" -- search --db "$db" --ctx 4k-1k
expect 2 "--db FILE is required" "search without --db exits 2" -- search
expect 2 "unknown format 'xml'" "unknown export format exits 2" -- export --db "$db" --format xml --out "$tmp/x"
expect 2 "no plan rows match" "export with nothing to write exits 2" -- export --db "$db" --model falcon-7b --out "$tmp/none.json"
[ ! -e "$tmp/none.json" ]; report $? "  and writes no file"
expect 2 "cannot write" "export into a missing folder exits 2" -- export --db "$db" --out "$tmp/no/such/dir/t.json"
expect 2 "unknown method 'cubic'" "unknown --interp exits 2" -- lookup --db "$db" --gpus 4 --ctx 1k --interp cubic

echo "1..$n"
[ "$failed" = 0 ]
