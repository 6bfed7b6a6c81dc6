/* measurement.last_layer (store schema 9): how the executor ran its last layer, a recorded fact
 * instead of a guess from the run's start time.
 * - The migration 8 -> 9 fills a schema-8 store's rows once by the rule kvr validate used up to
 *   schema 8 (written out here as the oracle): a one-rank chain (p / tp = 1) whose run started
 *   before b4e1d92's commit time ran 'full', from then on 'pruned'; a chain of several ranks
 *   'full'; a one-rank row without its run's time fails the migration. Reading migrates a copy
 *   (the file stays at 8), writing migrates the file.
 * - The column's CHECK refuses anything but 'pruned' and 'full' (NULL and an omitted value too:
 *   there is no default), through SQL and through kvr_store_put_measurement.
 * - kvr validate predicts each one-rank row as its column says, not as its run's time would:
 *   rows of one run after the commit, marked 'full' and 'pruned', against kvr_sim of the plan
 *   with and without full_last_layer (the two differ).
 * - The executor says what it did: kvr_exec_run_single (kvr_exec_chunk) prunes, a chain rank's
 *   layer by layer prefill does not; kvr_measure_single records it. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec_models.h"
#include "kvr_measure.h"
#include "kvr_sim.h"
#include "kvr_store.h"
#include "kvr_validate.h"
#include "tap.h"

static char dir[] = "/tmp/kvr-test-last-layer-XXXXXX";

#define COMMIT_UNIX_S 1796122969.0 /* b4e1d92: 2026-12-01 11:02:49 UTC */

static int sql(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) sqlite3_extended_result_codes(db, 1), rc = sqlite3_exec(db, text, 0, 0, 0);
    sqlite3_close(db);
    return rc;
}

/* The first value of a one-row query as text ("" when none). */
static void sql_text(const char *path, const char *text, char *out, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    out[0] = 0;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, text, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        snprintf(out, cap, "%s",
                 sqlite3_column_text(q, 0) ? (const char *)sqlite3_column_text(q, 0) : "");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* A store at schema 8: today's created, its last_layer dropped (schema 8's measurement table
 * has the same columns in the same order without it). */
static int make_v8(const char *path)
{
    struct kvr_store *s = NULL;
    unlink(path);
    if (kvr_store_open(path, KVR_STORE_WRITE, &s)) return -1;
    kvr_store_close(s);
    return sql(path, "ALTER TABLE measurement DROP COLUMN last_layer; PRAGMA user_version = 8;");
}

/* One schema-8 measurement row (p, tp) of run `run`. */
static int add_v8_row(const char *path, int run, int p, int tp, const char *scheme)
{
    char text[1024];
    snprintf(text, sizeof text,
             "INSERT INTO measurement (run_id, model, machine, p, ctx_tokens, scheme, method,"
             " partition_tokens, backend, comm, link_settings, warmup, reps, ttft_median_s,"
             " ttft_min_s, ttft_max_s, tp) VALUES (%d, 'llama-7b', 'local', %d, 4096, '%s',"
             " 'even', '4096', 'cuda', 'nccl', 'none', 1, 3, 0.1, 0.1, 0.1, %d)",
             run, p, scheme, tp);
    return sql(path, text);
}

