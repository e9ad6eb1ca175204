/* Unit tests for the auditd event join (src/telemetry/auditd.c): the records of one event
 * become one record the Sigma rules see whole, over the real sample
 * tests/data/logs/go-libaudit_audit-rhel7.log and synthetic events (interleaved events, a
 * missing EOE, a huge EXECVE, split arguments, binary junk, the caps). */
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
#include "telemetry/telemetry_auditd.h"

#define AUDIT_FILE "tests/data/logs/go-libaudit_audit-rhel7.log"
#define SIGMA_DIR "tests/data/sigma"
#define R_CHATTR "a5b977d6-8a81-4475-91b9-49dbfcd941f7"
#define R_EXE_DIRS "a39d7fa7-3fbd-4dc2-97e1-d87f546b1bbc"
#define R_PADDING "c52a914f-3d8b-4b2a-bb75-b3991e75f8ba"

static const char *root(void)
{
    return access("../" AUDIT_FILE, R_OK) == 0 ? "../" : "";
}

static void feed_all(struct tel_auditd *j, const char *text, int64_t now, struct core_buf *out)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        assert_int_equal(tel_auditd_feed(j, p, len, now, out), 0);
        p += len + (nl ? 1 : 0);
    }
}

/* The lines of buf (static copies, at most max). */
static size_t lines_of(const struct core_buf *b, char **out, size_t max)
{
    size_t n = 0;
    const char *p = b->data, *end = b->data + b->len;
    while (p < end && n < max) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl); /* every emitted line ends in '\n' */
        out[n++] = strndup(p, (size_t)(nl - p));
        p = nl + 1;
    }
    return n;
}

static void free_lines(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
}

/* Parsed as the pipeline parses it: the ids of the matching sample rules, space-separated. */
static const char *fire(const struct security_sigma_set *s, const char *line)
{
    static char out[512];
    struct core_arena a;
    core_arena_init(&a, 16u << 20);
    struct tel_record rec;
    struct tel_origin o = {.source = "auditd", .service = "auditd"};
    tel_parse_line(line, strlen(line), &o, &a, &rec);
    size_t hits[16];
    size_t n = security_sigma_match(s, &rec, &a, hits, 16);
    out[0] = 0;
    for (size_t i = 0; i < n && i < 16; i++)
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? " " : "",
                 security_sigma_rule(s, hits[i])->id);
    core_arena_release(&a);
    return out;
}

static struct security_sigma_set *rules(void)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s%s", root(), SIGMA_DIR);
    struct security_sigma_set *s = security_sigma_set_new();
    struct core_err err = {0};
    assert_int_equal(security_sigma_add_dir(s, dir, &err), 0);
    return s;
}

/* ---- the real sample -------------------------------------------------------------------- */

/* The sample (sorted by record type, so an event's records are not adjacent) holds two events
 * of several records: 479 (CWD, EXECVE, PATH: `auditctl -a exit,always -F arch=b32 -S execve`)
 * and 17 (NETFILTER_CFG, SYSCALL). Joined, its 50 records (the last line has no newline: wc
 * -l says 49) make 47 lines.
 *
 * No sample rule fires, joined or not, and that is right for this data: the EXECVE events run
 * auditctl, cat, grep and jq (no chattr -i, truncate -s, dd if=, zip/gzip -k/tar -c, nor a
 * dotted file made with mkdir/touch/vi), and the SYSCALL events' executables are
 * /usr/bin/kmod, /usr/bin/bash and a deleted python2.7, none under /tmp or a web root. The
 * synthetic events below show the joined record firing rules that need two record types. */
