# One 1 GB/s link at each position of the chain (-1: none).
# Points that do not fit in GPU memory (sweep state 'infeasible') are skipped, never drawn.
set title 'Llama-7B, 4 GPUs, 8k, 10 GB/s with one 1 GB/s link: even split against re-searched' font ',16'
set xlabel 'slow link i -> i+1 (-1: none)'
set ylabel 'TTFT (ms)'
set xtics 1
set xrange [-1.5:2.5]
set key top left
plot for [b=0:*] panel(1) index b using 3:(ms($4)) with linespoints lt b+1 ps 1.5 title columnheader(1)
