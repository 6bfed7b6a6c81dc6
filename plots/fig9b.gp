# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
# Two nodes of four against one node of eight, on one y scale so the panels compare.
set multiplot layout 1, 2 title 'Llama-7B on 8 H100s: two nodes of 4 (50 GB/s between) against one node of 8, simulated'.(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (ms)'
ymax = 0
do for [i=1:n_panels] {
    stats panel(i) using (ms($4)) nooutput
    ymax = STATS_max > ymax ? STATS_max : ymax
}
set yrange [0:ymax * 1.05]
do for [i=1:n_panels] {
    set title pretty(i)
    S = series(i)
    plot for [b=0:*] panel(i) index b using ($3/1024):(ms($4)) with linespoints lt lt_of(word(S, b+1)) title columnheader(1)
}
unset multiplot
