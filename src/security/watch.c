/* Workload watch (security.h, docs/security.md "Workload watch"): a thread that looks at the
 * process tree of every live replica through /proc and raises builtin.new-listening-port and
 * builtin.unexpected-process.
 *
 * A replica's tree is every descendant of its shim (deploy.h). The shim itself, bubblewrap's
 * processes and anything still running the shim's executable (a fork of the launcher before its
 * exec) are the platform's; of the rest the main process is the one nearest the shim (then the
 * oldest), and every other process whose executable differs from the main one's is unexpected.
 * Listening sockets are the socket inodes of the tree's open files matched against the replica's
 * network namespace's /proc/PID/net/{tcp,tcp6,udp,udp6} (TCP state LISTEN, UDP unconnected).
 *
 * Between scans an in-memory set of what was raised (replica|exe|pid, replica|proto/port|inode)
 * keeps a process or socket that stays from raising its alert again every interval; the alert
 * book's dedup key (replica+exe, replica+port) folds new pids or sockets into the open alert. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "deploy/deploy.h"
#include "security/security.h"
#include "store/store.h"

/* The alert book (alerts.c) is developed separately; until it is linked the raise resolves to
 * NULL and findings are only returned. */
#pragma weak security_alert_raise

#define WATCH_MAX_PROCS 65536  /* processes read from /proc per scan */
#define WATCH_MAX_TREE 4096    /* processes of one replica looked at */
#define WATCH_MAX_SOCKS 16384  /* socket inodes of one replica */

struct proc {
    long pid, ppid;
    unsigned long long start; /* clock ticks since boot */
    int depth;                /* in the replica being inspected; -1: not in it */
};

struct proctab {
    struct proc *v;
    size_t n;
};

struct security_watch {
    struct store *st;
    struct security_alerts *alerts;
    struct deploy_controller *dc;
    int interval_ms;
    pthread_mutex_t scan_mu; /* one scan at a time; guards raised */
    json_t *raised;
    pthread_mutex_t mu; /* guards stop */
    pthread_cond_t cv;
    bool stop, started;
    pthread_t thread;
};

/* ---- /proc --------------------------------------------------------------------------------- */

static bool read_small(const char *path, char *out, size_t outsz, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t n = 0;
    while (n + 1 < outsz) {
        ssize_t r = read(fd, out + n, outsz - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    out[n] = 0;
    if (len)
        *len = n;
    return n > 0;
}

static bool read_stat(long pid, struct proc *p)
{
    char path[64], buf[1024];
    size_t len = 0;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    struct security_proc_stat ps;
    if (!read_small(path, buf, sizeof(buf), &len) || !security_proc_stat_parse(buf, len, &ps))
        return false;
    p->pid = pid;
    p->ppid = ps.ppid;
    p->start = ps.start;
    p->depth = -1;
    return ps.state != 'Z';
}

static int proctab_read(struct proctab *t)
{
    t->n = 0;
    t->v = NULL;
    DIR *d = opendir("/proc");
    if (!d)
        return CORE_E_IO;
    size_t cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) && t->n < WATCH_MAX_PROCS) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        if (t->n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            struct proc *v = core_realloc(t->v, ncap * sizeof(*v));
            if (!v) {
                rc = CORE_E_NOMEM;
                break;
            }
            t->v = v;
            cap = ncap;
        }
        if (read_stat(pid, &t->v[t->n]))
            t->n++;
    }
    closedir(d);
    return rc;
}

/* Marks the descendants of root with their depth (root: 0). returns: how many (root included). */
static size_t mark_tree(struct proctab *t, long root)
{
    size_t n = 0;
    bool grew = false;
    for (size_t i = 0; i < t->n; i++) {
        t->v[i].depth = t->v[i].pid == root ? 0 : -1;
        n += t->v[i].pid == root;
    }
    if (!n)
        return 0;
    /* breadth by depth: a pass per level, bounded by the tree limit */
    for (int depth = 0; n < WATCH_MAX_TREE; depth++) {
        grew = false;
        for (size_t i = 0; i < t->n && n < WATCH_MAX_TREE; i++) {
            if (t->v[i].depth != depth)
                continue;
            for (size_t j = 0; j < t->n && n < WATCH_MAX_TREE; j++)
                if (t->v[j].depth < 0 && t->v[j].ppid == t->v[i].pid) {
                    t->v[j].depth = depth + 1;
                    n++;
                    grew = true;
                }
        }
        if (!grew)
            break;
    }
    return n;
}

