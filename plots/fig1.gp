# TTFT against context: one panel per (bandwidth, p), one line per scheme.
# Points that do not fit in GPU memory (sweep state 'infeasible') are skipped, never drawn.
set multiplot layout 2, 3 title 'Llama-7B: TTFT against context, simulated (A100 presets)' font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (ms)'
do for [i=1:n_panels] {
    set title pretty(i)
    S = series(i)
    plot for [b=0:*] panel(i) index b using ($3/1024):(ms($4)) with linespoints lt lt_of(word(S, b+1)) title columnheader(1)
}
unset multiplot
