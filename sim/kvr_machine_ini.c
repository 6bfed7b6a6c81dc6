/* Machine profiles as INI files (data/machines/NAME.ini). Sections: [machine] name;
 * [gpu] name, peak, mem_bw, mem, mem_reserve (default 2GiB), launch, eff.CLASS, half_tokens.CLASS,
 * mem_eff.CLASS, attn_hd_exp, attn_keys_exp, op_scale.OP; [topology] nodes, gpus_per_node, gpus,
 * intra_bw, intra_lat, inter_bw, inter_lat, overlap_bw; [links] I-J = RATE[,LATENCY] (or I>J,
 * directed); [noise] share, mode, links, seed. Every error names file:line. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kvr_file.h"
#include "kvr_ini.h"
#include "kvr_machine.h"
#include "kvr_units.h"

enum kind { K_FLOPS, K_RATE, K_BYTES, K_DURATION, K_COUNT, K_TEXT };

struct key_spec {
    const char *section, *key;
    enum kind kind;
    size_t offset;
    int required;
};

#define M(field) offsetof(struct kvr_machine, field)
static const struct key_spec keys[] = {
    {"machine", "name", K_TEXT, M(name), 0},
    {"gpu", "name", K_TEXT, M(gpu.name), 0},
    {"gpu", "peak", K_FLOPS, M(gpu.peak_flops), 1},
    {"gpu", "mem_bw", K_RATE, M(gpu.mem_Bps), 1},
    {"gpu", "mem", K_BYTES, M(gpu.mem_bytes), 1},
    {"gpu", "mem_reserve", K_BYTES, M(gpu.mem_reserve_bytes), 0},
    {"gpu", "launch", K_DURATION, M(gpu.launch_s), 0},
    {"topology", "nodes", K_COUNT, M(n_nodes), 0},
    {"topology", "gpus_per_node", K_COUNT, M(gpus_per_node), 1},
    {"topology", "gpus", K_COUNT, M(n_gpus), 0},
    {"topology", "intra_bw", K_RATE, M(intra_Bps), 1},
    {"topology", "intra_lat", K_DURATION, M(intra_lat_s), 0},
    {"topology", "inter_bw", K_RATE, M(inter_Bps), 0},
    {"topology", "inter_lat", K_DURATION, M(inter_lat_s), 0},
    {"topology", "overlap_bw", K_RATE, M(overlap_Bps), 0},
};
#define N_KEYS (int)(sizeof keys / sizeof keys[0])

struct machine_ini {
    struct kvr_machine *m;
    unsigned set;       /* bit k: keys[k] was given */
    char links[32][96]; /* [links] entries, applied once the topology is known */
    int link_lines[32], n_links;
    char noise_links[256];
    int noise_line;
};

/* The unit parser of each kind of number. */
static enum kvr_status (*const parse_number[])(const char *, double *) = {
    [K_FLOPS] = kvr_parse_flops_rate,
    [K_RATE] = kvr_parse_rate_Bps,
    [K_BYTES] = kvr_parse_bytes,
    [K_DURATION] = kvr_parse_duration_s,
};

static enum kvr_status set_value(void *dst, enum kind kind, const char *v)
{
    double x = 0;
    uint64_t n;
    enum kvr_status st = KVR_OK;
    switch (kind) {
    case K_FLOPS:
    case K_RATE:
    case K_BYTES:
    case K_DURATION:
        st = parse_number[kind](v, &x);
        break;
    case K_COUNT:
        st = kvr_parse_u64(v, KVR_MAX_GPUS, &n);
        if (!st && n == 0) st = kvr_error(KVR_ERR_INPUT, "'%s' must be positive", v);
        if (!st) *(int *)dst = (int)n;
        return st;
    case K_TEXT:
        if (!*v || strlen(v) >= 64) return kvr_error(KVR_ERR_INPUT, "'%s': 1 to 63 characters", v);
        snprintf(dst, 64, "%s", v);
        return KVR_OK;
    }
    if (!st && !(x > 0) && kind != K_DURATION)
        return kvr_error(KVR_ERR_INPUT, "'%s' must be > 0", v);
    if (!st) *(double *)dst = x;
    return st;
}

