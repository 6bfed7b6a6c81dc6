/* Fuzz target: sweep files (kvr_sweep_load: the INI reader, the axes, the checks at read time),
 * then the expansion of whatever loads. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "kvr_sweep.h"

const char *const kvr_fuzz_seeds[] = {
    "[sweep]\nfigure = fig1\nname = t ; comment\ntrials = 4\n[axes]\nmodels = llama-7b\n"
    "machines = a100-nvlink, a100-10GBps\ngpus = 2, 4\nctx = 1k-4k+1k\n"
    "schemes = single, tsp, kvr-even, kvr-s, kvr-p\nbw = profile, 10GB/s\nnoise = none; 0.1\n",
    "[sweep]\nfigure = fig7\n[axes]\nmodels = llama-7b\nmachines = a100-10GBps\ngpus = 4\n"
    "ctx = 4k\nschemes = tsp, kvr-even\nlinks = none; 0-1=1GB/s,5us\nnoise = none; random:0.3\n"
    "seeds = 0-3\n",
    "\xEF\xBB\xBF[sweep]\r\nfigure = fig3\r\ngranularity = 128\r\n[axes]\r\nmodels = falcon-7b\r\n"
    "machines = a100-nvlink\r\ngpus = 8\r\nctx = 12k\r\nschemes = tsp, kvr-balanced, kvr-s\r\n",
    NULL};

static void load_and_expand(const char *path)
{
    static struct kvr_sweep_spec spec;
    if (kvr_sweep_load(path, &spec) == KVR_OK) {
        struct kvr_sweep_item *items = NULL;
        size_t n = 0;
        if (kvr_sweep_expand(&spec, &items, &n) == KVR_OK) free(items);
        kvr_sweep_free(&spec);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return kvr_fuzz_file(data, size, "sweep.ini", load_and_expand);
}