static bool read_exe(long pid, char *out, size_t outsz)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
    ssize_t n = readlink(path, out, outsz - 1);
    if (n <= 0)
        return false;
    out[n] = 0;
    return true;
}

/* The command line as shown (security_proc_cmdline_clean); the environment is never read. */
static void read_cmdline(long pid, char *out, size_t outsz)
{
    char path[64], buf[SECURITY_CMDLINE_MAX + 1];
    size_t n = 0;
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
    out[0] = 0;
    if (read_small(path, buf, sizeof(buf), &n))
        security_proc_cmdline_clean(buf, n, out, outsz);
}

static bool is_bwrap(const char *exe)
{
    const char *b = strrchr(exe, '/');
    b = b ? b + 1 : exe;
    return !strcmp(b, "bwrap") || !strncmp(b, "bwrap ", 6);
}

struct sock {
    unsigned long long inode;
    long pid;
};

/* Socket inodes held open by pid, appended to socks (bounded). */
static void collect_socks(long pid, struct sock *socks, size_t *n)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && *n < WATCH_MAX_SOCKS) {
        if (de->d_name[0] == '.')
            continue;
        char link[64];
        ssize_t len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
        if (len <= 0)
            continue;
        link[len] = 0;
        unsigned long long ino;
        if (sscanf(link, "socket:[%llu]", &ino) != 1)
            continue;
        bool dup = false;
        for (size_t i = 0; i < *n && !dup; i++)
            dup = socks[i].inode == ino;
        if (!dup)
            socks[(*n)++] = (struct sock){ino, pid};
    }
    closedir(d);
}

/* ---- findings ------------------------------------------------------------------------------ */

struct inspect {
    struct security_watch *w;
    const char *service, *env, *replica;
    char team[64];
    bool team_read;
    json_t *items; /* may be NULL */
    json_t *seen;  /* keys seen by this scan */
};

static int team_row(void *arg, const struct store_row *row)
{
    struct inspect *in = arg;
    snprintf(in->team, sizeof(in->team), "%s", store_row_text(row, "team") ?: "");
    return 1;
}

static void raise_one(struct inspect *in, const char *key, const char *rule, const char *title,
                      const char *dedup, const char *summary, json_t *item)
{
    if (in->items)
        json_array_append(in->items, item);
    if (json_object_get(in->w->raised, key)) {
        json_object_set_new(in->seen, key, json_true()); /* still there: keep it raised */
        return;
    }
    if (!in->w->alerts || !security_alert_raise)
        return;
    if (!in->team_read && in->w->st) {
        struct store_value v[] = {STORE_V_TEXT(in->service)};
        struct core_err e = {0};
        store_query(in->w->st, "SELECT team FROM services WHERE name=?", v, 1, team_row, in, &e);
        in->team_read = true;
    }
    char *event = json_dumps(item, JSON_COMPACT | JSON_SORT_KEYS);
    struct security_finding f = {
        .rule_id = rule,
        .rule_title = title,
        .source = "builtin",
        .severity = "high",
        .dedup_key = dedup,
        .service = in->service,
        .team = in->team[0] ? in->team : NULL,
        .summary = summary,
        .event_json = event,
    };
    struct core_err err = {0};
    if (security_alert_raise(in->w->alerts, &f, NULL, NULL, &err) == 0)
        json_object_set_new(in->seen, key, json_true()); /* in->seen may be w->raised */
    else
        log_warn("security", "cannot raise a workload alert", LOG_STR("rule", rule),
                 LOG_STR("replica", in->replica), LOG_STR("error", err.msg));
    free(event);
}

static void check_process(struct inspect *in, long pid, const char *exe, const char *main_exe,
                          long main_pid)
{
    char cmd[SECURITY_CMDLINE_MAX + 1], key[600], dedup[600], summary[1200];
    read_cmdline(pid, cmd, sizeof(cmd));
    json_t *item = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:I}", "rule_id",
                             "builtin.unexpected-process", "replica", in->replica, "service",
                             in->service, "env", in->env, "pid", (json_int_t)pid, "exe", exe,
                             "cmdline", cmd, "main_exe", main_exe, "main_pid",
                             (json_int_t)main_pid);
    if (!item)
        return;
    snprintf(key, sizeof(key), "proc|%s|%s|%ld", in->replica, exe, pid);
    snprintf(dedup, sizeof(dedup), "builtin.unexpected-process:%s:%s", in->replica, exe);
    snprintf(summary, sizeof(summary), "unexpected process in replica %s: %s (pid %ld): %s",
             in->replica, exe, pid, cmd);
    raise_one(in, key, "builtin.unexpected-process", "Unexpected process in a sandbox", dedup,
              summary, item);
    json_decref(item);
}

