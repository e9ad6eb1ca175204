/*
 * telemetry: the observability pipeline. Every line a service or the platform writes flows
 * through one engine: sources -> transforms -> sinks, like Fluent Bit or Vector.
 *
 *  - Sources turn the outside world into chunks of lines (replica logs, tailed files, syslog
 *    over UDP/TCP, HTTP JSON ingest, the platform's own log) and say where they came from
 *    (`struct tel_origin`).
 *  - The parse transform maps each line onto the organization's log standard, the
 *    OpenTelemetry log data model (docs/logging-standard.md): JSON, logfmt and plain text are
 *    understood; anything else (invalid JSON or UTF-8, NUL bytes, 1 MiB lines) is kept as a
 *    plain body, never dropped. Then records are enriched from the catalog (service, team, env,
 *    version, instance), redacted (emails, card numbers that pass a Luhn check, bearer tokens,
 *    configured patterns), sampled and routed by conditions; counts by severity become metrics.
 *  - Sinks deliver batches: the embedded log store behind `pave logs`, files, Loki's push API,
 *    HTTP JSON, Elasticsearch bulk, stdout. Each sink has a bounded memory queue (a full queue
 *    pushes back on the sources) or, when configured, a disk buffer with a delivery checkpoint
 *    (at-least-once across crashes); failed deliveries are retried with backoff and what a sink
 *    rejects goes to a dead-letter file.
 *
 * Components are rows of tables (struct tel_*_ops, registry.c): adding a kind of source, transform
 * or sink is one file plus one line. The engine is configured by a YAML document (the `telemetry`
 * file of the platform, docs/telemetry.md) and has defaults that need none.
 *
 * The hot path is allocation-light: a batch owns one arena and the raw chunk; records point into
 * them. Pure functions (tel_parse_line, tel_redact, tel_record_write_json ...) carry no state and
 * are what the fuzzers and unit tests drive.
 *
 * Threading: one engine runs one thread per source that needs it, a small pool of worker threads
 * for the transforms, and one thread per sink. tel_engine_* functions are thread safe.
 */
#ifndef PAVE_TELEMETRY_H
#define PAVE_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct catalog;
struct store;

/* ---- the record: one log event in the standard ----------------------------------------- */

enum tel_vtype {
    TEL_V_STR = 1, /* UTF-8 text (unescaped) */
    TEL_V_NUM,     /* a JSON number, as written */
    TEL_V_BOOL,    /* "true" / "false" */
    TEL_V_NULL,
    TEL_V_JSON,    /* a nested object or array, as valid compact JSON text */
};

/* One attribute. Strings are not NUL-terminated; they live in the batch (arena or raw chunk). */
struct tel_kv {
    const char *key;
    uint32_t klen;
    uint32_t vlen;
    const char *val;
    enum tel_vtype type;
    /* TEL_PLAIN_* bits: key or val is known to be valid UTF-8 with nothing JSON escapes, so
     * the encoder copies it as is. Set by the JSON parser; whoever changes key or val clears
     * the bit (0, what initializers leave, is always safe). */
    uint8_t plain;
};

enum { TEL_PLAIN_KEY = 1, TEL_PLAIN_VAL = 2 };

/* OpenTelemetry SeverityNumber ranges: TRACE 1-4, DEBUG 5-8, INFO 9-12, WARN 13-16,
 * ERROR 17-20, FATAL 21-24; 0 = unspecified. */
enum {
    TEL_SEV_UNSPECIFIED = 0,
    TEL_SEV_TRACE = 1,
    TEL_SEV_DEBUG = 5,
    TEL_SEV_INFO = 9,
    TEL_SEV_WARN = 13,
    TEL_SEV_ERROR = 17,
    TEL_SEV_FATAL = 21,
};

/* Where lines came from: fills the resource unless the line says otherwise. Strings borrowed
 * (they must outlive the batch: sources keep them in their state). */
struct tel_origin {
    const char *source;   /* component name, e.g. "replicas", "syslog-udp" */
    const char *service;  /* service.name */
    const char *team;
    const char *env;      /* deployment.environment */
    const char *version;  /* service.version */
    const char *instance; /* service.instance.id */
    const char *host;     /* host.name (syslog) */
    const char *file;     /* log.file.path */
    uint8_t parser;       /* TEL_PARSE_AUTO (tel_parse_line) or TEL_PARSE_SYSLOG */
};

