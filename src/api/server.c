/* The HTTP server: libmicrohttpd plumbing, body limits, authentication, dispatch. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <unistd.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <strings.h>
#include <time.h>

#include "api/api_int.h"
#include "deploy/deploy.h"
#include "telemetry/telemetry.h"
#include "portal/portal.h"
#include "pki/pki.h"
#include "registry/registry.h"
#include "security/security.h"
#include "store/store.h"

#define API_PARKED_MAX 1024
#define API_OFFLOADS_MAX 64 /* long requests running at once; more get 503 and retry */

struct api_server {
    struct MHD_Daemon *mhd;
    /* Long requests (git, registry writes) run on their own threads while their connection is
     * suspended; followed streams park their connection between ticks. Guarded by `long_lock`. */
    pthread_mutex_t long_lock;
    pthread_cond_t long_cond;
    int offloads;              /* offload threads still running */
    struct MHD_Connection *parked[API_PARKED_MAX];
    int nparked;
    bool stopping;
    pthread_t ticker;
    bool ticker_started;
    struct api_deps ctx;
    char data_dir[1024];
    char tmp_dir[1100];
    struct api_config cfg;
    struct api_metrics metrics;
    int port;
    struct security_seen *seen; /* tokens' source addresses, when there is an alert book */
};

struct api_deps *api_ctx(struct api_req *r)
{
    return &r->srv->ctx;
}

struct api_server *api_server_of(struct api_req *r)
{
    return r->srv;
}

const char *api_req_header(struct api_req *r, const char *name)
{
    const char *p = r->headers.data, *end = r->headers.data + r->headers.len;
    while (p < end) {
        const char *v = p + strlen(p) + 1;
        if (v >= end)
            break;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct core_buf *b = cls;
    if (core_buf_add(b, key, strlen(key) + 1) || core_buf_add(b, value ? value : "", (value ?
                                                                                      strlen(value)
                                                                                      : 0) +
                                                                                         1))
        return MHD_NO;
    return MHD_YES;
}

bool api_stream_park(struct api_server *srv, struct MHD_Connection *c)
{
    bool ok = false;
    pthread_mutex_lock(&srv->long_lock);
    if (!srv->stopping && srv->nparked < API_PARKED_MAX) {
        MHD_suspend_connection(c);
        srv->parked[srv->nparked++] = c;
        ok = true;
    }
    pthread_mutex_unlock(&srv->long_lock);
    if (!ok && !srv->stopping) {
        /* too many followers parked: wait in place a little (bounded) */
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        return true;
    }
    return ok;
}

/* Every 200 ms: resume parked streams so their callbacks look for new data. */
static void *ticker_main(void *arg)
{
    struct api_server *srv = arg;
    pthread_mutex_lock(&srv->long_lock);
    while (!srv->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&srv->long_cond, &srv->long_lock, &ts);
        for (int i = 0; i < srv->nparked; i++)
            MHD_resume_connection(srv->parked[i]);
        srv->nparked = 0;
    }
    for (int i = 0; i < srv->nparked; i++)
        MHD_resume_connection(srv->parked[i]);
    srv->nparked = 0;
    pthread_mutex_unlock(&srv->long_lock);
    return NULL;
}

/* Every route table, in the order metrics number them. Adding a table is one line here. */
static const struct {
    const struct api_route *routes;
    const size_t *n;
} route_tables[] = {
    {api_routes, &api_nroutes},
    {api_ci_routes, &api_ci_nroutes},
    {api_artifact_routes, &api_artifact_nroutes},
    {api_runtime_routes, &api_runtime_nroutes},
    {api_deploy_routes, &api_deploy_nroutes},
    {api_logs_routes, &api_logs_nroutes},
    {api_ingest_routes, &api_ingest_nroutes},
    {api_policy_routes, &api_policy_nroutes},
    {api_pki_routes, &api_pki_nroutes},
    {api_security_routes, &api_security_nroutes},
    {api_cost_routes, &api_cost_nroutes},
};

