# The unit, MPI and GPU tests, then compute-sanitizer.
# The tests run cuda against ref and ranks sharing the GPU; compute-sanitizer (memcheck,
# racecheck) runs small prefills and attention shapes. Logs: test.log, sanitizer.log. A failed
# suite or sanitizer run makes the call exit 1.
# Regenerates: nothing.
no_args "$@"
meson test -C build-gpu --suite gpu --suite unit --suite mpi --print-errorlogs 2>&1 |
    grep -E "^ *[0-9]+/|Ok:|Fail:" | tee "$out/test.log"
[ "${PIPESTATUS[0]}" = 0 ] || bad=1 # meson's status, not grep's
grep -E "^not ok" -A4 build-gpu/meson-logs/testlog.txt | head -40 | tee -a "$out/test.log"
stamp tested
printf '[model]\nname = small\nn_layers = 2\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/small.ini
printf '[model]\nname = odd\nn_layers = 2\nd_model = 196\nn_heads = 2\nn_kv_heads = 1\nhead_dim = 64\nd_ffn = 300\nvocab = 333\nnorm = layernorm\nmlp = gelu\ndtype = bf16\n' >/tmp/odd.ini
# the block is a pipeline's subshell (| tee): it exits with $bad, read back after; each
# sanitizer's status through tail (pipefail)
{
    for m in small odd; do
        compute-sanitizer --tool memcheck --error-exitcode 9 $kvr exec --model /tmp/$m.ini --ctx 150 --reps 1 --warmup 0 2>&1 | tail -2 ||
            bad=1
    done
    for args in "--ctx 300 --prefix 100 --heads 4 --kv-heads 2 --head-dim 64" "--ctx 200 --prefix 37 --heads 2 --head-dim 128 --dense"; do
        compute-sanitizer --tool memcheck --error-exitcode 9 $kvr bench attention $args --check --reps 1 2>&1 | tail -3 || bad=1
    done
    compute-sanitizer --tool racecheck --error-exitcode 9 $kvr bench attention --ctx 130 --heads 2 --head-dim 128 --reps 1 2>&1 | tail -2 ||
        bad=1
    exit $bad
} 2>&1 | tee "$out/sanitizer.log"
[ "${PIPESTATUS[0]}" = 0 ] || bad=1
stamp sanitized
