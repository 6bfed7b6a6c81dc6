/* kvr exec under mpirun: the plan's partition (given, from the lookup table, or even), the
 * emulated links, the timed run on every rank, and rank 0's report and measurement row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_exec.h"
#include "kvr_exec_ranks.h"
#include "kvr_layout.h"
#include "kvr_interp.h"
#include "kvr_json.h"
#include "kvr_measure.h"
#include "kvr_mpi.h"
#include "kvr_search.h"
#include "kvr_search_cli.h"
#include "kvr_store.h"
#include "kvr_tp.h"
#include "kvr_units.h"

struct plan_choice {
    uint64_t tokens[KVR_MAX_GPUS];
    char method[32]; /* given, kvr-e, kvr-s, kvr-p; even for tsp; pass-kv or pass-q for ring */
    int kv_forward;  /* the table row's hand-off mode; -1 without one */
    enum kvr_kv_forward mode; /* what runs: --kv-forward, else the table's, else whole */
};

/* The table's mode at ctx: the exact row's; between rows, theirs when they all agree, else
 * whole (an interpolated partition was searched for no one mode). */
static int table_mode(const struct kvr_plan_row *rows, size_t n, uint64_t ctx, bool exact)
{
    int mode = -1;
    for (size_t i = 0; i < n; i++) {
        int f = kvr_kv_forward_from_name(rows[i].kv_forward);
        if (exact && rows[i].ctx_tokens == ctx) return f;
        if (!exact) mode = mode == -1 || mode == f ? f : KVR_FWD_WHOLE;
    }
    return mode < 0 ? KVR_FWD_WHOLE : mode;
}

/* KVR-S when the table has the context, KVR-P (linear, as the paper) between its rows (with
 * --db and --machine; without --machine, --db only receives the measurement); with --tp T the
 * plan rows of that t at p * T GPUs. */

static enum kvr_status from_table(const struct exec_args *a, const struct kvr_model *m,
                                  const struct kvr_machine *h, int p, struct plan_choice *c)
{
    char key[512], tp_text[32] = "";
    kvr_machine_args_key(&a->mach, h->name, key, sizeof key);
    struct kvr_plan_row hk;
    kvr_plan_row_set_hashes(&hk, m, h); /* h is the machine at p * tp (every rank) */
    if (a->tp > 1) snprintf(tp_text, sizeof tp_text, ", tp %d", a->tp);
    struct kvr_plan_filter f = {.model = m->name,
                                .machine = key,
                                .scheme = kvr_scheme_name(a->scheme),
                                .method = kvr_part_source_get(KVR_PART_SEARCHED)->sweep,
                                .p = p * a->tp, /* p: the stages */
                                .tp = a->tp > 1 ? a->tp : 0,
                                .model_hash = hk.model_hash,
                                .machine_hash = hk.machine_hash};
    struct kvr_store *store = NULL;
    struct kvr_plan_row *rows = NULL;
    size_t n = 0;
    struct kvr_lookup_answer ans;
    enum kvr_status st = kvr_store_open(a->db, KVR_STORE_READ, &store);
    if (!st) st = kvr_store_list_plans(store, &f, &rows, &n);
    size_t n_other = 0;
    if (!st && n == 0) st = kvr_store_count_other_definitions(store, &f, &n_other);
    if (!st && n == 0)
        st = kvr_error(KVR_ERR_INPUT,
                       "%s: no plan rows for %s on %s at p = %d%s%s (run kvr search%s)", a->db,
                       m->name, key, f.p, tp_text,
                       n_other ? " of the current definitions, only of older ones" : "",
                       a->tp > 1 ? " --tp" : "");
    struct kvr_plan_row *staged = st ? NULL : malloc((n ? n : 1) * sizeof *staged);
    if (!st && !staged) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < n; i++) /* with --tp T: one chunk per stage */
        staged[i] = kvr_plan_row_staged(&rows[i]);
    if (!st) st = kvr_interp_partition(staged, n, a->ctx, KVR_INTERP_LINEAR, false, &ans);
    free(staged);
    /* ranks run in GPU order (with --tp rank stage * t + shard): refuse another mapping */
    for (size_t i = 0; !st && i < n; i++)
        if (rows[i].n_mapping &&
            (rows[i].ctx_tokens == ans.lo_ctx || rows[i].ctx_tokens == ans.hi_ctx))
            for (int k = 0; k < rows[i].n_mapping && !st; k++)
                if (rows[i].mapping[k] != k)
                    st = kvr_error(KVR_ERR_INPUT,
                                   "%s: the plan at ctx %llu maps chain position %d to GPU %d; "
                                   "kvr exec runs the chain in rank order (launch the ranks in "
                                   "the plan's mapping order, or search with the identity)",
                                   a->db, (unsigned long long)rows[i].ctx_tokens, k,
                                   rows[i].mapping[k]);
    if (!st) {
        memcpy(c->tokens, ans.tokens, (size_t)p * sizeof *c->tokens);
        enum kvr_part_source src = ans.exact ? KVR_PART_SEARCHED : KVR_PART_INTERP;
        snprintf(c->method, sizeof c->method, "%s", kvr_part_source_get(src)->measured);
        c->kv_forward = table_mode(rows, n, a->ctx, ans.exact);
    }
    free(rows);
    kvr_store_close(store);
    return st;
}

