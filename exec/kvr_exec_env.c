/* The cuda backend's environment switches (exec/README.md), read and checked together before
 * any backend or device is set up, on either backend: a bad value is refused by name wherever
 * it is set (on the ref backend the good ones change nothing: they name cuda kernels), and so
 * is a switch whose subject never runs. */
#include <stdlib.h>
#include <string.h>

#include "kvr_exec_int.h"

/* NAME unset: -1; "0" or "1": 0 or 1; anything else, the empty string too: -2. */
static int switch_of(const char *name)
{
    const char *e = getenv(name);
    if (!e) return -1;
    return !strcmp(e, "0") ? 0 : !strcmp(e, "1") ? 1 : -2;
}

static enum kvr_status bad(const char *name, const char *want)
{
    return kvr_error(KVR_ERR_INPUT, "%s=%s (environment): %s", name, getenv(name), want);
}

static enum kvr_status read_own(struct kvr_exec_env *v)
{
    const char *e = getenv("KVR_GEMM_OWN");
    if (!e) return KVR_OK;
    if (strlen(e) != 1 || e[0] < '0' || e[0] > '2') return bad("KVR_GEMM_OWN", "0, 1 or 2");
    v->own = e[0] - '0';
    if (v->own && !v->tune)
        return kvr_error(KVR_ERR_INPUT,
                         "KVR_GEMM_OWN=%s (environment) with KVR_GEMM_TUNE=0: every GEMM is "
                         "cublasGemmEx then, so the own kernel never runs",
                         e);
    return KVR_OK;
}

enum kvr_status kvr_exec_env_read(struct kvr_exec_env *v)
{
    static const char *const plain[] = {"KVR_GEMM_TUNE", "KVR_GEMM_SPLIT", "KVR_GEMM_LOG",
                                        "KVR_ATTN_PERSIST", "KVR_ATTN_LAZY"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (switch_of(plain[i]) == -2) return bad(plain[i], "0 or 1");
    const int tune = switch_of("KVR_GEMM_TUNE"), split = switch_of("KVR_GEMM_SPLIT");
    *v = (struct kvr_exec_env){.tune = tune != 0, .own = 1, .split = split != 0};
    enum kvr_status st = read_own(v);
    if (!st && split >= 0 && (!v->tune || !v->own))
        st = kvr_error(KVR_ERR_INPUT,
                       "KVR_GEMM_SPLIT=%s (environment) with %s: the own GEMM never runs, so its "
                       "split means nothing",
                       getenv("KVR_GEMM_SPLIT"), !v->tune ? "KVR_GEMM_TUNE=0" : "KVR_GEMM_OWN=0");
    return st;
}
