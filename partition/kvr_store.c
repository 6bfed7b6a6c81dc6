/* The store's schema, its forward migrations, opening with every check, and provenance.
 * This file is the only place that creates or alters tables. */
#include "kvr_store_int.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct kvr_store {
    sqlite3 *db;
    char path[1024];
    int version;
};

/* migrations[i] takes a database from user_version i to i + 1. Never edit a released one:
 * add the next. Column names carry SI units. The views of 1 -> 2 that name series were
 * dropped by 2 -> 3: a figure's query lives with the figure. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE run ("
    "  id INTEGER PRIMARY KEY, version TEXT NOT NULL, host TEXT NOT NULL,"
    "  device TEXT NOT NULL, argv TEXT NOT NULL, started_unix_s REAL NOT NULL);"
    "CREATE TABLE plan ("
    "  id INTEGER PRIMARY KEY, model TEXT NOT NULL, machine TEXT NOT NULL,"
    "  p INTEGER NOT NULL CHECK (p >= 1), ctx_tokens INTEGER NOT NULL CHECK (ctx_tokens >= p),"
    "  scheme TEXT NOT NULL, method TEXT NOT NULL, partition_tokens TEXT NOT NULL,"
    "  granularity_tokens INTEGER NOT NULL, predicted_ttft_s REAL NOT NULL,"
    "  evaluations INTEGER NOT NULL, search_wall_s REAL NOT NULL,"
    "  run_id INTEGER NOT NULL REFERENCES run(id),"
    "  UNIQUE (model, machine, p, ctx_tokens, scheme, method));"
    "CREATE TABLE measurement ("
    "  id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES run(id),"
    "  model TEXT NOT NULL, machine TEXT NOT NULL, p INTEGER NOT NULL,"
    "  ctx_tokens INTEGER NOT NULL, scheme TEXT NOT NULL, method TEXT NOT NULL,"
    "  partition_tokens TEXT NOT NULL, backend TEXT NOT NULL, comm TEXT NOT NULL,"
    "  link_settings TEXT NOT NULL, warmup INTEGER NOT NULL, reps INTEGER NOT NULL,"
    "  ttft_median_s REAL NOT NULL, ttft_min_s REAL NOT NULL, ttft_max_s REAL NOT NULL,"
    "  peak_mem_bytes REAL, first_token INTEGER, logits_checksum REAL,"
    "  gpu TEXT, driver TEXT, nccl_version TEXT, mpi_version TEXT);"
    "CREATE TABLE sweep_point ("
    "  id INTEGER PRIMARY KEY, sweep TEXT NOT NULL, point_key TEXT NOT NULL,"
    "  figure TEXT NOT NULL, series TEXT NOT NULL, model TEXT NOT NULL, machine TEXT NOT NULL,"
    "  p INTEGER NOT NULL, ctx_tokens INTEGER NOT NULL, scheme TEXT NOT NULL,"
    "  method TEXT NOT NULL, link_Bps REAL, link_spec TEXT, noise_spec TEXT, seed INTEGER,"
    "  objective TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),"
    "  partition_tokens TEXT, ttft_s REAL, ttft_p50_s REAL, ttft_p95_s REAL,"
    "  compute_s REAL, comm_s REAL, wait_s REAL, lower_bound_s REAL, error TEXT,"
    "  run_id INTEGER REFERENCES run(id), UNIQUE (sweep, point_key));"
    "CREATE VIEW plan_table AS"
    "  SELECT plan.model, plan.machine, plan.p, plan.ctx_tokens, plan.scheme, plan.method,"
    "         plan.partition_tokens, plan.predicted_ttft_s, plan.evaluations,"
    "         plan.search_wall_s, run.version, run.host, run.started_unix_s"
    "  FROM plan JOIN run ON run.id = plan.run_id;",
    /* 1 -> 2: what the figures plot against, and the views they read */
    "ALTER TABLE sweep_point ADD COLUMN noise_share REAL NOT NULL DEFAULT 0;"
    "ALTER TABLE sweep_point ADD COLUMN link_from INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE sweep_point ADD COLUMN series_rank INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX sweep_point_state ON sweep_point (sweep, state);"
    "CREATE VIEW sweep_done AS SELECT * FROM sweep_point WHERE state = 'done';"
    "CREATE VIEW sweep_progress AS"
    "  SELECT sweep, state, count(*) AS points FROM sweep_point GROUP BY sweep, state;"
    "CREATE VIEW plot_ttft_ctx AS"
    "  SELECT figure, model, machine, link_Bps, p, series, series_rank, ctx_tokens, ttft_s,"
    "         lower_bound_s FROM sweep_done;"
    "CREATE VIEW plot_scaling AS"
    "  SELECT figure, model, machine, link_Bps, series, series_rank, p, ttft_s, lower_bound_s"
    "  FROM sweep_done;"
    "CREATE VIEW plot_breakdown AS"
    "  SELECT figure, model, machine, link_Bps, p, ctx_tokens, series, series_rank, compute_s,"
    "         comm_s, wait_s, ttft_s FROM sweep_done;"
    "CREATE VIEW plot_kvrp_gap AS"
    "  SELECT s.figure, s.model, s.machine, s.link_Bps, s.p, s.ctx_tokens,"
    "         100.0 * (pr.ttft_s - s.ttft_s) / s.ttft_s AS gap_pct, s.ttft_s AS kvrs_ttft_s,"
    "         pr.ttft_s AS kvrp_ttft_s"
    "  FROM sweep_done s JOIN sweep_done pr ON pr.sweep = s.sweep AND pr.model = s.model"
    "   AND pr.machine = s.machine AND pr.link_Bps IS s.link_Bps AND pr.p = s.p"
    "   AND pr.ctx_tokens = s.ctx_tokens AND pr.link_spec IS s.link_spec"
    "   AND pr.noise_spec IS s.noise_spec AND pr.seed IS s.seed"
    "  WHERE s.series = 'KVR-S' AND pr.series = 'KVR-P';"
    "CREATE VIEW plot_noise AS"
    "  SELECT figure, model, machine, p, ctx_tokens, series, series_rank, noise_share,"
    "         avg(ttft_s) AS ttft_mean_s, min(ttft_s) AS ttft_min_s, max(ttft_s) AS ttft_max_s,"
    "         avg(ttft_p95_s) AS ttft_p95_mean_s, count(*) AS seeds"
    "  FROM sweep_done GROUP BY figure, model, machine, p, ctx_tokens, series, noise_share;"
    "CREATE VIEW plot_slow_link AS"
    "  SELECT figure, model, machine, p, ctx_tokens, series, series_rank, link_from, ttft_s"
    "  FROM sweep_done;"
    "CREATE VIEW plot_speedup AS"
    "  SELECT k.figure, k.model, k.machine, k.link_Bps, k.p, k.ctx_tokens,"
    "         t.ttft_s / k.ttft_s AS speedup"
    "  FROM sweep_done k JOIN sweep_done t ON t.sweep = k.sweep AND t.model = k.model"
    "   AND t.machine = k.machine AND t.link_Bps IS k.link_Bps AND t.p = k.p"
    "   AND t.ctx_tokens = k.ctx_tokens AND t.link_spec IS k.link_spec"
    "   AND t.noise_spec IS k.noise_spec AND t.seed IS k.seed"
    "  WHERE k.series = 'KVR-S' AND t.series = 'TSP';",
    /* 2 -> 3: the store keeps no figure labels: the figures' views go (kvr plot queries the
     * tables itself, experiments/kvr_plot.c); sweep_done and sweep_progress stay */
    "DROP VIEW IF EXISTS plot_ttft_ctx; DROP VIEW IF EXISTS plot_scaling;"
    "DROP VIEW IF EXISTS plot_breakdown; DROP VIEW IF EXISTS plot_kvrp_gap;"
    "DROP VIEW IF EXISTS plot_noise; DROP VIEW IF EXISTS plot_slow_link;"
    "DROP VIEW IF EXISTS plot_speedup;",
    /* 3 -> 4: content-addressed plans. Each model and machine definition once (canonical
     * text and hash); a plan's key holds both hashes beside the names. Rows from before keep
     * their names with empty hashes until a search matches them to a definition (same TTFT
     * on the current one) or marks them stale; neither kind is ever served unmatched. */
    "CREATE TABLE definition ("
    "  kind TEXT NOT NULL CHECK (kind IN ('model', 'machine')), hash TEXT NOT NULL,"
    "  name TEXT NOT NULL, canonical_text TEXT NOT NULL, provenance TEXT NOT NULL,"
    "  run_id INTEGER REFERENCES run(id), PRIMARY KEY (kind, hash));"
    "CREATE TABLE plan_v4 ("
    "  id INTEGER PRIMARY KEY, model TEXT NOT NULL, machine TEXT NOT NULL,"
    "  model_hash TEXT NOT NULL DEFAULT '', machine_hash TEXT NOT NULL DEFAULT '',"
    "  stale INTEGER NOT NULL DEFAULT 0 CHECK (stale IN (0, 1)),"
    "  p INTEGER NOT NULL CHECK (p >= 1), ctx_tokens INTEGER NOT NULL CHECK (ctx_tokens >= p),"
    "  scheme TEXT NOT NULL, method TEXT NOT NULL, partition_tokens TEXT NOT NULL,"
    "  granularity_tokens INTEGER NOT NULL, predicted_ttft_s REAL NOT NULL,"
    "  evaluations INTEGER NOT NULL, search_wall_s REAL NOT NULL,"
    "  run_id INTEGER NOT NULL REFERENCES run(id),"
    "  UNIQUE (model, machine, model_hash, machine_hash, p, ctx_tokens, scheme, method));"
    "INSERT INTO plan_v4 (id, model, machine, p, ctx_tokens, scheme, method, partition_tokens,"
    "  granularity_tokens, predicted_ttft_s, evaluations, search_wall_s, run_id)"
    "  SELECT id, model, machine, p, ctx_tokens, scheme, method, partition_tokens,"
    "  granularity_tokens, predicted_ttft_s, evaluations, search_wall_s, run_id FROM plan;"
    "DROP VIEW plan_table;"
    "DROP TABLE plan;"
    "ALTER TABLE plan_v4 RENAME TO plan;"
    "CREATE INDEX plan_names ON plan (model, machine, p, scheme, method);"
    "CREATE VIEW plan_table AS"
    "  SELECT plan.model, plan.machine, plan.model_hash, plan.machine_hash, plan.stale, plan.p,"
    "         plan.ctx_tokens, plan.scheme, plan.method, plan.partition_tokens,"
    "         plan.predicted_ttft_s, plan.evaluations, plan.search_wall_s, run.version,"
    "         run.host, run.started_unix_s"
    "  FROM plan JOIN run ON run.id = plan.run_id;",
    /* 4 -> 5: plans record their chain mapping and the plan on fewer GPUs that is as fast;
     * sweep points that do not fit are 'infeasible', with the bytes (sweep_point is rebuilt for
     * its CHECK, so its two views go and come back) */
    "ALTER TABLE plan ADD COLUMN mapping TEXT;"
    "ALTER TABLE plan ADD COLUMN fewer_p INTEGER;"
    "ALTER TABLE plan ADD COLUMN fewer_partition_tokens TEXT;"
    "ALTER TABLE plan ADD COLUMN fewer_mapping TEXT;"
    "ALTER TABLE plan ADD COLUMN fewer_predicted_ttft_s REAL;"
    "DROP VIEW sweep_done; DROP VIEW sweep_progress;"
    "CREATE TABLE sweep_point_v5 ("
    "  id INTEGER PRIMARY KEY, sweep TEXT NOT NULL, point_key TEXT NOT NULL,"
    "  figure TEXT NOT NULL, series TEXT NOT NULL, model TEXT NOT NULL, machine TEXT NOT NULL,"
    "  p INTEGER NOT NULL, ctx_tokens INTEGER NOT NULL, scheme TEXT NOT NULL,"
    "  method TEXT NOT NULL, link_Bps REAL, link_spec TEXT, noise_spec TEXT, seed INTEGER,"
    "  objective TEXT NOT NULL,"
    "  state TEXT NOT NULL"
    "    CHECK (state IN ('pending', 'running', 'done', 'failed', 'infeasible')),"
    "  partition_tokens TEXT, ttft_s REAL, ttft_p50_s REAL, ttft_p95_s REAL,"
    "  compute_s REAL, comm_s REAL, wait_s REAL, lower_bound_s REAL, error TEXT,"
    "  run_id INTEGER REFERENCES run(id), noise_share REAL NOT NULL DEFAULT 0,"
    "  link_from INTEGER NOT NULL DEFAULT -1, series_rank INTEGER NOT NULL DEFAULT 0,"
    "  mem_needed_bytes REAL, mem_available_bytes REAL, UNIQUE (sweep, point_key));"
    "INSERT INTO sweep_point_v5 (id, sweep, point_key, figure, series, model, machine, p,"
    "  ctx_tokens, scheme, method, link_Bps, link_spec, noise_spec, seed, objective, state,"
    "  partition_tokens, ttft_s, ttft_p50_s, ttft_p95_s, compute_s, comm_s, wait_s,"
    "  lower_bound_s, error, run_id, noise_share, link_from, series_rank)"
    "  SELECT id, sweep, point_key, figure, series, model, machine, p, ctx_tokens, scheme,"
    "  method, link_Bps, link_spec, noise_spec, seed, objective, state, partition_tokens, ttft_s,"
    "  ttft_p50_s, ttft_p95_s, compute_s, comm_s, wait_s, lower_bound_s, error, run_id,"
    "  noise_share, link_from, series_rank FROM sweep_point;"
    "DROP TABLE sweep_point;"
    "ALTER TABLE sweep_point_v5 RENAME TO sweep_point;"
    "CREATE INDEX sweep_point_state ON sweep_point (sweep, state);"
    "CREATE VIEW sweep_done AS SELECT * FROM sweep_point WHERE state = 'done';"
    "CREATE VIEW sweep_progress AS"
    "  SELECT sweep, state, count(*) AS points FROM sweep_point GROUP BY sweep, state;",
    /* 5 -> 6: the KV chain's hand-off mode (whole, streamed, direct) of a plan, a measurement
     * and a sweep point; 'whole' is what every earlier row ran */
    "ALTER TABLE plan ADD COLUMN kv_forward TEXT NOT NULL DEFAULT 'whole';"
    "ALTER TABLE measurement ADD COLUMN kv_forward TEXT NOT NULL DEFAULT 'whole';"
    "ALTER TABLE sweep_point ADD COLUMN kv_forward TEXT NOT NULL DEFAULT 'whole';",
    /* 6 -> 7: hybrid layouts (#21). A plan's TP degree t joins its key (a row per t; the table
     * is rebuilt, SQLite cannot alter a UNIQUE constraint); its partition has p / t chunks and
     * its mapping gives the GPU of each rank stage * t + shard. Every earlier row is t = 1.
     * Sweep points record t (0: the plain scheme). */
    "CREATE TABLE plan_v7 ("
    "  id INTEGER PRIMARY KEY, model TEXT NOT NULL, machine TEXT NOT NULL,"
    "  model_hash TEXT NOT NULL DEFAULT '', machine_hash TEXT NOT NULL DEFAULT '',"
    "  stale INTEGER NOT NULL DEFAULT 0 CHECK (stale IN (0, 1)),"
    "  p INTEGER NOT NULL CHECK (p >= 1), ctx_tokens INTEGER NOT NULL CHECK (ctx_tokens >= p),"
    "  scheme TEXT NOT NULL, method TEXT NOT NULL, partition_tokens TEXT NOT NULL,"
    "  granularity_tokens INTEGER NOT NULL, predicted_ttft_s REAL NOT NULL,"
    "  evaluations INTEGER NOT NULL, search_wall_s REAL NOT NULL,"
    "  run_id INTEGER NOT NULL REFERENCES run(id), mapping TEXT, fewer_p INTEGER,"
    "  fewer_partition_tokens TEXT, fewer_mapping TEXT, fewer_predicted_ttft_s REAL,"
    "  kv_forward TEXT NOT NULL DEFAULT 'whole',"
    "  tp INTEGER NOT NULL DEFAULT 1 CHECK (tp >= 1 AND p % tp = 0),"
    "  UNIQUE (model, machine, model_hash, machine_hash, p, ctx_tokens, scheme, method, tp));"
    "INSERT INTO plan_v7 (id, model, machine, model_hash, machine_hash, stale, p, ctx_tokens,"
    "  scheme, method, partition_tokens, granularity_tokens, predicted_ttft_s, evaluations,"
    "  search_wall_s, run_id, mapping, fewer_p, fewer_partition_tokens, fewer_mapping,"
    "  fewer_predicted_ttft_s, kv_forward)"
    "  SELECT id, model, machine, model_hash, machine_hash, stale, p, ctx_tokens, scheme,"
    "  method, partition_tokens, granularity_tokens, predicted_ttft_s, evaluations,"
    "  search_wall_s, run_id, mapping, fewer_p, fewer_partition_tokens, fewer_mapping,"
    "  fewer_predicted_ttft_s, kv_forward FROM plan;"
    "DROP VIEW plan_table;"
    "DROP TABLE plan;"
    "ALTER TABLE plan_v7 RENAME TO plan;",
    /* 7 -> 8: a measurement's TP degree t (#21: kvr exec --tp T --db); its partition_tokens
     * has p / t chunks, one per stage. Every earlier row ran the plain scheme, t = 1. */
    "ALTER TABLE measurement ADD COLUMN tp INTEGER NOT NULL DEFAULT 1"
    "  CHECK (tp >= 1 AND p % tp = 0);",
    /* 8 -> 9: how the executor ran its last layer (#17, #24): 'pruned' (attention and MLP on
     * the last row alone, kvr_exec_chunk since b4e1d92) or 'full'; no default, each new row says
     * what its executor did. Old rows are filled once by kvr validate's rule up to schema 8: a
     * one-rank chain (p / tp = 1: one GPU or one TP stage) whose run started before 1796122969
     * (b4e1d92's commit time) ran 'full', later 'pruned'; a chain of ranks 'full' always. One
     * without its run's time is refused first (kvr_store_measure_check_v8). Rebuilt: SQLite
     * adds a NOT NULL column only with a default. */
    "CREATE TABLE measurement_v9 ("
    "  id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES run(id),"
    "  model TEXT NOT NULL, machine TEXT NOT NULL, p INTEGER NOT NULL,"
    "  ctx_tokens INTEGER NOT NULL, scheme TEXT NOT NULL, method TEXT NOT NULL,"
    "  partition_tokens TEXT NOT NULL, backend TEXT NOT NULL, comm TEXT NOT NULL,"
    "  link_settings TEXT NOT NULL, warmup INTEGER NOT NULL, reps INTEGER NOT NULL,"
    "  ttft_median_s REAL NOT NULL, ttft_min_s REAL NOT NULL, ttft_max_s REAL NOT NULL,"
    "  peak_mem_bytes REAL, first_token INTEGER, logits_checksum REAL,"
    "  gpu TEXT, driver TEXT, nccl_version TEXT, mpi_version TEXT,"
    "  kv_forward TEXT NOT NULL DEFAULT 'whole',"
    "  tp INTEGER NOT NULL DEFAULT 1 CHECK (tp >= 1 AND p % tp = 0),"
    "  last_layer TEXT NOT NULL CHECK (last_layer IN ('pruned', 'full')));"
    "INSERT INTO measurement_v9 SELECT m.id, m.run_id, m.model, m.machine, m.p, m.ctx_tokens,"
    "  m.scheme, m.method, m.partition_tokens, m.backend, m.comm, m.link_settings, m.warmup,"
    "  m.reps, m.ttft_median_s, m.ttft_min_s, m.ttft_max_s, m.peak_mem_bytes, m.first_token,"
    "  m.logits_checksum, m.gpu, m.driver, m.nccl_version, m.mpi_version, m.kv_forward, m.tp,"
    "  CASE WHEN m.p / m.tp > 1 THEN 'full'"
    "    WHEN r.started_unix_s IS NULL OR r.started_unix_s <= 0 THEN NULL"
    "    WHEN r.started_unix_s < 1796122969.0 THEN 'full' ELSE 'pruned' END"
    "  FROM measurement m LEFT JOIN run r ON r.id = m.run_id;"
    "DROP TABLE measurement;"
    "ALTER TABLE measurement_v9 RENAME TO measurement;",
};
/* The rest of a migration, run right after it in the same transaction (ISO C bounds one
 * string literal at 4095 characters); NULL when none. */
