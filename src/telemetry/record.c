/* Encoding a record as one line of the log standard (docs/logging-standard.md):
 *
 *   {"ts":..,"observed_ts":..,"severity":"INFO","severity_number":9,"body":"..",
 *    "attributes":{..},"resource":{"service.name":..},"trace_id":..,"span_id":..}
 *
 * Key names and order follow the platform's own log (src/core/log.c). The output is always
 * valid JSON: strings are escaped here (invalid UTF-8 becomes \ufffd even if a record was built
 * by hand), except those the parser marked as needing no escape (TEL_PLAIN_*, body_plain);
 * numbers and nested JSON are copied as the parser validated them. The writer
 * reserves the worst case once and then writes with a pointer, so a record costs one capacity
 * check rather than one per piece. */
#include "telemetry/telemetry_parse.h"

#include <string.h>

/* 0: copy; 1: escape as \X; 2: \u00XX; 3: non-ASCII, check UTF-8 */
static const uint8_t eclass[256] = {
    [0 ... 7] = 2,   ['\b'] = 1, ['\t'] = 1, ['\n'] = 1, [11] = 2,     ['\f'] = 1,
    ['\r'] = 1,      [14 ... 31] = 2, ['"'] = 1, ['\\'] = 1, [128 ... 255] = 3,
};

char *tel_json_esc(char *d, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *run = p;
        p = tel_json_plain_run(p, end);
        memcpy(d, run, (size_t)(p - run));
        d += p - run;
        if (p >= end)
            break;
        unsigned char ch = (unsigned char)*p;
        switch (eclass[ch]) {
        case 1:
            *d++ = '\\';
            *d++ = ch == '\b' ? 'b' : ch == '\f' ? 'f' : ch == '\n' ? 'n' : ch == '\r' ? 'r'
                 : ch == '\t' ? 't' : (char)ch;
            p++;
            break;
        case 2:
            memcpy(d, "\\u00", 4);
            d[4] = hex[ch >> 4];
            d[5] = hex[ch & 15];
            d += 6;
            p++;
            break;
        default: {
            unsigned cp;
            size_t l = core_utf8_decode(p, (size_t)(end - p), &cp);
            if (l == 0) {
                memcpy(d, "\\ufffd", 6);
                d += 6;
                p++;
            } else {
                memcpy(d, p, l);
                d += l;
                p += l;
            }
            break;
        }
        }
    }
    return d;
}

size_t tel_json_esc_len(const char *s, size_t n)
{
    size_t o = 0;
    const char *p = s, *end = s + n;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        switch (eclass[ch]) {
        case 0: o++; p++; break;
        case 1: o += 2; p++; break;
        case 2: o += 6; p++; break;
        default: {
            unsigned cp;
            size_t l = core_utf8_decode(p, (size_t)(end - p), &cp);
            o += l ? l : 6;
            p += l ? l : 1;
            break;
        }
        }
    }
    return o;
}

/* "YYYY-MM-DDTHH:MM:SS" of a second since the epoch (years clamped to 0000-9999). */
static void civil_text(char out[19], int64_t secs)
{
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400; /* 0 .. 86399 */
    /* H. Hinnant's civil_from_days */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 0)
        y = 0;
    if (y > 9999)
        y = 9999;
    unsigned hh = (unsigned)(rem / 3600), mi = (unsigned)(rem / 60 % 60), ss = (unsigned)(rem % 60);
    char *o = out;
    *o++ = (char)('0' + y / 1000);
    *o++ = (char)('0' + y / 100 % 10);
    *o++ = (char)('0' + y / 10 % 10);
    *o++ = (char)('0' + y % 10);
    *o++ = '-';
    *o++ = (char)('0' + m / 10);
    *o++ = (char)('0' + m % 10);
    *o++ = '-';
    *o++ = (char)('0' + d / 10);
    *o++ = (char)('0' + d % 10);
    *o++ = 'T';
    *o++ = (char)('0' + hh / 10);
    *o++ = (char)('0' + hh % 10);
    *o++ = ':';
    *o++ = (char)('0' + mi / 10);
    *o++ = (char)('0' + mi % 10);
    *o++ = ':';
    *o++ = (char)('0' + ss / 10);
    *o++ = (char)('0' + ss % 10);
}

/* The text of the last second formatted, per thread and per timestamp kind (event time,
 * observed time): records come in time order, so the calendar arithmetic runs about once a
 * second of log time instead of twice a record. A memo of a pure function, not state. */
