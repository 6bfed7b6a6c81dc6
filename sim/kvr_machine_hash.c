#include "kvr_machine_hash.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kvr_file.h"
#include "kvr_hash.h"

struct text {
    char *buf;
    size_t cap, n;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k =
        vsnprintf(t->n < t->cap ? t->buf + t->n : NULL, t->n < t->cap ? t->cap - t->n : 0, fmt, ap);
    va_end(ap);
    t->n += (size_t)(k > 0 ? k : 0);
}

static void put_gpu(struct text *t, const struct kvr_gpu *g)
{
    put(t, "gpu.name=%s\ngpu.peak_flops=%.17g\ngpu.mem_Bps=%.17g\ngpu.mem_bytes=%.17g\n", g->name,
        g->peak_flops, g->mem_Bps, g->mem_bytes);
    if (g->peak_fp32_flops != 0) put(t, "gpu.peak_fp32_flops=%.17g\n", g->peak_fp32_flops);
    put(t, "gpu.mem_reserve_bytes=%.17g\ngpu.launch_s=%.17g\n", g->mem_reserve_bytes, g->launch_s);
    for (int c = 0; c < KVR_N_CLASSES; c++)
        put(t, "gpu.compute_eff.%s=%.17g\ngpu.half_tokens.%s=%.17g\ngpu.mem_eff.%s=%.17g\n",
            kvr_class_name(c), g->compute_eff[c], kvr_class_name(c), g->half_tokens[c],
            kvr_class_name(c), g->mem_eff[c]);
    put(t, "gpu.attn_hd_exp=%.17g\ngpu.attn_keys_exp=%.17g\n", g->attn_hd_exp, g->attn_keys_exp);
    for (int op = 0; op < KVR_N_OPS; op++)
        if (g->op_scale[op] != 0)
            put(t, "gpu.op_scale.%s=%.17g\n", kvr_op_name((enum kvr_op)op), g->op_scale[op]);
}

/* The links of the whole topology that it alone would not give (as kvr_machine_build_links
 * makes them: same node intra, else inter). All of them, not those among GPUs 0..p-1: the
 * search may place a chain of p on any p GPUs (a slow 0-1 sent it to 4-7 on a100-2x4), so a
 * profile edited at 4-5 kept its hash and was served the stale plan on 4-7. */
static void put_links(struct text *t, const struct kvr_machine *m)
{
    int size = m->n_nodes * m->gpus_per_node;
    for (int i = 0; i < size; i++)
        for (int j = 0; j < size; j++) {
            bool same = i / m->gpus_per_node == j / m->gpus_per_node;
            double bw = same ? m->intra_Bps : m->inter_Bps;
            double lat = same ? m->intra_lat_s : m->inter_lat_s;
            if (i != j && (m->link_Bps[i][j] != bw || m->link_lat_s[i][j] != lat))
                put(t, "link.%d>%d=%.17g,%.17g\n", i, j, m->link_Bps[i][j], m->link_lat_s[i][j]);
        }
}

/* Which links carry noise, over the whole topology of size GPUs (as put_links). */
static void put_noise(struct text *t, const struct kvr_noise *nz, int size)
{
    static const char *const modes[] = {"none", "constant", "random"};
    put(t, "noise.mode=%s\n", modes[nz->mode]);
    if (nz->mode == KVR_NOISE_NONE) return;
    put(t, "noise.share=%.17g\nnoise.seed=%llu\nnoise.links=", nz->share,
        (unsigned long long)nz->seed);
    if (nz->all_links) put(t, "all");
    int k = 0;
    for (int i = 0; i < size && !nz->all_links; i++)
        for (int j = 0; j < size; j++)
            if (i != j && nz->on[i][j]) put(t, "%s%d>%d", k++ ? "," : "", i, j);
    put(t, "\n");
}

size_t kvr_machine_canonical(const struct kvr_machine *m, char *buf, size_t cap)
{
    struct text t = {buf, cap, 0};
    if (cap) buf[0] = 0;
    put_gpu(&t, &m->gpu);
    put(&t, "nodes=%d\ngpus_per_node=%d\ngpus=%d\n", m->n_nodes, m->gpus_per_node, m->n_gpus);
    put(&t, "intra_Bps=%.17g\nintra_lat_s=%.17g\ninter_Bps=%.17g\ninter_lat_s=%.17g\n",
        m->intra_Bps, m->intra_lat_s, m->inter_Bps, m->inter_lat_s);
    put(&t, "overlap_Bps=%.17g\n", m->overlap_Bps);
    put_links(&t, m);
    put_noise(&t, &m->noise, m->n_nodes * m->gpus_per_node);
    return t.n;
}

uint64_t kvr_machine_hash(const struct kvr_machine *m)
{
    size_t n = kvr_machine_canonical(m, NULL, 0);
    char *text = malloc(n + 1);
    if (!text) abort(); /* a few KB at most */
    kvr_machine_canonical(m, text, n + 1);
    uint64_t h = kvr_hash_str(KVR_HASH_INIT, text);
    free(text);
    return h;
}

void kvr_machine_provenance(const char *name_or_file, char *buf, size_t cap)
{
    struct text t = {buf, cap, 0};
    if (cap) buf[0] = 0;
    if (!kvr_file_has_suffix(name_or_file, ".ini")) {
        put(&t, "preset %s (sim/kvr_machine.c; sources in data/README.md)", name_or_file);
        return;
    }
    put(&t, "file %s", name_or_file);
    struct stat sb; /* read again: a FIFO's bytes were the loader's, and a reopen would wait */
    FILE *f = stat(name_or_file, &sb) == 0 && S_ISREG(sb.st_mode) ? fopen(name_or_file, "r") : NULL;
    char line[512];
    while (f && fgets(line, sizeof line, f) && (line[0] == ';' || line[0] == '#')) {
        line[strcspn(line, "\r\n")] = 0;
        put(&t, "\n%s", line + 1 + (line[1] == ' '));
    }
    if (f) fclose(f);
    if (t.n >= cap && cap) buf[cap - 1] = 0;
}
