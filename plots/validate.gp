# The simulator against the executor: predicted TTFT against measured, log-log, with y = x and
# +-10% bands. Data: kvr validate --out DIR (one block per model, scheme and p).
set title 'Simulator against executor: TTFT, '.word(titles, 1) font ',16'
set xlabel 'measured TTFT (s)'
set ylabel 'predicted TTFT (s)'
set logscale xy
set key top left
plot x with lines lt 7 dt 1 title 'y = x', \
     1.1*x with lines lt 7 dt 2 title '+10%', 0.9*x with lines lt 7 dt 2 title '-10%', \
     for [b=0:*] panel(1) index b using 3:4 with points lt b+1 ps 1.5 title columnheader(1)
