/* Unit tests for the telemetry engine: lines pushed through parse, transforms and a file sink
 * in order; redaction and sampling; the disk buffer (append, read, commit, replay after a crash
 * without commit, torn frames, limits); config errors with line:column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "telemetry/telemetry.h"
#include "telemetry/telemetry_int.h"

struct fx {
    char dir[256];
    char out[400];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-tel-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->out, sizeof(f->out), "%s/out.jsonl", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static struct tel_engine *start(struct fx *f, const char *extra_sink, const char *transforms)
{
    char cfg[2000];
    snprintf(cfg, sizeof(cfg),
             "workers: 2\n"
             "sources: []\n"
             "transforms: %s\n"
             "sinks:\n"
             "  - {type: file, path: '%s'%s}\n",
             transforms, f->out, extra_sink);
    struct tel_engine_config c = {.data_dir = f->dir, .config_text = cfg};
    struct core_err err = {0};
    struct tel_engine *e = tel_engine_start(&c, &err);
    if (!e)
        fprintf(stderr, "tel_engine_start: %s\n", err.msg);
    return e;
}

/* Lines of the output file as JSON objects. */
static json_t *read_out(struct fx *f)
{
    json_t *arr = json_array();
    FILE *fp = fopen(f->out, "r");
    if (!fp)
        return arr;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, fp)) > 0) {
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)n, 0, &jerr);
        if (!o)
            fprintf(stderr, "not JSON: %s (%s)\n", line, jerr.text);
        assert_non_null(o);
        json_array_append_new(arr, o);
    }
    free(line);
    fclose(fp);
    return arr;
}

static void lines_in_order_through_a_file_sink(void **state)
{
    struct fx *f = *state;
    struct tel_engine *e = start(f, "", "[]");
    assert_non_null(e);
    struct tel_origin o = {.source = "test", .service = "payments-api", .env = "dev"};
    struct core_err err = {0};
    const int n = 20000;
    struct core_buf b;
    core_buf_init(&b, 0);
    for (int i = 0; i < n; i++) {
        core_buf_addf(&b, "{\"level\":\"info\",\"msg\":\"line %d\",\"i\":%d}\n", i, i);
        if (b.len > 100000 || i == n - 1) {
            assert_int_equal(tel_engine_push(e, &o, b.data, b.len, false, &err), 0);
            b.len = 0;
        }
    }
    core_buf_release(&b);
    assert_int_equal(tel_engine_flush(e, 60000, &err), 0);
    assert_true(tel_engine_durable_seq(e) > 0);
    struct core_buf m;
    core_buf_init(&m, 0);
    assert_int_equal(tel_engine_metrics(e, &m), 0);
    assert_non_null(strstr(m.data, "pave_telemetry_lines_total 20000"));
    core_buf_release(&m);
    tel_engine_stop(e, 5000);
    json_t *out = read_out(f);
    assert_int_equal(json_array_size(out), n);
    for (int i = 0; i < n; i++) {
        json_t *o2 = json_array_get(out, (size_t)i);
        char want[32];
        snprintf(want, sizeof(want), "line %d", i);
        assert_string_equal(json_string_value(json_object_get(o2, "body")), want);
    }
    json_t *r = json_object_get(json_array_get(out, 0), "resource");
    assert_string_equal(json_string_value(json_object_get(r, "service.name")), "payments-api");
    json_decref(out);
}

