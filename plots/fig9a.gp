# GQA, MQA and a 70B model on 8 GPUs at 10 GB/s.
set multiplot layout 2, 2 title '8 A100s at 10 GB/s: GQA, MQA and Llama-2-70B, simulated' font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (ms)'
do for [i=1:n_panels] {
    set title pretty(i)
    S = series(i)
    plot for [b=0:*] panel(i) index b using ($3/1024):(ms($4)) with linespoints lt lt_of(word(S, b+1)) title columnheader(1)
}
unset multiplot
