# Measured points beside the simulator's predictions: TTFT against context, one colour per
# model, scheme and rank count (points: measured; dashed: predicted). Data: kvr validate --out.
set title 'TTFT against context, '.word(titles, 1).': measured (points) and predicted (dashed)' font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (s)'
set logscale xy 2
set key top left
set offsets graph 0.04, graph 0.04, graph 0, graph 0
plot for [b=0:*] panel(1) index b using ($2/1024):3 with points lt b+1 ps 1.6 title columnheader(1), \
     for [b=0:*] panel(1) index b using ($2/1024):4 with lines lt b+1 dt 2 notitle
