/* Minimal TAP producer for the test programs (meson test, protocol: tap). Each check prints
 * "ok N - name" or "not ok N - name" with the place and the values that differed. */
#pragma once

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count, tap_failures;

__attribute__((format(printf, 4, 5))) static int tap_ok(int pass, const char *file, int line,
                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%sok %d - ", pass ? "" : "not ", ++tap_count);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass) {
        printf("#   failed at %s:%d\n", file, line);
        tap_failures++;
    }
    return pass;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_u64(got, want, ...)                                                                     \
    do {                                                                                           \
        uint64_t g_ = (got), w_ = (want);                                                          \
        if (!ok(g_ == w_, __VA_ARGS__)) printf("#   got %" PRIu64 ", want %" PRIu64 "\n", g_, w_); \
    } while (0)

#define is_dbl(got, want, rel, ...)                                                                \
    do {                                                                                           \
        double g_ = (got), w_ = (want);                                                            \
        double d_ = g_ > w_ ? g_ - w_ : w_ - g_;                                                   \
        double s_ = w_ < 0 ? -w_ : w_;                                                             \
        if (!ok(d_ <= (rel)*s_, __VA_ARGS__)) printf("#   got %.17g, want %.17g\n", g_, w_);       \
    } while (0)

/* The message contains needle. */
#define like(msg, needle, ...)                                                                     \
    do {                                                                                           \
        const char *m_ = (msg);                                                                    \
        if (!ok(m_ && strstr(m_, (needle)), __VA_ARGS__))                                          \
            printf("#   message '%s' lacks '%s'\n", m_ ? m_ : "(null)", (needle));                 \
    } while (0)

/* The test's temporary folder, made once by tap_mkdtemp(NAME) (/tmp/kvr-test-NAME-XXXXXX; the
 * test bails out when it cannot), and the files in it: tap_path(FILE) names one (the last four
 * names stay valid), tap_write(FILE, TEXT) writes one and returns its name. */
static char tap_dir[256];

__attribute__((unused)) static const char *tap_mkdtemp(const char *name)
{
    snprintf(tap_dir, sizeof tap_dir, "/tmp/kvr-test-%s-XXXXXX", name);
    if (!mkdtemp(tap_dir)) {
        printf("Bail out! mkdtemp %s failed\n", tap_dir);
        exit(1);
    }
    return tap_dir;
}

__attribute__((unused)) static const char *tap_path(const char *file)
{
    static char paths[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(paths[i], sizeof paths[i], "%s/%s", tap_dir, file);
    return paths[i];
}

__attribute__((unused)) static const char *tap_write(const char *file, const char *text)
{
    const char *path = tap_path(file);
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
    return path;
}

/* Removes a test's temporary folder (and says so when it cannot). */
__attribute__((unused)) static void tap_rmdir(const char *dir)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
}

static int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failures ? 1 : 0;
}
