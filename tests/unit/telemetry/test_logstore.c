/* Unit tests for the log store (logstore.c): append and query by service, env, time, level,
 * grep and limit; rotation by size and by time; retention by size and age on a fake clock;
 * index skipping; a reader running while the writer appends; follow cursors; torn lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "telemetry/telemetry.h"

#define SEC 1000000000LL
#define T0 (1767225600LL * SEC) /* 2026-01-01T00:00:00Z */

struct fix {
    char dir[256];
    int64_t now; /* the fake clock */
};

static int64_t fake_now(void *arg)
{
    return ((struct fix *)arg)->now;
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-logstore-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->now = T0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct tel_store *open_store(struct fix *f, int64_t seg_bytes, int64_t ret_bytes,
                                    int64_t ret_age)
{
    struct tel_store_options o = {.segment_bytes = seg_bytes,
                                  .retention_bytes = ret_bytes,
                                  .retention_age_ns = ret_age,
                                  .now_ns = fake_now,
                                  .now_arg = f};
    struct core_err err = {0};
    struct tel_store *s = tel_store_open(f->dir, &o, &err);
    if (!s)
        fail_msg("tel_store_open: %s", err.msg);
    return s;
}

/* Appends one record encoded by the real encoder. */
static void put(struct tel_store *s, int64_t t, int sev, const char *svc, const char *env,
                const char *body)
{
    struct tel_record r = {.time_ns = t, .observed_ns = t, .severity = sev, .body = body,
                           .body_len = (uint32_t)strlen(body)};
    r.res.service = svc;
    r.res.env = env;
    r.res.instance = "i-1";
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(tel_record_write_json(&r, &b), 0);
    struct tel_event ev = {.time_ns = t, .severity = sev, .service = svc, .env = env,
                           .team = "", .instance = "i-1", .line = b.data,
                           .len = (uint32_t)b.len};
    struct tel_events evs = {&ev, 1};
    struct core_err err = {0};
    assert_int_equal(tel_store_append(s, &evs, &err), 0);
    core_buf_release(&b);
}

struct got {
    char bodies[4096];
    int n;
    int64_t last_t;
    bool ordered;
    struct tel_store_cursor at;
};

static int collect(void *arg, const struct tel_store_row *row)
{
    struct got *g = arg;
    json_error_t je;
    json_t *j = json_loadb(row->line, row->len, 0, &je);
    assert_non_null(j);
    const char *body = json_string_value(json_object_get(j, "body"));
    size_t l = strlen(g->bodies);
    snprintf(g->bodies + l, sizeof(g->bodies) - l, "%s%s", g->n ? "," : "", body ? body : "?");
    json_decref(j);
    if (g->n && row->time_ns < g->last_t)
        g->ordered = false;
    g->last_t = row->time_ns;
    g->n++;
    g->at = row->at;
    return 0;
}

static struct got query(const char *dir, struct tel_store_query *q)
{
    struct got g = {.ordered = true};
    struct core_err err = {0};
    int rc = tel_store_query(dir, q, collect, &g, &err);
    if (rc)
        fail_msg("tel_store_query: %d %s", rc, err.msg);
    return g;
}

static int count_files(const char *dir, const char *ext)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strlen(de->d_name) > 4 && strcmp(de->d_name + strlen(de->d_name) - 4, ext) == 0)
            n++;
    if (d)
        closedir(d);
    return n;
}

