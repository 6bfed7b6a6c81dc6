/* The kvr_lookup library on layouts (t > 1: p / t chunks, one per stage) and mapped rows (chunk
 * i on GPU mapping[i]), from format 2 CSV and from rows: exact, interpolated (the lower
 * neighbour's GPUs), clamped (the end row's), a query of the wrong t (not found, naming the t
 * the table has), and rows that are refused with their file:line (a mapping that is not p
 * distinct GPUs, a t that does not divide p, a partition of other than p / t chunks). The
 * expected partitions are worked by hand from the rounding rule in kvr_lookup.h (g = 64). */
#include <math.h>
#include <string.h>

#include "kvr_lookup.h"
#include "tap.h"

#define HEAD KVR_LOOKUP_CSV2_HEADER "\r\n"
#define H    "0123456789abcdef,"
#define ROW  "2,m," H "h," H

/* p = 4, t = 2 (two chunks) on three contexts, GPUs changing with the context; and p = 2,
 * t = 1 on GPUs 7, 6 then 5, 4 of a bigger machine; and p = 4, t = 1 at one context. */
static const char layouts[] =
    HEAD ROW "4,2,kvr,hier,mean,1,64,1024,0.1,576;448,0;1;2;3\r\n" ROW
             "4,2,kvr,hier,mean,1,64,2048,0.2,1088;960,2;3;0;1\r\n" ROW
             "4,2,kvr,hier,mean,1,64,3072,0.4,1600;1472,1;0;3;2\r\n" ROW
             "2,1,kvr,hier,mean,1,64,1024,0.1,576;448,7;6\r\n" ROW
             "2,1,kvr,hier,mean,1,64,2048,0.3,1088;960,5;4\r\n" ROW
             "4,1,kvr,hier,mean,1,64,2048,0.5,512;512;512;512,0;1;2;3\r\n";

static struct kvr_lookup *load(const char *text, char *err, size_t cap, int *rc)
{
    tap_write("t.csv", text);
    struct kvr_lookup *t = NULL;
    *rc = kvr_lookup_load_csv(tap_path("t.csv"), &t, err, cap);
    return t;
}

/* Looks up ctx at (p, t) and checks the answer's partition, GPUs and how it was found. */
static void expect(const struct kvr_lookup *t, int p, int tp, uint64_t ctx, int clamp,
                   const uint64_t *tokens, const int *gpus, int exact, int clamped,
                   const char *what)
{
    struct kvr_lookup_query q = {
        .model = "m", .machine = "h", .p = p, .ctx_tokens = ctx, .clamp = clamp, .tp_degree = tp};
    struct kvr_lookup_answer a;
    char err[512] = "";
    int rc = kvr_lookup_partition(t, &q, &a, err, sizeof err);
    int want_t = tp > 1 ? tp : 1, n = p / want_t, same = !rc;
    for (int i = 0; same && i < n; i++) same = a.tokens[i] == tokens[i];
    for (int i = 0; same && i < p; i++) same = a.mapping[i] == gpus[i];
    ok(same && a.p == p && a.tp_degree == want_t && a.n_chunks == n && a.exact == exact &&
           a.clamped == clamped &&
           (clamped ? isnan(a.predicted_ttft_s) : isfinite(a.predicted_ttft_s)),
       "%s (p = %d, t = %d, ctx %llu): %s", what, p, want_t, (unsigned long long)ctx,
       rc ? err : "");
}

