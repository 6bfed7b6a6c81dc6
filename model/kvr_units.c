#include "kvr_units.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest integer a double holds exactly; fractional mantissas must stay below it. */
#define EXACT_DOUBLE_MAX 9007199254740992.0

struct mantissa {
    double value;
    int has_point; /* "1.5" rather than "15" */
    const char *end;
};

/* Scans digits[.digits] at the start of text; nothing else is a number here (no sign, no
 * blanks, no exponent, no hex), so "0x10", " 5" and "-3" are all rejected. */
static enum kvr_status scan_mantissa(const char *what, const char *text, struct mantissa *m)
{
    const char *p = text;
    size_t n_digits = 0;
    while (*p >= '0' && *p <= '9') p++, n_digits++;
    m->has_point = (*p == '.');
    if (m->has_point) {
        p++;
        while (*p >= '0' && *p <= '9') p++, n_digits++;
    }
    if (n_digits == 0) {
        if (*text == '-') return kvr_error(KVR_ERR_INPUT, "%s '%s' is negative", what, text);
        return kvr_error(KVR_ERR_INPUT, "%s '%s' is not a number", what, text);
    }
    errno = 0;
    m->value = strtod(text, NULL);
    if (errno == ERANGE || !isfinite(m->value))
        return kvr_error(KVR_ERR_INPUT, "%s '%s' is out of range", what, text);
    m->end = p;
    return KVR_OK;
}

enum kvr_status kvr_parse_u64(const char *text, uint64_t max, uint64_t *out)
{
    struct mantissa m;
    enum kvr_status st = scan_mantissa("integer", text, &m);
    if (st) return st;
    if (m.has_point || *m.end)
        return kvr_error(KVR_ERR_INPUT, "integer '%s' has trailing characters '%s'", text,
                         m.has_point ? strchr(text, '.') : m.end);
    errno = 0;
    unsigned long long v = strtoull(text, NULL, 10);
    if (errno == ERANGE || v > max)
        return kvr_error(KVR_ERR_INPUT, "integer '%s' is out of range [0, %llu]", text,
                         (unsigned long long)max);
    *out = (uint64_t)v;
    return KVR_OK;
}

enum kvr_status kvr_parse_decimal(const char *what, const char *text, double lo, double hi,
                                  double *out)
{
    struct mantissa m;
    enum kvr_status st = scan_mantissa(what, text, &m);
    if (st) return st;
    if (*m.end)
        return kvr_error(KVR_ERR_INPUT, "%s '%s' has trailing characters '%s'", what, text, m.end);
    if (m.value < lo || m.value > hi)
        return kvr_error(KVR_ERR_INPUT, "%s '%s' is outside [%g, %g]", what, text, lo, hi);
    *out = m.value;
    return KVR_OK;
}

enum kvr_status kvr_parse_real(const char *what, const char *text, double lo, double hi,
                               double *out)
{
    const char *p = text + (*text == '-' || *text == '+');
    bool digit = (*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9');
    if (!digit || strspn(p, "0123456789.eE+-") != strlen(p))
        return kvr_error(KVR_ERR_INPUT, "%s '%s' is not a number", what, text);
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*end)
        return kvr_error(KVR_ERR_INPUT, "%s '%s' has trailing characters '%s'", what, text, end);
    if (errno == ERANGE || !isfinite(v) || v < lo || v > hi)
        return kvr_error(KVR_ERR_INPUT, "%s '%s' is outside [%g, %g]", what, text, lo, hi);
    *out = v;
    return KVR_OK;
}

enum kvr_status kvr_parse_int(const char *what, const char *text, long long lo, long long hi,
                              long long *out)
{
    const char *p = text + (*text == '-');
    if (!*p || strspn(p, "0123456789") != strlen(p))
        return kvr_error(KVR_ERR_INPUT, "%s '%s' is not an integer", what, text);
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE || v < lo || v > hi)
        return kvr_error(KVR_ERR_INPUT, "%s '%s' is outside [%lld, %lld]", what, text, lo, hi);
    *out = v;
    return KVR_OK;
}

