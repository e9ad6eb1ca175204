/* Unit tests for security alerts (src/security/alerts.c) and the pipeline's security sink
 * (src/telemetry/sink_security.c): dedup by key while not closed, a new alert after closing, the
 * events cap, transitions and their audit rows, routing to a file and to a webhook (a tiny HTTP
 * listener thread here), bad findings, the built-in rules, and the sink end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "security/security.h"
#include "store/store.h"

struct fx {
    char dir[64];
    struct store *st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-alerts-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char url[128];
    snprintf(url, sizeof(url), "sqlite:%s/pave.db", f->dir);
    struct core_err err = {0};
    if (store_open(&f->st, url, &err))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static struct security_finding finding(const char *rule, const char *service, const char *ev)
{
    return (struct security_finding){.rule_id = rule,
                                     .rule_title = "Test rule",
                                     .source = "sigma",
                                     .severity = "high",
                                     .service = service,
                                     .team = "payments",
                                     .summary = "something happened",
                                     .event_json = ev};
}

static json_int_t jint(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void dedup_by_rule_and_service(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct security_alerts *a = security_alerts_open(f->st, NULL, &err);
    assert_non_null(a);
    struct security_finding x = finding("r1", "api", "{\"n\":1}");
    int64_t id1 = 0, id2 = 0, id3 = 0;
    bool is_new = false;
    assert_int_equal(security_alert_raise(a, &x, &id1, &is_new, &err), 0);
    assert_true(is_new);
    assert_int_equal(security_alert_raise(a, &x, &id2, &is_new, &err), 0);
    assert_false(is_new);
    assert_int_equal(id1, id2);
    struct security_finding y = finding("r1", "web", NULL);
    assert_int_equal(security_alert_raise(a, &y, &id3, &is_new, &err), 0);
    assert_true(is_new);
    assert_int_not_equal(id3, id1);
    /* an explicit key groups across services */
    struct security_finding z = finding("r2", "a", NULL), w = finding("r2", "b", NULL);
    z.dedup_key = w.dedup_key = "same";
    int64_t iz = 0, iw = 0;
    assert_int_equal(security_alert_raise(a, &z, &iz, NULL, &err), 0);
    assert_int_equal(security_alert_raise(a, &w, &iw, NULL, &err), 0);
    assert_int_equal(iz, iw);

    json_t *one = security_alert_get(f->st, id1, &err);
    assert_non_null(one);
    assert_int_equal(jint(one, "count"), 2);
    assert_string_equal(json_string_value(json_object_get(one, "state")), "open");
    assert_int_equal(json_array_size(json_object_get(one, "events")), 2);
    json_decref(one);

    json_t *l = security_alert_list(f->st, NULL, NULL, "api", 0, &err);
    assert_non_null(l);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
    l = security_alert_list(f->st, "open", "high", NULL, 0, &err);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 3);
    /* newest first */
    assert_int_equal(jint(json_array_get(json_object_get(l, "items"), 0), "id"), iz);
    json_decref(l);
    assert_null(security_alert_list(f->st, "bogus", NULL, NULL, 0, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    assert_null(security_alert_get(f->st, 999, &err));
    assert_int_equal(err.code, CORE_E_NOTFOUND);
    security_alerts_free(a);
}

static void closing_then_a_new_alert(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct security_alerts *a = security_alerts_open(f->st, NULL, &err);
    struct security_finding x = finding("r1", "api", NULL);
    int64_t id1 = 0, id2 = 0;
    bool is_new = false;
    assert_int_equal(security_alert_raise(a, &x, &id1, NULL, &err), 0);
    const struct catalog_actor admin = {.user = "alice", .is_admin = true};
    assert_int_equal(security_alert_transition(f->st, &admin, id1, "closed", "fixed", &err), 0);
    assert_int_equal(security_alert_raise(a, &x, &id2, &is_new, &err), 0);
    assert_true(is_new);
    assert_true(id2 > id1);
    json_t *l = security_alert_list(f->st, "live", NULL, NULL, 0, &err);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
    security_alerts_free(a);
}

static void events_are_capped(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct security_alerts *a = security_alerts_open(f->st, NULL, &err);
    int64_t id = 0;
    for (int i = 0; i < SECURITY_ALERT_EVENTS_MAX + 5; i++) {
        char ev[64];
        snprintf(ev, sizeof(ev), "{\"i\":%d}", i);
        struct security_finding x = finding("r1", "api", ev);
        assert_int_equal(security_alert_raise(a, &x, &id, NULL, &err), 0);
    }
    json_t *one = security_alert_get(f->st, id, &err);
    assert_int_equal(jint(one, "count"), SECURITY_ALERT_EVENTS_MAX + 5);
    json_t *evs = json_object_get(one, "events");
    assert_int_equal(json_array_size(evs), SECURITY_ALERT_EVENTS_MAX);
    /* the first ones are kept, in order */
    assert_int_equal(jint(json_array_get(evs, 0), "i"), 0);
    assert_int_equal(jint(json_array_get(evs, SECURITY_ALERT_EVENTS_MAX - 1), "i"),
                     SECURITY_ALERT_EVENTS_MAX - 1);
    json_decref(one);
    security_alerts_free(a);
}

struct audit_rows {
    int n;
    char action[4][64], detail[4][256], actor[4][32];
};

static int audit_row(void *arg, const struct store_audit_event *ev)
{
    struct audit_rows *r = arg;
    if (r->n < 4) {
        snprintf(r->action[r->n], 64, "%s", ev->action);
        snprintf(r->detail[r->n], 256, "%s", ev->detail ? ev->detail : "");
        snprintf(r->actor[r->n], 32, "%s", ev->actor);
    }
    r->n++;
    return 0;
}

static void transitions_are_audited(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct security_alerts *a = security_alerts_open(f->st, NULL, &err);
    struct security_finding x = finding("r1", "api", NULL);
    int64_t id = 0;
    assert_int_equal(security_alert_raise(a, &x, &id, NULL, &err), 0);
    const struct catalog_actor bob = {.user = "bob"};
    assert_int_equal(security_alert_transition(f->st, &bob, id, "acknowledged", "looking", &err),
                     0);
    assert_int_equal(security_alert_transition(f->st, &bob, id, "acknowledged", NULL, &err),
                     CORE_E_INVAL);
    assert_int_equal(security_alert_transition(f->st, &bob, id, "open", "x", &err), CORE_E_INVAL);
    assert_int_equal(security_alert_transition(f->st, &bob, id, "closed", NULL, &err),
                     CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "needs a comment"));
    char long_comment[2000];
    memset(long_comment, 'c', sizeof(long_comment) - 1);
    long_comment[sizeof(long_comment) - 1] = 0;
    assert_int_equal(security_alert_transition(f->st, &bob, id, "closed", long_comment, &err), 0);
    assert_int_equal(security_alert_transition(f->st, &bob, id, "closed", "again", &err),
                     CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "is closed"));
    assert_int_equal(security_alert_transition(f->st, &bob, id, "acknowledged", "x", &err),
                     CORE_E_INVAL);
    assert_int_equal(security_alert_transition(f->st, &bob, 4242, "closed", "x", &err),
                     CORE_E_NOTFOUND);
    json_t *one = security_alert_get(f->st, id, &err);
    assert_string_equal(json_string_value(json_object_get(one, "state")), "closed");
    assert_string_equal(json_string_value(json_object_get(one, "updated_by")), "bob");
    assert_int_equal(strlen(json_string_value(json_object_get(one, "comment"))), 1000);
    json_decref(one);

    struct audit_rows rows = {0};
    struct store_audit_filter af = {.kind = "security_alert", .limit = 10};
    assert_int_equal(store_audit_list(f->st, &af, audit_row, &rows, &err), 0);
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.action[0], "security.alert.close");
    assert_int_equal(strlen(rows.detail[0]), 200);
    assert_string_equal(rows.action[1], "security.alert.ack");
    assert_string_equal(rows.detail[1], "looking");
    assert_string_equal(rows.actor[1], "bob");
    security_alerts_free(a);
}