static enum kvr_status choose(const struct exec_args *a, const struct kvr_model *m,
                              const struct kvr_machine *h, int p, struct plan_choice *c)
{
    struct kvr_plan plan = {.p = p, .ctx = a->ctx};
    c->kv_forward = -1;
    /* the measurement's method column: kvr-e for a scheme the search optimises, else even */
    bool searched = kvr_scheme_get(a->scheme)->options & KVR_SO_SEARCHED;
    bool any = kvr_scheme_get(a->scheme)->options & KVR_SO_PARTITION;
    snprintf(c->method, sizeof c->method, "%s",
             searched ? kvr_part_source_get(KVR_PART_EVEN)->measured : "even");
    if (a->scheme == KVR_SCHEME_RING) /* what travelled (kvr validate predicts that) */
        snprintf(c->method, sizeof c->method, "pass-%s", kvr_ring_pass_name(a->ring_pass));
    enum kvr_status st = KVR_OK;
    /* as kvr sim's plan check: every rank (stage) holds a chunk; tp's hold the whole prompt */
    if (!(kvr_scheme_get(a->scheme)->options & KVR_SO_SHARDED) && a->ctx < (uint64_t)p)
        return a->tp > 1 ? kvr_error(KVR_ERR_USAGE,
                                     "ctx %llu < %d stages (p = %d, --tp %d): every stage needs "
                                     "a token at least",
                                     (unsigned long long)a->ctx, p, p * a->tp, a->tp)
                         : kvr_error(KVR_ERR_USAGE,
                                     "ctx %llu < p = %d: every rank needs a token at least",
                                     (unsigned long long)a->ctx, p);
    if (a->partition && !any) {
        char names[256];
        kvr_scheme_list_text(KVR_LIST_PARTITION, names, sizeof names);
        return kvr_error(KVR_ERR_USAGE, "--partition applies to schemes %s only, not %s", names,
                         kvr_scheme_name(a->scheme));
    }
    int n_chunks = 1;
    for (const char *x = a->partition ? a->partition : ""; *x; x++) n_chunks += *x == ',';
    if (a->partition && n_chunks != p)
        return a->tp > 1 ? kvr_error(KVR_ERR_USAGE,
                                     "--partition (%d stages of --tp %d): '%s' has %d chunks, "
                                     "not one per stage",
                                     p, a->tp, a->partition, n_chunks)
                         : kvr_error(KVR_ERR_USAGE,
                                     "--partition (%d ranks): '%s' has %d chunks, not one per rank",
                                     p, a->partition, n_chunks);
    if (a->partition) {
        if ((st = kvr_plan_parse_partition(&plan, a->partition)))
            return a->tp > 1
                       ? kvr_error_prefix(st, "--partition (%d stages of --tp %d): ", p, a->tp)
                       : kvr_error_prefix(st, "--partition (%d ranks): ", p);
        snprintf(c->method, sizeof c->method, "%s", kvr_part_source_get(KVR_PART_GIVEN)->measured);
    } else if (searched && a->db && h) {
        return from_table(a, m, h, p, c); /* the table's rows are per machine */
    } else if (kvr_scheme_get(a->scheme)->options & KVR_SO_ZIGZAG) {
        if (a->ctx < 2 * (uint64_t)p)
            return kvr_error(KVR_ERR_USAGE, "--scheme %s needs --ctx >= 2p (%d) for zig-zag chunks",
                             kvr_scheme_name(a->scheme), 2 * p);
        kvr_plan_zigzag(&plan); /* each rank's tokens under zig-zag sharding */
    } else {
        kvr_plan_even(&plan);
    }
    memcpy(c->tokens, plan.tokens, sizeof c->tokens);
    return st;
}

