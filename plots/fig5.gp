# TTFT breakdown of the rank that finishes last. The stacked bar is its TTFT: compute, the
# communication it is exposed to (TTFT - compute - waiting), and waiting. Communication that
# runs beside compute (ring's and KVR's asynchronous transfers) is not part of the TTFT and is
# drawn apart, as the thin hatched bar on the right of each scheme. The parts are greys (no
# scheme colour means a part); both panels share one y axis.
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
hi = 0
do for [i=1:n_panels] {
    stats panel(i) every ::1 using (ms($6)) nooutput
    hi = STATS_max > hi ? STATS_max : hi
}
set multiplot layout 1, 2 title 'Llama-7B, 4 A100s, 16k, simulated: where the TTFT goes (the rank that finishes last)'.(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set style fill solid 1.0 border lc rgb '#333333'
set ylabel 'time (ms)'
set yrange [0:hi * 1.08]
set bmargin 8
set offsets 0.5, 0.5, 0, 0
set xtics rotate by -30 nomirror
exposed(c, w, t) = (t - c - w) > 0 ? t - c - w : 0
hidden(comm, c, w, t) = comm - exposed(c, w, t) > 0 ? comm - exposed(c, w, t) : 0
do for [i=1:n_panels] {
    set title pretty(i)
    if (i == 1) { set key at screen 0.5, screen 0.01 center bottom horizontal maxcols 2 box opaque } else { set key off }
    plot panel(i) every ::1 using ($0 - 0.12):(ms($3) / 2):(0.3):(ms($3) / 2):xtic(2) \
              with boxxyerror lt 13 dt 1 fs solid 1.0 title 'compute', \
         '' every ::1 using ($0 - 0.12):(ms($3 + exposed($3, $5, $6) / 2)):(0.3):(ms(exposed($3, $5, $6)) / 2) \
              with boxxyerror lt 14 dt 1 fs solid 1.0 title 'exposed communication', \
         '' every ::1 using ($0 - 0.12):(ms($6 - $5 / 2)):(0.3):(ms($5) / 2) \
              with boxxyerror lt 15 dt 1 fs pattern 2 title 'waiting', \
         '' every ::1 using ($0 + 0.26):(ms(hidden($4, $3, $5, $6)) / 2):(0.08):(ms(hidden($4, $3, $5, $6)) / 2) \
              with boxxyerror lt 11 dt 1 fs pattern 4 title 'communication overlapped with compute (not in TTFT)', \
         '' every ::1 using ($0 - 0.12):(ms($6)):(sprintf('%.0f', ms($6))) with labels offset 0, 0.7 notitle
}
unset multiplot
