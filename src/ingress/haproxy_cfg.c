/* Renders and validates haproxy.cfg for the ingress module. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "ingress/ingress_int.h"

#define CHECK_TIMEOUT_MS 30000

int ingress_check_service(const char *s, struct core_err *err)
{
    if (!s || !core_is_dns_label(s))
        return core_err_set(err, CORE_E_INVAL, "service name '%.64s' is not a DNS label",
                            s ? s : "(null)");
    return 0;
}

int ingress_check_host(const char *s, struct core_err *err)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 253)
        return core_err_set(err, CORE_E_INVAL, "host '%.64s' has a bad length", s ? s : "");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return core_err_set(err, CORE_E_INVAL,
                                "host '%.64s' may only hold [a-z0-9.-] characters", s);
    }
    return 0;
}

int ingress_check_file(const char *s, struct core_err *err)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 2 || n > 1024 || s[0] != '/')
        return core_err_set(err, CORE_E_INVAL, "certificate file '%.64s' must be an absolute path",
                            s ? s : "");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '\\' || c == '#' ||
            c == '$' || c == '[' || c == ']' || c == '!')
            return core_err_set(err, CORE_E_INVAL,
                                "certificate file '%.64s' holds a forbidden character", s);
    }
    return 0;
}

int ingress_check_path(const char *s, struct core_err *err)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 256 || s[0] != '/')
        return core_err_set(err, CORE_E_INVAL, "path '%.64s' must start with '/' (max 256)",
                            s ? s : "");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '\\' || c == '#' ||
            c == '$')
            return core_err_set(err, CORE_E_INVAL, "path '%.64s' holds a forbidden character",
                                s);
    }
    return 0;
}

int ingress_check_health_path(const char *s, struct core_err *err)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 256 || s[0] != '/')
        return core_err_set(err, CORE_E_INVAL,
                            "health path '%.64s' must start with '/' (max 256)", s ? s : "");
    /* one word on the `option httpchk` line: no spaces, quotes, '#', '\\' or '$' (haproxy.cfg
     * syntax) and nothing HAProxy could read as a second argument (HTTP version) */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-._~/?=&%+:@,", c)))
            return core_err_set(err, CORE_E_INVAL,
                                "health path '%.64s' holds a forbidden character", s);
    }
    return 0;
}

static int check_plain(const char *what, const char *s, struct core_err *err)
{
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '\\' || c == '#')
            return core_err_set(err, CORE_E_INVAL, "%s '%.64s' holds a forbidden character",
                                what, s);
    }
    return 0;
}

struct route_line {
    size_t svc;
    const char *path; /* NULL = any path */
};

static int route_cmp(const void *a, const void *b)
{
    const struct route_line *x = a, *y = b;
    size_t lx = x->path ? strlen(x->path) : 0, ly = y->path ? strlen(y->path) : 0;
    if (lx != ly)
        return lx < ly ? 1 : -1; /* longest prefix first */
    return x->svc < y->svc ? -1 : x->svc > y->svc;
}

/* The use_backend lines of an HTTP(S) frontend, longest path first. */
static int render_routes(const struct ingress_cfg_input *in, const struct route_line *lines,
                         size_t nlines, struct core_buf *out)
{
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < nlines; k++) {
        const struct ingress_service *s = &in->services[lines[k].svc];
        rc = core_buf_addf(out, "    use_backend be_%s if", s->name);
        if (rc == 0 && s->host)
            rc = core_buf_addf(out, " { var(txn.host) -m str %s }", s->host);
        if (rc == 0 && lines[k].path)
            rc = core_buf_addf(out, " { path_beg %s }", lines[k].path);
        if (rc == 0 && !s->host && !lines[k].path)
            rc = core_buf_adds(out, " TRUE");
        if (rc == 0)
            rc = core_buf_adds(out, "\n");
    }
    return rc;
}

int ingress_cfg_render(const struct ingress_cfg_input *in, struct core_buf *out,
                       struct core_err *err)
{
    struct route_line *lines = NULL;
    size_t nlines = 0;
    int rc = 0;

