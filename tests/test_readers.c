/* The readers and the writer of the reliability issue, below the program: kvr_out (temp file,
 * commit, abort, the stale temps of killed writers), kvr_lines (long lines, CRLF, NUL), the strict
 * number parsers, safetensors (duplicate names, non-array shapes, NaN and infinite weights) and the
 * kvr_lookup CSV library (duplicate keys, NaN or negative TTFTs, empty chunks, long lines). */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvr_file.h"
#include "kvr_lookup.h"
#include "kvr_out.h"
#include "kvr_safetensors.h"
#include "kvr_units.h"
#include "st_write.h"
#include "tap.h"

static int n_files(void) /* entries in tap_dir, temp files included */
{
    int n = 0;
    DIR *d = opendir(tap_dir);
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.' || strstr(e->d_name, "tmp-");
    closedir(d);
    return n;
}

static void test_out(void)
{
    struct kvr_out o;
    tap_write("keep.txt", "old\n");
    int before = n_files();
    ok(kvr_out_open(&o, "--out", tap_path("keep.txt")) == KVR_OK,
       "kvr_out_open on an existing file");
    fputs("new, half", o.f);
    kvr_out_abort(&o);
    char *text = NULL;
    kvr_file_read(tap_path("keep.txt"), 100, &text, NULL);
    ok(text && !strcmp(text, "old\n"), "abort leaves the old file as it was");
    free(text);
    is_u64(n_files(), before, "  and no temp file");
    ok(kvr_out_open(&o, "--out", tap_path("keep.txt")) == KVR_OK && fputs("new\n", o.f) >= 0 &&
           kvr_out_commit(&o) == KVR_OK,
       "commit replaces it");
    kvr_file_read(tap_path("keep.txt"), 100, &text, NULL);
    ok(text && !strcmp(text, "new\n"), "  with the new text");
    free(text);
    ok(kvr_out_open(&o, "--out", tap_dir) == KVR_ERR_USAGE, "a folder is refused");
    like(kvr_error_message(), "is a folder", "  by name");
    ok(kvr_out_open(&o, "--out", "") == KVR_ERR_USAGE, "an empty path is refused");
    ok(kvr_out_open(&o, "--out", tap_path("no/such/dir/x")) == KVR_ERR_IO,
       "a missing folder is refused");
    ok(kvr_out_check_not_input("--out", tap_path("keep.txt"), "--db", tap_path("keep.txt")) ==
           KVR_ERR_USAGE,
       "an output that is an input is refused");
    symlink(tap_path("keep.txt"), tap_path("link.txt"));
    ok(kvr_out_check_not_input("--out", tap_path("link.txt"), "--db", tap_path("keep.txt")) ==
           KVR_ERR_USAGE,
       "  also through a symlink");
}

/* A child process writing path through kvr_out: it writes half, sends its temp file's name (in
 * tmp) and waits; a byte on *go makes it write the rest and commit (exit 0 when that worked). */
static pid_t start_writer(const char *path, int *go, char *tmp, size_t cap)
{
    int ready[2], gop[2];
    if (pipe(ready) || pipe(gop)) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct kvr_out o;
        close(ready[0]), close(gop[1]);
        if (kvr_out_open(&o, "--out", path) != KVR_OK) _exit(2);
        fputs("child, half\n", o.f);
        fflush(o.f);
        const char *name = strrchr(o.tmp, '/') + 1;
        char c;
        if (write(ready[1], name, strlen(name)) < 0 || read(gop[0], &c, 1) != 1) _exit(3);
        fputs("child, whole\n", o.f);
        _exit(kvr_out_commit(&o) == KVR_OK ? 0 : 1);
    }
    close(ready[1]), close(gop[0]);
    ssize_t n = pid > 0 ? read(ready[0], tmp, cap - 1) : -1;
    tmp[n > 0 ? n : 0] = 0;
    close(ready[0]);
    *go = gop[1];
    return pid;
}

