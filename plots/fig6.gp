# KVR-P against KVR-S: the TTFT gap of the interpolated partition, per p and bandwidth. The GPU
# counts are not schemes: greys with their own markers and dashes (style.gp, 16-18).
# Leave-one-out: KVR-P at a context comes from the table without that context's row. Between the
# table's first and last context it interpolates (lines; the panel's mean and largest gap in its
# title); at the two ends it has a neighbour on one side only and is clamped to it (open
# markers, their largest gap in the title, and a value printed at the top where it is off the
# axis): the ends do not set the axis, so the gaps between the rows stay readable.
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
set multiplot layout 1, 2 title 'KVR-P (interpolated) against KVR-S (searched), Llama-7B, simulated (A100 presets)'."\n{/*0.7 leave-one-out: KVR-P at each context from the table without that row. Lines: between the table's ends; open markers: its first and last context (1k, 16k), where it is clamped to its one neighbour}".(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT gap of KVR-P over KVR-S (%)'
set key top center
# one y axis for both panels, set by the gaps between the table's ends (every stats before
# the yrange: stats honours it)
inner(c) = c > c_lo && c < c_hi
array LO[n_panels]; array HI[n_panels]; array MEAN[n_panels]; array MAX[n_panels]; array ENDS[n_panels]
hi = 0
do for [i=1:n_panels] {
    stats panel(i) using 2 nooutput
    c_lo = STATS_min; c_hi = STATS_max; LO[i] = c_lo; HI[i] = c_hi
    stats panel(i) using (inner($2) ? $3 : NaN) nooutput
    MEAN[i] = STATS_mean; MAX[i] = STATS_max
    hi = STATS_max > hi ? STATS_max : hi
    stats panel(i) using (inner($2) ? NaN : $3) nooutput
    ENDS[i] = STATS_max
}
top = hi > 0 ? hi * 1.35 : 0.01
set yrange [0:top]
do for [i=1:n_panels] {
    c_lo = LO[i]; c_hi = HI[i]
    set title pretty(i).sprintf("\nmean gap %.3f%%, largest %.3f%% inside; at the ends up to %.2f%%", MEAN[i], MAX[i], ENDS[i]) font ',13'
    S = series(i)
    nb = words(S)  # an open iteration [b=0:*] stops at a block with no point to draw
    plot for [b=0:nb-1] panel(i) index b using ($2/1024):(inner($2) ? $3 : NaN) with linespoints lt 16 + b title word(S, b+1)[3:].' GPUs', \
         for [b=0:nb-1] panel(i) index b using ($2/1024):(inner($2) || $3 > top ? NaN : $3) with points lt 16 + b pt 6 ps 1.4 notitle, \
         for [b=0:nb-1] panel(i) index b using (c_lo / 1024 + 0.3):($2 == c_lo && $3 > top ? top * (0.97 - 0.05 * b) : NaN):(sprintf('← %s GPUs: %.2f%% ↑', word(S, b+1)[3:], $3)) \
             with labels left tc lt 16 + b font ',10' notitle, \
         for [b=0:nb-1] panel(i) index b using (c_hi / 1024 - 0.3):($2 == c_hi && $3 > top ? top * (0.97 - 0.05 * b) : NaN):(sprintf('%s GPUs: %.2f%% ↑ →', word(S, b+1)[3:], $3)) \
             with labels right tc lt 16 + b font ',10' notitle
}
unset multiplot
