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
 *
 * On top of the rules (docs/security.md):
 *  - Alerts (alerts.c): every finding — a Sigma match carried by the pipeline's `security` sink,
 *    a built-in detection, a file-integrity change — becomes a stored alert with its severity,
 *    rule and the matching events. Findings with the same dedup key while an alert is not closed
 *    are one alert (count and last_seen grow). New alerts are routed to a webhook (JSON POST,
 *    retried) and to a JSON-lines file off the caller's thread, and are shown in the portal;
 *    acknowledge and close take a comment and are audited.
 *  - File integrity monitoring (fim.c): a baseline of hashes, modes and owners of deployed
 *    bundles and configured paths; scans report what was added, removed or changed, before and
 *    after, as alerts.
 *  - Built-in detections (detect.c): bursts of failed logins, a new listening port in a
 *    replica, an unexpected process in a sandbox, a token used from a new source.
 */
#ifndef PAVE_SECURITY_H
#define PAVE_SECURITY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"
#include "telemetry/telemetry.h"

struct store;
struct catalog_actor;
struct json_t; /* jansson's json_t */

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

/* Adds the built-in rules embedded in the binary (sigma/builtin.yaml; rules_builtin.c), named
 * "builtin:N". returns: 0, or CORE_E_NOMEM / CORE_E_INVAL with err when one does not load (a
 * build mistake: the unit tests load them). */
int security_sigma_add_builtin(struct security_sigma_set *s, struct core_err *err);

/* Loads path (a directory of *.yml / *.yaml, or one rule file) into s, like the sigma
 * transform's `rules`. Rules that do not load are recorded as rejected. returns: 0, CORE_E_IO
 * (nothing at path) / CORE_E_NOMEM with err. */
int security_sigma_add_path(struct security_sigma_set *s, const char *path,
                            struct core_err *err);

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

/* The literal prefilter of security_sigma_match (on by default; docs/security.md): off, every
 * rule whose logsource fits is evaluated. Matches are the same either way (for tests and
 * measurement). Not thread safe against concurrent security_sigma_match. */
void security_sigma_set_prefilter(struct security_sigma_set *s, bool on);

/* Parses a condition alone against the selection names sel[0..n) (the condition fuzzer and
 * tests). returns: 0, CORE_E_INVAL / CORE_E_UNSUPPORTED with err. */
int security_sigma_condition_check(const char *cond, const char *const *sel, size_t n,
                                   struct core_err *err);

/* ---- alerts (alerts.c) ------------------------------------------------------------------ */

struct security_alerts;

struct security_alert_opts {
    const char *webhook_url; /* new alerts are POSTed here as JSON; NULL: none */
    const char *file_path;   /* new alerts are appended here as JSON lines; NULL: none */
};

/* returns: owned by caller (security_alerts_free: drains the routing queue, bounded); NULL with
 * err. st is borrowed. */
struct security_alerts *security_alerts_open(struct store *st, const struct security_alert_opts *o,
                                             struct core_err *err);
void security_alerts_free(struct security_alerts *a);

/* One finding. Strings are borrowed for the call. */
struct security_finding {
    const char *rule_id;    /* Sigma id, "builtin.failed-logins", "fim.changed" ... */
    const char *rule_title;
    const char *source;     /* "sigma", "builtin", "fim" */
    const char *severity;   /* informational, low, medium, high, critical */
    const char *dedup_key;  /* same key while not closed = same alert; NULL: rule_id + service */
    const char *service;    /* may be NULL */
    const char *team;       /* may be NULL */
    const char *summary;    /* one line a human reads first */
    const char *event_json; /* the matching event as a JSON object text, may be NULL; an alert
                             * keeps its first SECURITY_ALERT_EVENTS_MAX events */
};
#define SECURITY_ALERT_EVENTS_MAX 20

/* Records a finding (a new alert, or one more occurrence of the live alert with its key) and
 * routes new alerts. *id (may be NULL) receives the alert id, *is_new (may be NULL) whether it
 * was created. Thread safe. returns: 0, or a store error / CORE_E_INVAL with err. */
int security_alert_raise(struct security_alerts *a, const struct security_finding *f, int64_t *id,
                         bool *is_new, struct core_err *err);

