/* The line parsers of kvrun's data files, strict (whole fields, finite numbers, no junk) and
 * separate from their commands so the fuzz targets run exactly them. Files are read with
 * kvr_lines (model/kvr_file.h): lines of any length, true line numbers. The caller adds
 * "file:line: " to the message. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kvr_status.h"

#define KVR_TSV_PARTITION_CAP 2048

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

/* The timeline TSV's header line: the column names "rank ... peer", then optionally the plan
 * the events are of ("\t# kvrun-plan KEY=VALUE ...", kvr_timeline_out.h; values %XX-escaped;
 * unknown keys skipped, a key given twice refused). has_plan false: a header without it (a file
 * written before it was recorded). Numbers: p, ranks, tp >= 1 and ctx > 0 (0: absent). */
struct kvr_tsv_plan {
    bool has_plan;
    char source[16], scheme[32], model[256], model_hash[32], machine[256];
    char partition[KVR_TSV_PARTITION_CAP], kv_forward[16], ring_pass[16];
    long long ranks, p, tp, ctx;
};
/* true when line is a header (starts with "rank\t"); then *st says whether it is well formed */
bool kvr_timeline_tsv_header(char *line, struct kvr_tsv_plan *plan, enum kvr_status *st);
