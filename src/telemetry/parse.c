/* The parse transform: one line of JSON, logfmt or plain text onto the log standard
 * (docs/logging-standard.md).
 *
 * This is the pipeline's hot path, so JSON is read by a hand-written single-pass scanner rather
 * than jansson: strings that need no unescaping point into the line, numbers are kept as
 * written, nested objects and arrays are validated and kept as compact JSON text (copied only
 * when they contain whitespace or invalid UTF-8), and the only allocations are the arena copies
 * of escaped strings and the exact-size attribute array. Anything that is not valid (bad JSON,
 * invalid UTF-8 in a key, nesting beyond TEL_JSON_MAX_DEPTH, NUL bytes) falls back to a plain
 * body: a line is never dropped. */
#include "telemetry/telemetry_parse.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    HAVE_TIME = 1u << 0,
    HAVE_LEVEL = 1u << 1,
    HAVE_SEVNUM = 1u << 2,
    HAVE_BODY = 1u << 3,
    HAVE_TRACE = 1u << 4,
    HAVE_SPAN = 1u << 5,
};

struct tel_over {
    struct tel_over *next;
    struct tel_kv kv;
};

/* ---- small helpers ------------------------------------------------------------------------ */

int64_t tel_now_ns(void)
{
    /* The coarse clock is a vDSO read without a TSC fence: observed times need ms only. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

char *tel_arena_strndup(struct core_arena *a, const char *s, size_t n)
{
    char *d = core_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
int64_t tel_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* The date and time of day of the last timestamp this thread parsed: lines of one source
 * mostly share their second with the one before. */
static _Thread_local struct {
    bool valid;
    char text[19];
    int64_t secs; /* before the zone offset */
} civil_memo;

bool tel_time_rfc3339(const char *s, size_t n, int64_t *ns, size_t *used)
{
    int y, mo, d, h, mi, se;
    if (n < 19 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':')
        return false;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return false;
    int64_t civil;
    if (civil_memo.valid && memcmp(civil_memo.text, s, 19) == 0) {
        civil = civil_memo.secs;
    } else {
        if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
            !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
            return false;
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
            return false;
        civil = tel_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
                se;
        memcpy(civil_memo.text, s, 19);
        civil_memo.secs = civil;
        civil_memo.valid = true;
    }
    size_t i = 19;
    int64_t frac = 0;
    if (i + 1 < n && (s[i] == '.' || s[i] == ',') && is_digit(s[i + 1])) {
        int nd = 0;
        for (i++; i < n && is_digit(s[i]); i++)
            if (nd < 9) {
                frac = frac * 10 + (s[i] - '0');
                nd++;
            }
        for (; nd < 9; nd++)
            frac *= 10;
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 2 < n && (s[i] == '+' || s[i] == '-') && is_digit(s[i + 1]) &&
               is_digit(s[i + 2])) {
        int oh = (s[i + 1] - '0') * 10 + (s[i + 2] - '0'), om = 0;
        size_t j = i + 3;
        if (j + 2 < n && s[j] == ':' && is_digit(s[j + 1]) && is_digit(s[j + 2])) {
            om = (s[j + 1] - '0') * 10 + (s[j + 2] - '0');
            j += 3;
        } else if (j + 1 < n && is_digit(s[j]) && is_digit(s[j + 1])) {
            om = (s[j] - '0') * 10 + (s[j + 1] - '0');
            j += 2;
        }
        if (oh > 23 || om > 59)
            return false;
        off = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
        i = j;
    }
    int64_t secs = civil - off;
    /* int64 nanoseconds reach from 1677 to 2262 */
    if (__builtin_mul_overflow(secs, (int64_t)1000000000, ns) ||
        __builtin_add_overflow(*ns, frac, ns))
        return false;
    *used = i;
    return true;
}

/* Epoch seconds, ms, us or ns (by magnitude) from a JSON number's text. */
static bool time_from_number(const char *s, size_t n, int64_t *ns)
{
    size_t i = 0;
    int64_t ip = 0;
    int nd = 0;
    if (n == 0 || s[0] == '-')
        return false;
    for (; i < n && is_digit(s[i]); i++) {
        nd++;
        if (__builtin_mul_overflow(ip, 10, &ip) || __builtin_add_overflow(ip, s[i] - '0', &ip))
            return false;
    }
    int64_t frac = 0; /* nanoseconds of the fraction, for seconds */
    double fracd = 0, scale = 0.1;
    if (i < n && s[i] == '.') {
        int fd = 0;
        for (i++; i < n && is_digit(s[i]); i++) {
            if (fd < 9) {
                fracd += (s[i] - '0') * scale;
                scale /= 10;
                fd++;
            }
        }
    }
    if (i != n || nd == 0) /* exponents are not epoch times anyone writes */
        return false;
    int64_t unit;
    if (ip < 100000000000LL) { /* seconds (until year 5138, but int64 ns end in 2262) */
        unit = 1000000000;
    } else if (ip < 100000000000000LL) { /* milliseconds */
        unit = 1000000;
    } else if (ip < 100000000000000000LL) { /* microseconds */
        unit = 1000;
    } else {
        unit = 1;
    }
    frac = (int64_t)(fracd * (double)unit + 0.5);
    return !__builtin_mul_overflow(ip, unit, ns) && !__builtin_add_overflow(*ns, frac, ns);
}

static bool parse_time_value(const char *s, size_t n, enum tel_vtype t, int64_t *ns)
{
    if (t == TEL_V_NUM)
        return time_from_number(s, n, ns);
    if (t != TEL_V_STR)
        return false;
    size_t used;
    if (tel_time_rfc3339(s, n, ns, &used) && used == n)
        return true;
    return n && is_digit(s[0]) && time_from_number(s, n, ns);
}

int tel_sev_from_syslog(unsigned sev)
{
    /* OpenTelemetry's appendix mapping of syslog severities. */
    static const int map[8] = {21, 19, 18, 17, 13, 10, 9, 5};
    return map[sev & 7];
}

int tel_sev_from_word(const char *s, size_t n)
{
    char w[16];
    if (n == 0 || n >= sizeof(w))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        w[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
#define W(lit, v)                                                                                  \
    if (n == sizeof(lit) - 1 && memcmp(w, lit, n) == 0)                                            \
        return v;
    switch (w[0]) {
    case 'a': W("alert", 19) break;
    case 'c': W("crit", 18) W("critical", 18) W("crt", 18) break;
    case 'd': W("debug", 5) W("dbg", 5) W("d", 5) W("dpanic", 18) break;
    case 'e':
        W("error", 17) W("err", 17) W("e", 17) W("eror", 17) W("emerg", 21) W("emergency", 21)
        break;
    case 'f': W("fatal", 21) W("ftl", 21) W("f", 21) break;
    case 'i':
        W("info", 9) W("inf", 9) W("i", 9) W("information", 9) W("informational", 9) break;
    case 'n': W("notice", 10) break;
    case 'p': W("panic", 21) break;
    case 's': W("severe", 17) break;
    case 't': W("trace", 1) W("trc", 1) W("t", 1) break;
    case 'v': W("verbose", 1) W("vrb", 1) W("v", 1) break;
    case 'w': W("warn", 13) W("warning", 13) W("wrn", 13) W("w", 13) break;
    default: break;
    }
#undef W
    return 0;
}

/* Numbers under level keys: bunyan/pino 10..60 (multiples of 10), syslog 0-7, else OTel. */
static int sev_from_number(const char *s, size_t n, bool otel)
{
    int v = 0;
    if (n == 0 || n > 3)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (otel)
        return v >= 1 && v <= 24 ? v : 0;
    switch (v) {
    case 10: return TEL_SEV_TRACE;
    case 20: return TEL_SEV_DEBUG;
    case 30: return TEL_SEV_INFO;
    case 40: return TEL_SEV_WARN;
    case 50: return TEL_SEV_ERROR;
    case 60: return TEL_SEV_FATAL;
    default: break;
    }
    if (v <= 7)
        return tel_sev_from_syslog((unsigned)v);
    return v <= 24 ? v : 0;
}

const char *tel_utf8_clean(struct core_arena *a, const char *s, size_t n, uint32_t *outn)
{
    size_t i = 0, bad = 0, first_bad = n;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        unsigned cp;
        size_t l = core_utf8_decode(s + i, n - i, &cp);
        if (l == 0) {
            if (!bad)
                first_bad = i;
            bad++;
            i++;
        } else {
            i += l;
        }
    }
    if (!bad) {
        *outn = (uint32_t)n;
        return s;
    }
    char *d = core_arena_alloc(a, n + 2 * bad + 1);
    if (!d) {
        *outn = (uint32_t)first_bad;
        return s;
    }
    memcpy(d, s, first_bad);
    size_t o = first_bad;
    for (i = first_bad; i < n;) {
        unsigned cp;
        size_t l = (unsigned char)s[i] < 0x80 ? 1 : core_utf8_decode(s + i, n - i, &cp);
        if (l == 0) {
            memcpy(d + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(d + o, s + i, l);
            o += l;
            i += l;
        }
    }
    d[o] = 0;
    *outn = (uint32_t)o;
    return d;
}

/* ---- the record under construction --------------------------------------------------------- */

static const char empty[1];

void tel_pctx_init(struct tel_pctx *c, const struct tel_origin *origin, struct core_arena *arena,
                   struct tel_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    if (origin)
        rec->res = *origin;
    rec->observed_ns = tel_now_ns();
    rec->body = empty;
    c->arena = arena;
    c->rec = rec;
    c->nkv = 0;
    c->nover = 0;
    c->over_head = c->over_tail = NULL;
    c->have = 0;
}

/* A key holding NUL (legal JSON, refused in keys by many decoders) with U+FFFD instead, in
 * the arena; NULL without memory. */
static __attribute__((noinline, cold)) const char *key_without_nul(struct tel_pctx *c,
                                                                   const char *k, uint32_t *klp)
{
    uint32_t kl = *klp;
    size_t nul = 0;
    for (uint32_t i = 0; i < kl; i++)
        nul += k[i] == 0;
    char *d = core_arena_alloc(c->arena, kl + 2 * nul + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    for (uint32_t i = 0; i < kl; i++) {
        if (k[i] == 0) {
            memcpy(d + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            d[o++] = k[i];
        }
    }
    *klp = (uint32_t)o;
    return d;
}

/* The slot of an attribute past TEL_MAX_ATTRS - 1 (folded into one later); NULL without
 * memory. */
static __attribute__((noinline, cold)) struct tel_kv *over_slot(struct tel_pctx *c)
{
    struct tel_over *o = core_arena_alloc(c->arena, sizeof(*o));
    if (!o)
        return NULL;
    if (c->over_tail)
        c->over_tail->next = o;
    else
        c->over_head = o;
    c->over_tail = o;
    c->nover++;
    return &o->kv;
}

/* tel_pctx_add with the TEL_PLAIN_* bits of k and v. */
static inline void pctx_add(struct tel_pctx *c, const char *k, uint32_t kl, const char *v,
                            uint32_t vl, enum tel_vtype t, uint8_t plain)
{
    struct tel_kv *kv;
    /* a plain key came out of the JSON scanner, which refuses raw control bytes */
    if (!(plain & TEL_PLAIN_KEY) && __builtin_expect(tel_has_nul(k, kl), 0)) {
        plain &= (uint8_t)~TEL_PLAIN_KEY;
        if (!(k = key_without_nul(c, k, &kl)))
            return;
    }
    if (__builtin_expect(c->nkv < TEL_MAX_ATTRS - 1, 1))
        kv = &c->kv[c->nkv++];
    else if (!(kv = over_slot(c)))
        return;
    kv->key = k;
    kv->klen = kl;
    kv->val = v;
    kv->vlen = vl;
    kv->type = t;
    kv->plain = plain;
}

void tel_pctx_add(struct tel_pctx *c, const char *k, uint32_t kl, const char *v, uint32_t vl,
                  enum tel_vtype t)
{
    pctx_add(c, k, kl, v, vl, t, 0);
}

static void fold_overflow(struct tel_pctx *c, struct tel_kv *dst)
{
    size_t n = 2;
    for (struct tel_over *o = c->over_head; o; o = o->next) {
        n += 4 + tel_json_esc_len(o->kv.key, o->kv.klen);
        n += o->kv.type == TEL_V_STR ? 2 + tel_json_esc_len(o->kv.val, o->kv.vlen) : o->kv.vlen;
    }
    char *buf = core_arena_alloc(c->arena, n + 1);
    if (!buf) {
        dst->type = TEL_V_NULL;
        dst->val = "null";
        dst->vlen = 4;
        return;
    }
    char *p = buf;
    *p++ = '{';
    for (struct tel_over *o = c->over_head; o; o = o->next) {
        if (o != c->over_head)
            *p++ = ',';
        *p++ = '"';
        p = tel_json_esc(p, o->kv.key, o->kv.klen);
        *p++ = '"';
        *p++ = ':';
        if (o->kv.type == TEL_V_STR) {
            *p++ = '"';
            p = tel_json_esc(p, o->kv.val, o->kv.vlen);
            *p++ = '"';
        } else {
            memcpy(p, o->kv.val, o->kv.vlen);
            p += o->kv.vlen;
        }
    }
    *p++ = '}';
    dst->type = TEL_V_JSON;
    dst->val = buf;
    dst->vlen = (uint32_t)(p - buf);
}

void tel_pctx_finish(struct tel_pctx *c)
{
    struct tel_record *rec = c->rec;
    uint32_t n = c->nkv + (c->nover ? 1 : 0);
    if (n == 0)
        return;
    struct tel_kv *a = core_arena_alloc(c->arena, n * sizeof(*a));
    if (!a)
        return;
    memcpy(a, c->kv, c->nkv * sizeof(*a));
    if (c->nover) {
        struct tel_kv *ov = &a[c->nkv];
        ov->key = "attributes.overflow";
        ov->klen = sizeof("attributes.overflow") - 1;
        ov->plain = 0;
        fold_overflow(c, ov);
    }
    rec->attrs = a;
    rec->nattrs = n;
}

/* ---- mapping well-known keys --------------------------------------------------------------- */

enum fkey {
    K_NONE = 0,
    K_TIME,
    K_LEVEL,
    K_SEVNUM,
    K_BODY,
    K_TRACE,
    K_SPAN,
    K_TRACEPARENT,
    K_SERVICE,
    K_TEAM,
    K_ENV,
    K_VERSION,
    K_INSTANCE,
    K_HOST,
    K_ATTRS,
    K_RESOURCE,
    K_OBSERVED,
};

static enum fkey classify(const char *k, size_t n)
{
#define K(lit, v)                                                                                  \
    if (n == sizeof(lit) - 1 && memcmp(k, lit, n) == 0)                                            \
        return v;
    if (n == 0 || n > 22)
        return K_NONE;
    switch (k[0]) {
    case '@': K("@timestamp", K_TIME) break;
    case 'a': K("app", K_SERVICE) K("attributes", K_ATTRS) break;
    case 'b': K("body", K_BODY) break;
    case 'd': K("deployment.environment", K_ENV) break;
    case 'e': K("env", K_ENV) K("environment", K_ENV) break;
    case 'h': K("host", K_HOST) K("hostname", K_HOST) K("host.name", K_HOST) break;
    case 'i': K("instance", K_INSTANCE) break;
    case 'l':
        K("level", K_LEVEL) K("lvl", K_LEVEL) K("loglevel", K_LEVEL) K("log.level", K_LEVEL)
        K("log", K_BODY) break;
    case 'm': K("msg", K_BODY) K("message", K_BODY) break;
    case 'o': K("observed_ts", K_OBSERVED) break;
    case 'r': K("resource", K_RESOURCE) break;
    case 's':
        K("severity", K_LEVEL) K("severity_text", K_LEVEL) K("severity_number", K_SEVNUM)
        K("service", K_SERVICE) K("service.name", K_SERVICE) K("service.version", K_VERSION)
        K("service.instance.id", K_INSTANCE) K("span_id", K_SPAN) K("spanId", K_SPAN)
        K("span.id", K_SPAN) K("spanid", K_SPAN) break;
    case 't':
        K("time", K_TIME) K("ts", K_TIME) K("timestamp", K_TIME) K("t", K_TIME)
        K("team", K_TEAM) K("trace_id", K_TRACE) K("traceId", K_TRACE) K("trace.id", K_TRACE)
        K("traceid", K_TRACE) K("traceparent", K_TRACEPARENT) break;
    case 'v': K("version", K_VERSION) break;
    default: break;
    }
#undef K
    return K_NONE;
}

/* Hex digit values, -1 for anything else; and the lowercase digit of each value. Tables
 * rather than range tests: trace ids are random hex, so branches on the digit class miss. */
/* Hex digit values plus one (0: not hex). A table rather than range tests: trace ids are
 * random hex, so branches on the digit class mispredict. */
static const uint8_t hexv1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,
    ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14,
    ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15,
    ['F'] = 16,
};

static inline int hexval(char ch)
{
    return (int)hexv1[(uint8_t)ch] - 1;
}

#ifdef __SSE2__
/* 16 hex digits at s, lowercased, to out; false when any is not hex. *zero stays true while
 * every digit so far is '0'. */
static inline bool hex16(const char *s, char *out, bool *zero)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i low = _mm_or_si128(x, _mm_set1_epi8(0x20)); /* bytes from 0x80 stay negative */
    __m128i dig = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)),
                                _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
    __m128i let = _mm_and_si128(_mm_cmpgt_epi8(low, _mm_set1_epi8('a' - 1)),
                                _mm_cmplt_epi8(low, _mm_set1_epi8('f' + 1)));
    if (_mm_movemask_epi8(_mm_or_si128(dig, let)) != 0xFFFF)
        return false;
    __m128i o = _mm_or_si128(x, _mm_and_si128(let, _mm_set1_epi8(0x20)));
    _mm_storeu_si128((__m128i *)(void *)out, o);
    *zero = *zero && _mm_movemask_epi8(_mm_cmpeq_epi8(o, _mm_set1_epi8('0'))) == 0xFFFF;
    return true;
}
#endif

