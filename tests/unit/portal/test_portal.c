/*
 * Portal pages driven through portal_handle() against a real SQLite store with the demo
 * organization: sign-in and sessions, CSRF, catalog search and filters, the service page,
 * error pages and HTML escaping; pipeline runs (rows inserted into the store, a log written where
 * a real runner keeps it), the log's ANSI colours and escaping, artifacts, and the "Create a
 * service" form; the Deployments section (without a deploy controller: the note, the history
 * from the store, the rollback notice and pages; with hand-made deploy_status()/deploy_list()
 * documents through portal_deployments_render()); the logs page over records appended to a real
 * log store in the temp data dir (filters, escaping, the live tail's reload and new-line marks),
 * the filter parser, the Prometheus summing and the metrics section on hand-made inputs; the
 * guard rails (a policy engine over the same store: a small policy applied by an admin, a scan, a
 * gate decision): the compliance dashboard and its exports, the "why was this blocked" page, the
 * exception form and the service page's section; the certificate pages over a real CA created in
 * the temp data dir (pki_init, a few certificates issued, one revoked): the inventory and its
 * filters, the "expiring soon" mark, escaping, the detail page, the 503 without a CA; and the
 * format of pki_metrics().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "ci/ci.h"
#include "core/core.h"
#include "pki/pki.h"
#include "policy/policy.h"
#include "portal/portal.h"
#include "store/store.h"
#include "telemetry/telemetry.h"
#include "template/template.h"

struct fx {
    char dir[64];
    struct store *st;
    struct catalog *cat;
    struct ci_runner *runner;
    struct policy_engine *pe;
    struct pki *pki; /* opened by ca_open() in the certificate tests */
    struct portal *portal;
    char token[AUTH_TOKEN_LEN + 1];
    char session[80];
    char csrf[80];
    struct portal_response resp; /* the last reply; released by the next request or teardown */
    bool have_resp;
};

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->have_resp)
        core_buf_release(&f->resp.body);
    portal_free(f->portal);
    pki_close(f->pki);
    policy_engine_free(f->pe);
    if (f->runner)
        ci_runner_stop(f->runner);
    catalog_free(f->cat);
    if (f->st)
        store_close(f->st);
    template_remove(f->dir);
    free(f);
    return 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct core_err err = {0};
    char url[128];
    bool created = false;
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-portal-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    snprintf(url, sizeof(url), "sqlite:%s/pave.db", f->dir);
    if (store_open(&f->st, url, &err) || !(f->cat = catalog_new(f->st, &err)) ||
        catalog_demo_load(f->cat, &err) ||
        auth_bootstrap(f->st, f->cat, f->token, &created, &err) || !created) {
        fprintf(stderr, "setup: %s\n", err.msg);
        teardown(state);
        return -1;
    }
    /* a real runner (one worker) so the portal reads logs where the runner writes them */
    struct ci_runner_config rcfg = {.data_dir = f->dir, .concurrency = 1,
                                    .allow_unisolated = true};
    if (!(f->runner = ci_runner_start(&rcfg, f->st, f->cat, NULL, &err))) {
        fprintf(stderr, "setup: %s\n", err.msg);
        teardown(state);
        return -1;
    }
    if (!(f->pe = policy_engine_open(f->st, f->cat, &err))) {
        fprintf(stderr, "setup: %s\n", err.msg);
        teardown(state);
        return -1;
    }
    struct portal_deps deps = {.st = f->st, .cat = f->cat, .runner = f->runner,
                               .data_dir = f->dir, .policy = f->pe};
    if (!(f->portal = portal_new(&deps, &err))) {
        fprintf(stderr, "setup: %s\n", err.msg);
        teardown(state);
        return -1;
    }
    return 0;
}

/* Sends one prepared request. The reply lives in the fixture until the next request. */
static struct portal_response *send_raw(struct fx *f, const struct portal_request *req)
{
    if (f->have_resp)
        core_buf_release(&f->resp.body);
    memset(&f->resp, 0, sizeof(f->resp));
    core_buf_init(&f->resp.body, 8 << 20);
    f->have_resp = true;
    assert_int_equal(portal_handle(f->portal, req, &f->resp), 0);
    assert_non_null(f->resp.content_type);
    return &f->resp;
}

static struct portal_response *send_req(struct fx *f, const char *method, const char *path,
                                        const char *query, const char *body,
                                        const char *session)
{
    struct portal_request req = {
        .method = method,
        .path = path,
        .query = query,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .session = session,
    };
    return send_raw(f, &req);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Signs in with the admin token and remembers the session cookie and its CSRF token. */
static void sign_in(struct fx *f)
{
    struct portal_response *r;
    char body[128];
    snprintf(body, sizeof(body), "token=%s", f->token);
    r = send_req(f, "POST", "/login", NULL, body, NULL);
    assert_int_equal(r->status, 303);
    const char *v = r->set_cookie + strlen(PORTAL_SESSION_COOKIE "=");
    size_t n = strcspn(v, ";");
    assert_true(n > 0 && n < sizeof(f->session));
    memcpy(f->session, v, n);
    f->session[n] = 0;

    r = send_req(f, "GET", "/catalog", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *c = strstr(r->body.data, "name=\"csrf\" value=\"");
    assert_non_null(c);
    c += strlen("name=\"csrf\" value=\"");
    n = strcspn(c, "\"");
    assert_true(n > 0 && n < sizeof(f->csrf));
    memcpy(f->csrf, c, n);
    f->csrf[n] = 0;
}

static void login_success_sets_session_cookie(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    char body[128];
    snprintf(body, sizeof(body), "token=%s", f->token);
    r = send_req(f, "POST", "/login", NULL, body, NULL);
    assert_int_equal(r->status, 303);
    assert_string_equal(r->location, "/catalog");
    assert_true(strncmp(r->set_cookie, "pave_session=", 13) == 0);
    assert_non_null(strstr(r->set_cookie, "; HttpOnly"));
    assert_non_null(strstr(r->set_cookie, "; SameSite=Strict"));
    assert_non_null(strstr(r->set_cookie, "; Path=/"));
    assert_non_null(strstr(r->set_cookie, "; Max-Age=43200"));
    assert_null(strstr(r->body.data, f->token));
}

static void login_page_has_password_field(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    r = send_req(f, "GET", "/login", NULL, NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->content_type, "text/html; charset=utf-8");
    assert_non_null(strstr(r->body.data, "<!DOCTYPE html>"));
    assert_non_null(strstr(r->body.data, "type=\"password\""));
    assert_non_null(strstr(r->body.data, "name=\"token\""));
    /* no nav and no logout form before signing in */
    assert_null(strstr(r->body.data, "action=\"/logout\""));
}

static void login_bad_token_is_401(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    r = send_req(f, "POST", "/login", NULL,
             "token=pave_0000000000000000000000000000000000000000", NULL);
    assert_int_equal(r->status, 401);
    assert_string_equal(r->set_cookie, "");
    assert_non_null(strstr(r->body.data, "id=\"login\""));
    assert_non_null(strstr(r->body.data, "not accepted"));
    assert_null(strstr(r->body.data, "pave_0000"));

    r = send_req(f, "POST", "/login", NULL, "token=garbage%3Cb%3E", NULL);
    assert_int_equal(r->status, 401);
    assert_null(strstr(r->body.data, "<b>"));
}

static void login_without_token_is_400(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    r = send_req(f, "POST", "/login", NULL, "user=alice", NULL);
    assert_int_equal(r->status, 400);
    r = send_req(f, "POST", "/login", NULL, NULL, NULL);
    assert_int_equal(r->status, 400);
    r = send_req(f, "POST", "/login", NULL, "token=", NULL);
    assert_int_equal(r->status, 400);
    r = send_req(f, "POST", "/login", NULL, "token=%zz", NULL);
    assert_int_equal(r->status, 400);
}

static void pages_need_a_session(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    static const char *const paths[] = {"/catalog", "/teams", "/audit", "/services/ledger"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        r = send_req(f, "GET", paths[i], NULL, NULL, NULL);
        assert_int_equal(r->status, 303);
        assert_string_equal(r->location, "/login");
        assert_null(strstr(r->body.data, "payments"));
    }
    /* a stale cookie is cleared on the way to the login page */
    r = send_req(f, "GET", "/catalog", NULL, NULL,
             "0000000000000000000000000000000000000000000000000000000000000000");
    assert_int_equal(r->status, 303);
    assert_non_null(strstr(r->set_cookie, "Max-Age=0"));
    /* POSTs are refused, not redirected */
    r = send_req(f, "POST", "/logout", NULL, "csrf=x", NULL);
    assert_int_equal(r->status, 401);
}

static void root_redirects_to_catalog(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    r = send_req(f, "GET", "/", NULL, NULL, NULL);
    assert_int_equal(r->status, 303);
    assert_string_equal(r->location, "/catalog");
}

static void catalog_lists_all_services(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "GET", "/catalog", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *b = r->body.data;
    assert_int_equal(count(b, "class=\"service-row\""), 3);
    assert_non_null(strstr(b, "href=\"/services/payments-api\""));
    assert_non_null(strstr(b, "href=\"/services/ledger\""));
    assert_non_null(strstr(b, "href=\"/services/auth-service\""));
    assert_non_null(strstr(b, "id=\"search\""));
    assert_non_null(strstr(b, "id=\"q\""));
    assert_non_null(strstr(b, "<select id=\"team\" name=\"team\">"));
    assert_non_null(strstr(b, "<option value=\"identity\">identity</option>"));
    assert_non_null(strstr(b, "id=\"services\""));
    assert_non_null(strstr(b, "3 services"));
    /* the nav shows the signed-in user and a logout form */
    assert_non_null(strstr(b, "<span id=\"user\">admin</span>"));
    assert_non_null(strstr(b, "action=\"/logout\""));
    assert_non_null(strstr(b, "href=\"/teams\""));
    assert_non_null(strstr(b, "href=\"/audit\""));
}

static void catalog_search_narrows_the_list(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "GET", "/catalog", "q=ledger", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, "class=\"service-row\""), 1);
    assert_non_null(strstr(r->body.data, "href=\"/services/ledger\""));
    assert_non_null(strstr(r->body.data, "value=\"ledger\""));
    assert_non_null(strstr(r->body.data, "1 service matching"));

    r = send_req(f, "GET", "/catalog", "q=no-such-thing", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, "class=\"service-row\""), 0);
    assert_non_null(strstr(r->body.data, "No services match"));
}

static void catalog_team_filter(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "GET", "/catalog", "q=&team=identity", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, "class=\"service-row\""), 1);
    assert_non_null(strstr(r->body.data, "href=\"/services/auth-service\""));
    assert_null(strstr(r->body.data, "href=\"/services/payments-api\""));
    assert_non_null(strstr(r->body.data, "<option value=\"identity\" selected>"));
}

static void catalog_paginates(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    struct core_err err = {0};
    for (int i = 0; i < 52; i++) {
        char text[512], file[64];
        snprintf(file, sizeof(file), "gen-%02d.yaml", i);
        snprintf(text, sizeof(text),
                 "apiVersion: pave/v1\nkind: Service\nmetadata:\n  name: gen-%02d\n"
                 "  team: payments\n  tier: 3\n  description: generated %d\n"
                 "spec:\n  run:\n    command: [\"./x\"]\n  replicas: 1\n",
                 i, i);
        struct catalog_manifest m;
        struct schema_diags d;
        enum catalog_change ch;
        catalog_manifest_init(&m);
        schema_diags_init(&d);
        int rc = catalog_manifest_parse(file, text, strlen(text), &m, &d, &err);
        if (!rc)
            rc = catalog_service_apply(f->cat, &catalog_actor_system, &m, file, &ch, &d, &err);
        if (rc)
            fprintf(stderr, "%s: %s (%zu diags: %s)\n", file, err.msg, d.n,
                    d.n ? d.items[0].message : "");
        catalog_manifest_release(&m);
        schema_diags_release(&d);
        assert_int_equal(rc, 0);
    }
    sign_in(f);
    r = send_req(f, "GET", "/catalog", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, "class=\"service-row\""), 50);
    assert_non_null(strstr(r->body.data, "55 services"));
    assert_non_null(strstr(r->body.data, "Page 1 of 2"));
    assert_non_null(strstr(r->body.data, "href=\"/catalog?page=2\""));
    r = send_req(f, "GET", "/catalog", "page=2", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, "class=\"service-row\""), 5);
    assert_non_null(strstr(r->body.data, "rel=\"prev\""));
    r = send_req(f, "GET", "/catalog", "team=payments&page=2", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "href=\"/catalog?team=payments\""));
    r = send_req(f, "GET", "/catalog", "page=0", NULL, f->session);
    assert_int_equal(r->status, 400);
    r = send_req(f, "GET", "/catalog", "page=abc", NULL, f->session);
    assert_int_equal(r->status, 400);
}

