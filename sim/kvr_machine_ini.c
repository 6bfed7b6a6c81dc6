/* Machine profiles as INI files (data/machines/NAME.ini). Sections: [machine] name;
 * [gpu] name, peak, peak_fp32 (0 if absent: fp32 models refused), mem_bw, mem, mem_reserve (default
 * 2GiB), launch, eff.CLASS, half_tokens.CLASS, mem_eff.CLASS, attn_hd_exp, attn_keys_exp,
 * op_scale.OP; [topology] nodes, gpus_per_node, gpus, intra_bw, intra_lat, inter_bw, inter_lat,
 * overlap_bw; [links] I-J = RATE[,LATENCY] (or I>J, directed); [noise] share, mode, links, seed.
 * Every error names file:line. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
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
    {"gpu", "peak_fp32", K_FLOPS, M(gpu.peak_fp32_flops), 0},
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
    bool noise_share;   /* [noise] share given */
    int noise_key_line; /* the first other [noise] key's line (0: none) */
};

/* The unit parser of each kind of number. */
static enum kvr_status (*const parse_number[])(const char *, double *) = {
    [K_FLOPS] = kvr_parse_flops_rate,
    [K_RATE] = kvr_parse_rate_Bps,
    [K_BYTES] = kvr_parse_bytes,
    [K_DURATION] = kvr_parse_duration_s,
};

static enum kvr_status set_value(void *dst, enum kind kind, const char *v, const void *zero_ok)
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
    if (!st && !(x > 0) && kind != K_DURATION && dst != zero_ok)
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
                /* 0 is the cost model's "not set" (x 1): taken, it gave the counted time */
                if (kvr_parse_decimal(key, v, 0, 100, &g->op_scale[op]) || !g->op_scale[op])
                    return kvr_error(KVR_ERR_INPUT, "%s = '%s' must be a number in (0, 100]", key,
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
    if (strcmp(key, "share") && !mi->noise_key_line) mi->noise_key_line = line;
    mi->noise_share |= !strcmp(key, "share");
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
        if ((size_t)snprintf(mi->noise_links, sizeof mi->noise_links, "%s", v) >=
            sizeof mi->noise_links)
            return kvr_error(KVR_ERR_INPUT, "links = '%.40s...' is too long", v);
        mi->noise_line = line;
    } else if (!strcmp(key, "seed")) {
        if (kvr_parse_u64(v, KVR_NOISE_SEED_MAX, &nz->seed))
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
        if ((size_t)snprintf(mi->links[mi->n_links], sizeof mi->links[0], "%s=%s", key, v) >=
            sizeof mi->links[0])
            return kvr_error(KVR_ERR_INPUT, "link '%s = %s' is too long", key, v);
        mi->link_lines[mi->n_links++] = line;
        return KVR_OK;
    }
    if (!strcmp(section, "noise")) return on_noise(mi, key, v, line);
    for (int k = 0; k < N_KEYS; k++) {
        if (strcmp(section, keys[k].section) || strcmp(key, keys[k].key)) continue;
        if (mi->set & (1u << k)) return kvr_error(KVR_ERR_INPUT, "key '%s' repeats", key);
        mi->set |= 1u << k;
        /* mem_reserve may be 0 (kvr_gpu_validate's range), as the writer writes it */
        enum kvr_status st = set_value((char *)mi->m + keys[k].offset, keys[k].kind, v,
                                       &mi->m->gpu.mem_reserve_bytes);
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
    m->gpu.peak_fp32_flops = 0; /* a file's GPU is not the preset's: fp32 only if it says */
}

/* One [links] entry per link and direction ("0-1" and "1-0" are one link): a second one would
 * silently replace the first, as a second --link would. */
static enum kvr_status links_once(const struct machine_ini *mi, const char *path)
{
    static _Thread_local int at[KVR_MAX_GPUS][KVR_MAX_GPUS]; /* the line setting it, or 0 */
    memset(at, 0, sizeof at);
    for (int k = 0; k < mi->n_links; k++) {
        int i, j, line = mi->link_lines[k];
        if (kvr_machine_link_ends(mi->m, mi->links[k], &i, &j))
            return kvr_error_prefix(KVR_ERR_INPUT, "%s:%d: ", path, line);
        const char *eq = strchr(mi->links[k], '=');
        bool directed = memchr(mi->links[k], '>', (size_t)(eq - mi->links[k])) != NULL;
        int before = at[i][j] ? at[i][j] : directed ? 0 : at[j][i];
        if (before)
            return kvr_error(KVR_ERR_INPUT, "%s:%d: link %d-%d is given twice (line %d)", path,
                             line, i, j, before);
        at[i][j] = line;
        if (!directed) at[j][i] = line;
    }
    return KVR_OK;
}

