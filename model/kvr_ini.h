/* INI reading on top of inih, with line numbers: every error comes back as "path:line: ...".
 * Used for model profiles here, and for machine profiles and sweep files above. */
#pragma once

#include "kvr_status.h"

/* Called once per key; a non-OK status stops the parse and its message gets "path:line: ". */
typedef enum kvr_status (*kvr_ini_handler)(void *user, const char *section, const char *key,
                                           const char *value, int line);

/* Parses the file at path. Syntax errors (a line that is neither a section, a key = value, nor a
 * comment) are KVR_ERR_PARSE; a missing file is KVR_ERR_IO. */
enum kvr_status kvr_ini_parse(const char *path, kvr_ini_handler handler, void *user);