/* {"items":[{id, rule_id, rule_title, source, severity, state, service, team, summary, count,
 * first_seen, last_seen, updated_by, comment}]} newest first; filters may be NULL. */
struct json_t *security_alert_list(struct store *st, const char *state, const char *severity,
                                   const char *service, int limit, struct core_err *err);
/* One alert with "events": [...]. NULL with CORE_E_NOTFOUND when there is none. */
struct json_t *security_alert_get(struct store *st, int64_t id, struct core_err *err);
/* Moves an alert to "acknowledged" or "closed" with a comment (required for close), audited as
 * security.alert.ack / security.alert.close. returns: 0; CORE_E_NOTFOUND; CORE_E_INVAL (bad
 * state, closing a closed alert, missing comment). */
int security_alert_transition(struct store *st, const struct catalog_actor *actor, int64_t id,
                              const char *to, const char *comment, struct core_err *err);

/* ---- file integrity monitoring (fim.c) --------------------------------------------------- */

struct security_fim;

struct security_fim_opts {
    const char *const *paths; /* files or directories (recursive) to watch, scope "path" */
    size_t npaths;
    const char *bundles_dir;  /* deployed bundles (DATA/bundles), scope "bundle"; may be NULL */
    int interval_ms;          /* scan period; 0: no thread, scans only on request */
};

/* Takes the baseline of whatever is not in the store yet, then scans every interval_ms on its
 * own thread; changes are raised as alerts on `alerts` (source "fim", before/after in the
 * event). returns: owned by caller (security_fim_stop); NULL with err. */
struct security_fim *security_fim_start(struct store *st, struct security_alerts *alerts,
                                        const struct security_fim_opts *o, struct core_err *err);
void security_fim_stop(struct security_fim *f);
/* Scans now. *changes (may be NULL) receives {"items":[{path, change: added|removed|modified,
 * before:{...}|null, after:{...}|null}]}. */
int security_fim_scan(struct security_fim *f, struct json_t **changes, struct core_err *err);
/* The baseline: {"items":[{path, scope, kind, sha256, mode, uid, gid, size, updated_at}]}. */
struct json_t *security_fim_baseline(struct store *st, const char *scope, struct core_err *err);
/* Accepts the current state of path (NULL: everything watched) as the new baseline; audited as
 * security.fim.accept. */
int security_fim_accept(struct security_fim *f, const struct catalog_actor *actor,
                        const char *path, struct core_err *err);

/* ---- built-in detections (detect.c) ------------------------------------------------------ */

/* One failed authentication recognized in a log record. */
struct security_login_failure {
    char source[64]; /* the remote address (or host name) it came from; "local:HOST" for sudo */
    char user[64];   /* "" when the line does not say */
    int count;       /* failures the line stands for (sudo's "3 incorrect password attempts") */
};

/* Recognizes a failed authentication in rec: sshd "Failed password for [invalid user] X from
 * IP port N ssh2" (any method), sshd "Invalid user X from IP", PAM "authentication failure;
 * ... rhost=IP user=X" (with a remote host), sudo "N incorrect password attempts", and the
 * platform's own "token refused" warning (attribute client.address). Pure, thread safe.
 * returns: true and *out filled, or false. */
bool security_failed_login_parse(const struct tel_record *rec, struct security_login_failure *out);

struct security_detect;

struct security_detect_opts {
    int threshold;      /* failures from one source that make a burst; 0: 5 */
    int64_t window_ms;  /* ... within this much event time; 0: 60 s */
    size_t max_sources; /* sources tracked at once (least recently seen dropped); 0: 4096 */
    int max_events;     /* failing lines kept in the alert's event; 0: 10 */
};

/* returns: owned by caller (security_detect_free); NULL on NOMEM. o may be NULL (defaults). */
struct security_detect *security_detect_new(const struct security_detect_opts *o);
void security_detect_free(struct security_detect *d);

/* Feeds one record to the failed-login detection. When a source reaches the threshold within
 * the window (by the records' event time, else their observed time, so a replayed file
 * detects what happened then) one finding builtin.failed-logins (severity high, dedup key
 * "failed-logins:SOURCE", the first max_events failing lines as the event) is raised on a;
 * further failures of the same burst raise nothing until the source was quiet for a window.
 * *raised (may be NULL) tells whether this record raised. Thread safe. returns: 0, or what
 * security_alert_raise returned (CORE_E_UNSUPPORTED when no alert book is linked). */