static void test_filters(void **state)
{
    struct fix *f = *state;
    struct tel_store *s = open_store(f, 0, 0, 0);
    put(s, T0 + 1 * SEC, TEL_SEV_INFO, "api", "prod", "a1");
    put(s, T0 + 2 * SEC, TEL_SEV_WARN, "web", "prod", "w1");
    put(s, T0 + 3 * SEC, TEL_SEV_ERROR, "api", "staging", "a2 failed");
    put(s, T0 + 4 * SEC, TEL_SEV_DEBUG, "api", "prod", "a3 \"quoted\"");
    put(s, T0 + 5 * SEC, TEL_SEV_WARN, "api", "prod", "a4 failed");

    struct tel_store_query q = {.service = "api"};
    struct got g = query(f->dir, &q);
    assert_string_equal(g.bodies, "a1,a2 failed,a3 \"quoted\",a4 failed");
    assert_true(g.ordered);

    q = (struct tel_store_query){.service = "api", .env = "prod"};
    assert_string_equal(query(f->dir, &q).bodies, "a1,a3 \"quoted\",a4 failed");

    q = (struct tel_store_query){.service = "api", .min_severity = TEL_SEV_WARN};
    assert_string_equal(query(f->dir, &q).bodies, "a2 failed,a4 failed");

    q = (struct tel_store_query){.service = "api", .since_ns = T0 + 2 * SEC,
                                 .until_ns = T0 + 4 * SEC};
    assert_string_equal(query(f->dir, &q).bodies, "a2 failed");

    q = (struct tel_store_query){.grep = "failed"};
    assert_string_equal(query(f->dir, &q).bodies, "a2 failed,a4 failed");
    q = (struct tel_store_query){.grep = "FAILED"}; /* case-sensitive */
    assert_int_equal(query(f->dir, &q).n, 0);
    q = (struct tel_store_query){.grep = "\"quoted\""}; /* the body, not only the raw line */
    assert_string_equal(query(f->dir, &q).bodies, "a3 \"quoted\"");

    q = (struct tel_store_query){.service = "nobody"};
    assert_int_equal(query(f->dir, &q).n, 0);
    q = (struct tel_store_query){.service = "ap"}; /* no prefix matches */
    assert_int_equal(query(f->dir, &q).n, 0);
    tel_store_close(s);
}

static void test_limit_newest_oldest_first(void **state)
{
    struct fix *f = *state;
    struct tel_store *s = open_store(f, 300, 0, 0); /* several segments too */
    for (int i = 0; i < 10; i++) {
        char b[16];
        snprintf(b, sizeof(b), "m%d", i);
        put(s, T0 + i * SEC, TEL_SEV_INFO, "api", "prod", b);
    }
    struct tel_store_query q = {.service = "api", .limit = 3};
    assert_string_equal(query(f->dir, &q).bodies, "m7,m8,m9");
    q.limit = 50;
    assert_int_equal(query(f->dir, &q).n, 10);
    q = (struct tel_store_query){.service = "api", .limit = 2, .until_ns = T0 + 5 * SEC};
    assert_string_equal(query(f->dir, &q).bodies, "m3,m4");
    tel_store_close(s);
}

static void test_rotation(void **state)
{
    struct fix *f = *state;
    struct tel_store *s = open_store(f, 400, 0, 0);
    for (int i = 0; i < 20; i++)
        put(s, T0 + i * SEC, TEL_SEV_INFO, "api", "prod", "a line of some length");
    assert_true(count_files(f->dir, ".log") >= 5);
    /* by time: an hour on the store's clock starts a segment even when small */
    tel_store_close(s);
    s = open_store(f, 0, 0, 0);
    int before = count_files(f->dir, ".log");
    put(s, T0, TEL_SEV_INFO, "api", "prod", "x");
    f->now += 3601 * SEC;
    put(s, T0, TEL_SEV_INFO, "api", "prod", "y");
    assert_int_equal(count_files(f->dir, ".log"), before + 1);
    tel_store_close(s);
    struct tel_store_query q = {.service = "api"};
    assert_int_equal(query(f->dir, &q).n, 22);
}

static void test_reopen_starts_new_segment(void **state)
{
    struct fix *f = *state;
    struct tel_store *s = open_store(f, 0, 0, 0);
    put(s, T0, TEL_SEV_INFO, "api", "prod", "one");
    tel_store_close(s);
    s = open_store(f, 0, 0, 0);
    put(s, T0, TEL_SEV_INFO, "api", "prod", "two");
    tel_store_close(s);
    assert_int_equal(count_files(f->dir, ".log"), 2);
    struct tel_store_query q = {0};
    assert_string_equal(query(f->dir, &q).bodies, "one,two");
}

