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
#include "kvr_search_cli.h"
#include "kvr_sweep.h"
#include "kvr_units.h"

static const char sweep_help[] =
    "usage: kvr sweep FILE... [options]\n"
    "\n"
    "Expands each sweep file's axes, records every point in the database (table sweep_point)\n"
    "and runs the points not yet done on the simulator. Re-running resumes. Under mpirun\n"
    "the points are spread over the ranks and rank 0 is the only writer.\n"
    "\n"
    "  -d, --db FILE         database (default: the file's [sweep] db, out/kvrun.db)\n"
    "  -j, --jobs N          run the points on N threads (default 1; each thread has its own\n"
    "                        connection to the database)\n"
    "      --stop-after N    stop after N points, as an interruption would   (default: none)\n"
    "      --json            print a JSON summary per file instead of a line\n"
    "  -h, --help            this help\n"
    "\n"
    "A sweep file's schemes (experiments/README.md; kvr help schemes):\n"
    "  @SERIES@\n";

struct sweep_args {
    const char *db;
    uint64_t stop_after;
    int jobs;
    bool json, help;
    int first_file;
};

enum { OPT_STOP = 300, OPT_JSON };

static enum kvr_status parse_args(int argc, char **argv, struct sweep_args *a)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},  {"stop-after", required_argument, NULL, OPT_STOP},
        {"json", no_argument, NULL, OPT_JSON}, {"jobs", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0}};
    *a = (struct sweep_args){.stop_after = UINT64_MAX, .jobs = 1};
    int c;
    kvr_cli_opt_reset();
    while ((c = kvr_cli_getopt(argc, argv, "d:j:h", opts)) != -1) {
        if (c == '?') return KVR_ERR_USAGE;
        if (c == 'h') a->help = true;
        if (c == 'd') a->db = optarg;
        if (c == OPT_JSON) a->json = true;
        uint64_t jobs;
        if (c == 'j' && (kvr_parse_u64(optarg, 256, &jobs) || jobs == 0))
            return kvr_error(KVR_ERR_USAGE, "--jobs: '%s' is not a thread count in [1, 256]",
                             optarg);
        if (c == 'j') a->jobs = (int)jobs;
        if (c == OPT_STOP && kvr_parse_u64(optarg, UINT64_MAX, &a->stop_after))
            return kvr_error_prefix(KVR_ERR_INPUT, "--stop-after: ");
    }
    a->first_file = optind;
    if (!a->help && optind == argc) return kvr_error(KVR_ERR_USAGE, "sweep: no sweep file given");
    return KVR_OK;
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
    struct sweep_args a;
    enum kvr_status st = parse_args(argc, argv, &a);
    if (st || a.help) return st ? st : (kvr_cli_print_help(stdout, sweep_help), KVR_OK);
    char argv_text[4096];
    kvr_cli_join_argv(argc, argv, argv_text, sizeof argv_text);
    bool failed = false;
    uint64_t budget = a.stop_after;
    int rank = 0, size = 1;
    struct kvr_comm *comm = NULL; /* only with several ranks */
    if ((st = kvr_mpi_init(&rank, &size))) return st;
    if (size > 1 && a.jobs > 1)
        return kvr_mpi_finalize(), kvr_error(KVR_ERR_USAGE, "sweep: -j and mpirun do not mix");
    /* a generous deadline: ranks wait for rank 0's database work and for each other's points */
    if (size > 1) st = kvr_comm_open(KVR_COMM_MPI, 0, 3600, &comm);
    for (int i = a.first_file; i < argc && !st; i++)
        st = run_file(argv[i], &a, argv_text, comm, &budget, &failed);
    kvr_comm_close(comm);
    if (!st && failed)
        st = kvr_error(KVR_ERR_RUNTIME,
                       "some points failed (their errors are in sweep_point.error)");
    /* every rank gets here with the same outcome: rank 0 shares its status (a rank that fails
     * alone aborts the job instead) */
    kvr_mpi_finalize();
    return st;
}
