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
 * Lifecycle: portal_new() borrows the store and catalog (they must outlive it); portal_free().
 * Threading: portal_handle() may run on several threads at once.
 */
#ifndef PAVE_PORTAL_H
#define PAVE_PORTAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

struct store;
struct catalog;
struct portal;

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
};

#define PORTAL_SESSION_COOKIE "pave_session"

struct portal *portal_new(struct store *st, struct catalog *cat, struct core_err *err);
void portal_free(struct portal *p);
/* Handles one request. Always fills resp (errors become HTML error pages); returns 0, or
 * CORE_E_NOMEM when even the error page could not be built. */
int portal_handle(struct portal *p, const struct portal_request *req,
                  struct portal_response *resp);

#endif
