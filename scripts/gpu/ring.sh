#!/bin/bash
# Issue 23's runs for the multi-GPU issue (25): zig-zag ring attention (kvr exec --scheme ring,
# pass-KV and pass-Q) against KVR-S on one host of P GPUs, one rank per GPU, NCCL, multicast
# off. Run from the project root with .gpu-deps carried:
#   scripts/gpu/ring.sh check     ring on P ranks with nccl gives the single-rank logits (bf16
#                                 bounds) on a small model, both passes, a context 2P does not
#                                 divide; and the emulated 10 GB/s links
#   scripts/gpu/ring.sh predict   the simulator's prediction on the committed 4xH100 profile
#                                 (needs no GPU): ring (kv, q), KVR-S, ring-pass, TSP-causal
#   scripts/gpu/ring.sh measure   the measurements: KVR-S (tables searched on the committed
#                                 profile) and ring pass-KV and pass-Q at $CTX for Llama-7B and
#                                 Falcon-7B into build-gpu/ring.sqlite (copied to $OUT)
# CTX defaults to 16k,32k,64k,128k. The ring's attention runs on the plain kernels of
# exec/kvr_cuda_ring.cu until the fast kernel with a log-sum-exp is switched in: measure only
# after that (the plain kernel is one thread per query row and head).
phase=${1:-check}
. scripts/gpu_env.sh
CTX=${CTX:-16k,32k,64k,128k}
prof=data/machines/h100x4-nccl.ini db=build-gpu/ring.sqlite
run() { timeout "${T:-540}" mpirun -np "$1" --bind-to none -x NCCL_NVLS_ENABLE "${@:2}"; }
relerr() {
    python3 -c "
import array, math, sys
a, b = array.array('f'), array.array('f'); a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
print('%s: rel err %.2e' % (sys.argv[3], math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)) / sum(y * y for y in a))))" "$@"
}

if [ "$phase" = check ]; then
    printf '[model]\nname = gqa64\nn_layers = 3\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/m.ini
    c="--model /tmp/m.ini --ctx 1001 --backend cuda --reps 1 --warmup 0 --timeout 30"
    run 1 $kvr exec $c --scheme single --dump-logits /tmp/r.l >/dev/null
    for s in "--ring-pass kv" "--ring-pass q" "--ring-pass kv --machine a100-10GBps" "--ring-pass q --machine a100-10GBps"; do
        T=60 run $P $kvr exec $c --scheme ring $s --comm nccl --dump-logits /tmp/n.l --json >"$out/ring-check.json" 2>/tmp/e || head -3 /tmp/e
        relerr /tmp/r.l /tmp/n.l "nccl ring $s on $P ranks"
    done
elif [ "$phase" = predict ]; then
    $kvr search --db build-gpu/ring-pred.sqlite --model llama-7b,falcon-7b --machine $prof --gpus 4 \
        --ctx "$CTX" --json >build-gpu/ring-search.json
    python3 - "$kvr" "$prof" <<'PY' | tee "$out/ring-predicted.tsv"
import json, subprocess, sys
kvr, prof = sys.argv[1], sys.argv[2]
print("model\tctx\tKVR-S_ms\tring_kv_ms\tring_q_ms\tring-pass_ms\tTSP-causal_ms\tring_kv/KVR-S\tring_q/KVR-S")
for r in json.load(open('build-gpu/ring-search.json'))['rows']:
    def sim(*a):
        d = json.loads(subprocess.run([kvr, 'sim', '--model', r['model'], '--machine', prof, '--gpus', '4',
                                       '--ctx', str(r['ctx']), '--json', *a], capture_output=True, text=True, check=True).stdout)
        return d['ttft_s'] * 1e3
    s = sim('--scheme', 'kvr', '--partition', ','.join(map(str, r['partition'])))
    kv, q = sim('--scheme', 'ring'), sim('--scheme', 'ring', '--ring-pass', 'q')
    print('%s\t%dk\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.3f\t%.3f' % (r['model'], r['ctx'] // 1024, s, kv, q,
          sim('--scheme', 'ring-pass'), sim('--scheme', 'tsp-causal'), kv / s, q / s))
PY
elif [ "$phase" = measure ]; then
    $kvr search --db $db --model llama-7b,falcon-7b --machine $prof --gpus $P --ctx "$CTX" >/dev/null
    for m in llama-7b falcon-7b; do
        k="--model $m --backend cuda --db $db --json --timeout 120 --comm nccl --reps 3 --warmup 1 --ctx $CTX"
        run $P $kvr exec $k --scheme kvr --machine $prof | grep -E '"(ctx|scheme|method|ttft_s)"' | paste -sd' '
        for pass in kv q; do
            run $P $kvr exec $k --scheme ring --ring-pass $pass | grep -E '"(ctx|scheme|ttft_s)"' | paste -sd' '
        done
    done
    cp $db "$out/"
fi
