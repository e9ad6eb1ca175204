/* The `syslog` source: RFC 5424 / RFC 3164 messages over UDP (one datagram, one message) or TCP
 * (RFC 6587: octet counting "LEN SP MSG" or LF-delimited, chosen per message by its first byte),
 * on one thread. Messages are at most 64 KiB (longer LF-framed ones are cut, longer
 * octet-counted ones skipped) and at most 64 TCP connections are served at once.
 *
 * The engine splits chunks at '\n', so a message that contains line breaks has them written as
 * the two characters "\n" (and '\r' as "\r"): one message stays one record. Each message is
 * pushed with origin.parser = TEL_PARSE_SYSLOG so the engine parses it with tel_parse_syslog().
 * By default only loopback addresses may be listened on (allow_remote: true lifts it). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "telemetry/telemetry_int.h"

#define MSG_MAX (64u << 10)
#define CONNS_MAX 64
#define BATCH_BYTES (256u << 10)

struct conn {
    int fd;
    struct core_buf in; /* unframed bytes */
    size_t skip;        /* bytes of an oversized octet-counted message still to skip */
    bool cut;           /* dropping the rest of an oversized LF-framed message */
};

struct ssrc {
    struct tel_engine *e;
    bool tcp;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int lfd;
    int wake[2]; /* self-pipe: stop */
    struct conn conns[CONNS_MAX];
    size_t nconns;
    struct tel_origin origin;
    char name[64];
    char listen[300];
    struct core_buf out; /* messages of this round, '\n'-separated */
    pthread_t thread;
    bool started;
    char dgram[MSG_MAX + 1];
};

/* Parses "udp://ADDR:PORT" / "tcp://[ADDR6]:PORT". */
static int parse_listen(struct ssrc *s, const char *v)
{
    const char *rest;
    if (strncmp(v, "udp://", 6) == 0)
        s->tcp = false;
    else if (strncmp(v, "tcp://", 6) == 0)
        s->tcp = true;
    else
        return CORE_E_INVAL;
    rest = v + 6;
    char host[128];
    const char *colon;
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        if (!close || close[1] != ':' || (size_t)(close - rest - 1) >= sizeof(host))
            return CORE_E_INVAL;
        snprintf(host, sizeof(host), "%.*s", (int)(close - rest - 1), rest + 1);
        colon = close + 1;
    } else {
        colon = strrchr(rest, ':');
        if (!colon || (size_t)(colon - rest) >= sizeof(host))
            return CORE_E_INVAL;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - rest), rest);
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return CORE_E_INVAL;
    memset(&s->addr, 0, sizeof(s->addr));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&s->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&s->addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        s->addrlen = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        s->addrlen = sizeof(*a6);
    } else {
        return CORE_E_INVAL;
    }
    return 0;
}