static void service_page_shows_owner_and_history(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    struct catalog_service s;
    assert_int_equal(catalog_service_get(f->cat, "payments-api", &s, NULL), 0);
    char short_digest[13];
    snprintf(short_digest, sizeof(short_digest), "%s", s.digest);
    catalog_service_release(&s);

    sign_in(f);
    r = send_req(f, "GET", "/services/payments-api", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *b = r->body.data;
    assert_non_null(strstr(b, "<h1 id=\"service-name\">payments-api</h1>"));
    assert_non_null(strstr(b, "href=\"/catalog?team=payments\">payments</a>"));
    assert_non_null(strstr(b, "Card payments API"));
    assert_non_null(strstr(b, "cost-center: cc-1234"));
    assert_non_null(strstr(b, "http 8080/http"));
    assert_non_null(strstr(b, "256Mi"));
    assert_non_null(strstr(b, "/healthz"));
    assert_non_null(strstr(b, "href=\"/services/ledger\""));
    assert_non_null(strstr(b, "payments-db"));
    assert_non_null(strstr(b, "99.9% availability"));
    assert_non_null(strstr(b, "p99 latency 300ms"));
    assert_non_null(strstr(b, "<pre class=\"json\">"));
    assert_non_null(strstr(b, "&quot;apiVersion&quot;"));
    /* audit history: the creation, by the system, with the shortened after-digest */
    const char *audit = strstr(b, "<section id=\"audit\">");
    assert_non_null(audit);
    assert_non_null(strstr(audit, "<table"));
    assert_non_null(strstr(audit, "service.create"));
    assert_non_null(strstr(audit, "system"));
    char want[64];
    snprintf(want, sizeof(want), "\">%s</code>", short_digest);
    assert_non_null(strstr(audit, want));
}

static void unknown_service_is_404(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "GET", "/services/nope", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    assert_string_equal(r->content_type, "text/html; charset=utf-8");
    r = send_req(f, "GET", "/services/..%2Fetc", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/services/", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/nowhere", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/nowhere", NULL, NULL, NULL);
    assert_int_equal(r->status, 404);
}

static void teams_and_audit_pages(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "GET", "/teams", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, "class=\"team-row\""), 2);
    assert_non_null(strstr(r->body.data, "href=\"/catalog?team=payments\""));
    assert_non_null(strstr(r->body.data, "<td class=\"num\">2</td><td class=\"num\">1</td>"));
    r = send_req(f, "GET", "/audit", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_true(count(r->body.data, "class=\"audit-row\"") >= 3);
    assert_non_null(strstr(r->body.data, "team.create"));
    assert_non_null(strstr(r->body.data, "href=\"/services/ledger\""));
}

static void logout_needs_csrf(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "POST", "/logout", NULL, NULL, f->session);
    assert_int_equal(r->status, 403);
    r = send_req(f, "POST", "/logout", NULL, "csrf=0123456789abcdef", f->session);
    assert_int_equal(r->status, 403);
    /* still signed in */
    r = send_req(f, "GET", "/catalog", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);

    char body[128];
    snprintf(body, sizeof(body), "csrf=%s", f->csrf);
    r = send_req(f, "POST", "/logout", NULL, body, f->session);
    assert_int_equal(r->status, 303);
    assert_string_equal(r->location, "/login");
    assert_non_null(strstr(r->set_cookie, "pave_session=;"));
    assert_non_null(strstr(r->set_cookie, "Max-Age=0"));
    r = send_req(f, "GET", "/catalog", NULL, NULL, f->session);
    assert_int_equal(r->status, 303);
    assert_string_equal(r->location, "/login");
}

static void other_posts_need_csrf(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "POST", "/catalog", NULL, "q=x", f->session);
    assert_int_equal(r->status, 403);
    char body[128];
    snprintf(body, sizeof(body), "csrf=%s", f->csrf);
    r = send_req(f, "POST", "/catalog", NULL, body, f->session);
    assert_int_equal(r->status, 405);
}

static void search_text_is_escaped(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "GET", "/catalog", "q=%3Cscript%3Ealert(%22x%22)%3C%2Fscript%3E%27", NULL,
             f->session);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body.data, "<script"));
    assert_non_null(strstr(r->body.data, "value=\"&lt;script&gt;alert(&quot;x&quot;)"
                                        "&lt;/script&gt;&#39;\""));
}

static void bad_query_is_400(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    static const char *const queries[] = {"q=%zz", "q=%", "q=%00", "q=%ff%fe", "q=a%0Ab",
                                          "other=%g1"};
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        r = send_req(f, "GET", "/catalog", queries[i], NULL, f->session);
        assert_int_equal(r->status, 400);
    }
    char big[1024];
    memset(big, 'a', sizeof(big) - 1);
    big[0] = 'q';
    big[1] = '=';
    big[sizeof(big) - 1] = 0;
    r = send_req(f, "GET", "/catalog", big, NULL, f->session);
    assert_int_equal(r->status, 400);
}

static void stylesheet_is_served(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    r = send_req(f, "GET", "/static/pave.css", NULL, NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->content_type, "text/css");
    assert_true(r->body.len > 100);
}

static void odd_requests_do_not_crash(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    r = send_req(f, "DELETE", "/catalog", NULL, NULL, NULL);
    assert_true(r->status >= 300 && r->status < 500);
    r = send_req(f, "GET", "relative", NULL, NULL, NULL);
    assert_int_equal(r->status, 400);
    r = send_req(f, "GET", "/catalog", NULL, NULL, "short");
    assert_int_equal(r->status, 303);
    struct portal_request req = {.method = NULL, .path = NULL};
    r = send_raw(f, &req);
    assert_int_equal(r->status, 400);
    /* a form body that is not NUL-terminated */
    char body[] = {'t', 'o', 'k', 'e', 'n', '=', 'x', 'y', 'z'};
    req = (struct portal_request){.method = "POST", .path = "/login", .body = body,
                                  .body_len = 6};
    r = send_raw(f, &req);
    assert_int_equal(r->status, 400);
}

/* ---- runs ---------------------------------------------------------------------------------- */

#define COMMIT "0123456789abcdef0123456789abcdef01234567"

static int newest_id(void *arg, const struct ci_run *run)
{
    *(int64_t *)arg = run->id;
    return 0;
}

/* Inserts a run of payments-api with two steps and returns its id. */
static int64_t add_run(struct fx *f, const char *state, const char *artifact_path)
{
    struct core_err err = {0};
    struct store_value p[] = {
        STORE_V_TEXT(state),
        artifact_path ? STORE_V_TEXT("sha256:feedfacefeedfacefeedface") : STORE_V_NULL,
        artifact_path ? STORE_V_INT(2048) : STORE_V_NULL,
        artifact_path ? STORE_V_TEXT(artifact_path) : STORE_V_NULL,
    };
    assert_int_equal(store_exec(f->st,
                                "INSERT INTO runs (service, team, state, trigger, branch, "
                                "commit_sha, actor, source, queued_at, started_at, "
                                "artifact_digest, artifact_size, artifact_path) VALUES "
                                "('payments-api', 'payments', ?, 'push', 'main', '" COMMIT "', "
                                "'admin', 'git:/nowhere@" COMMIT "', '2024-05-01T12:00:00.000Z', "
                                "'2024-05-01T12:00:01.000Z', ?, ?, ?)",
                                p, 4, NULL, &err),
                     0);
    int64_t id = 0;
    assert_int_equal(ci_run_list(f->st, "payments-api", 0, 1, newest_id, &id, &err), 0);
    assert_true(id > 0);
    struct store_value q[] = {STORE_V_INT(id)};
    assert_int_equal(store_exec(f->st,
                                "INSERT INTO run_steps (run_id, idx, name, state, exit_code, "
                                "duration_ms, detail) VALUES (?, 0, 'build', 'succeeded', 0, "
                                "1500, NULL)",
                                q, 1, NULL, &err),
                     0);
    assert_int_equal(store_exec(f->st,
                                "INSERT INTO run_steps (run_id, idx, name, state, exit_code, "
                                "duration_ms, detail) VALUES (?, 1, 'test', 'failed', 2, 250, "
                                "'exit status 2 <b>')",
                                q, 1, NULL, &err),
                     0);
    return id;
}

static void write_log(struct fx *f, int64_t id, const char *text, size_t len)
{
    char path[1400];
    ci_run_log_path(f->runner, id, path, sizeof(path));
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    fclose(fp);
}

static void service_page_lists_runs(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    int64_t id = add_run(f, "succeeded", NULL);
    sign_in(f);
    r = send_req(f, "GET", "/services/payments-api", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *runs = strstr(r->body.data, "<section id=\"runs\">");
    assert_non_null(runs);
    char want[64];
    snprintf(want, sizeof(want), "href=\"/runs/%lld\">#%lld</a>", (long long)id, (long long)id);
    assert_non_null(strstr(runs, want));
    assert_non_null(strstr(runs, "state-succeeded"));
    assert_non_null(strstr(runs, ">0123456789ab</code>"));
    assert_non_null(strstr(runs, "href=\"/services/payments-api/runs\""));
    assert_non_null(strstr(r->body.data, "/git/payments-api.git"));
    assert_null(strstr(r->body.data, "id=\"pipelines-off\""));

    r = send_req(f, "GET", "/services/payments-api/runs", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, want));
    r = send_req(f, "GET", "/services/payments-api/runs", "before=1", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "No runs yet."));
    r = send_req(f, "GET", "/services/payments-api/runs", "before=x", NULL, f->session);
    assert_int_equal(r->status, 400);
    r = send_req(f, "GET", "/services/nope/runs", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/services/payments-api/other", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
}

static void run_page_shows_steps_and_coloured_log(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    int64_t id = add_run(f, "failed", NULL);
    static const char log[] = "\x1b[1;32mok\x1b[0m plain\n"
                              "<script>alert(1)</script> & \"q\"\n"
                              "\x1b[31mred\x1b[K\x1b[0m \x1b[38;5;31mext\x1b[0m\n"
                              "\x1b]0;title\a\r\x01" "bad \xff byte \xc3\xa9\n"
                              "\x1b[94;1mbright\x1b[m end\n";
    write_log(f, id, log, sizeof(log) - 1);
    sign_in(f);
    char path[64];
    snprintf(path, sizeof(path), "/runs/%lld", (long long)id);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *b = r->body.data;
    assert_non_null(strstr(b, "id=\"run-state\">failed</span>"));
    assert_non_null(strstr(b, "href=\"/services/payments-api\""));
    assert_non_null(strstr(b, COMMIT));
    assert_null(strstr(b, "http-equiv=\"refresh\""));
    const char *steps = strstr(b, "<table id=\"steps\">");
    assert_non_null(steps);
    assert_non_null(strstr(steps, "<code>build</code>"));
    assert_non_null(strstr(steps, "<code>test</code>"));
    assert_non_null(strstr(steps, "1.5 s"));
    assert_non_null(strstr(steps, "exit status 2 &lt;b&gt;"));
    const char *pre = strstr(b, "<pre class=\"log\" id=\"log\">");
    assert_non_null(pre);
    assert_non_null(strstr(pre, "<span class=\"ansi-b ansi-32\">ok</span> plain\n"));
    assert_non_null(strstr(pre, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"));
    assert_non_null(strstr(pre, "<span class=\"ansi-31\">red</span> ext\n"));
    assert_non_null(strstr(pre, "bad \xef\xbf\xbd byte \xc3\xa9\n"));
    assert_non_null(strstr(pre, "<span class=\"ansi-b ansi-94\">bright</span> end\n"));
    assert_null(strstr(b, "<script>"));
    assert_null(strstr(b, "\x1b"));
    assert_null(strstr(pre, ";title"));
    assert_null(strstr(b, "\r"));
}

static void running_run_page_refreshes(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    int64_t id = add_run(f, "running", NULL);
    sign_in(f);
    char path[64];
    snprintf(path, sizeof(path), "/runs/%lld", (long long)id);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "<meta http-equiv=\"refresh\" content=\"2\">"));
    assert_non_null(strstr(r->body.data, "id=\"live\""));
    assert_non_null(strstr(r->body.data, "No output yet."));
    assert_non_null(strstr(r->body.data, "id=\"run-state\">running</span>"));
}

