#include "kvr_ini.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>

struct ini_state {
    FILE *file;
    const char *path;
    int line;          /* line of the text inih is looking at */
    int at_line_start; /* the previous chunk ended a line */
    kvr_ini_handler handler;
    void *user;
    enum kvr_status status; /* first failure from a handler */
    int failed_line;
};

/* fgets with a line counter, so the handler knows where each key came from. */
static char *counting_reader(char *str, int num, void *stream)
{
    struct ini_state *s = stream;
    char *r = fgets(str, num, s->file);
    if (!r) return NULL;
    if (s->at_line_start) s->line++;
    size_t n = strlen(r);
    s->at_line_start = n > 0 && r[n - 1] == '\n';
    return r;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    struct ini_state *s = user;
    if (s->status) return 0;
    enum kvr_status st = s->handler(s->user, section, key, value, s->line);
    if (st) {
        s->status = kvr_error_prefix(st, "%s:%d: ", s->path, s->line);
        s->failed_line = s->line;
        return 0;
    }
    return 1;
}

enum kvr_status kvr_ini_parse(const char *path, kvr_ini_handler handler, void *user)
{
    struct ini_state s = {.path = path, .at_line_start = 1, .handler = handler, .user = user};
    s.file = fopen(path, "r");
    if (!s.file) return kvr_error(KVR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = ini_parse_stream(counting_reader, &s, on_key, &s);
    fclose(s.file);
    if (s.status && s.failed_line <= rc) return s.status;
    if (rc > 0)
        return kvr_error(KVR_ERR_PARSE, "%s:%d: malformed line (expected [section] or key = value)",
                         path, rc);
    if (rc < 0) return kvr_error(KVR_ERR_IO, "%s: cannot read", path);
    return s.status;
}
