#include "kvr_machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_file.h"
#include "kvr_units.h"

/* Default efficiencies, before calibration (a later issue fits them on the GPU):
 * GEMMs reach ~75% of dense peak on large shapes and half of that at 128 rows; fused attention
 * ~55% at long sequences; element-wise kernels are memory bound at ~80% of HBM bandwidth. */
#define DEFAULT_EFF                                                                                \
    .compute_eff = {0.75, 0.55, 0.50}, .half_tokens = {128, 256, 1}, .mem_eff = {0.80, 0.80, 0.80}

#define GPU(nm, peak, peak32, bw, mem)                                                             \
    {                                                                                              \
        .name = nm, .peak_flops = peak, .peak_fp32_flops = peak32, .mem_Bps = bw,                  \
        .mem_bytes = mem, .launch_s = 4e-6, .mem_reserve_bytes = KVR_GPU_RESERVE_BYTES,            \
        DEFAULT_EFF                                                                                \
    }

/* One host of 8 GPUs with its links: within the node (bandwidth, latency) and between nodes. */
#define HOST8(nm, gpu_, intra_bw, intra_lat, inter_bw, inter_lat)                                  \
    {                                                                                              \
        .name = nm, .gpu = gpu_, .n_nodes = 1, .gpus_per_node = 8, .n_gpus = 8,                    \
        .intra_Bps = intra_bw, .intra_lat_s = intra_lat, .inter_Bps = inter_bw,                    \
        .inter_lat_s = inter_lat                                                                   \
    }

/* Peaks from the datasheets: dense BF16 with tensor cores, and FP32 without (A100 19.5, H100
 * and H200 SXM 67 TFLOP/s). Capacities as the cards report them (nvidia-smi, cudaMemGetInfo's
 * total): 80 GiB on the A100/H100 80GB, 143771 MiB on the H200. Sources in data/README.md. */
#define GiB(x) ((x)*1073741824.0)
#define MiB(x) ((x)*1048576.0)
static const struct kvr_machine presets[] = {
    HOST8("a100-nvlink", GPU("A100-SXM4-80GB", 312e12, 19.5e12, 2.039e12, GiB(80)), 300e9, 3e-6,
          25e9, 10e-6),
    HOST8("a100-10GBps", GPU("A100-SXM4-80GB", 312e12, 19.5e12, 2.039e12, GiB(80)), 10e9, 10e-6,
          10e9, 10e-6),
    HOST8("h100-nvlink", GPU("H100-SXM5-80GB", 989.4e12, 66.9e12, 3.35e12, GiB(80)), 450e9, 3e-6,
          50e9, 10e-6),
    HOST8("h200-nvlink", GPU("H200-SXM-141GB", 989.4e12, 66.9e12, 4.8e12, MiB(143771)), 450e9, 3e-6,
          50e9, 10e-6),
};

int kvr_machine_preset_count(void)
{
    return (int)(sizeof presets / sizeof presets[0]);
}

const struct kvr_machine *kvr_machine_preset_at(int i)
{
    return (i >= 0 && i < kvr_machine_preset_count()) ? &presets[i] : NULL;
}

const char *kvr_class_name(int cls)
{
    static const char *const names[KVR_N_CLASSES] = {"gemm", "attention", "elementwise"};
    return (cls >= 0 && cls < KVR_N_CLASSES) ? names[cls] : "?";
}

void kvr_machine_build_links(struct kvr_machine *m)
{
    int n = m->n_nodes * m->gpus_per_node;
    for (int i = 0; i < n && i < KVR_MAX_GPUS; i++)
        for (int j = 0; j < n && j < KVR_MAX_GPUS; j++) {
            bool same = i / m->gpus_per_node == j / m->gpus_per_node;
            m->link_Bps[i][j] = same ? m->intra_Bps : m->inter_Bps;
            m->link_lat_s[i][j] = same ? m->intra_lat_s : m->inter_lat_s;
        }
}

