/* Fuzzes the log line parser with redaction and the standard encoding: any input must parse
 * (never fail), redact, and encode to one valid JSON object (checked with jansson). */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "telemetry/telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tel_redactor *r;
    if (!r) {
        static const char *const pats[] = {"sk_[a-z0-9]{4,}", "(a+)+$"};
        struct tel_redact_config cfg = {.emails = true, .cards = true, .bearer = true,
                                        .patterns = pats, .npatterns = 2};
        r = tel_redactor_new(&cfg, NULL);
        if (!r)
            __builtin_trap();
    }
    struct core_arena arena;
    core_arena_init(&arena, 64u << 20);
    struct tel_origin o = {.service = "svc", .team = "t", .env = "e"};
    struct tel_record rec;
    tel_parse_line((const char *)data, size, size & 1 ? &o : NULL, &arena, &rec);
    tel_redact(r, &rec, &arena);
    struct core_buf b;
    core_buf_init(&b, 0);
    if (tel_record_write_json(&rec, &b) != 0)
        __builtin_trap();
    json_error_t e;
    json_t *j = json_loadb(b.data, b.len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    if (!j || !json_is_object(j) || memchr(b.data, '\n', b.len))
        __builtin_trap();
    json_decref(j);
    core_buf_release(&b);
    core_arena_release(&arena);
    return 0;
}
