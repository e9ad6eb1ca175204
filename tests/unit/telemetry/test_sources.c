/* Sources of the telemetry engine (file, replicas, syslog, platform, http), each driven through
 * a real engine with a `file` sink; waits are bounded polls of the output file. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "store/store.h"
#include "telemetry/telemetry.h"

#define WAIT_MS 15000

struct fx {
    char dir[256];
    char out[320];
    struct tel_engine *e;
    struct store *st; /* the audit source's store (NULL: none) */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-tel-src-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->out, sizeof(f->out), "%s/out.jsonl", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tel_engine_stop(f->e, 5000);
    store_close(f->st);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Starts an engine with the given sources (YAML list items). */
static struct tel_engine *start(struct fx *f, const char *sources_fmt)
{
    char sources[2048] = "", cfg[4096];
    /* "DIR" in sources_fmt stands for the temp dir */
    for (const char *p = sources_fmt; *p;) {
        size_t l = strlen(sources);
        if (strncmp(p, "DIR", 3) == 0) {
            snprintf(sources + l, sizeof(sources) - l, "%s", f->dir);
            p += 3;
        } else {
            snprintf(sources + l, sizeof(sources) - l, "%c", *p++);
        }
    }
    snprintf(cfg, sizeof(cfg), "workers: 2\nsources:\n%s\ntransforms: []\nsinks:\n"
                               "  - {type: file, path: %s}\n",
             sources, f->out);
    struct tel_engine_config c = {
        .data_dir = f->dir, .config_text = cfg, .st = f->st, .workers = 2};
    struct core_err err = {0};
    struct tel_engine *e = tel_engine_start(&c, &err);
    if (!e)
        fprintf(stderr, "tel_engine_start: %s\n", err.msg);
    assert_non_null(e);
    return e;
}