struct suffix {
    const char *text;
    double scale;
};

/* Returns the scale of the longest suffix in the table that matches the start of s. */
static const struct suffix *match_prefix(const struct suffix *table, const char *s)
{
    const struct suffix *best = NULL;
    for (const struct suffix *t = table; t->text; t++) {
        size_t n = strlen(t->text);
        if (strncmp(s, t->text, n) == 0 && (!best || n > strlen(best->text))) best = t;
    }
    return best;
}

/* Whether the digits after the point of text, times scale (a power of two up to 2^20), make a
 * whole number, in exact arithmetic: a double would round "1.00000000000000000001k" to 1024. A
 * fraction of 2^-20 has at most 20 decimals, so one with more (trailing zeros aside) never does. */
static bool fraction_whole(const char *text, uint64_t scale)
{
    const char *f = strchr(text, '.');
    if (!f) return true;
    size_t n = strspn(++f, "0123456789");
    while (n && f[n - 1] == '0') n--;
    if (n > 20) return false;
    __extension__ typedef unsigned __int128 u128; /* 10^20 * 2^20 needs 87 bits */
    u128 v = 0, ten_n = 1;
    for (size_t i = 0; i < n; i++) v = v * 10 + (unsigned)(f[i] - '0'), ten_n *= 10;
    return v * scale % ten_n == 0;
}

static const struct suffix token_suffixes[] = {
    {"", 1}, {"k", 1024}, {"K", 1024}, {"M", 1048576}, {NULL, 0}};

enum kvr_status kvr_parse_tokens(const char *text, uint64_t max, uint64_t *out)
{
    struct mantissa m;
    enum kvr_status st = scan_mantissa("token count", text, &m);
    if (st) return st;
    const struct suffix *sfx = match_prefix(token_suffixes, m.end);
    if (m.end[strlen(sfx->text)] != '\0')
        return kvr_error(KVR_ERR_INPUT,
                         "token count '%s' has unknown suffix '%s' (use k = 1024 or M = 1024k)",
                         text, m.end);
    double v = m.value * sfx->scale;
    if (v > (double)max || v > EXACT_DOUBLE_MAX)
        return kvr_error(KVR_ERR_INPUT, "token count '%s' is out of range [0, %llu]", text,
                         (unsigned long long)max);
    if (v != floor(v) || !fraction_whole(text, (uint64_t)sfx->scale))
        return kvr_error(KVR_ERR_INPUT, "token count '%s' is not a whole number of tokens", text);
    *out = (uint64_t)v;
    return KVR_OK;
}

static const struct suffix byte_multipliers[] = {
    {"", 1},        {"K", 1e3},     {"k", 1e3},     {"M", 1e6},     {"G", 1e9},
    {"T", 1e12},    {"P", 1e15},    {"Ki", 1024.0}, {"Mi", 0x1p20}, {"Gi", 0x1p30},
    {"Ti", 0x1p40}, {"Pi", 0x1p50}, {NULL, 0}};

/* Parses number, multiplier, then one of the allowed tails (each with a scale factor). A rate
 * (bare_ok false) refuses a number with nothing after it, which a reader would take for GB/s
 * or TFLOPS and the tails for bytes or FLOP per second. */
static enum kvr_status parse_scaled(const char *what, const char *text,
                                    const struct suffix *multipliers, const struct suffix *tails,
                                    bool bare_ok, const char *hint, double *out)
{
    struct mantissa m;
    enum kvr_status st = scan_mantissa(what, text, &m);
    if (st) return st;
    if (!bare_ok && !*m.end)
        return kvr_error(KVR_ERR_INPUT, "%s '%s' has no unit (%s)", what, text, hint);
    for (const struct suffix *mul = multipliers; mul->text; mul++) {
        size_t n = strlen(mul->text);
        if (strncmp(m.end, mul->text, n) != 0) continue;
        for (const struct suffix *tail = tails; tail->text; tail++) {
            if (strcmp(m.end + n, tail->text) != 0) continue;
            double v = m.value * mul->scale * tail->scale;
            if (!isfinite(v) || v > 1e300)
                return kvr_error(KVR_ERR_INPUT, "%s '%s' is out of range", what, text);
            *out = v;
            return KVR_OK;
        }
    }
    return kvr_error(KVR_ERR_INPUT, "%s '%s' has unknown unit '%s' (%s)", what, text, m.end, hint);
}

