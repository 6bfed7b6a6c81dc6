/* The database file itself, checked before SQLite opens it (kvr_store_open). */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvr_store_int.h"

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* A file cut short (a copy or a download stopped, a full disk) still opens: SQLite reads the
 * missing bytes of its last page as zeros and the rows on it are silently gone (an export of
 * a table cut by 100 bytes gave 125 of its 128 rows, exit 0). SQLite writes whole pages and
 * never leaves the file shorter than its header's page count, so either is damage. */
static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)                 ? "a folder"
           : S_ISFIFO(m)              ? "a FIFO"
           : S_ISCHR(m) || S_ISBLK(m) ? "a device"
           : S_ISSOCK(m)              ? "a socket"
                                      : "not a regular file";
}

/* PATH-wal, PATH-shm or PATH-journal beside an existing PATH: that database's own file (a
 * database made there vanishes when SQLite next opens PATH and resets its log). */
static enum kvr_status side_file(const char *path)
{
    static const char *const sfx[] = {"-wal", "-shm", "-journal"};
    size_t n = strlen(path);
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(sfx[i]);
        if (n <= k || strcmp(path + n - k, sfx[i])) continue;
        char base[4096];
        struct stat sb;
        if (n - k >= sizeof base) return KVR_OK;
        memcpy(base, path, n - k);
        base[n - k] = 0;
        if (stat(base, &sb) == 0 && S_ISREG(sb.st_mode))
            return kvr_error(KVR_ERR_INPUT,
                             "%s is the %s file of the database %s, not a database: refused", path,
                             sfx[i] + 1, base);
    }
    return KVR_OK;
}

enum kvr_status kvr_store_check_file(const char *path)
{
    struct stat sb;
    /* never open a FIFO or a device: the open (or SQLite's first read) would wait forever */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return kvr_error(KVR_ERR_INPUT, "%s is %s, not a database file: refused", path,
                         file_kind(sb.st_mode));
    enum kvr_status st = side_file(path);
    if (st) return st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return KVR_OK; /* missing: created for writing, refused by the reader */
    unsigned char h[100];
    ssize_t n = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? pread(fd, h, sizeof h, 0) : -1;
    close(fd);
    if (n != (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16) != 0)
        return KVR_OK; /* empty, or not SQLite's: SQLite says which */
    uint32_t page = (uint32_t)h[16] << 8 | h[17], pages = be32(h + 28);
    if (page == 1) page = 65536;
    uint64_t size = (uint64_t)sb.st_size;
    bool pages_valid = pages && be32(h + 24) == be32(h + 92); /* header count is current */
    if (page < 512 || (page & (page - 1)) || size % page)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: truncated or damaged (%llu bytes: not a whole number of %u-byte "
                         "pages), refused untouched",
                         path, (unsigned long long)size, page);
    if (pages_valid && size / page < pages)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: truncated (%llu pages of the %u its header counts), refused "
                         "untouched",
                         path, (unsigned long long)(size / page), pages);
    return KVR_OK;
}