enum { TEL_PARSE_AUTO = 0, TEL_PARSE_SYSLOG = 1 };

#define TEL_LINE_MAX (1u << 20) /* longer lines are cut here (pave_telemetry_truncated_total) */
#define TEL_MAX_ATTRS 128 /* more are folded into one "attributes.overflow" JSON attribute */

struct tel_record {
    int64_t time_ns;     /* event time from the line; 0 = unknown (then observed_ns is used) */
    int64_t observed_ns; /* when the pipeline read it */
    int severity;        /* TEL_SEV_* range value, 0 unspecified */
    const char *severity_text; /* as written ("warn", "E", "<3>"...), may be NULL */
    uint32_t severity_text_len;
    const char *body;    /* the message; UTF-8 (invalid bytes replaced by U+FFFD) */
    uint32_t body_len;
    struct tel_kv *attrs; /* nattrs entries, in the arena */
    uint32_t nattrs;
    struct tel_origin res; /* resource: from the origin, overridden by the line's own fields */
    char trace_id[33];   /* 32 lowercase hex or "" */
    char span_id[17];    /* 16 lowercase hex or "" */
    uint8_t format;      /* TEL_FMT_*: what the parser recognized */
    bool redacted;       /* the redact transform changed something */
    bool body_plain;     /* body needs no JSON escaping (as TEL_PLAIN_VAL; cleared on change) */
};

enum { TEL_FMT_PLAIN = 1, TEL_FMT_JSON, TEL_FMT_LOGFMT, TEL_FMT_SYSLOG5424, TEL_FMT_SYSLOG3164 };

/* Parses one line (without its newline) into rec, mapping well-known keys onto the standard
 * (time/ts/timestamp/@timestamp, level/severity/lvl, msg/message/body, trace_id/span_id,
 * service/team/env/version/instance ...; docs/logging-standard.md) and keeping the others as
 * attributes. Never fails: input that is not JSON or logfmt becomes a plain body. Strings point
 * into `line` when they need no unescaping, else into arena. origin (may be NULL) seeds the
 * resource. */
void tel_parse_line(const char *line, size_t len, const struct tel_origin *origin,
                    struct core_arena *arena, struct tel_record *rec);

/* Syslog: RFC 5424 and RFC 3164 (BSD) messages, as received (one datagram or one framed TCP
 * message). Fills time, severity (from PRI), host, app (as service when the origin has none),
 * structured data as attributes, and the message body (itself parsed as JSON when it is).
 * returns: true if the text was syslog; false leaves rec as tel_parse_line would. */
bool tel_parse_syslog(const char *msg, size_t len, const struct tel_origin *origin,
                      struct core_arena *arena, struct tel_record *rec);

/* Writes rec as one line of the standard JSON (without '\n') to out. */
int tel_record_write_json(const struct tel_record *rec, struct core_buf *out);

/* ---- redaction ------------------------------------------------------------------------------ */

struct tel_redactor;

struct tel_redact_config {
    bool emails, cards, bearer;    /* built-in detectors (all on by default) */
    const char *const *patterns;   /* extra PCRE2 patterns (match-limited), may be NULL */
    size_t npatterns;
    const char *replacement;       /* default "[REDACTED]"; built-ins use "[REDACTED:email]" .. */
};

/* returns: owned by caller (tel_redactor_free); NULL with err (a pattern that does not
 * compile, with its offset). */
struct tel_redactor *tel_redactor_new(const struct tel_redact_config *cfg, struct core_err *err);
void tel_redactor_free(struct tel_redactor *r);
/* Redacts the body and every string attribute of rec in place (new text goes to arena).
 * returns: the number of replacements. Thread safe for a shared redactor. */
int tel_redact(const struct tel_redactor *r, struct tel_record *rec, struct core_arena *arena);
/* The Luhn check over the digits of s (spaces and dashes skipped). */
bool tel_luhn_ok(const char *s, size_t len);

/* ---- the engine ---------------------------------------------------------------------------- */

struct tel_engine;
struct security_alerts;