const struct api_route *api_route_at(size_t i)
{
    for (size_t t = 0; t < sizeof(route_tables) / sizeof(route_tables[0]); t++) {
        if (i < *route_tables[t].n)
            return &route_tables[t].routes[i];
        i -= *route_tables[t].n;
    }
    return NULL;
}

size_t api_route_count(void)
{
    size_t n = 0;
    for (size_t t = 0; t < sizeof(route_tables) / sizeof(route_tables[0]); t++)
        n += *route_tables[t].n;
    return n;
}

bool api_can_change_team(struct api_req *r, const char *team)
{
    return r->who.is_admin || catalog_actor_in_team(&r->who.actor, team);
}

struct api_metrics *api_metrics_of(struct api_req *r)
{
    return &r->srv->metrics;
}

int api_server_port(const struct api_server *srv)
{
    return srv->port;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    log_warn("api", "http library message", LOG_STR("detail", msg));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decoding for paths and query arguments. Unlike the library's default it never produces
 * a NUL byte: "%00" stays as written, so a name like "ledger%00junk" fails the name checks
 * instead of being cut short to "ledger".
 */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (*r == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 && (hi | lo)) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
    return (size_t)(w - s);
}

static void req_free(struct api_req *r)
{
    if (!r)
        return;
    if (r->upload_fd >= 0)
        close(r->upload_fd);
    if (r->upload_path[0])
        unlink(r->upload_path); /* a handler that keeps the upload renames it first */
    if (r->resp)
        MHD_destroy_response(r->resp);
    EVP_MD_CTX_free(r->upload_md);
    core_buf_release(&r->headers);
    core_free(r->query);
    core_buf_release(&r->body);
    core_buf_release(&r->out);
    auth_principal_release(&r->who);
    core_free(r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    req_free(*con_cls);
    *con_cls = NULL;
}

/* Rebuilds the raw query string from MHD's parsed arguments (MHD does not keep it). */
struct query_builder {
    struct core_buf *b;
};

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct core_buf *b = cls;
    if (b->len)
        core_buf_addc(b, '&');
    core_buf_add_urlenc(b, key);
    if (value) {
        core_buf_addc(b, '=');
        core_buf_add_urlenc(b, value);
    }
    return MHD_YES;
}

static void add_common_headers(struct MHD_Response *resp, bool is_html)
{
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (is_html)
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data:; form-action 'self'; frame-ancestors "
                                "'none'");
}

static enum MHD_Result send_buf(struct MHD_Connection *c, int status, const char *type,
                                const char *data, size_t len, const char *location,
                                const char *cookie, bool is_html)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    if (location && *location)
        MHD_add_response_header(resp, "Location", location);
    if (cookie && *cookie)
        MHD_add_response_header(resp, "Set-Cookie", cookie);
    if (status == 401 && !is_html)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"pave\"");
    add_common_headers(resp, is_html);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Matches a path against a pattern with {param} segments. */
static bool match_route(const char *pattern, const char *path, struct api_req *r)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *se = strchr(s, '/');
            size_t len = se ? (size_t)(se - s) : strlen(s);
            if (!pe || len == 0 || len >= sizeof(r->param_buf[0]) || np >= 4)
                return false;
            memcpy(r->param_buf[np], s, len);
            r->param_buf[np][len] = 0;
            r->params[np] = r->param_buf[np];
            np++;
            p = pe + 1;
            s += len;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return *p == 0 && *s == 0;
}

static bool path_is_sane(const char *path)
{
    if (path[0] != '/' || !core_utf8_valid(path, strlen(path)))
        return false;
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return strstr(path, "/../") == NULL && strstr(path, "/./") == NULL &&
           (strlen(path) < 3 || strcmp(path + strlen(path) - 3, "/..") != 0);
}

