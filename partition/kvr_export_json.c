/* The JSON export, format 2: what a deployment needs to trust a table without kvrun. The
 * schema is partition/kvrun-lookup-table-2.schema.json; partition/README.md explains it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvr_export.h"
#include "kvr_json.h"

#define PARTITION_MEANING                                                                          \
    "partition_tokens[i] is the length of chunk i. Chunks are contiguous and in token order: "     \
    "chunk 0 holds the earliest tokens [0, c0), chunk i the tokens [c0+...+c(i-1), "               \
    "c0+...+ci). Chunk i runs at chain position i (it receives the KV cache of positions before "  \
    "it from position i-1 and sends its own onward to i+1; the last position emits the first "     \
    "token) on GPU mapping[i] of the machine."
#define INTERPOLATION                                                                              \
    "For ctx with a row: that row. Between the two neighbouring rows lo < ctx < hi: each "         \
    "chunk's fraction c_i/ctx is interpolated linearly in ctx, w = (ctx-lo)/(hi-lo). Rounding: "   \
    "with g = granularity_tokens (g = 1 when ctx < p*g), the cumulative boundaries "               \
    "b_i = llround(ctx*(f_0+...+f_i)/g)*g for i < p-1, each clamped to [b_(i-1)+g, "               \
    "floor((ctx-(p-1-i)*g)/g)*g] (b_(-1) = 0); the last chunk takes ctx - b_(p-2). Outside the "   \
    "rows: refused, or with clamp the nearest end row's fractions rounded the same way."

/* One "key=value" line's value: a JSON number when all of it parses as one, else a string. */
static void json_value(struct kvr_json *j, const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (*v && !*end && strcmp(v, "nan") && strcmp(v, "inf"))
        kvr_json_dbl(j, x);
    else
        kvr_json_str(j, v);
}

/* The canonical text as an object, every key once. */
static void json_definition(struct kvr_json *j, const char *text)
{
    kvr_json_key(j, "definition");
    kvr_json_object_begin(j);
    char line[1024];
    for (const char *s = text; *s;) {
        size_t n = strcspn(s, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), s);
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = 0;
            kvr_json_key(j, line);
            json_value(j, eq + 1);
        }
        s += n + (s[n] == '\n');
    }
    kvr_json_object_end(j);
}

/* The value of key in a canonical text (into buf), or NULL. */
static const char *lookup(const char *text, const char *key, char *buf, size_t cap)
{
    size_t k = strlen(key);
    for (const char *s = text; *s; s += strcspn(s, "\n") + (s[strcspn(s, "\n")] == '\n'))
        if (!strncmp(s, key, k) && s[k] == '=') {
            size_t n = strcspn(s + k + 1, "\n");
            snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), s + k + 1);
            return buf;
        }
    return NULL;
}

static void kv_from(struct kvr_json *j, const char *name, const char *text, const char *key)
{
    char buf[512];
    const char *v = lookup(text, key, buf, sizeof buf);
    kvr_json_key(j, name);
    if (v)
        json_value(j, v);
    else
        kvr_json_null(j);
}

/* The machine's numbers a reader looks for first, beside the full definition: JSON name, key
 * in the canonical text, and the object it sits in (NULL: the machine's own). */
static const struct {
    const char *name, *key, *object;
} machine_summary[] = {
    {"gpu", "gpu.name", NULL},
    {"p", "gpus", NULL},
    {"peak_flops", "gpu.peak_flops", NULL},
    {"mem_bytes", "gpu.mem_bytes", NULL},
    {"mem_Bps", "gpu.mem_Bps", NULL},
    {"intra_node_Bps", "intra_Bps", "links"},
    {"intra_node_latency_s", "intra_lat_s", "links"},
    {"inter_node_Bps", "inter_Bps", "links"},
    {"inter_node_latency_s", "inter_lat_s", "links"},
    {"gpus_per_node", "gpus_per_node", "links"},
    {"overlap_Bps", "overlap_Bps", "links"},
    {"mode", "noise.mode", "noise"},
    {"share", "noise.share", "noise"},
    {"seed", "noise.seed", "noise"},
    {"links", "noise.links", "noise"},
};

static void json_machine_summary(struct kvr_json *j, const struct kvr_definition *d)
{
    const char *open = NULL; /* the object the last entry sat in */
    for (size_t i = 0; i < sizeof machine_summary / sizeof *machine_summary; i++) {
        const char *in = machine_summary[i].object;
        if (open && (!in || strcmp(in, open))) kvr_json_object_end(j);
        if (in && (!open || strcmp(in, open))) {
            kvr_json_key(j, in);
            kvr_json_object_begin(j);
        }
        open = in;
        kv_from(j, machine_summary[i].name, d->canonical_text, machine_summary[i].key);
    }
    if (open) kvr_json_object_end(j);
    kvr_json_kv_str(j, "calibration_provenance", d->provenance);
}

