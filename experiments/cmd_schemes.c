/* kvr help schemes: the scheme table (sim/kvr_scheme_list.h) and the partition sources, as a
 * table or as JSON. */
#include <stdio.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_json.h"
#include "kvr_opt.h"
#include "kvr_scheme.h"

struct schemes_args {
    bool json, quiet, help;
};
static const struct kvr_opt schemes_opts[] = {KVR_OPT_COMMON_END(struct schemes_args)};
static const struct kvr_opt_spec schemes_spec = {
    .usage = "usage: kvr help schemes [--json]\n"
             "\n"
             "Lists every scheme once, from the scheme table: its name, its label in\n"
             "figures, whether the executor runs it, the partitions it takes and a\n"
             "help line; then the partition sources and the plan names they make.\n",
    .opts = schemes_opts};

/* The plan names of scheme d in a sweep: its name, or NAME-SUFFIX per source it takes. */
static void json_plan_names(struct kvr_json *j, const struct kvr_scheme_desc *d)
{
    enum kvr_scheme s[64];
    int src[64], n = kvr_plan_series(s, src, 64);
    char name[64];
    kvr_json_key(j, "sweep_names");
    kvr_json_array_begin(j);
    for (int i = 0; i < n && i < 64; i++)
        if (s[i] == d->id) kvr_plan_name(s[i], src[i], name, sizeof name), kvr_json_str(j, name);
    kvr_json_array_end(j);
}

/* The options column, as JSON keys. */
static const struct {
    const char *key;
    unsigned bit;
} options[] = {{"any_partition", KVR_SO_PARTITION},
               {"searched", KVR_SO_SEARCHED},
               {"one_gpu", KVR_SO_ONE_GPU},
               {"zigzag", KVR_SO_ZIGZAG},
               {"sharded", KVR_SO_SHARDED},
               {"balanced", KVR_SO_BALANCED},
               {"layout", KVR_SO_LAYOUT}};

/* A partition source, as JSON. */
static void json_source(struct kvr_json *j, const struct kvr_part_source_desc *d)
{
    kvr_json_object_begin(j);
    kvr_json_kv_str(j, "name", d->name);
    kvr_json_kv_str(j, "suffix", d->suffix ? d->suffix : "");
    kvr_json_kv_str(j, "label", d->label);
    kvr_json_kv_bool(j, "needs_table", d->needs_table);
    kvr_json_object_end(j);
}

static void print_json(void)
{
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_key(&j, "schemes");
    kvr_json_array_begin(&j);
    for (int i = 0; i < KVR_N_SCHEMES; i++) {
        const struct kvr_scheme_desc *d = kvr_scheme_get((enum kvr_scheme)i);
        kvr_json_object_begin(&j);
        kvr_json_kv_str(&j, "name", d->name);
        kvr_json_kv_str(&j, "label", d->label);
        kvr_json_kv_bool(&j, "simulator", true);
        kvr_json_kv_bool(&j, "executor", d->executes);
        for (size_t k = 0; k < sizeof options / sizeof *options; k++)
            kvr_json_kv_bool(&j, options[k].key, d->options & options[k].bit);
        json_plan_names(&j, d);
        kvr_json_kv_str(&j, "help", d->help);
        kvr_json_object_end(&j);
    }
    kvr_json_array_end(&j);
    kvr_json_key(&j, "partition_sources");
    kvr_json_array_begin(&j);
    for (int i = 0; i < KVR_N_PART_SOURCES; i++)
        json_source(&j, kvr_part_source_get((enum kvr_part_source)i));
    kvr_json_array_end(&j);
    kvr_json_end(&j);
}

static void print_table(void)
{
    char names[512];
    printf("%-11s %-11s %-5s %-9s %s\n", "scheme", "label", "exec", "partition", "help");
    for (int i = 0; i < KVR_N_SCHEMES; i++) {
        const struct kvr_scheme_desc *d = kvr_scheme_get((enum kvr_scheme)i);
        printf("%-11s %-11s %-5s %-9s %s\n", d->name, d->label, d->executes ? "yes" : "-",
               d->options & KVR_SO_PARTITION ? "any"
               : d->options & KVR_SO_ONE_GPU ? "p=1"
                                             : "even",
               d->help);
    }
    printf("\npartition sources (a scheme that takes any partition: NAME-SUFFIX in sweeps):\n");
    for (int i = 0; i < KVR_N_PART_SOURCES; i++) {
        const struct kvr_part_source_desc *d = kvr_part_source_get((enum kvr_part_source)i);
        printf("  %-13s %s%s\n", d->name, d->suffix ? "suffix -" : "--partition",
               d->suffix ? d->suffix : "");
    }
    kvr_scheme_list_text(KVR_LIST_SERIES, names, sizeof names);
    printf("\nsweep series: %s\n", names);
}

enum kvr_status kvr_cmd_help_schemes(int argc, char **argv)
{
    struct schemes_args a = {0};
    enum kvr_status st;
    static char name[] = "help schemes"; /* the name in messages */
    argv[0] = name;
    if (kvr_opt_start(&schemes_spec, argc, argv, &a, NULL, &st)) return st;
    a.json ? print_json() : print_table();
    return KVR_OK;
}
