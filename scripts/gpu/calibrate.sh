# One GPU: the operation times, the calibration fit, its validation.
# kvr calibrate times Llama-7B and Falcon-7B at 1k-32k (every operation, the attention kernel
# at (queries, prefix) shapes, the TTFT), fits on 1k, 4k, 16k and checks the rest; kvr
# validate then predicts the measured TTFTs on the profile. The files are named after the GPU
# (h100, h200: the first word after NVIDIA in its name, lower case). The fit starts from the
# committed profile of that GPU where there is one (its links are the GPU's preset's), else from
# the preset ($g-nvlink): from the preset, the H200 data of 2026-12-01 sent the fit astray (the
# attention's head_dim exponent ran away). Log: calibrate.log.
# Regenerates: data/calibration/GPU-ops.csv, data/measurements/GPU.sqlite and
# data/machines/GPU-calibrated.ini (from $out: GPU-ops.csv, GPU.sqlite, GPU-calibrated.ini).
no_args "$@"
g=$gpu base=$gpu_base # the GPU's kind and the profile the fit starts from (gpu_env.sh)
rm -f "$out/$g.sqlite"
$kvr calibrate --backend cuda --models llama-7b,falcon-7b --fit-ctx 1k,4k,16k \
    --check-ctx 2k,8k,12k,24k,32k --save "$out/$g-ops.csv" --db "$out/$g.sqlite" \
    --base $base --out "$out/$g-calibrated.ini" --name $g-calibrated 2>&1 | tee "$out/calibrate.log" ||
    { echo "calibrate: kvr calibrate failed"; bad=1; } # pipefail: kvr's status
$kvr validate --db "$out/$g.sqlite" --machine "$out/$g-calibrated.ini" 2>&1 | tail -25 | tee "$out/validate.log" ||
    { echo "calibrate: kvr validate failed"; bad=1; }
stamp calibrated
