/* kvr_machine_write_ini against its reader: a machine written and read back is the same
 * machine, every field equal and the same kvr_machine_hash (a calibrated profile keeps its
 * plans). Presets, the committed profiles, and one with awkward numbers, link overrides, noise
 * and fewer GPUs used than the topology has. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvr_machine.h"
#include "kvr_machine_hash.h"
#include "tap.h"

static char dir[] = "/tmp/kvr_test_machine_write_XXXXXX";
static struct kvr_machine a, b; /* large: link matrices */

/* The first field that differs, or NULL. */
static const char *differs(const struct kvr_machine *x, const struct kvr_machine *y)
{
    const struct kvr_gpu *g = &x->gpu, *h = &y->gpu;
    if (strcmp(x->name, y->name) || strcmp(g->name, h->name)) return "name";
    if (g->peak_flops != h->peak_flops || g->mem_Bps != h->mem_Bps || g->mem_bytes != h->mem_bytes)
        return "peak, mem_bw or mem";
    if (g->peak_fp32_flops != h->peak_fp32_flops) return "peak_fp32";
    if (g->mem_reserve_bytes != h->mem_reserve_bytes || g->launch_s != h->launch_s)
        return "mem_reserve or launch";
    for (int c = 0; c < KVR_N_CLASSES; c++)
        if (g->compute_eff[c] != h->compute_eff[c] || g->half_tokens[c] != h->half_tokens[c] ||
            g->mem_eff[c] != h->mem_eff[c])
            return "an efficiency";
    if (g->attn_hd_exp != h->attn_hd_exp || g->attn_keys_exp != h->attn_keys_exp)
        return "attn exponents";
    for (int op = 0; op < KVR_N_OPS; op++)
        if (g->op_scale[op] != h->op_scale[op]) return "op_scale";
    if (x->n_nodes != y->n_nodes || x->gpus_per_node != y->gpus_per_node || x->n_gpus != y->n_gpus)
        return "topology";
    if (x->intra_Bps != y->intra_Bps || x->intra_lat_s != y->intra_lat_s ||
        x->inter_Bps != y->inter_Bps || x->inter_lat_s != y->inter_lat_s ||
        x->overlap_Bps != y->overlap_Bps)
        return "links of the topology";
    int size = x->n_nodes * x->gpus_per_node;
    for (int i = 0; i < size; i++)
        for (int j = 0; j < size; j++)
            if (i != j && (x->link_Bps[i][j] != y->link_Bps[i][j] ||
                           x->link_lat_s[i][j] != y->link_lat_s[i][j]))
                return "a link";
    const struct kvr_noise *n = &x->noise, *m = &y->noise;
    if (n->mode != m->mode) return "noise mode";
    if (n->mode == KVR_NOISE_NONE) return NULL;
    if (n->share != m->share || n->seed != m->seed || n->all_links != m->all_links)
        return "noise share, seed or links";
    for (int i = 0; i < size && !n->all_links; i++)
        for (int j = 0; j < size; j++)
            if (i != j && n->on[i][j] != m->on[i][j]) return "a noise link";
    return NULL;
}

/* Writes x, reads it back into b, writes b again: same fields, same hash, same text. */
static void round_trip(const struct kvr_machine *x, const char *what)
{
    char path[256], again[256];
    snprintf(path, sizeof path, "%s/m.ini", dir);
    snprintf(again, sizeof again, "%s/m2.ini", dir);
    FILE *f = fopen(path, "w");
    if (f) kvr_machine_write_ini(f, x), fclose(f);
    enum kvr_status st = f ? kvr_machine_load_ini(path, &b) : KVR_ERR_IO;
    if (!ok(!st, "%s: written and read back (%s)", what, st ? kvr_error_message() : "ok")) return;
    const char *d = differs(x, &b);
    if (!ok(!d, "%s: every field equal", what)) printf("#   %s differs\n", d);
    ok(kvr_machine_hash(x) == kvr_machine_hash(&b), "%s: the same machine hash", what);
    f = fopen(again, "w");
    if (f) kvr_machine_write_ini(f, &b), fclose(f);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", path, again);
    ok(f && system(cmd) == 0, "%s: written again, the same text", what);
}

