# Two nodes of four against one node of eight.
# Points that do not fit in GPU memory (sweep state 'infeasible') are skipped, never drawn.
set multiplot layout 1, 2 title 'Llama-7B on 8 H100s: one node against two nodes (50 GB/s between)' font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (ms)'
do for [i=1:n_panels] {
    set title word(titles, i)
    plot for [b=0:*] panel(i) index b using ($3/1024):(ms($4)) with linespoints lt b+1 title columnheader(1)
}
unset multiplot
