#!/usr/bin/env python3
"""Hugging Face goldens for kvrun's model fidelity (issue #17).

For each case: a tiny model of one family built by transformers from its config, its weights
drawn with a fixed seed at a scale where attention is sharp (so rotary bases, scaling and
windows change the logits), rounded to bfloat16 and saved with save_pretrained (safetensors),
a fixed prompt, and the last token's logits of a float32 prefill (eager attention). Written to
tests/golden/hf/CASE/: config.json, model.safetensors (or a sharded index), the prompt
(tokens.txt, .json or .npy), logits.f32 (raw little-endian float32) and case.json. The
versions that produced them go to tests/golden/hf/VERSIONS.

Usage: scripts/hf_goldens.py [OUT_DIR [CASE...]]   (CPU is enough; about a minute; CASEs:
only those, their versions appended to VERSIONS)"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from transformers import (AutoModelForCausalLM, FalconConfig, LlamaConfig, MistralConfig,
                          Phi3Config, Qwen2Config)

V = 64  # vocabulary
SMALL = dict(vocab_size=V, num_hidden_layers=2)
LL = dict(hidden_size=64, num_attention_heads=2, num_key_value_heads=1, head_dim=64,
          intermediate_size=64, **SMALL)

QW = {**{k: v for k, v in LL.items() if k != "head_dim"}, "hidden_size": 128}  # head_dim 64

CASES = {
    # name: (config, ctx, prompt format, what it checks)
    "llama_base": (LlamaConfig(**LL), 40, "txt", "Llama, rotary base 10000, head_dim 64, GQA 2:1"),
    "llama_theta5e5": (LlamaConfig(**LL, rope_theta=500000.0), 40, "txt", "rotary base 500000 (Llama-3)"),
    "llama_hd128": (LlamaConfig(**{**LL, "head_dim": 128, "num_attention_heads": 1,
                                   "num_key_value_heads": 1}, rope_theta=1e6), 40, "json",
                    "head_dim 128, MHA, base 1e6"),
    "llama_linear": (LlamaConfig(**LL, rope_scaling={"rope_type": "linear", "factor": 4.0}), 40,
                     "txt", "linear rotary scaling, factor 4"),
    "llama_dynamic": (LlamaConfig(**LL, max_position_embeddings=16,
                                  rope_scaling={"rope_type": "dynamic", "factor": 2.0}), 40,
                      "txt", "dynamic NTK, factor 2, prompt 40 > max_position_embeddings 16"),
    "llama3": (LlamaConfig(**LL, max_position_embeddings=128, rope_theta=500000.0,
                           rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                         "original_max_position_embeddings": 16}), 40, "npy",
               "llama3 rotary scaling (Llama-3.1), original 16"),
    "llama_yarn": (LlamaConfig(**LL, max_position_embeddings=64,
                               rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                             "original_max_position_embeddings": 16}), 40, "txt",
                   "yarn, factor 4, its attention factor 0.1 ln 4 + 1"),
    "llama_eps": (LlamaConfig(**LL, rms_norm_eps=0.5), 40, "txt", "rms_norm_eps 0.5"),
    "llama_tied": (LlamaConfig(**LL, tie_word_embeddings=True), 40, "txt", "tied embeddings"),
    "llama_bias": (LlamaConfig(**LL, attention_bias=True, mlp_bias=True), 40, "txt",
                   "attention_bias (q, k, v, o) and mlp_bias"),
    "llama_sharded": (LlamaConfig(**LL), 40, "txt", "llama_base's model in 3 shards with an index"),
    "mistral_window": (MistralConfig(**LL, sliding_window=8), 40, "txt",
                       "Mistral, sliding window 8 < prompt 40"),
    "qwen2_bias": (Qwen2Config(**QW, rope_theta=1e6), 40, "txt",
                   "Qwen2: q, k, v biases, base 1e6"),
    "qwen2_window": (Qwen2Config(**QW,
                                 use_sliding_window=True, sliding_window=8, max_window_layers=0),
                     40, "txt", "Qwen2 with use_sliding_window, every layer (max_window_layers 0)"),
    "falcon7b": (FalconConfig(hidden_size=128, num_attention_heads=2, ffn_hidden_size=96,
                              multi_query=True, new_decoder_architecture=False,
                              parallel_attn=True, bias=False, **SMALL), 40, "txt",
                 "Falcon-7B layout: MQA, parallel attention+MLP, one LayerNorm, tied"),
    "falcon40b": (FalconConfig(hidden_size=128, num_attention_heads=2, num_kv_heads=1,
                               ffn_hidden_size=96, new_decoder_architecture=True,
                               parallel_attn=True, bias=False, tie_word_embeddings=False,
                               **SMALL), 40, "txt",
                  "Falcon-40B layout: grouped KV, two parallel LayerNorms, untied"),
    "falcon_bias": (FalconConfig(hidden_size=128, num_attention_heads=2, ffn_hidden_size=96,
                                 multi_query=True, parallel_attn=True, bias=True,
                                 layer_norm_epsilon=1e-3, **SMALL), 40, "txt",
                    "Falcon with biases on every linear layer, layer_norm_epsilon 1e-3"),
    # issue #17's audit (scripts/hf_configs.py): layouts of real configs no case above had
    # (head_dim 64: the cuda backend takes 64 and 128)
    "falcon11b": (FalconConfig(hidden_size=256, num_attention_heads=4, num_kv_heads=2,
                               ffn_hidden_size=96, new_decoder_architecture=True,
                               parallel_attn=True, num_ln_in_parallel_attn=1, bias=False,
                               tie_word_embeddings=False,
                               rope_parameters={"rope_type": "default", "rope_theta": 500042.0},
                               vocab_size=V, num_hidden_layers=1), 40, "txt",
                  "Falcon-11B layout: 2 KV groups, one shared LayerNorm, base 500042, untied; 1 layer"),
    "falcon_seq": (FalconConfig(hidden_size=128, num_attention_heads=2, ffn_hidden_size=96,
                                multi_query=False, new_decoder_architecture=False,
                                parallel_attn=False, bias=True,
                                rope_parameters={"rope_type": "linear", "rope_theta": 1e4,
                                                 "factor": 2.0}, **SMALL), 40, "txt",
                   "Falcon sequential block (RW layout without ALiBi), MHA, biases, linear rope 2"),
    "mistral_hd": (MistralConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                                 head_dim=64, intermediate_size=64, sliding_window=None,
                                 rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                                 **SMALL), 40, "txt",
                   "Mistral-Nemo layout: head_dim 64 with 4 heads on width 64, no window, base 1e6"),
    "qwen2_tied": (Qwen2Config(**QW, tie_word_embeddings=True, rms_norm_eps=1e-6,
                               rope_parameters={"rope_type": "default", "rope_theta": 1e6}), 40,
                   "txt", "Qwen2.5-0.5B layout: q, k, v biases, tied embeddings, base 1e6"),
    # partial rotary: transformers' Llama, Mistral, Qwen2 and Falcon do not take
    # partial_rotary_factor (their cos/sin would not match the head), so kvrun refuses it in
    # their configs; Phi-3 rotates the first int(head_dim x factor) dimensions of each head
    # (rotate-half on them, the rest passed through) on Llama's layout, with Q, K, V and gate, up
    # fused. Saved under Llama's tensor names with a kvrun model profile (model.ini,
    # rotary_fraction) instead of config.json: the oracle for the profile's rotary_fraction.
    "phi3_partial": (Phi3Config(hidden_size=128, num_attention_heads=2, num_key_value_heads=1,
                                intermediate_size=64, partial_rotary_factor=0.5,
                                tie_word_embeddings=False, pad_token_id=None, bos_token_id=1,
                                eos_token_id=2, **SMALL), 40, "txt",
                     "partial rotary 0.5 (Phi-3: 32 of 64 dims), as a kvrun model profile"),
}


def save_phi3_as_llama(model, cfg, d, name):
    """Phi-3's fused qkv_proj and gate_up_proj split into Llama's names (q, k, v; gate, up:
    Phi3MLP's first half gates), bf16, and the kvrun model profile of the same model."""
    hd = cfg.hidden_size // cfg.num_attention_heads
    nq, nkv = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd
    out = {}
    for k, v in model.state_dict().items():
        v = v.to(torch.bfloat16).contiguous()
        if "qkv_proj" in k:
            for part, w in zip(("q_proj", "k_proj", "v_proj"), v.split([nq, nkv, nkv])):
                out[k.replace("qkv_proj", part)] = w.contiguous()
        elif "gate_up_proj" in k:
            for part, w in zip(("gate_proj", "up_proj"), v.chunk(2)):
                out[k.replace("gate_up_proj", part)] = w.contiguous()
        else:
            out[k] = v
    save_file(out, os.path.join(d, "model.safetensors"))
    rope = getattr(cfg, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
    frac = rope.get("partial_rotary_factor", getattr(cfg, "partial_rotary_factor", 1.0))
    with open(os.path.join(d, "model.ini"), "w") as f:
        f.write(f"; {name}: transformers' Phi3Config (scripts/hf_goldens.py) as a kvrun profile\n"
                f"[model]\nname = {name}\nn_layers = {cfg.num_hidden_layers}\n"
                f"d_model = {cfg.hidden_size}\nn_heads = {cfg.num_attention_heads}\n"
                f"n_kv_heads = {cfg.num_key_value_heads}\nd_ffn = {cfg.intermediate_size}\n"
                f"vocab = {cfg.vocab_size}\nnorm = rmsnorm\nmlp = swiglu\n"
                f"norm_eps = {cfg.rms_norm_eps!r}\nrope_theta = {float(theta)!r}\n"
                f"rotary_fraction = {float(frac)!r}\n"
                f"max_position_embeddings = {cfg.max_position_embeddings}\n"
                f"tied_embeddings = false\ndtype = bf16\n")


def init_weights(model, seed):
    """Weights at a scale where attention is sharp: a linear layer's weight uniform with variance
    2/in, biases and norm offsets of 0.1, the embedding N(0, 1); rounded to bfloat16 so that the
    saved bf16 checkpoint holds exactly what the float32 prefill used."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                v = (1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn(p.shape, generator=g)
            elif name.endswith("bias"):
                v = 0.1 * torch.randn(p.shape, generator=g)
            elif "embed" in name or "word_embeddings" in name:
                v = torch.randn(p.shape, generator=g)
            else:
                a = math.sqrt(6.0 / p.shape[-1])
                v = (torch.rand(p.shape, generator=g) * 2 - 1) * a
            p.copy_(v.to(torch.bfloat16).to(torch.float32))


def write_prompt(d, tokens, fmt):
    if fmt == "json":
        path = "tokens.json"
        with open(os.path.join(d, path), "w") as f:
            json.dump(tokens, f)
    elif fmt == "npy":
        path = "tokens.npy"
        np.save(os.path.join(d, path), np.array(tokens, dtype=np.int64))
    else:
        path = "tokens.txt"
        with open(os.path.join(d, path), "w") as f:
            f.write("".join(f"{t}\n" for t in tokens))
    return path


def make(out, name, cfg, ctx, fmt, what, seed):
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    init_weights(model, seed)
    rng = np.random.default_rng(seed)
    tokens = [int(t) for t in rng.integers(0, V, ctx)]
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0, -1].float().numpy()
    model.to(torch.bfloat16)
    shard = "60KB" if name.endswith("_sharded") else "50MB"
    if cfg.model_type == "phi3":
        save_phi3_as_llama(model, cfg, d, name)
    else:
        model.save_pretrained(d, max_shard_size=shard, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(d, extra)):
            os.remove(os.path.join(d, extra))
    prompt = write_prompt(d, tokens, fmt)
    logits.astype("<f4").tofile(os.path.join(d, "logits.f32"))
    top = int(np.argmax(logits))
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump({"case": name, "what": what, "ctx": ctx, "prompt": prompt, "seed": seed,
                   "top_token": top, "family": cfg.model_type,
                   "model": "model.ini" if cfg.model_type == "phi3" else "config.json"}, f,
                  indent=1)
    print(f"{name:16s} ctx {ctx}  top {top:3d}  |logits| {np.abs(logits).max():.3f}  {what}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "hf")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    only = sys.argv[2:]  # CASE...: only these (the others and VERSIONS are left as they are)
    for i, (name, (cfg, ctx, fmt, what)) in enumerate(CASES.items()):
        seed = 17 if name in ("llama_base", "llama_sharded", "llama_theta5e5") else 100 + i
        if not only or name in only:
            make(out, name, cfg, ctx, fmt, what, seed)
    versions = (f"transformers {transformers.__version__}\ntorch {torch.__version__}\n"
                f"numpy {np.__version__}\nscript scripts/hf_goldens.py\n")
    if only:
        with open(os.path.join(out, "VERSIONS"), "a") as f:
            f.write(f"cases {' '.join(only)}: " + versions.replace("\n", ", ").rstrip(", ") + "\n")
        return
    with open(os.path.join(out, "VERSIONS"), "w") as f:
        f.write(versions)


if __name__ == "__main__":
    main()
