/* ingress: one supervised haproxy (master-worker) driven through its config and Runtime API. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/core.h"
#include "ingress/ingress.h"
#include "ingress/ingress_int.h"

#define READY_TIMEOUT_MS 15000
#define RELOAD_TIMEOUT_MS 15000
#define STOP_TIMEOUT_MS 5000
#define ADMIN_IO_TIMEOUT_S 5
#define ADMIN_REPLY_MAX (4 * 1024 * 1024)
#define ROUTES_MAX (16 * 1024 * 1024)
#define CMDLINE_MAX (64 * 1024)

struct ingress {
    char *dir;
    char *cfg_path;
    char *cfg_new;
    char *admin_sock;
    char *master_sock;
    char *pid_file;
    char *state_file;
    char *log_path;
    char *master_pid_file; /* our record of the master pid, for adoption */
    char *routes_path;     /* routes.json: the routing table, for adoption */
    char *listen_addr;
    int listen_port;
    char *bin;
    int max_servers;
    pid_t master;
    bool is_child; /* master is our child: waitpid() applies */
    bool detach;
    bool adopted;
    struct ingress_service *svcs;
    size_t nsvcs;
    /* TLS termination: fe_https on tls_addr:tls_port (0: off) */
    char *tls_addr;
    int tls_port;
    char *tls_default; /* DATA/ingress/tls-default.pem */
    char *crt_list;    /* DATA/ingress/crt-list, rewritten on every change */
    struct tls_entry *tls;
    size_t ntls;
};

/* One line of the crt-list: a certificate file and the SNI names it answers. */
struct tls_entry {
    char *file;
    char **sni;
    size_t nsni;
};

/* ---- small helpers ------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = core_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void service_release(struct ingress_service *s)
{
    core_free(s->name);
    core_free(s->host);
    for (size_t i = 0; i < s->npaths; i++)
        core_free(s->paths[i]);
    core_free(s->paths);
    core_free(s->health_path);
    core_free(s->caller_ports);
    core_free(s->used);
    memset(s, 0, sizeof(*s));
}

static struct ingress_service *service_find(struct ingress *ing, const char *name)
{
    for (size_t i = 0; name && i < ing->nsvcs; i++)
        if (strcmp(ing->svcs[i].name, name) == 0)
            return &ing->svcs[i];
    return NULL;
}

/* Parses "sN" within the slot range. returns: N or 0. */
static int slot_index(const struct ingress *ing, const char *slot)
{
    if (!slot || slot[0] != 's' || slot[1] < '1' || slot[1] > '9')
        return 0;
    char *end = NULL;
    long n = strtol(slot + 1, &end, 10);
    if (*end || n < 1 || n > ing->max_servers)
        return 0;
    return (int)n;
}

/* First line of a reply, control characters blanked, for error messages. */
static void reply_line(const char *reply, char *out, size_t outsz)
{
    size_t i = 0;
    for (; reply[i] && reply[i] != '\n' && i + 1 < outsz; i++)
        out[i] = (unsigned char)reply[i] < 0x20 ? ' ' : reply[i];
    out[i] = 0;
}

