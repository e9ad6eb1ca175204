/* Unit tests for the parse transform: JSON / logfmt / plain lines and syslog onto the log
 * standard, and the standard JSON encoding (every output is checked with jansson). Ends with
 * a printed micro-benchmark (parse + write of 200-byte JSON lines), not a timed assertion. */
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
#include <time.h>

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

/* Parses and encodes a line; returns the decoded output (checked valid JSON). */
static json_t *run(const char *line, size_t len, const struct tel_origin *o,
                   struct tel_record *rec)
{
    tel_parse_line(line, len, o, &arena, rec);
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(tel_record_write_json(rec, &b), 0);
    json_error_t e;
    json_t *j = json_loadb(b.data, b.len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    if (!j)
        fail_msg("invalid JSON output (%s): %.300s", e.text, b.data);
    core_buf_release(&b);
    return j;
}

static json_t *runs(const char *line, struct tel_record *rec)
{
    return run(line, strlen(line), NULL, rec);
}

static const char *attr_s(const struct tel_record *rec, const char *key, enum tel_vtype *t)
{
    static char buf[4096];
    for (uint32_t i = 0; i < rec->nattrs; i++) {
        if (rec->attrs[i].klen == strlen(key) && memcmp(rec->attrs[i].key, key, rec->attrs[i].klen) == 0) {
            snprintf(buf, sizeof(buf), "%.*s", (int)rec->attrs[i].vlen, rec->attrs[i].val);
            if (t)
                *t = rec->attrs[i].type;
            return buf;
        }
    }
    return NULL;
}

static void assert_body(const struct tel_record *rec, const char *want)
{
    assert_int_equal(rec->body_len, strlen(want));
    assert_memory_equal(rec->body, want, rec->body_len);
}

static const char *jstr(json_t *j, const char *path1, const char *path2)
{
    json_t *v = json_object_get(j, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

/* ---- the hot path's shortcuts: each must agree with the general rule it stands in for ----- */

/* Trace and span ids are checked 16 digits at a time: a bad digit anywhere, or a byte from
 * 0x80, refuses the id (kept as an attribute); upper case is lowered; all zeros is invalid. */
static void trace_ids_checked_in_blocks(void **state)
{
    (void)state;
    const char *good = "0123456789ABCDEFabcdef0123456789";
    struct tel_record rec;
    char line[256];
    snprintf(line, sizeof(line), "{\"trace_id\":\"%s\",\"msg\":\"m\"}", good);
    json_decref(runs(line, &rec));
    assert_string_equal(rec.trace_id, "0123456789abcdefabcdef0123456789");
    static const char bad[] = {'g', 'G', '/', ':', '@', '`', ' ', '\x80', '\xff', 'z'};
    for (size_t pos = 0; pos < 32; pos++) {
        for (size_t b = 0; b < sizeof(bad); b++) {
            char id[33];
            memcpy(id, good, 33);
            id[pos] = bad[b];
            snprintf(line, sizeof(line), "{\"trace_id\":\"%s\",\"msg\":\"m\"}", id);
            json_decref(runs(line, &rec));
            if (rec.trace_id[0])
                fail_msg("byte 0x%02x at %zu accepted: %s", (unsigned char)bad[b], pos, rec.trace_id);
            assert_non_null(attr_s(&rec, "trace_id", NULL));
        }
    }
    json_decref(runs("{\"trace_id\":\"00000000000000000000000000000000\"}", &rec));
    assert_string_equal(rec.trace_id, "");
    json_decref(runs("{\"trace_id\":\"0000000000000000\"}", &rec));
    assert_string_equal(rec.trace_id, "");
    json_decref(runs("{\"trace_id\":\"000000000000000A\",\"span_id\":\"FFFFFFFFFFFFFFFF\"}", &rec));
    assert_string_equal(rec.trace_id, "0000000000000000000000000000000a");
    assert_string_equal(rec.span_id, "ffffffffffffffff");
    json_decref(runs("{\"span_id\":\"fffffffffffffff\"}", &rec)); /* 15 digits */
    assert_string_equal(rec.span_id, "");
}

/* The date and time of day of the previous timestamp is reused when the next one shares its
 * first 19 characters; what follows them (fraction, zone) is read every time. */
static void timestamps_sharing_a_second(void **state)
{
    (void)state;
    struct tel_record rec;
    static const struct {
        const char *ts;
        int64_t want_ns; /* 0: not a time (the line keeps it as an attribute) */
    } cases[] = {
        {"2026-11-26T10:00:00Z", 1795687200000000000},
        {"2026-11-26T10:00:00.5Z", 1795687200500000000},
        {"2026-11-26T10:00:00+01:00", 1795683600000000000},
        {"2026-11-26T10:00:00.25-0130", 1795692600250000000},
        {"2026-11-26T10:00:00", 1795687200000000000},
        {"2026-11-26T10:00:01Z", 1795687201000000000},
        {"2026-11-26 10:00:01Z", 1795687201000000000},
        {"2026-13-26T10:00:01Z", 0},
        {"2026-11-26T10:00:01Z", 1795687201000000000},
        {"2026-11-26T25:00:01Z", 0},
        {"2026-11-26T10:00:01+24:00", 0},
        {"2026-11-26T10:00:01Z", 1795687201000000000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"msg\":\"m\"}", cases[i].ts);
        json_decref(runs(line, &rec));
        if (cases[i].want_ns) {
            if (rec.time_ns != cases[i].want_ns)
                fail_msg("%s: %lld, want %lld", cases[i].ts, (long long)rec.time_ns,
                         (long long)cases[i].want_ns);
        } else {
            assert_int_equal(rec.time_ns, 0);
            assert_string_equal(attr_s(&rec, "ts", NULL), cases[i].ts);
        }
    }
}

/* Numbers of up to 15 characters skip the range check unless they hold an exponent. */
static void number_exponents_in_short_numbers(void **state)
{
    (void)state;
    struct tel_record rec;
    enum tel_vtype t;
    static const struct {
        const char *num;
        enum tel_vtype want;
    } cases[] = {
        {"1e5", TEL_V_NUM},   {"1E5", TEL_V_NUM},        {"1e400", TEL_V_STR},
        {"1E-400", TEL_V_STR}, {"0e999", TEL_V_NUM},      {"123456789012345", TEL_V_NUM},
        {"-1.5e3", TEL_V_NUM}, {"9.9E+298", TEL_V_NUM},   {"9.9e+299", TEL_V_STR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "{\"n\":%s,\"msg\":\"m\"}", cases[i].num);
        json_decref(runs(line, &rec));
        const char *v = attr_s(&rec, "n", &t);
        assert_non_null(v);
        assert_string_equal(v, cases[i].num);
        if (t != cases[i].want)
            fail_msg("%s: type %d, want %d", cases[i].num, (int)t, (int)cases[i].want);
    }
}

/* The encoder reuses the resource object of a recent record when every value is the same:
 * records rotating through more resources than it keeps, values that differ only in length or
 * in one byte, and values too long to keep, each get their own resource. */
static void resource_objects_are_reused_only_when_equal(void **state)
{
    (void)state;
    static char longv[400];
    memset(longv, 'x', sizeof(longv) - 1);
    const char *services[] = {"a",   "b",    "ab",    "a\"b", "c",   "d",  "e",  "f",
                              "g",   "h",    "i",     "a",    "b",   "ab", longv, "aa",
                              longv, "a\\b", "a\"b",  "a",    "é",   "é2", "a"};
    const char *teams[] = {"t1", "t2", "t1"};
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
            struct tel_origin o = {.team = teams[(i + (size_t)round) % 3], .env = "prod",
                                   .file = round == 2 ? "/var/log/x.log" : NULL};
            if (round == 1)
                o.service = services[i];
            struct tel_record rec;
            json_t *j;
            if (round == 1) {
                j = run("{\"msg\":\"m\"}", 11, &o, &rec);
            } else {
                json_t *line = json_pack("{s:s,s:s}", "msg", "m", "service", services[i]);
                char *text = json_dumps(line, JSON_COMPACT);
                j = run(text, strlen(text), &o, &rec);
                free(text);
                json_decref(line);
            }
            assert_string_equal(jstr(j, "resource", "service.name"), services[i]);
            assert_string_equal(jstr(j, "resource", "team"), o.team);
            assert_string_equal(jstr(j, "resource", "deployment.environment"), "prod");
            if (o.file)
                assert_string_equal(jstr(j, "resource", "log.file.path"), o.file);
            else
                assert_null(json_object_get(json_object_get(j, "resource"), "log.file.path"));
            json_decref(j);
        }
    }
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void json_maps_every_key_family(void **state)
{
    struct tel_record rec;
    json_t *j = runs("{\"time\":\"2024-05-06T07:08:09.123Z\",\"level\":\"warn\",\"msg\":\"hello\","
                     "\"trace_id\":\"4BF92F3577B34DA6A3CE929D0E0E4736\",\"span_id\":\"00f067aa0ba902b7\","
                     "\"service\":\"pay\",\"team\":\"t1\",\"env\":\"prod\",\"version\":\"1.2.3\","
                     "\"instance\":\"pay-0\",\"host\":\"node1\",\"user\":\"bob\",\"n\":42,\"ok\":true,"
                     "\"nil\":null}",
                     &rec);
    assert_int_equal(rec.format, TEL_FMT_JSON);
    assert_int_equal(rec.severity, TEL_SEV_WARN);
    assert_body(&rec, "hello");
    assert_string_equal(rec.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(rec.span_id, "00f067aa0ba902b7");
    assert_string_equal(rec.res.service, "pay");
    assert_string_equal(rec.res.team, "t1");
    assert_string_equal(rec.res.env, "prod");
    assert_string_equal(rec.res.version, "1.2.3");
    assert_string_equal(rec.res.instance, "pay-0");
    assert_string_equal(rec.res.host, "node1");
    assert_int_equal(rec.nattrs, 4);
    enum tel_vtype t;
    assert_string_equal(attr_s(&rec, "user", &t), "bob");
    assert_int_equal(t, TEL_V_STR);
    assert_string_equal(attr_s(&rec, "n", &t), "42");
    assert_int_equal(t, TEL_V_NUM);
    assert_string_equal(attr_s(&rec, "ok", &t), "true");
    assert_int_equal(t, TEL_V_BOOL);
    assert_string_equal(attr_s(&rec, "nil", &t), "null");
    assert_int_equal(t, TEL_V_NULL);
    json_decref(j);
    /* numbers beyond double range stay text (fuzz/corpus/tel_parse/crash-huge-number.txt) */
    j = runs("{\"big\":1e400,\"long\":123456789012345678901234567890,\"n\":{\"x\":-2E+999}}", &rec);
    assert_string_equal(attr_s(&rec, "big", &t), "1e400");
    assert_int_equal(t, TEL_V_STR);
    assert_string_equal(attr_s(&rec, "long", &t), "123456789012345678901234567890");
    assert_int_equal(t, TEL_V_NUM);
    assert_string_equal(attr_s(&rec, "n", &t), "{\"x\":\"-2E+999\"}");
    json_decref(j);
    j = runs("{\"time\":\"2024-05-06T07:08:09.123Z\",\"level\":\"warn\",\"msg\":\"hello\","
             "\"trace_id\":\"4BF92F3577B34DA6A3CE929D0E0E4736\",\"span_id\":\"00f067aa0ba902b7\","
             "\"service\":\"pay\",\"team\":\"t1\",\"env\":\"prod\",\"version\":\"1.2.3\","
             "\"instance\":\"pay-0\",\"host\":\"node1\",\"user\":\"bob\",\"n\":42,\"ok\":true,"
             "\"nil\":null}", &rec);
    assert_string_equal(jstr(j, "ts", NULL), "2024-05-06T07:08:09.123Z");
    assert_string_equal(jstr(j, "severity", NULL), "WARN");
    assert_true(json_number_value(json_object_get(j, "severity_number")) == 13);
    assert_string_equal(jstr(j, "body", NULL), "hello");
    assert_string_equal(jstr(j, "resource", "service.name"), "pay");
    assert_string_equal(jstr(j, "resource", "team"), "t1");
    assert_string_equal(jstr(j, "resource", "deployment.environment"), "prod");
    assert_string_equal(jstr(j, "resource", "service.version"), "1.2.3");
    assert_string_equal(jstr(j, "resource", "service.instance.id"), "pay-0");
    assert_string_equal(jstr(j, "resource", "host.name"), "node1");
    assert_string_equal(jstr(j, "trace_id", NULL), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_true(json_number_value(json_object_get(json_object_get(j, "attributes"), "n")) == 42);
    /* attribute order is kept */
    const char *keys[] = {"user", "n", "ok", "nil"};
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(j, "attributes"), key, v) assert_string_equal(key, keys[k++]);
    json_decref(j);
}

static void json_alternative_key_names(void **state)
{
    static const struct {
        const char *line;
        int sev;
        const char *body;
        const char *service;
        const char *env;
    } cases[] = {
        {"{\"ts\":\"2024-01-01T00:00:00Z\",\"lvl\":\"error\",\"message\":\"m\"}", 17, "m", NULL, NULL},
        {"{\"timestamp\":1700000000,\"severity\":\"INFO\",\"body\":\"b\",\"app\":\"a\"}", 9, "b", "a", NULL},
        {"{\"@timestamp\":\"2024-01-01T00:00:00Z\",\"log.level\":\"debug\",\"log\":\"l\\n\"}", 5, "l", NULL, NULL},
        {"{\"t\":\"2024-01-01T00:00:00Z\",\"loglevel\":\"fatal\",\"msg\":\"x\",\"environment\":\"dev\"}", 21, "x", NULL, "dev"},
        {"{\"severity_text\":\"notice\",\"msg\":\"x\",\"service.name\":\"s\",\"deployment.environment\":\"e\"}", 10, "x", "s", "e"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tel_record rec;
        json_t *j = runs(cases[i].line, &rec);
        assert_int_equal(rec.format, TEL_FMT_JSON);
        assert_int_equal(rec.severity, cases[i].sev);
        assert_body(&rec, cases[i].body);
        if (cases[i].service)
            assert_string_equal(rec.res.service, cases[i].service);
        if (cases[i].env)
            assert_string_equal(rec.res.env, cases[i].env);
        assert_int_equal(rec.nattrs, 0);
        json_decref(j);
    }
    struct tel_record rec;
    json_t *j = runs("{\"msg\":\"x\",\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\"}", &rec);
    assert_string_equal(rec.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(rec.span_id, "b7ad6b7169203331");
    json_decref(j);
    j = runs("{\"trace.id\":\"0af7651916cd43dd\",\"span.id\":\"b7ad6b7169203331\"}", &rec);
    assert_string_equal(rec.trace_id, "00000000000000000af7651916cd43dd"); /* 64-bit, padded */
    json_decref(j);
    j = runs("{\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}", &rec);
    assert_string_equal(rec.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(rec.span_id, "b7ad6b7169203331");
    json_decref(j);
    /* a malformed id stays an attribute; a second body key too */
    j = runs("{\"trace_id\":\"xyz\",\"msg\":\"a\",\"message\":\"b\"}", &rec);
    assert_string_equal(rec.trace_id, "");
    assert_string_equal(attr_s(&rec, "trace_id", NULL), "xyz");
    assert_body(&rec, "a");
    assert_string_equal(attr_s(&rec, "message", NULL), "b");
    assert_null(json_object_get(j, "trace_id"));
    json_decref(j);
}

static int64_t parse_time(const char *v)
{
    char line[256];
    snprintf(line, sizeof(line), "{\"time\":%s,\"msg\":\"x\"}", v);
    struct tel_record rec;
    tel_parse_line(line, strlen(line), NULL, &arena, &rec);
    assert_int_equal(rec.format, TEL_FMT_JSON);
    return rec.time_ns;
}

static void json_time_formats(void **state)
{
    const int64_t base = 1714979289LL * 1000000000; /* 2024-05-06T07:08:09Z */
    assert_true(parse_time("\"2024-05-06T07:08:09Z\"") == base);
    assert_true(parse_time("\"2024-05-06T07:08:09.5Z\"") == base + 500000000);
    assert_true(parse_time("\"2024-05-06T07:08:09.123456789Z\"") == base + 123456789);
    assert_true(parse_time("\"2024-05-06t07:08:09z\"") == base);
    assert_true(parse_time("\"2024-05-06T09:08:09+02:00\"") == base);
    assert_true(parse_time("\"2024-05-06T09:08:09+0200\"") == base);
    assert_true(parse_time("\"2024-05-06T02:08:09.000-05:00\"") == base);
    assert_true(parse_time("\"2024-05-06 07:08:09,250\"") == base + 250000000);
    assert_true(parse_time("\"2024-05-06T07:08:09\"") == base); /* no zone: UTC */
    assert_true(parse_time("1714979289") == base);
    assert_true(parse_time("1714979289.25") == base + 250000000);
    assert_true(parse_time("1714979289123") == base + 123000000);
    assert_true(parse_time("1714979289123456") == base + 123456000);
    assert_true(parse_time("1714979289123456789") == base + 123456789);
    assert_true(parse_time("\"1714979289\"") == base);
    /* not times: kept as attributes, time unknown */
    assert_true(parse_time("\"yesterday\"") == 0);
    assert_true(parse_time("\"2024-13-06T07:08:09Z\"") == 0);
    assert_true(parse_time("-5") == 0);
    assert_true(parse_time("true") == 0);
    /* beyond int64 nanoseconds (fuzz/corpus/tel_parse/crash-time-overflow.txt) */
    assert_true(parse_time("\"2624-05-06T07:08:09.123Z\"") == 0);
    assert_true(parse_time("99999999999") == 0);
    assert_true(parse_time("9999999999999999999") == 0); /* crash-epoch-overflow.txt */
    /* unknown time: ts written from observed time */
    struct tel_record rec;
    json_t *j = runs("{\"msg\":\"x\"}", &rec);
    assert_int_equal(rec.time_ns, 0);
    assert_true(rec.observed_ns > 0);
    assert_string_equal(jstr(j, "ts", NULL), jstr(j, "observed_ts", NULL));
    json_decref(j);
}

static int parse_level(const char *v)
{
    char line[256];
    snprintf(line, sizeof(line), "{\"level\":%s,\"msg\":\"x\"}", v);
    struct tel_record rec;
    tel_parse_line(line, strlen(line), NULL, &arena, &rec);
    return rec.severity;
}

static void json_level_notations(void **state)
{
    static const struct {
        const char *v;
        int sev;
    } cases[] = {
        {"\"trace\"", 1},  {"\"TRACE\"", 1},   {"\"debug\"", 5},    {"\"dbg\"", 5},
        {"\"info\"", 9},   {"\"Information\"", 9}, {"\"notice\"", 10}, {"\"warn\"", 13},
        {"\"WARNING\"", 13}, {"\"error\"", 17}, {"\"err\"", 17},     {"\"crit\"", 18},
        {"\"critical\"", 18}, {"\"alert\"", 19}, {"\"emerg\"", 21},  {"\"fatal\"", 21},
        {"\"panic\"", 21}, {"\"E\"", 17},      {"\"W\"", 13},       {"\"verbose\"", 1},
        /* bunyan / pino */
        {"10", 1}, {"20", 5}, {"30", 9}, {"40", 13}, {"50", 17}, {"60", 21}, {"\"30\"", 9},
        /* syslog 0-7 */
        {"0", 21}, {"3", 17}, {"4", 13}, {"6", 9}, {"7", 5},
        /* OpenTelemetry 1-24 beyond syslog's range */
        {"14", 14}, {"23", 23},
        /* unknown: unspecified, kept as an attribute */
        {"\"loud\"", 0}, {"99", 0}, {"{\"a\":1}", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = parse_level(cases[i].v);
        if (got != cases[i].sev)
            fail_msg("level %s: got %d want %d", cases[i].v, got, cases[i].sev);
    }
    struct tel_record rec;
    json_t *j = runs("{\"level\":\"loud\",\"msg\":\"x\"}", &rec);
    assert_string_equal(attr_s(&rec, "level", NULL), "loud");
    assert_null(json_object_get(j, "severity"));
    json_decref(j);
    /* severity_number is the OpenTelemetry scale and refines the text */
    j = runs("{\"severity\":\"INFO\",\"severity_number\":10,\"body\":\"x\"}", &rec);
    assert_int_equal(rec.severity, 10);
    assert_int_equal(rec.severity_text_len, 4);
    assert_memory_equal(rec.severity_text, "INFO", 4);
    json_decref(j);
}

static void json_nested_values_kept_compact(void **state)
{
    struct tel_record rec;
    const char *line = "{\"msg\":\"x\",\"ctx\":{\"a\":[1,2,{\"b\":null}]},\"sp\":{ \"a\" : [ 1 , "
                       "\"\\u00e9 x\" ] },\"empty\":[],\"bad\":[\"\xff\",\"\\ud800\"]}";
    json_t *j = runs(line, &rec);
    enum tel_vtype t;
    const char *ctx = attr_s(&rec, "ctx", &t);
    assert_int_equal(t, TEL_V_JSON);
    assert_string_equal(ctx, "{\"a\":[1,2,{\"b\":null}]}");
    /* compact text without whitespace needs no copy */
    for (uint32_t i = 0; i < rec.nattrs; i++)
        if (rec.attrs[i].klen == 3 && memcmp(rec.attrs[i].key, "ctx", 3) == 0)
            assert_true(rec.attrs[i].val > line && rec.attrs[i].val < line + strlen(line));
    assert_string_equal(attr_s(&rec, "sp", NULL), "{\"a\":[1,\"\\u00e9 x\"]}");
    assert_string_equal(attr_s(&rec, "empty", NULL), "[]");
    assert_string_equal(attr_s(&rec, "bad", NULL), "[\"\xEF\xBF\xBD\",\"\\ufffd\"]");
    /* \u0000 in a nested key: rewritten, decoders refuse NUL in keys */
    struct tel_record rec2;
    json_t *j2 = runs("{\"n\":{\"a\\u0000\":\"\\u0000\"}}", &rec2);
    assert_string_equal(attr_s(&rec2, "n", NULL), "{\"a\\ufffd\":\"\\ufffd\"}");
    json_decref(j2);
    json_t *a = json_object_get(j, "attributes");
    assert_true(json_is_object(json_object_get(a, "ctx")));
    assert_int_equal(json_array_size(json_object_get(json_object_get(a, "ctx"), "a")), 3);
    json_decref(j);
}

static void json_escapes_are_decoded_and_reencoded(void **state)
{
    struct tel_record rec;
    const char *line = "{\"msg\":\"a\\\"b\\\\c\\nd\\u00e9\\ud83d\\ude00\\/\\t\\u0001\",\"k\\u0041\":\"v\"}";
    json_t *j = runs(line, &rec);
    assert_body(&rec, "a\"b\\c\nd\xc3\xa9\xf0\x9f\x98\x80/\t\x01");
    assert_string_equal(jstr(j, "body", NULL), "a\"b\\c\nd\xc3\xa9\xf0\x9f\x98\x80/\t\x01");
    assert_string_equal(attr_s(&rec, "kA", NULL), "v");
    json_decref(j);
    /* zero copy when nothing is escaped */
    const char *l2 = "{\"msg\":\"plain text\"}";
    tel_parse_line(l2, strlen(l2), NULL, &arena, &rec);
    assert_ptr_equal(rec.body, l2 + 8);
}

/* The parser marks what the encoder may copy without escaping (TEL_PLAIN_*): strings without
 * escapes or invalid UTF-8, numbers and literals; everything else is escaped as before. */
static void plain_strings_are_marked_for_the_encoder(void **state)
{
    struct tel_record rec;
    const char *line = "{\"msg\":\"caf\xc3\xa9 ok\",\"a\":\"x\",\"b\\u0041\":\"y\\n\",\"c\":\"\xff\","
                       "\"n\":12,\"t\":true,\"o\":{\"k\":1}}";
    json_t *j = runs(line, &rec);
    assert_true(rec.body_plain);
    assert_string_equal(jstr(j, "body", NULL), "caf\xc3\xa9 ok");
    assert_int_equal(rec.nattrs, 6);
    assert_int_equal(rec.attrs[0].plain, TEL_PLAIN_KEY | TEL_PLAIN_VAL); /* a */
    assert_int_equal(rec.attrs[1].plain, 0);                             /* bA: both escaped */
    assert_int_equal(rec.attrs[2].plain, TEL_PLAIN_KEY);                 /* c: invalid UTF-8 */
    assert_int_equal(rec.attrs[3].plain, TEL_PLAIN_KEY | TEL_PLAIN_VAL); /* n */
    assert_int_equal(rec.attrs[4].plain, TEL_PLAIN_KEY | TEL_PLAIN_VAL); /* t */
    assert_string_equal(jstr(j, "attributes", "bA"), "y\n");
    assert_string_equal(jstr(j, "attributes", "c"), "\xef\xbf\xbd");
    json_decref(j);
    /* an escaped body, logfmt and plain text are never marked */
    j = runs("{\"msg\":\"a\\tb\"}", &rec);
    assert_false(rec.body_plain);
    json_decref(j);
    j = runs("a=1 b=\"two words\"", &rec);
    assert_false(rec.body_plain);
    for (uint32_t i = 0; i < rec.nattrs; i++)
        assert_int_equal(rec.attrs[i].plain, 0);
    json_decref(j);
    j = runs("just text", &rec);
    assert_false(rec.body_plain);
    json_decref(j);
}

static void invalid_utf8_becomes_replacement_char(void **state)
{
    struct tel_record rec;
    json_t *j = runs("{\"msg\":\"a\xff" "b\xc3\",\"k\":\"\xe2\x82\"}", &rec);
    assert_int_equal(rec.format, TEL_FMT_JSON);
    assert_body(&rec, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
    assert_string_equal(attr_s(&rec, "k", NULL), "\xEF\xBF\xBD\xEF\xBF\xBD");
    json_decref(j);
    j = runs("plain \xc0\xaf text", &rec);
    assert_int_equal(rec.format, TEL_FMT_PLAIN);
    assert_body(&rec, "plain \xEF\xBF\xBD\xEF\xBF\xBD text");
    json_decref(j);
    j = runs("a=\xff b=\"\xfe\"", &rec);
    assert_int_equal(rec.format, TEL_FMT_LOGFMT);
    assert_string_equal(attr_s(&rec, "a", NULL), "\xEF\xBF\xBD");
    json_decref(j);
}

static void nul_bytes_are_kept_in_a_plain_body(void **state)
{
    struct tel_record rec;
    static const char line[] = "{\"msg\":\"a\0b\"}";
    json_t *j = run(line, sizeof(line) - 1, NULL, &rec);
    assert_int_equal(rec.format, TEL_FMT_PLAIN); /* raw NUL in a JSON string is invalid */
    assert_int_equal(rec.body_len, sizeof(line) - 1);
    size_t blen = json_string_length(json_object_get(j, "body"));
    assert_int_equal(blen, sizeof(line) - 1);
    json_decref(j);
    /* an escaped NUL is valid JSON */
    j = runs("{\"msg\":\"a\\u0000b\"}", &rec);
    assert_int_equal(rec.format, TEL_FMT_JSON);
    assert_int_equal(rec.body_len, 3);
    json_decref(j);
}

static void one_mib_lines(void **state)
{
    size_t n = 1 << 20;
    char *line = malloc(n + 64);
    assert_non_null(line);
    memset(line, 'x', n + 64);
    memcpy(line, "{\"level\":\"info\",\"msg\":\"", 23);
    memcpy(line + 23 + n, "\"}", 3);
    struct tel_record rec;
    json_t *j = run(line, strlen(line), NULL, &rec);
    assert_int_equal(rec.format, TEL_FMT_JSON);
    assert_int_equal(rec.body_len, n);
    json_decref(j);
    /* unterminated: plain */
    line[23 + n] = 0;
    j = run(line, strlen(line), NULL, &rec);
    assert_int_equal(rec.format, TEL_FMT_PLAIN);
    assert_int_equal(rec.body_len, 23 + n);
    json_decref(j);
    for (size_t i = 0; i < n; i++)
        line[i] = (char)(i * 7 + 1);
    j = run(line, n, NULL, &rec);
    json_decref(j);
    free(line);
}

static void hostile_nesting_is_bounded(void **state)
{
    size_t depth = 200000;
    char *line = malloc(2 * depth + 64);
    assert_non_null(line);
    size_t o = 0;
    o += (size_t)sprintf(line, "{\"a\":");
    for (size_t i = 0; i < depth; i++)
        line[o++] = '[';
    for (size_t i = 0; i < depth; i++)
        line[o++] = ']';
    line[o++] = '}';
    struct tel_record rec;
    json_t *j = run(line, o, NULL, &rec);
    assert_int_equal(rec.format, TEL_FMT_PLAIN);
    json_decref(j);
    /* within the bound: kept */
    j = runs("{\"a\":[[[[[[[[[[{\"b\":[[[1]]]}]]]]]]]]]]}", &rec);
    assert_int_equal(rec.format, TEL_FMT_JSON);
    json_decref(j);
    /* "attributes"/"resource" nesting counts too */
    o = 0;
    for (size_t i = 0; i < 100; i++)
        o += (size_t)sprintf(line + o, "{\"attributes\":");
    o += (size_t)sprintf(line + o, "1");
    for (size_t i = 0; i < 100; i++)
        line[o++] = '}';
    j = run(line, o, NULL, &rec);
    assert_int_equal(rec.format, TEL_FMT_PLAIN);
    json_decref(j);
    free(line);
}

static void invalid_json_is_plain(void **state)
{
    static const char *const bad[] = {"{",          "{\"a\":1",      "{\"a\":tru}",    "{\"a\":1} x",
                                      "{\"a\":01}", "{\"a\":\"\\x\"}", "{a:1}",         "{\"a\":1,}",
                                      "{\"a\":[1,]}", "{\"a\"}",       "{\"a\":\"\\ud8\"}", "{\"a\":-}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tel_record rec;
        json_t *j = runs(bad[i], &rec);
        if (rec.format != TEL_FMT_PLAIN)
            fail_msg("'%s' parsed as %d", bad[i], rec.format);
        assert_body(&rec, bad[i]);
        assert_int_equal(rec.nattrs, 0);
        json_decref(j);
    }
}

static void our_own_standard_round_trips(void **state)
{
    struct tel_record rec;
    const char *line = "{\"ts\":\"2026-11-26T06:40:45.963Z\",\"observed_ts\":\"2026-11-26T06:40:46.000Z\","
                       "\"severity\":\"WARN\",\"severity_number\":14,\"body\":\"listening\","
                       "\"attributes\":{\"port\":7070,\"store\":\"sqlite\"},"
                       "\"resource\":{\"service.name\":\"pave\",\"component\":\"server\","
                       "\"service.instance.id\":\"pave\",\"service.version\":\"0.1.0\"},"
                       "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\"}";
    json_t *j = runs(line, &rec);
    assert_int_equal(rec.severity, 14);
    assert_string_equal(rec.res.service, "pave");
    assert_string_equal(rec.res.version, "0.1.0");
    assert_string_equal(attr_s(&rec, "port", NULL), "7070");
    assert_string_equal(attr_s(&rec, "component", NULL), "server");
    assert_int_equal(rec.nattrs, 3);
    assert_string_equal(jstr(j, "ts", NULL), "2026-11-26T06:40:45.963Z");
    /* encode again: the same line shape */
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(tel_record_write_json(&rec, &b), 0);
    struct tel_record rec2;
    json_t *j2 = runs(b.data, &rec2);
    assert_true(json_equal(json_object_get(j, "attributes"), json_object_get(j2, "attributes")));
    assert_true(json_equal(json_object_get(j, "resource"), json_object_get(j2, "resource")));
    assert_string_equal(jstr(j2, "ts", NULL), "2026-11-26T06:40:45.963Z");
    core_buf_release(&b);
    json_decref(j);
    json_decref(j2);
}

static void origin_seeds_resource_line_overrides(void **state)
{
    struct tel_origin o = {.source = "replicas", .service = "orig", .team = "tm", .env = "staging",
                           .file = "/var/log/x.log"};
    struct tel_record rec;
    json_t *j = run("{\"msg\":\"x\",\"service\":\"mine\"}", 28, &o, &rec);
    assert_string_equal(rec.res.service, "mine");
    assert_string_equal(rec.res.team, "tm");
    assert_string_equal(jstr(j, "resource", "deployment.environment"), "staging");
    assert_string_equal(jstr(j, "resource", "log.file.path"), "/var/log/x.log");
    assert_null(json_object_get(json_object_get(j, "resource"), "service.version"));
    json_decref(j);
}

static void too_many_attributes_fold_into_overflow(void **state)
{
    struct core_buf line;
    core_buf_init(&line, 0);
    core_buf_adds(&line, "{\"msg\":\"m\"");
    for (int i = 0; i < 300; i++)
        core_buf_addf(&line, ",\"k%d\":%s", i, i % 2 ? "\"v\\n\"" : "[1, 2]");
    core_buf_adds(&line, "}");
    struct tel_record rec;
    json_t *j = run(line.data, line.len, NULL, &rec);
    assert_int_equal(rec.nattrs, TEL_MAX_ATTRS);
    enum tel_vtype t;
    const char *ov = attr_s(&rec, "attributes.overflow", &t);
    assert_non_null(ov);
    assert_int_equal(t, TEL_V_JSON);
    json_t *o = json_object_get(json_object_get(j, "attributes"), "attributes.overflow");
    assert_int_equal(json_object_size(o), 300 - (TEL_MAX_ATTRS - 1));
    assert_string_equal(json_string_value(json_object_get(o, "k299")), "v\n");
    core_buf_release(&line);
    json_decref(j);
}

static void small_arena_degrades_without_failing(void **state)
{
    struct core_arena small;
    core_arena_init(&small, 64);
    struct tel_record rec;
    const char *line = "{\"msg\":\"a\\nb\",\"x\":{ \"y\" : 1 },\"s\":\"t\"}";
    tel_parse_line(line, strlen(line), NULL, &small, &rec);
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(tel_record_write_json(&rec, &b), 0);
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(j);
    json_decref(j);
    /* a capped output buffer: TOO_BIG, not a broken line */
    struct core_buf capped;
    core_buf_init(&capped, 16);
    assert_int_equal(tel_record_write_json(&rec, &capped), CORE_E_TOO_BIG);
    assert_int_equal(capped.len, 0);
    /* a cap the line fits under although its worst case would not */
    struct core_buf fit;
    core_buf_init(&fit, b.len + 1);
    assert_int_equal(tel_record_write_json(&rec, &fit), 0);
    assert_string_equal(fit.data, b.data);
    core_buf_release(&fit);
    core_buf_release(&capped);
    core_buf_release(&b);
    core_arena_release(&small);
}

/* ---- logfmt and plain ---------------------------------------------------------------------- */

static void logfmt_with_quotes(void **state)
{
    struct tel_record rec;
    json_t *j = runs("time=2024-05-06T07:08:09Z level=error msg=\"disk \\\"full\\\" on /var\" "
                     "path=/var n=3 ok=true empty= url=http://x/?a=b",
                     &rec);
    assert_int_equal(rec.format, TEL_FMT_LOGFMT);
    assert_int_equal(rec.severity, TEL_SEV_ERROR);
    assert_true(rec.time_ns == 1714979289LL * 1000000000);
    assert_body(&rec, "disk \"full\" on /var");
    enum tel_vtype t;
    assert_string_equal(attr_s(&rec, "path", &t), "/var");
    assert_int_equal(t, TEL_V_STR);
    assert_string_equal(attr_s(&rec, "n", &t), "3");
    assert_int_equal(t, TEL_V_NUM);
    assert_string_equal(attr_s(&rec, "ok", &t), "true");
    assert_int_equal(t, TEL_V_BOOL);
    assert_string_equal(attr_s(&rec, "empty", &t), "");
    assert_string_equal(attr_s(&rec, "url", NULL), "http://x/?a=b");
    json_decref(j);
    /* log15 style */
    j = runs("t=2024-05-06T07:08:09+0000 lvl=dbug msg=started", &rec);
    assert_int_equal(rec.format, TEL_FMT_LOGFMT);
    assert_string_equal(attr_s(&rec, "lvl", NULL), "dbug"); /* unknown level word stays */
    json_decref(j);
    /* unterminated quote and bare words: plain */
    j = runs("a=\"open", &rec);
    assert_int_equal(rec.format, TEL_FMT_PLAIN);
    json_decref(j);
    j = runs("x=1 is the answer", &rec);
    assert_int_equal(rec.format, TEL_FMT_PLAIN);
    json_decref(j);
}

static void plain_with_level_words(void **state)
{
    static const struct {
        const char *line;
        int sev;
        const char *body;
    } cases[] = {
        {"ERROR something broke", 17, "something broke"},
        {"[warn] disk low", 13, "disk low"},
        {"[ INFO ] ready", 0, "[ INFO ] ready"},
        {"WARN[0001] slow query", 13, "slow query"},
        {"level=info x y", 9, "x y"},
        {"error: could not open", 17, "could not open"},
        {"2024-05-06T07:08:09Z INFO started", 9, "started"},
        {"2024-05-06 07:08:09,123 DEBUG pool | resized", 5, "pool | resized"},
        {"<3>boom", 17, "boom"},
        {"Info about nothing", 0, "Info about nothing"},
        {"ERRORS happen", 0, "ERRORS happen"},
        {"FATAL", 21, "FATAL"},
        {"just text", 0, "just text"},
        {"", 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tel_record rec;
        json_t *j = runs(cases[i].line, &rec);
        assert_int_equal(rec.format, TEL_FMT_PLAIN);
        if (rec.severity != cases[i].sev)
            fail_msg("'%s': severity %d want %d", cases[i].line, rec.severity, cases[i].sev);
        assert_body(&rec, cases[i].body);
        json_decref(j);
    }
    struct tel_record rec;
    tel_parse_line("2024-05-06T07:08:09Z INFO started", 33, NULL, &arena, &rec);
    assert_true(rec.time_ns == 1714979289LL * 1000000000);
}

/* ---- syslog -------------------------------------------------------------------------------- */

static json_t *sys(const char *msg, const struct tel_origin *o, struct tel_record *rec, bool want)
{
    assert_int_equal(tel_parse_syslog(msg, strlen(msg), o, &arena, rec), want);
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(tel_record_write_json(rec, &b), 0);
    json_t *j = json_loadb(b.data, b.len, JSON_ALLOW_NUL, NULL);
    assert_non_null(j);
    core_buf_release(&b);
    return j;
}

static void syslog_5424_with_structured_data(void **state)
{
    struct tel_record rec;
    json_t *j = sys("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 "
                    "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]"
                    "[examplePriority@32473 class=\"high \\\"x\\\" \\]\"] \xEF\xBB\xBF" "An application event",
                    NULL, &rec, true);
    assert_int_equal(rec.format, TEL_FMT_SYSLOG5424);
    assert_int_equal(rec.severity, 10); /* 165 = local4.notice */
    assert_string_equal(attr_s(&rec, "syslog.facility", NULL), "local4");
    assert_string_equal(rec.res.host, "mymachine.example.com");
    assert_string_equal(rec.res.service, "evntslog");
    assert_string_equal(attr_s(&rec, "syslog.procid", NULL), "1234");
    assert_string_equal(attr_s(&rec, "syslog.msgid", NULL), "ID47");
    assert_string_equal(attr_s(&rec, "sd.exampleSDID@32473.iut", NULL), "3");
    assert_string_equal(attr_s(&rec, "sd.exampleSDID@32473.eventSource", NULL), "Application");
    assert_string_equal(attr_s(&rec, "sd.examplePriority@32473.class", NULL), "high \"x\" ]");
    assert_body(&rec, "An application event");
    assert_string_equal(jstr(j, "ts", NULL), "2003-10-11T22:14:15.003Z");
    json_decref(j);
    /* a NUL in a parameter name (fuzz/corpus/tel_syslog/crash-nul-in-sd-name.txt) */
    static const char nul[] = "<165>1 - h a - - [id x\0y=\"1\"] m";
    assert_true(tel_parse_syslog(nul, sizeof(nul) - 1, NULL, &arena, &rec));
    assert_non_null(attr_s(&rec, "sd.id.x\xEF\xBF\xBDy", NULL));
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(tel_record_write_json(&rec, &b), 0);
    j = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(j);
    json_decref(j);
    core_buf_release(&b);
}

static void syslog_5424_without_structured_data(void **state)
{
    struct tel_record rec;
    struct tel_origin o = {.service = "known"};
    json_t *j = sys("<34>1 2003-10-11T22:14:15.003+02:00 host su - ID47 - 'su root' failed\n", &o,
                    &rec, true);
    assert_int_equal(rec.format, TEL_FMT_SYSLOG5424);
    assert_int_equal(rec.severity, 18); /* auth.crit */
    assert_string_equal(rec.res.service, "known");
    assert_string_equal(attr_s(&rec, "syslog.appname", NULL), "su");
    assert_null(attr_s(&rec, "syslog.procid", NULL));
    assert_body(&rec, "'su root' failed");
    assert_string_equal(jstr(j, "ts", NULL), "2003-10-11T20:14:15.003Z");
    json_decref(j);
    /* ends before STRUCTURED-DATA (fuzz/corpus/tel_syslog/crash-5424-no-sd.txt): not 5424 */
    tel_parse_syslog("<14>1 - h a p m ", 16, NULL, &arena, &rec);
    assert_int_not_equal(rec.format, TEL_FMT_SYSLOG5424);
    /* nil everything, no MSG */
    j = sys("<14>1 - - - - - -", NULL, &rec, true);
    assert_int_equal(rec.severity, 9);
    assert_int_equal(rec.body_len, 0);
    json_decref(j);
    /* a JSON MSG is parsed; its own level wins */
    j = sys("<14>1 2024-01-01T00:00:00Z h app - - - {\"level\":\"error\",\"msg\":\"m\",\"k\":1}", NULL,
            &rec, true);
    assert_int_equal(rec.severity, 17);
    assert_body(&rec, "m");
    assert_string_equal(attr_s(&rec, "k", NULL), "1");
    assert_string_equal(attr_s(&rec, "syslog.facility", NULL), "user");
    json_decref(j);
}

static void syslog_3164_with_and_without_pri(void **state)
{
    struct tel_record rec;
    json_t *j = sys("<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick", NULL, &rec,
                    true);
    assert_int_equal(rec.format, TEL_FMT_SYSLOG3164);
    assert_int_equal(rec.severity, 18);
    assert_string_equal(rec.res.host, "mymachine");
    assert_string_equal(rec.res.service, "su");
    assert_string_equal(attr_s(&rec, "syslog.procid", NULL), "123");
    assert_body(&rec, "'su root' failed for lonvick");
    const char *ts = jstr(j, "ts", NULL);
    assert_non_null(strstr(ts, "-10-11T22:14:15.000Z"));
    json_decref(j);
    j = sys("Jun  9 06:06:20 combo kernel: Linux version 2.6.5", NULL, &rec, true);
    assert_int_equal(rec.format, TEL_FMT_SYSLOG3164);
    assert_string_equal(rec.res.host, "combo");
    assert_string_equal(rec.res.service, "kernel");
    assert_body(&rec, "Linux version 2.6.5");
    json_decref(j);
    /* a PRI and nothing else recognizable */
    j = sys("<13>hello there", NULL, &rec, true);
    assert_int_equal(rec.severity, 10);
    assert_body(&rec, "hello there");
    json_decref(j);
    /* not syslog: parsed as a line */
    j = sys("{\"msg\":\"x\"}", NULL, &rec, false);
    assert_int_equal(rec.format, TEL_FMT_JSON);
    json_decref(j);
    j = sys("<999>x", NULL, &rec, false);
    assert_int_equal(rec.format, TEL_FMT_PLAIN);
    json_decref(j);
}

static void syslog_real_sample_file(void **state)
{
    /* the repository's copy (tests/data); run from the build dir or the project root */
    const char *path = access("../tests/data/logs/loghub_Linux_2k.log", R_OK) == 0
                           ? "../tests/data/logs/loghub_Linux_2k.log"
                           : "tests/data/logs/loghub_Linux_2k.log";
    FILE *f = fopen(path, "r");
    if (!f) {
        print_message("skipped: %s not present\n", path);
        return;
    }
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        struct tel_record rec;
        if (!tel_parse_syslog(line, len, NULL, &arena, &rec))
            fail_msg("line %d not syslog: %s", n + 1, line);
        if (rec.format != TEL_FMT_SYSLOG3164 || !rec.res.host || strcmp(rec.res.host, "combo") ||
            !rec.res.service || !rec.res.service[0])
            fail_msg("line %d: host/app missing: %s", n + 1, line);
        struct core_buf b;
        core_buf_init(&b, 0);
        assert_int_equal(tel_record_write_json(&rec, &b), 0);
        json_t *j = json_loadb(b.data, b.len, 0, NULL);
        assert_non_null(j);
        json_decref(j);
        core_buf_release(&b);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 2000);
}

/* ---- the figure ---------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void benchmark_parse_and_write(void **state)
{
    /* 200-byte JSON lines, as the pipeline benchmark uses */
    char line[256];
    int len = snprintf(line, sizeof(line),
                       "{\"ts\":\"2024-05-06T07:08:09.123Z\",\"level\":\"info\",\"msg\":\"request "
                       "handled\",\"method\":\"GET\",\"path\":\"/api/v1/orders/12345\",\"status\":200,"
                       "\"duration_ms\":12.5,\"user\":\"u-42\",\"req\":\"b7ad6b7169203331xx0123456789\"}");
    assert_int_equal(len, 200);
    struct tel_origin o = {.service = "orders", .team = "shop", .env = "prod", .version = "1.4.2",
                           .instance = "orders-1"};
    struct core_buf out;
    core_buf_init(&out, 0);
    struct core_arena a;
    core_arena_init(&a, 0);
    const int n = 300000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        struct tel_record rec;
        tel_parse_line(line, (size_t)len, &o, &a, &rec);
        tel_record_write_json(&rec, &out);
        if ((i & 1023) == 1023) { /* a batch */
            core_arena_release(&a);
            core_buf_clear(&out);
        }
    }
    double dt = now_s() - t0;
    print_message("parse+write: %.0f lines/s, %.0f MB/s of input (200-byte JSON lines; "
                  "sanitizer builds are several times slower)\n",
                  n / dt, n * 200.0 / dt / 1e6);
    core_arena_release(&a);
    core_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_maps_every_key_family),
        cmocka_unit_test(json_alternative_key_names),
        cmocka_unit_test(json_time_formats),
        cmocka_unit_test(trace_ids_checked_in_blocks),
        cmocka_unit_test(timestamps_sharing_a_second),
        cmocka_unit_test(number_exponents_in_short_numbers),
        cmocka_unit_test(resource_objects_are_reused_only_when_equal),
        cmocka_unit_test(json_level_notations),
        cmocka_unit_test(json_nested_values_kept_compact),
        cmocka_unit_test(json_escapes_are_decoded_and_reencoded),
        cmocka_unit_test(plain_strings_are_marked_for_the_encoder),
        cmocka_unit_test(invalid_utf8_becomes_replacement_char),
        cmocka_unit_test(nul_bytes_are_kept_in_a_plain_body),
        cmocka_unit_test(one_mib_lines),
        cmocka_unit_test(hostile_nesting_is_bounded),
        cmocka_unit_test(invalid_json_is_plain),
        cmocka_unit_test(our_own_standard_round_trips),
        cmocka_unit_test(origin_seeds_resource_line_overrides),
        cmocka_unit_test(too_many_attributes_fold_into_overflow),
        cmocka_unit_test(small_arena_degrades_without_failing),
        cmocka_unit_test(logfmt_with_quotes),
        cmocka_unit_test(plain_with_level_words),
        cmocka_unit_test(syslog_5424_with_structured_data),
        cmocka_unit_test(syslog_5424_without_structured_data),
        cmocka_unit_test(syslog_3164_with_and_without_pri),
        cmocka_unit_test(syslog_real_sample_file),
        cmocka_unit_test(benchmark_parse_and_write),
    };
    return cmocka_run_group_tests_name("telemetry_parse", tests, setup, teardown);
}
