# Noisy network: mean TTFT over seeds, bars from the best to the worst seed.
# Points that do not fit in GPU memory (sweep state 'infeasible') are skipped, never drawn.
set title 'Llama-7B, 4 GPUs, 8k, 10 GB/s: TTFT under competing traffic (10 seeds x 16 trials)' font ',16'
set xlabel 'competing traffic: largest share of a link taken per layer'
set ylabel 'TTFT (ms)'
set xrange [-0.05:0.75]
plot for [b=0:*] panel(1) index b using 3:(ms($4)):(ms($5)):(ms($6)) with yerrorlines lt b+1 title columnheader(1)
