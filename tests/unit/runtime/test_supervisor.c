/* Unit tests for the local driver's replica supervisor (src/runtime/supervisor.c). They run real
 * sandboxes (bubblewrap) and skip, with a message, when bubblewrap cannot run here. Every wait is
 * a bounded poll; no assertion depends on timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"

#define WAIT_MS 30000
#define POLL_MS 100

struct fixture {
    char dir[64];
    char bundle[96];
    char log[96];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-sup-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->bundle, sizeof(f->bundle), "%s/bundle", f->dir);
    snprintf(f->log, sizeof(f->log), "%s/replicas.log", f->dir);
    char index[128];
    snprintf(index, sizeof(index), "%s/index.html", f->bundle);
    FILE *fp = NULL;
    if (mkdir(f->bundle, 0755) != 0 || !(fp = fopen(index, "w")))
        return -1;
    fputs("hello from the bundle\n", fp);
    fclose(fp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A port p with p and p+1 both free on 127.0.0.1 (as far as one can tell before using them). */
static int port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static int free_port_pair(void)
{
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int i = 0; i < 200; i++) {
        int p = 20000 + rand() % 40000;
        if (port_free(p) && port_free(p + 1))
            return p;
    }
    fail_msg("no free port pair");
    return 0;
}

/* Sends GET / to 127.0.0.1:port; returns 1 when the answer starts with an HTTP 200 status line. */
static int http_ok(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    char buf[64] = {0};
    const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1)) {
        size_t n = 0;
        ssize_t r;
        while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
            n += (size_t)r;
        ok = strncmp(buf, "HTTP/1.0 200", 12) == 0 || strncmp(buf, "HTTP/1.1 200", 12) == 0;
    }
    close(fd);
    return ok;
}

static int wait_http(int port)
{
    for (int waited = 0; waited < WAIT_MS; waited += POLL_MS) {
        if (http_ok(port))
            return 1;
        sleep_ms(POLL_MS);
    }
    return 0;
}

/* Pids of processes with an argv element equal to port (the http.server's port argument; the
 * bwrap command lines carry "$PORT" unexpanded). Up to max, returns the count. */
static int find_port_procs(int port, pid_t *pids, int max)
{
    char want[16];
    snprintf(want, sizeof(want), "%d", port);
    DIR *d = opendir("/proc");
    int n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid())
            continue;
        char path[64], buf[4096];
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[len] = '\0';
        for (size_t off = 0; off < len; off += strlen(buf + off) + 1) {
            if (strcmp(buf + off, want) == 0) {
                pids[n++] = (pid_t)pid;
                break;
            }
        }
    }
    closedir(d);
    return n;
}

struct snap {
    int n;
    struct runtime_replica_status st[4];
};

static int collect(void *arg, const struct runtime_replica_status *st)
{
    struct snap *s = arg;
    assert_non_null(st->state_name);
    if (s->n < 4)
        s->st[s->n++] = *st;
    return 0;
}

static void snapshot(struct runtime_supervisor *sup, struct snap *s)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(runtime_supervisor_status(sup, collect, s), 0);
}

/* Polls until every replica's state is `state`; returns 1 on success. */
static int wait_state(struct runtime_supervisor *sup, int replicas,
                      enum runtime_replica_state state)
{
    struct snap s;
    for (int waited = 0; waited < WAIT_MS; waited += POLL_MS) {
        snapshot(sup, &s);
        int good = s.n == replicas;
        for (int i = 0; i < s.n; i++)
            good = good && s.st[i].state == state;
        if (good)
            return 1;
        sleep_ms(POLL_MS);
    }
    for (int i = 0; i < s.n; i++)
        print_message("replica %d: %s exits=%d last_exit=%d error='%s'\n", i, s.st[i].state_name,
                      s.st[i].exits, s.st[i].last_exit_code, s.st[i].last_error);
    return 0;
}

static const char *const http_argv[] = {
    "sh", "-c", "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1", NULL};
static const char *const http_env[] = {"PORT=1", "PYTHONUNBUFFERED=1", NULL};

