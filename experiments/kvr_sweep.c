/* Sweep files: parsing (with file:line errors) and the expansion of their axes. */
#include "kvr_sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_file.h"
#include "kvr_hash.h"
#include "kvr_ini.h"
#include "kvr_layout.h"
#include "kvr_machine_args.h"
#include "kvr_out.h"
#include "kvr_machine_hash.h"
#include "kvr_units.h"

#define MAX_SERIES 64

bool kvr_sweep_series_of(int rank, struct kvr_sweep_series *out)
{
    enum kvr_scheme schemes[MAX_SERIES];
    int sources[MAX_SERIES], n = kvr_plan_series(schemes, sources, MAX_SERIES);
    if (rank < 0 || rank >= n || rank >= MAX_SERIES) return false;
    *out = (struct kvr_sweep_series){schemes[rank], sources[rank], rank};
    return true;
}

/* Splits value at sep into trimmed items; "" items are an error. */
static enum kvr_status split_items(const char *key, const char *value, char sep, char items[][256],
                                   int *n)
{
    *n = 0;
    const char *s = value;
    for (;;) {
        const char *e = strchr(s, sep);
        size_t len = e ? (size_t)(e - s) : strlen(s);
        while (len && (*s == ' ' || *s == '\t')) s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
        if (!len) return kvr_error(KVR_ERR_INPUT, "%s: empty item in '%s'", key, value);
        if (*n == KVR_SWEEP_MAX_AXIS || len >= 256)
            return kvr_error(KVR_ERR_INPUT, "%s: more than %d items or one too long", key,
                             KVR_SWEEP_MAX_AXIS);
        memcpy(items[*n], s, len);
        items[(*n)++][len] = 0;
        for (int i = 0; i + 1 < *n; i++) /* the same point twice (",,": an empty one) */
            if (!strcmp(items[i], items[*n - 1]))
                return kvr_error(KVR_ERR_INPUT, "%s: '%s' is listed twice", key, items[i]);
        if (!e) return KVR_OK;
        s = e + 1;
    }
}

static enum kvr_status set_schemes(struct kvr_sweep_spec *sp, char items[][256], int n)
{
    for (int i = 0; i < n; i++) {
        struct kvr_sweep_series x;
        char name[64];
        int k = 0;
        for (; kvr_sweep_series_of(k, &x); k++) {
            kvr_plan_name(x.scheme, x.source, name, sizeof name);
            if (!strcmp(items[i], name)) break;
        }
        if (!kvr_sweep_series_of(k, &x)) {
            char names[1024];
            kvr_scheme_list_text(KVR_LIST_SERIES, names, sizeof names);
            return kvr_error(KVR_ERR_INPUT, "schemes: unknown scheme '%s' (%s)", items[i], names);
        }
        sp->schemes[i] = x;
    }
    sp->n_schemes = n;
    return KVR_OK;
}

static enum kvr_status set_seeds(struct kvr_sweep_spec *sp, char items[][256], int n)
{
    sp->n_seeds = 0;
    for (int i = 0; i < n; i++) {
        char *dash = strchr(items[i], '-');
        uint64_t a, b;
        if (dash) *dash = 0;
        if (kvr_parse_u64(items[i], KVR_NOISE_SEED_MAX, &a) ||
            (dash && kvr_parse_u64(dash + 1, KVR_NOISE_SEED_MAX, &b)))
            return kvr_error_prefix(KVR_ERR_INPUT, "seeds: ");
        if (!dash) b = a;
        if (b < a)
            return kvr_error(KVR_ERR_INPUT, "seeds: empty range %llu-%llu", (unsigned long long)a,
                             (unsigned long long)b);
        for (uint64_t s = a; s <= b; s++) {
            if (sp->n_seeds == KVR_SWEEP_MAX_AXIS)
                return kvr_error(KVR_ERR_INPUT, "seeds: more than %d", KVR_SWEEP_MAX_AXIS);
            for (int k = 0; k < sp->n_seeds; k++) /* "0-3, 2": its points were run once */
                if (sp->seeds[k] == s)
                    return kvr_error(KVR_ERR_INPUT, "seeds: %llu is listed twice",
                                     (unsigned long long)s);
            sp->seeds[sp->n_seeds++] = s;
        }
    }
    return KVR_OK;
}