static void bad_findings_are_refused(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct security_alerts *a = security_alerts_open(f->st, NULL, &err);
    struct security_finding x = finding(NULL, "api", NULL);
    assert_int_equal(security_alert_raise(a, &x, NULL, NULL, &err), CORE_E_INVAL);
    x = finding("r", "api", NULL);
    x.summary = "";
    assert_int_equal(security_alert_raise(a, &x, NULL, NULL, &err), CORE_E_INVAL);
    x = finding("r", "api", NULL);
    x.severity = "urgent";
    assert_int_equal(security_alert_raise(a, &x, NULL, NULL, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "unknown severity"));
    x = finding("r", "api", "[1,2]");
    assert_int_equal(security_alert_raise(a, &x, NULL, NULL, &err), CORE_E_INVAL);
    x = finding("r", "api", "{not json");
    assert_int_equal(security_alert_raise(a, &x, NULL, NULL, &err), CORE_E_INVAL);
    x = finding("r", "\xff\xfe", NULL);
    assert_int_equal(security_alert_raise(a, &x, NULL, NULL, &err), CORE_E_INVAL);
    assert_int_equal(security_alert_raise(a, NULL, NULL, NULL, &err), CORE_E_INVAL);
    json_t *l = security_alert_list(f->st, NULL, NULL, NULL, 0, &err);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 0);
    json_decref(l);
    struct security_alert_opts o = {.webhook_url = "ftp://x"};
    assert_null(security_alerts_open(f->st, &o, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    security_alerts_free(a);
}

static size_t count_lines(const char *path, char *first, size_t firstsz)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    char buf[4096];
    size_t n = 0;
    while (fgets(buf, sizeof(buf), fp)) {
        if (!n && first)
            snprintf(first, firstsz, "%s", buf);
        n++;
    }
    fclose(fp);
    return n;
}