enum kvr_status kvr_machine_resolve(const char *name_or_file, struct kvr_machine *out)
{
    for (int i = 0; i < kvr_machine_preset_count(); i++)
        if (!strcmp(presets[i].name, name_or_file)) {
            *out = presets[i];
            kvr_machine_build_links(out);
            return KVR_OK;
        }
    if (kvr_file_has_suffix(name_or_file, ".ini")) return kvr_machine_load_ini(name_or_file, out);
    return kvr_error(KVR_ERR_INPUT,
                     "unknown machine '%s': not a preset (a100-nvlink, a100-10GBps, "
                     "h100-nvlink, h200-nvlink) and not an .ini file",
                     name_or_file);
}

enum kvr_status kvr_machine_set_gpus(struct kvr_machine *m, const char *text)
{
    uint64_t p;
    if (kvr_parse_u64(text, KVR_MAX_GPUS, &p)) return kvr_error_prefix(KVR_ERR_INPUT, "--gpus: ");
    int size = m->n_nodes * m->gpus_per_node;
    if (p == 0) return kvr_error(KVR_ERR_INPUT, "--gpus: '%s' must be positive", text);
    if ((int)p > size)
        return kvr_error(KVR_ERR_INPUT, "--gpus: %s is larger than the topology of %s (%d GPUs)",
                         text, m->name, size);
    m->n_gpus = (int)p;
    return KVR_OK;
}

/* A positive quantity of option `what` through its unit parser ("bandwidth", "latency"). */
static enum kvr_status parse_positive(const char *what, const char *noun,
                                      enum kvr_status (*parse)(const char *, double *),
                                      const char *text, double *out)
{
    if (parse(text, out)) return kvr_error_prefix(KVR_ERR_INPUT, "%s: ", what);
    if (*out <= 0) return kvr_error(KVR_ERR_INPUT, "%s: %s '%s' must be > 0", what, noun, text);
    return KVR_OK;
}

static enum kvr_status parse_positive_rate(const char *what, const char *text, double *out)
{
    return parse_positive(what, "bandwidth", kvr_parse_rate_Bps, text, out);
}

enum kvr_status kvr_machine_set_all_bw(struct kvr_machine *m, const char *text)
{
    double bw;
    enum kvr_status st = parse_positive_rate("--bw", text, &bw);
    if (st) return st;
    m->intra_Bps = m->inter_Bps = bw;
    for (int i = 0; i < KVR_MAX_GPUS; i++)
        for (int j = 0; j < KVR_MAX_GPUS; j++) m->link_Bps[i][j] = bw;
    return KVR_OK;
}

/* Parses "I-J" or "I>J" at the start of spec; *directed tells which; returns the rest. */
static enum kvr_status parse_link_ends(const struct kvr_machine *m, const char *spec,
                                       const char *end, int *i, int *j, bool *directed)
{
    char buf[64];
    size_t n = (size_t)(end - spec);
    if (n >= sizeof buf) /* cut, "0-00...012" would read as the link 0-1 */
        return kvr_error(KVR_ERR_INPUT, "link '%.*s...' is longer than %zu characters", 20, spec,
                         sizeof buf - 1);
    memcpy(buf, spec, n);
    buf[n] = '\0';
    char *sep = strpbrk(buf, "->");
    if (!sep) return kvr_error(KVR_ERR_INPUT, "link '%s' is not I-J or I>J", buf);
    *directed = *sep == '>';
    *sep = '\0';
    uint64_t a, b;
    int size = m->n_nodes * m->gpus_per_node;
    if (kvr_parse_u64(buf, KVR_MAX_GPUS, &a) || kvr_parse_u64(sep + 1, KVR_MAX_GPUS, &b) ||
        (int)a >= size || (int)b >= size || a == b)
        return kvr_error(KVR_ERR_INPUT, "unknown link '%.*s': GPUs are 0..%d and differ",
                         (int)(end - spec), spec, size - 1);
    *i = (int)a;
    *j = (int)b;
    return KVR_OK;
}

enum kvr_status kvr_machine_link_ends(const struct kvr_machine *m, const char *spec, int *i, int *j)
{
    const char *eq = strchr(spec, '=');
    bool directed = false;
    enum kvr_status st = parse_link_ends(m, spec, eq ? eq : spec + strlen(spec), i, j, &directed);
    return st ? kvr_error_prefix(st, "--link: ") : KVR_OK;
}