static bool reply_blank(const char *reply)
{
    for (const char *p = reply; *p; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
            return false;
    return true;
}

/* ---- Runtime API client -------------------------------------------------------------- */

/* Sends `cmd` (a command line, or a command ending in "<<" followed by its payload lines) and
 * reads the whole answer. */
static int admin_send(const char *sock_path, const char *cmd, char **out, struct core_err *err)
{
    struct core_buf reply;
    core_buf_init(&reply, ADMIN_REPLY_MAX);
    int fd = -1, rc = 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    *out = NULL;
    if (strlen(sock_path) >= sizeof(sa.sun_path)) {
        rc = core_err_set(err, CORE_E_INVAL, "socket path '%s' is too long", sock_path);
        goto out;
    }
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = core_err_set(err, CORE_E_IO, "socket: %s", strerror(errno));
        goto out;
    }
    struct timeval tv = {.tv_sec = ADMIN_IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        rc = core_err_set(err, CORE_E_IO, "cannot connect to '%s': %s", sock_path,
                          strerror(errno));
        goto out;
    }
    size_t clen = strlen(cmd);
    char *line = core_malloc(clen + 2);
    if (!line) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(line, cmd, clen);
    line[clen] = '\n';
    line[clen + 1] = 0;
    ssize_t w = send(fd, line, clen + 1, MSG_NOSIGNAL);
    core_free(line);
    line = NULL;
    if (w != (ssize_t)(clen + 1)) {
        rc = core_err_set(err, CORE_E_IO, "cannot send to '%s'", sock_path);
        goto out;
    }
    /* half-close: the master CLI keeps a connection open until the client stops writing */
    shutdown(fd, SHUT_WR);
    for (;;) {
        char tmp[4096];
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = core_err_set(err, CORE_E_IO, "reading from '%s': %s", sock_path,
                              strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        if ((rc = core_buf_add(&reply, tmp, (size_t)r))) {
            rc = core_err_set(err, rc, "reply from '%s' is too big", sock_path);
            goto out;
        }
    }
    *out = core_buf_detach(&reply, NULL);
    if (!*out)
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
out:
    if (fd >= 0)
        close(fd);
    core_buf_release(&reply);
    return rc;
}

static int admin_cmd_at(const char *sock_path, const char *cmd, char **out, struct core_err *err)
{
    *out = NULL;
    if (strchr(cmd, '\n'))
        return core_err_set(err, CORE_E_INVAL, "runtime command holds a newline");
    return admin_send(sock_path, cmd, out, err);
}

int ingress_admin_cmd(struct ingress *ing, const char *cmd, char **out, struct core_err *err)
{
    if (strchr(cmd, ';')) {
        *out = NULL;
        return core_err_set(err, CORE_E_INVAL, "runtime command holds a ';'");
    }
    return admin_cmd_at(ing->admin_sock, cmd, out, err);
}

/* Runs a command whose success answer is empty (or, with `ok_word`, contains ok_word). */
static int admin_expect(struct ingress *ing, const char *cmd, const char *ok_word,
                        struct core_err *err)
{
    char *reply = NULL;
    int rc = admin_cmd_at(ing->admin_sock, cmd, &reply, err);
    if (rc)
        goto out;
    if (reply_blank(reply) || (ok_word && strstr(reply, ok_word)))
        goto out;
    char line[200];
    reply_line(reply, line, sizeof(line));
    rc = core_err_set(err, CORE_E_INVAL, "haproxy refused '%s': %s", cmd, line);
out:
    core_free(reply);
    return rc;
}

/* Pid of the worker answering the admin socket. */
static int worker_pid(struct ingress *ing, long *pid, struct core_err *err)
{
    char *reply = NULL;
    int rc = ingress_admin_cmd(ing, "show info", &reply, err);
    if (rc)
        goto out;
    const char *p = strstr(reply, "\nPid: ");
    if (!p && strncmp(reply, "Pid: ", 5) == 0)
        p = reply - 1;
    if (!p) {
        rc = core_err_set(err, CORE_E_IO, "no Pid in 'show info' answer");
        goto out;
    }
    *pid = strtol(p + 6, NULL, 10);
    if (*pid <= 0)
        rc = core_err_set(err, CORE_E_IO, "bad Pid in 'show info' answer");
out:
    core_free(reply);
    return rc;
}

/* ---- process management -------------------------------------------------------------- */

/* True if /proc/PID/cmdline is a haproxy (argv[0] basename contains "haproxy") started with
 * `-f <our haproxy.cfg>`. Guards adoption and liveness against a recycled pid. */
static bool proc_is_our_haproxy(const struct ingress *ing, pid_t pid)
{
    char path[64], *buf = NULL;
    size_t len = 0;
    bool ok = false;
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
    if (core_file_read(path, CMDLINE_MAX, &buf, &len, NULL) != 0)
        goto out;
    /* NUL-separated arguments; a zombie has an empty cmdline */
    const char *arg = buf, *end = buf + len, *prev = NULL;
    for (int i = 0; arg < end; i++) {
        size_t n = strnlen(arg, (size_t)(end - arg));
        if (i == 0) {
            const char *base = strrchr(arg, '/');
            if (!strstr(base ? base + 1 : arg, "haproxy"))
                goto out;
        } else if (prev && strcmp(prev, "-f") == 0 && strcmp(arg, ing->cfg_path) == 0) {
            ok = true;
            goto out;
        }
        prev = arg;
        arg += n + 1;
    }
out:
    core_free(buf);
    return ok;
}

/* Parent pid from /proc/PID/stat, or -1. */
static pid_t proc_ppid(pid_t pid)
{
    char path[64], *buf = NULL;
    size_t len = 0;
    pid_t ppid = -1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (core_file_read(path, 4096, &buf, &len, NULL) != 0)
        return -1;
    /* "pid (comm) state ppid ...": comm may hold spaces and parens, so scan from the last ')' */
    const char *rp = strrchr(buf, ')');
    char state = 0;
    long pp = -1;
    if (rp && sscanf(rp + 1, " %c %ld", &state, &pp) == 2)
        ppid = (pid_t)pp;
    core_free(buf);
    return ppid;
}

/* Our child: waitpid. Adopted master that is not our child: kill(pid, 0) plus a /proc check
 * (a gone or recycled pid, or a zombie, is not alive). */
static bool master_alive(struct ingress *ing)
{
    int status;
    if (ing->master <= 0)
        return false;
    if (ing->is_child) {
        pid_t w = waitpid(ing->master, &status, WNOHANG);
        if (w == ing->master || (w < 0 && errno == ECHILD)) {
            ing->master = -1;
            return false;
        }
        return true;
    }
    if ((kill(ing->master, 0) != 0 && errno != EPERM) || !proc_is_our_haproxy(ing, ing->master)) {
        ing->master = -1;
        return false;
    }
    return true;
}

static int spawn_haproxy(struct ingress *ing, struct core_err *err)
{
    char mopt[4200];
    snprintf(mopt, sizeof(mopt), "%s,mode,600", ing->master_sock);
    int logfd = open(ing->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0)
        return core_err_set(err, CORE_E_IO, "cannot open '%s': %s", ing->log_path,
                            strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(logfd);
        return core_err_set(err, CORE_E_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        if (ing->detach)
            setsid(); /* own session: no terminal signals, survives the caller */
        else
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* a crashed caller leaves no stray haproxy */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(logfd, 1);
        dup2(logfd, 2);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        execlp(ing->bin, ing->bin, "-W", "-S", mopt, "-f", ing->cfg_path, (char *)NULL);
        _exit(127);
    }
    close(logfd);
    ing->master = pid;
    ing->is_child = true;
    char line[32];
    int n = snprintf(line, sizeof(line), "%ld\n", (long)pid);
    return core_file_write_atomic(ing->master_pid_file, line, (size_t)n, 0600, err);
}

/* Waits until the worker answering the admin socket is not not_pid. After a reload the old
 * worker keeps its copy of the socket until the master tells it to stop, so for a moment either
 * worker may answer: a reload waits until the old worker is gone or the new one has answered
 * RELOAD_SETTLE_ANSWERS times in a row, so Runtime API commands that follow reach the worker
 * that stays. */
#define RELOAD_SETTLE_ANSWERS 5
static int wait_ready(struct ingress *ing, long not_pid, struct core_err *err)
{
    int64_t deadline = core_now_ms() + (not_pid ? RELOAD_TIMEOUT_MS : READY_TIMEOUT_MS);
    struct core_err last = {0};
    int answers = 0;
    while (core_now_ms() < deadline) {
        if (!master_alive(ing))
            return core_err_set(err, CORE_E_IO, "haproxy exited; see '%s'", ing->log_path);
        long pid = 0;
        if (worker_pid(ing, &pid, &last) == 0 && pid != not_pid) {
            if (!not_pid || ++answers >= RELOAD_SETTLE_ANSWERS ||
                (kill((pid_t)not_pid, 0) != 0 && errno == ESRCH))
                return 0;
            usleep(20 * 1000);
            continue;
        }
        answers = 0;
        usleep(50 * 1000);
    }
    return core_err_set(err, CORE_E_IO, "haproxy not ready in time (%s); see '%s'", last.msg,
                        ing->log_path);
}

static void kill_master(struct ingress *ing)
{
    if (!master_alive(ing))
        return;
    kill(ing->master, SIGTERM);
    int64_t deadline = core_now_ms() + STOP_TIMEOUT_MS;
    while (core_now_ms() < deadline) {
        if (!master_alive(ing))
            return;
        usleep(20 * 1000);
    }
    kill(ing->master, SIGKILL);
    if (ing->is_child) {
        waitpid(ing->master, NULL, 0);
    } else {
        deadline = core_now_ms() + STOP_TIMEOUT_MS;
        while (master_alive(ing) && core_now_ms() < deadline)
            usleep(20 * 1000);
    }
    ing->master = -1;
}

/* ---- config ---------------------------------------------------------------------------- */

/* Renders services into haproxy.cfg.new, validates it with haproxy -c, then renames it over
 * haproxy.cfg. On failure haproxy.cfg is untouched. */
static int write_config(struct ingress *ing, const struct ingress_service *svcs, size_t n,
                        struct core_err *err)
{
    struct core_buf cfg;
    core_buf_init(&cfg, 16 * 1024 * 1024);
    struct ingress_cfg_input in = {
        .listen_addr = ing->listen_addr,
        .listen_port = ing->listen_port,
        .admin_sock = ing->admin_sock,
        .pid_file = ing->pid_file,
        .state_file = ing->state_file,
        .max_servers = ing->max_servers,
        .services = svcs,
        .nservices = n,
        .tls_addr = ing->tls_addr,
        .tls_port = ing->tls_port,
        .tls_default = ing->tls_default,
        .tls_crt_list = ing->crt_list,
    };
    int rc = ingress_cfg_render(&in, &cfg, err);
    if (rc)
        goto out;
    if ((rc = core_file_write_atomic(ing->cfg_new, cfg.data, cfg.len, 0600, err)))
        goto out;
    if ((rc = ingress_cfg_check(ing->bin, ing->cfg_new, err))) {
        unlink(ing->cfg_new);
        goto out;
    }
    if (rename(ing->cfg_new, ing->cfg_path) != 0) {
        rc = core_err_set(err, CORE_E_IO, "cannot rename to '%s': %s", ing->cfg_path,
                          strerror(errno));
        unlink(ing->cfg_new);
        goto out;
    }
out:
    core_buf_release(&cfg);
    return rc;
}

/* Saves slot state for the next worker, then SIGUSR2 to the master and waits until a new
 * worker answers the admin socket. */
static int reload(struct ingress *ing, struct core_err *err)
{
    char *state = NULL;
    long old = 0;
    int rc = worker_pid(ing, &old, err);
    if (rc)
        goto out;
    if ((rc = ingress_admin_cmd(ing, "show servers state", &state, err)))
        goto out;
    if ((rc = core_file_write_atomic(ing->state_file, state, strlen(state), 0600, err)))
        goto out;
    if (kill(ing->master, SIGUSR2) != 0) {
        rc = core_err_set(err, CORE_E_IO, "cannot signal haproxy master: %s", strerror(errno));
        goto out;
    }
    if ((rc = wait_ready(ing, old, err)))
        goto out;
    log_info("ingress", "haproxy reloaded", LOG_INT("old_worker", old));
out:
    core_free(state);
    return rc;
}

/* ---- routes.json --------------------------------------------------------------------- */

/* Writes the in-memory routing table to routes.json (atomic, 0600). */
static int routes_save(struct ingress *ing, struct core_err *err)
{
    json_t *root = json_object(), *arr = json_array();
    char *text = NULL;
    int rc = 0;
    if (!root || !arr || json_object_set_new(root, "version", json_integer(1)) ||
        json_object_set(root, "services", arr)) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ing->nsvcs; i++) {
        const struct ingress_service *s = &ing->svcs[i];
        json_t *o = json_object(), *paths = json_array();
        bool bad = !o || !paths || json_array_append_new(arr, o);
        if (bad) {
            json_decref(o);
            json_decref(paths);
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
        bad = json_object_set_new(o, "paths", paths) != 0;
        for (size_t j = 0; !bad && j < s->npaths; j++)
            bad = json_array_append_new(paths, json_string(s->paths[j])) != 0;
        bad = bad || json_object_set_new(o, "name", json_string(s->name)) ||
              json_object_set_new(o, "host", s->host ? json_string(s->host) : json_null()) ||
              json_object_set_new(o, "health_path",
                                  json_string(s->health_path ? s->health_path
                                                             : INGRESS_DEFAULT_HEALTH_PATH)) ||
              json_object_set_new(o, "internal_port", json_integer(s->internal_port)) ||
              json_object_set_new(o, "strict", json_boolean(s->strict));
        json_t *callers = bad ? NULL : json_array();
        bad = bad || !callers || json_object_set_new(o, "caller_ports", callers);
        for (size_t j = 0; !bad && j < s->ncaller_ports; j++)
            bad = json_array_append_new(callers, json_integer(s->caller_ports[j])) != 0;
        if (bad) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    rc = core_file_write_atomic(ing->routes_path, text, strlen(text), 0600, err);
out:
    free(text);
    json_decref(arr);
    json_decref(root);
    return rc;
}

static const char *json_str_or_null(json_t *o, const char *key, bool *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

/* Loads routes.json into ing->svcs (slots all free), validating every entry as route_set
 * would. On failure ing->svcs is left empty. */
static int routes_load(struct ingress *ing, struct core_err *err)
{
    json_t *root = NULL;
    char *text = NULL;
    size_t len = 0;
    struct ingress_service *svcs = NULL;
    size_t n = 0;
    int rc = core_file_read(ing->routes_path, ROUTES_MAX, &text, &len, err);
    if (rc)
        goto out;
    json_error_t jerr;
    root = json_loadb(text, len, 0, &jerr);
    json_t *arr = root ? json_object_get(root, "services") : NULL;
    if (!json_is_array(arr) || json_integer_value(json_object_get(root, "version")) != 1) {
        rc = core_err_set(err, CORE_E_INVAL, "'%s' is not a version 1 routing table",
                          ing->routes_path);
        goto out;
    }
    svcs = core_calloc(json_array_size(arr) + 1, sizeof(*svcs));
    if (!svcs) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i), *paths = json_object_get(o, "paths");
        json_t *port = json_object_get(o, "internal_port");
        bool bad = !json_is_object(o) || (paths && !json_is_array(paths)) ||
                   (port && !json_is_integer(port)) ||
                   json_array_size(paths) > INGRESS_MAX_PATHS;
        const char *name = json_str_or_null(o, "name", &bad);
        const char *host = json_str_or_null(o, "host", &bad);
        const char *hp = json_str_or_null(o, "health_path", &bad);
        json_int_t ip = port ? json_integer_value(port) : 0;
        struct ingress_service *s = &svcs[n++];
        if (bad || ingress_check_service(name, err) || (host && ingress_check_host(host, err)) ||
            (hp && ingress_check_health_path(hp, err)) || ip < 0 || ip > 65535) {
            rc = core_err_set(err, CORE_E_INVAL, "'%s': bad service entry %zu",
                              ing->routes_path, i);
            goto out;
        }
        s->name = core_strdup(name);
        s->host = host ? core_strdup(host) : NULL;
        s->health_path = hp && strcmp(hp, INGRESS_DEFAULT_HEALTH_PATH) ? core_strdup(hp) : NULL;
        s->internal_port = (int)ip;
        s->strict = json_is_true(json_object_get(o, "strict"));
        json_t *callers = json_object_get(o, "caller_ports");
        if (callers && (!json_is_array(callers) ||
                        json_array_size(callers) > INGRESS_MAX_CALLERS)) {
            rc = core_err_set(err, CORE_E_INVAL, "'%s': bad caller ports in '%s'",
                              ing->routes_path, name);
            goto out;
        }
        s->caller_ports = core_calloc(json_array_size(callers) + 1, sizeof(int));
        if (!s->caller_ports) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
        for (size_t j = 0; j < json_array_size(callers); j++) {
            json_int_t cp = json_integer_value(json_array_get(callers, j));
            if (!json_is_integer(json_array_get(callers, j)) || cp < 1 || cp > 65535) {
                rc = core_err_set(err, CORE_E_INVAL, "'%s': bad caller port in '%s'",
                                  ing->routes_path, name);
                goto out;
            }
            s->caller_ports[s->ncaller_ports++] = (int)cp;
        }
        s->paths = core_calloc(json_array_size(paths) + 1, sizeof(*s->paths));
        s->used = core_calloc((size_t)ing->max_servers, sizeof(*s->used));
        if (!s->name || (host && !s->host) || !s->paths || !s->used ||
            (hp && strcmp(hp, INGRESS_DEFAULT_HEALTH_PATH) && !s->health_path)) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
        for (size_t j = 0; j < json_array_size(paths); j++) {
            json_t *pv = json_array_get(paths, j);
            if (!json_is_string(pv) || ingress_check_path(json_string_value(pv), err)) {
                rc = core_err_set(err, CORE_E_INVAL, "'%s': bad path in service '%s'",
                                  ing->routes_path, name);
                goto out;
            }
            if (!(s->paths[s->npaths++] = core_strdup(json_string_value(pv)))) {
                rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
                goto out;
            }
        }
        for (size_t k = 0; k + 1 < n; k++) {
            if (strcmp(svcs[k].name, s->name) == 0 ||
                (s->internal_port && svcs[k].internal_port == s->internal_port)) {
                rc = core_err_set(err, CORE_E_INVAL, "'%s': duplicate service or port in '%s'",
                                  ing->routes_path, name);
                goto out;
            }
        }
    }
    ing->svcs = svcs;
    ing->nsvcs = n;
    svcs = NULL;
    n = 0;
out:
    for (size_t i = 0; i < n; i++)
        service_release(&svcs[i]);
    core_free(svcs);
    json_decref(root);
    core_free(text);
    return rc;
}

static void services_clear(struct ingress *ing)
{
    for (size_t i = 0; i < ing->nsvcs; i++)
        service_release(&ing->svcs[i]);
    core_free(ing->svcs);
    ing->svcs = NULL;
    ing->nsvcs = 0;
}

/* ---- adoption -------------------------------------------------------------------------- */

/* Pid recorded in master.pid, or 0. */
static pid_t read_master_pid(const struct ingress *ing)
{
    char *text = NULL;
    size_t len = 0;
    long pid = 0;
    if (core_file_read(ing->master_pid_file, 64, &text, &len, NULL) == 0) {
        char *end = NULL;
        pid = strtol(text, &end, 10);
        if (end == text || (*end && *end != '\n') || pid <= 1 || pid > (long)INT32_MAX)
            pid = 0;
    }
    core_free(text);
    return (pid_t)pid;
}

static int recover_slot(void *arg, const struct ingress_slot_status *st)
{
    struct ingress_service *s = arg;
    long idx = strtol(st->slot + 1, NULL, 10); /* "sN", already range-checked by the parser */
    /* used = not in maintenance (ready or draining): see ingress_backend_status() for the bits */
    s->used[idx - 1] = st->admin != INGRESS_ADMIN_MAINT;
    return 0;
}

static int write_config(struct ingress *ing, const struct ingress_service *svcs, size_t n,
                        struct core_err *err);
static int reload(struct ingress *ing, struct core_err *err);

/* Takes over the running master ing->master: master socket answers, routing table from
 * routes.json, worker answers, slot usage from `show servers state`. If haproxy.cfg as we
 * would render it now differs from the one on disk (a crash mid-change, or a changed listen
 * address or slot count), writes it and reloads. */
static int adopt_master(struct ingress *ing, struct core_err *err)
{
    char *reply = NULL, *disk = NULL;
    size_t dlen = 0;
    struct core_buf cfg;
    core_buf_init(&cfg, 16 * 1024 * 1024);
    int rc = admin_cmd_at(ing->master_sock, "show proc", &reply, err);
    if (rc)
        goto out;
    if (!strstr(reply, "master")) {
        rc = core_err_set(err, CORE_E_IO, "master socket '%s' gave no process list",
                          ing->master_sock);
        goto out;
    }
    if ((rc = routes_load(ing, err)))
        goto out;
    if ((rc = wait_ready(ing, 0, err)))
        goto out;
    for (size_t i = 0; i < ing->nsvcs; i++)
        if ((rc = ingress_backend_status(ing, ing->svcs[i].name, recover_slot, &ing->svcs[i],
                                         err)))
            goto out;
    struct ingress_cfg_input in = {
        .listen_addr = ing->listen_addr,
        .listen_port = ing->listen_port,
        .admin_sock = ing->admin_sock,
        .pid_file = ing->pid_file,
        .state_file = ing->state_file,
        .max_servers = ing->max_servers,
        .services = ing->svcs,
        .nservices = ing->nsvcs,
        .tls_addr = ing->tls_addr,
        .tls_port = ing->tls_port,
        .tls_default = ing->tls_default,
        .tls_crt_list = ing->crt_list,
    };
    if ((rc = ingress_cfg_render(&in, &cfg, err)))
        goto out;
    if (core_file_read(ing->cfg_path, 16 * 1024 * 1024, &disk, &dlen, NULL) != 0 ||
        dlen != cfg.len || memcmp(disk, cfg.data, dlen) != 0) {
        log_warn("ingress", "adopted haproxy runs another config; reloading",
                 LOG_INT("master", ing->master));
        if ((rc = write_config(ing, ing->svcs, ing->nsvcs, err)) || (rc = reload(ing, err)))
            goto out;
    }
out:
    core_buf_release(&cfg);
    core_free(disk);
    core_free(reply);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static int check_pem(const char *pem, struct core_err *err);
static int crt_list_load(struct ingress *ing, struct core_err *err);
static void tls_clear(struct ingress *ing);

struct ingress *ingress_start(const struct ingress_config *cfg, struct core_err *err)
{
    struct ingress *ing = NULL;
    int rc = 0;

    if (!cfg || !cfg->data_dir || !*cfg->data_dir) {
        rc = core_err_set(err, CORE_E_INVAL, "ingress needs a data dir");
        goto out;
    }
    if (cfg->max_servers < 0 || cfg->max_servers > INGRESS_MAX_SERVERS ||
        cfg->listen_port < 0 || cfg->listen_port > 65535) {
        rc = core_err_set(err, CORE_E_INVAL, "ingress max servers or port out of range");
        goto out;
    }
    ing = core_calloc(1, sizeof(*ing));
    if (!ing) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    ing->master = -1;
    ing->detach = cfg->detach;
    ing->listen_port = cfg->listen_port ? cfg->listen_port : 8080;
    ing->max_servers = cfg->max_servers ? cfg->max_servers : 16;
    ing->dir = path_join(cfg->data_dir, "ingress");
    ing->listen_addr = core_strdup(cfg->listen_addr ? cfg->listen_addr : "127.0.0.1");
    ing->bin = core_strdup(cfg->haproxy_bin ? cfg->haproxy_bin : "haproxy");
    if (!ing->dir || !ing->listen_addr || !ing->bin) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    ing->cfg_path = path_join(ing->dir, "haproxy.cfg");
    ing->cfg_new = path_join(ing->dir, "haproxy.cfg.new");
    ing->admin_sock = path_join(ing->dir, "admin.sock");
    ing->master_sock = path_join(ing->dir, "master.sock");
    ing->pid_file = path_join(ing->dir, "haproxy.pid");
    ing->state_file = path_join(ing->dir, "server-state");
    ing->log_path = path_join(ing->dir, "haproxy.log");
    ing->master_pid_file = path_join(ing->dir, "master.pid");
    ing->routes_path = path_join(ing->dir, "routes.json");
    ing->tls_default = path_join(ing->dir, "tls-default.pem");
    ing->crt_list = path_join(ing->dir, "crt-list");
    ing->tls_port = cfg->tls_port;
    ing->tls_addr = core_strdup(cfg->tls_addr ? cfg->tls_addr : ing->listen_addr);
    if (!ing->tls_default || !ing->crt_list || !ing->tls_addr) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if (!ing->cfg_path || !ing->cfg_new || !ing->admin_sock || !ing->master_sock ||
        !ing->pid_file || !ing->state_file || !ing->log_path || !ing->master_pid_file ||
        !ing->routes_path) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = core_mkdir_p(ing->dir, 0700, err)))
        goto out;
    if (ing->tls_port) {
        if (ing->tls_port < 0 || ing->tls_port > 65535 || ing->tls_port == ing->listen_port) {
            rc = core_err_set(err, CORE_E_INVAL, "TLS port %d is invalid", ing->tls_port);
            goto out;
        }
        /* haproxy does not start a TLS bind without a certificate */
        if (cfg->tls_default_pem) {
            if ((rc = check_pem(cfg->tls_default_pem, err)) ||
                (rc = core_file_write_atomic(ing->tls_default, cfg->tls_default_pem,
                                             strlen(cfg->tls_default_pem), 0600, err)))
                goto out;
        } else if (access(ing->tls_default, R_OK) != 0) {
            rc = core_err_set(err, CORE_E_INVAL, "the TLS frontend needs a default certificate");
            goto out;
        }
        if ((rc = crt_list_load(ing, err)))
            goto out;
    }
    pid_t old = read_master_pid(ing);
    if (old > 0 && proc_is_our_haproxy(ing, old)) {
        ing->master = old;
        ing->is_child = proc_ppid(old) == getpid();
        struct core_err aerr = {0};
        if (cfg->adopt && adopt_master(ing, &aerr) == 0) {
            ing->adopted = true;
            log_info("ingress", "haproxy adopted", LOG_INT("master", ing->master),
                     LOG_INT("services", (int64_t)ing->nsvcs), LOG_INT("port", ing->listen_port));
            goto out;
        }
        /* ours but not adoptable (or not asked to): it would hold our ports and sockets */
        log_warn("ingress", "stopping haproxy left by an earlier run", LOG_INT("master", old),
                 LOG_STR("reason", cfg->adopt ? aerr.msg : "adopt not requested"));
        kill_master(ing);
        services_clear(ing);
    }
    ing->master = -1;
    ing->is_child = false;
    /* a stale state file from an earlier run must not resurrect old slots */
    if ((rc = core_file_write_atomic(ing->state_file, "1\n", 2, 0600, err)))
        goto out;
    if ((rc = write_config(ing, NULL, 0, err)))
        goto out;
    if ((rc = spawn_haproxy(ing, err)))
        goto out;
    if ((rc = wait_ready(ing, 0, err)))
        goto out;
    if ((rc = routes_save(ing, err)))
        goto out;
    log_info("ingress", "haproxy started", LOG_INT("master", ing->master),
             LOG_INT("port", ing->listen_port));
out:
    if (rc) {
        ingress_stop(ing);
        ing = NULL;
    }
    return ing;
}

static void handle_free(struct ingress *ing)
{
    services_clear(ing);
    core_free(ing->dir);
    core_free(ing->cfg_path);
    core_free(ing->cfg_new);
    core_free(ing->admin_sock);
    core_free(ing->master_sock);
    core_free(ing->pid_file);
    core_free(ing->state_file);
    core_free(ing->log_path);
    core_free(ing->master_pid_file);
    core_free(ing->routes_path);
    core_free(ing->tls_default);
    core_free(ing->crt_list);
    core_free(ing->tls_addr);
    tls_clear(ing);
    core_free(ing->listen_addr);
    core_free(ing->bin);
    core_free(ing);
}

void ingress_stop(struct ingress *ing)
{
    if (!ing)
        return;
    kill_master(ing);
    if (ing->master_pid_file)
        unlink(ing->master_pid_file);
    handle_free(ing);
}

void ingress_release(struct ingress *ing)
{
    if (!ing)
        return;
    handle_free(ing);
}

bool ingress_adopted(const struct ingress *ing)
{
    return ing->adopted;
}

pid_t ingress_master_pid(const struct ingress *ing)
{
    return ing->master;
}

const char *ingress_config_path(const struct ingress *ing)
{
    return ing->cfg_path;
}

/* ---- routing --------------------------------------------------------------------------- */

/* Name of the service other than `except` that listens on port (internal or caller port). */
static const char *port_owner(const struct ingress *ing, int port, const char *except)
{
    for (size_t i = 0; i < ing->nsvcs; i++) {
        const struct ingress_service *s = &ing->svcs[i];
        if (strcmp(s->name, except) == 0)
            continue;
        if (s->internal_port == port)
            return s->name;
        for (size_t j = 0; j < s->ncaller_ports; j++)
            if (s->caller_ports[j] == port)
                return s->name;
    }
    return NULL;
}

static const char *health_or_default(const char *hp)
{
    return hp ? hp : INGRESS_DEFAULT_HEALTH_PATH;
}

static bool same_route(const struct ingress_service *s, const char *host,
                       const struct ingress_route *r, const char *health_path)
{
    if ((s->host == NULL) != (host == NULL) || (host && strcmp(s->host, host) != 0))
        return false;
    if (s->npaths != r->npaths || s->internal_port != r->internal_port ||
        strcmp(health_or_default(s->health_path), health_path) != 0 || s->strict != r->strict ||
        s->ncaller_ports != r->ncaller_ports)
        return false;
    for (size_t i = 0; i < r->ncaller_ports; i++)
        if (s->caller_ports[i] != r->caller_ports[i])
            return false;
    for (size_t i = 0; i < r->npaths; i++)
        if (strcmp(s->paths[i], r->paths[i]) != 0)
            return false;
    return true;
}

/* After write_config() accepted the new table `tmp` (n entries): swaps it in (taking
 * ownership of *tmp; the old array is freed, not its entries), reloads and persists
 * routes.json. */
static int table_apply(struct ingress *ing, struct ingress_service **tmp, size_t n,
                       const char *service, struct core_err *err)
{
    int rc = 0;
    core_free(ing->svcs);
    ing->svcs = *tmp;
    ing->nsvcs = n;
    *tmp = NULL;
    if ((rc = reload(ing, err)))
        core_err_wrap(err, "reloading haproxy for service '%s'", service);
    /* haproxy.cfg is already the new one: the table on disk must say the same */
    int src = routes_save(ing, rc ? NULL : err);
    return rc ? rc : src;
}

int ingress_route_set(struct ingress *ing, const char *service, const struct ingress_route *route,
                      struct core_err *err)
{
    struct ingress_service ns = {0};
    struct ingress_service *tmp = NULL;
    int rc = 0;

    if (!route) {
        rc = core_err_set(err, CORE_E_INVAL, "route of service '%.64s' is missing",
                          service ? service : "");
        goto out;
    }
    const char *host = route->host && *route->host ? route->host : NULL;
    const char *hp = health_or_default(route->health_path);
    size_t npaths = route->npaths;
    if ((rc = ingress_check_service(service, err)))
        goto out;
    if (host && (rc = ingress_check_host(host, err)))
        goto out;
    if (npaths > INGRESS_MAX_PATHS) {
        rc = core_err_set(err, CORE_E_TOO_BIG, "service '%s' has more than %d paths", service,
                          INGRESS_MAX_PATHS);
        goto out;
    }
    if (npaths && !route->paths) {
        rc = core_err_set(err, CORE_E_INVAL, "service '%s' has %zu paths but no array", service,
                          npaths);
        goto out;
    }
    for (size_t i = 0; i < npaths; i++)
        if ((rc = ingress_check_path(route->paths[i], err)))
            goto out;
    if ((rc = ingress_check_health_path(hp, err)))
        goto out;
    if (route->internal_port < 0 || route->internal_port > 65535) {
        rc = core_err_set(err, CORE_E_INVAL, "internal port %d of service '%s' out of range",
                          route->internal_port, service);
        goto out;
    }
    if (route->internal_port && route->internal_port == ing->listen_port) {
        rc = core_err_set(err, CORE_E_CONFLICT,
                          "internal port %d of service '%s' is the listen port",
                          route->internal_port, service);
        goto out;
    }
    if (route->ncaller_ports > INGRESS_MAX_CALLERS ||
        (route->ncaller_ports && !route->caller_ports)) {
        rc = core_err_set(err, CORE_E_INVAL, "service '%s': at most %d caller ports", service,
                          INGRESS_MAX_CALLERS);
        goto out;
    }
    /* every port of this route: not the listen port, not another service's, no repeats */
    for (size_t k = 0; k <= route->ncaller_ports; k++) {
        int port = k == 0 ? route->internal_port : route->caller_ports[k - 1];
        if (k > 0 && (port < 1 || port > 65535 || port == ing->listen_port)) {
            rc = core_err_set(err, CORE_E_INVAL, "caller port %d of service '%s' is invalid",
                              port, service);
            goto out;
        }
        for (size_t j = k + 1; port && j <= route->ncaller_ports; j++) {
            if (route->caller_ports[j - 1] == port) {
                rc = core_err_set(err, CORE_E_CONFLICT, "port %d appears twice in the route "
                                                        "of service '%s'",
                                  port, service);
                goto out;
            }
        }
        const char *owner = port ? port_owner(ing, port, service) : NULL;
        if (owner) {
            rc = core_err_set(err, CORE_E_CONFLICT, "port %d is already used by service '%s'",
                              port, owner);
            goto out;
        }
    }
    struct ingress_service *cur = service_find(ing, service);
    if (cur && same_route(cur, host, route, hp))
        goto out; /* nothing structural changed: no reload */

    /* build the complete new table, validate and write it, and only then swap it in */
    bool custom_hp = strcmp(hp, INGRESS_DEFAULT_HEALTH_PATH) != 0;
    ns.name = core_strdup(service);
    ns.host = host ? core_strdup(host) : NULL;
    ns.health_path = custom_hp ? core_strdup(hp) : NULL;
    ns.internal_port = route->internal_port;
    ns.strict = route->strict;
    ns.caller_ports = core_calloc(route->ncaller_ports + 1, sizeof(int));
    if (ns.caller_ports && route->ncaller_ports)
        memcpy(ns.caller_ports, route->caller_ports, route->ncaller_ports * sizeof(int));
    ns.ncaller_ports = ns.caller_ports ? route->ncaller_ports : 0;
    ns.paths = core_calloc(npaths ? npaths : 1, sizeof(*ns.paths));
    ns.used = cur ? NULL : core_calloc((size_t)ing->max_servers, sizeof(*ns.used));
    if (!ns.name || (host && !ns.host) || (custom_hp && !ns.health_path) || !ns.paths ||
        !ns.caller_ports ||
        (!cur && !ns.used)) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    for (; ns.npaths < npaths; ns.npaths++) {
        if (!(ns.paths[ns.npaths] = core_strdup(route->paths[ns.npaths]))) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
    }
    size_t n = ing->nsvcs + (cur ? 0 : 1);
    tmp = core_calloc(n, sizeof(*tmp));
    if (!tmp) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if (ing->nsvcs)
        memcpy(tmp, ing->svcs, ing->nsvcs * sizeof(*tmp));
    size_t at = cur ? (size_t)(cur - ing->svcs) : ing->nsvcs;
    if (cur)
        ns.used = cur->used;
    tmp[at] = ns;
    struct ingress_service old = cur ? *cur : (struct ingress_service){0};
    if ((rc = write_config(ing, tmp, n, err))) {
        if (cur)
            ns.used = NULL; /* still owned by cur */
        goto out;
    }
    memset(&ns, 0, sizeof(ns)); /* now owned by tmp */
    rc = table_apply(ing, &tmp, n, service, err);
    if (cur) {
        old.used = NULL; /* moved to the new entry */
        service_release(&old);
    }
out:
    service_release(&ns);
    core_free(tmp);
    return rc;
}

int ingress_route_remove(struct ingress *ing, const char *service, struct core_err *err)
{
    struct ingress_service *cur = service_find(ing, service);
    struct ingress_service *tmp = NULL;
    int rc = 0;
    if (!cur) {
        rc = core_err_set(err, CORE_E_NOTFOUND, "unknown service '%.64s'",
                          service ? service : "");
        goto out;
    }
    size_t at = (size_t)(cur - ing->svcs), n = ing->nsvcs - 1;
    tmp = core_calloc(n ? n : 1, sizeof(*tmp));
    if (!tmp) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(tmp, ing->svcs, at * sizeof(*tmp));
    memcpy(tmp + at, ing->svcs + at + 1, (n - at) * sizeof(*tmp));
    struct ingress_service old = *cur;
    char name[64];
    snprintf(name, sizeof(name), "%s", old.name);
    if ((rc = write_config(ing, tmp, n, err)))
        goto out;
    rc = table_apply(ing, &tmp, n, name, err);
    service_release(&old);
out:
    core_free(tmp);
    return rc;
}

/* ---- runtime API: slots ---------------------------------------------------------------- */

int ingress_server_add(struct ingress *ing, const char *service, const char *addr, int port,
                       char *slot_out, size_t slotsz, struct core_err *err)
{
    struct ingress_service *s = service_find(ing, service);
    unsigned char bin[16];
    char cmd[256];
    int rc = 0, idx = 0;

    if (!s) {
        rc = core_err_set(err, CORE_E_NOTFOUND, "unknown service '%.64s'", service ? service : "");
        goto out;
    }
    if (!addr || (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1)) {
        rc = core_err_set(err, CORE_E_INVAL, "address '%.64s' is not an IP address",
                          addr ? addr : "");
        goto out;
    }
    if (port < 1 || port > 65535) {
        rc = core_err_set(err, CORE_E_INVAL, "port %d out of range", port);
        goto out;
    }
    for (int i = 0; i < ing->max_servers && !idx; i++)
        if (!s->used[i])
            idx = i + 1;
    if (!idx) {
        rc = core_err_set(err, CORE_E_TOO_BIG, "service '%s' has no free server slot (max %d)",
                          service, ing->max_servers);
        goto out;
    }
    snprintf(cmd, sizeof(cmd), "set server be_%s/s%d addr %s port %d", service, idx, addr, port);
    if ((rc = admin_expect(ing, cmd, "change", err)))
        goto out;
    /* HAProxy 2.6 marks a server UP the moment it leaves maintenance; forcing its health
     * down in the same command line (one pass of the CLI applet) keeps traffic away until its
     * first health check passes */
    snprintf(cmd, sizeof(cmd), "set server be_%s/s%d state ready; set server be_%s/s%d health down",
             service, idx, service, idx);
    if ((rc = admin_expect(ing, cmd, NULL, err)))
        goto out;
    s->used[idx - 1] = true;
    if (slot_out && slotsz)
        snprintf(slot_out, slotsz, "s%d", idx);
out:
    return rc;
}

static int slot_state(struct ingress *ing, const char *service, const char *slot,
                      const char *state, bool free_it, struct core_err *err)
{
    struct ingress_service *s = service_find(ing, service);
    char cmd[256];
    int idx = slot_index(ing, slot);
    if (!s)
        return core_err_set(err, CORE_E_NOTFOUND, "unknown service '%.64s'",
                            service ? service : "");
    if (!idx || !s->used[idx - 1])
        return core_err_set(err, CORE_E_NOTFOUND, "service '%s' has no server in slot '%.16s'",
                            service, slot ? slot : "");
    snprintf(cmd, sizeof(cmd), "set server be_%s/s%d state %s", service, idx, state);
    int rc = admin_expect(ing, cmd, NULL, err);
    if (rc == 0 && free_it)
        s->used[idx - 1] = false;
    return rc;
}

int ingress_server_drain(struct ingress *ing, const char *service, const char *slot,
                         struct core_err *err)
{
    return slot_state(ing, service, slot, "drain", false, err);
}

int ingress_server_remove(struct ingress *ing, const char *service, const char *slot,
                          struct core_err *err)
{
    return slot_state(ing, service, slot, "maint", true, err);
}

/* ---- status ------------------------------------------------------------------------------ */

enum { COL_NAME, COL_ADDR, COL_OP, COL_ADMIN, COL_PORT, NCOLS };

/* Splits a line on spaces in place. returns: number of fields (at most max). */
static size_t split_fields(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t && n < max; t = strtok_r(NULL, " \t\r", &save))
        f[n++] = t;
    return n;
}

