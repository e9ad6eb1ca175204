/* Unit tests for the parallel billing scan (src/cloud/scan.c). The reference
 * is always one sequential pass with cloud_csv_next() and cloud_billing_row():
 * for every thread count (and tiny ranges, so that boundaries land everywhere)
 * the scan must give the same rows, the same malformed rows and the same line
 * numbers, including quoted newlines at range boundaries, CRLF, a BOM, blank
 * lines and malformed quotes that make a range start lie. The keys_only fast
 * path must give the same costs, periods and allocation tags as the slow
 * one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four above first */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../testutil.h"
#include "cloud/cloud.h"

/* One row as both sides see it. */
struct seen {
    int64_t line;
    bool ok;
    int64_t billed, effective, list;
    char period[8];
    char start[21];
    char key[160]; /* team|service|env|cost-center */
    char reason[512];
};

struct seenv {
    struct seen *v;
    size_t n, cap;
};

static struct seen *seen_add(struct seenv *s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        assert_non_null(s->v);
    }
    memset(&s->v[s->n], 0, sizeof(s->v[0]));
    return &s->v[s->n++];
}

static void fill(struct seen *x, const struct cloud_charge *c, int64_t line)
{
    x->line = line;
    x->ok = true;
    x->billed = c->billed_n;
    x->effective = c->effective_n;
    x->list = c->list_n;
    memcpy(x->period, c->period, sizeof(x->period));
    memcpy(x->start, c->charge_start, sizeof(x->start));
    snprintf(x->key, sizeof(x->key), "%s|%s|%s|%s", c->tag_team ? c->tag_team : "-",
             c->tag_service ? c->tag_service : "-", c->tag_env ? c->tag_env : "-",
             c->tag_cost_center ? c->tag_cost_center : "-");
}

static const char *strip_line(const char *m)
{
    if (strncmp(m, "line ", 5) == 0 && strstr(m, ": "))
        return strstr(m, ": ") + 2;
    return m;
}

/* The reference: returns 0, or -1 when the header is refused. */
static int reference(const char *text, size_t len, struct seenv *out)
{
    struct core_err err = {0};
    struct cloud_csv *r = cloud_csv_open_mem(text, len, &err);
    assert_non_null(r);
    char **f;
    size_t n;
    int64_t line;
    struct cloud_map m;
    struct cloud_charge c;
    cloud_charge_init(&c);
    int rc = cloud_csv_next(r, &f, &n, &line, &err);
    if (rc != 1 || cloud_billing_map(&m, NULL, f, n, &err)) {
        cloud_charge_release(&c);
        cloud_csv_free(r);
        return -1;
    }
    while ((rc = cloud_csv_next(r, &f, &n, &line, &err)) != 0) {
        assert_true(rc == 1 || rc == CORE_E_INVAL);
        if (rc == CORE_E_INVAL) {
            struct seen *x = seen_add(out);
            x->line = line;
            snprintf(x->reason, sizeof(x->reason), "%s", strip_line(err.msg));
            continue;
        }
        struct core_err e2 = {0};
        int64_t ln = line;
        if (cloud_billing_row(&m, f, n, &c, &e2)) {
            struct seen *x = seen_add(out);
            x->line = ln;
            snprintf(x->reason, sizeof(x->reason), "%s", e2.msg);
            continue;
        }
        fill(seen_add(out), &c, ln);
    }
    cloud_map_release(&m);
    cloud_charge_release(&c);
    cloud_csv_free(r);
    /* the scan keeps the first CLOUD_IMPORT_BAD_MAX malformed rows, by line */
    size_t k = 0, nbad = 0;
    for (size_t i = 0; i < out->n; i++)
        if (out->v[i].ok || nbad++ < CLOUD_IMPORT_BAD_MAX)
            out->v[k++] = out->v[i];
    out->n = k;
    return 0;
}

static char tmp_path[64];

