/* A minimal safetensors writer for the tests: they create their own weight files (F32 or
 * BF16, Hugging Face names) and load them back through the real loader. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st_writer {
    char *json, *data;
    size_t json_len, data_len;
    FILE *j, *d;
    int n;
};

static void st_begin(struct st_writer *w)
{
    memset(w, 0, sizeof *w);
    w->j = open_memstream(&w->json, &w->json_len);
    w->d = open_memstream(&w->data, &w->data_len);
    fputc('{', w->j);
}

/* A [rows][cols] tensor (cols == 0: a vector of rows) as F32 or BF16 (truncating). */
static void st_add(struct st_writer *w, const char *name, int bf16, uint64_t rows, uint64_t cols,
                   const float *v)
{
    uint64_t n = rows * (cols ? cols : 1), begin = (uint64_t)ftell(w->d);
    for (uint64_t i = 0; i < n; i++) {
        if (bf16) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            uint16_t h = (uint16_t)(u >> 16);
            fwrite(&h, 2, 1, w->d);
        } else {
            fwrite(&v[i], 4, 1, w->d);
        }
    }
    fflush(w->d);
    fprintf(w->j, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu", w->n++ ? "," : "", name,
            bf16 ? "BF16" : "F32", (unsigned long long)rows);
    if (cols) fprintf(w->j, ",%llu", (unsigned long long)cols);
    fprintf(w->j, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)begin,
            (unsigned long long)ftell(w->d));
}

/* Writes the file; the header is padded with spaces to a multiple of 8 bytes, as the format
 * recommends. */
static int st_finish(struct st_writer *w, const char *path)
{
    fputs(",\"__metadata__\":{\"format\":\"pt\"}}", w->j);
    fclose(w->j), fclose(w->d);
    uint64_t hlen = (w->json_len + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(w->json, 1, w->json_len, f);
    for (uint64_t i = w->json_len; i < hlen; i++) fputc(' ', f);
    fwrite(w->data, 1, w->data_len, f);
    free(w->json), free(w->data);
    return fclose(f);
}
