#!/bin/sh
# Progress bars on a terminal (script(1) gives the command one): redrawn at most ten times a
# second however many items finish (a 192-search run redrew once per item: 576 redraws in
# 1.4 s), the last state drawn, and none with --quiet or when stderr is not a terminal. The
# bound grows with the measured wall time, so a slow machine cannot fail it.
# Usage: test_progress.sh KVR (TAP)
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
if ! command -v script >/dev/null; then
    echo "1..0 # SKIP no script(1)"
    exit 77
fi
args="search --model llama-7b,falcon-7b --machine a100-nvlink,a100-10GBps --gpus 2,4,8 --ctx 1k-16k+1k"
t0=$(date +%s.%N)
script -qec "'$kvr' $args --db '$tmp/a.db' >/dev/null" /dev/null >"$tmp/tty" 2>&1
t1=$(date +%s.%N)
draws=$(grep -ao "search \[" "$tmp/tty" | wc -l)
python3 -c "import sys; d, w = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); sys.exit(0 if 1 <= d <= 10 * w + 3 else 1)" "$draws" "$t0" "$t1"
report $? "192 searches on a terminal: $draws redraws in $(python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1") s (at most 10 a second, plus the first and the last)" "$(tail -c 300 "$tmp/tty")"
tr '\r' '\n' <"$tmp/tty" | grep -q "search \[=*\] 192/192"
report $? "  the last state (192/192) is drawn"
script -qec "'$kvr' $args --db '$tmp/b.db' --quiet >/dev/null" /dev/null >"$tmp/tty" 2>&1
! grep -aq "search \[" "$tmp/tty"
report $? "  --quiet: no bar"
"$kvr" $args --db "$tmp/c.db" >/dev/null 2>"$tmp/err"
! grep -aq "search \[" "$tmp/err"
report $? "  stderr not a terminal: no bar" "$(head -c 200 "$tmp/err")"
echo "1..$n"
[ "$failed" = 0 ]