static void write_tmp(const char *text, size_t len)
{
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/pave-scan-XXXXXX");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* The scan through the batch interface; bad rows merged in line order. */
static int scan_file(int threads, bool keys_only, struct seenv *out, bool *stitched)
{
    struct cloud_scan_opts o = {.threads = threads, .min_range = 1, .keys_only = keys_only};
    struct core_err err = {0};
    struct cloud_scan *s = cloud_scan_open(tmp_path, &o, &err);
    if (!s)
        return -1;
    struct seenv good = {0};
    struct cloud_scan_batch b;
    int rc;
    while ((rc = cloud_scan_next(s, &b, &err)) == 1)
        for (size_t i = 0; i < b.n; i++)
            fill(seen_add(&good), &b.rows[i], b.lines[i]);
    assert_int_equal(rc, 0);
    struct cloud_scan_stats st;
    cloud_scan_stats(s, &st);
    *stitched = st.stitched;
    /* merge good rows and the bad list by line */
    size_t gi = 0, bi = 0;
    while (gi < good.n || bi < st.nbad) {
        if (bi < st.nbad && (gi == good.n || st.bad[bi].line < good.v[gi].line)) {
            struct seen *x = seen_add(out);
            x->line = st.bad[bi].line;
            snprintf(x->reason, sizeof(x->reason), "%s", st.bad[bi].reason);
            bi++;
        } else {
            *seen_add(out) = good.v[gi++];
        }
    }
    assert_int_equal(st.rows, (int64_t)(good.n + st.malformed));
    free(good.v);
    cloud_scan_free(s);
    return 0;
}

static void assert_same(const struct seenv *a, const struct seenv *b, bool keys_only)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct seen *x = &a->v[i], *y = &b->v[i];
        if (x->line != y->line || x->ok != y->ok || x->billed != y->billed ||
            x->effective != y->effective || x->list != y->list || strcmp(x->period, y->period) ||
            strcmp(x->key, y->key) || strcmp(x->reason, y->reason) ||
            (!keys_only && strcmp(x->start, y->start)))
            fail_msg("row %zu differs: line %lld/%lld ok %d/%d billed %lld/%lld key "
                     "'%s'/'%s' "
                     "reason '%s'/'%s'",
                     i, (long long)x->line, (long long)y->line, x->ok, y->ok, (long long)x->billed,
                     (long long)y->billed, x->key, y->key, x->reason, y->reason);
    }
}

/* Checks one text against the reference for threads 1..9, slow and fast. */
static void check_text(const char *text, size_t len, bool expect_stitch)
{
    struct seenv ref = {0};
    assert_int_equal(reference(text, len, &ref), 0);
    write_tmp(text, len);
    bool any_stitch = false;
    for (int t = 1; t <= 9; t++) {
        for (int fast = 0; fast < 2; fast++) {
            struct seenv got = {0};
            bool st = false;
            assert_int_equal(scan_file(t, fast, &got, &st), 0);
            any_stitch |= st;
            assert_same(&ref, &got, fast);
            free(got.v);
        }
    }
    if (expect_stitch)
        assert_true(any_stitch);
    unlink(tmp_path);
    free(ref.v);
}

static const char header[] = "BillingPeriodStart,ChargePeriodStart,BilledCost,EffectiveCost,"
                             "BillingCurrency,BillingAccountId,Tags,Note\n";

static void test_quoted_newlines_at_boundaries(void **state)
{
    (void)state;
    char *t = malloc(1 << 16);
    size_t n = (size_t)sprintf(t, "%s", header);
    for (int i = 0; i < 120; i++)
        n += (size_t)sprintf(t + n,
                             "2024-10-01,2024-10-%02d,%d.%03d,,USD,A,\"{\"\"team\"\":\"\"t%d\"\","
                             "\"\"app\"\":\"\"s%d\"\"}\",\"multi\nline %d\n\nwith \"\"quotes\"\"\n"
                             "\"\n",
                             1 + i % 28, i, i * 7 % 1000, i % 5, i % 7, i);
    check_text(t, n, false);
    free(t);
}

static void test_crlf_bom_blank_lines(void **state)
{
    (void)state;
    char *t = malloc(1 << 16);
    size_t n = (size_t)sprintf(t, "\xEF\xBB\xBF\r\n%s", header);
    for (int i = 0; i < 200; i++)
        n += (size_t)sprintf(t + n,
                             "2024-11-01T00:00:00Z,2024-11-03 10:00:00,%d,%d.5,EUR,B,"
                             "\"team=x%d;env=prod\",\"a\r\nb\"\r\n%s",
                             i, i, i % 3, i % 10 == 0 ? "\r\n\n" : "");
    /* a last record without a line end */
    n += (size_t)sprintf(t + n, "2024-11-01,2024-11-02,1,1,EUR,B,,end");
    check_text(t, n, false);
    free(t);
}

