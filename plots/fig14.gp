# Measured against simulated: the committed 4xH100 measurements (data/measurements/
# h100x4-multi.sqlite: NCCL, one host) as points, the simulator's predictions of the same plans
# (same partition, the links each run emulated, profile data/machines/h100x4-nccl.ini) as lines.
# One panel per model and GPU count (rows) and links (columns: full speed, every link at
# 10 GB/s, link 0-1 at 10 GB/s); one colour and marker per scheme (style.gp); the same log axes
# in every panel; the model's single-GPU runs on the same machine in every panel of it (black).
# Data: kvr plot fig14 (no sweep: the rows come from the committed database).
cols = 3
rows = (n_panels + cols - 1) / cols
if (term eq 'svg') {
    set terminal svg size 1500,380*rows dynamic enhanced font 'Helvetica,14' background '#ffffff'
} else {
    set terminal pngcairo size 1500,380*rows enhanced font 'DejaVu Sans,12' linewidth 1.5
}
set output outdir.'/'.name.'.'.term
# one y range for every panel, and the mean absolute error over every point
lo = 1e9; hi = 0; err = 0; npts = 0
do for [i=1:n_panels] {
    stats panel(i) using (ms($3)):(ms($4)) nooutput
    lo = STATS_min_x < lo ? STATS_min_x : lo
    lo = STATS_min_y < lo ? STATS_min_y : lo
    hi = STATS_max_x > hi ? STATS_max_x : hi
    hi = STATS_max_y > hi ? STATS_max_y : hi
    stats panel(i) using (strcol(1) eq 'single' ? NaN : abs($4 / $3 - 1)) nooutput
    err = err + STATS_sum; npts = npts + STATS_records
}
set multiplot layout rows, cols title sprintf("TTFT measured on 4×H100 (points) against simulated (lines): the same plans, %d multi-GPU points, mean error %.1f%%", npts, 100 * err / npts)."\n{/*0.75 single: the same model measured on one of the four H100s (the same in every panel of a model)}" font ',15'
set xlabel 'context (k tokens, log scale)'
set ylabel 'TTFT (ms, log scale)'
set logscale xy 2
set xrange [3.4:38]
set yrange [lo / 1.25:hi * 1.25]
set format y '%g'
set key top left font ',10' samplen 1.5 spacing 0.9
do for [i=1:n_panels] {
    set title pretty(i) font ',12'
    S = series(i)
    plot for [b=0:*] panel(i) index b using ($2/1024):(ms($3)) with points lt lt_of(word(S, b+1)) ps 1.3 title columnheader(1), \
         for [b=0:*] panel(i) index b using ($2/1024):(ms($4)) with lines lt lt_of(word(S, b+1)) notitle
}
unset multiplot
