/* kvr sim: predict TTFT, per-rank times and memory of one plan; kvr bench sim: evaluations per
 * second of the simulator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_json.h"
#include "kvr_layout.h"
#include "kvr_machine_args.h"
#include "kvr_opt.h"
#include "kvr_out.h"
#include "kvr_search.h"
#include "kvr_search_plan.h"
#include "kvr_sim.h"
#include "kvr_units.h"
#include "kvr_stats.h"
#include "kvr_hash.h"
#include "kvr_timeline_out.h"

static const char usage[] =
    "usage: kvr sim [options]\n\nPredicts the TTFT of one plan with the analytical "
    "simulator.\n";

struct sim_args {
    const char *model, *gpus, *ctx, *scheme, *partition, *timeline, *timeline_format, *ring_pass,
        *kv_forward, *tp, *map, *chunk;
    const char *noise_opt; /* the first of --seed, --trials, --objective given (NULL: none) */
    struct kvr_machine_args mach;
    bool json, quiet, help, allow_oom, sp;
};

static enum kvr_status check_sim_args(void *args, const struct kvr_opt_result *res)
{
    struct sim_args *a = args;
    enum kvr_status st;
    if ((st = kvr_machine_args_finish(&a->mach))) return st;
    /* whether they mean anything depends on the machine's noise, profile included: checked
     * once it is built (kvr_machine_args_refuse_unrandom) */
    a->noise_opt = kvr_machine_args_noise_given(res);
    if (a->timeline_format && !a->timeline)
        st = kvr_error(KVR_ERR_USAGE, "sim: --timeline-format needs --timeline FILE");
    enum kvr_timeline_format fmt;
    if (!st && a->timeline) st = kvr_timeline_format_pick(a->timeline_format, a->timeline, &fmt);
    return st;
}

#define OFF(f) offsetof(struct sim_args, f)
static const struct kvr_opt sim_opts[] = {
    KVR_OPT("model", 'm', "M", OFF(model), "preset, .ini or config.json", .def = "llama-7b",
            .file = KVR_OPT_FILE_NAME),
    KVR_OPT("chunk", 0, "N", OFF(chunk),
            "one GPU: the prefill in sub-chunks of N tokens (kvr exec --chunk)",
            .def_help = "one chunk", .unit = "tokens"),
    KVR_MACHINE_OPTS(struct sim_args, mach, "a100-nvlink", "1"),
    KVR_OPT("gpus", 'g', "P", OFF(gpus), "GPUs used, at most the topology",
            .def_help = "all of the profile"),
    KVR_OPT("ctx", 'c', "N", OFF(ctx), "context tokens, k = 1024", .def = "16k", .unit = "tokens"),
    KVR_OPT("scheme", 's', "S", OFF(scheme),
            "@SIM_SCHEMES@\n(NAME-even: an even split; 'kvr help schemes')", .def = "kvr"),
    KVR_OPT("partition", 'P', "LIST", OFF(partition),
            "chunk per rank for @PART_SCHEMES@, e.g. 6144,4096,3584,2560 (tokens)",
            .def_help = "the closed-form split balancing linear + attention compute"),
    KVR_OPT("tp", 0, "T", OFF(tp),
            "hybrid layout: p/T stages, each a Megatron tensor-parallel group of T\nGPUs, for "
            "@LAYOUT_SCHEMES@ (1: the plain scheme, the same numbers)",
            .def_help = "the plain scheme"),
    KVR_OPT("map", 0, "M", OFF(map),
            "the GPU of each rank (rank = stage * T + shard): block (the identity: a\nstage on "
            "consecutive GPUs), strided (rank s*T+j on GPU j*p/T+s: the chain\non consecutive "
            "GPUs) or a list G0,G1,... of p distinct GPUs",
            .def = "block"),
    KVR_OPT("sp", 0, NULL, OFF(sp),
            "with --tp 2 or more: Megatron's sequence parallelism (norms and\nresiduals on 1/T of "
            "a stage's tokens; reduce-scatter + all-gather, the same bytes)"),
    KVR_OPT("timeline", 't', "FILE", OFF(timeline),
            "write the events of trial 0 (TSV; Chrome trace for *.json)", .file = KVR_OPT_FILE_OUT),
    KVR_OPT("kv-forward", 'F', "MODE", OFF(kv_forward),
            "the KV chain's hand-off (kvr): whole (store-and-forward, the\ndefault), streamed "
            "(each piece on as it arrives), direct (each chunk\nto every later rank)"),
    KVR_OPT("ring-pass", 0, "P", OFF(ring_pass),
            "ring: kv passes the K/V blocks around (default), q the queries,\nauto the faster "
            "of the two for this shape and machine"),
    KVR_OPT("allow-oom", 0, NULL, OFF(allow_oom),
            "print the plan even when it does not fit in GPU memory, exit 0\n(else exit 3 "
            "with the bytes needed and available per rank)"),
    KVR_OPT("timeline-format", 0, "F", OFF(timeline_format),
            "tsv or chrome (Trace Event Format, for Perfetto)", .def_help = "by the suffix"),
    KVR_OPT_COMMON_END(struct sim_args)};
