# Scaling at 12k: TTFT against p per scheme, with the lower bound (total FLOPs / p peak) read
# from block 1 (TSP, present at every p; block 0 is single, at p = 1 only).
# Points that do not fit in GPU memory (sweep state 'infeasible') are skipped, never drawn.
# A KVR-S point labelled "N as fast" has a plan on N < p GPUs within 0.5% of it (or faster):
# the other GPUs do nothing useful (column 6, fewer_p; 0: none). The view joins the plan by the
# profile name as the sweep gives it, so a sweep with --bw/--link/--noise overrides gets no label.
set multiplot layout 1, 2 title 'Llama-7B at 12k context: scaling with the number of GPUs' font ',16'
set xlabel 'GPUs (p)'
set ylabel 'TTFT (ms)'
set logscale y
set key top right
do for [i=1:n_panels] {
    set title word(titles, i)
    plot for [b=0:*] panel(i) index b using 3:(ms($4)) with linespoints lt b+1 title columnheader(1), \
         for [b=0:*] panel(i) index b using 3:(ms($4)):($6 > 0 ? sprintf('%d as fast', $6) : '') \
             with labels left offset 0.6,0.6 font ',10' notitle, \
         panel(i) index 1 using 3:(ms($5)) with lines lt 7 dt 3 title 'lower bound (total FLOPs / p peak)'
}
unset multiplot
