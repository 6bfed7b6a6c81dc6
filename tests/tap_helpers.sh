# Shared helpers of the shell tests (sourced): the start (tap_begin), TAP reporting, exit code +
# message checks, JSON checks, one-value SQLite queries, and the rank tests' runs against one
# rank. The caller starts with tap_begin KVR (or sets $kvr and $tmp, and n=0 failed=0).

# tap_begin KVR: the program under test in $kvr, the counters, a temporary folder $tmp
# (kvr-test-NAME-XXXXXX for test_NAME.sh) removed on exit, and the source root in $src (absolute)
tap_begin() {
    kvr=$1 n=0 failed=0 tb_name=$(basename "$0" .sh)
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-test-${tb_name#test_}-XXXXXX") || exit 1
    trap 'rm -rf "$tmp"' EXIT
    src=$(realpath "${KVR_SOURCE_ROOT:-$(dirname "$0")/..}")
}

report() { # report PASS NAME [DETAIL]
    n=$((n + 1))
    if [ "$1" = 0 ]; then echo "ok $n - $2"; else
        echo "not ok $n - $2"; failed=$((failed + 1))
        [ -n "$3" ] && printf '%s\n' "$3" | sed 's/^/#   /'
    fi
}

# expect CODE NEEDLE NAME -- ARGS...: exit code and a substring of stderr
expect() {
    code=$1 needle=$2 name=$3; shift 4
    "$kvr" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ "$rc" = "$code" ] && grep -qF -- "$needle" "$tmp/err"; then report 0 "$name"
    else report 1 "$name" "exit $rc (want $code); stderr: $(cat "$tmp/err")"; fi
}

# json_check NAME PYTHON-EXPR -- ARGS...: stdout is JSON and the expression on it (d) holds
json_check() {
    name=$1 expr=$2; shift 3
    "$kvr" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($expr) else 1)" "$tmp/out" 2>"$tmp/perr"
    py=$?
    if [ "$rc" = 0 ] && [ "$py" = 0 ]; then report 0 "$name"
    else report 1 "$name" "exit $rc, check $py: $(head -c 400 "$tmp/out") $(cat "$tmp/err" "$tmp/perr")"; fi
}

# sql DB QUERY: the first value of the first row
sql() {
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(sys.argv[2]).fetchone()[0])" "$@"
}

# mpi_setup: exits 77 (skipped) without mpirun or an MPI build of $kvr; otherwise lets Open MPI
# run as root (CI does) and oversubscribe the cores, and forbids the cross-memory attach that
# containers often refuse. Then `mpi NP ARGS...` runs $kvr on NP ranks.
mpi_setup() {
    if ! command -v mpirun >/dev/null || ! "$kvr" --version | grep -q "mpi=yes"; then
        echo "1..0 # SKIP no mpirun or kvr built without MPI"
        exit 77
    fi
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
    # each test its own session folder: concurrent mpiruns (meson test -j, two checkouts) else
    # race on /tmp/ompi.HOST.UID ("mkdir ... File exists")
    [ -n "${tmp:-}" ] && mkdir -p "$tmp/ompi" && export OMPI_MCA_orte_tmpdir_base="$tmp/ompi"
}
mpi() { np=$1; shift; timeout 300 mpirun -np "$np" --oversubscribe "$kvr" "$@"; }

# same_f32 A B: two float32 dumps of one length, max abs diff <= 1e-5 (the rank tests' check)
same_f32() {
    python3 - "$1" "$2" <<'PY'
import array, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
sys.exit(0 if len(a) == len(b) > 0 and max(abs(x - y) for x, y in zip(a, b)) <= 1e-5 else 1)
PY
}

# same_scaled A B: two float32 dumps of one length, max |a - b| <= 1e-5 max(1, max |b|) (tp's
# shards add their partial sums in another order, so large values differ in their last bits)
same_scaled() {
    python3 - "$1" "$2" <<'PY'
import array, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
ok = len(a) == len(b) > 0
ok = ok and max(abs(x - y) for x, y in zip(a, b)) <= 1e-5 * max(1.0, max(abs(y) for y in b))
sys.exit(0 if ok else 1)
PY
}

# gpu_setup: exits 77 (skipped) when $kvr has no GPU to run the attention kernel on.
gpu_setup() {
    if ! "$kvr" bench attention --ctx 64 --reps 1 >/dev/null 2>&1; then
        echo "1..0 # SKIP no GPU"
        exit 77
    fi
}

# close_bf16 A B: two float32 dumps of one length within bf16 bounds (relative L2 error <= 2e-2)
close_bf16() {
    python3 - "$1" "$2" <<'PY'
import array, math, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
num = sum((x - y) ** 2 for x, y in zip(a, b)); den = sum(y * y for y in b)
sys.exit(0 if len(a) == len(b) > 0 and math.sqrt(num / den) <= 2e-2 else 1)
PY
}

