#include "kvr_exec_ranks.h"

#include "kvr_out.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvr_hash.h"
#include "kvr_timeline_out.h"
#include "kvr_weights.h"
#include "kvr_stats.h"

enum kvr_status kvr_staged_open(struct kvr_staged *s, const char *what, const char *path,
                                struct kvr_out **o)
{
    if (s->n == KVR_STAGED_MAX) return kvr_error(KVR_ERR_RUNTIME, "%s: too many outputs", what);
    enum kvr_status st = kvr_out_open(&s->out[s->n], what, path);
    if (!st) *o = &s->out[s->n++];
    return st;
}

/* the first failed write's reason (else errno as the failed call left it; 0: lost, EIO then),
 * as kvr_out_commit says it */
static enum kvr_status write_error(const struct kvr_out *o)
{
    int e = kvr_out_error(o) ? kvr_out_error(o) : errno;
    return kvr_error(KVR_ERR_RUNTIME, "%s: error writing '%s': %s", o->what, o->path,
                     strerror(e ? e : EIO));
}

enum kvr_status kvr_staged_check(const struct kvr_out *o)
{
    return ferror(o->f) ? write_error(o) : KVR_OK;
}

enum kvr_status kvr_staged_write(const struct kvr_out *o, const void *v, size_t bytes)
{
    errno = 0;
    return fwrite(v, 1, bytes, o->f) == bytes ? kvr_staged_check(o) : write_error(o);
}

enum kvr_status kvr_staged_sync(struct kvr_staged *s)
{
    for (int i = 0; i < s->n; i++) {
        struct kvr_out *o = &s->out[i];
        if (!o->f || o->is_stdout) continue; /* flushed at commit, after the run's success */
        errno = 0;
        if (fflush(o->f) != 0 || ferror(o->f) || (o->tmp[0] && fsync(o->fd) != 0))
            return write_error(o);
    }
    return KVR_OK;
}

enum kvr_status kvr_staged_commit(struct kvr_staged *s)
{
    enum kvr_status st = KVR_OK;
    for (int pass = 0; pass < 2; pass++) /* what stdout took stays taken: the files after it */
        for (int i = 0; i < s->n; i++) {
            struct kvr_out *o = &s->out[i];
            if (!o->f || o->is_stdout != (pass == 0)) continue;
            if (st)
                kvr_out_abort(o);
            else
                st = kvr_out_commit(o);
        }
    s->n = 0;
    return st;
}

void kvr_staged_abort(struct kvr_staged *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->out[i].f) kvr_out_abort(&s->out[i]);
    s->n = 0;
}

/* What each rank sends rank 0 at the end. */
struct rank_report {
    int32_t first_token, last_layer_pruned;
    double checksum, peak_mem;
    double recv_bytes[KVR_MAX_GPUS], recv_s[KVR_MAX_GPUS];
};

/* A timeline event that can travel between processes (no pointers). */
struct wire_event {
    int rank, layer, kind, peer;
    char what[16];
    double start_s, end_s, bytes;
};

/* Every rank: the world with --tp, else the chain. */
static struct kvr_comm *all_ranks(const struct kvr_ranks_args *a)
{
    return a->world ? a->world : a->comm;
}

static int tp_of(const struct kvr_ranks_args *a)
{
    return a->tp > 1 ? a->tp : 1;
}

static enum kvr_status timed(const struct kvr_ranks_args *a, const int32_t *tokens, float *logits,
                             struct rank_report *me, double *times)
{
    enum kvr_status st = KVR_OK;
    for (int i = 0; i < a->warmup + a->reps && !st; i++) {
        struct kvr_dist_stats s;
        if ((st = kvr_dist_prefill(a->ex, a->comm, &a->dist, tokens, logits, &s))) break;
        double ttft = s.end_s; /* until the last rank is done: the last one has the token */
        if ((st = kvr_comm_max_f64(all_ranks(a), &ttft)) || i < a->warmup) continue;
        times[i - a->warmup] = ttft;
        for (int j = 0; j < KVR_MAX_GPUS; j++)
            me->recv_bytes[j] += s.recv_bytes[j], me->recv_s[j] += s.recv_s[j];
    }
    return st;
}

/* Staged: renamed into place by the caller once the whole run succeeded. */
static enum kvr_status write_floats(const struct kvr_ranks_args *a, const float *v, size_t n)
{
    struct kvr_out *o;
    enum kvr_status st = kvr_staged_open(a->staged, "--dump-logits", a->dump_logits, &o);
    return st ? st : kvr_staged_write(o, v, n * sizeof *v);
}

