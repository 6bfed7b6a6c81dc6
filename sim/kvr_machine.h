/* Machine profiles: the GPU, the topology (nodes x GPUs, intra/inter-node links), per-link
 * overrides and background traffic (noise). The simulator and the executor's link emulation
 * read the same profile. Built-in presets, INI files (data/machines/NAME.ini) and command-line
 * overrides all end in this one struct. */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "kvr_counts.h"
#include "kvr_status.h"

#define KVR_MAX_GPUS  64
#define KVR_N_CLASSES 3 /* enum kvr_op_class */
/* The default reserve per GPU: the CUDA context (~0.5 GiB), cuBLAS workspaces, NCCL's channel
 * buffers and allocator slack. Profiles set their own with [gpu] mem_reserve. */
#define KVR_GPU_RESERVE_BYTES 2147483648.0 /* 2 GiB */

struct kvr_gpu {
    char name[64];
    double peak_flops; /* dense bf16/fp16 FLOP/s (tensor cores) */
    /* Dense fp32 FLOP/s without tensor cores, what an fp32 model's GEMMs run at (PyTorch's
     * default, TF32 off). 0: not given; the simulator then refuses fp32 models. */
    double peak_fp32_flops;
    double mem_Bps;   /* memory bandwidth */
    double mem_bytes; /* capacity as the card reports it (80 GiB A100/H100, 143771 MiB H200) */
    /* Held back from the plans: the CUDA context, library workspaces (cuBLAS, NCCL buffers) and
     * allocator slack. A plan fits when every rank needs at most mem_bytes - mem_reserve_bytes. */
    double mem_reserve_bytes;
    double launch_s; /* per-kernel launch overhead */
    /* Efficiency per op class: compute efficiency rises with the rows (tokens) of the op as
     * eff * n / (n + half_tokens), so small GEMMs are less efficient; memory efficiency is flat. */
    double compute_eff[KVR_N_CLASSES];
    double half_tokens[KVR_N_CLASSES];
    double mem_eff[KVR_N_CLASSES];
    /* Attention's compute efficiency scales with (head_dim / 128)^attn_hd_exp: a fused kernel
     * does less work per byte of K and V at smaller heads (0: no scaling). */
    double attn_hd_exp;
    /* The rows that set attention's efficiency: queries^(1-a) * (mean keys per query)^a with a
     * = attn_keys_exp in [0, 1]. 0 (the default): the queries, like every other op; towards 1
     * the length of a query tile's loop over the keys, which a long prefix makes efficient
     * even for few queries. kvr calibrate fits it with the (queries, prefix) shapes. */
    double attn_keys_exp;
    /* Time multiplier of one operation (0: none), fitted by kvr calibrate: what the executor's
     * kernels move or compute beyond the counts (an fp32 residual stream, the cache copy). */
    double op_scale[KVR_N_OPS];
};

enum kvr_noise_mode { KVR_NOISE_NONE, KVR_NOISE_CONSTANT, KVR_NOISE_RANDOM };

struct kvr_noise {
    enum kvr_noise_mode mode;
    double share;   /* constant: the share taken; random: drawn uniformly in [0, share) */
    bool all_links; /* else only the links marked in on[][] */
    bool on[KVR_MAX_GPUS][KVR_MAX_GPUS];
    uint64_t seed; /* 0..KVR_NOISE_SEED_MAX */
};

/* The largest noise seed: the generator (GSL's mt19937) keeps 32 bits of its seed, so seeds
 * s and s + 2^32 would draw the same noise; --seed, a profile's [noise] seed and a sweep's
 * seeds are refused beyond it. */
#define KVR_NOISE_SEED_MAX 4294967295u