static const char *const migrations_rest[] = {
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    "CREATE INDEX plan_names ON plan (model, machine, p, scheme, method);"
    "CREATE VIEW plan_table AS"
    "  SELECT plan.model, plan.machine, plan.model_hash, plan.machine_hash, plan.stale, plan.p,"
    "         plan.tp, plan.ctx_tokens, plan.scheme, plan.method, plan.partition_tokens,"
    "         plan.mapping, plan.predicted_ttft_s, plan.evaluations, plan.search_wall_s,"
    "         run.version, run.host, run.started_unix_s"
    "  FROM plan JOIN run ON run.id = plan.run_id;"
    "ALTER TABLE sweep_point ADD COLUMN tp INTEGER NOT NULL DEFAULT 0;"
    "DROP VIEW sweep_done; CREATE VIEW sweep_done AS SELECT * FROM sweep_point WHERE state = "
    "'done';",
    NULL,
    NULL};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(N_MIGRATIONS == KVR_STORE_SCHEMA_VERSION, "one migration per schema version");
_Static_assert(sizeof migrations_rest / sizeof migrations_rest[0] == N_MIGRATIONS,
               "a rest (or NULL) per migration");

sqlite3 *kvr_store_db(struct kvr_store *s)
{
    return s->db;
}

const char *kvr_store_path(const struct kvr_store *s)
{
    return s->path;
}