/* The logits rank's whole KV cache, layer by layer: K [ctx][kv][hd], then V, as float32. With
 * --tp every shard of the logits stage calls it, shard 0 gathers the stage's heads and writes
 * (after a write error it still gathers: the other shards wait in the gather). Staged. */
static enum kvr_status dump_kv(const struct kvr_ranks_args *a)
{
    const struct kvr_model *m = kvr_exec_full_model(a->ex);
    size_t n = (size_t)a->dist.ctx * m->n_kv_heads * m->head_dim;
    float *k = malloc(n * sizeof *k), *v = malloc(n * sizeof *v);
    bool writer = kvr_exec_tp_shard(a->ex) == 0;
    struct kvr_out *o = NULL;
    enum kvr_status st = !k || !v ? kvr_error(KVR_ERR_NOMEM, "--dump-kv: out of memory")
                         : writer ? kvr_staged_open(a->staged, "--dump-kv", a->dump_kv, &o)
                                  : KVR_OK;
    enum kvr_status wst = KVR_OK;
    for (uint32_t l = 0; l < m->n_layers && !st; l++) {
        st = kvr_exec_kv_gather(a->ex, l, a->dist.ctx, k, v);
        if (!st && o && !wst) wst = kvr_staged_write(o, k, n * sizeof *k);
        if (!st && o && !wst) wst = kvr_staged_write(o, v, n * sizeof *v);
    }
    free(k), free(v);
    return st ? st : wst;
}

/* Rank 0: every rank's events (empty slots have no name) into the timeline file (staged). */
static enum kvr_status write_events(const struct kvr_ranks_args *a, const struct wire_event *all,
                                    size_t n, double ttft_s)
{
    struct kvr_event *ev = calloc(n ? n : 1, sizeof *ev);
    if (!ev) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].what[0])
            ev[k++] =
                (struct kvr_event){all[i].rank,  all[i].layer,   (enum kvr_event_kind)all[i].kind,
                                   all[i].what,  all[i].start_s, all[i].end_s,
                                   all[i].bytes, all[i].peer};
    enum kvr_timeline_format fmt;
    int n_ranks = kvr_comm_size(all_ranks(a));
    struct kvr_plan plan = {.scheme = a->dist.scheme,
                            .p = n_ranks,
                            .ctx = a->dist.ctx,
                            .ring_pass = a->dist.ring_pass,
                            .kv_forward = a->dist.kv_forward,
                            .tp = a->tp > 1 ? a->tp : 0};
    memcpy(plan.tokens, a->dist.partition, sizeof plan.tokens);
    struct kvr_timeline_meta meta = {kvr_scheme_name(a->dist.scheme),
                                     kvr_exec_model(a->ex)->name,
                                     a->machine_name ? a->machine_name : "full speed",
                                     "executor",
                                     n_ranks,
                                     ttft_s,
                                     &plan,
                                     kvr_model_hash(kvr_exec_model(a->ex))};
    struct kvr_out *o;
    enum kvr_status st = kvr_timeline_format_pick(a->timeline_format, a->timeline_path, &fmt);
    if (!st) st = kvr_staged_open(a->staged, "--timeline", a->timeline_path, &o);
    if (!st) kvr_timeline_put(o->f, fmt, ev, k, &meta);
    if (!st) st = kvr_staged_check(o);
    free(ev);
    return st;
}

/* One more, synchronous prefill with every rank's events; rank 0 writes them (TSV or a
 * Chrome trace). */
