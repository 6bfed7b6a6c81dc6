#include "kvr_readers.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kvr_machine.h"
#include "kvr_model.h"
#include "kvr_units.h"

/* Splits line at sep into at most cap fields (in place); returns the count, or cap + 1 when
 * there are more. */
static int split(char *line, char sep, char **f, int cap)
{
    int n = 0;
    for (char *s = line;; s++) {
        if (n == cap) return cap + 1;
        f[n++] = s;
        if (!(s = strchr(s, sep))) return n;
        *s = 0;
    }
}

static enum kvr_status text_field(const char *what, const char *v, char *dst, size_t cap)
{
    if (!*v || strlen(v) >= cap)
        return kvr_error(KVR_ERR_INPUT, "%s '%s' must be 1..%zu characters", what, v, cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return KVR_OK;
}

enum kvr_status kvr_calib_csv_parse(char *line, struct kvr_calib_csv_row *r)
{
    char *f[6];
    int n = split(line, ',', f, 5);
    if (n < 4 || n > 5)
        return kvr_error(KVR_ERR_PARSE, "expected model,ctx,op,time_s[,prefix] (%d fields)", n);
    *r = (struct kvr_calib_csv_row){0};
    enum kvr_status st = text_field("model", f[0], r->model, sizeof r->model);
    if (!st && (st = kvr_parse_u64(f[1], KVR_MAX_CTX, &r->ctx))) st = kvr_error_prefix(st, "ctx: ");
    if (!st && r->ctx == 0) st = kvr_error(KVR_ERR_INPUT, "ctx must be positive");
    if (!st) st = text_field("op", f[2], r->op, sizeof r->op);
    if (!st) st = kvr_parse_real("time_s", f[3], 0, 1e9, &r->time_s);
    if (!st && !(r->time_s > 0)) st = kvr_error(KVR_ERR_INPUT, "time_s must be positive");
    if (!st && n == 5 && (st = kvr_parse_u64(f[4], KVR_MAX_CTX, &r->prefix)))
        st = kvr_error_prefix(st, "prefix: ");
    return st;
}

enum kvr_status kvr_timeline_tsv_parse(char *line, int p, struct kvr_tsv_event *e)
{
    char *f[9];
    int n = split(line, '\t', f, 8);
    if (n < 6 || n > 8)
        return kvr_error(KVR_ERR_PARSE,
                         "expected rank, layer, kind, what, start_s, end_s[, bytes[, peer]] "
                         "separated by tabs (%d fields)",
                         n);
    *e = (struct kvr_tsv_event){.peer = -1};
    long long rank = 0, layer = 0, peer = -1;
    enum kvr_status st = kvr_parse_int("rank", f[0], 0, p - 1, &rank);
    if (!st) st = kvr_parse_int("layer", f[1], -1, 1 << 20, &layer);
    if (!st) st = text_field("kind", f[2], e->kind, sizeof e->kind);
    if (!st && strcmp(e->kind, "compute") && strcmp(e->kind, "send") && strcmp(e->kind, "wait") &&
        strcmp(e->kind, "collective"))
        st =
            kvr_error(KVR_ERR_INPUT, "kind '%s' is not compute, send, wait or collective", e->kind);
    if (!st) st = text_field("what", f[3], e->what, sizeof e->what);
    if (!st) st = kvr_parse_real("start_s", f[4], 0, 1e9, &e->start_s);
    if (!st) st = kvr_parse_real("end_s", f[5], e->start_s, 1e9, &e->end_s);
    if (!st && n > 6) st = kvr_parse_real("bytes", f[6], 0, 1e18, &e->bytes);
    if (!st && n > 7) st = kvr_parse_int("peer", f[7], -1, p - 1, &peer);
    e->rank = (int)rank, e->layer = (int)layer, e->peer = (int)peer;
    return st;
}

static const char tsv_columns[] = "rank\tlayer\tkind\twhat\tstart_s\tend_s\tbytes\tpeer";

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The %XX-escaped value v into dst (cap bytes). */
static enum kvr_status unescape(const char *key, const char *v, char *dst, size_t cap)
{
    size_t n = 0;
    for (const char *c = v; *c; c++) {
        int ch = (unsigned char)*c;
        if (ch == '%') {
            int hi = hex_digit(c[1]), lo = hi < 0 ? -1 : hex_digit(c[2]);
            if (lo < 0 || (hi == 0 && lo == 0))
                return kvr_error(KVR_ERR_PARSE, "plan: %s: '%s' has a bad %%XX escape", key, v);
            ch = hi * 16 + lo, c += 2;
        }
        if (n + 1 >= cap)
            return kvr_error(KVR_ERR_PARSE, "plan: %s is longer than %zu bytes", key, cap - 1);
        dst[n++] = (char)ch;
    }
    if (!n) return kvr_error(KVR_ERR_PARSE, "plan: %s has no value", key);
    dst[n] = 0;
    return KVR_OK;
}

struct plan_key {
    const char *name;
    size_t text_off, text_cap, num_off; /* text: a string field; else a number */
};
#define TXT(f)                                                                                     \
    {                                                                                              \
#f, offsetof(struct kvr_tsv_plan, f), sizeof(((struct kvr_tsv_plan *)0)->f), 0             \
    }
#define NUM(f)                                                                                     \
    {                                                                                              \
#f, 0, 0, offsetof(struct kvr_tsv_plan, f)                                                 \
    }
static const struct plan_key plan_keys[] = {
    TXT(source), TXT(scheme), TXT(model), TXT(model_hash), TXT(machine),    TXT(partition),
    NUM(ranks),  NUM(p),      NUM(tp),    NUM(ctx),        TXT(kv_forward), TXT(ring_pass),
};
enum { N_PLAN_KEYS = sizeof plan_keys / sizeof *plan_keys };

static enum kvr_status plan_pair(char *pair, struct kvr_tsv_plan *pl, bool *seen)
{
    char *eq = strchr(pair, '=');
    if (!eq || eq == pair) return kvr_error(KVR_ERR_PARSE, "plan: '%s' is not KEY=VALUE", pair);
    *eq = 0;
    for (int k = 0; k < N_PLAN_KEYS; k++) {
        const struct plan_key *d = &plan_keys[k];
        if (strcmp(pair, d->name)) continue;
        if (seen[k]) return kvr_error(KVR_ERR_PARSE, "plan: %s is given twice", pair);
        seen[k] = true;
        if (d->text_cap) return unescape(pair, eq + 1, (char *)pl + d->text_off, d->text_cap);
        long long *v = (long long *)((char *)pl + d->num_off);
        return kvr_parse_int(pair, eq + 1, 1, 1ll << 40, v);
    }
    return KVR_OK; /* a key of a later version */
}

bool kvr_timeline_tsv_header(char *line, struct kvr_tsv_plan *pl, enum kvr_status *st)
{
    *pl = (struct kvr_tsv_plan){0};
    *st = KVR_OK;
    if (strncmp(line, "rank\t", 5)) return false;
    size_t n = sizeof tsv_columns - 1;
    if (strncmp(line, tsv_columns, n) || (line[n] && line[n] != '\t')) {
        *st = kvr_error(KVR_ERR_PARSE, "header: expected the columns %s",
                        "rank, layer, kind, "
                        "what, start_s, end_s, bytes, peer separated by tabs");
        return true;
    }
    if (!line[n]) return true;
    const char *tag = "\t# kvrun-plan";
    if (strncmp(line + n, tag, strlen(tag)) ||
        (line[n + strlen(tag)] != ' ' && line[n + strlen(tag)] != 0)) {
        *st = kvr_error(KVR_ERR_PARSE, "header: after the columns, expected '# kvrun-plan ...'");
        return true;
    }
    pl->has_plan = true;
    bool seen[N_PLAN_KEYS] = {false};
    char *save = NULL;
    for (char *pair = strtok_r(line + n + strlen(tag), " ", &save); pair && !*st;
         pair = strtok_r(NULL, " ", &save))
        *st = plan_pair(pair, pl, seen);
    if (!*st && (!pl->scheme[0] || !pl->partition[0] || !pl->p))
        *st = kvr_error(KVR_ERR_PARSE, "plan: scheme, p and partition are required");
    return true;
}
