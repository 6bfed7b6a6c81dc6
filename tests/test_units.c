/* Unit parsing and printing: the accepted forms, and every rejected one. */
#include "kvr_units.h"
#include "tap.h"

static void tokens_ok(const char *text, uint64_t want)
{
    uint64_t v = 0;
    enum kvr_status st = kvr_parse_tokens(text, UINT64_MAX, &v);
    ok(st == KVR_OK && v == want, "tokens '%s' = %llu (got %llu, %s)", text,
       (unsigned long long)want, (unsigned long long)v, kvr_error_message());
}

static void tokens_bad(const char *text, uint64_t max, const char *needle)
{
    uint64_t v;
    enum kvr_status st = kvr_parse_tokens(text, max, &v);
    ok(st == KVR_ERR_INPUT, "tokens '%s' rejected", text);
    like(kvr_error_message(), needle, "  message names the problem");
    like(kvr_error_message(), text, "  message quotes the text");
}

static void dbl_ok(enum kvr_status (*parse)(const char *, double *), const char *text, double want)
{
    double v = -1;
    enum kvr_status st = parse(text, &v);
    ok(st == KVR_OK, "'%s' parses (%s)", text, st ? kvr_error_message() : "ok");
    is_dbl(v, want, 1e-15, "  '%s' = %g", text, want);
}

static void dbl_bad(enum kvr_status (*parse)(const char *, double *), const char *text,
                    const char *needle)
{
    double v;
    ok(parse(text, &v) == KVR_ERR_INPUT, "'%s' rejected", text);
    like(kvr_error_message(), needle, "  message for '%s'", text);
}

static void test_tokens(void)
{
    tokens_ok("0", 0);
    tokens_ok("1000", 1000);
    tokens_ok("16k", 16384);
    tokens_ok("1K", 1024);
    tokens_ok("1.5k", 1536);
    tokens_ok("1M", 1048576);
    tokens_bad("16q", UINT64_MAX, "unknown suffix");
    tokens_bad("16kb", UINT64_MAX, "unknown suffix");
    tokens_bad("16k ", UINT64_MAX, "unknown suffix");
    tokens_bad("", UINT64_MAX, "not a number");
    tokens_bad(" 5", UINT64_MAX, "not a number");
    tokens_bad("-5", UINT64_MAX, "negative");
    tokens_bad("0x10", UINT64_MAX, "unknown suffix");
    tokens_bad("1.3k", UINT64_MAX, "whole number");
    tokens_bad("4097k", 4194304, "out of range");
    tokens_bad("99999999999999999999999", UINT64_MAX, "out of range");
}

static void test_u64(void)
{
    uint64_t v;
    ok(kvr_parse_u64("18446744073709551615", UINT64_MAX, &v) == KVR_OK && v == UINT64_MAX,
       "u64 max parses");
    ok(kvr_parse_u64("18446744073709551616", UINT64_MAX, &v) == KVR_ERR_INPUT, "u64 overflow");
    like(kvr_error_message(), "out of range", "  overflow message");
    ok(kvr_parse_u64("4294967296", UINT32_MAX, &v) == KVR_ERR_INPUT, "u32 range enforced");
    ok(kvr_parse_u64("12abc", UINT64_MAX, &v) == KVR_ERR_INPUT, "trailing junk rejected");
    like(kvr_error_message(), "trailing", "  trailing junk message");
    ok(kvr_parse_u64("1.5", UINT64_MAX, &v) == KVR_ERR_INPUT, "fraction rejected");
}

