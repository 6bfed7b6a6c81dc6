# Scaling at 12k: TTFT against p per scheme, with the lower bound (total FLOPs / p peak) read
# from block 1 (TSP, present at every p; block 0 is single, at p = 1 only).
set multiplot layout 1, 2 title 'Llama-7B at 12k context: scaling with the number of GPUs' font ',16'
set xlabel 'GPUs (p)'
set ylabel 'TTFT (ms)'
set logscale y
set key top right
do for [i=1:n_panels] {
    set title word(titles, i)
    plot for [b=0:*] panel(i) index b using 3:(ms($4)) with linespoints lt b+1 title columnheader(1), \
         panel(i) index 1 using 3:(ms($5)) with lines lt 7 dt 3 title 'lower bound (total FLOPs / p peak)'
}
unset multiplot
