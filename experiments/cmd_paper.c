/* kvr paper: the KV-Runahead paper's claims (Cho et al., ICML 2024) against what kvrun's
 * simulator computes for them. Reads the points of experiments/sweeps/paper.ini from the
 * database (kvr sweep writes them; ./setup.sh main runs every sweep file): Llama-7B and
 * Falcon-7B on 8 A100s at 300 and 10 GB/s, 4k-16k, KVR-S and KVR-P against three TSP
 * baselines, on four A100 profiles (the presets; the profile from published measurements with
 * and without its overlap cap; and a hypothesis, the uncapped one with eager attention).
 * data/README.md says where each paper number comes from. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_datadir.h"
#include "kvr_cli.h"
#include "kvr_file.h"
#include "kvr_json.h"
#include "kvr_opt.h"
#include "kvr_store.h"

struct paper_args {
    const char *db;
    bool json, quiet, help;
};
static const struct kvr_opt paper_opts[] = {
    KVR_OPT("db", 'd', "FILE", offsetof(struct paper_args, db), "database the paper sweep ran into",
            .def = "out/kvrun.db", .file = KVR_OPT_FILE_IN),
    KVR_OPT_COMMON_END(struct paper_args)};
static const struct kvr_opt_spec paper_spec = {
    .usage =
        "usage: kvr paper [--db FILE] [--json]\n"
        "\n"
        "The paper's claims against the simulator: KVR-S over each TSP baseline (TSP as kvrun\n"
        "models it, TSP-causal, and TSP-paper, K/V expanded to every query head) on 8 A100s at\n"
        "300 and 10 GB/s, at 16k and at its best context of 4k-16k, on four A100 profiles (the\n"
        "presets; published efficiencies without and with an overlap cap; the hypothesis of "
        "eager\nattention), and KVR-P's gap to KVR-S. Reads the points of "
        "experiments/sweeps/paper.ini.\n"
        "--json: per claim, baseline and profile the speedups, the baseline's and KVR-S's TTFT "
        "at\n16k and the extra baseline time the paper's number would need.\n",
    .opts = paper_opts};

#define N_PROFILES 4
#define N_BASES    3
#define WHY        2 /* the profile the reasons speak of: published efficiencies and cap */
#define MAX_POINTS 512

/* The profiles, as the sweep names them (a file's stem), and what sets them apart. */
static const char *const profiles[N_PROFILES] = {"a100-nvlink", "a100-published-nocap",
                                                 "a100-published", "a100-eager"};
static const char *const profile_words[N_PROFILES] = {
    "the preset (default efficiencies, perfect overlap)",
    "published efficiencies; its NVLink row: 240 GB/s point to point; perfect overlap",
    "published efficiencies, 57 GB/s overlap cap",
    "hypothesis: profile 2 with eager attention, 12 bytes moved per materialized score"};
static const char *const bases[N_BASES] = {"TSP", "TSP-causal", "TSP-paper"};

/* The paper's headline numbers: KVR-S over TSP on 8 A100s (data/README.md). */
static const struct claim {
    const char *model, *label;
    bool slow; /* 10 GB/s */
    double paper;
} claims[] = {
    {"llama-7b", "Llama-7B, 300 GB/s", false, 1.4},
    {"llama-7b", "Llama-7B, 10 GB/s", true, 1.4},
    {"falcon-7b", "Falcon-7B, 300 GB/s", false, 1.6},
    {"falcon-7b", "Falcon-7B, 10 GB/s", true, 1.6},
};
#define N_CLAIMS ((int)(sizeof claims / sizeof claims[0]))

struct point {
    char model[64], profile[64], series[32];
    bool slow;
    uint64_t ctx;
    double ttft_s, comm_s;
};

struct points {
    struct point v[MAX_POINTS];
    int n;
};

static enum kvr_status on_point(void *arg, int n, const char *const *v)
{
    struct points *ps = arg;
    if (n < 7 || ps->n >= MAX_POINTS) return kvr_error(KVR_ERR_INPUT, "paper: too many points");
    struct point *p = &ps->v[ps->n++];
    snprintf(p->model, sizeof p->model, "%s", v[0]);
    kvr_file_stem(v[1], p->profile, sizeof p->profile);
    p->slow = *v[2] && atof(v[2]) < 50e9;
    p->ctx = strtoull(v[3], NULL, 10);
    snprintf(p->series, sizeof p->series, "%s", v[4]);
    p->ttft_s = atof(v[5]);
    p->comm_s = atof(v[6]);
    return KVR_OK;
}

static const struct point *find(const struct points *ps, const char *model, const char *profile,
                                bool slow, uint64_t ctx, const char *series)
{
    for (int i = 0; i < ps->n; i++) {
        const struct point *p = &ps->v[i];
        if (!strcmp(p->model, model) && !strcmp(p->profile, profile) && p->slow == slow &&
            p->ctx == ctx && !strcmp(p->series, series))
            return p;
    }
    return NULL;
}

