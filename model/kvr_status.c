#include "kvr_status.h"

#include <stdio.h>
#include <string.h>

#define KVR_MSG_CAP 1024

static _Thread_local char last_msg[KVR_MSG_CAP];

const char *kvr_status_name(enum kvr_status st)
{
    switch (st) {
    case KVR_OK:
        return "ok";
    case KVR_ERR_USAGE:
        return "usage error";
    case KVR_ERR_INPUT:
        return "input error";
    case KVR_ERR_PARSE:
        return "parse error";
    case KVR_ERR_IO:
        return "I/O error";
    case KVR_ERR_RANGE:
        return "out of range";
    case KVR_ERR_NOMEM:
        return "out of memory";
    case KVR_ERR_RUNTIME:
        return "runtime error";
    case KVR_ERR_NOFIT:
        return "does not fit";
    }
    return "unknown status";
}

int kvr_status_exit_code(enum kvr_status st)
{
    switch (st) {
    case KVR_OK:
        return 0;
    case KVR_ERR_USAGE:
    case KVR_ERR_INPUT:
    case KVR_ERR_PARSE:
    case KVR_ERR_IO:
    case KVR_ERR_RANGE:
        return 2; /* the user can fix these by changing the input */
    case KVR_ERR_NOMEM:
    case KVR_ERR_RUNTIME:
        return 1;
    case KVR_ERR_NOFIT:
        return 3; /* the plan needs more memory than the GPUs have */
    }
    return 1;
}

enum kvr_status kvr_verror(enum kvr_status st, const char *fmt, va_list ap)
{
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    return st;
}

enum kvr_status kvr_error(enum kvr_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvr_verror(st, fmt, ap);
    va_end(ap);
    return st;
}

enum kvr_status kvr_error_prefix(enum kvr_status st, const char *fmt, ...)
{
    char old[KVR_MSG_CAP], prefix[KVR_MSG_CAP];
    memcpy(old, last_msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(last_msg, sizeof last_msg, "%s%s", prefix, old);
    return st;
}

const char *kvr_error_message(void)
{
    return last_msg;
}

void kvr_error_clear(void)
{
    last_msg[0] = '\0';
}
