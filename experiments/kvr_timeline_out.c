#include "kvr_timeline_out.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "kvr_file.h"
#include "kvr_hash.h"
#include "kvr_json.h"
#include "kvr_out.h"

/* Whether path ends in suffix, ignoring case (t.JSON is a .json file). */
static bool ends_in(const char *path, const char *suffix)
{
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && !strcasecmp(path + n - k, suffix);
}

enum kvr_status kvr_timeline_format_pick(const char *name, const char *path,
                                         enum kvr_timeline_format *fmt)
{
    static const char *const packed[] = {".gz",   ".tgz",  ".bz2", ".tbz2", ".xz",  ".txz",
                                         ".zst",  ".zstd", ".zip", ".7z",   ".lz4", ".lz",
                                         ".lzma", ".Z",    ".br",  ".sz"};
    for (size_t i = 0; path && i < sizeof packed / sizeof *packed; i++)
        if (ends_in(path, packed[i]))
            return kvr_error(KVR_ERR_USAGE,
                             "--timeline %s: kvr writes timelines uncompressed (name it *.json or "
                             "*.tsv, and compress it afterwards)",
                             path);
    if (!name) {
        *fmt = ends_in(path, ".json") ? KVR_TIMELINE_CHROME : KVR_TIMELINE_TSV;
        return KVR_OK;
    }
    if (!strcmp(name, "tsv") || !strcmp(name, "chrome")) {
        *fmt = !strcmp(name, "chrome") ? KVR_TIMELINE_CHROME : KVR_TIMELINE_TSV;
        return KVR_OK;
    }
    return kvr_error(KVR_ERR_INPUT, "--timeline-format: unknown format '%s' (chrome, tsv)", name);
}

/* " KEY=VALUE", the value's bytes that would end the field or the pair %XX-escaped. */
static void put_kv(FILE *f, const char *key, const char *value)
{
    fprintf(f, " %s=", key);
    for (const unsigned char *c = (const unsigned char *)value; *c; c++)
        if (*c <= ' ' || *c == '%' || *c == '=' || *c >= 0x7f)
            fprintf(f, "%%%02X", *c);
        else
            fputc(*c, f);
}

/* The header's last field: the plan (kvr_timeline_out.h). */
static void write_plan(FILE *f, const struct kvr_timeline_meta *m)
{
    const struct kvr_plan *pl = m->plan;
    char num[32], hash[KVR_HASH_HEX], part[KVR_MAX_GPUS * 21 + 1];
    size_t k = 0;
    fprintf(f, "\t# kvrun-plan");
    put_kv(f, "source", m->source);
    put_kv(f, "scheme", kvr_scheme_name(pl->scheme));
    put_kv(f, "model", m->model);
    kvr_hash_hex(m->model_hash, hash);
    put_kv(f, "model_hash", hash);
    put_kv(f, "machine", m->machine);
    snprintf(num, sizeof num, "%d", m->p);
    put_kv(f, "ranks", num);
    int t = pl->tp > 1 ? pl->tp : 1, stages = pl->p / t;
    snprintf(num, sizeof num, "%d", stages);
    put_kv(f, "p", num);
    snprintf(num, sizeof num, "%d", t);
    put_kv(f, "tp", num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)pl->ctx);
    put_kv(f, "ctx", num);
    for (int i = 0; i < stages; i++)
        k += (size_t)snprintf(part + k, sizeof part - k, "%s%llu", i ? "," : "",
                              (unsigned long long)pl->tokens[i]);
    put_kv(f, "partition", part);
    put_kv(f, "kv_forward", kvr_kv_forward_name(pl->kv_forward));
    if (pl->scheme == KVR_SCHEME_RING) put_kv(f, "ring_pass", kvr_ring_pass_name(pl->ring_pass));
}

/* The simulator's times print with 9 significant digits, the executor's to the nanosecond. */
static void write_tsv(FILE *f, const struct kvr_event *ev, size_t n,
                      const struct kvr_timeline_meta *m)
{
    bool sim = !strcmp(m->source, "simulator");
    fprintf(f, "rank\tlayer\tkind\twhat\tstart_s\tend_s\tbytes\tpeer");
    if (m->plan) write_plan(f, m);
    fprintf(f, "\n");
    for (size_t i = 0; i < n; i++) {
        const struct kvr_event *e = &ev[i];
        fprintf(f,
                sim ? "%d\t%d\t%s\t%s\t%.9g\t%.9g\t%.0f\t%d\n"
                    : "%d\t%d\t%s\t%s\t%.9f\t%.9f\t%.0f\t%d\n",
                e->rank, e->layer, kvr_event_kind_name(e->kind), e->what, e->start_s, e->end_s,
                e->bytes, e->peer);
    }
}

enum { PID_RANKS = 1, PID_LINKS = 2 };

