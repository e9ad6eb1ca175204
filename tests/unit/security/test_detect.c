/* Unit tests for the built-in detections (src/security/detect.c): recognizing failed logins in
 * sshd / PAM / sudo lines and the platform's own log, bursts per source by event time over the
 * real sample tests/data/logs/loghub_Linux_2k.log, bounded state, and tokens used from a new
 * source address (with the store). The alert book is a test double that records findings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "security/security.h"
#include "store/store.h"

#define SYSLOG_FILE "tests/data/logs/loghub_Linux_2k.log"

/* ---- the alert book double -------------------------------------------------------------- */

#define RAISED_MAX 256

struct raised {
    char rule_id[64];
    char severity[16];
    char key[128];
    char summary[320];
    char *event;
};

static struct raised raised[RAISED_MAX];
static size_t nraised;
static int fake_book;
#define BOOK ((struct security_alerts *)&fake_book)

int security_alert_raise(struct security_alerts *a, const struct security_finding *f, int64_t *id,
                         bool *is_new, struct core_err *err)
{
    assert_ptr_equal(a, BOOK);
    assert_true(nraised < RAISED_MAX);
    struct raised *r = &raised[nraised++];
    snprintf(r->rule_id, sizeof(r->rule_id), "%s", f->rule_id);
    snprintf(r->severity, sizeof(r->severity), "%s", f->severity);
    snprintf(r->key, sizeof(r->key), "%s", f->dedup_key ? f->dedup_key : "");
    snprintf(r->summary, sizeof(r->summary), "%s", f->summary ? f->summary : "");
    r->event = f->event_json ? strdup(f->event_json) : NULL;
    if (id)
        *id = (int64_t)nraised;
    if (is_new)
        *is_new = true;
    return 0;
}