static enum kvr_status copy_list(char dst[][256], int *n, char items[][256], int k)
{
    for (int i = 0; i < k; i++) snprintf(dst[i], 256, "%s", items[i]);
    *n = k;
    return KVR_OK;
}

/* A relative file name in a sweep file (a model or machine profile: it holds a '/' or ends in
 * .ini or .json) names a file beside the sweep file, wherever it is run from; presets stay. */
static enum kvr_status beside_sweep(const struct kvr_sweep_spec *sp, char item[256])
{
    bool file = strchr(item, '/') || kvr_file_has_suffix(item, ".ini") ||
                kvr_file_has_suffix(item, ".json");
    const char *slash = strrchr(sp->path, '/');
    if (!file || item[0] == '/' || !slash) return KVR_OK;
    char joined[1400];
    snprintf(joined, sizeof joined, "%.*s/%s", (int)(slash - sp->path), sp->path, item);
    if (strlen(joined) >= 256)
        return kvr_error(KVR_ERR_INPUT, "'%s' beside %s: path longer than 255 characters", item,
                         sp->path);
    snprintf(item, 256, "%s", joined);
    return KVR_OK;
}

static enum kvr_status axis_key(struct kvr_sweep_spec *sp, const char *key, const char *value)
{
    static char items[KVR_SWEEP_MAX_AXIS][256]; /* each item < 256 (split_items) */
    int n;
    bool semi = !strcmp(key, "links") || !strcmp(key, "noise");
    if (!strcmp(key, "ctx") || !strcmp(key, "gpus")) {
        char *packed = malloc(strlen(value) + 1); /* "2, 4, 8" -> "2,4,8" for the list parsers */
        if (!packed) return kvr_error(KVR_ERR_NOMEM, "%s: out of memory", key);
        size_t k = 0;
        for (const char *c = value; *c; c++)
            if (*c != ' ' && *c != '\t') packed[k++] = *c;
        packed[k] = 0;
        enum kvr_status st;
        if (!strcmp(key, "ctx"))
            free(sp->ctx), st = kvr_cli_parse_ctx_list("ctx", packed, &sp->ctx, &sp->n_ctx);
        else
            st = kvr_cli_parse_int_list("gpus", packed, 1, KVR_MAX_GPUS, sp->gpus,
                                        KVR_SWEEP_MAX_AXIS, &sp->n_gpus);
        free(packed);
        return st;
    }
    enum kvr_status st = split_items(key, value, semi ? ';' : ',', items, &n);
    if (st) return st;
    if (!strcmp(key, "schemes")) return set_schemes(sp, items, n);
    if (!strcmp(key, "seeds")) return set_seeds(sp, items, n);
    if (!strcmp(key, "models")) {
        for (int i = 0; i < n; i++)
            if ((st = beside_sweep(sp, items[i])) ||
                (st = kvr_model_resolve(items[i], &sp->models[i])))
                return st;
        sp->n_models = n;
        return KVR_OK;
    }
    if (!strcmp(key, "machines")) {
        static struct kvr_machine h;
        for (int i = 0; i < n; i++)
            if ((st = beside_sweep(sp, items[i])) || (st = kvr_machine_resolve(items[i], &h)))
                return st;
        return copy_list(sp->machines, &sp->n_machines, items, n);
    }
    if (!strcmp(key, "bw")) {
        for (int i = 0; i < n; i++) {
            double r;
            if (strcmp(items[i], "profile") && kvr_parse_rate_Bps(items[i], &r))
                return kvr_error_prefix(KVR_ERR_INPUT, "bw: ");
            if (strcmp(items[i], "profile") && !(r > 0))
                return kvr_error(KVR_ERR_INPUT, "bw: '%s' must be positive", items[i]);
        }
        return copy_list(sp->bw, &sp->n_bw, items, n);
    }
    if (!strcmp(key, "links")) return copy_list(sp->links, &sp->n_links, items, n);
    if (!strcmp(key, "tp")) {
        for (int i = 0; i < n; i++) {
            uint64_t t = 0;
            if (strcmp(items[i], "none") && (kvr_parse_u64(items[i], KVR_MAX_GPUS, &t) || t == 0))
                return kvr_error(KVR_ERR_INPUT, "tp: '%s' is not none or a TP degree 1..%d",
                                 items[i], KVR_MAX_GPUS);
            sp->tp[i] = (int)t;
        }
        sp->n_tp = n;
        return KVR_OK;
    }
    if (!strcmp(key, "kv_forward")) {
        for (int i = 0; i < n; i++) {
            int f = kvr_kv_forward_from_name(items[i]);
            if (f < 0)
                return kvr_error(KVR_ERR_INPUT, "kv_forward: '%s' is not whole, streamed or direct",
                                 items[i]);
            sp->fwd[i] = (enum kvr_kv_forward)f;
        }
        sp->n_fwd = n;
        return KVR_OK;
    }
    if (!strcmp(key, "noise")) return copy_list(sp->noise, &sp->n_noise, items, n);
    return kvr_error(KVR_ERR_INPUT,
                     "unknown axis '%s' (models, machines, gpus, ctx, schemes, bw, "
                     "links, noise, seeds, kv_forward, tp)",
                     key);
}

