/* Internal to src/api: the request context, route table and metrics shared by its files. */
#ifndef PAVE_API_INT_H
#define PAVE_API_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>

#include "api/api.h"
#include "auth/auth.h"
#include "catalog/catalog.h"
#include "core/core.h"

struct api_req {
    struct api_server *srv;
    const char *method;
    const char *path;
    char *query;     /* raw query string (owned), may be NULL */
    const char *content_type;
    struct core_buf body;
    bool body_too_big;
    struct auth_principal who;
    bool authed;
    const char *params[4]; /* path parameters captured by {name} */
    char param_buf[4][256];
    /* response */
    int status;
    struct core_buf out;
    const char *out_type;
    int64_t start_us;
    int route;
    struct MHD_Connection *conn;
    /* spooled upload: the body goes to this file instead of `body` */
    int upload_fd;
    char upload_path[1200];
    size_t upload_len;
    size_t upload_max;
    void *upload_md;          /* EVP_MD_CTX: SHA-256 of the body as it arrives */
    char upload_sha256[65];   /* its hex digest once the body is complete, else "" */
    /* a handler may build its own response (files, streams, CGI output) */
    struct MHD_Response *resp;
    /* request headers, copied so a handler running off the event loop can read them:
     * "name\0value\0" pairs */
    struct core_buf headers;
    int offload; /* 0 none, 1 running on its own thread, 2 done: send the response */
};

/* A request header (case-insensitive name) from the copy, or NULL. */
const char *api_req_header(struct api_req *r, const char *name);
/* For streaming responses: parks the connection (from inside its content reader callback)
 * until the server's next tick (about 200 ms), so a follower waits without holding a thread.
 * returns: false when the server is stopping (end the stream instead). */
bool api_stream_park(struct api_server *srv, struct MHD_Connection *c);
struct api_server *api_server_of(struct api_req *r);

typedef void (*api_handler_fn)(struct api_req *r);

struct api_route {
    const char *method;
    const char *pattern; /* "/api/v1/services/{name}" */
    api_handler_fn fn;
    bool needs_auth;
    bool upload; /* body is spooled to a file (r->upload_path) up to max_upload */
};

/* Route tables: catalog/auth/audit (routes.c), pipelines (routes_ci.c), published images
 * (routes_artifacts.c) and Kubernetes rendering (routes_runtime.c). Metrics number the routes
 * across the tables in this order. */
extern const struct api_route api_routes[];
extern const size_t api_nroutes;
extern const struct api_route api_ci_routes[];
extern const size_t api_ci_nroutes;
extern const struct api_route api_artifact_routes[];
extern const size_t api_artifact_nroutes;
extern const struct api_route api_runtime_routes[];
extern const struct api_route api_deploy_routes[];
extern const size_t api_deploy_nroutes;
extern const struct api_route api_logs_routes[];   /* routes_logs.c: pave logs */
extern const size_t api_logs_nroutes;
extern const struct api_route api_ingest_routes[]; /* routes_ingest.c: HTTP JSON ingest */
extern const size_t api_ingest_nroutes;
extern const struct api_route api_policy_routes[]; /* routes_policy.c: policies, exceptions */
extern const size_t api_policy_nroutes;
extern const struct api_route api_pki_routes[]; /* routes_pki.c: CA, CRL, certificates */
extern const size_t api_pki_nroutes;
extern const struct api_route api_security_routes[]; /* routes_security.c: rules, alerts, FIM */
extern const size_t api_security_nroutes;
extern const struct api_route api_cost_routes[]; /* routes_cost.c: cost reports, budgets */
extern const size_t api_cost_nroutes;
extern const size_t api_runtime_nroutes;
/* The i-th route across all tables, or NULL. */
const struct api_route *api_route_at(size_t i);
size_t api_route_count(void);

/* The server's dependencies, for handlers. */
struct api_deps *api_ctx(struct api_req *r);
/* Whether the request's principal may change things of `team`. */
bool api_can_change_team(struct api_req *r, const char *team);

/* git smart HTTP (git.c): handles /git/... after authentication. */
void api_git_handle(struct api_req *r, const char *repo, const char *rest);

/* Responses (routes.c) */
void api_reply_json(struct api_req *r, int status, json_t *body); /* steals body */
void api_reply_error(struct api_req *r, int code, const char *msg, json_t *details);
void api_reply_err(struct api_req *r, const struct core_err *err);
/* Query parameter (decoded) or NULL; value lives in the request. */
const char *api_query(struct api_req *r, const char *key, char *buf, size_t bufsz);
/* An integer query parameter within [lo, hi] (def when absent) into *out; on a bad or empty value
 * replies 400 and returns false. */
bool api_query_long(struct api_req *r, const char *key, long lo, long hi, long def, long *out);
/* Replies 200 with out (stolen) when it is not NULL, else the error. */
void api_reply_result(struct api_req *r, json_t *out, const struct core_err *err);

/* Metrics (metrics.c): requests by route and status, latency histograms by route. */
#define API_ROUTE_PORTAL (-1)
#define API_ROUTE_OTHER (-2)
#define API_METRIC_ROUTES 160
#define API_METRIC_STATUSES 12
#define API_METRIC_BUCKETS 12

struct api_metric_route {
    int statuses[API_METRIC_STATUSES];
    uint64_t counts[API_METRIC_STATUSES];
    uint64_t buckets[API_METRIC_BUCKETS]; /* cumulative at render time */
    uint64_t n;
    double sum;
};

struct api_metrics {
    pthread_mutex_t lock;
    struct api_metric_route routes[API_METRIC_ROUTES + 2]; /* + portal + other */
    int64_t started_ms;
};

void api_metrics_init(struct api_metrics *m);
void api_metrics_release(struct api_metrics *m);
void api_metrics_observe(struct api_metrics *m, int route, int status, double seconds);
int api_metrics_render(struct api_metrics *m, struct core_buf *out);
struct api_metrics *api_metrics_of(struct api_req *r);

#endif
