# Shared style of every figure. kvr plot runs:  gnuplot -e "datadir=...; outdir=...; name=...;
# term='png'|'svg'" style.gp NAME.gp
# Okabe-Ito colour-blind-safe palette, with distinct point types and dashes as a second cue.
if (term eq 'svg') {
    set terminal svg size 1500,900 dynamic enhanced font 'Helvetica,15' background '#ffffff'
} else {
    set terminal pngcairo size 1500,900 enhanced font 'DejaVu Sans,13' linewidth 1.5
}
set output outdir.'/'.name.'.'.term
set linetype 1 lc rgb '#0072B2' lw 2 pt 7 ps 0.8 dt 1   # blue
set linetype 2 lc rgb '#D55E00' lw 2 pt 5 ps 0.8 dt 1   # vermillion
set linetype 3 lc rgb '#009E73' lw 2 pt 9 ps 0.9 dt 1   # bluish green
set linetype 4 lc rgb '#CC79A7' lw 2 pt 11 ps 0.9 dt 1  # reddish purple
set linetype 5 lc rgb '#E69F00' lw 2 pt 13 ps 0.9 dt 1  # orange
set linetype 6 lc rgb '#56B4E9' lw 2 pt 4 ps 0.8 dt 2   # sky blue
set linetype 7 lc rgb '#000000' lw 2 pt 6 ps 0.8 dt 4   # black
set linetype 8 lc rgb '#F0E442' lw 2 pt 8 ps 0.8 dt 1   # yellow
set grid lc rgb '#dddddd' lw 1
set key top left box opaque samplen 2 spacing 1.1
set border lw 1.2
set datafile separator '\t'
set datafile missing 'NaN'
# The panels of a figure: data files and their titles from NAME.list.
list = datadir.'/'.name.'.list'
files = system('cut -f1 '.list)
titles = system('cut -f2 '.list)
n_panels = words(files)
panel(i) = datadir.'/'.word(files, i)
ms(x) = 1000 * x