static void test_malformed_rows_and_lines(void **state)
{
    (void)state;
    char *t = malloc(1 << 17);
    size_t n = (size_t)sprintf(t, "%s", header);
    for (int i = 0; i < 900; i++) {
        const char *row;
        switch (i % 6) {
        case 0:
            row = "2024-10-01,2024-10-02,five,,USD,A,,x\n"; /* not a number */
            break;
        case 1:
            row = "2024-10-01,2024-10-02,1,,USD,A,,x,extra\n"; /* field count */
            break;
        case 2:
            row = "2024-10-01,2024-10-02,1,,USD,A,,\"a\"b\n"; /* text after a quote */
            break;
        case 3:
            row = "2024-10-01,2024-10-02,1,,USD,A,,a\"b\"\n"; /* quote inside a field */
            break;
        case 4:
            row = "2024-13-01,,1,,USD,A,,x\n"; /* not a date */
            break;
        default:
            row = "2024-10-01,2024-10-02,2.25,,USD,A,\"{\"\"team\"\":\"\"a\"\"}\","
                  "\"q\nq\"\n";
        }
        n += (size_t)sprintf(t + n, "%s", row);
    }
    check_text(t, n, false);
    free(t);
}

/* A stray quote flips the parity, so later range starts land inside quoted
 * fields: the scan must notice at the boundary and read on. */
static void test_stray_quote_stitches(void **state)
{
    (void)state;
    char *t = malloc(1 << 16);
    size_t n = (size_t)sprintf(t, "%s", header);
    n += (size_t)sprintf(t + n, "2024-10-01,2024-10-02,1,,USD,A,,x\"y\n");
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(t + n, "2024-10-01,2024-10-02,%d,,USD,A,,\"n\n%d\"\n", i, i);
    check_text(t, n, true);
    /* and an unclosed quote at the end of the file */
    n += (size_t)sprintf(t + n, "2024-10-01,2024-10-02,1,,USD,A,,\"open\n");
    check_text(t, n, false);
    free(t);
}

/* Random bytes from a CSV-heavy alphabet after a real header: whatever the
 * reader makes of them, the scan must make the same. */
static void test_random_texts(void **state)
{
    (void)state;
    static const char alpha[] = ",,,,\"\"\"\n\n\r1.5a {}:-T";
    static const char *const pieces[] = {"2024-10-01", "2024-10-05T10:00:00Z",     "3.25",   "-1",
                                         "USD",        "{\"\"team\"\":\"\"p\"\"}", "team: q"};
    unsigned seed = 12345;
    for (int iter = 0; iter < 60; iter++) {
        char *t = malloc(1 << 14);
        size_t n = (size_t)sprintf(t, "%s", header);
        int len = 200 + (int)(rand_r(&seed) % 3000);
        while ((int)n < len) {
            unsigned r = (unsigned)rand_r(&seed);
            if (r % 4 == 0)
                n += (size_t)sprintf(t + n, "%s", pieces[(r >> 4) % 7]);
            else
                t[n++] = alpha[(r >> 4) % (sizeof(alpha) - 1)];
        }
        t[n] = 0;
        struct seenv ref = {0};
        if (reference(t, n, &ref) == 0) {
            write_tmp(t, n);
            for (int th = 1; th <= 6; th++) {
                struct seenv got = {0};
                bool st;
                assert_int_equal(scan_file(th, th % 2, &got, &st), 0);
                assert_same(&ref, &got, th % 2);
                free(got.v);
            }
            unlink(tmp_path);
        }
        free(ref.v);
        free(t);
    }
}

/* The fast path on the kinds of values it handles and the ones it hands back.
 */