static void new_alerts_go_to_the_file(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    char path[128];
    snprintf(path, sizeof(path), "%s/sec/alerts.jsonl", f->dir);
    struct security_alert_opts o = {.file_path = path};
    struct security_alerts *a = security_alerts_open(f->st, &o, &err);
    assert_non_null(a);
    struct security_finding x = finding("r1", "api", NULL), y = finding("r2", "api", NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(security_alert_raise(a, &x, NULL, NULL, &err), 0);
    assert_int_equal(security_alert_raise(a, &y, NULL, NULL, &err), 0);
    security_alerts_free(a); /* drains */
    char first[4096];
    assert_int_equal(count_lines(path, first, sizeof(first)), 2);
    json_t *j = json_loads(first, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "rule_id")), "r1");
    assert_string_equal(json_string_value(json_object_get(j, "severity")), "high");
    assert_string_equal(json_string_value(json_object_get(j, "team")), "payments");
    assert_string_equal(json_string_value(json_object_get(j, "link")), "/security/alerts/1");
    json_decref(j);
}

/* ---- a tiny webhook: answers 500 to the first POST, 200 to the others ------------------ */

struct hook {
    int fd, port;
    pthread_t thread;
    int requests;
    char bodies[8][2048];
};

static void *hook_loop(void *arg)
{
    struct hook *h = arg;
    for (;;) {
        int c = accept(h->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[8192];
        size_t n = 0;
        char *hdr_end = NULL;
        long clen = -1;
        while (n < sizeof(buf) - 1) {
            ssize_t r = read(c, buf + n, sizeof(buf) - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            buf[n] = 0;
            if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n"))) {
                char *cl = strcasestr(buf, "Content-Length:");
                clen = cl ? strtol(cl + 15, NULL, 10) : 0;
            }
            if (hdr_end && (long)(n - (size_t)(hdr_end + 4 - buf)) >= clen)
                break;
        }
        if (!hdr_end) {
            close(c);
            continue;
        }
        bool quit = strncmp(buf, "GET /quit", 9) == 0;
        int i = h->requests++;
        if (i < 8 && !quit)
            snprintf(h->bodies[i], sizeof(h->bodies[i]), "%s", hdr_end + 4);
        const char *resp = i == 0 ? "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: "
                                    "close\r\n\r\n"
                                  : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: "
                                    "close\r\n\r\n";
        if (write(c, resp, strlen(resp)) < 0)
            break;
        close(c);
        if (quit)
            return NULL;
    }
    return NULL;
}

static void new_alerts_go_to_the_webhook(void **state)
{
    struct fx *f = *state;
    struct hook h = {0};
    h.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(h.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(h.fd, 8), 0);
    assert_int_equal(getsockname(h.fd, (struct sockaddr *)&sa, &sl), 0);
    h.port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&h.thread, NULL, hook_loop, &h), 0);

    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", h.port);
    struct security_alert_opts o = {.webhook_url = url};
    struct core_err err = {0};
    struct security_alerts *a = security_alerts_open(f->st, &o, &err);
    assert_non_null(a);
    struct security_finding x = finding("r1", "api", "{\"body\":\"x\"}");
    struct security_finding y = finding("r2", NULL, NULL);
    y.team = NULL;
    assert_int_equal(security_alert_raise(a, &x, NULL, NULL, &err), 0);
    assert_int_equal(security_alert_raise(a, &x, NULL, NULL, &err), 0); /* dup: no POST */
    assert_int_equal(security_alert_raise(a, &y, NULL, NULL, &err), 0);
    security_alerts_free(a); /* drains: the first POST is retried after the 500 */

    /* stop the listener with one last request */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *q = "GET /quit HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    assert_true(write(c, q, strlen(q)) > 0);
    char tmp[256];
    while (read(c, tmp, sizeof(tmp)) > 0)
        ;
    close(c);
    pthread_join(h.thread, NULL);
    close(h.fd);

    assert_int_equal(h.requests, 4); /* 500, retry 200, the second alert, quit */
    json_t *b0 = json_loads(h.bodies[0], 0, NULL), *b1 = json_loads(h.bodies[1], 0, NULL),
           *b2 = json_loads(h.bodies[2], 0, NULL);
    assert_non_null(b0);
    assert_non_null(b1);
    assert_non_null(b2);
    assert_true(json_equal(b0, b1));
    assert_string_equal(json_string_value(json_object_get(b1, "rule")), "Test rule");
    assert_string_equal(json_string_value(json_object_get(b1, "service")), "api");
    assert_string_equal(json_string_value(json_object_get(b1, "summary")), "something happened");
    assert_non_null(json_object_get(b1, "id"));
    assert_non_null(json_object_get(b1, "link"));
    assert_string_equal(json_string_value(json_object_get(b2, "rule_id")), "r2");
    assert_true(json_is_null(json_object_get(b2, "team")) || !json_object_get(b2, "team"));
    json_decref(b0);
    json_decref(b1);
    json_decref(b2);
}

