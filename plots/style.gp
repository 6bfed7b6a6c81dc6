# Shared style of every figure. kvr plot runs:  gnuplot -e "datadir=...; outdir=...; name=...;
# term='png'|'svg'" style.gp NAME.gp
# Okabe-Ito colour-blind-safe palette, with distinct point types and dashes as a second cue.
if (term eq 'svg') {
    set terminal svg size 1500,900 dynamic enhanced font 'Helvetica,15' background '#ffffff'
} else {
    set terminal pngcairo size 1500,900 enhanced font 'DejaVu Sans,13' linewidth 1.5
}
set output outdir.'/'.name.'.'.term
# One colour, marker and dash per scheme in every figure (not by block order): lt_of(label).
set linetype 1 lc rgb '#0072B2' lw 2 pt 7 ps 0.8 dt 1   # TSP: blue, disc
set linetype 2 lc rgb '#56B4E9' lw 2 pt 5 ps 0.8 dt 2   # TSP-causal: sky blue, square, dashed
set linetype 3 lc rgb '#009E73' lw 2 pt 9 ps 0.9 dt 1   # ring: bluish green, triangle
set linetype 4 lc rgb '#CC79A7' lw 2 pt 11 ps 0.9 dt 1  # TP: reddish purple, down triangle
set linetype 5 lc rgb '#E69F00' lw 2 pt 13 ps 0.9 dt 4  # KVR-E: orange, diamond, dash-dot
set linetype 6 lc rgb '#D55E00' lw 2.5 pt 7 ps 0.9 dt 1 # KVR-S: vermillion, disc, solid
set linetype 7 lc rgb '#000000' lw 2 pt 6 ps 0.8 dt 4   # single / lower bound: black
set linetype 8 lc rgb '#8B2500' lw 1.5 pt 6 ps 1.4 dt 2 # KVR-P: dark vermillion, open ring, dashed
set linetype 9 lc rgb '#009E73' lw 1.5 pt 8 ps 0.9 dt 2 # ring-pass: green, open triangle, dashed
set linetype 10 lc rgb '#1B3A6B' lw 2 pt 3 ps 0.9 dt 3  # TSP-paper: navy, star, dotted
set linetype 11 lc rgb '#777777' lw 2 pt 1 ps 0.9 dt 1  # other series: grey
set linetype 12 lc rgb '#F0E442' lw 2 pt 12 ps 0.9 dt 1 # yellow
# Parts of a time (fig4, fig5) and series that are not schemes (fig6's GPU counts): greys,
# so that no colour of a scheme means anything else.
set linetype 13 lc rgb '#9A9A9A' lw 2 pt 7 ps 0.8 dt 1  # compute: grey
set linetype 14 lc rgb '#303030' lw 2 pt 7 ps 0.8 dt 1  # exposed communication: near-black
set linetype 15 lc rgb '#303030' lw 1 pt 7 ps 0.8 dt 1  # waiting: hatched (fs pattern 2)
set linetype 16 lc rgb '#000000' lw 2 pt 7 ps 0.9 dt 1  # non-scheme series 1: black disc
set linetype 17 lc rgb '#555555' lw 2 pt 5 ps 0.9 dt 2  # non-scheme series 2: grey square, dashed
set linetype 18 lc rgb '#999999' lw 2 pt 9 ps 1.0 dt 3  # non-scheme series 3: light triangle, dotted
lt_of(s) = s eq 'TSP' ? 1 : s eq 'TSP-causal' ? 2 : s eq 'ring' ? 3 : s eq 'TP' ? 4 : \
    s eq 'KVR-E' ? 5 : s eq 'KVR-S' ? 6 : s eq 'single' ? 7 : s eq 'KVR-P' ? 8 : \
    s eq 'ring-pass' ? 9 : s eq 'TSP-paper' ? 10 : 11
