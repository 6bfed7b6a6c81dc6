/* The line parsers of kvrun's data files, strict (whole fields, finite numbers, no junk) and
 * separate from their commands so the fuzz targets run exactly them. Files are read with
 * kvr_lines (model/kvr_file.h): lines of any length, true line numbers. The caller adds
 * "file:line: " to the message. */
#pragma once

#include <stdint.h>

#include "kvr_status.h"

/* kvr calibrate --from: "model,ctx,op,time_s[,prefix]" (ctx > 0 and prefix in tokens, at
 * most KVR_MAX_CTX; time_s finite and > 0). op is checked by the caller. */
struct kvr_calib_csv_row {
    char model[64], op[64];
    uint64_t ctx, prefix;
    double time_s;
};
enum kvr_status kvr_calib_csv_parse(char *line, struct kvr_calib_csv_row *r);

/* kvr validate --timeline: "rank layer kind what start_s end_s [bytes [peer]]" separated by
 * tabs; kind compute, send, wait or collective; rank in [0, p), finite times with end >= start >=
 * 0, bytes >= 0, peer in [-1, p). */
struct kvr_tsv_event {
    int rank, layer, peer;
    char kind[32], what[32];
    double start_s, end_s, bytes;
};
enum kvr_status kvr_timeline_tsv_parse(char *line, int p, struct kvr_tsv_event *e);