static void test_retention_size(void **state)
{
    struct fix *f = *state;
    struct tel_store *s = open_store(f, 1000, 3000, 0);
    for (int i = 0; i < 100; i++) {
        char b[64];
        snprintf(b, sizeof(b), "line %03d padding padding padding", i);
        put(s, T0 + i * SEC, TEL_SEV_INFO, "api", "prod", b);
    }
    tel_store_retention(s);
    /* what is left fits (plus at most the segment being written) and is the newest */
    int64_t total = 0;
    DIR *d = opendir(f->dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
        if (strstr(de->d_name, ".log")) {
            FILE *fp = fopen(p, "r");
            fseek(fp, 0, SEEK_END);
            total += ftell(fp);
            fclose(fp);
        }
    }
    closedir(d);
    assert_true(total <= 3000 + 1000 + 200);
    struct tel_store_query q = {.service = "api"};
    struct got g = query(f->dir, &q);
    assert_true(g.n > 5 && g.n < 100);
    assert_non_null(strstr(g.bodies, "line 099"));
    assert_null(strstr(g.bodies, "line 000"));
    tel_store_close(s);
}

static void test_retention_age(void **state)
{
    struct fix *f = *state;
    struct tel_store *s = open_store(f, 0, 0, 7 * 86400 * SEC);
    put(s, T0, TEL_SEV_INFO, "api", "prod", "old");
    f->now += 2 * 3600 * SEC; /* next segment */
    put(s, T0, TEL_SEV_INFO, "api", "prod", "newer");
    f->now += 6 * 86400 * SEC; /* "old" is 6d2h old: kept */
    put(s, T0, TEL_SEV_INFO, "api", "prod", "newest");
    tel_store_retention(s);
    struct tel_store_query q = {0};
    assert_string_equal(query(f->dir, &q).bodies, "old,newer,newest");
    f->now += 23 * 3600 * SEC; /* "old" 7d1h, "newer" 6d23h */
    /* the append checks retention itself: its last check is more than 10 s old */
    put(s, T0, TEL_SEV_INFO, "api", "prod", "latest");
    assert_string_equal(query(f->dir, &q).bodies, "newer,newest,latest");
    f->now += 30 * 86400 * SEC; /* everything but the segment being written */
    tel_store_retention(s);
    struct got g = query(f->dir, &q);
    assert_true(g.n <= 1);
    tel_store_close(s);
}

static void test_index_skips_segments(void **state)
{
    struct fix *f = *state;
    struct tel_store *s = open_store(f, 0, 0, 0);
    for (int i = 0; i < 50; i++)
        put(s, T0 + i * SEC, TEL_SEV_INFO, "api", "prod", "api line");
    f->now += 3601 * SEC;
    for (int i = 0; i < 50; i++)
        put(s, T0 + 3600 * SEC + i * SEC, TEL_SEV_INFO, "web", "prod", "web line");
    f->now += 3601 * SEC;
    put(s, T0 + 7200 * SEC, TEL_SEV_INFO, "api", "prod", "api again");
    tel_store_close(s); /* writes every index */
    assert_int_equal(count_files(f->dir, ".idx"), 3);

    struct tel_store_stats st;
    struct tel_store_query q = {.service = "web", .stats = &st};
    assert_int_equal(query(f->dir, &q).n, 50);
    assert_int_equal(st.segments, 3);
    assert_int_equal(st.segments_skipped, 2);
    assert_int_equal(st.lines, 50);

    q = (struct tel_store_query){.service = "api", .since_ns = T0 + 7000 * SEC, .stats = &st};
    assert_string_equal(query(f->dir, &q).bodies, "api again");
    assert_int_equal(st.segments_skipped, 2);
    assert_int_equal(st.lines, 1);

    q = (struct tel_store_query){.until_ns = T0 + 10 * SEC, .stats = &st};
    assert_int_equal(query(f->dir, &q).n, 10);
    assert_int_equal(st.segments_skipped, 2);

    /* a stale index (the segment grew after it was written) still finds everything */
    char p[600];
    snprintf(p, sizeof(p), "%s/%020d.log", f->dir, 2);
    FILE *fp = fopen(p, "a");
    fputs("{\"ts\":\"2026-01-01T01:01:00.000Z\",\"severity\":\"INFO\",\"severity_number\":9,"
          "\"body\":\"late api\",\"resource\":{\"service.name\":\"api\"}}\n",
          fp);
    fclose(fp);
    q = (struct tel_store_query){.service = "api", .grep = "late"};
    assert_string_equal(query(f->dir, &q).bodies, "late api");
}