static char *slurp(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    if (core_file_read(path, 64 << 20, &text, &len, NULL))
        return core_strdup("");
    return text;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Polls the output until needle appears at least n times (bounded). */
static bool wait_for(struct fx *f, const char *needle, int n)
{
    for (int waited = 0; waited < WAIT_MS; waited += 20) {
        char *t = slurp(f->out);
        int c = count(t, needle);
        core_free(t);
        if (c >= n)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

static int out_count(struct fx *f, const char *needle)
{
    char *t = slurp(f->out);
    int c = count(t, needle);
    core_free(t);
    return c;
}

static void append(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void flush(struct fx *f)
{
    struct core_err err = {0};
    assert_int_equal(tel_engine_flush(f->e, WAIT_MS, &err), 0);
}

static const char file_src[] =
    "  - {type: file, name: app, path: DIR/app.log, service: web, env: prod, team: core}";

/* ---- file ---------------------------------------------------------------------------------- */

static void test_file_tails_and_follows_rotation(void **state)
{
    struct fx *f = *state;
    char log[300], old[300];
    snprintf(log, sizeof(log), "%s/app.log", f->dir);
    snprintf(old, sizeof(old), "%s/app.log.1", f->dir);
    append(log, "line-one\nline-two\n");
    f->e = start(f, file_src);
    assert_true(wait_for(f, "line-two", 1));
    char *t = slurp(f->out);
    assert_non_null(strstr(t, "\"service.name\":\"web\""));
    assert_non_null(strstr(t, "\"deployment.environment\":\"prod\""));
    assert_non_null(strstr(t, "\"team\":\"core\""));
    assert_non_null(strstr(t, "\"log.file.path\":"));
    core_free(t);
    /* rotate: rename, the writer still appends to the old file, then a new file appears */
    assert_int_equal(rename(log, old), 0);
    append(old, "line-three\n");
    append(log, "line-four\n");
    assert_true(wait_for(f, "line-three", 1));
    assert_true(wait_for(f, "line-four", 1));
    append(log, "line-five\n");
    assert_true(wait_for(f, "line-five", 1));
    flush(f);
    assert_int_equal(out_count(f, "line-one"), 1);
    assert_int_equal(out_count(f, "line-three"), 1);
    assert_int_equal(out_count(f, "line-four"), 1);
}

static void test_file_truncation_restarts_at_zero(void **state)
{
    struct fx *f = *state;
    char log[300];
    snprintf(log, sizeof(log), "%s/app.log", f->dir);
    append(log, "before-truncate-1\nbefore-truncate-2\n");
    f->e = start(f, file_src);
    assert_true(wait_for(f, "before-truncate-2", 1));
    assert_int_equal(truncate(log, 0), 0);
    append(log, "after\n");
    assert_true(wait_for(f, "\"body\":\"after\"", 1));
    flush(f);
    assert_int_equal(out_count(f, "before-truncate-1"), 1);
}

static void test_file_partial_line_waits_for_newline(void **state)
{
    struct fx *f = *state;
    char log[300];
    snprintf(log, sizeof(log), "%s/app.log", f->dir);
    f->e = start(f, file_src);
    /* both halves land well within the 1 s partial-line grace */
    append(log, "hello ");
    append(log, "world\n");
    assert_true(wait_for(f, "\"body\":\"hello world\"", 1));
    /* an unterminated last line is flushed as a line after a while */
    append(log, "no-newline-yet");
    assert_true(wait_for(f, "\"body\":\"no-newline-yet\"", 1));
    flush(f);
    assert_int_equal(out_count(f, "\"body\":\"hello \""), 0);
}

static void test_file_checkpoint_resumes_without_duplicates(void **state)
{
    struct fx *f = *state;
    char log[300], ck[300];
    snprintf(log, sizeof(log), "%s/app.log", f->dir);
    snprintf(ck, sizeof(ck), "%s/telemetry/checkpoints/app.json", f->dir);
    append(log, "ck-1\nck-2\nck-3\n");
    f->e = start(f, file_src);
    assert_true(wait_for(f, "ck-3", 1));
    flush(f);
    tel_engine_stop(f->e, 5000);
    f->e = NULL;
    struct stat st;
    assert_int_equal(stat(ck, &st), 0);
    char *c = slurp(ck);
    assert_non_null(strstr(c, "\"offset\":15"));
    core_free(c);
    append(log, "ck-4\n");
    f->e = start(f, file_src);
    assert_true(wait_for(f, "ck-4", 1));
    flush(f);
    assert_int_equal(out_count(f, "ck-1"), 1);
    assert_int_equal(out_count(f, "ck-3"), 1);
    assert_int_equal(out_count(f, "ck-4"), 1);
}

/* Lines that straddle the source's reads (256 KiB), and one line longer than a read, arrive
 * whole, once and in order (the unfinished line of a read is carried over to the next one).
 * After a clean stop the checkpoint is at the file's end. */
static void test_file_lines_across_reads(void **state)
{
    struct fx *f = *state;
    char log[300], ck[300];
    snprintf(log, sizeof(log), "%s/app.log", f->dir);
    snprintf(ck, sizeof(ck), "%s/telemetry/checkpoints/app.json", f->dir);
    enum { LINES = 4000, LONG_AT = 1500, LONG_LEN = 300000 };
    char *big = malloc(LONG_LEN + 64);
    assert_non_null(big);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    long long size = 0;
    for (int i = 0; i < LINES; i++) {
        char line[400];
        /* lengths vary so line ends fall everywhere relative to the reads */
        int n = snprintf(line, sizeof(line), "line-%05d-%.*s\n", i, 50 + (i * 37) % 300,
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        assert_int_equal(write(fd, line, (size_t)n), n);
        size += n;
        if (i == LONG_AT) {
            int h = snprintf(big, 64, "long-line-");
            memset(big + h, 'y', LONG_LEN - (size_t)h - 1);
            big[LONG_LEN - 1] = '\n';
            assert_int_equal(write(fd, big, LONG_LEN), LONG_LEN);
            size += LONG_LEN;
        }
    }
    close(fd);
    f->e = start(f, file_src);
    assert_true(wait_for(f, "\"body\":\"line-", LINES));
    flush(f);
    char *t = slurp(f->out);
    const char *p = t;
    for (int i = 0; i < LINES; i++) {
        char want[64];
        snprintf(want, sizeof(want), "\"body\":\"line-%05d-x", i);
        const char *at = strstr(p, want);
        assert_non_null(at);
        p = at + 1; /* in order */
        assert_null(strstr(p, want));
        const char *end = strchr(at + 8, '"');
        assert_non_null(end);
        assert_int_equal(end - (at + 8), 11 + 50 + (i * 37) % 300);
    }
    const char *lg = strstr(t, "\"body\":\"long-line-");
    assert_non_null(lg);
    assert_int_equal(strchr(lg + 8, '"') - (lg + 8), LONG_LEN - 1);
    assert_int_equal(count(t, "long-line-"), 1);
    core_free(t);
    free(big);
    tel_engine_stop(f->e, 5000);
    f->e = NULL;
    char *c = slurp(ck), want[64];
    snprintf(want, sizeof(want), "\"offset\":%lld", size);
    assert_non_null(strstr(c, want));
    core_free(c);
}

static void test_file_read_from_end_and_glob(void **state)
{
    struct fx *f = *state;
    char a[300], b[300];
    snprintf(a, sizeof(a), "%s/g-a.log", f->dir);
    snprintf(b, sizeof(b), "%s/g-b.log", f->dir);
    append(a, "old-a\n");
    f->e = start(f, "  - {type: file, path: 'DIR/g-*.log', read_from: end}");
    append(a, "new-a\n");
    append(b, "new-b\n"); /* appears later: read from its beginning */
    assert_true(wait_for(f, "new-a", 1));
    assert_true(wait_for(f, "new-b", 1));
    flush(f);
    assert_int_equal(out_count(f, "old-a"), 0);
}

static void test_file_config_errors(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "sources: [{type: file, path: relative.log}]\nsinks: []\n");
    struct tel_engine_config c = {.data_dir = f->dir, .config_text = cfg};
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "absolute path"));
    snprintf(cfg, sizeof(cfg), "sources: [{type: file, path: /x.log, parsr: auto}]\nsinks: []\n");
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "did you mean 'parser'"));
}