static void json_report(const struct exec_args *a, const struct kvr_model *m, int p,
                        const struct plan_choice *c, const struct kvr_ranks_result *r,
                        const char *device)
{
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_kv_str(&j, "model", m->name);
    kvr_json_kv_str(&j, "backend", kvr_backend_name(a->backend));
    kvr_json_kv_str(&j, "comm", kvr_comm_kind_name(a->comm));
    kvr_json_kv_str(&j, "scheme", kvr_scheme_name(a->scheme));
    kvr_json_kv_str(&j, "method", c->method);
    if (kvr_scheme_get(a->scheme)->options & KVR_SO_FORWARD)
        kvr_json_kv_str(&j, "kv_forward", kvr_kv_forward_name(c->mode));
    kvr_json_kv_str(&j, "device", device);
    kvr_json_kv_u64(&j, "p", (uint64_t)p);
    kvr_json_kv_u64(&j, "tp", (uint64_t)a->tp);
    kvr_json_kv_str(&j, "last_layer",
                    !r->n_pruned_ranks       ? "full"
                    : r->n_pruned_ranks == p ? "pruned"
                                             : "mixed");
    kvr_json_kv_u64(&j, "ctx", a->ctx);
    kvr_json_key(&j, "partition"); /* one chunk per stage */
    kvr_json_array_begin(&j);
    for (int i = 0; i < p / a->tp; i++) kvr_json_u64(&j, c->tokens[i]);
    kvr_json_array_end(&j);
    kvr_json_kv_u64(&j, "reps", (uint64_t)a->reps);
    kvr_json_kv_dbl(&j, "ttft_s", r->ttft_s);
    kvr_json_kv_dbl(&j, "ttft_min_s", r->ttft_min_s);
    kvr_json_kv_dbl(&j, "ttft_max_s", r->ttft_max_s);
    kvr_json_kv_dbl(&j, "tokens_per_s", (double)a->ctx / r->ttft_s);
    kvr_json_kv_u64(&j, "peak_mem_bytes", (uint64_t)r->peak_mem_bytes);
    kvr_json_key(&j, "first_token");
    kvr_json_i64(&j, r->first_token);
    kvr_json_kv_dbl(&j, "logits_checksum", r->logits_checksum);
    kvr_json_key(&j, "links");
    kvr_json_array_begin(&j);
    for (int f = 0; f < p; f++)
        for (int t = 0; t < p; t++) {
            if (!(r->link_bytes[f][t] > 0)) continue;
            kvr_json_object_begin(&j);
            kvr_json_kv_u64(&j, "from", (uint64_t)f);
            kvr_json_kv_u64(&j, "to", (uint64_t)t);
            kvr_json_kv_dbl(&j, "bytes", r->link_bytes[f][t]);
            kvr_json_kv_dbl(&j, "achieved_Bps", r->link_bytes[f][t] / r->link_s[f][t]);
            kvr_json_object_end(&j);
        }
    kvr_json_array_end(&j);
    kvr_json_end(&j);
}

