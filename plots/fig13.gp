# Llama-2-70B on one and two nodes of 8: TP over all p GPUs against tsp-causal, ring and KVR-S
# over tensor-parallel stages (p/t stages of t GPUs), each point at its fastest t among the plans
# that fit: the legend gives each series' t (a range when it varies with the context), the labels
# under KVR-S its t at each context. One log y axis for all four panels.
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
lo = 1e9; hi = 0
do for [i=1:n_panels] {
    stats panel(i) using (ms($4)) nooutput
    lo = STATS_min < lo ? STATS_min : lo
    hi = STATS_max > hi ? STATS_max : hi
}
set multiplot layout 2, 2 title 'Llama-2-70B: TP over all p GPUs against p/t stages of t GPUs, simulated'."\n{/*0.7 ×t: the scheme over p/t chain stages of t tensor-parallel GPUs, at its fastest t among the plans that fit (a range: t varies with the context; under KVR-S: its t); ring drawn over KVR-S}".(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',15'
set xlabel 'context (k tokens, log scale)'
set ylabel 'TTFT (ms, log scale)'
set logscale xy
set xrange [3.4:150]
set yrange [lo / 2.8:hi * 1.5]  # room under the lowest KVR-S point for its t
set format y '%g'
set xtics (4, 8, 16, 32, 64, 128)
# the key in the empty upper left corner (the curves rise to the right); the series drawn from
# KVR-S up, so that ring's and TSP-causal's markers lie on top of KVR-S where they meet it (within
# 2-5%; ring is below it at 128k, where KVR-S needs t = 4), the key in the series' order
set key top left invert font ",11" samplen 2
do for [i=1:n_panels] {
    set title pretty(i)
    S = series(i)
    nb = words(S)
    P = p_of(i)
    plot for [b=nb-1:0:-1] panel(i) index b using ($3/1024):(ms($4)) with linespoints lt lt_of(word(S, b+1)) title tp_label(i, b, 5, P), \
         for [b=0:nb-1] panel(i) index b using ($3/1024):(ms($4)):(word(S, b+1) eq 'KVR-S' ? sprintf('t=%d', $5) : '') with labels offset 0, char -1 font ',10' tc lt 6 notitle
}
unset multiplot