/* Copies want hex digits, lowercased, left-padded with zeros from n (n <= want). An id of
 * all zeros is invalid (as OpenTelemetry says). */
static bool hex_id(const char *s, size_t n, char *out, size_t want)
{
    if (n != want && !(want == 32 && n == 16))
        return false;
    char tmp[32];
#ifdef __SSE2__
    bool zero = true;
    for (size_t i = 0; i < n; i += 16)
        if (!hex16(s + i, tmp + i, &zero))
            return false;
    if (zero)
        return false;
#else
    static const char digit[16] = "0123456789abcdef";
    int bad = 0, any = 0;
    for (size_t i = 0; i < n; i++) {
        int v = hexval(s[i]);
        bad |= v; /* negative when any digit is not hex */
        any |= v;
        tmp[i] = digit[v & 15];
    }
    if (bad < 0 || any == 0)
        return false;
#endif
    size_t pad = want - n;
    memset(out, '0', pad);
    memcpy(out + pad, tmp, n);
    out[want] = 0;
    return true;
}

static bool set_res(struct tel_pctx *c, const char **field, const char *v, size_t n,
                    enum tel_vtype t)
{
    if ((t != TEL_V_STR && t != TEL_V_NUM) || n == 0 || memchr(v, 0, n))
        return false;
    char *d = tel_arena_strndup(c->arena, v, n);
    if (!d)
        return false;
    *field = d;
    return true;
}

