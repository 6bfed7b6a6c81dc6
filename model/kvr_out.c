#define _GNU_SOURCE /* mkostemp */
#include "kvr_out.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The cleanup slots: state 0 free, 1 being filled or emptied, 2 armed (the handler acts). */
enum { N_CLEANUP = 64 };
static struct {
    int state;
    bool is_dir;
    char path[PATH_MAX];
} cleanup[N_CLEANUP];

static void on_signal(int sig)
{
    for (int pass = 0; pass < 2; pass++) /* files, then the folders they were in */
        for (int i = 0; i < N_CLEANUP; i++)
            if (__atomic_load_n(&cleanup[i].state, __ATOMIC_ACQUIRE) == 2 &&
                cleanup[i].is_dir == (pass == 1))
                (void)(pass ? rmdir(cleanup[i].path) : unlink(cleanup[i].path));
    signal(sig, SIG_DFL);
    raise(sig);
}

/* SIGXFSZ too: a write past the file-size limit (ulimit -f) kills by default, which would
 * leave the temp; handled, the temp goes and the default action follows */
static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXFSZ};

static void install_handlers(void)
{
    static int done;
    if (__atomic_exchange_n(&done, 1, __ATOMIC_ACQ_REL)) return;
    for (size_t k = 0; k < sizeof sigs / sizeof *sigs; k++) {
        struct sigaction old, sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        /* a signal ignored (a background job's SIGINT, nohup's SIGHUP) stays ignored */
        if (sigaction(sigs[k], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
            sigaction(sigs[k], &sa, NULL);
    }
}

int kvr_cleanup_add(const char *path, bool is_dir)
{
    if (strlen(path) >= PATH_MAX) return 0;
    install_handlers();
    for (int i = 0; i < N_CLEANUP; i++) {
        int free_state = 0;
        if (!__atomic_compare_exchange_n(&cleanup[i].state, &free_state, 1, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            continue;
        strcpy(cleanup[i].path, path);
        cleanup[i].is_dir = is_dir;
        __atomic_store_n(&cleanup[i].state, 2, __ATOMIC_RELEASE);
        return i + 1;
    }
    return 0;
}

void kvr_cleanup_block(bool block, sigset_t *saved)
{
    install_handlers();
    if (!block) {
        pthread_sigmask(SIG_SETMASK, saved, NULL);
        return;
    }
    sigset_t set;
    sigemptyset(&set);
    for (size_t k = 0; k < sizeof sigs / sizeof *sigs; k++) sigaddset(&set, sigs[k]);
    pthread_sigmask(SIG_BLOCK, &set, saved);
}

void kvr_cleanup_drop(int slot)
{
    if (slot > 0 && slot <= N_CLEANUP)
        __atomic_store_n(&cleanup[slot - 1].state, 0, __ATOMIC_RELEASE);
}

enum kvr_status kvr_path_check(const char *what, const char *path)
{
    if (!path || !*path) return kvr_error(KVR_ERR_USAGE, "%s: the path is empty", what);
    return KVR_OK;
}

/* The file a path names: a symlink's final target, followed link by link, so a dangling link
 * names the file to create (40 links at most, as the kernel allows). */
static enum kvr_status resolve(struct kvr_out *o, const char *path)
{
    char cur[PATH_MAX], link[PATH_MAX];
    if ((size_t)snprintf(cur, sizeof cur, "%s", path) >= sizeof cur)
        return kvr_error(KVR_ERR_USAGE, "%s: path too long", o->what);
    for (int hops = 0;; hops++) {
        struct stat lst;
        if (lstat(cur, &lst) != 0 || !S_ISLNK(lst.st_mode)) break;
        if (hops == 40) return kvr_error(KVR_ERR_USAGE, "%s: '%s': too many links", o->what, path);
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0) return kvr_error(KVR_ERR_IO, "%s: '%s': %s", o->what, cur, strerror(errno));
        link[n] = 0;
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", cur);
        const char *d = dirname(dir);
        int k = link[0] == '/' ? snprintf(cur, sizeof cur, "%s", link)
                               : snprintf(cur, sizeof cur, "%s/%s", d, link);
        if (k < 0 || (size_t)k >= sizeof cur)
            return kvr_error(KVR_ERR_USAGE, "%s: path too long", o->what);
    }
    snprintf(o->path, sizeof o->path, "%s", cur);
    return KVR_OK;
}

/* Stale temp files. A writer holds an flock on its temp from mkstemp to the rename (or the
 * unlink); the kernel drops the lock when the process dies, however it dies (SIGKILL, a crash,
 * a power cut: a lock does not survive a reboot), so a temp nobody holds locked belongs to a
 * dead writer. A lock rather than a pid in the name: nothing to guess when a pid is reused.
 * flock, not fcntl's locks: those belong to the process, so a scan would not see (and its close
 * would drop) the locks of its own process's other writers. Where flock fails (a file system
 * without locks; Linux's NFS emulates flock with POSIX locks, which a read-only descriptor
 * cannot take), nothing is taken for stale: such temps stay, as before. */
/* mkstemp's and mkdtemp's 6 letters or digits, no more */
static bool is_six_tail(const char *x)
{
    return strlen(x) == 6 &&
           strspn(x, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == 6;
}

static bool is_temp_of(const char *name, const char *base)
{
    size_t n = strlen(base); /* "." BASE ".tmp-" and the six */
    if (name[0] != '.' || strncmp(name + 1, base, n) || strncmp(name + 1 + n, ".tmp-", 5))
        return false;
    return is_six_tail(name + 1 + n + 5);
}

/* A descriptor on entry NAME of folder DFD when it is stale: a regular file (dir: a folder) of
 * this user, locked by this scan (so no writer holds it) and still under that name; else -1. */
static int open_if_stale(int dfd, const char *name, bool dir)
{
    struct stat named, held;
    if (fstatat(dfd, name, &named, AT_SYMLINK_NOFOLLOW) != 0 || named.st_uid != geteuid() ||
        !(dir ? S_ISDIR(named.st_mode) : S_ISREG(named.st_mode)))
        return -1;
    int fd =
        openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (dir ? O_DIRECTORY : O_NONBLOCK));
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &held) == 0 &&
        fstatat(dfd, name, &named, AT_SYMLINK_NOFOLLOW) == 0 && named.st_dev == held.st_dev &&
        named.st_ino == held.st_ino)
        return fd;
    close(fd);
    return -1;
}

/* Unlinks the stale temps of target BASE in DIR. */
static void remove_stale_temps(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        int fd = is_temp_of(e->d_name, base) ? open_if_stale(dirfd(d), e->d_name, false) : -1;
        if (fd >= 0) unlinkat(dirfd(d), e->d_name, 0), close(fd);
    }
    closedir(d);
}