static int reset(void **state)
{
    for (size_t i = 0; i < nraised; i++)
        free(raised[i].event);
    nraised = 0;
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------------- */

struct parsed {
    struct core_arena a;
    struct tel_record rec;
};

/* Parses line as the pipeline would (syslog first, else the generic parser). */
static void parse(struct parsed *p, const char *line, size_t len)
{
    core_arena_init(&p->a, 4u << 20);
    struct tel_origin o = {.source = "test"};
    if (!tel_parse_syslog(line, len, &o, &p->a, &p->rec))
        tel_parse_line(line, len, &o, &p->a, &p->rec);
}

static bool failure(const char *line, struct security_login_failure *lf)
{
    struct parsed p;
    parse(&p, line, strlen(line));
    bool ok = security_failed_login_parse(&p.rec, lf);
    core_arena_release(&p.a);
    return ok;
}

/* A plain line with an explicit event time (seconds) and body. */
static int feed_at(struct security_detect *d, int64_t sec, const char *body, bool *hit)
{
    struct parsed p;
    parse(&p, body, strlen(body));
    p.rec.time_ns = sec * 1000000000LL;
    struct core_err err = {0};
    int rc = security_detect_feed(d, BOOK, &p.rec, hit, &err);
    core_arena_release(&p.a);
    return rc;
}

/* ---- recognizing failures --------------------------------------------------------------- */

static void recognizes_sshd_pam_sudo_and_platform_lines(void **state)
{
    struct security_login_failure lf;
    assert_true(failure("Jan  5 10:00:01 web1 sshd[811]: Failed password for root from "
                        "203.0.113.9 port 51022 ssh2",
                        &lf));
    assert_string_equal(lf.source, "203.0.113.9");
    assert_string_equal(lf.user, "root");
    assert_true(failure("Jan  5 10:00:02 web1 sshd[811]: Failed password for invalid user "
                        "oracle from 2001:db8::7 port 4022 ssh2",
                        &lf));
    assert_string_equal(lf.source, "2001:db8::7");
    assert_string_equal(lf.user, "oracle");
    assert_true(failure("Jan  5 10:00:03 web1 sshd[812]: Failed publickey for git from "
                        "198.51.100.4 port 22 ssh2: RSA SHA256:abc",
                        &lf));
    assert_string_equal(lf.source, "198.51.100.4");
    assert_true(failure("Jan  5 10:00:04 web1 sshd[813]: Invalid user admin from 198.51.100.5 "
                        "port 40000",
                        &lf));
    assert_string_equal(lf.source, "198.51.100.5");
    assert_string_equal(lf.user, "admin");
    /* a line of the real sample */
    assert_true(failure("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; "
                        "logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 ",
                        &lf));
    assert_string_equal(lf.source, "218.188.2.4");
    assert_string_equal(lf.user, "");
    assert_true(failure("Jun 15 02:04:59 combo sshd(pam_unix)[20882]: authentication failure; "
                        "logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=220-135-151-1.hinet-"
                        "ip.hinet.net  user=root",
                        &lf));
    assert_string_equal(lf.source, "220-135-151-1.hinet-ip.hinet.net");
    assert_string_equal(lf.user, "root");
    /* local PAM failures (su, sudo) have no remote host: not counted per source */
    assert_false(failure("Jan  5 10:00:05 web1 su(pam_unix)[900]: authentication failure; "
                         "logname=bob uid=500 euid=0 tty= ruser=bob rhost=  user=root",
                         &lf));
    assert_true(failure("Jan  5 10:00:06 web1 sudo:    alice : 3 incorrect password attempts ; "
                        "TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/sh",
                        &lf));
    assert_string_equal(lf.source, "local:web1");
    assert_string_equal(lf.user, "alice");
    assert_int_equal(lf.count, 3);
    /* the platform's own warning when a token is refused (src/api/server.c) */
    assert_true(failure("{\"ts\":\"2026-01-05T10:00:00.000Z\",\"severity\":\"WARN\",\"body\":"
                        "\"token refused\",\"attributes\":{\"client.address\":\"127.0.0.2\","
                        "\"path\":\"/api/v1/services\"}}",
                        &lf));
    assert_string_equal(lf.source, "127.0.0.2");
    assert_false(failure("Jan  5 10:00:07 web1 sshd[811]: Accepted password for root from "
                         "203.0.113.9 port 51022 ssh2",
                         &lf));
    assert_false(failure("Failed to start the unit", &lf));
    assert_false(failure("", &lf));
}

/* ---- bursts ----------------------------------------------------------------------------- */

static void burst_needs_threshold_within_window(void **state)
{
    struct security_detect *d = security_detect_new(NULL);
    assert_non_null(d);
    const char *l = "sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2";
    bool hit = false;
    /* 4 failures, then a 5th 61 s after the first: the window never holds 5 */
    int64_t t[] = {1000, 1010, 1020, 1030, 1061};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(feed_at(d, t[i], l, &hit), 0);
        assert_false(hit);
    }
    /* the 6th at 1062: 1010..1062 holds 5 within 60 s */
    assert_int_equal(feed_at(d, 1062, l, &hit), 0);
    assert_true(hit);
    assert_int_equal(nraised, 1);
    assert_string_equal(raised[0].rule_id, "builtin.failed-logins");
    assert_string_equal(raised[0].severity, "high");
    assert_string_equal(raised[0].key, "failed-logins:192.0.2.1");
    assert_non_null(strstr(raised[0].summary, "192.0.2.1"));
    json_error_t je;
    json_t *ev = json_loads(raised[0].event, 0, &je);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "source.address")), "192.0.2.1");
    assert_int_equal(json_array_size(json_object_get(ev, "lines")), 6);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(ev, "lines"), 0),
                                          "body")),
        l);
    json_decref(ev);
    /* the same burst goes on: nothing new */
    assert_int_equal(feed_at(d, 1070, l, &hit), 0);
    assert_false(hit);
    /* quiet for more than a window, then a new burst: raised again */
    for (int i = 0; i < 5; i++)
        assert_int_equal(feed_at(d, 2000 + i, l, &hit), 0);
    assert_true(hit);
    assert_int_equal(nraised, 2);
    security_detect_free(d);
}

