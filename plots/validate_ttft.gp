# Measured points beside the simulator's predictions: TTFT against context, one block per model,
# scheme, rank count and links (points: measured; dashed: predicted), a scheme in its colour of
# every figure (style.gp: vlt), a model and GPU count with its marker (vpt). Data: kvr validate
# --out.
set title 'TTFT against context, '.word(titles, 1).': measured (points) and predicted (dashed)' font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (s)'
set logscale xy 2
set key outside right font ',10' spacing 0.9
set offsets graph 0.04, graph 0.04, graph 0, graph 0
stats panel(1) using 3 nooutput
nb = STATS_blocks
array H[nb]
do for [b=1:nb] { H[b] = hdr(1, b - 1) }
plot for [b=0:nb-1] panel(1) index b using ($2/1024):3 with points lt vlt(H[b+1]) pt vpt(H[b+1]) ps 1.6 title columnheader(1), \
     for [b=0:nb-1] panel(1) index b using ($2/1024):4 with lines lt vlt(H[b+1]) dt 2 notitle
