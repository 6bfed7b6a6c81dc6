#include "kvr_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int log_rank = 0, log_n_ranks = 1;
static int log_level = -1; /* -1: not read from the environment yet */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void kvr_log_set_rank(int rank, int n_ranks)
{
    log_rank = rank;
    log_n_ranks = n_ranks;
}

void kvr_log_set_level(enum kvr_log_level level)
{
    log_level = (int)level;
}

int kvr_log_level_from_name(const char *name)
{
    for (int i = 0; name && i <= KVR_LOG_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

enum kvr_log_level kvr_log_level(void)
{
    if (log_level < 0) {
        int from_env = kvr_log_level_from_name(getenv("KVR_LOG"));
        log_level = from_env >= 0 ? from_env : KVR_LOG_WARN;
    }
    return (enum kvr_log_level)log_level;
}

static int format_prefix(char *buf, int cap, enum kvr_log_level level)
{
    if (log_n_ranks > 1)
        return snprintf(buf, (size_t)cap, "kvr[rank %d/%d] %s: ", log_rank, log_n_ranks,
                        level_names[level]);
    return snprintf(buf, (size_t)cap, "kvr: %s: ", level_names[level]);
}

static int vformat(char *buf, int cap, enum kvr_log_level level, const char *fmt, va_list ap)
{
    int n = format_prefix(buf, cap, level);
    if (n < 0 || n >= cap) return n;
    int m = vsnprintf(buf + n, (size_t)(cap - n), fmt, ap);
    return m < 0 ? m : n + m;
}

int kvr_log_format(char *buf, int cap, enum kvr_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vformat(buf, cap, level, fmt, ap);
    va_end(ap);
    return n;
}

void kvr_log(enum kvr_log_level level, const char *fmt, ...)
{
    if (level > kvr_log_level()) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vformat(line, (int)sizeof line, level, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line); /* one write per line keeps ranks from interleaving */
}
