# Issue #24's end-to-end measurements: where a prefill's time goes, and the fused paths.
# Parts (`fuse.sh PART...`, default: prof gemm clocks ncu): `tests` the GPU tests (meson's
# names in KVR_FUSE_TESTS; stops the task when one fails), `sanitize` compute-sanitizer
# memcheck on small prefills, `prof` kvr exec --profile of Llama-7B (KVR_FUSE_CTX, default 2k and 32k) and its TTFT with the GEMM tuning on
# and off (KVR_GEMM_TUNE), `gemm` the GEMMs alone (exec/bench/gemm_tune.cu: cublasGemmEx
# against cuBLASLt's heuristic algorithms), `clocks` the SM clock and power during the attention
# kernel and a 32k prefill, `ncu` the 16k and 32k attention kernels, `bench`
# scripts/bench_exec.sh into $out/bench, `calib` scripts/gpu/calibrate.sh. Logs: fuse_*.log.
# A failed build, test, sanitizer check, run or script makes the call exit 1.
# Regenerates: through bench and calib, what bench.sh and calibrate.sh regenerate.
parts=" ${*:-prof gemm clocks ncu} "
parts_check tests sanitize prof gemm clocks ncu bench calib
has() { [[ "$parts" == *" $1 "* ]]; }
# the loops run in pipelines' subshells (| tee): each exits with $bad, read back after
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,power.limit --format=csv,noheader
if has gemm; then
    rm -f /tmp/gemm_tune # a failed compile must not leave an earlier call's to run
    nvcc -O2 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o /tmp/gemm_tune \
        exec/bench/gemm_tune.cu -lcublasLt -lcublas 2>&1 | tail -3
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "fuse: nvcc gemm_tune.cu failed"; bad=1; }
    {
        for rows in 2048 32768; do /tmp/gemm_tune $rows 4096 12288 22016 11008 || bad=1; done
        exit $bad
    } 2>&1 | tee "$out/fuse_gemm.log"
    [ "${PIPESTATUS[0]}" = 0 ] || bad=1
    stamp gemm
fi
if has tests; then
    timeout 300 meson test -C build-gpu ${KVR_FUSE_TESTS:-exec_cuda hf_goldens_cuda exec_mpi_cuda exec exec_mpi} \
        --print-errorlogs >/tmp/mt.log 2>&1
    mt=$? # meson's own status too: a test name it does not know, a failed build
    grep -E "^ *[0-9]+/|Ok:|Fail:|Timeout:" /tmp/mt.log | tee "$out/fuse_tests.log"
    grep -E "^not ok" -A3 build-gpu/meson-logs/testlog.txt | head -30 | tee -a "$out/fuse_tests.log"
    grep -hE "^(ok|not ok) .*(gemm|pruned)" build-gpu/meson-logs/testlog.txt | tee -a "$out/fuse_tests.log"
    [ $mt = 0 ] && grep -qE "^Fail: +0" /tmp/mt.log && ! grep -qE "^Timeout: +[1-9]" /tmp/mt.log ||
        { echo "fuse: a GPU test failed, stopping"; exit 1; }
    stamp tested
fi
if has sanitize; then
    printf '[model]\nname = small\nn_layers = 2\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/small.ini
    printf '[model]\nname = odd\nn_layers = 2\nd_model = 196\nn_heads = 2\nn_kv_heads = 1\nhead_dim = 64\nd_ffn = 300\nvocab = 333\nnorm = layernorm\nmlp = gelu\ndtype = bf16\n' >/tmp/odd.ini
    { for m in small odd; do
        timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $kvr exec --model /tmp/$m.ini \
            --ctx 150 --reps 1 --warmup 1 >/tmp/san.log 2>&1
        rc=$?; [ $rc = 0 ] || bad=1
        echo "memcheck kvr exec $m 150 tokens: rc=$rc $(grep 'ERROR SUMMARY' /tmp/san.log)"
    done; exit $bad; } 2>&1 | tee "$out/fuse_sanitize.log"
    [ "${PIPESTATUS[0]}" = 0 ] || bad=1
    stamp sanitized
fi
if has prof; then
    { for ctx in ${KVR_FUSE_CTX:-2k 32k}; do
        KVR_GEMM_LOG=1 timeout 120 $kvr exec --model llama-7b --ctx $ctx --reps 3 --warmup 1 --profile || bad=1
        for tune in 0 1; do
            echo "== KVR_GEMM_TUNE=$tune ctx $ctx"
            KVR_GEMM_TUNE=$tune timeout 120 $kvr exec --model llama-7b --ctx $ctx --reps 3 --warmup 1 |
                grep -E "TTFT|throughput"
            [ "${PIPESTATUS[0]}" = 0 ] || bad=1 # kvr's status, not grep's
        done
    done; exit $bad; } 2>&1 | tee "$out/fuse_prof.log"
    [ "${PIPESTATUS[0]}" = 0 ] || bad=1
    stamp profiled
fi
if has clocks; then
    sample() { exec nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader,nounits -lms 100; }
    { for what in "bench attention --ctx 16k --reps 80" "bench attention --ctx 32k --reps 20" \
        "exec --model llama-7b --ctx 32k --reps 2 --warmup 1"; do
        sample >/tmp/clk.csv 2>/dev/null &
        pid=$!
        $kvr $what >/tmp/clk.out || { echo "kvr $what: FAILED"; bad=1; } # not through head: no SIGPIPE
        grep -E "TFLOP|TTFT|ttft" /tmp/clk.out | head -3
        kill $pid
        wait $pid 2>/dev/null
        echo "  $what: SM MHz / W over $(wc -l </tmp/clk.csv) samples (sorted, every 10th):" \
            "$(sort -n /tmp/clk.csv | awk 'NR % 10 == 1' | tr '\n' ' ')"
    done; exit $bad; } 2>&1 | tee "$out/fuse_clocks.log"
    [ "${PIPESTATUS[0]}" = 0 ] || bad=1
    stamp clocks
fi
if has ncu; then
    m=gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,lts__t_sector_hit_rate.pct,dram__throughput.avg.pct_of_peak_sustained_elapsed
    { for ctx in 16k 32k; do
        echo "## $ctx"
        timeout 90 ncu --clock-control none -k regex:ws_kernel --launch-skip 2 -c 1 --metrics $m \
            $kvr bench attention --ctx $ctx --reps 1 2>&1 |
            grep -E "duration|per_second|hmma|hit_rate|dram__|ERROR|error"
        [ "${PIPESTATUS[0]}" = 0 ] || { echo "ncu $ctx: FAILED"; bad=1; }
    done; exit $bad; } 2>&1 | tee "$out/fuse_ncu.log"
    [ "${PIPESTATUS[0]}" = 0 ] || bad=1
    stamp ncu
fi
if has bench; then
    KVR_BENCH_MODELS=${KVR_BENCH_MODELS:-llama-7b} scripts/bench_exec.sh build-gpu "$out/bench" 2>&1 |
        tail -22
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "fuse: bench_exec.sh failed"; bad=1; }
    stamp benchmarked
fi
if has calib; then
    set -- # calibrate.sh takes no arguments: not fuse's parts
    . scripts/gpu/calibrate.sh
fi
