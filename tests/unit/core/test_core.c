/* Unit tests for core: errors, buffers, arenas, text helpers, encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/core.h"

static void err_set_returns_code_and_records_origin(void **state)
{
    struct core_err err = {0};
    int rc = core_err_set(&err, CORE_E_NOTFOUND, "service '%s' not found", "x");
    assert_int_equal(rc, CORE_E_NOTFOUND);
    assert_string_equal(err.msg, "service 'x' not found");
    assert_non_null(strstr(err.file, "test_core.c"));
    core_err_wrap(&err, "loading %s", "a.yaml");
    assert_string_equal(err.msg, "loading a.yaml: service 'x' not found");
    assert_int_equal(core_err_set(NULL, CORE_E_IO, "ignored"), CORE_E_IO);
}

static void buf_stays_nul_terminated_and_respects_max(void **state)
{
    struct core_buf b;
    core_buf_init(&b, 8);
    assert_non_null(b.data);
    assert_int_equal(b.data[0], 0);
    assert_int_equal(core_buf_adds(&b, "abcd"), 0);
    assert_int_equal(core_buf_addf(&b, "%d", 123), 0);
    assert_string_equal(b.data, "abcd123");
    assert_int_equal(core_buf_adds(&b, "xy"), CORE_E_TOO_BIG);
    assert_string_equal(b.data, "abcd123"); /* unchanged on failure */
    assert_int_equal(core_buf_add(&b, "\0", 1), 0);
    assert_int_equal(b.len, 8);
    core_buf_release(&b);
    assert_int_equal(b.len, 0);
}

static void buf_json_escapes_and_replaces_invalid_utf8(void **state)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    core_buf_add_json_str(&b, "a\"b\\c\n\x01\xff\xc3\xa9");
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xa9\"");
    core_buf_clear(&b);
    core_buf_add_html(&b, "<a href='x'>&\"</a>");
    assert_string_equal(b.data, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    core_buf_release(&b);
}

static void arena_caps_total_bytes(void **state)
{
    struct core_arena a;
    core_arena_init(&a, 1024);
    assert_non_null(core_arena_alloc(&a, 512));
    assert_non_null(core_arena_strdup(&a, "hello"));
    assert_null(core_arena_alloc(&a, 1024));
    char *s = core_arena_sprintf(&a, "%s-%d", "x", 7);
    assert_string_equal(s, "x-7");
    core_arena_release(&a);
}

static void dns_labels(void **state)
{
    assert_true(core_is_dns_label("payments-api"));
    assert_true(core_is_dns_label("a"));
    assert_false(core_is_dns_label(""));
    assert_false(core_is_dns_label("-a"));
    assert_false(core_is_dns_label("a-"));
    assert_false(core_is_dns_label("Payments"));
    assert_false(core_is_dns_label("../etc"));
    assert_false(core_is_dns_label("a_b"));
    assert_false(core_is_dns_label("a'; drop table x;--"));
    char long_name[80];
    memset(long_name, 'a', 64);
    long_name[64] = 0;
    assert_false(core_is_dns_label(long_name));
}

static void did_you_mean_finds_close_keys_only(void **state)
{
    static const char *const keys[] = {"replicas", "rollout", "run", "expose", NULL};
    assert_string_equal(core_did_you_mean("replica", keys), "replicas");
    assert_string_equal(core_did_you_mean("rollot", keys), "rollout");
    assert_null(core_did_you_mean("database", keys));
}

