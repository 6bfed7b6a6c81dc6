# KVR-P against KVR-S: the TTFT gap of the interpolated partition, per p and bandwidth.
# Points that do not fit in GPU memory (sweep state 'infeasible') are skipped, never drawn.
set multiplot layout 1, 2 title 'KVR-P (interpolated) against KVR-S (searched), Llama-7B, simulated' font ',16'
set xlabel 'context (k tokens)'
set ylabel 'TTFT gap of KVR-P over KVR-S (%)'
set key top right
do for [i=1:n_panels] {
    set title pretty(i)
    plot for [b=0:*] panel(i) index b using ($2/1024):3 with linespoints lt b+3 title columnheader(1)
}
unset multiplot
