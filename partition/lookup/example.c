/* Example deployment program for the kvr_lookup library: prints the partition of each context
 * length in [from, to] (step), one JSON object per line, as `kvr lookup --json` would.
 *   kvr-lookup-example TABLE.csv MODEL MACHINE P FROM [TO [STEP]] [--clamp]
 * Exit codes: 0 ok, 2 bad input, missing table or ctx outside the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_lookup.h"

static int usage(void)
{
    fprintf(stderr, "usage: kvr-lookup-example TABLE.csv MODEL MACHINE P FROM [TO [STEP]] "
                    "[--clamp]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int clamp = argc > 1 && !strcmp(argv[argc - 1], "--clamp");
    argc -= clamp;
    if (argc < 6 || argc > 8) return usage();
    unsigned long long from = strtoull(argv[5], NULL, 10);
    unsigned long long to = argc > 6 ? strtoull(argv[6], NULL, 10) : from;
    unsigned long long step = argc > 7 ? strtoull(argv[7], NULL, 10) : 1;
    if (!from || to < from || !step) return usage();
    char err[1024];
    struct kvr_lookup *t;
    int rc = kvr_lookup_load_csv(argv[1], &t, err, sizeof err);
    if (rc) return fprintf(stderr, "kvr-lookup-example: %s\n", err), 2;
    struct kvr_lookup_query q = {
        .model = argv[2], .machine = argv[3], .p = atoi(argv[4]), .clamp = clamp};
    for (unsigned long long ctx = from; ctx <= to && !rc; ctx += step) {
        struct kvr_lookup_answer a;
        q.ctx_tokens = ctx;
        if ((rc = kvr_lookup_partition(t, &q, &a, err, sizeof err))) break;
        printf("{\"ctx_tokens\": %llu, \"method\": \"%s\", \"partition_tokens\": [", ctx,
               a.exact ? "exact" : "interpolated");
        for (int i = 0; i < a.p; i++)
            printf("%s%llu", i ? ", " : "", (unsigned long long)a.tokens[i]);
        printf("]}\n");
    }
    if (rc) fprintf(stderr, "kvr-lookup-example: %s\n", err);
    kvr_lookup_free(t);
    return rc ? 2 : 0;
}