struct tel_engine_config {
    const char *data_dir;     /* state: checkpoints, disk buffers, the log store, dead letters */
    const char *config_path;  /* YAML (docs/telemetry.md); NULL: the defaults */
    const char *config_text;  /* or the YAML itself (tests); wins over config_path */
    struct catalog *cat;      /* for enrichment; may be NULL */
    struct security_alerts *alerts; /* where the `security` sink and the detection transforms
                                     * raise alerts (src/security); may be NULL: they refuse to
                                     * start */
    struct store *st;         /* the platform's store, for the `audit` source (which refuses to
                               * start without one); may be NULL. Borrowed: must outlive the
                               * engine. With a store the defaults add {type: audit}. */
    int workers;              /* transform threads; 0: number of cores (at most 4) */
    bool tune_malloc;         /* keep batch-sized blocks in glibc's heaps (mallopt, once per
                               * process): fewer page faults, more memory kept. For a process
                               * that is mostly the pipeline (`pave agent`), not the server. */
};

/* Builds every component the config names and starts them. returns: owned by caller
 * (tel_engine_stop); NULL with err: a config error (file:line:col and a hint), a component that
 * cannot start (port taken, unwritable path ...). */
struct tel_engine *tel_engine_start(const struct tel_engine_config *cfg, struct core_err *err);

/* Stops the sources, drains the queues into the sinks (bounded by timeout_ms; disk buffers
 * keep the rest for the next start), stops the sinks, frees. NULL does nothing. */
void tel_engine_stop(struct tel_engine *e, int64_t timeout_ms);

/* Feeds a chunk of complete lines ('\n'-separated; a missing final newline is allowed) from
 * origin into the pipeline. Blocks while the queues are full (backpressure) unless nonblock,
 * in which case it returns CORE_E_TOO_BIG without taking anything. data is copied. */
int tel_engine_push(struct tel_engine *e, const struct tel_origin *origin, const char *data,
                    size_t len, bool nonblock, struct core_err *err);

/* Waits until every line pushed so far has been handled by every sink (delivered, buffered
 * on disk, or dead-lettered) or timeout_ms passed. returns: 0 or CORE_E_IO on timeout. */
int tel_engine_flush(struct tel_engine *e, int64_t timeout_ms, struct core_err *err);

/* Counters for /metrics and `pave status`: lines in, records out per sink, dropped, retried,
 * dead-lettered, by severity. Appends Prometheus text (pave_telemetry_*) to out. */
int tel_engine_metrics(struct tel_engine *e, struct core_buf *out);

/* HTTP ingest (src_http.c): whether e's config has an `http` source (false for NULL). */
bool tel_engine_accepts_http(struct tel_engine *e);
/* Pushes lines received over HTTP without blocking, with origin {source "http", service, env,
 * team} (strings copied; any may be NULL). returns: 0, CORE_E_UNSUPPORTED (no http source),
 * CORE_E_TOO_BIG (the pipeline is full: try later) or CORE_E_NOMEM. */
int tel_engine_ingest_http(struct tel_engine *e, const char *service, const char *env,
                           const char *team, const char *data, size_t len, struct core_err *err);

/* ---- components ---------------------------------------------------------------------------- */

/* A batch: records parsed from one chunk, all memory in its arena. */
struct tel_batch {
    struct tel_record *recs;
    size_t n;
    struct core_arena arena;
    uint64_t seq;             /* engine-wide order */
};

/* What sinks receive: records already encoded as standard JSON lines, with the few fields
 * sinks index or label by. This is also exactly what a disk buffer stores and replays, so a
 * record is encoded once, whatever the number of sinks and restarts. */
struct tel_event {
    int64_t time_ns;      /* event time, else observed time */
    int severity;         /* TEL_SEV_* value */
    const char *service;  /* NUL-terminated; "" when unknown */
    const char *env;
    const char *team;
    const char *instance;
    const char *line;     /* the standard JSON, without newline */
    uint32_t len;
};

struct tel_events {
    const struct tel_event *ev;
    size_t n;
};

struct core_node;

struct tel_source_ops {
    const char *type; /* "file", "syslog", "replicas", "platform", "http" */
    /* cfg: the source's YAML map (never NULL; may be empty). */
    int (*create)(struct tel_engine *e, const struct core_node *cfg, void **state,
                  struct core_err *err);
    int (*start)(void *state, struct core_err *err); /* runs its thread(s); pushes with tel_engine_push */
    void (*stop)(void *state);                       /* returns when no more pushes happen */
    void (*destroy)(void *state);
};

