/*
 * The portal: server-rendered HTML pages over the catalog, the audit log and auth sessions.
 *
 * Every request gets a `struct page` that holds the response being built and a sticky error:
 * the out_*() writers do nothing once an append has failed, so page code reads top to bottom
 * and checks the error once at the end. Any failure while building a page throws the partial
 * body away and renders a plain error page instead. Every dynamic string goes through out_h()
 * (HTML escaping) or out_u() (URL encoding, whose output is safe inside an attribute).
 */
#include "portal/portal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "store/store.h"

#define HTML_TYPE "text/html; charset=utf-8"
#define CSS_TYPE "text/css"
#define PAGE_SIZE 50
#define FORM_MAX (16 * 1024)  /* largest form body we read */
#define PARAM_MAX 256         /* longest query or form value we accept */
#define JSON_DEPTH_MAX 32     /* pretty-printer nesting limit */
#define DIGEST_SHOWN 12       /* audit digests are shortened to this many characters */
#define AUDIT_ROWS 100

#define COOKIE_ATTRS "Path=/; HttpOnly; SameSite=Strict"

struct portal {
    struct store *st;
    struct catalog *cat;
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
    const char *nav;         /* current nav item: "catalog", "teams", "audit" or NULL */
};

/* ---- the stylesheet, served at /static/pave.css ------------------------------------------ */

static const char pave_css[] =
    ":root{--bg:#f6f7f9;--fg:#1c2430;--muted:#5d6b7e;--line:#dde2e8;--card:#fff;"
    "--accent:#2456c7;--accent-bg:#e8effc;--bad:#b3261e;--bad-bg:#fdecea;--head:#16202e}\n"
    "*{box-sizing:border-box}\n"
    "html{font-size:15px}\n"
    "body{margin:0;background:var(--bg);color:var(--fg);line-height:1.5;"
    "font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}\n"
    "a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}\n"
    "code,pre,.mono{font-family:ui-monospace,\"SFMono-Regular\",Menlo,Consolas,monospace;"
    "font-size:.92em}\n"
    "p code{white-space:nowrap}\n"
    ".top{display:flex;align-items:center;gap:1.5rem;padding:.6rem 1.5rem;background:var(--head);"
    "color:#e9eef5}\n"
    ".brand{color:#fff;font-weight:700;font-size:1.1rem;letter-spacing:.02em}\n"
    ".brand:hover{text-decoration:none}\n"
    ".top nav{display:flex;gap:.25rem;flex:1}\n"
    ".top nav a{color:#c9d3e0;padding:.3rem .7rem;border-radius:6px}\n"
    ".top nav a:hover{background:#2a3648;color:#fff;text-decoration:none}\n"
    ".top nav a[aria-current=page]{background:#2f3d52;color:#fff}\n"
    ".user{display:flex;align-items:center;gap:.75rem;color:#c9d3e0}\n"
    ".user form{margin:0}\n"
    ".user button{background:transparent;color:#e9eef5;border:1px solid #4a5a70;"
    "padding:.25rem .7rem;border-radius:6px;cursor:pointer;font:inherit}\n"
    ".user button:hover{background:#2a3648}\n"
    "main{max-width:1100px;margin:0 auto;padding:1.5rem}\n"
    "h1{font-size:1.6rem;margin:.2rem 0 .4rem}\n"
    "h2{font-size:1.15rem;margin:2rem 0 .6rem}\n"
    ".muted{color:var(--muted)}\n"
    ".lead{font-size:1.05rem;color:var(--muted);margin-top:0}\n"
    ".crumbs{margin:0;color:var(--muted);font-size:.9rem}\n"
    ".card{background:var(--card);border:1px solid var(--line);border-radius:10px;"
    "padding:1.25rem 1.5rem}\n"
    ".filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:1rem 0}\n"
    "input,select{font:inherit;padding:.45rem .6rem;border:1px solid #c3ccd7;border-radius:6px;"
    "background:#fff;color:var(--fg)}\n"
    "input:focus,select:focus,button:focus{outline:2px solid var(--accent);outline-offset:1px}\n"
    "#q{flex:1;min-width:16rem}\n"
    "button,.button{font:inherit;padding:.45rem 1rem;border-radius:6px;border:1px solid "
    "var(--accent);background:var(--accent);color:#fff;cursor:pointer}\n"
    "button:hover{filter:brightness(1.08)}\n"
    ".clear{padding:.45rem .4rem}\n"
    ".count{color:var(--muted);margin:.25rem 0 .75rem}\n"
    "table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid "
    "var(--line);border-radius:10px;overflow:hidden}\n"
    "th,td{text-align:left;padding:.55rem .8rem;border-bottom:1px solid var(--line);"
    "vertical-align:top}\n"
    "th{background:#eef1f5;font-weight:600;font-size:.85rem;color:var(--muted);"
    "text-transform:uppercase;letter-spacing:.03em}\n"
    "tbody tr:last-child td{border-bottom:0}\n"
    "tbody tr:hover{background:#f9fafc}\n"
    "td.num,th.num{text-align:right}\n"
    ".tier{display:inline-block;padding:0 .5rem;border-radius:999px;font-size:.8rem;"
    "font-weight:600;background:#eef1f5;color:var(--muted)}\n"
    ".tier-1{background:#fdecea;color:#9c2118}.tier-2{background:#fff3dc;color:#8a5a00}\n"
    ".chip{display:inline-block;margin:0 .3rem .3rem 0;padding:.05rem .55rem;border-radius:999px;"
    "background:var(--accent-bg);color:#1d3f8f;font-size:.85rem}\n"
    ".facts{display:grid;grid-template-columns:10rem 1fr;gap:.5rem 1rem;margin:0}\n"
    ".facts dt{color:var(--muted);font-weight:600}\n"
    ".facts dd{margin:0}\n"
    ".facts ul{margin:0;padding-left:1.1rem}\n"
    "pre.json{background:#0f1722;color:#d6deeb;padding:1rem 1.25rem;border-radius:10px;"
    "overflow:auto;line-height:1.45;margin:0}\n"
    "pre.json .k{color:#82aaff}pre.json .s{color:#c3e88d}pre.json .n{color:#f78c6c}"
    "pre.json .b{color:#c792ea}\n"
    ".digest{color:var(--muted)}\n"
    ".empty{padding:1rem;color:var(--muted);text-align:center}\n"
    ".pager{display:flex;gap:1rem;justify-content:center;align-items:center;margin:1rem 0}\n"
    ".login{max-width:26rem;margin:4rem auto}\n"
    ".login form{display:flex;flex-direction:column;gap:.6rem;margin-top:1rem}\n"
    ".login label{font-weight:600}\n"
    ".alert{background:var(--bad-bg);color:var(--bad);border:1px solid #f3c2bd;"
    "border-radius:6px;padding:.55rem .8rem;margin:.75rem 0 0}\n"
    ".error{max-width:40rem;margin:3rem auto;text-align:center}\n"
    ".error .code{font-size:3rem;font-weight:700;color:var(--muted);margin:0}\n"
    ".visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;"
    "clip:rect(0 0 0 0);white-space:nowrap}\n"
    "footer{max-width:1100px;margin:2rem auto;padding:0 1.5rem;color:var(--muted);"
    "font-size:.85rem}\n"
    "@media (max-width:700px){.facts{grid-template-columns:1fr}.top{flex-wrap:wrap}}\n";

