/* Fuzzes the syslog parser (RFC 5424 and RFC 3164): any input must parse as syslog or fall
 * back to a line, and encode to one valid JSON object (checked with jansson). */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "telemetry/telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct core_arena arena;
    core_arena_init(&arena, 64u << 20);
    struct tel_origin o = {.service = "svc", .host = "h"};
    struct tel_record rec;
    bool is = tel_parse_syslog((const char *)data, size, size & 1 ? &o : NULL, &arena, &rec);
    if (is && rec.format != TEL_FMT_SYSLOG5424 && rec.format != TEL_FMT_SYSLOG3164)
        __builtin_trap();
    struct core_buf b;
    core_buf_init(&b, 0);
    if (tel_record_write_json(&rec, &b) != 0)
        __builtin_trap();
    json_t *j = json_loadb(b.data, b.len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
    if (!j || !json_is_object(j))
        __builtin_trap();
    json_decref(j);
    core_buf_release(&b);
    core_arena_release(&arena);
    return 0;
}
