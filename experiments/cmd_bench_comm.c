/* kvr bench comm: the communicator over message sizes, under mpirun, with nccl-tests'
 * conventions (size = the whole buffer; algbw = size / time; busbw = algbw x (p-1)/p for
 * all-gather and reduce-scatter, 2(p-1)/p for all-reduce, 1 for point-to-point), and an
 * alpha-beta fit of the point-to-point times (GSL least squares): t = alpha + bytes / beta, the
 * link model the simulator uses. */
#include <gsl/gsl_fit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvr_bench.h"
#include "kvr_cli.h"
#include "kvr_opt.h"
#include "kvr_comm.h"
#include "kvr_exec.h"
#include "kvr_json.h"
#include "kvr_mpi.h"
#include "kvr_units.h"

static const char help[] =
    "usage: mpirun -np P kvr bench comm [--comm mpi|nccl] [--max-bytes N] [--iters N] [--json]\n"
    "\n"
    "Times point-to-point (ranks 0 and 1, half a round trip), all-gather, reduce-scatter and\n"
    "all-reduce from 8 bytes to --max-bytes (x4 steps; default 64MB), reports algbw and busbw\n"
    "as nccl-tests does, and fits alpha (latency) and beta (bandwidth) to the point-to-point\n"
    "times. mpi uses host buffers; nccl device buffers (one GPU per rank).\n";

enum coll { P2P, ALLGATHER, REDUCE_SCATTER, ALLREDUCE, N_COLL };
static const char *const coll_name[] = {"sendrecv", "all_gather", "reduce_scatter", "all_reduce"};

static double bus_factor(enum coll c, int p)
{
    if (c == ALLREDUCE) return 2.0 * (p - 1) / p;
    return c == P2P ? 1 : (double)(p - 1) / p;
}

/* One operation on `bytes` (the whole buffer, as nccl-tests counts it). */
static enum kvr_status once(struct kvr_comm *cm, enum coll c, char *a, char *b, size_t bytes)
{
    int r = kvr_comm_rank(cm), p = kvr_comm_size(cm);
    struct kvr_comm_req *q = NULL;
    enum kvr_status st = KVR_OK;
    size_t part = bytes / (size_t)p;
    switch (c) {
    case P2P: /* 0 -> 1 -> 0 */
        if (r == 0 && !(st = kvr_comm_isend(cm, a, bytes, 1, 7, &q)) &&
            !(st = kvr_comm_wait(cm, q)) && !(st = kvr_comm_irecv(cm, b, bytes, 1, 8, &q)))
            st = kvr_comm_wait(cm, q);
        if (r == 1 && !(st = kvr_comm_irecv(cm, b, bytes, 0, 7, &q)) &&
            !(st = kvr_comm_wait(cm, q)) && !(st = kvr_comm_isend(cm, a, bytes, 0, 8, &q)))
            st = kvr_comm_wait(cm, q);
        return st;
    case ALLGATHER:
        return kvr_comm_allgather(cm, a, b, part);
    case REDUCE_SCATTER:
        return kvr_comm_reduce_scatter_f32(cm, (const float *)a, (float *)b, part / sizeof(float));
    default:
        return kvr_comm_allreduce_f32(cm, (float *)a, bytes / sizeof(float));
    }
}

/* Seconds per operation: the slowest rank's mean over iters, after warm-ups. */
static enum kvr_status time_one(struct kvr_comm *cm, enum coll c, char *a, char *b, size_t bytes,
                                int iters, double *t)
{
    enum kvr_status st = KVR_OK;
    for (int i = 0; i < 3 && !st; i++) st = once(cm, c, a, b, bytes);
    if (!st) st = kvr_comm_barrier(cm);
    double t0 = kvr_cli_now_s();
    for (int i = 0; i < iters && !st; i++) st = once(cm, c, a, b, bytes);
    *t = (kvr_cli_now_s() - t0) / iters / (c == P2P ? 2 : 1);
    return st ? st : kvr_comm_max_f64(cm, t);
}

struct result {
    size_t bytes;
    double t[N_COLL];
};

static void print_results(const struct result *r, int n, int p, double alpha, double beta,
                          bool json, const char *comm)
{
    if (json) {
        struct kvr_json j;
        kvr_json_begin(&j, stdout);
        kvr_json_kv_str(&j, "comm", comm);
        kvr_json_kv_u64(&j, "ranks", (uint64_t)p);
        kvr_json_kv_dbl(&j, "alpha_s", alpha);
        kvr_json_kv_dbl(&j, "beta_Bps", beta);
        kvr_json_key(&j, "rows");
        kvr_json_array_begin(&j);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < N_COLL; c++) {
                kvr_json_object_begin(&j);
                kvr_json_kv_str(&j, "op", coll_name[c]);
                kvr_json_kv_u64(&j, "bytes", r[i].bytes);
                kvr_json_kv_dbl(&j, "time_s", r[i].t[c]);
                kvr_json_kv_dbl(&j, "algbw_Bps", (double)r[i].bytes / r[i].t[c]);
                kvr_json_kv_dbl(&j, "busbw_Bps", (double)r[i].bytes / r[i].t[c] * bus_factor(c, p));
                kvr_json_object_end(&j);
            }
        kvr_json_array_end(&j);
        kvr_json_end(&j);
        return;
    }
    printf("%d ranks, comm %s; algbw / busbw in GB/s, time in us\n%12s", p, comm, "bytes");
    for (int c = 0; c < N_COLL; c++) printf(" %26s", coll_name[c]);
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("%12zu", r[i].bytes);
        for (int c = 0; c < N_COLL; c++)
            printf(" %9.1f %7.2f %7.2f", 1e6 * r[i].t[c], r[i].bytes / r[i].t[c] / 1e9,
                   r[i].bytes / r[i].t[c] * bus_factor(c, p) / 1e9);
        printf("\n");
    }
    printf("point-to-point fit: t = %.2f us + bytes / (%.2f GB/s)\n", alpha * 1e6, beta / 1e9);
}

