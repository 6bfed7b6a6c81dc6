# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
# Noisy network: TTFT under competing traffic. A point is the mean over 10 seeds of each seed's
# 16-trial mean TTFT; its bar spans the best and the worst seed's 16-trial mean.
set title "Llama-7B, 4 A100s, 8k, 10 GB/s, simulated: TTFT under competing traffic\n{/*0.8 point: mean over 10 seeds of a 16-trial mean; bar: best to worst seed}".(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',15'
set xlabel "competing traffic: largest share of a link's bandwidth taken per layer (fraction)"
set ylabel 'TTFT (ms)'
set xrange [-0.05:0.75]
# from 0: a TTFT ratio between two series reads as their heights' ratio
set yrange [0:*]
S = series(1)
plot for [b=0:*] panel(1) index b using 3:(ms($4)):(ms($5)):(ms($6)) with yerrorlines lt lt_of(word(S, b+1)) title columnheader(1)