struct time_memo {
    int64_t secs;
    bool valid;
    char text[19];
};
static _Thread_local struct time_memo time_memo[2];

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" with quotes, milliseconds truncated toward -infinity. */
static char *put_time(char *p, int64_t ns, int kind)
{
    int64_t ms = ns >= 0 ? ns / 1000000 : -((-ns + 999999) / 1000000);
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    unsigned mss = (unsigned)(ms - secs * 1000);
    struct time_memo *tm = &time_memo[kind];
    if (!tm->valid || tm->secs != secs) {
        civil_text(tm->text, secs);
        tm->secs = secs;
        tm->valid = true;
    }
    char *o = p;
    *o++ = '"';
    memcpy(o, tm->text, 19);
    o += 19;
    *o++ = '.';
    *o++ = (char)('0' + mss / 100);
    *o++ = (char)('0' + mss / 10 % 10);
    *o++ = (char)('0' + mss % 10);
    *o++ = 'Z';
    *o++ = '"';
    return o;
}

#define LIT(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) + sizeof(s) - 1)

static char *put_str(char *p, const char *s, size_t n)
{
    *p++ = '"';
    p = tel_json_esc(p, s, n);
    *p++ = '"';
    return p;
}

/* put_str of a string known to need no escaping (TEL_PLAIN_*): copied as is. */
static char *put_plain(char *p, const char *s, size_t n)
{
    *p++ = '"';
    memcpy(p, s, n);
    p += n;
    *p++ = '"';
    return p;
}

/* Keys: as strings, except that NUL (legal in JSON, refused in keys by many decoders, jansson
 * among them) becomes \ufffd. */
static char *put_key(char *p, const char *s, size_t n)
{
    if (!tel_has_nul(s, n))
        return put_str(p, s, n);
    *p++ = '"';
    for (const char *z; n && (z = memchr(s, 0, n));) {
        p = tel_json_esc(p, s, (size_t)(z - s));
        p = LIT(p, "\\ufffd");
        n -= (size_t)(z - s) + 1;
        s = z + 1;
    }
    p = tel_json_esc(p, s, n);
    *p++ = '"';
    return p;
}

static const char *const sev_names[6] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

struct res_field {
    const char *key; /* with quotes and colon */
    size_t klen;
    const char *val;
    size_t vlen;
};

static size_t res_fields(const struct tel_record *rec, struct res_field f[7])
{
#define RF(k, v) {"\"" k "\":", sizeof(k) + 2, (v), 0}
    const struct res_field all[7] = {
        RF("service.name", rec->res.service),   RF("team", rec->res.team),
        RF("deployment.environment", rec->res.env), RF("service.version", rec->res.version),
        RF("service.instance.id", rec->res.instance), RF("host.name", rec->res.host),
        RF("log.file.path", rec->res.file),
    };
#undef RF
    size_t n = 0;
    for (size_t i = 0; i < 7; i++)
        if (all[i].val && all[i].val[0]) {
            f[n] = all[i];
            f[n++].vlen = strlen(all[i].val);
        }
    return n;
}

/* The resource objects of the last records this thread wrote, kept while small: the records
 * of one source share most resource values and rotate through a few services, so the next
 * record's object is usually one of these. Keys are compared by address (res_fields' literals),
 * values by content; a miss replaces the oldest entry. */
#define MEMO_N 8
#define MEMO_VALS 192
struct res_memo {
    size_t nrf, enclen;
    const char *key[7];
    size_t vlen[7];
    char vals[MEMO_VALS];
    char enc[4 * MEMO_VALS];
};
static _Thread_local struct res_memo res_memo[MEMO_N];
static _Thread_local unsigned res_memo_next;

static bool memo_same(const struct res_memo *m, const struct res_field *rf, size_t nrf)
{
    if (m->nrf != nrf || !m->enclen)
        return false;
    size_t at = 0;
    for (size_t i = 0; i < nrf; i++) {
        if (m->key[i] != rf[i].key || m->vlen[i] != rf[i].vlen ||
            memcmp(m->vals + at, rf[i].val, rf[i].vlen) != 0)
            return false;
        at += rf[i].vlen;
    }
    return true;
}

static char *put_resource(char *p, const struct res_field *rf, size_t nrf)
{
    for (unsigned i = 0; i < MEMO_N; i++) {
        const struct res_memo *m = &res_memo[i];
        if (memo_same(m, rf, nrf)) {
            memcpy(p, m->enc, m->enclen);
            return p + m->enclen;
        }
    }
    char *start = p;
    size_t total = 0;
    for (size_t i = 0; i < nrf; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, rf[i].key, rf[i].klen);
        p += rf[i].klen;
        p = put_str(p, rf[i].val, rf[i].vlen);
        total += rf[i].vlen;
    }
    struct res_memo *m = &res_memo[res_memo_next++ % MEMO_N];
    m->enclen = 0;
    if (total <= MEMO_VALS && (size_t)(p - start) <= sizeof(m->enc)) {
        size_t at = 0;
        for (size_t i = 0; i < nrf; i++) {
            m->key[i] = rf[i].key;
            m->vlen[i] = rf[i].vlen;
            memcpy(m->vals + at, rf[i].val, rf[i].vlen);
            at += rf[i].vlen;
        }
        m->nrf = nrf;
        m->enclen = (size_t)(p - start);
        memcpy(m->enc, start, m->enclen);
    }
    return p;
}