static enum kvr_status timeline(const struct kvr_ranks_args *a, const int32_t *tokens,
                                float *logits)
{
    enum { CAP = 16384 };
    struct kvr_event *ev = calloc(CAP, sizeof *ev);
    struct wire_event *w = calloc(CAP, sizeof *w), *all = NULL;
    struct kvr_timeline tl = {.events = ev, .cap = CAP};
    struct kvr_dist_opts o = a->dist;
    o.timeline = &tl;
    struct kvr_dist_stats s;
    enum kvr_status st = ev && w ? kvr_dist_prefill(a->ex, a->comm, &o, tokens, logits, &s)
                                 : kvr_error(KVR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < tl.n; i++) {
        w[i] = (struct wire_event){.rank = ev[i].rank,
                                   .layer = ev[i].layer,
                                   .kind = ev[i].kind,
                                   .peer = ev[i].peer,
                                   .start_s = ev[i].start_s,
                                   .end_s = ev[i].end_s,
                                   .bytes = ev[i].bytes};
        snprintf(w[i].what, sizeof w[i].what, "%s", ev[i].what);
    }
    size_t all_bytes = 0;
    double ttft = s.end_s; /* the run's: until the last rank is done */
    if (!st) st = kvr_comm_max_f64(all_ranks(a), &ttft);
    if (!st) st = kvr_comm_gather(all_ranks(a), w, CAP * sizeof *w, (void **)&all, &all_bytes);
    if (!st && kvr_comm_rank(all_ranks(a)) == 0)
        st = write_events(a, all, all_bytes / sizeof *all, ttft);
    free(ev), free(w), free(all);
    return st;
}

/* Rank 0 folds every rank's report (p of them, t to a stage) into the result: the logits
 * stage's shard 0 has the token; a chain's peers are its stages, world rank s t + j. */
static void fold(const struct kvr_ranks_args *a, const struct rank_report *all, int p,
                 struct kvr_ranks_result *r)
{
    int t = tp_of(a), last = kvr_dist_logits_rank(a->dist.scheme, p / t) * t;
    r->first_token = all[last].first_token, r->logits_checksum = all[last].checksum;
    for (int to = 0; to < p; to++) {
        r->n_pruned_ranks += all[to].last_layer_pruned != 0;
        r->peak_mem_bytes = fmax(r->peak_mem_bytes, all[to].peak_mem);
        for (int from = 0; from < p / t; from++)
            r->link_bytes[from * t + to % t][to] = all[to].recv_bytes[from],
                                          r->link_s[from * t + to % t][to] = all[to].recv_s[from];
    }
}

enum kvr_status kvr_ranks_run(const struct kvr_ranks_args *a, struct kvr_ranks_result *r)
{
    const struct kvr_model *m = kvr_exec_model(a->ex); /* the whole vocabulary, also a shard's */
    int rank = kvr_comm_rank(a->comm), p = kvr_comm_size(a->comm);
    int32_t *tokens = malloc((size_t)a->dist.ctx * sizeof *tokens);
    float *logits = calloc(m->vocab, sizeof *logits);
    double *times = calloc((size_t)a->reps, sizeof *times);
    struct rank_report me = {0}, *all = NULL;
    memset(r, 0, sizeof *r);
    enum kvr_status st =
        tokens && logits && times ? KVR_OK : kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st && a->tokens) memcpy(tokens, a->tokens, (size_t)a->dist.ctx * sizeof *tokens);
    if (!st && !a->tokens) kvr_tokens_random(a->seed, m->vocab, a->dist.ctx, tokens);
    if (!st) st = timed(a, tokens, logits, &me, times);
    if (!st && a->dump_kv) st = kvr_dist_assemble_kv(a->ex, a->comm, &a->dist);
    bool logits_rank = rank == kvr_dist_logits_rank(a->dist.scheme, p);
    if (!st && logits_rank) st = kvr_logits_check(logits, m->vocab);
    if (!st && logits_rank) {
        me.first_token = kvr_logits_argmax(logits, m->vocab);
        me.checksum = kvr_logits_checksum(logits, m->vocab);
        if (a->dump_logits && kvr_exec_tp_shard(a->ex) == 0) st = write_floats(a, logits, m->vocab);
        if (!st && a->dump_kv) st = dump_kv(a);
    }
    me.peak_mem = (double)kvr_exec_peak_memory(a->ex);
    me.last_layer_pruned = kvr_exec_last_layer_pruned(a->ex); /* of the timed runs' last */
    size_t all_bytes = 0;
    if (!st) st = kvr_comm_gather(all_ranks(a), &me, sizeof me, (void **)&all, &all_bytes);
    if (!st && a->timeline_path) st = timeline(a, tokens, logits);
    if (!st && kvr_comm_rank(all_ranks(a)) == 0) {
        r->ttft_s = kvr_quantile(times, (size_t)a->reps, 0.5); /* sorts times */
        r->ttft_min_s = times[0], r->ttft_max_s = times[a->reps - 1];
        fold(a, all, kvr_comm_size(all_ranks(a)), r);
    }
    free(tokens), free(logits), free(times), free(all);
    return st;
}
