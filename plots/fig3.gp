# Scaling at 12k: TTFT against p per scheme, with the lower bound (total FLOPs / p peak) read
# from block 1 (TSP, present at every p). Block 0 is the single GPU (p = 1 only): drawn as a
# horizontal reference. A linear axis from 0: the data span 80 to 1300 ms. Each KVR-S point
# is labelled with the GPUs its plan really uses: chunks above 2% of the context (the others
# hold a token-grid minimum and do nothing useful).
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
set multiplot layout 1, 2 title 'Llama-7B at 12k context: scaling with the number of GPUs, simulated (A100 presets)'.(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set xlabel 'GPUs (p)'
set ylabel 'TTFT (ms)'
# one linear y axis from 0 for both panels, with room above the data for the key
hi = 0
do for [i=1:n_panels] {
    stats panel(i) using (ms($4)) nooutput
    hi = STATS_max > hi ? STATS_max : hi
}
set yrange [0:hi * 1.32]
set xrange [0.8:8.2]
set key top right
set label 1 'numbers under KVR-S: the GPUs its plan really uses (chunks above 2% of the context)' at graph 0.02, graph 0.03 font ',10' tc lt 6
do for [i=1:n_panels] {
    set title pretty(i)
    S = series(i)
    nb = words(S)
    stats panel(i) index 0 using (ms($4)) nooutput
    one = STATS_max
    plot one with lines lt 7 dt 2 title sprintf('single GPU (%.0f ms)', one), \
         for [b=1:*] panel(i) index b using 3:(ms($4)) with linespoints lt lt_of(word(S, b+1)) title columnheader(1), \
         panel(i) index 1 using 3:(ms($5)) with lines lt 7 dt 3 lw 1 title 'lower bound (total FLOPs / p peak)', \
         for [b=1:nb-1] panel(i) index b using 3:(word(S, b+1) eq 'KVR-S' ? ms($4) : NaN):(sprintf('%d', $6)) \
             with labels offset 0, -1.1 font ',10' tc lt 6 notitle
}
unset multiplot
