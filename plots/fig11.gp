# Speedup of KVR-S and KVR-P over TSP and TSP-causal as bars (TTFT of the baseline over TTFT of
# the KVR plan), grouped by model and context, at the paper's setting of 8 A100s.
set multiplot layout 1, n_panels title 'TTFT speedup over TSP on 8 A100s, simulated (1.0: no gain)' font ',16'
set ylabel 'speedup (x)'
set yrange [0:*]
set key top left
set style fill solid 0.9 border lc rgb '#333333'
set xtics rotate by -45 font ',10'
set grid ytics
short(m) = m eq 'llama-7b' ? 'Llama' : m eq 'falcon-7b' ? 'Falcon' : m
bar_lt(s) = s eq 'KVR-S/TSP' ? 6 : s eq 'KVR-S/TSP-causal' ? 5 : s eq 'KVR-P/TSP' ? 8 : \
    s eq 'KVR-P/TSP-causal' ? 12 : s eq 'KVR-S/TSP-paper' ? 10 : 11
do for [i=1:n_panels] {
    set title pretty(i)
    S = series(i)
    nb = words(S)
    w = 0.8 / nb
    plot panel(i) index 0 using 0:(NaN):xtic(short(strcol(3)).' '.sprintf('%dk', int($4 / 1024))) notitle, \
         for [b=0:nb-1] panel(i) index b using ($0 + (b - (nb - 1) / 2.0) * w):($5 / 2):(w / 2):($5 / 2) \
             with boxxyerror lt bar_lt(word(S, b+1)) dt 1 title word(S, b+1), \
         1 with lines lt 7 dt 2 lw 1 notitle
}
unset multiplot
