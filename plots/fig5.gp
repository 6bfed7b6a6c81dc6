# TTFT breakdown of the rank that finishes last: compute, communication it waits on, waiting.
# Points that do not fit in GPU memory (sweep state 'infeasible') are skipped, never drawn.
set multiplot layout 1, 2 title 'Llama-7B, 4 GPUs, 16k: where the TTFT goes (rank that finishes last)' font ',16'
set style data histograms
set style histogram rowstacked
set style fill solid 0.9 border lc rgb '#333333'
set boxwidth 0.7
set ylabel 'time (ms)'
set key outside top center horizontal
set key autotitle columnheader  # the first row of the data names the columns
set yrange [0:*]
set offsets 0, 0, graph 0.05, 0
set xtics rotate by -30
do for [i=1:n_panels] {
    set title word(titles, i)
    plot panel(i) using (ms($3)):xtic(2) lt 1 title 'compute', \
         '' using (ms($5)) lt 5 title 'waiting', \
         '' using (ms($4)) lt 2 title 'communication (overlapped for KVR)'
}
unset multiplot