static bool exists(const char *file) /* lstat: a link counts, whatever it points to */
{
    struct stat sb;
    return lstat(tap_path(file), &sb) == 0;
}

static bool has_text(const char *file, const char *want)
{
    char *text = NULL;
    kvr_file_read(tap_path(file), 100000, &text, NULL);
    bool same = text && !strcmp(text, want);
    free(text);
    return same;
}

/* The temp of a writer killed with SIGKILL (or any temp nobody holds locked) is removed by the
 * next write of its target; a live writer's, another target's and look-alikes stay. */
static void test_out_stale(void)
{
    char killed[256], live[256];
    int go, go_killed;
    pid_t pid = start_writer(tap_path("t.txt"), &go, live, sizeof live);
    ok(pid > 0 && *live && exists(live), "a writer is writing (temp %s)", live);
    pid_t dead = start_writer(tap_path("t.txt"), &go_killed, killed, sizeof killed);
    ok(dead > 0 && *killed && exists(killed) && exists(live),
       "  and a second one (temp %s): its scan left the first's temp", killed);
    kill(dead, SIGKILL);
    waitpid(dead, NULL, 0);
    close(go_killed);
    ok(exists(killed) && !exists("t.txt"), "  the second's temp stays when it is killed (SIGKILL)");
    tap_write(".t.txt.tmp-Stale1", "made and never locked\n");
    tap_write("keep2.txt", "kept\n");
    static const char *const others[] = {
        ".t.txt.tmp-abc12",    ".t.txt.tmp-abc1234", ".t.txt.tmp-ab_123", "t.txt.tmp-abc123",
        ".t.txt.tmp-abc123.x", ".u.txt.tmp-Abc123",  ".t.tx.tmp-Abc123",  "..t.txt.tmp-Abc123"};
    for (size_t k = 0; k < sizeof others / sizeof *others; k++) tap_write(others[k], "not ours\n");
    symlink(tap_path("keep2.txt"), tap_path(".t.txt.tmp-Link12"));
    mkfifo(tap_path(".t.txt.tmp-Fifo12"), 0600);
    mkdir(tap_path(".t.txt.tmp-Dir123"), 0700);
    bool root = geteuid() == 0;
    if (root) chown(tap_write(".t.txt.tmp-Other1", "another user's\n"), 65534, 65534);

    struct kvr_out o;
    ok(kvr_out_open(&o, "--out", tap_path("t.txt")) == KVR_OK && fputs("parent\n", o.f) >= 0 &&
           kvr_out_commit(&o) == KVR_OK,
       "the next write of the target works");
    ok(has_text("t.txt", "parent\n"), "  with the right text");
    ok(!exists(killed), "  and removes the killed writer's temp");
    ok(!exists(".t.txt.tmp-Stale1"), "  and a temp left unlocked");
    ok(exists(live), "  but not the live writer's");
    bool all = true;
    for (size_t k = 0; k < sizeof others / sizeof *others; k++)
        if (!exists(others[k])) all = false, printf("# %s was removed\n", others[k]);
    ok(all, "  nor other targets' temps or look-alike names (%zu)", sizeof others / sizeof *others);
    ok(exists(".t.txt.tmp-Link12") && has_text("keep2.txt", "kept\n") &&
           exists(".t.txt.tmp-Fifo12") && exists(".t.txt.tmp-Dir123"),
       "  nor a symlink, a FIFO or a folder named like a temp");
    if (root) ok(exists(".t.txt.tmp-Other1"), "  nor another user's file named like a temp");

    int status = -1;
    ok(write(go, "g", 1) == 1 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0,
       "the live writer's commit then works");
    close(go);
    ok(has_text("t.txt", "child, half\nchild, whole\n") && !exists(live),
       "  its temp renamed over the target, whole");

    /* 4 processes writing one target 100 times each: every scan meets the others' live temps
     * (and may lock one between its mkstemp and its flock): every write must work, whole */
    pid_t kids[4];
    for (int k = 0; k < 4; k++)
        if (fflush(stdout), (kids[k] = fork()) == 0) {
            char line[64];
            snprintf(line, sizeof line, "writer %d, a line long enough to take a while\n", k);
            for (int r = 0; r < 100; r++) {
                if (kvr_out_open(&o, "--out", tap_path("c.txt")) != KVR_OK) _exit(1);
                for (int i = 0; i < 50; i++) fputs(line, o.f);
                if (kvr_out_commit(&o) != KVR_OK) _exit(1);
            }
            _exit(0);
        }
    int good = 0;
    for (int k = 0; k < 4; k++)
        good += kids[k] > 0 && waitpid(kids[k], &status, 0) == kids[k] && WIFEXITED(status) &&
                WEXITSTATUS(status) == 0;
    is_u64(good, 4, "4 concurrent writers x 100 writes of one target all work");
    bool whole = false;
    for (int k = 0; k < 4; k++) {
        char want[4096] = "";
        for (int i = 0; i < 50; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want),
                     "writer %d, a line long enough to take a while\n", k);
        whole |= has_text("c.txt", want);
    }
    ok(whole, "  the target is one writer's text, whole");
    DIR *d = opendir(tap_dir);
    int left = 0;
    for (struct dirent *e; (e = readdir(d));) left += !strncmp(e->d_name, ".c.txt.tmp-", 11);
    closedir(d);
    is_u64(left, 0, "  and no temp file is left");
}