static void long_log_shows_its_tail(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    int64_t id = add_run(f, "succeeded", NULL);
    size_t len = 300 * 1024;
    char *big = malloc(len);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = i % 64 == 63 ? '\n' : 'a' + (char)(i / 64 % 26);
    memcpy(big, "FIRST-LINE\n", 11);
    memcpy(big + len - 10, "LAST-LINE\n", 10);
    write_log(f, id, big, len);
    free(big);
    sign_in(f);
    char path[64];
    snprintf(path, sizeof(path), "/runs/%lld", (long long)id);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "id=\"log-truncated\""));
    assert_non_null(strstr(r->body.data, "LAST-LINE"));
    assert_null(strstr(r->body.data, "FIRST-LINE"));
}

static void run_artifact_download(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    char art[128], link[128];
    snprintf(art, sizeof(art), "%s/artifact.tar.gz", f->dir);
    FILE *fp = fopen(art, "wb");
    assert_non_null(fp);
    fputs("not really a tarball\n", fp);
    fclose(fp);
    int64_t id = add_run(f, "succeeded", art);
    sign_in(f);
    char path[64];
    snprintf(path, sizeof(path), "/runs/%lld", (long long)id);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "sha256:feedfacefeedfacefeedface"));
    assert_non_null(strstr(r->body.data, "2.0 KiB"));
    char want[96];
    snprintf(want, sizeof(want), "href=\"/runs/%lld/artifact\"", (long long)id);
    assert_non_null(strstr(r->body.data, want));

    snprintf(path, sizeof(path), "/runs/%lld/artifact", (long long)id);
    r = send_req(f, "GET", path, NULL, NULL, NULL);
    assert_int_equal(r->status, 303); /* signed-in users only */
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->content_type, "application/gzip");
    /* the file is handed to the server to stream, not copied into the body */
    assert_true(r->has_file);
    assert_int_equal(r->file_size, 21);
    char got[64] = "";
    assert_int_equal(pread(r->file_fd, got, sizeof(got) - 1, 0), 21);
    assert_string_equal(got, "not really a tarball\n");
    close(r->file_fd);
    r->has_file = false;

    /* a symbolic link in place of the artifact is not followed */
    snprintf(link, sizeof(link), "%s/link.tar.gz", f->dir);
    assert_int_equal(symlink(art, link), 0);
    id = add_run(f, "succeeded", link);
    snprintf(path, sizeof(path), "/runs/%lld/artifact", (long long)id);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    /* no artifact */
    id = add_run(f, "failed", NULL);
    snprintf(path, sizeof(path), "/runs/%lld/artifact", (long long)id);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
}

static void bad_run_paths_are_404(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    static const char *const paths[] = {"/runs/999", "/runs/abc", "/runs/0", "/runs/01",
                                        "/runs/", "/runs/1/nothing", "/runs/-1",
                                        "/runs/99999999999999999999"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        r = send_req(f, "GET", paths[i], NULL, NULL, f->session);
        assert_int_equal(r->status, 404);
    }
    r = send_req(f, "POST", "/runs/1", NULL, NULL, f->session);
    assert_int_equal(r->status, 403); /* no csrf */
}

/* ---- create a service ------------------------------------------------------------------------ */

static void create_form_renders(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "GET", "/catalog", NULL, NULL, f->session);
    assert_non_null(strstr(r->body.data, "href=\"/create\""));
    r = send_req(f, "GET", "/create", "template=worker-shell", NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *b = r->body.data;
    assert_non_null(strstr(b, "<option value=\"worker-shell\" selected>worker-shell &mdash; "));
    assert_non_null(strstr(b, "<option value=\"http-c\">"));
    const char *form = strstr(b, "<form id=\"create\"");
    assert_non_null(form);
    char csrf[128];
    snprintf(csrf, sizeof(csrf), "name=\"csrf\" value=\"%s\"", f->csrf);
    assert_non_null(strstr(form, csrf));
    assert_non_null(strstr(form, "name=\"template\" value=\"worker-shell\""));
    assert_non_null(strstr(form, "id=\"name\" name=\"name\""));
    assert_non_null(strstr(form, "<option value=\"payments\">payments</option>"));
    assert_non_null(strstr(form, "name=\"description\""));
    assert_non_null(strstr(form, "name=\"var.interval\""));
    assert_null(strstr(form, "name=\"var.description\""));
    r = send_req(f, "GET", "/create", "template=nope", NULL, f->session);
    assert_int_equal(r->status, 404);
    assert_non_null(strstr(r->body.data, "There is no template named"));
}

static void create_needs_csrf(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "POST", "/create", NULL, "template=worker-shell&name=abc&team=payments",
                 f->session);
    assert_int_equal(r->status, 403);
    r = send_req(f, "POST", "/create", NULL, "template=worker-shell&name=abc&team=payments",
                 NULL);
    assert_int_equal(r->status, 401);
}

static void create_bad_input_rerenders(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    char body[512];
    sign_in(f);
    snprintf(body, sizeof(body),
             "csrf=%s&template=worker-shell&name=Bad_%%3Cb%%3E&team=payments&"
             "description=kept+text&var.interval=0", f->csrf);
    r = send_req(f, "POST", "/create", NULL, body, f->session);
    assert_int_equal(r->status, 400);
    const char *b = r->body.data;
    assert_non_null(strstr(b, "id=\"create-errors\""));
    assert_non_null(strstr(b, "&#39;Bad_&lt;b&gt;&#39; is not a valid service name") ||
                    strstr(b, "Bad_&lt;b&gt;"));
    assert_null(strstr(b, "<b>"));
    assert_non_null(strstr(b, "value=\"Bad_&lt;b&gt;\""));
    assert_non_null(strstr(b, "value=\"kept text\""));
    assert_non_null(strstr(b, "value=\"0\""));
    assert_non_null(strstr(b, "interval"));

    /* an existing service, a team the admin cannot pick */
    snprintf(body, sizeof(body), "csrf=%s&template=worker-shell&name=payments-api&team=nope",
             f->csrf);
    r = send_req(f, "POST", "/create", NULL, body, f->session);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->body.data, "team &#39;nope&#39;"));
    snprintf(body, sizeof(body), "csrf=%s&template=worker-shell&name=payments-api&team=payments",
             f->csrf);
    r = send_req(f, "POST", "/create", NULL, body, f->session);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->body.data, "already exists"));
    /* nothing was left behind in DATA/tmp */
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%s/tmp", f->dir);
    struct stat sb;
    assert_true(stat(tmp, &sb) != 0 || rmdir(tmp) == 0);
}

static void portal_without_runner(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    struct core_err err = {0};
    int64_t id = add_run(f, "running", NULL);
    portal_free(f->portal);
    struct portal_deps deps = {.st = f->st, .cat = f->cat};
    f->portal = portal_new(&deps, &err);
    assert_non_null(f->portal);
    sign_in(f);
    char path[64];
    snprintf(path, sizeof(path), "/runs/%lld", (long long)id);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "id=\"pipelines-off\""));
    assert_null(strstr(r->body.data, "http-equiv=\"refresh\""));
    r = send_req(f, "GET", "/services/payments-api", NULL, NULL, f->session);
    assert_non_null(strstr(r->body.data, "id=\"pipelines-off\""));
    r = send_req(f, "GET", "/create", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "id=\"create-off\""));
    struct portal_deps none = {.st = f->st};
    assert_null(portal_new(&none, &err));
    assert_null(portal_new(NULL, &err));
}

/* ---- deployments ----------------------------------------------------------------------------- */

/* Inserts a deployments row as the deploy controller would; returns its id. */
static int64_t add_deployment(struct fx *f, const char *service, const char *env,
                              const char *kind, const char *state, const char *message,
                              int64_t rollback_of)
{
    struct core_err err = {0};
    struct store_value p[] = {
        STORE_V_TEXT(service),
        STORE_V_TEXT(env),
        STORE_V_TEXT(kind),
        STORE_V_TEXT(state),
        message ? STORE_V_TEXT(message) : STORE_V_NULL,
        rollback_of ? STORE_V_INT(rollback_of) : STORE_V_NULL,
    };
    assert_int_equal(store_exec(f->st,
                                "INSERT INTO deployments (service, env, kind, image, digest, rev, "
                                "replicas, max_surge, max_unavailable, health_deadline_ms, actor, "
                                "state, message, rollback_of, created_at, created_ms) VALUES "
                                "(?1, ?2, ?3, ?1 || ':v1', 'sha256:aa', "
                                "'abcdef0123456789abcdef', 2, 1, 0, 60000, 'admin', ?4, ?5, ?6, "
                                "'2024-05-01T12:00:00.000Z', 1714564800000)",
                                p, 6, NULL, &err),
                     0);
    int64_t id = 0;
    assert_int_equal(store_query_int(f->st, "SELECT MAX(id) FROM deployments", NULL, 0, &id,
                                     &err),
                     0);
    return id;
}

static void service_page_deployments_off(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "GET", "/services/payments-api", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *sec = strstr(r->body.data, "<section id=\"deployments\">");
    assert_non_null(sec);
    assert_non_null(strstr(sec, "id=\"deploy-off\""));
    assert_non_null(strstr(sec, "not enabled"));
    assert_non_null(strstr(sec, "<table id=\"deploy-history\">"));
    assert_non_null(strstr(sec, "No deployments yet."));
    assert_null(strstr(r->body.data, "rollback-link"));
    assert_null(strstr(r->body.data, "id=\"not-deployed\""));
}

static void service_page_shows_deploy_history_from_store(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    int64_t first = add_deployment(f, "payments-api", "prod", "deploy", "succeeded", NULL, 0);
    add_deployment(f, "payments-api", "prod", "rollback", "failed",
                   "<script>alert(1)</script> health check failed", first);
    add_deployment(f, "ledger", "prod", "deploy", "succeeded", "other service", 0);
    sign_in(f);
    r = send_req(f, "GET", "/services/payments-api", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *sec = strstr(r->body.data, "<section id=\"deployments\">");
    assert_non_null(sec);
    assert_int_equal(count(sec, "class=\"deploy-row\""), 2);
    assert_null(strstr(r->body.data, "<script>"));
    assert_non_null(strstr(sec, "&lt;script&gt;alert(1)&lt;/script&gt; health check failed"));
    char want[64];
    snprintf(want, sizeof(want), "rollback of #%lld", (long long)first);
    assert_non_null(strstr(sec, want));
    assert_non_null(strstr(sec, "<code>payments-api:v1</code>"));
    assert_non_null(strstr(sec, ">abcdef012345</code>"));
    assert_non_null(strstr(sec, "state-failed"));
    assert_null(strstr(sec, "other service"));
}

static void service_page_rollback_notice(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    int64_t id = add_deployment(f, "payments-api", "prod", "rollback", "pending", NULL, 0);
    int64_t other = add_deployment(f, "ledger", "prod", "rollback", "pending", NULL, 0);
    sign_in(f);
    char q[64];
    snprintf(q, sizeof(q), "rolled_back=%lld", (long long)id);
    r = send_req(f, "GET", "/services/payments-api", q, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *notice = strstr(r->body.data, "id=\"deploy-notice\"");
    assert_non_null(notice);
    char want[64];
    snprintf(want, sizeof(want), "deployment #%lld", (long long)id);
    assert_non_null(strstr(notice, want));
    /* a deployment of another service, an unknown id or garbage show no notice */
    snprintf(q, sizeof(q), "rolled_back=%lld", (long long)other);
    r = send_req(f, "GET", "/services/payments-api", q, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body.data, "id=\"deploy-notice\""));
    r = send_req(f, "GET", "/services/payments-api", "rolled_back=99999", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body.data, "id=\"deploy-notice\""));
    r = send_req(f, "GET", "/services/payments-api", "rolled_back=x", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body.data, "id=\"deploy-notice\""));
}