/* A sink's answer to one batch: delivered, retry later (the batch stays queued, backoff), or
 * rejected for good (the batch goes to the dead-letter file). */
enum tel_sink_result { TEL_SINK_OK = 0, TEL_SINK_RETRY, TEL_SINK_REJECT };

struct tel_sink_ops {
    const char *type; /* "store", "file", "loki", "http", "elasticsearch", "stdout" */
    int (*create)(struct tel_engine *e, const struct core_node *cfg, void **state,
                  struct core_err *err);
    enum tel_sink_result (*write)(void *state, const struct tel_events *b, struct core_err *err);
    void (*destroy)(void *state);
};

struct tel_transform_ops {
    const char *type; /* "enrich", "redact", "sample", "route" ... (parse is built in) */
    int (*create)(struct tel_engine *e, const struct core_node *cfg, void **state,
                  struct core_err *err);
    /* Changes records in place; may drop records by compacting b->recs/b->n. */
    void (*apply)(void *state, struct tel_batch *b);
    void (*destroy)(void *state);
};

/* The tables (registry.c). NULL-terminated arrays of pointers. */
extern const struct tel_source_ops *const tel_sources[];
extern const struct tel_sink_ops *const tel_sinks[];
extern const struct tel_transform_ops *const tel_transforms[];

/* What components may ask of their engine. */
const char *tel_engine_data_dir(const struct tel_engine *e);
struct catalog *tel_engine_catalog(const struct tel_engine *e);
struct security_alerts *tel_engine_alerts(const struct tel_engine *e); /* may be NULL */
struct store *tel_engine_store(const struct tel_engine *e);            /* may be NULL */
/* Name of the config document for messages ("telemetry.yaml" or "<defaults>"). */
const char *tel_engine_config_name(const struct tel_engine *e);

/* Durability for sources that checkpoint (file tail): tel_engine_push_seq() returns the
 * sequence number the last tel_engine_push() of this thread got; tel_engine_durable_seq() the
 * highest sequence number up to which every chunk is safe: delivered by every memory-buffered
 * sink, written to every disk buffer, or dead-lettered. A source may checkpoint the input
 * position of a chunk once its sequence number is durable: after a crash nothing before it is
 * lost (what follows may be read and delivered twice: at-least-once). */
uint64_t tel_engine_push_seq(void);
uint64_t tel_engine_durable_seq(struct tel_engine *e);

/* ---- config helpers for components: errors carry file:line:col and a hint ------------------ */

/* Refuses keys of map cfg that are not in allowed (NULL-terminated), with a did-you-mean. */
int tel_cfg_keys(const struct tel_engine *e, const struct core_node *cfg, const char *what,
                 const char *const *allowed, struct core_err *err);
/* String value of key (def when absent); CORE_E_INVAL when it is not a scalar. */
int tel_cfg_str(const struct tel_engine *e, const struct core_node *cfg, const char *key,
                const char *def, const char **out, struct core_err *err);
/* Integer (plain or with a unit: "64Mi", "30s" when as is TEL_CFG_BYTES/TEL_CFG_MS) in
 * [lo, hi]. */
enum tel_cfg_unit { TEL_CFG_PLAIN = 0, TEL_CFG_BYTES, TEL_CFG_MS };
int tel_cfg_int(const struct tel_engine *e, const struct core_node *cfg, const char *key,
                enum tel_cfg_unit unit, int64_t lo, int64_t hi, int64_t def, int64_t *out,
                struct core_err *err);
int tel_cfg_bool(const struct tel_engine *e, const struct core_node *cfg, const char *key,
                 bool def, bool *out, struct core_err *err);
/* An error at node n: "NAME:LINE:COL: message". */
int tel_cfg_error(const struct tel_engine *e, const struct core_node *n, struct core_err *err,
                  const char *fmt, ...) CORE_PRINTF(4, 5);

/* Severity name for a number ("INFO"), and the number for a name (case-insensitive: trace,
 * debug, info, warn/warning, error/err, fatal/critical; 0 when unknown). */
const char *tel_severity_name(int severity);
int tel_severity_parse(const char *s, size_t len);

/* ---- log store: the embedded store behind `pave logs` (logstore.c) ------------------------ */

