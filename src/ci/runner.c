/* Runs: the queue, the workers, steps in the sandbox, logs with secrets masked, caches and the
 * artifact. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact/artifact.h"
#include "catalog/catalog.h"
#include "ci/ci.h"
#include "sandbox/sandbox.h"
#include "schema/schema.h"
#include "secret/secret.h"
#include "store/store.h"

#define RUNNER_MAX_WORKERS 8
#define LOG_LINE_MAX 8192

struct worker {
    struct ci_runner *r;
    pthread_t thread;
    int64_t run_id;          /* run in progress, 0 when idle; guarded by r->lock */
    volatile int cancel;     /* set to cancel the run in progress */
};

struct ci_runner {
    struct ci_runner_config cfg;
    char root[1024]; /* DATA/ci */
    struct store *st;
    struct catalog *cat;
    struct secret_box *box;
    struct sandbox_caps caps;
    char isolation[128];
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    int nworkers;
    struct worker workers[RUNNER_MAX_WORKERS];
};

static void now_text(char out[40])
{
    core_time_format(core_now_ms(), out, 40);
}

bool ci_state_is_final(const char *state)
{
    return state && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
                     strcmp(state, "cancelled") == 0);
}

void ci_run_log_path(const struct ci_runner *r, int64_t id, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/runs/%lld.log", r->root, (long long)id);
}

const char *ci_runner_isolation(const struct ci_runner *r)
{
    return r->isolation;
}

/* ---- reading runs ---- */

static void run_view(struct ci_run *run, const struct store_row *row)
{
    run->id = store_row_int(row, "id");
    run->service = store_row_text(row, "service");
    run->team = store_row_text(row, "team");
    run->state = store_row_text(row, "state");
    run->trigger = store_row_text(row, "trigger");
    run->branch = store_row_text(row, "branch");
    run->commit = store_row_text(row, "commit_sha");
    run->actor = store_row_text(row, "actor");
    run->queued_at = store_row_text(row, "queued_at");
    run->started_at = store_row_text(row, "started_at");
    run->finished_at = store_row_text(row, "finished_at");
    run->error = store_row_text(row, "error");
    run->artifact_digest = store_row_text(row, "artifact_digest");
    run->artifact_size = store_row_int(row, "artifact_size");
    run->artifact_path = store_row_text(row, "artifact_path");
    run->retry_of = store_row_int(row, "retry_of");
}

struct run_cb {
    ci_run_fn fn;
    void *arg;
    bool found;
};

static int run_row(void *arg, const struct store_row *row)
{
    struct run_cb *c = arg;
    struct ci_run run;
    run_view(&run, row);
    c->found = true;
    return c->fn(c->arg, &run);
}

#define RUN_COLS                                                                                   \
    "id, service, team, state, trigger, branch, commit_sha, actor, queued_at, started_at, "       \
    "finished_at, error, artifact_digest, artifact_size, artifact_path, retry_of"

int ci_run_list(struct store *st, const char *service, int64_t before_id, int limit, ci_run_fn fn,
                void *arg, struct core_err *err)
{
    struct run_cb c = {fn, arg, false};
    char sql[512];
    struct store_value p[3];
    size_t np = 0;
    char where[128] = "";
    if (service) {
        strcat(where, " WHERE service = ?");
        p[np++] = STORE_V_TEXT(service);
    }
    if (before_id > 0) {
        strcat(where, np ? " AND id < ?" : " WHERE id < ?");
        p[np++] = STORE_V_INT(before_id);
    }
    p[np++] = STORE_V_INT(limit > 0 && limit <= 500 ? limit : 50);
    snprintf(sql, sizeof(sql), "SELECT " RUN_COLS " FROM runs%s ORDER BY id DESC LIMIT ?", where);
    return store_query(st, sql, p, np, run_row, &c, err);
}

int ci_run_get(struct store *st, int64_t id, ci_run_fn fn, void *arg, struct core_err *err)
{
    struct run_cb c = {fn, arg, false};
    struct store_value p[] = {STORE_V_INT(id)};
    int rc = store_query(st, "SELECT " RUN_COLS " FROM runs WHERE id = ?", p, 1, run_row, &c, err);
    if (!rc && !c.found)
        rc = core_err_set(err, CORE_E_NOTFOUND, "run %lld not found", (long long)id);
    return rc;
}

struct step_cb {
    ci_step_fn fn;
    void *arg;
};

static int step_row(void *arg, const struct store_row *row)
{
    struct step_cb *c = arg;
    struct ci_step_info s = {
        .idx = store_row_int(row, "idx"),
        .name = store_row_text(row, "name"),
        .state = store_row_text(row, "state"),
        .exit_code = store_row_int(row, "exit_code"),
        .duration_ms = store_row_int(row, "duration_ms"),
        .detail = store_row_text(row, "detail"),
    };
    return c->fn(c->arg, &s);
}

int ci_run_steps(struct store *st, int64_t id, ci_step_fn fn, void *arg, struct core_err *err)
{
    struct step_cb c = {fn, arg};
    struct store_value p[] = {STORE_V_INT(id)};
    return store_query(st,
                       "SELECT idx, name, state, exit_code, duration_ms, detail FROM run_steps "
                       "WHERE run_id = ? ORDER BY idx",
                       p, 1, step_row, &c, err);
}

/* ---- submitting ---- */

