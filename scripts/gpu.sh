#!/bin/bash
# One entry for the GPU machine: scripts/gpu.sh TASK [ARGS]. Sources the common environment
# (scripts/gpu_env.sh: NVLink multicast off, Open MPI as root, the carried .gpu-deps, the build
# in build-gpu, $out = $OUT or ./gpu-out, $P = the GPUs of this host, $kvr, run, stamp; the
# multi-GPU tasks' rank counts from KVR_GPUS_LIST and KVR_P, checked against $P), then
# runs scripts/gpu/TASK.sh. Each task's first line says what it does, and its "Regenerates:"
# lines which committed data it makes; `scripts/gpu.sh help` lists them.
# The call exits 2 for an unknown task, or a part or argument the task does not take; 1 when the
# build, or a check, test, sanitizer, run or script of the task failed (bad=1, gpu_env.sh).
# Before copying the tree to the machine, record its commit (scripts/version.sh reads it):
#   git describe --always --dirty --tags > .kvr-version
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
task=${1:-help}
usage() {
    echo "usage: scripts/gpu.sh TASK [ARGS]   (logs and data under \$OUT or ./gpu-out)"
    echo "  rank counts of multi and chain (each from 2 to the host's GPUs, else the task stops):"
    echo "    KVR_GPUS_LIST=\"2 4 8\"  multi a, b, kvr (default \"2 P\", P = all the GPUs)"
    echo "    KVR_P=4                multi today, hybrid and chain (default P)"
    for f in "$here"/gpu/*.sh; do
        printf '  %-10s %s\n' "$(basename "$f" .sh)" "$(grep -m1 '^# ' "$f" | sed 's/^# *//')"
        # the heading's comment lines from "Regenerates:" on
        sed -n '/^# Regenerates:/,/^[^#]/p' "$f" | grep '^#' | sed 's/^# */             /'
    done
}
case $task in
help | --help | -h) usage; exit 0 ;;
esac
if [ ! -f "$here/gpu/$task.sh" ]; then
    echo "gpu.sh: no task '$task'" >&2
    usage >&2
    exit 2
fi
shift
cd "$here/.." || exit 1
. scripts/gpu_env.sh
. "scripts/gpu/$task.sh"
# a task's failed check that does not stop it sets bad=1 (gpu_env.sh): the call fails too
st=$?
[ "${bad:-0}" = 0 ] || st=1
exit $st
