/* kvr calibrate: measure the executor's operations (or read a CSV of them), fit the
 * simulator's GPU cost parameters with GSL least squares on one set of contexts, report the
 * errors on the others, and write a machine profile with its provenance. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvr_calibrate.h"
#include "kvr_cli.h"
#include "kvr_opt.h"
#include "kvr_out.h"
#include "kvr_config.h"
#include "kvr_exec.h"
#include "kvr_json.h"
#include "kvr_measure.h"
#include "kvr_sim.h"
#include "kvr_units.h"

static const char usage[] =
    "usage: kvr calibrate [--backend cuda] [--out data/machines/NAME.ini] [options]\n"
    "\n"
    "Times every operation of single-device prefills (kvr exec --profile) for each model and\n"
    "context, fits the simulator's GPU parameters (per op class: efficiency, half-tokens and\n"
    "memory efficiency; the launch overhead) on the --fit-ctx contexts by relative least\n"
    "squares (GSL), and reports the operation-level and TTFT errors on the fitted and the\n"
    "held-out (--check-ctx) contexts. The profile written always loads back (it is read\n"
    "before it replaces the old one).\n";

struct calib {
    const char *backend, *models, *fit_ctx, *check_ctx, *base, *from, *save, *db, *out, *name;
    const char *link_lat, *link_bw, *overlap_bw, *attn_shapes;
    bool json, quiet, help, points, allow_dirty;
    struct kvr_calibrate_data data;
};

static void report(const struct calib *c, const struct kvr_machine *h,
                   const struct kvr_calibrate_outcome *o)
{
    if (!c->json) {
        printf("fit: %zu operation times at %s, %d iterations, rms %.2f%%, max %.2f%%\n",
               o->n_points, c->fit_ctx, o->fit.iterations, 100 * o->fit.rms_rel,
               100 * o->fit.max_rel);
        printf("fitted contexts   operations MAPE %6.2f%% (max %6.2f%%)   TTFT MAPE %6.2f%% (max "
               "%6.2f%%)\n",
               kvr_calibrate_mape(&o->op_fit), 100 * o->op_fit.max,
               kvr_calibrate_mape(&o->ttft_fit), 100 * o->ttft_fit.max);
        printf("held-out contexts operations MAPE %6.2f%% (max %6.2f%%)   TTFT MAPE %6.2f%% (max "
               "%6.2f%%)\n",
               kvr_calibrate_mape(&o->op_check), 100 * o->op_check.max,
               kvr_calibrate_mape(&o->ttft_check), 100 * o->ttft_check.max);
        for (int k = 0; k < KVR_N_CLASSES; k++)
            printf("  %-12s eff %.3f  half_tokens %8.1f  mem_eff %.3f\n", kvr_class_name(k),
                   h->gpu.compute_eff[k], h->gpu.half_tokens[k], h->gpu.mem_eff[k]);
        printf("  launch %.2f us; attention efficiency x (head_dim/128)^%.3f\n",
               h->gpu.launch_s * 1e6, h->gpu.attn_hd_exp);
        printf("  attention's rows: queries^%.3f x (mean keys per query)^%.3f\n",
               1 - h->gpu.attn_keys_exp, h->gpu.attn_keys_exp);
        printf("held-out error per operation (MAPE, max); time-weighted over all: %.2f%%\n",
               100 * o->abs_err_s / o->meas_s);
        for (int op = 0; op <= KVR_N_OPS; op++)
            if (o->per_op[op].n)
                printf("  %-12s %6.2f%% %6.2f%%\n", kvr_calibrate_op_label(op),
                       kvr_calibrate_mape(&o->per_op[op]), 100 * o->per_op[op].max);
        return;
    }
    struct kvr_json j;
    kvr_json_begin(&j, stdout);
    kvr_json_kv_u64(&j, "fit_points", o->n_points);
    kvr_json_kv_dbl(&j, "fit_rms_pct", 100 * o->fit.rms_rel);
    kvr_json_kv_dbl(&j, "fit_op_mape_pct", kvr_calibrate_mape(&o->op_fit));
    kvr_json_kv_dbl(&j, "fit_ttft_mape_pct", kvr_calibrate_mape(&o->ttft_fit));
    kvr_json_kv_dbl(&j, "check_op_mape_pct", kvr_calibrate_mape(&o->op_check));
    kvr_json_kv_dbl(&j, "check_op_max_err_pct", 100 * o->op_check.max);
    kvr_json_kv_dbl(&j, "check_op_time_weighted_err_pct", 100 * o->abs_err_s / o->meas_s);
    kvr_json_kv_dbl(&j, "check_ttft_mape_pct", kvr_calibrate_mape(&o->ttft_check));
    kvr_json_kv_dbl(&j, "check_ttft_max_err_pct", 100 * o->ttft_check.max);
    kvr_json_kv_dbl(&j, "launch_s", h->gpu.launch_s);
    for (int k = 0; k < KVR_N_CLASSES; k++) {
        char key[64];
        snprintf(key, sizeof key, "eff_%s", kvr_class_name(k));
        kvr_json_kv_dbl(&j, key, h->gpu.compute_eff[k]);
    }
    kvr_json_end(&j);
}

/* --db only stores what is timed now (the table's file roles keep every output off the inputs
 * and off the other outputs). */
