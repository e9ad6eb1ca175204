/* Unit tests for redaction: built-in detectors (emails, Luhn-checked cards, bearer tokens,
 * Authorization and password values), configured PCRE2 patterns with match limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/telemetry.h"

static struct core_arena arena;

static int setup(void **state)
{
    core_arena_init(&arena, 64u << 20);
    return 0;
}

static int teardown(void **state)
{
    core_arena_release(&arena);
    return 0;
}

static const struct tel_redact_config builtins = {.emails = true, .cards = true, .bearer = true};

/* Redacts a plain line with r; returns the body as a NUL-terminated arena string. */
static const char *red(const struct tel_redactor *r, const char *line, int *count)
{
    struct tel_record rec;
    tel_parse_line(line, strlen(line), NULL, &arena, &rec);
    int n = tel_redact(r, &rec, &arena);
    if (count)
        *count = n;
    assert_int_equal(rec.redacted, n > 0);
    char *s = core_arena_alloc(&arena, rec.body_len + 1);
    memcpy(s, rec.body, rec.body_len);
    s[rec.body_len] = 0;
    return s;
}

static void luhn_check(void **state)
{
    assert_true(tel_luhn_ok("4111111111111111", 16));
    assert_true(tel_luhn_ok("4111 1111 1111 1111", 19));
    assert_true(tel_luhn_ok("4111-1111-1111-1111", 19));
    assert_true(tel_luhn_ok("378282246310005", 15));
    assert_false(tel_luhn_ok("4111111111111112", 16));
    assert_false(tel_luhn_ok("4111x111111111111", 17));
    assert_false(tel_luhn_ok("", 0));
}

static void emails_are_redacted(void **state)
{
    struct tel_redactor *r = tel_redactor_new(&builtins, NULL);
    assert_non_null(r);
    int n;
    assert_string_equal(red(r, "mail to john.doe+x@example.co.uk now", &n),
                        "mail to [REDACTED:email] now");
    assert_int_equal(n, 1);
    assert_string_equal(red(r, "a@b.io,c@d.org", &n), "[REDACTED:email],[REDACTED:email]");
    assert_int_equal(n, 2);
    /* not addresses */
    assert_string_equal(red(r, "user@localhost and @handle and x@y.1", &n),
                        "user@localhost and @handle and x@y.1");
    assert_int_equal(n, 0);
    tel_redactor_free(r);
}

static void cards_need_luhn_and_a_card_shape(void **state)
{
    struct tel_redactor *r = tel_redactor_new(&builtins, NULL);
    int n;
    assert_string_equal(red(r, "card 4111111111111111 ok", &n), "card [REDACTED:card] ok");
    assert_string_equal(red(r, "card 4111 1111 1111 1111.", &n), "card [REDACTED:card].");
    assert_string_equal(red(r, "card: 5500-0000-0000-0004", &n), "card: [REDACTED:card]");
    assert_string_equal(red(r, "amex 3782 822463 10005", &n), "amex [REDACTED:card]");
    /* negatives: Luhn failure, epoch times, IPs, dates, ids, mixed grouping */
    static const char *const keep[] = {
        "card 4111111111111112 fails luhn",
        "ts 1714979289123 and 1714979289123456789",
        "from 192.168.100.200 and 10.0.0.1:8080",
        "at 2024-05-06 07:08:09.123456",
        "order 4111111111111111x7 and id_4111111111111111",
        "phone 4111 11 1111 1111 11",
        "version 4.111111111111111",
        "numbers 12 34 56 78 90 12 34",
        "uuid 4111-111111111111",
        "77777777777777777777777",
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        const char *got = red(r, keep[i], &n);
        if (n != 0)
            fail_msg("'%s' -> '%s'", keep[i], got);
    }
    tel_redactor_free(r);
}