struct kvr_machine {
    char name[64];
    struct kvr_gpu gpu;
    int n_nodes, gpus_per_node; /* topology size = n_nodes * gpus_per_node */
    int n_gpus;                 /* GPUs used (p), at most the topology size */
    double intra_Bps, intra_lat_s, inter_Bps, inter_lat_s;
    /* The most an asynchronous transfer gets while the GPUs at its ends compute (0: no cap):
     * NCCL moves data with kernels that share the SMs with the GEMMs they overlap. */
    double overlap_Bps;
    /* Directed link i -> j; filled from the topology by kvr_machine_build_links, then overrides. */
    double link_Bps[KVR_MAX_GPUS][KVR_MAX_GPUS];
    double link_lat_s[KVR_MAX_GPUS][KVR_MAX_GPUS];
    struct kvr_noise noise;
    /* Seen from chain positions (kvr_machine_permute): position i is GPU gpu_of[i] of the
     * topology; when !permuted, GPU i. Not part of the profile (nor of its hash). */
    bool permuted;
    int gpu_of[KVR_MAX_GPUS];
};

/* The node of position i (its GPU's, under a permutation). */
int kvr_machine_node(const struct kvr_machine *m, int i);

/* The peak an op of a model of dtype d runs at: peak_fp32_flops for fp32, else peak_flops. */
double kvr_gpu_peak_flops(const struct kvr_gpu *g, enum kvr_dtype d);
/* KVR_ERR_INPUT, naming the model, its dtype and the GPU (of machine `machine` when not NULL),
 * when the GPU gives no peak for the model's dtype (a profile without peak_fp32). */
enum kvr_status kvr_gpu_check_dtype(const struct kvr_gpu *g, const struct kvr_model *m,
                                    const char *machine);

int kvr_machine_preset_count(void);
const struct kvr_machine *kvr_machine_preset_at(int i);
/* A preset by name, or an INI file (*.ini); links are built. */
enum kvr_status kvr_machine_resolve(const char *name_or_file, struct kvr_machine *out);
enum kvr_status kvr_machine_load_ini(const char *path, struct kvr_machine *out);
/* Writes h as a profile that kvr_machine_load_ini reads back: [machine], [gpu] (every cost
 * parameter), [topology]; the caller adds its provenance comments before. */
void kvr_machine_write_ini(FILE *f, const struct kvr_machine *h);

/* Fills link_Bps/link_lat_s from the topology (same node: intra, else inter). Overrides
 * applied before are lost, so call it first. */
void kvr_machine_build_links(struct kvr_machine *m);

/* Command-line overrides, in this order: --gpus, --bw (every link), --link, --noise. Each
 * message names the option and the value. */
enum kvr_status kvr_machine_set_gpus(struct kvr_machine *m, const char *text);
enum kvr_status kvr_machine_set_all_bw(struct kvr_machine *m, const char *text);
/* "I-J=RATE" (both ways) or "I>J=RATE" (directed); RATE may be followed by ",LATENCY". */
enum kvr_status kvr_machine_set_link(struct kvr_machine *m, const char *spec);
/* The two GPUs of a --link spec ("I-J=..." or "I>J=..."), checked against m's GPUs as
 * kvr_machine_set_link reads them. */
enum kvr_status kvr_machine_link_ends(const struct kvr_machine *m, const char *spec, int *i,
                                      int *j);
/* "SHARE" (constant on all links), "random:SHARE", optionally "@I-J,K-L" to pick links. */
enum kvr_status kvr_machine_set_noise(struct kvr_machine *m, const char *spec);

/* The parts of --noise, also used by the INI loader: the share in [0, 1), and the links
 * ("all" or "I-J,K>L"; overrides the earlier choice). The mode is left as it is. */
enum kvr_status kvr_machine_set_noise_share(struct kvr_machine *m, const char *text);
enum kvr_status kvr_machine_set_noise_links(struct kvr_machine *m, const char *list);

/* Checks the whole profile (positive rates and latencies, noise in [0, 1), p within the
 * topology). */
enum kvr_status kvr_machine_validate(const struct kvr_machine *m);
/* The GPU part alone: rates > 0, efficiencies in (0, 1], half_tokens >= 0. */
enum kvr_status kvr_gpu_validate(const struct kvr_gpu *g);

/* Names for the op classes as used in profiles: gemm, attention, elementwise. */
const char *kvr_class_name(int cls);