/* alpha and beta from the point-to-point times, by least squares on t = alpha + bytes / beta. */
static void fit_alpha_beta(const struct result *r, int n, double *alpha, double *beta)
{
    double x[64], y[64], c0, c1, cov00, cov01, cov11, sumsq;
    for (int i = 0; i < n; i++) x[i] = (double)r[i].bytes, y[i] = r[i].t[P2P];
    if (n > 0 && (gsl_fit_linear(x, 1, y, 1, (size_t)n, &c0, &c1, &cov00, &cov01, &cov11, &sumsq) ||
                  !(c1 > 0))) {
        /* noise (a loaded or oversubscribed host) can tilt the line: then the smallest time is
         * the latency and the largest message gives the bandwidth */
        c0 = y[0];
        for (int i = 1; i < n; i++) c0 = fmin(c0, y[i]);
        c1 = (y[n - 1] - c0) / x[n - 1];
        if (!(c1 > 0)) c1 = y[n - 1] / x[n - 1];
    }
    if (n == 0 || !(c1 > 0)) {
        *alpha = NAN, *beta = NAN;
        return;
    }
    *alpha = c0 > 0 ? c0 : 0, *beta = 1 / c1;
}

struct comm_args {
    const char *comm, *max_bytes, *iters;
    bool json, quiet, help;
    double max_bytes_v; /* converted from the above */
    uint64_t iters_v;
    int kind; /* enum kvr_comm_kind */
};

static enum kvr_status check_args(void *args, const struct kvr_opt_result *res)
{
    struct comm_args *o = args;
    (void)res;
    if (kvr_parse_bytes(o->max_bytes, &o->max_bytes_v) || o->max_bytes_v < 8)
        return kvr_error(KVR_ERR_USAGE, "--max-bytes: '%s' is not a size of 8 bytes or more",
                         o->max_bytes);
    if (kvr_parse_u64(o->iters, 100000, &o->iters_v) || o->iters_v == 0)
        return kvr_error(KVR_ERR_USAGE, "--iters: '%s' is not a count in [1, 100000]", o->iters);
    return kvr_cli_parse_name("--comm", o->comm, kvr_comm_kind_from_name, "mpi or nccl", &o->kind);
}

#define OFF(f) offsetof(struct comm_args, f)
static const struct kvr_opt comm_opts[] = {
    KVR_OPT("comm", 0, "C", OFF(comm), "mpi (host-staged) or nccl", .def = "mpi"),
    KVR_OPT("max-bytes", 0, "B", OFF(max_bytes), "largest message", .def = "64MB"),
    KVR_OPT("iters", 0, "N", OFF(iters), "timed iterations per size (5 above 16 MiB)", .def = "20"),
    KVR_OPT_COMMON_END(struct comm_args)};
#undef OFF

static const struct kvr_opt_spec comm_spec = {
    .usage = help, .opts = comm_opts, .check = check_args};

enum kvr_status kvr_bench_comm(int argc, char **argv)
{
    struct comm_args o = {0};
    enum kvr_status pst;
    if (kvr_opt_start(&comm_spec, argc, argv, &o, NULL, &pst)) return pst;
    const char *comm_name = o.comm;
    double max_bytes = o.max_bytes_v;
    uint64_t iters = o.iters_v;
    bool json = o.json;
    int kind = o.kind, rank, size;
    if (!kvr_mpi_launched())
        return kvr_error(KVR_ERR_USAGE, "bench comm runs under mpirun -np P (P >= 2)");
    enum kvr_status st = kvr_mpi_init(&rank, &size);
    struct kvr_comm *cm = NULL;
    if (!st && size < 2) st = kvr_error(KVR_ERR_USAGE, "bench comm needs at least 2 ranks");
    int dev = kvr_mpi_local_device();
    if (!st) st = kvr_comm_open((enum kvr_comm_kind)kind, dev, 60, &cm);
    size_t cap = (size_t)max_bytes;
    char *a = NULL, *b = NULL;
    if (!st && kind == KVR_COMM_NCCL) {
        if (!(st = kvr_exec_device_buffer(dev, cap, (void **)&a)))
            st = kvr_exec_device_buffer(dev, cap, (void **)&b);
    } else if (!st && (!(a = calloc(cap, 1)) || !(b = calloc(cap, 1)))) {
        st = kvr_error(KVR_ERR_NOMEM, "out of memory for %zu-byte buffers", cap);
    }
    struct result r[64];
    int n = 0;
    for (size_t bytes = 8 * (size_t)size; !st && bytes <= cap && n < 64; bytes *= 4, n++) {
        r[n].bytes = bytes;
        for (int c = 0; c < N_COLL && !st; c++)
            st = time_one(cm, (enum coll)c, a, b, bytes, bytes > (1u << 24) ? 5 : (int)iters,
                          &r[n].t[c]);
    }
    if (!st && rank == 0) {
        double alpha, beta;
        fit_alpha_beta(r, n, &alpha, &beta);
        print_results(r, n, size, alpha, beta, json, comm_name);
    }
    if (kind == KVR_COMM_NCCL)
        kvr_exec_device_free(a), kvr_exec_device_free(b);
    else
        free(a), free(b);
    kvr_comm_close(cm);
    kvr_mpi_abort_failed(st, rank, size);
    kvr_mpi_finalize();
    return st;
}
