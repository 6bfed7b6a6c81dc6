/* The unit machine of the simulator tests, where times are closed forms of the counts. */
#pragma once

#include "kvr_machine.h"

/* A GPU of 1 FLOP/s with free memory traffic and no launch cost (op time = FLOPs seconds),
 * links of 1 B/s with 1 s latency. */
static inline void unit_machine(struct kvr_machine *h, int p)
{
    *h = (struct kvr_machine){.name = "unit",
                              .n_nodes = 1,
                              .gpus_per_node = p,
                              .n_gpus = p,
                              .intra_Bps = 1,
                              .intra_lat_s = 1,
                              .inter_Bps = 1,
                              .inter_lat_s = 1};
    h->gpu = (struct kvr_gpu){.name = "unit",
                              .peak_flops = 1,
                              .mem_Bps = 1e300,
                              .mem_bytes = 1e12,
                              .compute_eff = {1, 1, 1},
                              .mem_eff = {1, 1, 1}};
    kvr_machine_build_links(h);
}
