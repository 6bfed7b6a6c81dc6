# A quick check of one change on the GPU: the named meson tests (QUICK_TESTS, default exec_cuda
# and exec_mpi_cuda) with their failures, and compute-sanitizer memcheck on one small prefill.
# Logs: quick.log. Regenerates: nothing.
no_args "$@"
{
    stamp "built $(cat .kvr-version 2>/dev/null)"
    timeout 400 meson test -C build-gpu ${QUICK_TESTS:-exec_cuda exec_mpi_cuda} --print-errorlogs \
        >/tmp/quick-mt.log 2>&1 || bad=1
    grep -E "^ *[0-9]+/|Ok:|Fail:" /tmp/quick-mt.log
    grep -E "^not ok" -A4 build-gpu/meson-logs/testlog.txt | head -30
    grep -E "^ok.*(regroup|tsp-paper)" build-gpu/meson-logs/testlog.txt
    stamp tested
    # the block is a pipeline's subshell (| tee): its bad=1 is not this shell's, its status is
    exit $bad
} 2>&1 | tee "$out/quick.log"
[ "${PIPESTATUS[0]}" = 0 ]