int ingress_backend_status(struct ingress *ing, const char *service, ingress_slot_fn fn,
                           void *arg, struct core_err *err)
{
    struct ingress_service *s = service_find(ing, service);
    char *reply = NULL;
    char cmd[128];
    int rc = 0;
    /* column positions of `show servers state` format 1; the header line overrides them */
    long col[NCOLS] = {3, 4, 5, 6, 18};
    static const char *const names[NCOLS] = {"srv_name", "srv_addr", "srv_op_state",
                                             "srv_admin_state", "srv_port"};

    if (!s) {
        rc = core_err_set(err, CORE_E_NOTFOUND, "unknown service '%.64s'", service ? service : "");
        goto out;
    }
    snprintf(cmd, sizeof(cmd), "show servers state be_%s", service);
    if ((rc = ingress_admin_cmd(ing, cmd, &reply, err)))
        goto out;
    char *save = NULL;
    for (char *line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[64];
        if (line[0] == '#') {
            size_t n = split_fields(line + 1, f, 64);
            for (size_t i = 0; i < n; i++)
                for (int c = 0; c < NCOLS; c++)
                    if (strcmp(f[i], names[c]) == 0)
                        col[c] = (long)i;
            continue;
        }
        size_t n = split_fields(line, f, 64);
        bool ok = true;
        for (int c = 0; c < NCOLS; c++)
            if (col[c] >= (long)n)
                ok = false;
        if (!ok)
            continue; /* version line, blank line or something we do not understand */
        int idx = slot_index(ing, f[col[COL_NAME]]);
        if (!idx)
            continue;
        long op = strtol(f[col[COL_OP]], NULL, 10);
        long adm = strtol(f[col[COL_ADMIN]], NULL, 0);
        struct ingress_slot_status st = {
            .slot = f[col[COL_NAME]],
            .addr = f[col[COL_ADDR]],
            .port = (int)strtol(f[col[COL_PORT]], NULL, 10),
            .is_up = op == 2, /* SRV_ST_RUNNING */
            .is_used = s->used[idx - 1],
        };
        /* admin bits: 0x01 forced, 0x02 inherited, 0x20 resolver maintenance; 0x08|0x10
         * drain; 0x04 only records the `disabled` keyword of the config and stays set */
        if (adm & 0x23)
            st.admin = INGRESS_ADMIN_MAINT;
        else if (adm & 0x18)
            st.admin = INGRESS_ADMIN_DRAIN;
        else
            st.admin = INGRESS_ADMIN_READY;
        if (st.admin == INGRESS_ADMIN_MAINT)
            st.is_up = false;
        if ((rc = fn(arg, &st)))
            goto out;
    }
out:
    core_free(reply);
    return rc;
}