#undef OFF

static const struct kvr_opt_spec sim_spec = {
    .usage = usage, .opts = sim_opts, .check = check_sim_args};

static enum kvr_status setup_machine(const struct sim_args *a, struct kvr_machine *h)
{
    return kvr_machine_args_build(&a->mach, NULL, a->gpus, h);
}

/* --tp and --sp onto the plan (checked on the model and p). */
static enum kvr_status setup_layout(const struct sim_args *a, const struct kvr_model *m,
                                    struct kvr_plan *plan)
{
    if (!a->tp) return a->sp ? kvr_error(KVR_ERR_INPUT, "--sp needs --tp T (2 or more)") : KVR_OK;
    uint64_t t;
    if (kvr_parse_u64(a->tp, KVR_MAX_GPUS, &t) || t == 0)
        return kvr_error(KVR_ERR_INPUT, "--tp: '%s' is not a TP degree in 1..%d", a->tp,
                         KVR_MAX_GPUS);
    /* --scheme tp is t = p, one stage, as kvr exec's --scheme tp --tp P */
    if (plan->scheme == KVR_SCHEME_TP && (int)t != plan->p)
        return kvr_error(KVR_ERR_INPUT, "--scheme tp runs one stage of all %d GPUs: not --tp %s",
                         plan->p, a->tp);
    if (plan->scheme == KVR_SCHEME_TP)
        return a->sp ? kvr_error(KVR_ERR_INPUT, "--sp: --scheme tp has no sequence parallelism")
                     : KVR_OK;
    plan->tp = (int)t;
    plan->sp = a->sp;
    return kvr_layout_check(m, plan);
}

/* --map: the machine seen from the ranks (kvr_machine_permute, as the search's mappings);
 * map[] gets the GPU of each rank. */
static enum kvr_status apply_map(const struct sim_args *a, const struct kvr_plan *plan,
                                 struct kvr_machine *h, int *map)
{
    static _Thread_local struct kvr_machine base; /* large: link matrices */
    int total = h->n_nodes * h->gpus_per_node, kind = kvr_map_from_name(a->map),
        chain[KVR_MAX_GPUS];
    if (kind >= 0) {
        kvr_layout_map((enum kvr_map)kind, plan->p, kvr_plan_tp(plan), total, map);
    } else {
        char text[1024];
        snprintf(text, sizeof text, "%s", a->map);
        for (char *c = text; *c; c++) *c = *c == ',' ? ';' : *c;
        enum kvr_status st = kvr_mapping_parse(text, plan->p, total, chain);
        if (!st) st = kvr_mapping_complete(chain, plan->p, total, map);
        if (st) return kvr_error_prefix(st, "--map: block, strided or a list of GPUs: ");
    }
    /* the plan's GPUs, not the profile's: single runs on one of them (its --link 0-1 was
     * taken and changed nothing) */
    enum kvr_status st = kvr_machine_args_check_used(&a->mach, h, map, plan->p);
    base = *h;
    return st ? st : kvr_machine_permute(&base, map, h);
}

