# The paper's TTFT-against-context panels with the executor's measurements: one panel per model,
# rank count and links (full speed, every link emulated at 10 GB/s, link 0-1 at 10 GB/s), one
# colour per scheme; points measured, dashed lines the simulator's predictions of the same
# plans. Data: kvr validate --out DIR (validate_panels.list, validate-panel-K.tsv).
# every panel has the same n_series blocks, in kvr validate's order (so a scheme keeps its
# colour); an absent series is an untitled block with no valid point
n_series = 16  # at most kvr_validate_series_order's 16; blocks past the file's last are skipped
cols = n_panels >= 3 ? 3 : n_panels
rows = (n_panels + cols - 1) / cols
if (term eq 'svg') {
    set terminal svg size 600*cols,420*rows dynamic enhanced font 'Helvetica,13' background '#ffffff'
} else {
    set terminal pngcairo size 600*cols,420*rows enhanced font 'DejaVu Sans,11' linewidth 1.5
}
set output outdir.'/'.name.'.'.term
set multiplot layout rows, cols title 'TTFT measured (points) against simulated (dashed lines), the same plans' font ',15'
set xlabel 'context (k tokens)'
set ylabel 'TTFT (ms)'
set logscale xy 2
set key top left font ',10'
do for [i=1:n_panels] {
    set title pretty(i)
    array L[n_series]
    do for [b=1:n_series] { L[b] = lt_exec(hdr(i, b - 1)) }
    plot for [b=0:n_series-1] panel(i) index b using ($2/1024):(ms($3)) with points lt L[b+1] ps 1.3 title columnheader(1), \
         for [b=0:n_series-1] panel(i) index b using ($2/1024):(ms($4)) with lines lt L[b+1] dt 2 notitle
}
unset multiplot
