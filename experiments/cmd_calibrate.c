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
#include "kvr_config.h"
#include "kvr_exec.h"
#include "kvr_json.h"
#include "kvr_measure.h"
#include "kvr_sim.h"
#include "kvr_units.h"

static const char help[] =
    "usage: kvr calibrate [--backend cuda] [--out data/machines/NAME.ini] [options]\n"
    "\n"
    "Times every operation of single-device prefills (kvr exec --profile) for each model and\n"
    "context, fits the simulator's GPU parameters (per op class: efficiency, half-tokens and\n"
    "memory efficiency; the launch overhead) on the --fit-ctx contexts by relative least\n"
    "squares (GSL), and reports the operation-level and TTFT errors on the fitted and the\n"
    "held-out (--check-ctx) contexts.\n"
    "\n"
    "  -b, --backend B     cuda (default) or ref\n"
    "      --models L      models to time                  (default llama-7b,falcon-7b)\n"
    "      --fit-ctx L     contexts the fit sees           (default 1k,4k,16k)\n"
    "      --check-ctx L   held-out contexts               (default 2k,8k,32k)\n"
    "      --base NAME     profile whose GPU and links start the fit (default h100-nvlink)\n"
    "      --from CSV      fit on these measurements instead of timing (model,ctx,op,time_s)\n"
    "      --save CSV      write the measurements (what --from reads)\n"
    "      --db FILE       also store each TTFT as a measurement row (for kvr validate)\n"
    "      --allow-dirty   store them although this kvr was built from uncommitted changes\n"
    "  -o, --out FILE      write the calibrated profile (INI, with provenance)\n"
    "      --name NAME     the profile's name            (default: the base's + \"-calibrated\")\n"
    "      --attn-shapes L also time the attention kernel alone at QUERIES:PREFIX shapes\n"
    "                      (default 1k:0,1k:8k,2k:4k,4k:12k,8k:8k; \"\" for none)\n"
    "      --link-lat T, --link-bw RATE   the links' alpha and beta, as `mpirun -np 2 kvr bench\n"
    "                      comm` fits them (default: the base's intra-node links)\n"
    "      --overlap-bw RATE  the most an asynchronous transfer gets beside compute, as kvr\n"
    "                      validate --timeline measures it (default: no cap)\n"
    "      --points        also print every measured point with its prediction and error\n"
    "  -j, --json          print JSON\n";