set grid lc rgb '#dddddd' lw 1
set key top left box opaque samplen 2 spacing 1.1
set border lw 1.2
set datafile separator '\t'
set datafile missing 'NaN'
# The panels of a figure: data files and their titles from NAME.list. Titles are written in
# words (pretty): 'a100-10GBps,p=2' reads 'A100, 10 GB/s, 2 GPUs' (plots/labels.sed).
plotdir = system("dirname '".ARG0."'")
list = datadir.'/'.name.'.list'
files = system('cut -f1 '.list)
titles = system('cut -f2 '.list)
n_panels = words(files)
panel(i) = datadir.'/'.word(files, i)
pretty(i) = system(sprintf("sed -n '%dp' '%s' | cut -f2 | sed -f '%s/labels.sed'", i, list, plotdir))
# The series of panel i in block order (the first field of each block's header row).
series(i) = system(sprintf("awk -F'\t' 'h==0&&NF{print $1; h=1} !NF{h=0}' '%s'", panel(i)))
ms(x) = 1000 * x
sim = 'simulated'
# The figure's points that do not fit in GPU memory (NAME.infeasible, written by kvr plot): never
# drawn; oom_note says which, for the caption under the title ('' when every point fits): a
# script writes "\n{/*0.7 ".oom_note."}", and each model, p and t after the first begins a line
# of its own.
oom_list = datadir.'/'.name.'.infeasible'
# (The awk programs are joined with '.', not gnuplot's sprintf: gnuplot 5.4 garbles a long
# sprintf format once the arguments make the result long, as a deep --out path does.)
oom_awk = '{printf "%s%s on %d GPUs%s at %s: %s (up to %.0f GiB needed per GPU; %.0f available)", (NR > 1 ? "}\n{/*0.7 " : "not drawn (do not fit in GPU memory): "), $1, $2, ($9 > 1 ? sprintf(" (tensor-parallel stages of %d)", $9) : " (whole model per GPU)"), ($3 == $4 ? sprintf("%gk", $3 / 1024) : sprintf("%gk-%gk", $3 / 1024, $4 / 1024)), $5, $6 / 2^30, $7 / 2^30}'
oom_note = system("[ -s '".oom_list."' ] && awk -F'\t' '".oom_awk."' '".oom_list."' | sed -f '".plotdir."/labels.sed'")
# Layouts over tensor-parallel stages (fig9a's Llama-2-70B panel, fig13): the TP degrees t of
# block b (from 0) of panel i, read from column col, as a label suffix: ' ×2', ' ×2–4' (its
# fastest t varies with the context) or '' (no layout: the whole model on every GPU). TP over
# all p GPUs is 'TP-p' (tp_label).
tp_awk = 'NF == 0 {if (inb) k++; inb = 0; next} !inb {inb = 1; next} k == b && $c > 1 {lo = (lo == "" || $c < lo) ? $c : lo; hi = $c > hi ? $c : hi} END {if (hi > 1) printf(lo == hi ? " ×%d" : " ×%d–%d", lo, hi)}'
tp_of(i, b, col) = system("awk -F'\t' -v b=".b." -v c=".col." '".tp_awk."' '".panel(i)."'")
tp_label(i, b, col, p) = word(series(i), b + 1) eq 'TP' ? sprintf('TP-%d', p) : word(series(i), b + 1).tp_of(i, b, col)
p_of(i) = int(system(sprintf("sed -n '%dp' '%s' | cut -f2 | sed 's/.*p=//'", i, list)))
# kvr validate's series (validate*.gp): the executor's scheme names ('tsp', 'kvr' with its
# method) in the figures' colours. A block header of validate-1.tsv reads 'MODEL SCHEME (METHOD)
# p=P': hdr(i, b) is block b's (from 0), vlt its scheme's linetype, vpt a marker per model and p.
lt_exec(n) = n eq 'tsp' ? 1 : n eq 'tsp-causal' ? 2 : n eq 'tsp-paper' ? 10 : n eq 'tp' ? 4 : lt_of(n)
hdr_awk = 'NF == 0 {if (inb) k++; inb = 0; next} !inb {inb = 1; if (k == b) {print $1; exit}}'
hdr(i, b) = system("awk -F'\t' -v b=".b." '".hdr_awk."' '".panel(i)."'")
vlt(h) = word(h, 2) ne 'kvr' ? lt_exec(word(h, 2)) : word(h, 3) eq '(kvr-e)' ? 5 : \
    word(h, 3) eq '(kvr-s)' ? 6 : word(h, 3) eq '(kvr-p)' ? 8 : 11
vpt(h) = word('7 5 9 13 11 3', (word(h, 1) eq 'llama-7b' ? 1 : 3) + (word(h, 4) eq 'p=4' ? 1 : 0)) + 0
