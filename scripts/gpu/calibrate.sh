# One GPU: the operation times, the calibration fit, its validation.
# kvr calibrate times Llama-7B and Falcon-7B at 1k-32k (every operation, the attention kernel
# at (queries, prefix) shapes, the TTFT), fits on 1k, 4k, 16k and checks the rest; kvr
# validate then predicts the measured TTFTs on the profile. Log: calibrate.log.
# Regenerates: data/calibration/h100-ops.csv, data/measurements/h100.sqlite and
# data/machines/h100-calibrated.ini (from $out: h100-ops.csv, h100.sqlite, h100-calibrated.ini).
rm -f "$out/h100.sqlite"
$kvr calibrate --backend cuda --models llama-7b,falcon-7b --fit-ctx 1k,4k,16k \
    --check-ctx 2k,8k,12k,24k,32k --save "$out/h100-ops.csv" --db "$out/h100.sqlite" \
    --out "$out/h100-calibrated.ini" --name h100-calibrated 2>&1 | tee "$out/calibrate.log"
$kvr validate --db "$out/h100.sqlite" --machine "$out/h100-calibrated.ini" 2>&1 | tail -25
stamp calibrated