/* eff.CLASS, half_tokens.CLASS, mem_eff.CLASS */
static enum kvr_status set_efficiency(struct kvr_gpu *g, const char *key, const char *v, int *hit)
{
    if (!strncmp(key, "op_scale.", 9)) { /* one operation's time multiplier */
        *hit = 1;
        for (int op = 0; op < KVR_N_OPS; op++)
            if (!strcmp(key + 9, kvr_op_name((enum kvr_op)op))) {
                if (kvr_parse_decimal(key, v, 0, 100, &g->op_scale[op]))
                    return kvr_error(KVR_ERR_INPUT, "%s = '%s' must be a number in [0, 100]", key,
                                     v);
                return KVR_OK;
            }
        return kvr_error(KVR_ERR_INPUT, "%s: unknown operation (see kvr model show --json)", key);
    }
    if (!strcmp(key, "attn_hd_exp")) { /* attention efficiency x (head_dim / 128)^this */
        *hit = 1;
        if (kvr_parse_decimal(key, v, 0, 10, &g->attn_hd_exp))
            return kvr_error(KVR_ERR_INPUT, "attn_hd_exp = '%s' must be a number in [0, 10]", v);
        return KVR_OK;
    }
    if (!strcmp(key, "attn_keys_exp")) { /* attention's rows: queries^(1-a) mean_keys^a */
        *hit = 1;
        if (kvr_parse_decimal(key, v, 0, 1, &g->attn_keys_exp))
            return kvr_error(KVR_ERR_INPUT, "attn_keys_exp = '%s' must be a number in [0, 1]", v);
        return KVR_OK;
    }
    static const char *const prefix[] = {"eff.", "half_tokens.", "mem_eff."};
    double *arrays[] = {g->compute_eff, g->half_tokens, g->mem_eff};
    for (int a = 0; a < 3; a++) {
        size_t n = strlen(prefix[a]);
        if (strncmp(key, prefix[a], n)) continue;
        for (int c = 0; c < KVR_N_CLASSES; c++) {
            if (strcmp(key + n, kvr_class_name(c))) continue;
            double x;
            *hit = 1;
            bool ok = !kvr_parse_decimal(key, v, 0, a == 1 ? 1e12 : 1, &x) && (a == 1 || x > 0);
            if (!ok)
                return kvr_error(KVR_ERR_INPUT, "%s = '%s' must be %s", key, v,
                                 a == 1 ? "a number >= 0" : "in (0, 1]");
            arrays[a][c] = x;
            return KVR_OK;
        }
    }
    return KVR_OK;
}

static enum kvr_status on_noise(struct machine_ini *mi, const char *key, const char *v, int line)
{
    struct kvr_noise *nz = &mi->m->noise;
    if (!strcmp(key, "share")) {
        enum kvr_status st = kvr_machine_set_noise_share(mi->m, v);
        if (st) return st;
        if (nz->mode == KVR_NOISE_NONE) nz->mode = KVR_NOISE_CONSTANT;
    } else if (!strcmp(key, "mode")) {
        if (!strcmp(v, "constant"))
            nz->mode = KVR_NOISE_CONSTANT;
        else if (!strcmp(v, "random"))
            nz->mode = KVR_NOISE_RANDOM;
        else
            return kvr_error(KVR_ERR_INPUT, "mode = '%s' is not constant or random", v);
    } else if (!strcmp(key, "links")) {
        snprintf(mi->noise_links, sizeof mi->noise_links, "%s", v);
        mi->noise_line = line;
    } else if (!strcmp(key, "seed")) {
        if (kvr_parse_u64(v, UINT64_MAX, &nz->seed))
            return kvr_error_prefix(KVR_ERR_INPUT, "seed: ");
    } else {
        return kvr_error(KVR_ERR_INPUT, "unknown key '%s' in [noise]", key);
    }
    return KVR_OK;
}

static enum kvr_status on_machine_key(void *user, const char *section, const char *key,
                                      const char *v, int line)
{
    struct machine_ini *mi = user;
    if (!strcmp(section, "links")) {
        if (mi->n_links == 32) return kvr_error(KVR_ERR_INPUT, "more than 32 link overrides");
        snprintf(mi->links[mi->n_links], sizeof mi->links[0], "%s=%s", key, v);
        mi->link_lines[mi->n_links++] = line;
        return KVR_OK;
    }
    if (!strcmp(section, "noise")) return on_noise(mi, key, v, line);
    for (int k = 0; k < N_KEYS; k++) {
        if (strcmp(section, keys[k].section) || strcmp(key, keys[k].key)) continue;
        if (mi->set & (1u << k)) return kvr_error(KVR_ERR_INPUT, "key '%s' repeats", key);
        mi->set |= 1u << k;
        enum kvr_status st = set_value((char *)mi->m + keys[k].offset, keys[k].kind, v);
        return st ? kvr_error_prefix(st, "%s: ", key) : KVR_OK;
    }
    int hit = 0;
    if (!strcmp(section, "gpu")) {
        enum kvr_status st = set_efficiency(&mi->m->gpu, key, v, &hit);
        if (st || hit) return st;
    }
    return kvr_error(KVR_ERR_INPUT, "unknown key '%s' in [%s]", key, section);
}

