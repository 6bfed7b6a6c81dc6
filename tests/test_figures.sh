#!/bin/sh
# The figures as a reviewer reads them: every committed figure renders from its sweep, every
# panel title is written in words, every scheme label has its own colour, and fig5's stacked
# bars add up to each scheme's TTFT (the overlapped communication lies within what was sent).
# Usage: test_figures.sh PATH/TO/kvr   (TAP on stdout)
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"

"$kvr" sweep "$src"/experiments/sweeps/*.ini --db "$tmp/f.db" >"$tmp/out" 2>&1
report $? "every sweep file runs" "$(tail -5 "$tmp/out")"
mkdir "$tmp/fig"
"$kvr" plot all --db "$tmp/f.db" --out "$tmp/fig" >"$tmp/out" 2>&1
report $? "kvr plot all renders" "$(tail -5 "$tmp/out")"

# Panel titles: after plots/labels.sed, no profile key or 'p=' spelling is left.
raw=$(cut -f2 "$tmp"/fig/data/*.list | sed -f "$src/plots/labels.sed" | grep -E 'GBps|,p=|^p=|-nvlink|-2x4|profile-bw' || true)
[ -z "$raw" ]; report $? "every panel title reads as words" "left raw: $raw"

# Scheme labels: each series that names a scheme maps to a linetype of its own in style.gp.
labels=$(for f in "$tmp"/fig/data/*.tsv; do awk -F'\t' 'h==0&&NF{print $1; h=1} !NF{h=0}' "$f"; done | sort -u |
    grep -E '^(TSP|TSP-causal|TSP-paper|ring|ring-pass|TP|KVR-E|KVR-S|KVR-P|single)$')
for l in $labels; do
    grep -q "s eq '$l' ?" "$src/plots/style.gp"; report $? "scheme label '$l' has its own colour in style.gp"
done
python3 - "$src/plots/style.gp" <<'PY'
import re, sys
m = re.findall(r"s eq '([^']+)' \? (\d+)", open(sys.argv[1]).read())
lts = [int(v) for _, v in m]
sys.exit(0 if len(lts) == len(set(lts)) and len(lts) >= 10 else 1)
PY
report $? "no two schemes share a linetype"

# fig5: compute + exposed communication + waiting = TTFT, with 0 <= exposed <= communication;
# the thin bar apart (communication under compute) is compute + communication - TTFT, never more
# than the compute it hides under (it was the whole communication: ring at 10 GB/s drew 644 ms
# beside 378 ms of compute).
python3 - "$tmp/fig/data" <<'PY'
import os, sys
d = sys.argv[1]
bad, rows, hidden = [], 0, 0
for name in sorted(os.listdir(d)):
    if not (name.startswith('fig5-') and name.endswith('.tsv')):
        continue
    lines = [l.rstrip('\n').split('\t') for l in open(os.path.join(d, name)) if l.strip()]
    if lines[0][2:] != ['compute_s', 'exposed_s', 'wait_s', 'ttft_s', 'overlapped_s', 'comm_s']:
        bad.append('%s: columns %s' % (name, lines[0]))
        continue
    for r in lines[1:]:
        comp, exposed, wait, ttft, over, comm = map(float, r[2:8])
        rows += 1
        hidden += over > 1e-6
        if abs(comp + exposed + wait - ttft) > 1e-9 or exposed < -1e-12 or exposed > comm + 1e-9 or \
                abs(over - max(0.0, comp + comm - ttft)) > 1e-9 or over > comp + 1e-9:
            bad.append('%s %s: compute %.4f exposed %.4f wait %.4f ttft %.4f under compute %.4f comm %.4f'
                       % (name, r[1], comp, exposed, wait, ttft, over, comm))
print('\n'.join(bad))
sys.exit(0 if rows >= 8 and hidden >= 2 and not bad else 1)
PY
report $? "fig5: every bar adds up to its TTFT; the communication drawn apart ran under compute"

# Points that do not fit: none is drawn, each is named in its figure's caption list.
python3 - "$tmp/fig/data" "$tmp/f.db" <<'PY'
import os, sqlite3, sys
d, db = sys.argv[1:3]
c = sqlite3.connect(db)
bad = []
for fig, n in c.execute("SELECT figure, count(*) FROM sweep_point WHERE state = 'infeasible' GROUP BY figure"):
    f = os.path.join(d, fig + '.infeasible')
    listed = sum(int(l.split('\t')[7]) for l in open(f)) if os.path.exists(f) else 0
    if listed != n:
        bad.append('%s: %d infeasible points, %d in its caption list' % (fig, n, listed))
print('\n'.join(bad))
sys.exit(0 if not bad and c.execute("SELECT count(*) FROM sweep_point WHERE state = 'infeasible'").fetchone()[0] > 0 else 1)
PY
report $? "infeasible points: every one named in its figure's caption list"

# ... and each figure that leaves points out says so in its caption (the SVG's text): one line per
# model, p and TP degree of NAME.infeasible (fig9a and fig13 left out their plans that do not fit
# without a word). Every sweep figure's script reads oom_note.
python3 - "$tmp/fig" "$src/plots" <<'PY'
import os, re, sys
out, plots = sys.argv[1:3]
bad, named = [], 0
for f in sorted(os.listdir(os.path.join(out, 'data'))):
    if not f.endswith('.infeasible'):
        continue
    name = f[:-len('.infeasible')]
    n = sum(1 for l in open(os.path.join(out, 'data', f)) if l.strip())
    texts = re.findall(r'>([^<]*)<', open(os.path.join(out, name + '.svg'), encoding='utf-8').read())
    said = [t for t in texts if 'GiB needed per GPU' in t]
    if len(said) != n or (n and not any(t.startswith('not drawn (do not fit in GPU memory)') for t in texts)):
        bad.append('%s: %d groups of points left out, %d named in its caption' % (name, n, len(said)))
    named += n
for f in sorted(os.listdir(plots)):
    if re.match(r'fig\d+[a-z]?\.gp$', f) and f != 'fig14.gp' and 'oom_note' not in open(os.path.join(plots, f)).read():
        bad.append('%s does not print oom_note' % f)
print('\n'.join(bad))
sys.exit(0 if named >= 3 and not bad else 1)
PY
report $? "a figure that leaves points out names them in its caption"

# Titles: every figure says what its numbers are (simulated, or measured on what).
python3 - "$tmp/fig" <<'PY'
import os, re, sys
d = sys.argv[1]
bad = []
for f in sorted(os.listdir(d)):
    if f.endswith('.svg'):
        texts = [t for t in re.findall(r'>([^<]*)<', open(os.path.join(d, f), encoding='utf-8').read()) if t.strip()]
        if not any('simulated' in t or 'measured on' in t for t in texts):
            bad.append(f)
print(' '.join(bad))
sys.exit(0 if not bad else 1)
PY
report $? "every figure's title says simulated or measured on what"

# Layouts over tensor-parallel stages (fig9a's Llama-2-70B panel, fig13): each series names its
# TP degree in the legend, TP names its GPUs; a layout's TSP, ring or KVR is never labelled as
# the plain scheme (which does not fit).
python3 - "$tmp/fig" <<'PY'
import os, re, sys
d = sys.argv[1]
bad = []
for name, want in (('fig9a', {'TSP', 'TSP-causal', 'ring', 'KVR-E', 'KVR-S'}), ('fig13', {'TSP-causal', 'ring', 'KVR-S'})):
    texts = set(re.findall(r'>([^<]*)<', open(os.path.join(d, name + '.svg'), encoding='utf-8').read()))
    for s in want:
        if not any(re.fullmatch(re.escape(s) + r' ×\d+(–\d+)?', t) for t in texts):
            bad.append('%s: no "%s ×t" in the legend' % (name, s))
    if not any(re.fullmatch(r'TP-\d+', t) for t in texts) or 'TP' in texts:
        bad.append('%s: TP without its GPU count' % name)
for name in ('fig9a', 'fig13'):
    for l in open(os.path.join(d, 'data', name + '.list')):
        if 'llama-2-70b' in l or 'x8' in l:
            f = l.split('\t')[0]
            for r in open(os.path.join(d, 'data', f)):
                c = r.rstrip('\n').split('\t')
                if len(c) == 5 and c[2] != 'ctx_tokens' and c[0] != 'TP' and int(c[4]) < 2:
                    bad.append('%s %s: %s at %s has no layout (t %s)' % (name, f, c[0], c[2], c[4]))
print('\n'.join(bad[:10]))
sys.exit(0 if not bad else 1)
PY
report $? "fig9a's 70B panel and fig13: every layout labelled with its t, TP with its GPUs"

# fig10, the lookup table: at every context the ranks' bands tile [0, 1] in rank order, and
# the 16k column is what kvr lookup returns from the same database.
python3 - "$tmp/fig/data" "$kvr" "$tmp/f.db" <<'PY'
import json, os, subprocess, sys
d, kvr, db = sys.argv[1:4]
bad, panels = [], 0
for l in open(os.path.join(d, 'fig10.list')):
    name, title = l.rstrip('\n').split('\t')
    model, machine, p = title.split(',')
    p = int(p[2:])
    bands = {}
    for r in open(os.path.join(d, name)):
        f = r.rstrip('\n').split('\t')
        if len(f) == 5 and f[1] != 'ctx_tokens':
            bands.setdefault(int(f[1]), []).append((int(f[0]), float(f[2]), float(f[3]), float(f[4])))
    for ctx, b in bands.items():
        b.sort()
        edges = [0.0] + [x[3] for x in b]
        if [x[0] for x in b] != list(range(p)) or any(abs(x[2] - edges[i]) > 1e-12 or abs(x[3] - x[2] - x[1]) > 1e-12 for i, x in enumerate(b)) or abs(edges[-1] - 1) > 1e-12:
            bad.append('%s %d: bands %s' % (title, ctx, b))
    r = subprocess.run([kvr, 'lookup', '--db', db, '--model', model, '--machine', machine, '--gpus', str(p), '--ctx', '16k', '--json'], capture_output=True, text=True)
    want = json.loads(r.stdout)['partition_tokens'] if r.returncode == 0 else None
    got = [round(x[1] * 16384) for x in sorted(bands.get(16384, []))]
    if want != got:
        bad.append('%s at 16k: drawn %s, kvr lookup %s' % (title, got, want))
    panels += 1
print('\n'.join(bad[:5]))
sys.exit(0 if panels == 8 and not bad else 1)
PY
report $? "fig10: each context's bands tile the context in rank order, and are kvr lookup's partition"

# fig8: every series runs on the figure's four GPUs, so a slow link among them slows the searched
# plan too (on an 8-GPU profile the search had mapped the chain onto the other four GPUs).
python3 - "$tmp/fig/data" <<'PY'
import os, sys
d = sys.argv[1]
kvrs = {}
for l in open(os.path.join(d, 'fig8-0.tsv')):
    f = l.rstrip('\n').split('\t')
    if len(f) == 4 and f[0] == 'KVR-S' and f[2] != 'link_from':
        kvrs[int(f[2])] = float(f[3])
print('# fig8 KVR-S by slow link:', kvrs)
sys.exit(0 if len(kvrs) == 4 and all(kvrs[k] > kvrs[-1] for k in (0, 1, 2)) else 1)
PY
report $? "fig8: a slow link among the four GPUs slows KVR-S too (its plan runs on them)"

# fig14, measured against simulated: every row of the committed database is plotted (a
# multi-GPU row once, a single-GPU row in each panel of its model), its measured point is the row's median TTFT, and its predicted point is what kvr sim
# gives for the same plan (partition, links) on the profile the figure names (a one-rank run from
# before the executor pruned its last layer: with that layer on every row, from kvr sim's timeline).
python3 - "$tmp/fig/data" "$src/data/measurements/h100x4-multi.sqlite" "$kvr" \
    "$src/data/machines/h100x4-nccl.ini" <<'PY'
import json, os, sqlite3, subprocess, sys
d, db, kvr, machine = sys.argv[1:5]
titles = dict(l.rstrip('\n').split('\t') for l in open(os.path.join(d, 'fig14.list')))
rows = []
for name, title in titles.items():
    model = title.split(',')[0]
    for l in open(os.path.join(d, name)):
        f = l.rstrip('\n').split('\t')
        if len(f) == 8 and f[1] != 'ctx_tokens':
            rows.append((model,) + tuple(f))
c = sqlite3.connect(db)
want = c.execute('SELECT model, p, ctx_tokens, scheme, method, link_settings, ttft_median_s,'
                 ' partition_tokens, run.started_unix_s FROM measurement'
                 ' JOIN run ON run.id = measurement.run_id').fetchall()
PRUNED_SINCE = 1796122969  # b4e1d92: the executor's one-rank last layer on its last row


def full_last_layer(cmd):
    # a one-rank run before the pruning: single's timeline with the last layer's attention and
    # post as every other layer's (kvr sim models the pruned executor)
    tl = os.path.join(d, 'prune-tl.tsv')
    r = subprocess.run(cmd + ['--timeline', tl], capture_output=True, text=True)
    if r.returncode:
        return float('nan')
    ev = {}
    for l in list(open(tl))[1:]:
        f = l.split('\t')
        ev[(int(f[1]), f[3])] = float(f[5]) - float(f[4])
    last = max(k[0] for k in ev if k[1] == 'post')
    return (json.loads(r.stdout)['ttft_s'] + ev[(0, 'attn')] + ev[(0, 'post')] -
            ev[(last, 'attn')] - ev[(last, 'post')])
bad, seen = [], set()
for model, label, ctx, meas, pred, scheme, method, part, links in rows:
    p = len(part.split(','))
    key = (model, p, int(ctx), scheme, method, links)
    hits = [w for w in want if w[:6] == key]
    if len(hits) != 1 or (key in seen and scheme != 'single'):
        bad.append('%s: %d rows in the database' % (key, len(hits)))
        continue
    seen.add(key)  # a single-GPU row is drawn in every panel of its model
    if abs(float(meas) / hits[0][6] - 1) > 1e-8 or hits[0][7].replace(';', ',') != part:
        bad.append('%s: measured %s, committed %s (%s)' % (key, meas, hits[0][6], hits[0][7]))
    cmd = [kvr, 'sim', '--model', model, '--machine', machine, '--gpus', str(p), '--ctx', ctx,
           '--scheme', scheme, '--json', '--allow-oom']
    if scheme in ('kvr', 'ring-pass'):
        cmd += ['--partition', part]
    for o in links.split('+')[1:]:
        k, v = o.split('=', 1)
        cmd += ['--' + k, v]
    r = subprocess.run(cmd, capture_output=True, text=True)
    sim = json.loads(r.stdout)['ttft_s'] if r.returncode == 0 else float('nan')
    if p == 1 and hits[0][8] < PRUNED_SINCE:
        sim = full_last_layer(cmd)
    if not abs(float(pred) / sim - 1) < 1e-7:
        bad.append('%s: predicted %s, kvr sim %s (%s)' % (key, pred, sim, ' '.join(cmd[2:])))
print('\n'.join(bad[:10]))
sys.exit(0 if len(seen) == len(want) and len(want) >= 100 and not bad else 1)
PY
report $? "fig14: each measured point is its committed row, each predicted point is kvr sim of its plan"

mkdir "$tmp/f14"
"$kvr" plot fig14 --out "$tmp/f14" >"$tmp/out" 2>&1 && [ -s "$tmp/f14/fig14.png" ]
report $? "kvr plot fig14 needs no database" "$(tail -3 "$tmp/out")"
expect 2 "draws the committed measurements" "kvr plot fig14 --db (a database it would not read) exits 2" -- \
    plot fig14 --db "$tmp/f.db" --out "$tmp/f14"

# kvr validate's figures draw a line through each block of validate-1.tsv: a block is one model,
# scheme, method, p and links, so no context comes twice (the 4xH100 blocks mixed full speed and
# 10 GB/s runs: the lines went back and forth between them).
mkdir "$tmp/val"
"$kvr" validate --multi-gpu --out "$tmp/val" >"$tmp/out" 2>&1
python3 - "$tmp/val/data/validate-1.tsv" <<'PY'
import sys
blocks, cur, bad = [], None, []
for l in open(sys.argv[1]):
    f = l.rstrip('\n').split('\t')
    if not l.strip():
        cur = None
    elif cur is None:
        cur = [f[0], []]
        blocks.append(cur)
    else:
        cur[1].append(int(f[1]))
for name, ctx in blocks:
    if len(ctx) != len(set(ctx)) or ctx != sorted(ctx):
        bad.append('%s: contexts %s' % (name, ctx))
print('\n'.join(bad[:5]))
sys.exit(0 if len(blocks) >= 40 and not bad else 1)
PY
report $? "kvr validate --multi-gpu: each line of its figures joins the runs of one link setting" "$(tail -3 "$tmp/out")"

# tsp-paper: K/V expanded to every query head. MHA (Llama-7B): exactly tsp. MQA (Falcon-7B, 71
# query heads over 1 KV head): the all-gather moves 71 times tsp's bytes.
for m in llama-7b falcon-7b; do
    "$kvr" sim --model $m --machine a100-nvlink --gpus 8 --ctx 16k --scheme tsp --json >"$tmp/t.json" &&
        "$kvr" sim --model $m --machine a100-nvlink --gpus 8 --ctx 16k --scheme tsp-paper --json >"$tmp/tp.json"
    python3 - "$tmp/t.json" "$tmp/tp.json" "$m" <<'PY'
import json, sys
t, tp, m = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
ratio = tp['bytes_sent_total'] / t['bytes_sent_total']
want = 1 if m == 'llama-7b' else 71
same_ttft = abs(tp['ttft_s'] - t['ttft_s']) < 1e-12
sys.exit(0 if abs(ratio - want) < 1e-9 and (same_ttft if want == 1 else tp['ttft_s'] > t['ttft_s']) else 1)
PY
    report $? "tsp-paper on $m: bytes x(heads / KV heads) of tsp, and tsp's TTFT when they are equal"
done

# kvr paper: the reproduction table from the paper sweep's points.
"$kvr" paper --db "$tmp/f.db" --json >"$tmp/paper.json" 2>"$tmp/err"
python3 - "$tmp/paper.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = d['claims']
ok = len(rows) == 4 * 3 * 4 and all(r['speedup_16k'] and r['speedup_16k'] > 1 for r in rows)
ok = ok and all(r['reached'] == (r['speedup_best'] >= r['paper_speedup']) for r in rows)
sys.exit(0 if ok else 1)
PY
report $? "kvr paper --json: every claim x baseline x profile (4), each with a speedup above 1" "$(head -c 300 "$tmp/paper.json") $(cat "$tmp/err")"
# ... and each of its 16k numbers is today's simulator: the baseline's TTFT is kvr sim of it, KVR-S's
# is the plan kvr search finds, on the same profile and links.
python3 - "$tmp/paper.json" "$kvr" "$src/data/machines" "$tmp" <<'PY'
import json, os, subprocess, sys
d, kvr, machines, tmp = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4]
def run(*a):
    r = subprocess.run([kvr] + list(a) + ['--json'], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else None
bad, n = [], 0
for r in d['claims']:
    m = 'llama-7b' if r['claim'].startswith('Llama') else 'falcon-7b'
    h = r['profile'] if r['profile'] == 'a100-nvlink' else os.path.join(machines, r['profile'] + '.ini')
    bw = ['--bw', '10GB/s'] if '10 GB/s' in r['claim'] else []
    base = run('sim', '--model', m, '--machine', h, '--gpus', '8', '--ctx', '16k', '--scheme',
               r['baseline'].lower(), *bw)
    db = os.path.join(tmp, 'paper-check.db')
    if os.path.exists(db): os.remove(db)
    kvrs = run('search', '--model', m, '--machine', h, '--gpus', '8', '--ctx', '16k', '--db', db, *bw)
    got = (base['ttft_s'] if base else None, kvrs['rows'][0]['predicted_ttft_s'] if kvrs else None)
    n += 1
    if None in got or abs(got[0] / r['baseline_ttft_16k_s'] - 1) > 1e-9 or \
            abs(got[1] / r['kvrs_ttft_16k_s'] - 1) > 1e-9 or \
            abs(got[0] / got[1] / r['speedup_16k'] - 1) > 1e-9:
        bad.append('%s %s %s: table %s / %s, now %s' % (r['claim'], r['baseline'], r['profile'],
                   r['baseline_ttft_16k_s'], r['kvrs_ttft_16k_s'], got))
print('\n'.join(bad[:5]))
sys.exit(0 if n == 48 and not bad else 1)
PY
report $? "kvr paper: every 16k speedup is kvr sim of the baseline over the plan kvr search finds"
printf '[sweep]\nfigure = fig1\n[axes]\nmodels = llama-7b\nmachines = a100-nvlink\ngpus = 2\nctx = 1k\nschemes = tsp\n' >"$tmp/one.ini"
"$kvr" sweep "$tmp/one.ini" --db "$tmp/one.db" >/dev/null 2>&1
expect 2 "no points of the paper sweep" "kvr paper on a database without the paper sweep exits 2" -- paper --db "$tmp/one.db"
expect 2 "cannot open database" "kvr paper on a missing database exits 2" -- paper --db "$tmp/missing.db"

# The README's figure table: each row names sweep files whose figure key is the row's, a plot
# script that exists, and a figure kvr plot all rendered; every plot script and sweep file has
# a row (paper.ini is kvr paper's, in the section below the table).
python3 - "$src" "$tmp/fig" <<'PY'
import os, re, sys
src, out = sys.argv[1:3]
bad, names = [], set()
rows = [l for l in open(os.path.join(src, 'README.md')) if re.match(r'\| fig\d', l)]
for l in rows:
    c = [x.strip() for x in l.strip().strip('|').split('|')]
    name = c[0]
    names.add(name)
    for sw in re.findall(r'`([^`]+\.ini)`', c[2]):
        path = os.path.join(src, sw if '/' in sw else 'experiments/sweeps/' + sw)
        if not os.path.exists(path):
            bad.append('%s: no %s' % (name, sw))
        elif sw.endswith('.ini') and 'sweeps' in path:
            m = re.search(r'^figure\s*=\s*(\S+)', open(path).read(), re.M)
            if not m or m.group(1) != name:
                bad.append('%s: %s fills %s' % (name, sw, m and m.group(1)))
    gp = re.findall(r'`([^`]+\.gp)`', c[3])
    if [os.path.basename(g) for g in gp] != [name + '.gp'] or not os.path.exists(os.path.join(src, 'plots', name + '.gp')):
        bad.append('%s: plot script %s' % (name, gp))
    if not os.path.exists(os.path.join(out, name + '.png')):
        bad.append('%s: not rendered' % name)
table = ''.join(rows)
for f in os.listdir(os.path.join(src, 'plots')):
    if re.match(r'fig\d+[a-z]?\.gp$', f) and f[:-3] not in names:
        bad.append('plots/%s: no row' % f)
for f in os.listdir(os.path.join(src, 'experiments', 'sweeps')):
    if f.endswith('.ini') and f != 'paper.ini' and not re.search(r'`(experiments/sweeps/)?' + re.escape(f) + '`', table):
        bad.append('experiments/sweeps/%s: no row' % f)
print('\n'.join(bad))
sys.exit(0 if len(rows) >= 16 and not bad else 1)
PY
report $? "README's figure table: every row's sweep files, plot script and figure exist"

for f in "$src"/plots/fig*.gp; do
    b=$(basename "$f" .gp)
    [ -s "$tmp/fig/$b.png" ] && [ -s "$tmp/fig/$b.svg" ]; report $? "$b renders PNG and SVG"
done

echo "1..$n"
[ "$failed" = 0 ]