static void events_keep_the_first_lines_and_sources_are_bounded(void **state)
{
    struct security_detect_opts o = {.threshold = 3, .window_ms = 10000, .max_sources = 2,
                                     .max_events = 2};
    struct security_detect *d = security_detect_new(&o);
    bool hit = false;
    char line[128];
    /* a and b alternate with c: with room for 2 sources, c pushes the least recent out */
    const char *srcs[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
    for (int round = 0; round < 2; round++)
        for (int s = 0; s < 3; s++) {
            snprintf(line, sizeof(line), "Invalid user u%d from %s port 1", s, srcs[s]);
            assert_int_equal(feed_at(d, 100 + round, line, &hit), 0);
            assert_false(hit); /* every source was dropped before its 2nd failure */
        }
    for (int i = 0; i < 3; i++) {
        snprintf(line, sizeof(line), "Invalid user x%d from 10.0.0.9 port 1", i);
        assert_int_equal(feed_at(d, 200, line, &hit), 0);
    }
    assert_true(hit);
    json_error_t je;
    json_t *ev = json_loads(raised[0].event, 0, &je);
    assert_int_equal(json_array_size(json_object_get(ev, "lines")), 2);
    assert_int_equal(json_integer_value(json_object_get(ev, "failures")), 3);
    json_decref(ev);
    /* sudo's count stands for that many failures */
    assert_int_equal(feed_at(d, 300,
                             "web1 sudo: bob : 3 incorrect password attempts ; TTY=pts/1 ; "
                             "USER=root ; COMMAND=/bin/ls",
                             &hit),
                     0);
    assert_true(hit);
    security_detect_free(d);
}

/* Every line of the real sample through the detection with the defaults (5 within 60 s). The
 * expected sources were computed once, independently of this code, with:
 *
 *   python3 -c 'import re,datetime,collections
 *   ts=collections.defaultdict(list)
 *   for l in open("tests/data/logs/loghub_Linux_2k.log",errors="replace"):
 *     m=re.search(r"authentication failure;.* rhost=(\S+)",l)
 *     if m: ts[m.group(1)].append(datetime.datetime.strptime("2005 "+l[:15],
 *                                 "%Y %b %d %H:%M:%S").timestamp())
 *   print(sorted(k for k,v in ts.items() if any(sorted(v)[i+4]-sorted(v)[i]<=60
 *                                                for i in range(len(v)-4))))'
 *
 * 47 sources have PAM failures with an rhost; these 39 reach 5 within 60 s (the sample has
 * no "Failed password", "Invalid user" or sudo lines). Two of them, 60.30.224.116 and
 * 195.129.24.210, have two bursts separated by more than a window of quiet (the same script,
 * counting a new burst after 60 s without failures, says so): 41 findings, which the alert
 * book folds into 39 alerts by their dedup keys. */
static void loghub_sample_bursts(void **state)
{
    static const char *const expected[] = {
        "061092085098.ctinets.com", "150.183.249.110", "195.129.24.210",
        "202-132-40-29.adsl.ttn.net", "202.181.236.180", "203.251.225.101", "207.243.167.114",
        "209.152.168.249", "210.229.150.228", "211-76-104-65.ebix.net.tw", "211.115.206.155",
        "211.137.205.253", "211.214.161.141", "211.9.58.217", "217.60.212.66", "218.16.122.48",
        "218.188.2.4", "218.22.3.51", "218.55.234.102", "220-135-151-1.hinet-ip.hinet.net",
        "220.117.241.87", "60.30.224.116", "61.53.154.93", "62-192-102-94.dsl.easynet.nl",
        "65.166.159.14", "68.143.156.89.nw.nuvox.net", "82.77.200.128",
        "adsl-70-242-75-179.dsl.ksc2mo.swbell.net", "biblioteka.wsi.edu.pl",
        "c51471f2c.cable.wanadoo.nl", "csnsu.nsuok.edu", "d211-116-254-214.rev.krline.net",
        "h64-187-1-131.gtconnect.net", "ip-216-69-169-168.ip.secureserver.net",
        "massive.merukuru.org", "n219076184117.netvigator.com", "p15105218.pureserver.info",
        "troi.bluesky-technologies.com", "zummit.com",
    };
    const size_t nexp = sizeof(expected) / sizeof(expected[0]);
    char path[512];
    snprintf(path, sizeof(path), "%s%s", access("../" SYSLOG_FILE, R_OK) == 0 ? "../" : "",
             SYSLOG_FILE);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct security_detect *d = security_detect_new(NULL);
    static char line[1 << 16];
    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        struct parsed p;
        parse(&p, line, len);
        struct core_err err = {0};
        assert_int_equal(security_detect_feed(d, BOOK, &p.rec, NULL, &err), 0);
        core_arena_release(&p.a);
    }
    fclose(f);
    security_detect_free(d);
    assert_int_equal(nraised, nexp + 2);
    size_t twice = 0;
    for (size_t i = 0; i < nraised; i++) {
        assert_string_equal(raised[i].rule_id, "builtin.failed-logins");
        for (size_t k = 0; k < i; k++)
            if (strcmp(raised[i].key, raised[k].key) == 0) {
                twice++;
                assert_true(strcmp(raised[i].key, "failed-logins:60.30.224.116") == 0 ||
                            strcmp(raised[i].key, "failed-logins:195.129.24.210") == 0);
            }
    }
    assert_int_equal(twice, 2);
    for (size_t i = 0; i < nexp; i++) {
        char key[128];
        snprintf(key, sizeof(key), "failed-logins:%s", expected[i]);
        size_t k = 0;
        while (k < nraised && strcmp(raised[k].key, key) != 0)
            k++;
        if (k == nraised)
            fail_msg("no alert for %s", expected[i]);
    }
}