/* ---- TLS termination ---------------------------------------------------------------------- */

static void tls_entry_release(struct tls_entry *e)
{
    core_free(e->file);
    for (size_t i = 0; i < e->nsni; i++)
        core_free(e->sni[i]);
    core_free(e->sni);
    memset(e, 0, sizeof(*e));
}

static void tls_clear(struct ingress *ing)
{
    for (size_t i = 0; i < ing->ntls; i++)
        tls_entry_release(&ing->tls[i]);
    core_free(ing->tls);
    ing->tls = NULL;
    ing->ntls = 0;
}

static struct tls_entry *tls_find(struct ingress *ing, const char *file)
{
    for (size_t i = 0; i < ing->ntls; i++)
        if (strcmp(ing->tls[i].file, file) == 0)
            return &ing->tls[i];
    return NULL;
}

/* One crt-list line: "FILE SNI..." (no ssl options: every entry shares the bind's). */
static int tls_line(const struct tls_entry *e, struct core_buf *out)
{
    int rc = core_buf_adds(out, e->file);
    for (size_t i = 0; rc == 0 && i < e->nsni; i++)
        rc = core_buf_addf(out, " %s", e->sni[i]);
    return rc;
}

/* Rewrites DATA/ingress/crt-list from the table (atomic, 0600). */
static int crt_list_save(struct ingress *ing, struct core_err *err)
{
    struct core_buf b;
    core_buf_init(&b, 16 * 1024 * 1024);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ing->ntls; i++) {
        rc = tls_line(&ing->tls[i], &b);
        if (rc == 0)
            rc = core_buf_adds(&b, "\n");
    }
    if (rc)
        rc = core_err_set(err, rc, "crt-list too big");
    else
        rc = core_file_write_atomic(ing->crt_list, b.data, b.len, 0600, err);
    core_buf_release(&b);
    return rc;
}