/* ---- replicas ------------------------------------------------------------------------------ */

static void test_replicas_origin_from_name_and_spec(void **state)
{
    struct fx *f = *state;
    char dir[300], path[400];
    snprintf(dir, sizeof(dir), "%s/deploy/replicas/web.prod.3", f->dir);
    assert_int_equal(core_mkdir_p(dir, 0700, NULL), 0);
    snprintf(path, sizeof(path), "%s/spec.json", dir);
    append(path, "{\"digest\":\"sha256:0123456789abcdef0123456789abcdef\"}");
    snprintf(dir, sizeof(dir), "%s/deploy/logs", f->dir);
    assert_int_equal(core_mkdir_p(dir, 0700, NULL), 0);
    snprintf(path, sizeof(path), "%s/web.prod.3.log", dir);
    append(path, "{\"msg\":\"replica says hi\",\"level\":\"warn\"}\n");
    snprintf(path, sizeof(path), "%s/not-a-replica.log", dir);
    append(path, "ignored-line\n");
    f->e = start(f, "  - {type: replicas}");
    assert_true(wait_for(f, "replica says hi", 1));
    char *t = slurp(f->out);
    assert_non_null(strstr(t, "\"service.name\":\"web\""));
    assert_non_null(strstr(t, "\"deployment.environment\":\"prod\""));
    assert_non_null(strstr(t, "\"service.instance.id\":\"web.prod.3\""));
    assert_non_null(strstr(t, "\"service.version\":\"0123456789ab\""));
    assert_non_null(strstr(t, "\"severity\":\"WARN\""));
    core_free(t);
    /* a replica that starts later, whose log is deleted after it wrote */
    snprintf(path, sizeof(path), "%s/api.dev.1.log", dir);
    append(path, "later replica\n");
    assert_true(wait_for(f, "later replica", 1));
    assert_int_equal(unlink(path), 0);
    flush(f);
    assert_int_equal(out_count(f, "ignored-line"), 0);
}

