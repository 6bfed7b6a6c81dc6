#!/bin/sh
# The exactness matrix of the schemes on CPU ranks (ref backend, mpi; issues #21-#23): each
# case's logits and the logits rank's whole KV cache (--dump-kv: every position's K/V, the
# shards' heads gathered with --tp) equal one rank's within float32 rounding, max |diff| <=
# 1e-5 max(1, max |single|) (tensor-parallel shards add partial sums in another order). The
# factors: scheme and mode (kvr whole/streamed/direct, tsp, tsp-causal, ring-pass, ring
# pass-KV/pass-Q, tp), t in 1, 2, 4, p in 2..8, attention (MHA 4/4, GQA 4/2, MQA 4/1 with
# Falcon's parallel block and a tied head), a sliding window of 5 or none, the partition (even,
# one chunk of 1 token, every chunk but the first under the window), and ctx 37 or 23 (no p
# divides either). 1872 valid combinations; the 61 cases below cover every pair of factor
# values that any valid combination has (greedy pairwise, seed 7): the rest of the suite
# (test_exec_mpi, _ring, _window, _tp) adds its own fixed cases; five more run tsp-paper (K/V
# gathered expanded to every query head, untrimmed under the window) for each attention kind. Case: MODEL:CTX:P:T:SCHEME[/MODE]:PARTITION
# (MODEL w: with the window; PARTITION - : the scheme's own split). Skipped (77) without mpirun.
# Usage: test_exec_matrix.sh KVR
. "$(dirname "$0")/tap_helpers.sh"
tap_begin "$1"
mpi_setup