/* ---- writers with a sticky error ---------------------------------------------------------- */

static void out_s(struct page *pg, const char *s)
{
    if (!pg->rc)
        pg->rc = core_buf_adds(pg->b, s);
}

static void out_f(struct page *pg, const char *fmt, ...) CORE_PRINTF(2, 3);
static void out_f(struct page *pg, const char *fmt, ...)
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
static void out_h(struct page *pg, const char *s)
{
    if (!pg->rc && s)
        pg->rc = core_buf_add_html(pg->b, s);
}

/* HTML-escaped text, or a dash when s is NULL or empty. */
static void out_hd(struct page *pg, const char *s)
{
    if (s && *s)
        out_h(pg, s);
    else
        out_s(pg, "<span class=\"muted\">&mdash;</span>");
}

/* URL-encoded text (only [A-Za-z0-9-_.~%], so also safe inside an attribute). */
static void out_u(struct page *pg, const char *s)
{
    if (!pg->rc && s)
        pg->rc = core_buf_add_urlenc(pg->b, s);
}

/* "2024-05-01T12:34:56.789Z" as "2024-05-01 12:34:56 UTC" inside a <time> element. */
static void out_time(struct page *pg, const char *ts)
{
    if (!ts || !*ts) {
        out_hd(pg, NULL);
        return;
    }
    char shown[32];
    size_t n = strlen(ts);
    if (n >= 19 && n < sizeof(shown) && ts[10] == 'T') {
        memcpy(shown, ts, 19);
        shown[10] = ' ';
        snprintf(shown + 19, sizeof(shown) - 19, " UTC");
    } else {
        snprintf(shown, sizeof(shown), "%.31s", ts);
    }
    out_s(pg, "<time datetime=\"");
    out_h(pg, ts);
    out_s(pg, "\">");
    out_h(pg, shown);
    out_s(pg, "</time>");
}

/* A SHA-256 digest shortened to DIGEST_SHOWN characters, the full value in the title. */
static void out_digest(struct page *pg, const char *d)
{
    if (!d || !*d) {
        out_hd(pg, NULL);
        return;
    }
    char shortd[DIGEST_SHOWN + 1];
    snprintf(shortd, sizeof(shortd), "%s", d);
    out_s(pg, "<code class=\"digest\" title=\"");
    out_h(pg, d);
    out_s(pg, "\">");
    out_h(pg, shortd);
    out_s(pg, "</code>");
}

/* ---- page frame, redirects and error pages ------------------------------------------------- */

static void nav_item(struct page *pg, const char *key, const char *href, const char *label)
{
    out_s(pg, "<a href=\"");
    out_s(pg, href);
    out_s(pg, "\"");
    if (pg->nav && strcmp(pg->nav, key) == 0)
        out_s(pg, " aria-current=\"page\"");
    out_s(pg, ">");
    out_s(pg, label);
    out_s(pg, "</a>");
}

static void page_begin(struct page *pg, int status, const char *title)
{
    pg->resp->status = status;
    pg->resp->content_type = HTML_TYPE;
    out_s(pg, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
              "<title>");
    out_h(pg, title);
    out_s(pg, " &middot; Paved</title>\n<link rel=\"stylesheet\" href=\"/static/pave.css\">\n"
              "</head>\n<body>\n<header class=\"top\">\n<a class=\"brand\" href=\"/catalog\">"
              "Paved</a>\n");
    if (pg->signed_in) {
        out_s(pg, "<nav aria-label=\"Main\">");
        nav_item(pg, "catalog", "/catalog", "Catalog");
        nav_item(pg, "teams", "/teams", "Teams");
        nav_item(pg, "audit", "/audit", "Audit");
        out_s(pg, "</nav>\n<div class=\"user\"><span id=\"user\">");
        out_h(pg, pg->who.user);
        out_s(pg, "</span><form id=\"logout\" method=\"post\" action=\"/logout\">"
                  "<input type=\"hidden\" name=\"csrf\" value=\"");
        out_h(pg, pg->csrf);
        out_s(pg, "\"><button type=\"submit\">Sign out</button></form></div>\n");
    }
    out_s(pg, "</header>\n<main>\n");
}

static void page_end(struct page *pg)
{
    out_s(pg, "</main>\n<footer>Paved " PAVE_VERSION "</footer>\n</body>\n</html>\n");
}

/* Throws away whatever was built so far. */
static void page_reset(struct page *pg)
{
    core_buf_clear(pg->b);
    pg->rc = 0;
    pg->resp->location[0] = 0;
}

