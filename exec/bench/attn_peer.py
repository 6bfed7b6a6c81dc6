#!/usr/bin/env python3
"""Attention alone, kvrun against PyTorch SDPA, side by side on one GPU in one run.

For each shape: `kvr bench attention --json` (each named kvrun variant; the GPU tests check
them against the plain kernel) and torch.nn.functional.scaled_dot_product_attention with the
default backend choice, cuDNN forced and FlashAttention(-2) forced, in alternating rounds. bf16, causal (bottom-right aligned
when there is a prefix), random inputs, median of CUDA-event timings after warm-ups. TFLOP/s
count unmasked pairs only (inside the window for a sliding window). Writes one JSON line per
measurement and a markdown table with the versions.

usage: attn_peer.py KVR OUT.jsonl OUT.md [--commit HASH] [--quick]
"""
import argparse
import json
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

K = 1024
# name, prefix s, queries c, heads, kv heads, head dim, window
SHAPES = [
    ("16k MHA hd128", 0, 16 * K, 32, 32, 128, 0),
    ("32k MHA hd128", 0, 32 * K, 32, 32, 128, 0),
    ("16k MQA 71/1 hd64", 0, 16 * K, 71, 1, 64, 0),
    ("32k GQA 4:1 hd128", 0, 32 * K, 32, 8, 128, 0),
    ("32k GQA 8:1 hd128", 0, 32 * K, 32, 4, 128, 0),
    ("2k after 30k MHA hd128", 30 * K, 2 * K, 32, 32, 128, 0),
    ("512 after 31.5k GQA 4:1", 31 * K + 512, 512, 32, 8, 128, 0),
    ("32k GQA 4:1 window 4096", 0, 32 * K, 32, 8, 128, 4096),
    # short contexts: a prefill on one GPU, and a chain rank's chunk (KVR at 16k over 4 GPUs)
    ("2k MHA hd128", 0, 2 * K, 32, 32, 128, 0),
    ("4k MHA hd128", 0, 4 * K, 32, 32, 128, 0),
    ("8k MHA hd128", 0, 8 * K, 32, 32, 128, 0),
    ("2k GQA 4:1 hd128", 0, 2 * K, 32, 8, 128, 0),
    ("3k after 13k MHA hd128", 13 * K, 3 * K, 32, 32, 128, 0),
]
BACKENDS = [("sdpa-default", None), ("sdpa-cudnn", SDPBackend.CUDNN_ATTENTION),
            ("sdpa-flash", SDPBackend.FLASH_ATTENTION)]


def pairs(s, c, w):
    if not w:
        return c * s + c * (c + 1) // 2
    return sum(min(p + 1, w) for p in range(s, s + c))


def time_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        ts.append(e0.elapsed_time(e1))
    return statistics.median(ts)