struct calib {
    const char *backend, *models, *fit_ctx, *check_ctx, *base, *from, *save, *db, *out, *name;
    const char *link_lat, *link_bw, *overlap_bw, *attn_shapes;
    bool json, help, points, allow_dirty;
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

static enum kvr_status parse(int argc, char **argv, struct calib *c)
{
    enum {
        O_MODELS = 300,
        O_FIT,
        O_CHECK,
        O_BASE,
        O_FROM,
        O_SAVE,
        O_DB,
        O_NAME,
        O_LAT,
        O_BW,
        O_OVERLAP,
        O_ATTN,
        O_DIRTY
    };
    static const struct option opts[] = {{"backend", required_argument, 0, 'b'},
                                         {"models", required_argument, 0, O_MODELS},
                                         {"fit-ctx", required_argument, 0, O_FIT},
                                         {"check-ctx", required_argument, 0, O_CHECK},
                                         {"base", required_argument, 0, O_BASE},
                                         {"from", required_argument, 0, O_FROM},
                                         {"save", required_argument, 0, O_SAVE},
                                         {"db", required_argument, 0, O_DB},
                                         {"out", required_argument, 0, 'o'},
                                         {"name", required_argument, 0, O_NAME},
                                         {"link-lat", required_argument, 0, O_LAT},
                                         {"link-bw", required_argument, 0, O_BW},
                                         {"overlap-bw", required_argument, 0, O_OVERLAP},
                                         {"attn-shapes", required_argument, 0, O_ATTN},
                                         {"json", no_argument, 0, 'j'},
                                         {"points", no_argument, 0, 'P'},
                                         {"allow-dirty", no_argument, 0, O_DIRTY},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *c = (struct calib){.backend = "cuda",
                        .models = "llama-7b,falcon-7b",
                        .fit_ctx = "1k,4k,16k",
                        .check_ctx = "2k,8k,32k",
                        .base = "h100-nvlink",
                        .attn_shapes = "1k:0,1k:8k,2k:4k,4k:12k,8k:8k"};
    kvr_cli_opt_reset();
    for (int o; (o = kvr_cli_getopt(argc, argv, "b:o:jh", opts)) != -1;) {
        const char **slot[] = {[O_MODELS - 300] = &c->models,
                               [O_FIT - 300] = &c->fit_ctx,
                               [O_CHECK - 300] = &c->check_ctx,
                               [O_BASE - 300] = &c->base,
                               [O_FROM - 300] = &c->from,
                               [O_SAVE - 300] = &c->save,
                               [O_DB - 300] = &c->db,
                               [O_NAME - 300] = &c->name,
                               [O_LAT - 300] = &c->link_lat,
                               [O_BW - 300] = &c->link_bw,
                               [O_OVERLAP - 300] = &c->overlap_bw,
                               [O_ATTN - 300] = &c->attn_shapes};
        if (o == '?') return KVR_ERR_USAGE;
        if (o == 'h')
            c->help = true;
        else if (o == 'j')
            c->json = true;
        else if (o == 'P')
            c->points = true;
        else if (o == O_DIRTY)
            c->allow_dirty = true;
        else if (o == 'o')
            c->out = optarg;
        else if (o == 'b')
            c->backend = optarg;
        else if (o >= 300 && o <= O_ATTN)
            *slot[o - 300] = optarg;
    }
    if (kvr_backend_from_name(c->backend) < 0)
        return kvr_error(KVR_ERR_USAGE, "--backend: '%s' is not cuda or ref", c->backend);
    if (optind < argc) return kvr_error(KVR_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
    return c->db && !c->help ? kvr_measure_check_clean(c->allow_dirty) : KVR_OK;
}

enum kvr_status kvr_cmd_calibrate(int argc, char **argv)
{
    struct calib c;
    enum kvr_status st = parse(argc, argv, &c);
    if (st || c.help) return st ? st : (fputs(help, stdout), KVR_OK);
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
    memcpy(all, fit_ctx, n_fit * sizeof *all),
        memcpy(all + n_fit, check_ctx, n_check * sizeof *all);
    h.n_gpus = 1;
    if (c.link_lat && (st = kvr_parse_duration_s(c.link_lat, &h.intra_lat_s)))
        st = kvr_error_prefix(st, "--link-lat: ");
    if (!st && c.link_bw && (st = kvr_parse_rate_Bps(c.link_bw, &h.intra_Bps)))
        st = kvr_error_prefix(st, "--link-bw: ");
    if (!st && c.overlap_bw && (st = kvr_parse_rate_Bps(c.overlap_bw, &h.overlap_Bps)))
        st = kvr_error_prefix(st, "--overlap-bw: ");
    if (st) goto out;
    snprintf(h.name + strlen(h.name), sizeof h.name - strlen(h.name), "-calibrated");
    if (c.name) snprintf(h.name, sizeof h.name, "%s", c.name);
    struct kvr_calibrate_timing t = {c.backend, c.models, c.attn_shapes, c.db, c.json};
    st = kvr_calibrate_alloc(&c.data);
    if (!st)
        st = c.from ? kvr_calibrate_read_csv(c.from, &c.data)
                    : kvr_calibrate_measure(&t, all, n_fit + n_check, &c.data);
    if (!st && c.save) st = kvr_calibrate_write_csv(c.save, &c.data);
    if (!st)
        st =
            kvr_calibrate_fit(&c.data, &h, fit_ctx, n_fit, c.points && !c.json ? stdout : NULL, &o);
    if (!st && c.out) st = kvr_calibrate_write_profile(c.out, c.from, c.fit_ctx, &c.data, &h, &o);
    if (!st) report(&c, &h, &o);
out:
    free(fit_ctx), free(check_ctx), kvr_calibrate_free(&c.data);
    return st;
}
