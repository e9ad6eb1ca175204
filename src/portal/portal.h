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

#endif