static void test_serves(void)
{
    char err[512];
    int rc;
    struct kvr_lookup *t = load(layouts, err, sizeof err, &rc);
    ok(!rc && kvr_lookup_n_rows(t) == 6, "a table of layouts and mapped rows loads: %s",
       rc ? err : "");
    if (rc) return;
    expect(t, 4, 2, 2048, 0, (uint64_t[]){1088, 960}, (int[]){2, 3, 0, 1}, 1, 0,
           "layout, exact: the row's two chunks and GPUs");
    expect(t, 4, 2, 1536, 0, (uint64_t[]){832, 704}, (int[]){0, 1, 2, 3}, 0, 0,
           "layout, interpolated: fractions per stage chunk, the lower row's GPUs");
    expect(t, 4, 2, 2560, 0, (uint64_t[]){1344, 1216}, (int[]){2, 3, 0, 1}, 0, 0,
           "layout, interpolated between rows of other GPUs: the lower row's (2;3;0;1)");
    expect(t, 4, 2, 4096, 1, (uint64_t[]){2112, 1984}, (int[]){1, 0, 3, 2}, 0, 1,
           "layout, clamped above: the last row's fractions and GPUs");
    expect(t, 4, 2, 512, 1, (uint64_t[]){320, 192}, (int[]){0, 1, 2, 3}, 0, 1,
           "layout, clamped below: the first row's (4.5 grains round up)");
    expect(t, 4, 2, 3, 1, (uint64_t[]){2, 1}, (int[]){0, 1, 2, 3}, 0, 1,
           "layout, ctx 3 < p but >= its 2 chunks (grain 1)");
    expect(t, 2, 1, 1536, 0, (uint64_t[]){832, 704}, (int[]){7, 6}, 0, 0,
           "mapped, interpolated: GPUs 7, 6 of the lower row");
    expect(t, 2, 0, 2048, 0, (uint64_t[]){1088, 960}, (int[]){5, 4}, 1, 0,
           "mapped, exact (tp_degree 0 reads as 1): GPUs 5, 4");
    expect(t, 2, 1, 3072, 1, (uint64_t[]){1664, 1408}, (int[]){5, 4}, 0, 1,
           "mapped, clamped: the end row's GPUs");
    expect(t, 4, 1, 2048, 0, (uint64_t[]){512, 512, 512, 512}, (int[]){0, 1, 2, 3}, 1, 0,
           "the t = 1 rows of the layout's key are another key");
    struct kvr_lookup_query q = {.model = "m", .machine = "h", .p = 4, .ctx_tokens = 1024};
    struct kvr_lookup_answer a;
    ok(kvr_lookup_partition(t, &q, &a, err, sizeof err) == KVR_LOOKUP_OUT_OF_RANGE,
       "t = 1 at 1024 is outside its rows (2048): the t = 2 row at 1024 is not used");
    q.ctx_tokens = 2048, q.tp_degree = 4;
    ok(kvr_lookup_partition(t, &q, &a, err, sizeof err) == KVR_LOOKUP_NOT_FOUND,
       "a query of t = 4 is not found");
    like(err, "p = 4 of tp_degree 4 (the table has this key's rows of tp_degree 1, 2 only",
         "  naming the t the table has");
    q.tp_degree = 3;
    ok(kvr_lookup_partition(t, &q, &a, err, sizeof err) == KVR_LOOKUP_BAD_INPUT,
       "a query of t = 3 at p = 4 is refused");
    like(err, "tp_degree 3 does not divide p = 4", "  saying why");
    kvr_lookup_free(t);
}

/* A table of these rows; the refusal must name t.csv:2 (a duplicate: t.csv). */
static void refused(const char *row, const char *why, const char *what)
{
    char text[1024], err[512] = "";
    snprintf(text, sizeof text, "%s%s\r\n", HEAD, row);
    int rc;
    struct kvr_lookup *t = load(text, err, sizeof err, &rc);
    ok(rc == KVR_LOOKUP_BAD_INPUT && !t, "refused: %s", what);
    like(err, strstr(why, "two rows") ? "t.csv: " : "t.csv:2: ", "  at its file:line");
    like(err, why, "  saying why");
    kvr_lookup_free(t);
}

