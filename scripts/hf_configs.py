#!/usr/bin/env python3
"""Writes the config.json files of tests/golden/hf_configs/ (issue #17's audit): the configs
of current architectures as transformers itself writes them (its config classes, no torch
needed: `python3 -m venv v && v/bin/pip install transformers`), with each published model's
shape, plus the transformers v4 spelling of some of them (`torch_dtype`, `rope_theta` and
`rope_scaling` at the top level, as every config.json written before transformers 5 has).
The test tests/test_hf_configs.sh loads each with `kvr model show`, `kvr sim` and
`kvr exec --backend ref` and checks that it is honoured or refused by name.

Usage: scripts/hf_configs.py [OUTDIR]   (default tests/golden/hf_configs)
"""
import json
import os
import sys

import transformers as T

L3_SCALING = lambda f: {"rope_type": "llama3", "factor": f, "low_freq_factor": 1.0,
                        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}

# name: (config class, published shape and fields)
CASES = {
    # Llama family
    "llama2-7b": (T.LlamaConfig, dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                      num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                                      max_position_embeddings=4096, rms_norm_eps=1e-5, dtype="float16")),
    "llama3-8b": (T.LlamaConfig, dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                      num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                      max_position_embeddings=8192, rms_norm_eps=1e-5, dtype="bfloat16",
                                      rope_parameters={"rope_type": "default", "rope_theta": 500000.0})),
    "llama3.1-8b": (T.LlamaConfig, dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                        num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                        max_position_embeddings=131072, rms_norm_eps=1e-5, dtype="bfloat16",
                                        rope_parameters={"rope_theta": 500000.0, **L3_SCALING(8.0)})),
    "llama3.2-1b": (T.LlamaConfig, dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                        num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                                        vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5,
                                        tie_word_embeddings=True, dtype="bfloat16",
                                        rope_parameters={"rope_theta": 500000.0, **L3_SCALING(32.0)})),
    # Mistral family
    "mistral-7b-v0.1": (T.MistralConfig, dict(sliding_window=4096, max_position_embeddings=32768,
                                              rms_norm_eps=1e-5, dtype="bfloat16",
                                              rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    "mistral-7b-v0.3": (T.MistralConfig, dict(sliding_window=None, vocab_size=32768,
                                              max_position_embeddings=32768, rms_norm_eps=1e-5,
                                              dtype="bfloat16",
                                              rope_parameters={"rope_type": "default", "rope_theta": 1e6})),
    "mistral-nemo": (T.MistralConfig, dict(hidden_size=5120, num_hidden_layers=40, head_dim=128,
                                           vocab_size=131072, max_position_embeddings=1024000,
                                           sliding_window=None, rms_norm_eps=1e-5, dtype="bfloat16",
                                           rope_parameters={"rope_type": "default", "rope_theta": 1e6})),
    "mixtral-8x7b": (T.MixtralConfig, dict(num_local_experts=8, num_experts_per_tok=2, sliding_window=None,
                                           vocab_size=32000, max_position_embeddings=32768, rms_norm_eps=1e-5,
                                           dtype="bfloat16",
                                           rope_parameters={"rope_type": "default", "rope_theta": 1e6})),
    # Qwen2 family
    "qwen2-7b": (T.Qwen2Config, dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                     num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                                     max_position_embeddings=131072, sliding_window=131072,
                                     max_window_layers=28, use_sliding_window=False, dtype="bfloat16",
                                     rope_parameters={"rope_type": "default", "rope_theta": 1e6})),
    "qwen2.5-0.5b": (T.Qwen2Config, dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                         num_attention_heads=14, num_key_value_heads=2,
                                         max_position_embeddings=32768, sliding_window=32768,
                                         max_window_layers=24, use_sliding_window=False,
                                         tie_word_embeddings=True, dtype="bfloat16",
                                         rope_parameters={"rope_type": "default", "rope_theta": 1e6})),
    # Qwen2.5-7B-Instruct with the YaRN scaling its model card gives for 128k
    "qwen2.5-7b-yarn": (T.Qwen2Config, dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                            num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                                            max_position_embeddings=32768, sliding_window=131072,
                                            max_window_layers=28, use_sliding_window=False, dtype="bfloat16",
                                            rope_parameters={"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0,
                                                             "original_max_position_embeddings": 32768})),
    # use_sliding_window true: every layer from max_window_layers on slides
    "qwen2-swa-all": (T.Qwen2Config, dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                          num_attention_heads=14, num_key_value_heads=2,
                                          sliding_window=4096, max_window_layers=0, use_sliding_window=True,
                                          rope_parameters={"rope_type": "default", "rope_theta": 1e6})),
    "qwen2-swa-mixed": (T.Qwen2Config, dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                            num_attention_heads=14, num_key_value_heads=2,
                                            sliding_window=4096, max_window_layers=21, use_sliding_window=True,
                                            rope_parameters={"rope_type": "default", "rope_theta": 1e6})),
    "qwen3-8b": (T.Qwen3Config, dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                                     num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                                     vocab_size=151936, max_position_embeddings=40960, dtype="bfloat16",
                                     rope_parameters={"rope_type": "default", "rope_theta": 1e6})),
    # Gemma
    "gemma-7b": (T.GemmaConfig, dict(hidden_size=3072, intermediate_size=24576, num_hidden_layers=28,
                                     num_attention_heads=16, num_key_value_heads=16, head_dim=256,
                                     vocab_size=256000, hidden_activation="gelu_pytorch_tanh", dtype="bfloat16")),
    "gemma2-9b": (T.Gemma2Config, dict(hidden_size=3584, intermediate_size=14336, num_hidden_layers=42,
                                       num_attention_heads=16, num_key_value_heads=8, head_dim=256,
                                       query_pre_attn_scalar=256, sliding_window=4096,
                                       attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                                       dtype="bfloat16")),
    # Phi-3 (fused qkv, longrope)
    "phi3-mini-128k": (T.Phi3Config, dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
                                          num_attention_heads=32, num_key_value_heads=32, vocab_size=32064,
                                          max_position_embeddings=131072, original_max_position_embeddings=4096,
                                          sliding_window=262144, dtype="bfloat16",
                                          rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                                                           "short_factor": [1.0] * 48, "long_factor": [1.5] * 48})),
    # Falcon
    "falcon-7b": (T.FalconConfig, dict(hidden_size=4544, num_hidden_layers=32, num_attention_heads=71,
                                       multi_query=True, parallel_attn=True, bias=False, alibi=False,
                                       new_decoder_architecture=False, dtype="bfloat16")),
    "falcon-40b": (T.FalconConfig, dict(hidden_size=8192, num_hidden_layers=60, num_attention_heads=128,
                                        num_kv_heads=8, new_decoder_architecture=True, parallel_attn=True,
                                        bias=False, alibi=False, dtype="bfloat16")),
    "falcon-180b": (T.FalconConfig, dict(hidden_size=14848, num_hidden_layers=80, num_attention_heads=232,
                                         num_kv_heads=8, new_decoder_architecture=True, parallel_attn=True,
                                         bias=False, alibi=False, vocab_size=65024, dtype="bfloat16")),
    "falcon-11b": (T.FalconConfig, dict(hidden_size=4096, num_hidden_layers=60, num_attention_heads=32,
                                        num_kv_heads=8, new_decoder_architecture=True, parallel_attn=True,
                                        num_ln_in_parallel_attn=1, bias=False, alibi=False, vocab_size=65024,
                                        max_position_embeddings=8192, ffn_hidden_size=16384,
                                        tie_word_embeddings=False,
                                        rope_parameters={"rope_type": "default", "rope_theta": 500042.0},
                                        dtype="bfloat16")),
    # falcon-rw-1b: ALiBi, sequential block, MHA, biases
    "falcon-rw-1b": (T.FalconConfig, dict(hidden_size=2048, num_hidden_layers=24, num_attention_heads=32,
                                          multi_query=False, parallel_attn=False, bias=True, alibi=True,
                                          vocab_size=50304, dtype="bfloat16")),
    # GPT-NeoX / Pythia (partial rotary, parallel residual)
    "pythia-1b": (T.GPTNeoXConfig, dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                        num_attention_heads=8, vocab_size=50304, use_parallel_residual=True,
                                        dtype="float16")),
    # DeepSeek (MLA, MoE)
    "deepseek-v2-lite": (T.DeepseekV2Config, dict(hidden_size=2048, num_hidden_layers=27, num_attention_heads=16,
                                                  kv_lora_rank=512, q_lora_rank=None, qk_rope_head_dim=64,
                                                  qk_nope_head_dim=128, v_head_dim=128, n_routed_experts=64,
                                                  num_experts_per_tok=6, vocab_size=102400, dtype="bfloat16")),
    "deepseek-v3": (T.DeepseekV3Config, dict(dtype="bfloat16")),
}