/* ---- syslog -------------------------------------------------------------------------------- */

static int free_port(int type)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static struct tel_engine *start_syslog(struct fx *f, const char *proto, int port)
{
    char src[200];
    snprintf(src, sizeof(src), "  - {type: syslog, listen: '%s://127.0.0.1:%d'}", proto, port);
    return start(f, src);
}

static void test_syslog_udp(void **state)
{
    struct fx *f = *state;
    int port = free_port(SOCK_DGRAM);
    f->e = start_syslog(f, "udp", port);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    const char *m1 = "<11>1 2024-05-01T10:00:00Z host1 billing 42 - - udp boom";
    const char *m2 = "<12>May  1 10:00:00 host2 cron: udp two\nlines";
    assert_true(sendto(fd, m1, strlen(m1), 0, (struct sockaddr *)&a, sizeof(a)) > 0);
    assert_true(sendto(fd, m2, strlen(m2), 0, (struct sockaddr *)&a, sizeof(a)) > 0);
    close(fd);
    assert_true(wait_for(f, "udp boom", 1));
    assert_true(wait_for(f, "udp two", 1));
    flush(f);
    char *t = slurp(f->out);
    const char *l1 = strstr(t, "udp boom");
    const char *nl = l1 ? strchr(l1, '\n') : NULL;
    const char *start1 = l1;
    while (start1 && start1 > t && start1[-1] != '\n')
        start1--;
    assert_non_null(start1);
    char line[2048];
    snprintf(line, sizeof(line), "%.*s", (int)(nl - start1), start1);
    assert_non_null(strstr(line, "\"severity_number\":17"));
    assert_non_null(strstr(line, "\"host.name\":\"host1\""));
    /* the embedded newline kept the message one record */
    assert_int_equal(count(t, "lines"), 1);
    assert_null(strstr(t, "\"body\":\"lines\""));
    assert_non_null(strstr(t, "\"severity_number\":13"));
    core_free(t);
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void test_syslog_tcp_both_framings(void **state)
{
    struct fx *f = *state;
    int port = free_port(SOCK_STREAM);
    f->e = start_syslog(f, "tcp", port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const char *m1 = "<14>1 2024-05-01T10:00:00Z h app - - - octet one\nwith break";
    char framed[256];
    int n = snprintf(framed, sizeof(framed), "%zu %s", strlen(m1), m1);
    send_all(fd, framed, (size_t)n);
    const char *m2 = "<11>1 2024-05-01T10:00:01Z h app - - - lf framed\n";
    /* split mid-message: framing must survive partial reads */
    send_all(fd, m2, 10);
    usleep(50 * 1000);
    send_all(fd, m2 + 10, strlen(m2) - 10);
    const char *m3 = "<12>1 2024-05-01T10:00:02Z h app - - - octet two";
    n = snprintf(framed, sizeof(framed), "%zu %s", strlen(m3), m3);
    send_all(fd, framed, (size_t)n);
    close(fd);
    assert_true(wait_for(f, "octet one", 1));
    assert_true(wait_for(f, "lf framed", 1));
    assert_true(wait_for(f, "octet two", 1));
    flush(f);
    char *t = slurp(f->out);
    assert_int_equal(count(t, "\n"), 3);
    assert_non_null(strstr(t, "\"severity_number\":9"));
    assert_non_null(strstr(t, "\"severity_number\":17"));
    assert_non_null(strstr(t, "\"severity_number\":13"));
    core_free(t);
}

static void test_syslog_refuses_remote_address(void **state)
{
    struct fx *f = *state;
    char cfg[256];
    snprintf(cfg, sizeof(cfg), "sources: [{type: syslog, listen: 'udp://0.0.0.0:5514'}]\n"
                               "sinks: []\n");
    struct tel_engine_config c = {.data_dir = f->dir, .config_text = cfg};
    struct core_err err = {0};
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "allow_remote"));
}

