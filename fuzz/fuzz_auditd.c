/* Fuzzes the auditd event join (src/telemetry/auditd.c) and the failed-login recognizer
 * (src/security/detect.c) over the same input: its lines are fed to a joiner (the first byte
 * picks the flush age, so events are completed by EOE, by age, by the caps and at the end);
 * every completed event must be one line, and a joined event one valid JSON object that the
 * line parser reads as JSON. Every input line and every output line then goes through
 * security_failed_login_parse. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "security/security.h"
#include "store/store.h"
#include "telemetry/telemetry_auditd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* detect.c's token and alert paths are not fuzzed here: stubs keep the store and the alert
 * book out of the link. */
int security_alert_raise(struct security_alerts *a, const struct security_finding *f, int64_t *id,
                         bool *is_new, struct core_err *err)
{
    __builtin_trap();
}

int store_exec(struct store *st, const char *sql, const struct store_value *params,
               size_t nparams, int64_t *changes, struct core_err *err)
{
    __builtin_trap();
}

int store_query_int(struct store *st, const char *sql, const struct store_value *params,
                    size_t nparams, int64_t *out, struct core_err *err)
{
    __builtin_trap();
}

static void check_login(const char *line, size_t len)
{
    struct core_arena arena;
    core_arena_init(&arena, 64u << 20);
    struct tel_record rec;
    tel_parse_line(line, len, NULL, &arena, &rec);
    struct security_login_failure lf;
    if (security_failed_login_parse(&rec, &lf) &&
        (!lf.source[0] || strlen(lf.source) >= sizeof(lf.source) || lf.count < 1))
        __builtin_trap();
    core_arena_release(&arena);
}

/* Whether line is one of the input's lines as it was (passed through unchanged). */
static bool is_input_line(const uint8_t *in, size_t n, const char *line, size_t len)
{
    const char *p = (const char *)in, *end = p + n;
    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if ((size_t)(le - p) == len && memcmp(p, line, len) == 0)
            return true;
        if (!nl)
            break;
        p = nl + 1;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int64_t age = data[0] % 4; /* 0: only EOE, caps and the end complete events */
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    struct tel_auditd *j = tel_auditd_new();
    struct core_buf out;
    core_buf_init(&out, 0);
    int64_t now = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (tel_auditd_feed(j, p, (size_t)(le - p), now++, &out) != 0)
            __builtin_trap();
        if (age && tel_auditd_flush(j, now, age, &out) != 0)
            __builtin_trap();
        check_login(p, (size_t)(le - p));
        p = nl ? nl + 1 : end;
    }
    if (tel_auditd_flush(j, now, 0, &out) != 0 || tel_auditd_pending(j) != 0)
        __builtin_trap();
    if (out.len && out.data[out.len - 1] != '\n')
        __builtin_trap();
    const char *q = out.data, *oend = out.data + out.len;
    while (q < oend) {
        const char *nl = memchr(q, '\n', (size_t)(oend - q));
        size_t len = (size_t)(nl - q);
        /* a joined event (a line passed through unchanged may look like one: skip those) */
        if (len && q[0] == '{' && memmem(q, len, "\"audit.records\":", 16) &&
            !is_input_line(data + 1, size - 1, q, len)) {
            json_t *o = json_loadb(q, len, 0, NULL);
            if (!o || !json_is_object(o))
                __builtin_trap();
            json_decref(o);
            struct core_arena arena;
            core_arena_init(&arena, 64u << 20);
            struct tel_record rec;
            tel_parse_line(q, len, NULL, &arena, &rec);
            if (rec.format != TEL_FMT_JSON)
                __builtin_trap();
            core_arena_release(&arena);
        }
        check_login(q, len);
        q = nl + 1;
    }
    core_buf_release(&out);
    tel_auditd_free(j);
    return 0;
}
