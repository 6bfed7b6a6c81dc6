#!/usr/bin/env python3
"""kvrun against PyTorch + Hugging Face end to end, in alternating rounds in one process.

Per round and context: `kvr exec` under each environment given with --kvr-env (a subprocess,
its JSON), then Hugging Face eager with SDPA's own choice of backend and with each backend of
--sdpa forced (torch.nn.attention.sdpa_kernel: cudnn, flash, efficient), then its decoder under
torch.compile (--compile-ctx only; each compiled once before the first round). The same GPU and the same minute for every peer,
so that clock drift falls on all alike (the peers' order reversed every other round); the ratio is what counts. One JSON object per run
(impl, env, round, ctx, ttft_s); the summary (median over rounds) goes to stderr.
--compile-causal-ctx adds the peer "pytorch-hf-compile-causal": the decoder under torch.compile
with SDPA's is_causal and no mask tensor (hf_prefill.causal_sdpa; under torch.compile
transformers passes SDPA a whole mask, which keeps it off its fused causal kernels).
--same-weights DIR adds the peer "kvrun-hfweights": kvrun on Hugging Face's own model (saved to
DIR as safetensors, read back with --model DIR/config.json --weights DIR) and on the very
prompt Hugging Face gets (DIR/tokens-CTX.npy), so that the two run the same numbers: at the
power cap the time is the energy, and a GEMM's energy depends on the data it multiplies.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import torch
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_prefill  # noqa: E402


def kvr_run(kvr, model, ctx, env, warmup, reps, extra=()):
    # PyTorch's cached blocks back to the GPU: at 64k-128k they would crowd kvrun out
    torch.cuda.empty_cache()
    e = dict(os.environ)
    e.update(dict(kv.split("=", 1) for kv in env.split(",") if kv))
    try:
        out = subprocess.run([kvr, "exec", "--model", model, "--ctx", str(ctx), "--backend", "cuda",
                              "--warmup", str(warmup), "--reps", str(reps), "--json", *extra],
                             env=e, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return {"error": "kvr exec: no answer in 300 s"}
    if out.returncode:
        return {"error": out.stderr.strip()[-300:]}
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError as x:  # an error row, not a crash that loses the later rounds
        return {"error": f"kvr exec --json printed no JSON ({x}): {out.stdout[:200]!r}"}


BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION}


def hf_run(model, base, ctx, vocab, warmup, reps, backend):
    """One Hugging Face timing; an error row where it runs out of memory, and with a forced SDPA
    backend where that backend cannot run the shape."""
    if not backend:
        try:
            return hf_prefill.time_one(model, base, ctx, vocab, warmup, reps)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            return {"error": "out of memory"}
    try:
        with sdpa_kernel(BACKENDS[backend]):
            return hf_prefill.time_one(model, base, ctx, vocab, warmup, reps)
    except (RuntimeError, torch.OutOfMemoryError) as e:
        torch.cuda.empty_cache()
        return {"error": str(e).strip().splitlines()[0][:200]}


def save_same(model, d, ctxs, vocab):
    """Hugging Face's model and each context's prompt under d, for kvrun to read; returns
    (config.json's path, the --weights and --tokens arguments of each context)."""
    if os.path.exists(d) and os.listdir(d):
        sys.exit(f"e2e_rounds.py: --same-weights {d}: not empty (an old model would be read)")
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d)
    args = {}
    for ctx in ctxs:
        tok = os.path.join(d, f"tokens-{ctx}.npy")
        np.save(tok, hf_prefill.prompt_ids(ctx, vocab)[0].cpu().numpy().astype(np.int32))
        args[ctx] = ["--weights", d, "--tokens", tok]
    return os.path.join(d, "config.json"), args


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kvr", required=True)
    ap.add_argument("--model", default="llama-7b")
    ap.add_argument("--ctx", default="2048,4096")
    ap.add_argument("--compile-ctx", default="2048,4096")
    ap.add_argument("--compile-causal-ctx", default="",
                    help="contexts of the peer pytorch-hf-compile-causal: torch.compile with "
                         "SDPA's is_causal and no mask tensor (hf_prefill.causal_sdpa)")
    ap.add_argument("--kvr-env", action="append", default=None,
                    help="NAME=V[,NAME=V]: one kvrun peer per flag (default: one, as is)")
    ap.add_argument("--sdpa", default="",
                    help="comma list of SDPA backends to force for eager too: " + ",".join(BACKENDS))
    ap.add_argument("--same-weights", metavar="DIR", default="",
                    help="also kvrun on Hugging Face's weights and prompt, saved to DIR (new or empty)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    envs = a.kvr_env or [""]
    forced = [b for b in a.sdpa.split(",") if b]
    for i, b in enumerate(forced):
        if b not in BACKENDS:
            sys.exit(f"e2e_rounds.py: --sdpa {b}: not one of {', '.join(BACKENDS)}")
        if b in forced[:i]:
            sys.exit(f"e2e_rounds.py: --sdpa {b}: listed twice (its rows would pool)")
    ctxs = [int(c) for c in a.ctx.split(",")]
    cctx = {int(c) for c in a.compile_ctx.split(",") if c}
    kctx = {int(c) for c in a.compile_causal_ctx.split(",") if c}
    for c in sorted((cctx | kctx) - set(ctxs)):
        sys.exit(f"e2e_rounds.py: compile context {c} is not in --ctx (it would compile, never run)")
    m = json.loads(subprocess.check_output([a.kvr, "model", "show", a.model, "--json"]))
    model = hf_prefill.load(m)
    same = save_same(model, a.same_weights, ctxs, m["vocab"]) if a.same_weights else None
    eager = hf_prefill.decoder(model)
    torch._dynamo.config.automatic_dynamic_shapes = False
    compiled = torch.compile(eager)
    for ctx in sorted(cctx):  # compile outside the rounds
        hf_prefill.time_one(model, compiled, ctx, m["vocab"], 2, 1)
    causal = hf_prefill.load(m, hf_prefill.CAUSAL) if kctx else None  # the same seeded weights
    causal_c = torch.compile(hf_prefill.decoder(causal)) if kctx else None
    for ctx in sorted(kctx):
        hf_prefill.time_one(causal, causal_c, ctx, m["vocab"], 2, 1)
    res, first, failed = {}, {}, False
    for r in range(a.rounds):
        for ctx in ctxs:
            peers = [("kvrun", env) for env in envs]
            peers += [("kvrun-hfweights", env) for env in envs] if same else []
            peers += [("pytorch-hf", "")]
            peers += [("pytorch-hf-" + b, "") for b in forced]
            if ctx in cctx:
                peers.append(("pytorch-hf-compile", ""))
            if ctx in kctx:
                peers.append(("pytorch-hf-compile-causal", ""))
            if r % 2:  # ABBA: no peer always first (fresh from idle) or last in a round
                peers.reverse()
            for impl, env in peers:
                if impl == "kvrun":
                    row = kvr_run(a.kvr, a.model, ctx, env, a.warmup, a.reps)
                elif impl == "kvrun-hfweights":
                    row = kvr_run(a.kvr, same[0], ctx, env, a.warmup, a.reps, same[1][ctx])
                elif impl == "pytorch-hf-compile-causal":
                    row = hf_run(causal, causal_c, ctx, m["vocab"], a.warmup, a.reps, "")
                else:
                    base = compiled if impl.endswith("compile") else eager
                    backend = impl[len("pytorch-hf-"):] if impl[len("pytorch-hf-"):] in BACKENDS else ""
                    row = hf_run(model, base, ctx, m["vocab"], a.warmup, a.reps, backend)
                row.update(impl=impl, env=env, round=r, ctx=ctx, model=a.model, torch=torch.__version__,
                           transformers=transformers.__version__)
                print(json.dumps(row), flush=True)
                # a kvrun run, or a PyTorch peer of SDPA's own choice, that fails for another
                # reason than memory would leave the ratio against a peer that is not there
                if "error" in row and (impl.startswith("kvrun") or (
                        impl not in [f"pytorch-hf-{b}" for b in forced] and row["error"] != "out of memory")):
                    failed = True
                if "ttft_s" in row:
                    res.setdefault((ctx, impl, env), []).append(row["ttft_s"])
                if "first_token" in row:
                    first.setdefault((ctx, impl), set()).add(row["first_token"])
    for ctx in ctxs:
        med = {k[1:]: statistics.median(v) for k, v in res.items() if k[0] == ctx}
        torch_best = min([t for (i, e), t in med.items() if i.startswith("pytorch")] or [0])
        for (impl, env), t in sorted(med.items()):
            ratio = f"{t / torch_best:.3f}" if torch_best else "-"
            print(f"ctx {ctx} {impl}{' ' + env if env else ''}: median {t * 1e3:.2f} ms "
                  f"over {len(res[(ctx, impl, env)])} rounds, / faster PyTorch {ratio}",
                  file=sys.stderr)
        print(f"ctx {ctx} first tokens: " + ", ".join(
            f"{i} {sorted(v)}" for (c, i), v in sorted(first.items()) if c == ctx), file=sys.stderr)
        if same:  # the same weights and prompt: the same first token, bf16 rounding aside
            print(f"ctx {ctx} first token: kvrun-hfweights {sorted(first.get((ctx, 'kvrun-hfweights'), []))}, "
                  f"pytorch-hf {sorted(first.get((ctx, 'pytorch-hf'), []))}", file=sys.stderr)
    if failed:
        sys.exit("e2e_rounds.py: a run failed (its error is in its row)")


if __name__ == "__main__":
    main()
