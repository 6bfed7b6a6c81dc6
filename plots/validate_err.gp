# The simulator's TTFT error against context length, per model. Data: kvr validate --out DIR. A
# scheme has its colour of every figure (style.gp: vlt), a model and GPU count its marker (vpt).
set title 'Simulator error against context, '.word(titles, 1).', measured against simulated' font ',16'
set xlabel 'context (k tokens)'
set ylabel 'predicted / measured - 1 (%)'
set logscale x 2
set key outside right font ',10' spacing 0.9
stats panel(1) using 5 nooutput
nb = STATS_blocks
array H[nb]
do for [b=1:nb] { H[b] = hdr(1, b - 1) }
plot 0 with lines lt 7 dt 1 notitle, 10 with lines lt 7 dt 2 title '+-10%', -10 with lines lt 7 dt 2 notitle, \
     for [b=0:nb-1] panel(1) index b using ($2/1024):5 with linespoints lt vlt(H[b+1]) pt vpt(H[b+1]) title columnheader(1)