static enum kvr_status pragma_int(struct kvr_store *s, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(s->db, sql, -1, &st, NULL));
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    KVR_SQL_CHECK(s, rc);
    return KVR_OK;
}

/* The header's ids and the table count, read by one statement: one snapshot, so a process that
 * creates the database meanwhile is seen either before or after, never half-way (three
 * separate reads once saw its tables without its application_id). */
static enum kvr_status read_identity(struct kvr_store *s, int *app_id, int *n_tables)
{
    static const char sql[] = "SELECT (SELECT application_id FROM pragma_application_id), "
                              "(SELECT user_version FROM pragma_user_version), "
                              "(SELECT count(*) FROM sqlite_schema)";
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(s->db, sql, -1, &q, NULL));
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *app_id = sqlite3_column_int(q, 0), s->version = sqlite3_column_int(q, 1),
        *n_tables = sqlite3_column_int(q, 2);
    sqlite3_finalize(q);
    KVR_SQL_CHECK(s, rc);
    return KVR_OK;
}

/* Whether the schema holds an object of that name (table, view or index). */
static enum kvr_status has_object(struct kvr_store *s, const char *name, size_t len, bool *yes)
{
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(
        s, sqlite3_prepare_v2(s->db, "SELECT 1 FROM sqlite_schema WHERE name = ?", -1, &q, NULL));
    sqlite3_bind_text(q, 1, name, (int)len, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) KVR_SQL_CHECK(s, rc);
    *yes = rc == SQLITE_ROW;
    return KVR_OK;
}