static void authenticate(struct api_req *r, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    struct core_err err = {0};
    char tok[128] = "";
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        snprintf(tok, sizeof(tok), "%s", h + 7);
    } else if (h && strncasecmp(h, "Basic ", 6) == 0) {
        char *pass = NULL;
        char *user = MHD_basic_auth_get_username_password(c, &pass);
        if (pass)
            snprintf(tok, sizeof(tok), "%s", pass);
        MHD_free(user);
        MHD_free(pass);
    }
    if (!tok[0]) {
        api_reply_error(r, CORE_E_AUTH,
                        "missing token: send 'Authorization: Bearer <token>' (see 'pave login')",
                        NULL);
        return;
    }
    /* the client's address, for the failed-login and new-source detections (src/security) */
    char addr[INET6_ADDRSTRLEN] = "";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr,
                  sizeof(addr));
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr,
                  sizeof(addr));
    if (auth_token_verify(r->srv->ctx.st, r->srv->ctx.cat, tok, &r->who, &err)) {
        /* the built-in detection "Platform refused a token" (sigma/builtin.yaml) reads this, and
         * the detect transform counts it per client.address; never the token itself */
        log_warn("api", "token refused", LOG_STR("reason", err.msg), LOG_STR("path", r->path),
                 LOG_STR("client.address", addr));
        api_reply_err(r, &err);
        return;
    }
    r->authed = true;
    if (r->srv->seen && r->srv->ctx.alerts && addr[0]) {
        struct core_err serr = {0};
        if (security_token_seen(r->srv->seen, r->srv->ctx.alerts, r->srv->ctx.st,
                                r->who.token_id, r->who.user, addr, NULL, &serr))
            log_warn("api", "token source check failed", LOG_STR("error", serr.msg));
    }
}

static void dispatch_api(struct api_req *r, struct MHD_Connection *c)
{
    bool path_matched = false;
    for (size_t i = 0; i < api_route_count(); i++) {
        const struct api_route *rt = api_route_at(i);
        if (!match_route(rt->pattern, r->path, r))
            continue;
        path_matched = true;
        if (strcmp(rt->method, r->method) != 0)
            continue;
        r->route = (int)i;
        if (rt->needs_auth) {
            authenticate(r, c);
            if (!r->authed)
                return;
        }
        rt->fn(r);
        return;
    }
    if (path_matched)
        api_reply_error(r, CORE_E_UNSUPPORTED, "method not allowed on this path", NULL);
    else
        api_reply_error(r, CORE_E_NOTFOUND, "no such API route", NULL);
}

static enum MHD_Result finish(struct api_req *r, struct MHD_Connection *c)
{
    struct api_server *srv = r->srv;
    double secs = (double)(now_us() - r->start_us) / 1e6;
    api_metrics_observe(&srv->metrics, r->route, r->status, secs);
    if (r->resp) {
        add_common_headers(r->resp, false);
        enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, r->resp);
        MHD_destroy_response(r->resp);
        r->resp = NULL;
        return ret;
    }
    return send_buf(c, r->status, r->out_type ? r->out_type : "application/json", r->out.data,
                    r->out.len, NULL, NULL, false);
}

/* Finds the route a request will take (without authenticating), to decide on spooling. */
static const struct api_route *peek_route(struct api_req *r, const char *method, const char *url)
{
    for (size_t i = 0; i < api_route_count(); i++) {
        const struct api_route *rt = api_route_at(i);
        if (strcmp(rt->method, method) == 0 && match_route(rt->pattern, url, r))
            return rt;
    }
    return NULL;
}

static bool wants_spool(struct api_req *r, const char *method, const char *url)
{
    if (strncmp(url, "/git/", 5) == 0)
        return true;
    if (strncmp(url, "/v2", 3) == 0 && (url[3] == '/' || !url[3]))
        return registry_wants_spool(method, url + 3);
    const struct api_route *rt = peek_route(r, method, url);
    return rt && rt->upload;
}