enum kvr_status kvr_machine_set_link(struct kvr_machine *m, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq) return kvr_error(KVR_ERR_INPUT, "--link '%s': expected I-J=RATE[,LATENCY]", spec);
    int i = 0, j = 0;
    bool directed = false;
    enum kvr_status st = parse_link_ends(m, spec, eq, &i, &j, &directed);
    if (st) return kvr_error_prefix(st, "--link: ");
    char rate[64];
    if ((size_t)snprintf(rate, sizeof rate, "%s", eq + 1) >= sizeof rate)
        return kvr_error(KVR_ERR_INPUT, "--link '%s': the rate and latency are too long", spec);
    char *comma = strchr(rate, ',');
    double lat = m->link_lat_s[i][j], bw;
    if (comma) {
        *comma = '\0';
        if ((st = parse_positive("--link", "latency", kvr_parse_duration_s, comma + 1, &lat)))
            return st;
    }
    if ((st = parse_positive_rate("--link", rate, &bw))) return st;
    m->link_Bps[i][j] = bw, m->link_lat_s[i][j] = lat;
    if (!directed) m->link_Bps[j][i] = bw, m->link_lat_s[j][i] = lat;
    return KVR_OK;
}

enum kvr_status kvr_machine_set_noise_share(struct kvr_machine *m, const char *text)
{
    double share;
    if (kvr_parse_decimal("noise share", text, 0, 1, &share) || share >= 1)
        return kvr_error(KVR_ERR_INPUT, "noise share '%s' must be a number in [0, 1)", text);
    m->noise.share = share;
    return KVR_OK;
}

/* "I-J,K-L" marks those links (both ways) for noise. */
enum kvr_status kvr_machine_set_noise_links(struct kvr_machine *m, const char *list)
{
    m->noise.all_links = !strcmp(list, "all");
    if (m->noise.all_links) return KVR_OK;
    memset(m->noise.on, 0, sizeof m->noise.on);
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        int i = 0, j = 0;
        bool directed = false;
        enum kvr_status st = parse_link_ends(m, p, end, &i, &j, &directed);
        if (st) return st;
        if (m->noise.on[i][j] || (!directed && m->noise.on[j][i])) /* one meaning per link */
            return kvr_error(KVR_ERR_INPUT, "link %d-%d is listed twice", i, j);
        m->noise.on[i][j] = true;
        if (!directed) m->noise.on[j][i] = true;
        if (*end && !end[1]) /* "0-1," : an empty last item, as ",," is */
            return kvr_error(KVR_ERR_INPUT, "link list '%s' ends in ','", list);
        p = *end ? end + 1 : end;
    }
    return KVR_OK;
}

enum kvr_status kvr_machine_set_noise(struct kvr_machine *m, const char *spec)
{
    char *buf = strdup(spec); /* any length: a long link list is never cut */
    if (!buf) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    char *at = strchr(buf, '@'), *share = buf;
    if (at) *at = '\0';
    m->noise.mode = KVR_NOISE_CONSTANT;
    if (!strncmp(buf, "random:", 7)) m->noise.mode = KVR_NOISE_RANDOM, share = buf + 7;
    enum kvr_status st = kvr_machine_set_noise_share(m, share);
    if (!st && at && !at[1]) /* "@" and no link would put the noise nowhere */
        st = kvr_error(KVR_ERR_INPUT, "no link after '@' (e.g. @0-1,2-3)");
    if (!st) st = kvr_machine_set_noise_links(m, at ? at + 1 : "all");
    free(buf);
    if (st) return kvr_error_prefix(st, "--noise '%s': ", spec);
    if (m->noise.share == 0) m->noise.mode = KVR_NOISE_NONE;
    return KVR_OK;
}

double kvr_gpu_peak_flops(const struct kvr_gpu *g, enum kvr_dtype d)
{
    return d == KVR_DTYPE_FP32 ? g->peak_fp32_flops : g->peak_flops;
}