static void test_lines(void)
{
    char long_line[5000];
    memset(long_line, 'x', sizeof long_line - 1);
    long_line[sizeof long_line - 1] = 0;
    FILE *f = fopen(tap_path("lines.txt"), "wb");
    fprintf(f, "a\r\n%s\nb", long_line);
    fclose(f);
    struct kvr_lines r;
    ok(kvr_lines_open(&r, tap_path("lines.txt"), 1 << 20) == KVR_OK, "kvr_lines_open");
    char *l1 = kvr_lines_next(&r), *l2 = kvr_lines_next(&r), *l3 = kvr_lines_next(&r);
    ok(l1 && !strcmp(l1, "a") && l2 && strlen(l2) == 4999 && l3 && !strcmp(l3, "b") &&
           r.line == 3 && !kvr_lines_next(&r),
       "CRLF stripped, a 4999-byte line whole, the last line without newline, line 3");
    kvr_lines_close(&r);
    f = fopen(tap_path("nul.txt"), "wb");
    fwrite("a\nb\nc\0d\n", 1, 8, f);
    fclose(f);
    ok(kvr_lines_open(&r, tap_path("nul.txt"), 1 << 20) == KVR_ERR_PARSE, "a NUL byte is refused");
    like(kvr_error_message(), "nul.txt:3: NUL byte", "  at its line");
    ok(kvr_lines_open(&r, tap_path("lines.txt"), 100) == KVR_ERR_INPUT, "the size cap holds");
}

static void test_numbers(void)
{
    const char *bad[] = {"inf", "nan", "-inf", "0x10", " 1", "1 ", "1e5x", "", "1e999", "-", "."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        double v;
        ok(kvr_parse_real("t", bad[i], -1e300, 1e300, &v) != KVR_OK, "kvr_parse_real refuses '%s'",
           bad[i]);
    }
    double v = 0;
    ok(kvr_parse_real("t", "2.7e-05", 0, 1, &v) == KVR_OK && v == 2.7e-05, "2.7e-05 reads");
    ok(kvr_parse_real("t", "-3.5", -10, 10, &v) == KVR_OK && v == -3.5, "-3.5 reads");
    long long k;
    ok(kvr_parse_int("r", "-1", -1, 5, &k) == KVR_OK && k == -1, "kvr_parse_int -1");
    ok(kvr_parse_int("r", "99999999999999999999", 0, 5, &k) != KVR_OK, "  overflow refused");
    ok(kvr_parse_int("r", "1.0", 0, 5, &k) != KVR_OK, "  1.0 refused");
}

