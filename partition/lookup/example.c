/* Example deployment program for the kvr_lookup library: prints the partition of each context
 * length in [from, to] (step), one JSON object per line, as `kvr lookup --json` would; with the
 * layout ("tp", "mapping": the GPU of each rank stage * t + shard) when t > 1 or the chain does
 * not run on GPUs 0, 1, ... in order.
 *   kvr-lookup-example TABLE.csv MODEL MACHINE P FROM [TO [STEP]] [--clamp] [--tp T]
 * Exit codes: 0 ok, 2 bad input, missing table or ctx outside the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_lookup.h"

static int usage(void)
{
    fprintf(stderr, "usage: kvr-lookup-example TABLE.csv MODEL MACHINE P FROM [TO [STEP]] "
                    "[--clamp] [--tp T]\n");
    return 2;
}

/* A whole decimal number in [1, max] (no sign, no junk: "-1" would be 2^64 - 1, a loop that
 * never ends); 0 when it is not one. */
static unsigned long long number(const char *what, const char *s, unsigned long long max)
{
    char *end;
    unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
    if (!v || *end || v > max) {
        fprintf(stderr, "kvr-lookup-example: %s '%s' is not a number in 1..%llu\n", what, s, max);
        return 0;
    }
    return v;
}

/* The partition, and the layout when it is not t = 1 on GPUs 0, 1, ... */
static void print_answer(unsigned long long ctx, const struct kvr_lookup_answer *a)
{
    printf("{\"ctx_tokens\": %llu, \"method\": \"%s\", \"partition_tokens\": [", ctx,
           a->exact ? "exact" : "interpolated");
    for (int i = 0; i < a->n_chunks; i++)
        printf("%s%llu", i ? ", " : "", (unsigned long long)a->tokens[i]);
    printf("]");
    int identity = 1;
    for (int i = 0; i < a->p; i++) identity &= a->mapping[i] == i;
    if (a->tp_degree > 1 || !identity) {
        printf(", \"tp\": %d, \"mapping\": [", a->tp_degree);
        for (int i = 0; i < a->p; i++) printf("%s%d", i ? ", " : "", a->mapping[i]);
        printf("]");
    }
    printf("}\n");
}

int main(int argc, char **argv)
{
    int clamp = 0, n = 0;
    unsigned long long tp = 1;
    char *pos[9] = {argv[0]};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--clamp"))
            clamp = 1;
        else if (!strcmp(argv[i], "--tp") && i + 1 < argc) {
            if (!(tp = number("--tp", argv[++i], 64))) return 2;
        } else if (n < 8)
            pos[++n] = argv[i];
        else
            return usage();
    argc = n + 1, argv = pos;
    if (argc < 6 || argc > 8) return usage();
    const unsigned long long max_ctx = 1ull << 30; /* beyond any table's context */
    unsigned long long p = number("P", argv[4], 4096), from = number("FROM", argv[5], max_ctx);
    unsigned long long to = argc > 6 ? number("TO", argv[6], max_ctx) : from;
    unsigned long long step = argc > 7 ? number("STEP", argv[7], max_ctx) : 1;
    if (!p || !from || !to || !step) return 2;
    if (to < from) return usage();
    char err[1024];
    struct kvr_lookup *t;
    int rc = kvr_lookup_load_csv(argv[1], &t, err, sizeof err);
    if (rc) return fprintf(stderr, "kvr-lookup-example: %s\n", err), 2;
    struct kvr_lookup_query q = {
        .model = argv[2], .machine = argv[3], .p = (int)p, .clamp = clamp, .tp_degree = (int)tp};
    for (unsigned long long ctx = from; ctx <= to && !rc; ctx += step) {
        struct kvr_lookup_answer a;
        q.ctx_tokens = ctx;
        if ((rc = kvr_lookup_partition(t, &q, &a, err, sizeof err))) break;
        print_answer(ctx, &a);
    }
    if (rc) fprintf(stderr, "kvr-lookup-example: %s\n", err);
    kvr_lookup_free(t);
    return rc ? 2 : 0;
}