/* A text value into a fixed field, refused (never truncated) when too long. */
static enum kvr_status set_text(char *dst, size_t cap, const char *key, const char *value)
{
    if (strlen(value) >= cap)
        return kvr_error(KVR_ERR_INPUT, "%s: '%.40s...' is longer than %zu characters", key, value,
                         cap - 1);
    memcpy(dst, value, strlen(value) + 1);
    return KVR_OK;
}

static enum kvr_status sweep_key(struct kvr_sweep_spec *sp, const char *key, const char *value)
{
    if (!strcmp(key, "name")) return set_text(sp->name, sizeof sp->name, key, value);
    if (!strcmp(key, "figure")) return set_text(sp->figure, sizeof sp->figure, key, value);
    if (!strcmp(key, "db") && value[strlen(value) - 1] == '/')
        return kvr_error(KVR_ERR_INPUT, "db: '%s' ends in '/': a folder's name, not a file's",
                         value);
    if (!strcmp(key, "db") && kvr_out_check_not_input("db", value, "sweep file", sp->path))
        return KVR_ERR_INPUT; /* SQLite would refuse it, without saying that it is this file */
    if (!strcmp(key, "db")) return set_text(sp->db, sizeof sp->db, key, value);
    if (!strcmp(key, "objective")) {
        if (strcmp(value, "sim") && strcmp(value, "exec"))
            return kvr_error(KVR_ERR_INPUT, "objective: '%s' is not sim or exec", value);
        return snprintf(sp->objective, sizeof sp->objective, "%s", value), KVR_OK;
    }
    if (!strcmp(key, "granularity"))
        return kvr_parse_tokens(value, KVR_MAX_CTX, &sp->granularity) || !sp->granularity
                   ? kvr_error(KVR_ERR_INPUT, "granularity: '%s' must be 1..%u tokens", value,
                               KVR_MAX_CTX)
                   : KVR_OK;
    if (!strcmp(key, "trials"))
        return kvr_parse_u64(value, 1000000, &sp->trials) || !sp->trials /* as --trials */
                   ? kvr_error(KVR_ERR_INPUT, "trials: '%s' must be 1..1000000", value)
                   : KVR_OK;
    return kvr_error(KVR_ERR_INPUT,
                     "unknown key '%s' in [sweep] (name, figure, objective, db, "
                     "granularity, trials)",
                     key);
}

/* The lines of the axes checked against each other once the whole file is read. */
enum { L_MACHINES, L_GPUS, L_BW, L_LINKS, L_NOISE, L_SEEDS, L_FWD, L_TP, L_TRIALS, L_GRAN, L_N };
static const char *const line_keys[L_N] = {"machines", "gpus",       "bw", "links",  "noise",
                                           "seeds",    "kv_forward", "tp", "trials", "granularity"};

struct loader {
    struct kvr_sweep_spec *sp;
    int lines[L_N];
};

static enum kvr_status on_key(void *user, const char *section, const char *key, const char *value,
                              int line)
{
    struct loader *ld = user;
    for (int k = 0; k < L_N; k++)
        if (!strcmp(key, line_keys[k])) ld->lines[k] = line;
    if (!strcmp(section, "sweep")) return sweep_key(ld->sp, key, value);
    if (strcmp(section, "axes"))
        return kvr_error(KVR_ERR_INPUT, "unknown section [%s] (sweep, axes)", section);
    return axis_key(ld->sp, key, value);
}