/* Reads one /proc/PID/net table and reports sockets of the replica listening on another port. */
static void check_table(struct inspect *in, long netpid, const char *proto, int port,
                        const struct sock *socks, size_t nsocks)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/net/%s", netpid, proto);
    FILE *fp = fopen(path, "re");
    if (!fp)
        return;
    bool tcp = proto[0] == 't';
    char line[512];
    bool header = true;
    while (fgets(line, sizeof(line), fp)) {
        if (header) {
            header = false;
            continue;
        }
        int lport = 0;
        unsigned long long ino = 0;
        if (!security_proc_net_parse(line, tcp, &lport, &ino) || lport == port)
            continue;
        long pid = 0;
        for (size_t i = 0; i < nsocks && !pid; i++)
            if (socks[i].inode == ino)
                pid = socks[i].pid;
        if (!pid)
            continue;
        char exe[512] = "", p4[8], key[600], dedup[600], summary[1200];
        read_exe(pid, exe, sizeof(exe));
        snprintf(p4, sizeof(p4), "%s", tcp ? "tcp" : "udp");
        json_t *item = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:I,s:s,s:i}", "rule_id",
                                 "builtin.new-listening-port", "replica", in->replica, "service",
                                 in->service, "env", in->env, "proto", p4, "port", lport, "pid",
                                 (json_int_t)pid, "exe", exe, "assigned_port", port);
        if (!item)
            continue;
        snprintf(key, sizeof(key), "port|%s|%s/%d|%llu", in->replica, p4, lport, ino);
        snprintf(dedup, sizeof(dedup), "builtin.new-listening-port:%s:%s/%d", in->replica, p4,
                 lport);
        snprintf(summary, sizeof(summary),
                 "replica %s listens on %s port %d (pid %ld, %s); its assigned port is %d",
                 in->replica, p4, lport, pid, exe, port);
        raise_one(in, key, "builtin.new-listening-port", "New listening port in a replica", dedup,
                  summary, item);
        json_decref(item);
    }
    fclose(fp);
}

static int inspect_tree(struct proctab *t, struct inspect *in, long root, int port)
{
    if (mark_tree(t, root) <= 1)
        return 0;
    char root_exe[512] = "";
    read_exe(root, root_exe, sizeof(root_exe));
    /* the main process: nearest the shim, then oldest, then lowest pid */
    long main_pid = 0;
    int main_depth = 0;
    unsigned long long main_start = 0;
    char main_exe[512] = "", exe[512];
    for (size_t i = 0; i < t->n; i++) {
        struct proc *p = &t->v[i];
        if (p->depth <= 0 || !read_exe(p->pid, exe, sizeof(exe)) || is_bwrap(exe) ||
            !strcmp(exe, root_exe))
            continue;
        if (!main_pid || p->depth < main_depth ||
            (p->depth == main_depth &&
             (p->start < main_start || (p->start == main_start && p->pid < main_pid)))) {
            main_pid = p->pid;
            main_depth = p->depth;
            main_start = p->start;
            snprintf(main_exe, sizeof(main_exe), "%s", exe);
        }
    }
    if (!main_pid)
        return 0;
    struct sock *socks = core_calloc(WATCH_MAX_SOCKS, sizeof(*socks));
    if (!socks)
        return CORE_E_NOMEM;
    size_t nsocks = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct proc *p = &t->v[i];
        if (p->depth <= 0)
            continue;
        collect_socks(p->pid, socks, &nsocks);
        if (p->pid == main_pid || !read_exe(p->pid, exe, sizeof(exe)) || is_bwrap(exe) ||
            !strcmp(exe, root_exe) || !strcmp(exe, main_exe))
            continue;
        check_process(in, p->pid, exe, main_exe, main_pid);
    }
    static const char *const tables[] = {"tcp", "tcp6", "udp", "udp6"};
    for (size_t i = 0; nsocks && i < 4; i++)
        check_table(in, main_pid, tables[i], port, socks, nsocks);
    core_free(socks);
    return 0;
}

