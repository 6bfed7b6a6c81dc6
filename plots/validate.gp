# The simulator against the executor: predicted TTFT against measured, log-log, with y = x and
# +-10% bands. Data: kvr validate --out DIR (one block per model, scheme and p). A scheme has its
# colour of every figure (style.gp: vlt), a model and GPU count its marker (vpt); the key
# outside, beside the diagonal's data.
set title 'Simulator against executor: TTFT, '.word(titles, 1).', measured against simulated' font ',16'
set xlabel 'measured TTFT (s)'
set ylabel 'predicted TTFT (s)'
set logscale xy
set key outside right font ',10' spacing 0.9
stats panel(1) using 3:4 nooutput
nb = STATS_blocks
lo = STATS_min_x < STATS_min_y ? STATS_min_x : STATS_min_y
hi = STATS_max_x > STATS_max_y ? STATS_max_x : STATS_max_y
set xrange [lo / 1.3:hi * 1.3]
set yrange [lo / 1.3:hi * 1.3]
array H[nb]
do for [b=1:nb] { H[b] = hdr(1, b - 1) }
plot x with lines lt 7 dt 1 title 'y = x', \
     1.1*x with lines lt 7 dt 2 title '+10%', 0.9*x with lines lt 7 dt 2 title '-10%', \
     for [b=0:nb-1] panel(1) index b using 3:4 with points lt vlt(H[b+1]) pt vpt(H[b+1]) ps 1.5 title columnheader(1)
