/* INI files without inih's line buffer: the file is read whole (capped, NUL bytes refused),
 * lines may be of any length, and every line number is the real one. Syntax: [section],
 * key = value, comments starting with ';' or '#' (and " ;" after a value), a UTF-8 BOM at the
 * start. Empty values and a key given twice in a section are refused the same way in every
 * kind of file. */
#include "kvr_ini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_file.h"

#define INI_MAX_BYTES (1u << 20) /* a link to /dev/zero stops here */

struct seen {
    char *section, *key;
    int line;
};

struct ini_state {
    const char *path;
    struct seen *seen;
    size_t n_seen, cap_seen;
};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    return s;
}

/* The line of an earlier (section, key), or 0; records this one. */
static int remember(struct ini_state *s, const char *section, const char *key, int line)
{
    for (size_t i = 0; i < s->n_seen; i++)
        if (!strcmp(s->seen[i].section, section) && !strcmp(s->seen[i].key, key))
            return s->seen[i].line;
    if (s->n_seen == s->cap_seen) {
        size_t cap = s->cap_seen ? 2 * s->cap_seen : 32;
        struct seen *g = realloc(s->seen, cap * sizeof *g);
        if (!g) return -1;
        s->seen = g, s->cap_seen = cap;
    }
    struct seen *e = &s->seen[s->n_seen];
    e->section = strdup(section), e->key = strdup(key), e->line = line;
    if (!e->section || !e->key) return free(e->section), free(e->key), -1;
    s->n_seen++;
    return 0;
}

static enum kvr_status malformed(const struct ini_state *s, int line)
{
    return kvr_error(KVR_ERR_PARSE, "%s:%d: malformed line (expected [section] or key = value)",
                     s->path, line);
}

/* "[name]" with only a comment after it. */
static enum kvr_status parse_section(struct ini_state *s, char *text, int line, char **section)
{
    char *end = strchr(text, ']');
    if (!end) return malformed(s, line);
    *end = 0;
    char *rest = trim(end + 1), *name = trim(text + 1);
    if (!*name || (*rest && *rest != ';' && *rest != '#')) return malformed(s, line);
    *section = name;
    return KVR_OK;
}

static enum kvr_status parse_key(struct ini_state *s, char *text, int line, const char *section,
                                 kvr_ini_handler handler, void *user)
{
    char *eq = strchr(text, '=');
    if (!eq) return malformed(s, line);
    *eq = 0;
    char *key = trim(text), *value = eq + 1;
    for (char *c = value; *c; c++) /* inline comment: ';' after a blank */
        if (*c == ';' && (c == value || c[-1] == ' ' || c[-1] == '\t')) {
            *c = 0;
            break;
        }
    value = trim(value);
    if (!*key) return malformed(s, line);
    if (!*value)
        return kvr_error(KVR_ERR_INPUT, "%s:%d: key '%s' has no value", s->path, line, key);
    int before = remember(s, section, key, line);
    if (before < 0) return kvr_error(KVR_ERR_NOMEM, "%s: out of memory", s->path);
    if (before)
        return kvr_error(KVR_ERR_INPUT, "%s:%d: key '%s' repeats the one on line %d", s->path, line,
                         key, before);
    enum kvr_status st = handler(user, section, key, value, line);
    return st ? kvr_error_prefix(st, "%s:%d: ", s->path, line) : KVR_OK;
}

static enum kvr_status parse_lines(struct ini_state *s, struct kvr_lines *r,
                                   kvr_ini_handler handler, void *user)
{
    char *section = NULL, section_buf[256] = "";
    enum kvr_status st = KVR_OK;
    for (char *line; !st && (line = kvr_lines_next(r));) {
        if (r->line == 1 && !strncmp(line, "\xEF\xBB\xBF", 3)) line += 3;
        char *t = trim(line);
        if (!*t || *t == ';' || *t == '#') continue;
        if (*t == '[') {
            if (!(st = parse_section(s, t, r->line, &section)) &&
                (size_t)snprintf(section_buf, sizeof section_buf, "%s", section) >=
                    sizeof section_buf)
                st = kvr_error(KVR_ERR_PARSE, "%s:%d: section name too long", s->path, r->line);
            continue;
        }
        st = parse_key(s, t, r->line, section_buf, handler, user);
    }
    return st;
}

enum kvr_status kvr_ini_parse(const char *path, kvr_ini_handler handler, void *user)
{
    struct kvr_lines r;
    enum kvr_status st = kvr_lines_open(&r, path, INI_MAX_BYTES);
    if (st) return st;
    struct ini_state s = {.path = path};
    st = parse_lines(&s, &r, handler, user);
    for (size_t i = 0; i < s.n_seen; i++) free(s.seen[i].section), free(s.seen[i].key);
    free(s.seen);
    kvr_lines_close(&r);
    return st;
}
