# TTFT against context: one panel per (bandwidth, p), one line per scheme.
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
set multiplot layout 2, 3 title 'Llama-7B: TTFT against context, simulated (A100 presets)'.(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (ms, log scale)'
# one y axis per row (a bandwidth): the panels of a row compare p; log, so that a gap between
# two schemes (a speedup) reads the same at every p
set logscale y
set format y '%g'
set ytics add (20, 50, 200, 500, 2000)
# the key in the empty lower right corner (the curves rise to the right), inside the frame
set key bottom right horizontal maxcols 2 samplen 2.5 font ',11'
cols = 3
do for [i=1:n_panels] {
    if ((i - 1) % cols == 0) {
        hi = 0; lo = 1e9
        set yrange [*:*]
        do for [j=i:(i + cols - 1 < n_panels ? i + cols - 1 : n_panels)] {
            stats panel(j) using (ms($4)) nooutput
            hi = STATS_max > hi ? STATS_max : hi
            lo = STATS_min < lo ? STATS_min : lo
        }
        set yrange [lo / 1.6:hi * 1.3]
    }
    set title pretty(i)
    S = series(i)
    plot for [b=0:*] panel(i) index b using ($3/1024):(ms($4)) with linespoints lt lt_of(word(S, b+1)) title columnheader(1)
}
unset multiplot