/* One cell: KVR-S over a baseline at 16k and at its best context; the baseline's comm share. */
struct cell {
    double at16k, best, comm_share;
    double base_s, kvrs_s; /* at 16k */
    uint64_t best_ctx;
    bool have;
};

static struct cell speedup(const struct points *ps, const struct claim *c, int prof, int base)
{
    struct cell x = {0};
    for (uint64_t ctx = 4096; ctx <= 16384; ctx += 4096) {
        const struct point *k = find(ps, c->model, profiles[prof], c->slow, ctx, "KVR-S");
        const struct point *t = find(ps, c->model, profiles[prof], c->slow, ctx, bases[base]);
        if (!k || !t) continue;
        double s = t->ttft_s / k->ttft_s;
        if (!x.have || s > x.best) x.best = s, x.best_ctx = ctx;
        if (ctx == 16384)
            x.at16k = s, x.comm_share = t->comm_s / t->ttft_s, x.base_s = t->ttft_s,
            x.kvrs_s = k->ttft_s;
        x.have = true;
    }
    return x;
}

/* KVR-P's mean gap to KVR-S (%) over the claims' points of a profile. */
static double kvrp_gap_pct(const struct points *ps, int prof, int *count)
{
    double sum = 0;
    *count = 0;
    for (int i = 0; i < ps->n; i++) {
        const struct point *s = &ps->v[i];
        if (strcmp(s->series, "KVR-S") || strcmp(s->profile, profiles[prof])) continue;
        const struct point *p = find(ps, s->model, s->profile, s->slow, s->ctx, "KVR-P");
        if (p) sum += 100 * (p->ttft_s / s->ttft_s - 1), ++*count;
    }
    return *count ? sum / *count : NAN;
}

/* Why a cell differs from the paper's number, in one line: reached, or how much more time the
 * baseline would need at 16k for the paper's speedup, and how much of it its all-gather is. */
static void reason(const struct claim *c, int base, const struct cell *x, char *buf, size_t cap)
{
    double need_s = c->paper * x->kvrs_s - x->base_s;
    if (x->best >= 1 + 2 * (c->paper - 1)) /* the gain over 1 more than twice the claimed gain */
        snprintf(buf, cap,
                 "far above (%.2fx at %lluk, over twice the claimed gain): the paper would "
                 "report it if its baseline had been this slow here",
                 x->best, (unsigned long long)(x->best_ctx / 1024));
    else if (x->best >= c->paper)
        snprintf(buf, cap, "reached (%.2fx at %lluk)", x->best,
                 (unsigned long long)(x->best_ctx / 1024));
    else
        snprintf(buf, cap,
                 "%.2fx needs +%.0f ms in %s (+%.0f%% of its %.0f ms at 16k); its %sall-gather is "
                 "%.0f%% of it, the rest is compute, which KVR-S only rebalances",
                 c->paper, 1e3 * need_s, bases[base], 100 * need_s / x->base_s, 1e3 * x->base_s,
                 base == 2 ? "expanded " : "", 100 * x->comm_share);
}

static void print_row(const char *a, const char *b, const char *c, char cells[][32],
                      const char *why)
{
    printf("%-20s %-6s %-11s", a, b, c);
    for (int p = 0; p < N_PROFILES; p++) printf(" %-16s", cells[p]);
    printf("  %s\n", why);
}

static void print_table(const struct points *ps)
{
    printf("The KV-Runahead paper's claims against kvrun's simulator (8 A100s; speedup = TTFT of\n"
           "the baseline / TTFT of KVR-S, at 16k and [best of 4k-16k]; why: for profile %d)\n",
           WHY + 1);
    char cells[N_PROFILES][32], why[256];
    for (int p = 0; p < N_PROFILES; p++) {
        printf("  profile %d: %s: %s\n", p + 1, profiles[p], profile_words[p]);
        snprintf(cells[p], sizeof cells[p], "profile %d", p + 1);
    }
    printf("\n");
    print_row("claim", "paper", "baseline", cells, "why");
    for (int c = 0; c < N_CLAIMS; c++)
        for (int b = 0; b < N_BASES; b++) {
            why[0] = 0;
            for (int p = 0; p < N_PROFILES; p++) {
                struct cell x = speedup(ps, &claims[c], p, b);
                snprintf(cells[p], sizeof cells[p], x.have ? "%.2fx [%.2fx]" : "-", x.at16k,
                         x.best);
                if (x.have && p == WHY) reason(&claims[c], b, &x, why, sizeof why);
            }
            print_row(b ? "" : claims[c].label,
                      b ? "" : (claims[c].paper > 1.5 ? ">1.6x" : ">1.4x"), bases[b], cells, why);
        }
    for (int p = 0; p < N_PROFILES; p++) {
        int n;
        double g = kvrp_gap_pct(ps, p, &n);
        snprintf(cells[p], sizeof cells[p], n ? "%+.2f%%" : "-", g);
    }
    printf("\n");
    print_row("KVR-P vs KVR-S", "~1.3%*", "mean gap", cells,
              "(4 contexts; fig6 has the finer leave-one-out)");
    printf("* not re-checked against the paper's text (data/README.md, \"The paper's "
           "numbers\"): a\n  reading of its KVR-P/KVR-S comparison; the 1.4x and 1.6x are its "
           "abstract's words.\n");
    printf(
        "\nProfile 4 is a hypothesis, not a measurement: with attention whose time goes with the\n"
        "scores it materializes (eager PyTorch), the masked half that TSP computes and KVR-S "
        "skips\n"
        "dominates, Falcon-7B (71 heads of 64) has 2.2x Llama-7B's scores per token, and the gain\n"
        "hardly depends on the links: the paper's pattern (data/README.md, \"The paper's "
        "numbers\").\n");
}

