/* kvr validate --timeline: one measured run's per-rank timeline (kvr exec --timeline) against
 * the simulator's timeline of the same plan, phase by phase. Compute (pre; attention with the
 * rest of the layer) involves no link, so its error is the cost model's alone; the waits and
 * the collectives add the schedule and the links. */
#include "kvr_validate_timeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_file.h"
#include "kvr_hash.h"
#include "kvr_log.h"
#include "kvr_json.h"
#include "kvr_readers.h"
#include "kvr_machine_args.h"
#include "kvr_sim.h"
#include "kvr_stats.h"

enum { PH_PRE, PH_REST, PH_WAIT, PH_COLL, N_PH };
static const char *const ph_names[N_PH] = {"pre", "attn+post", "wait", "collective"};

struct sums {
    double s[KVR_MAX_GPUS][N_PH];
};

/* The sends and the waits of a measured timeline, for the rate of the transfers a receiver
 * waited for (its wait ends when the data arrives); as many as the file holds (a fixed 4096
 * dropped the rest, and the rates of 8 ring ranks overflowed their buffer). */
struct xfer {
    int rank, layer, peer;
    double t0, t1, bytes;
};
struct xfer_list {
    struct xfer *v;
    size_t n, cap;
};
struct xfers {
    struct xfer_list send, wait;
};

static enum kvr_status push(struct xfer_list *l, struct xfer e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        struct xfer *v = realloc(l->v, cap * sizeof *v);
        if (!v) return kvr_error(KVR_ERR_NOMEM, "--timeline: out of memory for the transfers");
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = e;
    return KVR_OK;
}

static enum kvr_status add_xfer(struct xfers *x, const char *kind, struct xfer e)
{
    if (!strcmp(kind, "send")) return push(&x->send, e);
    if (!strcmp(kind, "wait")) return push(&x->wait, e);
    return KVR_OK;
}

static void xfers_free(struct xfers *x)
{
    free(x->send.v), free(x->wait.v);
    *x = (struct xfers){{0}, {0}};
}

static int by_rank_layer(const void *a, const void *b)
{
    const struct xfer *p = a, *q = b;
    return p->rank != q->rank ? (p->rank > q->rank) - (p->rank < q->rank)
                              : (p->layer > q->layer) - (p->layer < q->layer);
}

/* The median rate of the sends whose receiver waited at least 0.1 ms for them (0: none): each
 * send against the waits of its receiver at its layer (waits sorted by rank and layer). */