static void meta_name(struct kvr_json *j, const char *what, int pid, int tid, const char *name)
{
    kvr_json_object_begin(j);
    kvr_json_kv_str(j, "ph", "M");
    kvr_json_kv_str(j, "name", what);
    kvr_json_kv_u64(j, "pid", (uint64_t)pid);
    kvr_json_kv_u64(j, "tid", (uint64_t)tid);
    kvr_json_key(j, "args");
    kvr_json_object_begin(j);
    kvr_json_kv_str(j, "name", name);
    kvr_json_object_end(j);
    kvr_json_object_end(j);
}

/* A link's track: tid = from * KVR_MAX_GPUS + to, so tracks sort by sender. */
static int link_tid(const struct kvr_event *e)
{
    return e->rank * KVR_MAX_GPUS + e->peer;
}

static bool on_link(const struct kvr_event *e)
{
    return e->kind == KVR_EV_SEND && e->peer >= 0;
}

static void tracks(struct kvr_json *j, const struct kvr_event *ev, size_t n, int p)
{
    static bool seen[KVR_MAX_GPUS * KVR_MAX_GPUS];
    char name[64];
    memset(seen, 0, sizeof seen);
    meta_name(j, "process_name", PID_RANKS, 0, "ranks");
    meta_name(j, "process_name", PID_LINKS, 0, "links");
    for (int r = 0; r < p; r++) {
        snprintf(name, sizeof name, "rank %d", r);
        meta_name(j, "thread_name", PID_RANKS, r, name);
    }
    for (size_t i = 0; i < n; i++) {
        int t = link_tid(&ev[i]);
        if (!on_link(&ev[i]) || seen[t]) continue;
        seen[t] = true;
        snprintf(name, sizeof name, "link %d->%d", ev[i].rank, ev[i].peer);
        meta_name(j, "thread_name", PID_LINKS, t, name);
    }
}

static void event(struct kvr_json *j, const struct kvr_event *e)
{
    bool link = on_link(e);
    kvr_json_object_begin(j);
    kvr_json_kv_str(j, "ph", "X");
    kvr_json_kv_str(j, "name", e->what);
    kvr_json_kv_str(j, "cat", kvr_event_kind_name(e->kind));
    kvr_json_kv_u64(j, "pid", link ? PID_LINKS : PID_RANKS);
    kvr_json_kv_u64(j, "tid", (uint64_t)(link ? link_tid(e) : e->rank));
    kvr_json_kv_dbl(j, "ts", e->start_s * 1e6);
    kvr_json_kv_dbl(j, "dur", (e->end_s - e->start_s) * 1e6);
    kvr_json_key(j, "args");
    kvr_json_object_begin(j);
    kvr_json_key(j, "layer");
    kvr_json_i64(j, e->layer);
    kvr_json_kv_dbl(j, "bytes", e->bytes);
    /* a transfer's peers; a rank's own event (compute, wait, a collective over its group) names
     * the rank alone, never itself as a peer (from = to) */
    kvr_json_key(j, link ? "from" : "rank");
    kvr_json_i64(j, e->rank);
    if (link) {
        kvr_json_key(j, "to");
        kvr_json_i64(j, e->peer);
    }
    kvr_json_object_end(j);
    kvr_json_object_end(j);
}

static void write_chrome(FILE *f, const struct kvr_event *ev, size_t n,
                         const struct kvr_timeline_meta *m)
{
    struct kvr_json j;
    kvr_json_init(&j, f);
    kvr_json_object_begin(&j);
    kvr_json_kv_str(&j, "displayTimeUnit", "ms");
    kvr_json_key(&j, "otherData");
    kvr_json_object_begin(&j);
    kvr_json_kv_str(&j, "source", m->source);
    kvr_json_kv_str(&j, "scheme", m->scheme);
    kvr_json_kv_str(&j, "model", m->model);
    kvr_json_kv_str(&j, "machine", m->machine);
    kvr_json_kv_u64(&j, "p", (uint64_t)m->p);
    kvr_json_kv_dbl(&j, "ttft_s", m->ttft_s);
    kvr_json_object_end(&j);
    kvr_json_key(&j, "traceEvents");
    kvr_json_array_begin(&j);
    tracks(&j, ev, n, m->p);
    for (size_t i = 0; i < n; i++) event(&j, &ev[i]);
    kvr_json_array_end(&j);
    kvr_json_object_end(&j);
    kvr_json_finish(&j);
}

void kvr_timeline_put(FILE *f, enum kvr_timeline_format fmt, const struct kvr_event *ev, size_t n,
                      const struct kvr_timeline_meta *meta)
{
    if (fmt == KVR_TIMELINE_CHROME)
        write_chrome(f, ev, n, meta);
    else
        write_tsv(f, ev, n, meta);
}

enum kvr_status kvr_timeline_write(const char *path, enum kvr_timeline_format fmt,
                                   const struct kvr_event *ev, size_t n,
                                   const struct kvr_timeline_meta *meta)
{
    struct kvr_out o;
    enum kvr_status st = kvr_out_open(&o, "--timeline", path);
    if (st) return st;
    kvr_timeline_put(o.f, fmt, ev, n, meta);
    return kvr_out_commit(&o);
}