/* Maps one well-known key. returns: false when the value does not fit (it stays an attribute). */
static bool map_field(struct tel_pctx *c, enum fkey k, const char *v, uint32_t n, enum tel_vtype t,
                      uint8_t plain)
{
    struct tel_record *rec = c->rec;
    int64_t ns;
    int sev;
    switch (k) {
    case K_TIME:
        if ((c->have & HAVE_TIME) || !parse_time_value(v, n, t, &ns))
            return false;
        rec->time_ns = ns;
        c->have |= HAVE_TIME;
        return true;
    case K_OBSERVED:
        /* Our own earlier observation of a re-ingested line: the pipeline sets its own. */
        return parse_time_value(v, n, t, &ns);
    case K_LEVEL:
        if (c->have & HAVE_LEVEL)
            return false;
        if (t == TEL_V_STR) {
            sev = tel_sev_from_word(v, n);
            if (!sev && n && is_digit(v[0]))
                sev = sev_from_number(v, n, false);
        } else if (t == TEL_V_NUM) {
            sev = sev_from_number(v, n, false);
        } else {
            return false;
        }
        if (!sev)
            return false;
        if (!(c->have & HAVE_SEVNUM))
            rec->severity = sev;
        rec->severity_text = v;
        rec->severity_text_len = n;
        c->have |= HAVE_LEVEL;
        return true;
    case K_SEVNUM:
        if ((c->have & HAVE_SEVNUM) || t != TEL_V_NUM || !(sev = sev_from_number(v, n, true)))
            return false;
        rec->severity = sev;
        c->have |= HAVE_SEVNUM;
        return true;
    case K_BODY:
        if ((c->have & HAVE_BODY) || (t != TEL_V_STR && t != TEL_V_NUM && t != TEL_V_BOOL))
            return false;
        /* Docker's json-file driver keeps the line's own newline in "log". */
        while (n && (v[n - 1] == '\n' || v[n - 1] == '\r'))
            n--;
        rec->body = v;
        rec->body_len = n;
        rec->body_plain = (plain & TEL_PLAIN_VAL) != 0;
        c->have |= HAVE_BODY;
        return true;
    case K_TRACE:
        if ((c->have & HAVE_TRACE) || t != TEL_V_STR || !hex_id(v, n, rec->trace_id, 32))
            return false;
        c->have |= HAVE_TRACE;
        return true;
    case K_SPAN:
        if ((c->have & HAVE_SPAN) || t != TEL_V_STR || !hex_id(v, n, rec->span_id, 16))
            return false;
        c->have |= HAVE_SPAN;
        return true;
    case K_TRACEPARENT: /* W3C: 00-<32 hex>-<16 hex>-<2 hex> */
        if (t != TEL_V_STR || n != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' ||
            (c->have & (HAVE_TRACE | HAVE_SPAN)))
            return false;
        if (!hex_id(v + 3, 32, rec->trace_id, 32))
            return false;
        if (!hex_id(v + 36, 16, rec->span_id, 16)) {
            rec->trace_id[0] = 0;
            return false;
        }
        c->have |= HAVE_TRACE | HAVE_SPAN;
        return true;
    case K_SERVICE: return set_res(c, &rec->res.service, v, n, t);
    case K_TEAM: return set_res(c, &rec->res.team, v, n, t);
    case K_ENV: return set_res(c, &rec->res.env, v, n, t);
    case K_VERSION: return set_res(c, &rec->res.version, v, n, t);
    case K_INSTANCE: return set_res(c, &rec->res.instance, v, n, t);
    case K_HOST: return set_res(c, &rec->res.host, v, n, t);
    default: return false;
    }
}

