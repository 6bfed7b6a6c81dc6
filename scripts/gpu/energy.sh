# Energy per prefill at the power cap (#24): kvrun and torch.compile at 2k beside nvidia-smi's power and clock every 20 ms (exec/bench/power_peer.py), and each GEMM candidate of Llama-7B at 2k timed cold and after 400 ms back to back (exec/bench/gemm_tune.cu hot).
# KVR_ENERGY_CTX: the contexts (default 2048). Logs: energy.jsonl (power_peer.py's JSON lines
# only), energy.log (its stderr: warnings, errors), gemm_hot.log.
# Regenerates: nothing (exec/bench/RESULTS.md by hand).
no_args "$@"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,power.limit --format=csv,noheader
stamp "built $(cat .kvr-version 2>/dev/null)"
rm -f /tmp/gemm_tune # a failed compile must not leave an earlier call's to run
nvcc -O2 -arch=sm_90a -o /tmp/gemm_tune exec/bench/gemm_tune.cu -lcublasLt -lcublas || bad=1
/tmp/gemm_tune 2048 4096 12288 22016 11008 hot 2>&1 | tee "$out/gemm_hot.log" || bad=1
stamp gemm
for ctx in ${KVR_ENERGY_CTX:-2048}; do
    # stderr apart: merged, a warning or a traceback would be a line of the JSONL
    PYTHONUNBUFFERED=1 timeout 300 python3 exec/bench/power_peer.py --kvr $kvr --ctx $ctx \
        2>>"$out/energy.log" | tee -a "$out/energy.jsonl" || {
        echo "power_peer.py ctx $ctx: FAILED (rc ${PIPESTATUS[0]}), $out/energy.log:"
        tail -5 "$out/energy.log"
        bad=1
    }
done
stamp energy