    if (in->listen_port < 1 || in->listen_port > 65535) {
        rc = core_err_set(err, CORE_E_INVAL, "listen port %d out of range", in->listen_port);
        goto out;
    }
    if (in->max_servers < 1 || in->max_servers > INGRESS_MAX_SERVERS) {
        rc = core_err_set(err, CORE_E_INVAL, "max servers %d out of range", in->max_servers);
        goto out;
    }
    if ((rc = check_plain("listen address", in->listen_addr, err)) ||
        (rc = check_plain("admin socket", in->admin_sock, err)) ||
        (rc = check_plain("pid file", in->pid_file, err)) ||
        (rc = check_plain("state file", in->state_file, err)))
        goto out;
    if (in->tls_port) {
        if (in->tls_port < 0 || in->tls_port > 65535 || in->tls_port == in->listen_port) {
            rc = core_err_set(err, CORE_E_INVAL, "TLS port %d is invalid", in->tls_port);
            goto out;
        }
        if ((rc = check_plain("TLS address", in->tls_addr, err)) ||
            (rc = ingress_check_file(in->tls_default, err)) ||
            (rc = ingress_check_file(in->tls_crt_list, err)))
            goto out;
    }
    size_t total = 0;
    for (size_t i = 0; i < in->nservices; i++) {
        const struct ingress_service *s = &in->services[i];
        if ((rc = ingress_check_service(s->name, err)))
            goto out;
        if (s->host && (rc = ingress_check_host(s->host, err)))
            goto out;
        for (size_t j = 0; j < s->npaths; j++)
            if ((rc = ingress_check_path(s->paths[j], err)))
                goto out;
        if (s->health_path && (rc = ingress_check_health_path(s->health_path, err)))
            goto out;
        if (s->internal_port < 0 || s->internal_port > 65535 ||
            s->internal_port == in->listen_port) {
            rc = core_err_set(err, CORE_E_INVAL, "internal port %d of service '%s' is invalid",
                              s->internal_port, s->name);
            goto out;
        }
        for (size_t j = 0; j < s->ncaller_ports; j++) {
            if (s->caller_ports[j] < 1 || s->caller_ports[j] > 65535 ||
                s->caller_ports[j] == in->listen_port) {
                rc = core_err_set(err, CORE_E_INVAL, "caller port %d of service '%s' is invalid",
                                  s->caller_ports[j], s->name);
                goto out;
            }
        }
        for (size_t k = 0; s->internal_port && k < i; k++) {
            if (in->services[k].internal_port == s->internal_port) {
                rc = core_err_set(err, CORE_E_CONFLICT,
                                  "internal port %d is used by services '%s' and '%s'",
                                  s->internal_port, in->services[k].name, s->name);
                goto out;
            }
        }
        total += s->npaths ? s->npaths : 1;
    }
    lines = core_calloc(total ? total : 1, sizeof(*lines));
    if (!lines) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < in->nservices; i++) {
        const struct ingress_service *s = &in->services[i];
        if (!s->npaths)
            lines[nlines++] = (struct route_line){i, NULL};
        for (size_t j = 0; j < s->npaths; j++)
            lines[nlines++] = (struct route_line){i, s->paths[j]};
    }
    qsort(lines, nlines, sizeof(*lines), route_cmp);

    const char *v6 = strchr(in->listen_addr, ':') ? "ipv6@" : "";
    rc = core_buf_addf(out,
                       "# generated by pave ingress; do not edit, it is rewritten on reload\n"
                       "global\n"
                       "    stats socket %s mode 600 level admin expose-fd listeners\n"
                       "    stats timeout 30s\n"
                       "    pidfile %s\n"
                       "    server-state-file %s\n"
                       "    hard-stop-after 30s\n"
                       "\n"
                       "defaults\n"
                       "    mode http\n"
                       "    option httplog\n"
                       "    load-server-state-from-file global\n"
                       "    timeout connect 5s\n"
                       "    timeout client 30s\n"
                       "    timeout server 30s\n"
                       "    timeout http-request 10s\n"
                       "    timeout check 2s\n"
                       /* a replica that died before its health check noticed: the request is
                        * retried on another replica instead of failing */
                       "    retries 3\n"
                       "    option redispatch 1\n"
                       "\n"
                       "frontend fe_http\n"
                       "    bind %s%s:%d\n"
                       "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower\n",
                       in->admin_sock, in->pid_file, in->state_file, v6, in->listen_addr,
                       in->listen_port);
    if (rc == 0)
        rc = render_routes(in, lines, nlines, out);
    /* TLS termination: the same routing; the certificate is picked by SNI from the crt-list,
     * the default one (first on the bind line) when no entry matches */
    if (rc == 0 && in->tls_port)
        rc = core_buf_addf(out,
                           "\nfrontend fe_https\n"
                           "    bind %s%s:%d ssl crt %s crt-list %s\n"
                           "    http-request set-header X-Forwarded-Proto https\n"
                           "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower\n",
                           strchr(in->tls_addr, ':') ? "ipv6@" : "", in->tls_addr,
                           in->tls_port, in->tls_default, in->tls_crt_list);
    if (rc == 0 && in->tls_port)
        rc = render_routes(in, lines, nlines, out);
    /* service discovery: one frontend per internal port, every request to the backend; a
     * strict service refuses there and is reached only through its declared callers' ports */
    for (size_t i = 0; rc == 0 && i < in->nservices; i++) {
        const struct ingress_service *s = &in->services[i];
        if (s->internal_port)
            rc = core_buf_addf(out,
                               "\nfrontend fe_int_%s\n"
                               "    bind %s%s:%d\n"
                               "%s"
                               "    default_backend be_%s\n",
                               s->name, v6, in->listen_addr, s->internal_port,
                               s->strict ? "    http-request deny deny_status 403\n" : "",
                               s->name);
        for (size_t j = 0; rc == 0 && j < s->ncaller_ports; j++)
            rc = core_buf_addf(out,
                               "\nfrontend fe_call_%s_%d\n"
                               "    bind %s%s:%d\n"
                               "    default_backend be_%s\n",
                               s->name, s->caller_ports[j], v6, in->listen_addr,
                               s->caller_ports[j], s->name);
    }
    for (size_t i = 0; rc == 0 && i < in->nservices; i++) {
        const struct ingress_service *s = &in->services[i];
        rc = core_buf_addf(out,
                           "\nbackend be_%s\n"
                           "    balance roundrobin\n"
                           "    option httpchk GET %s\n"
                           "    http-check expect status 200\n"
                           "    default-server check inter 1s fastinter 500ms downinter 1s "
                           "rise 1 fall 2\n",
                           s->name, s->health_path ? s->health_path : INGRESS_DEFAULT_HEALTH_PATH);
        for (int n = 1; rc == 0 && n <= in->max_servers; n++)
            rc = core_buf_addf(out, "    server s%d 127.0.0.1:1 disabled\n", n);
    }
    if (rc)
        rc = core_err_set(err, rc, "rendering haproxy.cfg: %s", core_errc_name(rc));