static enum kvr_status check_paths(const struct calib *c)
{
    if (c->from && c->db)
        return kvr_error(KVR_ERR_USAGE, "--db: stores the measurements timed now; with --from "
                                        "nothing is measured (import them with kvr exec)");
    /* the profile's header records --from on one comment line, read back up to ". Fitted on "
     * (kvr_calibrate_read_record: validate finds the CSV there) */
    bool ctl = false;
    for (const char *p = c->from; p && *p && !ctl; p++) ctl = (unsigned char)*p < 32 || *p == 127;
    const char *why = !c->from || !c->out               ? NULL
                      : ctl                             ? "holds a control character"
                      : strstr(c->from, ". Fitted on ") ? "holds '. Fitted on '"
                      : !strcmp(c->from, "timed now")   ? "is the record's word for no CSV"
                                                        : NULL;
    if (why)
        return kvr_error(KVR_ERR_USAGE,
                         "--from: '%s' %s, which the profile's record of the fit (one header "
                         "line) cannot carry: rename or link the CSV",
                         c->from, why);
    return KVR_OK;
}

/* --name becomes an INI value: 1..63 printable characters, no comment character, no blanks
 * at either end, so the profile reads back as written. */
static enum kvr_status check_name(const char *name)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n < 64 && name[0] != ' ' && name[n - 1] != ' ';
    for (size_t i = 0; i < n && ok; i++)
        ok = (unsigned char)name[i] >= 32 && name[i] != 127 && name[i] != ';' && name[i] != '#';
    return ok ? KVR_OK
              : kvr_error(KVR_ERR_USAGE,
                          "--name: '%s' must be 1..63 printable characters "
                          "without ';', '#' or blanks at the ends",
                          name);
}

static enum kvr_status check_args(void *args, const struct kvr_opt_result *res)
{
    struct calib *c = args;
    enum kvr_status st;
    /* --check-ctx picks what is timed: with --from every other context of the CSV is held out */
    static const char *const timing_only[] = {"backend", "models", "attn-shapes", "check-ctx",
                                              NULL};
    if (c->from &&
        (st = kvr_opt_refuse(res, timing_only, "times operations: with --from nothing is timed")))
        return st;
    int backend;
    if ((st = kvr_cli_parse_name("--backend", c->backend, kvr_backend_from_name, "cuda or ref",
                                 &backend)))
        return st;
    static const char *const cuda_only[] = {"attn-shapes", NULL};
    if (strcmp(c->backend, "cuda") &&
        (st = kvr_opt_refuse(res, cuda_only, "times the cuda attention kernel")))
        return st;
    if ((st = check_paths(c))) return st;
    /* what only the written profile holds: without --out it would be accepted and ignored */
    static const char *const out_only[] = {"name", "link-lat", "link-bw", "overlap-bw", NULL};
    if (!c->out &&
        (st = kvr_opt_refuse(res, out_only, "sets the profile --out writes: give --out FILE")))
        return st;
    static const char *const db_only[] = {"allow-dirty", NULL};
    if (!c->db && (st = kvr_opt_refuse(res, db_only, "applies with --db only (nothing is stored)")))
        return st;
    struct kvr_calibrate_timing t = {c->backend, c->models, c->attn_shapes, NULL, false};
    if (!c->from && (st = kvr_calibrate_check_timing(&t))) return st;
    return c->db ? kvr_measure_check_clean(c->allow_dirty) : KVR_OK;
}

