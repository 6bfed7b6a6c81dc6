# Issue #24's end-to-end measurements: where a prefill's time goes, and the fused paths.
# The GEMMs alone (exec/bench/gemm_tune.cu: cublasGemmEx against cuBLASLt's heuristic
# algorithms), kvr exec --profile of Llama-7B (KVR_FUSE_CTX, default 2k and 32k), the SM clock and
# power during the attention kernel and a 32k prefill, ncu on the 16k and 32k attention kernels.
# `fuse.sh [prof] [gemm] [clocks] [ncu]` picks parts (default: all). Logs: fuse_*.log.
# Regenerates: nothing (the measurements quoted in exec/README.md's notes).
parts=" ${*:-prof gemm clocks ncu} "
has() { [[ "$parts" == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,power.limit --format=csv,noheader
if has gemm; then
    nvcc -O2 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o /tmp/gemm_tune \
        exec/bench/gemm_tune.cu -lcublasLt -lcublas 2>&1 | tail -3
    for rows in 2048 32768; do /tmp/gemm_tune $rows 4096 12288 22016 11008; done 2>&1 |
        tee "$out/fuse_gemm.log"
    stamp gemm
fi
if has prof; then
    for ctx in ${KVR_FUSE_CTX:-2k 32k}; do
        timeout 120 $kvr exec --model llama-7b --ctx $ctx --reps 3 --warmup 1 --profile
    done 2>&1 | tee "$out/fuse_prof.log"
    stamp profiled
fi
if has clocks; then
    sample() { exec nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader,nounits -lms 100; }
    for what in "bench attention --ctx 16k --reps 80" "bench attention --ctx 32k --reps 20" \
        "exec --model llama-7b --ctx 32k --reps 2 --warmup 1"; do
        sample >/tmp/clk.csv 2>/dev/null &
        pid=$!
        $kvr $what | grep -E "TFLOP|TTFT|ttft" | head -3
        kill $pid
        wait $pid 2>/dev/null
        echo "  $what: SM MHz / W over $(wc -l </tmp/clk.csv) samples (sorted, every 10th):" \
            "$(sort -n /tmp/clk.csv | awk 'NR % 10 == 1' | tr '\n' ' ')"
    done 2>&1 | tee "$out/fuse_clocks.log"
    stamp clocks
fi
if has ncu; then
    m=gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,lts__t_sector_hit_rate.pct,dram__throughput.avg.pct_of_peak_sustained_elapsed
    for ctx in 16k 32k; do
        echo "## $ctx"
        timeout 90 ncu --clock-control none -k regex:ws_kernel --launch-skip 2 -c 1 --metrics $m \
            $kvr bench attention --ctx $ctx --reps 1 2>&1 |
            grep -E "duration|per_second|hmma|hit_rate|dram__"
    done 2>&1 | tee "$out/fuse_ncu.log"
    stamp ncu
fi
