/* The plan search over mappings and fewer GPUs (see kvr_search_plan.h). */
#include "kvr_search_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_layout.h"
#include "kvr_lookup_int.h"

/* Contiguous per node, nodes in order `nodes_desc`, GPUs inside a node in order `gpus_desc`. */
static void contiguous(const struct kvr_machine *h, bool nodes_desc, bool gpus_desc, int *map)
{
    int gpn = h->gpus_per_node, nn = h->n_nodes;
    for (int k = 0; k < nn * gpn; k++) {
        int node = k / gpn, gpu = k % gpn;
        map[k] = (nodes_desc ? nn - 1 - node : node) * gpn + (gpus_desc ? gpn - 1 - gpu : gpu);
    }
}

/* Two mappings are the same candidate when every link the chain sends on looks the same: the
 * hops i -> i + 1 (whole, streamed), or every i -> j, i < j, with the direct hand-off (each rank
 * sends its chunk to every later one: a slow or one-way link between non-adjacent GPUs matters
 * there, and the reversed orders avoid a slow forward direction). */
static bool same_link(const struct kvr_machine *h, int a0, int a1, int b0, int b1)
{
    return h->link_Bps[a0][a1] == h->link_Bps[b0][b1] &&
           h->link_lat_s[a0][a1] == h->link_lat_s[b0][b1] &&
           (h->noise.all_links || h->noise.on[a0][a1] == h->noise.on[b0][b1]);
}

static bool same_hops(const struct kvr_machine *h, int p, bool all_pairs, const int *a,
                      const int *b)
{
    for (int i = 0; i + 1 < p; i++)
        for (int j = i + 1; j < (all_pairs ? p : i + 2); j++)
            if (!same_link(h, a[i], a[j], b[i], b[j])) return false;
    return true;
}

/* The window of p chain positions starting at `off` of the full order `full`, first; the
 * unused GPUs after it. */
static void window(const int *full, int total, int p, int off, int *map)
{
    int k = 0;
    for (int i = off; i < off + p; i++) map[k++] = full[i];
    for (int i = 0; i < total; i++)
        if (i < off || i >= off + p) map[k++] = full[i];
}

/* The candidates, distinct; returns how many (at most KVR_MAX_MAPPINGS). With p below the
 * topology every window of p consecutive positions on the fewest nodes is one: it sets where
 * the chain crosses between nodes (an early hop carries less of the prefix's KV). */
static int candidates(const struct kvr_machine *h, int p, bool all_pairs, int (*maps)[KVR_MAX_GPUS])
{
    int total = h->n_nodes * h->gpus_per_node, n = 0;
    int full[KVR_MAX_GPUS];
    for (int k = 0; k < 4; k++) {
        contiguous(h, k & 2, k & 1, full);
        for (int off = 0; off + p <= total && n < KVR_MAX_MAPPINGS; off++) {
            if (!kvr_map_window_ok(h, p, off)) continue;
            window(full, total, p, off, maps[n]);
            bool dup = false;
            for (int j = 0; j < n && !dup; j++) dup = same_hops(h, p, all_pairs, maps[j], maps[n]);
            if (!dup) n++;
        }
    }
    return n;
}

static enum kvr_status search_mappings(struct kvr_objective *obj, uint64_t ctx,
                                       const struct kvr_search_opts *o,
                                       const struct kvr_machine *base, struct kvr_plan_search *out)
{
    int p = kvr_objective_p(obj), best = -1;
    int(*maps)[KVR_MAX_GPUS] = malloc(KVR_MAX_MAPPINGS * sizeof *maps);
    if (!maps) return kvr_error(KVR_ERR_NOMEM, "out of memory for the mappings");
    bool direct = kvr_objective_kv_forward(obj) == KVR_FWD_DIRECT;
    int n = candidates(base, p, direct, maps), total = base->n_nodes * base->gpus_per_node;
    enum kvr_status st = KVR_OK, last = KVR_OK;
    out->best.ttft_s = INFINITY;
    for (int k = 0; k < n; k++) {
        struct kvr_search_result r;
        if ((st = kvr_objective_set_mapping(obj, maps[k]))) break;
        out->n_searches++;
        if ((last = kvr_search_hier(obj, ctx, o, &r))) continue;
        if (r.ttft_s < out->best.ttft_s) out->best = r, best = k;
    }
    out->n_mappings = n;
    if (!st && best >= 0) memcpy(out->map, maps[best], (size_t)total * sizeof *out->map);
    free(maps);
    if (st) return st;
    if (best < 0) return last;
    return kvr_objective_set_mapping(obj, out->map);
}