/* Every table and view the migrations up to the file's version create (less those a later one
 * drops) must be there: a file with our application_id but missing tables is damaged, refused
 * before anything (journal mode included) is changed. */
static enum kvr_status check_objects(struct kvr_store *s)
{
    /* tables only: a view holds no data, and later schemas drop the old figure views */
    static const char *const kinds[] = {"CREATE TABLE "};
    for (int v = 0; v < s->version && v < N_MIGRATIONS; v++)
        for (int k = 0; k < 1; k++)
            for (const char *c = strstr(migrations[v], kinds[k]); c; c = strstr(c + 1, kinds[k])) {
                const char *name = c + strlen(kinds[k]);
                if (!strncmp(name, "IF NOT EXISTS ", 14)) name += 14;
                size_t len =
                    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
                if (len == 0) continue; /* a quoted name: not checked */
                char drop[96], drop_if[112], renamed[112];
                snprintf(drop, sizeof drop, "DROP %s%.*s;", kinds[k] + 7, (int)len, name);
                snprintf(drop_if, sizeof drop_if, "DROP %sIF EXISTS %.*s;", kinds[k] + 7, (int)len,
                         name);
                snprintf(renamed, sizeof renamed, "ALTER %s%.*s RENAME", kinds[k] + 7, (int)len,
                         name);
                bool dropped = false, yes = false;
                for (int w = v; w < s->version && w < N_MIGRATIONS && !dropped; w++)
                    dropped = strstr(migrations[w], drop) || strstr(migrations[w], drop_if) ||
                              strstr(migrations[w], renamed);
                /* a table rebuilt under another name and renamed back is there again */
                char back[112];
                snprintf(back, sizeof back, "RENAME TO %.*s;", (int)len, name);
                for (int w = v; w < s->version && w < N_MIGRATIONS && dropped; w++)
                    dropped = !strstr(migrations[w], back);
                enum kvr_status st = dropped ? KVR_OK : has_object(s, name, len, &yes);
                if (st) return st;
                if (!dropped && !yes)
                    return kvr_error(KVR_ERR_INPUT,
                                     "%s: a kvrun database (schema %d) without its %.*s '%.*s': "
                                     "damaged, refused untouched",
                                     s->path, s->version, (int)strlen(kinds[k]) - 8, kinds[k] + 7,
                                     (int)len, name);
            }
    return KVR_OK;
}