static void rollback_pages_without_controller(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    char body[256];
    /* a session is needed */
    r = send_req(f, "GET", "/services/payments-api/rollback", "env=prod", NULL, NULL);
    assert_int_equal(r->status, 303);
    assert_string_equal(r->location, "/login");
    sign_in(f);
    r = send_req(f, "GET", "/services/payments-api/rollback", "env=prod", NULL, f->session);
    assert_int_equal(r->status, 404);
    assert_non_null(strstr(r->body.data, "Deployments are not enabled"));
    r = send_req(f, "GET", "/services/payments-api/rollback", NULL, NULL, f->session);
    assert_int_equal(r->status, 400);
    r = send_req(f, "GET", "/services/payments-api/rollback", "env=%3Cb%3E", NULL, f->session);
    assert_int_equal(r->status, 400);
    assert_null(strstr(r->body.data, "<b>"));
    r = send_req(f, "GET", "/services/nope/rollback", "env=prod", NULL, f->session);
    assert_int_equal(r->status, 404);
    assert_non_null(strstr(r->body.data, "Service not found"));
    r = send_req(f, "GET", "/services/Bad_Name/rollback", "env=prod", NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/services/payments-api/rollback/x", "env=prod", NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "DELETE", "/services/payments-api/rollback", "env=prod", NULL, f->session);
    assert_int_equal(r->status, 405);
    /* POST: CSRF first, then the form, then the controller */
    r = send_req(f, "POST", "/services/payments-api/rollback", NULL, "env=prod", f->session);
    assert_int_equal(r->status, 403);
    snprintf(body, sizeof(body), "csrf=bad&env=prod");
    r = send_req(f, "POST", "/services/payments-api/rollback", NULL, body, f->session);
    assert_int_equal(r->status, 403);
    snprintf(body, sizeof(body), "csrf=%s", f->csrf);
    r = send_req(f, "POST", "/services/payments-api/rollback", NULL, body, f->session);
    assert_int_equal(r->status, 400);
    snprintf(body, sizeof(body), "csrf=%s&env=prod", f->csrf);
    r = send_req(f, "POST", "/services/payments-api/rollback", NULL, body, f->session);
    assert_int_equal(r->status, 404);
    assert_non_null(strstr(r->body.data, "Deployments are not enabled"));
    assert_string_equal(r->location, "");
}

/* The section rendered from hand-made deploy_status() / deploy_list() documents. */
static void deployments_render_from_json(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *status = json_loads(
        "{\"service\":\"payments-api\",\"environments\":[{"
        "\"env\":\"prod\",\"url\":\"http://payments-api.prod.localhost:8080/\","
        "\"internal_url\":\"http://127.0.0.1:18000\",\"replicas_wanted\":2,"
        "\"desired\":{\"id\":7,\"service\":\"payments-api\",\"env\":\"prod\",\"kind\":\"deploy\","
        "\"image\":\"payments-api:<img>\",\"revision\":\"0123456789ab\",\"replicas\":2,"
        "\"state\":\"progressing\",\"actor\":\"alice\","
        "\"message\":\"<script>alert('x')</script>\",\"rollback_of\":null,"
        "\"created_at\":\"2024-05-01T12:00:00.000Z\",\"finished_at\":null},"
        "\"stable\":{\"id\":5,\"kind\":\"deploy\",\"revision\":\"ffffeeeeddd0\","
        "\"state\":\"succeeded\"},"
        "\"replicas\":["
        "{\"name\":\"payments-api.prod.1\",\"revision\":\"ffffeeeeddd0\",\"port\":18001,"
        "\"ready\":true,\"draining\":false,\"state\":\"running\",\"restarts\":0,"
        "\"isolation\":\"namespaces\"},"
        "{\"name\":\"payments-api.prod.2<i>\",\"revision\":\"0123456789ab\",\"port\":18002,"
        "\"ready\":false,\"draining\":false,\"state\":\"backoff\",\"restarts\":3,"
        "\"isolation\":\"none\",\"last_error\":\"exit 1 <b>boom</b>\"},"
        "{\"name\":\"payments-api.prod.0\",\"revision\":\"ffffeeeeddd0\",\"port\":18000,"
        "\"ready\":true,\"draining\":true,\"state\":\"running\",\"restarts\":1,"
        "\"isolation\":\"namespaces\"}]},"
        "{\"env\":\"staging\",\"url\":\"javascript:alert(1)\",\"internal_url\":\"\","
        "\"replicas_wanted\":0,\"desired\":null,\"stable\":null,\"replicas\":[]}]}",
        0, &jerr);
    assert_non_null(status);
    json_t *history = json_loads(
        "{\"items\":["
        "{\"id\":7,\"service\":\"payments-api\",\"env\":\"prod\",\"kind\":\"deploy\","
        "\"image\":\"payments-api:2\",\"revision\":\"0123456789ab\",\"replicas\":2,"
        "\"state\":\"progressing\",\"actor\":\"<u>mallory</u>\","
        "\"created_at\":\"2024-05-01T12:00:00.000Z\",\"finished_at\":null,"
        "\"message\":null,\"rollback_of\":null},"
        "{\"id\":6,\"service\":\"payments-api\",\"env\":\"prod\",\"kind\":\"rollback\","
        "\"image\":\"payments-api:1\",\"revision\":\"ffffeeeeddd0\",\"replicas\":2,"
        "\"state\":\"succeeded\",\"actor\":\"alice\",\"created_at\":\"2024-04-30T08:00:00.000Z\","
        "\"finished_at\":\"2024-04-30T08:01:00.000Z\",\"message\":\"ok\",\"rollback_of\":5}],"
        "\"total\":31,\"next_offset\":2}",
        0, &jerr);
    assert_non_null(history);

    struct core_buf out;
    core_buf_init(&out, 1 << 20);
    assert_int_equal(portal_deployments_render("payments-api", status, history, true, &out), 0);
    const char *b = out.data;
    /* nothing hostile survives */
    assert_null(strstr(b, "<script>"));
    assert_null(strstr(b, "<img>"));
    assert_null(strstr(b, "<i>"));
    assert_null(strstr(b, "<b>"));
    assert_null(strstr(b, "<u>"));
    assert_null(strstr(b, "href=\"javascript:"));
    assert_non_null(strstr(b, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert_non_null(strstr(b, "<code>payments-api:&lt;img&gt;</code>"));
    assert_non_null(strstr(b, "exit 1 &lt;b&gt;boom&lt;/b&gt;"));
    assert_non_null(strstr(b, "&lt;u&gt;mallory&lt;/u&gt;"));
    assert_non_null(strstr(b, "<code>javascript:alert(1)</code>"));
    assert_null(strstr(b, "id=\"deploy-off\""));
    /* two environments; prod's URL, current deployment and replicas */
    assert_int_equal(count(b, "class=\"card deploy-env\""), 2);
    const char *prod = strstr(b, "data-env=\"prod\"");
    const char *staging = strstr(b, "data-env=\"staging\"");
    assert_non_null(prod);
    assert_non_null(staging);
    assert_true(prod < staging);
    assert_non_null(strstr(prod, "<a href=\"http://payments-api.prod.localhost:8080/\">"));
    assert_non_null(strstr(prod, "state-progressing"));
    assert_non_null(strstr(prod, "#7 deploy"));
    assert_non_null(strstr(prod, ">0123456789ab</code>"));
    assert_non_null(strstr(prod, "1 of 2 ready")); /* the draining one does not count */
    assert_non_null(strstr(prod, "#5 deploy"));
    assert_int_equal(count(b, "class=\"replica-row\""), 3);
    assert_non_null(strstr(prod, "<span class=\"ok\">yes</span>"));
    assert_non_null(strstr(prod, "<span class=\"bad\">no</span>"));
    assert_non_null(strstr(prod, "(draining)"));
    assert_non_null(strstr(prod, "<td class=\"num replica-restarts\">3</td>"));
    assert_non_null(strstr(prod, "<td class=\"replica-isolation\">namespaces</td>"));
    assert_non_null(strstr(prod, "<td class=\"replica-isolation\">none</td>"));
    assert_non_null(strstr(prod, "payments-api.prod.2&lt;i&gt;"));
    assert_non_null(strstr(b, "href=\"/services/payments-api/rollback?env=prod\""));
    assert_non_null(strstr(b, "href=\"/services/payments-api/rollback?env=staging\""));
    assert_non_null(strstr(staging, "No replicas."));
    /* history */
    assert_int_equal(count(b, "class=\"deploy-row\""), 2);
    assert_non_null(strstr(b, "rollback of #5"));
    assert_non_null(strstr(b, "id=\"deploy-history-more\">The newest 2 of 31"));

    /* deployed nowhere, no history readable, and not enabled */
    core_buf_clear(&out);
    assert_int_equal(portal_deployments_render("a<b", NULL, NULL, true, &out), 0);
    assert_non_null(strstr(out.data, "id=\"not-deployed\""));
    assert_non_null(strstr(out.data, "a&lt;b is not deployed"));
    assert_non_null(strstr(out.data, "cannot be read right now"));
    assert_null(strstr(out.data, "<b"));
    core_buf_clear(&out);
    assert_int_equal(portal_deployments_render("ledger", NULL, history, false, &out), 0);
    assert_non_null(strstr(out.data, "id=\"deploy-off\""));
    assert_null(strstr(out.data, "id=\"not-deployed\""));
    assert_int_equal(count(out.data, "class=\"deploy-row\""), 2);
    /* documents of the wrong shape render as empty, never crash */
    json_t *odd = json_loads("{\"environments\":[1,\"x\",{\"replicas\":[null,2]}],"
                             "\"items\":{}}",
                             0, &jerr);
    assert_non_null(odd);
    core_buf_clear(&out);
    assert_int_equal(portal_deployments_render("ledger", odd, odd, true, &out), 0);
    assert_int_equal(count(out.data, "class=\"card deploy-env\""), 1);
    assert_null(strstr(out.data, "rollback-link")); /* no env name: no button */
    /* a too small buffer is an error, not an overflow */
    struct core_buf tiny;
    core_buf_init(&tiny, 64);
    assert_int_equal(portal_deployments_render("ledger", status, history, true, &tiny),
                     CORE_E_TOO_BIG);
    core_buf_release(&tiny);
    json_decref(odd);
    core_buf_release(&out);
    json_decref(status);
    json_decref(history);
}

/* ---- logs page and metrics summary ---------------------------------------------------------- */

/* Appends one record (encoded by the real encoder) to the store under the fixture's data dir. */
static void put_log(struct tel_store *ls, int64_t t_ns, int sev, const char *svc, const char *env,
                    const char *instance, const char *body, struct tel_kv *attrs, uint32_t nattrs)
{
    struct tel_record r = {.time_ns = t_ns, .observed_ns = t_ns, .severity = sev, .body = body,
                           .body_len = (uint32_t)strlen(body), .attrs = attrs,
                           .nattrs = nattrs};
    r.res.service = svc;
    r.res.env = env;
    r.res.instance = instance;
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(tel_record_write_json(&r, &b), 0);
    struct tel_event ev = {.time_ns = t_ns, .severity = sev, .service = svc, .env = env,
                           .team = "", .instance = instance, .line = b.data,
                           .len = (uint32_t)b.len};
    struct tel_events evs = {&ev, 1};
    struct core_err err = {0};
    assert_int_equal(tel_store_append(ls, &evs, &err), 0);
    core_buf_release(&b);
}

static struct tel_store *open_log_store(struct fx *f)
{
    char dir[4200];
    struct core_err err = {0};
    tel_store_dir(f->dir, dir, sizeof(dir));
    struct tel_store *ls = tel_store_open(dir, NULL, &err);
    if (!ls)
        fail_msg("tel_store_open: %s", err.msg);
    return ls;
}

/* Five records of payments-api (two in staging) and one of another service, all recent. */
static void seed_logs(struct fx *f)
{
    int64_t now = core_now_ms() * 1000000;
    int64_t s = 1000000000;
    struct tel_kv attrs[] = {
        {.key = "path", .klen = 4, .val = "/pay<ment>", .vlen = 10, .type = TEL_V_STR},
        {.key = "ms", .klen = 2, .val = "42", .vlen = 2, .type = TEL_V_NUM},
    };
    struct tel_store *ls = open_log_store(f);
    put_log(ls, now - 50 * s, TEL_SEV_INFO, "payments-api", "prod", "payments-api.prod.1",
            "started on port 8080", NULL, 0);
    put_log(ls, now - 40 * s, TEL_SEV_WARN, "payments-api", "prod", "payments-api.prod.1",
            "slow request", attrs, 2);
    put_log(ls, now - 30 * s, TEL_SEV_ERROR, "payments-api", "prod", "payments-api.prod.2",
            "upstream timeout <script>alert(1)</script> \x1b[31mred\x1b[0m", NULL, 0);
    put_log(ls, now - 20 * s, TEL_SEV_DEBUG, "payments-api", "staging",
            "payments-api.staging.1", "cache miss", NULL, 0);
    put_log(ls, now - 10 * s, TEL_SEV_ERROR, "payments-api", "staging",
            "payments-api.staging.1", "db timeout", NULL, 0);
    put_log(ls, now - 5 * s, TEL_SEV_ERROR, "ledger", "prod", "ledger.prod.1",
            "ledger secret line", NULL, 0);
    tel_store_close(ls);
}

static void logs_filter_parse_defaults_and_values(void **state)
{
    (void)state;
    struct portal_logs_filter f;
    const char *problem = NULL;
    int64_t now = 1700000000000;
    assert_int_equal(portal_logs_filter_parse(NULL, now, &f, &problem), 0);
    assert_string_equal(f.since, "15m");
    assert_true(f.since_ns == (now - 15 * 60 * 1000) * 1000000);
    assert_int_equal(f.limit, PORTAL_LOGS_LIMIT_DEFAULT);
    assert_false(f.follow);
    assert_false(f.has_after);
    assert_int_equal(f.min_severity, 0);

    assert_int_equal(portal_logs_filter_parse("env=prod&level=WARN&grep=a%20%3Cb%3E&since=1h&"
                                              "limit=50&follow=1&after=3.120",
                                              now, &f, &problem),
                     0);
    assert_string_equal(f.env, "prod");
    assert_int_equal(f.min_severity, 13);
    assert_string_equal(f.grep, "a <b>");
    assert_true(f.since_ns == (now - 3600 * 1000) * 1000000);
    assert_int_equal(f.limit, 50);
    assert_true(f.follow);
    assert_true(f.has_after);
    assert_true(f.after_seg == 3 && f.after_off == 120);
    assert_true(f.tail_end == now / 1000 + PORTAL_TAIL_SECS);

    /* an empty since is no lower bound; a far tail_end is pulled back to 10 minutes */
    assert_int_equal(portal_logs_filter_parse("since=&follow=1&tail_end=99999999999", now, &f,
                                              &problem),
                     0);
    assert_true(f.since_ns == 0);
    assert_true(f.tail_end == now / 1000 + PORTAL_TAIL_SECS);
    assert_int_equal(portal_logs_filter_parse("follow=1&tail_end=5", now, &f, &problem), 0);
    assert_true(f.tail_end == 5);

    static const char *const bad[] = {
        "level=loud", "env=Not_An_Env", "limit=0", "limit=1001", "limit=12x", "since=yesterday",
        "after=1.x", "after=1", "after=.5", "grep=%01", "tail_end=-3", "env=%ZZ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        problem = NULL;
        assert_int_equal(portal_logs_filter_parse(bad[i], now, &f, &problem), CORE_E_INVAL);
        assert_non_null(problem);
    }
}

static void prom_sum_codes_by_class(void **state)
{
    (void)state;
    static const char text[] =
        "# HELP http_requests_total Requests served.\n"
        "# TYPE http_requests_total counter\n"
        "http_requests_total{path=\"/\",code=\"200\"} 90\n"
        "http_requests_total{code=\"500\",path=\"/pay\"} 7 1700000000000\n"
        "http_requests_total{path=\"/a\\\"b,c=\\\"500\\\"\",code=\"503\"} 3\r\n"
        "  http_requests_total{path=\"/x\", code=\"404\"} 2.5e1\n"
        "http_requests_total 4\n"
        "http_requests_total_created{code=\"500\"} 1700000000\n"
        "http_request_duration_seconds_bucket{code=\"500\",le=\"0.1\"} 1000\n"
        "process_cpu_seconds_total 12\n"
        "http_requests_total{code=\"500\"} NaN\n"
        "http_requests_total{code=\"500\"} -5\n"
        "http_requests_total{code=\"500\"} +Inf\n"
        "http_requests_total{code=\"500\" 9\n"
        "http_requests_total{code=\"5000000000\"} 1\n"
        "http_requests_total{code=\"500\"}\n"
        "http_requests_total{code=\"2xx\"} 2";
    struct portal_http_counts c = {0};
    assert_int_equal(portal_prom_sum_codes(text, sizeof(text) - 1, &c), 7);
    assert_true(c.total == 90 + 7 + 3 + 25 + 4 + 1 + 2);
    assert_true(c.by_class[2] == 90);
    assert_true(c.by_class[4] == 25);
    assert_true(c.by_class[5] == 10);
    assert_true(c.by_class[0] == 4 + 1 + 2);
    /* the length bounds the text: cutting the last value drops that sample */
    struct portal_http_counts cut = {0};
    assert_int_equal(portal_prom_sum_codes(text, sizeof(text) - 2, &cut), 6);
    assert_true(cut.by_class[0] == 4 + 1);
    struct portal_http_counts z = {0};
    assert_int_equal(portal_prom_sum_codes("", 0, &z), 0);
    assert_int_equal(portal_prom_sum_codes("garbage{{{\n\n\"", 14, &z), 0);
    assert_true(z.total == 0);
}

static void log_row_escapes_hostile_lines(void **state)
{
    (void)state;
    struct core_buf b;
    core_buf_init(&b, 1 << 20);
    const char *line =
        "{\"ts\":\"2024-05-06T07:08:09.123Z\",\"severity\":\"ERROR\",\"severity_number\":17,"
        "\"body\":\"<script>alert('x')</script> \\u001b[1;31mred\\u001b[0m \\u0007bell\","
        "\"attributes\":{\"<k>\":\"\\\"><img src=x onerror=alert(1)>\",\"n\":1,"
        "\"o\":{\"a\":\"<b>\"}},"
        "\"resource\":{\"service.name\":\"s\",\"service.instance.id\":\"<i>inst</i>\"}}";
    assert_int_equal(portal_log_row_render(line, strlen(line), 17, true, &b), 0);
    assert_null(strstr(b.data, "<script"));
    assert_null(strstr(b.data, "<img"));
    assert_null(strstr(b.data, "<i>"));
    assert_null(strstr(b.data, "<b>"));
    assert_null(strstr(b.data, "\x1b"));
    assert_null(strstr(b.data, "\a"));
    assert_non_null(strstr(b.data, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert_non_null(strstr(b.data, "<span class=\"ansi-b ansi-31\">red</span>"));
    assert_non_null(strstr(b.data, "class=\"log-row log-new\""));
    assert_non_null(strstr(b.data, "<span class=\"sev sev-error\">ERROR</span>"));
    assert_non_null(strstr(b.data, "&lt;i&gt;inst&lt;/i&gt;"));
    assert_non_null(strstr(b.data, "<span class=\"k\">&lt;k&gt;</span>="));
    assert_non_null(strstr(b.data, "2024-05-06 07:08:09.123"));
    assert_non_null(strstr(b.data, "{&quot;a&quot;:&quot;&lt;b&gt;&quot;}"));

    /* not JSON: the raw line, escaped */
    core_buf_clear(&b);
    const char *raw = "<img src=x onerror=alert(1)> \xff";
    assert_int_equal(portal_log_row_render(raw, strlen(raw), 0, false, &b), 0);
    assert_null(strstr(b.data, "<img"));
    assert_non_null(strstr(b.data, "&lt;img src=x onerror=alert(1)&gt; \xef\xbf\xbd"));
    assert_non_null(strstr(b.data, "class=\"log-row\""));
    assert_non_null(strstr(b.data, "sev-unknown"));

    /* a long body is cut */
    core_buf_clear(&b);
    struct core_buf big;
    core_buf_init(&big, 0);
    core_buf_adds(&big, "{\"body\":\"");
    for (int i = 0; i < 10000; i++)
        core_buf_adds(&big, "a");
    core_buf_adds(&big, "\"}");
    assert_int_equal(portal_log_row_render(big.data, big.len, 9, false, &b), 0);
    assert_true(b.len < 6000);
    assert_non_null(strstr(b.data, "&hellip;"));
    core_buf_release(&big);

    /* a full buffer is an error, not a crash */
    struct core_buf small;
    core_buf_init(&small, 64);
    assert_int_equal(portal_log_row_render(line, strlen(line), 17, false, &small), CORE_E_TOO_BIG);
    core_buf_release(&small);
    core_buf_release(&b);
}

static void metrics_render_from_json(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *status = json_loads(
        "{\"environments\":["
        "{\"env\":\"prod\",\"replicas_wanted\":3,\"desired\":{\"state\":\"succeeded\"},"
        "\"replicas\":[{\"ready\":true,\"restarts\":2},{\"ready\":true,\"restarts\":1},"
        "{\"ready\":true,\"draining\":true,\"restarts\":0},{\"ready\":false,\"restarts\":4}]},"
        "{\"env\":\"staging\",\"replicas_wanted\":1,\"desired\":{\"state\":\"<b>x</b>\"},"
        "\"replicas\":[]}]}",
        0, &jerr);
    assert_non_null(status);
    struct portal_env_metrics m[2] = {{.env = "prod", .scraped = 2, .unanswered = 1},
                                      {.env = "staging"}};
    m[0].http.total = 1000;
    m[0].http.by_class[5] = 20;
    m[0].logs.total = 100000;
    m[0].logs.by_sev[5] = 40;
    m[0].logs.by_sev[3] = 99960;
    m[0].logs.capped = true;
    m[1].logs.failed = true;
    struct core_buf b;
    core_buf_init(&b, 1 << 20);
    assert_int_equal(portal_metrics_render("payments-api", status, m, 2, &b), 0);
    assert_non_null(strstr(b.data, "<section id=\"metrics\">"));
    assert_non_null(strstr(b.data, "<table id=\"metrics-summary\">"));
    assert_int_equal(count(b.data, "<tr class=\"metrics-row\""), 2);
    const char *prod = strstr(b.data, "data-env=\"prod\"");
    const char *staging = strstr(b.data, "data-env=\"staging\"");
    assert_non_null(prod);
    assert_non_null(staging);
    assert_non_null(strstr(prod, "<td class=\"num metrics-ready\">2 / 3</td>"));
    assert_non_null(strstr(prod, "<td class=\"num metrics-restarts\">7</td>"));
    assert_non_null(strstr(prod, "title=\"2 of 3 replicas answered\">1000</td>"));
    assert_non_null(strstr(prod, "<td class=\"num metrics-5xx\">20</td>"));
    assert_non_null(strstr(prod, "<td class=\"num metrics-ratio\">2.00%</td>"));
    assert_non_null(strstr(prod, "at least 100000"));
    assert_non_null(strstr(prod, "<span class=\"sev sev-error\">ERROR 40</span>"));
    assert_non_null(strstr(prod, "href=\"/services/payments-api/logs?env=prod\""));
    assert_non_null(strstr(staging, "<td class=\"num metrics-ready\">0 / 1</td>"));
    assert_null(strstr(b.data, "<b>x</b>"));
    assert_non_null(strstr(b.data, "&lt;b&gt;x&lt;/b&gt;"));

    /* deployed nowhere: the service's log volume only */
    core_buf_clear(&b);
    struct portal_env_metrics all = {.env = NULL};
    all.logs.total = 3;
    all.logs.by_sev[4] = 1;
    all.logs.by_sev[5] = 2;
    assert_int_equal(portal_metrics_render("svc", NULL, &all, 1, &b), 0);
    assert_non_null(strstr(b.data, "id=\"metrics-not-deployed\""));
    assert_null(strstr(b.data, "metrics-summary"));
    assert_non_null(strstr(b.data, "<span class=\"log-total\">3</span>"));
    assert_non_null(strstr(b.data, "WARN 1"));
    assert_non_null(strstr(b.data, "href=\"/services/svc/logs\""));
    core_buf_release(&b);
    json_decref(status);
}

/* The value of key=... in an attribute URL of body after `from` (up to '&' or '"' or '#'). */
static void url_param(const char *from, const char *key, char *out, size_t outsz)
{
    const char *p = strstr(from, key);
    assert_non_null(p);
    p += strlen(key);
    size_t n = strcspn(p, "&\"#");
    assert_true(n < outsz);
    memcpy(out, p, n);
    out[n] = 0;
}

static void logs_page_filters_and_escapes(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    seed_logs(f);

    r = send_req(f, "GET", "/services/payments-api/logs", NULL, NULL, NULL);
    assert_int_equal(r->status, 303); /* sign in first */
    sign_in(f);

    r = send_req(f, "GET", "/services/payments-api/logs", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *body = r->body.data;
    assert_non_null(strstr(body, "<form id=\"logs-filter\""));
    assert_non_null(strstr(body, "<option value=\"prod\">prod</option>"));
    assert_non_null(strstr(body, "<option value=\"warn\">WARN and above</option>"));
    assert_int_equal(count(body, "<tr class=\"log-row"), 5);
    assert_null(strstr(body, "ledger secret line"));
    assert_null(strstr(body, "<script>alert(1)"));
    assert_non_null(strstr(body, "upstream timeout &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(body, "<span class=\"ansi-31\">red</span>"));
    assert_non_null(strstr(body, "/pay&lt;ment&gt;"));
    assert_non_null(strstr(body, "5 records since 15m"));
    assert_non_null(strstr(body, "id=\"live-tail\""));
    assert_null(strstr(body, "http-equiv=\"refresh\""));
    /* oldest first */
    assert_true(strstr(body, "started on port") < strstr(body, "db timeout"));

    r = send_req(f, "GET", "/services/payments-api/logs", "level=error", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, "<tr class=\"log-row"), 2);
    assert_int_equal(count(r->body.data, "sev sev-error"), 2);
    assert_non_null(strstr(r->body.data, "<option value=\"error\" selected>"));

    r = send_req(f, "GET", "/services/payments-api/logs", "grep=timeout&env=prod", NULL,
                 f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, "<tr class=\"log-row"), 1);
    assert_non_null(strstr(r->body.data, "upstream timeout"));
    assert_non_null(strstr(r->body.data, "<option value=\"prod\" selected>"));

    r = send_req(f, "GET", "/services/payments-api/logs", "grep=%3Cscript%3E&limit=1", NULL,
                 f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, "<tr class=\"log-row"), 1);
    assert_null(strstr(r->body.data, "value=\"<script>\""));
    assert_non_null(strstr(r->body.data, "value=\"&lt;script&gt;\""));

    r = send_req(f, "GET", "/services/payments-api/logs", "level=debug&limit=2", NULL,
                 f->session);
    assert_int_equal(count(r->body.data, "<tr class=\"log-row"), 2);
    assert_non_null(strstr(r->body.data, "db timeout")); /* the newest two */

    r = send_req(f, "GET", "/services/payments-api/logs", "grep=nothing-like-this", NULL,
                 f->session);
    assert_non_null(strstr(r->body.data, "No records match."));

    r = send_req(f, "GET", "/services/payments-api/logs", "level=loud", NULL, f->session);
    assert_int_equal(r->status, 400);
    r = send_req(f, "GET", "/services/nope/logs", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/services/payments-api/logz", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "POST", "/services/payments-api/logs", NULL, "csrf=x", f->session);
    assert_true(r->status == 403 || r->status == 405);
}

static void logs_live_tail_reloads_and_marks_new_lines(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    char after[64], tail_end[32], q[256];
    seed_logs(f);
    sign_in(f);

    r = send_req(f, "GET", "/services/payments-api/logs", "level=warn&follow=1", NULL,
                 f->session);
    assert_int_equal(r->status, 200);
    const char *meta = strstr(r->body.data, "<meta http-equiv=\"refresh\" content=\"2; url=");
    assert_non_null(meta);
    assert_non_null(strstr(meta, "/services/payments-api/logs?since=15m&amp;level=warn&amp;"
                                 "follow=1&amp;tail_end="));
    assert_non_null(strstr(meta, "#tail-end\">"));
    assert_non_null(strstr(r->body.data, "id=\"live\""));
    assert_non_null(strstr(r->body.data, "id=\"stop-tail\""));
    assert_int_equal(count(r->body.data, "<tr class=\"log-row"), 3);
    assert_int_equal(count(r->body.data, "log-new"), 0);
    url_param(meta, "after=", after, sizeof(after));
    url_param(meta, "tail_end=", tail_end, sizeof(tail_end));

    /* a new line arrives; the next reload (the meta refresh's URL) marks it */
    struct tel_store *ls = open_log_store(f);
    put_log(ls, core_now_ms() * 1000000, TEL_SEV_FATAL, "payments-api", "prod",
            "payments-api.prod.1", "out of memory", NULL, 0);
    put_log(ls, core_now_ms() * 1000000, TEL_SEV_INFO, "payments-api", "prod",
            "payments-api.prod.1", "quiet info", NULL, 0);
    tel_store_close(ls);
    snprintf(q, sizeof(q), "since=15m&level=warn&follow=1&tail_end=%s&after=%s", tail_end,
             after);
    r = send_req(f, "GET", "/services/payments-api/logs", q, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, "<tr class=\"log-row"), 4);
    assert_int_equal(count(r->body.data, "<tr class=\"log-row log-new\""), 1);
    assert_non_null(strstr(r->body.data, "<span id=\"logs-new\">1 new</span>"));
    assert_non_null(strstr(r->body.data, "sev sev-fatal"));
    assert_null(strstr(r->body.data, "quiet info"));
    char after2[64];
    url_param(strstr(r->body.data, "http-equiv"), "after=", after2, sizeof(after2));
    assert_string_not_equal(after, after2);

    /* after ten minutes the page stops reloading */
    r = send_req(f, "GET", "/services/payments-api/logs", "follow=1&tail_end=1000", NULL,
                 f->session);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body.data, "http-equiv=\"refresh\""));
    assert_non_null(strstr(r->body.data, "id=\"tail-ended\""));
    assert_non_null(strstr(r->body.data, "Resume the live tail"));
}

static void service_page_metrics_and_logs_links(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    seed_logs(f);
    sign_in(f);
    r = send_req(f, "GET", "/services/payments-api", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "<a class=\"service-logs\" "
                                         "href=\"/services/payments-api/logs\">Logs</a>"));
    const char *sec = strstr(r->body.data, "<section id=\"metrics\">");
    assert_non_null(sec);
    assert_non_null(strstr(sec, "id=\"metrics-not-deployed\""));
    assert_non_null(strstr(sec, "<span class=\"log-total\">5</span>"));
    assert_non_null(strstr(sec, "ERROR 2"));
    assert_non_null(strstr(sec, "DEBUG 1"));
}

