/* A machine profile's identity: every number that enters the cost (the GPU and its calibrated
 * efficiencies, the topology, its links and the noise) as canonical
 * "key=value\n" text, and its FNV-1a hash (kvr_hash.h). The profile's name is not part of it:
 * renaming a profile keeps its plans, recalibrating it under the same name does not. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kvr_machine.h"

/* The canonical text of m at its n_gpus (truncated at cap); returns its full length. Links
 * appear as the topology's rates plus each link of the topology that differs from them (any
 * GPU, not only 0..n_gpus-1: a searched chain may run on any of them). */
size_t kvr_machine_canonical(const struct kvr_machine *m, char *buf, size_t cap);
uint64_t kvr_machine_hash(const struct kvr_machine *m);

/* Where the profile came from, for the export's calibration provenance: "preset NAME", or
 * "file PATH" followed by the file's leading comment lines (what kvr calibrate writes there). */
void kvr_machine_provenance(const char *name_or_file, char *buf, size_t cap);