static enum kvr_status waited_rate(struct xfers *x, size_t *count, double *rate)
{
    struct xfer_list *w = &x->wait;
    qsort(w->v, w->n, sizeof *w->v, by_rank_layer);
    double *r = NULL;
    size_t n = 0, cap = 0;
    enum kvr_status st = KVR_OK;
    for (size_t i = 0; i < x->send.n && !st; i++) {
        const struct xfer *s = &x->send.v[i];
        size_t lo = 0, hi = w->n; /* the first wait at (s->peer, s->layer) */
        struct xfer key = {.rank = s->peer, .layer = s->layer};
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (by_rank_layer(&w->v[mid], &key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t j = lo; j < w->n && !by_rank_layer(&w->v[j], &key) && !st; j++) {
            if (!(w->v[j].t1 - w->v[j].t0 > 1e-4 && w->v[j].t1 > s->t0)) continue;
            if (n == cap) {
                double *g = realloc(r, (cap = cap ? 2 * cap : 1024) * sizeof *g);
                if (!g)
                    st = kvr_error(KVR_ERR_NOMEM, "--timeline: out of memory");
                else
                    r = g;
            }
            if (!st) r[n++] = s->bytes / (w->v[j].t1 - s->t0);
        }
    }
    *count = n;
    *rate = !st && n ? kvr_quantile(r, n, 0.5) : 0;
    free(r);
    return st;
}

/* The steps of each rank in the order it ran them, to compare the run's schedule with the
 * simulator's: every event but the waits (the simulator writes only those that last), the
 * simulator's attn then post of one layer read as the executor's one attn+post; sends and
 * collectives with their peer. The bytes are not compared (the ref backend moves float32). */
struct step {
    int rank, layer, peer;
    char kind[16], what[16];
};
struct steps {
    struct step *s;
    size_t n, cap;
    long last[KVR_MAX_GPUS]; /* each rank's last step, -1: none */
};

static void steps_init(struct steps *x)
{
    *x = (struct steps){0};
    for (int r = 0; r < KVR_MAX_GPUS; r++) x->last[r] = -1;
}

static enum kvr_status step_add(struct steps *x, int rank, int layer, const char *kind,
                                const char *what, int peer)
{
    if (!strcmp(kind, "wait")) return KVR_OK;
    struct step *prev = x->last[rank] >= 0 ? &x->s[x->last[rank]] : NULL;
    if (prev && !strcmp(kind, "compute") && !strcmp(what, "post") && prev->layer == layer &&
        !strcmp(prev->kind, "compute") && !strcmp(prev->what, "attn")) {
        snprintf(prev->what, sizeof prev->what, "attn+post");
        return KVR_OK;
    }
    if (x->n == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 1024;
        struct step *g = realloc(x->s, cap * sizeof *g);
        if (!g) return kvr_error(KVR_ERR_NOMEM, "out of memory");
        x->s = g, x->cap = cap;
    }
    struct step *e = &x->s[x->n];
    *e = (struct step){rank, layer, !strcmp(kind, "compute") ? -1 : peer, "", ""};
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    snprintf(e->what, sizeof e->what, "%s", what);
    x->last[rank] = (long)x->n++;
    return KVR_OK;
}

static void step_text(const struct step *e, char *buf, size_t cap)
{
    if (!e) {
        snprintf(buf, cap, "nothing");
        return;
    }
    int n = snprintf(buf, cap, "layer %d %s %s", e->layer, e->kind, e->what);
    if (e->peer >= 0 && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, " (peer %d)", e->peer);
}

/* The next step of rank r from *i on (NULL: none left). */
static const struct step *step_next(const struct steps *x, int r, size_t *i)
{
    for (; *i < x->n; (*i)++)
        if (x->s[*i].rank == r) return &x->s[(*i)++];
    return NULL;
}

static bool step_same(const struct step *a, const struct step *b)
{
    return a->layer == b->layer && a->peer == b->peer && !strcmp(a->kind, b->kind) &&
           !strcmp(a->what, b->what);
}

static bool is_end_step(const struct step *e)
{
    return !strcmp(e->kind, "compute") && (!strcmp(e->what, "embed") || !strcmp(e->what, "head"));
}

/* A timeline that records no plan was written before the executor timed the embedding and the
 * LM head: when it holds neither, the simulator's embed and head steps are left out of the
 * order check (the committed h100x4 timeline was refused at its first step), not assumed. */
static void drop_end_steps(const struct steps *meas, struct steps *pred)
{
    for (size_t i = 0; i < meas->n; i++)
        if (is_end_step(&meas->s[i])) return;
    size_t k = 0;
    for (size_t i = 0; i < pred->n; i++)
        if (!is_end_step(&pred->s[i])) pred->s[k++] = pred->s[i];
    pred->n = k;
}

/* Every rank's steps in the run's order against the simulator's (exit 2 at the first that
 * differs: the run was not of this plan, or the simulator does not model what ran). */
static enum kvr_status steps_compare(const char *path, int p, const struct steps *meas,
                                     const struct steps *pred)
{
    for (int r = 0; r < p; r++) {
        size_t i = 0, j = 0;
        for (int k = 0;; k++) {
            const struct step *a = step_next(meas, r, &i), *b = step_next(pred, r, &j);
            if (!a && !b) break;
            if (a && b && step_same(a, b)) continue;
            char ta[96], tb[96];
            step_text(a, ta, sizeof ta), step_text(b, tb, sizeof tb);
            return kvr_error(KVR_ERR_INPUT,
                             "--timeline: %s: rank %d's step %d is %s, the simulator's plan has "
                             "%s there: not a run of this plan (--scheme, --partition, "
                             "--kv-forward, --ring-pass), or a schedule the simulator does not "
                             "model",
                             path, r, k, ta, tb);
        }
    }
    return KVR_OK;
}

/* The phase an event is charged to (-1: none of them, as the embedding or a send). */
static int phase_of(const char *kind, const char *what)
{
    if (!strcmp(kind, "compute") && (!strcmp(what, "pre") || !strcmp(what, "pack")))
        return PH_PRE; /* pack: ring pass-Q's queries, after pre */
    if (!strcmp(kind, "compute") && (!strcmp(what, "attn+post") || !strcmp(what, "attn") ||
                                     !strcmp(what, "post") || !strcmp(what, "merge")))
        return PH_REST; /* merge: ring's partial outputs */
    if (!strcmp(kind, "wait")) return PH_WAIT;
    if (!strcmp(kind, "collective")) return PH_COLL;
    return -1;
}

/* What validate --timeline predicts: the options' plan, and the model's hash. */
struct predicted {
    struct kvr_plan plan;
    const char *model_name;
    uint64_t model_hash;
};

/* "A: the timeline's X (FILE's header), the options' Y" */
static enum kvr_status differs(const char *path, const char *what, const char *file_v,
                               const char *opt, const char *opt_v)
{
    return kvr_error(KVR_ERR_INPUT,
                     "--timeline: %s is a run of %s %s (its header), but %s gives %s: not a run "
                     "of this plan",
                     path, what, file_v, opt, opt_v);
}

/* A recorded plan (kvr_timeline_out.h) must be the one the options describe. */
static enum kvr_status check_plan(const char *path, const struct kvr_tsv_plan *t,
                                  const struct predicted *w)
{
    const struct kvr_plan *pl = &w->plan;
    char part[KVR_TSV_PARTITION_CAP], hash[KVR_HASH_HEX], fm[300], om[300];
    size_t k = 0;
    for (int i = 0; i < pl->p; i++)
        k += (size_t)snprintf(part + k, sizeof part - k, "%s%llu", i ? "," : "",
                              (unsigned long long)pl->tokens[i]);
    if (t->tp > 1) {
        char tp[32];
        snprintf(tp, sizeof tp, "%lld", t->tp);
        return differs(path, "a layout of tensor-parallel degree", tp, "validate --timeline",
                       "plans without --tp only");
    }
    if (strcmp(t->scheme, kvr_scheme_name(pl->scheme)))
        return differs(path, "scheme", t->scheme, "--scheme", kvr_scheme_name(pl->scheme));
    if (strcmp(t->partition, part))
        return differs(path, "partition", t->partition, "--partition", part);
    const char *fwd = kvr_kv_forward_name(pl->kv_forward);
    if (t->kv_forward[0] && strcmp(t->kv_forward, fwd))
        return differs(path, "KV hand-off", t->kv_forward, "--kv-forward", fwd);
    const char *rp = kvr_ring_pass_name(pl->ring_pass);
    if (pl->scheme == KVR_SCHEME_RING && t->ring_pass[0] && strcmp(t->ring_pass, rp))
        return differs(path, "ring pass", t->ring_pass, "--ring-pass", rp);
    kvr_hash_hex(w->model_hash, hash);
    if (t->model_hash[0] && strcmp(t->model_hash, hash)) {
        snprintf(fm, sizeof fm, "%s (hash %s)", t->model, t->model_hash);
        snprintf(om, sizeof om, "%s (hash %s)", w->model_name, hash);
        return differs(path, "model", fm, "--model", om);
    }
    return KVR_OK;
}

static enum kvr_status read_tsv(const char *path, const struct predicted *w, struct sums *m,
                                struct xfers *x, struct steps *steps, bool *has_plan)
{
    int p = w->plan.p;
    struct kvr_lines r;
    enum kvr_status st = kvr_lines_open(&r, path, 256u << 20);
    if (st) return kvr_error_prefix(st, "--timeline: ");
    int n = 0;
    bool seen[KVR_MAX_GPUS] = {false};
    for (char *line; !st && (line = kvr_lines_next(&r));) {
        struct kvr_tsv_plan t;
        if (r.line == 1 && kvr_timeline_tsv_header(line, &t, &st)) {
            if (st)
                st = kvr_error_prefix(st, "--timeline: %s:1: ", path);
            else if ((*has_plan = t.has_plan))
                st = check_plan(path, &t, w);
            else
                kvr_log(KVR_LOG_WARN,
                        "--timeline: %s records no plan (written before kvrun recorded it): "
                        "that it is a run of --scheme and --partition is not checked",
                        path);
            continue;
        }
        struct kvr_tsv_event e;
        if ((st = kvr_timeline_tsv_parse(line, p, &e))) {
            st = kvr_error_prefix(st, "--timeline: %s:%d: ", path, r.line);
            break;
        }
        int ph = phase_of(e.kind, e.what);
        if (ph >= 0) m->s[e.rank][ph] += e.end_s - e.start_s, n++, seen[e.rank] = true;
        st = add_xfer(x, e.kind,
                      (struct xfer){e.rank, e.layer, e.peer, e.start_s, e.end_s, e.bytes});
        if (!st) st = step_add(steps, e.rank, e.layer, e.kind, e.what, e.peer);
    }
    kvr_lines_close(&r);
    if (!st && n == 0) st = kvr_error(KVR_ERR_INPUT, "--timeline: %s holds no events", path);
    /* a rank without events: the run of another plan (fewer ranks than --partition's chunks) */
    for (int i = 0; i < p && !st; i++)
        if (!seen[i])
            st = kvr_error(KVR_ERR_INPUT,
                           "--timeline: %s has no compute or wait of rank %d, but --partition "
                           "gives %d ranks: not a run of this plan",
                           path, i, p);
    return st;
}

static enum kvr_status sim_sums(const struct kvr_timeline *tl, struct sums *s, struct steps *x)
{
    enum kvr_status st = KVR_OK;
    for (size_t i = 0; i < tl->n && !st; i++) {
        const struct kvr_event *e = &tl->events[i];
        int ph = phase_of(kvr_event_kind_name(e->kind), e->what);
        if (ph >= 0) s->s[e->rank][ph] += e->end_s - e->start_s;
        st = step_add(x, e->rank, e->layer, kvr_event_kind_name(e->kind), e->what, e->peer);
    }
    return st;
}

/* A scheme that cannot take any partition runs its own split: the one given must be it. */
static enum kvr_status check_split(const struct kvr_plan *plan)
{
    const struct kvr_scheme_desc *d = kvr_scheme_get(plan->scheme);
    if (d->options & KVR_SO_PARTITION) return KVR_OK;
    struct kvr_plan own = *plan;
    if (d->options & KVR_SO_ZIGZAG)
        kvr_plan_zigzag(&own);
    else
        kvr_plan_even(&own);
    for (int i = 0; i < plan->p; i++)
        if (own.tokens[i] != plan->tokens[i]) {
            char text[512] = "";
            for (int k = 0, n = 0; k < plan->p && n < (int)sizeof text - 24; k++)
                n += snprintf(text + n, sizeof text - (size_t)n, "%s%llu", k ? "," : "",
                              (unsigned long long)own.tokens[k]);
            return kvr_error(KVR_ERR_USAGE,
                             "--partition: scheme %s runs its own split of %llu tokens on %d "
                             "ranks, %s (%s), not the one given",
                             d->name, (unsigned long long)plan->ctx, plan->p, text,
                             d->options & KVR_SO_ZIGZAG ? "zig-zag" : "even");
        }
    return KVR_OK;
}

static enum kvr_status simulate(const struct kvr_validate_timeline_args *a, struct predicted *w,
                                struct sums *pred, struct steps *steps)
{
    static struct kvr_model m;
    struct kvr_plan *plan = &w->plan;
    static struct kvr_machine h; /* large: not on the stack */
    int s = kvr_scheme_from_name(a->scheme);
    if (s < 0) {
        char names[256];
        kvr_scheme_list_text(KVR_LIST_SCHEMES, names, sizeof names);
        return kvr_error(KVR_ERR_USAGE, "--scheme: '%s' is not a scheme (%s)", a->scheme, names);
    }
    plan->scheme = (enum kvr_scheme)s, plan->p = 1;
    for (const char *c = a->partition; *c; c++) plan->p += *c == ',';
    enum kvr_status st = kvr_plan_parse_partition(plan, a->partition);
    if (st) return st;
    for (int i = 0; i < plan->p; i++) plan->ctx += plan->tokens[i];
    int f = a->kv_forward ? kvr_kv_forward_from_name(a->kv_forward) : KVR_FWD_WHOLE;
    if (f < 0)
        return kvr_error(KVR_ERR_USAGE, "--kv-forward: '%s' is not whole, streamed or direct",
                         a->kv_forward);
    plan->kv_forward = (enum kvr_kv_forward)f;
    int rp = a->ring_pass ? kvr_ring_pass_from_name(a->ring_pass) : KVR_RING_PASS_KV;
    if (rp < 0 || rp == KVR_RING_PASS_AUTO)
        return kvr_error(KVR_ERR_USAGE, "--ring-pass: '%s' is not kv or q (the pass that ran)",
                         a->ring_pass);
    if (a->ring_pass && plan->scheme != KVR_SCHEME_RING)
        return kvr_error(KVR_ERR_USAGE, "--ring-pass applies to --scheme ring only, not %s",
                         a->scheme);
    plan->ring_pass = (enum kvr_ring_pass)rp;
    if ((st = check_split(plan))) return st;
    if ((st = kvr_model_resolve(a->model, &m))) return kvr_error_prefix(st, "--model: ");
    w->model_name = m.name, w->model_hash = kvr_model_hash(&m);
    char gpus[16];
    snprintf(gpus, sizeof gpus, "%d", plan->p);
    struct kvr_machine_args ma = {.machine = a->machine, .trials = 1};
    if ((st = kvr_machine_args_build(&ma, NULL, gpus, &h)))
        return kvr_error_prefix(st, "--machine: ");
    if ((st = kvr_plan_check(plan, &h))) return st;
    struct kvr_timeline tl = {.cap = 1 << 16};
    tl.events = calloc(tl.cap, sizeof *tl.events);
    struct kvr_sim *sim = NULL;
    struct kvr_sim_result r;
    if (!tl.events) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!(st = kvr_sim_open(&m, &h, &sim))) st = kvr_sim_run(sim, plan, &r, &tl);
    if (!st && tl.n_dropped)
        st = kvr_error(KVR_ERR_RUNTIME, "--timeline: the simulator's plan has more than %zu events",
                       tl.cap);
    if (!st) st = sim_sums(&tl, pred, steps);
    kvr_sim_free(sim);
    free(tl.events);
    return st;
}

