#!/bin/bash
# The executor's benchmark on the GPU machine, side by side with PyTorch + Hugging Face:
#   scripts/bench_exec.sh BUILD_DIR OUT_DIR
# Llama-7B and Falcon-7B (KVR_BENCH_MODELS) at 2k-32k (KVR_BENCH_CTX; kvr exec --backend cuda,
# and exec/bench/hf_prefill.py eager, and under torch.compile at KVR_COMPILE_CTX, default 2k and
# 4k, Llama only), the attention kernel alone at 16k, and the versions of everything. Writes
# OUT_DIR/results.jsonl and OUT_DIR/RESULTS.md (the table, as committed in exec/bench/RESULTS.md).
set -euo pipefail
build=${1:?usage: scripts/bench_exec.sh BUILD_DIR OUT_DIR}
out=${2:?usage: scripts/bench_exec.sh BUILD_DIR OUT_DIR}
kvr=$build/experiments/kvr
ctxs=${KVR_BENCH_CTX:-2048,4096,8192,16384,32768}
mkdir -p "$out"
res=$out/results.jsonl
: >"$res"
for model in ${KVR_BENCH_MODELS:-llama-7b falcon-7b}; do
    for ctx in ${ctxs//,/ }; do
        "$kvr" exec --model $model --ctx $ctx --backend cuda --warmup 2 --reps 5 --json |
            python3 -c 'import json,sys; r=json.load(sys.stdin); r["impl"]="kvrun"; print(json.dumps(r))' >>"$res"
    done
    PYTHONUNBUFFERED=1 python3 exec/bench/hf_prefill.py --kvr "$kvr" --model $model --ctx "$ctxs" >>"$res"
    if [ $model = llama-7b ] && [ -n "${KVR_COMPILE_CTX-2048,4096}" ]; then
        PYTHONUNBUFFERED=1 timeout "${KVR_COMPILE_TIMEOUT:-300}" python3 exec/bench/hf_prefill.py \
            --kvr "$kvr" --model $model --ctx "${KVR_COMPILE_CTX-2048,4096}" --compile >>"$res" ||
            echo "bench_exec: torch.compile run failed or timed out" >&2
    fi
done
for hd in 128 64; do
    "$kvr" bench attention --ctx 16k --heads $((hd == 128 ? 32 : 71)) \
        --kv-heads $((hd == 128 ? 32 : 1)) --head-dim $hd --check --json |
        python3 -c 'import json,sys; r=json.load(sys.stdin); r["impl"]="attention"; print(json.dumps(r))' >>"$res"
done
python3 - "$res" "$kvr" >"$out/RESULTS.md" <<'PY'
import json, subprocess, sys, datetime, torch, transformers
rows = [json.loads(l) for l in open(sys.argv[1])]
gpu = torch.cuda.get_device_name(0)
smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                     capture_output=True, text=True).stdout.strip()
kv = subprocess.run([sys.argv[2], "version"], capture_output=True, text=True).stdout.split("\n")[0]
nvcc = subprocess.run(["nvcc", "--version"], capture_output=True, text=True).stdout.strip().split("\n")[-1]
print(f"# kvr exec against PyTorch + Hugging Face\n")
print(f"{datetime.date.today()}, {gpu}, driver {smi}; {kv}, {nvcc}; cuBLAS from that toolkit;")
print(f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}), "
      f"transformers {transformers.__version__}, SDPA attention.\n")
print("Prefill of ctx random tokens, bf16, random weights, logits of the last token only, KV cache built;")
print("median of 5 timed runs after 2 warm-ups (CUDA events). MFU against 989 TFLOP/s dense bf16.\n")
print("kvrun's TFLOP/s and MFU count the FLOPs it executes (the last layer's attention and MLP on the")
print("last token only: kvr_exec_prefill_flops). PyTorch compile: the decoder under torch.compile")
print("(inductor, one static graph per context, compiled in the warm-ups); '-' where not run.\n")
print("| model | ctx | kvrun TTFT (s) | PyTorch eager TTFT (s) | PyTorch compile TTFT (s) | kvrun / faster PyTorch | kvrun TFLOP/s | kvrun MFU | kvrun peak mem (GB) | PyTorch peak mem (GB) |")
print("|---|---|---|---|---|---|---|---|---|---|")
def peer(r, impl):
    return next((h for h in rows if h["impl"] == impl and h["model"] == r["model"] and h["ctx"] == r["ctx"]), None)
for r in rows:
    if r["impl"] != "kvrun":
        continue
    hf, hc = peer(r, "pytorch-hf"), peer(r, "pytorch-hf-compile")
    times = [h["ttft_s"] for h in (hf, hc) if h and "error" not in h]
    cell = lambda h: "-" if not h else h["error"] if "error" in h else f'{h["ttft_s"]:.4f}'
    ratio = f'{r["ttft_s"] / min(times):.3f}' if times else "-"
    hm = f'{hf["peak_mem_bytes"] / 1e9:.1f}' if hf and "error" not in hf else "-"
    print(f'| {r["model"]} | {r["ctx"]} | {r["ttft_s"]:.4f} | {cell(hf)} | {cell(hc)} | {ratio} | {r["tflops"]:.0f} | {100 * r["mfu"]:.1f}% | {r["peak_mem_bytes"] / 1e9:.1f} | {hm} |')
print("\nAttention kernel alone (kvr bench attention, causal, 16k queries, unmasked pairs only):\n")
print("| heads | head_dim | time (ms) | TFLOP/s | rel err vs plain kernel |")
print("|---|---|---|---|---|")
for r in rows:
    if r["impl"] == "attention":
        print(f'| {r["heads"]}/{r["kv_heads"]} | {r["head_dim"]} | {1e3 * r["time_s"]:.2f} | {r["tflops"]:.0f} | {r["rel_err"]:.2e} |')
PY
cat "$out/RESULTS.md"