/* ---- guard rails: compliance dashboard, decisions, exceptions -------------------------------- */

static const struct catalog_actor policy_admin = {"admin", true, NULL, 0};

/* An enforce rule every demo service fails (no owner tag), with a hostile description, and a
 * warn rule the demo services pass (they carry a cost center). */
static const char guard_policy[] =
    "apiVersion: pave/v1\n"
    "kind: Policy\n"
    "metadata: { name: guard }\n"
    "rules:\n"
    "  - id: owner-tag\n"
    "    kind: required-tags\n"
    "    description: \"<script>alert(1)</script> owner is tagged\"\n"
    "    severity: high\n"
    "    mode: enforce\n"
    "    rationale: the on-call needs to know whom to page\n"
    "    remediation: Add metadata.tags.owner to pave.yaml\n"
    "    tags: { owner: { required: true } }\n"
    "  - id: cost-tag\n"
    "    kind: required-tags\n"
    "    description: cost center\n"
    "    severity: low\n"
    "    mode: warn\n"
    "    rationale: finance\n"
    "    remediation: add tag cost-center\n"
    "    tags: { cost-center: { required: true } }\n";

/* Applies guard_policy as an admin and runs one scan. */
static void guard_setup(struct fx *f)
{
    struct core_err err = {0};
    struct policy_doc d = {"guard.yaml", guard_policy, strlen(guard_policy)};
    json_t *res = NULL;
    int rc = policy_apply(f->pe, &policy_admin, &d, 1, &res, &err);
    if (rc)
        fprintf(stderr, "apply: %s\n", err.msg);
    assert_int_equal(rc, 0);
    json_decref(res);
    int64_t scan = 0;
    assert_int_equal(policy_scan(f->pe, &scan, &err), 0);
    assert_true(scan > 0);
}

