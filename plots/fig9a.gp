# GQA, MQA and a 70B model on 8 GPUs at 10 GB/s.
# Points that do not fit in GPU memory (sweep state 'infeasible') are skipped, never drawn.
# Llama-2-70B's 129 GiB of weights do not fit an 80 GiB A100 whole: its panel draws TP-8 and the
# other series as layouts over tensor-parallel stages (fig9a-70b.ini), each at its best tp.
# tp cannot shard Falcon-7B's 71 heads over 8 GPUs (refused, as Megatron): no tp line for it.
set multiplot layout 2, 2 title '8 A100s at 10 GB/s: GQA, MQA and Llama-2-70B (plans that fit, each at its best tp), simulated' font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (ms)'
do for [i=1:n_panels] {
    set title pretty(i)
    S = series(i)
    plot for [b=0:*] panel(i) index b using ($3/1024):(ms($4)) with linespoints lt lt_of(word(S, b+1)) title columnheader(1)
}
unset multiplot
