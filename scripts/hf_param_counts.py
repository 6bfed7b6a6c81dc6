#!/usr/bin/env python3
"""Parameter counts as the reference framework (Hugging Face transformers) reports them, for the
configs of kvrun's presets. Models are built on the meta device: no weights, no download.
Output: TSV (preset, params) with the library versions as a comment; data/golden/ keeps it."""
import sys

import torch
import transformers
from transformers import (AutoModelForCausalLM, FalconConfig, LlamaConfig, MistralConfig,
                          Qwen2Config)

LLAMA = dict(hidden_act="silu", tie_word_embeddings=False)
CONFIGS = {
    "llama-7b": LlamaConfig(hidden_size=4096, intermediate_size=11008, num_attention_heads=32,
                            num_hidden_layers=32, vocab_size=32000, **LLAMA),
    "llama-13b": LlamaConfig(hidden_size=5120, intermediate_size=13824, num_attention_heads=40,
                             num_hidden_layers=40, vocab_size=32000, **LLAMA),
    "llama-30b": LlamaConfig(hidden_size=6656, intermediate_size=17920, num_attention_heads=52,
                             num_hidden_layers=60, vocab_size=32000, **LLAMA),
    "llama-2-70b": LlamaConfig(hidden_size=8192, intermediate_size=28672, num_attention_heads=64,
                               num_key_value_heads=8, num_hidden_layers=80, vocab_size=32000,
                               **LLAMA),
    "llama-3-8b": LlamaConfig(hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                              num_key_value_heads=8, num_hidden_layers=32, vocab_size=128256,
                              rope_theta=500000.0, **LLAMA),
    "llama-3.1-8b": LlamaConfig(hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                                num_key_value_heads=8, num_hidden_layers=32, vocab_size=128256,
                                max_position_embeddings=131072,
                                rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0,
                                                 "factor": 8.0, "low_freq_factor": 1.0,
                                                 "high_freq_factor": 4.0,
                                                 "original_max_position_embeddings": 8192},
                                **LLAMA),
    "qwen2-7b": Qwen2Config(hidden_size=3584, intermediate_size=18944, num_attention_heads=28,
                            num_key_value_heads=4, num_hidden_layers=28, vocab_size=152064,
                            rope_theta=1000000.0, tie_word_embeddings=False),
    "mistral-7b": MistralConfig(hidden_size=4096, intermediate_size=14336,
                                num_attention_heads=32, num_key_value_heads=8,
                                num_hidden_layers=32, vocab_size=32000, **LLAMA),
    "falcon-7b": FalconConfig(hidden_size=4544, num_attention_heads=71, num_hidden_layers=32,
                              vocab_size=65024, multi_query=True, new_decoder_architecture=False,
                              parallel_attn=True, bias=False, alibi=False),
}

print(f"# transformers {transformers.__version__}, torch {torch.__version__}; "
      "model.num_parameters() on the meta device")
print("preset\tparams")
for name, cfg in CONFIGS.items():
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    print(f"{name}\t{model.num_parameters()}")
    sys.stdout.flush()
