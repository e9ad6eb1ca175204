/*
 * Portal pages driven through portal_handle() against a real SQLite store with the demo
 * organization: sign-in and sessions, CSRF, catalog search and filters, the service page,
 * error pages and HTML escaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "core/core.h"
#include "portal/portal.h"
#include "store/store.h"

struct fx {
    char dir[64];
    struct store *st;
    struct catalog *cat;
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
    char path[128];
    if (f->have_resp)
        core_buf_release(&f->resp.body);
    portal_free(f->portal);
    catalog_free(f->cat);
    if (f->st)
        store_close(f->st);
    static const char *const files[] = {"pave.db", "pave.db-wal", "pave.db-shm", "pave.db-journal"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
        unlink(path);
    }
    rmdir(f->dir);
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
        auth_bootstrap(f->st, f->cat, f->token, &created, &err) || !created ||
        !(f->portal = portal_new(f->st, f->cat, &err))) {
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
        struct catalog_diags d;
        enum catalog_change ch;
        catalog_manifest_init(&m);
        catalog_diags_init(&d);
        int rc = catalog_manifest_parse(file, text, strlen(text), &m, &d, &err);
        if (!rc)
            rc = catalog_service_apply(f->cat, &catalog_actor_system, &m, file, &ch, &d, &err);
        if (rc)
            fprintf(stderr, "%s: %s (%zu diags: %s)\n", file, err.msg, d.n,
                    d.n ? d.items[0].message : "");
        catalog_manifest_release(&m);
        catalog_diags_release(&d);
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
    };
    return cmocka_run_group_tests_name("portal", tests, NULL, NULL);
}
