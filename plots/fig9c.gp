# Heat maps of the KVR-S / TSP TTFT speedup over (p, ctx), one per bandwidth.
# Points that do not fit in GPU memory (sweep state 'infeasible') are skipped, never drawn.
set multiplot layout 1, n_panels title 'Llama-7B: TTFT speedup of KVR-S over TSP' font ',16'
set xlabel 'context (k tokens)'
set ylabel 'GPUs (p)'
set cblabel 'speedup (x)'
set palette defined (0.8 '#0072B2', 1.0 '#F7F7F7', 2.2 '#D55E00')  # white at 1x: no gain
set cbrange [0.8:2.2]
set style fill solid 1.0 noborder
set yrange [1.5:8.5]
set xrange [0:33]
set key off
do for [i=1:n_panels] {
    set title word(titles, i)
    plot panel(i) using ($3/1024):2:(0.5):(0.5):4 with boxxyerror fc palette
}
unset multiplot