/* Asks the catalog gate about payments-api (no owner tag): a blocked decision. returns: its id */
static int64_t guard_decision(struct fx *f)
{
    struct core_err err = {0};
    json_t *doc = json_pack("{s:{s:s,s:s,s:i,s:{s:s}}}", "metadata", "name", "payments-api",
                            "team", "payments", "tier", 1, "tags", "cost-center", "cc-1234");
    struct policy_input in = {.subject = POLICY_SUBJECT_SERVICE, .gate = POLICY_GATE_CATALOG,
                              .name = "payments-api", .team = "payments", .tier = 1, .doc = doc};
    struct policy_results r;
    assert_int_equal(policy_gate_check(f->pe, &in, &r, &err), 0);
    assert_true(r.blocked);
    int64_t id = r.decision_id;
    assert_true(id > 0);
    policy_results_free(&r);
    json_decref(doc);
    return id;
}

static void compliance_dashboard_totals_and_escaping(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    struct core_err err = {0};
    guard_setup(f);
    sign_in(f);
    json_t *rep = policy_report(f->pe, "team", NULL, NULL, &err);
    assert_non_null(rep);
    json_t *t = json_object_get(rep, "totals");
    long long pass = (long long)json_integer_value(json_object_get(t, "pass"));
    long long fail = (long long)json_integer_value(json_object_get(t, "fail"));
    json_decref(rep);
    assert_int_equal(fail, 3); /* owner-tag, every demo service */
    assert_true(pass > 0);

    r = send_req(f, "GET", "/compliance", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *b = r->body.data;
    /* the top navigation has the dashboard, marked current */
    assert_non_null(strstr(b, "<a href=\"/compliance\" aria-current=\"page\">Compliance</a>"));
    char want[96];
    snprintf(want, sizeof(want), "id=\"total-fail\">%lld<", fail);
    assert_non_null(strstr(b, want));
    snprintf(want, sizeof(want), "id=\"total-pass\">%lld<", pass);
    assert_non_null(strstr(b, want));
    assert_non_null(strstr(b, "id=\"total-excepted\">0<"));
    /* grouped by team: both demo teams, drilling down to their services */
    assert_non_null(strstr(b, "href=\"/compliance?group=service&amp;team=payments\">payments<"));
    assert_non_null(strstr(b, "href=\"/compliance?group=service&amp;team=identity\">identity<"));
    assert_int_equal(count(b, "class=\"failure-row\""), 3);
    assert_non_null(strstr(b, "id=\"trend-table\""));
    assert_non_null(strstr(b, "href=\"/compliance.csv\""));
    assert_non_null(strstr(b, "href=\"/compliance.json?group=team\""));
    assert_null(strstr(b, "<script"));

    /* by rule: the hostile description is escaped */
    r = send_req(f, "GET", "/compliance", "group=rule", NULL, f->session);
    assert_int_equal(r->status, 200);
    b = r->body.data;
    assert_non_null(strstr(b, "&lt;script&gt;alert(1)&lt;/script&gt; owner is tagged"));
    assert_null(strstr(b, "<script"));
    assert_non_null(strstr(b, "<a href=\"/compliance?group=rule\" aria-current=\"page\">"));

    /* by service, filtered by team */
    r = send_req(f, "GET", "/compliance", "group=service&team=identity", NULL, f->session);
    assert_int_equal(r->status, 200);
    b = r->body.data;
    assert_non_null(strstr(b, "href=\"/services/auth-service#guard-rails\""));
    assert_null(strstr(b, "href=\"/services/ledger#guard-rails\""));
    assert_non_null(strstr(b, "id=\"total-fail\">1<"));

    /* a second scan makes a trend line */
    assert_int_equal(policy_scan(f->pe, NULL, &err), 0);
    r = send_req(f, "GET", "/compliance", NULL, NULL, f->session);
    assert_non_null(strstr(r->body.data, "<svg class=\"spark\""));
    assert_int_equal(count(r->body.data, "class=\"trend-row\""), 2);

    r = send_req(f, "GET", "/compliance", "group=owner", NULL, f->session);
    assert_int_equal(r->status, 400);
    /* signed out: to the sign-in page */
    r = send_req(f, "GET", "/compliance", NULL, NULL, NULL);
    assert_int_equal(r->status, 303);
    assert_string_equal(r->location, "/login");
}

static void compliance_exports(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    guard_setup(f);
    sign_in(f);
    r = send_req(f, "GET", "/compliance.csv", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->content_type, "text/csv; charset=utf-8");
    assert_true(strncmp(r->body.data,
                        "scan,time,team,service,rule,severity,mode,outcome,message\r\n", 59) == 0);
    assert_int_equal(count(r->body.data, ",owner-tag,"), 3);
    r = send_req(f, "GET", "/compliance.csv", "service=ledger", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_int_equal(count(r->body.data, ",owner-tag,"), 1);
    assert_null(strstr(r->body.data, "payments-api"));

    r = send_req(f, "GET", "/compliance.json", "group=rule", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->content_type, "application/json");
    json_error_t jerr;
    json_t *doc = json_loads(r->body.data, 0, &jerr);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "group")), "rule");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "totals"), "fail")),
                     3);
    json_decref(doc);
    /* downloads need a session like every page */
    r = send_req(f, "GET", "/compliance.csv", NULL, NULL, NULL);
    assert_int_equal(r->status, 303);
}

