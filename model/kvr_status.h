/* Status codes and the last error message: every library function returns an enum kvr_status
 * and leaves a message naming the bad value and where it came from. Only main() exits. */
#pragma once

#include <stdarg.h>

enum kvr_status {
    KVR_OK = 0,
    KVR_ERR_USAGE,   /* bad option or argument on the command line */
    KVR_ERR_INPUT,   /* bad value in a file or argument: unknown name, bad unit, out of range */
    KVR_ERR_PARSE,   /* malformed file (INI, JSON) */
    KVR_ERR_IO,      /* file missing or unreadable */
    KVR_ERR_RANGE,   /* a count overflowed its type */
    KVR_ERR_NOMEM,   /* allocation failed */
    KVR_ERR_RUNTIME, /* a foreign library failed at run time */
    KVR_ERR_NOFIT,   /* a plan needs more GPU memory than a rank has (exit 3) */
};

/* Short fixed name of a status ("input error", ...). */
const char *kvr_status_name(enum kvr_status st);

/* The process exit code for a status: 0 ok, 2 usage or input error, 1 runtime failure,
 * 3 a plan that does not fit in GPU memory. */
int kvr_status_exit_code(enum kvr_status st);

/* Records a formatted message for this thread and returns st, so callers can write
 * `return kvr_error(KVR_ERR_INPUT, "%s:%d: ...", file, line);`. */
enum kvr_status kvr_error(enum kvr_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum kvr_status kvr_verror(enum kvr_status st, const char *fmt, va_list ap);

/* The last message recorded on this thread ("" when none). */
const char *kvr_error_message(void);

/* Prefixes the recorded message with context ("file.ini: " + message); returns st. */
enum kvr_status kvr_error_prefix(enum kvr_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void kvr_error_clear(void);

/* The body of a foreign API's check macro (KVR_CUDA_CHECK, KVR_CUBLAS_CHECK, KVR_NCCL_CHECK):
 * a call returning T that is not ok becomes KVR_ERR_RUNTIME with the call's text, the
 * library's own message (msg(result)), file and line. */
#define KVR_FOREIGN_CHECK(T, call, text, ok, lib, msg)                                             \
    do {                                                                                           \
        T r_ = (call);                                                                             \
        if (r_ != (ok))                                                                            \
            return kvr_error(KVR_ERR_RUNTIME, "%s:%d: " lib ": %s failed: %s", __FILE__, __LINE__, \
                             text, msg(r_));                                                       \
    } while (0)
