# The lookup table itself: each rank's share of the context in the searched (KVR-S) partition,
# stacked from rank 0 (bottom, the earliest tokens) to rank p-1 (top). Uneven by design:
# later ranks attend to longer prefixes, so earlier ranks get more tokens.
set multiplot layout 2, 4 title 'The KVR-S lookup table: share of the context per rank, simulated (A100 presets)'."\n{/*0.7 rank 0 at the bottom. At 300 GB/s earlier ranks get more tokens (later ones attend to longer prefixes); at 10 GB/s Llama-7B's KV hand-offs dominate and later ranks get more, so that less KV is sent;}\n{/*0.7 Falcon-7B's multi-query KV is 64 times smaller, so its table hardly depends on the links. A rank is numbered where its band is wider than 3% at 16k.}".(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set xlabel 'context (k tokens)'
set ylabel 'share of the context (fraction)'
set yrange [0:1]
set xrange [1:16]
set key off
set style fill solid 0.85 border lc rgb '#ffffff'
# ranks are not schemes: a grey ramp, darkest for rank 0 (style.gp: no scheme colour means
# anything else), white borders between the bands
set palette defined (0 '#5A5A5A', 1 '#EDEDED')
set cbrange [0:1]
unset colorbox
do for [i=1:n_panels] {
    t = pretty(i)  # the model on a line of its own: four titles side by side
    set title t[1:strstrt(t, ', ') - 1]."\n".t[strstrt(t, ', ') + 2:] font ',11'
    S = series(i)
    nb = words(S)
    plot for [b=0:nb-1] panel(i) index b using ($2/1024):4:5 with filledcurves \
             fc palette frac (nb > 1 ? b / (nb - 1.0) : 0), \
         for [b=0:nb-1] panel(i) index b using (column(2) == 16384 && $5 - $4 > 0.03 ? 15.2 : NaN):(($4 + $5) / 2):(sprintf('%d', b)) \
             with labels font ',10'
}
unset multiplot