static void test_follow_cursor_and_torn_line(void **state)
{
    struct fix *f = *state;
    struct tel_store *s = open_store(f, 0, 0, 0);
    put(s, T0, TEL_SEV_INFO, "api", "prod", "one");
    put(s, T0, TEL_SEV_INFO, "web", "prod", "other");
    struct tel_store_cursor end = {0, 0};
    struct tel_store_query q = {.service = "api", .end = &end};
    assert_string_equal(query(f->dir, &q).bodies, "one");
    assert_true(end.seg > 0 && end.off > 0);

    put(s, T0, TEL_SEV_INFO, "api", "prod", "two");
    f->now += 3601 * SEC; /* the follower crosses a rotation */
    put(s, T0, TEL_SEV_INFO, "api", "prod", "three");
    q = (struct tel_store_query){.service = "api", .has_after = true, .after = end, .end = &end};
    struct got g = query(f->dir, &q);
    assert_string_equal(g.bodies, "two,three");
    assert_int_equal(g.at.seg, end.seg);
    assert_int_equal(g.at.off, end.off);
    q.after = end;
    assert_int_equal(query(f->dir, &q).n, 0); /* nothing new */
    tel_store_close(s);

    /* a line being written (no newline yet) is not read, and the cursor stays before it */
    char p[600];
    snprintf(p, sizeof(p), "%s/%020llu.log", f->dir, (unsigned long long)end.seg);
    FILE *fp = fopen(p, "a");
    fputs("{\"ts\":\"2026-01-01T00:00:00.000Z\",\"severity_number\":9,\"body\":\"fou", fp);
    fclose(fp);
    q.after = end;
    struct tel_store_cursor before = end;
    assert_int_equal(query(f->dir, &q).n, 0);
    assert_int_equal(end.off, before.off);
    fp = fopen(p, "a");
    fputs("r\",\"resource\":{\"service.name\":\"api\"}}\n", fp);
    fclose(fp);
    q.after = end;
    assert_string_equal(query(f->dir, &q).bodies, "four");
}

struct writer {
    struct fix *f;
    struct tel_store *s;
    int n;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < w->n; i++) {
        char b[32];
        snprintf(b, sizeof(b), "c%05d", i);
        put(w->s, T0 + i, TEL_SEV_INFO, "api", "prod", b);
    }
    return NULL;
}

static int count_valid(void *arg, const struct tel_store_row *row)
{
    json_error_t je;
    json_t *j = json_loadb(row->line, row->len, 0, &je);
    assert_non_null(j); /* never a torn line */
    json_decref(j);
    (*(int *)arg)++;
    return 0;
}