static void bearer_and_authorization_values(void **state)
{
    struct tel_redactor *r = tel_redactor_new(&builtins, NULL);
    int n;
    assert_string_equal(red(r, "GET / Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", &n),
                        "GET / Authorization: Bearer [REDACTED:token]");
    assert_string_equal(red(r, "hdr authorization=Basic dXNlcjpwYXNz end", &n),
                        "hdr authorization=Basic [REDACTED:token] end");
    assert_string_equal(red(r, "sent bearer abcdefgh12345678", &n), "sent bearer [REDACTED:token]");
    assert_string_equal(red(r, "login password=hunter2 ok", &n), "login password=[REDACTED:secret] ok");
    assert_string_equal(red(r, "cfg {\"db_password\": \"s3cr3t\", \"x\": 1}", &n),
                        "cfg {\"db_password\": \"[REDACTED:secret]\", \"x\": 1}");
    /* short and unrelated words stay */
    assert_string_equal(red(r, "the bearer bond; passwords are rotated", &n),
                        "the bearer bond; passwords are rotated");
    assert_int_equal(n, 0);
    tel_redactor_free(r);
}

static void attributes_are_redacted_body_too(void **state)
{
    struct tel_redactor *r = tel_redactor_new(&builtins, NULL);
    struct tel_record rec;
    const char *line = "{\"msg\":\"paid by a@b.io\",\"email\":\"c@d.io\",\"token\":\"abc\","
                       "\"Authorization\":\"Bearer xyzxyzxyz\",\"n\":4111111111111111,"
                       "\"nested\":{\"e\":\"x@y.io\"},\"note\":\"card 4111111111111111\"}";
    tel_parse_line(line, strlen(line), NULL, &arena, &rec);
    int n = tel_redact(r, &rec, &arena);
    assert_true(rec.redacted);
    assert_int_equal(n, 5);
    assert_int_equal(rec.body_len, strlen("paid by [REDACTED:email]"));
    assert_memory_equal(rec.body, "paid by [REDACTED:email]", rec.body_len);
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(tel_record_write_json(&rec, &b), 0);
    assert_non_null(strstr(b.data, "\"email\":\"[REDACTED:email]\""));
    assert_non_null(strstr(b.data, "\"token\":\"[REDACTED:token]\""));
    assert_non_null(strstr(b.data, "\"Authorization\":\"[REDACTED:token]\""));
    assert_non_null(strstr(b.data, "\"note\":\"card [REDACTED:card]\""));
    /* only strings: numbers and nested JSON are not rewritten */
    assert_non_null(strstr(b.data, "\"n\":4111111111111111"));
    core_buf_release(&b);
    /* redacting twice changes nothing more */
    assert_int_equal(tel_redact(r, &rec, &arena), 0);
    tel_redactor_free(r);
}

/* Text the redactor rewrote loses the parser's "needs no escaping" marks: a replacement with
 * a quote, a backslash and a newline still comes out as valid, escaped JSON. */
static void rewritten_text_is_escaped_again(void **state)
{
    const char *pats[] = {"secret[0-9]+"};
    struct tel_redact_config cfg = {.emails = true, .patterns = pats, .npatterns = 1,
                                    .replacement = "<\"x\\y\n>"};
    struct tel_redactor *r = tel_redactor_new(&cfg, NULL);
    assert_non_null(r);
    struct tel_record rec;
    const char *line = "{\"msg\":\"got secret42\",\"k\":\"secret7 and more\",\"p\":\"plain\"}";
    tel_parse_line(line, strlen(line), NULL, &arena, &rec);
    assert_true(rec.body_plain);
    assert_true(tel_redact(r, &rec, &arena) >= 2);
    assert_false(rec.body_plain);
    assert_int_equal(rec.attrs[0].plain, TEL_PLAIN_KEY);
    assert_int_equal(rec.attrs[1].plain, TEL_PLAIN_KEY | TEL_PLAIN_VAL); /* untouched */
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(tel_record_write_json(&rec, &b), 0);
    json_error_t e;
    json_t *j = json_loadb(b.data, b.len, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "body")), "got <\"x\\y\n>");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "attributes"),
                                                          "k")),
                        "<\"x\\y\n> and more");
    json_decref(j);
    core_buf_release(&b);
    tel_redactor_free(r);
}

