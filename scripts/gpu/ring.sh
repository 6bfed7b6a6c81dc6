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
#   ring kernels   one GPU is enough: the fast ring path's GPU tests (test_exec_ring_ops, the
#                  ring cases of test_exec_mpi_cuda.sh on ranks sharing the GPU, a try of nccl
#                  there), compute-sanitizer memcheck and racecheck on it, `kvr bench attention
#                  --ring 4` at 16k (every zig-zag step, beside the prefill kernel on the same
#                  pairs; BASE=DIR/kvr adds another build's prefill kernel, alternating), and
#                  the whole prefill: ring on 1 rank and on 4 ranks sharing the GPU against the
#                  single rank (an overhead, not a speedup: the ranks take turns on one GPU)
# CTX defaults to 16k,32k,64k,128k (KVR-S at 128k does not fit an 80 GB H100; H200s hold it).
# The ring's attention runs on the fast path (exec/kvr_cuda_ring.cu: the warp-specialised
# kernel of kvr_cuda_attn_ws.cu on each block with its log-sum-exp, vectorised fp32 merge and
# finish; `ring kernels` checks it against the plain kernels), so `measure` measures the ring.
# A failed check, test, sanitizer run or measurement makes the call exit 1.
# Regenerates: nothing committed yet (the ring's first GPU measurements go with issue 25).
phase=${1:-check}
# an unknown phase ran nothing and passed
case $phase in
check | kernels | predict | measure) ;;
*) echo "ring: no phase '$phase' (the phases: check kernels predict measure)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "ring $phase: takes no more arguments (given: ${*:2})" >&2; exit 2; }
[ -n "${kvr:-}" ] || . scripts/gpu_env.sh
CTX=${CTX:-16k,32k,64k,128k}
prof=${gpu_prof:?no multi-GPU profile of this GPU kind (scripts/gpu_env.sh)} db=build-gpu/ring.sqlite
run() { timeout "${T:-540}" mpirun -np "$1" --bind-to none -x NCCL_NVLS_ENABLE "${@:2}"; }

if [ "$phase" = check ]; then
    printf '[model]\nname = gqa64\nn_layers = 3\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/m.ini
    c="--model /tmp/m.ini --ctx 1001 --backend cuda --reps 1 --warmup 0 --timeout 30"
    rm -f /tmp/r.l # an earlier call's reference must not stand in for a failed one
    run 1 $kvr exec $c --scheme single --dump-logits /tmp/r.l >/dev/null ||
        { echo "ring check: the one-rank reference failed"; bad=1; }
    for s in "--ring-pass kv" "--ring-pass q" "--ring-pass kv --machine a100-10GBps" "--ring-pass q --machine a100-10GBps"; do
        rm -f /tmp/n.l
        T=60 run $P $kvr exec $c --scheme ring $s --comm nccl --dump-logits /tmp/n.l --json >"$out/ring-check.json" 2>/tmp/e ||
            { head -3 /tmp/e; bad=1; }
        logits_vs /tmp/r.l /tmp/n.l "nccl ring $s on $P ranks" || bad=1
    done
