#!/bin/sh
# kvr search / lookup / export end to end, the kvr_lookup deployment library against kvr lookup,
# and the store's reliability: corrupt, newer, read-only and missing databases, two writers at
# once, and a search killed with SIGKILL.
# Usage: test_partition_cli.sh PATH/TO/kvr PATH/TO/kvr-lookup-example   (TAP on stdout)
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
example=$2
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT


# agree KVR-JSON LINES: kvr lookup --json's answers (one or a list) against kvr_lookup's JSON
# lines (kvr-lookup-example's, or hdr_run's): ctx, partition, method, t and GPUs (a line without
# "mapping" or "tp" means the identity and t = 1, as the example prints them)
agree() {
    python3 -c "
import json,sys
a=json.load(open(sys.argv[1])); a=a if isinstance(a, list) else [a]; b=[json.loads(l) for l in open(sys.argv[2])]
k=lambda x,p: (x['ctx_tokens'], x['partition_tokens'], x['method'], x.get('tp', 1), x.get('mapping', list(range(p))))
bad=[(x['ctx_tokens'],k(x,x['p']),k(y,x['p'])) for x,y in zip(a,b) if k(x,x['p'])!=k(y,x['p'])]
print('# compared', len(a), 'contexts;', len(bad), 'differ', bad[:2]); sys.exit(0 if len(a)==len(b)>0 and not bad else 1)" "$1" "$2"
}
# hdr_run HEADER MODEL MACHINE P TP FROM TO STEP: a C11 consumer of a c-header export (built with
# -Wall -Wextra -pedantic -Werror) prints each context's answer (clamped outside the rows) as a
# JSON line, layout included
hdr_run() {
    d=$tmp/hdr.$n && mkdir -p "$d" && cp "$1" "$d/table.h" && shift
    cat >"$d/main.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "table.h"
int main(int argc, char **argv)
{
    struct kvr_lookup *t;
    char err[512];
    struct kvr_lookup_answer a;
    if (argc != 8 || kvr_lookup_from_rows(kvr_table_rows, kvr_table_n_rows, &t, err, sizeof err))
        return fprintf(stderr, "%s\n", argc != 8 ? "usage" : err), 1;
    struct kvr_lookup_query q = {
        .model = argv[1], .machine = argv[2], .p = atoi(argv[3]), .clamp = 1, .tp_degree = atoi(argv[4])};
    unsigned long long to = strtoull(argv[6], NULL, 10), step = strtoull(argv[7], NULL, 10);
    for (unsigned long long ctx = strtoull(argv[5], NULL, 10); ctx <= to; ctx += step) {
        q.ctx_tokens = ctx;
        if (kvr_lookup_partition(t, &q, &a, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
        printf("{\"ctx_tokens\": %llu, \"method\": \"%s\", \"tp\": %d, \"partition_tokens\": [", ctx,
               a.exact ? "exact" : "interpolated", a.tp_degree);
        for (int i = 0; i < a.n_chunks; i++) printf("%s%llu", i ? ", " : "", (unsigned long long)a.tokens[i]);
        printf("], \"mapping\": [");
        for (int i = 0; i < a.p; i++) printf("%s%d", i ? ", " : "", a.mapping[i]);
        printf("]}\n");
    }
    kvr_lookup_free(t);
    return 0;
}
C
    cc -std=c11 -Wall -Wextra -pedantic -Werror -I"$src/partition/lookup" -I"$d" "$d/main.c" "$src/partition/lookup/kvr_lookup.c" -lm -o "$d/main" 2>"$tmp/err" &&
        "$d/main" "$@" 2>>"$tmp/err"
}

db=$tmp/plans.db
S="--model llama-7b --machine a100-10GBps"
json_check "search fills 16 rows that sum to ctx" \
    "d['searches'] == 16 and d['skipped'] == 0 and all(sum(r['partition_tokens']) == r['ctx_tokens'] for r in d['rows'])" \
    -- search $S --gpus 2,4 --ctx 1k-8k+1k --db "$db" --json
json_check "a second search skips every key already present" "d['searches'] == 0 and d['skipped'] == 16" \
    -- search $S --gpus 2,4 --ctx 1k-8k+1k --db "$db" --json
json_check "--force searches them again" "d['searches'] == 16" \
    -- search $S --gpus 2,4 --ctx 1k-8k+1k --db "$db" --json --force
[ "$(sql "$db" 'SELECT count(*) FROM plan')" = 16 ] && [ "$(sql "$db" 'PRAGMA user_version')" = 9 ] &&
    [ "$(sql "$db" 'PRAGMA journal_mode')" = wal ] && [ "$(sql "$db" 'SELECT count(*) FROM run')" = 2 ]
report $? "the store: 16 plan rows, schema 9, WAL, one run row per writing search"
"$kvr" search $S --gpus 4 --ctx 3k --db "$db" --json --force >"$tmp/s3" 2>&1
json_check "lookup of a stored ctx returns the row" \
    "d['method'] == 'exact' and d['partition_tokens'] == json.load(open('$tmp/s3'))['rows'][0]['partition_tokens'] and d['neighbours'] == [3072]" \
    -- lookup $S --gpus 4 --ctx 3k --db "$db" --json
json_check "lookup between rows interpolates (KVR-P) on the grain" \
    "d['method'] == 'interpolated' and d['neighbours'] == [2048, 3072] and sum(d['partition_tokens']) == 2560 and all(t % 64 == 0 for t in d['partition_tokens'][:-1]) and d['predicted_ttft_s'] > 0" \
    -- lookup $S --gpus 4 --ctx 2.5k --db "$db" --json
json_check "lookup --interp steffen" "d['method'] == 'interpolated' and d['interp'] == 'steffen' and sum(d['partition_tokens']) == 5000" \
    -- lookup $S --gpus 4 --ctx 5000 --interp steffen --db "$db" --json
json_check "lookup of a range lists every ctx" "len(d) == 7169 and all(sum(x['partition_tokens']) == x['ctx_tokens'] for x in d)" \
    -- lookup $S --gpus 2 --ctx 1024-8192+1 --db "$db" --json
expect 2 "outside the table's range [1024, 8192]" "lookup beyond the table exits 2" -- lookup $S --gpus 4 --ctx 9k --db "$db"
json_check "lookup --clamp says so" "d['clamped'] and sum(d['partition_tokens']) == 9216" \
    -- lookup $S --gpus 4 --ctx 9k --clamp --db "$db" --json
expect 2 "no plan rows for model llama-7b, machine a100-nvlink" "lookup of a key not searched exits 2" \
    -- lookup --gpus 4 --ctx 2k --db "$db"
# rows searched for another KV hand-off are timed in it (lookup had timed them as whole), and a
# context between rows of two hand-offs is refused
kf=$tmp/kf.db
"$kvr" search $S --gpus 4 --ctx 4k,8k --db "$kf" --kv-forward direct -q >/dev/null 2>&1 &&
    "$kvr" search $S --gpus 4 --ctx 16k --db "$kf" -q >/dev/null 2>&1
json_check "lookup of a row searched for the direct hand-off: its stored TTFT, kv_forward direct" \
    "d['kv_forward'] == 'direct' and abs(d['predicted_ttft_s'] - float('$(sql "$kf" "SELECT predicted_ttft_s FROM plan WHERE ctx_tokens = 4096")')) < 1e-9 * d['predicted_ttft_s']" \
    -- lookup $S --gpus 4 --ctx 4k --db "$kf" --json
json_check "  a whole row beside them says whole" "d['kv_forward'] == 'whole'" -- lookup $S --gpus 4 --ctx 16k --db "$kf" --json
expect 2 "searched for different KV hand-offs (ctx 8192 direct, ctx 16384 whole)" \
    "  a context between a direct and a whole row exits 2" -- lookup $S --gpus 4 --ctx 12k --db "$kf"

# export, and the deployment library against kvr lookup on every ctx from 1k to 16k
"$kvr" search $S --gpus 4 --ctx 1k-16k+1k --db "$db" >/dev/null 2>&1
json_check "export --format json: versioned schema" \
    "d['format'] == 'kvrun-lookup-table' and d['format_version'] == 2 and len(d['rows']) == 16 and all(sum(r['partition_tokens']) == r['ctx_tokens'] for r in d['rows'])" \
    -- export --db "$db" --gpus 4 --format json --out -
"$kvr" export --db "$db" --format csv --out "$tmp/table.csv" 2>/dev/null && head -1 "$tmp/table.csv" | grep -q "^format_version,model,model_hash,"
report $? "export --format csv"
"$kvr" lookup $S --gpus 4 --ctx 1024-16384+1 --db "$db" --json >"$tmp/kvr.json" 2>"$tmp/err" &&
    "$example" "$tmp/table.csv" llama-7b a100-10GBps 4 1024 16384 1 >"$tmp/lib.jsonl" 2>>"$tmp/err"
python3 -c "
import json,sys
a=json.load(open(sys.argv[1])); b=[json.loads(l) for l in open(sys.argv[2])]
bad=[(x['ctx_tokens'],x['partition_tokens'],y['partition_tokens']) for x,y in zip(a,b) if (x['ctx_tokens'],x['partition_tokens'],x['method'])!=(y['ctx_tokens'],y['partition_tokens'],y['method'])]
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
a={x['ctx_tokens']: x['partition_tokens'] for x in json.load(open(sys.argv[1]))}
rows=[list(map(int,l.split())) for l in open(sys.argv[2])]
sys.exit(0 if len(rows) > 2000 and all(a[r[0]] == r[1:] for r in rows) else 1)" "$tmp/kvr.json" "$tmp/hdr.txt"
report $? "export --format c-header compiles and agrees with kvr lookup" "$(cat "$tmp/err")"
printf '# kvrun lookup table, format 1\nmodel,machine,p,scheme,method,granularity_tokens,ctx_tokens,predicted_ttft_s,partition_tokens\nm,h,2,kvr,hier,64,1024,0.1,576;448\nm,h,2,kvr,hier,64,2048,0.2,1088;960\n' >"$tmp/v1.csv"
[ "$("$example" "$tmp/v1.csv" m h 2 1536 2>"$tmp/err")" = '{"ctx_tokens": 1536, "method": "interpolated", "partition_tokens": [832, 704]}' ]
report $? "kvr_lookup still reads format 1 CSV" "$("$example" "$tmp/v1.csv" m h 2 1536 2>&1)"
sed 's/,0;1;2;3\r$/,1;0;2;3\r/' "$tmp/table.csv" >"$tmp/map.csv"
"$example" "$tmp/map.csv" llama-7b a100-10GBps 4 1024 16384 1 >"$tmp/map.jsonl" 2>"$tmp/err" &&
    python3 -c "
import json,sys
a=json.load(open(sys.argv[1])); b=[json.loads(l) for l in open(sys.argv[2])]
sys.exit(0 if len(a)==len(b)==15361 and all(y['mapping']==[1,0,2,3] and y['tp']==1 and y['partition_tokens']==x['partition_tokens'] for x,y in zip(a,b)) else 1)" "$tmp/kvr.json" "$tmp/map.jsonl"
report $? "kvr_lookup serves a mapped table (chunk 0 on GPU 1): the same partitions, the rows' GPUs" "$(cat "$tmp/err")"
# the example's numbers whole and in range: TO -1 was 2^64 - 1, a loop without end with --clamp
for a in "4x 1024" "4 1024 -1 1 --clamp" "4 1k" "0 1024"; do
    # shellcheck disable=SC2086
    timeout 60 "$example" "$tmp/table.csv" llama-7b a100-10GBps $a >/dev/null 2>"$tmp/err"; rc=$?
    [ $rc = 2 ] && grep -q "is not a number in" "$tmp/err"; report $? "kvr-lookup-example P FROM.. = $a exits 2" "exit $rc: $(cat "$tmp/err")"
done
# a table of layouts (t > 1), mapped rows and plain rows: kvr_lookup serves every key as
# kvr lookup does (it held the layouts and mapped keys aside)
"$kvr" search --model llama-2-70b --machine h100-nvlink --gpus 8 --ctx 8k,16k --tp 2 --db "$tmp/mix.db" -q >/dev/null &&
    "$kvr" search --model llama-7b --machine a100-10GBps --link 2-3=2GB/s --link 5-6=1GB/s --gpus 4 --ctx 1k-8k+1k --db "$tmp/mix.db" -q >/dev/null &&
    "$kvr" search --model llama-7b --machine a100-10GBps --gpus 4 --ctx 1k-8k+1k --db "$tmp/mix.db" -q >/dev/null &&
    "$kvr" export --db "$tmp/mix.db" --format csv --out "$tmp/mix.csv" >/dev/null &&
    "$kvr" export --db "$tmp/mix.db" --format c-header --out "$tmp/mix.h" >/dev/null
for k in "plain|llama-7b|a100-10GBps|a100-10GBps|4|1|1024 8192 1|" \
         "mapped|llama-7b|a100-10GBps --link 2-3=2GB/s --link 5-6=1GB/s|a100-10GBps+link=2-3=2GB/s+link=5-6=1GB/s|4|1|1000 9000 7|--clamp" \
         "layout|llama-2-70b|h100-nvlink|h100-nvlink|8|2|8192 16384 1|"; do
    IFS='|' read -r what model mach name p tp range clamp <<EOF
$k
EOF
    # shellcheck disable=SC2086
    set -- $range
    # shellcheck disable=SC2086
    "$kvr" lookup --db "$tmp/mix.db" --model "$model" --machine $mach --gpus "$p" --tp "$tp" --ctx "$1-$2+$3" $clamp --json >"$tmp/mk.json" 2>"$tmp/err"
    # shellcheck disable=SC2086
    "$example" "$tmp/mix.csv" "$model" "$name" "$p" "$1" "$2" "$3" --tp "$tp" $clamp >"$tmp/mx.jsonl" 2>>"$tmp/err"
    agree "$tmp/mk.json" "$tmp/mx.jsonl"; report $? "kvr_lookup (CSV) serves the $what key of a mixed table as kvr lookup, every ctx $1..$2 step $3" "$(cat "$tmp/err")"
    a1=$1 a2=$2 a3=$3
    hdr_run "$tmp/mix.h" "$model" "$name" "$p" "$tp" "$a1" "$a2" "$a3" >"$tmp/mh.jsonl"
    agree "$tmp/mk.json" "$tmp/mh.jsonl"; report $? "  and so does its c-header export" "$(cat "$tmp/err")"
done
grep -q "KVR_TABLE_F(tp_degree) 2, KVR_TABLE_F(mapping) " "$tmp/mix.h" && grep -q "static const int kvr_table_mapping_" "$tmp/mix.h"
report $? "  the c-header carries tp_degree and the mappings"
"$example" "$tmp/mix.csv" llama-2-70b h100-nvlink 8 12000 >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "p = 8 of tp_degree 1 (the table has this key's rows of tp_degree 2 only" "$tmp/err"
report $? "  a query of the wrong t (1 for rows of t = 2) is not found, naming the t there is" "exit $rc: $(cat "$tmp/err")"
printf '# kvrun lookup table, format 3\n' >"$tmp/v3.csv"
"$example" "$tmp/v3.csv" llama-7b a100-10GBps 4 1024 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "v3.csv:1: format '3', this library reads formats 1 and 2" "$tmp/err"; report $? "kvr_lookup refuses a newer table format (file:line)" "$(cat "$tmp/err")"
python3 -c "
import sys; L=open(sys.argv[1], newline='').read().split('\r\n'); f=L[2].split(','); t=f[14].split(';'); t[-1]='0'; f[14]=';'.join(t); L[2]=','.join(f)
open(sys.argv[2], 'w', newline='').write('\r\n'.join(L))" "$tmp/table.csv" "$tmp/bad.csv"
"$example" "$tmp/bad.csv" llama-7b a100-10GBps 4 1024 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "bad.csv:3: " "$tmp/err"; report $? "kvr_lookup refuses an empty chunk" "$(cat "$tmp/err")"

# content-addressed plans: an edited model or profile is searched again and never served stale
cp "$src/data/models/tiny.ini" "$tmp/m.ini" && cp "$src/data/machines/h100-2x4.ini" "$tmp/h.ini"
C="--model $tmp/m.ini --machine $tmp/h.ini --gpus 4"
json_check "search of a model file and a profile file" "d['searches'] == 4" -- search $C --ctx 1k-4k+1k --db "$tmp/ca.db" --json
sed -i 's/^n_layers = 2$/n_layers = 8/' "$tmp/m.ini"
"$kvr" search $C --ctx 1k-4k+1k --db "$tmp/ca.db" --json >"$tmp/ca1" 2>&1
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['searches'] == 4 and d['skipped'] == 0 else 1)" "$tmp/ca1"
report $? "the edited model file (2 -> 8 layers) is searched again" "$(cat "$tmp/ca1")"
# serves(SEARCH-JSON): kvr lookup at 2k returns the row that search wrote, with its hashes
serves() {
    "$kvr" lookup $C --ctx 2k --db "$tmp/ca.db" --json >"$tmp/cal" 2>&1 &&
    python3 -c "
import json,sys; s=json.load(open(sys.argv[1])); l=json.load(open(sys.argv[2])); r=[x for x in s['rows'] if x['ctx_tokens'] == 2048][0]
sys.exit(0 if (l['model_hash'], l['machine_hash'], l['partition_tokens'], l['predicted_ttft_s'], l['method']) == (r['model_hash'], r['machine_hash'], r['partition_tokens'], r['predicted_ttft_s'], 'exact') else 1)" "$1" "$tmp/cal"
}
serves "$tmp/ca1"; report $? "  and kvr lookup serves the new rows" "$(cat "$tmp/cal")"
sed -i 's/^launch = 4us$/launch = 40us/' "$tmp/h.ini"
expect 2 "only older definitions of model tiny / machine h100-2x4" "after editing the profile, lookup refuses the older rows" \
    -- lookup $C --ctx 2k --db "$tmp/ca.db"
"$kvr" search $C --ctx 1k-4k+1k --db "$tmp/ca.db" --json >"$tmp/ca2" 2>&1
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['searches'] == 4 and d['skipped'] == 0 else 1)" "$tmp/ca2"
report $? "the edited profile (launch 4 -> 40 us) is searched again" "$(cat "$tmp/ca2")"
serves "$tmp/ca2"; report $? "  and kvr lookup serves the new rows" "$(cat "$tmp/cal")"
cp "$tmp/h.ini" "$tmp/hr.ini" && sed -i 's/^\[gpu\]$/[gpu]\nmem_reserve = 4GiB/' "$tmp/hr.ini"
expect 2 "only older definitions of model tiny / machine h100-2x4" "a profile that reserves more memory is another machine: lookup refuses" \
    -- lookup --model $tmp/m.ini --machine $tmp/hr.ini --gpus 4 --ctx 2k --db "$tmp/ca.db"