enum pmode { PM_TOP = 0, PM_ATTRS, PM_RESOURCE };

/* plain: TEL_PLAIN_* bits of k and v (see struct tel_kv). */
static inline __attribute__((always_inline)) void apply(struct tel_pctx *c, enum pmode mode,
                                                        const char *k, uint32_t kl, const char *v,
                                                        uint32_t vl, enum tel_vtype t,
                                                        uint8_t plain)
{
    if (mode != PM_ATTRS) {
        enum fkey f = classify(k, kl);
        if (mode == PM_RESOURCE && (f < K_SERVICE || f > K_HOST))
            f = K_NONE;
        if (f != K_NONE && map_field(c, f, v, vl, t, plain))
            return;
    }
    pctx_add(c, k, kl, v, vl, t, plain);
}

/* ---- the JSON scanner ----------------------------------------------------------------------- */

/* 0: copy as is; 1: '"'; 2: '\\'; 3: control; 4: non-ASCII */
static const uint8_t sclass[256] = {
    [0 ... 31] = 3, ['"'] = 1, ['\\'] = 2, [128 ... 255] = 4,
};

struct sinfo {
    const char *raw; /* between the quotes */
    uint32_t rawlen;
    uint32_t outlen;   /* length once unescaped, invalid bytes replaced */
    bool plain;        /* no escapes, valid UTF-8: raw is the value */
    bool bad;          /* invalid UTF-8 or a lone surrogate escape (nested values rewrite it) */
};

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