static void test_fast_path_equals_slow(void **state)
{
    (void)state;
    static const char *const rows[] = {
        "2024-10-01,2024-10-02T03:04:05Z,12.345678,12.3,USD,A,"
        "\"{\"\"owner\"\":\"\"a\"\",\"\"team\"\":\"\"b\"\",\"\"user:App\"\":"
        "\"\"c\"\"}\",x\n",
        "2024-10-01,2024-10-31T23:59:60Z,0.1,0.10000000001,USD,A,\"{\"\"team\"\":"
        "\"\"\"\","
        "\"\"squad\"\":\"\"s\"\"}\",x\n",
        "2024-10-01,2024-10-02+02:00,1e3,-0,USD,A,\"{\"\"team\"\":1}\",x\n",
        "2024-10-01,2024-10-02,1234567.5,.5,USD,A,\"{\"\"team\"\":"
        "\"\"caf\xc3\xa9\"\"}\",x\n",
        "2024-10-01,2024-10-02,5.,+5,USD,A,\"{\"\"team\"\":\"\"a\"\","
        "\"\"team\"\":\"\"b\"\"}\",x\n",
        "2024-10-01,2024-10-02, 5,5 "
        ",USD,A,\"{\"\"env\"\":\"\"a\\\"\"b\"\"}\",x\n",
        "2024-10-01,NULL,N/A,nan,USD,A,\"{ \"\"Cost_Center\"\" : \"\"cc-1\"\" } "
        "\",x\n",
        "2024-02-30,2024-02-29 12:00,1,1,USD,A,\"env: prod, team: z\",x\n",
        "202410,10/05/2024,1,1,USD,A,\"{\"\"team\"\":[1]}\",x\n",
        "2024-10-01,2024-10-02,99999999999,1,USD,A,\"{}\",x\n",
        /* an integer part long enough to overflow int64 if accumulated (fuzzer finding) */
        "2024-10-01,2024-10-02,18888888888888888888,-18888888888888888888.5,USD,A,\"{}\",x\n",
        "2024-10-01,2024-10-02,0.1234567891,1,USD,A,\"{\"\"a\"\":{\"\"b\"\":1}}"
        "\",x\n",
    };
    char *t = malloc(1 << 14);
    size_t n = (size_t)sprintf(t, "%s", header);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        n += (size_t)sprintf(t + n, "%s", rows[i]);
    check_text(t, n, false);
    free(t);
}

static void test_group_threads_agree(void **state)
{
    (void)state;
    char *t = malloc(1 << 18);
    size_t n = (size_t)sprintf(t, "%s", header);
    for (int i = 0; i < 2000; i++)
        n += (size_t)sprintf(t + n,
                             "2024-10-01,2024-10-02,%d.%02d,,USD,A,\"{\"\"team\"\":\"\"t%d\"\","
                             "\"\"service\"\":\"\"s%d\"\"}\",\"x\ny\"\n",
                             i % 13, i % 100, i % 7, i % 11);
    n += (size_t)sprintf(t + n, "2024-10-01,2024-10-02,bad,,USD,A,,x\n");
    write_tmp(t, n);
    enum cloud_group by[2] = {CLOUD_BY_TEAM, CLOUD_BY_SERVICE};
    struct cloud_scan_result one;
    cloud_scan_result_init(&one, by, 2);
    struct core_err err = {0};
    struct cloud_scan_opts o = {.threads = 1, .min_range = 1, .keys_only = true};
    assert_int_equal(cloud_scan_group(tmp_path, &o, &one, &err), 0);
    assert_int_equal(cloud_scan_result_finish(&one, &err), 0);
    assert_int_equal(one.n, 77);
    assert_int_equal(one.rows, 2001);
    assert_int_equal(one.malformed, 1);
    assert_int_equal(one.nbad, 1);
    assert_int_equal(one.bad[0].line, 2 + 2000 * 2);
    for (int th = 2; th <= 8; th++) {
        struct cloud_scan_result r;
        cloud_scan_result_init(&r, by, 2);
        o.threads = th;
        o.keys_only = th % 2;
        assert_int_equal(cloud_scan_group(tmp_path, &o, &r, &err), 0);
        assert_int_equal(cloud_scan_result_finish(&r, &err), 0);
        assert_int_equal(r.threads, th);
        assert_int_equal(r.n, one.n);
        assert_int_equal(r.total_billed_n, one.total_billed_n);
        assert_int_equal(r.bad[0].line, one.bad[0].line);
        for (size_t i = 0; i < r.n; i++) {
            assert_string_equal(r.items[i].key[0], one.items[i].key[0]);
            assert_string_equal(r.items[i].key[1], one.items[i].key[1]);
            assert_int_equal(r.items[i].billed_n, one.items[i].billed_n);
            assert_int_equal(r.items[i].rows, one.items[i].rows);
        }
        cloud_scan_result_release(&r);
    }
    cloud_scan_result_release(&one);
    unlink(tmp_path);
    free(t);
}

/* The threaded import stores what the one-thread import stores: same rows,
 * same line numbers, same malformed row, over a file big enough for two
 * ranges, with quoted newlines throughout. */