/* Links and noise links name GPUs, so they wait for the topology. */
static enum kvr_status apply_deferred(struct machine_ini *mi, const char *path)
{
    struct kvr_machine *m = mi->m;
    kvr_machine_build_links(m);
    for (int k = 0; k < mi->n_links; k++)
        if (kvr_machine_set_link(m, mi->links[k]))
            return kvr_error_prefix(KVR_ERR_INPUT, "%s:%d: ", path, mi->link_lines[k]);
    enum kvr_status st = links_once(mi, path);
    if (st) return st;
    if (mi->noise_key_line && !mi->noise_share) /* share 0: no noise, whatever the rest says */
        return kvr_error(KVR_ERR_INPUT,
                         "%s:%d: [noise] has no share: its mode, links and seed would change "
                         "nothing",
                         path, mi->noise_key_line);
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

/* The writer beside its reader: every number in its shortest decimal that reads back as the
 * same double (no exponent: the unit parsers take digits[.digits]), in the unit whose text is
 * shortest among those that read back exactly; the base unit (FLOPS, B/s, s, bytes) always
 * does (the mantissa times 1). */
static void put_decimal(char *buf, size_t cap, double v)
{
    char e[40], digits[24];
    int prec = 1, nd = 0;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    snprintf(e, sizeof e, "%.*e", prec - 1, v);
    const char *q = e;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    int point = atoi(q + 1) + 1; /* v = 0.digits x 10^point */
    size_t n = 0;
    if (point <= 0) {
        buf[n++] = '0', buf[n++] = '.';
        for (int k = point; k < 0 && n + 1 < cap; k++) buf[n++] = '0';
    }
    for (int k = 0; (k < nd || k < point) && n + 2 < cap; k++) {
        if (k == point && point > 0) buf[n++] = '.';
        buf[n++] = k < nd ? digits[k] : '0';
    }
    buf[n] = 0;
}

struct unit {
    const char *text;
    double scale;
};

/* v in the unit of units (the last the base unit, scale 1) whose text kvr's parser reads back
 * as v exactly, the shortest such (the base unit always is). */
static void format_number(char *text, size_t cap, double v, const struct unit *units,
                          enum kvr_status (*parse)(const char *, double *))
{
    char num[400], best[420] = "";
    for (const struct unit *u = units;; u++) {
        put_decimal(num, sizeof num, v / u->scale);
        snprintf(text, cap, "%s%s", num, u->text);
        double back;
        bool exact = u->scale == 1 || (!parse(text, &back) && back == v);
        if (exact && (!best[0] || strlen(text) < strlen(best)))
            snprintf(best, sizeof best, "%s", text);
        if (u->scale == 1) break;
    }
    snprintf(text, cap, "%s", best);
}

static void put_number(FILE *f, const char *key, double v, const struct unit *units,
                       enum kvr_status (*parse)(const char *, double *))
{
    char text[420];
    format_number(text, sizeof text, v, units, parse);
    fprintf(f, "%s = %s\n", key, text);
}

static const struct unit flops_units[] = {{"TFLOPS", 1e12}, {"FLOPS", 1}};
static const struct unit bw_units[] = {{"GB/s", 1e9}, {"TB/s", 1e12}, {"B/s", 1}};
static const struct unit time_units[] = {{"us", 1e-6}, {"s", 1}};
static const struct unit byte_units[] = {{"GiB", 0x1p30}, {"", 1}};
static const struct unit plain[] = {{"", 1}};

static enum kvr_status parse_plain(const char *text, double *out)
{
    *out = strtod(text, NULL);
    return KVR_OK;
}

static void put_gpu(FILE *f, const struct kvr_gpu *g)
{
    char key[64];
    fprintf(f, "\n[gpu]\nname = %s\n", g->name);
    put_number(f, "peak", g->peak_flops, flops_units, kvr_parse_flops_rate);
    if (g->peak_fp32_flops > 0)
        put_number(f, "peak_fp32", g->peak_fp32_flops, flops_units, kvr_parse_flops_rate);
    put_number(f, "mem_bw", g->mem_Bps, bw_units + 1, kvr_parse_rate_Bps); /* TB/s, B/s */
    put_number(f, "mem", g->mem_bytes, byte_units, kvr_parse_bytes);
    put_number(f, "mem_reserve", g->mem_reserve_bytes, byte_units, kvr_parse_bytes);
    put_number(f, "launch", g->launch_s, time_units, kvr_parse_duration_s);
    for (int k = 0; k < KVR_N_CLASSES; k++) {
        const char *c = kvr_class_name(k);
        snprintf(key, sizeof key, "eff.%s", c);
        put_number(f, key, g->compute_eff[k], plain, parse_plain);
        snprintf(key, sizeof key, "half_tokens.%s", c);
        put_number(f, key, g->half_tokens[k], plain, parse_plain);
        snprintf(key, sizeof key, "mem_eff.%s", c);
        put_number(f, key, g->mem_eff[k], plain, parse_plain);
    }
    for (int op = 0; op < KVR_N_OPS; op++)
        if (g->op_scale[op] > 0) {
            snprintf(key, sizeof key, "op_scale.%s", kvr_op_name((enum kvr_op)op));
            put_number(f, key, g->op_scale[op], plain, parse_plain);
        }
    put_number(f, "attn_hd_exp", g->attn_hd_exp, plain, parse_plain);
    put_number(f, "attn_keys_exp", g->attn_keys_exp, plain, parse_plain);
}

/* A link's rate and latency as [links] writes them: RATE,LATENCY. */
static void link_text(char *buf, size_t cap, double bw, double lat)
{
    char r[420], l[420];
    format_number(r, sizeof r, bw, bw_units, kvr_parse_rate_Bps);
    format_number(l, sizeof l, lat, time_units, kvr_parse_duration_s);
    snprintf(buf, cap, "%s,%s", r, l);
}

/* The links the topology alone would not give (kvr_machine_build_links: same node intra,
 * else inter), both ways at once ("I-J") where they agree. */
static void put_links(FILE *f, const struct kvr_machine *h)
{
    int size = h->n_nodes * h->gpus_per_node, n = 0;
    char text[860];
    for (int i = 0; i < size; i++)
        for (int j = 0; j < size; j++) {
            bool same = i / h->gpus_per_node == j / h->gpus_per_node;
            double bw = same ? h->intra_Bps : h->inter_Bps,
                   lat = same ? h->intra_lat_s : h->inter_lat_s;
            double b = h->link_Bps[i][j], t = h->link_lat_s[i][j];
            if (i == j || (b == bw && t == lat)) continue;
            bool both = b == h->link_Bps[j][i] && t == h->link_lat_s[j][i];
            if (both && j < i) continue; /* written as j-i */
            link_text(text, sizeof text, b, t);
            fprintf(f, "%s%d%c%d = %s\n", n++ ? "" : "\n[links]\n", i, both ? '-' : '>', j, text);
        }
}

static void put_noise(FILE *f, const struct kvr_machine *h)
{
    const struct kvr_noise *nz = &h->noise;
    if (nz->mode == KVR_NOISE_NONE) return;
    char share[400];
    put_decimal(share, sizeof share, nz->share);
    fprintf(f, "\n[noise]\nshare = %s\nmode = %s\nseed = %llu\nlinks = ", share,
            nz->mode == KVR_NOISE_RANDOM ? "random" : "constant", (unsigned long long)nz->seed);
    int size = h->n_nodes * h->gpus_per_node, n = 0;
    if (nz->all_links) fprintf(f, "all");
    for (int i = 0; i < size && !nz->all_links; i++)
        for (int j = 0; j < size; j++) {
            bool both = nz->on[j][i];
            if (i == j || !nz->on[i][j] || (both && j < i)) continue;
            fprintf(f, "%s%d%c%d", n++ ? "," : "", i, both ? '-' : '>', j);
        }
    fprintf(f, "\n");
}

/* What kvr_machine_load_ini reads back to the same machine, field for field (so the same
 * kvr_machine_hash): the GPU's cost parameters, the topology, the per-link overrides and the
 * noise. */
void kvr_machine_write_ini(FILE *f, const struct kvr_machine *h)
{
    fprintf(f, "[machine]\nname = %s\n", h->name);
    put_gpu(f, &h->gpu);
    fprintf(f, "\n[topology]\nnodes = %d\ngpus_per_node = %d\ngpus = %d\n", h->n_nodes,
            h->gpus_per_node, h->n_gpus);
    put_number(f, "intra_bw", h->intra_Bps, bw_units, kvr_parse_rate_Bps);
    put_number(f, "intra_lat", h->intra_lat_s, time_units, kvr_parse_duration_s);
    put_number(f, "inter_bw", h->inter_Bps, bw_units, kvr_parse_rate_Bps);
    put_number(f, "inter_lat", h->inter_lat_s, time_units, kvr_parse_duration_s);
    if (h->overlap_Bps > 0)
        put_number(f, "overlap_bw", h->overlap_Bps, bw_units, kvr_parse_rate_Bps);
    put_links(f, h);
    put_noise(f, h);
}
