#include "kvr_datadir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* DIR/../share/kvrun for the running program, canonical; "" when /proc/self/exe is missing. */
static void beside_program(char *buf, size_t cap)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    buf[0] = 0;
    if (n <= 0) return;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = 0;
    snprintf(buf, cap, "%s/../share/kvrun", exe);
    char *real = realpath(buf, NULL);
    if (real) snprintf(buf, cap, "%s", real);
    free(real);
}

enum kvr_status kvr_datadir(char *buf, size_t cap)
{
    const char *env = getenv("KVR_DATADIR");
    if (env && *env) {
        if (!is_dir(env))
            return kvr_error(KVR_ERR_IO, "KVR_DATADIR: '%s' is not a directory: %s", env,
                             strerror(errno ? errno : ENOTDIR));
        snprintf(buf, cap, "%s", env);
        return KVR_OK;
    }
    beside_program(buf, cap);
    if (buf[0] && is_dir(buf)) return KVR_OK;
    return kvr_error(KVR_ERR_IO,
                     "no kvrun data directory: KVR_DATADIR is not set and '%s' does not exist "
                     "(install kvrun with meson install, or set KVR_DATADIR to a folder holding "
                     "data/, plots/ and experiments/sweeps/)",
                     buf[0] ? buf : "PROGRAM_DIR/../share/kvrun");
}

enum kvr_status kvr_datadir_path(const char *rel, char *buf, size_t cap)
{
    char dir[4096];
    enum kvr_status st = kvr_datadir(dir, sizeof dir);
    if (st) return st;
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, rel) >= cap)
        return kvr_error(KVR_ERR_INPUT, "data directory path too long: %s/%s", dir, rel);
    return KVR_OK;
}

enum kvr_status kvr_datadir_default(const char *what, const char *rel, char *buf, size_t cap)
{
    enum kvr_status st = kvr_datadir_path(rel, buf, cap);
    if (st || access(buf, R_OK) == 0) return st;
    int e = errno;
    const char *env = getenv("KVR_DATADIR");
    return kvr_error(KVR_ERR_IO, "%s %s is not in the data directory (%s): '%s': %s", what, rel,
                     env && *env ? "named by KVR_DATADIR" : "beside the program", buf, strerror(e));
}
