# This build against another tree's build, alternating on one GPU (clocks drift: alternate, and
# compare the ratio): `BASE=DIR scripts/gpu.sh ab` with DIR a carried copy of the other tree
# (built here in DIR/build-gpu). Per round: attention alone at 16k and 32k (head dim 128) and
# Llama-7B's TTFT at 32k, this build then the base. A failed build or run makes the call exit 1.
# Logs: ab.log. Regenerates: nothing.
no_args "$@"
base=${BASE:?BASE=DIR: the other tree}
rounds=${ROUNDS:-3}
{
    stamp "built $(cat .kvr-version 2>/dev/null)"
    (cd "$base" && { [ -f build-gpu/build.ninja ] || meson setup build-gpu --buildtype=release \
        -Dcuda=enabled >/dev/null 2>&1; } && meson compile -C build-gpu >/tmp/base-build.log 2>&1) ||
        { tail -20 /tmp/base-build.log; exit 1; }
    stamp "built base $(cat "$base/.kvr-version" 2>/dev/null)"
    for r in $(seq "$rounds"); do
        for who in this base; do
            k=$kvr; [ $who = base ] && k=$base/build-gpu/experiments/kvr
            for ctx in 16k 32k; do
                capture $k bench attention --ctx $ctx --reps 20 || bad=1
                echo "round $r $who attention $ctx: $(grep -m1 -E 'TFLOP' <<<"$got")"
            done
            capture $k exec --model llama-7b --ctx 32k --backend cuda --warmup 1 --reps 3 || bad=1
            echo "round $r $who llama-7b 32k: $(grep TTFT <<<"$got")"
        done
    done
    stamp done
    exit $bad
} 2>&1 | tee "$out/ab.log"
[ "${PIPESTATUS[0]}" = 0 ]
