# Attention at short contexts and on a chain rank's chunk, kvrun against PyTorch SDPA (#24).
# Runs exec/bench/attn_peer.py on its short shapes (2k-8k causal, GQA 4:1 at 2k, 3k after 13k),
# kvrun's default, plain-grid (6) and persistent (9) variants, 3 alternating rounds.
# Regenerates: exec/bench/attn_short_h200.{jsonl,md} (from $out/attn_short.*).
no_args "$@"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw --format=csv,noheader
shapes=("2k MHA hd128" "4k MHA hd128" "8k MHA hd128" "2k GQA 4:1 hd128" "3k after 13k MHA hd128")
args=()
for s in "${shapes[@]}"; do args+=(--shape "$s"); done
timeout 420 python3 exec/bench/attn_peer.py $kvr "$out/attn_short.jsonl" "$out/attn_short.md" \
    --commit "${KVR_VERSION:-unknown}" --variants 0,6,9 --rounds 3 "${args[@]}" >"$out/attn_short.log" 2>&1 || bad=1
stamp "attention, short shapes"
cat "$out/attn_short.md"
