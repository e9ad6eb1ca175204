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

#include "telemetry/telemetry.h"

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

#endif
