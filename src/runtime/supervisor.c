/*
 * The local driver's replica supervisor: one thread per replica runs the command through
 * sandbox_run() in a loop, recording starts and exits, and sleeps on a condition variable
 * between runs so runtime_supervisor_stop() can wake it at once. States, backoff and crash-loop
 * rules are described in runtime.h and docs/runtime.md.
 *
 * Locking: sup->mu guards every replica's status fields, the backoff bounds and `stopping`.
 * The cancel flags are written under mu and read (without it) by sandbox_run's poll loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"

#define MAX_REPLICAS 64

struct replica {
    struct runtime_supervisor *sup;
    int index;
    int port;
    char **env; /* spec env without PORT, plus PORT=<port> */
    char name[96];
    pthread_t thread;
    bool thread_started;
    volatile int cancel;

    /* guarded by sup->mu */
    bool in_run;           /* inside sandbox_run() */
    bool in_backoff;
    bool crash_loop;
    bool stopped;
    int64_t run_start_mono; /* monotonic ms of the current run's start */
    int64_t backoff_ms;     /* next backoff */
    int64_t exit_times[RUNTIME_CRASH_LOOP_EXITS]; /* monotonic ms, ring */
    int restarts, exits, last_exit_code;
    int64_t last_start_ms;
    char isolation[64];
    char last_error[128];
};

struct runtime_supervisor {
    bool allow_unisolated;
    char **argv;
    char *bundle_dir;
    char *workdir;
    struct sandbox_file *files; /* deep copies; data wiped before it is freed */
    size_t nfiles;
    struct sandbox_limits limits;
    int log_fd;
    struct sandbox_caps caps;

    bool sync_ready; /* mu and cv initialised */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool stopping;
    int64_t backoff_initial_ms, backoff_max_ms;

    int nreplicas;
    struct replica *replicas;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *runtime_replica_state_name(enum runtime_replica_state state)
{
    switch (state) {
    case RUNTIME_REPLICA_STARTING:
        return "starting";
    case RUNTIME_REPLICA_RUNNING:
        return "running";
    case RUNTIME_REPLICA_BACKOFF:
        return "backoff";
    case RUNTIME_REPLICA_CRASH_LOOP:
        return "crash-loop";
    case RUNTIME_REPLICA_STOPPED:
        return "stopped";
    }
    return "unknown";
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        core_free(v[i]);
    core_free(v);
}

/* returns: a NULL-terminated deep copy of v (minus entries starting with skip, plus extra when
 * not NULL), owned by the caller (strv_free); NULL on NOMEM. */
static char **strv_copy(const char *const *v, const char *skip, const char *extra)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = core_calloc(n + 2, sizeof(*out));
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && strncmp(v[i], skip, strlen(skip)) == 0)
            continue;
        if (!(out[j++] = core_strdup(v[i])))
            goto fail;
    }
    if (extra && !(out[j++] = core_strdup(extra)))
        goto fail;
    return out;
fail:
    strv_free(out);
    return NULL;
}

/* Wipes and frees the copies made by files_copy(). */
static void files_free(struct sandbox_file *files, size_t n)
{
    for (size_t i = 0; files && i < n; i++) {
        if (files[i].data) {
            explicit_bzero((void *)files[i].data, files[i].len);
            core_free((void *)files[i].data);
        }
        core_free((void *)files[i].inside);
    }
    core_free(files);
}

/* returns: deep copies of the n files (owned, files_free), or NULL on NOMEM (or when n is 0). */
static struct sandbox_file *files_copy(const struct sandbox_file *src, size_t n)
{
    struct sandbox_file *out = core_calloc(n, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        void *data = src[i].len ? core_malloc(src[i].len) : NULL;
        out[i].inside = core_strdup(src[i].inside);
        out[i].data = data;
        out[i].len = src[i].len;
        if (!out[i].inside || (src[i].len && !data)) {
            files_free(out, i + 1);
            return NULL;
        }
        if (data)
            memcpy(data, src[i].data, src[i].len);
    }
    return out;
}

static void expected_isolation(const struct sandbox_caps *caps, char *out, size_t outsz)
{
    if (!caps->bwrap)
        snprintf(out, outsz, "none");
    else if (caps->cgroup_version)
        snprintf(out, outsz, "bwrap+cgroup-v%d", caps->cgroup_version);
    else
        snprintf(out, outsz, "bwrap");
}

/* Records an exit at now (monotonic) and decides the wait before the next start. Called with
 * sup->mu held. returns: the backoff in ms. */