static enum kvr_status setup_plan(const struct sim_args *a, const struct kvr_model *m,
                                  const struct kvr_machine *h, struct kvr_plan *plan)
{
    *plan = (struct kvr_plan){.p = h->n_gpus};
    if (kvr_parse_tokens(a->ctx, KVR_MAX_CTX, &plan->ctx))
        return kvr_error_prefix(KVR_ERR_INPUT, "--ctx: ");
    if (plan->ctx == 0) return kvr_error(KVR_ERR_INPUT, "--ctx: '%s' must be positive", a->ctx);
    int src = -1;
    char names[512];
    bool known = kvr_plan_name_parse(a->scheme, &plan->scheme, &src);
    kvr_scheme_list_text(KVR_LIST_SIM, names, sizeof names);
    if (!known)
        return kvr_error(KVR_ERR_INPUT, "--scheme: unknown scheme '%s' (%s)", a->scheme, names);
    if (src >= 0 && kvr_part_source_get(src)->needs_table)
        return kvr_error(KVR_ERR_INPUT,
                         "--scheme: '%s' takes its partition from a lookup table: get it with "
                         "kvr lookup and pass it as --partition (kvr sim takes %s)",
                         a->scheme, names);
    const struct kvr_scheme_desc *d = kvr_scheme_get(plan->scheme);
    if ((d->options & KVR_SO_ONE_GPU) && a->gpus && h->n_gpus > 1)
        return kvr_error(KVR_ERR_INPUT, "--gpus %s: scheme %s runs on one GPU", a->gpus, a->scheme);
    if (d->options & KVR_SO_ONE_GPU) plan->p = 1;
    enum kvr_status lst = setup_layout(a, m, plan);
    if (lst) return lst;
    if (a->partition && (!(d->options & KVR_SO_PARTITION) || src >= 0)) {
        kvr_scheme_list_text(KVR_LIST_PARTITION, names, sizeof names);
        return kvr_error(KVR_ERR_INPUT, "--partition applies to schemes %s only, not %s", names,
                         a->scheme);
    }
    if (a->kv_forward && !(d->options & KVR_SO_FORWARD))
        return kvr_error(KVR_ERR_INPUT, "--kv-forward %s: scheme %s has no KV chain to forward",
                         a->kv_forward, a->scheme);
    if (a->kv_forward) {
        int f = kvr_kv_forward_from_name(a->kv_forward);
        kvr_kv_forward_list_text(names, sizeof names);
        if (f < 0)
            return kvr_error(KVR_ERR_INPUT, "--kv-forward: unknown mode '%s' (%s)", a->kv_forward,
                             names);
        plan->kv_forward = (enum kvr_kv_forward)f;
    }
    bool balanced = src < 0 ? (d->options & KVR_SO_BALANCED) : src == KVR_PART_BALANCED;
    if (a->partition) {
        enum kvr_status st = kvr_plan_parse_partition(plan, a->partition);
        if (st) return st;
    } else if (balanced) {
        kvr_plan_balanced(plan, m, &h->gpu);
    } else {
        kvr_plan_even(plan);
    }
    if (a->ring_pass && plan->scheme != KVR_SCHEME_RING)
        return kvr_error(KVR_ERR_INPUT, "--ring-pass applies to --scheme ring only, not %s",
                         a->scheme);
    int rp = a->ring_pass ? kvr_ring_pass_from_name(a->ring_pass) : KVR_RING_PASS_KV;
    if (rp < 0)
        return kvr_error(KVR_ERR_INPUT, "--ring-pass: '%s' is not kv, q or auto", a->ring_pass);
    plan->ring_pass = (enum kvr_ring_pass)rp;
    if (a->chunk && (kvr_parse_tokens(a->chunk, KVR_MAX_CTX, &plan->chunk) || plan->chunk == 0))
        return kvr_error(KVR_ERR_INPUT, "--chunk: '%s' is not a token count >= 1", a->chunk);
    enum kvr_status st = kvr_plan_check(plan, h);
    return st ? kvr_error_prefix(st, "plan: ") : KVR_OK;
}

struct trial_stats {
    double p50, p95, mean, objective; /* objective: --objective's statistic of the trials */
};