enum kvr_status kvr_parse_bytes(const char *text, double *out_bytes)
{
    static const struct suffix tails[] = {{"", 1}, {"B", 1}, {NULL, 0}};
    return parse_scaled("byte size", text, byte_multipliers, tails, true,
                        "use B, KB/MB/GB/TB = 1000^n or KiB/MiB/GiB/TiB = 1024^n", out_bytes);
}

enum kvr_status kvr_parse_rate_Bps(const char *text, double *out_Bps)
{
    static const struct suffix tails[] = {{"", 1},        {"B/s", 1},     {"Bps", 1},
                                          {"b/s", 0.125}, {"bps", 0.125}, {NULL, 0}};
    return parse_scaled("rate", text, byte_multipliers, tails, false,
                        "use e.g. 10GB/s, 300GiB/s, 100Gb/s for bits, or B/s", out_Bps);
}

enum kvr_status kvr_parse_duration_s(const char *text, double *out_s)
{
    static const struct suffix none[] = {{"", 1}, {NULL, 0}};
    static const struct suffix units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6},
                                          {"ms", 1e-3}, {"s", 1},     {NULL, 0}};
    return parse_scaled("duration", text, none, units, true, "use ns, us, ms or s", out_s);
}

enum kvr_status kvr_parse_flops_rate(const char *text, double *out)
{
    static const struct suffix mult[] = {{"", 1},     {"K", 1e3},  {"M", 1e6}, {"G", 1e9},
                                         {"T", 1e12}, {"P", 1e15}, {NULL, 0}};
    static const struct suffix tails[] = {{"", 1}, {"FLOPS", 1}, {"FLOP/s", 1}, {NULL, 0}};
    return parse_scaled("FLOP rate", text, mult, tails, false, "use e.g. 312TFLOPS or 989.5TFLOP/s",
                        out);
}

char *kvr_format_tokens(char *buf, size_t cap, uint64_t tokens)
{
    if (tokens >= 1024 && tokens % 1024 == 0)
        snprintf(buf, cap, "%lluk", (unsigned long long)(tokens / 1024));
    else
        snprintf(buf, cap, "%llu", (unsigned long long)tokens);
    return buf;
}

/* Prints v / base^k with the largest k that keeps the value >= 1. */
static char *format_scaled(char *buf, size_t cap, double v, double base, const char *const *units,
                           int n_units)
{
    int k = 0;
    double a = fabs(v);
    while (k + 1 < n_units && a >= base) a /= base, v /= base, k++;
    snprintf(buf, cap, "%.4g %s", v, units[k]);
    return buf;
}

char *kvr_format_bytes(char *buf, size_t cap, double bytes)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    return format_scaled(buf, cap, bytes, 1024.0, u, 6);
}

char *kvr_format_rate_Bps(char *buf, size_t cap, double Bps)
{
    static const char *const u[] = {"B/s", "KB/s", "MB/s", "GB/s", "TB/s", "PB/s"};
    return format_scaled(buf, cap, Bps, 1000.0, u, 6);
}

char *kvr_format_count(char *buf, size_t cap, double n)
{
    static const char *const u[] = {"", "K", "M", "G", "T", "P", "E"};
    return format_scaled(buf, cap, n, 1000.0, u, 7);
}

char *kvr_format_duration(char *buf, size_t cap, double s)
{
    double a = fabs(s);
    if (a == 0 || a >= 1)
        snprintf(buf, cap, "%.4g s", s);
    else if (a >= 1e-3)
        snprintf(buf, cap, "%.4g ms", s * 1e3);
    else if (a >= 1e-6)
        snprintf(buf, cap, "%.4g us", s * 1e6);
    else
        snprintf(buf, cap, "%.4g ns", s * 1e9);
    return buf;
}