static void detectors_can_be_switched_off(void **state)
{
    struct tel_redact_config cfg = {.emails = false, .cards = true, .bearer = false};
    struct tel_redactor *r = tel_redactor_new(&cfg, NULL);
    int n;
    assert_string_equal(red(r, "a@b.io Bearer abcdefghijkl 4111111111111111", &n),
                        "a@b.io Bearer abcdefghijkl [REDACTED:card]");
    tel_redactor_free(r);
    /* NULL config: everything on */
    r = tel_redactor_new(NULL, NULL);
    assert_string_equal(red(r, "a@b.io", &n), "[REDACTED:email]");
    tel_redactor_free(r);
}

static void configured_patterns(void **state)
{
    const char *pats[] = {"sk_live_[A-Za-z0-9]{8,}", "ssn:\\s*\\d{3}-\\d{2}-\\d{4}", "x*"};
    struct tel_redact_config cfg = {.emails = true, .patterns = pats, .npatterns = 3};
    struct tel_redactor *r = tel_redactor_new(&cfg, NULL);
    assert_non_null(r);
    int n;
    assert_string_equal(red(r, "key sk_live_abcdefgh123 and ssn: 123-45-6789 by a@b.io", &n),
                        "key [REDACTED] and [REDACTED] by [REDACTED:email]");
    assert_int_equal(n, 3);
    tel_redactor_free(r);
    cfg.replacement = "***";
    cfg.npatterns = 1;
    r = tel_redactor_new(&cfg, NULL);
    assert_string_equal(red(r, "sk_live_abcdefgh123", &n), "***");
    tel_redactor_free(r);
}

static void bad_pattern_is_an_error_with_offset(void **state)
{
    const char *pats[] = {"ok", "a(b"};
    struct tel_redact_config cfg = {.patterns = pats, .npatterns = 2};
    struct core_err err = {0};
    assert_null(tel_redactor_new(&cfg, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "'a(b'"));
    assert_non_null(strstr(err.msg, "offset 3"));
}

static void catastrophic_pattern_is_bounded(void **state)
{
    const char *pats[] = {"(a+)+$", "^(\\w+\\s?)*$"};
    struct tel_redact_config cfg = {.patterns = pats, .npatterns = 2};
    struct tel_redactor *r = tel_redactor_new(&cfg, NULL);
    assert_non_null(r);
    char line[4096];
    memset(line, 'a', 4000);
    line[4000] = '!';
    line[4001] = 0;
    int n;
    const char *out = red(r, line, &n);
    /* the match limit ends it; the string is replaced whole (fail closed) */
    assert_true(n >= 1);
    assert_string_equal(out, "[REDACTED]");
    memset(line, 'x', 4000);
    line[4000] = '!';
    line[4001] = 0;
    out = red(r, line, &n);
    assert_string_equal(out, "[REDACTED]");
    tel_redactor_free(r);
}

static void shared_by_threads_in_principle(void **state)
{
    /* The pool hands out match data; many records in a row reuse it. */
    const char *pats[] = {"secret-[0-9]+"};
    struct tel_redact_config cfg = {.patterns = pats, .npatterns = 1};
    struct tel_redactor *r = tel_redactor_new(&cfg, NULL);
    for (int i = 0; i < 100; i++) {
        int n;
        assert_string_equal(red(r, "a secret-123 b", &n), "a [REDACTED] b");
    }
    tel_redactor_free(r);
    tel_redactor_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(luhn_check),
        cmocka_unit_test(emails_are_redacted),
        cmocka_unit_test(cards_need_luhn_and_a_card_shape),
        cmocka_unit_test(bearer_and_authorization_values),
        cmocka_unit_test(attributes_are_redacted_body_too),
        cmocka_unit_test(detectors_can_be_switched_off),
        cmocka_unit_test(configured_patterns),
        cmocka_unit_test(rewritten_text_is_escaped_again),
        cmocka_unit_test(bad_pattern_is_an_error_with_offset),
        cmocka_unit_test(catastrophic_pattern_is_bounded),
        cmocka_unit_test(shared_by_threads_in_principle),
    };
    return cmocka_run_group_tests_name("telemetry_redact", tests, setup, teardown);
}