static void sample_joins_events_and_fires_nothing(void **state)
{
    char path[512], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s%s", root(), AUDIT_FILE);
    struct core_err err = {0};
    assert_int_equal(core_file_read(path, 1u << 20, &text, &len, &err), 0);
    struct tel_auditd *j = tel_auditd_new();
    struct core_buf out;
    core_buf_init(&out, 0);
    feed_all(j, text, 0, &out);
    assert_int_equal(tel_auditd_flush(j, 0, 0, &out), 0);
    assert_int_equal(tel_auditd_pending(j), 0);
    char *ls[64];
    size_t n = lines_of(&out, ls, 64);
    assert_int_equal(n, 47);
    struct security_sigma_set *s = rules();
    const char *e479 = NULL, *e17 = NULL;
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(fire(s, ls[i]), "");
        if (strstr(ls[i], "\"audit.id\":\"1481077231.371:479\""))
            e479 = ls[i];
        if (strstr(ls[i], "\"audit.id\":\"1481076984.827:17\""))
            e17 = ls[i];
    }
    assert_non_null(e479);
    assert_non_null(e17);
    json_error_t je;
    json_t *o = json_loads(e479, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "audit.types")), "CWD,EXECVE,PATH");
    assert_int_equal(json_integer_value(json_object_get(o, "audit.records")), 3);
    assert_string_equal(json_string_value(json_object_get(o, "cwd")), "/home/andrew_kroh");
    assert_string_equal(json_string_value(json_object_get(o, "a0")), "auditctl");
    assert_string_equal(json_string_value(json_object_get(o, "a6")), "execve");
    assert_string_equal(json_string_value(json_object_get(o, "name")), "/sbin/auditctl");
    assert_string_equal(json_string_value(json_object_get(o, "time")), "2016-12-07T02:20:31.371Z");
    json_decref(o);
    o = json_loads(e17, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "exe")), "/usr/bin/kmod");
    json_decref(o);
    /* single-record events are passed through as written */
    assert_non_null(strstr(out.data, "type=USER_CMD msg=audit("));
    free_lines(ls, n);
    security_sigma_set_free(s);
    tel_auditd_free(j);
    core_buf_release(&out);
    core_free(text);
}

/* ---- synthetic events ------------------------------------------------------------------- */

/* `/tmp/x/chattr -i /etc/passwd` run from /tmp: exe (SYSCALL) and a0/a1 (EXECVE) are in two
 * records. Each record alone fires only its own rule; the joined event fires both, and a rule
 * that combines `type: EXECVE` with keywords (binary padding) sees the EXECVE arguments. */
static const char CHATTR_EVENT[] =
    "type=SYSCALL msg=audit(1700000000.100:900): arch=c000003e syscall=59 success=yes exit=0 "
    "a0=55d0 a1=55d1 a2=55d2 a3=0 items=2 ppid=10 pid=11 auid=1000 uid=0 gid=0 euid=0 "
    "comm=\"chattr\" exe=\"/tmp/x/chattr\" key=(null)\n"
    "type=EXECVE msg=audit(1700000000.100:900): argc=3 a0=\"chattr\" a1=\"-i\" "
    "a2=\"/etc/passwd\"\n"
    "type=CWD msg=audit(1700000000.100:900): cwd=2F746D702F6120622063\n"
    "type=PATH msg=audit(1700000000.100:900): item=0 name=\"/tmp/x/chattr\" inode=5 dev=08:01\n"
    "type=PATH msg=audit(1700000000.100:900): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" "
    "inode=6\n"
    "type=PROCTITLE msg=audit(1700000000.100:900): "
    "proctitle=63686174747200"
    "2D69002F6574632F706173737764\n"
    "type=EOE msg=audit(1700000000.100:900): \n";

static void joined_event_fires_rules_needing_two_records(void **state)
{
    struct security_sigma_set *s = rules();
    char *copy = strdup(CHATTR_EVENT);
    /* each record alone */
    char *sys = strtok(copy, "\n"), *exec = strtok(NULL, "\n");
    assert_string_equal(fire(s, sys), R_EXE_DIRS);
    assert_string_equal(fire(s, exec), R_CHATTR);
    free(copy);
    struct tel_auditd *j = tel_auditd_new();
    struct core_buf out;
    core_buf_init(&out, 0);
    feed_all(j, CHATTR_EVENT, 0, &out);
    assert_int_equal(tel_auditd_pending(j), 0); /* EOE completed it */
    char *ls[4] = {0};
    size_t n = lines_of(&out, ls, 4);
    assert_int_equal(n, 1);
    assert_string_equal(fire(s, ls[0]), R_CHATTR " " R_EXE_DIRS);
    json_error_t je;
    json_t *o = json_loads(ls[0], 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "audit.types")),
                        "SYSCALL,EXECVE,CWD,PATH,PATH,PROCTITLE");
    assert_string_equal(json_string_value(json_object_get(o, "a0")), "chattr");
    assert_string_equal(json_string_value(json_object_get(o, "syscall.a0")), "55d0");
    assert_string_equal(json_string_value(json_object_get(o, "cwd")), "/tmp/a b c");
    assert_string_equal(json_string_value(json_object_get(o, "proctitle")),
                        "chattr -i /etc/passwd");
    assert_string_equal(json_string_value(json_object_get(o, "name")), "/tmp/x/chattr");
    assert_string_equal(json_string_value(json_object_get(o, "path.name")),
                        "/lib64/ld-linux-x86-64.so.2");
    assert_string_equal(json_string_value(json_object_get(o, "path.item")), "1");
    json_decref(o);
    free_lines(ls, n);
    /* keywords with type EXECVE: truncate -s in a joined event */
    core_buf_clear(&out);
    feed_all(j,
             "type=SYSCALL msg=audit(5.0:7): syscall=59 exe=\"/usr/bin/truncate\"\n"
             "type=EXECVE msg=audit(5.0:7): argc=3 a0=\"truncate\" a1=\"-s\" a2=\"+5000\"\n"
             "type=EOE msg=audit(5.0:7):\n",
             0, &out);
    n = lines_of(&out, ls, 4);
    assert_int_equal(n, 1);
    assert_string_equal(fire(s, ls[0]), R_PADDING);
    free_lines(ls, n);
    security_sigma_set_free(s);
    tel_auditd_free(j);
    core_buf_release(&out);
}