static int error_page(struct page *pg, int status, const char *title, const char *msg)
{
    page_reset(pg);
    page_begin(pg, status, title);
    out_f(pg, "<section class=\"error card\">\n<p class=\"code\">%d</p>\n<h1>", status);
    out_h(pg, title);
    out_s(pg, "</h1>\n<p>");
    out_h(pg, msg);
    out_s(pg, "</p>\n<p>");
    if (pg->signed_in)
        out_s(pg, "<a href=\"/catalog\">Back to the catalog</a>");
    else
        out_s(pg, "<a href=\"/login\">Sign in</a>");
    out_s(pg, "</p>\n</section>\n");
    page_end(pg);
    return pg->rc;
}

static int bad_request(struct page *pg, const char *msg)
{
    return error_page(pg, 400, "Bad request", msg);
}

static int not_found(struct page *pg)
{
    return error_page(pg, 404, "Page not found",
                      "There is nothing at this address. Check the link or start from the "
                      "catalog.");
}

static int method_not_allowed(struct page *pg)
{
    return error_page(pg, 405, "Method not allowed", "This page does not accept that request.");
}

/* 303 See Other to a fixed, internal location (never built from request data). */
static int redirect(struct page *pg, const char *to)
{
    page_reset(pg);
    pg->resp->status = 303;
    pg->resp->content_type = HTML_TYPE;
    snprintf(pg->resp->location, sizeof(pg->resp->location), "%s", to);
    out_s(pg, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<title>Redirecting</title></head><body><p>See <a href=\"");
    out_h(pg, to);
    out_s(pg, "\">");
    out_h(pg, to);
    out_s(pg, "</a>.</p></body></html>\n");
    return pg->rc;
}

static void clear_cookie(struct page *pg)
{
    snprintf(pg->resp->set_cookie, sizeof(pg->resp->set_cookie),
             PORTAL_SESSION_COOKIE "=; " COOKIE_ATTRS "; Max-Age=0");
}

/* ---- request input ----------------------------------------------------------------------- */

/* A parameter value we are willing to render and pass on: valid UTF-8, no control bytes. */
static bool value_ok(const char *s)
{
    if (!core_utf8_valid(s, strlen(s)))
        return false;
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        if (*u < 0x20 || *u == 0x7f)
            return false;
    return true;
}

/* The whole query must be valid form encoding, even keys we ignore. */
static bool query_ok(const char *query)
{
    if (!query || !*query)
        return true;
    char *copy = core_strdup(query);
    if (!copy)
        return false;
    bool ok = core_url_decode(copy) == 0 && core_utf8_valid(copy, strlen(copy));
    core_free(copy);
    return ok;
}

/* Reads one value from a form string. Absent -> "" and 0. Bad encoding, control bytes or a value
 * longer than outsz-1 -> CORE_E_INVAL. */
static int form_value(const char *form, const char *key, char *out, size_t outsz)
{
    out[0] = 0;
    int rc = core_form_get(form, key, out, outsz);
    if (rc == CORE_E_NOTFOUND) {
        out[0] = 0;
        return 0;
    }
    if (rc || !value_ok(out)) {
        out[0] = 0;
        return CORE_E_INVAL;
    }
    return 0;
}

static int read_form(struct page *pg)
{
    const struct portal_request *req = pg->req;
    if (!req->body || req->body_len == 0)
        return 0;
    if (req->body_len > FORM_MAX)
        return CORE_E_TOO_BIG;
    pg->form = core_strndup(req->body, req->body_len);
    return pg->form ? 0 : CORE_E_NOMEM;
}

static bool csrf_ok(struct page *pg)
{
    char sent[80];
    if (!pg->signed_in || !pg->form || form_value(pg->form, "csrf", sent, sizeof(sent)))
        return false;
    return sent[0] && pg->csrf[0] && core_str_eq_ct(sent, pg->csrf);
}

/* ---- sign-in and sign-out ------------------------------------------------------------------ */

static int login_page(struct page *pg, int status, const char *alert)
{
    page_reset(pg);
    page_begin(pg, status, "Sign in");
    out_s(pg, "<section class=\"login card\">\n<h1>Sign in to Paved</h1>\n"
              "<p class=\"muted\">Use an API token (it starts with <code>pave_</code>). "
              "<code>pave up</code> prints the administrator's token; an administrator can "
              "create one for you.</p>\n");
    if (alert) {
        out_s(pg, "<p class=\"alert\" id=\"login-error\" role=\"alert\">");
        out_h(pg, alert);
        out_s(pg, "</p>\n");
    }
    out_s(pg, "<form id=\"login\" method=\"post\" action=\"/login\">\n"
              "<label for=\"token\">API token</label>\n"
              "<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" "
              "spellcheck=\"false\" required autofocus placeholder=\"pave_&hellip;\">\n"
              "<button type=\"submit\">Sign in</button>\n</form>\n</section>\n");
    page_end(pg);
    return pg->rc;
}

