/*
 * The portal: server-rendered HTML pages over the catalog, the audit log and auth sessions.
 *
 * Every request gets a `struct page` that holds the response being built and a sticky error:
 * the out_*() writers do nothing once an append has failed, so page code reads top to bottom
 * and checks the error once at the end. Any failure while building a page throws the partial
 * body away and renders a plain error page instead. Every dynamic string goes through out_h()
 * (HTML escaping) or out_u() (URL encoding, whose output is safe inside an attribute).
 *
 * Run pages read runs and steps from the store (ci_run_*) and the log file the runner writes;
 * a run that is still going makes its page reload itself every few seconds (no JavaScript: the
 * CSP forbids inline scripts). Run logs are untrusted bytes: out_log() keeps only the SGR
 * colour escapes (as spans), drops every other control sequence and escapes everything else.
 */
#include "portal/portal.h"
#include "portal/portal_int.h"

#include <errno.h>
#include <fcntl.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "artifact/artifact.h"
#include "auth/auth.h"
#include "catalog/catalog.h"
#include "ci/ci.h"
#include "deploy/deploy.h"
#include "pki/pki.h"
#include "policy/policy.h"
#include "store/store.h"
#include "telemetry/telemetry.h"
#include "template/template.h"

#define CSS_TYPE "text/css"
#define PAGE_SIZE 50
#define FORM_MAX (16 * 1024)  /* largest form body we read */
#define JSON_DEPTH_MAX 32     /* pretty-printer nesting limit */
#define DIGEST_SHOWN 12       /* audit digests are shortened to this many characters */
#define AUDIT_ROWS 100
#define RUNS_SHOWN 10                   /* runs on a service page */
#define RUNS_PAGE 50                    /* runs on a page of /services/NAME/runs */
#define COMMIT_SHOWN 12                 /* commits are shortened to this many characters */
#define LOG_TAIL (256 * 1024)           /* the run page shows at most this much of a log */
#define REFRESH_SECS 2                  /* reload period of a run page while the run goes on */
#define CREATE_ERRORS_MAX (64 * 1024)   /* messages shown above the create form */
#define OCTET_TYPE "application/gzip"
#define DEPLOYS_SHOWN 20                /* deploy history rows on a service page */
#define ROLLBACK_SCAN 200               /* deployments searched for the rollback target */

#define COOKIE_ATTRS "Path=/; HttpOnly; SameSite=Strict"

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
    ".state{display:inline-block;padding:0 .55rem;border-radius:999px;font-size:.8rem;"
    "font-weight:600;background:#eef1f5;color:var(--muted);vertical-align:middle}\n"
    ".state-succeeded{background:#e3f4e8;color:#1b6b34}.state-failed{background:#fdecea;"
    "color:#9c2118}.state-running{background:#e8effc;color:#1d3f8f}.state-queued,"
    ".state-pending{background:#fff3dc;color:#8a5a00}\n"
    ".state-progressing{background:#e8effc;color:#1d3f8f}\n"
    "h1 .state,h3 .state{font-size:.9rem}\n"
    "h3{font-size:1.05rem;margin:0 0 .6rem}\n"
    ".deploy-env{margin:0 0 1rem}\n"
    ".deploy-env table{margin:.8rem 0}\n"
    ".actions{display:flex;gap:.75rem;align-items:center;margin:.6rem 0 0}\n"
    ".button{display:inline-block}.button:hover{text-decoration:none;filter:brightness(1.08)}\n"
    ".button.secondary{background:#fff;color:var(--accent)}\n"
    ".ok{color:#1b6b34;font-weight:600}.bad{color:var(--bad);font-weight:600}\n"
    ".note{background:#fff8e6;border:1px solid #f0dca8;border-radius:6px;padding:.55rem .8rem;"
    "margin:.75rem 0}\n"
    ".more{margin:.6rem 0 0}\n"
    "pre.log{background:#0f1722;color:#d6deeb;padding:1rem 1.25rem;border-radius:10px;"
    "overflow:auto;line-height:1.4;margin:0;white-space:pre-wrap;overflow-wrap:anywhere;"
    "max-height:75vh}\n"
    ".ansi-b{font-weight:700}\n"
    ".service-nav{margin:.2rem 0 1rem}\n"
    "table.logs{font-size:.9rem}\n"
    "table.logs td{padding:.3rem .6rem}\n"
    ".log-time{white-space:nowrap;font-family:ui-monospace,Menlo,Consolas,monospace}\n"
    ".log-body{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,Menlo,"
    "Consolas,monospace}\n"
    ".log-attrs{font-size:.85rem;color:var(--muted);overflow-wrap:anywhere}\n"
    ".attr{margin-right:.4rem}.attr .k{color:var(--fg)}\n"
    "tr.log-new{background:#fffbe6}\n"
    ".sev{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.78rem;"
    "font-weight:600;background:#eef1f5;color:var(--muted)}\n"
    ".sev-info{background:#e8effc;color:#1d3f8f}.sev-warn{background:#fff3dc;color:#8a5a00}"
    ".sev-error{background:#fdecea;color:#9c2118}.sev-fatal{background:#9c2118;color:#fff}\n"
    ".ansi-30{color:#7f8c9d}.ansi-31{color:#ff6b6b}.ansi-32{color:#8bd17c}.ansi-33{color:#f7d774}"
    ".ansi-34{color:#82aaff}.ansi-35{color:#c792ea}.ansi-36{color:#89ddff}.ansi-37{color:#d6deeb}\n"
    ".ansi-90{color:#a3adba}.ansi-91{color:#ff8f8f}.ansi-92{color:#b4f0a4}.ansi-93{color:#ffe9a3}"
    ".ansi-94{color:#a9c4ff}.ansi-95{color:#e0b8ff}.ansi-96{color:#b2ecff}.ansi-97{color:#fff}\n"
    ".form{display:flex;flex-direction:column;gap:.45rem;max-width:42rem}\n"
    ".form label{font-weight:600;margin-top:.4rem}\n"
    ".form .hint{color:var(--muted);font-size:.85rem;margin:0}\n"
    ".form button{align-self:flex-start;margin-top:.8rem}\n"
    ".alert ul{margin:.3rem 0 0;padding-left:1.2rem}\n"
    ".outcome{display:inline-block;padding:0 .55rem;border-radius:999px;font-size:.8rem;"
    "font-weight:600;background:#eef1f5;color:var(--muted)}\n"
    ".outcome-pass{background:#e3f4e8;color:#1b6b34}.outcome-fail{background:#fdecea;"
    "color:#9c2118}.outcome-excepted{background:#fff3dc;color:#8a5a00}\n"
    ".totals{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}\n"
    ".totals .card{padding:.8rem 1.2rem;min-width:8rem}\n"
    ".totals .big{font-size:1.6rem;font-weight:700;display:block}\n"
    ".tabs{display:flex;gap:.25rem;margin:1rem 0 .5rem;border-bottom:1px solid var(--line)}\n"
    ".tabs a{padding:.35rem .8rem;border-radius:6px 6px 0 0}\n"
    ".tabs a[aria-current=page]{background:var(--card);border:1px solid var(--line);"
    "border-bottom-color:var(--card);margin-bottom:-1px;color:var(--fg)}\n"
    "svg.spark{background:var(--card);border:1px solid var(--line);border-radius:6px}\n"
    "svg.spark polyline{fill:none;stroke:var(--accent);stroke-width:2}\n"
    ".rule-card{margin:0 0 1rem}\n"
    "textarea{font:inherit;padding:.45rem .6rem;border:1px solid #c3ccd7;border-radius:6px;"
    "min-height:6rem}\n"
    ".cert-valid{background:#e3f4e8;color:#1b6b34}.cert-expired{background:#eef1f5;"
    "color:var(--muted)}.cert-revoked{background:#fdecea;color:#9c2118}"
    ".cert-soon{background:#fff3dc;color:#8a5a00}\n"
    "tr.cert-expiring{background:#fffbe6}\n"
    ".cert-subject{overflow-wrap:anywhere}\n"
    "@media (max-width:700px){.facts{grid-template-columns:1fr}.top{flex-wrap:wrap}}\n";

/* "2024-05-01T12:34:56.789Z" as "2024-05-01 12:34:56 UTC" inside a <time> element. */
void portal_out_time(struct page *pg, const char *ts)
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

/* <a href="PREFIX<value, URL-encoded>">value</a>: the link every name in the portal gets. */
static void out_link(struct page *pg, const char *prefix, const char *value)
{
    out_s(pg, "<a href=\"");
    out_s(pg, prefix);
    out_u(pg, value);
    out_s(pg, "\">");
    out_h(pg, value);
    out_s(pg, "</a>");
}

/* A link to the service's logs page (env NULL or "": every environment), with class cls. */
static void logs_link(struct page *pg, const char *service, const char *env, const char *cls)
{
    out_s(pg, "<a class=\"");
    out_s(pg, cls);
    out_s(pg, "\" href=\"/services/");
    out_u(pg, service);
    out_s(pg, "/logs");
    if (env && *env) {
        out_s(pg, "?env=");
        out_u(pg, env);
    }
    out_s(pg, "\">Logs</a>");
}

/* value cut to `keep` characters in a <code> element (class `cls`, may be NULL), the full value
 * in the title; a dash when empty. */
static void out_short(struct page *pg, const char *value, int keep, const char *cls)
{
    if (!value || !*value) {
        out_hd(pg, NULL);
        return;
    }
    char cut[80];
    snprintf(cut, sizeof(cut), "%.*s", keep, value);
    out_s(pg, "<code");
    if (cls) {
        out_s(pg, " class=\"");
        out_s(pg, cls);
        out_s(pg, "\"");
    }
    out_s(pg, " title=\"");
    out_h(pg, value);
    out_s(pg, "\">");
    out_h(pg, cut);
    out_s(pg, "</code>");
}

/* A SHA-256 digest shortened to DIGEST_SHOWN characters, the full value in the title. */
static void out_digest(struct page *pg, const char *d)
{
    out_short(pg, d, DIGEST_SHOWN, "digest");
}

/* ---- page frame, redirects and error pages ------------------------------------------------- */

void portal_nav_item(struct page *pg, const char *key, const char *href, const char *label)
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

void portal_page_begin(struct page *pg, int status, const char *title)
{
    pg->resp->status = status;
    pg->resp->content_type = HTML_TYPE;
    out_s(pg, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
              "<title>");
    out_h(pg, title);
    out_s(pg, " &middot; Paved</title>\n<link rel=\"stylesheet\" href=\"/static/pave.css\">\n");
    if (pg->refresh > 0 && pg->refresh_url) {
        out_f(pg, "<meta http-equiv=\"refresh\" content=\"%d; url=", pg->refresh);
        out_s(pg, pg->refresh_url);
        out_s(pg, "\">\n");
    } else if (pg->refresh > 0) {
        out_f(pg, "<meta http-equiv=\"refresh\" content=\"%d\">\n", pg->refresh);
    }
    out_s(pg, "</head>\n<body>\n<header class=\"top\">\n<a class=\"brand\" href=\"/catalog\">"
              "Paved</a>\n");
    if (pg->signed_in) {
        out_s(pg, "<nav aria-label=\"Main\">");
        portal_nav_item(pg, "catalog", "/catalog", "Catalog");
        portal_nav_item(pg, "create", "/create", "Create a service");
        portal_nav_item(pg, "teams", "/teams", "Teams");
        portal_nav_item(pg, "compliance", "/compliance", "Compliance");
        portal_nav_item(pg, "ca", "/ca", "Certificates");
        portal_nav_item(pg, "cost", "/cost", "Cost");
        portal_nav_item(pg, "security", "/security", "Security");
        portal_nav_item(pg, "audit", "/audit", "Audit");
        out_s(pg, "</nav>\n<div class=\"user\"><span id=\"user\">");
        out_h(pg, pg->who.user);
        out_s(pg, "</span><form id=\"logout\" method=\"post\" action=\"/logout\">"
                  "<input type=\"hidden\" name=\"csrf\" value=\"");
        out_h(pg, pg->csrf);
        out_s(pg, "\"><button type=\"submit\">Sign out</button></form></div>\n");
    }
    out_s(pg, "</header>\n<main>\n");
}

void portal_page_end(struct page *pg)
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

int portal_error_page(struct page *pg, int status, const char *title, const char *msg)
{
    page_reset(pg);
    pg->refresh = 0;
    portal_page_begin(pg, status, title);
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
    portal_page_end(pg);
    return pg->rc;
}

int portal_bad_request(struct page *pg, const char *msg)
{
    return portal_error_page(pg, 400, "Bad request", msg);
}

int portal_not_found(struct page *pg)
{
    return portal_error_page(pg, 404, "Page not found",
                      "There is nothing at this address. Check the link or start from the "
                      "catalog.");
}

int portal_method_not_allowed(struct page *pg)
{
    return portal_error_page(pg, 405, "Method not allowed", "This page does not accept that request.");
}

/* 303 See Other to a fixed, internal location (never built from request data). */
int portal_redirect(struct page *pg, const char *to)
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
int portal_form_value(const char *form, const char *key, char *out, size_t outsz)
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
    if (!pg->signed_in || !pg->form || portal_form_value(pg->form, "csrf", sent, sizeof(sent)))
        return false;
    return sent[0] && pg->csrf[0] && core_str_eq_ct(sent, pg->csrf);
}

/* ---- sign-in and sign-out ------------------------------------------------------------------ */