int ci_run_submit(struct ci_runner *r, const struct ci_submit *s, int64_t *id,
                  struct core_err *err)
{
    struct catalog_service svc;
    int rc = catalog_service_get(r->cat, s->service, &svc, err);
    if (rc)
        return rc;
    char now[40], source[1200];
    now_text(now);
    snprintf(source, sizeof(source), "%s", s->source);
    rc = store_txn_begin(r->st, err);
    if (rc)
        goto out;
    struct store_value p[] = {
        STORE_V_TEXT(s->service), STORE_V_TEXT(svc.team),   STORE_V_TEXT(s->trigger),
        STORE_V_TEXT(s->branch),  STORE_V_TEXT(s->commit),  STORE_V_TEXT(s->actor),
        STORE_V_TEXT("pending"),  STORE_V_TEXT(s->changed), s->retry_of ? STORE_V_INT(s->retry_of)
                                                                        : STORE_V_NULL,
        STORE_V_TEXT(now),
    };
    rc = store_exec(r->st,
                    "INSERT INTO runs (service, team, state, trigger, branch, commit_sha, actor, "
                    "source, changed, retry_of, queued_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, "
                    "?, ?, ?)",
                    p, 10, NULL, err);
    if (!rc)
        rc = store_query_int(r->st, "SELECT MAX(id) FROM runs", NULL, 0, id, err);
    /* A tar source is moved next to the run so the run owns it. */
    if (!rc && strncmp(source, "tar:", 4) == 0) {
        char dest[1100];
        snprintf(dest, sizeof(dest), "%s/sources/%lld.tar", r->root, (long long)*id);
        if (rename(source + 4, dest) != 0)
            rc = core_err_set(err, CORE_E_IO, "cannot keep the uploaded source: %s",
                              strerror(errno));
        snprintf(source, sizeof(source), "tar:%s", dest);
    }
    if (!rc) {
        struct store_value u[] = {STORE_V_TEXT(source), STORE_V_INT(*id)};
        rc = store_exec(r->st, "UPDATE runs SET source = ? WHERE id = ?", u, 2, NULL, err);
    }
    if (!rc) {
        char obj[32], detail[200];
        snprintf(obj, sizeof(obj), "%lld", (long long)*id);
        snprintf(detail, sizeof(detail), "%s %s%s%s", s->service, s->trigger,
                 s->branch ? " " : "", s->branch ? s->branch : "");
        struct store_audit_event ev = {.actor = s->actor, .action = "run.queue", .kind = "run",
                                       .object = obj, .detail = detail};
        rc = store_audit_append(r->st, &ev, err);
    }
    if (rc)
        store_txn_rollback(r->st);
    else
        rc = store_txn_commit(r->st, err);
    if (!rc) {
        pthread_mutex_lock(&r->lock);
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        log_info("ci", "run queued", LOG_INT("run", *id), LOG_STR("service", s->service),
                 LOG_STR("trigger", s->trigger));
    }
out:
    catalog_service_release(&svc);
    return rc;
}

struct owner {
    char service[128];
    char team[128];
    char state[32];
    char source[1200];
    char branch[256];
    char commit[64];
    bool found;
};

static int owner_row(void *arg, const struct ci_run *run)
{
    struct owner *o = arg;
    snprintf(o->service, sizeof(o->service), "%s", run->service);
    snprintf(o->team, sizeof(o->team), "%s", run->team);
    snprintf(o->state, sizeof(o->state), "%s", run->state);
    snprintf(o->branch, sizeof(o->branch), "%s", run->branch ? run->branch : "");
    snprintf(o->commit, sizeof(o->commit), "%s", run->commit ? run->commit : "");
    o->found = true;
    return 0;
}

static int run_rights(struct ci_runner *r, const struct catalog_actor *actor, int64_t id,
                      struct owner *o, struct core_err *err)
{
    memset(o, 0, sizeof(*o));
    int rc = ci_run_get(r->st, id, owner_row, o, err);
    if (rc)
        return rc;
    if (!actor->is_admin && !catalog_actor_in_team(actor, o->team))
        return core_err_set(err, CORE_E_PERM,
                            "run %lld belongs to team '%s'; user '%s' cannot change it",
                            (long long)id, o->team, actor->user);
    return 0;
}

int ci_run_cancel(struct ci_runner *r, const struct catalog_actor *actor, int64_t id,
                  struct core_err *err)
{
    struct owner o;
    int rc = run_rights(r, actor, id, &o, err);
    if (rc)
        return rc;
    if (ci_state_is_final(o.state))
        return core_err_set(err, CORE_E_CONFLICT, "run %lld already %s", (long long)id, o.state);
    char now[40];
    now_text(now);
    int64_t n = 0;
    struct store_value p[] = {STORE_V_TEXT(now), STORE_V_TEXT(actor->user), STORE_V_INT(id)};
    rc = store_exec(r->st,
                    "UPDATE runs SET state = 'cancelled', finished_at = ?, error = 'cancelled by ' "
                    "|| ? WHERE id = ? AND state = 'queued'",
                    p, 3, &n, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->nworkers; i++)
        if (r->workers[i].run_id == id)
            r->workers[i].cancel = 1;
    pthread_mutex_unlock(&r->lock);
    char obj[32];
    snprintf(obj, sizeof(obj), "%lld", (long long)id);
    struct store_audit_event ev = {.actor = actor->user, .action = "run.cancel", .kind = "run",
                                   .object = obj, .detail = o.service};
    return store_audit_append(r->st, &ev, err);
}

struct source_row {
    char source[1200];
    char changed[8192];
};

static int source_cb(void *arg, const struct store_row *row)
{
    struct source_row *s = arg;
    const char *src = store_row_text(row, "source");
    const char *ch = store_row_text(row, "changed");
    snprintf(s->source, sizeof(s->source), "%s", src ? src : "");
    snprintf(s->changed, sizeof(s->changed), "%s", ch ? ch : "");
    return 1;
}

