/*
 * portal: the server-rendered HTML face of the platform, served by the API server for every
 * path outside /api/, /v2/, /healthz and /metrics.
 *
 * It knows nothing of HTTP libraries: the server hands it a `struct portal_request` (method,
 * path, raw query, form body, session cookie) and it fills a `struct portal_response`. Pages
 * work without JavaScript and load nothing from outside (CSS is inline / served from /static/).
 * Sign-in exchanges an API token for a session cookie (HttpOnly, SameSite=Strict, Path=/);
 * every state-changing form carries the session's CSRF token and is refused without it.
 *
 * Service pages also show deployments (per environment: the current deployment, replicas with
 * health, the URL; the deploy history) and roll an environment back after a confirmation page.
 *
 * Each service has a logs page (/services/NAME/logs: the newest records of the log store,
 * src/telemetry, with env/level/grep/since filters and a live tail that reloads itself) and a
 * metrics summary on its page (per environment: replicas, restarts, requests and 5xx summed
 * from the ready replicas' own /metrics, log volume of the last hour by severity).
 *
 * Guard rails (src/policy): /compliance is the compliance dashboard over the newest policy scan
 * (totals, grouped by team, service or rule, the trend over the last scans, CSV and JSON exports at
 * /compliance.csv and /compliance.json); /policy/decisions/ID explains one gate decision ("why was
 * this blocked": every failing rule with its remediation) and requests an exception for it; the
 * service page has a "Guard rails" section with the service's rows of the newest scan.
 *
 * Certificates (src/pki): /ca shows the internal CA (root and intermediate, download links) and
 * the certificate inventory with owner / state / "expiring within" filters, marking certificates
 * with less than a third of their lifetime left; /ca/certificates/SERIAL shows one certificate.
 *
 * Besides the catalog it shows pipeline runs (a service's runs, one run with its steps and log,
 * its artifact for download) and creates services from golden-path templates (src/template):
 * render, apply the manifest as the signed-in user, import the tree as the first commit of the
 * service's hosted repository, which queues its first run.
 *
 * Lifecycle: portal_new() borrows everything in struct portal_deps (it must outlive the portal);
 * portal_free().
 * Threading: portal_handle() may run on several threads at once.
 */
#ifndef PAVE_PORTAL_H
#define PAVE_PORTAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct store;
struct catalog;
struct ci_runner;
struct registry;
struct artifact_signer;
struct deploy_controller;
struct policy_engine;
struct pki;
struct security_sigma_set;
struct portal;
struct json_t; /* jansson's json_t */

/* What the portal borrows. runner may be NULL (run pages say pipelines are off); data_dir may be
 * NULL (creating services from templates is then unavailable). */
struct portal_deps {
    struct store *st;
    struct catalog *cat;
    struct ci_runner *runner;
    const char *data_dir;
    struct registry *registry;      /* may be NULL: the service page lists no images */
    struct artifact_signer *signer; /* checks image signatures; NULL like registry */
    struct deploy_controller *deploy; /* may be NULL: the service page says deployments are
                                       * not enabled and offers no rollback */
    struct policy_engine *policy;     /* may be NULL: the compliance pages say policy is not
                                       * enabled and the service page has no guard rails */
    struct pki *pki;                  /* may be NULL: /ca answers 503 with `pave ca init` */
    const struct security_sigma_set *rules; /* the loaded detection rules; may be NULL */
};

struct portal_request {
    const char *method;  /* "GET", "POST" ... */
    const char *path;    /* decoded path, e.g. "/services/payments-api" */
    const char *query;   /* raw query string without '?', may be NULL */
    const char *body;    /* form body (application/x-www-form-urlencoded), may be NULL */
    size_t body_len;
    const char *session; /* value of the "pave_session" cookie, may be NULL */
};

struct portal_response {
    int status;               /* HTTP status */
    const char *content_type; /* static string */
    struct core_buf body;     /* initialized by the caller (core_buf_init), filled by portal */
    char location[512];       /* redirect target when status is 303, else "" */
    char set_cookie[512];     /* full Set-Cookie value, or "" */
    /* A file to send instead of `body` (downloads): when has_file, the caller sends file_size
     * bytes of file_fd and closes it. */
    bool has_file;
    int file_fd;
    uint64_t file_size;
};

#define PORTAL_SESSION_COOKIE "pave_session"

/* returns: owned by caller, free with portal_free(); NULL and err when st or cat is missing. */
struct portal *portal_new(const struct portal_deps *deps, struct core_err *err);
void portal_free(struct portal *p);
/* Handles one request. Always fills resp (errors become HTML error pages); returns 0, or
 * CORE_E_NOMEM when even the error page could not be built. */