static void durations_quantities_and_cpu(void **state)
{
    int64_t v;
    assert_int_equal(core_parse_duration_ms("5s", &v), 0);
    assert_int_equal(v, 5000);
    assert_int_equal(core_parse_duration_ms("300ms", &v), 0);
    assert_int_equal(v, 300);
    assert_int_equal(core_parse_duration_ms("1h30m", &v), 0);
    assert_int_equal(v, 5400000);
    assert_int_equal(core_parse_duration_ms("5", &v), CORE_E_INVAL);
    assert_int_equal(core_parse_duration_ms("-1s", &v), CORE_E_INVAL);
    assert_int_equal(core_parse_duration_ms("fast", &v), CORE_E_INVAL);
    assert_int_equal(core_parse_bytes("256Mi", &v), 0);
    assert_int_equal(v, 256 * 1024 * 1024);
    assert_int_equal(core_parse_bytes("1G", &v), 0);
    assert_int_equal(v, 1000000000);
    assert_int_equal(core_parse_bytes("12XB", &v), CORE_E_INVAL);
    assert_int_equal(core_parse_bytes("0x10", &v), CORE_E_INVAL);
    assert_int_equal(core_parse_bytes("1e3", &v), CORE_E_INVAL);
    assert_int_equal(core_parse_millicores("0x1", &v), CORE_E_INVAL);
    assert_int_equal(core_parse_millicores("0.5", &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(core_parse_millicores("250m", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(core_parse_millicores("lots", &v), CORE_E_INVAL);
}

static void form_values_are_decoded(void **state)
{
    char out[32];
    assert_int_equal(core_form_get("a=1&q=hello+w%6Frld&x", "q", out, sizeof(out)), 0);
    assert_string_equal(out, "hello world");
    assert_int_equal(core_form_get("a=1&x", "x", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(core_form_get("a=1", "b", out, sizeof(out)), CORE_E_NOTFOUND);
    assert_int_equal(core_form_get("a=%zz", "a", out, sizeof(out)), CORE_E_INVAL);
    assert_int_equal(core_form_get("a=%00", "a", out, sizeof(out)), CORE_E_INVAL);
    assert_int_equal(core_form_get("a=0123456789", "a", out, 4), CORE_E_TOO_BIG);
    struct core_buf b;
    core_buf_init(&b, 0);
    core_buf_add_urlenc(&b, "a b/&?=é");
    assert_string_equal(b.data, "a%20b%2F%26%3F%3D%C3%A9");
    core_buf_release(&b);
}

static void utf8_validation(void **state)
{
    assert_true(core_utf8_valid("h\xc3\xa9llo", 6));
    assert_false(core_utf8_valid("\xff", 1));
    assert_false(core_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(core_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(core_utf8_valid("\xe2\x82", 2));         /* truncated */
}

static void hashes_and_tokens(void **state)
{
    char hex[65];
    core_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char r1[33], r2[33];
    assert_int_equal(core_random_hex(r1, 16), 0);
    assert_int_equal(core_random_hex(r2, 16), 0);
    assert_int_equal(strlen(r1), 32);
    assert_string_not_equal(r1, r2);
    assert_true(core_str_eq_ct("abc", "abc"));
    assert_false(core_str_eq_ct("abc", "abd"));
    assert_false(core_str_eq_ct("abc", "ab"));
}

static void failmalloc_makes_allocations_fail_cleanly(void **state)
{
    core_failmalloc_set(1);
    assert_null(core_malloc(10));
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(core_buf_adds(&b, "x"), CORE_E_NOMEM);
    core_failmalloc_set(0);
    assert_int_equal(core_buf_adds(&b, "x"), 0);
    core_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(err_set_returns_code_and_records_origin),
        cmocka_unit_test(buf_stays_nul_terminated_and_respects_max),
        cmocka_unit_test(buf_json_escapes_and_replaces_invalid_utf8),
        cmocka_unit_test(arena_caps_total_bytes),
        cmocka_unit_test(dns_labels),
        cmocka_unit_test(did_you_mean_finds_close_keys_only),
        cmocka_unit_test(durations_quantities_and_cpu),
        cmocka_unit_test(form_values_are_decoded),
        cmocka_unit_test(utf8_validation),
        cmocka_unit_test(hashes_and_tokens),
        cmocka_unit_test(failmalloc_makes_allocations_fail_cleanly),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
