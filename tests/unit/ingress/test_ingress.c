/* Unit tests for ingress: a real haproxy on a random loopback port, two in-test HTTP backends,
 * routing, slots, drain and removal through the Runtime API without reloads, health gating,
 * per-service health paths, internal (service discovery) frontends, route removal, detach +
 * release + adoption of a running master (and the stale/foreign master.pid cases), and the
 * config writer's refusal of hostile input. Skips only if haproxy is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/core.h"
#include "ingress/ingress.h"
#include "ingress/ingress_int.h"

#define WAIT_MS 20000 /* upper bound for polling loops; never asserted as a duration */

/* ---- a tiny HTTP backend -------------------------------------------------------------- */

struct backend {
    int lfd;
    int port;
    const char *body;
    atomic_bool healthy;
    atomic_bool stop;
    atomic_int hits; /* GET / requests served */
    pthread_t th;
};

static void *backend_main(void *arg)
{
    struct backend *b = arg;
    while (!atomic_load(&b->stop)) {
        struct pollfd p = {.fd = b->lfd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(b->lfd, NULL, NULL);
        if (c < 0)
            continue;
        struct timeval tv = {.tv_sec = 2};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char req[4096];
        size_t len = 0;
        while (len < sizeof(req) - 1) {
            ssize_t r = read(c, req + len, sizeof(req) - 1 - len);
            if (r <= 0)
                break;
            len += (size_t)r;
            req[len] = 0;
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[len] = 0;
        char resp[512];
        if (strncmp(req, "GET /ready ", 11) == 0) {
            snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                         "Connection: close\r\n\r\nok");
        } else if (strncmp(req, "GET /healthz", 12) == 0) {
            bool ok = atomic_load(&b->healthy);
            snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\n%s",
                     ok ? "200 OK" : "500 Internal Server Error", ok ? "ok" : "no");
        } else {
            atomic_fetch_add(&b->hits, 1);
            snprintf(resp, sizeof(resp),
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(b->body), b->body);
        }
        ssize_t w = write(c, resp, strlen(resp));
        (void)w;
        close(c);
    }
    return NULL;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    *port = ntohs(sa.sin_port);
    return fd;
}

static void backend_start(struct backend *b, const char *body, bool healthy)
{
    memset(b, 0, sizeof(*b));
    b->body = body;
    atomic_store(&b->healthy, healthy);
    b->lfd = listen_any(&b->port);
    assert_true(b->lfd >= 0);
    assert_int_equal(pthread_create(&b->th, NULL, backend_main, b), 0);
}

static void backend_stop(struct backend *b)
{
    atomic_store(&b->stop, true);
    pthread_join(b->th, NULL);
    close(b->lfd);
}

/* ---- client ------------------------------------------------------------------------------ */

/* GET / with Host: host through haproxy. returns: the body (static buffer) or "" on error. */
static const char *http_get(int port, const char *host)
{
    static char buf[8192];
    buf[0] = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return buf;
    }
    char req[256];
    snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host);
    ssize_t w = write(fd, req, strlen(req));
    (void)w;
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == sizeof(buf) - 1)
            break;
    }
    buf[len] = 0;
    close(fd);
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 9, "200", 3) != 0)
        return "";
    char *body = strstr(buf, "\r\n\r\n");
    return body ? body + 4 : "";
}

/* ---- status helpers -------------------------------------------------------------------- */

struct slot_probe {
    const char *slot;
    bool found;
    struct ingress_slot_status st;
    char addr[64];
};

static int probe_fn(void *arg, const struct ingress_slot_status *st)
{
    struct slot_probe *p = arg;
    if (strcmp(st->slot, p->slot) == 0) {
        p->found = true;
        p->st = *st;
        snprintf(p->addr, sizeof(p->addr), "%s", st->addr);
        p->st.addr = NULL; /* the probe is returned by value: read p->addr instead */
        p->st.slot = p->slot;
    }
    return 0;
}

