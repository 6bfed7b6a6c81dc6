#include "kvr_machine_args.h"

#include <stdio.h>
#include <string.h>

#include "kvr_opt.h"
#include "kvr_units.h"

static const char *const noise_only[] = {"seed", "trials", "objective", NULL};

enum kvr_status kvr_machine_args_refuse_noiseless(const struct kvr_machine_args *a,
                                                  const struct kvr_opt_result *res, const char *why)
{
    return a->noise ? KVR_OK : kvr_opt_refuse(res, noise_only, why);
}

const char *kvr_machine_args_noise_given(const struct kvr_opt_result *res)
{
    for (int k = 0; noise_only[k]; k++)
        if (kvr_opt_given(res, noise_only[k])) return noise_only[k];
    return NULL;
}

enum kvr_status kvr_machine_args_refuse_unrandom(const char *given, const struct kvr_machine *h)
{
    if (!given || h->noise.mode == KVR_NOISE_RANDOM) return KVR_OK;
    return kvr_error(KVR_ERR_USAGE,
                     "--%s applies with random noise only (--noise random:SHARE, or a profile's "
                     "[noise] mode = random): %s every trial is the same",
                     given,
                     h->noise.mode == KVR_NOISE_NONE ? "without noise" : "with constant noise");
}

enum kvr_status kvr_machine_args_finish(struct kvr_machine_args *a)
{
    if (a->seed_arg && kvr_parse_u64(a->seed_arg, KVR_NOISE_SEED_MAX, &a->seed))
        return kvr_error_prefix(KVR_ERR_INPUT, "--seed: ");
    if (a->trials_arg && (kvr_parse_u64(a->trials_arg, 1000000, &a->trials) || a->trials == 0))
        return kvr_error(KVR_ERR_INPUT, "--trials: '%s' must be 1..1000000", a->trials_arg);
    double pct;
    return kvr_machine_args_percentile(a, &pct);
}

/* One --link per link and direction: a second one would silently replace the first. */
static enum kvr_status links_once(const struct kvr_machine_args *a, const struct kvr_machine *h)
{
    static _Thread_local bool set[KVR_MAX_GPUS][KVR_MAX_GPUS];
    memset(set, 0, sizeof set);
    for (int k = 0; k < a->n_links; k++) {
        const char *spec = a->links[k], *eq = strchr(spec, '=');
        int i, j;
        enum kvr_status st = kvr_machine_link_ends(h, spec, &i, &j);
        if (st) return st;
        bool directed = eq && memchr(spec, '>', (size_t)(eq - spec));
        if (set[i][j] || (!directed && set[j][i]))
            return kvr_error(KVR_ERR_USAGE, "--link %s: link %d-%d is given twice", spec, i, j);
        set[i][j] = true;
        if (!directed) set[j][i] = true;
    }
    return KVR_OK;
}

enum kvr_status kvr_machine_args_build(const struct kvr_machine_args *a, const char *name,
                                       const char *gpus, struct kvr_machine *h)
{
    if (!name && !a->machine) /* a command without a default profile (kvr exec on ranks) */
        return kvr_error(KVR_ERR_USAGE, "--bw, --link and --noise change a machine profile: "
                                        "give it with --machine");
    enum kvr_status st = kvr_machine_resolve(name ? name : a->machine, h);
    if (st) return st;
    if (gpus && (st = kvr_machine_set_gpus(h, gpus))) return st;
    if (a->bw && (st = kvr_machine_set_all_bw(h, a->bw))) return st;
    for (int i = 0; i < a->n_links; i++)
        if ((st = kvr_machine_set_link(h, a->links[i]))) return st;
    if ((st = links_once(a, h))) return st;
    if (a->noise && (st = kvr_machine_set_noise(h, a->noise))) return st;
    /* a profile's [noise] seed stands unless the options give the noise or a seed (it was
     * reset to 0 here: every profile seed drew seed 0's noise) */
    if (a->noise || a->seed_arg) h->noise.seed = a->seed;
    return kvr_machine_validate(h);
}

static void used_text(const bool *used, int total, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    for (int g = 0; g < total && k < cap; g++)
        if (used[g]) k += (size_t)snprintf(buf + k, cap - k, "%s%d", k ? "," : "", g);
}