static int64_t record_exit(struct replica *r, int64_t now, int64_t ran_ms)
{
    struct runtime_supervisor *sup = r->sup;
    if (ran_ms >= RUNTIME_STABLE_MS) {
        r->backoff_ms = sup->backoff_initial_ms;
        r->crash_loop = false;
    }
    r->exit_times[r->exits % RUNTIME_CRASH_LOOP_EXITS] = now;
    r->exits++;
    /* the oldest of the last N exits is the slot we write next */
    int64_t oldest = r->exit_times[r->exits % RUNTIME_CRASH_LOOP_EXITS];
    if (r->exits >= RUNTIME_CRASH_LOOP_EXITS)
        r->crash_loop = now - oldest <= RUNTIME_CRASH_LOOP_WINDOW_MS;
    int64_t wait = r->crash_loop ? sup->backoff_max_ms : r->backoff_ms;
    if (wait > sup->backoff_max_ms)
        wait = sup->backoff_max_ms;
    r->backoff_ms = wait * 2 > sup->backoff_max_ms ? sup->backoff_max_ms : wait * 2;
    return wait;
}

/* Waits until `wait` ms passed or the supervisor stops. Called and returns with sup->mu held.
 * A concurrent runtime_supervisor_set_backoff() may shorten the wait to the new maximum. */
static void backoff_wait(struct replica *r, int64_t wait)
{
    struct runtime_supervisor *sup = r->sup;
    int64_t start = mono_ms();
    r->in_backoff = true;
    while (!sup->stopping) {
        int64_t limit = wait < sup->backoff_max_ms ? wait : sup->backoff_max_ms;
        int64_t deadline = start + limit;
        if (mono_ms() >= deadline)
            break;
        struct timespec ts = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
        int rc = pthread_cond_timedwait(&sup->cv, &sup->mu, &ts);
        if (rc != 0 && rc != ETIMEDOUT && rc != EINTR)
            break; /* should not happen; do not spin */
    }
    r->in_backoff = false;
}

static void *replica_main(void *arg)
{
    struct replica *r = arg;
    struct runtime_supervisor *sup = r->sup;
    struct sandbox_mount mount = {sup->bundle_dir, "/app", false};
    struct sandbox_spec spec = {
        .argv = (const char *const *)sup->argv,
        .env = (const char *const *)r->env,
        .workdir = sup->workdir,
        .mounts = sup->bundle_dir ? &mount : NULL,
        .nmounts = sup->bundle_dir ? 1 : 0,
        .limits = sup->limits,
        .network = true,
        .allow_unisolated = sup->allow_unisolated,
        .out_fd = sup->log_fd,
        .name = r->name,
        .cancel = &r->cancel,
        .caps = &sup->caps,
        .files = sup->files,
        .nfiles = sup->nfiles,
    };
    spec.limits.timeout_ms = 0;

    pthread_mutex_lock(&sup->mu);
    for (bool first = true; !sup->stopping; first = false) {
        if (!first)
            r->restarts++;
        r->in_run = true;
        r->run_start_mono = mono_ms();
        r->last_start_ms = core_now_ms();
        pthread_mutex_unlock(&sup->mu);

        struct sandbox_result res;
        struct core_err err = {0};
        memset(&res, 0, sizeof(res));
        int rc = sandbox_run(&spec, &res, &err);

        pthread_mutex_lock(&sup->mu);
        r->in_run = false;
        if (sup->stopping)
            break;
        int64_t now = mono_ms();
        if (rc == 0) {
            r->last_exit_code = res.exit_code;
            r->last_error[0] = '\0';
            if (res.isolation[0])
                snprintf(r->isolation, sizeof(r->isolation), "%s", res.isolation);
        } else {
            r->last_exit_code = -1;
            snprintf(r->last_error, sizeof(r->last_error), "%.127s", err.msg);
        }
        backoff_wait(r, record_exit(r, now, now - r->run_start_mono));
    }
    r->stopped = true;
    pthread_mutex_unlock(&sup->mu);
    return NULL;
}

static void supervisor_free(struct runtime_supervisor *sup)
{
    if (!sup)
        return;
    for (int i = 0; sup->replicas && i < sup->nreplicas; i++)
        strv_free(sup->replicas[i].env);
    core_free(sup->replicas);
    strv_free(sup->argv);
    core_free(sup->bundle_dir);
    core_free(sup->workdir);
    files_free(sup->files, sup->nfiles);
    if (sup->log_fd >= 0)
        close(sup->log_fd);
    if (sup->sync_ready) {
        pthread_cond_destroy(&sup->cv);
        pthread_mutex_destroy(&sup->mu);
    }
    core_free(sup);
}