static int login_post(struct page *pg)
{
    struct auth_principal who = {0};
    char token[AUTH_TOKEN_LEN + 32];
    char session[65], csrf[65];
    int rc = 0;

    if (!pg->form) {
        rc = login_page(pg, 400, "Enter your API token.");
        goto out;
    }
    rc = core_form_get(pg->form, "token", token, sizeof(token));
    if (rc == CORE_E_NOTFOUND) {
        rc = login_page(pg, 400, "Enter your API token.");
        goto out;
    }
    if (rc == CORE_E_INVAL) {
        rc = login_page(pg, 400, "The form could not be read.");
        goto out;
    }
    if (rc == CORE_E_TOO_BIG) {
        /* far longer than any token: it cannot be one */
        rc = login_page(pg, 401, "That token was not accepted.");
        goto out;
    }
    /* Pasted tokens often carry a trailing newline or spaces. */
    char *t = token;
    while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t' || t[n - 1] == '\r' || t[n - 1] == '\n'))
        t[--n] = 0;
    if (!*t) {
        rc = login_page(pg, 400, "Enter your API token.");
        goto out;
    }

    rc = auth_token_verify(pg->p->st, pg->p->cat, t, &who, &pg->err);
    if (rc == CORE_E_AUTH) {
        log_warn("portal", "sign-in refused", LOG_STR("reason", pg->err.msg));
        char msg[600];
        snprintf(msg, sizeof(msg), "That token was not accepted (%s).", pg->err.msg);
        rc = login_page(pg, 401, msg);
        goto out;
    }
    if (rc)
        goto out;
    rc = auth_session_create(pg->p->st, who.token_id, session, csrf, &pg->err);
    if (rc)
        goto out;
    snprintf(pg->resp->set_cookie, sizeof(pg->resp->set_cookie),
             PORTAL_SESSION_COOKIE "=%s; " COOKIE_ATTRS "; Max-Age=%lld", session,
             (long long)(AUTH_SESSION_TTL_MS / 1000));
    log_info("portal", "signed in", LOG_STR("user", who.user), LOG_STR("token_id", who.token_id));
    rc = redirect(pg, "/catalog");
out:
    explicit_bzero(token, sizeof(token));
    explicit_bzero(session, sizeof(session));
    auth_principal_release(&who);
    return rc;
}

static int logout_post(struct page *pg)
{
    int rc = auth_session_delete(pg->p->st, pg->req->session, &pg->err);
    if (rc)
        return rc;
    log_info("portal", "signed out", LOG_STR("user", pg->who.user));
    clear_cookie(pg);
    return redirect(pg, "/login");
}

/* ---- catalog --------------------------------------------------------------------------------- */

struct team_opts {
    struct page *pg;
    const char *selected;
};

static int team_option(void *arg, const struct catalog_team *t)
{
    struct team_opts *o = arg;
    struct page *pg = o->pg;
    out_s(pg, "<option value=\"");
    out_h(pg, t->name);
    out_s(pg, "\"");
    if (o->selected && strcmp(o->selected, t->name) == 0)
        out_s(pg, " selected");
    out_s(pg, ">");
    out_h(pg, t->name);
    out_s(pg, "</option>");
    return pg->rc;
}

/* href for a catalog page with the current filters. */
static void catalog_href(struct page *pg, const char *q, const char *team, long page)
{
    const char *sep = "?";
    out_s(pg, "/catalog");
    if (*q) {
        out_s(pg, sep);
        out_s(pg, "q=");
        out_u(pg, q);
        sep = "&amp;";
    }
    if (*team) {
        out_s(pg, sep);
        out_s(pg, "team=");
        out_u(pg, team);
        sep = "&amp;";
    }
    if (page > 1) {
        out_s(pg, sep);
        out_f(pg, "page=%ld", page);
    }
}

static void tier_badge(struct page *pg, int tier)
{
    if (tier >= 1 && tier <= 4)
        out_f(pg, "<span class=\"tier tier-%d\">Tier %d</span>", tier, tier);
    else
        out_hd(pg, NULL);
}

static int catalog_page(struct page *pg)
{
    struct catalog_service_list list = {0};
    char q[PARAM_MAX], team[PARAM_MAX], pagestr[32];
    int rc = 0;

    if (form_value(pg->req->query, "q", q, sizeof(q)) ||
        form_value(pg->req->query, "team", team, sizeof(team)) ||
        form_value(pg->req->query, "page", pagestr, sizeof(pagestr))) {
        rc = bad_request(pg, "The search parameters could not be read.");
        goto out;
    }
    long page = 1;
    if (pagestr[0]) {
        char *end = NULL;
        page = strtol(pagestr, &end, 10);
        if (!end || *end || page < 1 || page > 1000000) {
            rc = bad_request(pg, "The page number must be a positive whole number.");
            goto out;
        }
    }

    struct catalog_service_query cq = {
        .team = team[0] ? team : NULL,
        .search = q[0] ? q : NULL,
        .limit = PAGE_SIZE,
        .offset = (int)((page - 1) * PAGE_SIZE),
    };
    rc = catalog_service_list(pg->p->cat, &cq, &list, &pg->err);
    if (rc == CORE_E_INVAL) {
        rc = bad_request(pg, pg->err.msg);
        goto out;
    }
    if (rc)
        goto out;

    pg->nav = "catalog";
    page_begin(pg, 200, "Catalog");
    out_s(pg, "<h1>Service catalog</h1>\n<p class=\"lead\">Every service, who owns it and how it "
              "runs.</p>\n"
              "<form id=\"search\" class=\"filters\" method=\"get\" action=\"/catalog\" "
              "role=\"search\">\n"
              "<label for=\"q\" class=\"visually-hidden\">Search services</label>\n"
              "<input id=\"q\" name=\"q\" type=\"search\" maxlength=\"200\" "
              "placeholder=\"Search by name or description\" value=\"");
    out_h(pg, q);
    out_s(pg, "\">\n<label for=\"team\" class=\"visually-hidden\">Team</label>\n"
              "<select id=\"team\" name=\"team\"><option value=\"\">All teams</option>");
    struct team_opts opts = {pg, team};
    rc = catalog_team_list(pg->p->cat, team_option, &opts, &pg->err);
    if (rc)
        goto out;
    out_s(pg, "</select>\n<button type=\"submit\">Search</button>\n");
    if (q[0] || team[0])
        out_s(pg, "<a class=\"clear\" id=\"clear\" href=\"/catalog\">Clear</a>\n");
    out_s(pg, "</form>\n<p class=\"count\" id=\"count\">");
    out_f(pg, "%lld %s", (long long)list.total, list.total == 1 ? "service" : "services");
    if (q[0]) {
        out_s(pg, " matching &ldquo;");
        out_h(pg, q);
        out_s(pg, "&rdquo;");
    }
    if (team[0]) {
        out_s(pg, " owned by ");
        out_h(pg, team);
    }
    out_s(pg, "</p>\n");

    out_s(pg, "<table id=\"services\">\n<thead><tr><th>Name</th><th>Team</th><th>Tier</th>"
              "<th>Description</th><th>Updated</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < list.n; i++) {
        const struct catalog_service *s = &list.items[i];
        out_s(pg, "<tr class=\"service-row\"><td><a href=\"/services/");
        out_u(pg, s->name);
        out_s(pg, "\">");
        out_h(pg, s->name);
        out_s(pg, "</a></td><td><a href=\"/catalog?team=");
        out_u(pg, s->team);
        out_s(pg, "\">");
        out_h(pg, s->team);
        out_s(pg, "</a></td><td>");
        tier_badge(pg, s->tier);
        out_s(pg, "</td><td>");
        out_hd(pg, s->description);
        out_s(pg, "</td><td>");
        out_time(pg, s->updated_at);
        out_s(pg, "</td></tr>\n");
    }
    if (list.n == 0)
        out_s(pg, "<tr><td colspan=\"5\" class=\"empty\">No services match.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n");

    long pages = (long)((list.total + PAGE_SIZE - 1) / PAGE_SIZE);
    if (pages > 1 || page > 1) {
        out_s(pg, "<nav class=\"pager\" aria-label=\"Pages\">");
        if (page > 1) {
            out_s(pg, "<a rel=\"prev\" href=\"");
            catalog_href(pg, q, team, page - 1);
            out_s(pg, "\">&larr; Previous</a>");
        }
        out_f(pg, "<span>Page %ld of %ld</span>", page, pages > 0 ? pages : 1);
        if (page < pages) {
            out_s(pg, "<a rel=\"next\" href=\"");
            catalog_href(pg, q, team, page + 1);
            out_s(pg, "\">Next &rarr;</a>");
        }
        out_s(pg, "</nav>\n");
    }
    page_end(pg);
    rc = pg->rc;
out:
    catalog_service_list_release(&list);
    return rc;
}