static void test_import_threads_agree(void **state)
{
    (void)state;
    size_t cap = 6u << 20, n = 0;
    char *t = malloc(cap);
    n += (size_t)sprintf(t + n, "%s", header);
    int i = 0;
    while (n < (5u << 20)) {
        if (i == 9000)
            n += (size_t)sprintf(t + n, "2024-10-01,2024-10-02,x%d,,USD,A,,z\n", i);
        else
            n +=
                (size_t)sprintf(t + n,
                                "2024-10-01,2024-10-02,%d.25,,USD,A,\"{\"\"team\"\":\"\"t%d\"\"}\","
                                "\"note %d\nsecond line of a long note, long enough to fill "
                                "the file\"\n",
                                i % 97, i % 5, i);
        i++;
    }
    write_tmp(t, n);
    int64_t got[2][4];
    for (int k = 0; k < 2; k++) {
        struct test_env env;
        assert_int_equal(test_env_open(&env), 0);
        struct cloud_import_opts o = {.allow_malformed = true, .threads = k ? 2 : 1};
        struct cloud_import_stats st = {0};
        struct core_err err = {0};
        assert_int_equal(cloud_billing_import(env.st, tmp_path, &o, &st, &err), 0);
        assert_int_equal(st.malformed, 1);
        assert_int_equal(st.nbad, 1);
        got[k][0] = st.bad[0].line;
        assert_int_equal(
            store_query_int(env.st, "SELECT COUNT(*) FROM cost_lines", NULL, 0, &got[k][1], &err),
            0);
        assert_int_equal(store_query_int(env.st, "SELECT SUM(billed_n) FROM cost_lines", NULL, 0,
                                         &got[k][2], &err),
                         0);
        assert_int_equal(store_query_int(env.st,
                                         "SELECT SUM(line * 7 + length(tag_team)) FROM cost_lines",
                                         NULL, 0, &got[k][3], &err),
                         0);
        cloud_import_stats_release(&st);
        test_env_close(&env);
    }
    assert_int_equal(got[0][0], 2 + 9000 * 2);
    assert_int_equal(got[0][1], i - 1);
    for (int k = 0; k < 4; k++)
        assert_int_equal(got[0][k], got[1][k]);
    unlink(tmp_path);
    free(t);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct core_err err = {0};
    assert_null(cloud_scan_open("/nonexistent/x.csv", NULL, &err));
    assert_non_null(strstr(err.msg, "cannot open"));
    write_tmp("", 0);
    assert_null(cloud_scan_open(tmp_path, NULL, &err));
    assert_non_null(strstr(err.msg, "is empty"));
    unlink(tmp_path);
    write_tmp("a,b\n1,2\n", 8);
    assert_null(cloud_scan_open(tmp_path, NULL, &err));
    assert_int_equal(err.code, CORE_E_UNSUPPORTED);
    unlink(tmp_path);
}

/* A file truncated by another process after it was opened (and mapped): the scan reports it
 * (CORE_E_IO, "shrank") instead of dying of SIGBUS, for every thread count. */
static void test_truncated_while_scanning(void **state)
{
    (void)state;
    static const char hdr[] = "BillingPeriodStart,ChargePeriodStart,BilledCost,BillingAccountId,"
                              "Tags\n";
    static const char row[] = "2024-10-01,2024-10-02,1.5,A,\"{\"\"team\"\": \"\"payments\"\"}\"\n";
    size_t n = 200000, len = strlen(hdr) + n * strlen(row);
    char *text = malloc(len + 1);
    assert_non_null(text);
    char *p = text;
    p += sprintf(p, "%s", hdr);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s", row);
    for (int threads = 1; threads <= 3; threads++) {
        write_tmp(text, len);
        struct cloud_scan_opts o = {.threads = threads, .min_range = 1};
        struct core_err err = {0};
        struct cloud_scan *s = cloud_scan_open(tmp_path, &o, &err);
        assert_non_null(s);
        assert_int_equal(truncate(tmp_path, 4096), 0); /* the workers have not started yet */
        struct cloud_scan_batch b;
        int rc;
        while ((rc = cloud_scan_next(s, &b, &err)) == 1)
            ;
        assert_int_equal(rc, CORE_E_IO);
        assert_non_null(strstr(err.msg, "shrank while it was being read"));
        cloud_scan_free(s);
        unlink(tmp_path);
    }
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoted_newlines_at_boundaries),
        cmocka_unit_test(test_crlf_bom_blank_lines),
        cmocka_unit_test(test_malformed_rows_and_lines),
        cmocka_unit_test(test_stray_quote_stitches),
        cmocka_unit_test(test_random_texts),
        cmocka_unit_test(test_fast_path_equals_slow),
        cmocka_unit_test(test_group_threads_agree),
        cmocka_unit_test(test_import_threads_agree),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_truncated_while_scanning),
    };
    return cmocka_run_group_tests_name("cloud_scan", tests, NULL, NULL);
}
