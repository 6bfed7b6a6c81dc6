#include "kvr_measure.h"

#include <stdio.h>
#include <string.h>

#include "kvr_search_cli.h"

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
}