static void without_alert_book_nothing_is_raised(void **state)
{
    struct security_detect *d = security_detect_new(NULL);
    const char *l = "Invalid user a from 192.0.2.50 port 1";
    struct parsed p;
    int rc = 0;
    for (int i = 0; i < 5 && !rc; i++) {
        parse(&p, l, strlen(l));
        p.rec.time_ns = 1;
        struct core_err err = {0};
        rc = security_detect_feed(d, NULL, &p.rec, NULL, &err);
        core_arena_release(&p.a);
    }
    assert_int_equal(rc, CORE_E_UNSUPPORTED);
    assert_int_equal(nraised, 0);
    security_detect_free(d);
}

/* ---- tokens from a new source ----------------------------------------------------------- */

static void token_new_source_after_baseline(void **state)
{
    char dir[] = "/tmp/pave-detect-XXXXXX", url[128];
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "sqlite:%s/pave.db", dir);
    struct store *st = NULL;
    struct core_err err = {0};
    assert_int_equal(store_open(&st, url, &err), 0);
    struct security_seen *s = security_seen_new();
    bool hit = true;
    /* first use: the baseline */
    assert_int_equal(security_token_seen(s, BOOK, st, "tok1", "alice", "127.0.0.1", &hit, &err),
                     0);
    assert_false(hit);
    assert_int_equal(security_token_seen(s, BOOK, st, "tok1", "alice", "127.0.0.1", &hit, &err),
                     0);
    assert_false(hit);
    assert_int_equal(security_token_seen(s, BOOK, st, "tok1", "alice", "127.0.0.2", &hit, &err),
                     0);
    assert_true(hit);
    assert_int_equal(nraised, 1);
    assert_string_equal(raised[0].rule_id, "builtin.token-new-source");
    assert_string_equal(raised[0].severity, "medium");
    assert_non_null(strstr(raised[0].summary, "tok1"));
    assert_non_null(strstr(raised[0].summary, "alice"));
    assert_non_null(strstr(raised[0].summary, "127.0.0.2"));
    assert_int_equal(security_token_seen(s, BOOK, st, "tok1", "alice", "127.0.0.2", &hit, &err),
                     0);
    assert_false(hit);
    /* another token's first use is its own baseline */
    assert_int_equal(security_token_seen(s, BOOK, st, "tok2", "bob", "127.0.0.2", &hit, &err),
                     0);
    assert_false(hit);
    security_seen_free(s);
    /* a restart: the store remembers the pairs */
    s = security_seen_new();
    assert_int_equal(security_token_seen(s, BOOK, st, "tok1", "alice", "127.0.0.2", &hit, &err),
                     0);
    assert_false(hit);
    assert_int_equal(security_token_seen(s, BOOK, st, "tok2", "bob", "10.1.1.1", &hit, &err), 0);
    assert_true(hit);
    assert_int_equal(nraised, 2);
    int64_t n = 0;
    assert_int_equal(store_query_int(st,
                                     "SELECT count(*) FROM security_seen WHERE "
                                     "kind = 'token-source'",
                                     NULL, 0, &n, &err),
                     0);
    assert_int_equal(n, 4);
    security_seen_free(s);
    store_close(st);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(recognizes_sshd_pam_sudo_and_platform_lines, reset,
                                        reset),
        cmocka_unit_test_setup_teardown(burst_needs_threshold_within_window, reset, reset),
        cmocka_unit_test_setup_teardown(events_keep_the_first_lines_and_sources_are_bounded,
                                        reset, reset),
        cmocka_unit_test_setup_teardown(loghub_sample_bursts, reset, reset),
        cmocka_unit_test_setup_teardown(without_alert_book_nothing_is_raised, reset, reset),
        cmocka_unit_test_setup_teardown(token_new_source_after_baseline, reset, reset),
    };
    return cmocka_run_group_tests_name("detect", tests, NULL, NULL);
}