static void table_report(const struct exec_args *a, const struct kvr_model *m, int p,
                         const struct plan_choice *c, const struct kvr_ranks_result *r,
                         const char *device)
{
    char t0[32], t1[32], t2[32], b[32];
    printf("%s, %llu tokens, scheme %s (%s) on %d ranks, backend %s, comm %s, on %s\n", m->name,
           (unsigned long long)a->ctx, kvr_scheme_name(a->scheme), c->method, p,
           kvr_backend_name(a->backend), kvr_comm_kind_name(a->comm), device);
    if (a->tp > 1) printf("layout      %d stages of %d tensor-parallel ranks\n", p / a->tp, a->tp);
    printf("partition   ");
    for (int i = 0; i < p / a->tp; i++)
        printf("%s%llu", i ? "," : "", (unsigned long long)c->tokens[i]);
    if (kvr_scheme_get(a->scheme)->options & KVR_SO_FORWARD)
        printf("\nKV hand-off %s", kvr_kv_forward_name(c->mode));
    printf("\nTTFT        %s median (min %s, max %s, %d reps)\n",
           kvr_format_duration(t0, sizeof t0, r->ttft_s),
           kvr_format_duration(t1, sizeof t1, r->ttft_min_s),
           kvr_format_duration(t2, sizeof t2, r->ttft_max_s), a->reps);
    printf("first token %d (logits checksum %.6e), peak memory %s per rank\n", r->first_token,
           r->logits_checksum, kvr_format_bytes(b, sizeof b, r->peak_mem_bytes));
    for (int f = 0; f < p; f++)
        for (int t = 0; t < p; t++)
            if (r->link_bytes[f][t] > 0)
                printf("link %d->%d  %s at %s\n", f, t,
                       kvr_format_bytes(b, sizeof b, r->link_bytes[f][t]),
                       kvr_format_rate_Bps(t0, sizeof t0, r->link_bytes[f][t] / r->link_s[f][t]));
}

/* Rank 0 stores the measurement with its provenance. */
static enum kvr_status store_row(const struct exec_args *a, const struct kvr_model *m,
                                 const struct kvr_machine *h, int p, const struct plan_choice *c,
                                 const struct kvr_ranks_result *r, struct kvr_exec *ex,
                                 struct kvr_comm *comm, const char *argv_text)
{
    struct kvr_measurement_row *x = calloc(1, sizeof *x);
    if (!x) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    snprintf(x->model, sizeof x->model, "%s", m->name);
    if (h) kvr_machine_args_key(&a->mach, h->name, x->machine, sizeof x->machine);
    snprintf(x->link_settings, sizeof x->link_settings, "%s", h ? x->machine : "full speed");
    if (!h) snprintf(x->machine, sizeof x->machine, "local");
    snprintf(x->scheme, sizeof x->scheme, "%s", kvr_scheme_name(a->scheme));
    snprintf(x->method, sizeof x->method, "%s", c->method);
    snprintf(x->kv_forward, sizeof x->kv_forward, "%s", kvr_kv_forward_name(c->mode));
    snprintf(x->backend, sizeof x->backend, "%s", kvr_backend_name(a->backend));
    snprintf(x->comm, sizeof x->comm, "%s", kvr_comm_kind_name(a->comm));
    kvr_comm_versions(comm, x->mpi_version, sizeof x->mpi_version, x->nccl_version,
                      sizeof x->nccl_version);
    x->p = p, x->tp = a->tp, x->ctx_tokens = a->ctx, x->warmup = a->warmup, x->reps = a->reps;
    memcpy(x->tokens, c->tokens, sizeof x->tokens);
    x->ttft_median_s = r->ttft_s, x->ttft_min_s = r->ttft_min_s, x->ttft_max_s = r->ttft_max_s;
    x->peak_mem_bytes = r->peak_mem_bytes, x->first_token = r->first_token;
    x->logits_checksum = r->logits_checksum;
    /* what the ranks' executors did: all on the last row (one stage), or all on every row */
    snprintf(x->last_layer, sizeof x->last_layer, "%s", r->n_pruned_ranks ? "pruned" : "full");
    enum kvr_status st =
        r->n_pruned_ranks && r->n_pruned_ranks != p
            ? kvr_error(KVR_ERR_RUNTIME,
                        "--db: %d of %d ranks ran their last layer on its last row alone, the "
                        "others on every row: one measurement row cannot record that",
                        r->n_pruned_ranks, p)
            : kvr_measure_store(a->db, argv_text, ex, x);
    free(x);
    return st;
}

/* The GPU of this rank: --device, else the local rank (ranks of one host share them round
 * robin; on a one-GPU machine they all use GPU 0). */
static int rank_device(const struct exec_args *a)
{
    return a->device_set || !kvr_mpi_launched() ? a->device : kvr_mpi_local_device();
}

/* ring with --ring-pass auto: the pass the simulator predicts faster on the profile, for the
 * layout that runs (p stages of --tp t on the profile's GPUs in rank order, as kvr sim --tp t
 * predicts it). */