static double err_pct(double pred, double meas)
{
    return meas > 0 ? 100 * (pred / meas - 1) : NAN;
}

static void print_text(const struct kvr_plan *plan, const struct sums *m, const struct sums *p)
{
    printf("%-4s %8s %-11s %12s %12s %8s\n", "rank", "tokens", "phase", "measured_ms",
           "predicted_ms", "error");
    double cm = 0, cp = 0;
    for (int r = 0; r < plan->p; r++)
        for (int ph = 0; ph < N_PH; ph++) {
            if (!(m->s[r][ph] > 0) && !(p->s[r][ph] > 0)) continue;
            printf("%-4d %8llu %-11s %12.3f %12.3f", r, (unsigned long long)plan->tokens[r],
                   ph_names[ph], 1e3 * m->s[r][ph], 1e3 * p->s[r][ph]);
            if (m->s[r][ph] > 0)
                printf(" %+7.2f%%\n", err_pct(p->s[r][ph], m->s[r][ph]));
            else
                printf(" %8s\n", "-");
            if (ph <= PH_REST) cm += m->s[r][ph], cp += p->s[r][ph];
        }
    printf("compute of all ranks (pre, attn+post): measured %.3f ms, predicted %.3f ms, %+.2f%%\n",
           1e3 * cm, 1e3 * cp, err_pct(cp, cm));
}

