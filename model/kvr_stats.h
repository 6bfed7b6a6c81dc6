/* Statistics of repeated measurements and trials: the median and quantiles every layer
 * reports (the simulator's noise trials, the executor's timed reps, the search objective). */
#pragma once

#include <stddef.h>

/* Sorts v[0..n) in place and returns its q-quantile (q in [0, 1]) by linear interpolation
 * between order statistics (q = 0.5: the median). n >= 1. */
double kvr_quantile(double *v, size_t n, double q);
