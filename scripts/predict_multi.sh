#!/bin/sh
# The simulator's predictions for the multi-GPU runs on 4 and 8 H200s (issue #25), fixed before
# any measurement: every run of scripts/gpu/multi.sh (phases a, b, hybrid), chain.sh and ring.sh,
# predicted with kvr sim / search / lookup on data/machines/h200x8-predicted.ini. CPU only,
# deterministic (no dates; the commit from scripts/version.sh and the profile's hashes are in
# the file), a few minutes on 2 cores (scripts/predict_multi.py does the work).
#   scripts/predict_multi.sh [OUT.md] [KVR]
#     OUT.md  default data/measurements/h200x8-PREDICTIONS.md
#     KVR     the kvr program, default build/experiments/kvr (or $KVR)
# KVR_PREDICT_QUICK=1: a reduced set (the same headings and row format; tests/test_predict_multi.sh);
# KVR_PREDICT_JOBS=N: simulations run N at a time (default 2).
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
out=${1:-$root/data/measurements/h200x8-PREDICTIONS.md}
kvr=${2:-${KVR:-$root/build/experiments/kvr}}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
case $kvr in /*) ;; *) kvr=$(pwd)/$kvr ;; esac
[ -x "$kvr" ] || { echo "predict_multi.sh: no kvr program at $kvr (build it, or pass KVR)" >&2; exit 2; }
version=$(sh "$root/scripts/version.sh") || exit 1
tmp=$out.tmp.$$
cd "$root" || exit 1
python3 scripts/predict_multi.py "$kvr" "$tmp" "$version" || { rm -f "$tmp"; exit 1; }
mv "$tmp" "$out"
