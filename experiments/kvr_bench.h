/* The benchmarks behind `kvr bench`. */
#pragma once

#include <stdbool.h>

#include "kvr_cli.h"
#include "kvr_status.h"

enum kvr_status kvr_bench_search(bool json);
/* The cluster-scale cases (cmd_bench_scale.c); run from the source root (data/machines/). */
enum kvr_status kvr_bench_search_scale(bool json);
/* KVR-P by leave-one-out at p = 8..64 (cmd_bench_scale.c). */
enum kvr_status kvr_bench_search_scale_loo(bool json);
/* One search at p = 8..64 on one node and on 8 nodes, hier and descent (cmd_bench_scale.c). */
enum kvr_status kvr_bench_search_issue(bool json);
/* kvr bench attention, kvr bench comm (their own options; kvr_cli.h's entry point). */
kvr_cmd_fn kvr_bench_attention, kvr_bench_comm;
