/* The one writer of every file kvrun makes. kvr_out_open picks how:
 * - "-" is standard output (flushed and checked at commit);
 * - a symlink is followed to its target, which is what gets written (the link stays; a
 *   dangling link names the file to create);
 * - an existing non-regular target (a device, a FIFO) is written through, never replaced (a
 *   FIFO without a reader for 10 s is refused rather than waited for);
 * - anything else is written to a unique temp file in the target's folder (mkstemp), flushed,
 *   fsync'ed and renamed over the target at commit, so a failure or a kill never leaves a
 *   half-written file and concurrent writers never mix (the last rename wins whole). The
 *   writer holds an flock on its temp (.BASE.tmp-XXXXXX) until the rename; before making one
 *   it removes the temps of the same target that nobody holds locked, left by a writer killed
 *   with SIGKILL or a crash (only regular files of this user named so; a live writer's stay).
 * Every write error (full disk, file-size limit, EIO) surfaces at kvr_out_commit. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "kvr_status.h"

struct kvr_out {
    FILE *f;          /* write here */
    const char *what; /* the option or role, for messages ("--out") */
    char path[4096];  /* the file written (the symlink's target) */
    char tmp[4096];   /* the temp file, "" when writing through or to stdout */
    unsigned mode;    /* the temp's mode from commit on (0600, mkstemp's, while written) */
    bool is_stdout;
    int cleanup; /* kvr_cleanup_add's slot + 1 for tmp (0: none) */
    int fd;      /* f's descriptor (f writes through a sink that keeps the first error) */
    struct kvr_out_sink *sink; /* that sink, owned by f; NULL on standard output */
};

/* Paths removed when the program is stopped by SIGINT, SIGTERM, SIGHUP, SIGQUIT or SIGXFSZ (then
 * killed by the same signal, so its exit status says so) while they are registered: temp files
 * (kvr_out registers its own) and temp folders (removed after the files, so register a folder's
 * files too). Handlers are installed at the first registration, for the signals not ignored.
 * kvr_cleanup_add returns the slot + 1 (0: every slot in use, nothing registered); safe from
 * any thread. */
int kvr_cleanup_add(const char *path, bool is_dir);
void kvr_cleanup_drop(int slot);
/* Blocks (block true, saving the mask) or restores (false) the signals above in this thread:
 * around making a temp file and registering it, so that no signal falls between. */
void kvr_cleanup_block(bool block, sigset_t *saved);

/* Temp folders (PARENT/PREFIX and mkdtemp's six): a writer holds kvr_out_lock_dir's lock on its
 * folder until it removes it (close the descriptor after); kvr_out_remove_stale_dirs removes
 * those nobody holds locked, left by a writer killed with SIGKILL (only folders of this user
 * named so, and only the regular files of this user inside them: anything else keeps one).
 * kvr_out_lock_dir returns the locked descriptor (close-on-exec, so a child never holds it), or
 * -1 when a scan took or removed the folder first (make another). */
void kvr_out_remove_stale_dirs(const char *parent, const char *prefix);
int kvr_out_lock_dir(const char *path);

/* An output named "-" takes standard output alone: from here on, "-" writes to the real standard
 * output and everything else the program prints there (its result table) goes to stderr, so
 * `kvr sim --timeline - > t.tsv` holds the timeline only (kvr_opt_start calls it). */
enum kvr_status kvr_out_stdout_for_data(void);
/* Opens the output; what names it in messages. Nothing is created when this fails. */
enum kvr_status kvr_out_open(struct kvr_out *o, const char *what, const char *path);
/* kvr_out_open for a file the program names itself (a figure's data file in --out DIR/data):
 * a symlink, FIFO, device or folder found there is refused, as the user never named where it
 * points (a link planted there would overwrite an input). */
enum kvr_status kvr_out_open_own(struct kvr_out *o, const char *what, const char *path);
/* Flushes what is buffered, so the file can be read back before the commit; false on a write
 * error, whose reason the commit then reports. */
bool kvr_out_flush(struct kvr_out *o);
/* The system's reason for the first failed write to o (errno's value), 0 when none failed:
 * kept apart because errno is overwritten by whatever runs between that write and the check. */
int kvr_out_error(const struct kvr_out *o);
/* Flushes, checks, fsyncs and renames; on any failure the temp file is removed, the target is
 * untouched and the status names the output and the system's reason. Always closes. */
enum kvr_status kvr_out_commit(struct kvr_out *o);
/* Closes and removes the temp file (the target stays as it was); safe after a failed open. */
void kvr_out_abort(struct kvr_out *o);

/* KVR_ERR_USAGE when output path names the same file as input path (both existing; links
 * followed), e.g. "kvr export --db q.db --out q.db". NULL paths and "-" never clash. */
enum kvr_status kvr_out_check_not_input(const char *out_what, const char *out, const char *in_what,
                                        const char *in);
/* Whether path names standard output: "-", or a path to the file, pipe or terminal that file
 * descriptor 1 is (/dev/stdout, /proc/self/fd/1, the file stdout is redirected to). */
bool kvr_out_is_stdout(const char *path);
/* Whether path is "" (refused everywhere a file is named: KVR_ERR_USAGE naming what). */
enum kvr_status kvr_path_check(const char *what, const char *path);
