#!/usr/bin/env python3
"""PyTorch + Hugging Face reference prefill, the baseline of scripts/bench_exec.sh.

The architecture comes from `kvr model show NAME --json` (the same shape kvrun runs), random
weights in bf16 on the GPU, SDPA attention, the KV cache built (use_cache=True) and the logits
of the last token only (the base model, then lm_head on the last hidden state). Timed with
CUDA events around the whole prefill, after warm-ups; prints one JSON object per context.
--compile runs the decoder under torch.compile (inductor, default mode; each context compiles
in its warm-ups, which stay outside the timing): impl "pytorch-hf-compile".
"""
import argparse
import json
import statistics
import subprocess
import sys

import torch
import transformers


def hf_config(m):
    common = dict(vocab_size=m["vocab"], hidden_size=m["d_model"],
                  num_hidden_layers=m["n_layers"], num_attention_heads=m["n_heads"],
                  tie_word_embeddings=m["tied_embeddings"])
    if m["norm"] == "rmsnorm":
        return transformers.LlamaConfig(intermediate_size=m["d_ffn"],
                                        num_key_value_heads=m["n_kv_heads"],
                                        head_dim=m["head_dim"], rms_norm_eps=1e-5,
                                        rope_theta=10000.0, max_position_embeddings=1 << 20,
                                        **common)
    if m["n_kv_heads"] not in (1, m["n_heads"]) or m["block_norms"] != 1:
        sys.exit("hf_prefill.py: only Falcon-7B-style models (MQA or MHA, one norm)")
    return transformers.FalconConfig(multi_query=m["n_kv_heads"] == 1,
                                     parallel_attn=m["parallel_attn"], bias=m["bias"],
                                     new_decoder_architecture=False, alibi=False,
                                     ffn_hidden_size=m["d_ffn"], rope_theta=10000.0,
                                     layer_norm_epsilon=1e-5, **common)


CAUSAL = "kvr_causal_sdpa"


def causal_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                is_causal=None, **kwargs):
    """SDPA with is_causal=True and no mask tensor. Eager SDPA attention does this by itself
    for an unpadded prompt from an empty cache, but under torch.compile transformers builds the
    whole ctx x ctx mask and passes it (masking_utils' _ignore_causal_mask_sdpa declines while
    tracing), so SDPA leaves its fused causal kernels: the compiled peer would be handicapped.
    Valid here only: one unpadded sequence whose queries are all its keys (refused otherwise)."""
    if query.shape[2] != key.shape[2]:
        raise RuntimeError(f"{CAUSAL}: {query.shape[2]} queries against {key.shape[2]} keys "
                           "(the cache was not empty)")
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, is_causal=True, scale=scaling,
        enable_gqa=key.shape[1] != query.shape[1])
    return out.transpose(1, 2).contiguous(), None


def load(m, attn="sdpa"):
    """Hugging Face's model of the kvr model description m, seeded random bf16 weights on the
    GPU (the same for every call), in eval mode; attn "sdpa" (transformers' own) or CAUSAL
    (causal_sdpa, registered with no mask to build)."""
    if attn == CAUSAL:
        from transformers.masking_utils import AttentionMaskInterface
        transformers.AttentionInterface.register(CAUSAL, causal_sdpa)
        AttentionMaskInterface.register(CAUSAL, lambda *args, **kwargs: None)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(hf_config(m),
                                                              attn_implementation=attn)
    return model.eval()


def decoder(model):
    return model.get_decoder() if hasattr(model, "get_decoder") else model.base_model


def prefill(model, base, ids):
    out = base(input_ids=ids, use_cache=True)
    return model.lm_head(out.last_hidden_state[:, -1:, :])


def prompt_ids(ctx, vocab):
    """The prompt every peer of a context gets: ctx seeded token ids, shape (1, ctx)."""
    g = torch.Generator(device="cuda").manual_seed(1)
    return torch.randint(0, vocab, (1, ctx), device="cuda", generator=g)


def time_one(model, base, ctx, vocab, warmup, reps):
    ids = prompt_ids(ctx, vocab)
    times = []
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        for i in range(warmup + reps):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            logits = prefill(model, base, ids)
            first = int(logits[0, -1].argmax())
            e1.record()
            torch.cuda.synchronize()
            if i >= warmup:
                times.append(e0.elapsed_time(e1) / 1e3)
    return {"ctx": ctx, "ttft_s": statistics.median(times), "ttft_min_s": min(times),
            "ttft_max_s": max(times), "first_token": first,
            "peak_mem_bytes": torch.cuda.max_memory_allocated()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kvr", required=True, help="path of the kvr program")
    ap.add_argument("--model", required=True)
    ap.add_argument("--ctx", required=True, help="comma list of token counts")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="the decoder under torch.compile")
    a = ap.parse_args()
    m = json.loads(subprocess.check_output([a.kvr, "model", "show", a.model, "--json"]))
    model = load(m)
    if a.compile:  # one static graph per context, as a deployment would warm them up
        torch._dynamo.config.automatic_dynamic_shapes = False
    base = torch.compile(decoder(model)) if a.compile else decoder(model)
    for ctx in [int(c) for c in a.ctx.split(",")]:
        try:
            r = time_one(model, base, ctx, m["vocab"], a.warmup, a.reps)
        except torch.OutOfMemoryError:
            r = {"ctx": ctx, "error": "out of memory"}
            torch.cuda.empty_cache()
        r.update(model=a.model, impl="pytorch-hf-compile" if a.compile else "pytorch-hf",
                 torch=torch.__version__,
                 transformers=transformers.__version__)
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
