#include "kvr_readers.h"

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
