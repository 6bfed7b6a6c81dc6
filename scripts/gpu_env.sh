# Sourced by scripts/gpu.sh before every task: NVLink multicast off everywhere (the device
# tool's rule), Open MPI as root in a container, the output folder ($OUT or ./gpu-out) in $out,
# the carried build dependencies (.gpu-deps), P = the GPUs of this host (rank_counts and
# one_count: the rank counts a multi-GPU task runs, KVR_GPUS_LIST and KVR_P, checked against P),
# and a release build with CUDA and MPI in build-gpu ($kvr is its program); run (mpirun) bounded
# by what is left of the call (run_t, KVR_CALL_S).
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
out=${OUT:-gpu-out}
mkdir -p "$out"
# the commit recorded before the copy (scripts/version.sh): a .git here may be an earlier one's
[ -s .kvr-version ] && export KVR_VERSION="$(head -1 .kvr-version)"
. .gpu-deps/env.sh
P=$(nvidia-smi -L | wc -l)
# The rank counts of the multi-GPU tasks (scripts/gpu/multi.sh, chain.sh), so that one lease of
# 8 GPUs measures p = 2, 4 and 8: rank_counts prints KVR_GPUS_LIST's (spaces or commas, e.g.
# "2 4 8"; default "2 P" when unset; set but empty, it fails), ascending, each once; one_count prints KVR_P (default P), the count of
# a task that runs on one. A count that is not a whole number from 2 to P fails with the reason
# (the caller stops: `ps=$(rank_counts) || exit 1`).
check_count() { # NAME COUNT
    case $2 in
    '' | 0* | *[!0-9]*) ;;
    *) [ "$2" -ge 2 ] && [ "$2" -le "$P" ] && return 0 ;;
    esac
    echo "gpu_env: $1 names '$2': a rank count must be a whole number from 2 to the $P GPUs of this host" >&2
    return 1
}
rank_counts() {
    local list c
    list=$(echo "${KVR_GPUS_LIST-2 $P}" | tr ',' ' ') # set but empty: refused below
    [ -n "${list// /}" ] || { echo "gpu_env: KVR_GPUS_LIST is empty: give rank counts, e.g. \"2 4 8\"" >&2; return 1; }
    for c in $list; do check_count KVR_GPUS_LIST "$c" || return 1; done
    printf '%s\n' $list | sort -n -u | paste -sd' '
}
one_count() {
    check_count KVR_P "${KVR_P:-$P}" && echo "${KVR_P:-$P}"
}
# The GPU's kind (h100, h200: the first word after NVIDIA, lower case), its committed operation
# fit, and the multi-GPU profile a task searches its plans on: the one multi.sh phase a measured
# on this machine (build-gpu/KIND-nccl.ini) once it exists, else the committed one of this kind
# (the 4xH100 measurement; for H200s the predicted 8xH200 profile: H200 operations, links
# fitted on 4 H200s), so that an H200 run never measures partitions tuned for an H100.
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | sed 's/^NVIDIA //' | awk '{print tolower($1)}')
gpu_ops=data/calibration/$gpu-ops.csv gpu_base=$gpu-nvlink
[ -f data/machines/$gpu-calibrated.ini ] && gpu_base=data/machines/$gpu-calibrated.ini
gpu_nccl=build-gpu/$gpu-nccl.ini gpu_prof=build-gpu/$gpu-nccl.ini
if [ ! -f $gpu_prof ]; then
    case $gpu in
    h100) gpu_prof=data/machines/h100x4-nccl.ini ;;
    h200) gpu_prof=data/machines/h200x8-predicted.ini ;;
    *) gpu_prof= ;; # no profile of this GPU: a task that searches says so
    esac
