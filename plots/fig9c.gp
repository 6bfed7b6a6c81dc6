# Heat maps of the KVR-S / TSP TTFT speedup over (p, ctx), one per bandwidth, the value printed
# in every fourth column (2k, 6k, ..., 30k: none on the frame). The colour bar spans the data; white is 1x (no gain),
# orange a gain, blue a loss, with blue as deep as a loss of the same ratio as the largest gain
# (so a 0.998x cell is almost white, not the full blue of a scale that starts there).
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (white, no
# number); the caption line under the title names them (style.gp: oom_note). A cell overlaps its
# neighbours by 0.02 on each side, so that no seam of the background shows between them.
set multiplot layout 1, n_panels title 'Llama-7B: TTFT speedup of KVR-S over TSP, simulated (A100 preset)'.(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set xlabel 'context (k tokens)'
set ylabel 'GPUs (p)'
set cblabel 'speedup (×)'
lo = 1e9; hi = 0
do for [i=1:n_panels] {
    stats panel(i) using 4 nooutput
    lo = STATS_min < lo ? STATS_min : lo
    hi = STATS_max > hi ? STATS_max : hi
}
# the colour at lo on the symmetric (log-ratio) scale: white to blue by log(1/lo) / log(hi)
f = lo < 1 ? (log(1 / lo) / log(hi) < 1 ? log(1 / lo) / log(hi) : 1) : 0
mix(a, b) = int(a + f * (b - a))
lo_rgb = sprintf('#%02X%02X%02X', mix(247, 0), mix(247, 114), mix(247, 178))
if (lo < 1) { set palette defined (lo lo_rgb, 1.0 '#F7F7F7', hi '#D55E00') } \
else { set palette defined (0 '#F7F7F7', 1 '#D55E00') }
set cbrange [lo:hi]
set style fill solid 1.0 noborder
set yrange [1.5:8.5]
set xrange [0.5:32.5]
set key off
set xtics nomirror
set ytics nomirror
do for [i=1:n_panels] {
    set title pretty(i)
    plot panel(i) using ($3/1024):2:(0.52):(0.52):4 with boxxyerror fc palette, \
         '' using (abs(($3 - 2048) / 4096.0 - floor(($3 - 2048) / 4096.0 + 0.5)) < 1e-9 ? $3 / 1024.0 : NaN):2:(sprintf('%.2f', $4)) with labels font ',10'
}
unset multiplot