static void interleaved_events_and_other_lines(void **state)
{
    struct tel_auditd *j = tel_auditd_new();
    struct core_buf out;
    core_buf_init(&out, 0);
    feed_all(j,
             "type=SYSCALL msg=audit(1.0:1): exe=\"/bin/a\"\n"
             "type=SYSCALL msg=audit(1.0:2): exe=\"/bin/b\"\n"
             "not an audit record\n"
             "type=EXECVE msg=audit(1.0:2): argc=1 a0=\"b\"\n"
             "type=EXECVE msg=audit(1.0:1): argc=1 a0=\"a\"\n"
             "type=EOE msg=audit(1.0:2):\n"
             "node=host1 type=CWD msg=audit(1.0:1): cwd=\"/a\"\n"
             "type=EOE msg=audit(1.0:1):\n"
             "type=EOE msg=audit(1.0:3):\n",
             0, &out);
    char *ls[8];
    size_t n = lines_of(&out, ls, 8);
    assert_int_equal(n, 3);
    assert_string_equal(ls[0], "not an audit record");
    json_error_t je;
    json_t *b = json_loads(ls[1], 0, &je), *a = json_loads(ls[2], 0, &je);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "exe")), "/bin/b");
    assert_string_equal(json_string_value(json_object_get(b, "a0")), "b");
    assert_string_equal(json_string_value(json_object_get(a, "exe")), "/bin/a");
    assert_string_equal(json_string_value(json_object_get(a, "a0")), "a");
    assert_string_equal(json_string_value(json_object_get(a, "cwd")), "/a");
    assert_string_equal(json_string_value(json_object_get(a, "node")), "host1");
    json_decref(a);
    json_decref(b);
    free_lines(ls, n);
    tel_auditd_free(j);
    core_buf_release(&out);
}

static void missing_eoe_completes_after_the_wait(void **state)
{
    struct tel_auditd *j = tel_auditd_new();
    struct core_buf out;
    core_buf_init(&out, 0);
    feed_all(j,
             "type=SYSCALL msg=audit(2.0:5): exe=\"/bin/x\"\n"
             "type=PATH msg=audit(2.0:5): item=0 name=\"/etc/shadow\"\n",
             1000, &out);
    assert_int_equal(out.len, 0);
    assert_int_equal(tel_auditd_flush(j, 1400, 500, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(tel_auditd_pending(j), 1);
    assert_int_equal(tel_auditd_flush(j, 1500, 500, &out), 0);
    assert_int_equal(tel_auditd_pending(j), 0);
    assert_non_null(strstr(out.data, "\"name\":\"/etc/shadow\""));
    tel_auditd_free(j);
    core_buf_release(&out);
}

static void huge_execve_and_split_arguments(void **state)
{
    struct core_buf in, out;
    core_buf_init(&in, 0);
    core_buf_init(&out, 0);
    core_buf_adds(&in, "type=EXECVE msg=audit(3.0:9): argc=501");
    for (int i = 0; i <= 500; i++)
        core_buf_addf(&in, " a%d=\"arg%d\"", i, i);
    core_buf_adds(&in, "\ntype=EXECVE msg=audit(3.0:10): argc=2 a0=\"sh\" a1_len=20 "
                       "a1[0]=2D632022 a1[1]=6563686F2068692022\n"
                       "type=SYSCALL msg=audit(3.0:10): exe=\"/bin/sh\"\n");
    struct tel_auditd *j = tel_auditd_new();
    feed_all(j, in.data, 0, &out);
    feed_all(j, "type=SYSCALL msg=audit(3.0:9): exe=\"/bin/echo\"\n", 0, &out);
    assert_int_equal(tel_auditd_flush(j, 0, 0, &out), 0);
    char *ls[4] = {0};
    size_t n = lines_of(&out, ls, 4);
    assert_int_equal(n, 2);
    json_error_t je;
    json_t *o = json_loads(ls[0], 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "a500")), "arg500");
    assert_string_equal(json_string_value(json_object_get(o, "argc")), "501");
    assert_string_equal(json_string_value(json_object_get(o, "exe")), "/bin/echo");
    json_decref(o);
    o = json_loads(ls[1], 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "a1")), "-c \"echo hi \"");
    assert_null(json_object_get(o, "a1_len"));
    json_decref(o);
    free_lines(ls, n);
    tel_auditd_free(j);
    core_buf_release(&in);
    core_buf_release(&out);
}

