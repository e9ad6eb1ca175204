/*
 * {{name}}: an HTTP service on libmicrohttpd, scaffolded by `pave init --template http-c`.
 *
 *   GET /         hello, as JSON
 *   GET /healthz  liveness: 200 {"status":"ok"}
 *   GET /metrics  Prometheus text format: http_requests_total{path,code} and process start time
 *
 * Configuration comes from the environment: PORT (default {{var.port}}; 0 picks a free port,
 * reported in the "listening" log line), HOST (default 0.0.0.0), LOG_LEVEL (debug, info, warn,
 * error), PAVE_ENV and SERVICE_VERSION (copied into every log line's resource).
 *
 * Logs are JSON lines on stdout in the platform standard: ts, severity, severity_number, body,
 * attributes, resource {service.name, team, deployment.environment, service.version}.
 * SIGTERM and SIGINT stop the service cleanly (exit 0).
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SERVICE_NAME "{{name}}"
#define SERVICE_TEAM "{{team}}"
#define DEFAULT_PORT "{{var.port}}"

enum severity { SEV_DEBUG = 5, SEV_INFO = 9, SEV_WARN = 13, SEV_ERROR = 17 };

static int log_min = SEV_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_resource[512];

/* Routes counted in /metrics; anything else is "other". */
static const char *const routes[] = {"/", "/healthz", "/metrics", "other"};
static const unsigned codes[] = {200, 404, 405};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))
#define NCODES (sizeof(codes) / sizeof(codes[0]))
static atomic_ullong requests[NROUTES][NCODES];
static double start_time;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* Appends s to out as JSON string content (no quotes); truncates safely. */
static void json_escape(char *out, size_t outsz, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < outsz; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, outsz - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
}

static const char *sev_name(int sev)
{
    return sev == SEV_DEBUG  ? "DEBUG"
           : sev == SEV_INFO ? "INFO"
           : sev == SEV_WARN ? "WARN"
                             : "ERROR";
}

