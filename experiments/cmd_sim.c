/* kvr sim: predict TTFT, per-rank times and memory of one plan; kvr bench sim: evaluations per
 * second of the simulator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_json.h"
#include "kvr_machine_args.h"
#include "kvr_sim.h"
#include "kvr_units.h"

static const char sim_help[] =
    "usage: kvr sim [options]\n"
    "\n"
    "Predicts the TTFT of one plan with the analytical simulator.\n"
    "\n"
    "  -m, --model M         preset, .ini or config.json        (default llama-7b)\n"
    "  -H, --machine H       preset or .ini profile             (default a100-nvlink)\n"
    "  -g, --gpus P          GPUs used, at most the topology    (default: all of the profile)\n"
    "  -c, --ctx N           context tokens, k = 1024           (default 16k)\n"
    "  -s, --scheme S        @SIM_SCHEMES@\n"
    "                        (default kvr; NAME-even: an even split; 'kvr help schemes')\n"
    "  -P, --partition LIST  chunk per rank for @PART_SCHEMES@, e.g. 6144,4096,3584,2560\n"
    "                        (tokens; default: kvr the closed-form split balancing linear +\n"
    "                        attention compute, the others even)\n"
    "  -F, --kv-forward MODE the KV chain's hand-off (kvr): whole (store-and-forward,\n"
    "                        the default), streamed (each piece on as it arrives),\n"
    "                        direct (each chunk to every later rank)\n" KVR_MACHINE_ARGS_HELP
    "  -t, --timeline FILE   write the events as TSV\n"
    "  -j, --json            print JSON instead of a table\n"
    "  -h, --help            this help\n";

struct sim_args {
    const char *model, *gpus, *ctx, *scheme, *partition, *timeline, *kv_forward;
    struct kvr_machine_args mach;
    bool json, help;
};

static enum kvr_status parse_sim_args(int argc, char **argv, struct sim_args *a)
{
    /* clang-format off */
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},    KVR_MACHINE_ARGS_OPTIONS,
        {"gpus", required_argument, NULL, 'g'},     {"ctx", required_argument, NULL, 'c'},
        {"scheme", required_argument, NULL, 's'},   {"partition", required_argument, NULL, 'P'},
        {"timeline", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},           {"kv-forward", required_argument, NULL, 'F'},
        {NULL, 0, NULL, 0}};
    /* clang-format on */
    *a = (struct sim_args){.model = "llama-7b",
                           .ctx = "16k",
                           .scheme = "kvr",
                           .mach = {.machine = "a100-nvlink", .trials = 1}};
    int c;
    kvr_cli_opt_reset();
    while ((c = kvr_cli_getopt(argc, argv, "m:H:g:c:s:P:t:F:jh", opts)) != -1) {
        switch (c) {
        case '?':
            return KVR_ERR_USAGE;
        case 'h':
            a->help = true;
            return KVR_OK;
        case 'm':
            a->model = optarg;
            break;
        case 'g':
            a->gpus = optarg;
            break;
        case 'c':
            a->ctx = optarg;
            break;
        case 's':
            a->scheme = optarg;
            break;
        case 'P':
            a->partition = optarg;
            break;
        case 't':
            a->timeline = optarg;
            break;
        case 'F':
            a->kv_forward = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        default: {
            enum kvr_status st;
            if (kvr_machine_args_take(&a->mach, c, optarg, &st) && st) return st;
        }
        }
    }
    if (optind != argc)
        return kvr_error(KVR_ERR_USAGE, "sim: unexpected argument '%s'", argv[optind]);
    return KVR_OK;
}

static enum kvr_status setup_machine(const struct sim_args *a, struct kvr_machine *h)
{
    return kvr_machine_args_build(&a->mach, NULL, a->gpus, h);
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
    if (!kvr_plan_name_parse(a->scheme, &plan->scheme, &src) ||
        (src >= 0 && kvr_part_source_get(src)->needs_table)) {
        kvr_scheme_list_text(KVR_LIST_SIM, names, sizeof names);
        return kvr_error(KVR_ERR_INPUT, "--scheme: unknown scheme '%s' (%s)", a->scheme, names);
    }
    const struct kvr_scheme_desc *d = kvr_scheme_get(plan->scheme);
    if (d->options & KVR_SO_ONE_GPU) plan->p = 1;
    if (a->partition && (!(d->options & KVR_SO_PARTITION) || src >= 0)) {
        kvr_scheme_list_text(KVR_LIST_PARTITION, names, sizeof names);
        return kvr_error(KVR_ERR_INPUT, "--partition applies to schemes %s only, not %s", names,
                         a->scheme);
    }
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
    enum kvr_status st = kvr_plan_check(plan, h);
    return st ? kvr_error_prefix(st, "plan: ") : KVR_OK;
}

struct trial_stats {
    double p50, p95, mean;
};

/* Written to PATH.tmp and renamed, so a failure never leaves a half-written file. */
static enum kvr_status write_timeline(const char *path, const struct kvr_timeline *tl)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return kvr_error(KVR_ERR_IO, "--timeline: cannot write '%s'", tmp);
    fprintf(f, "rank\tlayer\tkind\twhat\tstart_s\tend_s\tbytes\tpeer\n");
    for (size_t i = 0; i < tl->n; i++) {
        const struct kvr_event *e = &tl->events[i];
        fprintf(f, "%d\t%d\t%s\t%s\t%.9g\t%.9g\t%.0f\t%d\n", e->rank, e->layer,
                kvr_event_kind_name(e->kind), e->what, e->start_s, e->end_s, e->bytes, e->peer);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return kvr_error(KVR_ERR_IO, "--timeline: error writing '%s'", path);
    }
    return KVR_OK;
}