/* Runs trial 0 (with the timeline) and the other trials for statistics. */
static enum kvr_status run_trials(struct kvr_sim *sim, const struct kvr_plan *plan, uint64_t trials,
                                  double pct, struct kvr_sim_result *res, struct kvr_timeline *tl,
                                  struct trial_stats *stats)
{
    double *ttft = malloc(trials * sizeof *ttft), sum = 0;
    if (!ttft)
        return kvr_error(KVR_ERR_NOMEM, "sim: out of memory for %llu trials",
                         (unsigned long long)trials);
    enum kvr_status st = KVR_OK;
    for (uint64_t t = 0; t < trials && !st; t++) {
        struct kvr_sim_result r;
        st = kvr_sim_draw_noise(sim, t);
        if (!st) st = kvr_sim_run(sim, plan, t == 0 ? res : &r, t == 0 ? tl : NULL);
        ttft[t] = t == 0 ? res->ttft_s : r.ttft_s;
        sum += ttft[t];
    }
    *stats = (struct trial_stats){
        kvr_quantile(ttft, trials, 0.5), kvr_quantile(ttft, trials, 0.95), sum / (double)trials,
        pct > 0 ? kvr_quantile(ttft, trials, pct / 100) : sum / (double)trials};
    free(ttft);
    return st;
}

/* The layout's keys: tp, stages, map (its name, or the GPU list), bytes_inter_node. */
static void json_layout(struct kvr_json *j, const struct kvr_plan *plan, const int *map,
                        const struct kvr_sim_result *r)
{
    int t = kvr_plan_tp(plan), kind = kvr_layout_map_kind(map, plan->p, t);
    char text[512];
    kvr_mapping_format(map, plan->p, text, sizeof text);
    kvr_json_kv_u64(j, "tp", (uint64_t)t);
    kvr_json_kv_u64(j, "stages", (uint64_t)kvr_plan_stages(plan));
    kvr_json_kv_bool(j, "sp", plan->sp);
    kvr_json_kv_str(j, "map", kind >= 0 ? kvr_map_name((enum kvr_map)kind) : text);
    kvr_json_key(j, "mapping");
    kvr_json_array_begin(j);
    for (int i = 0; i < plan->p; i++) kvr_json_u64(j, (uint64_t)map[i]);
    kvr_json_array_end(j);
    kvr_json_kv_dbl(j, "bytes_inter_node", r->bytes_inter_node);
}

static void print_json(const struct kvr_model *m, const struct kvr_machine *h,
                       const struct kvr_plan *plan, const int *map, const struct kvr_sim_result *r,
                       const struct trial_stats *stats, bool with_stats, const char *scheme,
                       const char *objective)
{
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_kv_str(&j, "scheme", scheme);
    kvr_json_kv_str(&j, "model", m->name);
    kvr_json_kv_str(&j, "machine", h->name);
    kvr_json_kv_u64(&j, "p", (uint64_t)plan->p);
    kvr_json_kv_u64(&j, "ctx", plan->ctx);
    if (plan->scheme == KVR_SCHEME_RING)
        kvr_json_kv_str(&j, "ring_pass", kvr_ring_pass_name(r->ring_pass));
    kvr_json_kv_dbl(&j, "ttft_s", r->ttft_s);
    kvr_json_kv_dbl(&j, "lower_bound_s", r->lower_bound_s);
    kvr_json_kv_dbl(&j, "lower_bound_ratio", r->ttft_s / r->lower_bound_s);
    if (with_stats) {
        kvr_json_kv_dbl(&j, "ttft_p50_s", stats->p50);
        kvr_json_kv_dbl(&j, "ttft_p95_s", stats->p95);
        kvr_json_kv_dbl(&j, "ttft_mean_s", stats->mean);
        kvr_json_kv_str(&j, "objective", objective ? objective : "mean");
        kvr_json_kv_dbl(&j, "objective_s", stats->objective);
    }
    json_layout(&j, plan, map, r);
    kvr_json_key(&j, "partition"); /* per stage: per rank without --tp */
    kvr_json_array_begin(&j);
    for (int i = 0; i < kvr_plan_stages(plan); i++)
        kvr_json_u64(&j, r->rank[i * kvr_plan_tp(plan)].tokens);
    kvr_json_array_end(&j);
    if (kvr_scheme_get(plan->scheme)->options & KVR_SO_FORWARD) {
        kvr_json_kv_str(&j, "kv_forward", kvr_kv_forward_name(plan->kv_forward));
        kvr_json_kv_dbl(&j, "last_first_wait_s", r->rank[plan->p - 1].first_wait_s);
    }
    kvr_json_kv_dbl(&j, "bytes_sent_total", r->bytes_sent_total);
    kvr_json_kv_dbl(&j, "mem_available_bytes", r->mem_available_bytes);
    kvr_json_key(&j, "ranks");
    kvr_json_array_begin(&j);
    for (int i = 0; i < plan->p; i++) {
        const struct kvr_rank_result *x = &r->rank[i];
        kvr_json_object_begin(&j);
        kvr_json_kv_u64(&j, "rank", (uint64_t)i);
        kvr_json_kv_u64(&j, "stage", (uint64_t)(i / kvr_plan_tp(plan)));
        kvr_json_kv_u64(&j, "shard", (uint64_t)(i % kvr_plan_tp(plan)));
        kvr_json_kv_u64(&j, "gpu", (uint64_t)map[i]);
        kvr_json_kv_u64(&j, "tokens", x->tokens);
        kvr_json_kv_dbl(&j, "compute_s", x->compute_s);
        kvr_json_kv_dbl(&j, "comm_s", x->comm_s);
        kvr_json_kv_dbl(&j, "wait_s", x->wait_s);
        kvr_json_kv_dbl(&j, "first_wait_s", x->first_wait_s);
        kvr_json_kv_dbl(&j, "mem_bytes", x->mem_bytes);
        kvr_json_kv_bool(&j, "fits", x->fits);
        kvr_json_object_end(&j);
    }
    kvr_json_array_end(&j);
    kvr_json_end(&j);
}