/* The file's identity before anything is written: ours (or empty), and not from the future. */
static enum kvr_status check_identity(struct kvr_store *s, enum kvr_store_mode mode)
{
    int app_id = 0, n_tables = 0;
    enum kvr_status st = read_identity(s, &app_id, &n_tables);
    if (st) return st;
    if (app_id != KVR_STORE_APPLICATION_ID && (app_id != 0 || n_tables != 0))
        return kvr_error(KVR_ERR_INPUT, "%s: not a kvrun database (application_id 0x%08x)", s->path,
                         (unsigned)app_id);
    if (s->version > KVR_STORE_SCHEMA_VERSION)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: written by a newer kvrun (schema %d; this build knows up to %d)",
                         s->path, s->version, KVR_STORE_SCHEMA_VERSION);
    if (mode == KVR_STORE_READ && s->version == 0)
        return kvr_error(KVR_ERR_INPUT, "%s: empty (no kvrun schema; 'kvr search' creates one)",
                         s->path);
    return app_id == KVR_STORE_APPLICATION_ID ? check_objects(s) : KVR_OK;
}

static enum kvr_status migrate_txn(struct kvr_store *s, void *arg)
{
    (void)arg;
    enum kvr_status st = pragma_int(s, "PRAGMA user_version", &s->version);
    if (st) return st; /* re-read under the lock: another process may have migrated */
    for (; s->version < KVR_STORE_SCHEMA_VERSION; s->version++)
        if ((s->version == 8 && (st = kvr_store_measure_check_v8(s))) ||
            (st = kvr_store_exec(s, migrations[s->version])) ||
            (migrations_rest[s->version] && (st = kvr_store_exec(s, migrations_rest[s->version]))))
            return kvr_error_prefix(st, "migrating schema %d to %d: ", s->version, s->version + 1);
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
             KVR_STORE_APPLICATION_ID, KVR_STORE_SCHEMA_VERSION);
    return kvr_store_exec(s, sql);
}