int ci_run_retry(struct ci_runner *r, const struct catalog_actor *actor, int64_t id,
                 int64_t *new_id, struct core_err *err)
{
    struct owner o;
    int rc = run_rights(r, actor, id, &o, err);
    if (rc)
        return rc;
    if (!ci_state_is_final(o.state))
        return core_err_set(err, CORE_E_CONFLICT, "run %lld is still %s; cancel it first",
                            (long long)id, o.state);
    struct source_row s = {"", ""};
    struct store_value p[] = {STORE_V_INT(id)};
    rc = store_query(r->st, "SELECT source, changed FROM runs WHERE id = ?", p, 1, source_cb, &s,
                     err);
    if (rc < 0)
        return rc;
    char src[1300];
    if (strncmp(s.source, "tar:", 4) == 0) {
        /* The original upload stays with the original run; the retry gets a copy. */
        char copy[1200];
        snprintf(copy, sizeof(copy), "%s/sources/retry-%lld-%lld.tar", r->root, (long long)id,
                 (long long)core_now_ms());
        char *data = NULL;
        size_t len = 0;
        rc = core_file_read(s.source + 4, (size_t)4 << 30, &data, &len, err);
        if (!rc)
            rc = core_file_write_atomic(copy, data, len, 0600, err);
        core_free(data);
        if (rc)
            return core_err_set(err, rc, "the source of run %lld is gone; push or build again",
                                (long long)id);
        snprintf(src, sizeof(src), "tar:%s", copy);
    } else {
        snprintf(src, sizeof(src), "%s", s.source);
    }
    struct ci_submit sub = {
        .service = o.service,
        .actor = actor->user,
        .trigger = "retry",
        .branch = o.branch[0] ? o.branch : NULL,
        .commit = o.commit[0] ? o.commit : NULL,
        .source = src,
        .changed = s.changed[0] ? s.changed : NULL,
        .retry_of = id,
    };
    return ci_run_submit(r, &sub, new_id, err);
}

/* ---- executing ---- */

struct exec {
    struct ci_runner *r;
    struct worker *w;
    int64_t id;
    char service[128];
    char team[128];
    char branch[256];
    char commit[64];
    char source[1200];
    char changed[8192];
    char workspace[1100];
    int log_fd;
    char **masks; /* secret values to hide in logs */
    size_t nmasks;
};

static void logf_(struct exec *x, const char *fmt, ...) CORE_PRINTF(2, 3);
static void logf_(struct exec *x, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    if (write(x->log_fd, line, (size_t)n) < 0)
        return;
}

/* Copies pipe output to the log, line by line, hiding secret values. */
struct pump {
    struct exec *x;
    int fd;
};

static void mask_line(struct exec *x, char *line, size_t *len)
{
    for (size_t m = 0; m < x->nmasks; m++) {
        const char *v = x->masks[m];
        size_t vl = strlen(v);
        if (vl < 3)
            continue; /* masking tiny values would mangle ordinary output */
        char *p;
        while ((p = memmem(line, *len, v, vl)) != NULL) {
            static const char stars[] = "***";
            memmove(p + 3, p + vl, *len - (size_t)(p - line) - vl);
            memcpy(p, stars, 3);
            *len = *len - vl + 3;
        }
    }
}

static void *pump_main(void *arg)
{
    struct pump *pm = arg;
    char *line = core_malloc(LOG_LINE_MAX + 1);
    size_t len = 0;
    char buf[4096];
    ssize_t n;
    if (!line)
        goto drain;
    while ((n = read(pm->fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            line[len++] = buf[i];
            if (buf[i] == '\n' || len == LOG_LINE_MAX) {
                mask_line(pm->x, line, &len);
                if (write(pm->x->log_fd, line, len) < 0)
                    break;
                len = 0;
            }
        }
    }
    if (len) {
        mask_line(pm->x, line, &len);
        line[len++] = '\n';
        if (write(pm->x->log_fd, line, len) < 0)
            len = 0;
    }
drain:
    while (!line && read(pm->fd, buf, sizeof(buf)) > 0)
        ;
    core_free(line);
    return NULL;
}

/* Runs argv in the sandbox with the workspace and extra mounts; output goes to the log (masked)
 * or, when capture is not NULL, into capture. */
static int sandboxed(struct exec *x, const char *name, const char *const *argv,
                     const char *const *env, const char *workdir, const struct sandbox_mount *extra,
                     size_t nextra, const struct sandbox_limits *limits, bool network,
                     struct core_buf *capture, struct sandbox_result *res, struct core_err *err)
{
    struct sandbox_mount mounts[8];
    size_t nm = 0;
    mounts[nm++] = (struct sandbox_mount){x->workspace, "/workspace", true};
    for (size_t i = 0; i < nextra && nm < 8; i++)
        mounts[nm++] = extra[i];
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return core_err_set(err, CORE_E_IO, "cannot create a pipe: %s", strerror(errno));
    struct pump pm = {x, pfd[0]};
    pthread_t t;
    bool pumping = false;
    if (!capture) {
        if (pthread_create(&t, NULL, pump_main, &pm) == 0)
            pumping = true;
    }
    static const char *const default_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp",
                                              NULL};
    char cname[128];
    snprintf(cname, sizeof(cname), "run-%lld-%s", (long long)x->id, name);
    struct sandbox_spec spec = {
        .argv = argv,
        .env = env ? env : default_env,
        .workdir = workdir ? workdir : "/workspace",
        .mounts = mounts,
        .nmounts = nm,
        .network = network,
        .allow_unisolated = x->r->cfg.allow_unisolated,
        .out_fd = pfd[1],
        .name = cname,
        .cancel = &x->w->cancel,
        .caps = &x->r->caps,
    };
    if (limits)
        spec.limits = *limits;
    else
        spec.limits = (struct sandbox_limits){1000, 512LL << 20, 256, 10 * 60 * 1000};
    int rc = sandbox_run(&spec, res, err);
    close(pfd[1]);
    if (pumping) {
        pthread_join(t, NULL);
    } else {
        char buf[4096];
        ssize_t n;
        while ((n = read(pfd[0], buf, sizeof(buf))) > 0)
            if (capture && core_buf_add(capture, buf, (size_t)n))
                capture = NULL; /* over the cap: keep draining, the caller sees truncation */
    }
    close(pfd[0]);
    return rc;
}

