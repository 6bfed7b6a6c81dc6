# GQA, MQA and a 70B model on 8 GPUs at 10 GB/s.
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
# Llama-2-70B's 129 GiB of weights do not fit an 80 GiB A100 whole: its panel draws TP-8 and the
# other series as layouts over tensor-parallel stages (fig9a-70b.ini), each point at its fastest
# t among the plans that fit; the legend gives the t (' ×2': 4 stages of 2 GPUs).
# tp cannot shard Falcon-7B's 71 heads over 8 GPUs (refused, as Megatron): no tp line for it, as
# the caption says.
set multiplot layout 2, 2 title '8 A100s at 10 GB/s: GQA, MQA and Llama-2-70B (plans that fit), simulated (A100 preset)'."\n{/*0.7 ×t: the scheme over 8/t chain stages of t tensor-parallel GPUs, at its fastest t (a range: t varies with the context)}\n{/*0.7 TP-8: Megatron tensor parallelism over all 8 (none for Falcon-7B: its 71 heads do not split over 8 GPUs)}\n{/*0.7 Mistral-7B: up to its 4k window TSP all-gathers every K/V; above it TSP sends each rank only the rows its queries see (sim/README.md), hence its drop from 4k to 6k}".(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (ms, log scale)'
set xrange [0:33]
# log y: TP-8 at 10 GB/s is 4-6x the other series, which a linear axis would flatten (a ratio
# between two series reads the same at every height)
set logscale y
set format y '%g'
set ytics add (20, 50, 200, 500, 2000, 5000, 20000)
# the key outside, right of each panel: no corner of a panel is free of data on this axis
set key outside right font ',11' samplen 2
do for [i=1:n_panels] {
    set title pretty(i)
    set yrange [*:*]  # stats honours a set range
    stats panel(i) using (ms($4)) nooutput
    set yrange [STATS_min / 1.3:STATS_max * 1.3]
    S = series(i)
    nb = words(S)
    plot for [b=0:nb-1] panel(i) index b using ($3/1024):(ms($4)) with linespoints lt lt_of(word(S, b+1)) title tp_label(i, b, 5, 8)
}
unset multiplot
