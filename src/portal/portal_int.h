/*
 * portal internals shared by the portal's page files (portal.c, page_cost.c, page_security.c).
 *
 * A page file renders into a `struct page` with the sticky-error writers below: out_s() raw
 * trusted markup, out_h() HTML-escaped text, out_u() URL-encoded text (safe in attributes),
 * out_f() short numeric fragments. portal_page_begin()/portal_page_end() wrap a page in the
 * portal's chrome (navigation, sign-out form); portal_error_page() and friends replace whatever
 * was built with an error page. The router in portal.c has already resolved the session, checked
 * the CSRF token of every POST and read the form (pg->form) before a page function runs; forms
 * a page renders must carry pg->csrf in a hidden `csrf` field. Nothing outside src/portal
 * includes this header.
 */
#ifndef PAVE_PORTAL_INT_H
#define PAVE_PORTAL_INT_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "auth/auth.h"
#include "core/core.h"
#include "portal/portal.h"

#define HTML_TYPE "text/html; charset=utf-8"
#define PARAM_MAX 256 /* longest query or form value we accept */

struct portal {
    struct store *st;
    struct catalog *cat;
    struct ci_runner *runner; /* may be NULL: pipelines are off */
    char *data_dir;           /* owned copy; may be NULL: no service creation */
    struct registry *registry;      /* may be NULL: no image list on service pages */
    struct artifact_signer *signer; /* set together with registry */
    struct deploy_controller *deploy; /* may be NULL: deployments are not enabled */
    struct policy_engine *policy;     /* may be NULL: policy is not enabled */
    struct pki *pki;                  /* may be NULL: the CA is not initialized */
    const struct security_sigma_set *rules; /* may be NULL: /security/rules lists none */
};

/* State of one request. */
struct page {
    struct portal *p;
    const struct portal_request *req;
    struct portal_response *resp;
    struct core_buf *b;
    int rc;                  /* first append error; sticky */
    struct core_err err;     /* why a store/catalog call failed, for the server log */
    bool is_get;             /* GET or HEAD */
    bool is_post;
    bool signed_in;
    bool stale_cookie;       /* a session cookie was sent but is no longer valid */
    struct auth_principal who;
    char csrf[65];
    char *form;              /* NUL-terminated copy of the request body, or NULL */
    const char *nav;         /* current nav item: "catalog", "create", "teams", "compliance",
                              * "ca", "audit" */
    int refresh;             /* > 0: the page reloads itself after this many seconds */
    const char *refresh_url; /* ... at this address (attribute-safe), NULL: the same one */
};

/* ---- writers with a sticky error ---------------------------------------------------------- */

static inline void out_s(struct page *pg, const char *s)
{
    if (!pg->rc)
        pg->rc = core_buf_adds(pg->b, s);
}

static inline void out_f(struct page *pg, const char *fmt, ...) CORE_PRINTF(2, 3);
static inline void out_f(struct page *pg, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    if (pg->rc)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    /* Only used for short numeric fragments; a longer result is a programming error. */
    if (n < 0 || (size_t)n >= sizeof(tmp))
        pg->rc = CORE_E_INTERNAL;
    else
        pg->rc = core_buf_add(pg->b, tmp, (size_t)n);
}

/* HTML-escaped text; NULL renders as nothing. */
static inline void out_h(struct page *pg, const char *s)
{
    if (!pg->rc && s)
        pg->rc = core_buf_add_html(pg->b, s);
}

/* HTML-escaped text, or a dash when s is NULL or empty. */
static inline void out_hd(struct page *pg, const char *s)
{
    if (s && *s)
        out_h(pg, s);
    else
        out_s(pg, "<span class=\"muted\">&mdash;</span>");
}

/* URL-encoded text (only [A-Za-z0-9-_.~%], so also safe inside an attribute). */
static inline void out_u(struct page *pg, const char *s)
{
    if (!pg->rc && s)
        pg->rc = core_buf_add_urlenc(pg->b, s);
}

/* "2024-05-01T12:34:56.789Z" as "2024-05-01 12:34:56 UTC" inside a <time> element. */
void portal_out_time(struct page *pg, const char *ts);
void portal_nav_item(struct page *pg, const char *key, const char *href, const char *label);
void portal_page_begin(struct page *pg, int status, const char *title);
void portal_page_end(struct page *pg);
/* Error pages: throw away what was built and render the error. */
int portal_error_page(struct page *pg, int status, const char *title, const char *msg);
int portal_bad_request(struct page *pg, const char *msg);
int portal_not_found(struct page *pg);
int portal_method_not_allowed(struct page *pg);
/* 303 See Other to a fixed, internal location (never built from request data). */
int portal_redirect(struct page *pg, const char *to);
/* Reads one value of a form or query string. Absent -> "" and 0. Bad encoding, control bytes or
 * a value longer than outsz-1 -> CORE_E_INVAL. */
int portal_form_value(const char *form, const char *key, char *out, size_t outsz);
/* A positive decimal id without leading zeros. */
bool portal_parse_id(const char *s, size_t len, int64_t *id);
/* A string / integer member of a JSON object (NULL / false when absent or of another type). */
const char *portal_jstr(const json_t *obj, const char *key);
bool portal_jint(const json_t *obj, const char *key, int64_t *out);

/* The audit events of one object (kind, object) or of every object (object NULL) as a table with
 * the given element id. returns: 0 or the store's error (pg->err set). */
int portal_audit_table(struct page *pg, const char *kind, const char *object, const char *id);

/* Page files (routed by portal.c for paths under their prefix; signed in, CSRF checked). */
int portal_cost_route(struct page *pg);     /* /cost... (page_cost.c) */
int portal_security_route(struct page *pg); /* /security... (page_security.c) */

#endif