static int set_step(struct exec *x, int idx, const char *name, const char *state, int exit_code,
                    int64_t duration_ms, const char *detail)
{
    char now[40];
    now_text(now);
    struct store_value p[] = {STORE_V_INT(x->id), STORE_V_INT(idx),       STORE_V_TEXT(name),
                              STORE_V_TEXT(state), STORE_V_INT(exit_code), STORE_V_TEXT(now),
                              STORE_V_INT(duration_ms), STORE_V_TEXT(detail)};
    struct store_value d[] = {STORE_V_INT(x->id), STORE_V_INT(idx)};
    store_exec(x->r->st, "DELETE FROM run_steps WHERE run_id = ? AND idx = ?", d, 2, NULL, NULL);
    return store_exec(x->r->st,
                      "INSERT INTO run_steps (run_id, idx, name, state, exit_code, finished_at, "
                      "duration_ms, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      p, 8, NULL, NULL);
}

static bool step_failed(const struct sandbox_result *res, char *why, size_t whysz)
{
    if (res->cancelled)
        snprintf(why, whysz, "cancelled");
    else if (res->timed_out)
        snprintf(why, whysz, "timed out");
    else if (res->oom_killed)
        snprintf(why, whysz, "killed: out of memory (raise resources.memory)");
    else if (res->pids_limited && res->exit_code != 0)
        snprintf(why, whysz, "exit %d; the process limit was reached (resources.pids)",
                 res->exit_code);
    else if (res->exit_code != 0)
        snprintf(why, whysz, "exit %d", res->exit_code);
    else
        return false;
    return true;
}

static int checkout(struct exec *x, struct core_err *err)
{
    struct sandbox_result res;
    struct sandbox_mount m[1];
    const char *argv[8];
    char spec[1300];
    char repo[1200]; /* must outlive the mount that points at it */
    if (strncmp(x->source, "tar:", 4) == 0) {
        m[0] = (struct sandbox_mount){x->source + 4, "/input/source.tar", false};
        argv[0] = "tar";
        argv[1] = "-xf";
        argv[2] = "/input/source.tar";
        argv[3] = "-C";
        argv[4] = "/workspace";
        argv[5] = "--no-same-owner";
        argv[6] = NULL;
    } else if (strncmp(x->source, "git:", 4) == 0) {
        snprintf(repo, sizeof(repo), "%s", x->source + 4);
        char *at = strrchr(repo, '@');
        if (!at)
            return core_err_set(err, CORE_E_INVAL, "bad run source '%s'", x->source);
        *at = 0;
        m[0] = (struct sandbox_mount){repo, "/input/repo.git", false};
        snprintf(spec, sizeof(spec),
                 "git -c safe.directory='*' --git-dir=/input/repo.git archive --format=tar '%s' "
                 "| tar -x -C /workspace --no-same-owner",
                 at + 1);
        argv[0] = "/bin/sh";
        argv[1] = "-ec";
        argv[2] = spec;
        argv[3] = NULL;
    } else {
        return core_err_set(err, CORE_E_INVAL, "bad run source '%s'", x->source);
    }
    logf_(x, "==> checkout\n");
    struct sandbox_limits lim = {1000, 1LL << 30, 256, 10 * 60 * 1000};
    int rc = sandboxed(x, "checkout", argv, NULL, NULL, m, 1, &lim, false, NULL, &res, err);
    if (rc)
        return rc;
    char why[200];
    if (step_failed(&res, why, sizeof(why)))
        return core_err_set(err, res.cancelled ? CORE_E_CONFLICT : CORE_E_IO,
                            "checkout failed: %s", why);
    return 0;
}

/* Reads a workspace file through the sandbox (never follows a build's symlinks on the host). */
static int read_ws_file(struct exec *x, const char *rel, size_t max, struct core_buf *out,
                        struct core_err *err)
{
    char path[600];
    snprintf(path, sizeof(path), "/workspace/%s", rel);
    const char *argv[] = {"cat", "--", path, NULL};
    core_buf_init(out, max);
    struct sandbox_result res;
    struct sandbox_limits lim = {500, 64LL << 20, 16, 30 * 1000};
    int rc = sandboxed(x, "read", argv, NULL, NULL, NULL, 0, &lim, false, out, &res, err);
    if (!rc && res.exit_code != 0)
        rc = core_err_set(err, CORE_E_NOTFOUND, "no %s in the source", rel);
    return rc;
}

static void cache_dir(struct exec *x, const struct ci_pipeline *p, const struct ci_cache *c,
                      char *out, size_t outsz)
{
    /* The key: the cache name plus the SHA-256 of its key files, read inside the sandbox. */
    struct core_buf keys;
    core_buf_init(&keys, 1 << 20);
    core_buf_adds(&keys, c->name);
    for (size_t i = 0; i < c->nkey_files; i++) {
        struct core_buf b;
        struct core_err err = {0};
        if (read_ws_file(x, c->key_files[i], 16u << 20, &b, &err) == 0)
            core_buf_add(&keys, b.data, b.len);
        core_buf_release(&b);
        core_buf_addc(&keys, 0);
    }
    char hex[65];
    core_sha256_hex(keys.data, keys.len, hex);
    core_buf_release(&keys);
    (void)p;
    snprintf(out, outsz, "%s/caches/%s/%s/%.16s", x->r->root, x->service, c->name, hex);
}

static void cache_move(struct exec *x, const struct ci_cache *c, const char *dir, bool restore)
{
    struct core_err err = {0};
    if (!restore && core_mkdir_p(dir, 0700, &err))
        return;
    if (restore && access(dir, F_OK) != 0) {
        logf_(x, "    cache %s: empty (first run with this key)\n", c->name);
        return;
    }
    struct core_buf script;
    core_buf_init(&script, 64 * 1024);
    for (size_t i = 0; i < c->npaths; i++) {
        if (restore)
            core_buf_addf(&script,
                          "if [ -d /cache/p%zu ]; then mkdir -p '/workspace/%s' && cp -a "
                          "/cache/p%zu/. '/workspace/%s/'; fi\n",
                          i, c->paths[i], i, c->paths[i]);
        else
            core_buf_addf(&script,
                          "rm -rf /cache/p%zu; if [ -d '/workspace/%s' ]; then mkdir -p "
                          "/cache/p%zu && cp -a '/workspace/%s/.' /cache/p%zu/; fi\n",
                          i, c->paths[i], i, c->paths[i], i);
    }
    const char *argv[] = {"/bin/sh", "-ec", script.data, NULL};
    struct sandbox_mount m[] = {{dir, "/cache", !restore}};
    struct sandbox_result res;
    struct sandbox_limits lim = {1000, 512LL << 20, 64, 10 * 60 * 1000};
    int rc = sandboxed(x, restore ? "cache-restore" : "cache-save", argv, NULL, NULL, m, 1, &lim,
                       false, NULL, &res, &err);
    logf_(x, "    cache %s: %s%s\n", c->name, restore ? "restored" : "saved",
          rc || res.exit_code ? " (with errors; continuing)" : "");
    core_buf_release(&script);
}

/* Loads the secrets a step names; their values become env entries and log masks. */
static int load_secrets(struct exec *x, const struct ci_step *s, char **env, size_t *nenv,
                        struct core_err *err)
{
    for (size_t i = 0; i < s->nsecrets; i++) {
        char *val = NULL;
        size_t len = 0;
        int rc = secret_get(x->r->st, x->r->box, x->service, s->secrets[i], &val, &len, err);
        if (rc)
            return core_err_wrap(err, "step '%s'", s->name), rc;
        size_t n = strlen(s->secrets[i]) + len + 2;
        char *kv = core_malloc(n);
        char **masks = core_realloc(x->masks, (x->nmasks + 1) * sizeof(*masks));
        if (!kv || !masks) {
            core_free(kv);
            if (masks)
                x->masks = masks;
            secret_value_free(val, len);
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
        }
        x->masks = masks;
        snprintf(kv, n, "%s=%s", s->secrets[i], val);
        env[(*nenv)++] = kv;
        x->masks[x->nmasks++] = val; /* freed (wiped) at the end of the run */
    }
    return 0;
}

static int run_step(struct exec *x, const struct ci_pipeline *p, size_t idx, struct core_err *err)
{
    const struct ci_step *s = &p->steps[idx];
    size_t nenv_max = 12 + s->nenv + s->nsecrets;
    char **env = core_calloc(nenv_max + 1, sizeof(char *));
    size_t nenv = 0;
    struct core_buf script;
    core_buf_init(&script, 1 << 20);
    int rc = env ? 0 : core_err_set(err, CORE_E_NOMEM, "out of memory");
    char tmp[1400];
#define ENV_ADD(...)                                                                               \
    do {                                                                                           \
        snprintf(tmp, sizeof(tmp), __VA_ARGS__);                                                   \
        if (!rc && !(env[nenv++] = core_strdup(tmp)))                                              \
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");                                 \
    } while (0)
    if (!rc) {
        ENV_ADD("PATH=/usr/local/bin:/usr/bin:/bin");
        ENV_ADD("HOME=/tmp");
        ENV_ADD("CI=true");
        ENV_ADD("PAVE_SERVICE=%s", x->service);
        ENV_ADD("PAVE_TEAM=%s", x->team);
        ENV_ADD("PAVE_RUN_ID=%lld", (long long)x->id);
        ENV_ADD("PAVE_STEP=%s", s->name);
        ENV_ADD("PAVE_BRANCH=%s", x->branch);
        ENV_ADD("PAVE_COMMIT=%s", x->commit);
        for (size_t i = 0; i < s->nenv; i++)
            ENV_ADD("%s=%s", s->env[i].key, s->env[i].value);
    }
#undef ENV_ADD
    if (!rc)
        rc = load_secrets(x, s, env, &nenv, err);
    for (size_t i = 0; !rc && i < s->ncommands; i++)
        if (core_buf_adds(&script, s->commands[i]) || core_buf_addc(&script, '\n'))
            rc = core_err_set(err, CORE_E_TOO_BIG, "step '%s' commands are too long", s->name);
    char workdir[600];
    snprintf(workdir, sizeof(workdir), "/workspace/%s", s->workdir ? s->workdir : ".");
    char caches[16][1300];
    size_t ncaches = 0;
    for (size_t i = 0; !rc && i < s->ncaches && ncaches < 16; i++)
        for (size_t j = 0; j < p->ncaches; j++)
            if (strcmp(p->caches[j].name, s->caches[i]) == 0) {
                cache_dir(x, p, &p->caches[j], caches[ncaches], sizeof(caches[0]));
                cache_move(x, &p->caches[j], caches[ncaches], true);
                ncaches++;
            }
    if (rc) {
        logf_(x, "    %s\n", err->msg);
        set_step(x, (int)idx, s->name, "failed", -1, 0, err->msg);
        goto out;
    }
    const char *argv[] = {"/bin/sh", "-ec", script.data, NULL};
    struct sandbox_limits lim = {s->cpu_millicores, s->memory_bytes, s->pids, s->timeout_ms};
    struct sandbox_result res;
    set_step(x, (int)idx, s->name, "running", 0, 0, NULL);
    rc = sandboxed(x, s->name, argv, (const char *const *)env, workdir, NULL, 0, &lim, s->network,
                   NULL, &res, err);
    if (rc) {
        logf_(x, "<== step %s could not start: %s\n", s->name, err->msg);
        set_step(x, (int)idx, s->name, "failed", -1, 0, err->msg);
        goto out;
    }
    char why[200];
    if (step_failed(&res, why, sizeof(why))) {
        logf_(x, "<== step %s failed: %s (%lld ms)\n", s->name, why, (long long)res.duration_ms);
        set_step(x, (int)idx, s->name, res.cancelled ? "cancelled" : "failed", res.exit_code,
                 res.duration_ms, why);
        rc = core_err_set(err, res.cancelled ? CORE_E_CONFLICT : CORE_E_IO, "step '%s' %s",
                          s->name, why);
        goto out;
    }
    logf_(x, "<== step %s succeeded (%lld ms, %s)\n", s->name, (long long)res.duration_ms,
          res.isolation);
    set_step(x, (int)idx, s->name, "succeeded", 0, res.duration_ms, res.isolation);
    for (size_t i = 0, k = 0; i < s->ncaches && k < ncaches; i++)
        for (size_t j = 0; j < p->ncaches; j++)
            if (strcmp(p->caches[j].name, s->caches[i]) == 0)
                cache_move(x, &p->caches[j], caches[k++], false);
out:
    for (size_t i = 0; env && i < nenv; i++) {
        /* env entries may hold secret values: wipe before freeing */
        secret_value_free(env[i], strlen(env[i]));
    }
    core_free(env);
    core_buf_release(&script);
    return rc;
}

/* Publishes the artifact as a signed OCI image with provenance. A failure is logged in the run
 * but does not fail it: the tarball artifact stands on its own. */
static void publish(struct exec *x, const struct ci_pipeline *p, const char *tarball)
{
    struct core_err err = {0};
    struct catalog_service svc;
    if (catalog_service_get(x->r->cat, x->service, &svc, &err)) {
        logf_(x, "    image not published: %s\n", err.msg);
        return;
    }
    char started[40] = "", source[1300] = "";
    if (strncmp(x->source, "git:", 4) == 0)
        snprintf(source, sizeof(source), "git+pave:%s.git@%s", x->service, x->commit);
    struct artifact_input in = {
        .service = x->service,
        .team = x->team,
        .commit = x->commit[0] ? x->commit : NULL,
        .branch = x->branch[0] ? x->branch : NULL,
        .run_id = x->id,
        .pipeline_digest = p->digest,
        .tarball_path = tarball,
        .manifest_json = svc.manifest,
        .source_uri = source[0] ? source : NULL,
        .started_at = started[0] ? started : NULL,
    };
    struct artifact_result res;
    logf_(x, "==> image\n");
    if (artifact_publish(x->r->cfg.registry, x->r->cfg.signer, &catalog_actor_system, &in, &res,
                         &err)) {
        logf_(x, "<== image not published: %s\n", err.msg);
    } else {
        logf_(x, "<== image %s/%s@%s (tags:", x->service, res.ntags ? res.tags[0] : "",
              res.image_digest);
        for (int i = 0; i < res.ntags; i++)
            logf_(x, " %s", res.tags[i]);
        logf_(x, "), signed, provenance %s\n", res.provenance_digest);
    }
    catalog_service_release(&svc);
}

static int package(struct exec *x, const struct ci_pipeline *p, struct core_err *err)
{
    char outdir[1200], file[1300];
    if (x->r->cfg.gate) {
        logf_(x, "==> guard rails\n");
        int grc = x->r->cfg.gate(x->r->cfg.gate_arg, x->service, x->team, x->id, err);
        if (grc) {
            logf_(x, "<== blocked by policy: %s\n", err->msg);
            return grc;
        }
        logf_(x, "<== allowed\n");
    }
    snprintf(outdir, sizeof(outdir), "%s/artifacts/%lld", x->r->root, (long long)x->id);
    int rc = core_mkdir_p(outdir, 0700, err);
    if (rc)
        return rc;
    const char **argv = core_calloc(p->nartifact_paths + 8, sizeof(char *));
    if (!argv)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    size_t n = 0;
    argv[n++] = "tar";
    argv[n++] = "--sort=name";
    argv[n++] = "-czf";
    argv[n++] = "/out/artifact.tar.gz";
    argv[n++] = "-C";
    argv[n++] = "/workspace";
    argv[n++] = "--";
    for (size_t i = 0; i < p->nartifact_paths; i++)
        argv[n++] = p->artifact_paths[i];
    argv[n] = NULL;
    logf_(x, "==> artifact\n");
    struct sandbox_mount m[] = {{outdir, "/out", true}};
    struct sandbox_result res;
    struct sandbox_limits lim = {1000, 1LL << 30, 64, 10 * 60 * 1000};
    rc = sandboxed(x, "package", argv, NULL, NULL, m, 1, &lim, false, NULL, &res, err);
    core_free(argv);
    char why[200];
    if (!rc && step_failed(&res, why, sizeof(why)))
        rc = core_err_set(err, CORE_E_IO, "packaging the artifact failed: %s (are artifact.paths "
                                          "produced by the steps?)",
                          why);
    if (rc)
        return rc;
    /* The sandbox wrote into /out: open without following links and insist on a plain file. */
    snprintf(file, sizeof(file), "%s/artifact.tar.gz", outdir);
    int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0)
            close(fd);
        return core_err_set(err, CORE_E_IO, "the artifact is not a regular file");
    }
    close(fd);
    char *data = NULL;
    size_t len = 0;
    if ((rc = core_file_read(file, (size_t)4 << 30, &data, &len, err)))
        return rc;
    char hex[65], digest[80];
    core_sha256_hex(data, len, hex);
    core_free(data);
    snprintf(digest, sizeof(digest), "sha256:%s", hex);
    /* Metadata next to the artifact: what it is, where it came from, who built it. */
    char meta[2048], now[40];
    now_text(now);
    snprintf(meta, sizeof(meta),
             "{\"digest\":\"%s\",\"size\":%zu,\"service\":\"%s\",\"team\":\"%s\",\"commit\":"
             "\"%s\",\"branch\":\"%s\",\"run\":%lld,\"builder\":\"pave/%s\",\"pipeline\":\"%s\","
             "\"created\":\"%s\"}\n",
             digest, len, x->service, x->team, x->commit, x->branch, (long long)x->id,
             PAVE_VERSION, p->digest, now);
    char metafile[1300];
    snprintf(metafile, sizeof(metafile), "%s/metadata.json", outdir);
    if ((rc = core_file_write_atomic(metafile, meta, strlen(meta), 0600, err)))
        return rc;
    struct store_value u[] = {STORE_V_TEXT(digest), STORE_V_INT((int64_t)len), STORE_V_TEXT(file),
                              STORE_V_TEXT(p->digest), STORE_V_INT(x->id)};
    rc = store_exec(x->r->st,
                    "UPDATE runs SET artifact_digest = ?, artifact_size = ?, artifact_path = ?, "
                    "pipeline_digest = ? WHERE id = ?",
                    u, 5, NULL, err);
    logf_(x, "<== artifact %s (%zu bytes)\n", digest, len);
    if (!rc && x->r->cfg.registry && x->r->cfg.signer)
        publish(x, p, file);
    return rc;
}