[ "$(sql "$tmp/ca.db" "SELECT count(*) FROM definition WHERE kind = 'model'")" = 2 ] &&
    [ "$(sql "$tmp/ca.db" "SELECT count(*) FROM definition WHERE kind = 'machine'")" = 2 ] &&
    [ "$(sql "$tmp/ca.db" "SELECT count(DISTINCT model_hash || machine_hash) FROM plan")" = 3 ]
report $? "each definition is stored once, with its canonical text; three definitions' rows"
python3 -c "
import sqlite3,sys; c=sqlite3.connect(sys.argv[1])
t=c.execute(\"SELECT canonical_text FROM definition WHERE kind='model' AND canonical_text LIKE '%n_layers=8%'\").fetchone()
sys.exit(0 if t else 1)" "$tmp/ca.db"
report $? "  the definition table re-reads the edited model (n_layers=8)"
# a link beyond GPUs 0..p-1 is part of the machine: the search may place the chain there (a
# slow 0-1 sends it to 4-7), so editing 4-5 searches again (it kept the hash, and lookup served
# the plan on 4-7 across the new 1 GB/s link: 1.25 s against 208 ms)
{ cat "$src/data/machines/a100-2x4.ini"; printf '[links]\n0-1 = 1GB/s\n'; } >"$tmp/far.ini"
F="--model llama-7b --machine $tmp/far.ini --gpus 4 --ctx 8k --db $tmp/far.db --json"
json_check "search with a slow link 0-1 on a100-2x4 places the chain of 4 on GPUs 4-7" \
    "d['searches'] == 1 and d['rows'][0]['mapping'] == [4, 5, 6, 7]" -- search $F
printf '4-5 = 1GB/s\n' >>"$tmp/far.ini"
json_check "  the profile edited at link 4-5 (beyond GPUs 0-3) is searched again" \
    "d['searches'] == 1 and d['skipped'] == 0 and d['rows'][0]['mapping'] != [4, 5, 6, 7]" -- search $F

# migration from schema 2 (a committed table of 48 rows): read as it is, matched or marked stale
# the committed databases are in rollback-journal mode: a WAL file (h200.sqlite was) leaves
# -wal and -shm beside it in the tree whenever kvr validate or lookup reads it
python3 -c "
import glob, sys
bad = [f for f in glob.glob(sys.argv[1] + '/data/measurements/*.sqlite') if open(f, 'rb').read(20)[18:20] != bytes([1, 1])]
print(' '.join(bad)); sys.exit(1 if bad else 0)" "$src" >"$tmp/wal.txt"
report $? "every committed database is in rollback-journal mode (reading it leaves no -wal, -shm)" "$(cat "$tmp/wal.txt")"
old=$src/data/measurements/h200x4-kvr-newtables.sqlite
cp "$old" "$tmp/old.db" && cp "$old" "$tmp/old2.db"
M="--model llama-7b --machine $src/data/machines/h100x4-nccl.ini --gpus 4"
expect 2 "only older definitions" "lookup in a schema-2 table says its rows predate the definitions" -- lookup $M --ctx 8k --db "$tmp/old.db"
cmp -s "$old" "$tmp/old.db"; report $? "  and reading leaves the file untouched"
json_check "a search migrates it and matches the old rows the current profile reproduces" \
    "d['searches'] == 0 and d['skipped'] == 1" -- search $M --ctx 8k --db "$tmp/old.db" --json
[ "$(sql "$tmp/old.db" 'PRAGMA user_version')" = 9 ] &&
    [ "$(sql "$tmp/old.db" "SELECT count(*) FROM plan WHERE tp = 1")" = 48 ] &&
    [ "$(sql "$tmp/old.db" "SELECT count(*) FROM plan WHERE model_hash != '' AND stale = 0")" = 4 ] &&
    [ "$(sql "$tmp/old.db" "SELECT count(*) FROM plan WHERE model_hash = '' AND stale = 0")" = 44 ]
report $? "  schema 9, every row t = 1; its 4 rows keep their names and gain the hashes, the other 44 wait"
json_check "  and lookup serves them" "d['method'] == 'exact' and d['ctx_tokens'] == 16384" -- lookup $M --ctx 16k --db "$tmp/old.db" --json
sed 's/^launch = .*/launch = 9us/' "$src/data/machines/h100x4-nccl.ini" >"$tmp/nccl-edited.ini"
json_check "old rows an edited profile does not reproduce are searched again" "d['searches'] == 1" \
    -- search --model llama-7b --machine "$tmp/nccl-edited.ini" --gpus 4 --ctx 8k --db "$tmp/old2.db" --json
[ "$(sql "$tmp/old2.db" "SELECT count(*) FROM plan WHERE stale = 1")" = 4 ]
report $? "  and marked stale (4 rows), never served"

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
"$kvr" search $S --gpus 8 --ctx 256-100k+256 --db "$kdb" >/dev/null 2>&1 & pk=$!
i=0; while [ $i -lt 100 ] && [ "$(sql "$kdb" 'SELECT count(*) FROM plan' 2>/dev/null || echo 0)" -lt 40 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL $pk 2>/dev/null; wait $pk 2>/dev/null
before=$(sql "$kdb" 'SELECT count(*) FROM plan')
ok=$(sql "$kdb" 'PRAGMA integrity_check')
[ "$ok" = ok ] && [ "$before" -gt 0 ] && [ "$before" -lt 400 ]
report $? "a search killed with SIGKILL leaves a consistent DB ($before of 400 rows)" "integrity $ok, rows $before"
json_check "  and a re-run searches only the missing keys" "d['skipped'] == $before and d['searches'] == 400 - $before" \
    -- search $S --gpus 8 --ctx 256-100k+256 --db "$kdb" --json

# hybrid layouts (#21): a row per TP degree, the unfit one not stored, lookup per t and best,
# exports carry tp (JSON, CSV) or refuse it (C header)
ldb=$tmp/layouts.db
L="--model llama-2-70b --machine h100-nvlink --gpus 8"
json_check "search --tp auto: rows for t = 2, 4, 8 (t = 1 does not fit), p/t chunks summing to ctx" \
    "d['unfit_layouts'] == 2 and [r['tp'] for r in d['rows']] == [2, 2, 4, 4, 8, 8] and all(len(r['partition_tokens']) == 8 // r['tp'] and sum(r['partition_tokens']) == r['ctx_tokens'] for r in d['rows'])" \
    -- search $L --ctx 16k,32k --tp auto --db "$ldb" --json
[ "$(sql "$ldb" 'SELECT count(*) FROM plan WHERE tp = 2')" = 2 ] && [ "$(sql "$ldb" 'SELECT count(*) FROM plan WHERE tp = 1')" = 0 ]
report $? "  stored with their tp, none for t = 1"
json_check "lookup --tp best: the fastest that fits (t = 2 at 24k, interpolated over 4 stages)" \
    "d['tp'] == 2 and len(d['partition_tokens']) == 4 and sum(d['partition_tokens']) == 24576 and d['method'] == 'interpolated'" \
    -- lookup $L --ctx 24k --tp best --db "$ldb" --json
json_check "lookup --tp 8 is one stage" "d['tp'] == 8 and d['partition_tokens'] == [16384]" \
    -- lookup $L --ctx 16k --tp 8 --db "$ldb" --json
expect 2 "no plan rows for model llama-2-70b, machine h100-nvlink, p = 8, tp 1" "lookup of t = 1 in a table of layouts exits 2" \
    -- lookup $L --ctx 16k --db "$ldb"
"$kvr" search $L --ctx 32k,64k --tp 2 --db "$tmp/best.db" -q >/dev/null 2>&1
"$kvr" search $L --ctx 32k,128k --tp 4 --db "$tmp/best.db" -q >/dev/null 2>&1
json_check "lookup --tp best leaves out a t whose rows do not reach the context (t = 2 ends at 64k)" \
    "d['tp'] == 4 and sum(d['partition_tokens']) == 98304" -- lookup $L --ctx 96k --tp best --db "$tmp/best.db" --json
expect 3 "4 stages of tp 2 fits" "  and lookup --tp 2 --clamp there does not fit (exit 3)" \
    -- lookup $L --ctx 96k --tp 2 --clamp --db "$tmp/best.db"
expect 2 "use linear or steffen" "lookup --tp 2 --interp bottleneck exits 2" -- lookup $L --ctx 24k --tp 2 --interp bottleneck --db "$ldb"
expect 3 "no partition of 16384 tokens on 8 ranks fits" "search of t = 1 alone on Llama-2-70B exits 3" \
    -- search $L --ctx 16k --tp 1 --db "$ldb"
expect 2 "does not divide the 64 heads" "search --tp 3 at p = 6 (3 does not divide 64 heads) exits 2" \
    -- search --model llama-2-70b --machine h100-nvlink --gpus 6 --ctx 4k --tp 3 --db "$ldb"
expect 2 "--sp needs --tp" "search --sp without --tp exits 2" -- search $L --ctx 4k --sp --db "$ldb"
"$kvr" export --db "$ldb" --format json --out "$tmp/l.json" 2>/dev/null &&
    python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
ok = d['layout']['tp_degree'] == 0 and sorted(r['tp_degree'] for r in d['rows']) == [2, 2, 4, 4, 8, 8]
ok = ok and all(len(r['partition_tokens']) * r['tp_degree'] == r['p'] and len(r['mapping']) == r['p'] for r in d['rows'])
sys.exit(0 if ok else 1)" "$tmp/l.json"
report $? "JSON export carries tp_degree, p/t chunks, p GPUs in the mapping"
"$kvr" export --db "$ldb" --format csv --tp 4 --out "$tmp/l.csv" 2>/dev/null &&
    [ "$(grep -c ',8,4,kvr,' "$tmp/l.csv")" = 2 ] && [ "$(wc -l < "$tmp/l.csv")" = 3 ]
report $? "CSV export --tp 4: the t = 4 rows with their tp_degree"
"$kvr" export --db "$ldb" --format c-header --out "$tmp/l.h" 2>"$tmp/err"
for tp in 2 4 8; do
    "$kvr" lookup $L --ctx 12k-40k+997 --tp $tp --clamp --db "$ldb" --json >"$tmp/lk.json" 2>>"$tmp/err" &&
        hdr_run "$tmp/l.h" llama-2-70b h100-nvlink 8 $tp 12288 40960 997 >"$tmp/lh.jsonl" 2>>"$tmp/err"
    agree "$tmp/lk.json" "$tmp/lh.jsonl"
    report $? "a C header of the layouts serves t = $tp as kvr lookup --tp $tp (interpolated and clamped)" "$(cat "$tmp/err")"
done
N12="--model llama-2-70b --machine $src/data/machines/h100-2x8-25.ini --gpus 12"
"$kvr" search $N12 --ctx 16k,32k --tp 2 --db "$tmp/n12.db" -q >/dev/null 2>&1
"$kvr" lookup $N12 --ctx 20k --tp 2 --db "$tmp/n12.db" >"$tmp/n12.txt" 2>&1
grep -q "on GPUs 4;5;6;7;8;9;10;11;12;13;14;15 (rank i" "$tmp/n12.txt"
report $? "lookup --tp 2 of a chain on GPUs 4..15 lists all 12 GPUs (it listed the first p / t)" "$(cat "$tmp/n12.txt")"
expect 2 "--tp: 'x' must be 1..64" "export --tp x exits 2" -- export --db "$ldb" --format csv --tp x --out "$tmp/l.csv"

# bad input
expect 2 "unknown method 'fast'" "unknown --method exits 2" -- search --db "$db" --method fast
expect 2 "'tsp' does not take a partition" "a scheme without partitions exits 2" -- search --db "$db" --scheme tsp
expect 2 "larger than the topology" "--gpus beyond the profile exits 2" -- search --db "$db" --gpus 2,9
expect 2 "empty range 4096-1024" "an empty ctx range exits 2" -- search --db "$db" --ctx 4k-1k
expect 2 "token count '-1' is negative" "a negative ctx names it" -- search --db "$db" --ctx -1
expect 2 "range 1-2 in the default steps of 1024 does not reach 2 (its last value would be 1)" "a ctx range whose end the steps miss exits 2" -- search --db "$db" --ctx 1-2
expect 2 "--db FILE is required" "search without --db exits 2" -- search
expect 2 "unknown format 'xml'" "unknown export format exits 2" -- export --db "$db" --format xml --out "$tmp/x"
expect 2 "no plan rows match" "export with nothing to write exits 2" -- export --db "$db" --model falcon-7b --out "$tmp/none.json"
[ ! -e "$tmp/none.json" ]; report $? "  and writes no file"
expect 2 "cannot write" "export into a missing folder exits 2" -- export --db "$db" --out "$tmp/no/such/dir/t.json"
expect 2 "unknown method 'cubic'" "unknown --interp exits 2" -- lookup --db "$db" --gpus 4 --ctx 1k --interp cubic

# Only plans that fit (issue 18): kvr sim exits 3 with the bytes, the search stores nothing,
# a sweep point is 'infeasible' with the bytes and no figure view shows it, lookup refuses
B="--model llama-2-70b --machine a100-10GBps --gpus 8 --ctx 32k"
expect 3 "rank 0 needs" "sim of a plan that does not fit exits 3 with the bytes per rank" -- sim $B
"$kvr" sim $B --allow-oom >/dev/null 2>&1
report $? "  and exits 0 with --allow-oom"
odb=$tmp/oom.db
expect 3 "do not fit" "a search whose plans do not fit exits 3" -- search $B --db "$odb"
rows=$(sql "$odb" 'SELECT count(*) FROM plan' 2>/dev/null || echo 0)
[ "$rows" = 0 ]
report $? "  and stores no plan ($rows rows)"
cat >"$tmp/oom.ini" <<'INI'
[sweep]
figure = fig9a
[axes]
models = llama-2-70b, llama-7b
machines = a100-10GBps
gpus = 8
ctx = 16k, 32k
schemes = tsp, kvr-s
INI
"$kvr" sweep "$tmp/oom.ini" --db "$tmp/sweep.db" >/dev/null 2>&1
inf=$(sql "$tmp/sweep.db" "SELECT count(*) FROM sweep_point WHERE state = 'infeasible' AND mem_needed_bytes > mem_available_bytes AND mem_available_bytes > 0")
shown=$(sql "$tmp/sweep.db" "SELECT count(*) FROM sweep_done WHERE model = 'llama-2-70b'")
done_ok=$(sql "$tmp/sweep.db" "SELECT count(*) FROM sweep_point WHERE model = 'llama-7b' AND state = 'done'")
[ "$inf" = 4 ] && [ "$shown" = 0 ] && [ "$done_ok" = 4 ]
report $? "a sweep stores points that do not fit as infeasible with the bytes; the figures' view (sweep_done) has none of them" "infeasible $inf, plotted $shown, llama-7b done $done_ok"
rows=$(sql "$tmp/sweep.db" "SELECT count(*) FROM plan WHERE model = 'llama-2-70b'")
[ "$rows" = 0 ]
report $? "  and the sweep's search stored no plan for them ($rows)"
ldb=$tmp/fit.db
"$kvr" search --model llama-7b --machine a100-10GBps --gpus 8 --ctx 16k,32k --db "$ldb" >/dev/null 2>&1
sed 's/^mem = 80GiB$/mem = 40GiB/; s/^name = a100-2x4$/name = a100-10GBps/' "$src/data/machines/a100-2x4.ini" | sed 's/^intra_bw = .*/intra_bw = 10GB\/s/; s/^inter_bw = .*/inter_bw = 10GB\/s/' >"$tmp/small.ini"
"$kvr" search --model llama-7b --machine "$tmp/small.ini" --gpus 8 --ctx 16k,48k --db "$ldb" >/dev/null 2>&1
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE plan SET ctx_tokens = 70000, partition_tokens = '64;64;64;64;64;64;64;' || (70000 - 448), fewer_p = NULL, fewer_partition_tokens = NULL, fewer_mapping = NULL, fewer_predicted_ttft_s = NULL WHERE ctx_tokens = 49152\"); c.commit()" "$ldb"
expect 3 "fits in GPU memory" "lookup never returns a partition that does not fit" -- lookup --model llama-7b --machine "$tmp/small.ini" --gpus 8 --ctx 70000 --db "$ldb"

# The forward migrations from schema 2 (a committed schema-2 file, given sweep points in three
# states): a writing command migrates it to 5, plans and sweep points are kept, 'infeasible'
# is accepted, and no figure label is left in the schema
mdb=$tmp/v2.db
cp "$src/data/measurements/h100x4-multi.sqlite" "$mdb"
python3 -c "
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for i, st in enumerate(['done', 'failed', 'pending']):
    c.execute(\"INSERT INTO sweep_point (sweep, point_key, figure, series, model, machine, p, ctx_tokens, scheme, method, objective, state) VALUES ('m', ?, 'fig1', 'TSP', 'llama-7b', 'a100-nvlink', 2, 1024, 'tsp', 'even', 'sim', ?)\", ('k%d' % i, st))
c.commit()" "$mdb"
before=$(sql "$mdb" "SELECT group_concat(partition_tokens, '|') FROM (SELECT partition_tokens FROM plan ORDER BY id)")
"$kvr" search --model llama-7b --machine a100-nvlink --gpus 4 --ctx 16k --db "$mdb" >/dev/null 2>&1
v=$(sql "$mdb" 'PRAGMA user_version')
kept=$(sql "$mdb" "SELECT group_concat(partition_tokens, '|') FROM (SELECT partition_tokens FROM plan WHERE id <= 48 ORDER BY id)")
states=$(sql "$mdb" "SELECT group_concat(state, ',') FROM (SELECT state FROM sweep_point ORDER BY id)")
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE sweep_point SET state = 'infeasible' WHERE state = 'failed'\"); c.commit()" "$mdb" 2>/dev/null
inf=$(sql "$mdb" "SELECT count(*) FROM sweep_point WHERE state = 'infeasible'")
labels=$(sql "$mdb" "SELECT count(*) FROM sqlite_schema WHERE sql LIKE '%KVR-%'")
[ "$v" = 9 ] && [ "$states" = "done,failed,pending" ] && [ "$inf" = 1 ] && [ "$labels" = 0 ] &&
    [ "$kept" = "$before" ]
report $? "schema 2 -> 7: plans and sweep points kept, 'infeasible' accepted, no figure label" "v $v, states $states, infeasible $inf, labels $labels"

# The grid is honest: every stored boundary is a multiple of the row's granularity_tokens
gdb=$tmp/grid.db
"$kvr" search --model llama-7b --machine a100-10GBps --gpus 2,4,8 --ctx 1k-16k+1500 --db "$gdb" >/dev/null 2>&1
"$kvr" search --model llama-7b --machine a100-nvlink --gpus 8 --ctx 5000,9999 --granularity 16 --db "$gdb" >/dev/null 2>&1
"$kvr" search --model llama-7b --machine a100-10GBps --gpus 8 --ctx 16k --db "$gdb" >/dev/null 2>&1
off=$(python3 -c "
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); bad = 0; n = 0
for part, g in c.execute('SELECT partition_tokens, granularity_tokens FROM plan'):
    t = [int(x) for x in part.split(';')]; s = 0; n += 1
    for x in t[:-1]:
        s += x; bad += s % g != 0
print(bad, n, c.execute('SELECT count(*) FROM plan WHERE granularity_tokens = 16').fetchone()[0])" "$gdb")
[ "$off" = "0 36 2" ]
report $? "every stored partition is on the granularity its row records (64, and 16 when asked)" "off-grid boundaries, rows, rows at 16: $off"
# KVR-P on the grid of the rows it interpolates: Steffen rounded on the first row's grain, 1 for a
# row shorter than p x 64 tokens (256 on 8), so its answer at 10000 was off the 64-token grid.
sdb=$tmp/steffen.db
"$kvr" search --model llama-7b --machine a100-10GBps --gpus 8 --ctx 256,4k,8k,12k,16k --db "$sdb" >/dev/null 2>&1
json_check "lookup --interp steffen rounds on its neighbours' grid (64), not the 256-token row's (1)" \
    "all(sum(d['partition_tokens'][:i + 1]) % 64 == 0 for i in range(7)) and sum(d['partition_tokens']) == 10000" \
    -- lookup --model llama-7b --machine a100-10GBps --gpus 8 --ctx 10000 --interp steffen --db "$sdb" --json
# A row already stored on another grid is not the one asked for: refused, not skipped (a search
# at --granularity 64 over the 16-token rows reported them "already present" and kept them).
expect 2 "was searched on a grid of 16 tokens, not 64" "search at another granularity refuses a row stored on another grid (exit 2)" -- \
    search --model llama-7b --machine a100-nvlink --gpus 8 --ctx 5000 --db "$gdb"
"$kvr" search --model llama-7b --machine a100-nvlink --gpus 8 --ctx 5000 --force --db "$gdb" >/dev/null 2>&1 &&
    [ "$(sql "$gdb" "SELECT granularity_tokens FROM plan WHERE machine = 'a100-nvlink' AND ctx_tokens = 5000")" = 64 ] &&
    "$kvr" search --model llama-7b --machine a100-nvlink --gpus 8 --ctx 5000 --db "$gdb" 2>&1 | grep -q "1 already present"
report $? "  --force searches it again on the asked grid, and the same grid is then present"
cat >"$tmp/g16.ini" <<'INI'
[sweep]
figure = fig1
granularity = 16
[axes]
models = llama-7b
machines = a100-10GBps
gpus = 8
ctx = 16k
schemes = kvr-s
INI
"$kvr" sweep "$tmp/g16.ini" --db "$gdb" >/dev/null 2>&1
[ "$(sql "$gdb" "SELECT count(*) FROM sweep_point WHERE state = 'failed' AND error LIKE '%granularity 16: the stored plan%grid of 64 tokens%'")" = 1 ] &&
    [ "$(sql "$gdb" "SELECT count(*) FROM sweep_point WHERE state = 'done'")" = 0 ]
report $? "  a sweep at granularity 16 does not serve the 64-token row: the point fails, naming both grids"
expect 2 "ctx 4 < p = 8" "sim with ctx < p says so" -- sim --gpus 8 --ctx 4
"$kvr" lookup --model llama-7b --machine a100-10GBps --gpus 8 --ctx 16k --db "$gdb" >"$tmp/fewer.txt" 2>&1
"$kvr" lookup --model llama-7b --machine a100-10GBps --gpus 8 --ctx 16k --db "$gdb" --json >"$tmp/fewer.json" 2>&1
grep -q "fewer GPUs are as fast" "$tmp/fewer.txt" &&
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert 1 <= d['fewer_p'] < 8 and sum(d['fewer_partition']) == 16384 and d['fewer_predicted_ttft_s'] <= 1.005 * d['predicted_ttft_s']" "$tmp/fewer.json"
report $? "lookup says when fewer GPUs are as fast (10 GB/s, p = 8, 16k)" "$(cat "$tmp/fewer.txt" "$tmp/fewer.json")"

# A plan whose chain is not in GPU order (h100-2x4's slow link 1>2): JSON carries the mapping,
# CSV carries it too (its mapping column); so does the C header (its rows' mapping)
xdb=$tmp/mapped.db
"$kvr" search --model llama-7b --machine "$src/data/machines/h100-2x4.ini" --ctx 16k --db "$xdb" >/dev/null 2>&1
"$kvr" export --db "$xdb" --format json --out "$tmp/mapped.json" >/dev/null 2>&1 &&
    python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['rows'][0]; m=r['mapping']; assert sorted(m) == list(range(8)) and all(not (m[i] == 1 and m[i+1] == 2) for i in range(7)), m" "$tmp/mapped.json"
report $? "export JSON carries the chain mapping, which avoids the slow link 1>2"
"$kvr" export --db "$xdb" --format csv --out "$tmp/mapped.csv" >/dev/null 2>&1 &&
    python3 -c "import csv,json,sys; j=json.load(open(sys.argv[1]))['rows'][0]['mapping']; r=next(csv.DictReader(open(sys.argv[2], newline=''))); sys.exit(0 if [int(x) for x in r['mapping'].split(';')] == j else 1)" "$tmp/mapped.json" "$tmp/mapped.csv"
report $? "export CSV carries the same chain mapping"
"$kvr" export --db "$xdb" --format c-header --out "$tmp/mapped.h" >/dev/null 2>"$tmp/err"
read -r xm xp <<EOF
$(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['rows'][0]; print(r['machine'], r['p'])" "$tmp/mapped.json")
EOF
"$kvr" lookup --model llama-7b --machine "$src/data/machines/h100-2x4.ini" --gpus "$xp" --ctx 16k --db "$xdb" --json >"$tmp/xk.json" 2>>"$tmp/err" &&
    hdr_run "$tmp/mapped.h" llama-7b "$xm" "$xp" 1 16384 16384 1 >"$tmp/xh.jsonl"
agree "$tmp/xk.json" "$tmp/xh.jsonl"; report $? "the C header of a mapped plan serves its GPUs as kvr lookup" "$(cat "$tmp/err")"

echo "1..$n"
[ "$failed" = 0 ]