/* Starts the supervisor or skips the test when bubblewrap cannot run here. */
static struct runtime_supervisor *start(const char *name, const struct runtime_replica_spec *spec,
                                        int replicas)
{
    struct core_err err = {0};
    struct runtime_supervisor *sup = runtime_supervisor_start(name, spec, replicas, &err);
    if (!sup && err.code == CORE_E_UNSUPPORTED) {
        print_message("skipped: %s\n", err.msg);
        skip();
    }
    if (!sup)
        fail_msg("runtime_supervisor_start: %s", err.msg);
    return sup;
}

static void http_spec(struct fixture *f, struct runtime_replica_spec *spec, int port)
{
    memset(spec, 0, sizeof(*spec));
    spec->argv = http_argv;
    spec->env = http_env;
    spec->bundle_dir = f->bundle;
    spec->workdir = "/app";
    spec->limits.pids = 64;
    spec->log_fd = -1;
    spec->log_path = f->log;
    spec->port = port;
}

/* Stops sup and checks that no process with the ports in its command line is left. */
static void stop_and_check(struct runtime_supervisor *sup, int port, int replicas)
{
    runtime_supervisor_stop(sup);
    pid_t pids[8];
    for (int i = 0; i < replicas; i++)
        assert_int_equal(find_port_procs(port + i, pids, 8), 0);
}

static void two_replicas_serve_http(void **state)
{
    struct fixture *f = *state;
    struct runtime_replica_spec spec;
    int port = free_port_pair();
    http_spec(f, &spec, port);
    struct runtime_supervisor *sup = start("unit-http", &spec, 2);
    assert_true(wait_state(sup, 2, RUNTIME_REPLICA_RUNNING));
    assert_true(wait_http(port));
    assert_true(wait_http(port + 1));

    struct snap s;
    snapshot(sup, &s);
    assert_int_equal(s.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s.st[i].index, i);
        assert_int_equal(s.st[i].port, port + i);
        assert_string_equal(s.st[i].state_name, "running");
        assert_int_equal(s.st[i].pid, 0);
        assert_true(s.st[i].last_start_ms > 0);
        assert_true(strncmp(s.st[i].isolation, "bwrap", 5) == 0);
    }
    stop_and_check(sup, port, 2);
}

static void exiting_replica_crash_loops(void **state)
{
    struct fixture *f = *state;
    static const char *const argv[] = {"sh", "-c", "exit 3", NULL};
    struct runtime_replica_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.argv = argv;
    spec.log_fd = -1;
    spec.log_path = f->log;
    struct runtime_supervisor *sup = start("unit-crash", &spec, 1);
    runtime_supervisor_set_backoff(sup, 10, 50);
    assert_true(wait_state(sup, 1, RUNTIME_REPLICA_CRASH_LOOP));
    struct snap s;
    snapshot(sup, &s);
    assert_string_equal(s.st[0].state_name, "crash-loop");
    assert_true(s.st[0].exits >= RUNTIME_CRASH_LOOP_EXITS);
    assert_true(s.st[0].restarts >= RUNTIME_CRASH_LOOP_EXITS - 1);
    assert_int_equal(s.st[0].last_exit_code, 3);
    assert_int_equal(s.st[0].port, 0);
    runtime_supervisor_stop(sup);
}

static void killed_replica_restarts(void **state)
{
    struct fixture *f = *state;
    struct runtime_replica_spec spec;
    int port = free_port_pair();
    http_spec(f, &spec, port);
    struct runtime_supervisor *sup = start("unit-kill", &spec, 1);
    assert_true(wait_state(sup, 1, RUNTIME_REPLICA_RUNNING));
    assert_true(wait_http(port));

    pid_t pids[8];
    int n = find_port_procs(port, pids, 8);
    assert_int_equal(n, 1);
    assert_int_equal(kill(pids[0], SIGKILL), 0);

    struct snap s;
    int restarted = 0;
    for (int waited = 0; waited < WAIT_MS && !restarted; waited += POLL_MS) {
        snapshot(sup, &s);
        restarted = s.st[0].restarts >= 1;
        if (!restarted)
            sleep_ms(POLL_MS);
    }
    assert_true(restarted);
    assert_int_equal(s.st[0].exits, 1);
    assert_int_equal(s.st[0].last_exit_code, 128 + SIGKILL);
    assert_true(wait_http(port));
    stop_and_check(sup, port, 1);
}