static char *write_rec(const struct tel_record *rec, char *p, const struct res_field *rf,
                       size_t nrf)
{
    int64_t ts = rec->time_ns ? rec->time_ns : rec->observed_ns;
    p = LIT(p, "{\"ts\":");
    p = put_time(p, ts, 0);
    p = LIT(p, ",\"observed_ts\":");
    p = put_time(p, rec->observed_ns, 1);
    if (rec->severity >= 1 && rec->severity <= 24) {
        const char *name = sev_names[(rec->severity - 1) / 4];
        p = LIT(p, ",\"severity\":\"");
        size_t nl = strlen(name);
        memcpy(p, name, nl);
        p += nl;
        p = LIT(p, "\",\"severity_number\":");
        if (rec->severity >= 10)
            *p++ = (char)('0' + rec->severity / 10);
        *p++ = (char)('0' + rec->severity % 10);
    }
    p = LIT(p, ",\"body\":");
    if (rec->body && rec->body_plain)
        p = put_plain(p, rec->body, rec->body_len);
    else
        p = put_str(p, rec->body ? rec->body : "", rec->body ? rec->body_len : 0);
    p = LIT(p, ",\"attributes\":{");
    for (uint32_t i = 0; i < rec->nattrs; i++) {
        const struct tel_kv *kv = &rec->attrs[i];
        if (i)
            *p++ = ',';
        if (kv->plain & TEL_PLAIN_KEY)
            p = put_plain(p, kv->key, kv->klen);
        else
            p = put_key(p, kv->key, kv->klen);
        *p++ = ':';
        switch (kv->type) {
        case TEL_V_STR:
            if (kv->plain & TEL_PLAIN_VAL)
                p = put_plain(p, kv->val, kv->vlen);
            else
                p = put_str(p, kv->val, kv->vlen);
            break;
        case TEL_V_NUM:
        case TEL_V_JSON:
            if (kv->vlen) {
                memcpy(p, kv->val, kv->vlen);
                p += kv->vlen;
            } else {
                p = LIT(p, "null");
            }
            break;
        case TEL_V_BOOL:
            if (kv->vlen == 4 && memcmp(kv->val, "true", 4) == 0)
                p = LIT(p, "true");
            else
                p = LIT(p, "false");
            break;
        default: p = LIT(p, "null"); break;
        }
    }
    p = LIT(p, "},\"resource\":{");
    p = put_resource(p, rf, nrf);
    *p++ = '}';
    if (rec->trace_id[0]) {
        p = LIT(p, ",\"trace_id\":");
        p = put_str(p, rec->trace_id, strnlen(rec->trace_id, sizeof(rec->trace_id)));
    }
    if (rec->span_id[0]) {
        p = LIT(p, ",\"span_id\":");
        p = put_str(p, rec->span_id, strnlen(rec->span_id, sizeof(rec->span_id)));
    }
    *p++ = '}';
    return p;
}

int tel_record_write_json(const struct tel_record *rec, struct core_buf *out)
{
    struct res_field rf[7];
    size_t nrf = res_fields(rec, rf);
    /* Worst case: every string byte escaped as \uXXXX. */
    size_t need = 256 + 6 * (size_t)(rec->body ? rec->body_len : 0) + 6 * 33 + 6 * 17;
    for (uint32_t i = 0; i < rec->nattrs; i++)
        need += 16 + 6 * (size_t)rec->attrs[i].klen + 6 * (size_t)rec->attrs[i].vlen;
    for (size_t i = 0; i < nrf; i++)
        need += 8 + rf[i].klen + 6 * rf[i].vlen;
    int rc = core_buf_reserve(out, need);
    if (rc == 0) {
        char *end = write_rec(rec, out->data + out->len, rf, nrf);
        out->len = (size_t)(end - out->data);
        out->data[out->len] = 0;
        return 0;
    }
    if (rc != CORE_E_TOO_BIG)
        return rc;
    /* The worst case does not fit under out->max but the real line may: encode aside. */
    struct core_buf tmp;
    core_buf_init(&tmp, 0);
    rc = core_buf_reserve(&tmp, need);
    if (rc == 0) {
        char *end = write_rec(rec, tmp.data, rf, nrf);
        rc = core_buf_add(out, tmp.data, (size_t)(end - tmp.data));
    }
    core_buf_release(&tmp);
    return rc;
}