static void test_refused(void)
{
    refused(ROW "4,1,kvr,hier,mean,1,64,1024,0.1,256;256;256;256,0;0;1;2",
            "the mapping is not 4 distinct GPUs (GPU 0 at 0 and 1)", "a GPU twice");
    refused(ROW "4,1,kvr,hier,mean,1,64,1024,0.1,256;256;256;256,0;1;2",
            "mapping '0;1;2' is not 4 GPUs", "a mapping of 3 GPUs at p = 4");
    refused(ROW "4,1,kvr,hier,mean,1,64,1024,0.1,256;256;256;256,0;1;2;-3",
            "mapping '0;1;2;-3' is not 4 GPUs", "a negative GPU");
    refused(ROW "4,1,kvr,hier,mean,1,64,1024,0.1,256;256;256;256,0;1;2;4294967296",
            "is out of range", "a GPU beyond int");
    refused(ROW "4,3,kvr,hier,mean,1,64,1024,0.1,512;512,0;1;2;3",
            "tp_degree '3' does not divide p = 4", "t = 3 at p = 4");
    refused(ROW "4,0,kvr,hier,mean,1,64,1024,0.1,256;256;256;256,0;1;2;3",
            "tp_degree '0' does not divide p = 4", "t = 0 in a CSV");
    refused(ROW "4,2,kvr,hier,mean,1,64,1024,0.1,256;256;256;256,0;1;2;3",
            "is not 2 tokens joined by ';'", "p chunks where t = 2 has p / t");
    refused(ROW "4,1,kvr,hier,mean,1,64,1024,0.1,256;256;256;256,0;1;2;3\r\n" ROW
                "4,1,kvr,hier,mean,1,64,1024,0.2,512;256;128;128,0;1;2;3",
            "two rows for model m, machine h, scheme kvr, method hier, p = 4, tp_degree 1",
            "two rows of one key, t and ctx");
}

/* kvr_lookup_from_rows (a c-header's rows): copies the mappings, checks them as the CSV does. */
static void test_rows(void)
{
    uint64_t tok[] = {576, 448};
    int map[] = {3, 1, 0, 2};
    struct kvr_lookup_row r = {.model = "m",
                               .machine = "h",
                               .scheme = "kvr",
                               .method = "hier",
                               .p = 4,
                               .granularity_tokens = 64,
                               .ctx_tokens = 1024,
                               .predicted_ttft_s = 0.1,
                               .partition_tokens = tok,
                               .tp_degree = 2,
                               .mapping = map};
    struct kvr_lookup *t = NULL;
    char err[512];
    ok(kvr_lookup_from_rows(&r, 1, &t, err, sizeof err) == KVR_LOOKUP_OK, "a layout row loads");
    map[0] = 9; /* the table holds its own copy */
    expect(t, 4, 2, 1024, 0, tok, (int[]){3, 1, 0, 2}, 1, 0, "  and serves its copy of the GPUs");
    kvr_lookup_free(t);
    t = NULL;
    map[0] = 1;
    ok(kvr_lookup_from_rows(&r, 1, &t, err, sizeof err) == KVR_LOOKUP_BAD_INPUT && !t,
       "a row mapping GPU 1 twice is refused");
    like(err, "row 0: the mapping is not 4 distinct GPUs", "  naming the row");
    map[0] = 3, r.tp_degree = 3;
    ok(kvr_lookup_from_rows(&r, 1, &t, err, sizeof err) == KVR_LOOKUP_BAD_INPUT && !t,
       "a row of t = 3 at p = 4 is refused");
    like(err, "row 0: tp_degree 3 does not divide p = 4", "  naming the row");
    r.tp_degree = -2;
    ok(kvr_lookup_from_rows(&r, 1, &t, err, sizeof err) == KVR_LOOKUP_BAD_INPUT && !t,
       "a row of t = -2 is refused");
}

int main(void)
{
    tap_mkdtemp("lookup_layouts");
    test_serves();
    test_refused();
    test_rows();
    tap_rmdir(tap_dir);
    return tap_done();
}