out:
    core_free(lines);
    lines = NULL;
    return rc;
}

int ingress_cfg_check(const char *haproxy_bin, const char *path, struct core_err *err)
{
    int pfd[2] = {-1, -1};
    char msg[400] = "";
    size_t mlen = 0;
    int rc = 0;
    pid_t pid = -1;

    if (pipe2(pfd, O_CLOEXEC) != 0) {
        rc = core_err_set(err, CORE_E_IO, "pipe: %s", strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        rc = core_err_set(err, CORE_E_IO, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        execlp(haproxy_bin, haproxy_bin, "-c", "-f", path, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    pfd[1] = -1;
    int64_t deadline = core_now_ms() + CHECK_TIMEOUT_MS;
    for (;;) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int64_t left = deadline - core_now_ms();
        if (left <= 0)
            break;
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        char tmp[512];
        ssize_t r = read(pfd[0], tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r;
        if (take > sizeof(msg) - 1 - mlen)
            take = sizeof(msg) - 1 - mlen;
        memcpy(msg + mlen, tmp, take);
        mlen += take;
        msg[mlen] = 0;
    }
    int status = 0;
    pid_t w = 0;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && core_now_ms() < deadline)
        usleep(10 * 1000);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        rc = core_err_set(err, CORE_E_IO, "'%s -c' timed out", haproxy_bin);
        goto out;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        rc = core_err_set(err, CORE_E_NOTFOUND, "cannot run '%s'", haproxy_bin);
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        /* keep the first ALERT line, or the first line */
        char *line = strstr(msg, "[ALERT]");
        if (!line)
            line = msg;
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        for (char *c = line; *c; c++)
            if ((unsigned char)*c < 0x20)
                *c = ' ';
        rc = core_err_set(err, CORE_E_INVAL, "haproxy rejected '%s': %s", path, line);
        goto out;
    }
out:
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    return rc;
}
