/* telemetry internals shared by the engine (engine.c), the disk buffer (diskbuf.c), the
 * component files and their unit tests. Components see only telemetry.h plus this. */
#ifndef PAVE_TELEMETRY_INT_H
#define PAVE_TELEMETRY_INT_H

#include <stdint.h>

#include "telemetry/telemetry.h"

/* ---- the disk buffer: segment files of framed events with a read checkpoint ------------- */

struct tel_diskbuf;

/* Opens (creating) DIR as a disk buffer. A new writer segment is started on every open, so a
 * frame torn by a crash is never appended to. max_bytes bounds the unread data (0: 1 GiB). */
struct tel_diskbuf *tel_diskbuf_open(const char *dir, int64_t max_bytes, struct core_err *err);
void tel_diskbuf_close(struct tel_diskbuf *db);
/* Appends events. returns: 0, CORE_E_TOO_BIG when the buffer is full (nothing written), or
 * CORE_E_IO. */
int tel_diskbuf_append(struct tel_diskbuf *db, const struct tel_events *evs,
                       struct core_err *err);
/* Reads up to max_events / max_bytes unread events after the checkpoint into out (strings
 * point into *buf, owned by the caller, core_free). returns: 0 (out->n may be 0). */
int tel_diskbuf_read(struct tel_diskbuf *db, size_t max_events, size_t max_bytes,
                     struct tel_event **ev, size_t *n, char **buf, struct core_err *err);
/* Moves the checkpoint past the events the last read returned (durably); removes segments
 * that are fully read. */
int tel_diskbuf_commit(struct tel_diskbuf *db, struct core_err *err);
/* Bytes written and not yet committed. */
int64_t tel_diskbuf_pending(struct tel_diskbuf *db);

/* ---- components (one file each; listed in registry.c) ----------------------------------- */

extern const struct tel_source_ops tel_source_file;     /* src_file.c */
extern const struct tel_source_ops tel_source_replicas; /* src_file.c */
extern const struct tel_source_ops tel_source_syslog;   /* src_syslog.c */
extern const struct tel_source_ops tel_source_platform; /* src_platform.c */
extern const struct tel_source_ops tel_source_http;     /* src_http.c */
extern const struct tel_source_ops tel_source_audit;    /* src_audit.c */
extern const struct tel_sink_ops tel_sink_file;
extern const struct tel_sink_ops tel_sink_stdout;
extern const struct tel_sink_ops tel_sink_store;         /* sink_store.c */
extern const struct tel_sink_ops tel_sink_loki;          /* sink_http.c */
extern const struct tel_sink_ops tel_sink_http;
extern const struct tel_sink_ops tel_sink_elasticsearch;
extern const struct tel_sink_ops tel_sink_security;      /* sink_security.c */
extern const struct tel_transform_ops tel_transform_enrich;
extern const struct tel_transform_ops tel_transform_redact;
extern const struct tel_transform_ops tel_transform_sample;
extern const struct tel_transform_ops tel_transform_sigma; /* transform_sigma.c */
extern const struct tel_transform_ops tel_transform_detect; /* transform_detect.c */

/* The findings in one standard JSON record tagged by the sigma transform (security_findings.c):
 * fn is called once per matching rule (at most 32) with a finding whose strings live for the
 * call: rule id, title and level from security.rule_ids / rule_titles / rule_levels (level
 * "medium" when absent or unknown), summary "TITLE: BODY" cut on UTF-8 boundaries, the record
 * as the event, service and team as given (may be NULL). A record without rule ids (or that is
 * not JSON) has none. returns: 0, CORE_E_NOMEM, or the first non-zero value of fn. */
struct security_finding;
typedef int (*tel_finding_fn)(void *arg, const struct security_finding *f);
int tel_security_findings(const char *line, size_t len, const char *service, const char *team,
                          tel_finding_fn fn, void *arg);

/* Looks a component up by type. NULL when unknown. */
const struct tel_source_ops *tel_source_find(const char *type);
const struct tel_sink_ops *tel_sink_find(const char *type);
const struct tel_transform_ops *tel_transform_find(const char *type);

#endif