enum kvr_status kvr_gpu_check_dtype(const struct kvr_gpu *g, const struct kvr_model *m,
                                    const char *machine)
{
    if (kvr_gpu_peak_flops(g, m->dtype) > 0) return KVR_OK;
    const char *d = kvr_dtype_name(m->dtype);
    return kvr_error(KVR_ERR_INPUT,
                     "model %s has dtype %s, and %s%s%sGPU %s%s gives no %s peak: add [gpu] "
                     "peak_fp32 to the profile",
                     m->name, d, machine ? "machine " : "", machine ? machine : "",
                     machine ? " (" : "", g->name, machine ? ")" : "", d);
}

static bool op_scales_ok(const struct kvr_gpu *g)
{
    for (int op = 0; op < KVR_N_OPS; op++)
        if (!(g->op_scale[op] >= 0 && g->op_scale[op] <= 100)) return false;
    return true;
}

enum kvr_status kvr_gpu_validate(const struct kvr_gpu *g)
{
    if (!(g->peak_flops > 0) || !(g->mem_Bps > 0) || !(g->mem_bytes > 0) || !(g->launch_s >= 0))
        return kvr_error(KVR_ERR_INPUT, "GPU %s: peak, mem_bw and mem must be > 0, launch >= 0",
                         g->name);
    if (!(g->peak_fp32_flops >= 0 && g->peak_fp32_flops <= g->peak_flops))
        return kvr_error(KVR_ERR_INPUT, "GPU %s: peak_fp32 %g FLOP/s must be in [0, peak = %g]",
                         g->name, g->peak_fp32_flops, g->peak_flops);
    if (!(g->mem_reserve_bytes >= 0 && g->mem_reserve_bytes < g->mem_bytes))
        return kvr_error(KVR_ERR_INPUT, "GPU %s: mem_reserve %.0f bytes must be in [0, mem = %.0f)",
                         g->name, g->mem_reserve_bytes, g->mem_bytes);
    for (int c = 0; c < KVR_N_CLASSES; c++)
        if (!(g->compute_eff[c] > 0 && g->compute_eff[c] <= 1) ||
            !(g->mem_eff[c] > 0 && g->mem_eff[c] <= 1) || !(g->half_tokens[c] >= 0) ||
            !(g->attn_hd_exp >= 0 && g->attn_hd_exp <= 10) ||
            !(g->attn_keys_exp >= 0 && g->attn_keys_exp <= 1) || !op_scales_ok(g))
            return kvr_error(KVR_ERR_INPUT,
                             "GPU %s: efficiencies of %s must be in (0, 1], half_tokens >= 0",
                             g->name, kvr_class_name(c));
    return KVR_OK;
}

enum kvr_status kvr_machine_validate(const struct kvr_machine *m)
{
    int size = m->n_nodes * m->gpus_per_node;
    if (m->n_nodes < 1 || m->gpus_per_node < 1 || size > KVR_MAX_GPUS)
        return kvr_error(KVR_ERR_INPUT, "machine %s: topology %d x %d is outside 1..%d GPUs",
                         m->name, m->n_nodes, m->gpus_per_node, KVR_MAX_GPUS);
    if (m->n_gpus < 1 || m->n_gpus > size)
        return kvr_error(KVR_ERR_INPUT, "machine %s: %d GPUs requested, the topology has %d",
                         m->name, m->n_gpus, size);
    for (int i = 0; i < size; i++)
        for (int j = 0; j < size; j++)
            if (i != j && (!(m->link_Bps[i][j] > 0) || !(m->link_lat_s[i][j] > 0)))
                return kvr_error(KVR_ERR_INPUT,
                                 "machine %s: link %d>%d needs bandwidth and latency > 0", m->name,
                                 i, j);
    if (m->noise.seed > KVR_NOISE_SEED_MAX)
        return kvr_error(KVR_ERR_INPUT, "machine %s: noise seed %llu is outside 0..%u", m->name,
                         (unsigned long long)m->noise.seed, KVR_NOISE_SEED_MAX);
    if (!(m->noise.share >= 0 && m->noise.share < 1))
        return kvr_error(KVR_ERR_INPUT, "machine %s: noise share %g is outside [0, 1)", m->name,
                         m->noise.share);
    return kvr_gpu_validate(&m->gpu);
}

int kvr_machine_node(const struct kvr_machine *m, int i)
{
    int g = m->permuted ? m->gpu_of[i] : i;
    return m->gpus_per_node > 0 ? g / m->gpus_per_node : 0;
}
