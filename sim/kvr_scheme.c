/* The scheme and partition-source tables, and the names built from them. */
#include "kvr_scheme.h"

#include <stdio.h>
#include <string.h>

#define KVR_EXEC(f)  true
#define KVR_SIM_ONLY false
static const struct kvr_scheme_desc schemes[KVR_N_SCHEMES] = {
#define KVR_SCHEME(id_, name_, label_, sim_, exec_, options_, help_)                               \
    {.id = KVR_SCHEME_##id_,                                                                       \
     .name = name_,                                                                                \
     .label = label_,                                                                              \
     .executes = exec_,                                                                            \
     .options = options_,                                                                          \
     .help = help_},
#include "kvr_scheme_list.h"
#undef KVR_SCHEME
};
#undef KVR_EXEC
#undef KVR_SIM_ONLY

static const struct kvr_part_source_desc sources[KVR_N_PART_SOURCES] = {
    {KVR_PART_EVEN, "even", "even", "E", "even", "kvr-e", false},
    {KVR_PART_BALANCED, "balanced", "balanced", "balanced", "balanced", NULL, false},
    {KVR_PART_SEARCHED, "searched", "s", "S", "hier", "kvr-s", true},
    {KVR_PART_INTERP, "interpolated", "p", "P", "interp", "kvr-p", true},
    {KVR_PART_GIVEN, "given", NULL, "", "given", "given", false},
};

const struct kvr_scheme_desc *kvr_scheme_get(enum kvr_scheme s)
{
    return (int)s >= 0 && s < KVR_N_SCHEMES ? &schemes[s] : NULL;
}

const struct kvr_scheme_desc *kvr_scheme_find(const char *name)
{
    for (int i = 0; i < KVR_N_SCHEMES; i++)
        if (!strcmp(schemes[i].name, name)) return &schemes[i];
    return NULL;
}

const char *kvr_scheme_name(enum kvr_scheme s)
{
    const struct kvr_scheme_desc *d = kvr_scheme_get(s);
    return d ? d->name : "?";
}

int kvr_scheme_from_name(const char *name)
{
    const struct kvr_scheme_desc *d = kvr_scheme_find(name);
    return d ? (int)d->id : -1;
}

bool kvr_scheme_executes(enum kvr_scheme s)
{
    const struct kvr_scheme_desc *d = kvr_scheme_get(s);
    return d && d->executes;
}

static const char *const forward_names[KVR_N_FWD] = {"whole", "streamed", "direct"};

const char *kvr_kv_forward_name(enum kvr_kv_forward f)
{
    return (int)f >= 0 && f < KVR_N_FWD ? forward_names[f] : "?";
}

int kvr_kv_forward_from_name(const char *name)
{
    for (int i = 0; i < KVR_N_FWD; i++)
        if (name && !strcmp(name, forward_names[i])) return i;
    return -1;
}

enum kvr_status kvr_scheme_check_forward(enum kvr_scheme s, enum kvr_kv_forward f)
{
    const struct kvr_scheme_desc *d = kvr_scheme_get(s);
    if (!d) return kvr_error(KVR_ERR_INPUT, "unknown scheme %d", (int)s);
    if ((int)f < 0 || f >= KVR_N_FWD)
        return kvr_error(KVR_ERR_INPUT, "unknown KV hand-off mode %d", (int)f);
    if (f != KVR_FWD_WHOLE && !(d->options & KVR_SO_FORWARD))
        return kvr_error(KVR_ERR_INPUT, "--kv-forward %s: scheme %s has no KV chain to forward",
                         forward_names[f], d->name);
    return KVR_OK;
}

void kvr_kv_forward_list_text(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s, %s, %s", forward_names[0], forward_names[1], forward_names[2]);
}

const struct kvr_part_source_desc *kvr_part_source_get(enum kvr_part_source s)
{
    return (int)s >= 0 && s < KVR_N_PART_SOURCES ? &sources[s] : NULL;
}

int kvr_part_source_from_measured(const char *method)
{
    for (int i = 0; i < KVR_N_PART_SOURCES; i++)
        if (sources[i].measured &&
            !strncmp(method, sources[i].measured, strlen(sources[i].measured)) &&
            (i == KVR_PART_GIVEN || !method[strlen(sources[i].measured)]))
            return i;
    return -1;
}

