#!/bin/bash
# On the GPU machine (issue #17): build, then the cuda backend on every Hugging Face golden
# without a sliding window (cosine >= 0.999 and the same top token as transformers' float32
# logits), and the ref backend's golden test for comparison. Logs in $OUT (or ./gpu-out).
# Usage (from the project root): bash scripts/gpu/hf.sh. A failed golden or run: it exits 1.
. scripts/gpu_env.sh
no_args "$@"
nvidia-smi -L >"$out/hf-device.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" >>"$out/hf-device.txt" 2>&1
sh tests/test_hf_goldens.sh "$kvr" cuda 2>&1 | tee "$out/hf-cuda.tap" || bad=1
for c in llama_base llama_hd128 falcon7b; do
    tok=$(python3 -c "import json; print(json.load(open('tests/golden/hf/$c/case.json'))['prompt'])")
    "$kvr" exec --model tests/golden/hf/$c/config.json --weights tests/golden/hf/$c \
        --tokens tests/golden/hf/$c/$tok --backend cuda --reps 3 --warmup 1 --json >"$out/hf-$c.json" 2>&1 ||
        { echo "kvr exec $c: FAILED"; tail -3 "$out/hf-$c.json"; bad=1; }
done
[ "$bad" = 0 ] # the status, run by itself too
