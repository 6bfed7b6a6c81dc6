/* kvr sweep: run the points of sweep files into the database, resumably. Every point is
 * recorded as pending first; results are written in batches (one transaction each), so an
 * interrupted sweep resumes with only the points that are not done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_cli.h"
#include "kvr_json.h"
#include "kvr_comm.h"
#include "kvr_mpi.h"
#include "kvr_opt.h"
#include "kvr_out.h"
#include "kvr_search_cli.h"
#include "kvr_sweep.h"
#include "kvr_units.h"

static const char usage[] =
    "usage: kvr sweep FILE... [options]\n\nExpands each sweep file's axes, records "
    "every point in the database (table sweep_point)\nand runs the points not yet done "
    "on the simulator. Re-running resumes. Under mpirun\nthe points are spread over "
    "the ranks and rank 0 is the only writer. Every file is read\nand checked before "
    "anything is written. --json prints a summary per file.\n";

struct sweep_args {
    const char *db, *stop_arg, *jobs_arg, *timeout_arg;
    uint64_t stop_after;
    double timeout_s;
    int jobs;
    bool json, quiet, help, timeout_given;
    char **files;
    int n_files;
};

static enum kvr_status check_args(void *args, const struct kvr_opt_result *res)
{
    struct sweep_args *a = args;
    enum kvr_status st;
    a->files = res->args, a->n_files = res->n_args, a->stop_after = UINT64_MAX;
    a->timeout_given = kvr_opt_given(res, "timeout");
    uint64_t jobs;
    if (kvr_parse_u64(a->jobs_arg, 256, &jobs) || jobs == 0)
        return kvr_error(KVR_ERR_USAGE, "--jobs: '%s' is not a thread count in [1, 256]",
                         a->jobs_arg);
    a->jobs = (int)jobs;
    if (kvr_parse_decimal("seconds", a->timeout_arg, 0.001, 1e6, &a->timeout_s))
        return kvr_error_prefix(KVR_ERR_USAGE, "--timeout: ");
    if (a->stop_arg && kvr_parse_u64(a->stop_arg, UINT64_MAX, &a->stop_after))
        return kvr_error_prefix(KVR_ERR_INPUT, "--stop-after: ");
    if (a->db && (st = kvr_path_check("--db", a->db))) return st;
    if (a->n_files == 0) return kvr_error(KVR_ERR_USAGE, "sweep: no sweep file given");
    return KVR_OK;
}

#define OFF(f) offsetof(struct sweep_args, f)
static const struct kvr_opt sweep_opts[] = {
    KVR_OPT("db", 'd', "FILE", OFF(db), "database",
            .def_help = "the file's [sweep] db, out/kvrun.db"),
    KVR_OPT("jobs", 'J', "N", OFF(jobs_arg),
            "run the points on N threads (each with its own connection)", .def = "1"),
    KVR_OPT("timeout", 0, "S", OFF(timeout_arg),
            "under mpirun: seconds a rank waits for another before the job\nis stopped "
            "(a rank that died or hangs)",
            .def = "600", .unit = "s"),
    KVR_OPT("stop-after", 0, "N", OFF(stop_arg), "stop after N points, as an interruption would",
            .def_help = "none"),
    KVR_OPT_COMMON_END(struct sweep_args)};
#undef OFF

static const struct kvr_opt_spec sweep_spec = {
    .usage = usage,
    .opts = sweep_opts,
    .check = check_args,
    .footer = "\nA sweep file's schemes (experiments/README.md; kvr help schemes):\n  @SERIES@\n",
    .max_args = -1};

/* Every file loaded and expanded once before any database is touched. */
static enum kvr_status check_files(const struct sweep_args *a)
{
    static struct kvr_sweep_spec sp;
    enum kvr_status st = KVR_OK;
    for (int i = 0; i < a->n_files && !st; i++) {
        struct kvr_sweep_item *items = NULL;
        size_t n = 0;
        if ((st = kvr_sweep_load(a->files[i], &sp))) break;
        st = kvr_sweep_expand(&sp, &items, &n);
        if (!st && !a->db && !sp.db[0]) st = kvr_error(KVR_ERR_INPUT, "%s: db is empty", sp.path);
        free(items);
        kvr_sweep_free(&sp);
    }
    return st;
}

