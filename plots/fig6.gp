# KVR-P against KVR-S: the TTFT gap of the interpolated partition, per p and bandwidth. The GPU
# counts are not schemes: greys with their own markers and dashes (style.gp, 16-18).
# Points that do not fit in GPU memory (sweep state 'infeasible') are skipped, never drawn.
set multiplot layout 1, 2 title 'KVR-P (interpolated) against KVR-S (searched), Llama-7B, simulated'."\n{/*0.7 leave-one-out: KVR-P at each context from the table without that row; at 1k and 16k it has neighbours on one side only}".(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT gap of KVR-P over KVR-S (%)'
set key top center
# one y axis for both panels: the gap at 300 GB/s is small, and reads so
hi = 0
do for [i=1:n_panels] {
    stats panel(i) using 3 nooutput
    hi = STATS_max > hi ? STATS_max : hi
}
set yrange [0:hi * 1.15]
do for [i=1:n_panels] {
    stats panel(i) using 3 nooutput
    set title pretty(i).sprintf(': mean gap %.2f%%, largest %.2f%%', STATS_mean, STATS_max)
    S = series(i)
    plot for [b=0:*] panel(i) index b using ($2/1024):3 with linespoints lt 16 + b title word(S, b+1)[3:].' GPUs'
}
unset multiplot