static int spool_open(struct api_req *r, struct core_err *err)
{
    struct api_server *srv = r->srv;
    snprintf(r->upload_path, sizeof(r->upload_path), "%s/upload-XXXXXX", srv->tmp_dir);
    r->upload_fd = mkostemp(r->upload_path, O_CLOEXEC);
    if (r->upload_fd < 0) {
        r->upload_path[0] = 0;
        return core_err_set(err, CORE_E_IO, "cannot spool the upload: %s", strerror(errno));
    }
    r->upload_max = srv->cfg.max_upload;
    /* Hash as the bytes arrive, so a blob upload is verified without reading it back. */
    r->upload_md = EVP_MD_CTX_new();
    if (r->upload_md && EVP_DigestInit_ex(r->upload_md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(r->upload_md);
        r->upload_md = NULL;
    }
    return 0;
}

/* /git/<service>.git/<rest>: token auth (git sends it as the Basic password), then CGI. */
static void serve_git(struct api_req *r, struct MHD_Connection *c, const char *tail)
{
    char repo[128];
    const char *slash = strchr(tail, '/');
    size_t n = slash ? (size_t)(slash - tail) : strlen(tail);
    if (n <= 4 || n >= sizeof(repo) || strncmp(tail + n - 4, ".git", 4) != 0) {
        api_reply_error(r, CORE_E_NOTFOUND, "no such repository: use /git/<service>.git", NULL);
        return;
    }
    memcpy(repo, tail, n - 4);
    repo[n - 4] = 0;
    if (!core_is_dns_label(repo)) {
        api_reply_error(r, CORE_E_INVAL, "invalid service name in the repository path", NULL);
        return;
    }
    authenticate(r, c);
    if (!r->authed) {
        /* git asks for credentials only after a Basic challenge */
        r->resp = MHD_create_response_from_buffer(r->out.len, r->out.data, MHD_RESPMEM_MUST_COPY);
        if (r->resp) {
            MHD_add_response_header(r->resp, "WWW-Authenticate", "Basic realm=\"pave\"");
            MHD_add_response_header(r->resp, "Content-Type", "application/json");
        }
        return;
    }
    snprintf(r->param_buf[0], sizeof(r->param_buf[0]), "%s", repo);
    snprintf(r->param_buf[1], sizeof(r->param_buf[1]), "%s", slash ? slash : "/");
    r->offload = 1; /* api_git_handle runs on its own thread */
}

static void serve_registry(struct api_req *r, const char *path);

/* Runs a long request's work off the event loop, then resumes its connection. */
static void *offload_main(void *arg)
{
    struct api_req *r = arg;
    struct api_server *srv = r->srv;
    if (strncmp(r->path, "/git/", 5) == 0)
        api_git_handle(r, r->param_buf[0], r->param_buf[1]);
    else
        serve_registry(r, r->path[3] ? r->path + 3 : "/");
    pthread_mutex_lock(&srv->long_lock);
    r->offload = 2;
    MHD_resume_connection(r->conn);
    srv->offloads--;
    pthread_cond_broadcast(&srv->long_cond);
    pthread_mutex_unlock(&srv->long_lock);
    return NULL;
}

/* Suspends the connection and starts the request's work on a thread of its own. */
static enum MHD_Result offload(struct api_req *r, struct MHD_Connection *c)
{
    struct api_server *srv = r->srv;
    MHD_get_connection_values(c, MHD_HEADER_KIND, copy_header, &r->headers);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&srv->long_lock);
    if (srv->offloads >= API_OFFLOADS_MAX) {
        pthread_mutex_unlock(&srv->long_lock);
        pthread_attr_destroy(&attr);
        r->offload = 0;
        api_reply_error(r, CORE_E_NOMEM, "too many long requests at once; retry shortly", NULL);
        return finish(r, c);
    }
    MHD_suspend_connection(c);
    srv->offloads++;
    pthread_t t;
    int rc = pthread_create(&t, &attr, offload_main, r);
    if (rc) {
        srv->offloads--;
        MHD_resume_connection(c);
        r->offload = 2;
        api_reply_error(r, CORE_E_NOMEM, "cannot start a worker thread", NULL);
    }
    pthread_mutex_unlock(&srv->long_lock);
    pthread_attr_destroy(&attr);
    return MHD_YES;
}

/* /v2/...: the OCI distribution API. The token is optional here: without one the registry
 * answers 401 with a Basic challenge, which is how registry clients discover auth. */
/* Authenticates a /v2 request on the event loop. The token is optional here: without one the
 * registry answers 401 with a Basic challenge, which is how registry clients discover auth.
 * returns: false when a response is already prepared. */