elif [ "$phase" = kernels ]; then
    export KVR_TEST_RING_ONLY=1
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,power.limit --format=csv,noheader | tee "$out/gpu.txt"
    stamp "kernels: built $($kvr --version | head -1)"
    timeout 120 build-gpu/tests/test_exec_ring_ops >"$out/ring-ops.tap" 2>&1
    rc=$?; [ $rc = 0 ] || bad=1
    echo "test_exec_ring_ops rc=$rc $(grep -c '^ok' "$out/ring-ops.tap") ok, $(grep -c '^not ok' "$out/ring-ops.tap") not ok"
    grep -A2 '^not ok' "$out/ring-ops.tap" | head -20
    stamp "kernels: ring ops"
    b="$kvr bench attention --reps 20"
    $b --ring 4 --ctx 4k --heads 8 --kv-heads 2 --check --reps 3 | tee "$out/ring-bench.txt" || bad=1 # pipefail
    for a in "--heads 32" "--heads 32 --kv-heads 8" "--heads 71 --kv-heads 1 --head-dim 64"; do
        $b --ring 4 --ctx 16k $a | tee -a "$out/ring-bench.txt" || bad=1
        if [ -x "${BASE:-}" ]; then
            capture $BASE bench attention --reps 20 --ctx 16k $a || bad=1
            echo "base: $got" | tee -a "$out/ring-bench.txt"
        fi
    done
    stamp "kernels: bench"
    for tool in memcheck racecheck; do
        for hd in 64 128; do
            timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 $kvr bench attention --ring 2 \
                --ctx 500 --heads 4 --kv-heads 2 --head-dim $hd --window 200 --check --reps 1 >/tmp/san.log 2>&1
            rc=$?; [ $rc = 0 ] || bad=1
            echo "$tool ring hd$hd: rc=$rc $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.log)" | tee -a "$out/sanitize.log"
        done
    done
    T=60 run 2 compute-sanitizer --tool memcheck --error-exitcode 9 $kvr exec --model /tmp/gqa64.ini --ctx 301 \
        --backend cuda --reps 1 --warmup 0 --scheme ring >/tmp/san.log 2>&1
    rc=$?; [ $rc = 0 ] || bad=1
    echo "memcheck ring exec on 2 ranks: rc=$rc $(grep -E 'ERROR SUMMARY' /tmp/san.log | sort | uniq -c | paste -sd' ')" | tee -a "$out/sanitize.log"
    stamp "kernels: sanitizer"
    timeout 200 tests/test_exec_mpi_cuda.sh $kvr >"$out/mpi-cuda.tap" 2>&1
    rc=$?; [ $rc = 0 ] || bad=1
    echo "test_exec_mpi_cuda (ring only) rc=$rc $(grep -c '^ok' "$out/mpi-cuda.tap") ok, $(grep -c '^not ok' "$out/mpi-cuda.tap") not ok"
    grep -A3 '^not ok' "$out/mpi-cuda.tap" | head -20
    T=60 run 2 $kvr exec --model /tmp/gqa64.ini --ctx 301 --backend cuda --reps 1 --warmup 0 --scheme ring \
        --comm nccl >/tmp/nccl.log 2>&1
    # a try, not a check: NCCL may refuse two ranks on one GPU; its rc is reported, not counted
    echo "nccl, 2 ranks sharing the GPU: rc=$? $(grep -iE 'error|ttft' /tmp/nccl.log | head -2 | paste -sd' ')" | tee -a "$out/ring-bench.txt"
    stamp "kernels: ranks"
    printf '[model]\nname = llama-7b-8l\nn_layers = 8\nd_model = 4096\nn_heads = 32\nn_kv_heads = 32\nd_ffn = 11008\nvocab = 32000\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/l8.ini
    e="exec --backend cuda --ctx 16k --json --warmup 1"
    for m in llama-7b /tmp/l8.ini; do
        capture $kvr $e --reps 3 --model $m || bad=1
        echo "$m single: $(grep -E '"ttft_s"' <<<"$got")" | tee -a "$out/ring-prefill.txt"
        T=60 capture run 1 $kvr $e --reps 3 --model $m --scheme ring || bad=1
        echo "$m ring on 1 rank: $(grep -E '"ttft_s"' <<<"$got")" | tee -a "$out/ring-prefill.txt"
    done
    for pass in kv q; do
        T=90 capture run 4 $kvr $e --reps 1 --model /tmp/l8.ini --scheme ring --ring-pass $pass || bad=1
        echo "/tmp/l8.ini ring pass-$pass, 4 ranks sharing the GPU (mpi): $(grep -E '"ttft_s"' <<<"$got")" | tee -a "$out/ring-prefill.txt"
    done
    stamp "kernels: prefill"
elif [ "$phase" = predict ]; then
    $kvr search --db build-gpu/ring-pred.sqlite --model llama-7b,falcon-7b --machine $prof --gpus 4 \
        --ctx "$CTX" --json >build-gpu/ring-search.json || [ $? = 3 ] || bad=1 # 3: some do not fit (128k)
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
    [ $? = 0 ] || bad=1 # pipefail: python's status through tee
elif [ "$phase" = measure ]; then
    $kvr search --db $db --model llama-7b,falcon-7b --machine $prof --gpus $P --ctx "$CTX" >/dev/null ||
        [ $? = 3 ] || bad=1
    for m in llama-7b falcon-7b; do
        k="--model $m --backend cuda --db $db --json --timeout 120 --comm nccl --reps 3 --warmup 1 --ctx $CTX"
        # kvr's status, not grep's; 3, a plan that does not fit (KVR-S at 128k on an 80 GB H100), is a result
        run $P $kvr exec $k --scheme kvr --machine $prof | grep -E '"(ctx|scheme|method|ttft_s)"' | paste -sd' '
        case ${PIPESTATUS[0]} in 0 | 3) ;; *) bad=1 ;; esac
        for pass in kv q; do
            run $P $kvr exec $k --scheme ring --ring-pass $pass | grep -E '"(ctx|scheme|ttft_s)"' | paste -sd' '
            case ${PIPESTATUS[0]} in 0 | 3) ;; *) bad=1 ;; esac
        done
    done
    cp $db "$out/"
fi
[ "$bad" = 0 ] # the status, run by itself too (bash scripts/gpu/ring.sh PHASE)