enum kvr_status kvr_machine_args_check_used(const struct kvr_machine_args *a,
                                            const struct kvr_machine *h, const int *gpus, int n)
{
    int total = h->n_nodes * h->gpus_per_node;
    bool used[KVR_MAX_GPUS] = {false};
    char list[4 * KVR_MAX_GPUS];
    for (int k = 0; k < n; k++) used[gpus ? gpus[k] : k] = true;
    used_text(used, total, list, sizeof list);
    for (int k = 0; k < a->n_links; k++) {
        int i, j;
        enum kvr_status st = kvr_machine_link_ends(h, a->links[k], &i, &j);
        if (st) return st;
        if (!used[i] || !used[j])
            return kvr_error(KVR_ERR_INPUT,
                             "--link %s: GPU %d is not one the plan runs on (GPUs %s): no "
                             "transfer of the plan crosses link %d-%d",
                             a->links[k], used[i] ? j : i, list, i, j);
    }
    if (!a->noise || h->noise.mode == KVR_NOISE_NONE || h->noise.all_links) return KVR_OK;
    for (int i = 0; i < total; i++)
        for (int j = 0; j < total; j++)
            if (h->noise.on[i][j] && (!used[i] || !used[j]))
                return kvr_error(KVR_ERR_INPUT,
                                 "--noise '%s': GPU %d is not one the plan runs on (GPUs %s): no "
                                 "transfer of the plan crosses link %d-%d",
                                 a->noise, used[i] ? j : i, list, i, j);
    return KVR_OK;
}

void kvr_machine_args_key(const struct kvr_machine_args *a, const char *name, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "%s", name ? name : a->machine);
    if (a->bw && n < cap) n += (size_t)snprintf(buf + n, cap - n, "+bw=%s", a->bw);
    for (int i = 0; i < a->n_links && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "+link=%s", a->links[i]);
    if (a->noise && n < cap)
        snprintf(buf + n, cap - n, "+noise=%s+seed=%llu+trials=%llu+objective=%s", a->noise,
                 (unsigned long long)a->seed, (unsigned long long)a->trials,
                 a->objective ? a->objective : "mean");
}

enum kvr_status kvr_machine_args_from_key(const char *key, struct kvr_machine_args *a, char *buf,
                                          size_t cap)
{
    *a = (struct kvr_machine_args){.trials = 1};
    if ((size_t)snprintf(buf, cap, "%s", key) >= cap)
        return kvr_error(KVR_ERR_INPUT, "machine key '%.40s...' is too long", key);
    char *part = strchr(buf, '+');
    while (part) {
        *part++ = 0;
        char *next = strchr(part, '+'), *eq = strchr(part, '=');
        if (next) *next = 0;
        if (!eq) return kvr_error(KVR_ERR_INPUT, "machine key '%s': '%s' has no value", key, part);
        *eq++ = 0;
        if (!strcmp(part, "bw"))
            a->bw = eq;
        else if (!strcmp(part, "link") && a->n_links < (int)(sizeof a->links / sizeof *a->links))
            a->links[a->n_links++] = eq;
        else if (!strcmp(part, "noise"))
            a->noise = eq;
        else if (!strcmp(part, "objective"))
            a->objective = eq;
        else if (!strcmp(part, "seed") || !strcmp(part, "trials")) {
            if (kvr_parse_u64(eq, !strcmp(part, "seed") ? KVR_NOISE_SEED_MAX : UINT64_MAX,
                              !strcmp(part, "seed") ? &a->seed : &a->trials))
                return kvr_error(KVR_ERR_INPUT, "machine key '%s': %s '%s'", key, part, eq);
        } else
            return kvr_error(KVR_ERR_INPUT, "machine key '%s': unknown setting '%s'", key, part);
        part = next;
    }
    return KVR_OK;
}

enum kvr_status kvr_machine_args_percentile(const struct kvr_machine_args *a, double *pct)
{
    *pct = 0;
    if (!a->objective || !strcmp(a->objective, "mean")) return KVR_OK;
    if (a->objective[0] != 'p' || kvr_parse_decimal("percentile", a->objective + 1, 0, 100, pct) ||
        *pct <= 0)
        return kvr_error(KVR_ERR_INPUT,
                         "--objective: '%s' is not 'mean' or pNN with NN in (0, 100]",
                         a->objective);
    return KVR_OK;
}