static int init_sync(struct runtime_supervisor *sup, struct core_err *err)
{
    pthread_condattr_t attr;
    int rc = 0;
    if (pthread_condattr_init(&attr) != 0)
        return core_err_set(err, CORE_E_NOMEM, "supervisor: condattr init failed");
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&sup->cv, &attr) != 0) {
        rc = core_err_set(err, CORE_E_INTERNAL, "supervisor: cannot create condition variable");
        goto out;
    }
    if (pthread_mutex_init(&sup->mu, NULL) != 0) {
        pthread_cond_destroy(&sup->cv);
        rc = core_err_set(err, CORE_E_INTERNAL, "supervisor: cannot create mutex");
    }
out:
    pthread_condattr_destroy(&attr);
    return rc;
}

static int validate(const char *name, const struct runtime_replica_spec *spec, int replicas,
                    struct core_err *err)
{
    if (!name || !*name)
        return core_err_set(err, CORE_E_INVAL, "supervisor: missing name");
    if (!spec || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
        return core_err_set(err, CORE_E_INVAL, "supervisor '%s': empty command", name);
    if (replicas < 1 || replicas > MAX_REPLICAS)
        return core_err_set(err, CORE_E_INVAL, "supervisor '%s': replicas %d not in 1..%d", name,
                            replicas, MAX_REPLICAS);
    if (spec->port < 0 || spec->port + replicas - 1 > 65535)
        return core_err_set(err, CORE_E_INVAL, "supervisor '%s': bad port %d", name, spec->port);
    if (spec->bundle_dir && spec->bundle_dir[0] != '/')
        return core_err_set(err, CORE_E_INVAL, "supervisor '%s': bundle dir '%s' is not absolute",
                            name, spec->bundle_dir);
    if (spec->workdir && spec->workdir[0] != '/')
        return core_err_set(err, CORE_E_INVAL, "supervisor '%s': workdir '%s' is not absolute",
                            name, spec->workdir);
    for (size_t i = 0; spec->env && spec->env[i]; i++) {
        if (!strchr(spec->env[i], '='))
            return core_err_set(err, CORE_E_INVAL, "supervisor '%s': env entry '%s' lacks '='",
                                name, spec->env[i]);
    }
    int rc = sandbox_files_check(spec->files, spec->nfiles, err);
    if (rc)
        core_err_wrap(err, "supervisor '%s'", name);
    return rc;
}

struct runtime_supervisor *runtime_supervisor_start(const char *name,
                                                    const struct runtime_replica_spec *spec,
                                                    int replicas, struct core_err *err)
{
    struct runtime_supervisor *sup = NULL;
    struct runtime_supervisor *ret = NULL;
    if (validate(name, spec, replicas, err))
        goto out;
    if (!(sup = core_calloc(1, sizeof(*sup)))) {
        core_err_set(err, CORE_E_NOMEM, "supervisor '%s': out of memory", name);
        goto out;
    }
    sup->log_fd = -1;
    sup->nreplicas = replicas;
    sup->backoff_initial_ms = RUNTIME_BACKOFF_INITIAL_MS;
    sup->backoff_max_ms = RUNTIME_BACKOFF_MAX_MS;
    sup->limits = spec->limits;
    sup->limits.timeout_ms = 0;

    sandbox_probe(&sup->caps);
    sup->allow_unisolated = spec->allow_unisolated;
    if (!sup->caps.bwrap && !sup->allow_unisolated) {
        core_err_set(err, CORE_E_UNSUPPORTED, "supervisor '%s': no isolation: %s", name,
                     sup->caps.detail);
        goto out;
    }
    if (spec->log_fd >= 0) {
        sup->log_fd = fcntl(spec->log_fd, F_DUPFD_CLOEXEC, 3);
        if (sup->log_fd < 0) {
            core_err_set(err, CORE_E_IO, "supervisor '%s': log fd: %s", name, strerror(errno));
            goto out;
        }
    } else if (spec->log_path) {
        sup->log_fd = open(spec->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (sup->log_fd < 0) {
            core_err_set(err, CORE_E_IO, "supervisor '%s': opening log '%s': %s", name,
                         spec->log_path, strerror(errno));
            goto out;
        }
    }
    const char *workdir = spec->workdir ? spec->workdir : spec->bundle_dir ? "/app" : "/";
    sup->argv = strv_copy(spec->argv, NULL, NULL);
    sup->workdir = core_strdup(workdir);
    sup->replicas = core_calloc((size_t)replicas, sizeof(*sup->replicas));
    if (spec->nfiles) {
        sup->files = files_copy(spec->files, spec->nfiles);
        sup->nfiles = sup->files ? spec->nfiles : 0;
    }
    if (!sup->argv || !sup->workdir || !sup->replicas || (spec->nfiles && !sup->files) ||
        (spec->bundle_dir && !(sup->bundle_dir = core_strdup(spec->bundle_dir)))) {
        core_err_set(err, CORE_E_NOMEM, "supervisor '%s': out of memory", name);
        goto out;
    }
    char isolation[64];
    expected_isolation(&sup->caps, isolation, sizeof(isolation));
    for (int i = 0; i < replicas; i++) {
        struct replica *r = &sup->replicas[i];
        char port_env[32];
        r->sup = sup;
        r->index = i;
        r->port = spec->port ? spec->port + i : 0;
        r->backoff_ms = sup->backoff_initial_ms;
        r->last_exit_code = -1;
        snprintf(r->isolation, sizeof(r->isolation), "%s", isolation);
        snprintf(r->name, sizeof(r->name), "%.80s-%d", name, i);
        snprintf(port_env, sizeof(port_env), "PORT=%d", r->port);
        r->env = strv_copy(spec->env, r->port ? "PORT=" : NULL, r->port ? port_env : NULL);
        if (!r->env) {
            core_err_set(err, CORE_E_NOMEM, "supervisor '%s': out of memory", name);
            goto out;
        }
    }
    if (init_sync(sup, err))
        goto out;
    sup->sync_ready = true;
    for (int i = 0; i < replicas; i++) {
        struct replica *r = &sup->replicas[i];
        int rc = pthread_create(&r->thread, NULL, replica_main, r);
        if (rc != 0) {
            core_err_set(err, CORE_E_INTERNAL, "supervisor '%s': cannot start thread: %s", name,
                         strerror(rc));
            goto out;
        }
        r->thread_started = true;
    }
    ret = sup;
    sup = NULL;
out:
    runtime_supervisor_stop(sup); /* on failure: joins the threads that did start, frees */
    return ret;
}

int runtime_supervisor_status(struct runtime_supervisor *sup, runtime_replica_fn fn, void *arg)
{
    for (int i = 0; sup && fn && i < sup->nreplicas; i++) {
        struct replica *r = &sup->replicas[i];
        struct runtime_replica_status st;
        memset(&st, 0, sizeof(st));
        pthread_mutex_lock(&sup->mu);
        int64_t up = r->in_run ? mono_ms() - r->run_start_mono : 0;
        if (r->stopped || sup->stopping)
            st.state = RUNTIME_REPLICA_STOPPED;
        else if (r->crash_loop && !(r->in_run && up >= RUNTIME_STABLE_MS))
            st.state = RUNTIME_REPLICA_CRASH_LOOP;
        else if (r->in_run)
            st.state = up >= RUNTIME_START_GRACE_MS ? RUNTIME_REPLICA_RUNNING
                                                    : RUNTIME_REPLICA_STARTING;
        else if (r->in_backoff)
            st.state = RUNTIME_REPLICA_BACKOFF;
        else
            st.state = RUNTIME_REPLICA_STARTING;
        st.index = r->index;
        st.port = r->port;
        st.pid = 0;
        st.restarts = r->restarts;
        st.exits = r->exits;
        st.last_exit_code = r->last_exit_code;
        st.last_start_ms = r->last_start_ms;
        memcpy(st.isolation, r->isolation, sizeof(st.isolation));
        memcpy(st.last_error, r->last_error, sizeof(st.last_error));
        pthread_mutex_unlock(&sup->mu);
        st.state_name = runtime_replica_state_name(st.state);
        int rc = fn(arg, &st);
        if (rc)
            return rc;
    }
    return 0;
}

void runtime_supervisor_set_backoff(struct runtime_supervisor *sup, int64_t initial_ms,
                                    int64_t max_ms)
{
    if (!sup || initial_ms < 1 || max_ms < initial_ms)
        return;
    pthread_mutex_lock(&sup->mu);
    sup->backoff_initial_ms = initial_ms;
    sup->backoff_max_ms = max_ms;
    for (int i = 0; i < sup->nreplicas; i++)
        sup->replicas[i].backoff_ms = initial_ms;
    pthread_cond_broadcast(&sup->cv);
    pthread_mutex_unlock(&sup->mu);
}

void runtime_supervisor_stop(struct runtime_supervisor *sup)
{
    if (!sup)
        return;
    if (sup->sync_ready) {
        pthread_mutex_lock(&sup->mu);
        sup->stopping = true;
        for (int i = 0; i < sup->nreplicas; i++)
            __atomic_store_n(&sup->replicas[i].cancel, 1, __ATOMIC_SEQ_CST);
        pthread_cond_broadcast(&sup->cv);
        pthread_mutex_unlock(&sup->mu);
        for (int i = 0; i < sup->nreplicas; i++) {
            if (sup->replicas[i].thread_started)
                pthread_join(sup->replicas[i].thread, NULL);
        }
    }
    supervisor_free(sup);
}