static void print_json(const struct points *ps)
{
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
    kvr_json_key(&j, "profiles");
    kvr_json_array_begin(&j);
    for (int p = 0; p < N_PROFILES; p++) kvr_json_str(&j, profiles[p]);
    kvr_json_array_end(&j);
    kvr_json_key(&j, "claims");
    kvr_json_array_begin(&j);
    for (int c = 0; c < N_CLAIMS; c++)
        for (int b = 0; b < N_BASES; b++)
            for (int p = 0; p < N_PROFILES; p++) {
                struct cell x = speedup(ps, &claims[c], p, b);
                char why[256] = "";
                if (x.have) reason(&claims[c], b, &x, why, sizeof why);
                kvr_json_object_begin(&j);
                kvr_json_kv_str(&j, "claim", claims[c].label);
                kvr_json_kv_dbl(&j, "paper_speedup", claims[c].paper);
                kvr_json_kv_str(&j, "baseline", bases[b]);
                kvr_json_kv_str(&j, "profile", profiles[p]);
                kvr_json_kv_dbl(&j, "speedup_16k", x.have ? x.at16k : NAN);
                kvr_json_kv_dbl(&j, "speedup_best", x.have ? x.best : NAN);
                kvr_json_kv_u64(&j, "best_ctx_tokens", x.best_ctx);
                kvr_json_kv_dbl(&j, "baseline_comm_share_16k", x.have ? x.comm_share : NAN);
                kvr_json_kv_dbl(&j, "baseline_ttft_16k_s", x.have ? x.base_s : NAN);
                kvr_json_kv_dbl(&j, "kvrs_ttft_16k_s", x.have ? x.kvrs_s : NAN);
                kvr_json_kv_dbl(&j, "baseline_extra_s_for_claim",
                                x.have ? fmax(0, claims[c].paper * x.kvrs_s - x.base_s) : NAN);
                kvr_json_kv_bool(&j, "reached", x.have && x.best >= claims[c].paper);
                kvr_json_kv_str(&j, "why", why);
                kvr_json_object_end(&j);
            }
    kvr_json_array_end(&j);
    kvr_json_key(&j, "kvrp_gap_pct");
    kvr_json_object_begin(&j);
    for (int p = 0; p < N_PROFILES; p++) {
        int n;
        kvr_json_kv_dbl(&j, profiles[p], kvrp_gap_pct(ps, p, &n));
    }
    kvr_json_object_end(&j);
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
}

static const char points_sql[] =
    "SELECT model, machine, link_Bps, ctx_tokens, series, ttft_s, comm_s FROM sweep_done"
    " WHERE figure = ?1 AND p = 8 ORDER BY model, machine, link_Bps, ctx_tokens, series";

enum kvr_status kvr_cmd_paper(int argc, char **argv)
{
    struct paper_args a = {0};
    enum kvr_status st;
    if (kvr_opt_start(&paper_spec, argc, argv, &a, NULL, &st)) return st;
    const char *db = a.db;
    struct kvr_store *store = NULL;
    st = kvr_store_open(db, KVR_STORE_READ, &store);
    if (st) return st;
    static struct points ps;
    ps.n = 0;
    const char *params[] = {"paper"};
    st = kvr_store_query_rows(store, points_sql, params, 1, on_point, &ps);
    kvr_store_close(store);
    if (!st && ps.n == 0) {
        char sweep[4200]; /* the sweep file where this program's data directory has it */
        if (kvr_datadir_path("experiments/sweeps/paper.ini", sweep, sizeof sweep))
            snprintf(sweep, sizeof sweep, "PREFIX/share/kvrun/experiments/sweeps/paper.ini");
        st = kvr_error(KVR_ERR_INPUT,
                       "%s: no points of the paper sweep: run kvr sweep %s --db %s first", db,
                       sweep, db);
    }
    if (st) return st;
    a.json ? print_json(&ps) : print_table(&ps);
    return KVR_OK;
}
