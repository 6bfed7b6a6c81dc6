/* Whole-file reading with a size cap, for the small text files kvrun loads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kvr_status.h"

/* Reads path into a NUL-terminated buffer (free with free()); fails with KVR_ERR_IO naming the
 * path and the system's reason, or KVR_ERR_INPUT when the file is larger than max_bytes. */
enum kvr_status kvr_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* kvr_file_read for a text file (JSON, a list of numbers): a NUL byte, which every reader of the
 * NUL-terminated text would take for its end and so drop the rest, is refused with path:line. */
enum kvr_status kvr_file_read_text(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* Whether path ends with suffix (".ini", ".json"). */
bool kvr_file_has_suffix(const char *path, const char *suffix);

/* The file name without folders and extension ("data/models/x.ini" -> "x"), into buf. */
void kvr_file_stem(const char *path, char *buf, size_t cap);

/* Line-by-line reading of a whole text file (read once, at most max_bytes, NUL bytes refused
 * with path:line): lines of any length, numbered from 1, "\n" or "\r\n" endings. */
struct kvr_lines {
    const char *path;
    char *buf;
    size_t len, pos;
    int line; /* the number of the line kvr_lines_next returned last */
};
enum kvr_status kvr_lines_open(struct kvr_lines *r, const char *path, size_t max_bytes);
/* The next line without its ending (NUL-terminated, in place), or NULL at the end. */
char *kvr_lines_next(struct kvr_lines *r);
void kvr_lines_close(struct kvr_lines *r);