/* One machine the sweep will build: profile h at p GPUs with one bw, link and noise value; its
 * hash into *hash when not NULL. */
static enum kvr_status try_machine(const struct kvr_sweep_spec *sp, int h, int p, const char *bw,
                                   const char *link, const char *noise, uint64_t *hash)
{
    static struct kvr_machine m;
    char g[16];
    snprintf(g, sizeof g, "%d", p);
    struct kvr_machine_args a = {.machine = sp->machines[h], .trials = 1};
    a.bw = bw && strcmp(bw, "profile") ? bw : NULL;
    a.noise = noise && strcmp(noise, "none") ? noise : NULL;
    if (link && strcmp(link, "none")) a.links[a.n_links++] = link;
    enum kvr_status st = kvr_machine_args_build(&a, NULL, g, &m);
    if (!st && hash) *hash = kvr_machine_hash(&m);
    return st;
}

/* Every value of the machine axes checked now, at its line, rather than point by point at run
 * time: gpus against each machine, then each bw, link and noise value on each of them. */
static enum kvr_status check_axes(const struct loader *ld)
{
    struct kvr_sweep_spec *sp = ld->sp;
    for (int h = 0; h < sp->n_machines; h++) {
        enum kvr_status st =
            try_machine(sp, h, 1, NULL, NULL, NULL, &sp->machine_hash[h][sp->n_gpus]);
        if (st)
            return kvr_error_prefix(st, "%s:%d: machines (%s): ", sp->path, ld->lines[L_MACHINES],
                                    sp->machines[h]);
        for (int g = 0; g < sp->n_gpus; g++) {
            int p = sp->gpus[g], k = L_GPUS;
            st = try_machine(sp, h, p, NULL, NULL, NULL, &sp->machine_hash[h][g]);
            for (int i = 0; !st && i < sp->n_bw; i++)
                k = L_BW, st = try_machine(sp, h, p, sp->bw[i], NULL, NULL, NULL);
            for (int i = 0; !st && i < sp->n_links; i++)
                k = L_LINKS, st = try_machine(sp, h, p, NULL, sp->links[i], NULL, NULL);
            for (int i = 0; !st && i < sp->n_noise; i++)
                k = L_NOISE, st = try_machine(sp, h, p, NULL, NULL, sp->noise[i], NULL);
            if (st && ld->lines[k])
                return kvr_error_prefix(st, "%s:%d: %s (on %s at gpus = %d): ", sp->path,
                                        ld->lines[k], line_keys[k], sp->machines[h], p);
            if (st)
                return kvr_error_prefix(st, "%s:%d: machines (%s at gpus = %d): ", sp->path,
                                        ld->lines[L_MACHINES], sp->machines[h], p);
        }
    }
    return KVR_OK;
}

/* A series that runs the axis' hand-off: a chain scheme making its own partition (set_forward). */
static bool takes_forward(struct kvr_sweep_series s)
{
    bool own = s.source < 0 || !kvr_part_source_get(s.source)->needs_table;
    return (kvr_scheme_get(s.scheme)->options & KVR_SO_FORWARD) && own;
}

/* Whether TP degree tp makes a layout of some model, gpus value and scheme of the file. */
static bool tp_reaches(const struct kvr_sweep_spec *sp, int tp)
{
    for (int m = 0; m < sp->n_models; m++)
        for (int g = 0; g < sp->n_gpus; g++)
            for (int s = 0; s < sp->n_schemes; s++)
                if (kvr_layout_scheme_ok(sp->schemes[s].scheme) &&
                    kvr_layout_check_tp(&sp->models[m], sp->gpus[g], tp, "tp") == KVR_OK)
                    return true;
    return false;
}

/* seeds and trials draw the noise: without a noise value other than none they reach no point
 * (seeds = 0-9 gave one point, exit 0), as kvr sim refuses --seed and --trials without
 * --noise. With some noise value they apply to its points (the none points collapse). */
static enum kvr_status check_noise_reach(const struct loader *ld)
{
    const struct kvr_sweep_spec *sp = ld->sp;
    for (int i = 0; i < sp->n_noise; i++)
        if (strcmp(sp->noise[i], "none")) return KVR_OK;
    int k = ld->lines[L_SEEDS] ? L_SEEDS : ld->lines[L_TRIALS] ? L_TRIALS : -1;
    if (k < 0) return KVR_OK;
    return kvr_error(KVR_ERR_INPUT,
                     "%s:%d: %s reaches no point: it applies with noise only, and every noise "
                     "value is none",
                     sp->path, ld->lines[k], line_keys[k]);
}