int security_detect_feed(struct security_detect *d, struct security_alerts *a,
                         const struct tel_record *rec, bool *raised, struct core_err *err);

/* Tokens used from a new source address: remembers (token id, address) pairs in memory and in
 * the store (table security_seen, kind "token-source"). */
struct security_seen;

/* returns: owned by caller (security_seen_free); NULL on NOMEM. */
struct security_seen *security_seen_new(void);
void security_seen_free(struct security_seen *s);

/* Called on every authenticated API request. A pair already known costs a lookup in memory; a
 * new pair is stored and, unless it is the token's first use (the baseline), raises
 * builtin.token-new-source (severity medium, summary with the token id and owner, never the
 * token) on a. *raised may be NULL. Thread safe. returns: 0, a store error, or the raise's. */
int security_token_seen(struct security_seen *s, struct security_alerts *a, struct store *st,
                        const char *token_id, const char *owner, const char *addr, bool *raised,
                        struct core_err *err);

/* ---- workload watch (watch.c) ------------------------------------------------------------ */

/* Watches the process trees of deployed replicas (docs/security.md "Workload watch"): every
 * interval_ms it asks the deploy controller for the live replicas and raises, on `alerts`,
 *  - builtin.new-listening-port (high): a TCP or UDP socket listening on a port other than the
 *    replica's assigned one, held by any process of the replica's tree;
 *  - builtin.unexpected-process (high): a process of the tree whose executable differs from the
 *    replica's main process's (a shell, curl ...); the summary carries exe, pid and the first 200
 *    bytes of its command line, never its environment.
 * One alert per replica+port and replica+executable (a new pid of the same executable is one more
 * occurrence). */
struct security_watch;
struct deploy_controller;

/* dc may be NULL (nothing to scan; security_watch_inspect still works); interval_ms 0: no
 * thread. st, alerts (may be NULL: findings are only returned) and dc are borrowed.
 * returns: owned by caller (security_watch_stop); NULL with err. */
struct security_watch *security_watch_start(struct store *st, struct security_alerts *alerts,
                                            struct deploy_controller *dc, int interval_ms,
                                            struct core_err *err);
void security_watch_stop(struct security_watch *w);
/* Scans every live replica now. *findings (may be NULL) receives {"items":[{rule_id, replica,
 * service, env, pid, exe, cmdline | proto, port, ...}]}: everything seen, raised or not. */
int security_watch_scan(struct security_watch *w, struct json_t **findings,
                        struct core_err *err);
/* Parsers of what the watch reads in /proc (procfs.c): untrusted, since a process picks its own
 * name and command line. Any bytes are accepted; nothing is read past len. */
struct security_proc_stat {
    char state;               /* R, S, Z ... */
    long ppid;
    unsigned long long start; /* clock ticks after boot */
};
/* /proc/PID/stat text. returns: true with *out filled when fields 3 to 22 are there. */
bool security_proc_stat_parse(const char *text, size_t len, struct security_proc_stat *out);
/* One line of /proc/PID/net/{tcp,tcp6,udp,udp6}. returns: true for a listening socket (TCP
 * LISTEN, UDP unconnected) with its local port (1..65535) and inode. */
bool security_proc_net_parse(const char *line, bool tcp, int *port, unsigned long long *inode);
#define SECURITY_CMDLINE_MAX 200
/* A command line as shown: its first SECURITY_CMDLINE_MAX bytes (and at most outsz - 1), NULs
 * between arguments as spaces, control bytes as '?'. out is always terminated (outsz > 0). */
void security_proc_cmdline_clean(const char *raw, size_t n, char *out, size_t outsz);

/* Inspects one replica: the tree of processes under root_pid (excluded itself, as processes
 * running its executable: the shim), whose assigned port is `port`. Found items are appended to
 * items (a JSON array; may be NULL). */
int security_watch_inspect(struct security_watch *w, const char *service, const char *env,
                           const char *replica, long root_pid, int port, struct json_t *items,
                           struct core_err *err);

#endif