static size_t utf8_len(unsigned cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static char *utf8_put(char *d, unsigned cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xC0 | cp >> 6);
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xE0 | cp >> 12);
        *d++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (char)(0xF0 | cp >> 18);
        *d++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *d++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* A \u escape at p (p[0] == '\\', p[1] == 'u'): its code point (U+FFFD for a lone surrogate)
 * and input length (6 or 12); 0 when malformed. */
static size_t uescape(const char *p, const char *end, unsigned *cp, bool *lone)
{
    if (end - p < 6)
        return 0;
    int v = hex4(p + 2);
    if (v < 0)
        return 0;
    *lone = false;
    if (v >= 0xD800 && v <= 0xDBFF) {
        if (end - p >= 12 && p[6] == '\\' && p[7] == 'u') {
            int lo = hex4(p + 8);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                *cp = 0x10000 + (((unsigned)v - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
                return 12;
            }
        }
        *cp = 0xFFFD;
        *lone = true;
        return 6;
    }
    if (v >= 0xDC00 && v <= 0xDFFF) {
        *cp = 0xFFFD;
        *lone = true;
        return 6;
    }
    *cp = (unsigned)v;
    return 6;
}

/* p just after the opening quote; on success *pp is after the closing quote. */
static bool scan_str(const char **pp, const char *end, struct sinfo *si)
{
    const char *p = *pp, *start = p;
    int64_t delta = 0;
    bool plain = true, bad = false;
    for (;;) {
        p = tel_json_plain_run(p, end);
        if (p >= end)
            return false;
        switch (sclass[(uint8_t)*p]) {
        case 1: goto done;
        case 3: return false;
        case 2: {
            if (end - p < 2)
                return false;
            plain = false;
            char e = p[1];
            if (e == 'u') {
                unsigned cp;
                bool lone;
                size_t l = uescape(p, end, &cp, &lone);
                if (!l)
                    return false;
                bad |= lone || cp == 0; /* nested values rewrite both (see compact) */
                delta += (int64_t)utf8_len(cp) - (int64_t)l;
                p += l;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                delta -= 1;
                p += 2;
            } else {
                return false;
            }
            break;
        }
        default: {
            unsigned cp;
            size_t l = core_utf8_decode(p, (size_t)(end - p), &cp);
            if (l == 0) {
                plain = false;
                bad = true;
                delta += 2;
                p++;
            } else {
                p += l;
            }
            break;
        }
        }
    }
done:
    si->raw = start;
    si->rawlen = (uint32_t)(p - start);
    si->outlen = (uint32_t)((int64_t)si->rawlen + delta);
    si->plain = plain;
    si->bad = bad;
    *pp = p + 1;
    return true;
}

/* scan_str for the common string (no escape, control or non-ASCII byte before its closing
 * quote), inlined at the call sites; anything else takes scan_str from the start. */
static inline __attribute__((always_inline)) bool scan_str_fast(const char **pp, const char *end,
                                                                struct sinfo *si)
{
    const char *start = *pp, *p = tel_json_plain_run(start, end);
    if (p < end && *p == '"') {
        si->raw = start;
        si->rawlen = (uint32_t)(p - start);
        si->outlen = si->rawlen;
        si->plain = true;
        si->bad = false;
        *pp = p + 1;
        return true;
    }
    return scan_str(pp, end, si);
}

/* The value of a scanned string: raw when plain, else decoded into the arena. */
static const char *str_value(struct tel_pctx *c, const struct sinfo *si, uint32_t *n)
{
    if (si->plain) {
        *n = si->rawlen;
        return si->raw;
    }
    char *d = core_arena_alloc(c->arena, (size_t)si->outlen + 1);
    if (!d)
        return NULL;
    const char *p = si->raw, *end = si->raw + si->rawlen;
    char *o = d;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\\') {
            char e = p[1];
            if (e == 'u') {
                unsigned cp;
                bool lone;
                size_t l = uescape(p, end, &cp, &lone);
                o = utf8_put(o, cp);
                p += l;
                continue;
            }
            *o++ = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r'
                 : e == 't' ? '\t' : e;
            p += 2;
        } else if (ch < 0x80) {
            *o++ = (char)ch;
            p++;
        } else {
            unsigned cp;
            size_t l = core_utf8_decode(p, (size_t)(end - p), &cp);
            if (l == 0) {
                memcpy(o, "\xEF\xBF\xBD", 3);
                o += 3;
                p++;
            } else {
                memcpy(o, p, l);
                o += l;
                p += l;
            }
        }
    }
    *o = 0;
    *n = (uint32_t)(o - d);
    return d;
}

static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ' &&
           (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static bool scan_num(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p < end && *p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return false;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return false;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return false;
        while (p < end && is_digit(*p))
            p++;
    }
    *pp = p;
    return true;
}