/* The regular files of this user inside a stale folder (fd, locked), then the folder itself;
 * anything else in it keeps it. */
static void remove_stale_dir(int parent, const char *name, int fd)
{
    int own = dup(fd);
    DIR *d = own < 0 ? NULL : fdopendir(own);
    if (!d) {
        if (own >= 0) close(own);
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
            sb.st_uid == geteuid())
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
    unlinkat(parent, name, AT_REMOVEDIR);
}

void kvr_out_remove_stale_dirs(const char *parent, const char *prefix)
{
    DIR *d = opendir(parent);
    if (!d) return;
    const size_t n = strlen(prefix);
    for (struct dirent *e; (e = readdir(d));) {
        bool named = !strncmp(e->d_name, prefix, n) && is_six_tail(e->d_name + n);
        int fd = named ? open_if_stale(dirfd(d), e->d_name, true) : -1;
        if (fd >= 0) remove_stale_dir(dirfd(d), e->d_name, fd), close(fd);
    }
    closedir(d);
}

int kvr_out_lock_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat held, named;
    if (fd < 0) return -1;
    /* where flock fails for another reason (no locks there, as on NFS) the folder goes on
     * unlocked: a scan cannot lock it either, so it takes nothing for stale there */
    int err = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
    if (err == EWOULDBLOCK || fstat(fd, &held) != 0 || lstat(path, &named) != 0 ||
        named.st_dev != held.st_dev || named.st_ino != held.st_ino) {
        close(fd); /* a scan holds it, or has removed it: the caller makes another */
        return -1;
    }
    return fd;
}