static int login_page(struct page *pg, int status, const char *alert)
{
    page_reset(pg);
    portal_page_begin(pg, status, "Sign in");
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
    portal_page_end(pg);
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
    rc = portal_redirect(pg, "/catalog");
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
    return portal_redirect(pg, "/login");
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

    if (portal_form_value(pg->req->query, "q", q, sizeof(q)) ||
        portal_form_value(pg->req->query, "team", team, sizeof(team)) ||
        portal_form_value(pg->req->query, "page", pagestr, sizeof(pagestr))) {
        rc = portal_bad_request(pg, "The search parameters could not be read.");
        goto out;
    }
    long page = 1;
    if (pagestr[0]) {
        char *end = NULL;
        page = strtol(pagestr, &end, 10);
        if (!end || *end || page < 1 || page > 1000000) {
            rc = portal_bad_request(pg, "The page number must be a positive whole number.");
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
        rc = portal_bad_request(pg, pg->err.msg);
        goto out;
    }
    if (rc)
        goto out;

    pg->nav = "catalog";
    portal_page_begin(pg, 200, "Catalog");
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
        portal_out_time(pg, s->updated_at);
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
    portal_page_end(pg);
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
    out_link(pg, "/catalog?team=", s->team);
    out_s(pg, "</dd>\n");

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
    portal_out_time(pg, s->updated_at);
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
    portal_out_time(pg, ev->ts);
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
            out_link(pg, "/services/", ev->object);
        } else if (ev->kind && ev->object && strcmp(ev->kind, "team") == 0) {
            out_link(pg, "/catalog?team=", ev->object);
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

int portal_audit_table(struct page *pg, const char *kind, const char *object, const char *id)
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

/* ---- runs: shared pieces ------------------------------------------------------------------ */

/* A run's state as a badge; only known states get a colour class. id may be NULL. */
static void state_badge(struct page *pg, const char *state, const char *id)
{
    static const char *const known[] = {"queued",  "running",     "succeeded",
                                        "failed",  "cancelled",   "pending",
                                        "skipped", "progressing", "superseded"};
    const char *cls = NULL;
    for (size_t i = 0; state && i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(state, known[i]) == 0)
            cls = known[i];
    out_s(pg, "<span class=\"state");
    if (cls) {
        out_s(pg, " state-");
        out_s(pg, cls);
    }
    out_s(pg, "\"");
    if (id) {
        out_s(pg, " id=\"");
        out_s(pg, id);
        out_s(pg, "\"");
    }
    out_s(pg, ">");
    out_hd(pg, state);
    out_s(pg, "</span>");
}

/* A commit shortened to COMMIT_SHOWN characters, the full value in the title. */
static void out_commit(struct page *pg, const char *c)
{
    out_short(pg, c, COMMIT_SHOWN, NULL);
}

/* A byte count as "512 B", "3.4 KiB", "12.0 MiB". */
static void out_size(struct page *pg, int64_t n)
{
    if (n < 1024)
        out_f(pg, "%lld B", (long long)n);
    else if (n < 1024 * 1024)
        out_f(pg, "%.1f KiB", (double)n / 1024.0);
    else
        out_f(pg, "%.1f MiB", (double)n / (1024.0 * 1024.0));
}

static void out_duration(struct page *pg, int64_t ms)
{
    if (ms < 1000)
        out_f(pg, "%lld ms", (long long)ms);
    else if (ms < 60 * 1000)
        out_f(pg, "%.1f s", (double)ms / 1000.0);
    else
        out_f(pg, "%lldm %llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
}

/* Parses a positive decimal id (no sign, no leading zeros beyond "0", at most 18 digits). */
bool portal_parse_id(const char *s, size_t len, int64_t *id)
{
    if (len == 0 || len > 18 || s[0] == '0')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *id = v;
    return true;
}

/* A heap copy of one run (ci_run_get hands out borrowed rows). */
struct run_copy {
    int rc;
    int64_t id;
    int64_t artifact_size;
    int64_t retry_of;
    char *service, *team, *state, *trigger, *branch, *commit, *actor;
    char *queued_at, *started_at, *finished_at, *error, *artifact_digest, *artifact_path;
};

static char *dup_opt(struct run_copy *c, const char *s)
{
    if (!s)
        return NULL;
    char *d = core_strdup(s);
    if (!d)
        c->rc = CORE_E_NOMEM;
    return d;
}

static int run_copy_fn(void *arg, const struct ci_run *run)
{
    struct run_copy *c = arg;
    c->id = run->id;
    c->artifact_size = run->artifact_size;
    c->retry_of = run->retry_of;
    c->service = dup_opt(c, run->service);
    c->team = dup_opt(c, run->team);
    c->state = dup_opt(c, run->state);
    c->trigger = dup_opt(c, run->trigger);
    c->branch = dup_opt(c, run->branch);
    c->commit = dup_opt(c, run->commit);
    c->actor = dup_opt(c, run->actor);
    c->queued_at = dup_opt(c, run->queued_at);
    c->started_at = dup_opt(c, run->started_at);
    c->finished_at = dup_opt(c, run->finished_at);
    c->error = dup_opt(c, run->error);
    c->artifact_digest = dup_opt(c, run->artifact_digest);
    c->artifact_path = dup_opt(c, run->artifact_path);
    return 0;
}

static void run_copy_release(struct run_copy *c)
{
    char **fields[] = {&c->service,     &c->team,      &c->state,      &c->trigger,
                       &c->branch,      &c->commit,    &c->actor,      &c->queued_at,
                       &c->started_at,  &c->finished_at, &c->error,    &c->artifact_digest,
                       &c->artifact_path};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        core_free(*fields[i]);
        *fields[i] = NULL;
    }
}

/* Loads run id into *c. CORE_E_NOTFOUND when there is no such run. */
static int run_load(struct page *pg, int64_t id, struct run_copy *c)
{
    int rc = ci_run_get(pg->p->st, id, run_copy_fn, c, &pg->err);
    if (!rc && c->rc)
        rc = core_err_set(&pg->err, c->rc, "out of memory");
    return rc;
}

/* ---- runs tables ---------------------------------------------------------------------------- */

struct run_rows {
    struct page *pg;
    bool with_service;
    size_t n;
    int64_t last_id;
};

static int run_row(void *arg, const struct ci_run *run)
{
    struct run_rows *a = arg;
    struct page *pg = a->pg;
    a->n++;
    a->last_id = run->id;
    out_f(pg, "<tr class=\"run-row\"><td><a class=\"run-link\" href=\"/runs/%lld\">#%lld</a></td>",
          (long long)run->id, (long long)run->id);
    if (a->with_service) {
        out_s(pg, "<td><a href=\"/services/");
        out_u(pg, run->service);
        out_s(pg, "\">");
        out_h(pg, run->service);
        out_s(pg, "</a></td>");
    }
    out_s(pg, "<td>");
    state_badge(pg, run->state, NULL);
    out_s(pg, "</td><td>");
    out_hd(pg, run->trigger);
    out_s(pg, "</td><td>");
    out_hd(pg, run->branch);
    out_s(pg, "</td><td>");
    out_commit(pg, run->commit);
    out_s(pg, "</td><td>");
    portal_out_time(pg, run->queued_at);
    out_s(pg, "</td><td>");
    out_digest(pg, run->artifact_digest);
    out_s(pg, "</td></tr>\n");
    return pg->rc;
}

/* A table of runs of one service, newest first, older than before_id (0: from the newest). */
static int runs_table(struct page *pg, const char *service, int64_t before_id, int limit,
                      const char *id, struct run_rows *rows)
{
    *rows = (struct run_rows){pg, false, 0, 0};
    out_s(pg, "<table id=\"");
    out_s(pg, id);
    out_s(pg, "\">\n<thead><tr><th>Run</th><th>State</th><th>Trigger</th><th>Branch</th>"
              "<th>Commit</th><th>Queued</th><th>Artifact</th></tr></thead>\n<tbody>\n");
    int rc = ci_run_list(pg->p->st, service, before_id, limit, run_row, rows, &pg->err);
    if (rc)
        return rc;
    if (rows->n == 0)
        out_s(pg, "<tr><td colspan=\"7\" class=\"empty\">No runs yet.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n");
    return pg->rc;
}

static void pipelines_off_note(struct page *pg)
{
    out_s(pg, "<p class=\"note\" id=\"pipelines-off\">Pipelines are off on this server: runs are "
              "not executed and their logs are not available here.</p>\n");
}

/* The service page's "Runs" and "Source" sections. */
static int service_runs_section(struct page *pg, const char *name)
{
    struct run_rows rows;
    out_s(pg, "<section id=\"runs\">\n<h2>Runs</h2>\n");
    if (!pg->p->runner)
        pipelines_off_note(pg);
    int rc = runs_table(pg, name, 0, RUNS_SHOWN, "service-runs", &rows);
    if (rc)
        return rc;
    out_s(pg, "<p class=\"more\"><a id=\"all-runs\" href=\"/services/");
    out_u(pg, name);
    out_s(pg, "/runs\">All runs of ");
    out_h(pg, name);
    out_s(pg, " &rarr;</a></p>\n</section>\n<section id=\"source\">\n<h2>Source</h2>\n"
              "<p>The service's git repository is <code id=\"repo-path\">/git/");
    out_h(pg, name);
    out_s(pg, ".git</code> on this server. Clone it with <code>git clone http://pave:TOKEN@HOST"
              "/git/");
    out_h(pg, name);
    out_s(pg, ".git</code>, where HOST is the address you reach this portal at and TOKEN is one "
              "of your API tokens (<code>pave token create</code>).</p>\n<p class=\"muted\">"
              "Pushing to a branch the pipeline watches (<code>main</code> by default) queues a "
              "run.</p>\n</section>\n");
    return pg->rc;
}

/* ---- the service page's "Artifacts" section: images in repository <service> ---------------- */

#define IMAGES_SHOWN 10

struct image_rows_html {
    struct page *pg;
    size_t n;
};

static int image_row_html(void *arg, const struct artifact_image *img)
{
    struct image_rows_html *a = arg;
    struct page *pg = a->pg;
    static const char *const sig_class[] = {"state-pending", "state-succeeded", "state-failed"};
    a->n++;
    out_s(pg, "<tr class=\"image-row\"><td>");
    out_hd(pg, img->tags && img->tags[0] ? img->tags : NULL);
    out_s(pg, "</td><td><code class=\"digest\" title=\"");
    out_h(pg, img->digest);
    out_s(pg, "\">");
    out_f(pg, "%.19s", img->digest);
    out_s(pg, "</code></td><td>");
    out_size(pg, img->size);
    out_s(pg, "</td><td>");
    portal_out_time(pg, img->created_at);
    out_f(pg, "</td><td><span class=\"state %s sig-%s\"", sig_class[img->v->status],
          artifact_sig_status_name(img->v->status));
    if (img->v->reason[0]) {
        out_s(pg, " title=\"");
        out_h(pg, img->v->reason);
        out_s(pg, "\"");
    }
    out_f(pg, ">%s</span></td><td>%s</td></tr>\n", artifact_sig_status_name(img->v->status),
          img->v->has_provenance ? "present" : "none");
    return pg->rc;
}

/* Never fails the page: a registry problem becomes a note (and a server log line). */
static void service_artifacts_section(struct page *pg, const char *name)
{
    out_s(pg, "<section id=\"artifacts\">\n<h2>Artifacts</h2>\n");
    if (!pg->p->registry || !pg->p->signer) {
        out_s(pg, "<p class=\"note\" id=\"registry-off\">The registry is off on this "
                  "server.</p>\n</section>\n");
        return;
    }
    size_t mark = pg->b->len;
    out_s(pg, "<table id=\"service-images\">\n<thead><tr><th>Tags</th><th>Digest</th>"
              "<th>Size</th><th>Created</th><th>Signature</th><th>Provenance</th></tr></thead>\n"
              "<tbody>\n");
    struct image_rows_html rows = {pg, 0};
    struct core_err err = {0};
    int rc = artifact_list(pg->p->registry, pg->p->signer, name, IMAGES_SHOWN, image_row_html,
                           &rows, &err);
    if (rc && !pg->rc) {
        log_warn("portal", "cannot list images", LOG_STR("service", name),
                 LOG_STR("error", err.msg));
        pg->b->len = mark; /* drop the partial table */
        pg->b->data[mark] = 0;
        out_s(pg, "<p class=\"note\">The images of this service cannot be listed right now."
                  "</p>\n</section>\n");
        return;
    }
    if (rows.n == 0)
        out_s(pg, "<tr><td colspan=\"6\" class=\"empty\">No images yet: a successful run "
                  "publishes one.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n<p class=\"muted\">Pull with <code>HOST/");
    out_h(pg, name);
    out_s(pg, ":TAG</code>; check with <code>pave artifacts verify ");
    out_h(pg, name);
    out_s(pg, " TAG</code>.</p>\n</section>\n");
}

/* ---- the service page's "Deployments" section and the rollback confirmation ----------------- */

/* A string member, or NULL when absent or not a string. */
const char *portal_jstr(const json_t *obj, const char *key)
{
    const json_t *v = jget(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An integer member; false when absent or not an integer. */
bool portal_jint(const json_t *obj, const char *key, int64_t *out)
{
    const json_t *v = jget(obj, key);
    if (!json_is_integer(v))
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* "#12 rollback of #9": a deployment's number and kind. */
static void out_deploy_ref(struct page *pg, const json_t *d)
{
    int64_t id = 0, of = 0;
    if (portal_jint(d, "id", &id))
        out_f(pg, "#%lld", (long long)id);
    const char *kind = portal_jstr(d, "kind");
    if (kind && *kind) {
        out_s(pg, " ");
        out_h(pg, kind);
    }
    if (portal_jint(d, "rollback_of", &of) && of > 0)
        out_f(pg, " of #%lld", (long long)of);
}

/* The facts of one deployment (the current one of an environment, or a rollback target) as
 * <dt>/<dd> pairs; the <dd> elements get class "deploy-<field>". */
static void deployment_facts(struct page *pg, const json_t *d)
{
    out_s(pg, "<dt>Deployment</dt><dd class=\"deploy-id\">");
    out_deploy_ref(pg, d);
    out_s(pg, "</dd>\n<dt>Image</dt><dd class=\"deploy-image\">");
    const char *image = portal_jstr(d, "image");
    if (image && *image) {
        out_s(pg, "<code>");
        out_h(pg, image);
        out_s(pg, "</code>");
    } else {
        out_hd(pg, NULL);
    }
    out_s(pg, "</dd>\n<dt>Digest</dt><dd class=\"deploy-digest\">");
    out_short(pg, portal_jstr(d, "digest"), 19, "digest");
    out_s(pg, "</dd>\n<dt>Revision</dt><dd class=\"deploy-revision\">");
    out_commit(pg, portal_jstr(d, "revision"));
    out_s(pg, "</dd>\n<dt>State</dt><dd class=\"deploy-state\">");
    state_badge(pg, portal_jstr(d, "state"), NULL);
    out_s(pg, "</dd>\n<dt>Message</dt><dd class=\"deploy-message\">");
    out_hd(pg, portal_jstr(d, "message"));
    out_s(pg, "</dd>\n<dt>By</dt><dd class=\"deploy-actor\">");
    out_hd(pg, portal_jstr(d, "actor"));
    out_s(pg, "</dd>\n<dt>Created</dt><dd>");
    portal_out_time(pg, portal_jstr(d, "created_at"));
    out_s(pg, "</dd>\n");
}

static void replica_row(struct page *pg, const json_t *r)
{
    int64_t port = 0, restarts = 0;
    out_s(pg, "<tr class=\"replica-row\"><td class=\"replica-name\"><code>");
    out_h(pg, portal_jstr(r, "name"));
    out_s(pg, "</code></td><td>");
    out_commit(pg, portal_jstr(r, "revision"));
    out_s(pg, "</td><td class=\"num\">");
    if (portal_jint(r, "port", &port) && port > 0)
        out_f(pg, "%lld", (long long)port);
    else
        out_hd(pg, NULL);
    out_s(pg, "</td><td class=\"replica-ready\">");
    if (json_is_true(jget(r, "ready")))
        out_s(pg, "<span class=\"ok\">yes</span>");
    else
        out_s(pg, "<span class=\"bad\">no</span>");
    if (json_is_true(jget(r, "draining")))
        out_s(pg, " <span class=\"muted\">(draining)</span>");
    out_s(pg, "</td><td class=\"replica-state\">");
    state_badge(pg, portal_jstr(r, "state"), NULL);
    out_s(pg, "</td><td class=\"num replica-restarts\">");
    if (portal_jint(r, "restarts", &restarts))
        out_f(pg, "%lld", (long long)restarts);
    else
        out_hd(pg, NULL);
    out_s(pg, "</td><td class=\"replica-isolation\">");
    out_hd(pg, portal_jstr(r, "isolation"));
    out_s(pg, "</td><td class=\"replica-error\">");
    out_hd(pg, portal_jstr(r, "last_error"));
    out_s(pg, "</td></tr>\n");
}

/* A link only for http(s) URLs, so a hostile value can never become a javascript: link. */
static void out_url(struct page *pg, const char *url)
{
    if (url && (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)) {
        out_s(pg, "<a href=\"");
        out_h(pg, url);
        out_s(pg, "\">");
        out_h(pg, url);
        out_s(pg, "</a>");
    } else if (url && *url) {
        out_s(pg, "<code>");
        out_h(pg, url);
        out_s(pg, "</code>");
    } else {
        out_hd(pg, NULL);
    }
}

/* One environment of deploy_status(): URLs, the current deployment, the replicas, the
 * rollback button. */
static void deploy_env_card(struct page *pg, const char *service, const json_t *e)
{
    const char *env = portal_jstr(e, "env");
    const json_t *desired = jget(e, "desired");
    const json_t *stable = jget(e, "stable");
    const json_t *reps = jget(e, "replicas");
    int64_t wanted = 0;
    size_t ready = 0, idx;
    json_t *r;
    portal_jint(e, "replicas_wanted", &wanted);
    if (json_is_array(reps))
        json_array_foreach ((json_t *)reps, idx, r)
            if (json_is_true(json_object_get(r, "ready")) &&
                !json_is_true(json_object_get(r, "draining")))
                ready++;

    out_s(pg, "<article class=\"card deploy-env\" data-env=\"");
    out_h(pg, env);
    out_s(pg, "\">\n<h3>");
    out_hd(pg, env);
    out_s(pg, " ");
    state_badge(pg, portal_jstr(desired, "state"), NULL);
    out_s(pg, "</h3>\n<dl class=\"facts\">\n<dt>URL</dt><dd class=\"deploy-url\">");
    out_url(pg, portal_jstr(e, "url"));
    out_s(pg, "</dd>\n<dt>Internal URL</dt><dd class=\"deploy-internal-url\">");
    out_url(pg, portal_jstr(e, "internal_url"));
    out_f(pg, "</dd>\n<dt>Replicas</dt><dd class=\"deploy-ready\">%zu of %lld ready</dd>\n", ready,
          (long long)wanted);
    if (json_is_object(desired))
        deployment_facts(pg, desired);
    else
        out_s(pg, "<dt>Deployment</dt><dd class=\"deploy-id\"><span class=\"muted\">none"
                  "</span></dd>\n");
    out_s(pg, "<dt>Last good</dt><dd class=\"deploy-stable\">");
    if (json_is_object(stable)) {
        out_deploy_ref(pg, stable);
        out_s(pg, " ");
        out_commit(pg, portal_jstr(stable, "revision"));
    } else {
        out_hd(pg, NULL);
    }
    out_s(pg, "</dd>\n</dl>\n<table class=\"replicas\">\n<thead><tr><th>Replica</th>"
              "<th>Revision</th><th class=\"num\">Port</th><th>Ready</th><th>State</th>"
              "<th class=\"num\">Restarts</th><th>Isolation</th><th>Last error</th></tr></thead>\n"
              "<tbody>\n");
    size_t n = 0;
    if (json_is_array(reps))
        json_array_foreach ((json_t *)reps, idx, r) {
            if (!json_is_object(r))
                continue;
            replica_row(pg, r);
            n++;
        }
    if (n == 0)
        out_s(pg, "<tr><td colspan=\"8\" class=\"empty\">No replicas.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n");
    if (env && *env) {
        out_s(pg, "<p class=\"actions\">");
        logs_link(pg, service, env, "button secondary logs-link");
        out_s(pg, " <a class=\"button secondary rollback-link\" href=\"/services/");
        out_u(pg, service);
        out_s(pg, "/rollback?env=");
        out_u(pg, env);
        out_s(pg, "\">Roll back ");
        out_h(pg, env);
        out_s(pg, "&hellip;</a></p>\n");
    }
    out_s(pg, "</article>\n");
}

static void deploy_history_row(struct page *pg, const json_t *d)
{
    int64_t id = 0, replicas = 0, of = 0;
    portal_jint(d, "id", &id);
    out_f(pg, "<tr class=\"deploy-row\"><td>#%lld</td><td>", (long long)id);
    out_hd(pg, portal_jstr(d, "env"));
    out_s(pg, "</td><td>");
    out_hd(pg, portal_jstr(d, "kind"));
    if (portal_jint(d, "rollback_of", &of) && of > 0)
        out_f(pg, " of #%lld", (long long)of);
    out_s(pg, "</td><td>");
    const char *image = portal_jstr(d, "image");
    if (image && *image) {
        out_s(pg, "<code>");
        out_h(pg, image);
        out_s(pg, "</code>");
    } else {
        out_hd(pg, NULL);
    }
    out_s(pg, "</td><td>");
    out_commit(pg, portal_jstr(d, "revision"));
    out_s(pg, "</td><td class=\"num\">");
    if (portal_jint(d, "replicas", &replicas))
        out_f(pg, "%lld", (long long)replicas);
    out_s(pg, "</td><td>");
    state_badge(pg, portal_jstr(d, "state"), NULL);
    out_s(pg, "</td><td>");
    out_hd(pg, portal_jstr(d, "actor"));
    out_s(pg, "</td><td>");
    portal_out_time(pg, portal_jstr(d, "created_at"));
    out_s(pg, "</td><td class=\"deploy-row-message\">");
    out_hd(pg, portal_jstr(d, "message"));
    out_s(pg, "</td></tr>\n");
}

/* The whole section. status: deploy_status() for the service (NULL: deployed nowhere); history:
 * deploy_list() (NULL: could not be read); notice: a deployment the user just started (a
 * rollback), shown on top; problem: why the live status is missing, or NULL. */
static void deployments_body(struct page *pg, const char *service, const json_t *status,
                             const json_t *history, bool enabled, const json_t *notice,
                             const char *problem)
{
    out_s(pg, "<section id=\"deployments\">\n<h2>Deployments</h2>\n");
    if (notice) {
        int64_t id = 0;
        portal_jint(notice, "id", &id);
        out_f(pg, "<p class=\"note\" id=\"deploy-notice\" role=\"status\">Rollback started: "
                  "deployment #%lld deploys <code>", (long long)id);
        out_h(pg, portal_jstr(notice, "image"));
        out_s(pg, "</code> (revision ");
        out_commit(pg, portal_jstr(notice, "revision"));
        out_s(pg, ") to ");
        out_h(pg, portal_jstr(notice, "env"));
        out_s(pg, " again. Its progress shows below; reload to follow it.</p>\n");
    }
    if (!enabled) {
        out_s(pg, "<p class=\"note\" id=\"deploy-off\">Deployments are not enabled on this "
                  "server (start it with <code>--ingress ADDR:PORT</code>; <code>pave up</code> "
                  "enables them by default). The history below is what the store recorded.</p>\n");
    } else if (problem) {
        out_s(pg, "<p class=\"note\" id=\"deploy-unavailable\">");
        out_h(pg, problem);
        out_s(pg, "</p>\n");
    }
    const json_t *envs = jget(status, "environments");
    size_t shown = 0, idx;
    json_t *e;
    if (json_is_array(envs))
        json_array_foreach ((json_t *)envs, idx, e) {
            if (!json_is_object(e))
                continue;
            deploy_env_card(pg, service, e);
            shown++;
        }
    if (enabled && !problem && shown == 0) {
        out_s(pg, "<p class=\"muted\" id=\"not-deployed\">");
        out_h(pg, service);
        out_s(pg, " is not deployed to any environment. Deploy it with <code>pave deploy ");
        out_h(pg, service);
        out_s(pg, " --env ENV</code>.</p>\n");
    }

    out_s(pg, "<h3>Deploy history</h3>\n");
    const json_t *items = jget(history, "items");
    if (!json_is_array(items)) {
        out_s(pg, "<p class=\"note\">The deploy history cannot be read right now.</p>\n"
                  "</section>\n");
        return;
    }
    out_s(pg, "<table id=\"deploy-history\">\n<thead><tr><th>Deployment</th><th>Env</th>"
              "<th>Kind</th><th>Image</th><th>Revision</th><th class=\"num\">Replicas</th>"
              "<th>State</th><th>By</th><th>Created</th><th>Message</th></tr></thead>\n<tbody>\n");
    size_t n = 0;
    json_array_foreach ((json_t *)items, idx, e) {
        if (!json_is_object(e))
            continue;
        deploy_history_row(pg, e);
        n++;
    }
    if (n == 0)
        out_s(pg, "<tr><td colspan=\"10\" class=\"empty\">No deployments yet.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n");
    int64_t total = 0;
    if (portal_jint(history, "total", &total) && total > (int64_t)n) {
        out_f(pg, "<p class=\"more\" id=\"deploy-history-more\">The newest %zu of %lld; "
                  "<code>pave deployments list ", n, (long long)total);
        out_h(pg, service);
        out_s(pg, "</code> shows all of them.</p>\n");
    }
    out_s(pg, "</section>\n");
}

int portal_deployments_render(const char *service, const struct json_t *status,
                              const struct json_t *history, bool enabled, struct core_buf *out)
{
    struct portal_request req = {.method = "GET", .path = "/"};
    struct portal_response resp = {0};
    struct page pg = {.req = &req, .resp = &resp, .b = out, .is_get = true};
    deployments_body(&pg, service ? service : "", status, history, enabled, NULL, NULL);
    return pg.rc;
}

/* What runs for the service (deploy_status(); NULL: not deployed, or no controller). Never
 * fails the page: a controller problem sets *problem (and a log line). returns: owned by caller. */
static json_t *service_status(struct page *pg, const char *name, const char **problem)
{
    struct core_err err = {0};
    json_t *status = NULL;
    *problem = NULL;
    if (pg->p->deploy) {
        status = deploy_status(pg->p->deploy, name, NULL, &err);
        if (!status && err.code != CORE_E_NOTFOUND) {
            log_warn("portal", "cannot read deploy status", LOG_STR("service", name),
                     LOG_STR("error", err.msg));
            *problem = "What runs for this service cannot be read right now.";
        }
    }
    return status;
}

/* Never fails the page: a store problem becomes a note (and a log line). status and problem
 * come from service_status(). The query's rolled_back=ID (set by the rollback form's redirect)
 * becomes a notice. */
static void service_deployments_section(struct page *pg, const char *name, const json_t *status,
                                        const char *problem)
{
    json_t *history = NULL, *notice = NULL;
    struct core_err err = {0};
    char id_s[32];
    int64_t id = 0;

    history = deploy_list(pg->p->st, name, NULL, DEPLOYS_SHOWN, 0, &err);
    if (!history)
        log_warn("portal", "cannot list deployments", LOG_STR("service", name),
                 LOG_STR("error", err.msg));
    core_err_clear(&err);
    if (pg->req->query && portal_form_value(pg->req->query, "rolled_back", id_s, sizeof(id_s)) == 0 &&
        portal_parse_id(id_s, strlen(id_s), &id)) {
        notice = deploy_get(pg->p->st, id, &err);
        const char *svc = portal_jstr(notice, "service");
        if (notice && (!svc || strcmp(svc, name) != 0)) {
            json_decref(notice);
            notice = NULL;
        }
        core_err_clear(&err);
    }
    deployments_body(pg, name, status, history, pg->p->deploy != NULL, notice, problem);
    if (history)
        json_decref(history);
    if (notice)
        json_decref(notice);
}

/* Reads and checks the env parameter of the rollback page and form. */
static bool rollback_env_ok(const char *src, char *env, size_t envsz)
{
    return src && portal_form_value(src, "env", env, envsz) == 0 && core_is_dns_label(env);
}

#define ROLLBACK_BAD_ENV "'env' must name an environment, e.g. ?env=prod."

/* The page a refused rollback shows: the controller's message and the way back. */
static int rollback_refused(struct page *pg, int status, const char *service, const char *env,
                            const char *msg)
{
    page_reset(pg);
    portal_page_begin(pg, status, "Rollback refused");
    out_s(pg, "<p class=\"crumbs\"><a href=\"/catalog\">Catalog</a> / <a href=\"/services/");
    out_u(pg, service);
    out_s(pg, "\">");
    out_h(pg, service);
    out_s(pg, "</a> / rollback</p>\n<h1>");
    out_h(pg, service);
    out_s(pg, " in ");
    out_h(pg, env);
    out_s(pg, " was not rolled back</h1>\n"
              "<p class=\"alert\" id=\"rollback-error\" role=\"alert\">");
    out_h(pg, msg);
    out_s(pg, "</p>\n");
    if (status == 403)
        out_s(pg, "<p class=\"muted\">Rolling back needs a member of the service's team or an "
                  "administrator.</p>\n");
    out_s(pg, "<p><a id=\"rollback-back\" href=\"/services/");
    out_u(pg, service);
    out_s(pg, "#deployments\">Back to ");
    out_h(pg, service);
    out_s(pg, "</a></p>\n");
    portal_page_end(pg);
    return pg->rc;
}

static int deployments_off(struct page *pg)
{
    return portal_error_page(pg, 404, "Deployments are not enabled",
                      "This server runs no deploy controller, so there is nothing to roll back. "
                      "Start it with --ingress ADDR:PORT to enable deployments.");
}

/* The deployment a rollback with to=0 picks (see deploy_rollback): the newest succeeded one,
 * not a scale, of another revision than the one wanted now. Borrowed from history, or NULL. */
static const json_t *rollback_target(const json_t *history, const json_t *desired)
{
    const char *cur = portal_jstr(desired, "revision");
    const json_t *items = jget(history, "items");
    size_t idx;
    json_t *d;
    json_array_foreach ((json_t *)items, idx, d) {
        const char *state = portal_jstr(d, "state"), *kind = portal_jstr(d, "kind");
        const char *rev = portal_jstr(d, "revision");
        if (!state || strcmp(state, "succeeded") != 0 || (kind && strcmp(kind, "scale") == 0))
            continue;
        if (cur && rev && strcmp(cur, rev) == 0)
            continue;
        return d;
    }
    return NULL;
}

/* GET /services/NAME/rollback?env=ENV: what a rollback would do, and a form to confirm it. */
static int rollback_get(struct page *pg, const char *name)
{
    struct catalog_service s = {0};
    json_t *status = NULL, *history = NULL;
    char env[PARAM_MAX];
    int rc = 0;

    if (!core_is_dns_label(name)) {
        rc = portal_not_found(pg);
        goto out;
    }
    if (!rollback_env_ok(pg->req->query, env, sizeof(env))) {
        rc = portal_bad_request(pg, ROLLBACK_BAD_ENV);
        goto out;
    }
    rc = catalog_service_get(pg->p->cat, name, &s, &pg->err);
    if (rc == CORE_E_NOTFOUND) {
        core_err_clear(&pg->err);
        rc = portal_error_page(pg, 404, "Service not found",
                        "No service by that name is in the catalog.");
        goto out;
    }
    if (rc)
        goto out;
    if (!pg->p->deploy) {
        rc = deployments_off(pg);
        goto out;
    }
    status = deploy_status(pg->p->deploy, s.name, env, &pg->err);
    if (!status && pg->err.code == CORE_E_NOTFOUND) {
        rc = portal_error_page(pg, 404, "Not deployed", pg->err.msg);
        core_err_clear(&pg->err);
        goto out;
    }
    if (!status) {
        rc = pg->err.code ? pg->err.code : CORE_E_INTERNAL;
        goto out;
    }
    history = deploy_list(pg->p->st, s.name, env, ROLLBACK_SCAN, 0, &pg->err);
    if (!history) {
        rc = pg->err.code ? pg->err.code : CORE_E_INTERNAL;
        goto out;
    }
    const json_t *e = json_array_get(jget(status, "environments"), 0);
    const json_t *desired = jget(e, "desired");
    const json_t *target = rollback_target(history, desired);
    int64_t total = 0;
    bool unsure = !target && portal_jint(history, "total", &total) &&
                  total > (int64_t)json_array_size(jget(history, "items"));

    pg->nav = "catalog";
    char title[PARAM_MAX * 2 + 32];
    snprintf(title, sizeof(title), "Roll back %s in %s", s.name, env);
    portal_page_begin(pg, 200, title);
    out_s(pg, "<p class=\"crumbs\"><a href=\"/catalog\">Catalog</a> / <a href=\"/services/");
    out_u(pg, s.name);
    out_s(pg, "\">");
    out_h(pg, s.name);
    out_s(pg, "</a> / rollback</p>\n<h1 id=\"rollback-title\">Roll back ");
    out_h(pg, s.name);
    out_s(pg, " in ");
    out_h(pg, env);
    out_s(pg, "</h1>\n");
    if (!pg->who.actor.is_admin && !catalog_actor_in_team(&pg->who.actor, s.team)) {
        out_s(pg, "<p class=\"alert\" id=\"rollback-perm\">Only members of team ");
        out_h(pg, s.team);
        out_s(pg, " (or an administrator) may roll this service back; the server will refuse "
                  "the request.</p>\n");
    }
    out_s(pg, "<section class=\"card\" id=\"rollback-current\">\n<h2>Running now</h2>\n"
              "<dl class=\"facts\">\n");
    if (json_is_object(desired))
        deployment_facts(pg, desired);
    else
        out_s(pg, "<dt>Deployment</dt><dd><span class=\"muted\">none</span></dd>\n");
    out_s(pg, "</dl>\n</section>\n<section class=\"card\" id=\"rollback-target\">\n"
              "<h2>Rolls back to</h2>\n");
    if (target) {
        out_s(pg, "<dl class=\"facts\">\n");
        deployment_facts(pg, target);
        out_s(pg, "</dl>\n");
    } else if (unsure) {
        out_s(pg, "<p>The newest successful deployment of an earlier revision (it is older "
                  "than the history shown here).</p>\n");
    } else {
        out_s(pg, "<p class=\"note\" id=\"rollback-none\">There is nothing to roll back to: ");
        out_h(pg, env);
        out_s(pg, " has no earlier successful deployment of another revision.</p>\n");
    }
    out_s(pg, "</section>\n");
    if (target || unsure) {
        out_s(pg, "<form id=\"rollback\" class=\"form\" method=\"post\" action=\"/services/");
        out_u(pg, s.name);
        out_s(pg, "/rollback\">\n<input type=\"hidden\" name=\"csrf\" value=\"");
        out_h(pg, pg->csrf);
        out_s(pg, "\">\n<input type=\"hidden\" name=\"env\" value=\"");
        out_h(pg, env);
        out_s(pg, "\">\n<p>The rollback is a new deployment: replicas of the earlier revision "
                  "replace the current ones one by one, keeping the current replica count, and "
                  "the current ones keep serving until the new ones are healthy.</p>\n"
                  "<p class=\"actions\"><button type=\"submit\" id=\"rollback-confirm\">"
                  "Roll back ");
        out_h(pg, env);
        out_s(pg, "</button> ");
    } else {
        out_s(pg, "<p class=\"actions\">");
    }
    out_s(pg, "<a id=\"rollback-cancel\" href=\"/services/");
    out_u(pg, s.name);
    out_s(pg, "#deployments\">Cancel</a></p>\n");
    if (target || unsure)
        out_s(pg, "</form>\n");
    portal_page_end(pg);
    rc = pg->rc;
out:
    if (status)
        json_decref(status);
    if (history)
        json_decref(history);
    catalog_service_release(&s);
    return rc;
}

/* POST /services/NAME/rollback (csrf, env): rolls back and returns to the service page. */
static int rollback_post(struct page *pg, const char *name)
{
    struct core_err e = {0};
    char env[PARAM_MAX];
    int64_t id = 0;
    int rc;

    if (!core_is_dns_label(name))
        return portal_not_found(pg);
    if (!rollback_env_ok(pg->form, env, sizeof(env)))
        return portal_bad_request(pg, ROLLBACK_BAD_ENV);
    if (!pg->p->deploy)
        return deployments_off(pg);
    rc = deploy_rollback(pg->p->deploy, &pg->who.actor, name, env, 0, &id, &e);
    switch (rc) {
    case 0:
        break;
    case CORE_E_PERM:
        log_warn("portal", "rollback refused", LOG_STR("service", name), LOG_STR("env", env),
                 LOG_STR("user", pg->who.user), LOG_STR("error", e.msg));
        return rollback_refused(pg, 403, name, env, e.msg);
    case CORE_E_NOTFOUND:
        return rollback_refused(pg, 404, name, env, e.msg);
    case CORE_E_INVAL:
        return rollback_refused(pg, 400, name, env, e.msg);
    case CORE_E_CONFLICT:
        return rollback_refused(pg, 409, name, env, e.msg);
    default:
        pg->err = e;
        return rc;
    }
    log_info("portal", "rollback started", LOG_STR("service", name), LOG_STR("env", env),
             LOG_INT("deployment", id), LOG_STR("user", pg->who.user));
    char to[PARAM_MAX + 64];
    snprintf(to, sizeof(to), "/services/%s?rolled_back=%lld#deployments", name, (long long)id);
    return portal_redirect(pg, to); /* a checked DNS label and a number */
}

/* /services/NAME/runs?before=ID */
static int service_runs_page(struct page *pg, const char *name)
{
    struct catalog_service s = {0};
    char before_s[32];
    int64_t before = 0;
    int rc = 0;

    if (!core_is_dns_label(name)) {
        rc = portal_not_found(pg);
        goto out;
    }
    if (portal_form_value(pg->req->query, "before", before_s, sizeof(before_s)) ||
        (before_s[0] && !portal_parse_id(before_s, strlen(before_s), &before))) {
        rc = portal_bad_request(pg, "'before' must be a run number.");
        goto out;
    }
    rc = catalog_service_get(pg->p->cat, name, &s, &pg->err);
    if (rc == CORE_E_NOTFOUND) {
        rc = portal_error_page(pg, 404, "Service not found",
                        "No service by that name is in the catalog.");
        goto out;
    }
    if (rc)
        goto out;

    pg->nav = "catalog";
    char title[160];
    snprintf(title, sizeof(title), "Runs of %s", s.name);
    portal_page_begin(pg, 200, title);
    out_s(pg, "<p class=\"crumbs\"><a href=\"/catalog\">Catalog</a> / <a href=\"/services/");
    out_u(pg, s.name);
    out_s(pg, "\">");
    out_h(pg, s.name);
    out_s(pg, "</a> / runs</p>\n<h1>Runs of ");
    out_h(pg, s.name);
    out_s(pg, "</h1>\n<p class=\"lead\">Newest first.</p>\n");
    if (!pg->p->runner)
        pipelines_off_note(pg);
    struct run_rows rows;
    rc = runs_table(pg, s.name, before, RUNS_PAGE, "runs", &rows);
    if (rc)
        goto out;
    if (before > 0 || rows.n == RUNS_PAGE) {
        out_s(pg, "<nav class=\"pager\" aria-label=\"Pages\">");
        if (before > 0) {
            out_s(pg, "<a href=\"/services/");
            out_u(pg, s.name);
            out_s(pg, "/runs\">&larr; Newest</a>");
        }
        if (rows.n == RUNS_PAGE) {
            out_s(pg, "<a rel=\"next\" href=\"/services/");
            out_u(pg, s.name);
            out_f(pg, "/runs?before=%lld\">Older &rarr;</a>", (long long)rows.last_id);
        }
        out_s(pg, "</nav>\n");
    }
    portal_page_end(pg);
    rc = pg->rc;
out:
    catalog_service_release(&s);
    return rc;
}

/* ---- the run page ---------------------------------------------------------------------------- */

struct sgr {
    bool bold;
    int fg; /* 30-37 or 90-97; 0 = default */
};

/* Applies one SGR parameter list ("1;31", "" = reset). Only bold and the 16 foreground colours
 * are kept; extended colours (38;5;n, 38;2;r;g;b) and everything else are ignored. */
static void sgr_apply(struct sgr *a, const char *p, size_t n)
{
    size_t i = 0;
    for (;;) {
        int v = 0;
        bool ok = true;
        size_t start = i;
        while (i < n && p[i] != ';') {
            if (p[i] < '0' || p[i] > '9')
                ok = false;
            else if (v < 1000)
                v = v * 10 + (p[i] - '0');
            i++;
        }
        if (ok) {
            if (i == start || v == 0)
                *a = (struct sgr){false, 0};
            else if (v == 1)
                a->bold = true;
            else if (v == 22)
                a->bold = false;
            else if ((v >= 30 && v <= 37) || (v >= 90 && v <= 97))
                a->fg = v;
            else if (v == 39)
                a->fg = 0;
            else if (v == 38 || v == 48)
                return; /* the rest are the extended colour's arguments */
        }
        if (i >= n)
            return;
        i++; /* the ';' */
    }
}

static void sgr_open(struct page *pg, const struct sgr *a)
{
    if (!a->bold && !a->fg)
        return;
    out_s(pg, "<span class=\"");
    if (a->bold)
        out_s(pg, a->fg ? "ansi-b " : "ansi-b");
    if (a->fg)
        out_f(pg, "ansi-%d", a->fg);
    out_s(pg, "\">");
}

/* Length of the escape sequence starting at s[0] == ESC (at most n bytes): CSI (ESC [ params
 * final), OSC (ESC ] ... BEL or ESC \), or ESC and one more byte. *sgr is set to the parameters
 * when the sequence is an SGR (CSI ... m). */
static size_t esc_len(const char *s, size_t n, const char **sgr, size_t *sgr_len)
{
    *sgr = NULL;
    if (n < 2)
        return n;
    if (s[1] == '[') {
        size_t j = 2;
        while (j < n && (unsigned char)s[j] >= 0x30 && (unsigned char)s[j] <= 0x3f)
            j++;
        size_t params_end = j;
        while (j < n && (unsigned char)s[j] >= 0x20 && (unsigned char)s[j] <= 0x2f)
            j++;
        if (j < n && (unsigned char)s[j] >= 0x40 && (unsigned char)s[j] <= 0x7e) {
            if (s[j] == 'm' && params_end == j) {
                *sgr = s + 2;
                *sgr_len = params_end - 2;
            }
            return j + 1;
        }
        return j; /* unterminated: drop what was read */
    }
    if (s[1] == ']') {
        for (size_t j = 2; j < n; j++) {
            if (s[j] == '\a')
                return j + 1;
            if (s[j] == 0x1b && j + 1 < n && s[j + 1] == '\\')
                return j + 2;
            if (s[j] == '\n')
                return j; /* keep the line break */
        }
        return n;
    }
    return (unsigned char)s[1] >= 0x20 && s[1] != '\n' ? 2 : 1;
}

/* Length of the UTF-8 sequence at s (0 when it is not valid). */
static size_t utf8_len(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    size_t len = 0;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    if (!len || len > n || !core_utf8_valid(s, len))
        return 0;
    return len;
}

/* Log text: SGR colours become spans, other escapes and control bytes are dropped, invalid
 * UTF-8 becomes U+FFFD, and everything is HTML-escaped. */
static void out_log(struct page *pg, const char *s, size_t n)
{
    struct sgr cur = {false, 0};
    bool open = false;
    size_t i = 0;
    while (i < n && !pg->rc) {
        /* a run of bytes that need no treatment */
        size_t j = i;
        while (j < n && (((unsigned char)s[j] >= 0x20 && (unsigned char)s[j] < 0x7f &&
                          !strchr("&<>\"'", s[j])) ||
                         s[j] == '\n' || s[j] == '\t'))
            j++;
        if (j > i) {
            pg->rc = core_buf_add(pg->b, s + i, j - i);
            i = j;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == 0x1b) {
            const char *params;
            size_t plen = 0;
            i += esc_len(s + i, n - i, &params, &plen);
            if (params) {
                struct sgr next = cur;
                sgr_apply(&next, params, plen);
                if (next.bold != cur.bold || next.fg != cur.fg) {
                    if (open)
                        out_s(pg, "</span>");
                    cur = next;
                    open = cur.bold || cur.fg;
                    sgr_open(pg, &cur);
                }
            }
        } else if (c == '&') {
            out_s(pg, "&amp;");
            i++;
        } else if (c == '<') {
            out_s(pg, "&lt;");
            i++;
        } else if (c == '>') {
            out_s(pg, "&gt;");
            i++;
        } else if (c == '"') {
            out_s(pg, "&quot;");
            i++;
        } else if (c == '\'') {
            out_s(pg, "&#39;");
            i++;
        } else if (c < 0x80) {
            i++; /* \r, backspace, NUL and the other control bytes */
        } else {
            size_t len = utf8_len(s + i, n - i);
            if (len) {
                if (!pg->rc)
                    pg->rc = core_buf_add(pg->b, s + i, len);
                i += len;
            } else {
                out_s(pg, "\xef\xbf\xbd");
                i++;
            }
        }
    }
    if (open)
        out_s(pg, "</span>");
}

/* Reads the last LOG_TAIL bytes of the log into out; *total gets the file size. A missing log
 * is not an error (empty out, *total 0). */
static int log_tail(const char *path, struct core_buf *out, int64_t *total, struct core_err *err)
{
    *total = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : core_err_set(err, CORE_E_IO, "cannot open '%s': %s", path,
                                                   strerror(errno));
    int rc = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = core_err_set(err, CORE_E_IO, "'%s' is not a regular file", path);
        goto out;
    }
    *total = (int64_t)sb.st_size;
    off_t off = sb.st_size > LOG_TAIL ? sb.st_size - LOG_TAIL : 0;
    char chunk[16 * 1024];
    while (out->len < LOG_TAIL) {
        size_t want = LOG_TAIL - out->len < sizeof(chunk) ? LOG_TAIL - out->len : sizeof(chunk);
        ssize_t n = pread(fd, chunk, want, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = core_err_set(err, CORE_E_IO, "cannot read '%s': %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if ((rc = core_buf_add(out, chunk, (size_t)n)))
            goto out;
        off += n;
    }
out:
    close(fd);
    return rc;
}

struct step_rows {
    struct page *pg;
    size_t n;
};

static int step_row(void *arg, const struct ci_step_info *st)
{
    struct step_rows *a = arg;
    struct page *pg = a->pg;
    a->n++;
    out_s(pg, "<tr class=\"step-row\"><td class=\"step-name\"><code>");
    out_h(pg, st->name);
    out_s(pg, "</code></td><td>");
    state_badge(pg, st->state, NULL);
    out_s(pg, "</td><td class=\"num\">");
    bool ended = st->state && (strcmp(st->state, "succeeded") == 0 ||
                               strcmp(st->state, "failed") == 0);
    if (ended)
        out_f(pg, "%lld", (long long)st->exit_code);
    else
        out_hd(pg, NULL);
    out_s(pg, "</td><td class=\"num\">");
    if (ended || st->duration_ms > 0)
        out_duration(pg, st->duration_ms);
    else
        out_hd(pg, NULL);
    out_s(pg, "</td><td>");
    out_hd(pg, st->detail);
    out_s(pg, "</td></tr>\n");
    return pg->rc;
}

static void run_facts(struct page *pg, const struct run_copy *r)
{
    out_s(pg, "<dl class=\"facts\">\n");
    fact(pg, "run-service", "Service");
    out_link(pg, "/services/", r->service);
    out_s(pg, " <span class=\"muted\">(team ");
    out_h(pg, r->team);
    out_s(pg, ")</span></dd>\n");
    fact(pg, "run-trigger", "Trigger");
    out_hd(pg, r->trigger);
    if (r->retry_of > 0)
        out_f(pg, " of <a href=\"/runs/%lld\">#%lld</a>", (long long)r->retry_of,
              (long long)r->retry_of);
    out_s(pg, "</dd>\n");
    fact(pg, "run-branch", "Branch");
    out_hd(pg, r->branch);
    out_s(pg, "</dd>\n");
    fact(pg, "run-commit", "Commit");
    if (r->commit && *r->commit) {
        out_s(pg, "<code>");
        out_h(pg, r->commit);
        out_s(pg, "</code>");
    } else {
        out_hd(pg, NULL);
    }
    out_s(pg, "</dd>\n");
    fact(pg, "run-actor", "Started by");
    out_hd(pg, r->actor);
    out_s(pg, "</dd>\n");
    fact(pg, "run-queued", "Queued");
    portal_out_time(pg, r->queued_at);
    out_s(pg, "</dd>\n");
    fact(pg, "run-started", "Started");
    portal_out_time(pg, r->started_at);
    out_s(pg, "</dd>\n");
    fact(pg, "run-finished", "Finished");
    portal_out_time(pg, r->finished_at);
    out_s(pg, "</dd>\n");
    if (r->error && *r->error) {
        fact(pg, "run-error", "Error");
        out_h(pg, r->error);
        out_s(pg, "</dd>\n");
    }
    fact(pg, "artifact", "Artifact");
    if (r->artifact_digest && *r->artifact_digest) {
        out_s(pg, "<code title=\"");
        out_h(pg, r->artifact_digest);
        out_s(pg, "\">");
        out_h(pg, r->artifact_digest);
        out_s(pg, "</code> &middot; ");
        out_size(pg, r->artifact_size);
        out_f(pg, " &middot; <a id=\"artifact-download\" href=\"/runs/%lld/artifact\" download>"
                  "Download</a>", (long long)r->id);
    } else {
        out_hd(pg, NULL);
    }
    out_s(pg, "</dd>\n</dl>\n");
}

static int run_page(struct page *pg, int64_t id)
{
    struct run_copy r = {0};
    struct core_buf log;
    core_buf_init(&log, LOG_TAIL + 1);
    int rc = run_load(pg, id, &r);
    if (rc == CORE_E_NOTFOUND) {
        core_err_clear(&pg->err);
        rc = portal_error_page(pg, 404, "Run not found", "There is no run with that number.");
        goto out;
    }
    if (rc)
        goto out;
    bool going = !ci_state_is_final(r.state);
    if (going && pg->p->runner)
        pg->refresh = REFRESH_SECS;

    pg->nav = "catalog";
    char title[64];
    snprintf(title, sizeof(title), "Run #%lld", (long long)r.id);
    portal_page_begin(pg, 200, title);
    out_s(pg, "<p class=\"crumbs\"><a href=\"/catalog\">Catalog</a> / <a href=\"/services/");
    out_u(pg, r.service);
    out_s(pg, "\">");
    out_h(pg, r.service);
    out_s(pg, "</a> / <a href=\"/services/");
    out_u(pg, r.service);
    out_f(pg, "/runs\">runs</a> / #%lld</p>\n", (long long)r.id);
    out_f(pg, "<h1 id=\"run-title\">Run #%lld of ", (long long)r.id);
    out_h(pg, r.service);
    out_s(pg, " ");
    state_badge(pg, r.state, "run-state");
    out_s(pg, "</h1>\n");
    if (!pg->p->runner)
        pipelines_off_note(pg);
    else if (going)
        out_f(pg, "<p class=\"note\" id=\"live\" role=\"status\">This run is still going; the page "
                  "reloads every %d seconds to follow it.</p>\n", REFRESH_SECS);
    out_s(pg, "<section id=\"run\" class=\"card\">\n");
    run_facts(pg, &r);
    out_s(pg, "</section>\n<section id=\"run-steps\">\n<h2>Steps</h2>\n<table id=\"steps\">\n"
              "<thead><tr><th>Step</th><th>State</th><th class=\"num\">Exit code</th>"
              "<th class=\"num\">Duration</th><th>Detail</th></tr></thead>\n<tbody>\n");
    struct step_rows steps = {pg, 0};
    rc = ci_run_steps(pg->p->st, r.id, step_row, &steps, &pg->err);
    if (rc)
        goto out;
    if (steps.n == 0)
        out_s(pg, "<tr><td colspan=\"5\" class=\"empty\">No steps yet.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n</section>\n<section id=\"run-log\">\n<h2>Log</h2>\n");

    int64_t total = 0;
    if (pg->p->runner) {
        char path[1400];
        ci_run_log_path(pg->p->runner, r.id, path, sizeof(path));
        rc = log_tail(path, &log, &total, &pg->err);
        if (rc)
            goto out;
    }
    if (total > (int64_t)log.len) {
        out_s(pg, "<p class=\"note\" id=\"log-truncated\">The log is ");
        out_size(pg, total);
        out_f(pg, "; this shows its last %d KiB. The API serves all of it at "
                  "<code>/api/v1/runs/%lld/log</code>.</p>\n", LOG_TAIL / 1024, (long long)r.id);
    }
    size_t skip = 0;
    if (total > (int64_t)log.len) {
        /* start at a line boundary */
        const char *nl = memchr(log.data, '\n', log.len);
        if (nl)
            skip = (size_t)(nl - log.data) + 1;
    }
    out_s(pg, "<pre class=\"log\" id=\"log\">");
    out_log(pg, log.data + skip, log.len - skip);
    out_s(pg, "</pre>\n");
    if (log.len == 0)
        out_s(pg, pg->p->runner ? "<p class=\"muted\" id=\"log-empty\">No output yet.</p>\n"
                                : "<p class=\"muted\" id=\"log-empty\">No log: pipelines are off."
                                  "</p>\n");
    out_s(pg, "</section>\n");
    portal_page_end(pg);
    rc = pg->rc;
out:
    core_buf_release(&log);
    run_copy_release(&r);
    return rc;
}

/* /runs/ID/artifact: the artifact tarball, for a signed-in user (the API needs a bearer token). */
static int artifact_download(struct page *pg, int64_t id)
{
    struct run_copy r = {0};
    int fd = -1;
    int rc = run_load(pg, id, &r);
    if (rc == CORE_E_NOTFOUND) {
        core_err_clear(&pg->err);
        rc = portal_error_page(pg, 404, "Run not found", "There is no run with that number.");
        goto out;
    }
    if (rc)
        goto out;
    if (!r.artifact_path || !*r.artifact_path) {
        rc = portal_error_page(pg, 404, "No artifact", "This run has no artifact.");
        goto out;
    }
    fd = open(r.artifact_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = portal_error_page(pg, 404, "No artifact", "The artifact file of this run is gone.");
        goto out;
    }
    page_reset(pg);
    pg->resp->status = 200;
    pg->resp->content_type = OCTET_TYPE;
    /* Streamed by the server from the descriptor: no size limit, no copy in memory. */
    pg->resp->has_file = true;
    pg->resp->file_fd = fd;
    pg->resp->file_size = (uint64_t)sb.st_size;
    fd = -1;
    log_info("portal", "artifact downloaded", LOG_INT("run", id), LOG_STR("user", pg->who.user));
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    run_copy_release(&r);
    return rc;
}

/* ---- logs page and the metrics summary ------------------------------------------------------ */

#define LOGS_SINCE_DEFAULT "15m"
#define LOGS_BODY_MAX (4 * 1024)       /* body bytes shown per record */
#define LOGS_ATTRS_SHOWN 20            /* attributes shown per record */
#define LOGS_ATTR_MAX 200              /* bytes shown per attribute value */
#define LOGS_ROWS_MAX (16u << 20)      /* rendered rows of one logs page */
#define TAIL_REFRESH_SECS 2
#define SCRAPE_MAX 16                  /* replicas read per service page */
#define SCRAPE_TIMEOUT_MS 500
#define SCRAPE_BODY_MAX (1u << 20)
#define METRICS_ENVS_MAX 32
#define LOGCOUNT_CAP 100000            /* records counted per environment */
#define LOGCOUNT_WINDOW_NS (3600LL * 1000000000LL)

static const char *const sev_class[7] = {"unknown", "trace", "debug", "info",
                                         "warn",    "error", "fatal"};
static const char *const sev_label[7] = {"OTHER", "TRACE", "DEBUG", "INFO",
                                         "WARN",  "ERROR", "FATAL"};

/* Severity number (1-24) to its bucket: 1 trace ... 6 fatal, 0 unspecified. */
static int sev_bucket(int severity)
{
    if (severity <= 0)
        return 0;
    int b = (severity - 1) / 4 + 1;
    return b > 6 ? 6 : b;
}

/* "SEG.OFF" -> a store cursor; false when malformed. */
static bool parse_cursor(const char *s, uint64_t *seg, uint64_t *off)
{
    uint64_t v[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        if (*s < '0' || *s > '9')
            return false;
        for (int d = 0; *s >= '0' && *s <= '9'; s++, d++) {
            if (d >= 19)
                return false;
            v[k] = v[k] * 10 + (uint64_t)(*s - '0');
        }
        if (k == 0 && *s++ != '.')
            return false;
    }
    if (*s)
        return false;
    *seg = v[0];
    *off = v[1];
    return true;
}

int portal_logs_filter_parse(const char *query, int64_t now_ms, struct portal_logs_filter *f,
                             const char **problem)
{
    const char *q = query ? query : "";
    char v[PARAM_MAX];
    memset(f, 0, sizeof(*f));
    f->limit = PORTAL_LOGS_LIMIT_DEFAULT;
    *problem = NULL;

    if (portal_form_value(q, "env", f->env, sizeof(f->env)) || (f->env[0] && !core_is_dns_label(f->env))) {
        *problem = "'env' must name an environment, e.g. prod.";
        return CORE_E_INVAL;
    }
    if (portal_form_value(q, "level", f->level, sizeof(f->level)) ||
        (f->level[0] && !(f->min_severity = tel_severity_parse(f->level, strlen(f->level))))) {
        *problem = "'level' must be trace, debug, info, warn, error or fatal.";
        return CORE_E_INVAL;
    }
    if (portal_form_value(q, "grep", f->grep, sizeof(f->grep))) {
        *problem = "'grep' is too long (255 bytes at most) or holds control characters.";
        return CORE_E_INVAL;
    }
    /* an absent `since` is the default window; an empty one (a cleared field) is no bound */
    int src = core_form_get(q, "since", f->since, sizeof(f->since));
    if (src == CORE_E_NOTFOUND)
        snprintf(f->since, sizeof(f->since), "%s", LOGS_SINCE_DEFAULT);
    else if (src || !value_ok(f->since))
        f->since[0] = '\x01'; /* fails below */
    if (f->since[0] && tel_store_parse_time(f->since, now_ms * 1000000, &f->since_ns)) {
        f->since[0] = 0;
        *problem = "'since' must be a duration back from now (5m, 2h, 7d) or an RFC 3339 time.";
        return CORE_E_INVAL;
    }
    if (portal_form_value(q, "limit", v, sizeof(v))) {
        *problem = "'limit' must be a whole number from 1 to 1000.";
        return CORE_E_INVAL;
    }
    if (v[0]) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (!end || *end || n < 1 || n > PORTAL_LOGS_LIMIT_MAX) {
            *problem = "'limit' must be a whole number from 1 to 1000.";
            return CORE_E_INVAL;
        }
        f->limit = (size_t)n;
    }
    if (portal_form_value(q, "follow", v, sizeof(v))) {
        *problem = "'follow' must be 1 or 0.";
        return CORE_E_INVAL;
    }
    f->follow = strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0;
    if (portal_form_value(q, "after", v, sizeof(v)) ||
        (v[0] && !(f->has_after = parse_cursor(v, &f->after_seg, &f->after_off)))) {
        *problem = "'after' must be a position in the log store (SEGMENT.OFFSET).";
        return CORE_E_INVAL;
    }
    int64_t now_s = now_ms / 1000;
    if (portal_form_value(q, "tail_end", v, sizeof(v))) {
        *problem = "'tail_end' must be a time in seconds.";
        return CORE_E_INVAL;
    }
    if (v[0]) {
        char *end = NULL;
        long long n = strtoll(v, &end, 10);
        if (!end || *end || n < 0) {
            *problem = "'tail_end' must be a time in seconds.";
            return CORE_E_INVAL;
        }
        f->tail_end = n;
    }
    if (f->follow && (!f->tail_end || f->tail_end > now_s + PORTAL_TAIL_SECS))
        f->tail_end = now_s + PORTAL_TAIL_SECS;
    return 0;
}

/* The logs page's URL with the filter, into b ('&' written as "&amp;": for attributes).
 * follow adds follow=1, the tail's end and, when after is set, the cursor. */
static int logs_href(struct core_buf *b, const char *service, const struct portal_logs_filter *f,
                     bool follow, const struct tel_store_cursor *after)
{
    int rc = core_buf_adds(b, "/services/");
    if (!rc)
        rc = core_buf_add_urlenc(b, service);
    if (!rc)
        rc = core_buf_adds(b, "/logs?since=");
    if (!rc)
        rc = core_buf_add_urlenc(b, f->since);
    const struct {
        const char *key, *val;
    } kv[] = {{"env", f->env}, {"level", f->level}, {"grep", f->grep}};
    for (size_t i = 0; !rc && i < sizeof(kv) / sizeof(kv[0]); i++) {
        if (!kv[i].val[0])
            continue;
        rc = core_buf_addf(b, "&amp;%s=", kv[i].key);
        if (!rc)
            rc = core_buf_add_urlenc(b, kv[i].val);
    }
    if (!rc && f->limit != PORTAL_LOGS_LIMIT_DEFAULT)
        rc = core_buf_addf(b, "&amp;limit=%zu", f->limit);
    if (!rc && follow) {
        rc = core_buf_adds(b, "&amp;follow=1");
        if (!rc && f->tail_end)
            rc = core_buf_addf(b, "&amp;tail_end=%lld", (long long)f->tail_end);
        if (!rc && after)
            rc = core_buf_addf(b, "&amp;after=%llu.%llu", (unsigned long long)after->seg,
                               (unsigned long long)after->off);
    }
    return rc;
}

/* At most max bytes of s, cut back to a UTF-8 boundary, through out_log(); "…" when cut. */
static void out_log_cut(struct page *pg, const char *s, size_t n, size_t max)
{
    if (n <= max) {
        out_log(pg, s, n);
        return;
    }
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
        cut--;
    out_log(pg, s, cut);
    out_s(pg, "<span class=\"muted\">&hellip;</span>");
}

/* "2024-05-01T12:34:56.789Z" as "2024-05-01 12:34:56.789" in a <time> element. */
static void out_log_time(struct page *pg, const char *ts)
{
    if (!ts || !*ts) {
        out_hd(pg, NULL);
        return;
    }
    char shown[32];
    size_t n = strlen(ts);
    if (n >= 23 && n < sizeof(shown) && ts[10] == 'T' && ts[19] == '.') {
        memcpy(shown, ts, 23);
        shown[10] = ' ';
        shown[23] = 0;
    } else {
        snprintf(shown, sizeof(shown), "%.31s", ts);
    }
    out_s(pg, "<time datetime=\"");
    out_h(pg, ts);
    out_s(pg, "\" title=\"");
    out_h(pg, ts);
    out_s(pg, "\">");
    out_h(pg, shown);
    out_s(pg, "</time>");
}

static void log_attrs(struct page *pg, const json_t *attrs)
{
    if (!json_is_object(attrs) || json_object_size(attrs) == 0)
        return;
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)attrs, key, v) {
        if (i++ == LOGS_ATTRS_SHOWN) {
            out_f(pg, "<span class=\"muted\">+%zu more</span>",
                  json_object_size(attrs) - LOGS_ATTRS_SHOWN);
            break;
        }
        out_s(pg, "<span class=\"attr\"><span class=\"k\">");
        out_log_cut(pg, key, strlen(key), LOGS_ATTR_MAX);
        out_s(pg, "</span>=");
        if (json_is_string(v)) {
            out_log_cut(pg, json_string_value(v), json_string_length(v), LOGS_ATTR_MAX);
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!text && !pg->rc)
                pg->rc = CORE_E_NOMEM;
            if (text)
                out_log_cut(pg, text, strlen(text), LOGS_ATTR_MAX);
            free(text); /* jansson's allocator */
        }
        out_s(pg, "</span> ");
    }
}

static void log_row(struct page *pg, const char *line, size_t len, int severity, bool is_new)
{
    json_error_t jerr;
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    int b = sev_bucket(severity);
    out_s(pg, is_new ? "<tr class=\"log-row log-new\"><td class=\"log-time\">"
                     : "<tr class=\"log-row\"><td class=\"log-time\">");
    out_log_time(pg, portal_jstr(j, "ts"));
    out_f(pg, "</td><td class=\"log-sev\"><span class=\"sev sev-%s\">%s</span></td>"
              "<td class=\"log-instance\">",
          sev_class[b], b ? sev_label[b] : "&mdash;");
    out_hd(pg, portal_jstr(jget(j, "resource"), "service.instance.id"));
    out_s(pg, "</td><td class=\"log-body\">");
    const json_t *body = jget(j, "body");
    if (!j)
        out_log_cut(pg, line, len, LOGS_BODY_MAX);
    else if (json_is_string(body))
        out_log_cut(pg, json_string_value(body), json_string_length(body), LOGS_BODY_MAX);
    out_s(pg, "</td><td class=\"log-attrs\">");
    log_attrs(pg, jget(j, "attributes"));
    out_s(pg, "</td></tr>\n");
    json_decref(j);
}

int portal_log_row_render(const char *line, size_t len, int severity, bool is_new,
                          struct core_buf *out)
{
    struct portal_request req = {.method = "GET", .path = "/"};
    struct portal_response resp = {0};
    struct page pg = {.req = &req, .resp = &resp, .b = out, .is_get = true};
    log_row(&pg, line ? line : "", line ? len : 0, severity, is_new);
    return pg.rc;
}

struct log_rows {
    struct page *pg;
    size_t n, n_new;
    bool has_after, cut;
    struct tel_store_cursor after;
};

static int log_row_fn(void *arg, const struct tel_store_row *row)
{
    struct log_rows *a = arg;
    struct page *pg = a->pg;
    bool is_new = a->has_after && (row->at.seg > a->after.seg ||
                                   (row->at.seg == a->after.seg && row->at.off > a->after.off));
    size_t mark = pg->b->len;
    log_row(pg, row->line, row->len, row->severity, is_new);
    if (pg->rc) {
        /* the rows buffer is full: keep what fits, say so */
        pg->b->len = mark;
        pg->b->data[mark] = 0;
        a->cut = true;
        return pg->rc == CORE_E_TOO_BIG ? 1 : pg->rc;
    }
    a->n++;
    a->n_new += is_new;
    return 0;
}

struct env_opts {
    struct page *pg;
    const char *selected;
};

static int env_option(void *arg, const struct catalog_env *e)
{
    struct env_opts *o = arg;
    struct page *pg = o->pg;
    out_s(pg, "<option value=\"");
    out_h(pg, e->name);
    out_s(pg, "\"");
    if (o->selected && strcmp(o->selected, e->name) == 0) {
        out_s(pg, " selected");
        o->selected = NULL; /* found */
    }
    out_s(pg, ">");
    out_h(pg, e->name);
    out_s(pg, "</option>");
    return pg->rc;
}

static void logs_filter_form(struct page *pg, const char *service,
                             const struct portal_logs_filter *f)
{
    static const char *const levels[] = {"trace", "debug", "info", "warn", "error", "fatal"};
    out_s(pg, "<form id=\"logs-filter\" class=\"filters\" method=\"get\" action=\"/services/");
    out_u(pg, service);
    out_s(pg, "/logs\">\n<label for=\"env\">Environment</label>\n<select id=\"env\" name=\"env\">"
              "<option value=\"\">All</option>");
    struct env_opts o = {pg, f->env[0] ? f->env : NULL};
    struct core_err err = {0};
    if (catalog_env_list(pg->p->cat, env_option, &o, &err) && !pg->rc)
        log_warn("portal", "cannot list environments", LOG_STR("error", err.msg));
    if (o.selected) { /* not (or no longer) in the catalog: keep the filter visible */
        out_s(pg, "<option selected value=\"");
        out_h(pg, f->env);
        out_s(pg, "\">");
        out_h(pg, f->env);
        out_s(pg, "</option>");
    }
    out_s(pg, "</select>\n<label for=\"level\">Level</label>\n<select id=\"level\" "
              "name=\"level\"><option value=\"\">Any</option>");
    int sel = sev_bucket(f->min_severity);
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        out_f(pg, "<option value=\"%s\"%s>%s and above</option>", levels[i],
              f->min_severity && sel == (int)i + 1 ? " selected" : "", sev_label[i + 1]);
    out_s(pg, "</select>\n<label for=\"grep\" class=\"visually-hidden\">Text</label>\n"
              "<input id=\"grep\" name=\"grep\" type=\"search\" maxlength=\"255\" "
              "placeholder=\"Text in the message\" value=\"");
    out_h(pg, f->grep);
    out_s(pg, "\">\n<label for=\"since\">Since</label>\n<input id=\"since\" name=\"since\" "
              "size=\"8\" maxlength=\"63\" placeholder=\"15m, 2h, 7d\" value=\"");
    out_h(pg, f->since);
    out_f(pg, "\">\n<label for=\"limit\">Show</label>\n<input id=\"limit\" name=\"limit\" "
              "type=\"number\" min=\"1\" max=\"%d\" value=\"%zu\">\n"
              "<button type=\"submit\">Apply</button>\n<a class=\"clear\" id=\"logs-clear\" "
              "href=\"/services/",
          PORTAL_LOGS_LIMIT_MAX, f->limit);
    out_u(pg, service);
    out_s(pg, "/logs\">Clear</a>\n</form>\n");
}

static int logs_page(struct page *pg, const char *name)
{
    struct catalog_service s = {0};
    struct portal_logs_filter f;
    struct core_buf rows, href;
    const char *problem = NULL;
    char dir[4200];
    int rc = 0;
    core_buf_init(&rows, LOGS_ROWS_MAX);
    core_buf_init(&href, 0);

    if (!core_is_dns_label(name)) {
        rc = portal_not_found(pg);
        goto out;
    }
    rc = catalog_service_get(pg->p->cat, name, &s, &pg->err);
    if (rc == CORE_E_NOTFOUND) {
        rc = portal_error_page(pg, 404, "Service not found", "No service by that name is in the catalog.");
        goto out;
    }
    if (rc)
        goto out;
    int64_t now_ms = core_now_ms();
    if (portal_logs_filter_parse(pg->req->query, now_ms, &f, &problem)) {
        rc = portal_bad_request(pg, problem);
        goto out;
    }
    bool tailing = f.follow && now_ms / 1000 < f.tail_end;

    /* rows first (into their own buffer): the page head needs the cursor they end at */
    struct tel_store_cursor end = {0, 0};
    struct log_rows a = {.pg = pg, .has_after = tailing && f.has_after,
                         .after = {f.after_seg, f.after_off}};
    bool store_ok = pg->p->data_dir != NULL;
    if (store_ok) {
        struct tel_store_query q = {.service = s.name,
                                    .env = f.env,
                                    .since_ns = f.since_ns,
                                    .min_severity = f.min_severity,
                                    .grep = f.grep[0] ? f.grep : NULL,
                                    .limit = f.limit,
                                    .end = &end};
        struct core_err err = {0};
        struct core_buf *page_b = pg->b;
        tel_store_dir(pg->p->data_dir, dir, sizeof(dir));
        pg->b = &rows;
        int qrc = tel_store_query(dir, &q, log_row_fn, &a, &err);
        pg->b = page_b;
        if (qrc < 0 && pg->rc) {
            rc = pg->rc; /* out of memory while rendering */
            goto out;
        }
        pg->rc = 0;
        if (qrc < 0) {
            log_warn("portal", "cannot read the log store", LOG_STR("service", s.name),
                     LOG_STR("error", err.msg));
            store_ok = false;
        }
    }
    if (tailing) {
        if ((rc = logs_href(&href, s.name, &f, true, &end)) ||
            (rc = core_buf_adds(&href, "#tail-end")))
            goto out;
        pg->refresh = TAIL_REFRESH_SECS;
        pg->refresh_url = href.data;
    }

    pg->nav = "catalog";
    portal_page_begin(pg, 200, "Logs");
    out_s(pg, "<p class=\"crumbs\"><a href=\"/catalog\">Catalog</a> / ");
    out_link(pg, "/services/", s.name);
    out_s(pg, " / Logs</p>\n<h1 id=\"logs-title\">Logs of ");
    out_h(pg, s.name);
    out_s(pg, "</h1>\n");
    logs_filter_form(pg, s.name, &f);

    if (tailing) {
        char until[32];
        core_time_format(f.tail_end * 1000, until, sizeof(until));
        out_f(pg, "<p class=\"note\" id=\"live\" role=\"status\">Live tail: this page reloads "
                  "every %d seconds until ", TAIL_REFRESH_SECS);
        out_log_time(pg, until);
        out_s(pg, " UTC; lines that arrived since the last reload are highlighted. "
                  "<a id=\"stop-tail\" href=\"");
        core_buf_clear(&href);
        if ((rc = logs_href(&href, s.name, &f, false, NULL)))
            goto out;
        out_s(pg, href.data);
        out_s(pg, "\">Stop</a></p>\n");
    } else {
        out_s(pg, f.follow ? "<p class=\"note\" id=\"tail-ended\">The live tail stopped after 10 "
                             "minutes. "
                           : "<p class=\"actions\">");
        out_s(pg, "<a class=\"button secondary\" id=\"live-tail\" href=\"");
        core_buf_clear(&href);
        f.tail_end = 0; /* a fresh 10 minutes */
        if ((rc = logs_href(&href, s.name, &f, true, NULL)))
            goto out;
        out_s(pg, href.data);
        out_s(pg, f.follow ? "\">Resume the live tail</a></p>\n" : "\">Live tail</a></p>\n");
    }
    if (!pg->p->data_dir)
        out_s(pg, "<p class=\"note\" id=\"logs-off\">The log store is not available on this "
                  "server.</p>\n");
    else if (!store_ok)
        out_s(pg, "<p class=\"note\" id=\"logs-unavailable\">The log store cannot be read right "
                  "now.</p>\n");
    out_f(pg, "<p class=\"count\" id=\"logs-count\">%zu %s", a.n, a.n == 1 ? "record" : "records");
    if (f.since_ns) {
        out_s(pg, " since ");
        out_h(pg, f.since);
    }
    out_f(pg, " (the newest %zu at most, oldest first)", f.limit);
    if (a.has_after)
        out_f(pg, ", <span id=\"logs-new\">%zu new</span>", a.n_new);
    out_s(pg, ".</p>\n");
    if (a.cut)
        out_s(pg, "<p class=\"note\" id=\"logs-cut\">Not every record fits on one page: narrow "
                  "the filter or lower the number shown.</p>\n");
    out_s(pg, "<table id=\"logs\" class=\"logs\">\n<thead><tr><th>Time (UTC)</th><th>Level</th>"
              "<th>Instance</th><th>Message</th><th>Attributes</th></tr></thead>\n<tbody>\n");
    if (!pg->rc)
        pg->rc = core_buf_add(pg->b, rows.data, rows.len);
    if (a.n == 0)
        out_s(pg, "<tr><td colspan=\"5\" class=\"empty\">No records match.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n<p id=\"tail-end\" class=\"muted\">The same records: "
              "<code>pave logs ");
    out_h(pg, s.name);
    out_s(pg, "</code>.</p>\n");
    portal_page_end(pg);
    rc = pg->rc;
out:
    pg->refresh_url = NULL;
    core_buf_release(&href);
    core_buf_release(&rows);
    catalog_service_release(&s);
    return rc;
}

/* -- the metrics summary -- */

size_t portal_prom_sum_codes(const char *text, size_t len, struct portal_http_counts *c)
{
    static const char name[] = "http_requests_total";
    const size_t name_len = sizeof(name) - 1;
    size_t used = 0, i = 0;
    while (i < len) {
        const char *l = text + i;
        const char *nl = memchr(l, '\n', len - i);
        size_t n = nl ? (size_t)(nl - l) : len - i;
        i += n + 1;
        size_t k = 0;
        while (k < n && (l[k] == ' ' || l[k] == '\t'))
            k++;
        if (n - k < name_len || memcmp(l + k, name, name_len) != 0)
            continue; /* also comments, blank lines and other metrics */
        k += name_len;
        char code[8] = "";
        if (k < n && l[k] == '{') {
            bool ok = false;
            k++;
            while (k < n) {
                while (k < n && (l[k] == ' ' || l[k] == ','))
                    k++;
                if (k < n && l[k] == '}') {
                    k++;
                    ok = true;
                    break;
                }
                size_t ns = k;
                while (k < n && ((l[k] >= 'a' && l[k] <= 'z') || (l[k] >= 'A' && l[k] <= 'Z') ||
                                 (l[k] >= '0' && l[k] <= '9') || l[k] == '_'))
                    k++;
                size_t lname = k - ns;
                if (!lname || k >= n || l[k] != '=' || k + 1 >= n || l[k + 1] != '"')
                    break;
                k += 2;
                char val[8];
                size_t vl = 0;
                bool closed = false, fits = true;
                while (k < n) {
                    char ch = l[k++];
                    if (ch == '"') {
                        closed = true;
                        break;
                    }
                    if (ch == '\\' && k < n)
                        ch = l[k++];
                    if (vl < sizeof(val) - 1)
                        val[vl++] = ch;
                    else
                        fits = false;
                }
                if (!closed)
                    break;
                val[vl] = 0;
                if (lname == 4 && memcmp(l + ns, "code", 4) == 0)
                    snprintf(code, sizeof(code), "%s", fits ? val : "");
            }
            if (!ok)
                continue;
        } else if (k < n && l[k] != ' ' && l[k] != '\t') {
            continue; /* a longer name: http_requests_total_created ... */
        }
        while (k < n && (l[k] == ' ' || l[k] == '\t'))
            k++;
        char num[64];
        size_t nn = 0;
        while (k < n && l[k] != ' ' && l[k] != '\t' && l[k] != '\r' && nn < sizeof(num) - 1)
            num[nn++] = l[k++];
        num[nn] = 0;
        char *end = NULL;
        double v = nn ? strtod(num, &end) : NAN;
        if (!nn || !end || *end || !isfinite(v) || v < 0)
            continue;
        int cls = 0;
        if (strlen(code) == 3 && code[0] >= '1' && code[0] <= '5' && code[1] >= '0' &&
            code[1] <= '9' && code[2] >= '0' && code[2] <= '9')
            cls = code[0] - '0';
        c->total += v;
        c->by_class[cls] += v;
        used++;
    }
    return used;
}

struct scrape {
    CURL *h;
    struct core_buf body;
    size_t env; /* index into the metrics array */
    bool done, ok;
};

static size_t scrape_write(char *p, size_t sz, size_t n, void *arg)
{
    struct scrape *s = arg;
    return core_buf_add(&s->body, p, sz * n) ? 0 : sz * n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Reads http://127.0.0.1:PORT/metrics of every entry at once, SCRAPE_TIMEOUT_MS each; sets ok
 * on a complete 200 answer. */
static void scrape_run(struct scrape *s, const int *ports, size_t n)
{
    if (!n)
        return;
    pthread_once(&curl_once, curl_init_once);
    CURLM *m = curl_multi_init();
    if (!m)
        return;
    for (size_t i = 0; i < n; i++) {
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", ports[i]);
        if (!(s[i].h = curl_easy_init()))
            continue;
        curl_easy_setopt(s[i].h, CURLOPT_URL, url);
        curl_easy_setopt(s[i].h, CURLOPT_PROXY, ""); /* loopback: never through a proxy */
        curl_easy_setopt(s[i].h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s[i].h, CURLOPT_TIMEOUT_MS, (long)SCRAPE_TIMEOUT_MS);
        curl_easy_setopt(s[i].h, CURLOPT_WRITEFUNCTION, scrape_write);
        curl_easy_setopt(s[i].h, CURLOPT_WRITEDATA, &s[i]);
        curl_easy_setopt(s[i].h, CURLOPT_PRIVATE, &s[i]);
        if (curl_multi_add_handle(m, s[i].h) != CURLM_OK) {
            curl_easy_cleanup(s[i].h);
            s[i].h = NULL;
        }
    }
    int running = 1;
    int64_t deadline = core_now_ms() + SCRAPE_TIMEOUT_MS + 100; /* every handle times out */
    while (running && core_now_ms() < deadline) {
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        if (running)
            curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
        struct scrape *one = NULL;
        if (msg->msg != CURLMSG_DONE ||
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&one) != CURLE_OK ||
            !one)
            continue;
        long code = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        one->ok = msg->data.result == CURLE_OK && code == 200;
    }
    for (size_t i = 0; i < n; i++) {
        if (!s[i].h)
            continue;
        curl_multi_remove_handle(m, s[i].h);
        curl_easy_cleanup(s[i].h);
        s[i].h = NULL;
    }
    curl_multi_cleanup(m);
}

static int count_fn(void *arg, const struct tel_store_row *row)
{
    struct portal_log_counts *c = arg;
    c->by_sev[sev_bucket(row->severity)]++;
    if (++c->total >= LOGCOUNT_CAP) {
        c->capped = true;
        return 1;
    }
    return 0;
}

/* The last hour of the service's records in env (NULL: every env), counted by severity. */
static void count_logs(struct page *pg, const char *service, const char *env,
                       struct portal_log_counts *c)
{
    char dir[4200];
    struct core_err err = {0};
    if (!pg->p->data_dir) {
        c->failed = true;
        return;
    }
    tel_store_dir(pg->p->data_dir, dir, sizeof(dir));
    struct tel_store_query q = {.service = service,
                                .env = env,
                                .since_ns = core_now_ms() * 1000000 - LOGCOUNT_WINDOW_NS};
    if (tel_store_query(dir, &q, count_fn, c, &err) < 0) {
        log_warn("portal", "cannot count log records", LOG_STR("service", service),
                 LOG_STR("error", err.msg));
        c->failed = true;
    }
}

static void out_log_counts(struct page *pg, const struct portal_log_counts *c)
{
    if (c->failed) {
        out_hd(pg, NULL);
        return;
    }
    if (c->total == 0) {
        out_s(pg, "<span class=\"muted\">none</span>");
        return;
    }
    out_f(pg, "<span class=\"log-total\">%s%lld</span> ", c->capped ? "at least " : "",
          (long long)c->total);
    for (int b = 6; b >= 0; b--)
        if (c->by_sev[b])
            out_f(pg, "<span class=\"sev sev-%s\">%s %lld</span> ", sev_class[b], sev_label[b],
                  (long long)c->by_sev[b]);
}

static void metrics_row(struct page *pg, const char *service, const json_t *e,
                        const struct portal_env_metrics *m)
{
    const char *env = portal_jstr(e, "env");
    const json_t *reps = jget(e, "replicas");
    int64_t wanted = 0, restarts = 0, r_n = 0;
    size_t ready = 0, idx;
    json_t *r;
    portal_jint(e, "replicas_wanted", &wanted);
    if (json_is_array(reps))
        json_array_foreach ((json_t *)reps, idx, r) {
            if (json_is_true(json_object_get(r, "ready")) &&
                !json_is_true(json_object_get(r, "draining")))
                ready++;
            if (portal_jint(r, "restarts", &r_n) && r_n > 0)
                restarts += r_n;
        }
    out_s(pg, "<tr class=\"metrics-row\" data-env=\"");
    out_h(pg, env);
    out_s(pg, "\"><td>");
    out_hd(pg, env);
    out_s(pg, "</td><td>");
    state_badge(pg, portal_jstr(jget(e, "desired"), "state"), NULL);
    out_f(pg, "</td><td class=\"num metrics-ready\">%zu / %lld</td>"
              "<td class=\"num metrics-restarts\">%lld</td>",
          ready, (long long)wanted, (long long)restarts);
    if (m && m->scraped) {
        double total = m->http.total, bad = m->http.by_class[5];
        out_f(pg, "<td class=\"num metrics-requests\"");
        if (m->unanswered)
            out_f(pg, " title=\"%zu of %zu replicas answered\"", m->scraped,
                  m->scraped + m->unanswered);
        out_f(pg, ">%.0f</td><td class=\"num metrics-5xx\">%.0f</td>"
                  "<td class=\"num metrics-ratio\">",
              total, bad);
        if (total > 0)
            out_f(pg, "%.2f%%", 100.0 * bad / total);
        else
            out_hd(pg, NULL);
        out_s(pg, "</td>");
    } else {
        out_s(pg, "<td class=\"num metrics-requests\">");
        out_hd(pg, NULL);
        out_s(pg, "</td><td class=\"num metrics-5xx\">");
        out_hd(pg, NULL);
        out_s(pg, "</td><td class=\"num metrics-ratio\">");
        out_hd(pg, NULL);
        out_s(pg, "</td>");
    }
    out_s(pg, "<td class=\"metrics-logs\">");
    if (m)
        out_log_counts(pg, &m->logs);
    else
        out_hd(pg, NULL);
    out_s(pg, "</td><td>");
    logs_link(pg, service, env, "logs-link");
    out_s(pg, "</td></tr>\n");
}

static void metrics_body(struct page *pg, const char *service, const json_t *status,
                         const struct portal_env_metrics *m, size_t n)
{
    out_s(pg, "<section id=\"metrics\">\n<h2>Metrics</h2>\n");
    const json_t *envs = jget(status, "environments");
    size_t shown = 0, idx;
    json_t *e;
    if (json_is_array(envs))
        json_array_foreach ((json_t *)envs, idx, e) {
            const char *env = portal_jstr(e, "env");
            if (!json_is_object(e) || !env)
                continue;
            if (!shown)
                out_s(pg, "<table id=\"metrics-summary\">\n<thead><tr><th>Environment</th>"
                          "<th>State</th><th class=\"num\">Ready</th><th class=\"num\">Restarts"
                          "</th><th class=\"num\">Requests</th><th class=\"num\">5xx</th>"
                          "<th class=\"num\">Error ratio</th><th>Logs, last hour</th><th></th>"
                          "</tr></thead>\n<tbody>\n");
            const struct portal_env_metrics *me = NULL;
            for (size_t i = 0; i < n && !me; i++)
                if (m[i].env && strcmp(m[i].env, env) == 0)
                    me = &m[i];
            metrics_row(pg, service, e, me);
            shown++;
        }
    if (shown) {
        out_s(pg, "</tbody>\n</table>\n<p class=\"muted\">Requests and 5xx are the sums of the "
                  "ready replicas' own <code>http_requests_total</code> counters (since each "
                  "replica started), read from their <code>/metrics</code> as this page loads; "
                  "a dash means no replica answered. Logs are the last hour of the log "
                  "store.</p>\n");
    } else {
        const struct portal_env_metrics *all = NULL;
        for (size_t i = 0; i < n && !all; i++)
            if (!m[i].env)
                all = &m[i];
        out_s(pg, "<p class=\"muted\" id=\"metrics-not-deployed\">Not deployed: there are no "
                  "replicas to read request counts from.</p>\n<p id=\"metrics-logs\">Logs, last "
                  "hour: ");
        if (all)
            out_log_counts(pg, &all->logs);
        else
            out_hd(pg, NULL);
        out_s(pg, " ");
        logs_link(pg, service, NULL, "logs-link");
        out_s(pg, "</p>\n");
    }
    out_s(pg, "</section>\n");
}

int portal_metrics_render(const char *service, const struct json_t *status,
                          const struct portal_env_metrics *m, size_t n, struct core_buf *out)
{
    struct portal_request req = {.method = "GET", .path = "/"};
    struct portal_response resp = {0};
    struct page pg = {.req = &req, .resp = &resp, .b = out, .is_get = true};
    metrics_body(&pg, service ? service : "", status, m, m ? n : 0);
    return pg.rc;
}

/* Never fails the page: replicas that do not answer and store problems show as dashes. */
static void service_metrics_section(struct page *pg, const char *name, const json_t *status)
{
    struct portal_env_metrics m[METRICS_ENVS_MAX];
    struct scrape s[SCRAPE_MAX];
    int ports[SCRAPE_MAX];
    size_t n = 0, ns = 0, idx, ridx;
    json_t *e, *r;
    memset(m, 0, sizeof(m));
    memset(s, 0, sizeof(s));
    const json_t *envs = jget(status, "environments");
    if (json_is_array(envs))
        json_array_foreach ((json_t *)envs, idx, e) {
            const char *env = portal_jstr(e, "env");
            if (!env || n == METRICS_ENVS_MAX)
                continue;
            m[n].env = env;
            const json_t *reps = jget(e, "replicas");
            int64_t port = 0;
            if (json_is_array(reps))
                json_array_foreach ((json_t *)reps, ridx, r) {
                    if (!json_is_true(jget(r, "ready")) || json_is_true(jget(r, "draining")) ||
                        !portal_jint(r, "port", &port) || port < 1 || port > 65535)
                        continue;
                    if (ns == SCRAPE_MAX) {
                        m[n].unanswered++;
                        continue;
                    }
                    core_buf_init(&s[ns].body, SCRAPE_BODY_MAX);
                    s[ns].env = n;
                    ports[ns++] = (int)port;
                }
            n++;
        }
    if (n == 0)
        n = 1; /* m[0].env NULL: the whole service */
    scrape_run(s, ports, ns);
    for (size_t i = 0; i < ns; i++) {
        struct portal_env_metrics *me = &m[s[i].env];
        if (s[i].ok) {
            portal_prom_sum_codes(s[i].body.data, s[i].body.len, &me->http);
            me->scraped++;
        } else {
            me->unanswered++;
        }
        core_buf_release(&s[i].body);
    }
    for (size_t i = 0; i < n; i++)
        count_logs(pg, name, m[i].env, &m[i].logs);
    metrics_body(pg, name, status, m, n);
}

/* ---- guard rails: the compliance dashboard, gate decisions and exceptions ---------------------
 *
 * Everything here reads the policy engine (src/policy) through its public calls: policy_report()
 * for the dashboard and the service page, policy_report_csv() for the CSV export,
 * policy_decision_get() for the "why was this blocked" page and policy_exception_request() /
 * policy_exception_list() for exceptions. Rule ids, descriptions, messages and remediation text
 * come from policy authors and from the subjects checked (tag values people wrote), so every
 * one of them is escaped like any other stored string. */

#define TREND_TABLE_ROWS 10       /* scans listed under the sparkline */
#define SPARK_W 240               /* sparkline size in CSS pixels */
#define SPARK_H 48
#define FAILURES_SHOWN 500        /* failing rows listed on the dashboard */
#define SERVICE_DECISIONS 5       /* gate decisions listed on a service page */
#define JUSTIFICATION_MAX 4000    /* as policy_exception_request() accepts */
#define EXPIRES_DEFAULT "30d"
#define CSV_TYPE "text/csv; charset=utf-8"
#define JSON_TYPE "application/json"

static int policy_off(struct page *pg)
{
    return portal_error_page(pg, 503, "Policy is not enabled",
                      "This server runs without the policy engine, so there is no compliance "
                      "report and no gate decision to show.");
}

/* An outcome ("pass", "fail", "excepted") as a badge; unknown values get no colour. */
static void outcome_badge(struct page *pg, const char *outcome)
{
    bool known = outcome && (strcmp(outcome, "pass") == 0 || strcmp(outcome, "fail") == 0 ||
                             strcmp(outcome, "excepted") == 0);
    out_s(pg, "<span class=\"outcome");
    if (known) {
        out_s(pg, " outcome-");
        out_s(pg, outcome);
    }
    out_s(pg, "\">");
    out_hd(pg, outcome);
    out_s(pg, "</span>");
}

static void out_percent(struct page *pg, const json_t *v)
{
    if (json_is_number(v))
        out_f(pg, "%.1f%%", json_number_value(v));
    else
        out_hd(pg, NULL);
}

static void out_count(struct page *pg, const json_t *obj, const char *key)
{
    int64_t n = 0;
    portal_jint(obj, key, &n);
    out_f(pg, "%lld", (long long)n);
}

/* s as one shell word for a copyable command line: as is when it holds only characters no shell
 * treats specially, else in single quotes ('\'' for a quote). HTML-escaped. */
static void out_shell_word(struct page *pg, const char *s)
{
    bool plain = s && *s;
    for (const char *c = s; plain && *c; c++)
        plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                strchr("-_./:@%+=,", *c) != NULL;
    if (plain) {
        out_h(pg, s);
        return;
    }
    out_s(pg, "'");
    for (const char *c = s ? s : ""; *c && !pg->rc; c++) {
        if (*c == '\'') {
            out_s(pg, "'\\''");
        } else {
            char one[2] = {*c, 0};
            out_h(pg, one);
        }
    }
    out_s(pg, "'");
}

/* Every rule of the active set by id ({id: {id, policy, description, severity, mode, ...}}).
 * returns: owned by the caller, or NULL with pg->err set. */
static json_t *rule_index(struct page *pg)
{
    struct policy_engine *pe = pg->p->policy;
    json_t *idx = json_object();
    json_t *list = policy_list(pe, &pg->err);
    size_t i, j;
    json_t *item, *r;
    if (!idx || !list)
        goto fail;
    json_array_foreach (json_object_get(list, "items"), i, item) {
        const char *name = portal_jstr(item, "name");
        struct core_err e = {0};
        json_t *show = name ? policy_show(pe, name, &e) : NULL;
        if (!show) {
            if (e.code == CORE_E_NOTFOUND || !name)
                continue; /* deleted since the listing */
            pg->err = e;
            goto fail;
        }
        json_array_foreach (json_object_get(show, "rules"), j, r) {
            const char *id = portal_jstr(r, "id");
            if (id && json_object_set(idx, id, r)) {
                json_decref(show);
                core_err_set(&pg->err, CORE_E_NOMEM, "out of memory");
                goto fail;
            }
        }
        json_decref(show);
    }
    json_decref(list);
    return idx;
fail:
    if (!pg->err.code)
        core_err_set(&pg->err, CORE_E_NOMEM, "out of memory");
    json_decref(list);
    json_decref(idx);
    return NULL;
}

/* The code of a failed engine call, for route() to turn into the 500 page. */
static int engine_rc(struct page *pg)
{
    return pg->err.code ? pg->err.code : CORE_E_NOMEM;
}

/* The dashboard's query: group (team, service or rule; default team), team and service. */
struct compliance_query {
    char group[16];
    char team[PARAM_MAX];
    char service[PARAM_MAX];
};

static int compliance_query_parse(struct page *pg, struct compliance_query *q)
{
    if (portal_form_value(pg->req->query, "group", q->group, sizeof(q->group)) ||
        portal_form_value(pg->req->query, "team", q->team, sizeof(q->team)) ||
        portal_form_value(pg->req->query, "service", q->service, sizeof(q->service)))
        return CORE_E_INVAL;
    if (!q->group[0])
        snprintf(q->group, sizeof(q->group), "team");
    if (strcmp(q->group, "team") && strcmp(q->group, "service") && strcmp(q->group, "rule"))
        return CORE_E_INVAL;
    return 0;
}

/* "PATH?group=G&amp;team=T&amp;service=S", leaving out empty values (group NULL: none). */
static void compliance_href(struct page *pg, const char *path, const char *group,
                            const char *team, const char *service)
{
    const char *sep = "?";
    out_s(pg, path);
    if (group) {
        out_s(pg, sep);
        out_s(pg, "group=");
        out_u(pg, group);
        sep = "&amp;";
    }
    if (team && *team) {
        out_s(pg, sep);
        out_s(pg, "team=");
        out_u(pg, team);
        sep = "&amp;";
    }
    if (service && *service) {
        out_s(pg, sep);
        out_s(pg, "service=");
        out_u(pg, service);
    }
}

static void totals_cards(struct page *pg, const json_t *t)
{
    out_s(pg, "<div class=\"totals\" id=\"totals\">\n<div class=\"card\"><span class=\"big\" "
              "id=\"total-pass\">");
    out_count(pg, t, "pass");
    out_s(pg, "</span>pass</div>\n<div class=\"card\"><span class=\"big bad\" id=\"total-fail\">");
    out_count(pg, t, "fail");
    out_s(pg, "</span>fail</div>\n<div class=\"card\"><span class=\"big\" id=\"total-excepted\">");
    out_count(pg, t, "excepted");
    out_s(pg, "</span>excepted</div>\n<div class=\"card\"><span class=\"big\" "
              "id=\"total-compliance\">");
    out_percent(pg, jget(t, "compliance"));
    out_s(pg, "</span>compliant</div>\n</div>\n");
}

/* The trend (oldest first) as an inline SVG polyline of the compliance percentage and a table
 * of the newest scans. No script: the SVG is plain markup, every number printed by us. */
static void trend_section(struct page *pg, const json_t *trend)
{
    size_t n = json_array_size(trend), i;
    json_t *s;
    out_s(pg, "<section id=\"trend\">\n<h2>Trend</h2>\n");
    if (n == 0) {
        out_s(pg, "<p class=\"muted\">No scans yet.</p>\n</section>\n");
        return;
    }
    if (n >= 2) {
        out_f(pg, "<svg class=\"spark\" id=\"sparkline\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" role=\"img\" ",
              SPARK_W, SPARK_H, SPARK_W, SPARK_H);
        out_f(pg, "aria-label=\"Compliance over the last %zu scans\">", n);
        out_f(pg, "<title>Compliance over the last %zu scans</title><polyline points=\"", n);
        json_array_foreach ((json_t *)trend, i, s) {
            double c = json_number_value(jget(s, "compliance"));
            c = c < 0 ? 0 : c > 100 ? 100 : c;
            double x = 4.0 + (double)i * (SPARK_W - 8) / (double)(n - 1);
            double y = 4.0 + (100.0 - c) * (SPARK_H - 8) / 100.0;
            out_f(pg, "%s%.1f,%.1f", i ? " " : "", x, y);
        }
        out_s(pg, "\"/></svg>\n");
    }
    out_s(pg, "<table id=\"trend-table\">\n<thead><tr><th>Scan</th><th>When</th>"
              "<th class=\"num\">Pass</th><th class=\"num\">Fail</th>"
              "<th class=\"num\">Excepted</th><th class=\"num\">Compliance</th></tr></thead>\n"
              "<tbody>\n");
    for (size_t k = 0; k < n && k < TREND_TABLE_ROWS; k++) {
        s = json_array_get(trend, n - 1 - k); /* newest first */
        int64_t id = 0;
        portal_jint(s, "scan", &id);
        out_f(pg, "<tr class=\"trend-row\"><td>#%lld</td><td>", (long long)id);
        portal_out_time(pg, portal_jstr(s, "ts"));
        out_s(pg, "</td><td class=\"num\">");
        out_count(pg, s, "pass");
        out_s(pg, "</td><td class=\"num\">");
        out_count(pg, s, "fail");
        out_s(pg, "</td><td class=\"num\">");
        out_count(pg, s, "excepted");
        out_s(pg, "</td><td class=\"num\">");
        out_percent(pg, jget(s, "compliance"));
        out_s(pg, "</td></tr>\n");
    }
    out_s(pg, "</tbody>\n</table>\n</section>\n");
}

static void group_row(struct page *pg, const struct compliance_query *q, const json_t *g,
                      const json_t *rules)
{
    const char *key = portal_jstr(g, "key");
    out_s(pg, "<tr class=\"group-row\"><td>");
    if (strcmp(q->group, "team") == 0) {
        out_s(pg, "<a href=\"");
        compliance_href(pg, "/compliance", "service", key, q->service);
        out_s(pg, "\">");
        out_h(pg, key);
        out_s(pg, "</a>");
    } else if (strcmp(q->group, "service") == 0 && key && core_is_dns_label(key)) {
        out_s(pg, "<a href=\"/services/");
        out_u(pg, key);
        out_s(pg, "#guard-rails\">");
        out_h(pg, key);
        out_s(pg, "</a>");
    } else if (strcmp(q->group, "rule") == 0) {
        const json_t *r = key ? json_object_get(rules, key) : NULL;
        out_s(pg, "<code>");
        out_h(pg, key);
        out_s(pg, "</code></td><td class=\"rule-description\">");
        out_hd(pg, portal_jstr(r, "description"));
        out_s(pg, "</td><td>");
        out_hd(pg, portal_jstr(r, "severity"));
        out_s(pg, "</td><td>");
        out_hd(pg, portal_jstr(r, "mode"));
    } else {
        out_h(pg, key);
    }
    out_s(pg, "</td><td class=\"num\">");
    out_count(pg, g, "pass");
    out_s(pg, "</td><td class=\"num\">");
    out_count(pg, g, "fail");
    out_s(pg, "</td><td class=\"num\">");
    out_count(pg, g, "excepted");
    out_s(pg, "</td><td class=\"num\">");
    out_percent(pg, jget(g, "compliance"));
    out_s(pg, "</td></tr>\n");
}

/* The rows of the report that did not pass, across every group. */
static void failures_table(struct page *pg, const json_t *groups)
{
    size_t i, j, shown = 0, more = 0;
    json_t *g, *r;
    out_s(pg, "<section id=\"failures\">\n<h2>Failing and excepted rules</h2>\n"
              "<table id=\"failure-rows\">\n<thead><tr><th>Team</th><th>Service</th><th>Rule</th>"
              "<th>Severity</th><th>Mode</th><th>Outcome</th><th>Message</th></tr></thead>\n"
              "<tbody>\n");
    json_array_foreach ((json_t *)groups, i, g) {
        json_array_foreach (json_object_get(g, "rows"), j, r) {
            const char *outcome = portal_jstr(r, "outcome");
            if (outcome && strcmp(outcome, "pass") == 0)
                continue;
            if (shown == FAILURES_SHOWN) {
                more++;
                continue;
            }
            shown++;
            const char *svc = portal_jstr(r, "service");
            out_s(pg, "<tr class=\"failure-row\"><td>");
            out_hd(pg, portal_jstr(r, "team"));
            out_s(pg, "</td><td>");
            if (svc && core_is_dns_label(svc)) {
                out_s(pg, "<a href=\"/services/");
                out_u(pg, svc);
                out_s(pg, "#guard-rails\">");
                out_h(pg, svc);
                out_s(pg, "</a>");
            } else {
                out_hd(pg, svc);
            }
            out_s(pg, "</td><td><code>");
            out_h(pg, portal_jstr(r, "rule"));
            out_s(pg, "</code></td><td>");
            out_hd(pg, portal_jstr(r, "severity"));
            out_s(pg, "</td><td>");
            out_hd(pg, portal_jstr(r, "mode"));
            out_s(pg, "</td><td>");
            outcome_badge(pg, outcome);
            out_s(pg, "</td><td>");
            out_hd(pg, portal_jstr(r, "message"));
            out_s(pg, "</td></tr>\n");
        }
    }
    if (shown == 0)
        out_s(pg, "<tr><td colspan=\"7\" class=\"empty\">Every rule passes.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n");
    if (more)
        out_f(pg, "<p class=\"more muted\">%zu more rows are in the CSV export.</p>\n", more);
    out_s(pg, "</section>\n");
}

/* GET /compliance?group=team|service|rule&team=&service= */
static int compliance_page(struct page *pg)
{
    struct compliance_query q;
    json_t *rep = NULL, *rules = NULL;
    int rc = 0;

    if (compliance_query_parse(pg, &q)) {
        rc = portal_bad_request(pg, "The filters could not be read: group is team, service or rule.");
        goto out;
    }
    if (!pg->p->policy) {
        rc = policy_off(pg);
        goto out;
    }
    if (!(rep = policy_report(pg->p->policy, q.group, q.team, q.service, &pg->err)) ||
        !(rules = rule_index(pg))) {
        rc = pg->err.code == CORE_E_INVAL ? portal_bad_request(pg, pg->err.msg) : engine_rc(pg);
        goto out;
    }

    const json_t *scan = jget(rep, "scan");
    pg->nav = "compliance";
    portal_page_begin(pg, 200, "Compliance");
    out_s(pg, "<h1>Compliance</h1>\n<p class=\"lead\" id=\"scan\">");
    if (json_is_object(scan)) {
        int64_t sid = 0;
        portal_jint(scan, "id", &sid);
        out_f(pg, "The guard rails of every service, from scan #%lld at ", (long long)sid);
        portal_out_time(pg, portal_jstr(scan, "ts"));
        out_s(pg, ". An excepted rule counts as compliant: its risk was accepted.</p>\n");
    } else {
        out_s(pg, "No scan has run yet. The server scans every service at start and every 5 "
                  "minutes; an administrator can run one now with <code>pave policy scan</code>."
                  "</p>\n");
    }

    /* filters: the grouping stays, team and service narrow */
    out_s(pg, "<form id=\"compliance-filters\" class=\"filters\" method=\"get\" "
              "action=\"/compliance\">\n<input type=\"hidden\" name=\"group\" value=\"");
    out_h(pg, q.group);
    out_s(pg, "\">\n<label for=\"team\" class=\"visually-hidden\">Team</label>\n"
              "<select id=\"team\" name=\"team\"><option value=\"\">All teams</option>");
    struct team_opts opts = {pg, q.team};
    if ((rc = catalog_team_list(pg->p->cat, team_option, &opts, &pg->err)))
        goto out;
    out_s(pg, "</select>\n<label for=\"service\" class=\"visually-hidden\">Service</label>\n"
              "<input id=\"service\" name=\"service\" maxlength=\"200\" "
              "placeholder=\"Service name\" value=\"");
    out_h(pg, q.service);
    out_s(pg, "\">\n<button type=\"submit\">Filter</button>\n");
    if (q.team[0] || q.service[0]) {
        out_s(pg, "<a class=\"clear\" id=\"clear\" href=\"");
        compliance_href(pg, "/compliance", q.group, NULL, NULL);
        out_s(pg, "\">Clear</a>\n");
    }
    out_s(pg, "</form>\n");

    totals_cards(pg, jget(rep, "totals"));

    out_s(pg, "<p id=\"exports\">Download: <a id=\"export-csv\" href=\"");
    compliance_href(pg, "/compliance.csv", NULL, q.team, q.service);
    out_s(pg, "\">CSV</a> &middot; <a id=\"export-json\" href=\"");
    compliance_href(pg, "/compliance.json", q.group, q.team, q.service);
    out_s(pg, "\">JSON</a> <span class=\"muted\">(also <code>pave policy report -o csv</code>)"
              "</span></p>\n");

    static const char *const groups[][2] = {
        {"team", "By team"}, {"service", "By service"}, {"rule", "By rule"}};
    out_s(pg, "<nav class=\"tabs\" id=\"groupings\" aria-label=\"Grouping\">");
    for (size_t i = 0; i < 3; i++) {
        out_s(pg, "<a href=\"");
        compliance_href(pg, "/compliance", groups[i][0], q.team, q.service);
        out_s(pg, "\"");
        if (strcmp(q.group, groups[i][0]) == 0)
            out_s(pg, " aria-current=\"page\"");
        out_s(pg, ">");
        out_s(pg, groups[i][1]);
        out_s(pg, "</a>");
    }
    out_s(pg, "</nav>\n<section id=\"groups\">\n<table id=\"group-table\">\n<thead><tr><th>");
    out_s(pg, strcmp(q.group, "team") == 0      ? "Team"
              : strcmp(q.group, "service") == 0 ? "Service"
                                                : "Rule</th><th>Description</th><th>Severity"
                                                  "</th><th>Mode");
    out_s(pg, "</th><th class=\"num\">Pass</th><th class=\"num\">Fail</th>"
              "<th class=\"num\">Excepted</th><th class=\"num\">Compliance</th></tr></thead>\n"
              "<tbody>\n");
    const json_t *gs = jget(rep, "groups");
    size_t i;
    json_t *g;
    json_array_foreach ((json_t *)gs, i, g)
        group_row(pg, &q, g, rules);
    if (json_array_size(gs) == 0)
        out_f(pg, "<tr><td colspan=\"%d\" class=\"empty\">No results match.</td></tr>\n",
              strcmp(q.group, "rule") == 0 ? 8 : 5);
    out_s(pg, "</tbody>\n</table>\n</section>\n");

    failures_table(pg, gs);
    trend_section(pg, jget(rep, "trend"));
    portal_page_end(pg);
    rc = pg->rc;
out:
    json_decref(rep);
    json_decref(rules);
    return rc;
}

/* GET /compliance.csv?team=&service=: the newest scan's rows (policy_report_csv). */
static int compliance_csv(struct page *pg)
{
    struct compliance_query q;
    if (compliance_query_parse(pg, &q))
        return portal_bad_request(pg, "The filters could not be read.");
    if (!pg->p->policy)
        return policy_off(pg);
    int rc = policy_report_csv(pg->p->policy, q.team, q.service, pg->b, &pg->err);
    if (rc)
        return rc;
    pg->resp->status = 200;
    pg->resp->content_type = CSV_TYPE;
    return 0;
}

/* GET /compliance.json?group=&team=&service=: policy_report() as the API answers it. */
static int compliance_json(struct page *pg)
{
    struct compliance_query q;
    if (compliance_query_parse(pg, &q))
        return portal_bad_request(pg, "The filters could not be read: group is team, service or rule.");
    if (!pg->p->policy)
        return policy_off(pg);
    json_t *rep = policy_report(pg->p->policy, q.group, q.team, q.service, &pg->err);
    if (!rep)
        return pg->err.code == CORE_E_INVAL ? portal_bad_request(pg, pg->err.msg) : engine_rc(pg);
    char *text = json_dumps(rep, JSON_INDENT(2) | JSON_ESCAPE_SLASH);
    json_decref(rep);
    if (!text)
        return CORE_E_NOMEM;
    out_s(pg, text);
    out_s(pg, "\n");
    free(text);
    pg->resp->status = 200;
    pg->resp->content_type = JSON_TYPE;
    return pg->rc;
}

/* ---- the "why was this blocked" page and exception requests --------------------------------- */

/* The exception form's fields, as sent (re-rendered after a refusal). */
struct exc_form {
    char rule[PARAM_MAX];
    char justification[JUSTIFICATION_MAX + 1];
    char expires[64];
};

/* A free-text form value: valid UTF-8; line breaks and tabs become spaces (a justification is
 * one line in the audit log), other control bytes are refused. Absent -> "". */
static int form_text(const char *form, const char *key, char *out, size_t outsz)
{
    int rc = core_form_get(form, key, out, outsz);
    if (rc == CORE_E_NOTFOUND) {
        out[0] = 0;
        return 0;
    }
    if (rc || !core_utf8_valid(out, strlen(out))) {
        out[0] = 0;
        return rc == CORE_E_TOO_BIG ? CORE_E_TOO_BIG : CORE_E_INVAL;
    }
    for (char *c = out; *c; c++) {
        if (*c == '\r' || *c == '\n' || *c == '\t')
            *c = ' ';
        else if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return CORE_E_INVAL;
    }
    return 0;
}

/* "30d", "12h" (from now) or a date "2025-12-31" (its start, UTC) to wall-clock ms. */
static int parse_expires(const char *s, int64_t now_ms, int64_t *out)
{
    int64_t ms = 0;
    if (core_parse_duration_ms(s, &ms) == 0 && ms > 0) {
        *out = now_ms + ms;
        return 0;
    }
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%d", &tm);
    if (!rest || *rest)
        return CORE_E_INVAL;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return CORE_E_INVAL;
    *out = (int64_t)t * 1000;
    return 0;
}

/* Whether rule is one of the decision's failing rules. */
static bool decision_failed_rule(const json_t *d, const char *rule)
{
    size_t i;
    json_t *f;
    json_array_foreach (json_object_get(d, "failed"), i, f) {
        const char *r = portal_jstr(f, "rule");
        if (r && strcmp(r, rule) == 0)
            return true;
    }
    return false;
}

static void out_exception_cli(struct page *pg, const char *subject, const char *rule,
                              const char *justification, const char *expires)
{
    out_s(pg, "pave policy exceptions request ");
    out_shell_word(pg, subject);
    out_s(pg, " ");
    out_shell_word(pg, rule);
    out_s(pg, " --justification ");
    out_shell_word(pg, justification);
    out_s(pg, " --expires ");
    out_shell_word(pg, expires);
}

static void exceptions_table(struct page *pg, const json_t *excs, const char *id)
{
    size_t i;
    json_t *x;
    const json_t *items = jget(excs, "items");
    out_s(pg, "<table id=\"");
    out_s(pg, id);
    out_s(pg, "\">\n<thead><tr><th>#</th><th>Rule</th><th>State</th><th>Expires</th>"
              "<th>Requested by</th><th>Decided by</th><th>Justification</th></tr></thead>\n"
              "<tbody>\n");
    json_array_foreach ((json_t *)items, i, x) {
        int64_t xid = 0;
        portal_jint(x, "id", &xid);
        out_f(pg, "<tr class=\"exception-row\" id=\"exception-%lld\"><td>%lld</td><td><code>",
              (long long)xid, (long long)xid);
        out_h(pg, portal_jstr(x, "rule"));
        out_s(pg, "</code></td><td><span class=\"state exc-state\">");
        out_hd(pg, portal_jstr(x, "state"));
        out_s(pg, "</span>");
        if (json_is_true(jget(x, "active")))
            out_s(pg, " <span class=\"ok\">active</span>");
        else if (json_is_true(jget(x, "expired")))
            out_s(pg, " <span class=\"muted\">expired</span>");
        out_s(pg, "</td><td>");
        portal_out_time(pg, portal_jstr(x, "expires_at"));
        out_s(pg, "</td><td>");
        out_hd(pg, portal_jstr(x, "requester"));
        out_s(pg, "</td><td>");
        out_hd(pg, portal_jstr(x, "approver"));
        out_s(pg, "</td><td>");
        out_hd(pg, portal_jstr(x, "justification"));
        out_s(pg, "</td></tr>\n");
    }
    if (json_array_size(items) == 0)
        out_s(pg, "<tr><td colspan=\"7\" class=\"empty\">No exceptions.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n");
}

/* The notice after a request: the stored exception, what happens next and the same request
 * on the command line. */
static void requested_notice(struct page *pg, const json_t *excs, int64_t requested,
                             const char *subject)
{
    size_t i;
    json_t *x;
    json_array_foreach (json_object_get(excs, "items"), i, x) {
        int64_t xid = 0;
        if (!portal_jint(x, "id", &xid) || xid != requested)
            continue;
        out_f(pg, "<div class=\"note\" id=\"requested\" role=\"status\"><p>Exception #%lld "
                  "for <code>", (long long)xid);
        out_h(pg, portal_jstr(x, "rule"));
        out_s(pg, "</code> is <strong id=\"requested-state\">");
        out_h(pg, portal_jstr(x, "state"));
        out_s(pg, "</strong> until ");
        portal_out_time(pg, portal_jstr(x, "expires_at"));
        out_f(pg, ". An administrator who is not you approves it: <code>pave policy exceptions "
                  "approve %lld</code>.</p>\n", (long long)xid);
        out_s(pg, "<p>The same request from the command line:</p>\n"
                  "<pre class=\"log\" id=\"requested-cli\">");
        /* the stored expiry: the CLI accepts an RFC 3339 time as well as a duration */
        out_exception_cli(pg, subject, portal_jstr(x, "rule"), portal_jstr(x, "justification"),
                          portal_jstr(x, "expires_at"));
        out_s(pg, "</pre></div>\n");
        return;
    }
}

/* The decision page. status/alert: a refused request's answer (200/NULL otherwise); form: the
 * values to show again (NULL: the defaults); requested: the exception just requested (0: none). */
static int decision_render(struct page *pg, int64_t id, int status, const char *alert,
                           const struct exc_form *form, int64_t requested)
{
    struct policy_engine *pe = pg->p->policy;
    json_t *d = NULL, *rules = NULL, *excs = NULL;
    int rc = 0;

    if (!pe)
        return policy_off(pg);
    if (!(d = policy_decision_get(pe, id, &pg->err))) {
        if (pg->err.code == CORE_E_NOTFOUND) {
            core_err_clear(&pg->err);
            return portal_error_page(pg, 404, "Decision not found", "No gate decision has that number.");
        }
        return engine_rc(pg);
    }
    const char *subject = portal_jstr(d, "subject");
    const char *kind = portal_jstr(d, "subject_kind");
    const json_t *failed = jget(d, "failed");
    bool blocked = json_is_true(jget(d, "blocked"));
    if (!(rules = rule_index(pg)) ||
        !(excs = policy_exception_list(pe, NULL, subject ? subject : "", &pg->err))) {
        rc = engine_rc(pg);
        goto out;
    }

    char title[64];
    snprintf(title, sizeof(title), "Decision #%lld", (long long)id);
    page_reset(pg);
    pg->nav = "compliance";
    portal_page_begin(pg, status, title);
    out_s(pg, "<p class=\"crumbs\"><a href=\"/compliance\">Compliance</a> / ");
    out_h(pg, title);
    out_s(pg, "</p>\n<h1>");
    out_h(pg, title);
    out_s(pg, blocked ? " <span class=\"outcome outcome-fail\" id=\"verdict\">blocked</span>"
                      : " <span class=\"outcome outcome-pass\" id=\"verdict\">allowed</span>");
    out_s(pg, "</h1>\n<p class=\"lead\">");
    out_s(pg, blocked ? "Why the " : "What the ");
    out_h(pg, portal_jstr(d, "gate"));
    out_s(pg, blocked ? " gate blocked " : " gate found for ");
    out_h(pg, subject);
    out_s(pg, blocked ? ": an enforced rule failed." : ".");
    out_s(pg, "</p>\n");
    if (requested)
        requested_notice(pg, excs, requested, subject);
    if (alert) {
        out_s(pg, "<p class=\"alert\" id=\"request-error\" role=\"alert\">");
        out_h(pg, alert);
        out_s(pg, "</p>\n");
    }

    out_s(pg, "<section id=\"decision\" class=\"card\">\n<dl class=\"facts\">\n");
    fact(pg, "gate", "Gate");
    out_hd(pg, portal_jstr(d, "gate"));
    out_s(pg, "</dd>\n");
    fact(pg, "subject", "Subject");
    if (kind && strcmp(kind, "service") == 0 && subject && core_is_dns_label(subject))
        out_link(pg, "/services/", subject);
    else
        out_hd(pg, subject);
    out_s(pg, " <span class=\"muted\">");
    out_h(pg, kind);
    out_s(pg, "</span></dd>\n");
    fact(pg, "team", "Team");
    out_hd(pg, portal_jstr(d, "team"));
    out_s(pg, "</dd>\n");
    fact(pg, "env", "Environment");
    out_hd(pg, portal_jstr(d, "env"));
    out_s(pg, "</dd>\n");
    fact(pg, "when", "When");
    portal_out_time(pg, portal_jstr(d, "ts"));
    out_s(pg, "</dd>\n");
    fact(pg, "blocked", "Blocked");
    out_s(pg, blocked ? "<span class=\"bad\">yes</span>" : "no");
    out_s(pg, "</dd>\n</dl>\n</section>\n");

    out_s(pg, "<section id=\"failed-rules\">\n<h2>Failing rules</h2>\n");
    size_t i;
    json_t *f;
    json_array_foreach ((json_t *)failed, i, f) {
        const char *rule = portal_jstr(f, "rule");
        const json_t *r = rule ? json_object_get(rules, rule) : NULL;
        out_s(pg, "<article class=\"card rule-card failed-rule\">\n<h3><code>");
        out_h(pg, rule);
        out_s(pg, "</code></h3>\n<p class=\"rule-description\">");
        out_hd(pg, portal_jstr(r, "description"));
        out_s(pg, "</p>\n<dl class=\"facts\">\n<dt>Severity</dt><dd>");
        out_hd(pg, portal_jstr(f, "severity"));
        out_s(pg, "</dd>\n<dt>Mode</dt><dd>");
        const char *mode = portal_jstr(f, "mode");
        out_hd(pg, mode);
        if (mode && strcmp(mode, "enforce") == 0)
            out_s(pg, " <span class=\"muted\">(blocks)</span>");
        else if (mode)
            out_s(pg, " <span class=\"muted\">(recorded, does not block)</span>");
        out_s(pg, "</dd>\n<dt>Policy</dt><dd>");
        out_hd(pg, portal_jstr(f, "policy"));
        out_s(pg, "</dd>\n<dt>What failed</dt><dd class=\"rule-message\">");
        out_hd(pg, portal_jstr(f, "message"));
        out_s(pg, "</dd>\n<dt>How to fix it</dt><dd class=\"remediation\">");
        out_hd(pg, portal_jstr(f, "remediation"));
        out_s(pg, "</dd>\n");
        if (portal_jstr(r, "rationale")) {
            out_s(pg, "<dt>Why the rule exists</dt><dd>");
            out_h(pg, portal_jstr(r, "rationale"));
            out_s(pg, "</dd>\n");
        }
        out_s(pg, "</dl>\n</article>\n");
    }
    if (json_array_size(failed) == 0)
        out_s(pg, "<p class=\"muted\">No rule failed: the gate let it through.</p>\n");
    out_s(pg, "</section>\n");

    if (json_array_size(failed) > 0) {
        const char *sel = form && form->rule[0] ? form->rule : portal_jstr(json_array_get(failed, 0),
                                                                   "rule");
        const char *exp = form && form->expires[0] ? form->expires : EXPIRES_DEFAULT;
        out_s(pg, "<section id=\"request\">\n<h2>Request an exception</h2>\n<p>An exception lets "
                  "<strong>");
        out_h(pg, subject);
        out_s(pg, "</strong> fail one rule until it expires. Anyone in the team that owns it (or "
                  "an administrator) may ask; an administrator who is not the requester approves "
                  "it. Fixing the cause is better: the remediation above says how.</p>\n"
                  "<form id=\"exception-form\" class=\"form card\" method=\"post\" "
                  "action=\"/policy/decisions/");
        out_f(pg, "%lld", (long long)id);
        out_s(pg, "/exceptions\">\n<input type=\"hidden\" name=\"csrf\" value=\"");
        out_h(pg, pg->csrf);
        out_s(pg, "\">\n<label for=\"rule\">Rule</label>\n<select id=\"rule\" name=\"rule\">");
        json_array_foreach ((json_t *)failed, i, f) {
            const char *rule = portal_jstr(f, "rule");
            if (!rule)
                continue;
            out_s(pg, "<option value=\"");
            out_h(pg, rule);
            out_s(pg, "\"");
            if (sel && strcmp(sel, rule) == 0)
                out_s(pg, " selected");
            out_s(pg, ">");
            out_h(pg, rule);
            out_s(pg, "</option>");
        }
        out_s(pg, "</select>\n<label for=\"justification\">Justification</label>\n"
                  "<p class=\"hint\">Why the rule cannot be met now, and the plan to meet it."
                  "</p>\n");
        out_f(pg, "<textarea id=\"justification\" name=\"justification\" required "
                  "maxlength=\"%d\">", JUSTIFICATION_MAX);
        out_h(pg, form ? form->justification : NULL);
        out_s(pg, "</textarea>\n<label for=\"expires\">Expires</label>\n<p class=\"hint\">A "
                  "duration from now (<code>30d</code>, <code>12h</code>) or a date "
                  "(<code>2025-12-31</code>); at most one year.</p>\n<input id=\"expires\" "
                  "name=\"expires\" maxlength=\"40\" value=\"");
        out_h(pg, exp);
        out_s(pg, "\">\n<button type=\"submit\">Request exception</button>\n</form>\n"
                  "<p>From the command line:</p>\n<pre class=\"log\" id=\"request-cli\">");
        out_exception_cli(pg, subject, sel,
                          form && form->justification[0] ? form->justification : "WHY", exp);
        out_s(pg, "</pre>\n</section>\n");
    }

    out_s(pg, "<section id=\"exceptions\">\n<h2>Exceptions for ");
    out_h(pg, subject);
    out_s(pg, "</h2>\n");
    exceptions_table(pg, excs, "subject-exceptions");
    out_s(pg, "</section>\n");
    portal_page_end(pg);
    rc = pg->rc;
out:
    json_decref(d);
    json_decref(rules);
    json_decref(excs);
    return rc;
}

/* GET /policy/decisions/ID[?requested=EXCEPTION] */
static int decision_page(struct page *pg, int64_t id)
{
    char req_s[32];
    int64_t requested = 0;
    if (portal_form_value(pg->req->query, "requested", req_s, sizeof(req_s)) ||
        (req_s[0] && !portal_parse_id(req_s, strlen(req_s), &requested)))
        return portal_bad_request(pg, "'requested' must be an exception number.");
    return decision_render(pg, id, 200, NULL, NULL, requested);
}

/* POST /policy/decisions/ID/exceptions: rule, justification, expires (default 30d). */
static int exception_post(struct page *pg, int64_t id)
{
    struct policy_engine *pe = pg->p->policy;
    struct exc_form *f = NULL;
    struct core_err e = {0};
    json_t *d = NULL;
    int64_t exp = 0, xid = 0;
    int rc = 0;

    if (!pe)
        return policy_off(pg);
    if (!(f = core_calloc(1, sizeof(*f))))
        return CORE_E_NOMEM;
    if (portal_form_value(pg->form, "rule", f->rule, sizeof(f->rule)) ||
        form_text(pg->form, "justification", f->justification, sizeof(f->justification)) ||
        portal_form_value(pg->form, "expires", f->expires, sizeof(f->expires))) {
        rc = decision_render(pg, id, 400, "The form could not be read (a justification may be "
                                          "at most 4000 characters).",
                             f, 0);
        goto out;
    }
    if (!(d = policy_decision_get(pe, id, &pg->err))) {
        if (pg->err.code == CORE_E_NOTFOUND) {
            core_err_clear(&pg->err);
            rc = portal_error_page(pg, 404, "Decision not found", "No gate decision has that number.");
        } else {
            rc = engine_rc(pg);
        }
        goto out;
    }
    const char *subject = portal_jstr(d, "subject");
    if (!f->rule[0] || !decision_failed_rule(d, f->rule)) {
        rc = decision_render(pg, id, 400, "Choose one of the rules that failed in this decision.",
                             f, 0);
        goto out;
    }
    if (!f->justification[0]) {
        rc = decision_render(pg, id, 400, "A justification is required: why the rule cannot be "
                                          "met, and the plan to meet it.",
                             f, 0);
        goto out;
    }
    if (!f->expires[0])
        snprintf(f->expires, sizeof(f->expires), EXPIRES_DEFAULT);
    if (parse_expires(f->expires, core_now_ms(), &exp)) {
        rc = decision_render(pg, id, 400, "The expiry must be a duration from now (30d, 12h) or "
                                          "a date (2025-12-31).",
                             f, 0);
        goto out;
    }
    rc = policy_exception_request(pe, &pg->who.actor, subject ? subject : "", f->rule,
                                  f->justification, exp, &xid, &e);
    switch (rc) {
    case 0:
        break;
    case CORE_E_PERM:
        log_warn("portal", "exception request refused", LOG_STR("subject", subject),
                 LOG_STR("rule", f->rule), LOG_STR("user", pg->who.user),
                 LOG_STR("error", e.msg));
        rc = decision_render(pg, id, 403, e.msg, f, 0);
        goto out;
    case CORE_E_NOTFOUND:
        rc = decision_render(pg, id, 404, e.msg, f, 0);
        goto out;
    case CORE_E_INVAL:
        rc = decision_render(pg, id, 400, e.msg, f, 0);
        goto out;
    default:
        pg->err = e;
        goto out;
    }
    log_info("portal", "exception requested", LOG_STR("subject", subject),
             LOG_STR("rule", f->rule), LOG_INT("exception", xid), LOG_STR("user", pg->who.user));
    char to[96];
    snprintf(to, sizeof(to), "/policy/decisions/%lld?requested=%lld#exceptions", (long long)id,
             (long long)xid);
    rc = portal_redirect(pg, to); /* two numbers */
out:
    json_decref(d);
    if (f)
        explicit_bzero(f, sizeof(*f));
    core_free(f);
    return rc;
}

/* ---- the service page's "Guard rails" section ----------------------------------------------- */

static void service_guard_section(struct page *pg, const char *name)
{
    struct policy_engine *pe = pg->p->policy;
    struct core_err e = {0};
    json_t *rep = NULL, *excs = NULL, *decs = NULL;
    size_t i, j;
    json_t *g, *r;

    out_s(pg, "<section id=\"guard-rails\">\n<h2>Guard rails</h2>\n");
    if (!pe) {
        out_s(pg, "<p class=\"muted\" id=\"guard-rails-off\">Policy is not enabled on this "
                  "server.</p>\n</section>\n");
        return;
    }
    rep = policy_report(pe, "service", NULL, name, &e);
    const json_t *scan = jget(rep, "scan");
    if (!rep) {
        log_warn("portal", "compliance report unreadable", LOG_STR("service", name),
                 LOG_STR("error", e.msg));
        out_s(pg, "<p class=\"note\">The compliance report could not be read.</p>\n");
    } else if (!json_is_object(scan)) {
        out_s(pg, "<p class=\"muted\">No policy scan has run yet.</p>\n");
    } else {
        const json_t *t = jget(rep, "totals");
        int64_t sid = 0;
        portal_jint(scan, "id", &sid);
        out_f(pg, "<p id=\"guard-summary\">Scan #%lld at ", (long long)sid);
        portal_out_time(pg, portal_jstr(scan, "ts"));
        out_s(pg, ": ");
        out_count(pg, t, "pass");
        out_s(pg, " pass, <span class=\"bad\">");
        out_count(pg, t, "fail");
        out_s(pg, " fail</span>, ");
        out_count(pg, t, "excepted");
        out_s(pg, " excepted (");
        out_percent(pg, jget(t, "compliance"));
        out_s(pg, " compliant).</p>\n<table id=\"guard-rows\">\n<thead><tr><th>Rule</th>"
                  "<th>Outcome</th><th>Severity</th><th>Mode</th><th>Message</th></tr></thead>\n"
                  "<tbody>\n");
        size_t n = 0;
        json_array_foreach (json_object_get(rep, "groups"), i, g) {
            json_array_foreach (json_object_get(g, "rows"), j, r) {
                n++;
                out_s(pg, "<tr class=\"guard-row\"><td><code>");
                out_h(pg, portal_jstr(r, "rule"));
                out_s(pg, "</code></td><td>");
                outcome_badge(pg, portal_jstr(r, "outcome"));
                out_s(pg, "</td><td>");
                out_hd(pg, portal_jstr(r, "severity"));
                out_s(pg, "</td><td>");
                out_hd(pg, portal_jstr(r, "mode"));
                out_s(pg, "</td><td>");
                out_hd(pg, portal_jstr(r, "message"));
                out_s(pg, "</td></tr>\n");
            }
        }
        if (n == 0)
            out_s(pg, "<tr><td colspan=\"5\" class=\"empty\">No rule applies to this service."
                      "</td></tr>\n");
        out_s(pg, "</tbody>\n</table>\n");
    }

    core_err_clear(&e);
    if ((decs = policy_decision_list(pe, name, SERVICE_DECISIONS, 0, &e)) &&
        json_array_size(json_object_get(decs, "items")) > 0) {
        out_s(pg, "<h3 class=\"more\">Recent gate decisions</h3>\n<ul id=\"guard-decisions\">");
        json_array_foreach (json_object_get(decs, "items"), i, r) {
            int64_t did = 0;
            portal_jint(r, "id", &did);
            out_f(pg, "<li><a href=\"/policy/decisions/%lld\">#%lld</a> ", (long long)did,
                  (long long)did);
            out_h(pg, portal_jstr(r, "gate"));
            out_s(pg, json_is_true(jget(r, "blocked")) ? " <span class=\"bad\">blocked</span> "
                                                       : " allowed ");
            portal_out_time(pg, portal_jstr(r, "ts"));
            out_s(pg, "</li>");
        }
        out_s(pg, "</ul>\n");
    }

    core_err_clear(&e);
    out_s(pg, "<h3 class=\"more\">Exceptions</h3>\n");
    if ((excs = policy_exception_list(pe, NULL, name, &e)))
        exceptions_table(pg, excs, "guard-exceptions");
    else
        out_s(pg, "<p class=\"note\">The exceptions could not be read.</p>\n");
    out_s(pg, "<p class=\"more\"><a id=\"guard-dashboard\" href=\"");
    compliance_href(pg, "/compliance", "service", NULL, name);
    out_s(pg, "\">Compliance dashboard</a></p>\n</section>\n");
    json_decref(rep);
    json_decref(excs);
    json_decref(decs);
}

/* ---- service page ---------------------------------------------------------------------------- */

static int service_page(struct page *pg, const char *name)
{
    struct catalog_service s = {0};
    json_t *m = NULL, *status = NULL;
    const char *problem = NULL;
    int rc = 0;

    if (!core_is_dns_label(name)) {
        rc = portal_not_found(pg);
        goto out;
    }
    rc = catalog_service_get(pg->p->cat, name, &s, &pg->err);
    if (rc == CORE_E_NOTFOUND) {
        rc = portal_error_page(pg, 404, "Service not found",
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
    portal_page_begin(pg, 200, s.name);
    out_s(pg, "<p class=\"crumbs\"><a href=\"/catalog\">Catalog</a> / ");
    out_h(pg, s.name);
    out_s(pg, "</p>\n<h1 id=\"service-name\">");
    out_h(pg, s.name);
    out_s(pg, "</h1>\n<p class=\"lead\" id=\"description\">");
    out_hd(pg, s.description);
    out_s(pg, "</p>\n<p class=\"service-nav\" id=\"service-nav\">");
    logs_link(pg, s.name, NULL, "service-logs");
    out_s(pg, " &middot; <a href=\"#metrics\">Metrics</a> &middot; <a href=\"#runs\">Runs</a> "
              "&middot; <a href=\"#deployments\">Deployments</a> &middot; "
              "<a href=\"#guard-rails\">Guard rails</a></p>\n"
              "<section id=\"overview\" class=\"card\">\n");
    service_facts(pg, &s, m);
    out_s(pg, "</section>\n");
    status = service_status(pg, s.name, &problem);
    service_metrics_section(pg, s.name, status);
    out_s(pg, "<section id=\"manifest\">\n<h2>Manifest</h2>\n<pre class=\"json\">");
    if (m)
        out_json_pretty(pg, m, 0);
    else
        out_h(pg, s.manifest);
    out_s(pg, "</pre>\n</section>\n");
    rc = service_runs_section(pg, s.name);
    if (rc)
        goto out;
    service_artifacts_section(pg, s.name);
    service_deployments_section(pg, s.name, status, problem);
    service_guard_section(pg, s.name);
    out_s(pg, "<section id=\"audit\">\n<h2>History</h2>\n");
    rc = portal_audit_table(pg, "service", s.name, "service-audit");
    if (rc)
        goto out;
    out_s(pg, "</section>\n");
    portal_page_end(pg);
    rc = pg->rc;
out:
    if (m)
        json_decref(m);
    if (status)
        json_decref(status);
    catalog_service_release(&s);
    return rc;
}

/* ---- creating a service from a template ------------------------------------------------------ */

#define CREATE_VARS_MAX 32

/* What the create form holds: the request's values on a re-render, else the defaults. */
struct create_form {
    bool posted;
    char tmpl[PARAM_MAX];
    char name[PARAM_MAX];
    char team[PARAM_MAX];
    char description[PARAM_MAX];
    char vals[CREATE_VARS_MAX][PARAM_MAX]; /* by variable index of the chosen template */
};

static bool is_description(const struct template_var *v)
{
    return strcmp(v->name, "description") == 0;
}

/* Appends one message line (no newlines inside) to the error list. */
static void add_msg(struct core_buf *msgs, const char *fmt, ...) CORE_PRINTF(2, 3);
static void add_msg(struct core_buf *msgs, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    for (char *c = line; *c; c++)
        if (*c == '\n')
            *c = ' ';
    if (core_buf_adds(msgs, line) == 0)
        core_buf_addc(msgs, '\n');
}

struct create_teams {
    struct page *pg;
    const char *selected;
};

static void create_team_option(struct page *pg, const char *name, const char *selected)
{
    out_s(pg, "<option value=\"");
    out_h(pg, name);
    out_s(pg, "\"");
    if (selected && strcmp(selected, name) == 0)
        out_s(pg, " selected");
    out_s(pg, ">");
    out_h(pg, name);
    out_s(pg, "</option>");
}

static int create_team_fn(void *arg, const struct catalog_team *t)
{
    struct create_teams *c = arg;
    create_team_option(c->pg, t->name, c->selected);
    return c->pg->rc;
}

/* Whether the signed-in user may create services for team (admins: any existing team). */
static int team_allowed(struct page *pg, const char *team, bool *ok)
{
    *ok = false;
    if (!pg->who.is_admin) {
        *ok = catalog_actor_in_team(&pg->who.actor, team);
        return 0;
    }
    struct catalog_team t = {0};
    int rc = catalog_team_get(pg->p->cat, team, &t, &pg->err);
    catalog_team_release(&t);
    if (rc == CORE_E_NOTFOUND) {
        core_err_clear(&pg->err);
        return 0;
    }
    *ok = rc == 0;
    return rc;
}

/* The whole create page. t is the chosen template (NULL when none could be loaded), names the
 * installed templates, msgs the problems to show (may be empty). */
static int create_render(struct page *pg, int status, const char *root, char **names,
                         size_t nnames, const struct template *t, const struct create_form *f,
                         const char *msgs)
{
    int rc = 0;
    page_reset(pg);
    pg->nav = "create";
    portal_page_begin(pg, status, "Create a service");
    out_s(pg, "<h1>Create a service</h1>\n<p class=\"lead\">Start from a golden-path template. "
              "The portal renders it, registers the service in the catalog and makes it the "
              "first commit of the service's git repository, which starts its first pipeline "
              "run.</p>\n");
    if (msgs && *msgs) {
        out_s(pg, "<div class=\"alert\" id=\"create-errors\" role=\"alert\">"
                  "<p>The service was not created:</p><ul>");
        for (const char *line = msgs; *line;) {
            const char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            char *one = core_strndup(line, len);
            if (!one)
                return CORE_E_NOMEM;
            out_s(pg, "<li>");
            out_h(pg, one);
            out_s(pg, "</li>");
            core_free(one);
            line += len + (nl ? 1 : 0);
        }
        out_s(pg, "</ul></div>\n");
    }
    if (!pg->p->data_dir) {
        out_s(pg, "<p class=\"note\" id=\"create-off\">Creating services is not available on this "
                  "server (it has no data directory).</p>\n");
        portal_page_end(pg);
        return pg->rc;
    }
    if (!pg->p->runner)
        out_s(pg, "<p class=\"note\" id=\"pipelines-off\">Pipelines are off on this server: the "
                  "service and its repository are created, but no run starts.</p>\n");
    if (nnames == 0) {
        out_s(pg, "<p class=\"note\" id=\"no-templates\">No templates are installed on this "
                  "server.</p>\n");
        portal_page_end(pg);
        return pg->rc;
    }

    /* choosing the template is a GET, so the variables below always match it */
    out_s(pg, "<section class=\"card\" id=\"templates\">\n<form id=\"choose-template\" "
              "class=\"filters\" method=\"get\" action=\"/create\">\n"
              "<label for=\"template\">Template</label>\n<select id=\"template\" "
              "name=\"template\">");
    for (size_t i = 0; i < nnames; i++) {
        struct template other;
        struct core_err lerr = {0};
        bool loaded = template_load(&other, root, names[i], &lerr) == 0;
        out_s(pg, "<option value=\"");
        out_h(pg, names[i]);
        out_s(pg, "\"");
        if (t && strcmp(t->name, names[i]) == 0)
            out_s(pg, " selected");
        out_s(pg, ">");
        out_h(pg, names[i]);
        if (loaded && other.description) {
            out_s(pg, " &mdash; ");
            out_h(pg, other.description);
        }
        out_s(pg, "</option>");
        if (loaded)
            template_release(&other);
    }
    out_s(pg, "</select>\n<button type=\"submit\" id=\"use-template\">Use this template</button>\n"
              "</form>\n");
    if (t) {
        out_s(pg, "<p id=\"template-description\"><strong>");
        out_h(pg, t->name);
        out_s(pg, "</strong>");
        if (t->language) {
            out_s(pg, " <span class=\"chip\">");
            out_h(pg, t->language);
            out_s(pg, "</span>");
        }
        out_s(pg, " ");
        out_hd(pg, t->description);
        out_s(pg, "</p>\n");
    }
    out_s(pg, "</section>\n");
    if (!t) {
        portal_page_end(pg);
        return pg->rc;
    }

    out_s(pg, "<h2>New service from ");
    out_h(pg, t->name);
    out_s(pg, "</h2>\n<form id=\"create\" class=\"card form\" method=\"post\" action=\"/create\">\n"
              "<input type=\"hidden\" name=\"csrf\" value=\"");
    out_h(pg, pg->csrf);
    out_s(pg, "\">\n<input type=\"hidden\" name=\"template\" value=\"");
    out_h(pg, t->name);
    out_s(pg, "\">\n<label for=\"name\">Service name</label>\n"
              "<input id=\"name\" name=\"name\" required maxlength=\"63\" autocomplete=\"off\" "
              "spellcheck=\"false\" pattern=\"[a-z0-9]([a-z0-9\\-]*[a-z0-9])?\" value=\"");
    out_h(pg, f ? f->name : "");
    out_s(pg, "\">\n<p class=\"hint\">Lower-case letters, digits and '-', up to 63 characters; "
              "it names the service, its repository and its hostname.</p>\n"
              "<label for=\"team\">Team</label>\n<select id=\"team\" name=\"team\" required>");
    const char *sel = f ? f->team : NULL;
    if (pg->who.is_admin) {
        struct create_teams ct = {pg, sel};
        if ((rc = catalog_team_list(pg->p->cat, create_team_fn, &ct, &pg->err)))
            return rc;
    } else {
        for (size_t i = 0; i < pg->who.nteams; i++)
            create_team_option(pg, pg->who.teams[i], sel);
    }
    out_s(pg, "</select>\n");
    if (!pg->who.is_admin && pg->who.nteams == 0)
        out_s(pg, "<p class=\"hint\" id=\"no-teams\">You are not a member of any team; ask an "
                  "administrator to add you to one.</p>\n");
    int desc = -1;
    for (size_t i = 0; i < t->nvars; i++)
        if (is_description(&t->vars[i]))
            desc = (int)i;
    if (desc >= 0) {
        const struct template_var *v = &t->vars[desc];
        out_s(pg, "<label for=\"description\">Description</label>\n<input id=\"description\" "
                  "name=\"description\" maxlength=\"200\" value=\"");
        out_h(pg, f && f->posted ? f->description : v->default_value);
        out_s(pg, "\">\n<p class=\"hint\">");
        out_h(pg, v->description ? v->description : "One line shown in the catalog.");
        out_s(pg, "</p>\n");
    }
    for (size_t i = 0; i < t->nvars && i < CREATE_VARS_MAX; i++) {
        const struct template_var *v = &t->vars[i];
        if ((int)i == desc)
            continue;
        out_s(pg, "<label for=\"var-");
        out_h(pg, v->name);
        out_s(pg, "\">");
        out_h(pg, v->name);
        out_s(pg, "</label>\n<input id=\"var-");
        out_h(pg, v->name);
        out_s(pg, "\" name=\"var.");
        out_h(pg, v->name);
        out_s(pg, "\" maxlength=\"200\" class=\"template-var\"");
        if (v->required && !v->default_value)
            out_s(pg, " required");
        out_s(pg, " value=\"");
        out_h(pg, f && f->posted ? f->vals[i] : v->default_value);
        out_s(pg, "\">\n<p class=\"hint\">");
        out_hd(pg, v->description);
        if (v->default_value) {
            out_s(pg, " (default <code>");
            out_h(pg, v->default_value);
            out_s(pg, "</code>)");
        }
        out_s(pg, "</p>\n");
    }
    out_s(pg, "<button type=\"submit\" id=\"create-submit\">Create service</button>\n</form>\n");
    portal_page_end(pg);
    return pg->rc;
}

/* Finds the templates and loads the chosen one (or the first). *t is left zeroed on failure,
 * with the reason in msgs. */
static int create_load(struct page *pg, const char *want, char *root, size_t rootsz,
                       char ***names, size_t *nnames, struct template *t, bool *have_t,
                       struct core_buf *msgs)
{
    struct core_err terr = {0};
    *have_t = false;
    if (!pg->p->data_dir)
        return 0;
    if (template_root(root, rootsz, &terr) || template_names(root, names, nnames, &terr)) {
        if (terr.code == CORE_E_NOMEM)
            return CORE_E_NOMEM;
        log_warn("portal", "no templates", LOG_STR("error", terr.msg));
        return 0;
    }
    if (*nnames == 0)
        return 0;
    const char *name = want && *want ? want : (*names)[0];
    bool listed = false;
    for (size_t i = 0; i < *nnames; i++)
        if (strcmp((*names)[i], name) == 0)
            listed = true;
    if (!listed) {
        add_msg(msgs, "There is no template named '%s'.", name);
        name = (*names)[0];
    }
    int rc = template_load(t, root, name, &terr);
    if (rc == CORE_E_NOMEM)
        return rc;
    if (rc) {
        add_msg(msgs, "Template '%s' cannot be used: %s", name, terr.msg);
        memset(t, 0, sizeof(*t));
        return 0;
    }
    *have_t = true;
    return 0;
}

static int create_get(struct page *pg)
{
    char want[PARAM_MAX], root[4096] = "";
    char **names = NULL;
    size_t nnames = 0;
    struct template t = {0};
    bool have_t = false;
    struct core_buf msgs;
    core_buf_init(&msgs, CREATE_ERRORS_MAX);
    int rc = 0;
    if (portal_form_value(pg->req->query, "template", want, sizeof(want))) {
        rc = portal_bad_request(pg, "The template parameter could not be read.");
        goto out;
    }
    rc = create_load(pg, want, root, sizeof(root), &names, &nnames, &t, &have_t, &msgs);
    if (rc)
        goto out;
    rc = create_render(pg, msgs.len ? 404 : 200, root, names, nnames, have_t ? &t : NULL, NULL,
                       msgs.data);
out:
    if (have_t)
        template_release(&t);
    template_names_free(names, nnames);
    core_buf_release(&msgs);
    return rc;
}

/* Checks the form against the template and fills vals (NULL = the default). */
static void create_check(struct page *pg, const struct template *t, struct create_form *f,
                         const char **vals, struct core_buf *msgs)
{
    if (!f->name[0])
        add_msg(msgs, "Enter a service name.");
    else if (!core_is_dns_label(f->name))
        add_msg(msgs, "'%s' is not a valid service name: use 1-63 lower-case letters, digits and "
                      "'-', starting and ending with a letter or digit.", f->name);
    if (!f->team[0]) {
        add_msg(msgs, "Choose a team.");
    } else {
        bool ok = false;
        if (team_allowed(pg, f->team, &ok) == 0 && !ok)
            add_msg(msgs, "You cannot create services for team '%s'%s.", f->team,
                    pg->who.is_admin ? ": there is no such team" : ": you are not a member");
    }
    for (size_t i = 0; i < t->nvars && i < CREATE_VARS_MAX; i++) {
        const struct template_var *v = &t->vars[i];
        const char *val = is_description(v) ? f->description : f->vals[i];
        vals[i] = *val ? val : NULL;
        if (!vals[i] && !v->default_value) {
            if (v->required)
                add_msg(msgs, "Enter a value for '%s'.", v->name);
            continue;
        }
        struct core_err verr = {0};
        if (template_value_check(v, vals[i] ? vals[i] : v->default_value, &verr))
            add_msg(msgs, "%s", verr.msg);
    }
    if (t->nvars > CREATE_VARS_MAX)
        add_msg(msgs, "Template '%s' has too many variables for this form.", t->name);
}

/* Renders, registers and imports. Problems go to msgs; only internal failures are returned. */
static int create_do(struct page *pg, const struct template *t, const struct create_form *f,
                     const char **vals, struct core_buf *msgs)
{
    struct template_output out = {0};
    struct catalog_manifest m;
    struct schema_diags d;
    struct core_buf diag_text;
    struct core_err e = {0};
    char tmp[4200] = "", dest[4500];
    int rc = 0;
    catalog_manifest_init(&m);
    schema_diags_init(&d);
    core_buf_init(&diag_text, CREATE_ERRORS_MAX);

    struct template_values v = {.name = f->name, .team = f->team, .vals = vals};
    if (template_render(t, &v, &out, &e)) {
        add_msg(msgs, "Template '%s' could not be rendered: %s", t->name, e.msg);
        goto out;
    }
    const struct template_file *manifest = NULL;
    for (size_t i = 0; i < out.n; i++)
        if (strcmp(out.files[i].path, "pave.yaml") == 0)
            manifest = &out.files[i];
    if (!manifest) {
        add_msg(msgs, "Template '%s' has no pave.yaml.", t->name);
        goto out;
    }
    int prc = catalog_manifest_parse("pave.yaml", manifest->data, manifest->len, &m, &d, &e);
    if (prc == CORE_E_NOMEM) {
        rc = prc;
        goto out;
    }
    enum catalog_change change = CATALOG_UNCHANGED;
    char source[PARAM_MAX + 16];
    snprintf(source, sizeof(source), "template:%s", t->name);
    if (!prc)
        prc = catalog_service_apply(pg->p->cat, &pg->who.actor, &m, source, &change, &d, &e);
    if (prc == CORE_E_NOMEM) {
        rc = prc;
        goto out;
    }
    if (prc) {
        if (d.n && schema_diags_format(&d, &diag_text) == 0) {
            add_msg(msgs, "The rendered pave.yaml was refused:");
            core_buf_adds(msgs, diag_text.data);
        } else {
            add_msg(msgs, "The rendered pave.yaml was refused: %s", e.msg);
        }
        goto out;
    }
    log_info("portal", "service created from template", LOG_STR("service", f->name),
             LOG_STR("template", t->name), LOG_STR("user", pg->who.user));

    /* the first commit, from a scratch directory under DATA/tmp */
    char tmp_root[4096];
    snprintf(tmp_root, sizeof(tmp_root), "%s/tmp", pg->p->data_dir);
    if (core_mkdir_p(tmp_root, 0700, &e)) {
        add_msg(msgs, "The service was registered, but its repository could not be created: %s",
                e.msg);
        goto out;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/create-XXXXXX", tmp_root) >= sizeof(tmp) ||
        !mkdtemp(tmp)) {
        add_msg(msgs, "The service was registered, but its repository could not be created: "
                      "cannot make a scratch directory: %s", strerror(errno));
        tmp[0] = 0;
        goto out;
    }
    snprintf(dest, sizeof(dest), "%s/%s", tmp, f->name);
    char message[PARAM_MAX * 2 + 32];
    snprintf(message, sizeof(message), "Create %s from template %s", f->name, t->name);
    if (template_write(dest, &out, &e) ||
        ci_repo_import(pg->p->runner, pg->p->data_dir, f->name, pg->who.user, dest, message,
                       &e)) {
        log_warn("portal", "repository import failed", LOG_STR("service", f->name),
                 LOG_STR("error", e.msg));
        add_msg(msgs, "The service was registered, but its repository could not be created: %s",
                e.msg);
        goto out;
    }
out:
    if (tmp[0])
        template_remove(tmp);
    template_output_release(&out);
    catalog_manifest_release(&m);
    schema_diags_release(&d);
    core_buf_release(&diag_text);
    return rc;
}

static int create_post(struct page *pg)
{
    struct create_form *f = core_calloc(1, sizeof(*f));
    char root[4096] = "";
    char **names = NULL;
    size_t nnames = 0;
    struct template t = {0};
    bool have_t = false;
    struct catalog_service existing = {0};
    const char **vals = NULL;
    struct core_buf msgs;
    core_buf_init(&msgs, CREATE_ERRORS_MAX);
    int rc = 0;
    if (!f) {
        rc = CORE_E_NOMEM;
        goto out;
    }
    f->posted = true;
    if (portal_form_value(pg->form, "template", f->tmpl, sizeof(f->tmpl)) ||
        portal_form_value(pg->form, "name", f->name, sizeof(f->name)) ||
        portal_form_value(pg->form, "team", f->team, sizeof(f->team)) ||
        portal_form_value(pg->form, "description", f->description, sizeof(f->description)))
        add_msg(&msgs, "The form could not be read (a value is too long or holds control "
                       "characters).");
    rc = create_load(pg, f->tmpl, root, sizeof(root), &names, &nnames, &t, &have_t, &msgs);
    if (rc)
        goto out;
    if ((!pg->p->data_dir || !have_t) && !msgs.len)
        add_msg(&msgs, "Creating services is not available on this server.");
    for (size_t i = 0; have_t && i < t.nvars && i < CREATE_VARS_MAX; i++) {
        char key[PARAM_MAX];
        snprintf(key, sizeof(key), "var.%s", t.vars[i].name);
        if (portal_form_value(pg->form, key, f->vals[i], sizeof(f->vals[i])))
            add_msg(&msgs, "The value of '%s' could not be read.", t.vars[i].name);
    }
    vals = core_calloc((have_t ? t.nvars : 0) + 1, sizeof(char *));
    if (!vals) {
        rc = CORE_E_NOMEM;
        goto out;
    }
    if (!msgs.len)
        create_check(pg, &t, f, vals, &msgs);
    if (!msgs.len) {
        int grc = catalog_service_get(pg->p->cat, f->name, &existing, &pg->err);
        if (grc != 0 && grc != CORE_E_NOTFOUND) {
            rc = grc;
            goto out;
        }
        if (grc == 0)
            add_msg(&msgs, "A service named '%s' already exists.", f->name);
        core_err_clear(&pg->err);
    }
    if (!msgs.len && (rc = create_do(pg, &t, f, vals, &msgs)))
        goto out;
    if (!msgs.len) {
        char to[PARAM_MAX + 16];
        snprintf(to, sizeof(to), "/services/%s", f->name); /* a checked DNS label */
        rc = portal_redirect(pg, to);
    } else {
        rc = create_render(pg, 400, root, names, nnames, have_t ? &t : NULL, f, msgs.data);
    }
out:
    catalog_service_release(&existing);
    core_free(vals);
    if (have_t)
        template_release(&t);
    template_names_free(names, nnames);
    core_buf_release(&msgs);
    core_free(f);
    return rc;
}

/* ---- certificates: the internal CA and its inventory ----------------------------------------
 *
 * /ca shows the CA (root and intermediate, read from the PEM the CA serves) and the inventory
 * (pki_list) with owner prefix / state / "expiring within" filters; /ca/certificates/SERIAL one
 * certificate (pki_show). Subjects, SANs and owners come from CSRs and deploy requests, so they
 * are escaped like every other stored string. A certificate is "expiring soon" when less than a
 * third of its lifetime is left: service certificates are renewed at two thirds, so one of those
 * still listed as valid missed its renewal. */

#define CA_FILTER_MAX 128

static int ca_off(struct page *pg)
{
    page_reset(pg);
    pg->nav = "ca";
    portal_page_begin(pg, 503, "Certificates");
    out_s(pg, "<section class=\"error card\" id=\"ca-off\">\n<p class=\"code\">503</p>\n"
              "<h1>The certificate authority is not initialized</h1>\n"
              "<p>This server has no internal CA yet, so there are no certificates to show. "
              "Create one on the server, then restart it:</p>\n"
              "<pre class=\"log\" id=\"ca-init\">pave ca init</pre>\n"
              "<p>See docs/pki.md.</p>\n</section>\n");
    portal_page_end(pg);
    return pg->rc;
}

/* "2024-05-01T12:34:56.789Z" (core_time_format) to unix ms; false when it is not that shape. */
static bool iso_ms(const char *s, int64_t *out)
{
    struct tm tm = {0};
    const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!rest)
        return false;
    int64_t frac = 0;
    if (*rest == '.') {
        int digits = 0;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            if (digits++ < 3)
                frac = frac * 10 + (*rest - '0');
        while (digits > 0 && digits < 3)
            frac *= 10, digits++;
    }
    if (*rest != 'Z' || rest[1])
        return false;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out = (int64_t)t * 1000 + frac;
    return true;
}

/* A span of time as "3d 4h", "5h 12m", "12m" or "40s". */
static void out_span(struct page *pg, int64_t ms)
{
    int64_t s = ms / 1000;
    if (s >= 86400)
        out_f(pg, "%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        out_f(pg, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s >= 60)
        out_f(pg, "%lldm", (long long)(s / 60));
    else
        out_f(pg, "%llds", (long long)s);
}

/* Whether a certificate (a pki_list item) is valid with less than a third of its life left. */
static bool cert_expiring_soon(const json_t *c, int64_t now)
{
    int64_t nb, na;
    const char *state = portal_jstr(c, "state");
    if (!state || strcmp(state, "valid") || !iso_ms(portal_jstr(c, "not_before"), &nb) ||
        !iso_ms(portal_jstr(c, "not_after"), &na) || na <= nb)
        return false;
    return (na - now) * 3 < na - nb;
}

/* The state badge of a certificate: valid, expired, revoked. */
static void cert_state(struct page *pg, const char *state)
{
    bool known = state && (strcmp(state, "valid") == 0 || strcmp(state, "expired") == 0 ||
                           strcmp(state, "revoked") == 0);
    out_s(pg, "<span class=\"state");
    if (known) {
        out_s(pg, " cert-");
        out_s(pg, state);
    }
    out_s(pg, "\">");
    out_hd(pg, state);
    out_s(pg, "</span>");
}

/* Time left of a certificate: "3d 4h", or "expired" / "revoked"; soon adds the warning badge. */
static void cert_time_left(struct page *pg, const json_t *c, int64_t now, bool soon)
{
    int64_t na;
    const char *state = portal_jstr(c, "state");
    if (state && strcmp(state, "revoked") == 0) {
        out_s(pg, "<span class=\"muted\">revoked</span>");
        return;
    }
    if (!iso_ms(portal_jstr(c, "not_after"), &na)) {
        out_hd(pg, NULL);
        return;
    }
    if (na <= now) {
        out_s(pg, "<span class=\"bad\">expired</span>");
        return;
    }
    out_span(pg, na - now);
    if (soon)
        out_s(pg, " <span class=\"state cert-soon\">expiring soon</span>");
}

/* One CA certificate (X509 from PEM text) as a card: subject, not after. */
static void ca_cert_card(struct page *pg, const char *id, const char *label, X509 *x)
{
    out_s(pg, "<div class=\"card\" id=\"");
    out_s(pg, id);
    out_s(pg, "\">\n<h3>");
    out_s(pg, label);
    out_s(pg, "</h3>\n<dl class=\"facts\">");
    if (!x) {
        out_s(pg, "<dt>Subject</dt><dd><span class=\"muted\">unreadable</span></dd></dl>\n"
                  "</div>\n");
        return;
    }
    char subject[512] = "";
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(bio, subject, (int)sizeof(subject) - 1);
        subject[n > 0 ? n : 0] = 0;
    }
    BIO_free(bio);
    out_s(pg, "<dt>Subject</dt><dd class=\"mono ca-subject\">");
    out_hd(pg, subject);
    out_s(pg, "</dd><dt>Not after</dt><dd>");
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
        char ts[40];
        core_time_format((int64_t)timegm(&tm) * 1000, ts, sizeof(ts));
        portal_out_time(pg, ts);
        int64_t left = (int64_t)timegm(&tm) * 1000 - core_now_ms();
        out_s(pg, " <span class=\"muted\">(");
        if (left > 0)
            out_span(pg, left);
        else
            out_s(pg, "expired");
        out_s(pg, ")</span>");
    } else {
        out_hd(pg, NULL);
    }
    out_s(pg, "</dd></dl>\n</div>\n");
}

/* The first certificate of a PEM text (NULL when there is none). */
static X509 *pem_first(const char *pem)
{
    BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return x;
}

static void ca_section(struct page *pg)
{
    X509 *inter = pem_first(pki_chain_pem(pg->p->pki)); /* the chain starts with it */
    X509 *root = pem_first(pki_root_pem(pg->p->pki));
    out_s(pg, "<section id=\"ca\">\n<h2>Certificate authority</h2>\n<div class=\"totals\">\n");
    ca_cert_card(pg, "ca-root", "Root", root);
    ca_cert_card(pg, "ca-intermediate", "Intermediate (signs every certificate)", inter);
    out_s(pg, "</div>\n<p class=\"actions\" id=\"ca-downloads\">"
              "<a class=\"button secondary\" href=\"/pki/ca.pem\">Root (ca.pem)</a>"
              "<a class=\"button secondary\" href=\"/pki/chain.pem\">Chain (chain.pem)</a>"
              "<a class=\"button secondary\" href=\"/pki/crl.pem\">CRL (crl.pem)</a></p>\n"
              "</section>\n");
    X509_free(inter);
    X509_free(root);
}

struct ca_query {
    char owner[CA_FILTER_MAX];
    char state[16];
    char expiring[32];
    int64_t expiring_ms;
};

/* returns: 0, or CORE_E_INVAL with *problem set to a user-facing message. */
static int ca_query_parse(struct page *pg, struct ca_query *q, const char **problem)
{
    *problem = "The filters could not be read.";
    if (portal_form_value(pg->req->query, "owner", q->owner, sizeof(q->owner)) ||
        portal_form_value(pg->req->query, "state", q->state, sizeof(q->state)) ||
        portal_form_value(pg->req->query, "expiring", q->expiring, sizeof(q->expiring)))
        return CORE_E_INVAL;
    if (q->state[0] && strcmp(q->state, "valid") && strcmp(q->state, "expired") &&
        strcmp(q->state, "revoked")) {
        *problem = "Unknown state: use valid, expired or revoked.";
        return CORE_E_INVAL;
    }
    q->expiring_ms = 0;
    if (q->expiring[0] &&
        (core_parse_duration_ms(q->expiring, &q->expiring_ms) || q->expiring_ms <= 0)) {
        *problem = "\"Expiring within\" must be a duration such as 24h or 7d.";
        return CORE_E_INVAL;
    }
    return 0;
}

static void ca_state_option(struct page *pg, const char *value, const char *label,
                            const char *selected)
{
    out_s(pg, "<option value=\"");
    out_s(pg, value);
    out_s(pg, "\"");
    if (strcmp(value, selected) == 0)
        out_s(pg, " selected");
    out_s(pg, ">");
    out_s(pg, label);
    out_s(pg, "</option>");
}

static void cert_row(struct page *pg, const json_t *c, int64_t now)
{
    const char *serial = portal_jstr(c, "serial");
    bool soon = cert_expiring_soon(c, now);
    out_s(pg, soon ? "<tr class=\"cert-row cert-expiring\">" : "<tr class=\"cert-row\">");
    out_s(pg, "<td class=\"mono\">");
    if (serial)
        out_short(pg, serial, 16, NULL);
    out_s(pg, "</td><td><div class=\"cert-subject\">");
    if (serial) {
        out_s(pg, "<a href=\"/ca/certificates/");
        out_u(pg, serial);
        out_s(pg, "\">");
        out_hd(pg, portal_jstr(c, "subject"));
        out_s(pg, "</a>");
    } else {
        out_hd(pg, portal_jstr(c, "subject"));
    }
    out_s(pg, "</div>");
    size_t i;
    const json_t *san;
    json_array_foreach (jget(c, "sans"), i, san) {
        if (!json_is_string(san))
            continue;
        out_s(pg, "<span class=\"chip\">");
        out_h(pg, json_string_value(san));
        out_s(pg, "</span>");
    }
    out_s(pg, "</td><td class=\"cert-owner\">");
    out_hd(pg, portal_jstr(c, "owner"));
    out_s(pg, "</td><td>");
    out_hd(pg, portal_jstr(c, "profile"));
    out_s(pg, "</td><td>");
    cert_state(pg, portal_jstr(c, "state"));
    out_s(pg, "</td><td>");
    portal_out_time(pg, portal_jstr(c, "not_after"));
    out_s(pg, "</td><td class=\"cert-left\">");
    cert_time_left(pg, c, now, soon);
    out_s(pg, "</td></tr>\n");
}

/* GET /ca?owner=&state=&expiring= */
static int ca_page(struct page *pg)
{
    struct ca_query q;
    const char *problem;
    if (!pg->p->pki)
        return ca_off(pg);
    if (ca_query_parse(pg, &q, &problem))
        return portal_bad_request(pg, problem);
    struct core_err e = {0};
    json_t *list = pki_list(pg->p->pki, q.owner, q.state, q.expiring_ms, &e);
    if (!list) {
        if (e.code == CORE_E_INVAL)
            return portal_bad_request(pg, "The filters could not be used.");
        pg->err = e;
        return e.code ? e.code : CORE_E_NOMEM;
    }
    int64_t now = core_now_ms();
    pg->nav = "ca";
    portal_page_begin(pg, 200, "Certificates");
    out_s(pg, "<h1>Certificates</h1>\n<p class=\"lead\">The platform's internal certificate "
              "authority and every certificate it issued. Service certificates are renewed at "
              "two thirds of their lifetime; rows marked <span class=\"state cert-soon\">"
              "expiring soon</span> have less than a third left.</p>\n");
    ca_section(pg);
    out_s(pg, "<h2>Inventory</h2>\n<form id=\"ca-filters\" class=\"filters\" method=\"get\" "
              "action=\"/ca\">\n<label class=\"visually-hidden\" for=\"owner\">Owner</label>"
              "<input id=\"owner\" name=\"owner\" placeholder=\"Owner prefix (service:, acme:, "
              "user:)\" value=\"");
    out_h(pg, q.owner);
    out_s(pg, "\">\n<label class=\"visually-hidden\" for=\"state\">State</label>"
              "<select id=\"state\" name=\"state\">");
    ca_state_option(pg, "", "Any state", q.state);
    ca_state_option(pg, "valid", "Valid", q.state);
    ca_state_option(pg, "expired", "Expired", q.state);
    ca_state_option(pg, "revoked", "Revoked", q.state);
    out_s(pg, "</select>\n<label for=\"expiring\">Expiring within</label>"
              "<input id=\"expiring\" name=\"expiring\" size=\"6\" placeholder=\"7d\" value=\"");
    out_h(pg, q.expiring);
    out_s(pg, "\">\n<button type=\"submit\">Filter</button>");
    if (q.owner[0] || q.state[0] || q.expiring[0])
        out_s(pg, "<a class=\"clear\" href=\"/ca\">Clear</a>");
    out_s(pg, "\n</form>\n");
    const json_t *items = jget(list, "items");
    int64_t total = 0;
    portal_jint(list, "total", &total);
    out_f(pg, "<p class=\"count\" id=\"cert-count\">%lld certificate%s", (long long)total,
          total == 1 ? "" : "s");
    if ((int64_t)json_array_size(items) < total)
        out_f(pg, ", the first %zu shown", json_array_size(items));
    out_s(pg, "</p>\n<table id=\"certificates\">\n<thead><tr><th>Serial</th>"
              "<th>Subject / SANs</th><th>Owner</th><th>Profile</th><th>State</th>"
              "<th>Not after</th><th>Time left</th></tr></thead>\n<tbody>\n");
    size_t i;
    const json_t *c;
    json_array_foreach (items, i, c)
        cert_row(pg, c, now);
    if (json_array_size(items) == 0)
        out_s(pg, "<tr><td colspan=\"7\" class=\"empty\">No certificate matches.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n");
    portal_page_end(pg);
    json_decref(list);
    return pg->rc;
}

/* GET /ca/certificates/SERIAL */
static int cert_page(struct page *pg, const char *serial)
{
    if (!pg->p->pki)
        return ca_off(pg);
    struct core_err e = {0};
    json_t *c = pki_show(pg->p->pki, serial, &e);
    if (!c) {
        if (e.code == CORE_E_NOTFOUND || e.code == CORE_E_INVAL)
            return portal_not_found(pg);
        pg->err = e;
        return e.code ? e.code : CORE_E_NOMEM;
    }
    int64_t now = core_now_ms(), nb, na;
    bool soon = cert_expiring_soon(c, now);
    const char *sn = portal_jstr(c, "serial");
    pg->nav = "ca";
    portal_page_begin(pg, 200, "Certificate");
    out_s(pg, "<p class=\"crumbs\"><a href=\"/ca\">Certificates</a> / <span class=\"mono\">");
    out_h(pg, sn);
    out_s(pg, "</span></p>\n<h1 id=\"cert-subject\">");
    out_hd(pg, portal_jstr(c, "subject"));
    out_s(pg, " ");
    cert_state(pg, portal_jstr(c, "state"));
    out_s(pg, "</h1>\n<div class=\"card\">\n<dl class=\"facts\" id=\"cert-facts\">\n"
              "<dt>Serial</dt><dd class=\"mono\" id=\"cert-serial\">");
    out_h(pg, sn);
    out_s(pg, "</dd>\n<dt>Names (SANs)</dt><dd id=\"cert-sans\">");
    size_t i;
    const json_t *san;
    json_array_foreach (jget(c, "sans"), i, san) {
        if (!json_is_string(san))
            continue;
        out_s(pg, "<span class=\"chip\">");
        out_h(pg, json_string_value(san));
        out_s(pg, "</span>");
    }
    if (!json_array_size(jget(c, "sans")))
        out_hd(pg, NULL);
    out_s(pg, "</dd>\n<dt>Owner</dt><dd id=\"cert-owner\">");
    out_hd(pg, portal_jstr(c, "owner"));
    out_s(pg, "</dd>\n<dt>Profile</dt><dd>");
    out_hd(pg, portal_jstr(c, "profile"));
    out_s(pg, "</dd>\n<dt>Key</dt><dd>");
    out_hd(pg, portal_jstr(c, "key_type"));
    out_s(pg, "</dd>\n<dt>Not before</dt><dd>");
    portal_out_time(pg, portal_jstr(c, "not_before"));
    out_s(pg, "</dd>\n<dt>Not after</dt><dd>");
    portal_out_time(pg, portal_jstr(c, "not_after"));
    out_s(pg, "</dd>\n<dt>Lifetime</dt><dd>");
    if (iso_ms(portal_jstr(c, "not_before"), &nb) && iso_ms(portal_jstr(c, "not_after"), &na) && na > nb)
        out_span(pg, na - nb);
    else
        out_hd(pg, NULL);
    out_s(pg, "</dd>\n<dt>Time left</dt><dd id=\"cert-left\">");
    cert_time_left(pg, c, now, soon);
    out_s(pg, "</dd>\n");
    if (portal_jstr(c, "revoked_at")) {
        out_s(pg, "<dt>Revoked</dt><dd id=\"cert-revoked\">");
        portal_out_time(pg, portal_jstr(c, "revoked_at"));
        out_s(pg, " <span class=\"muted\">");
        out_h(pg, portal_jstr(c, "reason"));
        out_s(pg, "</span></dd>\n");
    }
    out_s(pg, "</dl>\n</div>\n");
    const char *state = portal_jstr(c, "state");
    if (state && strcmp(state, "valid") == 0) {
        out_s(pg, "<p class=\"muted\">Revoke it on the server with <code>pave ca revoke ");
        out_shell_word(pg, sn);
        out_s(pg, "</code>.</p>\n");
    }
    out_s(pg, "<h2>Certificate (PEM)</h2>\n<pre class=\"log\" id=\"cert-pem\">");
    out_h(pg, portal_jstr(c, "cert_pem"));
    out_s(pg, "</pre>\n");
    portal_page_end(pg);
    json_decref(c);
    return pg->rc;
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
    portal_page_begin(pg, 200, "Teams");
    out_s(pg, "<h1>Teams</h1>\n<p class=\"lead\">Who owns what.</p>\n"
              "<table id=\"teams\">\n<thead><tr><th>Team</th><th>Name</th><th>Description</th>"
              "<th class=\"num\">Services</th><th class=\"num\">Members</th></tr></thead>\n"
              "<tbody>\n");
    int rc = catalog_team_list(pg->p->cat, team_row, pg, &pg->err);
    if (rc)
        return rc;
    out_s(pg, "</tbody>\n</table>\n");
    portal_page_end(pg);
    return pg->rc;
}

static int audit_page(struct page *pg)
{
    pg->nav = "audit";
    portal_page_begin(pg, 200, "Audit log");
    out_f(pg, "<h1>Audit log</h1>\n<p class=\"lead\">The last %d changes, newest first. The log "
              "is append-only.</p>\n<section id=\"audit\">\n", AUDIT_ROWS);
    int rc = portal_audit_table(pg, NULL, NULL, "audit-log");
    if (rc)
        return rc;
    out_s(pg, "</section>\n");
    portal_page_end(pg);
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

/* path is prefix itself, or below it ("/cost", "/cost/...", "/cost.csv"), not "/costs". */
static bool under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (!path[n] || path[n] == '/' || path[n] == '.');
}

static int route(struct page *pg)
{
    const struct portal_request *req = pg->req;
    const char *path = req->path;
    int rc;

    if (!req->method || !path || path[0] != '/' || !value_ok(path))
        return portal_bad_request(pg, "The request could not be read.");
    pg->is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    pg->is_post = strcmp(req->method, "POST") == 0;

    if (strcmp(path, "/static/pave.css") == 0)
        return pg->is_get ? serve_css(pg) : portal_method_not_allowed(pg);

    if ((rc = resolve_session(pg)))
        return rc;
    if (!query_ok(req->query))
        return portal_bad_request(pg, "The query string is not valid URL encoding.");
    if (pg->is_post) {
        rc = read_form(pg);
        if (rc == CORE_E_TOO_BIG)
            return portal_error_page(pg, 413, "Request too large", "The form is too large.");
        if (rc)
            return rc;
    }

    if (strcmp(path, "/login") == 0) {
        if (pg->is_get) {
            if (pg->signed_in)
                return portal_redirect(pg, "/catalog");
            return login_page(pg, 200, NULL);
        }
        return pg->is_post ? login_post(pg) : portal_method_not_allowed(pg);
    }
    if (strcmp(path, "/") == 0)
        return pg->is_get ? portal_redirect(pg, "/catalog") : portal_method_not_allowed(pg);

    bool known = strcmp(path, "/catalog") == 0 || strcmp(path, "/teams") == 0 ||
                 strcmp(path, "/audit") == 0 || strcmp(path, "/logout") == 0 ||
                 strcmp(path, "/create") == 0 || strncmp(path, "/services/", 10) == 0 ||
                 strncmp(path, "/runs/", 6) == 0 || strcmp(path, "/compliance") == 0 ||
                 strcmp(path, "/compliance.csv") == 0 || strcmp(path, "/compliance.json") == 0 ||
                 strncmp(path, "/policy/decisions/", 18) == 0 || strcmp(path, "/ca") == 0 ||
                 strncmp(path, "/ca/certificates/", 17) == 0 || under(path, "/cost") ||
                 under(path, "/security");
    if (!known)
        return portal_not_found(pg);

    if (!pg->signed_in) {
        if (pg->stale_cookie)
            clear_cookie(pg);
        if (pg->is_get)
            return portal_redirect(pg, "/login");
        return portal_error_page(pg, 401, "Sign in required",
                          "Your session has ended. Sign in again and retry.");
    }
    if (pg->is_post && !csrf_ok(pg)) {
        log_warn("portal", "form refused: bad csrf token", LOG_STR("path", path),
                 LOG_STR("user", pg->who.user));
        return portal_error_page(pg, 403, "Form expired",
                          "This form could not be verified. Reload the page and try again.");
    }

    if (strcmp(path, "/logout") == 0)
        return pg->is_post ? logout_post(pg) : portal_method_not_allowed(pg);
    if (under(path, "/cost"))
        return portal_cost_route(pg);
    if (under(path, "/security"))
        return portal_security_route(pg);
    if (strcmp(path, "/create") == 0)
        return pg->is_post ? create_post(pg) : pg->is_get ? create_get(pg)
                                                          : portal_method_not_allowed(pg);
    if (strncmp(path, "/services/", 10) == 0) {
        const char *svc_s = path + 10;
        const char *sl = strchr(svc_s, '/');
        if (sl && strcmp(sl, "/rollback") == 0) {
            char svc[PARAM_MAX];
            if ((size_t)(sl - svc_s) >= sizeof(svc))
                return portal_not_found(pg);
            memcpy(svc, svc_s, (size_t)(sl - svc_s));
            svc[sl - svc_s] = 0;
            return pg->is_post  ? rollback_post(pg, svc)
                   : pg->is_get ? rollback_get(pg, svc)
                                : portal_method_not_allowed(pg);
        }
    }
    if (strncmp(path, "/policy/decisions/", 18) == 0) {
        const char *id_s = path + 18;
        const char *slash = strchr(id_s, '/');
        size_t id_len = slash ? (size_t)(slash - id_s) : strlen(id_s);
        int64_t id;
        if (!portal_parse_id(id_s, id_len, &id))
            return portal_not_found(pg);
        if (!slash)
            return pg->is_get ? decision_page(pg, id) : portal_method_not_allowed(pg);
        if (strcmp(slash, "/exceptions") == 0)
            return pg->is_post ? exception_post(pg, id) : portal_method_not_allowed(pg);
        return portal_not_found(pg);
    }
    if (!pg->is_get)
        return portal_method_not_allowed(pg);
    if (strcmp(path, "/ca") == 0)
        return ca_page(pg);
    if (strncmp(path, "/ca/certificates/", 17) == 0) {
        const char *serial = path + 17;
        if (!*serial || strchr(serial, '/') || strlen(serial) >= 64)
            return portal_not_found(pg);
        return cert_page(pg, serial);
    }
    if (strcmp(path, "/compliance") == 0)
        return compliance_page(pg);
    if (strcmp(path, "/compliance.csv") == 0)
        return compliance_csv(pg);
    if (strcmp(path, "/compliance.json") == 0)
        return compliance_json(pg);
    if (strcmp(path, "/catalog") == 0)
        return catalog_page(pg);
    if (strcmp(path, "/teams") == 0)
        return teams_page(pg);
    if (strcmp(path, "/audit") == 0)
        return audit_page(pg);
    if (strncmp(path, "/runs/", 6) == 0) {
        const char *id_s = path + 6;
        const char *slash = strchr(id_s, '/');
        size_t id_len = slash ? (size_t)(slash - id_s) : strlen(id_s);
        int64_t id;
        if (!portal_parse_id(id_s, id_len, &id))
            return portal_not_found(pg);
        if (!slash)
            return run_page(pg, id);
        if (strcmp(slash, "/artifact") == 0)
            return artifact_download(pg, id);
        return portal_not_found(pg);
    }
    const char *name = path + 10;
    const char *slash = strchr(name, '/');
    if (!slash)
        return service_page(pg, name);
    bool is_logs = strcmp(slash, "/logs") == 0;
    if ((!is_logs && strcmp(slash, "/runs") != 0) || (size_t)(slash - name) >= PARAM_MAX)
        return portal_not_found(pg);
    char svc[PARAM_MAX];
    memcpy(svc, name, (size_t)(slash - name));
    svc[slash - name] = 0;
    return is_logs ? logs_page(pg, svc) : service_runs_page(pg, svc);
}

/* ---- public API ------------------------------------------------------------------------------ */

struct portal *portal_new(const struct portal_deps *deps, struct core_err *err)
{
    if (!deps || !deps->st || !deps->cat) {
        core_err_set(err, CORE_E_INVAL, "portal needs a store and a catalog");
        return NULL;
    }
    struct portal *p = core_calloc(1, sizeof(*p));
    if (!p || (deps->data_dir && !(p->data_dir = core_strdup(deps->data_dir)))) {
        core_free(p);
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    p->st = deps->st;
    p->cat = deps->cat;
    p->runner = deps->runner;
    p->registry = deps->registry;
    p->signer = deps->signer;
    p->deploy = deps->deploy;
    p->policy = deps->policy;
    p->pki = deps->pki;
    p->rules = deps->rules;
    return p;
}

void portal_free(struct portal *p)
{
    if (!p)
        return;
    core_free(p->data_dir);
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
        rc = portal_error_page(&pg, 500, "Something went wrong",
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