/* ---- service page: manifest fields -------------------------------------------------------- */

static void out_json_str_lit(struct page *pg, const char *s)
{
    struct core_buf lit;
    core_buf_init(&lit, 0);
    if (!pg->rc)
        pg->rc = core_buf_add_json_str(&lit, s);
    out_h(pg, lit.data);
    core_buf_release(&lit);
}

static void out_json_number(struct page *pg, const json_t *v)
{
    if (json_is_integer(v))
        out_f(pg, "%lld", (long long)json_integer_value(v));
    else
        out_f(pg, "%.15g", json_real_value(v));
}

static void out_indent(struct page *pg, int depth)
{
    for (int i = 0; i < depth; i++)
        out_s(pg, "  ");
}

/* Pretty JSON with spans for keys, strings, numbers and literals. Keys keep document order. */
static void out_json_pretty(struct page *pg, const json_t *v, int depth)
{
    if (depth > JSON_DEPTH_MAX) {
        out_s(pg, "&hellip;");
        return;
    }
    if (json_is_object(v)) {
        if (json_object_size(v) == 0) {
            out_s(pg, "{}");
            return;
        }
        out_s(pg, "{\n");
        size_t i = 0, n = json_object_size(v);
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)v, key, item) {
            out_indent(pg, depth + 1);
            out_s(pg, "<span class=\"k\">");
            out_json_str_lit(pg, key);
            out_s(pg, "</span>: ");
            out_json_pretty(pg, item, depth + 1);
            out_s(pg, ++i < n ? ",\n" : "\n");
        }
        out_indent(pg, depth);
        out_s(pg, "}");
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0) {
            out_s(pg, "[]");
            return;
        }
        out_s(pg, "[\n");
        size_t idx, n = json_array_size(v);
        json_t *item;
        json_array_foreach((json_t *)v, idx, item) {
            out_indent(pg, depth + 1);
            out_json_pretty(pg, item, depth + 1);
            out_s(pg, idx + 1 < n ? ",\n" : "\n");
        }
        out_indent(pg, depth);
        out_s(pg, "]");
    } else if (json_is_string(v)) {
        out_s(pg, "<span class=\"s\">");
        out_json_str_lit(pg, json_string_value(v));
        out_s(pg, "</span>");
    } else if (json_is_number(v)) {
        out_s(pg, "<span class=\"n\">");
        out_json_number(pg, v);
        out_s(pg, "</span>");
    } else {
        out_s(pg, "<span class=\"b\">");
        out_s(pg, json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null");
        out_s(pg, "</span>");
    }
}