static void st_raw(const char *name, const char *json, const void *data, size_t n)
{
    FILE *f = fopen(tap_path(name), "wb");
    uint64_t len = strlen(json);
    for (int i = 0; i < 8; i++) fputc((int)(len >> (8 * i)) & 255, f);
    fputs(json, f);
    fwrite(data, 1, n, f);
    fclose(f);
}

static void test_safetensors(void)
{
    float v[4] = {1, 2, 3, 4};
    struct st_writer w;
    st_begin(&w);
    st_add(&w, "a", 0, 2, 2, v);
    st_add(&w, "b", 1, 4, 0, v);
    st_finish(&w, tap_path("ok.safetensors"));
    size_t n = 0;
    ok(kvr_safetensors_check(tap_path("ok.safetensors"), &n) == KVR_OK && n == 2,
       "a good safetensors file reads (2 tensors)");
    st_raw("dup.safetensors",
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
           v, 8);
    ok(kvr_safetensors_check(tap_path("dup.safetensors"), NULL) == KVR_ERR_INPUT,
       "a duplicate name");
    like(kvr_error_message(), "'a' is given twice", "  is refused by name");
    st_raw("str.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":\"4\",\"data_offsets\":[0,4]}}",
           v, 4);
    ok(kvr_safetensors_check(tap_path("str.safetensors"), NULL) == KVR_ERR_INPUT, "a string shape");
    like(kvr_error_message(), "shape is not an array", "  is refused");
    st_raw("str2.safetensors",
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", v, 4);
    ok(kvr_safetensors_check(tap_path("str2.safetensors"), NULL) == KVR_ERR_INPUT,
       "a shape of strings is refused");
    float nan_v[2] = {1, NAN};
    st_raw("nan.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
           nan_v, 8);
    ok(kvr_safetensors_check(tap_path("nan.safetensors"), NULL) == KVR_ERR_INPUT, "a NaN weight");
    like(kvr_error_message(), "holds NaN at element 1", "  is refused with its element");
    uint16_t inf_bf16[2] = {0x3f80, 0x7f80};
    st_raw("inf.safetensors", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}",
           inf_bf16, 4);
    ok(kvr_safetensors_check(tap_path("inf.safetensors"), NULL) == KVR_ERR_INPUT,
       "an infinite BF16 weight is refused");
    st_raw("tail.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
           v, 12);
    ok(kvr_safetensors_check(tap_path("tail.safetensors"), NULL) == KVR_ERR_INPUT,
       "bytes after the last tensor are refused");
    like(kvr_error_message(), "end at data byte 8 of 12", "  with the count");
    st_raw("gap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
           v, 12);
    ok(kvr_safetensors_check(tap_path("gap.safetensors"), NULL) == KVR_ERR_INPUT,
       "a gap before a tensor is refused");
    st_raw("share.safetensors",
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
           v, 8);
    ok(kvr_safetensors_check(tap_path("share.safetensors"), NULL) == KVR_ERR_INPUT,
       "two tensors sharing bytes are refused");
    like(kvr_error_message(), "bytes shared with another tensor", "  by name");
}

#define CSV_HEAD                                                                                   \
    "# kvrun lookup table, format 1\n"                                                             \
    "model,machine,p,scheme,method,granularity_tokens,ctx_tokens,predicted_ttft_s,"                \
    "partition_tokens\n"

static int csv(const char *rows, char *err, size_t cap)
{
    char text[8192];
    snprintf(text, sizeof text, "%s%s", CSV_HEAD, rows);
    tap_write("t.csv", text);
    struct kvr_lookup *t = NULL;
    int rc = kvr_lookup_load_csv(tap_path("t.csv"), &t, err, cap);
    kvr_lookup_free(t);
    return rc;
}