int portal_handle(struct portal *p, const struct portal_request *req,
                  struct portal_response *resp);

/* Renders the service page's "Deployments" section into out (appended): status is what
 * deploy_status() returns for the service (NULL: deployed nowhere), history what deploy_list()
 * returns (NULL: unreadable); enabled false adds the "not enabled" note. Every string from the
 * documents is HTML-escaped. The service page uses the same code; this entry point exists so
 * tests can render hand-made documents without a deploy controller.
 * returns: 0, or the error of the first failed append (CORE_E_NOMEM, CORE_E_TOO_BIG). */
int portal_deployments_render(const char *service, const struct json_t *status,
                              const struct json_t *history, bool enabled, struct core_buf *out);

/* ---- logs page and metrics summary --------------------------------------------------------- */

#define PORTAL_LOGS_LIMIT_DEFAULT 200
#define PORTAL_LOGS_LIMIT_MAX 1000
#define PORTAL_TAIL_SECS 600 /* a live tail page stops reloading itself after 10 minutes */

/* The query of /services/NAME/logs, checked. */
struct portal_logs_filter {
    char env[64];        /* "" any; else a DNS label */
    char level[16];      /* "" any; else a name tel_severity_parse() knows, as given */
    int min_severity;    /* 0 any */
    char grep[256];      /* plain substring, "" none */
    char since[64];      /* as given; "15m" when the query has no `since` */
    int64_t since_ns;    /* lower bound; 0 when `since` was given empty (no bound) */
    size_t limit;        /* 1..PORTAL_LOGS_LIMIT_MAX */
    bool follow;         /* live tail */
    bool has_after;      /* `after=SEG.OFF`: where the previous tail page ended */
    uint64_t after_seg, after_off;
    int64_t tail_end;    /* follow: unix seconds when the tail stops, at most now + 10 min */
};

/* Parses a raw query string (NULL or "" is every default) at time now_ms (unix ms).
 * returns: 0, or CORE_E_INVAL with *problem set to a static, user-facing message. */
int portal_logs_filter_parse(const char *query, int64_t now_ms, struct portal_logs_filter *f,
                             const char **problem);

/* Appends one table row (<tr class="log-row">) for a stored standard JSON line: time, severity
 * (a span with class sev-trace ... sev-fatal, from `severity`, the row's severity number),
 * instance, body and compact attributes. The line is untrusted: every value is escaped, control
 * bytes are dropped (SGR colours become spans), long bodies and attribute lists are cut; a line
 * that is not JSON is shown raw (escaped) as the body. is_new adds the class log-new.
 * returns: 0, or the first append error (CORE_E_NOMEM, CORE_E_TOO_BIG). */
int portal_log_row_render(const char *line, size_t len, int severity, bool is_new,
                          struct core_buf *out);

/* Requests counted from http_requests_total samples. */
struct portal_http_counts {
    double total;       /* every sample */
    double by_class[6]; /* [1]..[5]: code 1xx..5xx; [0]: no code label or any other code */
};

/* Adds the http_requests_total{...,code="..."} samples of a Prometheus text exposition (text,
 * len bytes, need not be NUL-terminated) to c; other metrics, comments, malformed lines and
 * non-finite or negative values are ignored. returns: the number of samples added. */
size_t portal_prom_sum_codes(const char *text, size_t len, struct portal_http_counts *c);

/* Log records of the last hour, by severity. */
struct portal_log_counts {
    int64_t by_sev[7]; /* [0] unspecified, [1] trace, [2] debug, [3] info, [4] warn, [5] error,
                        * [6] fatal */
    int64_t total;
    bool capped;       /* counting stopped at the cap: the numbers are lower bounds */
    bool failed;       /* the store could not be read */
};

/* What the metrics summary shows for one environment. */
struct portal_env_metrics {
    const char *env;   /* borrowed; NULL: the whole service (when it is deployed nowhere) */
    size_t scraped;    /* ready replicas whose /metrics answered */
    size_t unanswered; /* ready replicas that did not answer (or were past the 16 read) */
    struct portal_http_counts http;
    struct portal_log_counts logs;
};

/* Renders the service page's "Metrics" section into out (appended): one row per environment
 * of status (deploy_status(); NULL: deployed nowhere) with replicas ready/wanted, restarts and
 * state from status and the rest from the entry of m whose env matches; when status has no
 * environment, the entry with env NULL gives the service's log volume. Every string is
 * escaped. returns: 0, or the first append error. */
int portal_metrics_render(const char *service, const struct json_t *status,
                          const struct portal_env_metrics *m, size_t n, struct core_buf *out);

#endif