static void print_table(const struct kvr_model *m, const struct kvr_machine *h,
                        const struct kvr_plan *plan, const int *map, const struct kvr_sim_result *r,
                        const struct trial_stats *stats, bool with_stats, const char *scheme,
                        const char *objective)
{
    char a[32], b[32], c[32], d[32], text[512];
    printf("%s: %s on %s, p = %d, ctx = %s\n", scheme, m->name, h->name, plan->p,
           kvr_format_tokens(a, sizeof a, plan->ctx));
    int t = kvr_plan_tp(plan), kind = kvr_layout_map_kind(map, plan->p, t);
    kvr_mapping_format(map, plan->p, text, sizeof text);
    if (plan->tp > 0 || kind != KVR_MAP_BLOCK)
        printf("layout: %d stages x tp %d%s, map %s (GPUs %s)   between nodes %s\n",
               kvr_plan_stages(plan), t, plan->sp ? " + sp" : "",
               kind >= 0 ? kvr_map_name((enum kvr_map)kind) : "given", text,
               kvr_format_bytes(a, sizeof a, r->bytes_inter_node));
    if (plan->scheme == KVR_SCHEME_RING) printf("ring pass %s\n", kvr_ring_pass_name(r->ring_pass));
    printf("TTFT %s   lower bound %s (x%.3f)   sent %s\n",
           kvr_format_duration(a, sizeof a, r->ttft_s),
           kvr_format_duration(b, sizeof b, r->lower_bound_s), r->ttft_s / r->lower_bound_s,
           kvr_format_bytes(c, sizeof c, r->bytes_sent_total));
    if (kvr_scheme_get(plan->scheme)->options & KVR_SO_FORWARD)
        printf("KV hand-off %s   last rank's start-up wait (layer 0) %s\n",
               kvr_kv_forward_name(plan->kv_forward),
               kvr_format_duration(a, sizeof a, r->rank[plan->p - 1].first_wait_s));
    if (with_stats)
        printf("noise: p50 %s  p95 %s  mean %s  objective (%s) %s\n",
               kvr_format_duration(a, sizeof a, stats->p50),
               kvr_format_duration(b, sizeof b, stats->p95),
               kvr_format_duration(c, sizeof c, stats->mean), objective ? objective : "mean",
               kvr_format_duration(d, sizeof d, stats->objective));
    printf("%4s %4s %8s %11s %11s %11s %12s %s\n", "rank", "gpu", "tokens", "compute", "comm",
           "wait", "memory", "fits");
    for (int i = 0; i < plan->p; i++) {
        const struct kvr_rank_result *x = &r->rank[i];
        printf("%4d %4d %8llu %11s %11s %11s %12s %s\n", i, map[i], (unsigned long long)x->tokens,
               kvr_format_duration(a, sizeof a, x->compute_s),
               kvr_format_duration(b, sizeof b, x->comm_s),
               kvr_format_duration(c, sizeof c, x->wait_s),
               kvr_format_bytes(d, sizeof d, x->mem_bytes), x->fits ? "yes" : "NO");
    }
    for (int i = 0; i < plan->p; i++)
        if (!r->rank[i].fits)
            printf("rank %d does not fit: needs %s, has %s\n", i,
                   kvr_format_bytes(a, sizeof a, r->rank[i].mem_bytes),
                   kvr_format_bytes(b, sizeof b, r->mem_available_bytes));
}