/* WAL is persistent in the file; switching needs a moment without readers, so retry. */
static enum kvr_status ensure_wal(struct kvr_store *s)
{
    for (int attempt = 0;; attempt++) {
        int rc = sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK) return KVR_OK;
        if ((rc & 0xff) != SQLITE_BUSY || attempt == 200)
            return kvr_store_sql_error(s, rc, "PRAGMA journal_mode = WAL", __FILE__, __LINE__);
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
}

/* "file:PATH?immutable=1" with PATH percent-encoded where URIs need it. */
static void immutable_uri(const char *path, char *uri, size_t cap)
{
    size_t n = (size_t)snprintf(uri, cap, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p && n + 4 < cap; p++)
        n += (size_t)(strchr("?#%", *p) || *p < 33 ? snprintf(uri + n, cap - n, "%%%02X", *p)
                                                   : snprintf(uri + n, cap - n, "%c", *p));
    snprintf(uri + n, cap - n, "?immutable=1");
}

/* A WAL database in a folder we cannot write (no -shm file) opens for reading only as
 * immutable: nobody can be writing it there. */
static enum kvr_status open_db(struct kvr_store *s, const char *path, enum kvr_store_mode mode,
                               bool immutable)
{
    struct stat sb;
    if (mode == KVR_STORE_READ && stat(path, &sb) != 0)
        return kvr_error(KVR_ERR_IO, "%s: cannot open database: %s", path, strerror(errno));
    int flags =
        mode == KVR_STORE_READ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    char uri[3200];
    immutable_uri(path, uri, sizeof uri);
    int rc = sqlite3_open_v2(immutable ? uri : path, &s->db,
                             flags | SQLITE_OPEN_NOMUTEX | (immutable ? SQLITE_OPEN_URI : 0), NULL);
    if (rc != SQLITE_OK)
        return kvr_error(KVR_ERR_IO, "%s: cannot open database: %s", path, sqlite3_errstr(rc));
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 30000);
    if (mode == KVR_STORE_WRITE && sqlite3_db_readonly(s->db, "main") == 1)
        return kvr_error(KVR_ERR_IO, "%s: database is read-only (cannot write results)", path);
    return KVR_OK;
}