static int tls_entry_fill(struct tls_entry *e, const char *file, const char *const *sni,
                          size_t nsni)
{
    memset(e, 0, sizeof(*e));
    e->file = core_strdup(file);
    e->sni = core_calloc(nsni ? nsni : 1, sizeof(*e->sni));
    if (!e->file || !e->sni)
        return CORE_E_NOMEM;
    for (size_t i = 0; i < nsni; i++) {
        if (!(e->sni[i] = core_strdup(sni[i])))
            return CORE_E_NOMEM;
        e->nsni++;
    }
    return 0;
}

/* Loads the crt-list written by an earlier run, dropping lines whose file is gone or that do
 * not parse (haproxy would refuse to start on them), and writes it back. */
static int crt_list_load(struct ingress *ing, struct core_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    tls_clear(ing);
    if (core_file_read(ing->crt_list, 16 * 1024 * 1024, &text, &len, NULL) == 0) {
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            const char *f[65];
            size_t n = 0;
            char *s2 = NULL;
            for (char *tok = strtok_r(line, " ", &s2); tok && n < 65; tok = strtok_r(NULL, " ", &s2))
                f[n++] = tok;
            bool ok = n >= 1 && ingress_check_file(f[0], NULL) == 0 && access(f[0], R_OK) == 0;
            for (size_t i = 1; ok && i < n; i++)
                ok = ingress_check_host(f[i], NULL) == 0;
            if (!ok || tls_find(ing, f[0]))
                continue;
            struct tls_entry *v = core_realloc(ing->tls, (ing->ntls + 1) * sizeof(*v));
            if (!v) {
                rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
                goto out;
            }
            ing->tls = v;
            if (tls_entry_fill(&ing->tls[ing->ntls], f[0], f + 1, n - 1)) {
                tls_entry_release(&ing->tls[ing->ntls]);
                rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
                goto out;
            }
            ing->ntls++;
        }
    }
    rc = crt_list_save(ing, err);