/* A value as plain text: scalars as themselves, containers as "k: v, k: v" / "a, b". */
static void out_json_text(struct page *pg, const json_t *v, int depth)
{
    if (!v) {
        out_hd(pg, NULL);
    } else if (json_is_string(v)) {
        out_h(pg, json_string_value(v));
    } else if (json_is_number(v)) {
        out_json_number(pg, v);
    } else if (json_is_boolean(v) || json_is_null(v)) {
        out_s(pg, json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null");
    } else if (depth > JSON_DEPTH_MAX) {
        out_s(pg, "&hellip;");
    } else if (json_is_object(v)) {
        const char *key;
        json_t *item;
        const char *sep = "";
        json_object_foreach((json_t *)v, key, item) {
            out_s(pg, sep);
            out_h(pg, key);
            out_s(pg, ": ");
            out_json_text(pg, item, depth + 1);
            sep = ", ";
        }
    } else if (json_is_array(v)) {
        size_t idx;
        json_t *item;
        json_array_foreach((json_t *)v, idx, item) {
            out_s(pg, idx ? ", " : "");
            out_json_text(pg, item, depth + 1);
        }
    }
}

static const json_t *jget(const json_t *obj, const char *key)
{
    return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

static const json_t *jpath(const json_t *root, const char *a, const char *b, const char *c)
{
    const json_t *v = jget(root, a);
    if (v && b)
        v = jget(v, b);
    if (v && c)
        v = jget(v, c);
    return v;
}

/* Prints "label value" for each present key of obj, separated by " · "; dash when none. */
static void out_fields(struct page *pg, const json_t *obj, const char *const (*labels)[2])
{
    bool any = false;
    for (size_t i = 0; labels[i][0]; i++) {
        const json_t *v = jget(obj, labels[i][0]);
        if (!v)
            continue;
        out_s(pg, any ? " &middot; " : "");
        out_h(pg, labels[i][1]);
        out_s(pg, " ");
        out_s(pg, "<span class=\"mono\">");
        out_json_text(pg, v, 0);
        out_s(pg, "</span>");
        any = true;
    }
    if (!any && obj && json_object_size(obj) > 0)
        out_json_text(pg, obj, 0);
    else if (!any)
        out_hd(pg, NULL);
}

static void fact(struct page *pg, const char *id, const char *label)
{
    out_s(pg, "<dt>");
    out_s(pg, label);
    out_s(pg, "</dt><dd id=\"");
    out_s(pg, id);
    out_s(pg, "\">");
}

static void service_facts(struct page *pg, const struct catalog_service *s, const json_t *m)
{
    out_s(pg, "<dl class=\"facts\">\n");

    fact(pg, "owner", "Owner");
    out_s(pg, "<a href=\"/catalog?team=");
    out_u(pg, s->team);
    out_s(pg, "\">");
    out_h(pg, s->team);
    out_s(pg, "</a></dd>\n");

    fact(pg, "tier", "Tier");
    tier_badge(pg, s->tier);
    out_s(pg, "</dd>\n");

    fact(pg, "tags", "Tags");
    const json_t *tags = jpath(m, "metadata", "tags", NULL);
    if (json_is_object(tags) && json_object_size(tags) > 0) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)tags, key, v) {
            out_s(pg, "<span class=\"chip\">");
            out_h(pg, key);
            out_s(pg, ": ");
            out_json_text(pg, v, 0);
            out_s(pg, "</span>");
        }
    } else {
        out_hd(pg, NULL);
    }
    out_s(pg, "</dd>\n");

    fact(pg, "ports", "Ports");
    const json_t *ports = jpath(m, "spec", "run", "ports");
    if (json_is_array(ports) && json_array_size(ports) > 0) {
        size_t i;
        json_t *port;
        json_array_foreach((json_t *)ports, i, port) {
            out_s(pg, "<span class=\"chip\">");
            const json_t *name = jget(port, "name");
            if (name) {
                out_json_text(pg, name, 0);
                out_s(pg, " ");
            }
            out_json_text(pg, jget(port, "port"), 0);
            const json_t *proto = jget(port, "protocol");
            if (proto) {
                out_s(pg, "/");
                out_json_text(pg, proto, 0);
            }
            out_s(pg, "</span>");
        }
    } else {
        out_hd(pg, NULL);
    }
    out_s(pg, "</dd>\n");

    fact(pg, "replicas", "Replicas");
    const json_t *replicas = jpath(m, "spec", "replicas", NULL);
    if (replicas)
        out_json_text(pg, replicas, 0);
    else
        out_hd(pg, NULL);
    out_s(pg, "</dd>\n");

    static const char *const health_labels[][2] = {
        {"path", "GET"}, {"interval", "every"}, {"timeout", "timeout"}, {NULL, NULL}};
    fact(pg, "health", "Health check");
    out_fields(pg, jpath(m, "spec", "run", "health"), health_labels);
    out_s(pg, "</dd>\n");

    static const char *const res_labels[][2] = {{"cpu", "CPU"}, {"memory", "memory"}, {NULL, NULL}};
    fact(pg, "resources", "Resources");
    out_fields(pg, jpath(m, "spec", "run", "resources"), res_labels);
    out_s(pg, "</dd>\n");

    fact(pg, "dependencies", "Dependencies");
    const json_t *deps = jpath(m, "spec", "dependencies", NULL);
    if (json_is_array(deps) && json_array_size(deps) > 0) {
        out_s(pg, "<ul>");
        size_t i;
        json_t *d;
        json_array_foreach((json_t *)deps, i, d) {
            const json_t *svc = jget(d, "service");
            const json_t *res = jget(d, "resource");
            out_s(pg, "<li>");
            if (json_is_string(svc)) {
                out_s(pg, "service <a href=\"/services/");
                out_u(pg, json_string_value(svc));
                out_s(pg, "\">");
                out_h(pg, json_string_value(svc));
                out_s(pg, "</a>");
            } else if (res) {
                out_json_text(pg, res, 0);
                const json_t *name = jget(d, "name");
                if (name) {
                    out_s(pg, " <span class=\"mono\">");
                    out_json_text(pg, name, 0);
                    out_s(pg, "</span>");
                }
            } else {
                out_json_text(pg, d, 0);
            }
            out_s(pg, "</li>");
        }
        out_s(pg, "</ul>");
    } else {
        out_hd(pg, NULL);
    }
    out_s(pg, "</dd>\n");

    fact(pg, "slo", "SLO");
    const json_t *slo = jpath(m, "spec", "slo", NULL);
    if (json_is_object(slo) && json_object_size(slo) > 0) {
        const json_t *avail = jget(slo, "availability");
        const json_t *lat = jget(slo, "latencyP99");
        const char *sep = "";
        if (avail) {
            out_json_text(pg, avail, 0);
            out_s(pg, "% availability");
            sep = " &middot; ";
        }
        if (lat) {
            out_s(pg, sep);
            out_s(pg, "p99 latency ");
            out_json_text(pg, lat, 0);
        }
        if (!avail && !lat)
            out_json_text(pg, slo, 0);
    } else {
        out_hd(pg, NULL);
    }
    out_s(pg, "</dd>\n");

    fact(pg, "revision", "Revision");
    out_f(pg, "%lld &middot; ", (long long)s->revision);
    out_digest(pg, s->digest);
    out_s(pg, "</dd>\n");

    fact(pg, "updated", "Updated");
    out_time(pg, s->updated_at);
    out_s(pg, "</dd>\n</dl>\n");
}