static void test_bytes_rates(void)
{
    dbl_ok(kvr_parse_bytes, "512", 512);
    dbl_ok(kvr_parse_bytes, "80GB", 80e9);
    dbl_ok(kvr_parse_bytes, "80GiB", 80.0 * 1073741824.0);
    dbl_ok(kvr_parse_bytes, "1.5KiB", 1536);
    dbl_ok(kvr_parse_bytes, "2TB", 2e12);
    dbl_bad(kvr_parse_bytes, "80GX", "unknown unit 'GX'");
    dbl_bad(kvr_parse_bytes, "80 GB", "unknown unit");
    dbl_ok(kvr_parse_rate_Bps, "10GB/s", 10e9);
    dbl_ok(kvr_parse_rate_Bps, "300GiB/s", 300.0 * 1073741824.0);
    dbl_ok(kvr_parse_rate_Bps, "100Gb/s", 12.5e9);
    dbl_ok(kvr_parse_rate_Bps, "25Gbps", 3.125e9);
    dbl_ok(kvr_parse_rate_Bps, "10G", 10e9);
    dbl_bad(kvr_parse_rate_Bps, "10GB/h", "unknown unit");
    dbl_bad(kvr_parse_rate_Bps, "100", "has no unit");         /* not 100 B/s */
    dbl_bad(kvr_parse_rate_Bps, "1.5e3", "unknown unit 'e3'"); /* no exponents */
    dbl_ok(kvr_parse_rate_Bps, "100B/s", 100);
    dbl_bad(kvr_parse_rate_Bps, "-1GB/s", "negative");
    dbl_bad(kvr_parse_rate_Bps,
            "1"
            "000000000000000000000000000000000000000000000000000000000"
            "0000000000000000000000000000000000000000000000000000000000"
            "0000000000000000000000000000000000000000000000000000000000"
            "0000000000000000000000000000000000000000000000000000000000"
            "0000000000000000000000000000000000000000000000000000000000"
            "00000000000000000000000000000000000000000000000000000PB/s",
            "out of range");
}

static void test_durations_flops(void)
{
    dbl_ok(kvr_parse_duration_s, "5us", 5e-6);
    dbl_ok(kvr_parse_duration_s, "2ms", 2e-3);
    dbl_ok(kvr_parse_duration_s, "800ns", 800e-9);
    dbl_ok(kvr_parse_duration_s, "1.5s", 1.5);
    dbl_bad(kvr_parse_duration_s, "5", "unknown unit ''");
    dbl_bad(kvr_parse_duration_s, "5min", "unknown unit");
    dbl_ok(kvr_parse_flops_rate, "312TFLOPS", 312e12);
    dbl_ok(kvr_parse_flops_rate, "989.5TFLOP/s", 989.5e12);
    dbl_ok(kvr_parse_flops_rate, "1.2P", 1.2e15);
    dbl_bad(kvr_parse_flops_rate, "312TB", "unknown unit");
    dbl_bad(kvr_parse_flops_rate, "312", "has no unit"); /* not 312 FLOP/s */
}

static void test_printing(void)
{
    char b[32];
    ok(!strcmp(kvr_format_tokens(b, sizeof b, 16384), "16k"), "16384 prints as 16k");
    ok(!strcmp(kvr_format_tokens(b, sizeof b, 1500), "1500"), "1500 prints as 1500");
    ok(!strcmp(kvr_format_bytes(b, sizeof b, 80.0 * 1073741824.0), "80 GiB"), "80 GiB: %s", b);
    ok(!strcmp(kvr_format_rate_Bps(b, sizeof b, 10e9), "10 GB/s"), "10 GB/s: %s", b);
    ok(!strcmp(kvr_format_duration(b, sizeof b, 5e-6), "5 us"), "5 us: %s", b);
    ok(!strcmp(kvr_format_duration(b, sizeof b, 0.0023), "2.3 ms"), "2.3 ms: %s", b);
    ok(!strcmp(kvr_format_count(b, sizeof b, 6738415616.0), "6.738 G"), "6.738 G: %s", b);
    /* printing then parsing gives the value back */
    uint64_t v;
    ok(kvr_parse_tokens(kvr_format_tokens(b, sizeof b, 12288), UINT64_MAX, &v) == KVR_OK &&
           v == 12288,
       "tokens round-trip");
}

int main(void)
{
    test_tokens();
    test_u64();
    test_bytes_rates();
    test_durations_flops();
    test_printing();
    return tap_done();
}