static void binary_junk_and_caps(void **state)
{
    struct tel_auditd *j = tel_auditd_new();
    struct core_buf out;
    core_buf_init(&out, 0);
    /* junk inside records: the output is still one valid JSON line per event */
    const char junk[] = "type=EXECVE msg=audit(4.0:1): argc=2 a0=\"\x01\xff\xfe\" a1=FFFE00 "
                        "a2=\"unterminated \x7f";
    assert_int_equal(tel_auditd_feed(j, junk, sizeof(junk) - 1, 0, &out), 0);
    const char junk2[] = "type=CWD msg=audit(4.0:1): cwd=\"\xc3\x28\" =x == 'msg='a=";
    assert_int_equal(tel_auditd_feed(j, junk2, sizeof(junk2) - 1, 0, &out), 0);
    const char nul[] = "type=PATH msg=audit(4.0:1): name=\"a\0b\"";
    assert_int_equal(tel_auditd_feed(j, nul, sizeof(nul) - 1, 0, &out), 0);
    assert_int_equal(tel_auditd_flush(j, 0, 0, &out), 0);
    json_error_t je;
    char *ls[4] = {0};
    size_t n = lines_of(&out, ls, 4);
    assert_int_equal(n, 1);
    json_t *o = json_loads(ls[0], 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "a1")), "FFFE00"); /* not UTF-8 */
    json_decref(o);
    free_lines(ls, n);
    core_buf_clear(&out);
    /* malformed headers pass through as lines */
    feed_all(j, "type=X msg=audit(\ntype=X msg=audit(1:2\ntype= msg=audit(1:2):\n", 0, &out);
    assert_int_equal(tel_auditd_pending(j), 0);
    n = lines_of(&out, ls, 4);
    assert_int_equal(n, 3);
    free_lines(ls, n);
    core_buf_clear(&out);
    /* more open events than AUDITD_OPEN_MAX: the oldest are completed */
    char line[128];
    for (int i = 0; i < AUDITD_OPEN_MAX + 8; i++) {
        snprintf(line, sizeof(line), "type=SYSCALL msg=audit(6.0:%d): exe=\"/bin/%d\"", i, i);
        assert_int_equal(tel_auditd_feed(j, line, strlen(line), 0, &out), 0);
    }
    assert_int_equal(tel_auditd_pending(j), AUDITD_OPEN_MAX);
    assert_non_null(strstr(out.data, "audit(6.0:0)"));
    assert_null(strstr(out.data, "audit(6.0:8)"));
    assert_int_equal(tel_auditd_flush(j, 0, 0, &out), 0);
    core_buf_clear(&out);
    /* more records than AUDITD_RECORDS_MAX in one event: cut there */
    for (int i = 0; i < AUDITD_RECORDS_MAX + 3; i++) {
        snprintf(line, sizeof(line), "type=PATH msg=audit(7.0:1): item=%d name=\"/f%d\"", i, i);
        assert_int_equal(tel_auditd_feed(j, line, strlen(line), 0, &out), 0);
    }
    assert_int_equal(tel_auditd_pending(j), 1);
    n = lines_of(&out, ls, 4);
    assert_int_equal(n, 1);
    o = json_loads(ls[0], 0, &je);
    assert_int_equal(json_integer_value(json_object_get(o, "audit.records")), AUDITD_RECORDS_MAX);
    json_decref(o);
    free_lines(ls, n);
    tel_auditd_free(j);
    core_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sample_joins_events_and_fires_nothing),
        cmocka_unit_test(joined_event_fires_rules_needing_two_records),
        cmocka_unit_test(interleaved_events_and_other_lines),
        cmocka_unit_test(missing_eoe_completes_after_the_wait),
        cmocka_unit_test(huge_execve_and_split_arguments),
        cmocka_unit_test(binary_junk_and_caps),
    };
    return cmocka_run_group_tests_name("auditd", tests, NULL, NULL);
}
