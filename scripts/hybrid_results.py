#!/usr/bin/env python3
"""The hybrid layouts' results (#21), simulated: Llama-2-70B on 8 GPUs of one node and on two
nodes of 8, 4k-128k. For each scheme (TP-p; tsp-causal, ring and kvr over p/t stages of t GPUs)
its best t among the plans that fit (the simulator's memory model: every rank's `fits`), without
and with Megatron's sequence parallelism (--sp). tsp-causal and ring run on the block mapping (a
stage on consecutive GPUs: TP inside a node) and the best of block and strided; ring with
--ring-pass auto. kvr's partition and mapping are searched per t (`kvr search --tp auto`, into a
scratch database) without SP, and re-simulated with it.

Usage: scripts/hybrid_results.py [KVR] > data/hybrid-results.md   (KVR: build/experiments/kvr)"""
import json
import os
import subprocess
import sys
import tempfile

KVR = next((a for a in sys.argv[1:] if not a.startswith("--")), "build/experiments/kvr")
MODEL, LAYERS = "llama-2-70b", 80
CTX = [4096, 8192, 16384, 32768, 65536, 131072]
SETUPS = [  # (title, machine, gpus)
    ("8 x A100-80GB (published efficiencies)", "data/machines/a100-published.ini", 8),
    ("8 x A100-80GB (a100-nvlink preset)", "a100-nvlink", 8),
    ("8 x H100-80GB (h100-nvlink preset)", "h100-nvlink", 8),
    ("2 x 8 A100, 25 GB/s between nodes", "data/machines/a100-2x8.ini", 16),
    ("2 x 8 H100, 50 GB/s between nodes", "data/machines/h100-2x8.ini", 16),
    ("2 x 8 H100, 25 GB/s between nodes", "data/machines/h100-2x8-25.ini", 16),
]


def kvr(*args, ok=(0,)):
    r = subprocess.run([KVR, *args], capture_output=True, text=True)
    if r.returncode not in ok:
        sys.exit(f"kvr {' '.join(args)}: exit {r.returncode}: {r.stderr}")
    return json.loads(r.stdout)


def sim(machine, p, ctx, scheme, t, sp, partition=None, gmap=None, fwd=None):
    a = ["sim", "--model", MODEL, "--machine", machine, "--gpus", str(p), "--ctx", str(ctx),
         "--scheme", scheme, "--json", "--allow-oom", "--tp", str(t)]
    a += ["--sp"] if sp and t > 1 else []
    a += ["--ring-pass", "auto"] if scheme == "ring" else []
    a += ["--partition", ",".join(map(str, partition))] if partition else []
    a += ["--map", gmap] if gmap else []
    a += ["--kv-forward", fwd] if fwd else []
    d = kvr(*a)
    d["fits_all"] = all(r["fits"] for r in d["ranks"])
    return d


def tps(p):  # t dividing p and Llama-2-70B's 64 heads, dividing or a multiple of its 8 KV heads
    return [t for t in range(1, p + 1) if p % t == 0 and 64 % t == 0 and (8 % t == 0 or t % 8 == 0)]


def best_even(machine, p, ctx, scheme, sp):
    best = None
    for t in tps(p):
        for m in ("block", "strided") if 1 < t < p else ("block",):
            d = sim(machine, p, ctx, scheme, t, sp, gmap=m)
            if d["fits_all"] and (best is None or d["ttft_s"] < best["ttft_s"]):
                best = d
    return best


def kvr_rows(db, machine, p, ctx):
    d = kvr("search", "--model", MODEL, "--machine", machine, "--gpus", str(p), "--ctx",
            str(ctx), "--tp", "auto", "--kv-forward", "auto", "--db", db, "--json", "--quiet",
            ok=(0, 3))
    return d["rows"]


def best_kvr(rows, machine, p, ctx, sp):
    best = None
    for r in rows:
        d = sim(machine, p, ctx, "kvr", r["tp"], sp, r["partition_tokens"],
                ",".join(map(str, r["mapping"])), r["kv_forward"])
        if d["fits_all"] and (best is None or d["ttft_s"] < best["ttft_s"]):
            best = d
    return best


def cell(d):
    if not d:
        return "none fits"
    extra = "" if d["map"] == "block" else ", " + d["map"]
    if d.get("kv_forward", "whole") != "whole":
        extra += ", " + d["kv_forward"]
    return "%.3f s (t=%d%s)" % (d["ttft_s"], d["tp"], extra)


def main():
    print("# Hybrid layouts (#21): Llama-2-70B, simulated\n")
    ver = subprocess.run([KVR, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print("Written by `scripts/hybrid_results.py` (%s). Every plan drawn fits (the simulator's "
          "memory model: weights / t + the KV each GPU holds + activations against the card's "
          "capacity less its 2 GiB reserve). TP-p: Megatron TP over all p GPUs (the layout with "
          "t = p, the tp scheme's numbers); x t: p/t stages of t GPUs, each scheme at its best t "
          "(and mapping: block, a stage on consecutive GPUs, unless said); kvr's partition and "
          "mapping searched per t without SP and re-simulated with it. The plain schemes "
          "(t = 1) never fit: 129 GiB of weights per GPU. Last column: the bytes per layer that "
          "cross between the nodes in the best kvr plan (all t chains; with the block mapping "
          "the KV hand-off alone). kvr's hand-off mode (kv_forward) is searched too (whole unless "
          "said). On two nodes TP-16 spans the slow link; TP-8 on one of the nodes is the "
          "deployment the layouts have to beat.\n" % ver)
    with tempfile.TemporaryDirectory() as tmp:
        for title, machine, p in SETUPS:
            print(f"\n### {title}, Llama-2-70B, p = {p}\n")
            one = " TP-8 on one node | kvr / TP-8 |" if p > 8 else ""
            print("| ctx | SP | TP-%d | tsp-causal x t | ring x t | kvr x t | kvr / TP-%d | "
                  "kvr / best other |%s kvr bytes between nodes per layer |" % (p, p, one))
            print("|---|---|---|---|---|---|---|---|%s---|" % ("---|---|" if p > 8 else ""))
            for ctx in CTX:
                rows = kvr_rows(os.path.join(tmp, "l%d-%d.db" % (p, ctx)), machine, p, ctx)
                for sp in (False, True):
                    tp = sim(machine, p, ctx, "kvr", p, sp)  # one stage of p: TP-p
                    tsp = best_even(machine, p, ctx, "tsp-causal", sp)
                    ring = best_even(machine, p, ctx, "ring", sp)
                    k = best_kvr(rows, machine, p, ctx, sp)
                    other = min(x["ttft_s"] for x in (tsp, ring) if x)
                    if p > 8:  # the same model on one of the nodes, TP-8
                        t8 = sim(machine, 8, ctx, "kvr", 8, sp)
                        one = " %.3f s%s | %.3f |" % (t8["ttft_s"], "" if t8["fits_all"] else
                                                      " (does not fit)", t8["ttft_s"] / k["ttft_s"])
                    print("| %dk | %s | %.3f s%s | %s | %s | %s | %.3f | %.3f |%s %s |" % (
                        ctx // 1024, "yes" if sp else "no", tp["ttft_s"],
                        "" if tp["fits_all"] else " (does not fit)", cell(tsp), cell(ring),
                        cell(k), tp["ttft_s"] / k["ttft_s"], other / k["ttft_s"], one,
                        "%.1f MB" % (k["bytes_inter_node"] / LAYERS / 1e6) if p > 8 else "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
