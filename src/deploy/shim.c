/* The replica shim: one detached process per replica (`pave shim DIR`). It owns DIR/lock for its
 * whole life, runs the replica through the runtime supervisor (sandbox, restarts with backoff,
 * crash-loop detection) and mirrors the supervisor's status into DIR/status.json. SIGTERM (or
 * DIR disappearing) stops the replica and the shim. Because it is not a child of the server, a
 * server crash leaves it running; the next server finds it through the lock. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "deploy/deploy.h"
#include "deploy/deploy_int.h"
#include "runtime/runtime.h"
#include "sandbox/sandbox.h"

extern char **environ;

static void path_in(char *out, size_t outsz, const char *dir, const char *name)
{
    snprintf(out, outsz, "%s/%s", dir, name);
}

bool deploy_shim_alive(const char *dir)
{
    char p[4200];
    path_in(p, sizeof(p), dir, SHIM_LOCK);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    bool alive = false;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0)
        alive = errno == EWOULDBLOCK;
    else
        flock(fd, LOCK_UN);
    close(fd);
    return alive;
}

static long read_pid(const char *dir)
{
    char p[4200], *text = NULL;
    size_t len = 0;
    struct core_err err = {0};
    path_in(p, sizeof(p), dir, SHIM_PID);
    if (core_file_read(p, 64, &text, &len, &err))
        return 0;
    long pid = strtol(text, NULL, 10);
    core_free(text);
    return pid > 1 ? pid : 0;
}

int deploy_shim_stop(const char *dir, int64_t timeout_ms)
{
    if (!deploy_shim_alive(dir))
        return 0;
    long pid = read_pid(dir);
    if (pid)
        kill((pid_t)pid, SIGTERM);
    int64_t deadline = core_now_ms() + timeout_ms;
    while (core_now_ms() < deadline) {
        if (!deploy_shim_alive(dir))
            return 0;
        usleep(20 * 1000);
    }
    if (pid)
        kill((pid_t)pid, SIGKILL); /* the sandbox dies with it (--die-with-parent) */
    deadline = core_now_ms() + 2000;
    while (core_now_ms() < deadline) {
        if (!deploy_shim_alive(dir))
            return 0;
        usleep(20 * 1000);
    }
    return -1;
}

static void close_from(int lowfd)
{
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0U) != 0) {
        for (int fd = lowfd; fd < 65536; fd++)
            close(fd);
    }
}

