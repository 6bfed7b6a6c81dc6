# TTFT breakdown of the rank that finishes last (kvr_plot.c: plot_breakdown). The stacked bar is
# its TTFT: compute, the communication it is exposed to (TTFT - compute - waiting) and waiting
# for another rank's data; the three add up to the TTFT (printed on top). Communication that runs
# beside compute (ring's asynchronous transfers) is not part of the TTFT and is drawn apart, as
# the thin hatched bar on the right of each scheme: the rank's link time beyond its exposed and
# waiting time, compute + communication - TTFT (never more than the compute it hides under).
# KVR's last rank only receives, so its transfers show as waiting. The parts are greys (no scheme
# colour means a part); both panels share one y axis.
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
hi = 0
do for [i=1:n_panels] {
    stats panel(i) every ::1 using (ms($6)) nooutput
    hi = STATS_max > hi ? STATS_max : hi
}
set multiplot layout 1, 2 title 'Llama-7B, 4 A100s, 16k, simulated (A100 preset): where the TTFT goes (the rank that finishes last)'.(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set style fill solid 1.0 border lc rgb '#333333'
set ylabel 'time (ms)'
set yrange [0:hi * 1.08]
set bmargin 8
set offsets 0.5, 0.5, 0, 0
set xtics rotate by -30 nomirror
do for [i=1:n_panels] {
    set title pretty(i)
    if (i == 1) { set key at screen 0.5, screen 0.01 center bottom horizontal maxcols 2 box opaque } else { set key off }
    plot panel(i) every ::1 using ($0 - 0.12):(ms($3) / 2):(0.3):(ms($3) / 2):xtic(2) \
              with boxxyerror lt 13 dt 1 fs solid 1.0 title 'compute', \
         '' every ::1 using ($0 - 0.12):(ms($3 + $4 / 2)):(0.3):(ms($4) / 2) \
              with boxxyerror lt 14 dt 1 fs solid 1.0 title 'exposed communication', \
         '' every ::1 using ($0 - 0.12):(ms($6 - $5 / 2)):(0.3):(ms($5) / 2) \
              with boxxyerror lt 15 dt 1 fs pattern 2 title 'waiting for another rank', \
         '' every ::1 using ($0 + 0.26):(ms($7) / 2):(0.08):(ms($7) / 2) \
              with boxxyerror lt 11 dt 1 fs pattern 4 title 'communication under compute (not in the TTFT)', \
         '' every ::1 using ($0 - 0.12):(ms($6)):(sprintf('%.0f', ms($6))) with labels offset 0, 0.7 notitle, \
         '' every ::1 using ($0 + 0.26):($7 > 0.0005 ? ms($7) : NaN):(sprintf('%.0f', ms($7))) with labels offset 0, 0.7 font ',10' notitle
}
unset multiplot