static void builtin_rules_load(void **state)
{
    (void)state;
    struct security_sigma_set *s = security_sigma_set_new();
    struct core_err err = {0};
    assert_int_equal(security_sigma_add_builtin(s, &err), 0);
    for (size_t i = 0; i < security_sigma_rejected_count(s); i++)
        fprintf(stderr, "%s\n", security_sigma_rejected(s, i)->reason);
    assert_int_equal(security_sigma_rejected_count(s), 0);
    assert_int_equal(security_sigma_count(s), 8);
    assert_string_equal(security_sigma_rule(s, 0)->title, "Root shell through sudo");
    assert_string_equal(security_sigma_rule(s, 0)->source, "builtin:1");
    security_sigma_set_free(s);
}

/* Every allocation of raise, list, get and transition failing in turn: an error comes back
 * (no crash, no leak under ASan), and the book is consistent afterwards. */
static void allocation_failures_come_back_as_errors(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct security_alerts *a = security_alerts_open(f->st, NULL, &err);
    assert_non_null(a);
    const struct catalog_actor admin = {.user = "alice", .is_admin = true};
    int64_t id = 0;
    for (unsigned n = 1; n < 80; n++) {
        struct security_finding x = finding("r1", "api", "{\"n\":1}");
        core_failmalloc_set(n);
        int rc = security_alert_raise(a, &x, &id, NULL, &err);
        json_t *l = security_alert_list(f->st, NULL, NULL, NULL, 0, &err);
        json_t *g = id ? security_alert_get(f->st, id, &err) : NULL;
        int trc = id ? security_alert_transition(f->st, &admin, id, "acknowledged", "x", &err)
                     : 0;
        core_failmalloc_set(0);
        assert_true(rc == 0 || rc == CORE_E_NOMEM || rc == CORE_E_IO || rc == CORE_E_INTERNAL);
        assert_true(trc == 0 || trc == CORE_E_INVAL || trc == CORE_E_NOMEM || trc == CORE_E_IO ||
                    trc == CORE_E_INTERNAL);
        json_decref(l);
        json_decref(g);
    }
    json_t *l = security_alert_list(f->st, "live", NULL, NULL, 0, &err);
    assert_non_null(l);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
    security_alerts_free(a);
}

/* ---- the security sink ------------------------------------------------------------------ */