/* A value of kv_forward or tp that no scheme of the file takes would collapse into the points
 * without it: accepted and ignored (kv_forward = streamed with only tsp and kvr-s gave whole
 * points, exit 0); so would a granularity without kvr-s or kvr-p, the series whose table rows
 * it grids. Refused at its line. (Seeds and trials: check_noise_reach.) */
static enum kvr_status check_reach(const struct loader *ld)
{
    const struct kvr_sweep_spec *sp = ld->sp;
    bool fwd = false, layouts = false, table = false;
    for (int i = 0; i < sp->n_schemes; i++) {
        struct kvr_sweep_series s = sp->schemes[i];
        fwd |= takes_forward(s), layouts |= kvr_layout_scheme_ok(s.scheme);
        table |= s.source >= 0 && kvr_part_source_get(s.source)->needs_table;
    }
    if (ld->lines[L_GRAN] && !table)
        return kvr_error(KVR_ERR_INPUT,
                         "%s:%d: granularity reaches no point: it grids the lookup table's "
                         "partitions, and no scheme of the file reads them (kvr-s, kvr-p)",
                         sp->path, ld->lines[L_GRAN]);
    for (int i = 0; i < sp->n_fwd; i++)
        if (sp->fwd[i] != KVR_FWD_WHOLE && !fwd)
            return kvr_error(KVR_ERR_INPUT,
                             "%s:%d: kv_forward = %s reaches no point: no scheme of the file "
                             "makes its own chain partition (kvr-even, kvr-balanced; kvr-s and "
                             "kvr-p run the mode their table row was searched for)",
                             sp->path, ld->lines[L_FWD], kvr_kv_forward_name(sp->fwd[i]));
    for (int i = 0; i < sp->n_tp; i++)
        if (sp->tp[i] > 0 && !layouts)
            return kvr_error(KVR_ERR_INPUT,
                             "%s:%d: tp = %d reaches no point: no scheme of the file has "
                             "layouts (kvr help schemes)",
                             sp->path, ld->lines[L_TP], sp->tp[i]);
    for (int i = 0; i < sp->n_tp; i++)
        if (sp->tp[i] > 0 && !tp_reaches(sp, sp->tp[i]))
            return kvr_error(KVR_ERR_INPUT,
                             "%s:%d: tp = %d reaches no point: it divides no gpus value and "
                             "a model's heads",
                             sp->path, ld->lines[L_TP], sp->tp[i]);
    return KVR_OK;
}

enum kvr_status kvr_sweep_load(const char *path, struct kvr_sweep_spec *sp)
{
    memset(sp, 0, sizeof *sp);
    snprintf(sp->path, sizeof sp->path, "%s", path);
    kvr_file_stem(path, sp->name, sizeof sp->name);
    snprintf(sp->objective, sizeof sp->objective, "sim");
    snprintf(sp->db, sizeof sp->db, "out/kvrun.db");
    sp->granularity = 64, sp->trials = 16;
    sp->n_bw = sp->n_links = sp->n_noise = sp->n_seeds = 1; /* profile, none, none, seed 0 */
    sp->n_fwd = 1, sp->fwd[0] = KVR_FWD_WHOLE;
    sp->n_tp = 1, sp->tp[0] = 0; /* none */
    snprintf(sp->bw[0], sizeof sp->bw[0], "profile");
    snprintf(sp->links[0], sizeof sp->links[0], "none");
    snprintf(sp->noise[0], sizeof sp->noise[0], "none");
    struct loader ld = {.sp = sp};
    enum kvr_status st = kvr_ini_parse(path, on_key, &ld);
    const char *missing = !sp->figure[0]    ? "[sweep] figure"
                          : !sp->n_models   ? "[axes] models"
                          : !sp->n_machines ? "[axes] machines"
                          : !sp->n_gpus     ? "[axes] gpus"
                          : !sp->n_ctx      ? "[axes] ctx"
                          : !sp->n_schemes  ? "[axes] schemes"
                                            : NULL;
    if (!st && missing) st = kvr_error(KVR_ERR_INPUT, "%s: missing %s", path, missing);
    if (!st) st = check_axes(&ld);
    if (!st) st = check_reach(&ld);
    if (!st) st = check_noise_reach(&ld);
    if (!st && !strcmp(sp->objective, "exec"))
        st = kvr_error(KVR_ERR_INPUT,
                       "%s: objective = exec needs the executor, which this "
                       "build does not have yet (use objective = sim)",
                       path);
    if (st) kvr_sweep_free(sp);
    return st;
}