/* One log line. `attrs` is a JSON object body without braces (already escaped), or "". */
static void log_line(int sev, const char *body, const char *attrs_fmt, ...)
{
    if (sev < log_min)
        return;
    char attrs[1024] = "";
    if (attrs_fmt) {
        va_list ap;
        va_start(ap, attrs_fmt);
        vsnprintf(attrs, sizeof(attrs), attrs_fmt, ap);
        va_end(ap);
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    pthread_mutex_lock(&log_lock);
    printf("{\"ts\":\"%s\",\"severity\":\"%s\",\"severity_number\":%d,\"body\":\"%s\","
           "\"attributes\":{%s},\"resource\":{%s}}\n",
           ts, sev_name(sev), sev, body, attrs, log_resource);
    fflush(stdout);
    pthread_mutex_unlock(&log_lock);
}

static void setup_logging(void)
{
    const char *lvl = getenv("LOG_LEVEL");
    if (lvl && strcmp(lvl, "debug") == 0)
        log_min = SEV_DEBUG;
    else if (lvl && strcmp(lvl, "warn") == 0)
        log_min = SEV_WARN;
    else if (lvl && strcmp(lvl, "error") == 0)
        log_min = SEV_ERROR;
    char env[128], version[128];
    json_escape(env, sizeof(env), getenv("PAVE_ENV") ? getenv("PAVE_ENV") : "local");
    json_escape(version, sizeof(version),
                getenv("SERVICE_VERSION") ? getenv("SERVICE_VERSION") : "dev");
    snprintf(log_resource, sizeof(log_resource),
             "\"service.name\":\"%s\",\"team\":\"%s\",\"deployment.environment\":\"%s\","
             "\"service.version\":\"%s\"",
             SERVICE_NAME, SERVICE_TEAM, env, version);
}

static void count(const char *url, unsigned code)
{
    size_t r = NROUTES - 1, c = 0;
    for (size_t i = 0; i + 1 < NROUTES; i++)
        if (strcmp(url, routes[i]) == 0)
            r = i;
    for (size_t i = 0; i < NCODES; i++)
        if (codes[i] == code)
            c = i;
    atomic_fetch_add(&requests[r][c], 1);
}

static size_t render_metrics(char *out, size_t outsz)
{
    size_t o = 0;
    o += (size_t)snprintf(out + o, outsz - o,
                          "# HELP http_requests_total HTTP requests served, by path and status.\n"
                          "# TYPE http_requests_total counter\n");
    for (size_t r = 0; r < NROUTES; r++)
        for (size_t c = 0; c < NCODES && o < outsz; c++)
            o += (size_t)snprintf(out + o, outsz - o,
                                  "http_requests_total{path=\"%s\",code=\"%u\"} %llu\n", routes[r],
                                  codes[c], (unsigned long long)atomic_load(&requests[r][c]));
    if (o < outsz)
        o += (size_t)snprintf(out + o, outsz - o,
                              "# HELP process_start_time_seconds Start time of the process since "
                              "the Unix epoch in seconds.\n"
                              "# TYPE process_start_time_seconds gauge\n"
                              "process_start_time_seconds %.3f\n",
                              start_time);
    return o < outsz ? o : outsz - 1;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type,
                             const char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **req_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) { /* first call for this request: headers only */
        static int marker;
        *req_cls = &marker;
        return MHD_YES;
    }
    if (*upload_size) { /* ignore request bodies */
        *upload_size = 0;
        return MHD_YES;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned code = 200;
    const char *type = "application/json";
    char body[8192];
    bool known = strcmp(url, "/") == 0 || strcmp(url, "/healthz") == 0 ||
                 strcmp(url, "/metrics") == 0;
    if (known && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        code = 405;
        snprintf(body, sizeof(body), "{\"error\":\"method not allowed\"}\n");
    } else if (strcmp(url, "/") == 0) {
        snprintf(body, sizeof(body),
                 "{\"message\":\"hello from %s\",\"service\":\"%s\",\"team\":\"%s\"}\n",
                 SERVICE_NAME, SERVICE_NAME, SERVICE_TEAM);
    } else if (strcmp(url, "/healthz") == 0) {
        snprintf(body, sizeof(body), "{\"status\":\"ok\"}\n");
    } else if (strcmp(url, "/metrics") == 0) {
        count(url, 200); /* this scrape is counted in its own answer */
        type = "text/plain; version=0.0.4; charset=utf-8";
        render_metrics(body, sizeof(body));
    } else {
        code = 404;
        snprintf(body, sizeof(body), "{\"error\":\"not found\"}\n");
    }
    if (strcmp(url, "/metrics") != 0 || code != 200)
        count(url, code);
    enum MHD_Result ret = reply(conn, code, type, body, strlen(body));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    char path[512], meth[32];
    json_escape(path, sizeof(path), url);
    json_escape(meth, sizeof(meth), method);
    log_line(SEV_INFO, "request",
             "\"http.request.method\":\"%s\",\"url.path\":\"%s\",\"http.response.status_code\":%u,"
             "\"duration_ms\":%.3f",
             meth, path, code, ms);
    return ret;
}

int main(void)
{
    setup_logging();
    struct timeval tv;
    gettimeofday(&tv, NULL);
    start_time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;

    const char *port_s = getenv("PORT") && *getenv("PORT") ? getenv("PORT") : DEFAULT_PORT;
    const char *host = getenv("HOST") && *getenv("HOST") ? getenv("HOST") : "0.0.0.0";
    char *end;
    long port = strtol(port_s, &end, 10);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        log_line(SEV_ERROR, "bad configuration",
                 "\"hint\":\"PORT must be 0..65535 and HOST an IPv4 address\"");
        return 2;
    }
    addr.sin_port = htons((uint16_t)port);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Block the stop signals in every thread (MHD's inherit this mask); the main thread waits
     * for them with sigsuspend, which cannot miss one that arrives early. */
    sigset_t stop_set, old_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, &old_set);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, 4u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!d) {
        log_line(SEV_ERROR, "cannot listen", "\"host\":\"%s\",\"port\":%ld", host, port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    log_line(SEV_INFO, "listening", "\"host\":\"%s\",\"port\":%u", host,
             info ? (unsigned)info->port : (unsigned)port);
    while (!stopping)
        sigsuspend(&old_set);
    log_line(SEV_INFO, "shutting down", NULL);
    MHD_stop_daemon(d);
    return 0;
}
