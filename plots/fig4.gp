# Per-rank timelines (Gantt) of KVR-E and KVR-S: compute and waiting for the KV cache, one row
# per rank, on one time axis; greys for the parts (no scheme colour means a part). Each box has a
# border of its own grey (adjacent layers' boxes meet without white seams); waits have none, so a
# wait shorter than a pixel is not drawn wider than it is.
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
set multiplot layout 2, 1 title 'Llama-7B on 4 A100s, 16k context, 300 GB/s NVLink, simulated (A100 preset): per-rank timeline'.(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
stats panel(1) using 4 nooutput
set xrange [0:ms(STATS_max) * 1.02]
set xlabel 'time (ms)'
set ylabel 'rank'
set yrange [-0.6:3.6]
set ytics 1
set key outside right
set style fill solid 1.0 noborder
# the partition of block b, from its header row's last field ('c0;c1;...')
parts_awk = 'NF == 0 {if (inb) k++; inb = 0; next} !inb {inb = 1; if (k == b) {gsub(";", ", ", $6); print $6; exit}}'
parts(b) = system("awk -F'\t' -v b=".b." '".parts_awk."' '".panel(1)."'")
do for [b=0:1] {
    set title (b == 0 ? 'KVR-E (even split: ' : 'KVR-S (searched split: ').parts(b).' tokens per rank)'
    plot panel(1) index b using ($5 == 0 ? ms(($3+$4)/2) : NaN):2:(ms(($4-$3)/2)):(0.35) \
              with boxxyerror lt 13 fs solid 1.0 border lt 13 title 'compute', \
         '' index b using ($5 == 2 ? ms(($3+$4)/2) : NaN):2:(ms(($4-$3)/2)):(0.35) \
              with boxxyerror lt 14 fs solid 1.0 noborder title 'waiting for KV'
}
unset multiplot
