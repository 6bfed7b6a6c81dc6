#!/usr/bin/env python3
"""Hugging Face as the oracle for every config of tests/golden/hf_configs that kvrun accepts
(issue #17's audit; needs torch and transformers, CPU is enough, about a minute): each config
shrunk to 2 layers of width 64 with its structural keys kept (GQA/MQA/MHA, head_dim apart from
width/heads, the window at 8 tokens, llama3/yarn's original length at 16 so that the prompt of
40 crosses it), a model built by transformers from it with scripts/hf_goldens.py's weights,
saved as bf16 safetensors, and its float32 last-token logits against `kvr exec --backend ref
--weights` of the same files. Configs kvr refuses are listed as refused; configs transformers
cannot build (the remote-code RefinedWeb originals) as skipped.

Usage: scripts/hf_configs_oracle.py KVR [NAME...]   (exit 1 if any accepted config misses 1e-4)
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_goldens  # noqa: E402  (init_weights)

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "hf_configs")
V = 64


def shrink(d):
    h = d.get("num_attention_heads", d.get("n_head"))
    hd = 32 if d.get("head_dim") and d["head_dim"] != d["hidden_size"] // h else 16
    kv = d.get("num_key_value_heads", d.get("num_kv_heads", d.get("n_head_kv", h)))
    kv = 4 if kv == h else (1 if kv == 1 else 2)
    for k, v in {"hidden_size": 64, "num_hidden_layers": 2, "n_layer": 2, "num_attention_heads": 4,
                 "n_head": 4, "intermediate_size": 96, "ffn_hidden_size": 256, "vocab_size": V,
                 "num_key_value_heads": kv, "num_kv_heads": kv, "n_head_kv": kv}.items():
        if k in d:
            d[k] = v
    if "head_dim" in d:
        d["head_dim"] = hd
    if d.get("sliding_window"):
        d["sliding_window"] = 8
    if isinstance(d.get("layer_types"), list):
        d["layer_types"] = d["layer_types"][:2]
    if "max_window_layers" in d:
        d["max_window_layers"] = min(d["max_window_layers"], 2)
    for o in ("rope_parameters", "rope_scaling"):
        if isinstance(d.get(o), dict) and "original_max_position_embeddings" in d[o]:
            d[o]["original_max_position_embeddings"] = 16
    return d


def case(kvr, name, tmp):
    out = os.path.join(tmp, name)
    os.makedirs(out)
    cfg_path = os.path.join(out, "config.json")
    with open(cfg_path, "w") as f:
        json.dump(shrink(json.load(open(os.path.join(HERE, name + ".json")))), f)
    if subprocess.run([kvr, "model", "show", cfg_path], capture_output=True).returncode == 2:
        return "refused", True
    try:
        cfg = AutoConfig.from_pretrained(out, trust_remote_code=False)
    except (ValueError, KeyError) as e:
        return f"skipped (transformers: {str(e).splitlines()[0][:60]})", True
    cfg._attn_implementation = "eager"
    torch.manual_seed(5)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    hf_goldens.init_weights(model, 5)
    tokens = [int(t) for t in np.random.default_rng(5).integers(0, V, 40)]
    with torch.no_grad():
        want = model(torch.tensor([tokens])).logits[0, -1].float().numpy()
    model.to(torch.bfloat16)
    model.save_pretrained(os.path.join(out, "w"), safe_serialization=True)
    with open(os.path.join(out, "t.txt"), "w") as f:
        f.write("".join(f"{t}\n" for t in tokens))
    r = subprocess.run([kvr, "exec", "--model", cfg_path, "--weights", os.path.join(out, "w"),
                        "--tokens", os.path.join(out, "t.txt"), "--backend", "ref", "--reps", "1",
                        "--warmup", "0", "--dump-logits", os.path.join(out, "k.l")],
                       capture_output=True, text=True)
    if r.returncode:
        return f"kvr exit {r.returncode}: {r.stderr.strip()[:120]}", False
    got = np.fromfile(os.path.join(out, "k.l"), dtype="<f4")
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    cos = float(got @ want / np.sqrt((got @ got) * (want @ want)))
    top = "same" if got.argmax() == want.argmax() else "DIFFERS"
    return f"maxrel {rel:.2e} cosine {cos:.6f} top {top}", rel <= 1e-4


def main():
    kvr = os.path.abspath(sys.argv[1])
    names = sys.argv[2:] or sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(HERE, "*.json")))
    torch.set_num_threads(2)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            what, ok = case(kvr, n, tmp)
            bad += not ok
            print(f"{n:24s} {what}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