/* Immutable reading ignores a WAL file: with one there, the rows would be stale or missing. */
static enum kvr_status check_no_wal(const char *path)
{
    char wal[4200];
    struct stat sb;
    snprintf(wal, sizeof wal, "%s-wal", path);
    if (stat(wal, &sb) == 0 && sb.st_size > 0)
        return kvr_error(KVR_ERR_INPUT,
                         "%s: its write-ahead log %s is not checkpointed and the folder is not "
                         "writable (no -shm can be made): it cannot be read correctly; copy the "
                         "database and its -wal to a writable folder",
                         path, wal);
    return KVR_OK;
}

/* Reading an older schema: a private in-memory copy is migrated; the file stays as it is. */
static enum kvr_status copy_to_memory(struct kvr_store *s)
{
    sqlite3 *mem = NULL;
    int rc = sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    sqlite3_backup *b = rc == SQLITE_OK ? sqlite3_backup_init(mem, "main", s->db, "main") : NULL;
    if (b) {
        rc = sqlite3_backup_step(b, -1);
        sqlite3_backup_finish(b);
    }
    if (!b || rc != SQLITE_DONE) {
        enum kvr_status st = kvr_store_sql_error(s, b ? rc : sqlite3_errcode(mem),
                                                 "copy for migration", __FILE__, __LINE__);
        sqlite3_close_v2(mem);
        return st;
    }
    sqlite3_close_v2(s->db);
    s->db = mem;
    sqlite3_extended_result_codes(s->db, 1);
    return KVR_OK;
}