/* Numbers that %.6g would round: a third of a PFLOP/s, a latency of 4.7 us and a bit, a fitted
 * efficiency with 17 digits; overrides both ways and one way; random noise on two links;
 * 6 of 8 GPUs used; no reserve. */
static void awkward(struct kvr_machine *m)
{
    kvr_machine_resolve("h100-nvlink", m);
    snprintf(m->name, sizeof m->name, "awkward");
    m->gpu.peak_flops = 1e15 / 3;
    m->gpu.peak_fp32_flops = 66.9e12 * (1 + 2e-16);
    m->gpu.mem_Bps = 3.35e12 * (1 + 1e-15);
    m->gpu.mem_bytes = 85899345920;
    m->gpu.mem_reserve_bytes = 0;
    m->gpu.launch_s = 4.7e-6 * (1 + 3e-16);
    m->gpu.compute_eff[KVR_CLASS_GEMM] = 0.73214285714285721;
    m->gpu.half_tokens[KVR_CLASS_ATTENTION] = 123.456789012345;
    m->gpu.attn_keys_exp = 0.71980123456789;
    m->gpu.attn_hd_exp = 1.0 / 7;
    m->gpu.op_scale[KVR_OP_QKV] = 1.0 + 1.0 / 3;
    m->overlap_Bps = 61.6e9 * (1 - 1e-15);
    m->n_gpus = 6;
    kvr_machine_build_links(m);
    kvr_machine_set_link(m, "0-1=123.456GB/s,7.5us");
    kvr_machine_set_link(m, "2>3=1GB/s");
    m->link_Bps[2][3] = 1e9 / 7;
    kvr_machine_set_noise(m, "random:0.3@0-1,4>5");
    m->noise.share = 0.3 / 7;
    m->noise.seed = KVR_NOISE_SEED_MAX; /* the largest seed the generator tells apart */
}

int main(void)
{
    if (!mkdtemp(dir)) return printf("Bail out! mkdtemp failed\n"), 1;
    for (int i = 0; i < kvr_machine_preset_count(); i++) {
        a = *kvr_machine_preset_at(i);
        kvr_machine_build_links(&a);
        round_trip(&a, a.name);
    }
    static const char *const files[] = {"h100-calibrated", "h100x4-nccl", "a100-published",
                                        "a100-8x8", "h100-2x4"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/machines/%s.ini", KVR_SOURCE_DATADIR, files[k]);
        ok(!kvr_machine_load_ini(path, &a), "%s loads", files[k]);
        round_trip(&a, files[k]);
    }
    awkward(&a);
    ok(!kvr_machine_validate(&a), "the awkward machine is valid (%s)", kvr_error_message());
    round_trip(&a, "awkward");
    a.noise.all_links = true;
    a.noise.mode = KVR_NOISE_CONSTANT;
    a.n_gpus = 8;
    round_trip(&a, "awkward, constant noise on all links, 8 GPUs");
    /* a value the reader cannot hold is refused, not cut short */
    char path[256];
    snprintf(path, sizeof path, "%s/long.ini", dir);
    FILE *f = fopen(path, "w");
    if (f)
        fprintf(f,
                "[gpu]\npeak = 1TFLOPS\nmem_bw = 1TB/s\nmem = 1GiB\n[topology]\n"
                "gpus_per_node = 2\nintra_bw = 1GB/s\n[links]\n0-1 = 1%0100dB/s\n",
                0),
            fclose(f);
    ok(f && kvr_machine_load_ini(path, &b) == KVR_ERR_INPUT, "an over-long link value is refused");
    like(kvr_error_message(), "too long", "  the message says so");
    tap_rmdir(dir);
    return tap_done();
}