static void print_tally(const struct kvr_sweep_spec *sp, const char *db,
                        const struct kvr_sweep_tally *t, bool json)
{
    if (!json) {
        printf("sweep %s (%s): %zu points, %zu run now (%zu failed), %zu already done, %.2f s -> "
               "%s\n",
               sp->name, sp->figure, t->total, t->run, t->failed, t->done_before, t->wall_s, db);
        return;
    }
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_kv_str(&j, "sweep", sp->name);
    kvr_json_kv_str(&j, "figure", sp->figure);
    kvr_json_kv_str(&j, "db", db);
    kvr_json_kv_u64(&j, "points", t->total);
    kvr_json_kv_u64(&j, "run", t->run);
    kvr_json_kv_u64(&j, "failed", t->failed);
    kvr_json_kv_u64(&j, "already_done", t->done_before);
    kvr_json_kv_dbl(&j, "wall_s", t->wall_s);
    kvr_json_end(&j);
}

static enum kvr_status run_file(const char *path, const struct sweep_args *a, const char *argv_text,
                                struct kvr_comm *comm, uint64_t *budget, bool *any_failed)
{
    struct kvr_sweep_spec sp;
    enum kvr_status st = kvr_sweep_load(path, &sp);
    if (st) return st;
    const char *db = a->db ? a->db : sp.db;
    struct kvr_sweep_item *items = NULL;
    struct kvr_sweep_tally t = {0};
    st = kvr_sweep_expand(&sp, &items, &t.total);
    if (!st && comm) { /* under mpirun: rank 0 writes, everyone evaluates */
        st = kvr_sweep_run_mpi(&sp, db, items, t.total, argv_text, comm, budget, &t);
        if (!st && kvr_comm_rank(comm) == 0) print_tally(&sp, db, &t, a->json);
        *any_failed |= t.failed > 0;
        free(items);
        kvr_sweep_free(&sp);
        return st;
    }
    if (!st) st = kvr_sweep_run(&sp, db, a->jobs, items, t.total, argv_text, budget, &t);
    if (!st) print_tally(&sp, db, &t, a->json);
    *any_failed |= t.failed > 0;
    free(items);
    kvr_sweep_free(&sp);
    return st;
}

enum kvr_status kvr_cmd_sweep(int argc, char **argv)
{
    struct sweep_args a = {0};
    enum kvr_status st;
    if (kvr_opt_start(&sweep_spec, argc, argv, &a, NULL, &st)) return st;
    if ((st = check_files(&a))) return st;
    char argv_text[4096];
    kvr_cli_join_argv(argc, argv, argv_text, sizeof argv_text);
    bool failed = false;
    uint64_t budget = a.stop_after;
    int rank = 0, size = 1;
    struct kvr_comm *comm = NULL; /* only with several ranks */
    if ((st = kvr_mpi_init(&rank, &size))) return st;
    if (size == 1 && a.timeout_given)
        return kvr_mpi_finalize(),
               kvr_error(KVR_ERR_USAGE, "--timeout bounds the waits between MPI ranks: it applies "
                                        "under mpirun only");
    if (size > 1 && a.jobs > 1)
        return kvr_mpi_finalize(), kvr_error(KVR_ERR_USAGE, "sweep: --jobs and mpirun do not mix");
    /* the deadline of every exchange: ranks wait for rank 0's database work and for each
     * other's points, never forever */
    if (size > 1) st = kvr_comm_open(KVR_COMM_MPI, 0, a.timeout_s, &comm);
    for (int i = 0; i < a.n_files && !st; i++)
        st = run_file(a.files[i], &a, argv_text, comm, &budget, &failed);
    kvr_comm_close(comm);
    kvr_mpi_abort_failed(st, rank, size); /* a peer may be dead or hung */
    if (!st && failed)
        st = kvr_error(KVR_ERR_RUNTIME,
                       "some points failed (their errors are in sweep_point.error)");
    /* every rank gets here with the same outcome: rank 0 shares its status (a rank that fails
     * alone aborts the job instead) */
    kvr_mpi_finalize();
    return st;
}