static bool is_loopback(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* Adds one message to the round's output as one line. */
static void add_msg(struct ssrc *s, const char *m, size_t n)
{
    while (n && (m[n - 1] == '\n' || m[n - 1] == '\r' || m[n - 1] == 0))
        n--;
    if (!n)
        return;
    for (size_t i = 0; i < n; i++) {
        if (m[i] == '\n')
            core_buf_add(&s->out, "\\n", 2);
        else if (m[i] == '\r')
            core_buf_add(&s->out, "\\r", 2);
        else
            core_buf_addc(&s->out, m[i]);
    }
    core_buf_addc(&s->out, '\n');
}

static bool stop_requested(struct ssrc *s)
{
    struct pollfd p = {s->wake[0], POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

/* Pushes the round's messages, waiting while the pipeline is full unless stopping. */
static void flush_out(struct ssrc *s)
{
    while (s->out.len) {
        struct core_err err = {0};
        int rc = tel_engine_push(s->e, &s->origin, s->out.data, s->out.len, true, &err);
        if (rc != CORE_E_TOO_BIG || stop_requested(s))
            break;
        usleep(10 * 1000);
    }
    core_buf_clear(&s->out);
}

/* Frames what a TCP connection sent. returns: false when the connection must be closed. */
static bool frame(struct ssrc *s, struct conn *c)
{
    size_t at = 0;
    for (;;) {
        const char *p = c->in.data + at;
        size_t avail = c->in.len - at;
        if (!avail)
            break;
        if (c->skip) {
            size_t k = avail < c->skip ? avail : c->skip;
            c->skip -= k;
            at += k;
            continue;
        }
        if (c->cut) {
            const char *nl = memchr(p, '\n', avail);
            at += nl ? (size_t)(nl - p) + 1 : avail;
            c->cut = !nl;
            continue;
        }
        if (p[0] >= '0' && p[0] <= '9') { /* octet counting */
            size_t i = 0, len = 0;
            while (i < avail && i < 8 && p[i] >= '0' && p[i] <= '9')
                len = len * 10 + (size_t)(p[i++] - '0');
            if (i == avail)
                break; /* the length is not complete yet */
            if (p[i] != ' ')
                return false; /* neither framing: give up on this peer */
            if (len > MSG_MAX) {
                c->skip = len;
                at += i + 1;
                continue;
            }
            if (avail - i - 1 < len)
                break;
            add_msg(s, p + i + 1, len);
            at += i + 1 + len;
            continue;
        }
        const char *nl = memchr(p, '\n', avail);
        if (!nl) {
            if (avail > MSG_MAX) { /* cut, and drop the rest of the line */
                add_msg(s, p, MSG_MAX);
                at += avail;
                c->cut = true;
            }
            break;
        }
        size_t len = (size_t)(nl - p);
        add_msg(s, p, len > MSG_MAX ? MSG_MAX : len);
        at += len + 1;
    }
    if (at) {
        memmove(c->in.data, c->in.data + at, c->in.len - at);
        c->in.len -= at;
        c->in.data[c->in.len] = 0;
    }
    return true;
}

static void conn_close(struct ssrc *s, size_t i)
{
    close(s->conns[i].fd);
    core_buf_release(&s->conns[i].in);
    s->conns[i] = s->conns[--s->nconns];
}

static void *syslog_main(void *arg)
{
    struct ssrc *s = arg;
    struct pollfd pfd[CONNS_MAX + 2];
    for (;;) {
        size_t n = 0;
        pfd[n++] = (struct pollfd){s->wake[0], POLLIN, 0};
        pfd[n++] = (struct pollfd){s->lfd, (short)(s->nconns < CONNS_MAX ? POLLIN : 0), 0};
        for (size_t i = 0; i < s->nconns; i++)
            pfd[n++] = (struct pollfd){s->conns[i].fd, POLLIN, 0};
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[0].revents)
            break;
        if (!s->tcp && (pfd[1].revents & POLLIN)) {
            /* take what is queued (bounded), then push it as one chunk */
            while (s->out.len < BATCH_BYTES) {
                ssize_t r = recv(s->lfd, s->dgram, MSG_MAX, MSG_DONTWAIT);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    break;
                add_msg(s, s->dgram, (size_t)r);
            }
        } else if (s->tcp && (pfd[1].revents & POLLIN)) {
            int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0 && s->nconns < CONNS_MAX) {
                s->conns[s->nconns].fd = fd;
                s->conns[s->nconns].skip = 0;
                s->conns[s->nconns].cut = false;
                /* a complete message plus its length prefix fits */
                core_buf_init(&s->conns[s->nconns].in, 2 * MSG_MAX + 16);
                s->nconns++;
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (size_t i = 2; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            size_t ci = i - 2;
            /* conns may have been compacted by a close: find it by fd */
            while (ci < s->nconns && s->conns[ci].fd != pfd[i].fd)
                ci++;
            if (ci >= s->nconns)
                continue;
            struct conn *c = &s->conns[ci];
            char tmp[16384];
            ssize_t r = recv(c->fd, tmp, sizeof(tmp), 0);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            bool ok = r > 0 && core_buf_add(&c->in, tmp, (size_t)r) == 0 && frame(s, c);
            if (!ok) {
                if (r == 0 && c->in.len && !c->skip && !c->cut) /* unterminated last message */
                    add_msg(s, c->in.data, c->in.len > MSG_MAX ? MSG_MAX : c->in.len);
                conn_close(s, ci);
                /* the pollfd of the moved connection is handled by the fd search above */
            }
        }
        flush_out(s);
    }
    return NULL;
}

static int syslog_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                         struct core_err *err)
{
    static const char *const keys[] = {"type", "name", "listen", "allow_remote", "service",
                                       "env",  "team", NULL};
    const char *name, *listen, *service, *env, *team;
    bool remote = false;
    int rc = tel_cfg_keys(e, cfg, "the syslog source", keys, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "name", "syslog", &name, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "listen", "udp://127.0.0.1:5514", &listen, err);
    if (!rc)
        rc = tel_cfg_bool(e, cfg, "allow_remote", false, &remote, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "service", NULL, &service, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "env", NULL, &env, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "team", NULL, &team, err);
    if (rc)
        return rc;
    if (!core_is_dns_label(name) || strlen(name) >= 64)
        return tel_cfg_error(e, core_node_get(cfg, "name"), err,
                             "source name '%s' must be a DNS label", name);
    struct ssrc *s = core_calloc(1, sizeof(*s));
    if (!s)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    s->lfd = s->wake[0] = s->wake[1] = -1;
    if (parse_listen(s, listen)) {
        core_free(s);
        return tel_cfg_error(e, core_node_get(cfg, "listen"), err,
                             "listen must be udp://ADDR:PORT or tcp://ADDR:PORT (an IP "
                             "address), not '%s'",
                             listen);
    }
    if (!remote && !is_loopback(&s->addr)) {
        core_free(s);
        return tel_cfg_error(e, core_node_get(cfg, "listen"), err,
                             "'%s' is not a loopback address: set allow_remote: true to accept "
                             "syslog from the network",
                             listen);
    }
    s->e = e;
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->listen, sizeof(s->listen), "%s", listen);
    /* origin strings must outlive the config document: they are copies in s */
    char *svc = service ? core_strdup(service) : NULL, *en = env ? core_strdup(env) : NULL,
         *tm = team ? core_strdup(team) : NULL;
    s->origin = (struct tel_origin){.source = s->name, .service = svc, .env = en, .team = tm,
                                    .parser = TEL_PARSE_SYSLOG};
    core_buf_init(&s->out, 0);
    *state = s;
    return 0;
}

static int syslog_start(void *state, struct core_err *err)
{
    struct ssrc *s = state;
    int fam = s->addr.ss_family;
    s->lfd = socket(fam, (s->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s->lfd, (struct sockaddr *)&s->addr, s->addrlen) != 0 ||
        (s->tcp && listen(s->lfd, 64) != 0))
        return core_err_set(err, CORE_E_IO, "cannot listen on %s: %s", s->listen,
                            strerror(errno));
    if (!s->tcp) {
        int rcv = 4 << 20; /* absorb bursts while the pipeline pushes back */
        setsockopt(s->lfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    }
    if (pipe2(s->wake, O_CLOEXEC) != 0)
        return core_err_set(err, CORE_E_IO, "pipe: %s", strerror(errno));
    if (pthread_create(&s->thread, NULL, syslog_main, s) != 0)
        return core_err_set(err, CORE_E_INTERNAL, "cannot start the syslog thread");
    s->started = true;
    return 0;
}

static void syslog_stop(void *state)
{
    struct ssrc *s = state;
    if (!s->started)
        return;
    if (write(s->wake[1], "x", 1) < 0)
        log_warn("telemetry", "cannot wake the syslog thread", LOG_STR("source", s->name));
    pthread_join(s->thread, NULL);
    s->started = false;
}

static void syslog_destroy(void *state)
{
    struct ssrc *s = state;
    if (!s)
        return;
    while (s->nconns)
        conn_close(s, 0);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->wake[0] >= 0)
        close(s->wake[0]);
    if (s->wake[1] >= 0)
        close(s->wake[1]);
    core_buf_release(&s->out);
    core_free((char *)s->origin.service);
    core_free((char *)s->origin.env);
    core_free((char *)s->origin.team);
    core_free(s);
}

const struct tel_source_ops tel_source_syslog = {"syslog", syslog_create, syslog_start,
                                                 syslog_stop, syslog_destroy};
