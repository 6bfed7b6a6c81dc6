/* The data directory: what `meson install` puts under PREFIX/share/kvrun (data/, plots/,
 * experiments/sweeps/), found at run time, never through paths baked in at build time:
 *   1. $KVR_DATADIR when set (it must exist);
 *   2. DIR/../share/kvrun, DIR being the folder of the running program (/proc/self/exe):
 *      PREFIX/bin/kvr finds PREFIX/share/kvrun wherever the tree was installed or moved, and
 *      build/experiments/kvr finds build/share/kvrun, a link to the source tree made by meson.
 * A command that needs it and finds neither fails with exit 2 naming both places. */
#pragma once

#include <stddef.h>

#include "kvr_status.h"

/* The directory (no trailing slash) into buf. */
enum kvr_status kvr_datadir(char *buf, size_t cap);
/* DATADIR/rel into buf, e.g. "data/machines/h100-calibrated.ini"; the file need not exist. */
enum kvr_status kvr_datadir_path(const char *rel, char *buf, size_t cap);
/* DATADIR/rel into buf for a file the user did not name (an option's default): KVR_ERR_IO when it
 * is not readable there, saying what it is ("--machine not given, and its default"), the path
 * and where the data directory came from (KVR_DATADIR or beside the program). */
enum kvr_status kvr_datadir_default(const char *what, const char *rel, char *buf, size_t cap);