#define OFF(f) offsetof(struct calib, f)
static const struct kvr_opt calib_opts[] = {
    KVR_OPT("backend", 'b', "B", OFF(backend), "cuda or ref", .def = "cuda"),
    KVR_OPT("models", 0, "L", OFF(models), "models to time", .def = "llama-7b,falcon-7b"),
    KVR_OPT("fit-ctx", 0, "L", OFF(fit_ctx), "contexts the fit sees", .def = "1k,4k,16k",
            .unit = "tokens"),
    KVR_OPT("check-ctx", 0, "L", OFF(check_ctx),
            "held-out contexts timed (with --from: every context of the CSV the fit does not see)",
            .def = "2k,8k,32k", .unit = "tokens"),
    KVR_OPT("base", 0, "NAME", OFF(base), "profile whose GPU and links start the fit",
            .def = "h100-nvlink", .file = KVR_OPT_FILE_NAME),
    KVR_OPT("from", 0, "CSV", OFF(from),
            "fit on these measurements instead of timing (model,ctx,op,time_s)",
            .file = KVR_OPT_FILE_IN),
    KVR_OPT("save", 0, "CSV", OFF(save), "write the measurements (what --from reads)",
            .file = KVR_OPT_FILE_OUT),
    KVR_OPT("db", 'd', "FILE", OFF(db),
            "also store each TTFT timed now as a measurement row (for kvr validate)",
            .file = KVR_OPT_FILE_OUT),
    KVR_OPT("out", 'o', "FILE", OFF(out), "write the calibrated profile (INI, with provenance)",
            .file = KVR_OPT_FILE_OUT),
    KVR_OPT("name", 0, "NAME", OFF(name), "the profile's name",
            .def_help = "the base's + \"-calibrated\""),
    KVR_OPT("attn-shapes", 0, "L", OFF(attn_shapes),
            "also time the attention kernel alone at QUERIES:PREFIX shapes (\"\": none)",
            .def = "1k:0,1k:8k,2k:4k,4k:12k,8k:8k"),
    KVR_OPT("link-lat", 0, "T", OFF(link_lat),
            "the links' alpha, as `mpirun -np 2 kvr bench comm` fits it", .unit = "s",
            .def_help = "the base's intra-node links"),
    KVR_OPT("link-bw", 0, "RATE", OFF(link_bw), "the links' beta, as kvr bench comm fits it",
            .def_help = "the base's intra-node links"),
    KVR_OPT("overlap-bw", 0, "RATE", OFF(overlap_bw),
            "the most an asynchronous transfer gets beside compute,\nas kvr validate "
            "--timeline measures it",
            .def_help = "no cap"),
    KVR_OPT("allow-dirty", 0, NULL, OFF(allow_dirty),
            "store measurements although this kvr was built from uncommitted changes"),
    KVR_OPT("points", 0, NULL, OFF(points),
            "also print every measured point with its prediction and error"),
    KVR_OPT_COMMON_END(struct calib)};
#undef OFF

static const struct kvr_opt_spec calib_spec = {
    .usage = usage, .opts = calib_opts, .check = check_args};

