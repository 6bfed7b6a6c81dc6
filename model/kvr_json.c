#include "kvr_json.h"

#include <inttypes.h>
#include <math.h>

void kvr_json_init(struct kvr_json *j, FILE *out)
{
    *j = (struct kvr_json){.out = out};
    j->first[0] = true;
}

/* Separator and indentation before a value (or a key) at the current depth. */
static void before_value(struct kvr_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0) fputs(j->first[j->depth] ? "\n" : ",\n", j->out);
    j->first[j->depth] = false;
    for (int i = 0; i < j->depth; i++) fputs("  ", j->out);
}

static void open_scope(struct kvr_json *j, char c)
{
    before_value(j);
    fputc(c, j->out);
    if (j->depth + 1 < KVR_JSON_MAX_DEPTH) j->depth++;
    j->first[j->depth] = true;
}

static void close_scope(struct kvr_json *j, char c)
{
    bool empty = j->first[j->depth];
    j->depth--;
    if (!empty) {
        fputc('\n', j->out);
        for (int i = 0; i < j->depth; i++) fputs("  ", j->out);
    }
    fputc(c, j->out);
}

void kvr_json_object_begin(struct kvr_json *j)
{
    open_scope(j, '{');
}
void kvr_json_object_end(struct kvr_json *j)
{
    close_scope(j, '}');
}
void kvr_json_array_begin(struct kvr_json *j)
{
    open_scope(j, '[');
}
void kvr_json_array_end(struct kvr_json *j)
{
    close_scope(j, ']');
}

static void write_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

void kvr_json_key(struct kvr_json *j, const char *key)
{
    before_value(j);
    write_string(j->out, key);
    fputs(": ", j->out);
    j->after_key = true;
}

void kvr_json_str(struct kvr_json *j, const char *s)
{
    before_value(j);
    write_string(j->out, s);
}

void kvr_json_u64(struct kvr_json *j, uint64_t v)
{
    before_value(j);
    fprintf(j->out, "%" PRIu64, v);
}

void kvr_json_i64(struct kvr_json *j, int64_t v)
{
    before_value(j);
    fprintf(j->out, "%" PRId64, v);
}

void kvr_json_dbl(struct kvr_json *j, double v)
{
    before_value(j);
    if (isfinite(v))
        fprintf(j->out, "%.17g", v);
    else
        fputs("null", j->out);
}

void kvr_json_bool(struct kvr_json *j, bool v)
{
    before_value(j);
    fputs(v ? "true" : "false", j->out);
}

void kvr_json_null(struct kvr_json *j)
{
    before_value(j);
    fputs("null", j->out);
}

void kvr_json_finish(struct kvr_json *j)
{
    fputc('\n', j->out);
    fflush(j->out);
}

void kvr_json_begin(struct kvr_json *j, FILE *out)
{
    kvr_json_init(j, out);
    kvr_json_object_begin(j);
}

void kvr_json_end(struct kvr_json *j)
{
    kvr_json_object_end(j);
    kvr_json_finish(j);
}

void kvr_json_kv_str(struct kvr_json *j, const char *key, const char *v)
{
    kvr_json_key(j, key);
    kvr_json_str(j, v);
}
void kvr_json_kv_u64(struct kvr_json *j, const char *key, uint64_t v)
{
    kvr_json_key(j, key);
    kvr_json_u64(j, v);
}
void kvr_json_kv_dbl(struct kvr_json *j, const char *key, double v)
{
    kvr_json_key(j, key);
    kvr_json_dbl(j, v);
}
void kvr_json_kv_bool(struct kvr_json *j, const char *key, bool v)
{
    kvr_json_key(j, key);
    kvr_json_bool(j, v);
}
