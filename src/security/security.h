/*
 * security: detections over the observability pipeline. Detection rules are written in Sigma
 * (the SigmaHQ rule format, https://sigmahq.io), loaded once into an immutable compiled set and
 * evaluated against every record the telemetry pipeline carries (struct tel_record), so a rule
 * sees every service's logs, syslog from hosts and auditd records, already enriched with owner
 * and team. The pipeline's `sigma` transform (src/telemetry/transforms.c) tags matching records
 * with the attribute `security.rule_ids` (docs/security.md).
 *
 *  - Loading: one YAML document per rule (title, id, status, level, logsource, detection).
 *    Field modifiers contains, startswith, endswith, all, re (PCRE2 with match, depth and heap
 *    limits), cidr, base64, base64offset, windash, exists, cased, lt/lte/gt/gte and conditions
 *    with and/or/not, parentheses, `1 of x*`, `all of x*`, `1 of them`, `all of them` are
 *    compiled. A rule that uses anything else (aggregations, `near`, utf16/wide, fieldref,
 *    expand, a logsource no platform source produces) is not loaded and is *reported* with the
 *    reason (security_sigma_rejected); a malformed rule is reported the same way with its
 *    file:line:col. Nothing is ignored silently.
 *  - Field mapping: Sigma field names (Image, CommandLine, User, ...) are mapped onto the log
 *    standard's attributes and onto what Linux sources write (auditd exe/a0..aN/proctitle, the
 *    syslog app name and message); auditd hex-encoded values are decoded. Table in
 *    docs/security.md.
 *  - Evaluation is pure over a compiled set: any number of threads may evaluate at once.
 */
#ifndef PAVE_SECURITY_H
#define PAVE_SECURITY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"
#include "telemetry/telemetry.h"

struct security_sigma_set;

/* A loaded rule (strings owned by the set). */
struct security_sigma_rule {
    const char *id;     /* the rule's id (a UUID), or its title when it has none */
    const char *title;
    const char *status; /* "" when absent */
    const char *level;  /* informational, low, medium, high, critical; "" when absent */
    const char *source; /* the name it was loaded under (file path) */
};

/* A rule that was not loaded, and why. */
struct security_sigma_reject {
    const char *source; /* file path (or the name given) */
    const char *title;  /* "" when the document had none */
    const char *reason; /* "unsupported: ..." or "NAME:LINE:COL: ..." for malformed rules */
    bool unsupported;   /* true: valid Sigma this engine does not do; false: malformed */
};

/* returns: an empty set, owned by caller (security_sigma_set_free); NULL on NOMEM. */
struct security_sigma_set *security_sigma_set_new(void);
void security_sigma_set_free(struct security_sigma_set *s);

/* Compiles one rule (YAML text) into s. name is used in messages and kept as the rule's source.
 * returns: 0 (loaded); CORE_E_UNSUPPORTED or CORE_E_INVAL with err, the rule being recorded as
 * rejected with the same reason; CORE_E_NOMEM. */
int security_sigma_add(struct security_sigma_set *s, const char *name, const char *text,
                       size_t len, struct core_err *err);

/* Adds every *.yml / *.yaml file of dir (sorted by name; not recursive). Rules that do not load
 * are recorded as rejected and do not stop the others. returns: 0, or CORE_E_IO (dir unreadable)
 * / CORE_E_NOMEM with err. */
int security_sigma_add_dir(struct security_sigma_set *s, const char *dir, struct core_err *err);

size_t security_sigma_count(const struct security_sigma_set *s);
/* returns: rule i (i < count), borrowed from s. */
const struct security_sigma_rule *security_sigma_rule(const struct security_sigma_set *s,
                                                      size_t i);
size_t security_sigma_rejected_count(const struct security_sigma_set *s);
const struct security_sigma_reject *security_sigma_rejected(const struct security_sigma_set *s,
                                                            size_t i);

/* Evaluates every rule against rec. Matching rule indexes (for security_sigma_rule) go to
 * out[0..max), in load order. scratch: per-call memory (decoded auditd values, joined command
 * lines); may be the batch's arena. returns: the number of matching rules (may exceed max: only
 * max are written). Thread safe. */
size_t security_sigma_match(const struct security_sigma_set *s, const struct tel_record *rec,
                            struct core_arena *scratch, size_t *out, size_t max);

/* Parses a condition alone against the selection names sel[0..n) (the condition fuzzer and
 * tests). returns: 0, CORE_E_INVAL / CORE_E_UNSUPPORTED with err. */
int security_sigma_condition_check(const char *cond, const char *const *sel, size_t n,
                                   struct core_err *err);

#endif