struct case_row {
    int run, p, tp;
    const char *scheme;
};
/* runs 1..3: before, exactly at, after the commit time */
static const double run_start_s[] = {0, COMMIT_UNIX_S - 0.5, COMMIT_UNIX_S, COMMIT_UNIX_S + 7200};
static const struct case_row cases[] = {
    {1, 1, 1, "single"}, {2, 1, 1, "single"}, {3, 1, 1, "single"}, {3, 1, 1, "kvr"},
    {1, 4, 1, "kvr"},    {3, 4, 1, "kvr"},    {3, 2, 1, "tsp"},    {1, 2, 2, "tp"},
    {3, 2, 2, "tp"},     {3, 4, 2, "kvr"},    {3, 4, 4, "tp"},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* The oracle: kvr validate's rule up to schema 8 (t0 < the commit time: full) for a one-rank
 * chain; every layer on every row for a chain of ranks. */
static const char *old_rule(const struct case_row *c)
{
    if (c->p / c->tp > 1) return "full";
    return run_start_s[c->run] < COMMIT_UNIX_S ? "full" : "pruned";
}

static int fill_v8(const char *path)
{
    int rc = make_v8(path);
    char text[256];
    for (int r = 1; r <= 3 && !rc; r++) {
        snprintf(text, sizeof text,
                 "INSERT INTO run (id, version, host, device, argv, started_unix_s) VALUES"
                 " (%d, 'v', 'h', 'd', 'a', %.17g)",
                 r + 100, run_start_s[r]);
        rc = sql(path, text);
    }
    for (int i = 0; i < N_CASES && !rc; i++)
        rc = add_v8_row(path, cases[i].run + 100, cases[i].p, cases[i].tp, cases[i].scheme);
    return rc;
}

/* rows come back ordered by model, p, scheme, method, ctx, id: match them by id order instead */
static void check_rows(const char *path, const char *what)
{
    char text[160], got[16];
    for (int i = 0; i < N_CASES; i++) {
        snprintf(text, sizeof text,
                 "SELECT last_layer FROM measurement ORDER BY id LIMIT 1 OFFSET %d", i);
        sql_text(path, text, got, sizeof got);
        ok(!strcmp(got, old_rule(&cases[i])),
           "%s: p %d tp %d %s, run at %+.1f s from the commit: '%s' (the old rule: '%s')", what,
           cases[i].p, cases[i].tp, cases[i].scheme, run_start_s[cases[i].run] - COMMIT_UNIX_S, got,
           old_rule(&cases[i]));
    }
}

static void test_migration(void)
{
    char path[128], copy[160], got[64];
    snprintf(path, sizeof path, "%s/v8.db", dir);
    ok(fill_v8(path) == SQLITE_OK, "a schema-8 store with %d rows of 3 runs", N_CASES);
    /* reading: a migrated copy in memory, the file untouched */
    struct kvr_store *s = NULL;
    struct kvr_measurement_row *rows = NULL;
    size_t n = 0;
    enum kvr_status st = kvr_store_open(path, KVR_STORE_READ, &s);
    if (!st) st = kvr_store_list_measurements(s, &rows, &n);
    kvr_store_close(s);
    int n_pruned = 0, want_pruned = 0;
    for (size_t i = 0; i < n; i++) n_pruned += !strcmp(rows[i].last_layer, "pruned");
    for (int i = 0; i < N_CASES; i++) want_pruned += !strcmp(old_rule(&cases[i]), "pruned");
    ok(!st && n == N_CASES && n_pruned == want_pruned && want_pruned == 5,
       "read: %zu rows, %d 'pruned' (want %d of %d: p = 1 at and after the commit, one TP "
       "stage after it)",
       n, n_pruned, want_pruned, N_CASES);
    free(rows);
    sql_text(path, "PRAGMA user_version", got, sizeof got);
    ok(!strcmp(got, "8"), "read: the file stays at schema 8 (%s)", got);
    /* writing: the file migrated, row by row as the old rule says */
    ok(!kvr_store_open(path, KVR_STORE_WRITE, &s), "a writing open migrates it");
    kvr_store_close(s);
    sql_text(path, "PRAGMA user_version", got, sizeof got);
    ok(!strcmp(got, "9"), "  to schema 9 (%s)", got);
    check_rows(path, "migrated");
    sql_text(path,
             "SELECT \"notnull\" || ',' || ifnull(dflt_value, 'no default') FROM "
             "pragma_table_info('measurement') WHERE name = 'last_layer'",
             got, sizeof got);
    ok(!strcmp(got, "1,no default"), "last_layer is NOT NULL without a default (%s)", got);
    /* a one-rank row whose run has no time: nothing tells, the migration fails; a chain's
     * row needs none */
    snprintf(copy, sizeof copy, "%s/v8-norun.db", dir);
    ok(!make_v8(copy) && !sql(copy, "INSERT INTO run VALUES (7, 'v', 'h', 'd', 'a', 0)") &&
           !add_v8_row(copy, 7, 4, 1, "kvr"),
       "a schema-8 store with a chain's row of a run without time");
    ok(!kvr_store_open(copy, KVR_STORE_WRITE, &s), "  migrates ('full')");
    kvr_store_close(s);
    ok(!make_v8(copy) && !sql(copy, "INSERT INTO run VALUES (7, 'v', 'h', 'd', 'a', 0)") &&
           !add_v8_row(copy, 7, 1, 1, "single") && !add_v8_row(copy, 99, 1, 1, "single"),
       "a schema-8 store with one-rank rows of a run without time and of a missing run");
    st = kvr_store_open(copy, KVR_STORE_READ, &s);
    ok(st == KVR_ERR_INPUT && strstr(kvr_error_message(), "migrating schema 8 to 9") &&
           strstr(kvr_error_message(), "nothing tells whether the executor pruned"),
       "  its migration is refused (input error), naming the step and the row: %s",
       kvr_error_message());
    if (!st) kvr_store_close(s);
    sql_text(copy, "PRAGMA user_version", got, sizeof got);
    ok(!strcmp(got, "8"), "  and leaves the file at schema 8 (%s)", got);
}

static struct kvr_measurement_row row_of(const char *last_layer, uint64_t ctx)
{
    struct kvr_measurement_row x;
    memset(&x, 0, sizeof x);
    snprintf(x.model, sizeof x.model, "llama-7b");
    snprintf(x.machine, sizeof x.machine, "local");
    snprintf(x.scheme, sizeof x.scheme, "single");
    snprintf(x.method, sizeof x.method, "single");
    snprintf(x.backend, sizeof x.backend, "cuda");
    snprintf(x.comm, sizeof x.comm, "none");
    snprintf(x.link_settings, sizeof x.link_settings, "none");
    snprintf(x.last_layer, sizeof x.last_layer, "%s", last_layer);
    x.p = 1, x.tp = 1, x.ctx_tokens = ctx, x.tokens[0] = ctx, x.warmup = 1, x.reps = 3;
    x.ttft_median_s = x.ttft_min_s = x.ttft_max_s = 0.25;
    return x;
}

/* A store with one run started at t0 and the rows given. */
static enum kvr_status store_rows(const char *path, double t0, const struct kvr_measurement_row *x,
                                  int n)
{
    struct kvr_store *s = NULL;
    struct kvr_provenance prov = {"v", "h", "d", "test_last_layer", t0};
    int64_t run = 0;
    unlink(path);
    enum kvr_status st = kvr_store_open(path, KVR_STORE_WRITE, &s);
    if (!st) st = kvr_store_add_run(s, &prov, &run);
    for (int i = 0; i < n && !st; i++) {
        struct kvr_measurement_row r = x[i];
        r.run_id = run;
        st = kvr_store_put_measurement(s, &r);
    }
    kvr_store_close(s);
    return st;
}

static void test_check(void)
{
    char path[128], got[32];
    snprintf(path, sizeof path, "%s/v9.db", dir);
    struct kvr_measurement_row x = row_of("full", 1024);
    ok(!store_rows(path, COMMIT_UNIX_S + 1, &x, 1), "a row marked 'full' is stored");
    sql_text(path, "SELECT last_layer FROM measurement", got, sizeof got);
    ok(!strcmp(got, "full"), "  and reads back 'full' (%s)", got);
    static const char *const bad[] = {"'partial'", "'Pruned'", "''", "NULL"};
    for (int i = 0; i < 4; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "INSERT INTO measurement (run_id, model, machine, p, ctx_tokens, scheme, method,"
                 " partition_tokens, backend, comm, link_settings, warmup, reps, ttft_median_s,"
                 " ttft_min_s, ttft_max_s, last_layer) SELECT run_id, model, machine, p,"
                 " ctx_tokens, scheme, method, partition_tokens, backend, comm, link_settings,"
                 " warmup, reps, ttft_median_s, ttft_min_s, ttft_max_s, %s FROM measurement",
                 bad[i]);
        int rc = sql(path, text);
        int want = i < 3 ? SQLITE_CONSTRAINT_CHECK : SQLITE_CONSTRAINT_NOTNULL;
        ok(rc == want, "INSERT with last_layer %s is refused by the column's %s (rc %d)", bad[i],
           i < 3 ? "CHECK" : "NOT NULL", rc);
    }
    int rc = sql(path, "INSERT INTO measurement (run_id, model, machine, p, ctx_tokens, scheme,"
                       " method, partition_tokens, backend, comm, link_settings, warmup, reps,"
                       " ttft_median_s, ttft_min_s, ttft_max_s) SELECT run_id, model, machine,"
                       " p, ctx_tokens, scheme, method, partition_tokens, backend, comm,"
                       " link_settings, warmup, reps, ttft_median_s, ttft_min_s, ttft_max_s"
                       " FROM measurement");
    ok(rc == SQLITE_CONSTRAINT_NOTNULL,
       "an INSERT without last_layer is refused: no default (rc %d)", rc);
    struct kvr_measurement_row none[2] = {row_of("", 2048), row_of("half", 2048)};
    for (int i = 0; i < 2; i++)
        ok(store_rows(path, COMMIT_UNIX_S + 1, &none[i], 1) != KVR_OK &&
               strstr(kvr_error_message(), "CHECK constraint failed"),
           "kvr_store_put_measurement refuses last_layer '%s': %s", none[i].last_layer,
           kvr_error_message());
}

