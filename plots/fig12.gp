# TTFT against link bandwidth: Llama-7B at 16k, one panel per p, every link at the bandwidth.
set multiplot layout 1, n_panels title 'Llama-7B at 16k on A100s: TTFT against link bandwidth, simulated' font ',16'
set xlabel 'link bandwidth (GB/s, every link)'
set ylabel 'TTFT (ms)'
set logscale x
set xrange [0.8:750]
set logscale y
set key top right
do for [i=1:n_panels] {
    set title pretty(i)
    S = series(i)
    plot for [b=0:*] panel(i) index b using ($3/1e9):(ms($4)) with linespoints lt lt_of(word(S, b+1)) title columnheader(1)
}
unset multiplot
