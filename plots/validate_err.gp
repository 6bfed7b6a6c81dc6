# The simulator's TTFT error against context length, per model. Data: kvr validate --out DIR.
set title 'Simulator error against context, '.word(titles, 1) font ',16'
set xlabel 'context (k tokens)'
set ylabel 'predicted / measured - 1 (%)'
set logscale x 2
set key top right
plot 0 with lines lt 7 dt 1 notitle, 10 with lines lt 7 dt 2 title '+-10%', -10 with lines lt 7 dt 2 notitle, \
     for [b=0:*] panel(1) index b using ($2/1024):5 with linespoints lt b+1 title columnheader(1)
