#!/bin/sh
# The version kvr reports and stores with every row it writes: `git describe` in a checkout
# ("-dirty" with uncommitted changes, which measurements refuse); in a copy without .git (the
# tree carried to the GPU machine) the one recorded in .kvr-version when the copy was made
# (`git describe --always --dirty --tags > .kvr-version`); else the project version.
# $KVR_VERSION, when set, wins: scripts/gpu_env.sh sets it from .kvr-version, because the GPU
# machine's copy may hold a stale .git of an earlier call (its rows named that commit).
[ -n "${KVR_VERSION:-}" ] && { echo "$KVR_VERSION"; exit 0; }
cd "$(dirname "$0")/.." || exit 1
# only this tree's own checkout: a copy inside another checkout must not take its commit
if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ]; then
    git describe --always --dirty --tags 2>/dev/null && exit 0
fi
[ -s .kvr-version ] && exec head -1 .kvr-version
echo "${1:-unknown}"