/* Whether scheme d can take its partition from source src in a plan name. */
static bool takes_source(const struct kvr_scheme_desc *d, int src)
{
    return (d->options & KVR_SO_PARTITION) && sources[src].suffix &&
           (!sources[src].needs_table || (d->options & KVR_SO_SEARCHED));
}

bool kvr_plan_name_parse(const char *name, enum kvr_scheme *scheme, int *source)
{
    for (int i = 0; i < KVR_N_SCHEMES; i++) {
        size_t n = strlen(schemes[i].name);
        if (strncmp(name, schemes[i].name, n)) continue;
        *scheme = (enum kvr_scheme)i;
        *source = -1;
        if (!name[n]) return true;
        for (int k = 0; name[n] == '-' && k < KVR_N_PART_SOURCES; k++)
            if (takes_source(&schemes[i], k) && !strcmp(name + n + 1, sources[k].suffix)) {
                *source = k;
                return true;
            }
    }
    return false;
}

void kvr_plan_name(enum kvr_scheme s, int source, char *buf, size_t cap)
{
    if (source < 0 || !sources[source].suffix)
        snprintf(buf, cap, "%s", kvr_scheme_name(s));
    else
        snprintf(buf, cap, "%s-%s", kvr_scheme_name(s), sources[source].suffix);
}

void kvr_plan_label(enum kvr_scheme s, int source, char *buf, size_t cap)
{
    const struct kvr_scheme_desc *d = kvr_scheme_get(s);
    if (source < 0 || !sources[source].label[0])
        snprintf(buf, cap, "%s", d ? d->label : "?");
    else
        snprintf(buf, cap, "%s-%s", d ? d->label : "?", sources[source].label);
}

int kvr_plan_series(enum kvr_scheme *out_schemes, int *out_sources, int cap)
{
    int n = 0;
    for (int i = 0; i < KVR_N_SCHEMES; i++)
        for (int k = -1; k < KVR_N_PART_SOURCES; k++) {
            bool bare = !(schemes[i].options & KVR_SO_PARTITION);
            if (k < 0 ? !bare : !takes_source(&schemes[i], k)) continue;
            if (n < cap) out_schemes[n] = (enum kvr_scheme)i, out_sources[n] = k;
            n++;
        }
    return n;
}

static void append(char *buf, size_t cap, size_t *len, const char *name)
{
    int w = snprintf(buf + *len, *len < cap ? cap - *len : 0, "%s%s", *len ? ", " : "", name);
    if (w > 0) *len += (size_t)w;
}

void kvr_scheme_list_text(enum kvr_scheme_filter which, char *buf, size_t cap)
{
    size_t len = 0;
    char name[64];
    buf[0] = 0;
    if (which == KVR_LIST_SERIES) {
        enum kvr_scheme s[64];
        int src[64], n = kvr_plan_series(s, src, 64);
        for (int i = 0; i < n && i < 64; i++)
            kvr_plan_name(s[i], src[i], name, sizeof name), append(buf, cap, &len, name);
        return;
    }
    for (int i = 0; i < KVR_N_SCHEMES; i++) {
        const struct kvr_scheme_desc *d = &schemes[i];
        bool part = d->options & KVR_SO_PARTITION;
        if ((which == KVR_LIST_EXECUTES && !d->executes) ||
            (which == KVR_LIST_PARTITION && !part) ||
            (which == KVR_LIST_SEARCHED && !(d->options & KVR_SO_SEARCHED)) ||
            ((which == KVR_LIST_LAYOUT || which == KVR_LIST_EXEC_LAYOUT) &&
             !(d->options & KVR_SO_LAYOUT)) ||
            (which == KVR_LIST_EXEC_LAYOUT && !d->executes))
            continue;
        append(buf, cap, &len, d->name);
        for (int k = 0; which == KVR_LIST_SIM && k < KVR_N_PART_SOURCES; k++)
            if (takes_source(d, k) && !sources[k].needs_table)
                kvr_plan_name(d->id, k, name, sizeof name), append(buf, cap, &len, name);
    }
}
