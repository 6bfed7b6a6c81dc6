#include "kvr_file.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIFO_WAIT_MS 10000 /* as long as an output FIFO is waited for (kvr_out.h) */

/* fopen(path, "rb"), but a FIFO is opened without blocking and read only once something
 * writes to it within FIFO_WAIT_MS (--tokens <(...) works; a FIFO nobody writes to would be
 * waited for forever: refused). */
static enum kvr_status open_input(const char *path, FILE **out)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISFIFO(sb.st_mode)) {
        *out = fopen(path, "rb");
        return *out ? KVR_OK : kvr_error(KVR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return kvr_error(KVR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, FIFO_WAIT_MS);
    if (r <= 0 || !(p.revents & (POLLIN | POLLHUP))) {
        close(fd);
        return kvr_error(KVR_ERR_INPUT,
                         "%s: a FIFO nothing wrote to for %d s: refused (it would be waited for "
                         "forever)",
                         path, FIFO_WAIT_MS / 1000);
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || !(*out = fdopen(fd, "rb"))) {
        int e = errno;
        close(fd);
        return kvr_error(KVR_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    return KVR_OK;
}

enum kvr_status kvr_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len)
{
    FILE *f = NULL;
    enum kvr_status st = open_input(path, &f);
    if (st) return st;
    char *buf = malloc(max_bytes + 1);
    if (!buf) {
        fclose(f);
        return kvr_error(KVR_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, max_bytes + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return kvr_error(KVR_ERR_IO, "%s: read error", path);
    }
    if (n > max_bytes) {
        free(buf);
        return kvr_error(KVR_ERR_INPUT, "%s: larger than %zu bytes", path, max_bytes);
    }
    buf[n] = '\0';
    *out = buf;
    if (out_len) *out_len = n;
    return KVR_OK;
}

void kvr_file_stem(const char *path, char *buf, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    snprintf(buf, cap, "%.*s", (int)n, base);
}

bool kvr_file_has_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && strcmp(path + n - k, suffix) == 0;
}

enum kvr_status kvr_file_read_text(const char *path, size_t max_bytes, char **out, size_t *out_len)
{
    size_t len = 0;
    enum kvr_status st = kvr_file_read(path, max_bytes, out, &len);
    if (st) return st;
    const char *nul = memchr(*out, 0, len);
    if (nul) {
        int line = 1;
        for (const char *c = *out; c < nul; c++) line += *c == '\n';
        free(*out), *out = NULL;
        return kvr_error(KVR_ERR_PARSE, "%s:%d: NUL byte in a text file", path, line);
    }
    if (out_len) *out_len = len;
    return KVR_OK;
}

enum kvr_status kvr_lines_open(struct kvr_lines *r, const char *path, size_t max_bytes)
{
    *r = (struct kvr_lines){.path = path};
    return kvr_file_read_text(path, max_bytes, &r->buf, &r->len);
}

char *kvr_lines_next(struct kvr_lines *r)
{
    if (!r->buf || r->pos >= r->len) return NULL;
    char *s = r->buf + r->pos, *nl = memchr(s, '\n', r->len - r->pos);
    size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
    r->pos += n + (nl ? 1 : 0);
    if (n > 0 && s[n - 1] == '\r') n--;
    s[n] = 0;
    r->line++;
    return s;
}

void kvr_lines_close(struct kvr_lines *r)
{
    free(r->buf);
    r->buf = NULL;
}