static void sink_raises_alerts(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    const char *cfg = "sources: []\n"
                      "transforms: [{type: sigma, builtin: true}]\n"
                      "sinks:\n  - {type: security, when: {attribute: security.rule_ids}}\n";
    struct tel_engine_config c = {.data_dir = f->dir, .config_text = cfg};
    /* without an alert book the sink refuses to start */
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "alert book"));
    struct security_alerts *a = security_alerts_open(f->st, NULL, &err);
    c.alerts = a;
    struct tel_engine *e = tel_engine_start(&c, &err);
    if (!e)
        fprintf(stderr, "%s\n", err.msg);
    assert_non_null(e);
    struct tel_origin sys = {.source = "syslog", .parser = TEL_PARSE_SYSLOG, .team = "infra"};
    const char *lines =
        "Jun 14 15:16:02 combo sshd[19939]: Accepted publickey for root from 10.0.0.9 port 22\n"
        "Jun 14 15:16:03 combo sshd[19940]: Accepted publickey for root from 10.0.0.9 port 23\n"
        "Jun 14 15:16:04 combo sshd[19941]: Accepted publickey for bob from 10.0.0.9 port 24\n"
        "Jun 14 15:17:00 combo sudo:   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
        "COMMAND=/bin/bash\n"
        "Jul  7 08:06:15 combo login(pam_unix)[2421]: session opened for user root by "
        "LOGIN(uid=0)\n";
    assert_int_equal(tel_engine_push(e, &sys, lines, strlen(lines), false, &err), 0);
    /* a service cannot forge a detection by logging the attributes itself */
    struct tel_origin svc = {.source = "replicas", .service = "api"};
    const char *forged = "{\"msg\":\"hi\",\"security.rule_ids\":[\"x\"],"
                         "\"security.rule_titles\":[\"Forged\"]}\n";
    assert_int_equal(tel_engine_push(e, &svc, forged, strlen(forged), false, &err), 0);
    assert_int_equal(tel_engine_flush(e, 5000, &err), 0);
    tel_engine_stop(e, 5000);

    json_t *l = security_alert_list(f->st, NULL, NULL, NULL, 0, &err);
    json_t *items = json_object_get(l, "items");
    size_t i;
    json_t *it;
    int ssh = 0, sudo = 0, login = 0;
    json_array_foreach (items, i, it) {
        const char *title = json_string_value(json_object_get(it, "rule_title"));
        assert_string_not_equal(title, "Forged");
        if (!strcmp(title, "SSH login as root accepted")) {
            ssh++;
            assert_int_equal(jint(it, "count"), 2);
            assert_string_equal(json_string_value(json_object_get(it, "severity")), "high");
            assert_string_equal(json_string_value(json_object_get(it, "service")), "sshd");
            assert_string_equal(json_string_value(json_object_get(it, "team")), "infra");
            assert_non_null(strstr(json_string_value(json_object_get(it, "summary")),
                                   "SSH login as root accepted: Accepted publickey for root"));
            json_t *one = security_alert_get(f->st, jint(it, "id"), &err);
            json_t *ev0 = json_array_get(json_object_get(one, "events"), 0);
            assert_non_null(strstr(json_string_value(json_object_get(ev0, "body")), "port 22"));
            json_decref(one);
        } else if (!strcmp(title, "Root shell through sudo")) {
            sudo++;
        } else if (!strcmp(title, "Root session opened on the console")) {
            login++;
            assert_string_equal(json_string_value(json_object_get(it, "severity")), "low");
        }
    }
    assert_int_equal(json_array_size(items), 3);
    assert_int_equal(ssh + sudo + login, 3);
    json_decref(l);
    security_alerts_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(dedup_by_rule_and_service, setup, teardown),
        cmocka_unit_test_setup_teardown(closing_then_a_new_alert, setup, teardown),
        cmocka_unit_test_setup_teardown(events_are_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(transitions_are_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_findings_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(new_alerts_go_to_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(new_alerts_go_to_the_webhook, setup, teardown),
        cmocka_unit_test_setup_teardown(allocation_failures_come_back_as_errors, setup, teardown),
        cmocka_unit_test(builtin_rules_load),
        cmocka_unit_test_setup_teardown(sink_raises_alerts, setup, teardown),
    };
    return cmocka_run_group_tests_name("security alerts", tests, NULL, NULL);
}