def sdpa_case(s, c, h, g, d, w, backend):
    """A closure running SDPA on this shape, and a note on how it was asked."""
    gen = torch.Generator(device="cuda").manual_seed(1)

    def uniform(*shape):  # U(-1, 1), as kvr bench attention fills Q, K and V (kvr_cuda_bench.c)
        return (torch.rand(*shape, device="cuda", generator=gen) * 2 - 1).to(torch.bfloat16)
    q, k, v = uniform(1, h, c, d), uniform(1, g, s + c, d), uniform(1, g, s + c, d)
    kw, note = {}, []
    if w:
        i = torch.arange(s, s + c, device="cuda")[:, None]
        j = torch.arange(s + c, device="cuda")[None, :]
        kw["attn_mask"] = (j <= i) & (i - j < w)
        note.append("window as a boolean mask")
    elif s:
        from torch.nn.attention.bias import causal_lower_right
        kw["attn_mask"] = causal_lower_right(c, s + c)
        note.append("causal_lower_right")
    else:
        kw["is_causal"] = True
    if g != h:
        kw["enable_gqa"] = True
        note.append("enable_gqa")

    def run():
        if backend is None:
            return F.scaled_dot_product_attention(q, k, v, **kw)
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(q, k, v, **kw)
    try:
        run()
        torch.cuda.synchronize()
    except Exception as e:  # this backend refuses the shape: expand K/V for GQA and retry
        if g == h:
            raise
        k2, v2 = k.repeat_interleave(h // g, dim=1), v.repeat_interleave(h // g, dim=1)
        kw.pop("enable_gqa")
        note = [n for n in note if n != "enable_gqa"] + [f"K/V expanded ({type(e).__name__})"]
        k, v = k2, v2
        run()
        torch.cuda.synchronize()
    return run, "; ".join(note)


def kvr_ms(a, s, c, h, g, d, w, var):
    j = kvr_case(a.kvr, s, c, h, g, d, w, int(var), a.reps)
    return j["time_s"] * 1e3, ""


def sdpa_ms(a, s, c, h, g, d, w, be):
    fn, note = sdpa_case(s, c, h, g, d, w, be)
    return time_ms(fn, 3, a.reps), note


def measure(row, key, rnd, run, flops):
    """One round of one implementation: keeps the fastest round and every round's time."""
    try:
        ms, note = run()
    except Exception as e:  # every round's error kept: a later one must not hide behind a time
        err = f"round {rnd}: {type(e).__name__}: {str(e)[:160]}"
        row.setdefault(key, {}).setdefault("errors", []).append(err)
        row[key].setdefault("error", err)
        print(row["shape"], key, "error", err, flush=True)
        return
    r = row.setdefault(key, {"rounds_ms": []})
    r.setdefault("rounds_ms", []).append(ms)
    r["ms"] = min(r["rounds_ms"])
    r["tflops"] = flops / r["ms"] / 1e9
    if note:
        r["note"] = note
    print(row["shape"], key, f"round {rnd}: {ms:.3f} ms, {flops / ms / 1e9:.0f} TFLOP/s",
          flush=True)


def kvr_case(kvr, s, c, h, g, d, w, variant, reps):
    cmd = [kvr, "bench", "attention", "--ctx", str(c), "--prefix", str(s), "--heads", str(h),
           "--kv-heads", str(g), "--head-dim", str(d), "--window", str(w), "--variant",
           str(variant), "--reps", str(reps), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr.strip())
    return json.loads(out.stdout)


def versions(kvr, commit):
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
    kv = subprocess.run([kvr, "--version"], capture_output=True, text=True).stdout.strip()
    import transformers
    return {"gpu": smi, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "transformers": transformers.__version__,
            "kvr": kv.replace("\n", " "), "commit": commit}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kvr")
    ap.add_argument("jsonl")
    ap.add_argument("md")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--variants", default="0", help="kvrun variants, head_dim 128")
    ap.add_argument("--variants64", default="0,6", help="kvrun variants, head_dim 64")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="first three shapes only")
    ap.add_argument("--shape", action="append", default=[],
                    help="only this shape (its name as in the table); repeatable")
    a = ap.parse_args()
    if a.quick and a.shape:
        ap.error("--quick and --shape both choose the shapes: give one")
    names = [x[0] for x in SHAPES]
    for n in a.shape:
        if n not in names:
            ap.error(f"--shape {n!r}: no such shape (one of: {', '.join(names)})")
    ver = versions(a.kvr, a.commit)
    rows = []
    shapes = SHAPES[:3] if a.quick else SHAPES
    if a.shape:
        shapes = [x for x in SHAPES if x[0] in a.shape]
    with open(a.jsonl, "w") as f:
        f.write(json.dumps({"versions": ver}) + "\n")
        for name, s, c, h, g, d, w in shapes:
            flops = 4 * d * h * pairs(s, c, w)
            row = {"shape": name, "prefix": s, "queries": c, "heads": h, "kv_heads": g,
                   "head_dim": d, "window": w, "flops": flops}
            # rounds alternate kvrun and SDPA so that neither always runs on a hotter card;
            # each keeps its best round
            for rnd in range(a.rounds):
                for var in (a.variants64 if d == 64 else a.variants).split(","):
                    measure(row, f"kvrun-v{var}", rnd, lambda: kvr_ms(a, s, c, h, g, d, w, var),
                            flops)
                for bname, be in BACKENDS:
                    measure(row, bname, rnd, lambda: sdpa_ms(a, s, c, h, g, d, w, be), flops)
                    torch.cuda.empty_cache()
            rows.append(row)
            f.write(json.dumps(row) + "\n")
            f.flush()
    variants = list(dict.fromkeys(a.variants.split(",") + a.variants64.split(",")))
    write_md(a.md, ver, rows, variants)
    failed = [f"{r['shape']} {k}" for r in rows for k, x in r.items()
              if k.startswith("kvrun-") and isinstance(x, dict) and x.get("errors")]
    if failed:  # a kvrun run that failed is a failed benchmark, whatever the other rounds gave
        print("attn_peer.py: kvrun failed on " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


def cell(r, key, what="tflops"):
    x = r.get(key, {})
    return f"{x[what]:.0f}" if what in x else "n/a"


def write_md(path, ver, rows, variants):
    keys = [f"kvrun-v{v}" for v in variants] + [b for b, _ in BACKENDS]
    with open(path, "w") as f:
        f.write(f"GPU {ver['gpu']}; torch {ver['torch']} (CUDA {ver['cuda']}, cuDNN {ver['cudnn']}), "
                f"transformers {ver['transformers']}; {ver['kvr']}; commit {ver['commit']}.\n\n")
        f.write("TFLOP/s on unmasked pairs (median of CUDA-event timings, the faster of "
                "alternating rounds); kvrun / cuDNN = cuDNN's time over the best kvrun variant's.\n\n")
        f.write("| shape | " + " | ".join(keys) + " | best kvrun ms | cuDNN ms | kvrun / cuDNN |\n")
        f.write("|---" * (len(keys) + 4) + "|\n")
        for r in rows:
            ms = [r[k]["ms"] for k in keys[:len(variants)] if "ms" in r.get(k, {})]
            best = min(ms) if ms else None
            cu = r.get("sdpa-cudnn", {}).get("ms")
            f.write(f"| {r['shape']} | " + " | ".join(cell(r, k) for k in keys) + " | " +
                    (f"{best:.3f}" if best else "n/a") + " | " + (f"{cu:.3f}" if cu else "n/a") +
                    " | " + (f"{cu / best:.3f}" if best and cu else "n/a") + " |\n")
        notes = [(r["shape"], b, r[b].get("note") or r[b].get("error")) for r in rows
                 for b in keys if b in r and (r[b].get("note") or r[b].get("error"))]
        if notes:
            f.write("\nNotes:\n")
            for s, b, n in notes:
                f.write(f"- {s}, {b}: {n}\n")
    print(open(path).read())


if __name__ == "__main__":
    sys.exit(main())