/* Whether a valid JSON number is within double range (|x| in 1e-300..1e300 or 0): numbers
 * beyond it are kept as strings, since most decoders (jansson, JavaScript) reject or mangle
 * them. Only long numbers and exponents need a look. */
static bool num_in_range(const char *s, size_t n)
{
    if (n <= 15) { /* 15 digits at most: in range unless there is an exponent */
        bool exp = false;
        for (size_t i = 0; i < n; i++)
            exp |= (s[i] | 0x20) == 'e';
        if (!exp)
            return true;
    }
    size_t i = s[0] == '-';
    long mag = 0;
    bool nonzero = false;
    for (; i < n && is_digit(s[i]); i++) {
        nonzero |= s[i] != '0';
        if (nonzero)
            mag++;
    }
    if (i < n && s[i] == '.')
        for (i++; i < n && is_digit(s[i]); i++) {
            if (!nonzero)
                mag--;
            nonzero |= s[i] != '0';
        }
    if (!nonzero)
        return true;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool neg = i < n && s[i] == '-';
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        long e = 0;
        for (; i < n && is_digit(s[i]); i++)
            if (e < 100000)
                e = e * 10 + (s[i] - '0');
        mag += neg ? -e : e;
    }
    return mag > -300 && mag < 300;
}

static bool scan_lit(const char **pp, const char *end, enum tel_vtype *t)
{
    const char *p = *pp;
    size_t left = (size_t)(end - p);
    if (left >= 4 && memcmp(p, "true", 4) == 0) {
        *t = TEL_V_BOOL;
        *pp = p + 4;
    } else if (left >= 5 && memcmp(p, "false", 5) == 0) {
        *t = TEL_V_BOOL;
        *pp = p + 5;
    } else if (left >= 4 && memcmp(p, "null", 4) == 0) {
        *t = TEL_V_NULL;
        *pp = p + 4;
    } else {
        return false;
    }
    return true;
}

/* Validates a nested value; *dirty: it holds whitespace or text that compact() rewrites. */
static bool skip_value(const char **pp, const char *end, int depth, bool *dirty)
{
    const char *p = *pp;
    if (depth > TEL_JSON_MAX_DEPTH || p >= end)
        return false;
    enum tel_vtype t;
    struct sinfo si;
    switch (*p) {
    case '"':
        p++;
        if (!scan_str(&p, end, &si))
            return false;
        *dirty |= si.bad;
        break;
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        bool obj = *p == '{';
        p++;
        const char *q = skip_ws(p, end);
        *dirty |= q != p;
        p = q;
        if (p < end && *p == close) {
            p++;
            break;
        }
        for (;;) {
            if (obj) {
                if (p >= end || *p != '"')
                    return false;
                p++;
                if (!scan_str(&p, end, &si))
                    return false;
                *dirty |= si.bad;
                q = skip_ws(p, end);
                *dirty |= q != p;
                p = q;
                if (p >= end || *p != ':')
                    return false;
                p++;
                q = skip_ws(p, end);
                *dirty |= q != p;
                p = q;
            }
            if (!skip_value(&p, end, depth + 1, dirty))
                return false;
            q = skip_ws(p, end);
            *dirty |= q != p;
            p = q;
            if (p < end && *p == ',') {
                p++;
                q = skip_ws(p, end);
                *dirty |= q != p;
                p = q;
                continue;
            }
            if (p < end && *p == close) {
                p++;
                break;
            }
            return false;
        }
        break;
    }
    default:
        if (*p == '-' || is_digit(*p)) {
            const char *ns = p;
            if (!scan_num(&p, end))
                return false;
            *dirty |= !num_in_range(ns, (size_t)(p - ns));
        } else if (!scan_lit(&p, end, &t)) {
            return false;
        }
        break;
    }
    *pp = p;
    return true;
}

/* Compact copy of validated JSON text: whitespace outside strings dropped, invalid UTF-8 as
 * U+FFFD, lone surrogate and \u0000 escapes as \ufffd. dst NULL: only measures. */
static size_t compact(const char *s, size_t n, char *dst)
{
    size_t o = 0;
    const char *p = s, *end = s + n;
    bool in_str = false;
#define PUT(src, len)                                                                              \
    do {                                                                                           \
        if (dst)                                                                                   \
            memcpy(dst + o, (src), (len));                                                         \
        o += (len);                                                                                \
    } while (0)
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (!in_str) {
            if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
                p++;
                continue;
            }
            if (ch == '-' || is_digit((char)ch)) {
                /* a number beyond double range becomes a string, as at the top level */
                const char *ns = p;
                scan_num(&p, end);
                bool q = !num_in_range(ns, (size_t)(p - ns));
                if (q)
                    PUT("\"", 1);
                PUT(ns, (size_t)(p - ns));
                if (q)
                    PUT("\"", 1);
                continue;
            }
            in_str = ch == '"';
            PUT(p, 1);
            p++;
            continue;
        }
        if (ch == '"') {
            in_str = false;
            PUT(p, 1);
            p++;
        } else if (ch == '\\') {
            if (p[1] == 'u') {
                unsigned cp;
                bool lone;
                size_t l = uescape(p, end, &cp, &lone);
                if (lone || cp == 0) /* \u0000: refused in keys by many decoders */
                    PUT("\\ufffd", 6);
                else
                    PUT(p, l);
                p += l;
            } else {
                PUT(p, 2);
                p += 2;
            }
        } else if (ch < 0x80) {
            PUT(p, 1);
            p++;
        } else {
            unsigned cp;
            size_t l = core_utf8_decode(p, (size_t)(end - p), &cp);
            if (l == 0) {
                PUT("\xEF\xBF\xBD", 3);
                p++;
            } else {
                PUT(p, l);
                p += l;
            }
        }
    }
#undef PUT
    return o;
}