static void decision_page_explains_and_offers_exception(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    guard_setup(f);
    int64_t id = guard_decision(f);
    sign_in(f);
    char path[64];
    snprintf(path, sizeof(path), "/policy/decisions/%lld", (long long)id);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *b = r->body.data;
    assert_non_null(strstr(b, "id=\"verdict\">blocked<"));
    assert_non_null(strstr(b, "<dd id=\"gate\">catalog</dd>"));
    assert_non_null(strstr(b, "href=\"/services/payments-api\""));
    assert_non_null(strstr(b, "<code>owner-tag</code>"));
    assert_non_null(strstr(b, "&lt;script&gt;alert(1)&lt;/script&gt; owner is tagged"));
    assert_null(strstr(b, "<script"));
    assert_non_null(strstr(b, "class=\"remediation\">Add metadata.tags.owner to pave.yaml<"));
    assert_non_null(strstr(b, "enforce <span class=\"muted\">(blocks)</span>"));
    /* the exception form: CSRF token, the failing rule, 30 days by default; the CLI line */
    assert_non_null(strstr(b, "action=\"/policy/decisions/"));
    const char *form = strstr(b, "id=\"exception-form\"");
    assert_non_null(form);
    char want[128];
    snprintf(want, sizeof(want), "name=\"csrf\" value=\"%s\"", f->csrf);
    assert_non_null(strstr(form, want));
    assert_non_null(strstr(form, "<option value=\"owner-tag\" selected>"));
    assert_non_null(strstr(form, "name=\"expires\" maxlength=\"40\" value=\"30d\""));
    assert_non_null(strstr(b, "pave policy exceptions request payments-api owner-tag "
                              "--justification WHY --expires 30d"));
    assert_non_null(strstr(b, "No exceptions."));

    /* unknown decisions and odd ids */
    r = send_req(f, "GET", "/policy/decisions/999999", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/policy/decisions/0x1", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/policy/decisions/1/other", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);

    /* the form needs the CSRF token: nothing is requested without it */
    char sub[96];
    snprintf(sub, sizeof(sub), "/policy/decisions/%lld/exceptions", (long long)id);
    r = send_req(f, "POST", sub, NULL, "rule=owner-tag&justification=x&expires=30d",
                 f->session);
    assert_int_equal(r->status, 403);
    r = send_req(f, "POST", sub, NULL, "rule=owner-tag&justification=x&expires=30d&csrf=nope",
                 f->session);
    assert_int_equal(r->status, 403);
    struct core_err err = {0};
    json_t *l = policy_exception_list(f->pe, NULL, "payments-api", &err);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 0);
    json_decref(l);
    r = send_req(f, "GET", sub, NULL, NULL, f->session);
    assert_int_equal(r->status, 405);
}

static void exception_form_requests_one(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    struct core_err err = {0};
    guard_setup(f);
    int64_t id = guard_decision(f);
    sign_in(f);
    char sub[96], body[512];
    snprintf(sub, sizeof(sub), "/policy/decisions/%lld/exceptions", (long long)id);

    /* refusals keep what was typed and say why */
    snprintf(body, sizeof(body), "csrf=%s&rule=owner-tag&justification=&expires=30d", f->csrf);
    r = send_req(f, "POST", sub, NULL, body, f->session);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->body.data, "id=\"request-error\""));
    snprintf(body, sizeof(body), "csrf=%s&rule=cost-tag&justification=because&expires=30d",
             f->csrf);
    r = send_req(f, "POST", sub, NULL, body, f->session);
    assert_int_equal(r->status, 400); /* not a failing rule of this decision */
    snprintf(body, sizeof(body), "csrf=%s&rule=owner-tag&justification=because&expires=soon",
             f->csrf);
    r = send_req(f, "POST", sub, NULL, body, f->session);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->body.data, "value=\"soon\""));
    assert_non_null(strstr(r->body.data, ">because</textarea>"));
    snprintf(body, sizeof(body), "csrf=%s&rule=owner-tag&justification=because&expires=400d",
             f->csrf);
    r = send_req(f, "POST", sub, NULL, body, f->session);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->body.data, "at most 1 year"));

    /* a hostile justification, 30 days by default */
    snprintf(body, sizeof(body),
             "csrf=%s&rule=owner-tag&justification=%%3Cb%%3Emigrating%%3C%%2Fb%%3E+it%%27s+TICKET-42"
             "&expires=",
             f->csrf);
    r = send_req(f, "POST", sub, NULL, body, f->session);
    assert_int_equal(r->status, 303);
    json_t *l = policy_exception_list(f->pe, NULL, "payments-api", &err);
    assert_non_null(l);
    json_t *x = json_array_get(json_object_get(l, "items"), 0);
    assert_non_null(x);
    assert_string_equal(json_string_value(json_object_get(x, "state")), "requested");
    assert_string_equal(json_string_value(json_object_get(x, "rule")), "owner-tag");
    assert_string_equal(json_string_value(json_object_get(x, "requester")), "admin");
    assert_string_equal(json_string_value(json_object_get(x, "justification")),
                        "<b>migrating</b> it's TICKET-42");
    long long xid = (long long)json_integer_value(json_object_get(x, "id"));
    json_decref(l);
    char want[160];
    snprintf(want, sizeof(want), "/policy/decisions/%lld?requested=%lld#exceptions",
             (long long)id, xid);
    assert_string_equal(r->location, want);

    /* the page after the redirect: the result, the CLI equivalent, the subject's exceptions */
    char path[64], query[32];
    snprintf(path, sizeof(path), "/policy/decisions/%lld", (long long)id);
    snprintf(query, sizeof(query), "requested=%lld", xid);
    r = send_req(f, "GET", path, query, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *b = r->body.data;
    snprintf(want, sizeof(want), "Exception #%lld for <code>owner-tag</code> is "
                                 "<strong id=\"requested-state\">requested</strong>", xid);
    assert_non_null(strstr(b, want));
    assert_non_null(strstr(b, "pave policy exceptions request payments-api owner-tag "
                              "--justification '&lt;b&gt;migrating&lt;/b&gt; it'\\''s TICKET-42' "
                              "--expires "));
    assert_non_null(strstr(b, "class=\"exception-row\""));
    assert_null(strstr(b, "<b>migrating"));
    r = send_req(f, "GET", path, "requested=abc", NULL, f->session);
    assert_int_equal(r->status, 400);

    /* the service page's section lists the scan rows and the exception */
    r = send_req(f, "GET", "/services/payments-api", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *sec = strstr(r->body.data, "<section id=\"guard-rails\">");
    assert_non_null(sec);
    assert_int_equal(count(sec, "class=\"guard-row\""), 2);
    assert_non_null(strstr(sec, "<span class=\"outcome outcome-fail\">fail</span>"));
    assert_non_null(strstr(sec, "<span class=\"outcome outcome-pass\">pass</span>"));
    assert_non_null(strstr(sec, "class=\"exception-row\""));
    assert_non_null(strstr(sec, "<span class=\"state exc-state\">requested</span>"));
    snprintf(want, sizeof(want), "<a href=\"/policy/decisions/%lld\">", (long long)id);
    assert_non_null(strstr(sec, want));
    assert_non_null(strstr(sec, "href=\"/compliance?group=service&amp;service=payments-api\""));
    assert_non_null(strstr(r->body.data, "<a href=\"#guard-rails\">Guard rails</a>"));
}

static void guard_rails_without_policy(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    struct core_err err = {0};
    portal_free(f->portal);
    struct portal_deps deps = {.st = f->st, .cat = f->cat, .runner = f->runner};
    f->portal = portal_new(&deps, &err);
    assert_non_null(f->portal);
    sign_in(f);
    r = send_req(f, "GET", "/compliance", NULL, NULL, f->session);
    assert_int_equal(r->status, 503);
    r = send_req(f, "GET", "/compliance.csv", NULL, NULL, f->session);
    assert_int_equal(r->status, 503);
    r = send_req(f, "GET", "/policy/decisions/1", NULL, NULL, f->session);
    assert_int_equal(r->status, 503);
    r = send_req(f, "GET", "/services/payments-api", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "id=\"guard-rails-off\""));
    /* with an engine but no scan yet */
    portal_free(f->portal);
    deps.policy = f->pe;
    f->portal = portal_new(&deps, &err);
    r = send_req(f, "GET", "/compliance", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "No scan has run yet"));
    r = send_req(f, "GET", "/compliance.csv", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body.data,
                        "scan,time,team,service,rule,severity,mode,outcome,message\r\n");
}

/* ---- certificates ---------------------------------------------------------------------------- */

struct ca_certs {
    struct pki_issued svc, user, revoked;
};

static void issue_one(struct fx *f, const char *dns, const char *owner, struct pki_issued *out)
{
    struct core_err err = {0};
    const char *names[] = {dns};
    struct pki_issue_request req = {.dns_names = names, .ndns = 1, .owner = owner,
                                    .lifetime_ms = 24LL * 3600 * 1000};
    if (pki_issue(f->pki, &req, PKI_KEY_EC_P256, out, &err))
        fail_msg("pki_issue: %s", err.msg);
}

/* A CA in the fixture's data dir and a portal that uses it; three certificates, one revoked. */
static void ca_open(struct fx *f, struct ca_certs *c, const char *user_owner)
{
    struct core_err err = {0};
    struct pki_config cfg = {.data_dir = f->dir, .st = f->st};
    if (pki_init(&cfg, "Unit <Org>", PKI_KEY_EC_P256, false, &err))
        fail_msg("pki_init: %s", err.msg);
    f->pki = pki_open(&cfg, &err);
    if (!f->pki)
        fail_msg("pki_open: %s", err.msg);
    issue_one(f, "api.payments.internal", "service:payments-api", &c->svc);
    issue_one(f, "eve.internal", user_owner, &c->user);
    issue_one(f, "old.internal", "acme:account/7", &c->revoked);
    assert_int_equal(pki_revoke(f->pki, c->revoked.serial, 1, &err), 0);
    portal_free(f->portal);
    struct portal_deps deps = {.st = f->st, .cat = f->cat, .runner = f->runner,
                               .data_dir = f->dir, .policy = f->pe, .pki = f->pki};
    f->portal = portal_new(&deps, &err);
    assert_non_null(f->portal);
}

static void ca_certs_release(struct ca_certs *c)
{
    pki_issued_release(&c->svc);
    pki_issued_release(&c->user);
    pki_issued_release(&c->revoked);
}

/* The <tbody> of the inventory table (a pointer into the reply). */
static const char *cert_rows(struct portal_response *r)
{
    const char *t = strstr(r->body.data, "<table id=\"certificates\">");
    assert_non_null(t);
    return t;
}

