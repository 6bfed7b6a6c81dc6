/* The benchmarks behind `kvr bench`. */
#pragma once

#include <stdbool.h>

#include "kvr_status.h"

enum kvr_status kvr_bench_search(bool json);
enum kvr_status kvr_bench_attention(int argc, char **argv);
enum kvr_status kvr_bench_comm(int argc, char **argv);