/* ---- audit tables ---------------------------------------------------------------------------- */

struct audit_rows {
    struct page *pg;
    bool with_object;
    size_t n;
};

static int audit_row(void *arg, const struct store_audit_event *ev)
{
    struct audit_rows *a = arg;
    struct page *pg = a->pg;
    a->n++;
    out_s(pg, "<tr class=\"audit-row\"><td>");
    out_time(pg, ev->ts);
    out_s(pg, "</td><td>");
    out_hd(pg, ev->actor);
    out_s(pg, "</td><td><code>");
    out_h(pg, ev->action);
    out_s(pg, "</code></td>");
    if (a->with_object) {
        out_s(pg, "<td>");
        out_h(pg, ev->kind);
        out_s(pg, " ");
        if (ev->kind && ev->object && strcmp(ev->kind, "service") == 0) {
            out_s(pg, "<a href=\"/services/");
            out_u(pg, ev->object);
            out_s(pg, "\">");
            out_h(pg, ev->object);
            out_s(pg, "</a>");
        } else if (ev->kind && ev->object && strcmp(ev->kind, "team") == 0) {
            out_s(pg, "<a href=\"/catalog?team=");
            out_u(pg, ev->object);
            out_s(pg, "\">");
            out_h(pg, ev->object);
            out_s(pg, "</a>");
        } else {
            out_h(pg, ev->object);
        }
        out_s(pg, "</td>");
    }
    out_s(pg, "<td>");
    out_digest(pg, ev->before);
    out_s(pg, "</td><td>");
    out_digest(pg, ev->after);
    out_s(pg, "</td><td>");
    out_hd(pg, ev->detail);
    out_s(pg, "</td></tr>\n");
    return pg->rc;
}

static int audit_table(struct page *pg, const char *kind, const char *object, const char *id)
{
    struct store_audit_filter f = {.kind = kind, .object = object, .limit = AUDIT_ROWS};
    struct audit_rows a = {pg, object == NULL, 0};
    out_s(pg, "<table id=\"");
    out_s(pg, id);
    out_s(pg, "\">\n<thead><tr><th>When</th><th>Actor</th><th>Action</th>");
    if (a.with_object)
        out_s(pg, "<th>Object</th>");
    out_s(pg, "<th>Before</th><th>After</th><th>Detail</th></tr></thead>\n<tbody>\n");
    int rc = store_audit_list(pg->p->st, &f, audit_row, &a, &pg->err);
    if (rc)
        return rc;
    if (a.n == 0)
        out_f(pg, "<tr><td colspan=\"%d\" class=\"empty\">No recorded changes.</td></tr>\n",
              a.with_object ? 7 : 6);
    out_s(pg, "</tbody>\n</table>\n");
    return pg->rc;
}

/* ---- service page ---------------------------------------------------------------------------- */

static int service_page(struct page *pg, const char *name)
{
    struct catalog_service s = {0};
    json_t *m = NULL;
    int rc = 0;

    if (!core_is_dns_label(name)) {
        rc = not_found(pg);
        goto out;
    }
    rc = catalog_service_get(pg->p->cat, name, &s, &pg->err);
    if (rc == CORE_E_NOTFOUND) {
        rc = error_page(pg, 404, "Service not found",
                        "No service by that name is in the catalog.");
        goto out;
    }
    if (rc)
        goto out;
    json_error_t jerr;
    if (s.manifest)
        m = json_loads(s.manifest, JSON_REJECT_DUPLICATES, &jerr);
    if (!m)
        log_warn("portal", "stored manifest is not valid JSON", LOG_STR("service", s.name));

    pg->nav = "catalog";
    page_begin(pg, 200, s.name);
    out_s(pg, "<p class=\"crumbs\"><a href=\"/catalog\">Catalog</a> / ");
    out_h(pg, s.name);
    out_s(pg, "</p>\n<h1 id=\"service-name\">");
    out_h(pg, s.name);
    out_s(pg, "</h1>\n<p class=\"lead\" id=\"description\">");
    out_hd(pg, s.description);
    out_s(pg, "</p>\n<section id=\"overview\" class=\"card\">\n");
    service_facts(pg, &s, m);
    out_s(pg, "</section>\n<section id=\"manifest\">\n<h2>Manifest</h2>\n<pre class=\"json\">");
    if (m)
        out_json_pretty(pg, m, 0);
    else
        out_h(pg, s.manifest);
    out_s(pg, "</pre>\n</section>\n<section id=\"audit\">\n<h2>History</h2>\n");
    rc = audit_table(pg, "service", s.name, "service-audit");
    if (rc)
        goto out;
    out_s(pg, "</section>\n");
    page_end(pg);
    rc = pg->rc;
out:
    if (m)
        json_decref(m);
    catalog_service_release(&s);
    return rc;
}

/* ---- teams and audit pages ------------------------------------------------------------------- */

static int team_row(void *arg, const struct catalog_team *t)
{
    struct page *pg = arg;
    out_s(pg, "<tr class=\"team-row\"><td><a href=\"/catalog?team=");
    out_u(pg, t->name);
    out_s(pg, "\">");
    out_h(pg, t->name);
    out_s(pg, "</a></td><td>");
    out_hd(pg, t->display_name);
    out_s(pg, "</td><td>");
    out_hd(pg, t->description);
    out_f(pg, "</td><td class=\"num\">%lld</td><td class=\"num\">%lld</td></tr>\n",
          (long long)t->services, (long long)t->members);
    return pg->rc;
}

