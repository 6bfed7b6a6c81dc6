/* Exporters of the lookup table for deployments, format 2 (partition/README.md; JSON Schema
 * partition/kvrun-lookup-table-2.schema.json): JSON (the table and every model and machine
 * definition its rows refer to), RFC 4180 CSV (read by the kvr_lookup library) and a C header
 * (rows for kvr_lookup_from_rows). Written through kvr_out
 * (model/kvr_out.h): temp file and rename, "-" is stdout, devices written through. */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "kvr_store.h"

#define KVR_EXPORT_FORMAT_VERSION 2

enum kvr_export_format { KVR_EXPORT_JSON, KVR_EXPORT_CSV, KVR_EXPORT_C_HEADER };
int kvr_export_format_from_name(const char *name); /* -1 when unknown */

/* rows come from s (kvr_store_list_plans); their definitions and runs are read from it too. */
enum kvr_status kvr_export_plans(struct kvr_store *s, const struct kvr_plan_row *rows, size_t n,
                                 enum kvr_export_format fmt, const char *generator,
                                 const char *path);

/* ---- shared by the exporter's files ---- */
struct kvr_export_run {
    char version[128];
    double started_unix_s;
};
struct kvr_export_doc {
    const struct kvr_plan_row *rows;
    size_t n;
    struct kvr_export_run *runs; /* per row */
    struct kvr_definition *defs; /* each model and machine of the rows once */
    size_t n_defs;
    const char *generator;
    double created_unix_s;
};
/* The objective of a row, from its machine key: "mean" or "pNN", and the trials (1 without
 * noise, where the simulator is deterministic). */
void kvr_export_objective(const char *machine_key, char *stat, size_t cap, unsigned long *trials);
void kvr_export_write_json(FILE *f, const struct kvr_export_doc *d);