static void finish(struct exec *x, const char *state, const char *error)
{
    char now[40];
    now_text(now);
    struct store_value p[] = {STORE_V_TEXT(state), STORE_V_TEXT(now), STORE_V_TEXT(error),
                              STORE_V_INT(x->id)};
    store_exec(x->r->st,
               "UPDATE runs SET state = ?, finished_at = ?, error = ? WHERE id = ? AND state = "
               "'running'",
               p, 4, NULL, NULL);
    logf_(x, "==> run %lld %s%s%s\n", (long long)x->id, state, error ? ": " : "",
          error ? error : "");
    log_info("ci", "run finished", LOG_INT("run", x->id), LOG_STR("service", x->service),
             LOG_STR("state", state));
}

static int claim_row(void *arg, const struct store_row *row)
{
    struct exec *x = arg;
    x->id = store_row_int(row, "id");
    const char *v;
    snprintf(x->service, sizeof(x->service), "%s", store_row_text(row, "service"));
    snprintf(x->team, sizeof(x->team), "%s", store_row_text(row, "team"));
    v = store_row_text(row, "branch");
    snprintf(x->branch, sizeof(x->branch), "%s", v ? v : "");
    v = store_row_text(row, "commit_sha");
    snprintf(x->commit, sizeof(x->commit), "%s", v ? v : "");
    snprintf(x->source, sizeof(x->source), "%s", store_row_text(row, "source"));
    v = store_row_text(row, "changed");
    snprintf(x->changed, sizeof(x->changed), "%s", v ? v : "");
    return 1;
}