# ref_run NAME: the single-rank run of $common (kvr exec's options) as the reference: its logits
# and KV cache in $tmp/ref.l and $tmp/ref.kv (one TAP point, NAME)
ref_run() {
    mpi 1 exec $common --scheme single --dump-logits "$tmp/ref.l" --dump-kv "$tmp/ref.kv" >/dev/null 2>"$tmp/err"
    report $? "$1" "$(cat "$tmp/err")"
}

# vs_ref NP NAME ARGS...: $common ARGS on NP ranks against ref_run's reference: the logits and
# the KV cache (KV=no: the logits only) compared by the command in $cmp (same_f32, close_bf16)
vs_ref() {
    vs_np=$1 vs_name=$2; shift 2
    rm -f "$tmp/l" "$tmp/kv"
    mpi "$vs_np" exec $common "$@" --dump-logits "$tmp/l" --dump-kv "$tmp/kv" >/dev/null 2>"$tmp/err" &&
        $cmp "$tmp/l" "$tmp/ref.l" && { [ "${KV:-}" = no ] || $cmp "$tmp/kv" "$tmp/ref.kv"; }
    report $? "$vs_name" "$(cat "$tmp/err")"
}

# chains_vs_ref NP PARTITION PREFIX WHAT: the chain schemes on NP ranks against ref_run's (vs_ref):
# kvr in each KV hand-off mode (whole, streamed, direct) with PARTITION (--partition A,B,...;
# empty: even), tsp, tsp-causal, tsp-paper and ring-pass; each named PREFIX SCHEME [MODE] on NP ranks ...: WHAT
chains_vs_ref() {
    for cv in kvr:whole kvr:streamed kvr:direct tsp:whole tsp-causal:whole tsp-paper:whole ring-pass:whole; do
        cv_scheme=${cv%:*} cv_mode=${cv#*:} cv_part= cv_fwd=
        [ "$cv_scheme" = kvr ] && cv_part=$2
        [ "$cv_mode" = whole ] || cv_fwd="--kv-forward $cv_mode"
        vs_ref "$1" "$3$cv_scheme${cv_fwd:+ $cv_mode} on $1 ranks ${cv_part:-even}: $4" \
            --scheme "$cv_scheme" $cv_part $cv_fwd
    done
}

# rings_vs_ref NP PREFIX WHAT: ring (zig-zag) with pass-KV and pass-Q on NP ranks against
# ref_run's (vs_ref), each named PREFIX ring pass-PASS on NP ranks: WHAT
rings_vs_ref() {
    for rv_pass in kv q; do
        vs_ref "$1" "${2}ring pass-$rv_pass on $1 ranks: $3" --scheme ring --ring-pass $rv_pass
    done
}

# layouts MODEL CASE...: each CASE P:T:SCHEME[:PARTITION[:OPTION VALUE]] (kvr exec --tp) against
# MODEL's single-rank run ($tmp/MODEL.ini, $ctx tokens on $backend) by vs_ref; $what names the
# check.
layouts() {
    model=$1; shift
    common="--model $tmp/$model.ini --ctx $ctx --backend $backend --reps 1 --warmup 0"
    ref_run "$backend: $model: single-rank reference"
    for case in "$@"; do
        p=$(echo "$case" | cut -d: -f1) t=$(echo "$case" | cut -d: -f2) scheme=$(echo "$case" | cut -d: -f3)
        part=$(echo "$case" | cut -d: -f4) opt=$(echo "$case" | cut -d: -f5)
        vs_ref "$p" "$backend: $model $scheme x$t on $p ranks ${part:-even}${opt:+ $opt}: logits$([ "${KV:-}" = no ] || echo " and KV cache") $what" \
            --scheme "$scheme" --tp "$t" ${part:+--partition $part} $opt
    done
}

# rank_models DIR: the rank tests' tiny models, DIR/gqa.ini and DIR/mqa.ini (MQA with LayerNorm,
# GELU, parallel attention and tied embeddings: the Falcon path)
rank_models() {
    printf '[model]\nname = gqa\nn_layers = 3\nd_model = 128\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 192\nvocab = 96\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >"$1/gqa.ini"
    printf '[model]\nname = mqa\nn_layers = 2\nd_model = 192\nn_heads = 3\nn_kv_heads = 1\nd_ffn = 256\nvocab = 80\nnorm = layernorm\nmlp = gelu\nparallel_attn = true\nblock_norms = 1\ntied_embeddings = true\ndtype = bf16\n' >"$1/mqa.ini"
}