static int inspect_locked(struct security_watch *w, struct proctab *t, const char *service,
                          const char *env, const char *replica, long root_pid, int port,
                          json_t *items, json_t *seen)
{
    struct inspect in = {.w = w, .service = service, .env = env, .replica = replica,
                         .items = items, .seen = seen};
    return inspect_tree(t, &in, root_pid, port);
}

int security_watch_inspect(struct security_watch *w, const char *service, const char *env,
                           const char *replica, long root_pid, int port, json_t *items,
                           struct core_err *err)
{
    if (!service || !env || !replica || root_pid <= 0)
        return core_err_set(err, CORE_E_INVAL, "workload watch: bad replica");
    struct proctab t = {0};
    pthread_mutex_lock(&w->scan_mu);
    int rc = proctab_read(&t);
    if (!rc)
        rc = inspect_locked(w, &t, service, env, replica, root_pid, port, items, w->raised);
    pthread_mutex_unlock(&w->scan_mu);
    core_free(t.v);
    if (rc)
        return core_err_set(err, rc, "workload watch: cannot read the process table");
    return 0;
}

struct scan_acc {
    struct security_watch *w;
    struct proctab *t;
    json_t *items, *seen;
};

static int scan_replica(void *arg, const struct deploy_replica_info *r)
{
    struct scan_acc *a = arg;
    return inspect_locked(a->w, a->t, r->service, r->env, r->name, r->shim_pid, r->port,
                          a->items, a->seen);
}

int security_watch_scan(struct security_watch *w, json_t **findings, struct core_err *err)
{
    json_t *items = findings ? json_array() : NULL;
    struct proctab t = {0};
    struct scan_acc a = {.w = w, .t = &t, .items = items, .seen = json_object()};
    int rc = (!a.seen || (findings && !items)) ? CORE_E_NOMEM : 0;
    pthread_mutex_lock(&w->scan_mu);
    if (!rc && w->dc && !(rc = proctab_read(&t)))
        rc = deploy_replica_foreach(w->dc, scan_replica, &a);
    if (!rc) {
        /* what is gone may be raised again when it comes back */
        json_decref(w->raised);
        w->raised = a.seen;
        a.seen = NULL;
    }
    pthread_mutex_unlock(&w->scan_mu);
    json_decref(a.seen);
    core_free(t.v);
    if (rc) {
        json_decref(items);
        return core_err_set(err, rc, "workload watch: scan failed");
    }
    if (findings)
        *findings = json_pack("{s:o}", "items", items);
    return 0;
}

/* ---- the thread ---------------------------------------------------------------------------- */

static void *watch_loop(void *arg)
{
    struct security_watch *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)(w->interval_ms % 1000) * 1000000;
        ts.tv_sec += w->interval_ms / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0)
            ;
        if (w->stop)
            break;
        pthread_mutex_unlock(&w->mu);
        struct core_err err = {0};
        if (security_watch_scan(w, NULL, &err))
            log_warn("security", "workload watch scan failed", LOG_STR("error", err.msg));
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct security_watch *security_watch_start(struct store *st, struct security_alerts *alerts,
                                            struct deploy_controller *dc, int interval_ms,
                                            struct core_err *err)
{
    if (interval_ms < 0) {
        core_err_set(err, CORE_E_INVAL, "workload watch: negative interval");
        return NULL;
    }
    struct security_watch *w = core_calloc(1, sizeof(*w));
    if (!w || !(w->raised = json_object())) {
        core_free(w);
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    w->st = st;
    w->alerts = alerts;
    w->dc = dc;
    w->interval_ms = interval_ms;
    pthread_mutex_init(&w->scan_mu, NULL);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (interval_ms > 0 && dc) {
        if (pthread_create(&w->thread, NULL, watch_loop, w) != 0) {
            security_watch_stop(w);
            core_err_set(err, CORE_E_INTERNAL, "workload watch: cannot start its thread");
            return NULL;
        }
        w->started = true;
    }
    return w;
}

void security_watch_stop(struct security_watch *w)
{
    if (!w)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    json_decref(w->raised);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->scan_mu);
    core_free(w);
}
