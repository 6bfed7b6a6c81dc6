/* Every parallel scheme, once: the one table that the simulator, the executor, sweeps,
 * validation, plots, every --help and every error list read (kvr help schemes prints it).
 * Included by kvr_scheme.h, kvr_scheme.c, kvr_sim_int.h and exec/kvr_dist_int.h, each with its
 * own KVR_SCHEME(...) expansion; no include guard on purpose.
 *
 *   id        enum kvr_scheme's KVR_SCHEME_<id>
 *   name      what --scheme and sweep files take
 *   label     the series in figures and reports
 *   sim       the simulator entry (sim/kvr_scheme_<name>.c): void f(struct kvr_sim *, plan)
 *   exec      KVR_EXEC(f): the executor entry (exec/kvr_dist_<name>.c); KVR_SIM_ONLY: none
 *   options   KVR_SO_* (kvr_scheme.h): which partitions it takes, what p and ctx it needs
 *   help      one line
 *
 * The order is the order of the series in figures (a sweep point's series_rank).
 * Adding a scheme: a simulator file, a row here and its line in sim/meson.build (and, if it
 * runs on ranks, an executor file and its line in exec/meson.build). */
/* clang-format off */
KVR_SCHEME(SINGLE, "single", "single", kvr_sim_single, KVR_EXEC(kvr_dist_single),
           KVR_SO_ONE_GPU,
           "one GPU: the whole prefill, no communication")
KVR_SCHEME(TSP, "tsp", "TSP", kvr_sim_tsp, KVR_EXEC(kvr_dist_tsp),
           KVR_SO_EVEN | KVR_SO_LAYOUT,
           "even split, K/V all-gather per layer, dense masked attention (the paper's baseline)")
KVR_SCHEME(TSP_CAUSAL, "tsp-causal", "TSP-causal", kvr_sim_tsp_causal, KVR_EXEC(kvr_dist_tsp_causal),
           KVR_SO_EVEN | KVR_SO_LAYOUT,
           "tsp computing only the unmasked pairs (a flash kernel skipping the masked triangle)")
KVR_SCHEME(TSP_PAPER, "tsp-paper", "TSP-paper", kvr_sim_tsp_paper, KVR_EXEC(kvr_dist_tsp_paper),
           KVR_SO_EVEN | KVR_SO_LAYOUT,
           "the paper's baseline as it most plausibly ran: tsp with K/V expanded to every query head")
KVR_SCHEME(RING, "ring", "ring", kvr_sim_ring, KVR_EXEC(kvr_dist_ring),
           KVR_SO_EVEN | KVR_SO_ZIGZAG | KVR_SO_LAYOUT,
           "ring attention: zig-zag sharding (2p chunks), pass-KV (or --ring-pass q), overlapped")
KVR_SCHEME(TP, "tp", "TP", kvr_sim_tp, KVR_EXEC(kvr_dist_tp),
           KVR_SO_EVEN | KVR_SO_SHARDED,
           "Megatron tensor parallelism: heads, MLP and vocabulary split, all-reduces")
KVR_SCHEME(KVR, "kvr", "KVR", kvr_sim_kvr, KVR_EXEC(kvr_dist_kvr),
           KVR_SO_PARTITION | KVR_SO_BALANCED | KVR_SO_SEARCHED | KVR_SO_FORWARD | KVR_SO_LAYOUT,
           "KV-Runahead: any partition, the KV cache handed down a chain of ranks (--kv-forward)")
KVR_SCHEME(RING_PASS, "ring-pass", "ring-pass", kvr_sim_ring_pass, KVR_EXEC(kvr_dist_ring_pass),
           KVR_SO_PARTITION | KVR_SO_LAYOUT,
           "the executor's ring: contiguous chunks, p-1 pass-KV steps, then causal attention")
/* clang-format on */