static void json_definitions(struct kvr_json *j, const struct kvr_export_doc *d, const char *kind)
{
    kvr_json_key(j, !strcmp(kind, "model") ? "models" : "machines");
    kvr_json_array_begin(j);
    for (size_t i = 0; i < d->n_defs; i++) {
        const struct kvr_definition *x = &d->defs[i];
        if (strcmp(x->kind, kind)) continue;
        kvr_json_object_begin(j);
        kvr_json_kv_str(j, "name", x->name);
        kvr_json_kv_str(j, "hash", x->hash);
        if (!strcmp(kind, "machine")) json_machine_summary(j, x);
        json_definition(j, x->canonical_text);
        kvr_json_kv_str(j, "canonical_text", x->canonical_text);
        kvr_json_object_end(j);
    }
    kvr_json_array_end(j);
}

static void json_list(struct kvr_json *j, const char *key, const uint64_t *v, int p)
{
    kvr_json_key(j, key);
    kvr_json_array_begin(j);
    for (int i = 0; i < p; i++) kvr_json_u64(j, v ? v[i] : (uint64_t)i);
    kvr_json_array_end(j);
}

static void json_row(struct kvr_json *j, const struct kvr_plan_row *r,
                     const struct kvr_export_run *run)
{
    char stat[32];
    unsigned long trials;
    kvr_export_objective(r->machine, stat, sizeof stat, &trials);
    kvr_json_object_begin(j);
    kvr_json_kv_u64(j, "format_version", KVR_EXPORT_FORMAT_VERSION);
    kvr_json_kv_str(j, "model", r->model);
    kvr_json_kv_str(j, "model_hash", r->model_hash);
    kvr_json_kv_str(j, "machine", r->machine);
    kvr_json_kv_str(j, "machine_hash", r->machine_hash);
    kvr_json_kv_u64(j, "p", (uint64_t)r->p);
    kvr_json_kv_u64(j, "tp_degree", (uint64_t)(r->tp > 1 ? r->tp : 1));
    kvr_json_kv_str(j, "scheme", r->scheme);
    kvr_json_kv_str(j, "method", r->method);
    kvr_json_kv_str(j, "objective", stat);
    kvr_json_kv_u64(j, "objective_trials", trials);
    kvr_json_kv_u64(j, "granularity_tokens", r->granularity_tokens);
    kvr_json_kv_u64(j, "ctx_tokens", r->ctx_tokens);
    kvr_json_kv_dbl(j, "predicted_ttft_s", r->predicted_ttft_s);
    json_list(j, "partition_tokens", r->tokens, kvr_plan_row_chunks(r)); /* one per stage */
    kvr_json_key(j, "mapping"); /* chain position k runs on GPU mapping[k]; identity unless set */
    kvr_json_array_begin(j);
    for (int k = 0; k < r->p; k++) kvr_json_u64(j, (uint64_t)(r->n_mapping ? r->mapping[k] : k));
    kvr_json_array_end(j);
    kvr_json_kv_str(j, "simulator_version", run->version);
    kvr_json_kv_dbl(j, "searched_unix_s", run->started_unix_s);
    kvr_json_object_end(j);
}

void kvr_export_write_json(FILE *f, const struct kvr_export_doc *d)
{
    struct kvr_json j;
    char utc[32];
    time_t t = (time_t)d->created_unix_s;
    strftime(utc, sizeof utc, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    kvr_json_init(&j, f);
    kvr_json_object_begin(&j);
    kvr_json_kv_str(&j, "format", "kvrun-lookup-table");
    kvr_json_kv_u64(&j, "format_version", KVR_EXPORT_FORMAT_VERSION);
    kvr_json_kv_str(&j, "schema", "kvrun-lookup-table-2.schema.json");
    kvr_json_kv_str(&j, "generator", d->generator);
    kvr_json_kv_str(&j, "created_utc", utc);
    kvr_json_kv_dbl(&j, "created_unix_s", d->created_unix_s);
    kvr_json_kv_str(&j, "partition_meaning", PARTITION_MEANING);
    kvr_json_key(&j, "interpolation");
    kvr_json_object_begin(&j);
    kvr_json_kv_str(&j, "rule", "linear-fractions");
    kvr_json_kv_str(&j, "description", INTERPOLATION);
    kvr_json_object_end(&j);
    kvr_json_key(&j, "layout");
    kvr_json_object_begin(&j);
    /* the rows' common t (1 for a table without layouts, as before), 0 when they differ: each
     * row's tp_degree t then says it; t > 1 is a hybrid layout of p / t stages of t
     * tensor-parallel GPUs, chunk i (stage i) on the GPUs mapping[i t .. i t + t - 1] */
    int common = d->n ? (d->rows[0].tp > 1 ? d->rows[0].tp : 1) : 1;
    for (size_t i = 1; i < d->n; i++)
        if ((d->rows[i].tp > 1 ? d->rows[i].tp : 1) != common) common = 0;
    kvr_json_kv_u64(&j, "tp_degree", (uint64_t)common);
    kvr_json_kv_str(&j, "mapping",
                    "rows give mapping[i], the GPU of chunk i (chain position i); with "
                    "tp_degree t > 1, mapping[r] is the GPU of stage r / t, shard r % t, and "
                    "partition_tokens has p / t chunks, one per stage");
    kvr_json_object_end(&j);
    json_definitions(&j, d, "model");
    json_definitions(&j, d, "machine");
    kvr_json_key(&j, "rows");
    kvr_json_array_begin(&j);
    for (size_t i = 0; i < d->n; i++) json_row(&j, &d->rows[i], &d->runs[i]);
    kvr_json_array_end(&j);
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
}