static void test_concurrent_append_and_query(void **state)
{
    struct fix *f = *state;
    struct writer w = {f, open_store(f, 20000, 0, 0), 3000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
    int last = 0, follow = 0;
    struct tel_store_cursor cur = {0, 0};
    for (int round = 0; round < 200; round++) {
        int n = 0;
        struct core_err err = {0};
        struct tel_store_query q = {.service = "api"};
        assert_int_equal(tel_store_query(f->dir, &q, count_valid, &n, &err), 0);
        assert_true(n >= last);
        last = n;
        /* a follower with a cursor sees each line once */
        struct tel_store_query fq = {.service = "api", .has_after = true, .after = cur,
                                     .end = &cur};
        assert_int_equal(tel_store_query(f->dir, &fq, count_valid, &follow, &err), 0);
        if (last == w.n)
            break;
    }
    pthread_join(t, NULL);
    struct core_err err = {0};
    struct tel_store_query fq = {.service = "api", .has_after = true, .after = cur, .end = &cur};
    assert_int_equal(tel_store_query(f->dir, &fq, count_valid, &follow, &err), 0);
    assert_int_equal(follow, w.n);
    int n = 0;
    struct tel_store_query q = {.service = "api"};
    assert_int_equal(tel_store_query(f->dir, &q, count_valid, &n, &err), 0);
    assert_int_equal(n, w.n);
    tel_store_close(w.s);
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t t = 0;
    assert_int_equal(tel_store_parse_time("2026-01-01T00:00:00Z", 0, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(tel_store_parse_time("2026-01-01T02:00:00.5+02:00", 0, &t), 0);
    assert_int_equal(t, T0 + SEC / 2);
    assert_int_equal(tel_store_parse_time("15m", T0, &t), 0);
    assert_int_equal(t, T0 - 15 * 60 * SEC);
    assert_int_equal(tel_store_parse_time("7d", T0, &t), 0);
    assert_int_equal(t, T0 - 7 * 86400 * SEC);
    assert_int_equal(tel_store_parse_time("1w", T0, &t), 0);
    assert_int_equal(t, T0 - 7 * 86400 * SEC);
    assert_int_equal(tel_store_parse_time("yesterday", T0, &t), CORE_E_INVAL);
    assert_int_equal(tel_store_parse_time("2026-13-01T00:00:00Z", T0, &t), CORE_E_INVAL);
    assert_int_equal(tel_store_parse_time("", T0, &t), CORE_E_INVAL);
}

static void test_missing_dir_is_empty(void **state)
{
    struct fix *f = *state;
    char p[400];
    snprintf(p, sizeof(p), "%s/nothing-here", f->dir);
    struct tel_store_cursor end = {7, 7};
    struct tel_store_query q = {.end = &end};
    assert_int_equal(query(p, &q).n, 0);
    assert_int_equal(end.seg, 0);
}

/* The store sink through the real engine: pushed lines come back from the store dir. */
static void test_store_sink_through_engine(void **state)
{
    struct fix *f = *state;
    struct core_err err = {0};
    struct tel_engine_config cfg = {
        .data_dir = f->dir,
        .config_text = "sources: []\ntransforms: []\n"
                       "sinks: [{type: store, retention_age: 1d, retention_bytes: 64Mi}]\n",
        .workers = 2};
    struct tel_engine *e = tel_engine_start(&cfg, &err);
    if (!e)
        fail_msg("tel_engine_start: %s", err.msg);
    struct tel_origin o = {.source = "test", .service = "api", .env = "prod"};
    const char lines[] = "{\"level\":\"warn\",\"msg\":\"one\"}\nplain two\n";
    assert_int_equal(tel_engine_push(e, &o, lines, sizeof(lines) - 1, false, &err), 0);
    assert_int_equal(tel_engine_flush(e, 5000, &err), 0);
    char dir[600];
    tel_store_dir(f->dir, dir, sizeof(dir));
    struct tel_store_query q = {.service = "api", .env = "prod"};
    assert_string_equal(query(dir, &q).bodies, "one,plain two");
    q.min_severity = TEL_SEV_WARN;
    assert_string_equal(query(dir, &q).bodies, "one");
    tel_engine_stop(e, 5000);
}

/* Config mistakes of the store and HTTP sinks are errors with a position and a hint. */
static void test_sink_config_errors(void **state)
{
    struct fix *f = *state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"sources: []\nsinks: [{type: store, retention_ag: 1d}]\n", "did you mean"},
        {"sources: []\nsinks: [{type: store, retention_bytes: lots}]\n", "retention_bytes"},
        {"sources: []\nsinks: [{type: loki}]\n", "needs a url"},
        {"sources: []\nsinks: [{type: loki, url: 'http://x', labels: {bad-name: v}}]\n",
         "label 'bad-name'"},
        {"sources: []\nsinks: [{type: http, url: 'http://x', format: xml}]\n", "ndjson or json"},
        {"sources: []\nsinks: [{type: elasticsearch, url: 'ftp://x'}]\n", "http://"},
        {"sources: []\nsinks: [{type: http, url: 'http://x', headers: {'X-A': \"a\\nb\"}}]\n",
         "header"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct core_err err = {0};
        struct tel_engine_config cfg = {.data_dir = f->dir, .config_text = cases[i].yaml};
        struct tel_engine *e = tel_engine_start(&cfg, &err);
        if (e)
            fail_msg("case %zu started", i);
        if (!strstr(err.msg, cases[i].want) || !strstr(err.msg, "<config>:"))
            fail_msg("case %zu: '%s' does not say '%s'", i, err.msg, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_newest_oldest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_starts_new_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_skips_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_cursor_and_torn_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_append_and_query, setup, teardown),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test_setup_teardown(test_missing_dir_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_sink_through_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests_name("telemetry_logstore", tests, NULL, NULL);
}