static void ca_page_lists_and_filters(void **state)
{
    struct fx *f = *state;
    struct ca_certs c = {0};
    struct portal_response *r;
    ca_open(f, &c, "user:eve");
    r = send_req(f, "GET", "/ca", NULL, NULL, NULL);
    assert_int_equal(r->status, 303); /* signed-in users only */
    sign_in(f);
    r = send_req(f, "GET", "/ca", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *b = r->body.data;
    assert_non_null(strstr(b, "<a href=\"/ca\" aria-current=\"page\">Certificates</a>"));
    assert_non_null(strstr(b, "id=\"ca-root\""));
    assert_non_null(strstr(b, "id=\"ca-intermediate\""));
    /* the CA's subjects (RFC 2253, which backslash-escapes '<' and '>'), HTML-escaped */
    assert_non_null(strstr(b, "CN=Unit \\&lt;Org\\&gt; Root CA,O=Unit \\&lt;Org\\&gt;"));
    assert_non_null(strstr(b, "CN=Unit \\&lt;Org\\&gt; Intermediate CA"));
    assert_null(strstr(b, "Unit <Org>"));
    assert_non_null(strstr(b, "href=\"/pki/ca.pem\""));
    assert_non_null(strstr(b, "href=\"/pki/chain.pem\""));
    assert_non_null(strstr(b, "href=\"/pki/crl.pem\""));
    assert_non_null(strstr(b, "id=\"cert-count\">3 certificates"));
    const char *rows = cert_rows(r);
    char link[128];
    snprintf(link, sizeof(link), "href=\"/ca/certificates/%s\"", c.svc.serial);
    assert_non_null(strstr(rows, link));
    assert_non_null(strstr(rows, "<span class=\"chip\">api.payments.internal</span>"));
    assert_non_null(strstr(rows, "service:payments-api"));
    assert_non_null(strstr(rows, "<span class=\"state cert-revoked\">revoked</span>"));
    assert_non_null(strstr(rows, "<span class=\"state cert-valid\">valid</span>"));
    assert_null(strstr(rows, "cert-expiring")); /* fresh 24 h certificates */

    r = send_req(f, "GET", "/ca", "owner=service%3A", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "id=\"cert-count\">1 certificate<"));
    assert_non_null(strstr(cert_rows(r), "api.payments.internal"));
    assert_null(strstr(cert_rows(r), "eve.internal"));
    assert_non_null(strstr(r->body.data, "value=\"service:\""));

    r = send_req(f, "GET", "/ca", "state=revoked", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "id=\"cert-count\">1 certificate<"));
    assert_non_null(strstr(cert_rows(r), "old.internal"));
    assert_non_null(strstr(r->body.data, "<option value=\"revoked\" selected>"));

    r = send_req(f, "GET", "/ca", "expiring=7d", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "id=\"cert-count\">2 certificates"));
    assert_null(strstr(cert_rows(r), "old.internal"));
    r = send_req(f, "GET", "/ca", "expiring=1h", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "id=\"cert-count\">0 certificates"));
    assert_non_null(strstr(r->body.data, "No certificate matches."));

    r = send_req(f, "GET", "/ca", "expiring=soon", NULL, f->session);
    assert_int_equal(r->status, 400);
    r = send_req(f, "GET", "/ca", "state=bogus", NULL, f->session);
    assert_int_equal(r->status, 400);

    /* a certificate with less than a third of its lifetime left: move its start back 10 days */
    struct store_value v[] = {STORE_V_TEXT(c.svc.serial)};
    assert_int_equal(store_exec(f->st,
                                "UPDATE pki_certs SET not_before_ms = not_before_ms - 864000000 "
                                "WHERE serial = ?",
                                v, 1, NULL, NULL),
                     0);
    r = send_req(f, "GET", "/ca", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *row = strstr(cert_rows(r), "<tr class=\"cert-row cert-expiring\">");
    assert_non_null(row);
    const char *end = strstr(row, "</tr>");
    const char *svc = strstr(row, "api.payments.internal");
    assert_true(svc && svc < end);
    const char *soon = strstr(row, "expiring soon");
    assert_true(soon && soon < end);
    assert_int_equal(strstr(end, "cert-expiring") == NULL, true); /* only that one */
    ca_certs_release(&c);
}

static void ca_page_escapes_owner(void **state)
{
    struct fx *f = *state;
    struct ca_certs c = {0};
    struct portal_response *r;
    ca_open(f, &c, "user:<script>alert(1)</script>\"x");
    sign_in(f);
    r = send_req(f, "GET", "/ca", NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body.data, "<script>"));
    assert_non_null(strstr(r->body.data, "user:&lt;script&gt;alert(1)&lt;/script&gt;&quot;x"));
    /* the filter value comes back escaped too */
    r = send_req(f, "GET", "/ca", "owner=%22%3E%3Cscript%3E", NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body.data, "<script>"));
    assert_non_null(strstr(r->body.data, "value=\"&quot;&gt;&lt;script&gt;\""));
    char path[128];
    snprintf(path, sizeof(path), "/ca/certificates/%s", c.user.serial);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body.data, "<script>"));
    assert_non_null(strstr(r->body.data, "&lt;script&gt;"));
    ca_certs_release(&c);
}

static void ca_certificate_detail(void **state)
{
    struct fx *f = *state;
    struct ca_certs c = {0};
    struct portal_response *r;
    char path[128];
    ca_open(f, &c, "user:eve");
    sign_in(f);
    snprintf(path, sizeof(path), "/ca/certificates/%s", c.svc.serial);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    const char *b = r->body.data;
    assert_non_null(strstr(b, "<p class=\"crumbs\"><a href=\"/ca\">Certificates</a>"));
    char want[128];
    snprintf(want, sizeof(want), "id=\"cert-serial\">%s<", c.svc.serial);
    assert_non_null(strstr(b, want));
    assert_non_null(strstr(b, "<span class=\"chip\">api.payments.internal</span>"));
    assert_non_null(strstr(b, "id=\"cert-owner\">service:payments-api<"));
    assert_non_null(strstr(b, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(b, "<dt>Lifetime</dt><dd>1d 0h</dd>"));
    assert_non_null(strstr(b, "pave ca revoke "));
    assert_null(strstr(b, "id=\"cert-revoked\""));

    snprintf(path, sizeof(path), "/ca/certificates/%s", c.revoked.serial);
    r = send_req(f, "GET", path, NULL, NULL, f->session);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body.data, "id=\"cert-revoked\""));
    assert_non_null(strstr(r->body.data, "keyCompromise"));
    assert_null(strstr(r->body.data, "pave ca revoke "));

    r = send_req(f, "GET", "/ca/certificates/ABCDEF0123", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/ca/certificates/not-hex", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/ca/certificates/", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "GET", "/ca/certificates/AB/CD", NULL, NULL, f->session);
    assert_int_equal(r->status, 404);
    r = send_req(f, "POST", "/ca", NULL, "csrf=x", f->session);
    assert_true(r->status == 403 || r->status == 405);
    ca_certs_release(&c);
}

static void ca_pages_without_ca(void **state)
{
    struct fx *f = *state;
    struct portal_response *r;
    sign_in(f);
    r = send_req(f, "GET", "/ca", NULL, NULL, f->session);
    assert_int_equal(r->status, 503);
    assert_non_null(strstr(r->body.data, "id=\"ca-off\""));
    assert_non_null(strstr(r->body.data, "pave ca init"));
    assert_non_null(strstr(r->body.data, "aria-current=\"page\">Certificates</a>"));
    r = send_req(f, "GET", "/ca/certificates/ABCD", NULL, NULL, f->session);
    assert_int_equal(r->status, 503);
    assert_non_null(strstr(r->body.data, "pave ca init"));
}

static void pki_metrics_format(void **state)
{
    struct fx *f = *state;
    struct ca_certs c = {0};
    struct core_buf out;
    char want[512];
    ca_open(f, &c, "user:a\"b\\c\nd");
    core_buf_init(&out, 0);
    assert_int_equal(pki_metrics(f->pki, &out), 0);
    const char *m = out.data;
    assert_non_null(m);
    assert_non_null(strstr(m, "# TYPE pave_certificate_expiry_timestamp_seconds gauge\n"));
    assert_non_null(strstr(m, "# TYPE pave_certificate_not_before_timestamp_seconds gauge\n"));
    assert_non_null(strstr(m, "# TYPE pave_certificates_total gauge\n"));
    snprintf(want, sizeof(want),
             "\npave_certificate_expiry_timestamp_seconds{serial=\"%s\","
             "owner=\"service:payments-api\"} %lld\n",
             c.svc.serial, (long long)(c.svc.not_after_ms / 1000));
    assert_non_null(strstr(m, want));
    snprintf(want, sizeof(want),
             "\npave_certificate_not_before_timestamp_seconds{serial=\"%s\","
             "owner=\"service:payments-api\"} %lld\n",
             c.svc.serial, (long long)(c.svc.not_before_ms / 1000));
    assert_non_null(strstr(m, want));
    /* label values escaped per the text format: \" \\ \n */
    snprintf(want, sizeof(want),
             "\npave_certificate_expiry_timestamp_seconds{serial=\"%s\","
             "owner=\"user:a\\\"b\\\\c\\nd\"} %lld\n",
             c.user.serial, (long long)(c.user.not_after_ms / 1000));
    assert_non_null(strstr(m, want));
    /* revoked certificates have no timestamps */
    assert_null(strstr(m, c.revoked.serial));
    assert_non_null(strstr(m, "\npave_certificates_total{state=\"valid\"} 2\n"));
    assert_non_null(strstr(m, "\npave_certificates_total{state=\"expired\"} 0\n"));
    assert_non_null(strstr(m, "\npave_certificates_total{state=\"revoked\"} 1\n"));
    /* every line is a comment or a sample "name{...} value" with no raw newline inside */
    size_t samples = 0;
    for (const char *l = m; *l;) {
        const char *nl = strchr(l, '\n');
        assert_non_null(nl);
        if (*l != '#') {
            assert_true(strncmp(l, "pave_certificate", 16) == 0);
            const char *close = strstr(l, "} ");
            assert_true(close && close < nl);
            samples++;
        }
        l = nl + 1;
    }
    assert_int_equal(samples, 2 * 2 + 3);
    core_buf_release(&out);
    /* without a CA there is nothing to add */
    core_buf_init(&out, 0);
    assert_int_equal(pki_metrics(NULL, &out), 0);
    assert_int_equal(out.len, 0);
    core_buf_release(&out);
    ca_certs_release(&c);
}

int main(void)
{
    core_log_set_level(CORE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(login_success_sets_session_cookie, setup, teardown),
        cmocka_unit_test_setup_teardown(login_page_has_password_field, setup, teardown),
        cmocka_unit_test_setup_teardown(login_bad_token_is_401, setup, teardown),
        cmocka_unit_test_setup_teardown(login_without_token_is_400, setup, teardown),
        cmocka_unit_test_setup_teardown(pages_need_a_session, setup, teardown),
        cmocka_unit_test_setup_teardown(root_redirects_to_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(catalog_lists_all_services, setup, teardown),
        cmocka_unit_test_setup_teardown(catalog_search_narrows_the_list, setup, teardown),
        cmocka_unit_test_setup_teardown(catalog_team_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(catalog_paginates, setup, teardown),
        cmocka_unit_test_setup_teardown(service_page_shows_owner_and_history, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_service_is_404, setup, teardown),
        cmocka_unit_test_setup_teardown(teams_and_audit_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(logout_needs_csrf, setup, teardown),
        cmocka_unit_test_setup_teardown(other_posts_need_csrf, setup, teardown),
        cmocka_unit_test_setup_teardown(search_text_is_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_query_is_400, setup, teardown),
        cmocka_unit_test_setup_teardown(stylesheet_is_served, setup, teardown),
        cmocka_unit_test_setup_teardown(odd_requests_do_not_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(service_page_lists_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(run_page_shows_steps_and_coloured_log, setup, teardown),
        cmocka_unit_test_setup_teardown(running_run_page_refreshes, setup, teardown),
        cmocka_unit_test_setup_teardown(long_log_shows_its_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(run_artifact_download, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_run_paths_are_404, setup, teardown),
        cmocka_unit_test_setup_teardown(create_form_renders, setup, teardown),
        cmocka_unit_test_setup_teardown(create_needs_csrf, setup, teardown),
        cmocka_unit_test_setup_teardown(create_bad_input_rerenders, setup, teardown),
        cmocka_unit_test_setup_teardown(portal_without_runner, setup, teardown),
        cmocka_unit_test_setup_teardown(service_page_deployments_off, setup, teardown),
        cmocka_unit_test_setup_teardown(service_page_shows_deploy_history_from_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(service_page_rollback_notice, setup, teardown),
        cmocka_unit_test_setup_teardown(rollback_pages_without_controller, setup, teardown),
        cmocka_unit_test(deployments_render_from_json),
        cmocka_unit_test(logs_filter_parse_defaults_and_values),
        cmocka_unit_test(prom_sum_codes_by_class),
        cmocka_unit_test(log_row_escapes_hostile_lines),
        cmocka_unit_test(metrics_render_from_json),
        cmocka_unit_test_setup_teardown(logs_page_filters_and_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(logs_live_tail_reloads_and_marks_new_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(service_page_metrics_and_logs_links, setup, teardown),
        cmocka_unit_test_setup_teardown(compliance_dashboard_totals_and_escaping, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(compliance_exports, setup, teardown),
        cmocka_unit_test_setup_teardown(decision_page_explains_and_offers_exception, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(exception_form_requests_one, setup, teardown),
        cmocka_unit_test_setup_teardown(guard_rails_without_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(ca_page_lists_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(ca_page_escapes_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(ca_certificate_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(ca_pages_without_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(pki_metrics_format, setup, teardown),
    };
    return cmocka_run_group_tests_name("portal", tests, NULL, NULL);
}