out:
    core_free(text);
    return rc;
}

/* A PEM is sent as a Runtime API payload, which ends at the first empty line. */
static int check_pem(const char *pem, struct core_err *err)
{
    size_t n = pem ? strlen(pem) : 0;
    if (n == 0 || n > 64 * 1024 || !strstr(pem, "-----BEGIN "))
        return core_err_set(err, CORE_E_INVAL, "certificate PEM is empty, too big or not PEM");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pem[i];
        if ((c < 0x20 && c != '\n') || c >= 0x7f || (c == '\n' && pem[i + 1] == '\n' &&
                                                     pem[i + 2]))
            return core_err_set(err, CORE_E_INVAL,
                                "certificate PEM holds an empty line or a control character");
    }
    return 0;
}

/* `VERB FILE <<` with pem as payload; success when the answer contains ok_word. */
static int admin_payload(struct ingress *ing, const char *verb, const char *file,
                         const char *payload, const char *ok_word, struct core_err *err)
{
    struct core_buf b;
    core_buf_init(&b, 128 * 1024);
    char *reply = NULL;
    size_t plen = strlen(payload);
    while (plen && payload[plen - 1] == '\n')
        plen--;
    int rc = core_buf_addf(&b, "%s %s <<\n", verb, file);
    if (rc == 0)
        rc = core_buf_add(&b, payload, plen);
    if (rc == 0)
        rc = core_buf_adds(&b, "\n"); /* admin_send() adds the empty line that ends it */
    if (rc) {
        rc = core_err_set(err, rc, "runtime payload too big");
        goto out;
    }
    if ((rc = admin_send(ing->admin_sock, b.data, &reply, err)))
        goto out;
    if (!strstr(reply, ok_word)) {
        char line[200];
        reply_line(reply, line, sizeof(line));
        rc = core_err_set(err, CORE_E_INVAL, "haproxy refused '%s %s': %s", verb, file, line);
    }
out:
    core_free(reply);
    core_buf_release(&b);
    return rc;
}