for a in mha:4:4 gqa:4:2 mqa:4:1; do
    name=${a%%:*} kv=${a##*:}
    if [ "$name" = mqa ]; then
        arch='norm = layernorm\nmlp = gelu\nparallel_attn = true\nblock_norms = 1\ntied_embeddings = true'
    else arch='norm = rmsnorm\nmlp = swiglu'; fi
    # d_ffn 100 and vocab 90: 4 shards split them unevenly
    body="n_layers = 2\nd_model = 128\nn_heads = 4\nn_kv_heads = $kv\nd_ffn = 100\nvocab = 90\n$arch\ndtype = bf16"
    printf "[model]\nname = $name\n$body\n" >"$tmp/$name.ini"
    printf "[model]\nname = ${name}w\n$body\nsliding_window = 5\n" >"$tmp/${name}w.ini"
done

# same A B: same_scaled (tap_helpers.sh)
same() { same_scaled "$@"; }
cmp=same

for c in \
    gqa:23:3:1:kvr/streamed:15,1,7 \
    gqa:23:4:4:tp:- \
    gqa:23:6:2:kvr/direct:- \
    gqa:23:6:2:ring/kv:- \
    gqa:23:6:2:tsp-causal:- \
    gqa:23:8:4:tsp:- \
    gqa:37:2:1:ring-pass:- \
    gqa:37:2:1:ring/kv:- \
    gqa:37:4:2:ring/q:- \
    gqa:37:5:1:kvr/streamed:15,7,1,7,7 \
    gqaw:23:4:2:kvr/direct:- \
    gqaw:23:5:1:kvr/whole:10,4,1,4,4 \
    gqaw:23:8:1:kvr/whole:- \
    gqaw:23:8:2:kvr/whole:14,3,3,3 \
    gqaw:37:2:1:kvr/streamed:34,3 \
    gqaw:37:5:1:ring-pass:- \
    gqaw:37:5:1:tsp-causal:- \
    gqaw:37:6:1:kvr/streamed:12,6,6,1,6,6 \
    gqaw:37:6:1:kvr/whole:22,3,3,3,3,3 \
    gqaw:37:7:1:ring/q:- \
    mha:23:2:1:kvr/direct:22,1 \
    mha:23:6:2:ring/q:- \
    mha:23:7:1:kvr/whole:7,3,3,1,3,3,3 \
    mha:23:8:4:tsp-causal:- \
    mha:37:2:1:ring/q:- \
    mha:37:3:1:tsp-causal:- \
    mha:37:5:1:ring/q:- \
    mha:37:5:1:tsp:- \
    mhaw:23:2:1:tsp:- \
    mhaw:23:4:2:ring-pass:20,3 \
    mhaw:23:4:2:tsp-causal:- \
    mhaw:23:7:1:ring/kv:- \
    mhaw:23:7:1:tsp-causal:- \
    mhaw:23:8:4:kvr/whole:20,3 \
    mhaw:23:8:4:ring-pass:20,3 \
    mhaw:37:2:2:tp:- \
    mhaw:37:3:1:ring/kv:- \
    mhaw:37:3:1:tsp:- \
    mhaw:37:5:1:kvr/direct:25,3,3,3,3 \
    mhaw:37:6:1:tsp:- \
    mhaw:37:8:4:kvr/direct:34,3 \
    mhaw:37:8:4:kvr/streamed:36,1 \
    mqa:23:2:2:tp:- \
    mqa:23:3:1:ring-pass:- \
    mqa:23:4:2:tsp:- \
    mqa:23:5:1:ring/kv:- \
    mqa:23:6:2:ring-pass:15,1,7 \
    mqa:23:8:4:ring/kv:- \
    mqa:23:8:4:ring/q:- \
    mqa:37:3:1:kvr/direct:24,1,12 \
    mqa:37:4:1:kvr/whole:18,9,1,9 \
    mqa:37:4:2:kvr/streamed:- \
    mqa:37:7:1:ring-pass:11,5,5,1,5,5,5 \
    mqaw:23:3:1:kvr/whole:17,3,3 \
    mqaw:37:2:1:kvr/whole:- \
    mqaw:37:2:1:tsp-causal:- \
    mqaw:37:3:1:ring/q:- \
    mqaw:37:4:2:ring/kv:- \
    mqaw:37:7:1:kvr/direct:19,3,3,3,3,3,3 \
    mqaw:37:7:1:kvr/streamed:19,3,3,3,3,3,3 \
    mqaw:37:7:1:tsp:- \
    gqa:37:4:1:tsp-paper:- \
    gqa:23:4:2:tsp-paper:- \
    mqa:37:5:1:tsp-paper:- \
    mqaw:23:3:1:tsp-paper:- \
    mhaw:37:2:1:tsp-paper:- \
    ; do
    IFS=: read -r model ctx p t scheme part <<CASE
$c
CASE
    common="--model $tmp/$model.ini --ctx $ctx --backend ref --reps 1 --warmup 0"
    if [ "$model:$ctx" != "${last:-}" ]; then ref_run "$model, $ctx tokens: single-rank reference"; fi
    last=$model:$ctx
    mode= opt=
    case $scheme in */*) mode=${scheme#*/} scheme=${scheme%/*} ;; esac
    case $scheme in kvr) opt="--kv-forward $mode" ;; ring) opt="--ring-pass $mode" ;; esac
    if [ "$t" != 1 ] || [ "$scheme" = tp ]; then opt="$opt --tp $t"; fi
    [ "$part" = - ] || opt="$opt --partition $part"
    # shellcheck disable=SC2086
    vs_ref "$p" "$model ctx $ctx: $scheme${mode:+ $mode} x$t on $p ranks, partition $part: logits and whole KV cache equal single" \
        --scheme "$scheme" $opt
done

# the check can fail: the windowed model's logits against the windowless one's
mpi 1 exec --model "$tmp/gqa.ini" --ctx 37 --backend ref --reps 1 --warmup 0 --dump-logits "$tmp/ref.l" >/dev/null 2>"$tmp/err" &&
    mpi 4 exec --model "$tmp/gqaw.ini" --ctx 37 --backend ref --reps 1 --warmup 0 --scheme kvr --dump-logits "$tmp/l" >/dev/null 2>>"$tmp/err" &&
    ! same "$tmp/l" "$tmp/ref.l"
report $? "the comparison can fail: a window of 5 changes the logits" "$(cat "$tmp/err")"
echo "1..$n"
[ "$failed" = 0 ]