/* Every file's FILE writes through this sink, which keeps the first write's errno: a stdio
 * buffer fails at whatever fprintf fills it, and by the commit errno holds someone else's
 * value (SQLite's, a later fflush's with nothing left to write). */
struct kvr_out_sink {
    int fd, err;
};

static ssize_t sink_write(void *cookie, const char *buf, size_t n)
{
    struct kvr_out_sink *k = cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(k->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (!k->err) k->err = w < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

static int sink_close(void *cookie)
{
    struct kvr_out_sink *k = cookie;
    int r = close(k->fd);
    free(k);
    return r;
}

/* o->f over descriptor fd (closed with f; on failure the caller closes fd) */
static bool open_sink(struct kvr_out *o, int fd)
{
    struct kvr_out_sink *k = malloc(sizeof *k);
    if (!k) return false;
    *k = (struct kvr_out_sink){.fd = fd};
    o->f = fopencookie(k, "w", (cookie_io_functions_t){.write = sink_write, .close = sink_close});
    if (!o->f) {
        free(k);
        return false;
    }
    o->fd = fd, o->sink = k;
    setvbuf(o->f, NULL, _IOFBF, 1 << 16);
    return true;
}

int kvr_out_error(const struct kvr_out *o)
{
    return o->sink ? o->sink->err : 0;
}

static enum kvr_status open_temp(struct kvr_out *o, const struct stat *old)
{
    char dir_buf[4096], base_buf[4096];
    snprintf(dir_buf, sizeof dir_buf, "%s", o->path);
    snprintf(base_buf, sizeof base_buf, "%s", o->path);
    const char *dir = dirname(dir_buf), *base = basename(base_buf);
    remove_stale_temps(dir, base);
    mode_t mask = umask(0);
    umask(mask);
    o->mode = old ? old->st_mode & 07777 : 0666 & ~mask;
    int fd = -1;
    /* a scan can lock and unlink a temp between its mkstemp and its flock: then make another */
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        if ((size_t)snprintf(o->tmp, sizeof o->tmp, "%s/.%s.tmp-XXXXXX", dir, base) >=
            sizeof o->tmp)
            return kvr_error(KVR_ERR_USAGE, "%s: path too long", o->what);
        sigset_t saved; /* made and registered as one step: a signal between would leave it */
        kvr_cleanup_block(true, &saved);
        fd = mkostemp(o->tmp, O_CLOEXEC); /* a child (gnuplot) would hold the lock */
        if (fd >= 0) o->cleanup = kvr_cleanup_add(o->tmp, false);
        kvr_cleanup_block(false, &saved);
        if (fd < 0) {
            int e = errno;
            o->tmp[0] = 0;
            return kvr_error(KVR_ERR_IO, "%s: cannot write in '%s': %s", o->what, dir, strerror(e));
        }
        struct stat sb;
        int lock_err = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
        if (lock_err == EWOULDBLOCK || (!lock_err && (fstat(fd, &sb) != 0 || sb.st_nlink == 0))) {
            close(fd), fd = -1; /* the scan holding it unlinks it (or has) */
            kvr_cleanup_drop(o->cleanup), o->cleanup = 0;
        }
    }
    if (fd < 0) {
        o->tmp[0] = 0;
        return kvr_error(KVR_ERR_IO, "%s: cannot write in '%s': temp files keep vanishing", o->what,
                         dir);
    }
    if (!open_sink(o, fd)) {
        unlink(o->tmp);
        close(fd);
        o->tmp[0] = 0;
        kvr_cleanup_drop(o->cleanup), o->cleanup = 0;
        return kvr_error(KVR_ERR_NOMEM, "%s: out of memory", o->what);
    }
    return KVR_OK;
}

/* A device or a FIFO is written through, never replaced. A FIFO nobody reads would block the
 * open forever: it is retried for 10 s, then refused. */
static enum kvr_status open_through(struct kvr_out *o, bool fifo)
{
    int fd = -1;
    for (int tries = 0; tries < 1000; tries++) {
        fd = open(o->path, O_WRONLY | (fifo ? O_NONBLOCK : 0));
        if (fd >= 0 || errno != ENXIO) break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    if (fd < 0)
        return kvr_error(KVR_ERR_IO, "%s: cannot write '%s': %s", o->what, o->path,
                         errno == ENXIO ? "no process reads the FIFO" : strerror(errno));
    if (fifo) (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (!open_sink(o, fd)) {
        close(fd);
        return kvr_error(KVR_ERR_NOMEM, "%s: out of memory", o->what);
    }
    return KVR_OK;
}

static FILE *data_stdout; /* the real standard output, once kvr_out_stdout_for_data ran */

enum kvr_status kvr_out_stdout_for_data(void)
{
    if (data_stdout) return KVR_OK;
    fflush(stdout);
    int fd = dup(STDOUT_FILENO);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        int e = errno;
        if (f)
            fclose(f);
        else if (fd >= 0)
            close(fd);
        return kvr_error(KVR_ERR_RUNTIME, "standard output: cannot set it aside: %s", strerror(e));
    }
    data_stdout = f;
    return KVR_OK;
}

enum kvr_status kvr_out_open_own(struct kvr_out *o, const char *what, const char *path)
{
    struct stat sb;
    *o = (struct kvr_out){.what = what};
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return kvr_error(KVR_ERR_INPUT,
                         "%s: '%s' is %s: kvr names this file itself and writes only a new or "
                         "regular one there",
                         what, path, S_ISLNK(sb.st_mode) ? "a symlink" : "not a regular file");
    return kvr_out_open(o, what, path);
}

enum kvr_status kvr_out_open(struct kvr_out *o, const char *what, const char *path)
{
    *o = (struct kvr_out){.what = what};
    enum kvr_status st = kvr_path_check(what, path);
    if (st) return st;
    if (path[strlen(path) - 1] == '/')
        return kvr_error(KVR_ERR_USAGE, "%s: '%s' ends in '/': a folder's name, not a file's", what,
                         path);
    if (!strcmp(path, "-")) {
        o->f = data_stdout ? data_stdout : stdout, o->is_stdout = true;
        snprintf(o->path, sizeof o->path, "-");
        return KVR_OK;
    }
    struct stat sb;
    /* a device or FIFO the kernel reaches through links, /proc's too (/dev/stdout on a pipe:
     * /proc/self/fd/1 -> "pipe:[N]", no path to follow by hand), is written through as named */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) {
        snprintf(o->path, sizeof o->path, "%s", path);
        return open_through(o, S_ISFIFO(sb.st_mode));
    }
    if ((st = resolve(o, path))) return st;
    bool exists = stat(o->path, &sb) == 0;
    if (exists && S_ISDIR(sb.st_mode))
        return kvr_error(KVR_ERR_USAGE, "%s: '%s' is a folder", what, path);
    if (exists && !S_ISREG(sb.st_mode)) return open_through(o, S_ISFIFO(sb.st_mode));
    return open_temp(o, exists ? &sb : NULL);
}

static enum kvr_status fail(struct kvr_out *o, int e)
{
    /* a runtime failure (exit 1): full disk, file-size limit, device error */
    enum kvr_status st = kvr_error(KVR_ERR_RUNTIME, "%s: error writing '%s': %s", o->what, o->path,
                                   strerror(e ? e : EIO));
    if (o->tmp[0]) unlink(o->tmp);
    o->tmp[0] = 0;
    kvr_cleanup_drop(o->cleanup), o->cleanup = 0;
    return st;
}

bool kvr_out_flush(struct kvr_out *o)
{
    return o->f && fflush(o->f) == 0 && !ferror(o->f);
}

enum kvr_status kvr_out_commit(struct kvr_out *o)
{
    FILE *f = o->f;
    o->f = NULL;
    if (!f) return kvr_error(KVR_ERR_IO, "%s: not open", o->what);
    errno = 0;
    bool bad = fflush(f) != 0 || ferror(f);
    int e = kvr_out_error(o) ? kvr_out_error(o) : errno, lock = -1;
    if (o->is_stdout) return bad ? fail(o, e) : KVR_OK;
    if (!bad && o->tmp[0]) {
        (void)fchmod(o->fd, o->mode);
        if (fsync(o->fd) != 0) bad = true, e = errno;
        /* the temp's lock must outlive fclose until the rename, or a scan takes it for stale */
        else if ((lock = fcntl(o->fd, F_DUPFD_CLOEXEC, 0)) < 0)
            bad = true, e = errno;
    }
    o->sink = NULL; /* freed by fclose */
    if (fclose(f) != 0 && !bad) bad = true, e = errno;
    if (!bad && o->tmp[0] && rename(o->tmp, o->path) != 0) bad = true, e = errno;
    enum kvr_status st = bad ? fail(o, e) : KVR_OK;
    if (lock >= 0) close(lock);
    o->tmp[0] = 0;
    kvr_cleanup_drop(o->cleanup), o->cleanup = 0;
    return st;
}

void kvr_out_abort(struct kvr_out *o)
{
    if (o->tmp[0]) unlink(o->tmp); /* before fclose drops the lock */
    if (o->f && !o->is_stdout) fclose(o->f);
    o->f = NULL, o->sink = NULL, o->tmp[0] = 0;
    kvr_cleanup_drop(o->cleanup), o->cleanup = 0;
}

/* folder made canonical + "/" + name: how a file not made yet is compared (new.bin, ./new.bin) */
static bool canonical(const char *path, char *buf, size_t cap)
{
    char d[PATH_MAX], b[PATH_MAX], real[PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    snprintf(b, sizeof b, "%s", path);
    if (!realpath(dirname(d), real)) return false;
    return (size_t)snprintf(buf, cap, "%s/%s", real, basename(b)) < cap;
}

/* Whether a and b name one file: one regular file when both exist (links and other spellings
 * followed), else, neither existing, one name in one folder. */
static bool same_file(const char *a, const char *b)
{
    struct stat x, y;
    bool ea = stat(a, &x) == 0, eb = stat(b, &y) == 0;
    if (ea || eb)
        return ea && eb && x.st_dev == y.st_dev && x.st_ino == y.st_ino && S_ISREG(x.st_mode);
    char ca[PATH_MAX], cb[PATH_MAX];
    return !strcmp(a, b) ||
           (canonical(a, ca, sizeof ca) && canonical(b, cb, sizeof cb) && !strcmp(ca, cb));
}

/* A regular file only: a FIFO (--tokens <(...)) is neither opened nor read here. */
static bool is_sqlite(const char *path)
{
    char head[16] = {0};
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return false;
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    return n == sizeof head && !memcmp(head, "SQLite format 3", sizeof head);
}

bool kvr_out_is_stdout(const char *path)
{
    struct stat a, b;
    if (!path) return false;
    if (!strcmp(path, "-")) return true;
    if (stat(path, &a) != 0 || fstat(STDOUT_FILENO, &b) != 0) return false;
    if (S_ISCHR(b.st_mode) && !isatty(STDOUT_FILENO)) return false; /* /dev/null: nothing mixes */
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

enum kvr_status kvr_out_check_not_input(const char *out_what, const char *out, const char *in_what,
                                        const char *in)
{
    if (!out || !in || !strcmp(out, "-") || !strcmp(in, "-")) return KVR_OK;
    if (same_file(out, in))
        return kvr_error(KVR_ERR_USAGE, "%s '%s' is the %s '%s': it would be overwritten", out_what,
                         out, in_what, in);
    /* a database's journal or WAL holds its latest rows: replacing it loses or corrupts them */
    static const char *const sidecars[] = {"-wal", "-shm", "-journal"};
    for (int k = 0; k < 3 && is_sqlite(in); k++) {
        char side[PATH_MAX];
        if ((size_t)snprintf(side, sizeof side, "%s%s", in, sidecars[k]) >= sizeof side) break;
        if (same_file(out, side))
            return kvr_error(KVR_ERR_USAGE,
                             "%s '%s' is the %s database's %s file: it would be overwritten",
                             out_what, out, in_what, sidecars[k] + 1);
    }
    return KVR_OK;
}