static int admin_word(struct ingress *ing, const char *cmd, const char *ok_word,
                      struct core_err *err)
{
    char *reply = NULL;
    int rc = ingress_admin_cmd(ing, cmd, &reply, err);
    if (rc == 0 && !strstr(reply, ok_word)) {
        char line[200];
        reply_line(reply, line, sizeof(line));
        rc = core_err_set(err, CORE_E_INVAL, "haproxy refused '%s': %s", cmd, line);
    }
    core_free(reply);
    return rc;
}

/* Replaces the certificate haproxy holds for `file` (already loaded) in memory. */
static int runtime_cert_update(struct ingress *ing, const char *file, const char *pem,
                               struct core_err *err)
{
    char cmd[1200];
    int rc = admin_payload(ing, "set ssl cert", file, pem, "Transaction", err);
    if (rc)
        return rc;
    snprintf(cmd, sizeof(cmd), "commit ssl cert %s", file);
    rc = admin_word(ing, cmd, "Success!", err);
    if (rc) {
        snprintf(cmd, sizeof(cmd), "abort ssl cert %s", file);
        char *reply = NULL;
        struct core_err e2 = {0};
        ingress_admin_cmd(ing, cmd, &reply, &e2);
        core_free(reply);
    }
    return rc;
}

/* Runtime update failed: haproxy re-reads the files (on disk already) on a reload. */
static int tls_reload(struct ingress *ing, const char *what, const char *file,
                      struct core_err *rterr, struct core_err *err)
{
    log_warn("ingress", "runtime certificate update failed; reloading", LOG_STR("action", what),
             LOG_STR("file", file), LOG_STR("error", rterr->msg));
    int rc = reload(ing, err);
    if (rc)
        core_err_wrap(err, "reloading haproxy for certificate '%s'", file);
    return rc;
}