enum kvr_status kvr_cmd_calibrate(int argc, char **argv)
{
    struct calib c = {0};
    enum kvr_status st;
    if (kvr_opt_start(&calib_spec, argc, argv, &c, NULL, &st)) return st;
    uint64_t *fit_ctx = NULL, *check_ctx = NULL, all[64];
    size_t n_fit = 0, n_check = 0;
    static struct kvr_machine h;
    struct kvr_calibrate_outcome o = {0};
    if ((st = kvr_cli_parse_ctx_list("--fit-ctx", c.fit_ctx, &fit_ctx, &n_fit)) ||
        (st = kvr_cli_parse_ctx_list("--check-ctx", c.check_ctx, &check_ctx, &n_check)) ||
        (st = kvr_machine_resolve(c.base, &h)))
        goto out;
    if (n_fit + n_check > 64) {
        st = kvr_error(KVR_ERR_USAGE, "at most 64 contexts");
        goto out;
    }
    for (size_t i = 0; !c.from && i < n_check; i++) /* with --from the CSV's own are checked */
        for (size_t k = 0; k < n_fit; k++)
            if (check_ctx[i] == fit_ctx[k]) {
                st = kvr_error(KVR_ERR_USAGE,
                               "--check-ctx %llu is in --fit-ctx too: a context the fit sees is "
                               "not held out",
                               (unsigned long long)check_ctx[i]);
                goto out;
            }
    memcpy(all, fit_ctx, n_fit * sizeof *all),
        memcpy(all + n_fit, check_ctx, n_check * sizeof *all);
    h.n_gpus = 1;
    if (c.link_lat && (st = kvr_parse_duration_s(c.link_lat, &h.intra_lat_s)))
        st = kvr_error_prefix(st, "--link-lat: ");
    if (!st && c.link_bw && (st = kvr_parse_rate_Bps(c.link_bw, &h.intra_Bps)))
        st = kvr_error_prefix(st, "--link-bw: ");
    if (!st && c.overlap_bw && (st = kvr_parse_rate_Bps(c.overlap_bw, &h.overlap_Bps)))
        st = kvr_error_prefix(st, "--overlap-bw: ");
    if (!st && c.link_bw && !(h.intra_Bps > 0))
        st = kvr_error(KVR_ERR_USAGE, "--link-bw: '%s' must be positive", c.link_bw);
    if (!st && c.link_lat && !(h.intra_lat_s > 0))
        st = kvr_error(KVR_ERR_USAGE, "--link-lat: '%s' must be positive", c.link_lat);
    if (!st && c.name) st = check_name(c.name);
    if (st) goto out;
    snprintf(h.name + strlen(h.name), sizeof h.name - strlen(h.name), "-calibrated");
    if (c.name) snprintf(h.name, sizeof h.name, "%s", c.name);
    struct kvr_calibrate_timing t = {c.backend, c.models, c.attn_shapes, c.db, c.json || c.quiet};
    st = kvr_calibrate_alloc(&c.data);
    if (!st)
        st = c.from ? kvr_calibrate_read_csv("--from", c.from, &c.data)
                    : kvr_calibrate_measure(&t, all, n_fit + n_check, &c.data);
    if (!st && c.save) st = kvr_calibrate_write_csv(c.save, &c.data);
    for (size_t k = 0; k < n_fit && !st; k++) { /* a fit context without rows fits nothing */
        size_t i = 0;
        while (i < c.data.n && c.data.rows[i].ctx != fit_ctx[k]) i++;
        if (i == c.data.n)
            st = kvr_error(KVR_ERR_INPUT, "--fit-ctx: no measurement at %llu tokens%s%s",
                           (unsigned long long)fit_ctx[k], c.from ? " in " : "",
                           c.from ? c.from : "");
    }
    if (!st)
        st =
            kvr_calibrate_fit(&c.data, &h, fit_ctx, n_fit, c.points && !c.json ? stdout : NULL, &o);
    if (!st && c.out) st = kvr_calibrate_write_profile(c.out, c.from, c.fit_ctx, &c.data, &h, &o);
    if (!st) report(&c, &h, &o);
out:
    free(fit_ctx), free(check_ctx), kvr_calibrate_free(&c.data);
    return st;
}
