#include "kvr_measure.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvr_search_cli.h"
#include "kvr_version.h"
#include "kvr_layout.h"
#include "kvr_sim.h"

enum kvr_status kvr_measure_check_clean(bool allow_dirty)
{
    if (allow_dirty || !strstr(KVR_GIT_VERSION, "-dirty")) return KVR_OK;
    return kvr_error(KVR_ERR_USAGE,
                     "--db: this kvr (%s) was built from a tree with uncommitted changes, so no "
                     "commit names what produced the measurement: commit and rebuild, or pass "
                     "--allow-dirty",
                     KVR_GIT_VERSION);
}

enum kvr_status kvr_measure_check_db(const char *db)
{
    struct stat sb;
    size_t n = strlen(db);
    if (n && db[n - 1] != '/' && strcmp(db, "-") && stat(db, &sb) != 0 && errno == ENOENT) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", db);
        const char *d = dirname(dir);
        if (stat(d, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(d, W_OK) != 0)
            return kvr_error(KVR_ERR_IO, "--db: cannot create '%s': '%s' is not a writable folder",
                             db, d);
        return KVR_OK;
    }
    struct kvr_store *store = NULL;
    enum kvr_status st = kvr_store_open(db, KVR_STORE_READ, &store);
    kvr_store_close(store);
    if (!st && access(db, W_OK) != 0)
        st = kvr_error(KVR_ERR_IO, "--db: '%s' is not writable: %s", db, strerror(errno));
    return st;
}

enum kvr_status kvr_measure_store(const char *db, const char *argv_text, struct kvr_exec *ex,
                                  struct kvr_measurement_row *x)
{
    char host[256];
    struct kvr_provenance prov;
    kvr_exec_device_name(ex, x->gpu, sizeof x->gpu);
    kvr_exec_driver(ex, x->driver, sizeof x->driver);
    kvr_search_provenance(argv_text, x->gpu, &prov, host, sizeof host);
    struct kvr_store *store = NULL;
    enum kvr_status st = kvr_store_open(db, KVR_STORE_WRITE, &store);
    if (!st) st = kvr_store_add_run(store, &prov, &x->run_id);
    if (!st) st = kvr_store_put_measurement(store, x);
    kvr_store_close(store);
    return st;
}

void kvr_measure_single(struct kvr_measurement_row *x, const struct kvr_model *m,
                        const struct kvr_exec_result *r, const char *backend, int warmup, int reps)
{
    memset(x, 0, sizeof *x);
    snprintf(x->model, sizeof x->model, "%s", m->name);
    snprintf(x->machine, sizeof x->machine, "local");
    snprintf(x->scheme, sizeof x->scheme, "single");
    snprintf(x->method, sizeof x->method, "single");
    snprintf(x->backend, sizeof x->backend, "%s", backend);
    snprintf(x->comm, sizeof x->comm, "none");
    snprintf(x->link_settings, sizeof x->link_settings, "none");
    snprintf(x->nccl_version, sizeof x->nccl_version, "none");
    snprintf(x->mpi_version, sizeof x->mpi_version, "none");
    x->p = 1, x->ctx_tokens = r->ctx, x->tokens[0] = r->ctx, x->warmup = warmup, x->reps = reps;
    x->ttft_median_s = r->ttft_s, x->ttft_min_s = r->ttft_min_s, x->ttft_max_s = r->ttft_max_s;
    x->peak_mem_bytes = (double)r->peak_mem_bytes, x->first_token = r->first_token;
    x->logits_checksum = r->logits_checksum;
    snprintf(x->last_layer, sizeof x->last_layer, "%s", r->last_layer_pruned ? "pruned" : "full");
}

enum kvr_status kvr_measure_predict(const struct kvr_model *m, const struct kvr_machine *machine,
                                    const char *scheme, const char *kv_forward, int tp, int p,
                                    uint64_t ctx, const uint64_t *tokens, const char *method,
                                    bool full_last_layer, double *ttft)
{
    int s = kvr_scheme_from_name(scheme);
    int f = kv_forward[0] ? kvr_kv_forward_from_name(kv_forward) : KVR_FWD_WHOLE;
    if (s < 0) return kvr_error(KVR_ERR_INPUT, "measurement of scheme '%s': unknown", scheme);
    if (s == KVR_SCHEME_TP) tp = 0; /* Megatron TP is t = p already (the row records t = p) */
    if (f < 0)
        return kvr_error(KVR_ERR_INPUT, "measurement with kv_forward '%s': unknown", kv_forward);
    if (p > machine->n_nodes * machine->gpus_per_node)
        return kvr_error(KVR_ERR_INPUT, "measurement on %d ranks: %s has fewer GPUs", p,
                         machine->name);
    struct kvr_machine *h = malloc(sizeof *h); /* large: not on the stack */
    if (!h) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    *h = *machine, h->n_gpus = p;
    struct kvr_plan plan = {.scheme = (enum kvr_scheme)s,
                            .p = p,
                            .ctx = ctx,
                            .kv_forward = (enum kvr_kv_forward)f,
                            .tp = tp > 1 ? tp : 0,
                            .full_last_layer = full_last_layer};
    /* the schemes that take any partition run the measured one (a chunk per stage of a layout,
     * as kvr sim --tp); the others split evenly */
    if ((kvr_scheme_get(plan.scheme)->options & KVR_SO_PARTITION) && tokens)
        memcpy(plan.tokens, tokens, (size_t)kvr_plan_stages(&plan) * sizeof *tokens);
    else
        kvr_plan_even(&plan);
    /* ring's measurement rows say what travelled: pass-kv or pass-q */
    if (plan.scheme == KVR_SCHEME_RING && method && !strcmp(method, "pass-q"))
        plan.ring_pass = KVR_RING_PASS_Q;
    struct kvr_sim *sim = NULL;
    struct kvr_sim_result r;
    enum kvr_status st = tp > 1 ? kvr_layout_check(m, &plan) : KVR_OK;
    if (st) st = kvr_error_prefix(st, "measurement with tp = %d: ", tp);
    if (!st) st = kvr_plan_check(&plan, h);
    if (!st && !(st = kvr_sim_open(m, h, &sim))) st = kvr_sim_run(sim, &plan, &r, NULL);
    kvr_sim_free(sim);
    free(h);
    if (!st) *ttft = r.ttft_s;
    return st;
}