/* Runs trial 0 (with the timeline) and the other trials for statistics. */
static enum kvr_status run_trials(struct kvr_sim *sim, const struct kvr_plan *plan, uint64_t trials,
                                  struct kvr_sim_result *res, struct kvr_timeline *tl,
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
    *stats = (struct trial_stats){kvr_quantile(ttft, trials, 0.5), kvr_quantile(ttft, trials, 0.95),
                                  sum / (double)trials};
    free(ttft);
    return st;
}

static void print_json(const struct kvr_model *m, const struct kvr_machine *h,
                       const struct kvr_plan *plan, const struct kvr_sim_result *r,
                       const struct trial_stats *stats, bool with_stats, const char *scheme)
{
    struct kvr_json j;
    kvr_json_init(&j, stdout);
    kvr_json_object_begin(&j);
    kvr_json_kv_str(&j, "scheme", scheme);
    kvr_json_kv_str(&j, "model", m->name);
    kvr_json_kv_str(&j, "machine", h->name);
    kvr_json_kv_u64(&j, "p", (uint64_t)plan->p);
    kvr_json_kv_u64(&j, "ctx", plan->ctx);
    kvr_json_kv_dbl(&j, "ttft_s", r->ttft_s);
    kvr_json_kv_dbl(&j, "lower_bound_s", r->lower_bound_s);
    kvr_json_kv_dbl(&j, "lower_bound_ratio", r->ttft_s / r->lower_bound_s);
    if (with_stats) {
        kvr_json_kv_dbl(&j, "ttft_p50_s", stats->p50);
        kvr_json_kv_dbl(&j, "ttft_p95_s", stats->p95);
        kvr_json_kv_dbl(&j, "ttft_mean_s", stats->mean);
    }
    kvr_json_key(&j, "partition");
    kvr_json_array_begin(&j);
    for (int i = 0; i < plan->p; i++) kvr_json_u64(&j, r->rank[i].tokens);
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
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
}

static void print_table(const struct kvr_model *m, const struct kvr_machine *h,
                        const struct kvr_plan *plan, const struct kvr_sim_result *r,
                        const struct trial_stats *stats, bool with_stats, const char *scheme)
{
    char a[32], b[32], c[32], d[32];
    printf("%s: %s on %s, p = %d, ctx = %s\n", scheme, m->name, h->name, plan->p,
           kvr_format_tokens(a, sizeof a, plan->ctx));
    printf("TTFT %s   lower bound %s (x%.3f)   sent %s\n",
           kvr_format_duration(a, sizeof a, r->ttft_s),
           kvr_format_duration(b, sizeof b, r->lower_bound_s), r->ttft_s / r->lower_bound_s,
           kvr_format_bytes(c, sizeof c, r->bytes_sent_total));
    if (kvr_scheme_get(plan->scheme)->options & KVR_SO_FORWARD)
        printf("KV hand-off %s   last rank's start-up wait (layer 0) %s\n",
               kvr_kv_forward_name(plan->kv_forward),
               kvr_format_duration(a, sizeof a, r->rank[plan->p - 1].first_wait_s));
    if (with_stats)
        printf("noise: p50 %s  p95 %s  mean %s\n", kvr_format_duration(a, sizeof a, stats->p50),
               kvr_format_duration(b, sizeof b, stats->p95),
               kvr_format_duration(c, sizeof c, stats->mean));
    printf("%4s %8s %11s %11s %11s %12s %s\n", "rank", "tokens", "compute", "comm", "wait",
           "memory", "fits");
    for (int i = 0; i < plan->p; i++) {
        const struct kvr_rank_result *x = &r->rank[i];
        printf("%4d %8llu %11s %11s %11s %12s %s\n", i, (unsigned long long)x->tokens,
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
    struct sim_args a;
    enum kvr_status st = parse_sim_args(argc, argv, &a);
    if (st || a.help) return st ? st : (kvr_cli_print_help(stdout, sim_help), KVR_OK);
    struct kvr_model m;
    static struct kvr_machine h; /* large: link matrices */
    struct kvr_plan plan;
    if ((st = kvr_model_resolve(a.model, &m)) || (st = setup_machine(&a, &h)) ||
        (st = setup_plan(&a, &m, &h, &plan)))
        return st;
    struct kvr_sim *sim = NULL;
    if ((st = kvr_sim_open(&m, &h, &sim))) return st;
    size_t cap = (size_t)plan.p * (m.n_layers + 2) * (6 + 3 * (size_t)plan.p);
    struct kvr_timeline tl = {.events = a.timeline ? calloc(cap, sizeof(struct kvr_event)) : NULL,
                              .cap = cap};
    struct kvr_sim_result res;
    struct trial_stats stats = {0, 0, 0};
    if (a.timeline && !tl.events) st = kvr_error(KVR_ERR_NOMEM, "sim: no memory for the timeline");
    if (!st) st = run_trials(sim, &plan, a.mach.trials, &res, a.timeline ? &tl : NULL, &stats);
    if (!st && a.timeline) st = write_timeline(a.timeline, &tl);
    bool with_stats = a.mach.trials > 1 || h.noise.mode != KVR_NOISE_NONE;
    if (!st && a.json)
        print_json(&m, &h, &plan, &res, &stats, with_stats, a.scheme);
    else if (!st)
        print_table(&m, &h, &plan, &res, &stats, with_stats, a.scheme);
    free(tl.events);
    kvr_sim_free(sim);
    return st;
}