static enum kvr_status ring_pass_pick(const struct exec_args *a, const struct kvr_model *m,
                                      const struct kvr_machine *h, int p, enum kvr_ring_pass *out)
{
    *out = a->ring_pass;
    if (a->scheme != KVR_SCHEME_RING || a->ring_pass != KVR_RING_PASS_AUTO) return KVR_OK;
    if (!h)
        return kvr_error(KVR_ERR_USAGE, "--ring-pass auto needs --machine: the profile whose "
                                        "prediction picks the pass (its links are emulated)");
    struct kvr_plan plan = {.scheme = KVR_SCHEME_RING,
                            .p = p * a->tp,
                            .tp = a->tp > 1 ? a->tp : 0,
                            .ctx = a->ctx,
                            .ring_pass = KVR_RING_PASS_AUTO};
    kvr_plan_zigzag(&plan);
    struct kvr_sim *sim = NULL;
    struct kvr_sim_result *r = malloc(sizeof *r);
    enum kvr_status st = r ? kvr_sim_open(m, h, &sim) : kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st) st = kvr_plan_check(&plan, h);
    if (!st) st = kvr_sim_draw_noise(sim, 0);
    if (!st) st = kvr_sim_run(sim, &plan, r, NULL);
    if (!st) *out = r->ring_pass;
    kvr_sim_free(sim);
    free(r);
    return st;
}

/* The communicators of a run: every rank, and with --tp the stage (TP group) and the chain
 * (shard j of every stage) of this rank. */
struct comms {
    struct kvr_comm *world, *stage, *chain;
};

/* Every rank with its status after a step: KVR_OK when all succeeded, else this rank's own
 * failure. A rank that succeeded waits in a barrier the failed ones never join, until their
 * kvr_mpi_abort_failed ends the job, so their message is the one it says (the timeout: one
 * saying another rank failed). */
static enum kvr_status all_ok(struct kvr_comm *world, enum kvr_status mine, const char *step)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", kvr_error_message()); /* the collective may overwrite it */
    double bad = mine != KVR_OK;
    enum kvr_status st = kvr_comm_max_f64(world, &bad);
    if (mine) return kvr_error(mine, "%s", msg);
    if (st || !bad) return st;
    (void)kvr_comm_barrier(world);
    return kvr_error(KVR_ERR_RUNTIME, "another rank failed %s: no output written", step);
}

/* After the run on every rank (outputs staged on the ranks that write them): all flushed, then
 * rank 0's row, then the renames, each step on every rank before the next, and the report
 * last; a failure anywhere removes every temp and leaves the old files. */
static enum kvr_status finish(const struct exec_args *a, const struct kvr_model *m,
                              const struct kvr_machine *h, const struct plan_choice *c,
                              const struct kvr_ranks_result *r, struct kvr_exec *ex,
                              const struct comms *cs, const char *argv_text, int rank, int size,
                              struct kvr_staged *out)
{
    enum kvr_status st = all_ok(cs->world, kvr_staged_sync(out), "writing its outputs");
    if (!st && a->db)
        st = all_ok(cs->world,
                    rank == 0 ? store_row(a, m, h, size, c, r, ex, cs->world, argv_text) : KVR_OK,
                    "storing the row");
    if (!st) st = all_ok(cs->world, kvr_staged_commit(out), "renaming its outputs");
    kvr_staged_abort(out);
    if (st || rank != 0) return st;
    char device[128] = "";
    kvr_exec_device_name(ex, device, sizeof device);
    if (a->json)
        json_report(a, m, size, c, r, device);
    else
        table_report(a, m, size, c, r, device);
    fflush(stdout);
    return KVR_OK;
}

