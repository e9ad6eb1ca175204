/* Backend-neutral store front: locking, dispatch, row helpers and the audit log. */
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define STORE_READERS 4

struct store {
    const struct store_ops *ops;
    void *ctx; /* the writer connection */
    pthread_mutex_t lock;
    int depth; /* transaction nesting; > 1 uses savepoints. Guarded by lock. */
    /* Read-only connections for queries outside this thread's transaction. */
    void *readers[STORE_READERS];
    bool reader_busy[STORE_READERS];
    int nreaders;
    pthread_mutex_t rlock;
    pthread_cond_t rcond;
};

/* The store whose transaction this thread holds, if any: its queries must use the writer so
 * they see their own uncommitted changes. */
static _Thread_local const struct store *txn_store;

int store_open(struct store **out, const char *url, struct core_err *err)
{
    *out = NULL;
    const struct store_ops *ops = NULL;
    const char *target = url;
    if (strncmp(url, "sqlite:", 7) == 0) {
        ops = &store_sqlite_ops;
        target = url + 7;
    } else if (strstr(url, "://") == NULL) {
        ops = &store_sqlite_ops;
    } else {
        return core_err_set(err, CORE_E_UNSUPPORTED,
                            "unsupported store '%s' (use sqlite:PATH or a file path)", url);
    }
    struct store *st = core_calloc(1, sizeof(*st));
    if (!st)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&st->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    st->ops = ops;
    pthread_mutex_init(&st->rlock, NULL);
    pthread_cond_init(&st->rcond, NULL);
    int rc = ops->open(&st->ctx, target, err);
    if (rc) {
        store_close(st);
        return rc;
    }
    for (int i = 0; ops->open_reader && i < STORE_READERS; i++) {
        if ((rc = ops->open_reader(&st->readers[i], target, err))) {
            store_close(st);
            return rc;
        }
        st->nreaders++;
    }
    *out = st;
    return 0;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->nreaders; i++)
        st->ops->close(st->readers[i]);
    if (st->ctx)
        st->ops->close(st->ctx);
    pthread_cond_destroy(&st->rcond);
    pthread_mutex_destroy(&st->rlock);
    pthread_mutex_destroy(&st->lock);
    core_free(st);
}

const char *store_backend_name(const struct store *st)
{
    return st->ops->name;
}

int store_schema_version(struct store *st)
{
    pthread_mutex_lock(&st->lock);
    int v = st->ops->schema_version(st->ctx);
    pthread_mutex_unlock(&st->lock);
    return v;
}

