/* Parsing and printing of quantities with units, as users write them on the command line and
 * in profiles. Every parser rejects leading blanks, signs, trailing junk and overflow, and
 * leaves a message that quotes the text.
 *
 *   tokens     16k = 16384, 1.5k = 1536, 1M = 1048576      (k and M are powers of 1024)
 *   bytes      80GB = 80e9, 80GiB = 80 * 2^30, 512 = 512     (K/M/G/T/P: 1000, Ki/Mi/...: 1024)
 *   rates      10GB/s, 300GiB/s, 100Gb/s (bits), 25Gbps (bits), 10G (bytes per second)
 *   durations  5us, 2ms, 1.5s, 800ns (a unit is required)
 *   FLOP rates 312TFLOPS, 989.5TFLOP/s, 1.2P (powers of 1000)
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kvr_status.h"

/* A plain decimal integer in [0, max]. */
enum kvr_status kvr_parse_u64(const char *text, uint64_t max, uint64_t *out);

/* A plain decimal number (digits[.digits], no sign, exponent or unit) in [lo, hi]; what names
 * the quantity in the message. Used for shares and efficiencies. */
enum kvr_status kvr_parse_decimal(const char *what, const char *text, double lo, double hi,
                                  double *out);

/* A finite number as printf's %g writes it ("2.7e-05", "-3.5"), whole text, in [lo, hi]:
 * no blanks, no inf/nan, no hex, no trailing characters. For data files (CSV, TSV). */
enum kvr_status kvr_parse_real(const char *what, const char *text, double lo, double hi,
                               double *out);
/* A decimal integer with an optional '-' in [lo, hi], whole text. */
enum kvr_status kvr_parse_int(const char *what, const char *text, long long lo, long long hi,
                              long long *out);

/* A token count in [0, max]; the result must be a whole number of tokens. */
enum kvr_status kvr_parse_tokens(const char *text, uint64_t max, uint64_t *out);

enum kvr_status kvr_parse_bytes(const char *text, double *out_bytes);
enum kvr_status kvr_parse_rate_Bps(const char *text, double *out_Bps);
enum kvr_status kvr_parse_duration_s(const char *text, double *out_s);
enum kvr_status kvr_parse_flops_rate(const char *text, double *out_flops_per_s);

/* Printers write at most cap bytes (NUL included) and return buf. */
char *kvr_format_tokens(char *buf, size_t cap, uint64_t tokens);  /* "16k", "1500"  */
char *kvr_format_bytes(char *buf, size_t cap, double bytes);      /* "12.55 GiB"    */
char *kvr_format_rate_Bps(char *buf, size_t cap, double Bps);     /* "10 GB/s"      */
char *kvr_format_duration(char *buf, size_t cap, double seconds); /* "5 us", "2.3 ms" */
char *kvr_format_count(char *buf, size_t cap, double n);          /* "6.74 G"       */
