/* Exporters of the lookup table for deployments: JSON (schema in partition/README.md), CSV (read
 * by the kvr_lookup library) and a C header (rows for kvr_lookup_from_rows). Written through
 * kvr_out (model/kvr_out.h): temp file and rename, "-" is stdout, devices written through. */
#pragma once

#include <stddef.h>

#include "kvr_store.h"

enum kvr_export_format { KVR_EXPORT_JSON, KVR_EXPORT_CSV, KVR_EXPORT_C_HEADER };
int kvr_export_format_from_name(const char *name); /* -1 when unknown */

enum kvr_status kvr_export_plans(const struct kvr_plan_row *rows, size_t n,
                                 enum kvr_export_format fmt, const char *generator,
                                 const char *path);
