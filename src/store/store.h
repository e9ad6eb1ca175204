/*
 * store: the platform's state. One interface, several backends behind `struct store_ops`
 * (SQLite now in store_sqlite.c; PostgreSQL is meant to follow as store_pg.c).
 *
 * Callers speak a portable subset of SQL: `?` placeholders, TEXT and INTEGER values, standard
 * INSERT/UPDATE/DELETE/SELECT with LIMIT/OFFSET, no backend-specific functions or upserts.
 * Everything backend-specific (DDL, pragmas, migrations, the append-only guard on the audit
 * table) lives in the backend file. Timestamps are stored as RFC 3339 UTC text.
 *
 * Lifecycle: store_open() runs pending migrations and refuses a schema newer than this binary
 * knows; store_close() frees everything. Threading: a `struct store` may be shared by threads.
 * Writes and transactions go through one writer connection behind the store's (recursive) lock;
 * store_txn_begin() keeps it until commit or rollback, so a transaction is exclusive to the thread
 * that began it and that thread's queries see its own uncommitted work. Queries from any other
 * thread, or outside a transaction, run on a small pool of read-only connections and see the
 * last committed state, so reads do not queue behind each other or behind writes.
 *
 * The audit log is append-only: store_audit_append() records who did what to which object,
 * when, with SHA-256 digests of the object before and after. Nothing updates or deletes rows.
 */
#ifndef PAVE_STORE_H
#define PAVE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct store;

enum store_type {
    STORE_NULL = 0,
    STORE_INT,
    STORE_TEXT,
};

struct store_value {
    enum store_type type;
    int64_t i;
    const char *s; /* borrowed */
};

#define STORE_V_NULL ((struct store_value){STORE_NULL, 0, NULL})
#define STORE_V_INT(v) ((struct store_value){STORE_INT, (int64_t)(v), NULL})
#define STORE_V_TEXT(v) store_v_text(v)

/* A text value, or NULL when s is NULL. */
static inline struct store_value store_v_text(const char *s)
{
    struct store_value v = {s ? STORE_TEXT : STORE_NULL, 0, s};
    return v;
}

struct store_row {
    size_t ncols;
    const char *const *names;       /* column names */
    const struct store_value *vals; /* valid only during the callback */
};

/* Called once per result row; return non-zero to stop (that value is returned by the query). */
typedef int (*store_row_fn)(void *arg, const struct store_row *row);

struct store_ops {
    const char *name;
    int (*open)(void **ctx, const char *target, struct core_err *err);
    /* Opens an extra read-only connection for concurrent queries (NULL if unsupported). Called
     * only after open() has migrated the schema. */
    int (*open_reader)(void **ctx, const char *target, struct core_err *err);
    void (*close)(void *ctx);
    int (*exec)(void *ctx, const char *sql, const struct store_value *params, size_t nparams,
                int64_t *changes, struct core_err *err);
    int (*query)(void *ctx, const char *sql, const struct store_value *params, size_t nparams,
                 store_row_fn fn, void *arg, struct core_err *err);
    int (*begin)(void *ctx, struct core_err *err);
    int (*commit)(void *ctx, struct core_err *err);
    int (*rollback)(void *ctx);
    int (*schema_version)(void *ctx);
};

extern const struct store_ops store_sqlite_ops;

/* Highest schema version this binary knows. */
int store_schema_latest(void);

/* Opens a store. `url` is "sqlite:PATH" or a plain path (SQLite). Creates the database if
 * absent, applies migrations. returns: 0 and *out (free with store_close()), or an error:
 * CORE_E_UNSUPPORTED for an unknown scheme or a schema newer than this binary. */
int store_open(struct store **out, const char *url, struct core_err *err);
void store_close(struct store *st);
const char *store_backend_name(const struct store *st);
int store_schema_version(struct store *st);

/* Runs a statement. *changes (may be NULL) receives the number of rows changed.
 * A unique or foreign-key violation returns CORE_E_CONFLICT. */
int store_exec(struct store *st, const char *sql, const struct store_value *params,
               size_t nparams, int64_t *changes, struct core_err *err);
/* Runs a query and calls fn for each row. */
int store_query(struct store *st, const char *sql, const struct store_value *params,
                size_t nparams, store_row_fn fn, void *arg, struct core_err *err);
/* First column of the first row as an integer (0 if no row). */
int store_query_int(struct store *st, const char *sql, const struct store_value *params,
                    size_t nparams, int64_t *out, struct core_err *err);

int store_txn_begin(struct store *st, struct core_err *err);
int store_txn_commit(struct store *st, struct core_err *err);
void store_txn_rollback(struct store *st);

/* Column value by name in a row, or NULL. Text is borrowed for the callback's duration. */
const struct store_value *store_row_get(const struct store_row *row, const char *name);
const char *store_row_text(const struct store_row *row, const char *name);
int64_t store_row_int(const struct store_row *row, const char *name);

/* ---- audit log ---- */

struct store_audit_event {
    int64_t id;
    const char *ts;      /* RFC 3339; filled in by append when NULL */
    const char *actor;   /* user name, "system" for the platform itself */
    const char *action;  /* "service.apply", "team.create", "token.revoke" ... */
    const char *kind;    /* "service", "team", "user", "token", "environment" */
    const char *object;  /* object name */
    const char *before;  /* SHA-256 hex of the object before, NULL if it did not exist */
    const char *after;   /* SHA-256 hex after, NULL if deleted */
    const char *detail;  /* short free text (never secrets) */
};

/* Appends one event. Call inside the mutation's transaction so both land or neither. */
int store_audit_append(struct store *st, const struct store_audit_event *ev, struct core_err *err);

struct store_audit_filter {
    const char *kind;   /* NULL = any */
    const char *object; /* NULL = any */
    const char *actor;  /* NULL = any */
    int64_t before_id;  /* 0 = from newest; else only ids < before_id (pagination cursor) */
    int64_t after_id;   /* 0 = no lower bound; else only ids > after_id, listed OLDEST first
                         * (following the log: the telemetry `audit` source); -1: every id,
                         * oldest first */
    int limit;          /* 1..1000 */
};
typedef int (*store_audit_fn)(void *arg, const struct store_audit_event *ev);
/* Lists events newest first (oldest first when f->after_id is not 0). */
int store_audit_list(struct store *st, const struct store_audit_filter *f, store_audit_fn fn,
                     void *arg, struct core_err *err);

#endif