static void redact_and_sample(void **state)
{
    struct fx *f = *state;
    struct tel_engine *e =
        start(f, "", "[{type: redact}, {type: sample, rate: 10, keep_at_least: warn}]");
    assert_non_null(e);
    struct core_err err = {0};
    const char *lines = "{\"level\":\"error\",\"msg\":\"mail alice@example.com now\"}\n"
                        "{\"level\":\"warn\",\"msg\":\"card 4111 1111 1111 1111\"}\n";
    assert_int_equal(tel_engine_push(e, NULL, lines, strlen(lines), false, &err), 0);
    struct core_buf b;
    core_buf_init(&b, 0);
    for (int i = 0; i < 100; i++)
        core_buf_addf(&b, "{\"level\":\"debug\",\"msg\":\"d%d\"}\n", i);
    assert_int_equal(tel_engine_push(e, NULL, b.data, b.len, false, &err), 0);
    core_buf_release(&b);
    assert_int_equal(tel_engine_flush(e, 30000, &err), 0);
    tel_engine_stop(e, 5000);
    json_t *out = read_out(f);
    assert_int_equal(json_array_size(out), 2 + 10);
    const char *b0 = json_string_value(json_object_get(json_array_get(out, 0), "body"));
    const char *b1 = json_string_value(json_object_get(json_array_get(out, 1), "body"));
    assert_null(strstr(b0, "alice@example.com"));
    assert_non_null(strstr(b0, "[REDACTED:email]"));
    assert_null(strstr(b1, "4111 1111"));
    json_decref(out);
}

static void disk_buffered_sink_delivers_once_across_restarts(void **state)
{
    struct fx *f = *state;
    const char *buf = ", name: out, buffer: {type: disk}";
    struct core_err err = {0};
    for (int round = 0; round < 2; round++) {
        struct tel_engine *e = start(f, buf, "[]");
        assert_non_null(e);
        struct core_buf b;
        core_buf_init(&b, 0);
        for (int i = 0; i < 5000; i++)
            core_buf_addf(&b, "round %d line %d\n", round, i);
        assert_int_equal(tel_engine_push(e, NULL, b.data, b.len, false, &err), 0);
        core_buf_release(&b);
        assert_int_equal(tel_engine_flush(e, 60000, &err), 0);
        tel_engine_stop(e, 5000);
    }
    json_t *out = read_out(f);
    assert_int_equal(json_array_size(out), 10000);
    json_decref(out);
}