fi
t0=${t0:-$(date +%s)} # the call's start (kept when a task sources this file again: chain.sh)
bad=0 # a task's failed check that does not stop it: `check || bad=1`; gpu.sh then exits 1
stamp() { echo "[$(($(date +%s) - t0)) s] $*"; }
[ -f build-gpu/build.ninja ] || meson setup build-gpu --buildtype=release -Dcuda=enabled -Dmpi=enabled >"$out/setup.log" 2>&1
# the compile's own status: on a warm machine a failed build would leave the previous kvr in
# place, and a task would measure it under this commit's name
meson compile -C build-gpu >"$out/build.log" 2>&1 || {
    echo "gpu_env: the build failed ($out/build.log$([ ! -f "$out/setup.log" ] || echo ", $out/setup.log")):"
    tail -30 "$out/build.log"
    exit 1
}
kvr=build-gpu/experiments/kvr
[ -x $kvr ] || { echo "gpu_env: the build made no $kvr (see $out/build.log)"; exit 1; }
# run_t CAP [WHAT]: the timeout of the next run: CAP seconds, or what is left of the call when
# that is less (KVR_CALL_S, default 570, from t0: the device's 600-s limit less 30 s for what
# follows, the copies to $out); under 30 s left it says so and fails (the run is skipped), so
# that a call never runs past its limit and loses what the runs before it measured
run_t() {
    local left=$((${KVR_CALL_S:-570} - ($(date +%s) - t0)))
    [ "$left" -ge 30 ] || { stamp "skipped, $left s left of the call: ${2:-a run}" >&2; return 1; }
    echo $(($1 < left ? $1 : left))
}
# mpirun on n ranks with the environment above, bounded by T seconds (default 300) and by what
# is left of the call (run_t: too little left, it is skipped and fails)
run() {
    local t
    t=$(run_t "${T:-300}" "mpirun -np $*") || return 1
    timeout "$t" mpirun -np "$1" --bind-to none -x NCCL_NVLS_ENABLE "${@:2}"
}
# logits_vs REF GOT LABEL: two float32 logit dumps, the relative L2 error of GOT against REF
# and whether the top token is the same; fails (status 1) when the dumps differ in length or are
# empty, the error is above bf16's bound (2e-2, tests/tap_helpers.sh's close_bf16) or the top
# token differs, so that a task can count it (bad=1)
logits_vs() {
    python3 - "$@" <<'PY'
import array, math, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
if len(a) != len(b) or not a:
    print('%s: FAILED, the dumps differ in length or are empty' % sys.argv[3])
    sys.exit(1)
rel = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)) / sum(y * y for y in a))
top = max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__)
ok = top and rel <= 2e-2
print('%s: rel err %.2e, top token %s%s' % (sys.argv[3], rel, 'same' if top else 'DIFFERS',
                                           '' if ok else ': FAILED'))
sys.exit(0 if ok else 1)
PY
}
# a small model with head_dim 64, for the checks against one rank
printf '[model]\nname = gqa64\nn_layers = 3\nd_model = 256\nn_heads = 4\nn_kv_heads = 2\nd_ffn = 512\nvocab = 500\nnorm = rmsnorm\nmlp = swiglu\ndtype = bf16\n' >/tmp/gqa64.ini

# The task's name in its messages (gpu.sh's TASK; the file's when run by itself: chain.sh, hf.sh)
task_name() { echo "${task:-$(basename "$0" .sh)}"; }
# parts_check VALID...: each word of a task's $parts (`persist.sh PART...`) is one of VALID, else
# the call stops (exit 2, as gpu.sh's for an unknown task) naming the valid ones: a misspelt part
# would otherwise run nothing and pass. no_args "$@": a task that takes no arguments refuses any.
parts_check() {
    local p ps
    read -ra ps <<<"$parts"
    for p in "${ps[@]}"; do
        [[ " $* " == *" $p "* ]] ||
            { echo "$(task_name): no part '$p' (the parts: $*)" >&2; exit 2; }
    done
}
no_args() {
    [ $# = 0 ] || { echo "$(task_name): takes no arguments (given: $*)" >&2; exit 2; }
}
# capture CMD...: CMD's output (its stderr too) into $got, for a task that prints a line of it;
# when CMD fails, its last lines and status are printed and capture fails with it, so that the
# caller counts it: `capture $kvr bench ... || bad=1; echo "...: $(grep -m1 TFLOP <<<"$got")"`
capture() {
    local rc
    got=$("$@" 2>&1) && return 0
    rc=$?
    echo "FAILED (rc $rc): $*"
    tail -3 <<<"$got"
    return $rc
}
# nofit RC ERRFILE: kvr's refusal of a context the GPU cannot hold, an expected result apart
# from a crash: kvr exec plans its memory before allocating and exits 2 saying "... GB of GPU
# memory; device N has ... GB free" (exec/kvr_cuda.c, kvr_exec_run.c); 3 is a plan that does not
# fit (experiments/kvr.c)
nofit() {
    [ "$1" = 3 ] || { [ "$1" = 2 ] && grep -q "GB of GPU memory" "$2"; }
}
# keep_if_ok FILE CMD...: CMD's standard output into FILE only when CMD succeeds; it writes to
# FILE's .partial name (e2e_rounds.partial.jsonl) and is moved into place after, so that a run
# that fails, times out or is cut short with the call keeps its rows under a name that says so,
# never one that looks complete; CMD's status
keep_if_ok() {
    local f=$1 part rc
    part=${1%.*}.partial.${1##*.}
    rm -f "$f" "$part"
    "${@:2}" >"$part"
    rc=$?
    if [ $rc = 0 ]; then mv "$part" "$f"; else echo "FAILED (rc $rc): the rows so far in $part"; fi
    return $rc
}