static void set_defaults(struct kvr_machine *m)
{
    const struct kvr_machine *base = kvr_machine_preset_at(0); /* efficiency defaults */
    *m = (struct kvr_machine){.n_nodes = 1, .intra_lat_s = 3e-6, .inter_lat_s = 10e-6};
    m->gpu = base->gpu;
    snprintf(m->gpu.name, sizeof m->gpu.name, "gpu");
}

/* Links and noise links name GPUs, so they wait for the topology. */
static enum kvr_status apply_deferred(struct machine_ini *mi, const char *path)
{
    struct kvr_machine *m = mi->m;
    kvr_machine_build_links(m);
    for (int k = 0; k < mi->n_links; k++)
        if (kvr_machine_set_link(m, mi->links[k]))
            return kvr_error_prefix(KVR_ERR_INPUT, "%s:%d: ", path, mi->link_lines[k]);
    const char *links = mi->noise_links[0] ? mi->noise_links : "all";
    if (kvr_machine_set_noise_links(m, links))
        return kvr_error_prefix(KVR_ERR_INPUT, "%s:%d: ", path, mi->noise_line);
    return KVR_OK;
}

enum kvr_status kvr_machine_load_ini(const char *path, struct kvr_machine *out)
{
    struct kvr_machine m;
    set_defaults(&m);
    struct machine_ini mi = {.m = &m};
    enum kvr_status st = kvr_ini_parse(path, on_machine_key, &mi);
    if (st) return st;
    for (int k = 0; k < N_KEYS; k++)
        if (keys[k].required && !(mi.set & (1u << k)))
            return kvr_error(KVR_ERR_INPUT, "%s: missing key '%s' in [%s]", path, keys[k].key,
                             keys[k].section);
    if (!m.name[0]) kvr_file_stem(path, m.name, sizeof m.name);
    if (!m.inter_Bps) m.inter_Bps = m.intra_Bps;
    if (!m.n_gpus) m.n_gpus = m.n_nodes * m.gpus_per_node;
    if (m.n_nodes * m.gpus_per_node > KVR_MAX_GPUS)
        return kvr_error(KVR_ERR_INPUT, "%s: %d nodes x %d GPUs exceeds %d", path, m.n_nodes,
                         m.gpus_per_node, KVR_MAX_GPUS);
    if ((st = apply_deferred(&mi, path))) return st;
    if ((st = kvr_machine_validate(&m))) return kvr_error_prefix(st, "%s: ", path);
    *out = m;
    return KVR_OK;
}

/* The writer beside its reader: what kvr_machine_load_ini reads back to the same machine
 * (the GPU's cost parameters and the topology; per-link overrides and noise are not written). */
void kvr_machine_write_ini(FILE *f, const struct kvr_machine *h)
{
    fprintf(f,
            "[machine]\nname = %s\n\n[gpu]\nname = %s\npeak = %.6gTFLOPS\nmem_bw = %.6gTB/s\n"
            "mem = %.0f\nmem_reserve = %.0f\nlaunch = %.6gus\n",
            h->name, h->gpu.name, h->gpu.peak_flops / 1e12, h->gpu.mem_Bps / 1e12, h->gpu.mem_bytes,
            h->gpu.mem_reserve_bytes, h->gpu.launch_s * 1e6);
    for (int k = 0; k < KVR_N_CLASSES; k++)
        fprintf(f, "eff.%s = %.9f\nhalf_tokens.%s = %.6f\nmem_eff.%s = %.9f\n", kvr_class_name(k),
                h->gpu.compute_eff[k], kvr_class_name(k), h->gpu.half_tokens[k], kvr_class_name(k),
                h->gpu.mem_eff[k]);
    for (int op = 0; op < KVR_N_OPS; op++)
        if (h->gpu.op_scale[op] > 0)
            fprintf(f, "op_scale.%s = %.6f\n", kvr_op_name((enum kvr_op)op), h->gpu.op_scale[op]);
    fprintf(f,
            "attn_hd_exp = %.6f\nattn_keys_exp = %.6f\n\n[topology]\nnodes = %d\ngpus_per_node = "
            "%d\nintra_bw = "
            "%.6gGB/s\nintra_lat = "
            "%.6gus\ninter_bw = %.6gGB/s\ninter_lat = %.6gus\n",
            h->gpu.attn_hd_exp, h->gpu.attn_keys_exp, h->n_nodes, h->gpus_per_node,
            h->intra_Bps / 1e9, h->intra_lat_s * 1e6, h->inter_Bps / 1e9, h->inter_lat_s * 1e6);
    if (h->overlap_Bps > 0) fprintf(f, "overlap_bw = %.6gGB/s\n", h->overlap_Bps / 1e9);
}
