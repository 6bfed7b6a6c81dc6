/* Rank-aware logging to stderr. With more than one rank every line carries "[rank r/p]", so
 * interleaved output from MPI ranks stays readable. The level comes from $KVR_LOG
 * (error, warn, info, debug; default warn) or kvr_log_set_level(). */
#pragma once

enum kvr_log_level { KVR_LOG_ERROR = 0, KVR_LOG_WARN, KVR_LOG_INFO, KVR_LOG_DEBUG };

void kvr_log_set_rank(int rank, int n_ranks);
void kvr_log_set_level(enum kvr_log_level level);
enum kvr_log_level kvr_log_level(void);
/* The level of a name (error, warn, info, debug), or -1: how main refuses a bad $KVR_LOG. */
int kvr_log_level_from_name(const char *name);

/* Formats one line as it would be logged (prefix included) into buf; returns its length. */
int kvr_log_format(char *buf, int cap, enum kvr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void kvr_log(enum kvr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kvr_log_error(...) kvr_log(KVR_LOG_ERROR, __VA_ARGS__)
#define kvr_log_warn(...)  kvr_log(KVR_LOG_WARN, __VA_ARGS__)
#define kvr_log_info(...)  kvr_log(KVR_LOG_INFO, __VA_ARGS__)
#define kvr_log_debug(...) kvr_log(KVR_LOG_DEBUG, __VA_ARGS__)