/* kvr sim's TTFT of single on one GPU at ctx, the last layer on every row or pruned. */
static double sim_single(const struct kvr_machine *h, uint64_t ctx, bool full)
{
    struct kvr_model m;
    struct kvr_sim *sim = NULL;
    struct kvr_sim_result *r = calloc(1, sizeof *r);
    struct kvr_plan plan = {
        .scheme = KVR_SCHEME_SINGLE, .p = 1, .ctx = ctx, .full_last_layer = full};
    plan.tokens[0] = ctx;
    double ttft = NAN;
    if (r && !kvr_model_resolve("llama-7b", &m) && !kvr_sim_open(&m, h, &sim) &&
        !kvr_sim_draw_noise(sim, 0) && !kvr_sim_run(sim, &plan, r, NULL))
        ttft = r->ttft_s;
    kvr_sim_free(sim);
    free(r);
    return ttft;
}

static void test_validate(void)
{
    char path[128];
    static struct kvr_machine h;
    const char *machine = KVR_SOURCE_DATADIR "/machines/h200-calibrated.ini";
    snprintf(path, sizeof path, "%s/val.db", dir);
    /* one run after the commit (its time says 'pruned' for all), two contexts, each marked
     * both ways; a run before the commit marked 'pruned' (its time says 'full') */
    struct kvr_measurement_row x[] = {row_of("full", 1024), row_of("pruned", 1024),
                                      row_of("full", 4096), row_of("pruned", 4096)};
    char old_path[160];
    snprintf(old_path, sizeof old_path, "%s/val-old.db", dir);
    struct kvr_measurement_row y = row_of("pruned", 2048);
    ok(!store_rows(path, COMMIT_UNIX_S + 3600, x, 4) &&
           !store_rows(old_path, COMMIT_UNIX_S - 3600, &y, 1) && !kvr_machine_resolve(machine, &h),
       "stores: 4 rows of a run after the commit, 1 of a run before it");
    struct kvr_validate_set v;
    enum kvr_status st = kvr_validate_load(path, machine, false, &v);
    ok(!st && v.n == 4, "kvr validate reads the 4 rows (%s)", st ? kvr_error_message() : "");
    for (size_t i = 0; !st && i < v.n; i++) {
        const struct kvr_measurement_row *m = v.pts[i].m;
        bool full = !strcmp(m->last_layer, "full");
        double want = sim_single(&h, m->ctx_tokens, full);
        double other = sim_single(&h, m->ctx_tokens, !full);
        ok(fabs(v.pts[i].predicted_s / want - 1) < 1e-12 && fabs(other / want - 1) > 1e-4,
           "%llu tokens, '%s': predicted %.9g s = kvr sim with the last layer %s (%.9g s; the "
           "other way %.9g s)",
           (unsigned long long)m->ctx_tokens, m->last_layer, v.pts[i].predicted_s,
           full ? "on every row" : "pruned", want, other);
    }
    if (!st) kvr_validate_free(&v);
    st = kvr_validate_load(old_path, machine, false, &v);
    double want = sim_single(&h, 2048, false);
    ok(!st && v.n == 1 && fabs(v.pts[0].predicted_s / want - 1) < 1e-12,
       "a run before the commit marked 'pruned' is predicted pruned (%.9g s = %.9g s), not by "
       "its time",
       st ? NAN : v.pts[0].predicted_s, want);
    if (!st) kvr_validate_free(&v);
}

