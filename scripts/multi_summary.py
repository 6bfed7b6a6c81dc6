#!/usr/bin/env python3
"""Issue 9's summary of a multi-GPU measurement database (kvr exec rows): TTFT per scheme at
full speed, the KVR-S/TSP speed-up, KVR's scaling efficiency against single / p, and the
emulated-link runs. Usage: multi_summary.py DB (default data/measurements/h100x4-multi.sqlite)."""
import sqlite3
import sys

db = sys.argv[1] if len(sys.argv) > 1 else 'data/measurements/h100x4-multi.sqlite'
c = sqlite3.connect(db)
# the plain schemes only: the hybrid layouts' rows (schema 8: tp > 1) are summarised apart
plain = " WHERE tp = 1" if "tp" in [r[1] for r in c.execute("PRAGMA table_info(measurement)")] else ""
rows = c.execute("SELECT model, p, ctx_tokens, scheme, method, link_settings, ttft_median_s "
                 "FROM measurement" + plain).fetchall()
t = {}
for model, p, ctx, scheme, method, links, ttft in rows:
    links = links.split('+', 1)[1] if '+' in links else 'full'
    name = method.upper() if scheme == 'kvr' else scheme
    t[(model, p, ctx, name, links)] = ttft
gpu = c.execute("SELECT DISTINCT gpu FROM measurement").fetchone()[0]
print(f"# Multi-GPU prefill on {gpu} ({db})\n")
cols = ['single', 'KVR-S/P', 'KVR-E', 'tsp', 'tsp-causal', 'ring-pass']
print("TTFT in ms at full link speed; KVR-P at 24k (between the table's rows), KVR-S elsewhere.\n")
print("| model | p | ctx | " + " | ".join(cols) + " | KVR/TSP | efficiency |")
print("|" + "---|" * (len(cols) + 5))
for model in sorted({r[0] for r in rows}):
    for p in sorted({r[1] for r in rows if r[1] > 1}):
        for ctx in sorted({r[2] for r in rows}):
            g = lambda n: t.get((model, p, ctx, n, 'full'))
            kvr = t.get((model, p, ctx, 'KVR-S', 'full')) or t.get((model, p, ctx, 'KVR-P', 'full'))
            single = t.get((model, 1, ctx, 'single', 'full'))
            vals = [single, kvr, g('KVR-E'), g('tsp'), g('tsp-causal'), g('ring-pass')]
            if not kvr:
                continue
            cells = ['%.1f' % (v * 1e3) if v else '–' for v in vals]
            sp = '%.2f' % (g('tsp') / kvr) if g('tsp') else '–'
            eff = '%.1f%%' % (100 * single / (p * kvr)) if single else '–'
            print(f"| {model} | {p} | {ctx // 1024}k | " + " | ".join(cells) + f" | {sp} | {eff} |")
print("\nEmulated links (TTFT in ms): every link at 10 GB/s, and link 0-1 alone at 10 GB/s.\n")
print("| model | p | ctx | links | KVR-S | tsp | ring-pass | KVR-S/TSP |")
print("|---|---|---|---|---|---|---|---|")
for links in ('bw=10GB/s', 'link=0-1=10GB/s'):
    for model in sorted({r[0] for r in rows}):
        for p in sorted({r[1] for r in rows if r[1] > 1}):
            for ctx in sorted({r[2] for r in rows}):
                k = t.get((model, p, ctx, 'KVR-S', links))
                if not k:
                    continue
                ts, rp = t.get((model, p, ctx, 'tsp', links)), t.get((model, p, ctx, 'ring-pass', links))
                print(f"| {model} | {p} | {ctx // 1024}k | {links} | {k * 1e3:.1f} | "
                      f"{ts * 1e3:.1f} | {rp * 1e3:.1f} | {ts / k:.2f} |")
