# Zig-zag ring attention (issue 23) against KVR-S on several GPUs of one host, for issue 25.
# One rank per GPU, NCCL, multicast off. Run from the project root with .gpu-deps carried, as
# `bash scripts/gpu/ring.sh PHASE` (it sources scripts/gpu_env.sh itself unless scripts/gpu.sh
# already did: `scripts/gpu.sh ring PHASE`):
#   ring check     ring on P ranks with nccl gives the single-rank logits (bf16 bounds) on a
#                  small model, pass-KV and pass-Q, a context 2P does not divide, at full speed
#                  and with the links emulated at a100-10GBps
#   ring predict   the simulator's prediction on the committed 4xH100 profile (no GPU needed):
#                  ring pass-KV, pass-Q, auto, KVR-S (searched on the profile), ring-pass,
#                  TSP-causal at $CTX; ring-predicted.tsv in $out
#   ring measure   KVR-S (tables searched on the committed profile) and ring pass-KV and pass-Q
#                  at $CTX for Llama-7B and Falcon-7B into build-gpu/ring.sqlite (copied to $out)
# CTX defaults to 16k,32k,64k,128k (KVR-S at 128k does not fit an 80 GB H100; H200s hold it).
# The ring's attention runs on the plain kernels of exec/kvr_cuda_ring.cu until the fast
# kernel with a log-sum-exp is switched in: measure only after that (the plain kernel is one
# thread per query row and head, far from the fast kernel's speed).
# Regenerates: nothing committed yet (the ring's first GPU measurements go with issue 25).
phase=${1:-check}
[ -n "${kvr:-}" ] || . scripts/gpu_env.sh
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
print("model\tctx\tKVR-S_ms\tring_kv_ms\tring_q_ms\tring_auto\tring-pass_ms\tTSP-causal_ms\tring_kv/KVR-S\tring_q/KVR-S")
for r in json.load(open('build-gpu/ring-search.json'))['rows']:
    def sim(*a):
        return json.loads(subprocess.run([kvr, 'sim', '--model', r['model'], '--machine', prof, '--gpus', '4',
                                          '--ctx', str(r['ctx']), '--json', *a], capture_output=True, text=True,
                                         check=True).stdout)
    ms = lambda *a: sim(*a)['ttft_s'] * 1e3
    s = ms('--scheme', 'kvr', '--partition', ','.join(map(str, r['partition'])))
    kv, q = ms('--scheme', 'ring'), ms('--scheme', 'ring', '--ring-pass', 'q')
    auto = sim('--scheme', 'ring', '--ring-pass', 'auto')['ring_pass']
    print('%s\t%dk\t%.1f\t%.1f\t%.1f\t%s\t%.1f\t%.1f\t%.3f\t%.3f' % (r['model'], r['ctx'] // 1024, s, kv, q, auto,
          ms('--scheme', 'ring-pass'), ms('--scheme', 'tsp-causal'), kv / s, q / s))
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