static struct slot_probe probe(struct ingress *ing, const char *svc, const char *slot)
{
    struct slot_probe p = {.slot = slot};
    struct core_err err = {0};
    int rc = ingress_backend_status(ing, svc, probe_fn, &p, &err);
    if (rc)
        print_message("status: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(p.found);
    return p;
}

/* Polls until the slot's health is `up` (bounded). */
static bool wait_health(struct ingress *ing, const char *svc, const char *slot, bool up)
{
    int64_t deadline = core_now_ms() + WAIT_MS;
    while (core_now_ms() < deadline) {
        if (probe(ing, svc, slot).st.is_up == up)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

static long show_info_pid(struct ingress *ing)
{
    char *reply = NULL;
    struct core_err err = {0};
    assert_int_equal(ingress_admin_cmd(ing, "show info", &reply, &err), 0);
    const char *p = strstr(reply, "\nPid: ");
    assert_non_null(p);
    long pid = strtol(p + 6, NULL, 10);
    core_free(reply);
    return pid;
}

/* ingress_route_set() with only host and paths (default health path, no internal port). */
static int route_simple(struct ingress *ing, const char *svc, const char *host,
                        const char *const *paths, size_t npaths, struct core_err *err)
{
    struct ingress_route r = {.host = host, .paths = paths, .npaths = npaths};
    return ingress_route_set(ing, svc, &r, err);
}

/* ---- fixture ----------------------------------------------------------------------------- */

struct fixture {
    char dir[64];
    int port;
    struct ingress *ing;
    pid_t orphan; /* a released (detached) master the test must not leak */
};

static bool have_haproxy(void)
{
    return system("command -v haproxy >/dev/null 2>&1") == 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-ingress-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ingress_stop(f->ing);
    if (f->orphan > 0 && kill(f->orphan, 0) == 0) {
        kill(f->orphan, SIGKILL);
        waitpid(f->orphan, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static int free_port(void)
{
    int port = 0;
    int fd = listen_any(&port); /* reserve a free port, then hand it to haproxy */
    assert_true(fd >= 0);
    close(fd);
    return port;
}

/* Starts (or, with adopt, re-adopts) the ingress on f->port (picked on the first start). */
static void start_opts(struct fixture *f, bool detach, bool adopt)
{
    if (!have_haproxy()) {
        print_message("skipped: haproxy is not installed\n");
        skip();
    }
    if (!f->port)
        f->port = free_port();
    struct ingress_config cfg = {.data_dir = f->dir, .listen_port = f->port, .max_servers = 4,
                                 .detach = detach, .adopt = adopt};
    struct core_err err = {0};
    f->ing = ingress_start(&cfg, &err);
    if (!f->ing)
        print_message("ingress_start: %s\n", err.msg);
    assert_non_null(f->ing);
}

static void start(struct fixture *f)
{
    start_opts(f, false, false);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_admin_socket_mode(void **state)
{
    struct fixture *f = *state;
    start(f);
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/ingress/admin.sock", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/ingress/haproxy.cfg", f->dir);
    assert_int_equal(stat(path, &st), 0);
}

static void test_route_add_drain_remove(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    struct backend b1, b2;
    start(f);
    backend_start(&b1, "v1", true);
    backend_start(&b2, "v2", true);

    const char *paths[] = {"/"};
    int rc = route_simple(f->ing, "svc", "svc.test", paths, 1, &err);
    if (rc)
        print_message("route_set: %s\n", err.msg);
    assert_int_equal(rc, 0);
    /* the same route again is not structural: no reload */
    long worker = show_info_pid(f->ing);
    pid_t master = ingress_master_pid(f->ing);
    assert_int_equal(route_simple(f->ing, "svc", "svc.test", paths, 1, &err), 0);
    assert_int_equal(show_info_pid(f->ing), worker);

    char s1[16] = "", s2[16] = "";
    rc = ingress_server_add(f->ing, "svc", "127.0.0.1", b1.port, s1, sizeof(s1), &err);
    if (rc)
        print_message("server_add: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(wait_health(f->ing, "svc", s1, true));
    struct slot_probe p = probe(f->ing, "svc", s1);
    assert_string_equal(p.addr, "127.0.0.1"); /* p.st.addr pointed into the callee */
    assert_int_equal(p.st.port, b1.port);
    assert_int_equal(p.st.admin, INGRESS_ADMIN_READY);
    assert_true(p.st.is_used);
    assert_string_equal(http_get(f->port, "svc.test"), "v1");
    assert_string_equal(http_get(f->port, "svc.test:1234"), "v1");
    assert_string_equal(http_get(f->port, "other.test"), ""); /* no route: 503 */

    assert_int_equal(ingress_server_add(f->ing, "svc", "127.0.0.1", b2.port, s2, sizeof(s2),
                                        &err), 0);
    assert_string_not_equal(s1, s2);
    assert_true(wait_health(f->ing, "svc", s2, true));
    assert_int_equal(ingress_server_drain(f->ing, "svc", s1, &err), 0);
    assert_int_equal(probe(f->ing, "svc", s1).st.admin, INGRESS_ADMIN_DRAIN);
    int before = atomic_load(&b1.hits);
    for (int i = 0; i < 6; i++)
        assert_string_equal(http_get(f->port, "svc.test"), "v2");
    assert_int_equal(atomic_load(&b1.hits), before);

    assert_int_equal(ingress_server_remove(f->ing, "svc", s1, &err), 0);
    p = probe(f->ing, "svc", s1);
    assert_int_equal(p.st.admin, INGRESS_ADMIN_MAINT);
    assert_false(p.st.is_used);
    assert_int_equal(ingress_server_drain(f->ing, "svc", s1, &err), CORE_E_NOTFOUND);
    assert_string_equal(http_get(f->port, "svc.test"), "v2");

    /* none of that reloaded haproxy */
    assert_int_equal(show_info_pid(f->ing), worker);
    assert_int_equal(ingress_master_pid(f->ing), master);

    /* the freed slot is reused */
    char s3[16] = "";
    assert_int_equal(ingress_server_add(f->ing, "svc", "127.0.0.1", b1.port, s3, sizeof(s3),
                                        &err), 0);
    assert_string_equal(s3, s1);
    assert_int_equal(ingress_server_remove(f->ing, "svc", s3, &err), 0);

    /* a structural change reloads: new worker, same master, slots survive */
    const char *paths2[] = {"/api"};
    rc = route_simple(f->ing, "other", "svc.test", paths2, 1, &err);
    if (rc)
        print_message("route_set other: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_not_equal(show_info_pid(f->ing), worker);
    assert_int_equal(ingress_master_pid(f->ing), master);
    p = probe(f->ing, "svc", s2);
    assert_int_equal(p.st.port, b2.port);
    assert_int_equal(p.st.admin, INGRESS_ADMIN_READY);
    assert_true(wait_health(f->ing, "svc", s2, true));
    assert_string_equal(http_get(f->port, "svc.test"), "v2");

    backend_stop(&b1);
    backend_stop(&b2);
}

static void test_unhealthy_gets_no_traffic(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    struct backend good, bad;
    start(f);
    backend_start(&good, "good", true);
    backend_start(&bad, "bad", false);
    assert_int_equal(route_simple(f->ing, "web", NULL, NULL, 0, &err), 0);
    char sg[16], sb[16];
    assert_int_equal(ingress_server_add(f->ing, "web", "127.0.0.1", bad.port, sb, sizeof(sb),
                                        &err), 0);
    assert_int_equal(ingress_server_add(f->ing, "web", "127.0.0.1", good.port, sg, sizeof(sg),
                                        &err), 0);
    assert_true(wait_health(f->ing, "web", sg, true));
    /* wait until the bad server's checks have certainly run a few times */
    int64_t deadline = core_now_ms() + WAIT_MS;
    char *reply = NULL;
    bool checked = false;
    while (!checked && core_now_ms() < deadline) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "show servers state be_web");
        assert_int_equal(ingress_admin_cmd(f->ing, cmd, &reply, &err), 0);
        checked = !probe(f->ing, "web", sb).st.is_up;
        core_free(reply);
        reply = NULL;
        if (!checked)
            usleep(100 * 1000);
    }
    assert_true(checked);
    for (int i = 0; i < 6; i++)
        assert_string_equal(http_get(f->port, "any.host"), "good");
    assert_int_equal(atomic_load(&bad.hits), 0);
    assert_false(probe(f->ing, "web", sb).st.is_up);

    /* slots run out */
    char s[16];
    assert_int_equal(ingress_server_add(f->ing, "web", "127.0.0.1", 1, s, sizeof(s), &err), 0);
    assert_int_equal(ingress_server_add(f->ing, "web", "127.0.0.1", 1, s, sizeof(s), &err), 0);
    assert_int_equal(ingress_server_add(f->ing, "web", "127.0.0.1", 1, s, sizeof(s), &err),
                     CORE_E_TOO_BIG);
    /* bad input is refused before reaching the socket */
    assert_int_equal(ingress_server_add(f->ing, "web", "1.2.3.4 state maint", 80, s, sizeof(s),
                                        &err), CORE_E_INVAL);
    assert_int_equal(ingress_server_add(f->ing, "nope", "127.0.0.1", 80, s, sizeof(s), &err),
                     CORE_E_NOTFOUND);
    assert_int_equal(ingress_server_drain(f->ing, "web", "s1;shutdown", &err), CORE_E_NOTFOUND);
    backend_stop(&good);
    backend_stop(&bad);
}

static void test_hostile_route_refused(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    start(f);
    char *before = NULL, *after = NULL;
    size_t blen = 0, alen = 0;
    const char *cfgp = ingress_config_path(f->ing);
    assert_int_equal(core_file_read(cfgp, 1 << 20, &before, &blen, &err), 0);
    const char *ok_paths[] = {"/"};
    assert_int_equal(route_simple(f->ing, "a\nlisten evil", "x.test", ok_paths, 1, &err),
                     CORE_E_INVAL);
    assert_int_equal(route_simple(f->ing, "be_x bind", "x.test", ok_paths, 1, &err),
                     CORE_E_INVAL);
    assert_int_equal(route_simple(f->ing, "x", "x.test }  or TRUE", ok_paths, 1, &err),
                     CORE_E_INVAL);
    const char *bad_paths[] = {"/a b"};
    assert_int_equal(route_simple(f->ing, "x", "x.test", bad_paths, 1, &err), CORE_E_INVAL);
    const char *bad_paths2[] = {"nope"};
    assert_int_equal(route_simple(f->ing, "x", "x.test", bad_paths2, 1, &err),
                     CORE_E_INVAL);
    assert_int_equal(core_file_read(cfgp, 1 << 20, &after, &alen, &err), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(after, before, blen);
    core_free(before);
    core_free(after);
}

static void test_cfg_render_and_check(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    if (!have_haproxy()) {
        print_message("skipped: haproxy is not installed\n");
        skip();
    }
    struct core_buf b;
    core_buf_init(&b, 1 << 20);
    struct ingress_service svc = {.name = "evil\nglobal", .host = NULL};
    struct ingress_cfg_input in = {
        .listen_addr = "127.0.0.1", .listen_port = 8080, .admin_sock = "/tmp/a.sock",
        .pid_file = "/tmp/p", .state_file = "/tmp/s", .max_servers = 2,
        .services = &svc, .nservices = 1,
    };
    assert_int_equal(ingress_cfg_render(&in, &b, &err), CORE_E_INVAL);
    assert_int_equal(b.len, 0);
    svc.name = "fine";
    in.admin_sock = "/tmp/a.sock level admin";
    assert_int_equal(ingress_cfg_render(&in, &b, &err), CORE_E_INVAL);
    in.admin_sock = "/tmp/a.sock";
    assert_int_equal(ingress_cfg_render(&in, &b, &err), 0);
    assert_non_null(strstr(b.data, "backend be_fine\n"));
    assert_non_null(strstr(b.data, "server s2 127.0.0.1:1 disabled\n"));
    assert_null(strstr(b.data, "server s3 "));

    char good[128], bad[128];
    snprintf(good, sizeof(good), "%s/good.cfg", f->dir);
    snprintf(bad, sizeof(bad), "%s/bad.cfg", f->dir);
    assert_int_equal(core_file_write_atomic(good, b.data, b.len, 0600, &err), 0);
    int rc = ingress_cfg_check("haproxy", good, &err);
    if (rc)
        print_message("check: %s\n", err.msg);
    assert_int_equal(rc, 0);
    const char *broken = "frontend x\n    bind 127.0.0.1:1\n    use_backend nowhere\n";
    assert_int_equal(core_file_write_atomic(bad, broken, strlen(broken), 0600, &err), 0);
    assert_int_equal(ingress_cfg_check("haproxy", bad, &err), CORE_E_INVAL);
    print_message("haproxy -c said: %s\n", err.msg);
    assert_int_equal(ingress_cfg_check("/nonexistent/haproxy", good, &err), CORE_E_NOTFOUND);
    core_buf_release(&b);
}

static bool file_has(const char *path, const char *needle)
{
    char *text = NULL;
    size_t len = 0;
    struct core_err err = {0};
    assert_int_equal(core_file_read(path, 1 << 20, &text, &len, &err), 0);
    bool has = strstr(text, needle) != NULL;
    core_free(text);
    return has;
}

static void test_health_path(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    struct backend b;
    start(f);
    backend_start(&b, "ready", false); /* /healthz fails, /ready passes */
    struct ingress_route r = {.host = "web.test", .health_path = "/ready"};
    int rc = ingress_route_set(f->ing, "web", &r, &err);
    if (rc)
        print_message("route_set: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(file_has(ingress_config_path(f->ing), "option httpchk GET /ready\n"));
    char s1[16];
    assert_int_equal(ingress_server_add(f->ing, "web", "127.0.0.1", b.port, s1, sizeof(s1), &err),
                     0);
    assert_true(wait_health(f->ing, "web", s1, true));
    assert_string_equal(http_get(f->port, "web.test"), "ready");

    /* the same route is not structural; a changed health path is (reload, slot kept) */
    long worker = show_info_pid(f->ing);
    assert_int_equal(ingress_route_set(f->ing, "web", &r, &err), 0);
    assert_int_equal(show_info_pid(f->ing), worker);
    r.health_path = NULL; /* back to /healthz, which this backend fails */
    assert_int_equal(ingress_route_set(f->ing, "web", &r, &err), 0);
    assert_int_not_equal(show_info_pid(f->ing), worker);
    assert_true(file_has(ingress_config_path(f->ing), "option httpchk GET /healthz\n"));
    assert_true(probe(f->ing, "web", s1).st.is_used);
    assert_true(wait_health(f->ing, "web", s1, false));
    backend_stop(&b);
}

static void test_internal_port_and_remove(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    struct backend b;
    start(f);
    backend_start(&b, "api", true);
    int iport = free_port();
    const char *paths[] = {"/api"};
    struct ingress_route r = {.host = "api.test", .paths = paths, .npaths = 1,
                              .internal_port = iport};
    int rc = ingress_route_set(f->ing, "api", &r, &err);
    if (rc)
        print_message("route_set: %s\n", err.msg);
    assert_int_equal(rc, 0);
    char s1[16];
    assert_int_equal(ingress_server_add(f->ing, "api", "127.0.0.1", b.port, s1, sizeof(s1), &err),
                     0);
    assert_true(wait_health(f->ing, "api", s1, true));
    /* the internal frontend takes any host and any path; the public one still routes */
    assert_string_equal(http_get(iport, "whatever"), "api");
    assert_string_equal(http_get(f->port, "whatever"), "");

    /* one internal port per service, never the listen port */
    struct ingress_route r2 = {.internal_port = iport};
    assert_int_equal(ingress_route_set(f->ing, "other", &r2, &err), CORE_E_CONFLICT);
    r2.internal_port = f->port;
    assert_int_equal(ingress_route_set(f->ing, "other", &r2, &err), CORE_E_CONFLICT);
    r2.internal_port = 70000;
    assert_int_equal(ingress_route_set(f->ing, "other", &r2, &err), CORE_E_INVAL);

    char routes[128];
    snprintf(routes, sizeof(routes), "%s/ingress/routes.json", f->dir);
    struct stat st;
    assert_int_equal(stat(routes, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(file_has(routes, "\"api\""));

    /* removal drops the backend, its routes and its internal frontend */
    rc = ingress_route_remove(f->ing, "api", &err);
    if (rc)
        print_message("route_remove: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_false(file_has(ingress_config_path(f->ing), "be_api"));
    assert_false(file_has(routes, "\"api\""));
    assert_string_equal(http_get(iport, "whatever"), "");
    assert_int_equal(ingress_server_add(f->ing, "api", "127.0.0.1", b.port, s1, sizeof(s1), &err),
                     CORE_E_NOTFOUND);
    assert_int_equal(ingress_route_remove(f->ing, "api", &err), CORE_E_NOTFOUND);
    /* and it can come back, with all slots free */
    assert_int_equal(ingress_route_set(f->ing, "api", &r, &err), 0);
    assert_false(probe(f->ing, "api", "s1").st.is_used);
    backend_stop(&b);
}

static void test_detach_release_adopt(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    struct backend b;
    start_opts(f, true, false);
    backend_start(&b, "kept", true);
    int iport = free_port();
    struct ingress_route r = {.host = "svc.test", .health_path = "/ready", .internal_port = iport};
    assert_int_equal(ingress_route_set(f->ing, "svc", &r, &err), 0);
    char s1[16] = "";
    assert_int_equal(ingress_server_add(f->ing, "svc", "127.0.0.1", b.port, s1, sizeof(s1), &err),
                     0);
    assert_true(wait_health(f->ing, "svc", s1, true));
    pid_t master = ingress_master_pid(f->ing);
    long worker = show_info_pid(f->ing);

    /* the server goes away; haproxy keeps serving */
    ingress_release(f->ing);
    f->ing = NULL;
    f->orphan = master;
    assert_int_equal(kill(master, 0), 0);
    assert_string_equal(http_get(f->port, "svc.test"), "kept");

    start_opts(f, true, true);
    assert_true(ingress_adopted(f->ing));
    assert_int_equal(ingress_master_pid(f->ing), master);
    assert_int_equal(show_info_pid(f->ing), worker); /* adopted as is: no reload */
    struct slot_probe p = probe(f->ing, "svc", s1);
    assert_true(p.st.is_used);
    assert_int_equal(p.st.port, b.port);
    assert_string_equal(http_get(f->port, "svc.test"), "kept");
    assert_string_equal(http_get(iport, "x"), "kept");
    /* the table came back: the same route is not a change */
    assert_int_equal(ingress_route_set(f->ing, "svc", &r, &err), 0);
    assert_int_equal(show_info_pid(f->ing), worker);
    char s2[16] = "";
    assert_int_equal(ingress_server_add(f->ing, "svc", "127.0.0.1", b.port, s2, sizeof(s2), &err),
                     0);
    assert_string_not_equal(s1, s2);
    assert_true(wait_health(f->ing, "svc", s2, true));

    /* without adopt, a leftover haproxy of ours is replaced */
    ingress_release(f->ing);
    f->ing = NULL;
    start_opts(f, true, false);
    assert_false(ingress_adopted(f->ing));
    assert_int_not_equal(ingress_master_pid(f->ing), master);
    assert_int_not_equal(kill(master, 0), 0); /* stopped and reaped */
    f->orphan = 0;
    assert_int_equal(ingress_server_add(f->ing, "svc", "127.0.0.1", b.port, s2, sizeof(s2), &err),
                     CORE_E_NOTFOUND); /* fresh start: empty table */
    backend_stop(&b);
}

static void test_adopt_reconciles_or_replaces(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    struct backend b;
    start_opts(f, true, false);
    backend_start(&b, "moved", true);
    struct ingress_route r = {.host = "m.test"};
    assert_int_equal(ingress_route_set(f->ing, "m", &r, &err), 0);
    char s1[16] = "";
    assert_int_equal(ingress_server_add(f->ing, "m", "127.0.0.1", b.port, s1, sizeof(s1), &err),
                     0);
    assert_true(wait_health(f->ing, "m", s1, true));
    pid_t master = ingress_master_pid(f->ing);
    long worker = show_info_pid(f->ing);
    ingress_release(f->ing);
    f->ing = NULL;
    f->orphan = master;

    /* adopted with another listen port: the config no longer matches, so it is reloaded in
     * the same master and the slot carries over */
    f->port = free_port();
    start_opts(f, true, true);
    assert_true(ingress_adopted(f->ing));
    assert_int_equal(ingress_master_pid(f->ing), master);
    assert_int_not_equal(show_info_pid(f->ing), worker);
    assert_true(probe(f->ing, "m", s1).st.is_used);
    assert_true(wait_health(f->ing, "m", s1, true));
    assert_string_equal(http_get(f->port, "m.test"), "moved");
    ingress_release(f->ing);
    f->ing = NULL;

    /* an unreadable routing table: the leftover haproxy is replaced, not adopted */
    char routes[128];
    snprintf(routes, sizeof(routes), "%s/ingress/routes.json", f->dir);
    const char *bad = "{\"version\":1,\"services\":[{\"name\":\"a b\"}]}";
    assert_int_equal(core_file_write_atomic(routes, bad, strlen(bad), 0600, &err), 0);
    start_opts(f, true, true);
    assert_false(ingress_adopted(f->ing));
    assert_int_not_equal(ingress_master_pid(f->ing), master);
    assert_int_not_equal(kill(master, 0), 0);
    f->orphan = 0;
    assert_false(file_has(routes, "a b"));
    backend_stop(&b);
}

static void write_master_pid(struct fixture *f, long pid)
{
    char path[128], line[32];
    struct core_err err = {0};
    snprintf(path, sizeof(path), "%s/ingress", f->dir);
    assert_int_equal(core_mkdir_p(path, 0700, &err), 0);
    snprintf(path, sizeof(path), "%s/ingress/master.pid", f->dir);
    int n = snprintf(line, sizeof(line), "%ld\n", pid);
    assert_int_equal(core_file_write_atomic(path, line, (size_t)n, 0600, &err), 0);
}

static void test_stale_master_pid(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    /* a pid that is certainly gone: a child we reaped */
    pid_t gone = fork();
    assert_true(gone >= 0);
    if (gone == 0)
        _exit(0);
    assert_int_equal(waitpid(gone, NULL, 0), gone);
    write_master_pid(f, gone);
    start_opts(f, false, true);
    assert_false(ingress_adopted(f->ing));
    assert_int_not_equal(ingress_master_pid(f->ing), gone);
    struct ingress_route r = {.host = "x.test"};
    assert_int_equal(ingress_route_set(f->ing, "x", &r, &err), 0);
    ingress_stop(f->ing);
    f->ing = NULL;

    /* a live process that is not our haproxy (this test) is neither adopted nor killed */
    write_master_pid(f, getpid());
    start_opts(f, false, true);
    assert_false(ingress_adopted(f->ing));
    assert_int_not_equal(ingress_master_pid(f->ing), getpid());
}

static void test_hostile_health_path_refused(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    start(f);
    char *before = NULL, *after = NULL;
    size_t blen = 0, alen = 0;
    const char *cfgp = ingress_config_path(f->ing);
    assert_int_equal(core_file_read(cfgp, 1 << 20, &before, &blen, &err), 0);
    static const char *const bad[] = {
        "healthz", "/a b", "/a\nlisten evil", "/a#b", "/${HOME}", "/a\"b", "/a'b", "/a\\b",
        "/ HTTP/1.1", "", "/a{b}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ingress_route r = {.health_path = bad[i]};
        assert_int_equal(ingress_route_set(f->ing, "x", &r, &err), CORE_E_INVAL);
    }
    struct ingress_route r = {.internal_port = -1};
    assert_int_equal(ingress_route_set(f->ing, "x", &r, &err), CORE_E_INVAL);
    assert_int_equal(ingress_route_set(f->ing, "x", NULL, &err), CORE_E_INVAL);
    assert_int_equal(core_file_read(cfgp, 1 << 20, &after, &alen, &err), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(after, before, blen);
    core_free(before);
    core_free(after);
    assert_int_equal(ingress_check_health_path("/healthz?full=1&x=a%20b", &err), 0);
}


/* ---- TLS ----------------------------------------------------------------------------------- */

/* A self-signed EC certificate for `name` with serial `serial`: PEM of cert then key (malloc). */
static char *make_cert(const char *name, long serial)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, key);
    char san[300];
    snprintf(san, sizeof(san), "DNS:%s", name);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)len + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)len);
    out[len] = 0;
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(key);
    return out;
}

/* The serial of the certificate served on port for SNI `sni` (openssl s_client, no
 * verification: the certificate itself is what is checked), and, when body is given, the body
 * of GET https://sni:port/ (curl -k). -1 when nothing answered. */
static long tls_serial(int port, const char *sni, char *body, size_t bodysz)
{
    char cmd[512], out[256] = "";
    snprintf(cmd, sizeof(cmd),
             "openssl s_client -connect 127.0.0.1:%d -servername %s </dev/null 2>/dev/null | "
             "openssl x509 -noout -serial 2>/dev/null",
             port, sni);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    pclose(p);
    const char *eq = strstr(out, "serial=");
    long serial = eq ? strtol(eq + 7, NULL, 16) : -1;
    if (body) {
        snprintf(cmd, sizeof(cmd), "curl -sk -m 5 --resolve %s:%d:127.0.0.1 https://%s:%d/", sni,
                 port, sni, port);
        p = popen(cmd, "r");
        assert_non_null(p);
        n = fread(body, 1, bodysz - 1, p);
        body[n] = 0;
        pclose(p);
    }
    return serial;
}

static void start_tls(struct fixture *f, int tls_port, const char *default_pem, bool adopt)
{
    if (!have_haproxy()) {
        print_message("skipped: haproxy is not installed\n");
        skip();
    }
    if (!f->port)
        f->port = free_port();
    struct ingress_config cfg = {.data_dir = f->dir, .listen_port = f->port, .max_servers = 4,
                                 .detach = adopt, .adopt = adopt, .tls_port = tls_port,
                                 .tls_default_pem = default_pem};
    struct core_err err = {0};
    f->ing = ingress_start(&cfg, &err);
    if (!f->ing)
        print_message("ingress_start: %s\n", err.msg);
    assert_non_null(f->ing);
}

static void test_tls_runtime_cert_update(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    struct backend b;
    char *def = make_cert("default.test", 1), *c1 = make_cert("svc.test", 100),
         *c2 = make_cert("svc.test", 101);
    int tport = free_port();
    start_tls(f, tport, def, false);
    assert_int_equal(ingress_tls_port(f->ing), tport);
    backend_start(&b, "hello", true);
    const char *paths[] = {"/"};
    assert_int_equal(route_simple(f->ing, "svc", "svc.test", paths, 1, &err), 0);
    char slot[16];
    assert_int_equal(ingress_server_add(f->ing, "svc", "127.0.0.1", b.port, slot, sizeof(slot),
                                        &err), 0);
    assert_true(wait_health(f->ing, "svc", slot, true));
    /* only the default certificate so far */
    assert_int_equal(tls_serial(tport, "svc.test", NULL, 0), 1);

    char dir[128], file[160];
    snprintf(dir, sizeof(dir), "%s/certs", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(file, sizeof(file), "%s/svc.pem", dir);
    const char *sni[] = {"svc.test"};
    pid_t master = ingress_master_pid(f->ing);
    long worker = show_info_pid(f->ing);
    int rc = ingress_tls_cert_set(f->ing, file, c1, sni, 1, &err);
    if (rc)
        print_message("tls_cert_set: %s\n", err.msg);
    assert_int_equal(rc, 0);
    char body[256];
    assert_int_equal(tls_serial(tport, "svc.test", body, sizeof(body)), 100);
    assert_string_equal(body, "hello");
    assert_int_equal(tls_serial(tport, "other.test", NULL, 0), 1); /* no match: default */
    assert_true(file_has(file, "BEGIN PRIVATE KEY"));
    char list[160];
    snprintf(list, sizeof(list), "%s/ingress/crt-list", f->dir);
    assert_true(file_has(list, "svc.pem svc.test"));

    /* a renewal: in memory through the Runtime API, no reload */
    assert_int_equal(ingress_tls_cert_set(f->ing, file, c2, sni, 1, &err), 0);
    assert_int_equal(tls_serial(tport, "svc.test", NULL, 0), 101);
    assert_int_equal(show_info_pid(f->ing), worker);
    assert_int_equal(ingress_master_pid(f->ing), master);
    /* hostile input is refused before anything is written */
    const char *bad[] = {"svc.test crt"};
    assert_int_equal(ingress_tls_cert_set(f->ing, file, c1, bad, 1, &err), CORE_E_INVAL);
    assert_int_equal(ingress_tls_cert_set(f->ing, "rel/x.pem", c1, sni, 1, &err), CORE_E_INVAL);
    assert_int_equal(ingress_tls_cert_set(f->ing, file, "-----BEGIN X\n\nY\n", sni, 1, &err),
                     CORE_E_INVAL);
    assert_int_equal(tls_serial(tport, "svc.test", NULL, 0), 101);

    /* a reload (a structural change) serves the files on disk */
    const char *paths2[] = {"/", "/api"};
    assert_int_equal(route_simple(f->ing, "svc", "svc.test", paths2, 2, &err), 0);
    assert_true(show_info_pid(f->ing) != worker);
    assert_int_equal(tls_serial(tport, "svc.test", NULL, 0), 101);
    worker = show_info_pid(f->ing);

    /* the default certificate too, and removal falls back to it */
    char *def2 = make_cert("default.test", 2);
    assert_int_equal(ingress_tls_default_set(f->ing, def2, &err), 0);
    assert_int_equal(tls_serial(tport, "other.test", NULL, 0), 2);
    assert_int_equal(ingress_tls_cert_remove(f->ing, file, &err), 0);
    assert_int_equal(tls_serial(tport, "svc.test", NULL, 0), 2);
    assert_int_equal(access(file, F_OK), -1);
    assert_false(file_has(list, "svc.pem"));
    assert_int_equal(ingress_tls_cert_remove(f->ing, file, &err), CORE_E_NOTFOUND);
    /* and added again after a removal */
    assert_int_equal(ingress_tls_cert_set(f->ing, file, c1, sni, 1, &err), 0);
    assert_int_equal(tls_serial(tport, "svc.test", NULL, 0), 100);
    assert_int_equal(show_info_pid(f->ing), worker);
    assert_int_equal(ingress_master_pid(f->ing), master);
    backend_stop(&b);
    free(def);
    free(def2);
    free(c1);
    free(c2);
}

int main(void)
{
    core_log_set_level(CORE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cfg_render_and_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_socket_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_runtime_cert_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_route_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_add_drain_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unhealthy_gets_no_traffic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_internal_port_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detach_release_adopt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_reconciles_or_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_master_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_health_path_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
