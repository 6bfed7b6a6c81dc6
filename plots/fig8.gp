# Points that do not fit in GPU memory (sweep state 'infeasible') are not drawn (oom_note).
# One 1 GB/s link at each position of the chain (-1: none), as grouped bars per scheme.
set title 'Llama-7B, 4 A100s, 8k, 10 GB/s with one 1 GB/s link, simulated: even split against re-searched'."\n{/*0.8 KVR-S re-searches the partition for the slow link (and the chain's direction) on the same four GPUs; a 64-token chunk is a rank left almost idle}".(oom_note eq '' ? '' : "\n{/*0.7 ".oom_note."}") font ',14'
set xlabel 'the slow link (between GPUs i and i+1)'
set ylabel 'TTFT (ms)'
set xtics ('none' -1, '0-1' 0, '1-2' 1, '2-3' 2)
set xrange [-1.6:2.6]
set yrange [0:*]
set key top left
set style fill solid 0.9 border lc rgb '#333333'
S = series(1)
nb = words(S)
w = 0.8 / nb
plot for [b=0:nb-1] panel(1) index b using ($3 + (b - (nb - 1) / 2.0) * w):(ms($4) / 2):(w / 2):(ms($4) / 2) \
         with boxxyerror lt lt_of(word(S, b+1)) dt 1 title columnheader(1), \
     for [b=0:nb-1] panel(1) index b using ($3 + (b - (nb - 1) / 2.0) * w):(ms($4)):(sprintf('%.0f', ms($4))) \
         with labels offset 0, 0.6 font ',10' notitle