static bool registry_auth(struct api_req *r, struct MHD_Connection *c)
{
    if (!r->srv->ctx.registry) {
        api_reply_error(r, CORE_E_NOTFOUND, "the registry is not enabled on this server", NULL);
        return false;
    }
    if (!MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"))
        return true;
    authenticate(r, c);
    if (r->authed)
        return true;
    r->status = 401;
    core_buf_clear(&r->out);
    core_buf_adds(&r->out, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":"
                           "\"invalid token\",\"detail\":null}]}");
    r->resp = MHD_create_response_from_buffer(r->out.len, r->out.data, MHD_RESPMEM_MUST_COPY);
    if (r->resp) {
        MHD_add_response_header(r->resp, "Content-Type", "application/json");
        MHD_add_response_header(r->resp, "WWW-Authenticate", "Basic realm=\"pave\"");
    }
    return false;
}

static const char *copied_header(void *arg, const char *name)
{
    return api_req_header(arg, name);
}

/* /v2/...: the OCI distribution API, after registry_auth(). Prepares r->resp; may run off the
 * event loop (it reads headers from the request's copy). */
static void serve_registry(struct api_req *r, const char *path)
{
    struct api_server *srv = r->srv;
    struct registry_request rq = {
        .method = r->method,
        .path = path,
        .query = r->query,
        .header = copied_header,
        .header_arg = r,
        .actor = r->authed ? &r->who.actor : NULL,
        .body = r->upload_fd >= 0 ? NULL : r->body.data,
        .body_path = r->upload_fd >= 0 ? r->upload_path : NULL,
        .body_len = r->upload_fd >= 0 ? r->upload_len : r->body.len,
        .body_sha256 = r->upload_sha256[0] ? r->upload_sha256 : NULL,
    };
    struct registry_response rs = {0};
    core_buf_init(&rs.body, 0);
    if (registry_handle(srv->ctx.registry, &rq, &rs)) {
        core_buf_release(&rs.body);
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return;
    }
    if (rs.has_file)
        r->resp = MHD_create_response_from_fd_at_offset64(rs.file_len, rs.file_fd,
                                                           rs.file_offset);
    else
        r->resp = MHD_create_response_from_buffer(rs.body.len, rs.body.data,
                                                  MHD_RESPMEM_MUST_COPY);
    core_buf_release(&rs.body);
    if (!r->resp) {
        if (rs.has_file)
            close(rs.file_fd);
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return;
    }
    for (int i = 0; i < rs.nheaders; i++)
        MHD_add_response_header(r->resp, rs.headers[i].name, rs.headers[i].value);
    r->status = rs.status;
    r->route = API_ROUTE_OTHER;
}

static enum MHD_Result serve_portal(struct api_req *r, struct MHD_Connection *c)
{
    struct api_server *srv = r->srv;
    struct portal_request preq = {
        .method = r->method,
        .path = r->path,
        .query = r->query,
        .body = r->body.data,
        .body_len = r->body.len,
        .session = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, PORTAL_SESSION_COOKIE),
    };
    struct portal_response presp = {0};
    core_buf_init(&presp.body, 0);
    if (!srv->ctx.portal) {
        presp.status = 404;
        presp.content_type = "text/plain";
        core_buf_adds(&presp.body, "no portal\n");
    } else if (portal_handle(srv->ctx.portal, &preq, &presp)) {
        presp.status = 503;
        presp.content_type = "text/plain";
    }
    double secs = (double)(now_us() - r->start_us) / 1e6;
    api_metrics_observe(&srv->metrics, API_ROUTE_PORTAL, presp.status, secs);
    const char *type = presp.content_type ? presp.content_type : "text/html; charset=utf-8";
    if (presp.has_file) {
        struct MHD_Response *resp = MHD_create_response_from_fd(presp.file_size, presp.file_fd);
        core_buf_release(&presp.body);
        if (!resp) {
            close(presp.file_fd);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", type);
        add_common_headers(resp, false);
        enum MHD_Result ret = MHD_queue_response(c, (unsigned)presp.status, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    enum MHD_Result ret = send_buf(c, presp.status ? presp.status : 500, type, presp.body.data,
                                   presp.body.len, presp.location, presp.set_cookie,
                                   strncmp(type, "text/html", 9) == 0);
    core_buf_release(&presp.body);
    return ret;
}

static const char *conn_header(void *arg, const char *name)
{
    return MHD_lookup_connection_value(arg, MHD_HEADER_KIND, name);
}

/* /acme/...: the ACME server (RFC 8555). No platform token: requests are JWS-signed by the
 * ACME account key, which pki/acme.c verifies. Bodies are capped at ACME_MAX_BODY. */
static enum MHD_Result serve_acme(struct api_req *r, struct MHD_Connection *c, const char *path)
{
    r->route = API_ROUTE_OTHER;
    if (!r->srv->ctx.acme) {
        api_reply_error(r, CORE_E_NOTFOUND, "the ACME server is not enabled (run 'pave ca init')",
                        NULL);
        return finish(r, c);
    }
    struct acme_request rq = {
        .method = r->method,
        .path = path,
        .header = conn_header,
        .header_arg = c,
        .body = r->body.data,
        .body_len = r->body.len,
        .body_too_big = r->body_too_big,
    };
    struct acme_response rs = {0};
    core_buf_init(&rs.body, 0);
    acme_handle(r->srv->ctx.acme, &rq, &rs);
    r->resp = MHD_create_response_from_buffer(rs.body.len, rs.body.data, MHD_RESPMEM_MUST_COPY);
    core_buf_release(&rs.body);
    if (!r->resp) {
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return finish(r, c);
    }
    for (int i = 0; i < rs.nheaders; i++)
        MHD_add_response_header(r->resp, rs.headers[i].name, rs.headers[i].value);
    r->status = rs.status;
    return finish(r, c);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct api_server *srv = cls;
    struct api_req *r = *con_cls;
    if (!r) {
        r = core_calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        r->srv = srv;
        r->start_us = now_us();
        r->route = API_ROUTE_OTHER;
        r->status = 500;
        r->upload_fd = -1;
        r->conn = c;
        core_buf_init(&r->body, srv->cfg.max_body);
        core_buf_init(&r->headers, 64 * 1024);
        core_buf_init(&r->out, 0);
        *con_cls = r;
        size_t cap = srv->cfg.max_body;
        bool is_acme = strncmp(url, "/acme/", 6) == 0;
        if (is_acme)
            cap = r->body.max = ACME_MAX_BODY;
        if (!is_acme && wants_spool(r, method, url)) {
            struct core_err err = {0};
            r->method = method;
            r->path = url;
            if (spool_open(r, &err)) {
                api_reply_err(r, &err);
                return finish(r, c);
            }
            cap = r->upload_max;
        }
        /* Refuse an announced oversize body before reading it. */
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > cap) {
            r->method = method;
            r->path = url;
            if (is_acme) {
                r->body_too_big = true;
                return serve_acme(r, c, url + 5);
            }
            api_reply_error(r, CORE_E_TOO_BIG, "request body is too large", NULL);
            return finish(r, c);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (r->upload_fd >= 0) {
            if (!r->body_too_big) {
                size_t n = *upload_data_size;
                if (r->upload_len + n > r->upload_max) {
                    r->body_too_big = true;
                } else {
                    const char *p = upload_data;
                    while (n) {
                        ssize_t w = write(r->upload_fd, p, n);
                        if (w < 0 && errno == EINTR)
                            continue;
                        if (w <= 0) {
                            r->body_too_big = true; /* disk full: refuse like an oversize body */
                            break;
                        }
                        p += w;
                        n -= (size_t)w;
                    }
                    if (r->upload_md)
                        EVP_DigestUpdate(r->upload_md, upload_data, *upload_data_size);
                    r->upload_len += *upload_data_size;
                }
            }
        } else if (!r->body_too_big && core_buf_add(&r->body, upload_data, *upload_data_size)) {
            r->body_too_big = true;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->offload == 2)
        return finish(r, c); /* resumed after its work ran on its own thread */
    if (r->offload == 1)
        return MHD_YES; /* spurious call while suspended */
    r->method = method;
    r->path = url;
    r->content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (r->upload_md && !r->body_too_big) {
        unsigned char md[32];
        unsigned mdlen = 0;
        if (EVP_DigestFinal_ex(r->upload_md, md, &mdlen) == 1 && mdlen == 32)
            for (int i = 0; i < 32; i++)
                snprintf(r->upload_sha256 + 2 * i, 3, "%02x", md[i]);
    }
    struct core_buf q;
    core_buf_init(&q, 64 * 1024);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_query_arg, &q);
    r->query = core_buf_detach(&q, NULL);
    if (strncmp(url, "/acme/", 6) == 0 && path_is_sane(url))
        return serve_acme(r, c, url + 5); /* answers oversize bodies with an ACME problem */
    if (r->body_too_big) {
        api_reply_error(r, CORE_E_TOO_BIG, "request body is too large", NULL);
        return finish(r, c);
    }
    if (!path_is_sane(url)) {
        api_reply_error(r, CORE_E_INVAL, "invalid request path", NULL);
        return finish(r, c);
    }
    if (strcmp(url, "/healthz") == 0) {
        r->route = API_ROUTE_OTHER;
        r->status = 200;
        r->out_type = "application/json";
        core_buf_adds(&r->out, "{\"status\":\"ok\"}");
        return finish(r, c);
    }
    if (strcmp(url, "/metrics") == 0) {
        r->status = 200;
        r->out_type = "text/plain; version=0.0.4";
        if (api_metrics_render(&srv->metrics, &r->out) ||
            (srv->ctx.telemetry && tel_engine_metrics(srv->ctx.telemetry, &r->out)) ||
            (srv->ctx.deploy && deploy_metrics(srv->ctx.deploy, &r->out)) ||
            (srv->ctx.pki && pki_metrics(srv->ctx.pki, &r->out)))
            r->status = 503;
        return finish(r, c);
    }
    /* /pki/ (CRL, CA certificates) is public and routed like the API (routes_pki.c) */
    if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0 ||
        strncmp(url, "/pki/", 5) == 0) {
        dispatch_api(r, c);
        return finish(r, c);
    }
    if (strncmp(url, "/git/", 5) == 0) {
        serve_git(r, c, url + 5);
        return r->offload == 1 ? offload(r, c) : finish(r, c);
    }
    if (strncmp(url, "/v2", 3) == 0 && (url[3] == '/' || !url[3])) {
        if (!registry_auth(r, c))
            return finish(r, c);
        /* reads are quick (a lookup and a file to send); writes hash, fsync and rename */
        if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
            MHD_get_connection_values(c, MHD_HEADER_KIND, copy_header, &r->headers);
            serve_registry(r, url[3] ? url + 3 : "/");
            return finish(r, c);
        }
        r->offload = 1;
        return offload(r, c);
    }
    return serve_portal(r, c);
}

struct api_server *api_server_start(const struct api_config *cfg, const struct api_deps *deps,
                                    struct core_err *err)
{
    struct api_server *srv = core_calloc(1, sizeof(*srv));
    if (!srv) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    srv->cfg = *cfg;
    pthread_mutex_init(&srv->long_lock, NULL);
    pthread_cond_init(&srv->long_cond, NULL);
    if (!srv->cfg.listen_addr)
        srv->cfg.listen_addr = "127.0.0.1";
    if (!srv->cfg.max_body)
        srv->cfg.max_body = 1024 * 1024;
    if (!srv->cfg.max_upload)
        srv->cfg.max_upload = (size_t)4 << 30;
    srv->ctx = *deps;
    if (deps->alerts && !(srv->seen = security_seen_new())) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto fail;
    }
    snprintf(srv->data_dir, sizeof(srv->data_dir), "%s", deps->data_dir ? deps->data_dir : ".");
    srv->ctx.data_dir = srv->data_dir;
    snprintf(srv->tmp_dir, sizeof(srv->tmp_dir), "%s/tmp", srv->data_dir);
    if (core_mkdir_p(srv->tmp_dir, 0700, err))
        goto fail;
    api_metrics_init(&srv->metrics);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, srv->cfg.listen_addr, &addr.sin_addr) != 1) {
        core_err_set(err, CORE_E_INVAL, "invalid listen address '%s' (use an IPv4 address)",
                     srv->cfg.listen_addr);
        goto fail;
    }
    /* one event-loop thread per core: short requests run there; long ones are offloaded */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned pool = (unsigned)(cpus >= 2 ? cpus : 2);
    srv->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL,
        handle, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape, srv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, pool,
        MHD_OPTION_NOTIFY_COMPLETED, completed, srv, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(64 * 1024), MHD_OPTION_END);
    if (!srv->mhd) {
        core_err_set(err, CORE_E_IO,
                     "cannot listen on %s:%d (is another server using the port? try --listen "
                     "127.0.0.1:PORT)",
                     srv->cfg.listen_addr, cfg->port);
        goto fail;
    }
    if (pthread_create(&srv->ticker, NULL, ticker_main, srv) == 0)
        srv->ticker_started = true;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : cfg->port;
    return srv;
