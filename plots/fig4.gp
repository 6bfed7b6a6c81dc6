# Per-rank timelines (Gantt) of KVR-E and KVR-S: compute and waiting for the KV cache, one row
# per rank, on one time axis; greys for the parts (no scheme colour means a part).
# Plans that do not fit in GPU memory are never stored, so never drawn.
set multiplot layout 2, 1 title 'Llama-7B on 4 A100s, 16k context, 300 GB/s NVLink, simulated: per-rank timeline' font ',16'
stats panel(1) using 4 nooutput
set xrange [0:ms(STATS_max) * 1.02]
set xlabel 'time (ms)'
set ylabel 'rank'
set yrange [-0.6:3.6]
set ytics 1
set key outside right
set style fill solid 1.0 noborder
do for [b=0:1] {
    set title (b == 0 ? 'KVR-E (even split)' : 'KVR-S (searched split)')
    plot panel(1) index b using ($5 == 0 ? ms(($3+$4)/2) : NaN):2:(ms(($4-$3)/2)):(0.35) \
              with boxxyerror lt 13 title 'compute', \
         '' index b using ($5 == 2 ? ms(($3+$4)/2) : NaN):2:(ms(($4-$3)/2)):(0.35) \
              with boxxyerror lt 14 title 'waiting for KV'
}
unset multiplot
