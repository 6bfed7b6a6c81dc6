/* The ring's attention kernels alone (kvr bench attention --ring P): every step of every rank
 * under zig-zag sharding, the fast path timed and checked against the plain kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cuda_check.h"
#include "kvr_cuda_kernels.h"
#include "kvr_cuda_ring.h"
#include "kvr_exec.h"
#include "kvr_machine.h"
#include "kvr_sim.h"
#include "kvr_stats.h"

enum { N_SLOTS = 6 }; /* fast: acc, step; plain: acc, step; fast merges of plain steps; all keys */
enum { F_ACC, F_STEP, P_ACC, P_STEP, X_ACC, ALL };

struct ring_bufs {
    void *q, *k, *v, *att[2];
    float *o[N_SLOTS];
    uint64_t qs, kvs, os; /* row strides (elements) */
    uint32_t rows, first[KVR_MAX_GPUS];
    struct kvr_cu_span span[KVR_MAX_GPUS];
    cudaEvent_t e0, e1;
};

static void bufs_free(struct ring_bufs *r)
{
    cudaFree(r->q), cudaFree(r->k), cudaFree(r->v), cudaFree(r->att[0]), cudaFree(r->att[1]);
    for (int i = 0; i < N_SLOTS; i++) cudaFree(r->o[i]);
    if (r->e0) cudaEventDestroy(r->e0);
    if (r->e1) cudaEventDestroy(r->e1);
}

/* Q of every rank's rows in rank order (rank r's at row first[r]), K and V by position. */
static enum kvr_status bufs_alloc(const struct kvr_ring_bench *b, struct ring_bufs *r)
{
    r->qs = (uint64_t)b->n_heads * b->head_dim, r->kvs = (uint64_t)b->n_kv * b->head_dim;
    r->os = ((uint64_t)b->n_heads * (b->head_dim + 1) + 3) / 4 * 4;
    uint32_t at = 0;
    for (int i = 0; i < b->p; i++) {
        struct kvr_span s = kvr_zigzag_span(b->ctx, b->p, i);
        r->span[i] = (struct kvr_cu_span){{s.pos[0], s.pos[1]}, {s.n[0], s.n[1]}};
        r->first[i] = at, at += r->span[i].n[0] + r->span[i].n[1];
        uint32_t n = r->span[i].n[0] + r->span[i].n[1];
        r->rows = n > r->rows ? n : r->rows;
    }
    uint64_t q = (uint64_t)b->ctx * r->qs * 2, kv = (uint64_t)b->ctx * r->kvs * 2;
    uint64_t o = (uint64_t)r->rows * r->os * 4, att = (uint64_t)r->rows * r->qs * 2;
    KVR_CUDA_CHECK(cudaMalloc(&r->q, q));
    KVR_CUDA_CHECK(cudaMalloc(&r->k, kv));
    KVR_CUDA_CHECK(cudaMalloc(&r->v, kv));
    for (int i = 0; i < (b->check ? N_SLOTS : 2); i++)
        KVR_CUDA_CHECK(cudaMalloc((void **)&r->o[i], o));
    for (int i = 0; i < (b->check ? 2 : 1); i++) KVR_CUDA_CHECK(cudaMalloc(&r->att[i], att));
    KVR_LAUNCH_CHECK(kvr_cu_fill_random(r->q, q / 2, 5, 1, 1.0f, 0.0f, NULL));
    KVR_LAUNCH_CHECK(kvr_cu_fill_random(r->k, kv / 2, 5, 2, 1.0f, 0.0f, NULL));
    KVR_LAUNCH_CHECK(kvr_cu_fill_random(r->v, kv / 2, 5, 3, 1.0f, 0.0f, NULL));
    KVR_CUDA_CHECK(cudaEventCreate(&r->e0));
    KVR_CUDA_CHECK(cudaEventCreate(&r->e1));
    return KVR_OK;
}