int store_exec(struct store *st, const char *sql, const struct store_value *params,
               size_t nparams, int64_t *changes, struct core_err *err)
{
    pthread_mutex_lock(&st->lock);
    int rc = st->ops->exec(st->ctx, sql, params, nparams, changes, err);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int store_query(struct store *st, const char *sql, const struct store_value *params,
                size_t nparams, store_row_fn fn, void *arg, struct core_err *err)
{
    if (st->nreaders && txn_store != st) {
        pthread_mutex_lock(&st->rlock);
        int slot = -1;
        while (slot < 0) {
            for (int i = 0; i < st->nreaders && slot < 0; i++)
                if (!st->reader_busy[i])
                    slot = i;
            if (slot < 0)
                pthread_cond_wait(&st->rcond, &st->rlock);
        }
        st->reader_busy[slot] = true;
        pthread_mutex_unlock(&st->rlock);
        int rc = st->ops->query(st->readers[slot], sql, params, nparams, fn, arg, err);
        pthread_mutex_lock(&st->rlock);
        st->reader_busy[slot] = false;
        pthread_cond_signal(&st->rcond);
        pthread_mutex_unlock(&st->rlock);
        return rc;
    }
    pthread_mutex_lock(&st->lock);
    int rc = st->ops->query(st->ctx, sql, params, nparams, fn, arg, err);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static int first_int(void *arg, const struct store_row *row)
{
    int64_t *out = arg;
    if (row->ncols > 0 && row->vals[0].type == STORE_INT)
        *out = row->vals[0].i;
    return 1; /* stop after the first row */
}

int store_query_int(struct store *st, const char *sql, const struct store_value *params,
                    size_t nparams, int64_t *out, struct core_err *err)
{
    *out = 0;
    int rc = store_query(st, sql, params, nparams, first_int, out, err);
    return rc == 1 ? 0 : rc;
}

/*
 * Transactions nest: the outermost level is a real transaction, inner levels are savepoints, so
 * a function that needs atomicity can begin one whether or not its caller already has.
 */
int store_txn_begin(struct store *st, struct core_err *err)
{
    pthread_mutex_lock(&st->lock);
    int rc;
    if (st->depth == 0) {
        rc = st->ops->begin(st->ctx, err);
    } else {
        char sql[64];
        snprintf(sql, sizeof(sql), "SAVEPOINT pave_sp%d", st->depth);
        rc = st->ops->exec(st->ctx, sql, NULL, 0, NULL, err);
    }
    if (rc) {
        pthread_mutex_unlock(&st->lock);
        return rc;
    }
    st->depth++;
    txn_store = st;
    return 0;
}

int store_txn_commit(struct store *st, struct core_err *err)
{
    int rc;
    st->depth--;
    if (st->depth == 0) {
        txn_store = NULL;
        rc = st->ops->commit(st->ctx, err);
        if (rc)
            st->ops->rollback(st->ctx);
    } else {
        char sql[64];
        snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT pave_sp%d", st->depth);
        rc = st->ops->exec(st->ctx, sql, NULL, 0, NULL, err);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void store_txn_rollback(struct store *st)
{
    st->depth--;
    if (st->depth == 0) {
        txn_store = NULL;
        st->ops->rollback(st->ctx);
    } else {
        char sql[96];
        snprintf(sql, sizeof(sql), "ROLLBACK TO SAVEPOINT pave_sp%d", st->depth);
        st->ops->exec(st->ctx, sql, NULL, 0, NULL, NULL);
        snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT pave_sp%d", st->depth);
        st->ops->exec(st->ctx, sql, NULL, 0, NULL, NULL);
    }
    pthread_mutex_unlock(&st->lock);
}

const struct store_value *store_row_get(const struct store_row *row, const char *name)
{
    for (size_t i = 0; i < row->ncols; i++)
        if (strcmp(row->names[i], name) == 0)
            return &row->vals[i];
    return NULL;
}

const char *store_row_text(const struct store_row *row, const char *name)
{
    const struct store_value *v = store_row_get(row, name);
    return v && v->type == STORE_TEXT ? v->s : NULL;
}

int64_t store_row_int(const struct store_row *row, const char *name)
{
    const struct store_value *v = store_row_get(row, name);
    return v && v->type == STORE_INT ? v->i : 0;
}

/* ---- audit ---- */

int store_audit_append(struct store *st, const struct store_audit_event *ev, struct core_err *err)
{
    char ts[40];
    if (ev->ts)
        snprintf(ts, sizeof(ts), "%s", ev->ts);
    else
        core_time_format(core_now_ms(), ts, sizeof(ts));
    struct store_value p[] = {
        STORE_V_TEXT(ts),         STORE_V_TEXT(ev->actor),  STORE_V_TEXT(ev->action),
        STORE_V_TEXT(ev->kind),   STORE_V_TEXT(ev->object), STORE_V_TEXT(ev->before),
        STORE_V_TEXT(ev->after),  STORE_V_TEXT(ev->detail),
    };
    return store_exec(st,
                      "INSERT INTO audit (ts, actor, action, kind, object, before_digest, "
                      "after_digest, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      p, sizeof(p) / sizeof(p[0]), NULL, err);
}

struct audit_list_ctx {
    store_audit_fn fn;
    void *arg;
};

static int audit_row(void *arg, const struct store_row *row)
{
    struct audit_list_ctx *c = arg;
    struct store_audit_event ev = {
        .id = store_row_int(row, "id"),
        .ts = store_row_text(row, "ts"),
        .actor = store_row_text(row, "actor"),
        .action = store_row_text(row, "action"),
        .kind = store_row_text(row, "kind"),
        .object = store_row_text(row, "object"),
        .before = store_row_text(row, "before_digest"),
        .after = store_row_text(row, "after_digest"),
        .detail = store_row_text(row, "detail"),
    };
    return c->fn(c->arg, &ev);
}

int store_audit_list(struct store *st, const struct store_audit_filter *f, store_audit_fn fn,
                     void *arg, struct core_err *err)
{
    struct store_value p[] = {
        STORE_V_TEXT(f->kind),   STORE_V_TEXT(f->kind),  STORE_V_TEXT(f->object),
        STORE_V_TEXT(f->object), STORE_V_TEXT(f->actor), STORE_V_TEXT(f->actor),
        STORE_V_INT(f->before_id), STORE_V_INT(f->before_id),
        STORE_V_INT(f->after_id),  STORE_V_INT(f->after_id),
        STORE_V_INT(f->limit > 0 && f->limit <= 1000 ? f->limit : 50),
    };
    struct audit_list_ctx c = {fn, arg};
    /* two constant texts rather than a bound ORDER BY: the backends cannot bind a direction */
    const char *sql = f->after_id != 0
                          ? "SELECT id, ts, actor, action, kind, object, before_digest, "
                            "after_digest, detail FROM audit WHERE (? IS NULL OR kind = ?) AND "
                            "(? IS NULL OR object = ?) AND (? IS NULL OR actor = ?) AND (? = 0 OR "
                            "id < ?) AND (? = 0 OR id > ?) ORDER BY id ASC LIMIT ?"
                          : "SELECT id, ts, actor, action, kind, object, before_digest, "
                            "after_digest, detail FROM audit WHERE (? IS NULL OR kind = ?) AND "
                            "(? IS NULL OR object = ?) AND (? IS NULL OR actor = ?) AND (? = 0 OR "
                            "id < ?) AND (? = 0 OR id > ?) ORDER BY id DESC LIMIT ?";
    return store_query(st, sql, p, sizeof(p) / sizeof(p[0]), audit_row, &c, err);
}