/* One (ctx, scheme) pair of the lists on the open executor and communicators. */
static enum kvr_status run_one(const struct exec_args *a, const struct kvr_model *m,
                               struct kvr_machine *h, const struct kvr_machine *chain_links,
                               struct kvr_exec *ex, const struct comms *cs, const char *argv_text,
                               int rank, int size)
{
    struct plan_choice c;
    struct exec_args picked = *a;
    int stages = size / a->tp;
    struct kvr_comm *comm = a->tp > 1 ? cs->chain : cs->world;
    enum kvr_status st = ring_pass_pick(a, m, h, stages, &picked.ring_pass);
    a = &picked;
    if (!st) st = choose(a, m, h, stages, &c);
    struct kvr_ranks_result r;
    struct kvr_ranks_args ra = {.ex = ex,
                                .comm = comm,
                                .world = a->tp > 1 ? cs->world : NULL,
                                .tp = a->tp,
                                .seed = a->seed,
                                .tokens = a->tokens,
                                .warmup = a->warmup,
                                .reps = a->reps,
                                .timeline_path = a->timeline,
                                .timeline_format = a->timeline_format,
                                .machine_name = h ? h->name : NULL,
                                .dump_logits = a->dump_logits,
                                .dump_kv = a->dump_kv};
    static struct kvr_staged out; /* large: not on the stack */
    ra.staged = &out;
    ra.dist = (struct kvr_dist_opts){.scheme = a->scheme,
                                     .ctx = (uint32_t)a->ctx,
                                     .links = chain_links ? chain_links : h,
                                     .ring_pass = a->ring_pass,
                                     .world = ra.world};
    c.mode = a->kv_forward_set          ? a->kv_forward
             : !st && c.kv_forward >= 0 ? (enum kvr_kv_forward)c.kv_forward
                                        : KVR_FWD_WHOLE;
    if (!(kvr_scheme_get(a->scheme)->options & KVR_SO_FORWARD)) c.mode = KVR_FWD_WHOLE;
    ra.dist.kv_forward = c.mode;
    if (!st) memcpy(ra.dist.partition, c.tokens, sizeof c.tokens);
    if (!st) st = kvr_ranks_run(&ra, &r);
    /* a rank failing in the run returns alone (the others may wait in its collectives, until
     * kvr_mpi_abort_failed ends them): nothing was renamed */
    if (st) return kvr_staged_abort(&out), st;
    return finish(a, m, h, &c, &r, ex, cs, argv_text, rank, size, &out);
}

/* --tp with the schemes of the list: t (--scheme tp is t = P, one stage), and what a hybrid
 * layout cannot honour yet, refused by name. */
static enum kvr_status resolve_tp(const struct exec_args *a, const struct kvr_model *m, int size,
                                  int *t)
{
    bool tp = false, other = false;
    for (int k = 0; k < a->n_schemes; k++)
        a->schemes[k] == KVR_SCHEME_TP ? (tp = true) : (other = true);
    bool given = a->tp_set;
    *t = tp ? size : a->tp;
    if (tp && given && a->tp != size)
        return kvr_error(KVR_ERR_USAGE, "--scheme tp runs one stage of all %d ranks: not --tp %d",
                         size, a->tp);
    if (tp && other && !given)
        return kvr_error(KVR_ERR_USAGE,
                         "--scheme tp (t = P = %d) with other schemes in the list: "
                         "give --tp %d so that every scheme runs with it",
                         size, size);
    if (size % *t)
        return kvr_error(KVR_ERR_USAGE, "--tp %d does not divide the %d ranks", *t, size);
    if (*t == 1) return KVR_OK;
    for (int k = 0; k < a->n_schemes; k++) /* the scheme table's layouts (KVR_SO_LAYOUT) */
        if (a->schemes[k] != KVR_SCHEME_TP && !kvr_layout_scheme_ok(a->schemes[k])) {
            char names[256];
            kvr_scheme_list_text(KVR_LIST_EXEC_LAYOUT, names, sizeof names);
            return kvr_error(KVR_ERR_USAGE,
                             "--tp %d: scheme %s has no tensor-parallel layout (%s have; one "
                             "stage of tensor parallelism is --scheme tp)",
                             *t, kvr_scheme_name(a->schemes[k]), names);
        }
    enum kvr_status st = kvr_tp_check(m, *t, "--tp");
    if (st) return kvr_error_prefix(st, "--model %s: ", m->name);
    /* the emulated links are the chains' (stage s to s + 1 of each shard); the stages'
     * all-reduces run on the real links, unpaced: what would slow them is refused */
    const char *no =
        a->timeline     ? "--timeline"
        : a->mach.bw    ? "--bw (it sets the links inside the stages too, whose all-reduces are "
                          "not emulated; give the chains' links with --link I-J)"
        : a->mach.noise ? "--noise (its draws are per GPU pair of the whole machine; the "
                          "chains are paced on their own links)"
                        : NULL;
    if (no) return kvr_error(KVR_ERR_USAGE, "--tp %d: %s not yet with tensor parallelism", *t, no);
    return KVR_OK;
}