static int teams_page(struct page *pg)
{
    pg->nav = "teams";
    page_begin(pg, 200, "Teams");
    out_s(pg, "<h1>Teams</h1>\n<p class=\"lead\">Who owns what.</p>\n"
              "<table id=\"teams\">\n<thead><tr><th>Team</th><th>Name</th><th>Description</th>"
              "<th class=\"num\">Services</th><th class=\"num\">Members</th></tr></thead>\n"
              "<tbody>\n");
    int rc = catalog_team_list(pg->p->cat, team_row, pg, &pg->err);
    if (rc)
        return rc;
    out_s(pg, "</tbody>\n</table>\n");
    page_end(pg);
    return pg->rc;
}

static int audit_page(struct page *pg)
{
    pg->nav = "audit";
    page_begin(pg, 200, "Audit log");
    out_f(pg, "<h1>Audit log</h1>\n<p class=\"lead\">The last %d changes, newest first. The log "
              "is append-only.</p>\n<section id=\"audit\">\n", AUDIT_ROWS);
    int rc = audit_table(pg, NULL, NULL, "audit-log");
    if (rc)
        return rc;
    out_s(pg, "</section>\n");
    page_end(pg);
    return pg->rc;
}

/* ---- routing --------------------------------------------------------------------------------- */

static int serve_css(struct page *pg)
{
    pg->resp->status = 200;
    pg->resp->content_type = CSS_TYPE;
    out_s(pg, pave_css);
    return pg->rc;
}

/* Resolves the session cookie, if any. Only store failures are errors. */
static int resolve_session(struct page *pg)
{
    const char *cookie = pg->req->session;
    if (!cookie || !*cookie)
        return 0;
    int rc = auth_session_verify(pg->p->st, pg->p->cat, cookie, &pg->who, pg->csrf, &pg->err);
    if (rc == CORE_E_AUTH) {
        pg->stale_cookie = true;
        core_err_clear(&pg->err);
        return 0;
    }
    if (rc)
        return rc;
    pg->signed_in = true;
    return 0;
}

static int route(struct page *pg)
{
    const struct portal_request *req = pg->req;
    const char *path = req->path;
    int rc;

    if (!req->method || !path || path[0] != '/' || !value_ok(path))
        return bad_request(pg, "The request could not be read.");
    pg->is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    pg->is_post = strcmp(req->method, "POST") == 0;

    if (strcmp(path, "/static/pave.css") == 0)
        return pg->is_get ? serve_css(pg) : method_not_allowed(pg);

    if ((rc = resolve_session(pg)))
        return rc;
    if (!query_ok(req->query))
        return bad_request(pg, "The query string is not valid URL encoding.");
    if (pg->is_post) {
        rc = read_form(pg);
        if (rc == CORE_E_TOO_BIG)
            return error_page(pg, 413, "Request too large", "The form is too large.");
        if (rc)
            return rc;
    }

    if (strcmp(path, "/login") == 0) {
        if (pg->is_get) {
            if (pg->signed_in)
                return redirect(pg, "/catalog");
            return login_page(pg, 200, NULL);
        }
        return pg->is_post ? login_post(pg) : method_not_allowed(pg);
    }
    if (strcmp(path, "/") == 0)
        return pg->is_get ? redirect(pg, "/catalog") : method_not_allowed(pg);

    bool known = strcmp(path, "/catalog") == 0 || strcmp(path, "/teams") == 0 ||
                 strcmp(path, "/audit") == 0 || strcmp(path, "/logout") == 0 ||
                 strncmp(path, "/services/", 10) == 0;
    if (!known)
        return not_found(pg);

    if (!pg->signed_in) {
        if (pg->stale_cookie)
            clear_cookie(pg);
        if (pg->is_get)
            return redirect(pg, "/login");
        return error_page(pg, 401, "Sign in required",
                          "Your session has ended. Sign in again and retry.");
    }
    if (pg->is_post && !csrf_ok(pg)) {
        log_warn("portal", "form refused: bad csrf token", LOG_STR("path", path),
                 LOG_STR("user", pg->who.user));
        return error_page(pg, 403, "Form expired",
                          "This form could not be verified. Reload the page and try again.");
    }

    if (strcmp(path, "/logout") == 0)
        return pg->is_post ? logout_post(pg) : method_not_allowed(pg);
    if (!pg->is_get)
        return method_not_allowed(pg);
    if (strcmp(path, "/catalog") == 0)
        return catalog_page(pg);
    if (strcmp(path, "/teams") == 0)
        return teams_page(pg);
    if (strcmp(path, "/audit") == 0)
        return audit_page(pg);
    return service_page(pg, path + 10);
}

/* ---- public API ------------------------------------------------------------------------------ */

struct portal *portal_new(struct store *st, struct catalog *cat, struct core_err *err)
{
    if (!st || !cat) {
        core_err_set(err, CORE_E_INVAL, "portal needs a store and a catalog");
        return NULL;
    }
    struct portal *p = core_calloc(1, sizeof(*p));
    if (!p) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    p->st = st;
    p->cat = cat;
    return p;
}

void portal_free(struct portal *p)
{
    core_free(p);
}

int portal_handle(struct portal *p, const struct portal_request *req,
                  struct portal_response *resp)
{
    struct page pg = {.p = p, .req = req, .resp = resp, .b = &resp->body};
    resp->status = 500;
    resp->content_type = HTML_TYPE;
    resp->location[0] = 0;
    resp->set_cookie[0] = 0;
    core_buf_clear(&resp->body);

    int rc = route(&pg);
    if (rc) {
        log_error("portal", "page failed", LOG_STR("path", req->path ? req->path : ""),
                  LOG_STR("error", pg.err.code ? pg.err.msg : core_errc_name(rc)));
        resp->set_cookie[0] = 0;
        rc = error_page(&pg, 500, "Something went wrong",
                        "The page could not be built. Try again; if it keeps failing, the "
                        "server log has the details.");
        if (rc) {
            core_buf_clear(&resp->body);
            resp->status = 500;
            rc = CORE_E_NOMEM;
        }
    }
    core_free(pg.form);
    auth_principal_release(&pg.who);
    explicit_bzero(pg.csrf, sizeof(pg.csrf));
    return rc;
}