static void test_lookup_csv(void)
{
    char err[512];
    ok(csv("m,h,2,kvr,hier,64,1024,0.01,576;448\nm,h,2,kvr,hier,64,2048,0.02,1088;960\n", err,
           sizeof err) == KVR_LOOKUP_OK,
       "a good lookup table loads");
    ok(csv("m,h,2,kvr,hier,64,1024,0.01,576;448\nm,h,2,kvr,hier,64,1024,0.02,512;512\n", err,
           sizeof err) == KVR_LOOKUP_BAD_INPUT,
       "two rows for one key are refused");
    like(err, "two rows for model m", "  naming the key");
    const char *bad[] = {
        "m,h,2,kvr,hier,64,1024,nan,576;448\n", "m,h,2,kvr,hier,64,1024,-1,576;448\n",
        "m,h,2,kvr,hier,64,1024,inf,576;448\n", "m,h,3,kvr,hier,64,1024,1,576;;448\n",
        "m,h,2,kvr,hier,64,1024,1,576;448;\n",  "m,h,2,kvr,hier,64,1024,0x1,576;448\n",
        ",h,2,kvr,hier,64,1024,1,576;448\n",    "m,h,2,kvr,hier,64,1024,0,576;448\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ok(csv(bad[i], err, sizeof err) == KVR_LOOKUP_BAD_INPUT, "refused: %.*s",
           (int)strcspn(bad[i], "\n"), bad[i]);
        like(err, "t.csv:3", "  at line 3");
    }
    char rows[6000], name[4200];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    snprintf(rows, sizeof rows,
             "%s,h,2,kvr,hier,64,1024,0.01,576;448\nm,h,2,kvr,hier,64,1024,x,1;1\n", name);
    ok(csv(rows, err, sizeof err) == KVR_LOOKUP_BAD_INPUT, "after a 4.2 kB line");
    like(err, "t.csv:4", "  the error is on line 4");
    struct kvr_lookup *t = NULL;
    ok(kvr_lookup_load_csv("/dev/zero", &t, err, sizeof err) == KVR_LOOKUP_BAD_INPUT && !t,
       "/dev/zero is refused (an endless line), not read until memory runs out");
    FILE *f = fopen(tap_path("nul.csv"), "wb");
    fputs(CSV_HEAD, f);
    fwrite("m,h,2,kvr,hier,64,1024,0.01,576;448\0\n", 1, 38, f);
    fclose(f);
    ok(kvr_lookup_load_csv(tap_path("nul.csv"), &t, err, sizeof err) == KVR_LOOKUP_BAD_INPUT,
       "a NUL byte in a row is refused");
}

/* One query of a format 1 table of rows; rc, the answer in *a (chunk tokens), err. */
static int csv_query(const char *text, uint64_t ctx, int clamp, struct kvr_lookup_answer *a,
                     char *err, size_t cap)
{
    tap_write("q.csv", text);
    struct kvr_lookup *t = NULL;
    int rc = kvr_lookup_load_csv(tap_path("q.csv"), &t, err, cap);
    struct kvr_lookup_query q = {
        .model = "m", .machine = "h", .p = 2, .ctx_tokens = ctx, .clamp = clamp};
    if (!rc) rc = kvr_lookup_partition(t, &q, a, err, cap);
    kvr_lookup_free(t);
    return rc;
}

/* The edges of the numbers (helper-69's audit): each was a plausible wrong answer or a header
 * read as another, where the Python package refuses. */
