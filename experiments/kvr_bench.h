/* The benchmarks behind `kvr bench`. */
#pragma once

#include <stdbool.h>

#include "kvr_status.h"

enum kvr_status kvr_bench_search(bool json);
/* The cluster-scale cases (cmd_bench_scale.c); run from the source root (data/machines/). */
enum kvr_status kvr_bench_search_scale(bool json);
enum kvr_status kvr_bench_attention(int argc, char **argv);
enum kvr_status kvr_bench_comm(int argc, char **argv);