static bool parse_members(struct tel_pctx *c, const char **pp, const char *end, int depth,
                          enum pmode mode)
{
    const char *p = skip_ws(*pp, end);
    if (p < end && *p == '}') {
        *pp = p + 1;
        return true;
    }
    for (;;) {
        struct sinfo ks, vs;
        if (p >= end || *p != '"')
            return false;
        p++;
        if (!scan_str_fast(&p, end, &ks))
            return false;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return false;
        p = skip_ws(p + 1, end);
        if (p >= end)
            return false;
        uint32_t kl, vl = 0;
        const char *k = str_value(c, &ks, &kl);
        const char *v = NULL;
        enum tel_vtype t;
        if (!k)
            return false;
        /* what the encoder may copy as is: a string without escapes or invalid UTF-8 (control
         * bytes fail the scan), a number or a literal */
        uint8_t plain = (uint8_t)((ks.plain ? TEL_PLAIN_KEY : 0) | TEL_PLAIN_VAL);
        char ch = *p;
        if (ch == '"') {
            p++;
            if (!scan_str_fast(&p, end, &vs))
                return false;
            v = str_value(c, &vs, &vl);
            if (!v)
                return false;
            t = TEL_V_STR;
            if (!vs.plain)
                plain &= (uint8_t)~TEL_PLAIN_VAL;
        } else if (ch == '{' || ch == '[') {
            if (ch == '{' && mode == PM_TOP) {
                enum fkey f = classify(k, kl);
                if (f == K_ATTRS || f == K_RESOURCE) {
                    const char *q = p + 1;
                    if (depth + 1 > TEL_JSON_MAX_DEPTH)
                        return false;
                    if (!parse_members(c, &q, end, depth + 1, f == K_ATTRS ? PM_ATTRS : PM_RESOURCE))
                        return false;
                    p = q;
                    goto next;
                }
            }
            const char *start = p;
            bool dirty = false;
            if (!skip_value(&p, end, depth + 1, &dirty))
                return false;
            size_t rl = (size_t)(p - start);
            if (dirty) {
                size_t cl = compact(start, rl, NULL);
                char *d = core_arena_alloc(c->arena, cl + 1);
                if (!d)
                    return false;
                compact(start, rl, d);
                v = d;
                vl = (uint32_t)cl;
            } else {
                v = start;
                vl = (uint32_t)rl;
            }
            t = TEL_V_JSON;
        } else if (ch == '-' || is_digit(ch)) {
            const char *start = p;
            if (!scan_num(&p, end))
                return false;
            v = start;
            vl = (uint32_t)(p - start);
            t = num_in_range(v, vl) ? TEL_V_NUM : TEL_V_STR;
        } else {
            const char *start = p;
            if (!scan_lit(&p, end, &t))
                return false;
            v = start;
            vl = (uint32_t)(p - start);
        }
        apply(c, mode, k, kl, v, vl, t, plain);
    next:
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            *pp = p + 1;
            return true;
        }
        return false;
    }
}

struct pctx_save {
    struct tel_record rec;
    uint32_t nkv, nover;
    struct tel_over *over_head, *over_tail;
    unsigned have;
};

static void save(const struct tel_pctx *c, struct pctx_save *s)
{
    s->rec = *c->rec;
    s->nkv = c->nkv;
    s->nover = c->nover;
    s->over_head = c->over_head;
    s->over_tail = c->over_tail;
    s->have = c->have;
}

static void restore(struct tel_pctx *c, const struct pctx_save *s)
{
    *c->rec = s->rec;
    c->nkv = s->nkv;
    c->nover = s->nover;
    c->over_head = s->over_head;
    c->over_tail = s->over_tail;
    if (c->over_tail)
        c->over_tail->next = NULL;
    c->have = s->have;
}

bool tel_pctx_json(struct tel_pctx *c, const char *s, size_t n)
{
    const char *p = s, *end = s + n;
    struct pctx_save sv;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return false;
    if (n > UINT32_MAX)
        return false;
    save(c, &sv);
    p++;
    if (!parse_members(c, &p, end, 1, PM_TOP) || skip_ws(p, end) != end) {
        restore(c, &sv);
        return false;
    }
    return true;
}

/* ---- logfmt ------------------------------------------------------------------------------- */

static bool is_json_number(const char *s, size_t n)
{
    const char *p = s;
    return n && scan_num(&p, s + n) && p == s + n;
}

static bool logfmt_key_char(unsigned char ch)
{
    return ch > ' ' && ch != '=' && ch != '"' && ch != 0x7f;
}

bool tel_pctx_logfmt(struct tel_pctx *c, const char *s, size_t n)
{
    const char *p = s, *end = s + n;
    /* Cheap rejection first: the first token must be key=... */
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *q = p;
    while (q < end && logfmt_key_char((unsigned char)*q))
        q++;
    if (q == p || q >= end || *q != '=' || n > UINT32_MAX)
        return false;
    struct pctx_save sv;
    save(c, &sv);
    while (p < end) {
        const char *k = p;
        while (p < end && logfmt_key_char((unsigned char)*p))
            p++;
        if (p == k || p >= end || *p != '=')
            goto fail;
        uint32_t kl;
        const char *key = tel_utf8_clean(c->arena, k, (size_t)(p - k), &kl);
        p++;
        const char *v;
        uint32_t vl;
        enum tel_vtype t = TEL_V_STR;
        if (p < end && *p == '"') {
            const char *vs = ++p;
            bool esc = false;
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    esc = true;
                    if (++p >= end)
                        goto fail;
                }
                p++;
            }
            if (p >= end)
                goto fail;
            size_t rl = (size_t)(p - vs);
            p++;
            if (p < end && *p != ' ' && *p != '\t')
                goto fail;
            if (esc) {
                char *d = core_arena_alloc(c->arena, rl + 1);
                if (!d)
                    goto fail;
                size_t o = 0;
                for (size_t i = 0; i < rl; i++) {
                    char ch = vs[i];
                    if (ch == '\\' && i + 1 < rl) {
                        char e = vs[++i];
                        ch = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
                    }
                    d[o++] = ch;
                }
                v = tel_utf8_clean(c->arena, d, o, &vl);
            } else {
                v = tel_utf8_clean(c->arena, vs, rl, &vl);
            }
        } else {
            const char *vs = p;
            while (p < end && *p != ' ' && *p != '\t')
                p++;
            size_t rl = (size_t)(p - vs);
            if (is_json_number(vs, rl) && num_in_range(vs, rl)) {
                t = TEL_V_NUM;
                v = vs;
                vl = (uint32_t)rl;
            } else if ((rl == 4 && memcmp(vs, "true", 4) == 0) ||
                       (rl == 5 && memcmp(vs, "false", 5) == 0)) {
                t = TEL_V_BOOL;
                v = vs;
                vl = (uint32_t)rl;
            } else {
                v = tel_utf8_clean(c->arena, vs, rl, &vl);
            }
        }
        apply(c, PM_TOP, key, kl, v, vl, t, 0);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
    }
    return true;