int deploy_shim_launch(const char *self_exe, const char *dir, const char *secrets_json,
                       struct core_err *err)
{
    char logp[4200];
    path_in(logp, sizeof(logp), dir, SHIM_LOG);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return core_err_set(err, CORE_E_IO, "pipe: %s", strerror(errno));
    pid_t child = fork();
    if (child < 0) {
        close(p[0]);
        close(p[1]);
        return core_err_set(err, CORE_E_IO, "fork: %s", strerror(errno));
    }
    if (child == 0) {
        /* first child: new session, fork the shim, exit so the shim is re-parented to init */
        setsid();
        pid_t g = fork();
        if (g != 0)
            _exit(g < 0 ? 1 : 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (logfd < 0 || dup2(p[0], 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(127);
        close_from(3);
        char *argv[] = {(char *)"pave", (char *)"shim", (char *)dir, NULL};
        execve(self_exe, argv, environ);
        _exit(127);
    }
    close(p[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    int rc = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = core_err_set(err, CORE_E_IO, "cannot start the replica shim (fork failed)");
    /* the secrets go through the pipe; the shim reads them to EOF before anything else */
    const char *s = secrets_json ? secrets_json : "{}";
    size_t left = strlen(s);
    while (!rc && left) {
        ssize_t w = write(p[1], s, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = core_err_set(err, CORE_E_IO, "cannot hand secrets to the shim: %s; see %s",
                              strerror(errno), logp);
            break;
        }
        s += w;
        left -= (size_t)w;
    }
    close(p[1]);
    if (rc)
        return rc;
    int64_t deadline = core_now_ms() + 10000;
    while (core_now_ms() < deadline) {
        if (deploy_shim_alive(dir) && read_pid(dir))
            return 0;
        usleep(10 * 1000);
    }
    return core_err_set(err, CORE_E_IO, "the replica shim did not start; see %s", logp);
}

/* ---- the shim process ------------------------------------------------------------------- */

/* One line on the shim's log (DIR/shim.log): a message and an optional detail. */
static void shim_log(const char *msg, const char *detail)
{
    char ts[40];
    core_time_format(core_now_ms(), ts, sizeof(ts));
    fprintf(stderr, "%s shim: %s%s%s\n", ts, msg, detail ? ": " : "", detail ? detail : "");
}

static char **strv_from_json(json_t *arr)
{
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    char **v = core_calloc(n + 1, sizeof(char *));
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        v[i] = core_strdup(s ? s : "");
        if (!v[i]) {
            for (size_t j = 0; j < i; j++)
                core_free(v[j]);
            core_free(v);
            return NULL;
        }
    }
    return v;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        core_free(v[i]);
    core_free(v);
}

static char *read_all_stdin(size_t max)
{
    struct core_buf b;
    core_buf_init(&b, max);
    char chunk[4096];
    for (;;) {
        ssize_t r = read(0, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (core_buf_add(&b, chunk, (size_t)r)) {
            core_buf_release(&b);
            return NULL;
        }
    }
    if (core_buf_add(&b, "", 1)) {
        core_buf_release(&b);
        return NULL;
    }
    return b.data;
}

struct status_acc {
    json_t *obj;
};

static int status_one(void *arg, const struct runtime_replica_status *st)
{
    struct status_acc *a = arg;
    a->obj = json_pack("{s:s,s:i,s:i,s:i,s:i,s:I,s:s,s:s,s:I}", "state", st->state_name,
                       "port", st->port, "restarts", st->restarts, "exits", st->exits,
                       "last_exit_code", st->last_exit_code, "last_start_ms",
                       (json_int_t)st->last_start_ms, "isolation", st->isolation, "last_error",
                       st->last_error, "shim_pid", (json_int_t)getpid());
    return 0;
}

static void write_status(const char *dir, json_t *obj, char **last)
{
    char *text = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
    if (!text)
        return;
    if (*last && strcmp(*last, text) == 0) {
        free(text);
        return;
    }
    char p[4200];
    struct core_err err = {0};
    path_in(p, sizeof(p), dir, SHIM_STATUS);
    if (core_file_write_atomic(p, text, strlen(text), 0600, &err))
        shim_log("cannot write status", err.msg);
    free(*last);
    *last = text;
}

static void wipe(char *s)
{
    if (!s)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = 0;
}

int deploy_shim_main(int argc, char **argv)
{
    if (argc != 3 || argv[2][0] != '/') {
        fprintf(stderr, "pave: 'pave shim DIR' is internal: the deploy controller runs it\n");
        return 2;
    }
    const char *dir = argv[2];
    char p[4200];
    struct core_err err = {0};
    int rc = 1;
    char *spec_text = NULL, *secrets_text = NULL, *last = NULL;
    size_t spec_len = 0;
    json_t *spec = NULL, *secrets = NULL;
    char **av = NULL, **envv = NULL;
    struct sandbox_file *files = NULL;
    size_t nfiles = 0;
    struct runtime_supervisor *sup = NULL;

    /* stdin first: the controller is blocked writing the secrets until we read them */
    secrets_text = read_all_stdin(SHIM_SECRETS_MAX);
    path_in(p, sizeof(p), dir, SHIM_LOCK);
    int lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
        shim_log("another shim owns the directory (or it cannot be locked)", dir);
        goto out;
    }
    char pidtext[32];
    snprintf(pidtext, sizeof(pidtext), "%ld\n", (long)getpid());
    path_in(p, sizeof(p), dir, SHIM_PID);
    if (core_file_write_atomic(p, pidtext, strlen(pidtext), 0600, &err)) {
        shim_log("error", err.msg);
        goto out;
    }
    path_in(p, sizeof(p), dir, SHIM_SPEC);
    if (core_file_read(p, 1u << 20, &spec_text, &spec_len, &err)) {
        shim_log("error", err.msg);
        goto out;
    }
    json_error_t jerr;
    spec = json_loadb(spec_text, spec_len, 0, &jerr);
    secrets = json_loads(secrets_text ? secrets_text : "{}", 0, &jerr);
    wipe(secrets_text);
    if (!json_is_object(spec) || !json_is_object(secrets)) {
        shim_log("unreadable spec or secrets", dir);
        goto out;
    }
    av = strv_from_json(json_object_get(spec, "argv"));
    envv = strv_from_json(json_object_get(spec, "environ"));
    if (!av || !av[0] || !envv) {
        shim_log("spec has no command", dir);
        goto out;
    }
    /* the service certificate (tls/...) is a convenience, unlike secrets: where the replica
     * runs unisolated (no bubblewrap, --allow-unisolated), no files can be mounted, so it goes
     * without rather than not at all */
    if (json_is_true(json_object_get(spec, "allow_unisolated")) &&
        json_object_get(secrets, "tls/tls.crt")) {
        struct sandbox_caps caps;
        sandbox_probe(&caps);
        if (!caps.bwrap) {
            json_object_del(secrets, "tls/tls.crt");
            json_object_del(secrets, "tls/tls.key");
            json_object_del(secrets, "tls/ca.crt");
            shim_log("no isolation: the replica gets no service certificate files", NULL);
        }
    }
    nfiles = json_object_size(secrets);
    files = core_calloc(nfiles + 1, sizeof(*files));
    char (*paths)[300] = core_calloc(nfiles + 1, sizeof(*paths));
    if (!files || !paths) {
        core_free(paths);
        goto out;
    }
    {
        const char *k;
        json_t *v;
        size_t i = 0;
        json_object_foreach (secrets, k, v) {
            snprintf(paths[i], sizeof(paths[i]), "/run/secrets/%s", k);
            files[i].inside = paths[i];
            files[i].data = json_string_value(v) ? json_string_value(v) : "";
            files[i].len = json_string_length(v);
            i++;
        }
    }
    const char *bundle = json_string_value(json_object_get(spec, "bundle"));
    const char *workdir = json_string_value(json_object_get(spec, "workdir"));
    struct runtime_replica_spec rs = {
        .argv = (const char *const *)av,
        .env = (const char *const *)envv,
        .bundle_dir = bundle,
        .workdir = workdir,
        .limits = {.cpu_millicores = json_integer_value(json_object_get(spec, "cpu_millicores")),
                   .memory_bytes = json_integer_value(json_object_get(spec, "memory_bytes")),
                   .pids = json_integer_value(json_object_get(spec, "pids"))},
        .log_fd = -1,
        .log_path = json_string_value(json_object_get(spec, "log")),
        .port = (int)json_integer_value(json_object_get(spec, "port")),
        .files = files,
        .nfiles = nfiles,
        .allow_unisolated = json_is_true(json_object_get(spec, "allow_unisolated")),
    };
    const char *name = json_string_value(json_object_get(spec, "name"));
    /* block the stop signals before threads start, so only sigtimedwait below sees them */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    sup = runtime_supervisor_start(name ? name : "replica", &rs, 1, &err);
    /* the supervisor copied everything, secrets included */
    for (size_t i = 0; i < nfiles; i++)
        files[i].data = NULL;
    json_decref(secrets);
    secrets = NULL;
    core_free(paths);
    if (!sup) {
        shim_log("cannot start the replica", err.msg);
        json_t *st = json_pack("{s:s,s:s,s:I}", "state", "failed", "last_error", err.msg,
                               "shim_pid", (json_int_t)getpid());
        write_status(dir, st, &last);
        json_decref(st);
        goto out;
    }
    shim_log("replica started", dir);
    path_in(p, sizeof(p), dir, SHIM_SPEC);
    for (;;) {
        struct status_acc acc = {NULL};
        runtime_supervisor_status(sup, status_one, &acc);
        if (acc.obj) {
            write_status(dir, acc.obj, &last);
            json_decref(acc.obj);
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&stop, NULL, &ts);
        if (sig > 0) {
            shim_log("stopping on signal", NULL);
            break;
        }
        struct stat sb;
        if (stat(p, &sb) != 0) {
            shim_log("replica directory removed; stopping", NULL);
            break;
        }
    }
    runtime_supervisor_stop(sup);
    sup = NULL;
    json_t *st = json_pack("{s:s,s:I}", "state", "stopped", "shim_pid", (json_int_t)getpid());
    write_status(dir, st, &last);
    json_decref(st);
    rc = 0;
out:
    json_decref(secrets);
    json_decref(spec);
    core_free(spec_text);
    if (secrets_text)
        core_free(secrets_text);
    strv_free(av);
    strv_free(envv);
    core_free(files);
    free(last);
    return rc;
}