/* ---- platform and http --------------------------------------------------------------------- */

static void test_platform_tap(void **state)
{
    struct fx *f = *state;
    core_log_set_level(CORE_LOG_INFO);
    f->e = start(f, "  - {type: platform}");
    log_info("test", "hello from the platform", LOG_STR("k", "v"));
    assert_true(wait_for(f, "hello from the platform", 1));
    char *t = slurp(f->out);
    assert_non_null(strstr(t, "\"service.name\":\"pave\""));
    core_free(t);
    tel_engine_stop(f->e, 5000);
    f->e = NULL;
    log_info("test", "after the stop");
    assert_int_equal(out_count(f, "after the stop"), 0);
}

static void test_http_source_enables_ingest(void **state)
{
    struct fx *f = *state;
    assert_false(tel_engine_accepts_http(NULL));
    f->e = start(f, "  - {type: file, path: DIR/none.log}");
    assert_false(tel_engine_accepts_http(f->e));
    struct core_err err = {0};
    assert_int_equal(tel_engine_ingest_http(f->e, "web", NULL, NULL, "x\n", 2, &err),
                     CORE_E_UNSUPPORTED);
    tel_engine_stop(f->e, 5000);
    f->e = start(f, "  - {type: http}");
    assert_true(tel_engine_accepts_http(f->e));
    const char *body = "{\"msg\":\"ingested\",\"level\":\"error\"}\nplain ingested\n";
    assert_int_equal(tel_engine_ingest_http(f->e, "web", "prod", "core", body, strlen(body),
                                            &err),
                     0);
    assert_true(wait_for(f, "ingested", 2));
    char *t = slurp(f->out);
    assert_int_equal(count(t, "\"service.name\":\"web\""), 2);
    assert_non_null(strstr(t, "\"team\":\"core\""));
    core_free(t);
}

/* ---- audit --------------------------------------------------------------------------------- */

static void audit_open(struct fx *f)
{
    char url[320];
    snprintf(url, sizeof(url), "sqlite:%s/pave.db", f->dir);
    struct core_err err = {0};
    assert_int_equal(store_open(&f->st, url, &err), 0);
}

static void audit_add(struct fx *f, const char *actor, const char *action, const char *object,
                      const char *detail)
{
    struct store_audit_event ev = {
        .actor = actor, .action = action, .kind = "policy", .object = object, .detail = detail};
    struct core_err err = {0};
    assert_int_equal(store_audit_append(f->st, &ev, &err), 0);
}

static const char audit_src[] = "  - {type: audit, poll_ms: 20}";

static void test_audit_follows_the_log(void **state)
{
    struct fx *f = *state;
    audit_open(f);
    audit_add(f, "alice", "policy.apply", "old-one", "history"); /* before the start: skipped */
    f->e = start(f, audit_src);
    audit_add(f, "bob", "policy.delete", "guard-1", "removed \"by\" bob\nsecond line");
    assert_true(wait_for(f, "guard-1", 1));
    flush(f);
    char *t = slurp(f->out);
    json_error_t jerr;
    json_t *j = json_loads(t, JSON_DISABLE_EOF_CHECK, &jerr); /* the first (only) line */
    core_free(t);
    assert_non_null(j);
    json_t *a = json_object_get(j, "attributes"), *r = json_object_get(j, "resource");
    assert_string_equal(json_string_value(json_object_get(j, "body")),
                        "bob policy.delete policy/guard-1");
    assert_string_equal(json_string_value(json_object_get(r, "service.name")), "pave");
    assert_string_equal(json_string_value(json_object_get(a, "component")), "audit");
    assert_int_equal(json_integer_value(json_object_get(a, "audit.id")), 2);
    assert_string_equal(json_string_value(json_object_get(a, "audit.actor")), "bob");
    assert_string_equal(json_string_value(json_object_get(a, "audit.action")), "policy.delete");
    assert_string_equal(json_string_value(json_object_get(a, "audit.kind")), "policy");
    assert_string_equal(json_string_value(json_object_get(a, "audit.object")), "guard-1");
    assert_string_equal(json_string_value(json_object_get(a, "audit.detail")),
                        "removed \"by\" bob\nsecond line");
    json_decref(j);
    assert_int_equal(out_count(f, "old-one"), 0);
    /* more than a page at once, in order */
    for (int i = 0; i < 450; i++) {
        char obj[32];
        snprintf(obj, sizeof(obj), "bulk-%03d", i);
        audit_add(f, "ci", "policy.apply", obj, NULL);
    }
    assert_true(wait_for(f, "bulk-449", 1));
    flush(f);
    t = slurp(f->out);
    assert_int_equal(count(t, "\"audit.object\":\"bulk-"), 450);
    assert_true(strstr(t, "bulk-000") < strstr(t, "bulk-449"));
    core_free(t);
}