static void print_json(const struct kvr_plan *plan, const struct sums *m, const struct sums *p,
                       double rate, size_t n_waited)
{
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_kv_u64(&j, "waited_transfers", (uint64_t)n_waited);
    kvr_json_kv_dbl(&j, "waited_transfer_Bps", rate);
    kvr_json_key(&j, "ranks");
    kvr_json_array_begin(&j);
    for (int r = 0; r < plan->p; r++) {
        kvr_json_object_begin(&j);
        kvr_json_kv_u64(&j, "tokens", plan->tokens[r]);
        for (int ph = 0; ph < N_PH; ph++) {
            kvr_json_key(&j, ph_names[ph]);
            kvr_json_object_begin(&j);
            kvr_json_kv_dbl(&j, "measured_s", m->s[r][ph]);
            kvr_json_kv_dbl(&j, "predicted_s", p->s[r][ph]);
            kvr_json_object_end(&j);
        }
        kvr_json_object_end(&j);
    }
    kvr_json_array_end(&j);
    kvr_json_end(&j);
}

enum kvr_status kvr_validate_timeline(const struct kvr_validate_timeline_args *a)
{
    if (!a->model || !a->scheme || !a->partition)
        return kvr_error(KVR_ERR_USAGE,
                         "--timeline needs --model, --scheme and --partition (the measured plan)");
    struct predicted w = {0};
    const struct kvr_plan *plan = &w.plan;
    static struct sums meas, pred;
    struct xfers x = {{0}, {0}};
    memset(&meas, 0, sizeof meas), memset(&pred, 0, sizeof pred);
    struct steps sm, sp;
    steps_init(&sm), steps_init(&sp);
    enum kvr_status st = simulate(a, &w, &pred, &sp);
    bool has_plan = false;
    if (!st) st = read_tsv(a->path, &w, &meas, &x, &sm, &has_plan);
    if (!st && !has_plan) drop_end_steps(&sm, &sp);
    if (!st) st = steps_compare(a->path, w.plan.p, &sm, &sp);
    free(sm.s), free(sp.s);
    size_t n_waited = 0;
    double rate = 0;
    if (!st) st = waited_rate(&x, &n_waited, &rate);
    xfers_free(&x);
    if (st) return st;
    if (a->json)
        print_json(plan, &meas, &pred, rate, n_waited);
    else
        print_text(plan, &meas, &pred);
    if (!a->json && n_waited)
        printf("transfers a receiver waited for: %zu, median %.1f GB/s from send to arrival "
               "(kvr calibrate --overlap-bw)\n",
               n_waited, rate / 1e9);
    return KVR_OK;
}