static void test_lookup_edges(void)
{
    char err[512];
    struct kvr_lookup_answer a;
    /* 2^64 - 1 + 513 wrapped to 512: the row was served, a chunk of 2^64 - 1 tokens */
    ok(csv("m,h,2,kvr,hier,64,512,0.01,18446744073709551615;513\n", err, sizeof err) ==
           KVR_LOOKUP_BAD_INPUT,
       "a partition whose sum wraps past 2^64 to ctx is refused");
    like(err, "t.csv:3", "  at its line");
    /* p * granularity wrapped to 0, so the grain was 2^63: chunks of 2^63 tokens */
    ok(csv_query(CSV_HEAD "m,h,2,kvr,hier,9223372036854775808,1024,0.01,512;512\n"
                          "m,h,2,kvr,hier,9223372036854775808,2048,0.02,1088;960\n",
                 1500, 0, &a, err, sizeof err) == KVR_LOOKUP_OK &&
           a.tokens[0] + a.tokens[1] == 1500 && a.tokens[0] < 1500,
       "a granularity of 2^63 rounds to tokens (grain 1), not to 2^63");
    /* an editor's byte-order mark before a real header is named (it said "not a table") */
    ok(csv_query("\xef\xbb\xbf" CSV_HEAD "m,h,2,kvr,hier,64,1024,0.01,512;512\n", 1024, 0, &a, err,
                 sizeof err) == KVR_LOOKUP_BAD_INPUT,
       "a table behind a UTF-8 byte-order mark is refused");
    like(err, "q.csv:1: a UTF-8 byte-order mark before the header", "  naming the mark");
    /* kvr's cap on --ctx, which the Python package holds a query to */
    ok(csv_query(CSV_HEAD "m,h,2,kvr,hier,64,1024,0.01,512;512\n", 4194305, 1, &a, err,
                 sizeof err) == KVR_LOOKUP_BAD_INPUT,
       "a query of ctx 4194305 is refused, clamp or not");
    like(err, "ctx 4194305 is outside 1..4194304", "  naming it");
    ok(csv_query(CSV_HEAD "m,h,2,kvr,hier,64,1024,0.01,512;512\n", 4194304, 1, &a, err,
                 sizeof err) == KVR_LOOKUP_OK,
       "  ctx 4194304 is served");
    /* bytes the Python package refuses (it decodes UTF-8): Latin-1, an overlong '/', a surrogate */
    const char *latin[] = {"m\xe9", "m\xc0\xaf", "m\xed\xa0\x80", "m\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof latin / sizeof *latin; i++) {
        char rows[128];
        snprintf(rows, sizeof rows,
                 "m,h,2,kvr,hier,64,1024,0.01,512;512\n%s,h,2,kvr,hier,64,1024,0.01,512;512\n",
                 latin[i]);
        ok(csv(rows, err, sizeof err) == KVR_LOOKUP_BAD_INPUT,
           "a name that is not UTF-8 is refused (%zu)", i);
        like(err, "t.csv:4: not UTF-8 text (byte 1", "  naming line and byte");
    }
    ok(csv("m\xc3\xa9\xf0\x9f\x98\x80,h,2,kvr,hier,64,1024,0.01,512;512\n", err, sizeof err) ==
           KVR_LOOKUP_OK,
       "  UTF-8 names load");
    const char *magic[] = {"1abc", " 1", "01", "+1", "4294967297", "1 "};
    for (size_t i = 0; i < sizeof magic / sizeof *magic; i++) {
        char text[512];
        snprintf(text, sizeof text, "# kvrun lookup table, format %s\n%s", magic[i],
                 strchr(CSV_HEAD, '\n') + 1);
        tap_write("m.csv", text);
        struct kvr_lookup *t = NULL;
        ok(kvr_lookup_load_csv(tap_path("m.csv"), &t, err, sizeof err) == KVR_LOOKUP_BAD_INPUT,
           "format '%s' is not format 1", magic[i]);
        like(err, "m.csv:1", "  at line 1");
        kvr_lookup_free(t);
    }
}

int main(void)
{
    tap_mkdtemp("readers");
    test_out();
    test_out_stale();
    test_lines();
    test_numbers();
    test_safetensors();
    test_lookup_csv();
    test_lookup_edges();
    tap_rmdir(tap_dir);
    return tap_done();
}