/* Rank i's step j (the keys of rank (i - j) mod p) into slot o, fast or plain. */
static int step(const struct kvr_ring_bench *b, const struct ring_bufs *r, int i, int j, float *o,
                bool fast)
{
    const void *q = (const char *)r->q + 2 * (uint64_t)r->first[i] * r->qs;
    struct kvr_cu_span ks = r->span[(i - j + b->p) % b->p];
    if (j < 0) ks = (struct kvr_cu_span){{0, 0}, {b->ctx, 0}}; /* all keys */
    return (fast ? kvr_cu_ring_attn_fast : kvr_cu_ring_attn)(q, r->qs, r->k, r->v, r->kvs, o, r->os,
                                                             r->span[i], ks, b->window, b->n_heads,
                                                             b->n_kv, b->head_dim, NULL);
}

/* What one timed operation is: a step, a merge or a finish of rank i. */
enum op_kind { OP_STEP, OP_MERGE, OP_FINISH };

static int op_run(const struct kvr_ring_bench *b, const struct ring_bufs *r, enum op_kind k, int i,
                  int j)
{
    uint32_t n = r->span[i].n[0] + r->span[i].n[1];
    if (k == OP_STEP) return step(b, r, i, j, r->o[F_STEP], true);
    if (k == OP_MERGE)
        return kvr_cu_ring_merge_fast(r->o[F_ACC], r->o[F_STEP], r->os, n, b->n_heads, b->head_dim,
                                      NULL);
    return kvr_cu_ring_finish_fast(r->att[0], r->o[F_ACC], r->os, n, b->n_heads, b->head_dim, NULL);
}

/* The median of reps timed runs after the warm-ups (CUDA events). */
static enum kvr_status op_time(const struct kvr_ring_bench *b, const struct ring_bufs *r,
                               enum op_kind k, int i, int j, double *median_s)
{
    double *t = malloc((size_t)b->reps * sizeof *t);
    if (!t) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    cudaError_t e = cudaSuccess;
    for (int it = 0; it < b->warmup + b->reps && !e; it++) {
        float ms = 0;
        e = cudaEventRecord(r->e0, NULL);
        if (!e) e = (cudaError_t)op_run(b, r, k, i, j);
        if (!e) e = cudaEventRecord(r->e1, NULL);
        if (!e) e = cudaEventSynchronize(r->e1);
        if (!e) e = cudaEventElapsedTime(&ms, r->e0, r->e1);
        if (it >= b->warmup) t[it - b->warmup] = 1e-3 * ms;
    }
    if (!e) *median_s = kvr_quantile(t, (size_t)b->reps, 0.5);
    free(t);
    KVR_CUDA_CHECK(e);
    return KVR_OK;
}

/* Unmasked pairs per head of the queries of span q against the keys of span k. */
static uint64_t span_pairs(struct kvr_cu_span q, struct kvr_cu_span k, uint32_t window)
{
    uint64_t n = 0;
    for (int a = 0; a < 2; a++)
        for (uint32_t x = q.pos[a]; x < q.pos[a] + q.n[a]; x++)
            for (int c = 0; c < 2; c++) {
                if (!k.n[c] || x < k.pos[c]) continue;
                uint64_t hi = x < k.pos[c] + k.n[c] - 1 ? x : k.pos[c] + k.n[c] - 1, lo = k.pos[c];
                if (window && x + 1 > window && x + 1 - window > lo) lo = x + 1 - window;
                n += hi >= lo ? hi - lo + 1 : 0;
            }
    return n;
}

/* Step kinds: 0 the diagonal (own keys), 1 keys of an earlier rank, 2 of a later one. */
static int step_kind(int i, int j, int p)
{
    int k = (i - j + p) % p;
    return k == i ? 0 : k < i ? 1 : 2;
}