enum kvr_status kvr_cmd_sim(int argc, char **argv)
{
    struct sim_args a = {0};
    enum kvr_status st;
    if (kvr_opt_start(&sim_spec, argc, argv, &a, NULL, &st)) return st;
    struct kvr_model m;
    static struct kvr_machine h; /* large: link matrices */
    struct kvr_plan plan;
    int map[KVR_MAX_GPUS];
    if ((st = kvr_model_resolve(a.model, &m)) || (st = setup_machine(&a, &h)) ||
        (st = kvr_machine_args_refuse_unrandom(a.noise_opt, &h)) ||
        (st = setup_plan(&a, &m, &h, &plan)) || (st = apply_map(&a, &plan, &h, map)))
        return st;
    struct kvr_sim *sim = NULL;
    if ((st = kvr_sim_open(&m, &h, &sim))) return st;
    /* per rank and layer: the phases, a layout's stage collectives with their waits, and up to
     * 8 events a peer (ring pass-Q: a step's send, attention and wait, a return's send, wait
     * and merge) */
    size_t cap = (size_t)plan.p * (m.n_layers + 2) * (16 + 8 * (size_t)plan.p);
    struct kvr_timeline tl = {.events = a.timeline ? calloc(cap, sizeof(struct kvr_event)) : NULL,
                              .cap = cap};
    struct kvr_sim_result res;
    struct trial_stats stats = {0, 0, 0, 0};
    if (a.timeline && !tl.events) st = kvr_error(KVR_ERR_NOMEM, "sim: no memory for the timeline");
    double pct = 0;
    if (!st) st = kvr_machine_args_percentile(&a.mach, &pct);
    if (!st) st = run_trials(sim, &plan, a.mach.trials, pct, &res, a.timeline ? &tl : NULL, &stats);
    if (!st && a.timeline && tl.n_dropped) /* never a timeline with events missing */
        st = kvr_error(KVR_ERR_RUNTIME, "--timeline: %zu events beyond the %zu allotted",
                       tl.n_dropped, tl.cap);
    if (!st && a.timeline) {
        enum kvr_timeline_format fmt;
        struct kvr_plan ran = plan; /* what ran: ring's pass resolved */
        ran.ring_pass = res.ring_pass;
        struct kvr_timeline_meta meta = {a.scheme, m.name,     h.name, "simulator",
                                         plan.p,   res.ttft_s, &ran,   kvr_model_hash(&m)};
        st = kvr_timeline_format_pick(a.timeline_format, a.timeline, &fmt);
        if (!st) st = kvr_timeline_write(a.timeline, fmt, tl.events, tl.n, &meta);
    }
    bool with_stats = a.mach.trials > 1 || h.noise.mode != KVR_NOISE_NONE;
    if (!st && a.json)
        print_json(&m, &h, &plan, map, &res, &stats, with_stats, a.scheme, a.mach.objective);
    else if (!st)
        print_table(&m, &h, &plan, map, &res, &stats, with_stats, a.scheme, a.mach.objective);
    if (!st && !a.allow_oom) st = kvr_sim_check_fits(&res);
    free(tl.events);
    kvr_sim_free(sim);
    return st;
}
