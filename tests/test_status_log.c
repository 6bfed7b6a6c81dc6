/* Status codes, messages, exit codes, and rank-aware log lines. */
#include "kvr_log.h"
#include "kvr_status.h"
#include "tap.h"

int main(void)
{
    is_u64(kvr_status_exit_code(KVR_OK), 0, "ok exits 0");
    is_u64(kvr_status_exit_code(KVR_ERR_USAGE), 2, "usage error exits 2");
    is_u64(kvr_status_exit_code(KVR_ERR_INPUT), 2, "input error exits 2");
    is_u64(kvr_status_exit_code(KVR_ERR_PARSE), 2, "parse error exits 2");
    is_u64(kvr_status_exit_code(KVR_ERR_IO), 2, "missing file exits 2");
    is_u64(kvr_status_exit_code(KVR_ERR_RANGE), 2, "overflow exits 2");
    is_u64(kvr_status_exit_code(KVR_ERR_RUNTIME), 1, "runtime failure exits 1");
    is_u64(kvr_status_exit_code(KVR_ERR_NOMEM), 1, "out of memory exits 1");
    ok(!strcmp(kvr_status_name(KVR_ERR_PARSE), "parse error"), "status names");

    ok(kvr_error(KVR_ERR_INPUT, "bad %s = %d", "x", 3) == KVR_ERR_INPUT, "kvr_error returns st");
    ok(!strcmp(kvr_error_message(), "bad x = 3"), "message recorded");
    kvr_error_prefix(KVR_ERR_INPUT, "%s:%d: ", "f.ini", 7);
    ok(!strcmp(kvr_error_message(), "f.ini:7: bad x = 3"), "prefix keeps the message");
    kvr_error_clear();
    ok(!strcmp(kvr_error_message(), ""), "clear");

    char line[256];
    kvr_log_set_rank(0, 1);
    kvr_log_format(line, sizeof line, KVR_LOG_WARN, "hello %d", 1);
    ok(!strcmp(line, "kvr: warn: hello 1"), "single-rank line: %s", line);
    kvr_log_set_rank(3, 8);
    kvr_log_format(line, sizeof line, KVR_LOG_INFO, "step");
    ok(!strcmp(line, "kvr[rank 3/8] info: step"), "rank prefix: %s", line);
    kvr_log_set_level(KVR_LOG_ERROR);
    ok(kvr_log_level() == KVR_LOG_ERROR, "level set");
    kvr_log_info("not printed at level error");
    return tap_done();
}