enum kvr_status kvr_store_open(const char *path, enum kvr_store_mode mode, struct kvr_store **out)
{
    if (!path || !*path || !strcmp(path, ":memory:") || !strncmp(path, "file:", 5))
        return kvr_error(KVR_ERR_USAGE, "--db: '%s' is not a database file path", path ? path : "");
    if (path[strlen(path) - 1] == '/') /* SQLite would make "x" of "x/": another file */
        return kvr_error(KVR_ERR_USAGE, "--db: '%s' ends in '/': a folder's name, not a file's",
                         path);
    if (!strcmp(path, "-")) /* standard output everywhere else: never a file named "-" */
        return kvr_error(KVR_ERR_USAGE,
                         "--db: '-' (standard output) cannot hold a database: name a file (./- "
                         "for one called '-')");
    struct kvr_store *s = calloc(1, sizeof *s);
    if (!s) return kvr_error(KVR_ERR_NOMEM, "store: out of memory");
    snprintf(s->path, sizeof s->path, "%s", path);
    enum kvr_status st = kvr_store_check_file(path);
    if (!st) st = open_db(s, path, mode, false);
    if (!st) st = check_identity(s, mode);
    if (st == KVR_ERR_IO && mode == KVR_STORE_READ && access(path, W_OK) != 0) {
        sqlite3_close_v2(s->db);
        s->db = NULL;
        st = check_no_wal(path);
        if (!st) st = open_db(s, path, mode, true);
        if (!st) st = check_identity(s, mode);
    }
    if (!st && mode == KVR_STORE_WRITE) st = ensure_wal(s);
    if (!st && mode == KVR_STORE_READ && s->version < KVR_STORE_SCHEMA_VERSION)
        st = copy_to_memory(s);
    if (!st && s->version < KVR_STORE_SCHEMA_VERSION)
        st = kvr_store_transaction(s, migrate_txn, NULL);
    if (!st) st = kvr_store_exec(s, "PRAGMA foreign_keys = ON");
    if (st)
        kvr_store_close(s);
    else
        *out = s;
    return st;
}

void kvr_store_close(struct kvr_store *s)
{
    if (!s) return;
    sqlite3_close_v2(s->db);
    free(s);
}

enum kvr_status kvr_store_add_run(struct kvr_store *s, const struct kvr_provenance *p,
                                  int64_t *run_id)
{
    static const char sql[] =
        "INSERT INTO run (version, host, device, argv, started_unix_s) VALUES (?, ?, ?, ?, ?)";
    sqlite3_stmt *q = NULL;
    KVR_SQL_CHECK(s, sqlite3_prepare_v2(s->db, sql, -1, &q, NULL));
    sqlite3_bind_text(q, 1, p->version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, p->host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, p->device, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 4, p->argv, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(q, 5, p->started_unix_s);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    KVR_SQL_CHECK(s, rc);
    *run_id = sqlite3_last_insert_rowid(s->db);
    return KVR_OK;
}