/* Takes the oldest queued run, atomically. returns: 1 claimed, 0 none, < 0 error. */
static int claim(struct ci_runner *r, struct exec *x)
{
    struct core_err err = {0};
    int rc = store_txn_begin(r->st, &err);
    if (rc)
        return rc;
    x->id = 0;
    rc = store_query(r->st,
                     "SELECT id, service, team, branch, commit_sha, source, changed FROM runs "
                     "WHERE state = 'queued' ORDER BY id LIMIT 1",
                     NULL, 0, claim_row, x, &err);
    if (rc == 1 && x->id) {
        char now[40];
        now_text(now);
        struct store_value p[] = {STORE_V_TEXT(now), STORE_V_INT(x->id)};
        rc = store_exec(r->st, "UPDATE runs SET state = 'running', started_at = ? WHERE id = ?",
                        p, 2, NULL, &err);
        rc = rc ? rc : 1;
    }
    if (rc < 0) {
        store_txn_rollback(r->st);
        return rc;
    }
    int crc = store_txn_commit(r->st, &err);
    return crc ? crc : (x->id ? 1 : 0);
}

static void execute(struct ci_runner *r, struct worker *w, struct exec *x)
{
    struct core_err err = {0};
    char logpath[1200];
    ci_run_log_path(r, x->id, logpath, sizeof(logpath));
    x->r = r;
    x->w = w;
    x->log_fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    snprintf(x->workspace, sizeof(x->workspace), "%s/work/%lld", r->root, (long long)x->id);
    struct ci_pipeline p;
    ci_pipeline_init(&p);
    const char *state = "failed";
    char error[600] = "";
    logf_(x, "==> run %lld of %s (%s%s%s)\n", (long long)x->id, x->service,
          x->branch[0] ? x->branch : "working tree", x->commit[0] ? " @ " : "", x->commit);
    logf_(x, "    isolation: %s\n", r->isolation);
    bool tmpfs = false;
    if (x->log_fd < 0) {
        snprintf(error, sizeof(error), "cannot write the run log");
        goto out;
    }
    if (sandbox_workspace_create(x->workspace, r->cfg.workspace_bytes, &tmpfs, &err) ||
        checkout(x, &err)) {
        snprintf(error, sizeof(error), "%s", err.msg);
        goto out;
    }
    struct core_buf text;
    if (read_ws_file(x, CI_PIPELINE_PATH, CI_PIPELINE_MAX, &text, &err)) {
        core_buf_release(&text);
        snprintf(error, sizeof(error), "the source has no %s; create it (see docs/pipelines.md)",
                 CI_PIPELINE_PATH);
        goto out;
    }
    struct schema_diags d;
    schema_diags_init(&d);
    int rc = ci_pipeline_parse(CI_PIPELINE_PATH, text.data, text.len, &p, &d, &err);
    core_buf_release(&text);
    if (rc) {
        struct core_buf msg;
        core_buf_init(&msg, 0);
        schema_diags_format(&d, &msg);
        logf_(x, "%s", msg.data);
        core_buf_release(&msg);
        snprintf(error, sizeof(error), "%s is invalid: %zu problem%s", CI_PIPELINE_PATH,
                 d.n ? d.n : 1, d.n == 1 ? "" : "s");
        schema_diags_release(&d);
        goto out;
    }
    schema_diags_release(&d);
    /* changed paths, for `when.paths` */
    const char *changed[4096];
    size_t nchanged = 0;
    bool known = x->changed[0] != 0;
    for (char *save = NULL, *tok = strtok_r(x->changed, "\n", &save); tok && nchanged < 4096;
         tok = strtok_r(NULL, "\n", &save))
        changed[nchanged++] = tok;
    for (size_t i = 0; i < p.nsteps; i++)
        set_step(x, (int)i, p.steps[i].name, "pending", 0, 0, NULL);
    for (size_t i = 0; i < p.nsteps; i++) {
        const struct ci_step *s = &p.steps[i];
        if (w->cancel) {
            set_step(x, (int)i, s->name, "cancelled", 0, 0, NULL);
            continue;
        }
        if (!ci_step_wanted(s, x->branch, known ? changed : NULL, nchanged)) {
            logf_(x, "==> step %s (%zu/%zu): skipped by its 'when'\n", s->name, i + 1, p.nsteps);
            set_step(x, (int)i, s->name, "skipped", 0, 0, "when");
            continue;
        }
        logf_(x, "==> step %s (%zu/%zu)\n", s->name, i + 1, p.nsteps);
        if (run_step(x, &p, i, &err)) {
            snprintf(error, sizeof(error), "%s", err.msg);
            for (size_t j = i + 1; j < p.nsteps; j++)
                set_step(x, (int)j, p.steps[j].name, "skipped", 0, 0, "an earlier step failed");
            goto out;
        }
    }
    if (w->cancel) {
        snprintf(error, sizeof(error), "cancelled");
        goto out;
    }
    if (p.nartifact_paths && package(x, &p, &err)) {
        snprintf(error, sizeof(error), "%s", err.msg);
        goto out;
    }
    state = "succeeded";
out:
    if (w->cancel)
        state = "cancelled";
    finish(x, state, error[0] ? error : NULL);
    ci_pipeline_release(&p);
    struct core_err rerr = {0};
    sandbox_workspace_remove(x->workspace, &rerr);
    for (size_t i = 0; i < x->nmasks; i++)
        secret_value_free(x->masks[i], strlen(x->masks[i]));
    core_free(x->masks);
    x->masks = NULL;
    x->nmasks = 0;
    if (x->log_fd >= 0)
        close(x->log_fd);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ci_runner *r = w->r;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            break;
        struct exec *x = core_calloc(1, sizeof(*x));
        int got = x ? claim(r, x) : 0;
        if (got == 1) {
            pthread_mutex_lock(&r->lock);
            w->run_id = x->id;
            w->cancel = 0;
            pthread_mutex_unlock(&r->lock);
            execute(r, w, x);
            pthread_mutex_lock(&r->lock);
            w->run_id = 0;
            pthread_mutex_unlock(&r->lock);
            core_free(x);
            continue;
        }
        core_free(x);
        /* Nothing queued: sleep until a submit wakes us (or a second passes). */
        pthread_mutex_lock(&r->lock);
        if (!r->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&r->wake, &r->lock, &ts);
        }
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

