# Speedup of KVR-S and KVR-P over the TSP baselines as bars (TTFT of the baseline over TTFT of
# the KVR plan), grouped by model and context, at the paper's setting of 8 A100s. A bar has its
# baseline's colour (style.gp: TSP, TSP-causal, TSP-paper); KVR-S bars are solid, KVR-P bars
# hatched. Log axis from 1 (no gain); the dashed segments are the paper's claims (over 1.4x for
# Llama-7B, over 1.6x for Falcon-7B, against its TSP).
# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
set multiplot layout 1, n_panels title 'TTFT speedup of KVR-S and KVR-P over the TSP baselines on 8 A100s, simulated (A100 presets)'.(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',16'
set ylabel 'speedup over the baseline (×, log scale)'
set logscale y
set yrange [0.95:8]
set ytics (1, 1.2, 1.4, 1.6, 2, 3, 4, 6, 8)
set key top right font ',11'
set style fill solid 0.9 border lc rgb '#333333'
set xtics rotate by -45 font ',10'
set grid ytics
short(m) = m eq 'llama-7b' ? 'Llama' : m eq 'falcon-7b' ? 'Falcon' : m
claim(m) = m eq 'llama-7b' ? 1.4 : m eq 'falcon-7b' ? 1.6 : NaN
base(s) = s[strstrt(s, '/') + 1:]
kvrs(s) = s[1:6] eq 'KVR-S/'
do for [i=1:n_panels] {
    set title pretty(i)
    S = series(i)
    nb = words(S)
    w = 0.8 / nb
    x(b) = $0 + (b - (nb - 1) / 2.0) * w
    plot panel(i) index 0 using 0:(NaN):xtic(short(strcol(3)).' '.sprintf('%dk', int($4 / 1024))) notitle, \
         for [b=0:nb-1] panel(i) index b using (kvrs(word(S, b+1)) ? x(b) : NaN):5:(x(b) - w / 2):(x(b) + w / 2):(1):5 \
             with boxxyerror lt lt_of(base(word(S, b+1))) dt 1 fs solid 0.9 border lc rgb '#333333' \
             title (kvrs(word(S, b+1)) ? word(S, b+1) : ''), \
         for [b=0:nb-1] panel(i) index b using (kvrs(word(S, b+1)) ? NaN : x(b)):5:(x(b) - w / 2):(x(b) + w / 2):(1):5 \
             with boxxyerror lt lt_of(base(word(S, b+1))) dt 1 fs pattern 4 border lc rgb '#333333' \
             title (kvrs(word(S, b+1)) ? '' : word(S, b+1)), \
         panel(i) index 0 using ($0 - 0.45):(claim(strcol(3))):(0.9):(0) with vectors nohead lt 7 dt 2 lw 2 \
             title "the paper's claim (over TSP)"
}
unset multiplot