# The original remote-code configs of tiiuae/falcon-7b ("RefinedWebModel") and tiiuae/falcon-40b
# ("RefinedWeb", always the new decoder layout: text-generation-inference's FlashRWLargeLayer), as
# their repositories held them before transformers took Falcon in (their auto_map names RWConfig).
RW_AUTO = {"AutoConfig": "configuration_RW.RWConfig", "AutoModelForCausalLM": "modelling_RW.RWForCausalLM"}
REMOTE = {
    "falcon-7b-refinedweb": {"alibi": False, "apply_residual_connection_post_layernorm": False,
                             "architectures": ["RWForCausalLM"], "attention_dropout": 0.0, "auto_map": RW_AUTO,
                             "bias": False, "bos_token_id": 11, "eos_token_id": 11, "hidden_dropout": 0.0,
                             "hidden_size": 4544, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05,
                             "model_type": "RefinedWebModel", "multi_query": True, "n_head": 71, "n_layer": 32,
                             "parallel_attn": True, "torch_dtype": "bfloat16", "transformers_version": "4.27.4",
                             "use_cache": True, "vocab_size": 65024},
    "falcon-40b-refinedweb": {"alibi": False, "apply_residual_connection_post_layernorm": False,
                              "architectures": ["RWForCausalLM"], "attention_dropout": 0.0, "auto_map": RW_AUTO,
                              "bias": False, "bos_token_id": 11, "eos_token_id": 11, "hidden_dropout": 0.0,
                              "hidden_size": 8192, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05,
                              "model_type": "RefinedWeb", "n_head": 128, "n_head_kv": 8, "n_layer": 60,
                              "parallel_attn": True, "torch_dtype": "bfloat16", "transformers_version": "4.27.4",
                              "use_cache": True, "vocab_size": 65024},
}