struct ci_runner *ci_runner_start(const struct ci_runner_config *cfg, struct store *st,
                                  struct catalog *cat, struct secret_box *box,
                                  struct core_err *err)
{
    struct ci_runner *r = core_calloc(1, sizeof(*r));
    if (!r) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    if (r->cfg.concurrency <= 0)
        r->cfg.concurrency = 2;
    if (r->cfg.concurrency > RUNNER_MAX_WORKERS)
        r->cfg.concurrency = RUNNER_MAX_WORKERS;
    if (r->cfg.workspace_bytes <= 0)
        r->cfg.workspace_bytes = 1LL << 30;
    r->st = st;
    r->cat = cat;
    r->box = box;
    snprintf(r->root, sizeof(r->root), "%s/ci", cfg->data_dir);
    static const char *const subdirs[] = {"runs", "work", "caches", "artifacts", "sources"};
    for (size_t i = 0; i < 5; i++) {
        char d[1200];
        snprintf(d, sizeof(d), "%s/%s", r->root, subdirs[i]);
        if (core_mkdir_p(d, 0700, err)) {
            core_free(r);
            return NULL;
        }
    }
    sandbox_probe(&r->caps);
    if (r->caps.bwrap)
        snprintf(r->isolation, sizeof(r->isolation), "bwrap%s%s",
                 r->caps.cgroup_version ? "+cgroup-v" : "",
                 r->caps.cgroup_version == 1 ? "1" : r->caps.cgroup_version == 2 ? "2" : "");
    else
        snprintf(r->isolation, sizeof(r->isolation), "none (%s)",
                 r->cfg.allow_unisolated ? "bubblewrap unavailable; steps run unisolated"
                                         : "bubblewrap unavailable; steps will fail");
    /* A run left running by a previous process can never finish: say so instead of hanging. */
    char now[40];
    now_text(now);
    struct store_value p[] = {STORE_V_TEXT(now)};
    int64_t stale = 0;
    store_exec(st,
               "UPDATE runs SET state = 'failed', finished_at = ?, error = 'the server stopped "
               "while this run was running; retry it' WHERE state = 'running'",
               p, 1, &stale, NULL);
    store_exec(st, "UPDATE run_steps SET state = 'failed' WHERE state IN ('running', 'pending')",
               NULL, 0, NULL, NULL);
    if (stale)
        log_warn("ci", "runs interrupted by a restart marked failed", LOG_INT("runs", stale));
    /* Workspaces of runs that died with the previous process (still mounted if tmpfs). */
    char workroot[1200];
    snprintf(workroot, sizeof(workroot), "%s/work", r->root);
    DIR *wd = opendir(workroot);
    for (struct dirent *de; wd && (de = readdir(wd)) != NULL;) {
        if (de->d_name[0] == '.')
            continue;
        char ws[1500];
        struct core_err werr = {0};
        snprintf(ws, sizeof(ws), "%s/%s", workroot, de->d_name);
        if (sandbox_workspace_remove(ws, &werr))
            log_warn("ci", "cannot remove a stale workspace", LOG_STR("path", ws),
                     LOG_STR("error", werr.msg));
    }
    if (wd)
        closedir(wd);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    for (int i = 0; i < r->cfg.concurrency; i++) {
        r->workers[i].r = r;
        if (pthread_create(&r->workers[i].thread, NULL, worker_main, &r->workers[i]) != 0)
            break;
        r->nworkers++;
    }
    log_info("ci", "runner started", LOG_INT("workers", r->nworkers),
             LOG_STR("isolation", r->isolation));
    return r;
}

void ci_runner_stop(struct ci_runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    for (int i = 0; i < r->nworkers; i++)
        if (r->workers[i].run_id)
            r->workers[i].cancel = 1;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < r->nworkers; i++)
        pthread_join(r->workers[i].thread, NULL);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    core_free(r);
}