static void stop_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct runtime_replica_spec spec;
    int port = free_port_pair();
    http_spec(f, &spec, port);
    struct runtime_supervisor *sup = start("unit-stop", &spec, 2);
    assert_true(wait_http(port));
    assert_true(wait_http(port + 1));
    pid_t pids[8];
    assert_int_equal(find_port_procs(port, pids, 8), 1);
    stop_and_check(sup, port, 2);
    assert_int_equal(http_ok(port), 0);
}

/* true when the file at path contains needle */
static int log_has(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

#define SUP_SECRET "pave-sup-unit-s3cr3t"

static void replicas_see_their_secret_file(void **state)
{
    struct fixture *f = *state;
    /* the replica compares the file with a copy in the bundle, so the secret itself never
     * reaches the log */
    char expected[160];
    snprintf(expected, sizeof(expected), "%s/expected", f->bundle);
    FILE *fp = fopen(expected, "w");
    assert_non_null(fp);
    fputs(SUP_SECRET, fp);
    fclose(fp);
    static const char *const argv[] = {
        "sh", "-c",
        "cmp -s /run/secrets/db-password /app/expected && echo \"secret-ok-$PORT\";"
        "echo \"mode-$PORT $(stat -c '%a %U' /run/secrets/db-password)\";"
        "echo \"env-$PORT $(env | grep -c pave-sup-unit)\";"
        "exec sleep 600",
        NULL};
    char secret[] = SUP_SECRET;
    struct sandbox_file file = {"/run/secrets/db-password", secret, strlen(secret)};
    struct runtime_replica_spec spec;
    int port = free_port_pair();
    memset(&spec, 0, sizeof(spec));
    spec.argv = argv;
    spec.bundle_dir = f->bundle;
    spec.log_fd = -1;
    spec.log_path = f->log;
    spec.port = port;
    spec.files = &file;
    spec.nfiles = 1;
    struct runtime_supervisor *sup = start("unit-secret", &spec, 2);
    /* the supervisor keeps its own copy: the caller may wipe its buffer right away */
    memset(secret, 'X', sizeof(secret) - 1);
    char want[2][64];
    int ok = 0;
    snprintf(want[0], sizeof(want[0]), "env-%d 0\n", port);
    snprintf(want[1], sizeof(want[1]), "env-%d 0\n", port + 1);
    for (int waited = 0; waited < WAIT_MS && !ok; waited += POLL_MS) {
        ok = log_has(f->log, want[0]) && log_has(f->log, want[1]);
        if (!ok)
            sleep_ms(POLL_MS);
    }
    assert_true(wait_state(sup, 2, RUNTIME_REPLICA_RUNNING));
    runtime_supervisor_stop(sup);
    assert_true(ok);
    for (int i = 0; i < 2; i++) {
        char line[64];
        snprintf(line, sizeof(line), "secret-ok-%d\n", port + i);
        assert_true(log_has(f->log, line));
        snprintf(line, sizeof(line), "mode-%d 400 ", port + i);
        assert_true(log_has(f->log, line));
    }
    assert_false(log_has(f->log, SUP_SECRET));
}

static void bad_specs_are_refused(void **state)
{
    struct core_err err = {0};
    static const char *const argv[] = {"true", NULL};
    static const char *const bad_env[] = {"NOEQUALS", NULL};
    struct runtime_replica_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.argv = argv;
    spec.log_fd = -1;
    assert_null(runtime_supervisor_start("x", &spec, 0, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    spec.bundle_dir = "relative";
    assert_null(runtime_supervisor_start("x", &spec, 1, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    spec.bundle_dir = NULL;
    spec.env = bad_env;
    assert_null(runtime_supervisor_start("x", &spec, 1, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    spec.env = NULL;
    struct sandbox_file hostile = {"/etc/shadow", "s3cr3t", 6};
    spec.files = &hostile;
    spec.nfiles = 1;
    assert_null(runtime_supervisor_start("x", &spec, 1, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    assert_null(strstr(err.msg, "s3cr3t"));
    hostile.inside = "/run/secrets/../../etc/shadow";
    assert_null(runtime_supervisor_start("x", &spec, 1, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    runtime_supervisor_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_specs_are_refused),
        cmocka_unit_test_setup_teardown(two_replicas_serve_http, setup, teardown),
        cmocka_unit_test_setup_teardown(exiting_replica_crash_loops, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_replica_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(replicas_see_their_secret_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
