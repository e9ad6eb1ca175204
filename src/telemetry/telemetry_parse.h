/* telemetry parse internals shared by parse.c (JSON, logfmt, plain), syslog.c and record.c.
 *
 * A `struct tel_pctx` collects one record while a line is being parsed: attributes go to a
 * fixed array on the stack (TEL_MAX_ATTRS - 1 entries; the rest are chained in the arena and
 * folded into one "attributes.overflow" JSON attribute) and are copied into the arena with the
 * exact count by tel_pctx_finish(). Nothing here allocates outside the arena. If the arena is
 * exhausted, parsing degrades (fewer attributes, a plain body) but never fails. */
#ifndef PAVE_TELEMETRY_PARSE_H
#define PAVE_TELEMETRY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "telemetry/telemetry.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define TEL_JSON_MAX_DEPTH 64 /* nesting beyond this makes a line plain text */

struct tel_over; /* overflow attributes, chained in the arena */

struct tel_pctx {
    struct core_arena *arena;
    struct tel_record *rec;
    uint32_t nkv;
    uint32_t nover;
    struct tel_over *over_head, *over_tail;
    unsigned have; /* PCTX_HAVE_* bits: first occurrence of a well-known key wins */
    struct tel_kv kv[TEL_MAX_ATTRS - 1];
};

/* Resets rec (resource from origin, observed_ns = now) and c. */
void tel_pctx_init(struct tel_pctx *c, const struct tel_origin *origin, struct core_arena *arena,
                   struct tel_record *rec);
/* Adds an attribute (strings borrowed: they must live as long as the batch). */
void tel_pctx_add(struct tel_pctx *c, const char *k, uint32_t kl, const char *v, uint32_t vl,
                  enum tel_vtype t);
/* Parses s (one JSON object, surrounding whitespace allowed) into c. false: not valid JSON (or
 * too deep); c and the record are then as they were before the call. */
bool tel_pctx_json(struct tel_pctx *c, const char *s, size_t n);
/* Same for logfmt (every token key=value or key="quoted"). */
bool tel_pctx_logfmt(struct tel_pctx *c, const char *s, size_t n);
/* Sets the body to s, after taking a cheap leading "<N>", timestamp and level word off it
 * when detect is true. Invalid UTF-8 is replaced. */
void tel_pctx_plain(struct tel_pctx *c, const char *s, size_t n, bool detect);
/* Copies the attributes into the arena (exact count) and folds the overflow. */
void tel_pctx_finish(struct tel_pctx *c);

/* Text helpers. */
int64_t tel_now_ns(void);
int64_t tel_days_from_civil(int64_t y, unsigned m, unsigned d);
/* RFC 3339 (also ' ' for 'T', ',' for '.', no zone = UTC, +hh, +hhmm) at the start of s.
 * returns: true with *ns and *used (bytes consumed). */
bool tel_time_rfc3339(const char *s, size_t n, int64_t *ns, size_t *used);
/* Severity number for a level name ("warn", "E", "critical" ...; case-insensitive), 0 if
 * unknown. */
int tel_sev_from_word(const char *s, size_t n);
/* OpenTelemetry number for a syslog severity 0-7. */
int tel_sev_from_syslog(unsigned sev);
/* s when valid UTF-8, else a copy in the arena with invalid bytes as U+FFFD (on arena
 * exhaustion: the valid prefix of s). */
const char *tel_utf8_clean(struct core_arena *a, const char *s, size_t n, uint32_t *outn);
/* NUL-terminated copy in the arena; NULL when the arena is exhausted. */
char *tel_arena_strndup(struct core_arena *a, const char *s, size_t n);

/* JSON string escaping (record.c). tel_json_esc writes the escaped text of s (without quotes)
 * to dst, which must have room for 6 * n bytes; invalid UTF-8 becomes \ufffd. returns: the end
 * of what was written. tel_json_esc_len is its exact length. */
char *tel_json_esc(char *dst, const char *s, size_t n);
size_t tel_json_esc_len(const char *s, size_t n);

/* The high bit of each byte of x (as loaded from memory) that JSON strings cannot hold as is:
 * below 0x20, from 0x80, '"' or '\\'. Exact for the lowest such byte (the borrows of the
 * subtractions can flag bytes above it falsely, never below). */
static inline uint64_t tel_json_special64(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101u;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return ((x - ones * 0x20) | x | ((q - ones) & ~q) | ((b - ones) & ~b)) & (ones * 0x80);
}

static inline uint32_t tel_json_special32(uint32_t x)
{
    const uint32_t ones = 0x01010101u;
    uint32_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return ((x - ones * 0x20) | x | ((q - ones) & ~q) | ((b - ones) & ~b)) & (ones * 0x80);
}

/* The first byte at or after p (before end) that JSON strings cannot hold as is: '"', '\\', a
 * control character or a non-ASCII byte (which the callers check as UTF-8); end if none. Both
 * the parser's string scanner and the encoder's escaper spend most of their time here, so it
 * looks at 16 bytes at a time with SSE2 (x86-64's baseline), then 8 and 4 at a time with plain
 * integer arithmetic (little-endian), then byte by byte. It never reads at or past end. */
static inline const char *tel_json_plain_run(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed compare: 0x00-0x1f and 0x80-0xff are both "less than" 0x20 */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs)),
                                 _mm_cmplt_epi8(x, sp));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return p + __builtin_ctz(bits);
        p += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t m = tel_json_special64(x);
        if (m)
            return p + __builtin_ctzll(m) / 8;
        p += 8;
    }
    if (end - p >= 4) {
        uint32_t x;
        memcpy(&x, p, 4);
        uint32_t m = tel_json_special32(x);
        if (m)
            return p + __builtin_ctz(m) / 8;
        p += 4;
    }
#endif
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch >= 0x80 || ch == '"' || ch == '\\')
            return p;
        p++;
    }
    return end;
}

/* Whether s[0..n) holds a NUL byte: an inline loop, since keys are short and a memchr call
 * per key costs more than the scan. */
static inline bool tel_has_nul(const char *s, size_t n)
{
    bool nul = false;
    for (size_t i = 0; i < n; i++)
        nul |= s[i] == 0;
    return nul;
}

#endif