static enum kvr_status ring_time(struct kvr_ring_bench *b, const struct ring_bufs *r)
{
    enum kvr_status st = KVR_OK;
    for (int i = 0; i < b->p && !st; i++) {
        /* the running output the merges take: the diagonal step's */
        if (step(b, r, i, 0, r->o[F_ACC], true))
            return kvr_error(KVR_ERR_RUNTIME, "ring step failed");
        for (int j = 0; j < b->p && !st; j++) {
            double s = 0, m = 0;
            int kind = step_kind(i, j, b->p);
            uint64_t f = 4ull * b->head_dim * b->n_heads *
                         span_pairs(r->span[i], r->span[(i - j + b->p) % b->p], b->window);
            st = op_time(b, r, OP_STEP, i, j, &s);
            if (!st && j) st = op_time(b, r, OP_MERGE, i, j, &m);
            b->kind_s[kind] += s, b->kind_flops[kind] += f, b->merge_s += m;
        }
        double fin = 0;
        if (!st) st = op_time(b, r, OP_FINISH, i, 0, &fin);
        b->finish_s += fin;
    }
    b->time_s = b->kind_s[0] + b->kind_s[1] + b->kind_s[2];
    b->flops = b->kind_flops[0] + b->kind_flops[1] + b->kind_flops[2];
    b->tflops = b->time_s > 0 ? (double)b->flops / b->time_s / 1e12 : 0;
    return st;
}

/* Largest differences of two slots' outputs and LSEs over rows [0, n) (both -inf: equal; NaN,
 * the poison, wins). */
static enum kvr_status slot_diff(const struct kvr_ring_bench *b, const struct ring_bufs *r,
                                 const float *x, const float *y, uint32_t n, double *d_out,
                                 double *d_lse)
{
    size_t each = (size_t)n * r->os;
    float *h = malloc(2 * each * sizeof *h);
    if (!h) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    cudaError_t e = cudaMemcpy(h, x, each * 4, cudaMemcpyDeviceToHost);
    if (!e) e = cudaMemcpy(h + each, y, each * 4, cudaMemcpyDeviceToHost);
    const size_t w = (size_t)b->n_heads * b->head_dim, wl = w + b->n_heads;
    for (size_t row = 0; row < n && !e; row++)
        for (size_t c = 0; c < wl; c++) {
            float u = h[row * r->os + c], v = h[each + row * r->os + c];
            double d = u == v ? 0 : fabs((double)u - v), *to = c < w ? d_out : d_lse;
            if (!(d <= *to)) *to = d;
        }
    free(h);
    KVR_CUDA_CHECK(e);
    return KVR_OK;
}

static enum kvr_status att_equal(const struct ring_bufs *r, uint32_t n, bool *eq)
{
    size_t bytes = (size_t)n * r->qs * 2;
    unsigned char *h = malloc(2 * bytes);
    if (!h) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    cudaError_t e = cudaMemcpy(h, r->att[0], bytes, cudaMemcpyDeviceToHost);
    if (!e) e = cudaMemcpy(h + bytes, r->att[1], bytes, cudaMemcpyDeviceToHost);
    *eq = *eq && !e && !memcmp(h, h + bytes, bytes);
    free(h);
    KVR_CUDA_CHECK(e);
    return KVR_OK;
}

/* Rank i: every step fast (poisoned slots) and plain against each other, the fast steps merged
 * against the plain kernel over all keys at once, the fast merge of the plain steps against the
 * plain merge, and the fast finish against the plain one. */