def v4(d, kw):
    """The same config as transformers 4.x wrote it: torch_dtype, rope_theta and rope_scaling;
    Qwen2 without layer_types and with its sliding_window as given (v5 writes null unless
    use_sliding_window)."""
    d = dict(d)
    if d["model_type"] == "qwen2":
        d.pop("layer_types", None)
        d["sliding_window"] = kw.get("sliding_window", 4096)
    if "dtype" in d:
        d["torch_dtype"] = d.pop("dtype")
    rp = d.pop("rope_parameters", None)
    if rp is not None:
        rp = dict(rp)
        d["rope_theta"] = rp.pop("rope_theta", 10000.0)
        d["rope_scaling"] = None if rp.get("rope_type", "default") == "default" else rp
    d["transformers_version"] = "4.46.0"
    return d


V4 = ["llama2-7b", "llama3-8b", "llama3.1-8b", "llama3.2-1b", "mistral-7b-v0.1", "mistral-7b-v0.3",
      "qwen2-7b", "qwen2.5-7b-yarn", "falcon-7b", "falcon-40b"]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/golden/hf_configs"
    os.makedirs(out, exist_ok=True)
    for name, (cls, kw) in CASES.items():
        cfg = cls(**kw)
        cfg._name_or_path = name
        path = os.path.join(out, name + ".json")
        cfg.to_json_file(path)
        if name in V4:
            d = json.load(open(path))
            with open(os.path.join(out, name + "-v4.json"), "w") as f:
                json.dump(v4(d, kw), f, indent=2, sort_keys=True)
                f.write("\n")
    for name, d in REMOTE.items():
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(d, f, indent=2, sort_keys=True)
            f.write("\n")
    with open(os.path.join(out, "VERSIONS"), "w") as f:
        f.write(f"transformers {T.__version__}\nscript scripts/hf_configs.py\n")


if __name__ == "__main__":
    main()