fail:
    api_metrics_release(&srv->metrics);
    pthread_cond_destroy(&srv->long_cond);
    pthread_mutex_destroy(&srv->long_lock);
    security_seen_free(srv->seen);
    core_free(srv);
    return NULL;
}

void api_server_stop(struct api_server *srv)
{
    if (!srv)
        return;
    /* No suspended connection may remain when the daemon stops: wake every parked stream (they
     * end once `stopping` is set) and wait for the offloaded requests to come back. */
    pthread_mutex_lock(&srv->long_lock);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->long_cond);
    pthread_mutex_unlock(&srv->long_lock);
    if (srv->ticker_started)
        pthread_join(srv->ticker, NULL);
    pthread_mutex_lock(&srv->long_lock);
    while (srv->offloads > 0)
        pthread_cond_wait(&srv->long_cond, &srv->long_lock);
    pthread_mutex_unlock(&srv->long_lock);
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    pthread_cond_destroy(&srv->long_cond);
    pthread_mutex_destroy(&srv->long_lock);
    api_metrics_release(&srv->metrics);
    security_seen_free(srv->seen);
    core_free(srv);
}

bool api_query_long(struct api_req *r, const char *key, long lo, long hi, long def, long *out)
{
    char buf[32];
    int rc = core_form_get(r->query, key, buf, sizeof(buf));
    *out = def;
    if (rc == CORE_E_NOTFOUND)
        return true;
    char *end = NULL;
    long v = rc ? 0 : strtol(buf, &end, 10);
    if (rc || !buf[0] || *end || v < lo || v > hi) {
        char msg[160];
        snprintf(msg, sizeof(msg), "query parameter '%s' must be an integer from %ld to %ld", key,
                 lo, hi);
        api_reply_error(r, CORE_E_INVAL, msg, NULL);
        return false;
    }
    *out = v;
    return true;
}

void api_reply_result(struct api_req *r, json_t *out, const struct core_err *err)
{
    if (out)
        api_reply_json(r, 200, out);
    else
        api_reply_err(r, err);
}

int api_status_for(int code)
{
    switch (code) {
    case CORE_E_INVAL: return 400;
    case CORE_E_AUTH: return 401;
    case CORE_E_PERM: return 403;
    case CORE_E_NOTFOUND: return 404;
    case CORE_E_UNSUPPORTED: return 405;
    case CORE_E_CONFLICT: return 409;
    case CORE_E_TOO_BIG: return 413;
    case CORE_E_NOMEM: return 503;
    default: return 500;
    }
}

const char *api_code_name(int code)
{
    switch (code) {
    case CORE_E_INVAL: return "invalid";
    case CORE_E_AUTH: return "unauthenticated";
    case CORE_E_PERM: return "forbidden";
    case CORE_E_NOTFOUND: return "not_found";
    case CORE_E_UNSUPPORTED: return "method_not_allowed";
    case CORE_E_CONFLICT: return "conflict";
    case CORE_E_TOO_BIG: return "too_large";
    case CORE_E_NOMEM: return "unavailable";
    default: return "internal";
    }
}
