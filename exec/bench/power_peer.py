#!/usr/bin/env python3
"""Power, SM clock and energy per prefill of kvrun and of PyTorch + Hugging Face under
torch.compile, on the same GPU in one process: each runs --reps prefills back to back while
nvidia-smi samples the card every 20 ms; the samples of the steady part (the last half of the
timed prefills) give the mean power and clock, and power x TTFT the energy of one prefill.
Why: at short contexts both peers' speed is set by the card's 700 W cap, so what a prefill costs
in joules, not in tensor-core cycles, decides the ratio. One JSON object per peer on stdout."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_prefill  # noqa: E402


class Sampler:
    """nvidia-smi's instantaneous power and SM clock every 20 ms, stamped on arrival."""

    def __init__(self):
        self.rows = []
        self.p = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=power.draw.instant,clocks.sm", "--format=csv,noheader,nounits",
             "-lms", "20"], stdout=subprocess.PIPE, text=True)
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()

    def read(self):
        for line in self.p.stdout:
            try:
                w, mhz = (float(x) for x in line.split(","))
            except ValueError:
                continue
            self.rows.append((time.monotonic(), w, mhz))

    def window(self, t0, t1):
        sel = [(w, f) for t, w, f in self.rows if t0 <= t <= t1]
        if not sel:  # nvidia-smi gave nothing (a field it lacks): no number beats a wrong one
            sys.exit(f"power_peer.py: no power samples in a window of {t1 - t0:.2f} s")
        return {"samples": len(sel), "power_w": statistics.mean(w for w, _ in sel),
                "sm_mhz": statistics.mean(f for _, f in sel)}

    def stop(self):
        self.p.terminate()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kvr", required=True)
    ap.add_argument("--model", default="llama-7b")
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=60)
    a = ap.parse_args()
    m = json.loads(subprocess.check_output([a.kvr, "model", "show", a.model, "--json"]))
    model = hf_prefill.load(m)
    torch._dynamo.config.automatic_dynamic_shapes = False
    compiled = torch.compile(hf_prefill.decoder(model))
    hf_prefill.time_one(model, compiled, a.ctx, m["vocab"], 2, 1)  # compiled before the timing
    s = Sampler()
    time.sleep(1)
    for rnd in range(2):
        # kvrun: its timed prefills are the last reps x TTFT seconds before it exits
        out = subprocess.run([a.kvr, "exec", "--model", a.model, "--ctx", str(a.ctx), "--backend",
                              "cuda", "--warmup", "2", "--reps", str(a.reps), "--json"],
                             capture_output=True, text=True, timeout=300)
        t_end = time.monotonic()
        if out.returncode:
            sys.exit("power_peer.py: kvr exec failed: " + out.stderr[-300:])
        r = json.loads(out.stdout)
        span = a.reps * r["ttft_s"]
        row = {"impl": "kvrun", "round": rnd, "ctx": a.ctx, "ttft_s": r["ttft_s"]}
        row.update(s.window(t_end - 0.1 - span / 2, t_end - 0.1))
        print(json.dumps(row), flush=True)
        time.sleep(2)
        t0 = time.monotonic()
        h = hf_prefill.time_one(model, compiled, a.ctx, m["vocab"], 2, a.reps)
        t1 = time.monotonic()
        row = {"impl": "pytorch-hf-compile", "round": rnd, "ctx": a.ctx, "ttft_s": h["ttft_s"]}
        row.update(s.window(t0 + (t1 - t0) / 2, t1))
        print(json.dumps(row), flush=True)
        time.sleep(2)
    s.stop()


if __name__ == "__main__":
    main()
