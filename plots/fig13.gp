# Llama-2-70B on one and two nodes of 8: TP over all p GPUs against tsp-causal, ring and KVR-S
# over tensor-parallel stages (p/t stages of t GPUs), each at its best t among the plans that
# fit; the labels give KVR-S's t.
set multiplot layout 2, 2 title 'Llama-2-70B: TP-p against p/t stages of t GPUs, each at its best t (label: KVR-S t), simulated' font ',15'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (ms)'
set logscale xy
set xrange [3.4:150]
set xtics (4, 8, 16, 32, 64, 128)
do for [i=1:n_panels] {
    set title pretty(i)
    S = series(i)
    plot for [b=0:*] panel(i) index b using ($3/1024):(ms($4)) with linespoints lt lt_of(word(S, b+1)) title columnheader(1), \
         for [b=0:*] panel(i) index b using ($3/1024):(ms($4)):(word(S, b+1) eq 'KVR-S' ? sprintf('t=%d', $5) : '') with labels offset 0, char -1 font ',10' tc lt 6 notitle
}
unset multiplot
