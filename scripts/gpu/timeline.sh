# Per-rank timelines of P-GPU runs, for kvr validate --timeline.
# KVR-S (the committed table's partition on data/machines/h100x4-nccl.ini) of Llama-7B and
# Falcon-7B at 16k and 32k, and tsp of Llama-7B at 32k: each kvr exec's extra synchronous run.
# TSVs under $out. A failed lookup or run makes the call exit 1.
# Regenerates: data/measurements/h100x4-timeline-llama-7b-32k-kvr.tsv (tl-llama-7b-32k-kvr.tsv).
no_args "$@"
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
db=data/measurements/h100x4-multi.sqlite prof=data/machines/h100x4-nccl.ini
for m in llama-7b falcon-7b; do for ctx in 16k 32k; do
    part=$($kvr lookup --db $db --model $m --machine $prof --gpus $P --ctx $ctx --json |
        python3 -c "import json, sys; print(','.join(map(str, json.load(sys.stdin)['partition_tokens'])))") ||
        { echo "$m $ctx: no partition on $P GPUs in $db"; bad=1; continue; }
    T=120 run $P $kvr exec --model $m --ctx $ctx \
        --backend cuda --comm nccl --scheme kvr --partition $part --reps 1 --warmup 1 \
        --timeline "$out/tl-$m-$ctx-kvr.tsv" | grep -E "TTFT" || bad=1 # pipefail: kvr's status, else no TTFT
    echo "$m $ctx kvr $part"
done; done
T=120 run $P $kvr exec --model llama-7b --ctx 32k \
    --backend cuda --comm nccl --scheme tsp --reps 1 --warmup 1 --timeline "$out/tl-llama-7b-32k-tsp.tsv" | grep TTFT ||
    bad=1