/* --tp T with --machine or --link: no emulated link inside a stage (its all-reduces run on the
 * real links), no noise from the profile; then the chain of this rank's shard j seen as a
 * machine of its own (kvr_machine_permute): position s is GPU s * t + j, so the executor paces
 * stage s -> s + 1 on the link between those GPUs, as the simulator's layout sends it. */
static enum kvr_status tp_links(const struct exec_args *a, const struct kvr_machine *h, int t,
                                int rank, int size, struct kvr_machine *view)
{
    if (t == size)
        return kvr_error(KVR_ERR_USAGE,
                         "--machine/--link with --tp %d on %d ranks: one stage, no chain between "
                         "stages to emulate (the stage's all-reduces run on the real links)",
                         t, size);
    for (int k = 0; k < a->mach.n_links; k++) {
        int i, j;
        enum kvr_status st = kvr_machine_link_ends(h, a->mach.links[k], &i, &j);
        if (st) return st;
        if (i / t == j / t)
            return kvr_error(KVR_ERR_USAGE,
                             "--link %s with --tp %d: GPUs %d and %d are one stage, whose "
                             "all-reduces are not emulated (link emulation paces the chains)",
                             a->mach.links[k], t, i, j);
    }
    for (int i = 0; i < size; i++)
        for (int j = 0; j < size; j++)
            if (h->noise.mode != KVR_NOISE_NONE && h->noise.on[i][j])
                return kvr_error(KVR_ERR_USAGE,
                                 "--machine %s with --tp %d: its background traffic (noise) is "
                                 "not emulated with tensor parallelism",
                                 h->name, t);
    int chain[KVR_MAX_GPUS], map[KVR_MAX_GPUS];
    for (int s = 0; s < size / t; s++) chain[s] = s * t + rank % t;
    *view = *h;
    enum kvr_status st = kvr_mapping_complete(chain, size / t, h->n_nodes * h->gpus_per_node, map);
    return st ? st : kvr_machine_permute(h, map, view);
}

/* The world, and with t > 1 this rank's stage (color: its stage) and chain (color: its shard). */
static enum kvr_status open_comms(const struct exec_args *a, int device, int rank, int t,
                                  struct comms *cs)
{
    enum kvr_status st = kvr_comm_open(a->comm, device, a->timeout_s, &cs->world);
    if (!st && t > 1) st = kvr_comm_split(cs->world, rank / t, rank % t, &cs->stage);
    if (!st && t > 1) st = kvr_comm_split(cs->world, rank % t, rank / t, &cs->chain);
    return st;
}

enum kvr_status kvr_exec_ranks_cmd(const struct exec_args *a, const struct kvr_model *m,
                                   const char *argv_text, int rank, int size)
{
    static struct kvr_machine h, view; /* large: not on the stack */
    char p_text[16];
    snprintf(p_text, sizeof p_text, "%d", size);
    int t = 1;
    enum kvr_status st = resolve_tp(a, m, size, &t);
    if (!st && a->links) st = kvr_machine_args_build(&a->mach, NULL, p_text, &h);
    if (!st && a->links) st = kvr_machine_args_check_used(&a->mach, &h, NULL, size); /* GPU order */
    if (!st && a->links && t > 1) st = tp_links(a, &h, t, rank, size, &view);
    struct kvr_exec_opts o = kvr_exec_opts_of(a);
    o.device = rank_device(a), o.tp = t, o.tp_rank = rank % t;
    struct kvr_exec *ex = NULL;
    struct comms cs = {0};
    if (!st) st = kvr_exec_open(m, &o, &ex);
    if (!st) st = open_comms(a, o.device, rank, t, &cs);
    if (!st && t > 1) st = kvr_exec_set_stage(ex, cs.stage);
    /* every pair in turn on the same weights; the lists are the same on every rank */
    struct exec_args one = *a;
    one.tp = t;
    for (int i = 0; i < a->n_ctx && !st; i++)
        for (int k = 0; k < a->n_schemes && !st; k++) {
            one.ctx = a->ctxs[i], one.scheme = a->schemes[k];
            st = run_one(&one, m, a->links ? &h : NULL, a->links && t > 1 ? &view : NULL, ex, &cs,
                         argv_text, rank, size);
        }
    kvr_comm_close(cs.chain);
    kvr_comm_close(cs.stage);
    kvr_comm_close(cs.world);
    kvr_exec_close(ex);
    return st;
}