static void test_audit_checkpoint_resumes_without_duplicates(void **state)
{
    struct fx *f = *state;
    audit_open(f);
    f->e = start(f, audit_src);
    audit_add(f, "a", "secret.delete", "ev-1", NULL);
    audit_add(f, "a", "secret.delete", "ev-2", NULL);
    assert_true(wait_for(f, "ev-2", 1));
    flush(f);
    tel_engine_stop(f->e, 5000);
    f->e = NULL;
    char ck[320];
    snprintf(ck, sizeof(ck), "%s/telemetry/checkpoints/audit.json", f->dir);
    char *c = slurp(ck);
    assert_string_equal(c, "{\"last_id\":2}");
    core_free(c);
    audit_add(f, "a", "secret.delete", "ev-3", NULL); /* while stopped: not lost */
    f->e = start(f, audit_src);
    audit_add(f, "a", "secret.delete", "ev-4", NULL);
    assert_true(wait_for(f, "ev-4", 1));
    flush(f);
    assert_int_equal(out_count(f, "/ev-1\""), 1);
    assert_int_equal(out_count(f, "/ev-2\""), 1);
    assert_int_equal(out_count(f, "/ev-3\""), 1);
    assert_int_equal(out_count(f, "/ev-4\""), 1);
}

static void test_audit_from_beginning(void **state)
{
    struct fx *f = *state;
    audit_open(f);
    audit_add(f, "a", "team.create", "hist-1", NULL);
    audit_add(f, "a", "team.create", "hist-2", NULL);
    f->e = start(f, "  - {type: audit, name: everything, from: beginning, poll_ms: 20}");
    assert_true(wait_for(f, "hist-2", 1));
    flush(f);
    assert_int_equal(out_count(f, "/hist-1\""), 1);
}

static void test_audit_needs_a_store(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct tel_engine_config c = {.data_dir = f->dir,
                                  .config_text = "sources: [{type: audit}]\nsinks: []\n"};
    assert_null(tel_engine_start(&c, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "needs the platform's store"));
    assert_non_null(strstr(err.msg, "<config>:1:"));
    audit_open(f);
    c.st = f->st;
    c.config_text = "sources: [{type: audit, from: middle}]\nsinks: []\n";
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "from must be beginning or end"));
    c.config_text = "sources: [{type: audit, poll: 5}]\nsinks: []\n";
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "poll"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_tails_and_follows_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_truncation_restarts_at_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_partial_line_waits_for_newline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_checkpoint_resumes_without_duplicates, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_lines_across_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_read_from_end_and_glob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicas_origin_from_name_and_spec, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_syslog_udp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syslog_tcp_both_framings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syslog_refuses_remote_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_platform_tap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_source_enables_ingest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_follows_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_checkpoint_resumes_without_duplicates, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit_from_beginning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_needs_a_store, setup, teardown),
    };
    return cmocka_run_group_tests_name("telemetry sources", tests, NULL, NULL);
}