fail:
    restore(c, &sv);
    return false;
}

/* ---- plain text ---------------------------------------------------------------------------- */

static bool word_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

void tel_pctx_plain(struct tel_pctx *c, const char *s, size_t n, bool detect)
{
    struct tel_record *rec = c->rec;
    size_t i = 0;
    while (detect) {
        /* "<3>": a syslog severity prefix, as systemd and the kernel write it. */
        if (n >= 3 && s[0] == '<' && is_digit(s[1])) {
            size_t j = 1;
            unsigned pri = 0;
            while (j < n && j < 4 && is_digit(s[j]))
                pri = pri * 10 + (unsigned)(s[j++] - '0');
            if (j < n && s[j] == '>' && pri <= 191) {
                rec->severity = tel_sev_from_syslog(pri & 7);
                rec->severity_text = s;
                rec->severity_text_len = (uint32_t)(j + 1);
                c->have |= HAVE_LEVEL;
                i = j + 1;
                break;
            }
        }
        size_t at = 0, used;
        int64_t ns;
        if (n >= 19 && is_digit(s[0]) && tel_time_rfc3339(s, n, &ns, &used) &&
            (used == n || s[used] == ' ' || s[used] == '\t')) {
            rec->time_ns = ns;
            c->have |= HAVE_TIME;
            at = used;
            while (at < n && (s[at] == ' ' || s[at] == '\t'))
                at++;
            i = at;
        }
        /* A level word: "ERROR x", "[warn] x", "WARN[0001] x", "level=info x", "E: x". */
        size_t w = at;
        bool keyed = false;
        if (w + 6 < n && (memcmp(s + w, "level=", 6) == 0)) {
            w += 6;
            keyed = true;
        } else if (w + 4 < n && memcmp(s + w, "lvl=", 4) == 0) {
            w += 4;
            keyed = true;
        }
        bool bracket = w < n && (s[w] == '[' || s[w] == '(');
        if (bracket)
            w++;
        size_t ws = w;
        while (w < n && w - ws < 14 && word_char(s[w]))
            w++;
        size_t wl = w - ws;
        if (wl >= 3 && (w == n || !word_char(s[w]))) {
            int sev = tel_sev_from_word(s + ws, wl);
            bool ok = sev != 0;
            if (ok && bracket) {
                while (w < n && s[w] == ' ')
                    w++;
                ok = w < n && (s[w] == ']' || s[w] == ')');
                if (ok)
                    w++;
            } else if (ok) {
                /* Only where a sentence would not start so: "ERROR x", "error: x", "level=x";
                 * "Info about the run" stays text. */
                bool upper = true;
                for (size_t k = ws; k < w; k++)
                    upper &= s[k] >= 'A' && s[k] <= 'Z';
                bool colon = w < n && s[w] == ':';
                ok = (upper || colon || keyed) &&
                     (w == n || s[w] == ' ' || s[w] == ':' || s[w] == '[' || s[w] == '\t' ||
                      s[w] == '|');
            }
            if (ok) {
                rec->severity = sev;
                rec->severity_text = s + ws;
                rec->severity_text_len = (uint32_t)wl;
                c->have |= HAVE_LEVEL;
                if (w < n && s[w] == '[') { /* logrus: WARN[0001] */
                    const char *rb = memchr(s + w, ']', n - w < 24 ? n - w : 24);
                    if (rb)
                        w = (size_t)(rb - s) + 1;
                }
                while (w < n && (s[w] == ':' || s[w] == '|' || s[w] == ' ' || s[w] == '\t' ||
                                 s[w] == '-'))
                    w++;
                i = w;
            }
        }
        break;
    }
    if (i >= n)
        i = 0; /* nothing but a prefix: keep it as the body */
    uint32_t bl;
    rec->body = tel_utf8_clean(c->arena, s + i, n - i, &bl);
    rec->body_len = bl;
    c->have |= HAVE_BODY;
}

/* ---- the entry point ----------------------------------------------------------------------- */

void tel_parse_line(const char *line, size_t len, const struct tel_origin *origin,
                    struct core_arena *arena, struct tel_record *rec)
{
    struct tel_pctx c;
    tel_pctx_init(&c, origin, arena, rec);
    if (!line)
        len = 0;
    if (len > UINT32_MAX)
        len = UINT32_MAX; /* lengths are 32-bit in records; sources cap lines far below */
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i < len && line[i] == '{' && tel_pctx_json(&c, line + i, len - i)) {
        rec->format = TEL_FMT_JSON;
    } else if (i < len && line[i] != '{' && tel_pctx_logfmt(&c, line + i, len - i)) {
        rec->format = TEL_FMT_LOGFMT;
    } else {
        rec->format = TEL_FMT_PLAIN;
        if (len)
            tel_pctx_plain(&c, line, len, true);
    }
    tel_pctx_finish(&c);
}