static void test_executor(void)
{
    const struct kvr_model *m = &exec_models[0];
    struct kvr_exec *ex = exec_open(m, KVR_BACKEND_REF, 24, NULL);
    struct kvr_exec_result r;
    ok(ex && !kvr_exec_run_single(ex, 24, 3, 0, 1, &r), "ref: a single prefill of 24 tokens");
    ok(ex && r.last_layer_pruned && kvr_exec_last_layer_pruned(ex),
       "  kvr_exec_chunk ran the last layer on the last row: pruned");
    struct kvr_measurement_row x;
    if (ex) kvr_measure_single(&x, m, &r, "ref", 0, 1);
    ok(ex && !strcmp(x.last_layer, "pruned"), "  kvr_measure_single records 'pruned' (%s)",
       ex ? x.last_layer : "");
    /* a chain rank's prefill: every layer's rest on every row of its chunk */
    int32_t tokens[24];
    for (int i = 0; i < 24; i++) tokens[i] = i % (int)m->vocab;
    enum kvr_status st = ex ? kvr_exec_embed(ex, tokens, 24) : KVR_ERR_RUNTIME;
    for (uint32_t l = 0; l < m->n_layers && !st; l++)
        if (!(st = kvr_exec_layer_qkv(ex, l, 0, 24)))
            st = kvr_exec_layer_rest(ex, l, 0, 24, KVR_MASK_CAUSAL);
    ok(!st && !kvr_exec_last_layer_pruned(ex),
       "  layer by layer on every row (a chain's rank): full");
    /* and again in two chunks with the logits of the last (kvr exec --chunk): pruned again */
    const uint32_t sizes[] = {16, 8};
    float *logits = calloc(m->vocab, sizeof *logits);
    st = ex && logits ? exec_chunks(ex, tokens, sizes, 2, logits) : KVR_ERR_NOMEM;
    ok(!st && kvr_exec_last_layer_pruned(ex), "  then two chunks, logits of the last: pruned");
    free(logits);
    r.last_layer_pruned = false;
    if (ex) kvr_measure_single(&x, m, &r, "ref", 0, 1);
    ok(ex && !strcmp(x.last_layer, "full"), "  and a result not pruned is recorded 'full' (%s)",
       ex ? x.last_layer : "");
    kvr_exec_close(ex);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    test_migration();
    test_check();
    test_validate();
    test_executor();
    tap_rmdir(dir);
    return tap_done();
}