void kvr_sweep_free(struct kvr_sweep_spec *sp)
{
    free(sp->ctx);
    sp->ctx = NULL;
}

static int cmp_items(const void *a, const void *b)
{
    return strcmp(((const struct kvr_sweep_item *)a)->pt.point_key,
                  ((const struct kvr_sweep_item *)b)->pt.point_key);
}

/* The point's hand-off mode: the axis' for a chain with its own partition, else whole (a
 * table's series take their row's, kvr_sweep_eval); a mode other than whole names the series
 * and ends the point's key (keys without one stay as they were). */
static void set_forward(enum kvr_kv_forward f, struct kvr_sweep_series s, struct kvr_sweep_point *x)
{
    if (!takes_forward(s)) f = KVR_FWD_WHOLE;
    snprintf(x->kv_forward, sizeof x->kv_forward, "%s", kvr_kv_forward_name(f));
    if (f == KVR_FWD_WHOLE) return;
    size_t n = strlen(x->series), k = strlen(x->point_key);
    snprintf(x->series + n, sizeof x->series - n, " %s", x->kv_forward);
    snprintf(x->point_key + k, sizeof x->point_key - k, "|fwd=%s", x->kv_forward);
}

/* The point's layout: t for a scheme that has layouts (the key ends in |tp=t), none for the
 * others (their points collapse into one). */
static void set_tp(int tp, struct kvr_sweep_series s, struct kvr_sweep_point *x)
{
    x->tp = kvr_layout_scheme_ok(s.scheme) ? tp : 0;
    size_t k = strlen(x->point_key);
    if (x->tp > 0) snprintf(x->point_key + k, sizeof x->point_key - k, "|tp=%d", x->tp);
}

/* Whether a point of layout tp exists: none, or a t that divides p and the model's heads. */
static bool tp_applies(const struct kvr_sweep_spec *sp, int m, int p, int tp,
                       struct kvr_sweep_series s)
{
    return tp == 0 || !kvr_layout_scheme_ok(s.scheme) ||
           kvr_layout_check_tp(&sp->models[m], p, tp, "tp") == KVR_OK;
}

/* Fills one item from its axis values. */
static void make_item(const struct kvr_sweep_spec *sp, int m, int h, int b, int l, int nz,
                      uint64_t seed, int g, uint64_t ctx, struct kvr_sweep_series s,
                      enum kvr_kv_forward f, int tp, struct kvr_sweep_item *it)
{
    int p = sp->gpus[g];
    struct kvr_sweep_point *x = &it->pt;
    memset(it, 0, sizeof *it);
    it->model = m;
    snprintf(it->bw, sizeof it->bw, "%s", strcmp(sp->bw[b], "profile") ? sp->bw[b] : "");
    snprintf(it->link, sizeof it->link, "%s", strcmp(sp->links[l], "none") ? sp->links[l] : "");
    snprintf(it->noise, sizeof it->noise, "%s", strcmp(sp->noise[nz], "none") ? sp->noise[nz] : "");
    if (!it->noise[0]) seed = 0; /* seeds only matter with noise */
    bool one = kvr_scheme_get(s.scheme)->options & KVR_SO_ONE_GPU;
    if (one) p = 1;
    snprintf(x->sweep, sizeof x->sweep, "%s", sp->name);
    snprintf(x->figure, sizeof x->figure, "%s", sp->figure);
    kvr_plan_label(s.scheme, s.source, x->series, sizeof x->series);
    x->series_rank = s.rank;
    snprintf(x->model, sizeof x->model, "%s", sp->models[m].name);
    snprintf(x->machine, sizeof x->machine, "%s", sp->machines[h]);
    kvr_plan_name(s.scheme, s.source, x->scheme, sizeof x->scheme);
    snprintf(x->method, sizeof x->method, "%s",
             kvr_part_source_get(s.source < 0 ? KVR_PART_EVEN : s.source)->sweep);
    snprintf(x->objective, sizeof x->objective, "%s", sp->objective);
    snprintf(x->link_spec, sizeof x->link_spec, "%s", it->link);
    snprintf(x->noise_spec, sizeof x->noise_spec, "%s", it->noise);
    if (it->bw[0]) kvr_parse_rate_Bps(it->bw, &x->link_Bps);
    x->link_from = it->link[0] ? atoi(it->link) : -1;
    const char *share = strncmp(it->noise, "random:", 7) ? it->noise : it->noise + 7;
    x->noise_share = it->noise[0] ? strtod(share, NULL) : 0;
    x->seed = seed, x->p = p, x->ctx_tokens = ctx;
    snprintf(x->point_key, sizeof x->point_key,
             "%s|%s|bw=%s|link=%s|noise=%s|seed=%llu|p=%d|ctx=%llu|%s", x->model, x->machine,
             it->bw, it->link, it->noise, (unsigned long long)seed, p, (unsigned long long)ctx,
             x->scheme);
    set_forward(f, s, x);
    set_tp(tp, s, x);
    /* the definitions' content: an edited model or profile file makes another key, whose
     * record replaces the row of the old one (kvr_store_add_sweep_points) */
    uint64_t mh = sp->machine_hash[h][one ? sp->n_gpus : g];
    uint64_t def = kvr_hash_bytes(kvr_model_hash(&sp->models[m]), &mh, sizeof mh);
    size_t k = strlen(x->point_key);
    snprintf(x->point_key + k, sizeof x->point_key - k, "|def=%016llx", (unsigned long long)def);
}

