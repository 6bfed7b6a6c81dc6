/* The figures: which sweep fills each, which view it reads, and how its data is cut into
 * panels (files) and series (blocks) for its gnuplot script. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kvr_store.h"

struct kvr_plot_figure {
    const char *name, *title, *sweep, *view;
    const char *file_cols; /* one file (panel) per value of these; "" for one file */
    const char *block_col; /* one block (series) per value; "" for one block */
    const char *cols;      /* the data columns */
    const char *order;     /* within a file */
    bool gantt;            /* re-simulates the stored partitions for per-rank timelines */
};

int kvr_plot_count(void);
const struct kvr_plot_figure *kvr_plot_at(int i);
const struct kvr_plot_figure *kvr_plot_figure(const char *name); /* NULL when unknown */

/* Writes DATADIR/NAME-K.tsv and DATADIR/NAME.list; *rows counts the data rows. */
enum kvr_status kvr_plot_export(struct kvr_store *store, const struct kvr_plot_figure *f,
                                const char *datadir, size_t *rows);

/* A figure of committed measurements has this view and its database (relative to the data
 * directory, kvr_datadir.h) as its sweep: every multi-GPU measurement beside the simulator's
 * prediction of its plan (kvr_plot_measured.c, which names the profile that predicts them). */
#define KVR_PLOT_MEASURED "measured"
enum kvr_status kvr_plot_export_measured(const struct kvr_plot_figure *f, const char *datadir,
                                         size_t *rows);

/* --out DIR of the figures: an existing directory (KVR_ERR_IO naming --out otherwise). */
enum kvr_status kvr_plot_check_out(const char *dir);
/* DIR/data, where the figures' data go, created when missing (its path in data). */
enum kvr_status kvr_plot_data_dir(const char *dir, char *data, size_t cap);
/* gnuplot must run: its absence is the user's to fix (exit 2). */
enum kvr_status kvr_plot_check_gnuplot(const char *prog);
/* Renders OUT/NAME.png and .svg from OUT/data with SCRIPTS/style.gp and SCRIPTS/NAME.gp. */
enum kvr_status kvr_plot_render(const char *gnuplot, const char *scripts, const char *out,
                                const char *name);
