#!/bin/sh
# The simulator's prediction per KV hand-off mode (sim/README.md, "KV hand-off modes"): the last
# rank's first-layer start-up wait and the TTFT of Llama-7B on the committed 4xH100 profile
# (16k-32k), on h200-nvlink at p = 8 and on the 8x8 multi-node profile a100-published-8x8
# (up to 256k; a100-published's GPU and links, not a100-8x8's preset numbers).
# Partitions: searched per mode (kvr search --kv-forward MODE) where the search is quick
# (p <= 8), the balanced closed form at p = 64. Usage: scripts/kv_forward_predict.sh [KVR]
kvr=${1:-build/experiments/kvr}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$(dirname "$0")/.." || exit 1
python3 - "$kvr" "$tmp" <<'PY'
import json, subprocess, sys
kvr, tmp = sys.argv[1], sys.argv[2]
def run(*args):
    r = subprocess.run([kvr, *args, "--json"], capture_output=True, text=True)
    if r.returncode == 3:  # does not fit in GPU memory: never a prediction (#18)
        return None
    r.check_returncode()
    return json.loads(r.stdout)
cases = [("data/machines/h100x4-nccl.ini", 4, ["16k", "24k", "32k"], True),
         ("h200-nvlink", 8, ["32k", "64k", "128k", "256k"], True),
         ("data/machines/a100-published-8x8.ini", 64, ["64k", "128k", "256k"], False)]
print("%-18s %3s %5s %-9s %-9s %12s %10s %8s" % ("machine", "p", "ctx", "partition", "mode", "start-up ms", "TTFT ms", "vs whole"))
for machine, p, ctxs, searched in cases:
    for ctx in ctxs:
        base = None
        for mode in ("whole", "streamed", "direct"):
            common = ["-m", "llama-7b", "-H", machine, "-g", str(p), "-c", ctx, "--kv-forward", mode]
            if searched:
                found = run("search", "--db", f"{tmp}/{mode}.db", "--model", "llama-7b", "--machine", machine,
                            "--gpus", str(p), "--ctx", ctx, "--kv-forward", mode)
                row = found["rows"][0] if found else None
                if row:
                    common += ["-P", ",".join(str(t) for t in row["partition_tokens"]),
                               "--map", ",".join(str(g) for g in row["mapping"])]
            d = run("sim", *common) if not searched or row else None
            if d is None:
                print("%-18s %3d %5s %-9s %-9s %12s %10s %8s" % (machine.split("/")[-1].replace(".ini", ""), p, ctx,
                      "searched" if searched else "balanced", mode, "-", "no fit", "-"))
                continue
            base = base or d["ttft_s"]
            name = d["machine"]
            print("%-18s %3d %5s %-9s %-9s %12.2f %10.1f %7.1f%%" % (name, p, ctx, "searched" if searched else "balanced",
                  mode, 1e3 * d["last_first_wait_s"], 1e3 * d["ttft_s"], 100 * (d["ttft_s"] / base - 1)))
PY
