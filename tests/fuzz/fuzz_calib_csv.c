/* Fuzz target: the calibrate CSV and the timeline TSV line parsers over kvr_lines (the input
 * is read as both; the TSV's header line and its plan too), exactly as kvr calibrate --from and kvr
 * validate --timeline read them. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "kvr_file.h"
#include "kvr_readers.h"

const char *const kvr_fuzz_seeds[] = {
    "model,ctx,op,time_s,prefix\n# NVIDIA H100 80GB HBM3, CUDA driver 13.0\n"
    "llama-7b,1024,ttft,0.0218784637,0\nllama-7b,1024,attention,2.7e-05,0\n"
    "falcon-7b,8192,attention_layer,0.00123,4096\n",
    "rank\tlayer\tkind\twhat\tstart_s\tend_s\tbytes\tpeer\n0\t0\tcompute\tpre\t0\t1e-3\t0\t-1\n"
    "0\t0\tsend\tkv\t0.001\t0.002\t1048576\t1\n1\t0\twait\tkv\t0\t0.0021\t0\t0\n"
    "1\t-1\tcompute\tlogits\t0.5\t0.6\n",
    "rank\tlayer\tkind\twhat\tstart_s\tend_s\tbytes\tpeer\t# kvrun-plan source=executor "
    "scheme=kvr model=tiny model_hash=7e3c8563a5011f90 machine=full%20speed ranks=3 p=3 tp=1 "
    "ctx=60 partition=30,20,10 kv_forward=streamed\n0\t0\tcompute\tpre\t0\t1e-3\t0\t-1\n",
    NULL};

static void read_lines(const char *path)
{
    for (int pass = 0; pass < 2; pass++) {
        struct kvr_lines r;
        if (kvr_lines_open(&r, path, 1u << 20) != KVR_OK) continue;
        for (char *line; (line = kvr_lines_next(&r));) {
            struct kvr_calib_csv_row row;
            struct kvr_tsv_event ev;
            struct kvr_tsv_plan plan;
            enum kvr_status st;
            if (pass == 1 && r.line == 1 && kvr_timeline_tsv_header(line, &plan, &st)) {
                if (!st && plan.has_plan && (!plan.scheme[0] || !plan.partition[0] || plan.p < 1))
                    __builtin_trap(); /* the parser promised the plan's required keys */
                continue;
            }
            if (pass == 0 && kvr_calib_csv_parse(line, &row) == KVR_OK && !(row.time_s > 0))
                __builtin_trap(); /* the parser promised a positive time */
            if (pass == 1 && kvr_timeline_tsv_parse(line, 8, &ev) == KVR_OK &&
                (ev.end_s < ev.start_s || ev.rank < 0 || ev.rank >= 8))
                __builtin_trap();
        }
        kvr_lines_close(&r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return kvr_fuzz_file(data, size, "csv.txt", read_lines);
}