/* DIR (normally DATA/telemetry/store, tel_store_dir()) holds append-only segments of standard
 * JSON lines, NNNNNNNNNNNNNNNNNNNN.log, started every hour (of the store's clock) or at
 * 64 MiB, each with a small index NNNN.idx (bytes covered, min/max event time, the services
 * and the offset of each one's first line) so a query for one service and a time range skips
 * segments. One writer (struct tel_store: the "store" sink) appends; any number of readers
 * (tel_store_query, other processes too) read at the same time without locks: a reader stops
 * at the last complete line and a segment removed by retention under it is skipped. Each open
 * starts a new segment, so a line torn by a crash is never appended to. */

struct tel_store;

struct tel_store_options {
    int64_t retention_age_ns;   /* segments last written longer ago are removed; 0: 7 days */
    int64_t retention_bytes;    /* oldest segments go while the total is larger; 0: 1 GiB */
    int64_t segment_bytes;      /* a new segment past this size; 0: 64 MiB */
    int64_t segment_ns;         /* and after this much time; 0: one hour */
    /* The clock for rotation, retention and index write times (tests fake it); NULL:
     * CLOCK_REALTIME. */
    int64_t (*now_ns)(void *arg);
    void *now_arg;
};

/* DATA/telemetry/store for a data dir, into out. */
void tel_store_dir(const char *data_dir, char *out, size_t outsz);

/* Opens (creating) the store in dir for appending. opt may be NULL (defaults). returns: owned
 * by caller (tel_store_close); NULL with err (CORE_E_IO). */
struct tel_store *tel_store_open(const char *dir, const struct tel_store_options *opt,
                                 struct core_err *err);
/* Writes the index of the current segment and closes. NULL does nothing. */
void tel_store_close(struct tel_store *s);
/* Appends the events' lines (one write per segment; events without a line are skipped), then
 * enforces retention when the last check is 10 s old (store clock). Thread safe. returns: 0 or
 * CORE_E_IO (nothing or a part was written: the caller may retry; readers never see a torn
 * line as a record). */
int tel_store_append(struct tel_store *s, const struct tel_events *evs, struct core_err *err);
/* Enforces retention now (tests; append does it every 10 s). returns: segments removed. */
int tel_store_retention(struct tel_store *s);

/* A position in the store: just after a line. {0, 0} is the beginning. */
struct tel_store_cursor {
    uint64_t seg;
    uint64_t off;
};

struct tel_store_stats {
    size_t segments;         /* segments looked at */
    size_t segments_skipped; /* ... of them skipped by their index */
    size_t lines;            /* lines read and parsed */
};

struct tel_store_query {
    const char *service;  /* resource service.name; NULL or "": any */
    const char *env;      /* resource deployment.environment; NULL or "": any */
    int64_t since_ns;     /* event time >= since (0: no bound) */
    int64_t until_ns;     /* event time < until (0: no bound) */
    int min_severity;     /* severity_number >= this (0: any) */
    const char *grep;     /* plain, case-sensitive substring of the body or the raw line */
    size_t limit;         /* the newest N matches, still returned oldest first; 0: all */
    bool has_after;       /* only lines after the cursor `after` (follow) */
    struct tel_store_cursor after;
    struct tel_store_cursor *end;   /* out (may be NULL): after the last complete line read,
                                     * where the next follow query starts */
    struct tel_store_stats *stats;  /* out (may be NULL) */
};

struct tel_store_row {
    const char *line; /* the standard JSON line, without newline; valid during the callback */
    size_t len;
    int64_t time_ns;
    int severity;
    struct tel_store_cursor at; /* just after this line */
};

typedef int (*tel_store_row_fn)(void *arg, const struct tel_store_row *row);

/* Calls fn for every matching line of the store in dir, oldest first (segment order, then
 * write order: event times may be out of order across sources). A nonzero return of fn stops
 * the query and is returned. A missing dir is an empty store. returns: 0, fn's value, or
 * CORE_E_IO / CORE_E_NOMEM with err. Thread safe; needs no open store. */
int tel_store_query(const char *dir, const struct tel_store_query *q, tel_store_row_fn fn,
                    void *arg, struct core_err *err);

/* Parses a time for queries: RFC 3339 ("2026-01-02T15:04:05.123Z", "+02:00" offsets) or a
 * duration back from now_ns ("15m", "2h", "7d", "30s"). returns: 0 or CORE_E_INVAL. */
int tel_store_parse_time(const char *s, int64_t now_ns, int64_t *out_ns);

#endif