int ingress_tls_port(const struct ingress *ing)
{
    return ing->tls_port;
}

int ingress_tls_cert_set(struct ingress *ing, const char *file, const char *pem,
                         const char *const *sni, size_t nsni, struct core_err *err)
{
    int rc = 0;
    struct tls_entry ne = {0};
    if (!ing->tls_port)
        return core_err_set(err, CORE_E_UNSUPPORTED, "the load balancer has no TLS frontend");
    if ((rc = ingress_check_file(file, err)) || (rc = check_pem(pem, err)))
        return rc;
    if (strcmp(file, ing->tls_default) == 0 || strcmp(file, ing->crt_list) == 0)
        return core_err_set(err, CORE_E_INVAL, "'%s' is the ingress's own file", file);
    if (nsni == 0 || nsni > 64)
        return core_err_set(err, CORE_E_INVAL, "a certificate needs 1 to 64 SNI names");
    for (size_t i = 0; i < nsni; i++)
        if ((rc = ingress_check_host(sni[i], err)))
            return rc;
    if ((rc = core_file_write_atomic(file, pem, strlen(pem), 0600, err)))
        return rc;
    struct tls_entry *e = tls_find(ing, file);
    bool same_sni = e && e->nsni == nsni;
    for (size_t i = 0; same_sni && i < nsni; i++)
        same_sni = strcmp(e->sni[i], sni[i]) == 0;
    struct core_err rterr = {0};
    if (same_sni) {
        /* a renewal: swap the certificate in memory, no reload */
        if (runtime_cert_update(ing, file, pem, &rterr))
            return tls_reload(ing, "update", file, &rterr, err);
        log_info("ingress", "certificate updated", LOG_STR("file", file));
        return 0;
    }
    if ((rc = tls_entry_fill(&ne, file, sni, nsni))) {
        rc = core_err_set(err, rc, "out of memory");
        goto out;
    }
    if (e) {
        /* other names: crt-list entries cannot be edited at runtime; a rare change, reload */
        tls_entry_release(e);
        *e = ne;
        memset(&ne, 0, sizeof(ne));
        if ((rc = crt_list_save(ing, err)))
            goto out;
        core_err_set(&rterr, CORE_E_UNSUPPORTED, "SNI names changed");
        rc = tls_reload(ing, "rename", file, &rterr, err);
        goto out;
    }
    struct tls_entry *v = core_realloc(ing->tls, (ing->ntls + 1) * sizeof(*v));
    if (!v) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    ing->tls = v;
    ing->tls[ing->ntls++] = ne;
    memset(&ne, 0, sizeof(ne));
    if ((rc = crt_list_save(ing, err)))
        goto out;
    /* a new certificate: an empty store entry, filled and committed, then a crt-list line */
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "new ssl cert %s", file);
    char *reply = NULL;
    int nrc = ingress_admin_cmd(ing, cmd, &reply, &rterr);
    bool fresh = nrc == 0 && strstr(reply, "New empty certificate store");
    core_free(reply);
    if (nrc == 0 && (rc = runtime_cert_update(ing, file, pem, &rterr)) == 0 && fresh) {
        struct core_buf line;
        core_buf_init(&line, 64 * 1024);
        rc = tls_line(&ing->tls[ing->ntls - 1], &line);
        if (rc == 0)
            rc = admin_payload(ing, "add ssl crt-list", ing->crt_list, line.data, "Success!",
                               &rterr);
        core_buf_release(&line);
    }
    if (nrc || rc || !fresh) {
        if (!rterr.msg[0])
            core_err_set(&rterr, CORE_E_CONFLICT, "certificate already known to haproxy");
        rc = tls_reload(ing, "add", file, &rterr, err);
        goto out;
    }
    log_info("ingress", "certificate added", LOG_STR("file", file),
             LOG_INT("names", (int64_t)nsni));
out:
    tls_entry_release(&ne);
    return rc;
}

int ingress_tls_cert_remove(struct ingress *ing, const char *file, struct core_err *err)
{
    int rc = 0;
    struct tls_entry *e = ing->tls_port ? tls_find(ing, file) : NULL;
    if (!e)
        return core_err_set(err, CORE_E_NOTFOUND, "no certificate '%s' in the crt-list",
                            file ? file : "");
    size_t idx = (size_t)(e - ing->tls);
    tls_entry_release(e);
    memmove(&ing->tls[idx], &ing->tls[idx + 1], (ing->ntls - idx - 1) * sizeof(*ing->tls));
    ing->ntls--;
    if ((rc = crt_list_save(ing, err)))
        return rc;
    char cmd[2400];
    struct core_err rterr = {0};
    snprintf(cmd, sizeof(cmd), "del ssl crt-list %s %s", ing->crt_list, file);
    rc = admin_word(ing, cmd, "deleted", &rterr);
    if (rc == 0) {
        snprintf(cmd, sizeof(cmd), "del ssl cert %s", file);
        rc = admin_word(ing, cmd, "deleted", &rterr);
    }
    if (rc && (rc = tls_reload(ing, "remove", file, &rterr, err)))
        return rc;
    unlink(file);
    log_info("ingress", "certificate removed", LOG_STR("file", file));
    return 0;
}

int ingress_tls_default_set(struct ingress *ing, const char *pem, struct core_err *err)
{
    int rc = 0;
    if (!ing->tls_port)
        return core_err_set(err, CORE_E_UNSUPPORTED, "the load balancer has no TLS frontend");
    if ((rc = check_pem(pem, err)))
        return rc;
    if ((rc = core_file_write_atomic(ing->tls_default, pem, strlen(pem), 0600, err)))
        return rc;
    struct core_err rterr = {0};
    if (runtime_cert_update(ing, ing->tls_default, pem, &rterr))
        return tls_reload(ing, "default", ing->tls_default, &rterr, err);
    return 0;
}
