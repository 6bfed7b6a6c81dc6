/* The machine options shared by sim, search, lookup and sweep: a profile plus --bw, --link,
 * --noise, --seed, and for noisy objectives --trials and --objective. They build the struct
 * kvr_machine the simulator reads, and the machine key that names it in the lookup table. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kvr_machine.h"

struct kvr_machine_args {
    const char *machine, *bw, *noise, *objective;
    const char *links[KVR_MAX_GPUS * 2];
    int n_links;
    uint64_t seed, trials;
    const char *seed_arg, *trials_arg; /* as given (kvr_opt tables); kvr_machine_args_finish */
};

/* The entries of a command's kvr_opt table (kvr_opt.h) for a struct kvr_machine_args member
 * `m` of `type`; trials_def is the command's default trial count ("1", "16"). */
#define KVR_MACHINE_OPTS(type, m, machine_def, trials_def)                                         \
    KVR_OPT("machine", 'H', "H", offsetof(type, m.machine), "preset or .ini profile",              \
            .def = machine_def, .file = KVR_OPT_FILE_NAME),                                        \
        KVR_OPT("bw", 0, "RATE", offsetof(type, m.bw), "every link's bandwidth, e.g. 10GB/s",      \
                .def_help = "the profile's"),                                                      \
        KVR_OPT("link", 0, "I-J=RATE[,LAT]", offsetof(type, m.links),                              \
                "one link, both ways (I>J: one way); repeatable", .kind = KVR_OPT_MULTI,           \
                .count_offset = offsetof(type, m.n_links), .max = KVR_MAX_GPUS * 2),               \
        KVR_OPT("noise", 0, "SPEC", offsetof(type, m.noise),                                       \
                "background traffic: SHARE in [0,1) constant, random:SHARE drawn\n"                \
                "per layer in [0, SHARE); add @I-J,K-L for chosen links\n"                         \
                "(the plan's GPUs; one its scheme sends nothing on changes nothing)",              \
                .def_help = "none"),                                                               \
        KVR_OPT("seed", 0, "X", offsetof(type, m.seed_arg),                                        \
                "seed of the noise (and of exec's weights and tokens), 0..4294967295",             \
                .def_help = KVR_SEED_DEFAULT),                                                     \
        KVR_OPT("trials", 0, "T", offsetof(type, m.trials_arg), "noise trials",                    \
                .def = trials_def),                                                                \
        KVR_OPT("objective", 0, "O", offsetof(type, m.objective),                                  \
                "over noise trials: mean, or pNN (e.g. p95)", .def = "mean")

struct kvr_opt_result;

/* Without --noise, refuses the options that only mean something with it (--seed, --trials,
 * --objective), saying why (KVR_NOISE_ONLY_IN_KEY: the lookup table's). */
enum kvr_status kvr_machine_args_refuse_noiseless(const struct kvr_machine_args *a,
                                                  const struct kvr_opt_result *res,
                                                  const char *why);
#define KVR_NOISE_ONLY_IN_KEY "applies with --noise only (the table's key has none without noise)"

/* The first of --seed, --trials, --objective given (NULL: none), for a check that needs the
 * built machine: kvr_machine_args_refuse_unrandom. */
const char *kvr_machine_args_noise_given(const struct kvr_opt_result *res);
/* Refuses that option unless h's noise is random (from --noise random:SHARE or the profile):
 * without noise, or with constant noise, which draws nothing, every trial is the same. */
enum kvr_status kvr_machine_args_refuse_unrandom(const char *given, const struct kvr_machine *h);

/* The one default of --seed in every command (help text only: seed_arg stays NULL when --seed
 * is not given, so a profile's [noise] seed stands, kvr_machine_args_build). */
#define KVR_SEED_DEFAULT "0"

/* Converts and checks seed_arg and trials_arg (KVR_ERR_INPUT naming the option), and
 * --objective. */
enum kvr_status kvr_machine_args_finish(struct kvr_machine_args *a);

/* The machine: profile `name` (NULL: a->machine), then --gpus (NULL: all), --bw, --link,
 * --noise and the seed, validated. */
enum kvr_status kvr_machine_args_build(const struct kvr_machine_args *a, const char *name,
                                       const char *gpus, struct kvr_machine *h);

/* --link and --noise against the GPUs one plan runs on (gpus[0..n) of h's topology; NULL: GPUs
 * 0..n-1), h as kvr_machine_args_build made it (not permuted): a link with an end outside them
 * is crossed by none of the plan's transfers, so it is refused (KVR_ERR_INPUT, naming it) rather
 * than accepted and ignored. A link between two of them that the scheme sends nothing on is
 * honoured: the plan is unaffected by it, as on the real machine (sim/README.md, "Noise"). */
enum kvr_status kvr_machine_args_check_used(const struct kvr_machine_args *a,
                                            const struct kvr_machine *h, const int *gpus, int n);

/* The lookup table's machine key: the profile name, plus each override as given, plus with
 * noise the seed, trials and objective ("a100-nvlink+bw=10GB/s"). */
void kvr_machine_args_key(const struct kvr_machine_args *a, const char *name, char *buf,
                          size_t cap);

/* The overrides of a key back into *a (the inverse of kvr_machine_args_key; the profile name
 * before the first '+' is left out). The values point into buf, a copy of key (cap bytes). */
enum kvr_status kvr_machine_args_from_key(const char *key, struct kvr_machine_args *a, char *buf,
                                          size_t cap);

/* --objective as a percentile (0 for the mean). */
enum kvr_status kvr_machine_args_percentile(const struct kvr_machine_args *a, double *pct);