static enum kvr_status check_rank(struct kvr_ring_bench *b, const struct ring_bufs *r, int i)
{
    const uint32_t n = r->span[i].n[0] + r->span[i].n[1], h = b->n_heads, hd = b->head_dim;
    const size_t bytes = (size_t)r->rows * r->os * 4;
    float *const *o = r->o;
    for (int s = 0; s < N_SLOTS; s++) KVR_CUDA_CHECK(cudaMemset(o[s], 0xff, bytes));
    KVR_LAUNCH_CHECK(step(b, r, i, -1, o[ALL], false));
    enum kvr_status st = KVR_OK;
    for (int j = 0; j < b->p && !st; j++) {
        KVR_CUDA_CHECK(cudaMemset(o[F_STEP], 0xff, bytes));
        KVR_LAUNCH_CHECK(step(b, r, i, j, j ? o[F_STEP] : o[F_ACC], true));
        KVR_LAUNCH_CHECK(step(b, r, i, j, j ? o[P_STEP] : o[P_ACC], false));
        st = slot_diff(b, r, j ? o[F_STEP] : o[F_ACC], j ? o[P_STEP] : o[P_ACC], n, &b->step_err,
                       &b->step_lse_err);
        if (!j) KVR_CUDA_CHECK(cudaMemcpy(o[X_ACC], o[P_ACC], bytes, cudaMemcpyDeviceToDevice));
        if (!j) continue;
        KVR_LAUNCH_CHECK(kvr_cu_ring_merge_fast(o[F_ACC], o[F_STEP], r->os, n, h, hd, NULL));
        KVR_LAUNCH_CHECK(kvr_cu_ring_merge_fast(o[X_ACC], o[P_STEP], r->os, n, h, hd, NULL));
        KVR_LAUNCH_CHECK(kvr_cu_ring_merge(o[P_ACC], o[P_STEP], r->os, n, h, hd, NULL));
    }
    if (!st) st = slot_diff(b, r, o[F_ACC], o[ALL], n, &b->merged_err, &b->merged_lse_err);
    if (!st) st = slot_diff(b, r, o[X_ACC], o[P_ACC], n, &b->merge_err, &b->merge_lse_err);
    KVR_CUDA_CHECK(cudaMemset(r->att[0], 0xff, (size_t)n * r->qs * 2));
    KVR_LAUNCH_CHECK(kvr_cu_ring_finish_fast(r->att[0], o[F_ACC], r->os, n, h, hd, NULL));
    KVR_LAUNCH_CHECK(kvr_cu_ring_finish(r->att[1], o[F_ACC], r->os, n, h, hd, NULL));
    return st ? st : att_equal(r, n, &b->finish_equal);
}

enum kvr_status kvr_exec_bench_ring(struct kvr_ring_bench *b)
{
    enum kvr_status pst = kvr_cuda_attn_env_check();
    if (pst) return pst;
    if (kvr_exec_cuda_devices() == 0)
        return kvr_error(KVR_ERR_INPUT, "kvr bench attention --ring: no CUDA device");
    if ((b->head_dim != 64 && b->head_dim != 128) || !b->n_kv || b->n_heads % b->n_kv || b->p < 1 ||
        b->p > KVR_MAX_GPUS || b->ctx < 2 * (uint32_t)b->p || b->reps < 1)
        return kvr_error(KVR_ERR_INPUT,
                         "ring attention: head_dim %u (64 or 128), %u heads over %u KV heads, "
                         "%d ranks (1..%d) of a context of %u (at least 2 per rank), %d reps",
                         b->head_dim, b->n_heads, b->n_kv, b->p, KVR_MAX_GPUS, b->ctx, b->reps);
    struct ring_bufs r = {0};
    enum kvr_status st = bufs_alloc(b, &r);
    b->step_err = b->step_lse_err = b->merged_err = b->merged_lse_err = 0;
    b->merge_err = b->merge_lse_err = 0, b->finish_equal = true;
    memset(b->kind_s, 0, sizeof b->kind_s), memset(b->kind_flops, 0, sizeof b->kind_flops);
    b->merge_s = b->finish_s = 0;
    for (int i = 0; i < b->p && b->check && !st; i++) st = check_rank(b, &r, i);
    if (!st) st = ring_time(b, &r);
    if (!st) KVR_CUDA_CHECK(cudaDeviceSynchronize());
    bufs_free(&r);
    return st;
}