enum kvr_status kvr_sweep_expand(const struct kvr_sweep_spec *sp, struct kvr_sweep_item **items,
                                 size_t *n)
{
    double want = (double)sp->n_models * sp->n_machines * sp->n_bw * sp->n_links * sp->n_noise *
                  sp->n_seeds * sp->n_gpus * (double)sp->n_ctx * sp->n_schemes * sp->n_fwd *
                  sp->n_tp;
    if (want > KVR_SWEEP_MAX_POINTS)
        return kvr_error(KVR_ERR_INPUT, "%s: the axes make %.0f points (at most %d)", sp->path,
                         want, KVR_SWEEP_MAX_POINTS);
    size_t total = (size_t)want;
    struct kvr_sweep_item *it = calloc(total ? total : 1, sizeof *it);
    if (!it) return kvr_error(KVR_ERR_NOMEM, "%s: out of memory for %zu points", sp->path, total);
    size_t k = 0;
    for (int m = 0; m < sp->n_models; m++)
        for (int h = 0; h < sp->n_machines; h++)
            for (int b = 0; b < sp->n_bw; b++)
                for (int l = 0; l < sp->n_links; l++)
                    for (int nz = 0; nz < sp->n_noise; nz++)
                        for (int sd = 0; sd < sp->n_seeds; sd++)
                            for (int g = 0; g < sp->n_gpus; g++)
                                for (size_t c = 0; c < sp->n_ctx; c++)
                                    for (int s = 0; s < sp->n_schemes; s++)
                                        for (int f = 0; f < sp->n_fwd; f++)
                                            for (int t = 0; t < sp->n_tp; t++)
                                                if (tp_applies(sp, m, sp->gpus[g], sp->tp[t],
                                                               sp->schemes[s]))
                                                    make_item(sp, m, h, b, l, nz, sp->seeds[sd], g,
                                                              sp->ctx[c], sp->schemes[s],
                                                              sp->fwd[f], sp->tp[t], &it[k++]);
    total = k;
    qsort(it, total, sizeof *it, cmp_items);
    size_t u = 0; /* drop duplicates (single at every p, seeds without noise) */
    for (size_t i = 0; i < total; i++)
        if (u == 0 || strcmp(it[u - 1].pt.point_key, it[i].pt.point_key)) it[u++] = it[i];
    if (u == 0) { /* e.g. every tp divides no gpus: a run would store nothing and exit 0 */
        free(it);
        return kvr_error(KVR_ERR_INPUT,
                         "%s: the axes make no point (no tp divides a gpus value "
                         "and the model's heads)",
                         sp->path);
    }
    *items = it, *n = u;
    return KVR_OK;
}
