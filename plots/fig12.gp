# TTFT against link bandwidth: Llama-7B at 16k, one panel per p (> 1), every link at the
# bandwidth. The single GPU (panel file 1, p = 1: no links) is a horizontal reference line in
# every panel; every panel has the same log axes.
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
stats panel(1) using (ms($4)) nooutput
one = STATS_max
lo = one; hi = one
do for [i=2:n_panels] {
    stats panel(i) using (ms($4)) nooutput
    lo = STATS_min < lo ? STATS_min : lo
    hi = STATS_max > hi ? STATS_max : hi
}
set multiplot layout 1, n_panels - 1 title 'Llama-7B at 16k on A100s: TTFT against link bandwidth, simulated (A100 preset, every link at the bandwidth)'.(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set xlabel 'link bandwidth (GB/s, every link; log scale)'
set ylabel 'TTFT (ms, log scale)'
set logscale x
set xrange [0.8:750]
set logscale y
set yrange [lo / 1.2:hi * 1.2]
set ytics add (200, 300, 500, 2000, 3000, 5000)
set format y '%g'
set key top right
do for [i=2:n_panels] {
    set title pretty(i)
    S = series(i)
    plot one with lines lt 7 dt 2 title sprintf('single GPU (%.0f ms)', one), \
         for [b=0:*] panel(i) index b using ($3/1e9):(ms($4)) with linespoints lt lt_of(word(S, b+1)) title columnheader(1)
}
unset multiplot