/* hier on p' GPUs: the chain's last p' positions of the best mapping, then the others. */
static enum kvr_status search_fewer_one(struct kvr_objective *obj, uint64_t ctx, int q,
                                        const struct kvr_search_opts *o, int total,
                                        struct kvr_plan_search *out)
{
    int p = kvr_objective_p(obj), map[KVR_MAX_GPUS], k = 0;
    for (int i = p - q; i < p; i++) map[k++] = out->map[i];
    for (int i = 0; i < p - q; i++) map[k++] = out->map[i];
    for (int i = p; i < total; i++) map[k++] = out->map[i];
    struct kvr_objective *fo = NULL;
    struct kvr_search_result r;
    enum kvr_status st = kvr_objective_open_fewer(obj, q, &fo);
    if (!st) st = kvr_objective_set_mapping(fo, map);
    if (!st) st = kvr_search_hier(fo, ctx, o, &r);
    if (fo) out->fewer_evals += kvr_objective_evals(fo);
    kvr_objective_free(fo);
    out->n_searches++;
    if (st == KVR_ERR_NOFIT) return KVR_OK; /* fewer GPUs may not hold it */
    if (st) return st;
    if (r.ttft_s <= out->best.ttft_s * (1 + KVR_FEWER_TOLERANCE) &&
        (out->fewer_p == 0 || r.ttft_s < out->fewer.ttft_s)) {
        out->fewer_p = q, out->fewer = r;
        memcpy(out->fewer_map, map, (size_t)total * sizeof *map);
    }
    return KVR_OK;
}

enum kvr_status kvr_search_plan(struct kvr_objective *obj, uint64_t ctx,
                                const struct kvr_search_opts *o, struct kvr_plan_search *out)
{
    memset(out, 0, sizeof *out);
    const struct kvr_machine *base = kvr_objective_base_machine(obj);
    int p = kvr_objective_p(obj), total = base->n_nodes * base->gpus_per_node;
    enum kvr_status st = search_mappings(obj, ctx, o, base, out);
    if (st) return st;
    int u = 0;
    for (int i = 0; i < p; i++) u += out->best.tokens[i] > out->best.granularity;
    /* u and u + 1 (the ranks doing the work), and p / 2, p / 4, ..., 1: when every rank holds
     * one grain (ctx near p times the granularity) u says nothing, and the best p' can be far
     * below p / 2 (Llama-7B, 4096 tokens on 64 GPUs of 8 x 8: 32 GPUs 0.0383 s, 16 0.0365 s) */
    int qs[2 + 8] = {u, u + 1}, n_q = 2;
    for (int q = p / 2; q >= 1 && n_q < 10; q /= 2) qs[n_q++] = q;
    for (int k = 0; k < n_q && !st; k++) {
        bool dup = qs[k] < 1 || qs[k] >= p;
        for (int j = 0; j < k; j++) dup |= qs[j] == qs[k];
        if (!dup) st = search_fewer_one(obj, ctx, qs[k], o, total, out);
    }
    return st;
}

void kvr_mapping_format(const int *map, int n, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? ";" : "", map[i]);
}

enum kvr_status kvr_mapping_parse(const char *text, int n, int n_total, int *map)
{
    const char *s = text;
    bool seen[KVR_MAX_GPUS] = {false};
    for (int i = 0; i < n; i++) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v >= n_total || seen[v] || (*end != ';' && i + 1 < n) ||
            (i + 1 == n && *end))
            return kvr_error(KVR_ERR_INPUT, "mapping '%s' is not %d distinct GPUs of 0..%d", text,
                             n, n_total - 1);
        seen[v] = true;
        map[i] = (int)v;
        s = end + 1;
    }
    return KVR_OK;
}

void kvr_plan_row_set_search(struct kvr_plan_row *r, const struct kvr_plan_search *ps)
{
    int p = r->p;
    memcpy(r->tokens, ps->best.tokens, (size_t)p * sizeof *r->tokens);
    r->granularity_tokens = ps->best.granularity;
    r->predicted_ttft_s = ps->best.ttft_s;
    r->evaluations = ps->best.n_evals;
    bool identity = true;
    for (int i = 0; i < p; i++) identity &= ps->map[i] == i;
    r->n_mapping = identity ? 0 : p;
    memcpy(r->mapping, ps->map, (size_t)p * sizeof *r->mapping);
    r->fewer_p = ps->fewer_p;
    if (ps->fewer_p < 1) return;
    memcpy(r->fewer_tokens, ps->fewer.tokens, (size_t)ps->fewer_p * sizeof *r->fewer_tokens);
    memcpy(r->fewer_mapping, ps->fewer_map, (size_t)ps->fewer_p * sizeof *r->fewer_mapping);
    r->fewer_predicted_ttft_s = ps->fewer.ttft_s;
}

uint64_t kvr_plan_row_grain(const struct kvr_plan_row *key, uint64_t g)
{
    if (strcmp(key->scheme, "kvr")) return 0;
    if (!strcmp(key->method, "even") || !strcmp(key->method, "nelder-mead")) return 1;
    return kvr_lookup_grain(kvr_plan_row_chunks(key), key->ctx_tokens, g);
}

enum kvr_status kvr_plan_row_check_grain(const struct kvr_plan_row *row, uint64_t stored_g,
                                         uint64_t g, const char *where)
{
    uint64_t want = kvr_plan_row_grain(row, g);
    if (!want || want == stored_g) return KVR_OK;
    return kvr_error(KVR_ERR_INPUT,
                     "%s %llu: the stored plan of %s on %s, p = %d, tp = %d, ctx = %llu (%s) was "
                     "searched on a grid of %llu tokens, not %llu (kvr search --force replaces it; "
                     "or ask for granularity %llu)",
                     where, (unsigned long long)g, row->model, row->machine, row->p,
                     row->tp > 1 ? row->tp : 1, (unsigned long long)row->ctx_tokens, row->method,
                     (unsigned long long)stored_g, (unsigned long long)want,
                     (unsigned long long)stored_g);
}