static void diskbuf_replays_what_was_not_committed(void **state)
{
    struct fx *f = *state;
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/db", f->dir);
    struct core_err err = {0};
    struct tel_diskbuf *db = tel_diskbuf_open(dir, 0, &err);
    assert_non_null(db);
    struct tel_event ev[3] = {
        {1, TEL_SEV_INFO, "svc", "dev", "team", "i1", "{\"body\":\"a\"}", 12},
        {2, TEL_SEV_WARN, "svc", "", "", "", "{\"body\":\"b\"}", 12},
        {3, TEL_SEV_ERROR, "", "", "", "", "{\"body\":\"c\"}", 12},
    };
    struct tel_events evs = {ev, 3};
    assert_int_equal(tel_diskbuf_append(db, &evs, &err), 0);
    assert_true(tel_diskbuf_pending(db) > 0);
    struct tel_event *got = NULL;
    size_t n = 0;
    char *mem = NULL;
    assert_int_equal(tel_diskbuf_read(db, 2, 1 << 20, &got, &n, &mem, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(got[0].service, "svc");
    assert_string_equal(got[0].instance, "i1");
    assert_int_equal(got[1].severity, TEL_SEV_WARN);
    assert_memory_equal(got[1].line, "{\"body\":\"b\"}", 12);
    core_free(got);
    core_free(mem);
    assert_int_equal(tel_diskbuf_commit(db, &err), 0);
    /* "crash": read the third without committing, reopen */
    assert_int_equal(tel_diskbuf_read(db, 10, 1 << 20, &got, &n, &mem, &err), 0);
    assert_int_equal(n, 1);
    core_free(got);
    core_free(mem);
    tel_diskbuf_close(db);
    db = tel_diskbuf_open(dir, 0, &err);
    assert_non_null(db);
    assert_int_equal(tel_diskbuf_read(db, 10, 1 << 20, &got, &n, &mem, &err), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(got[0].line, "{\"body\":\"c\"}", 12);
    core_free(got);
    core_free(mem);
    assert_int_equal(tel_diskbuf_commit(db, &err), 0);
    assert_int_equal(tel_diskbuf_pending(db), 0);
    /* a torn frame at the end of the old segment is skipped; new appends go on */
    assert_int_equal(tel_diskbuf_append(db, &evs, &err), 0);
    tel_diskbuf_close(db);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "for s in '%s'/*.seg; do printf 'PVB1garbage' >> \"$s\"; done",
             dir);
    assert_int_equal(system(cmd), 0);
    db = tel_diskbuf_open(dir, 0, &err);
    assert_non_null(db);
    assert_int_equal(tel_diskbuf_append(db, &evs, &err), 0);
    size_t total = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(tel_diskbuf_read(db, 100, 1 << 20, &got, &n, &mem, &err), 0);
        total += n;
        core_free(got);
        core_free(mem);
        assert_int_equal(tel_diskbuf_commit(db, &err), 0);
    }
    assert_int_equal(total, 6);
    tel_diskbuf_close(db);
}

static void diskbuf_full_refuses_without_writing(void **state)
{
    struct fx *f = *state;
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/small", f->dir);
    struct core_err err = {0};
    struct tel_diskbuf *db = tel_diskbuf_open(dir, 4096, &err);
    assert_non_null(db);
    char line[1000];
    memset(line, 'x', sizeof(line));
    struct tel_event ev = {1, 9, "", "", "", "", line, sizeof(line)};
    struct tel_events evs = {&ev, 1};
    int full = 0;
    for (int i = 0; i < 10; i++)
        if (tel_diskbuf_append(db, &evs, &err) == CORE_E_TOO_BIG)
            full++;
    assert_true(full > 0);
    assert_true(tel_diskbuf_pending(db) <= 4096);
    tel_diskbuf_close(db);
}

static void config_errors_name_line_and_column(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct tel_engine_config c = {.data_dir = f->dir,
                                  .config_text = "sources: []\nsinks:\n  - {type: fiel}\n"};
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "<config>:3:"));
    assert_non_null(strstr(err.msg, "unknown sink type 'fiel'"));
    c.config_text = "sources: []\nsinkz: []\n";
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "did you mean 'sinks'"));
    c.config_text = "sources: []\nsinks: [{type: file, path: /tmp/x, when: {severity: loud}}]\n";
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "unknown severity 'loud'"));
    c.config_text = "sources: []\nsinks: [{type: file, path: relative}]\n";
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "absolute path"));
    c.config_text = "sources: []\ntransforms: [{type: redact, patterns: ['(unclosed']}]\n"
                    "sinks: [{type: stdout}]\n";
    assert_null(tel_engine_start(&c, &err));
    c.config_text = "sources: []\nsinks: [{type: stdout, buffer: {type: disk}}]\n";
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "needs a name"));
    c.config_text = "[1, 2]";
    assert_null(tel_engine_start(&c, &err));
}

static void sink_when_routes_by_service_and_severity(void **state)
{
    struct fx *f = *state;
    struct tel_engine *e = start(f, ", when: {service: ledger, severity: warn}", "[]");
    assert_non_null(e);
    struct core_err err = {0};
    struct tel_origin a = {.source = "t", .service = "ledger"};
    struct tel_origin b = {.source = "t", .service = "other"};
    const char *lines = "{\"level\":\"info\",\"msg\":\"no\"}\n{\"level\":\"error\",\"msg\":\"yes\"}\n";
    assert_int_equal(tel_engine_push(e, &a, lines, strlen(lines), false, &err), 0);
    assert_int_equal(tel_engine_push(e, &b, lines, strlen(lines), false, &err), 0);
    assert_int_equal(tel_engine_flush(e, 30000, &err), 0);
    tel_engine_stop(e, 5000);
    json_t *out = read_out(f);
    assert_int_equal(json_array_size(out), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "body")), "yes");
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(lines_in_order_through_a_file_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(redact_and_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(disk_buffered_sink_delivers_once_across_restarts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(diskbuf_replays_what_was_not_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(diskbuf_full_refuses_without_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(config_errors_name_line_and_column, setup, teardown),
        cmocka_unit_test_setup_teardown(sink_when_routes_by_service_and_severity, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
