/* auditd event join (auditd.c), internal to telemetry: the file source's `format: auditd` and
 * the fuzzer use it.
 *
 * auditd writes one event as several records (SYSCALL, EXECVE, CWD, PATH..., PROCTITLE, EOE)
 * that share `msg=audit(TIME:SERIAL)`. A joiner groups the records of an event and emits the
 * event as one line: an event of one record is emitted unchanged; an event of several becomes
 * one JSON object (docs/telemetry.md, "auditd events"): "time", "msg" ("audit(ID): TYPES"),
 * "audit.id", "audit.records", "audit.types" (the record types, comma-separated: a Sigma `type`
 * matches any of them), "type" (the first record's), then every record's
 * fields, hex-decoded where auditd hex-encodes (exe, cwd, name, proctitle, EXECVE arguments
 * ...; split arguments aN[i] are put back together). EXECVE arguments keep their names a0..aN
 * (the SYSCALL's own a0..a3 become syscall.a0..); a name already taken by an earlier record is
 * prefixed by the record type ("path.name"), then by the type and the record's index
 * ("path3.name").
 *
 * An event is complete at its EOE record, when it reaches AUDITD_RECORDS_MAX records or
 * AUDITD_EVENT_BYTES, and otherwise when tel_auditd_flush() finds it old enough (the caller's
 * timeout, and everything at EOF or stop). At most AUDITD_OPEN_MAX events are open; one more
 * completes the oldest. Lines that are not auditd records pass through unchanged, in order
 * with the events completed before them. A joiner is used by one thread at a time. */
#ifndef PAVE_TELEMETRY_AUDITD_H
#define PAVE_TELEMETRY_AUDITD_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define AUDITD_RECORDS_MAX 64
#define AUDITD_OPEN_MAX 32
#define AUDITD_EVENT_BYTES (512u << 10)
#define AUDITD_FIELDS_MAX 2048

struct tel_auditd;

/* returns: owned by caller (tel_auditd_free); NULL on NOMEM. */
struct tel_auditd *tel_auditd_new(void);
void tel_auditd_free(struct tel_auditd *j);

/* Feeds one line (without its newline; any bytes). What it completes is appended to out, one
 * line each ending in '\n'. now_ms stamps new events for tel_auditd_flush. returns: 0,
 * CORE_E_NOMEM, or CORE_E_TOO_BIG (out's max reached: what did not fit is lost). */
int tel_auditd_feed(struct tel_auditd *j, const char *line, size_t len, int64_t now_ms,
                    struct core_buf *out);

/* Completes the events opened at least age_ms before now_ms (age_ms <= 0: every event), oldest
 * first. returns: like tel_auditd_feed. */
int tel_auditd_flush(struct tel_auditd *j, int64_t now_ms, int64_t age_ms, struct core_buf *out);

/* Events open now. */
size_t tel_auditd_pending(const struct tel_auditd *j);

/* Joins records (lines of one event, n >= 1) into one line (without '\n') appended to out.
 * returns: 0, CORE_E_NOMEM or CORE_E_TOO_BIG. Pure. */
int tel_auditd_join(const char *const *recs, const size_t *lens, size_t n, struct core_buf *out);

#endif
