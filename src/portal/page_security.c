/* The portal's /security pages (docs/security.md, "Alerts"):
 *
 *   /security                 open and acknowledged alerts (or ?state=closed|all), filters by
 *                             state, severity and service, counts by severity
 *   /security/alerts/ID       one alert: rule, severity, state, owner, summary, when, count, the
 *                             kept events (pretty JSON), acknowledge / close forms, audit trail
 *   /security/fim             the file-integrity baseline per scope and the FIM alerts
 *   /security/rules           loaded and rejected detection rules
 *
 * Visibility follows the API: admins see every alert, others the alerts of their teams and
 * alerts that belong to no team; acknowledging and closing need an admin or a team member. */
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "portal/portal_int.h"
#include "security/security.h"
#include "store/store.h"

#define LIST_ROWS 200

static const char *const severities[] = {"critical", "high", "medium", "low", "informational"};

static bool sees(const struct page *pg, const char *team)
{
    return pg->who.is_admin || !team || !*team || catalog_actor_in_team(&pg->who.actor, team);
}

static bool may_change(const struct page *pg, const char *team)
{
    return pg->who.is_admin || (team && *team && catalog_actor_in_team(&pg->who.actor, team));
}

/* Severity as a badge, reusing the log severity colours. */
static void sev_badge(struct page *pg, const char *sev)
{
    const char *cls = "";
    if (sev && !strcmp(sev, "critical"))
        cls = " sev-fatal";
    else if (sev && !strcmp(sev, "high"))
        cls = " sev-error";
    else if (sev && !strcmp(sev, "medium"))
        cls = " sev-warn";
    else if (sev && (!strcmp(sev, "low") || !strcmp(sev, "informational")))
        cls = " sev-info";
    out_s(pg, "<span class=\"sev");
    out_s(pg, cls);
    out_s(pg, "\">");
    out_hd(pg, sev);
    out_s(pg, "</span>");
}

static void state_badge(struct page *pg, const char *state)
{
    const char *cls = "";
    if (state && !strcmp(state, "open"))
        cls = " state-failed";
    else if (state && !strcmp(state, "acknowledged"))
        cls = " state-pending";
    else if (state && !strcmp(state, "closed"))
        cls = " state-succeeded";
    out_s(pg, "<span class=\"state");
    out_s(pg, cls);
    out_s(pg, "\">");
    out_hd(pg, state);
    out_s(pg, "</span>");
}

static void tabs(struct page *pg, const char *cur)
{
    static const char *const t[][3] = {{"alerts", "/security", "Alerts"},
                                       {"fim", "/security/fim", "File integrity"},
                                       {"rules", "/security/rules", "Rules"}};
    out_s(pg, "<nav class=\"tabs\" aria-label=\"Security\">");
    for (size_t i = 0; i < 3; i++) {
        out_s(pg, "<a href=\"");
        out_s(pg, t[i][1]);
        out_s(pg, "\"");
        if (!strcmp(cur, t[i][0]))
            out_s(pg, " aria-current=\"page\"");
        out_s(pg, ">");
        out_s(pg, t[i][2]);
        out_s(pg, "</a>");
    }
    out_s(pg, "</nav>\n");
}

static void alert_rows(struct page *pg, json_t *items, const char *empty)
{
    out_s(pg, "<table id=\"alerts\">\n<thead><tr><th>ID</th><th>Severity</th><th>State</th>"
              "<th>Rule</th><th>Service</th><th>Team</th><th>Count</th><th>Last seen</th>"
              "</tr></thead>\n<tbody>\n");
    size_t i, n = 0;
    json_t *a;
    json_array_foreach (items, i, a) {
        int64_t id = 0;
        portal_jint(a, "id", &id);
        n++;
        out_f(pg, "<tr class=\"alert-row\"><td><a href=\"/security/alerts/%lld\">%lld</a></td><td>",
              (long long)id, (long long)id);
        sev_badge(pg, portal_jstr(a, "severity"));
        out_s(pg, "</td><td>");
        state_badge(pg, portal_jstr(a, "state"));
        out_s(pg, "</td><td>");
        out_hd(pg, portal_jstr(a, "rule_title"));
        out_s(pg, "<div class=\"muted\">");
        out_h(pg, portal_jstr(a, "summary"));
        out_s(pg, "</div></td><td>");
        out_hd(pg, portal_jstr(a, "service"));
        out_s(pg, "</td><td>");
        out_hd(pg, portal_jstr(a, "team"));
        int64_t count = 0;
        portal_jint(a, "count", &count);
        out_f(pg, "</td><td>%lld</td><td>", (long long)count);
        portal_out_time(pg, portal_jstr(a, "last_seen"));
        out_s(pg, "</td></tr>\n");
    }
    if (!n) {
        out_s(pg, "<tr><td colspan=\"8\" class=\"empty\">");
        out_h(pg, empty);
        out_s(pg, "</td></tr>\n");
    }
    out_s(pg, "</tbody>\n</table>\n");
}

/* The alerts the signed-in user may see, from a list answer (new reference). */
static json_t *visible(struct page *pg, json_t *list)
{
    json_t *out = json_array();
    size_t i;
    json_t *a;
    json_array_foreach (json_object_get(list, "items"), i, a)
        if (out && sees(pg, portal_jstr(a, "team")))
            json_array_append(out, a);
    return out;
}

static void option(struct page *pg, const char *value, const char *label, const char *cur)
{
    out_s(pg, "<option value=\"");
    out_h(pg, value);
    out_s(pg, "\"");
    if (!strcmp(value, cur))
        out_s(pg, " selected");
    out_s(pg, ">");
    out_h(pg, label);
    out_s(pg, "</option>");
}

/* GET /security */
static int alerts_page(struct page *pg)
{
    char state[32], sev[32], service[PARAM_MAX];
    const char *q = pg->req->query;
    if (portal_form_value(q, "state", state, sizeof(state)) ||
        portal_form_value(q, "severity", sev, sizeof(sev)) ||
        portal_form_value(q, "service", service, sizeof(service)))
        return portal_bad_request(pg, "A filter value is too long or badly encoded.");
    /* the default view: what still needs someone */
    const char *st = !state[0] ? "live" : !strcmp(state, "all") ? NULL : state;
    json_t *list = security_alert_list(pg->p->st, st, sev[0] ? sev : NULL,
                                       service[0] ? service : NULL, LIST_ROWS * 5, &pg->err);
    if (!list) {
        if (pg->err.code == CORE_E_INVAL)
            return portal_bad_request(pg, pg->err.msg);
        return portal_error_page(pg, 500, "Error", "The alerts could not be read.");
    }
    json_t *items = visible(pg, list);
    json_decref(list);
    while (items && json_array_size(items) > LIST_ROWS)
        json_array_remove(items, json_array_size(items) - 1);
    pg->nav = "security";
    portal_page_begin(pg, 200, "Security");
    out_s(pg, "<h1>Security</h1>\n");
    tabs(pg, "alerts");
    out_s(pg, "<div class=\"totals\" id=\"severity-counts\">");
    for (size_t k = 0; k < 5; k++) {
        size_t n = 0, i;
        json_t *a;
        json_array_foreach (items, i, a) {
            const char *s = portal_jstr(a, "severity");
            n += s && !strcmp(s, severities[k]);
        }
        out_s(pg, "<div class=\"card\"><span class=\"big\">");
        out_f(pg, "%zu", n);
        out_s(pg, "</span>");
        sev_badge(pg, severities[k]);
        out_s(pg, "</div>");
    }
    out_s(pg, "</div>\n<form class=\"filters\" method=\"get\" action=\"/security\">"
              "<label for=\"state\">State</label> <select id=\"state\" name=\"state\">");
    option(pg, "", "open or acknowledged", state);
    option(pg, "open", "open", state);
    option(pg, "acknowledged", "acknowledged", state);
    option(pg, "closed", "closed", state);
    option(pg, "all", "all", state);
    out_s(pg, "</select> <label for=\"severity\">Severity</label> "
              "<select id=\"severity\" name=\"severity\">");
    option(pg, "", "any", sev);
    for (size_t k = 0; k < 5; k++)
        option(pg, severities[k], severities[k], sev);
    out_s(pg, "</select> <label for=\"service\">Service</label> <input id=\"service\" "
              "name=\"service\" value=\"");
    out_h(pg, service);
    out_s(pg, "\"> <button type=\"submit\">Filter</button></form>\n");
    alert_rows(pg, items, "No alert matches. Alerts appear when a detection rule matches a "
                          "record of the pipeline.");
    json_decref(items);
    portal_page_end(pg);
    return pg->rc;
}

static void move_form(struct page *pg, int64_t id, const char *verb, const char *label,
                      bool required)
{
    out_f(pg, "<form id=\"%s-form\" class=\"form card\" method=\"post\" "
              "action=\"/security/alerts/%lld/%s\">\n",
          verb, (long long)id, verb);
    out_s(pg, "<input type=\"hidden\" name=\"csrf\" value=\"");
    out_h(pg, pg->csrf);
    out_f(pg, "\">\n<label for=\"%s-comment\">Comment</label>\n", verb);
    out_f(pg, "<textarea id=\"%s-comment\" name=\"comment\" rows=\"2\" maxlength=\"1000\"%s>"
              "</textarea>\n",
          verb, required ? " required" : "");
    out_s(pg, "<button type=\"submit\">");
    out_s(pg, label);
    out_s(pg, "</button>\n</form>\n");
}

/* GET /security/alerts/ID; note (may be NULL) is shown above, with status. */
static int alert_page(struct page *pg, int64_t id, int status, const char *note)
{
    struct core_err err = {0};
    json_t *a = security_alert_get(pg->p->st, id, &err);
    if (!a && err.code != CORE_E_NOTFOUND)
        return portal_error_page(pg, 500, "Error", "The alert could not be read.");
    if (!a || !sees(pg, portal_jstr(a, "team"))) {
        json_decref(a);
        return portal_not_found(pg);
    }
    const char *state = portal_jstr(a, "state"), *team = portal_jstr(a, "team");
    char title[64];
    snprintf(title, sizeof(title), "Alert %lld", (long long)id);
    pg->nav = "security";
    portal_page_begin(pg, status, title);
    out_s(pg, "<p><a href=\"/security\">&larr; Security</a></p>\n<h1>");
    out_h(pg, title);
    out_s(pg, " ");
    state_badge(pg, state);
    out_s(pg, "</h1>\n");
    if (note) {
        out_s(pg, "<p class=\"note\" id=\"form-error\">");
        out_h(pg, note);
        out_s(pg, "</p>\n");
    }
    out_s(pg, "<p id=\"summary\">");
    out_h(pg, portal_jstr(a, "summary"));
    out_s(pg, "</p>\n<table id=\"alert\">\n<tbody>\n<tr><th>Rule</th><td>");
    out_hd(pg, portal_jstr(a, "rule_title"));
    out_s(pg, " <code>");
    out_h(pg, portal_jstr(a, "rule_id"));
    out_s(pg, "</code></td></tr>\n<tr><th>Source</th><td>");
    out_hd(pg, portal_jstr(a, "source"));
    out_s(pg, "</td></tr>\n<tr><th>Severity</th><td>");
    sev_badge(pg, portal_jstr(a, "severity"));
    out_s(pg, "</td></tr>\n<tr><th>Service</th><td>");
    out_hd(pg, portal_jstr(a, "service"));
    out_s(pg, "</td></tr>\n<tr><th>Team</th><td>");
    out_hd(pg, team);
    out_s(pg, "</td></tr>\n<tr><th>First seen</th><td>");
    portal_out_time(pg, portal_jstr(a, "first_seen"));
    out_s(pg, "</td></tr>\n<tr><th>Last seen</th><td>");
    portal_out_time(pg, portal_jstr(a, "last_seen"));
    int64_t count = 0;
    portal_jint(a, "count", &count);
    out_f(pg, "</td></tr>\n<tr><th>Count</th><td id=\"count\">%lld</td></tr>\n",
          (long long)count);
    out_s(pg, "<tr><th>Updated by</th><td>");
    out_hd(pg, portal_jstr(a, "updated_by"));
    out_s(pg, "</td></tr>\n<tr><th>Comment</th><td>");
    out_hd(pg, portal_jstr(a, "comment"));
    out_s(pg, "</td></tr>\n</tbody>\n</table>\n");

    if (state && strcmp(state, "closed") != 0 && may_change(pg, team)) {
        out_s(pg, "<section id=\"actions\">\n<h2>Respond</h2>\n");
        if (!strcmp(state, "open"))
            move_form(pg, id, "ack", "Acknowledge", false);
        move_form(pg, id, "close", "Close", true);
        out_s(pg, "</section>\n");
    }

    json_t *events = json_object_get(a, "events");
    out_f(pg, "<section id=\"events\">\n<h2>Matching events (%zu kept)</h2>\n",
          json_array_size(events));
    size_t i;
    json_t *ev;
    json_array_foreach (events, i, ev) {
        char *text = json_dumps(ev, JSON_INDENT(2) | JSON_SORT_KEYS);
        out_s(pg, "<pre class=\"log event\">");
        out_h(pg, text ? text : "");
        out_s(pg, "</pre>\n");
        free(text);
    }
    out_s(pg, "</section>\n<section id=\"trail\">\n<h2>Audit trail</h2>\n");
    char object[32];
    snprintf(object, sizeof(object), "%lld", (long long)id);
    if (portal_audit_table(pg, "security_alert", object, "audit")) {
        json_decref(a);
        return pg->err.code ? pg->err.code : CORE_E_IO;
    }
    out_s(pg, "</section>\n");
    json_decref(a);
    portal_page_end(pg);
    return pg->rc;
}

/* POST /security/alerts/ID/ack|close */
static int alert_post(struct page *pg, int64_t id, const char *verb)
{
    char comment[1024];
    if (portal_form_value(pg->form, "comment", comment, sizeof(comment)))
        return alert_page(pg, id, 400, "The comment is too long (at most 1000 characters) or "
                                       "badly encoded.");
    struct core_err err = {0};
    json_t *a = security_alert_get(pg->p->st, id, &err);
    if (!a || !sees(pg, portal_jstr(a, "team"))) {
        json_decref(a);
        return portal_not_found(pg);
    }
    bool ok = may_change(pg, portal_jstr(a, "team"));
    json_decref(a);
    if (!ok)
        return alert_page(pg, id, 403, "Only an administrator or a member of the alert's team "
                                       "may respond to it.");
    const char *to = !strcmp(verb, "ack") ? "acknowledged" : "closed";
    if (security_alert_transition(pg->p->st, &pg->who.actor, id, to, comment[0] ? comment : NULL,
                                  &err))
        return alert_page(pg, id, err.code == CORE_E_INVAL ? 400 : 500, err.msg);
    char to_url[64];
    snprintf(to_url, sizeof(to_url), "/security/alerts/%lld", (long long)id);
    return portal_redirect(pg, to_url);
}

/* GET /security/fim */
static int fim_page(struct page *pg)
{
    struct core_err err = {0};
    json_t *base = security_fim_baseline(pg->p->st, NULL, &err);
    json_t *list = security_alert_list(pg->p->st, NULL, NULL, NULL, LIST_ROWS * 5, &pg->err);
    json_t *all = list ? visible(pg, list) : NULL, *fim = json_array();
    json_decref(list);
    size_t i;
    json_t *a;
    json_array_foreach (all, i, a) {
        const char *src = portal_jstr(a, "source");
        if (fim && src && !strcmp(src, "fim") && json_array_size(fim) < LIST_ROWS)
            json_array_append(fim, a);
    }
    json_decref(all);
    pg->nav = "security";
    portal_page_begin(pg, 200, "File integrity");
    out_s(pg, "<h1>Security</h1>\n");
    tabs(pg, "fim");
    out_s(pg, "<h2>Baseline</h2>\n");
    if (!base) {
        out_s(pg, "<p class=\"muted\">No baseline could be read");
        if (err.msg[0]) {
            out_s(pg, ": ");
            out_h(pg, err.msg);
        }
        out_s(pg, ".</p>\n");
    } else {
        /* files per scope, and when the newest entry changed */
        const char *scopes[16];
        size_t counts[16] = {0}, ns = 0;
        const char *newest[16] = {NULL};
        json_array_foreach (json_object_get(base, "items"), i, a) {
            const char *sc = portal_jstr(a, "scope");
            const char *up = portal_jstr(a, "updated_at");
            if (!sc)
                continue;
            size_t k = 0;
            while (k < ns && strcmp(scopes[k], sc) != 0)
                k++;
            if (k == ns) {
                if (ns == 16)
                    continue;
                scopes[ns++] = sc;
            }
            counts[k]++;
            if (up && (!newest[k] || strcmp(up, newest[k]) > 0))
                newest[k] = up;
        }
        out_s(pg, "<table id=\"fim-baseline\">\n<thead><tr><th>Scope</th><th>Entries</th>"
                  "<th>Last updated</th></tr></thead>\n<tbody>\n");
        for (size_t k = 0; k < ns; k++) {
            out_s(pg, "<tr><td>");
            out_h(pg, scopes[k]);
            out_f(pg, "</td><td>%zu</td><td>", counts[k]);
            portal_out_time(pg, newest[k]);
            out_s(pg, "</td></tr>\n");
        }
        if (!ns)
            out_s(pg, "<tr><td colspan=\"3\" class=\"empty\">Nothing is watched yet.</td></tr>\n");
        out_s(pg, "</tbody>\n</table>\n");
    }
    out_s(pg, "<h2>File integrity alerts</h2>\n");
    alert_rows(pg, fim, "No file changed outside a deployment.");
    json_decref(fim);
    json_decref(base);
    portal_page_end(pg);
    return pg->rc;
}

/* GET /security/rules */
static int rules_page(struct page *pg)
{
    const struct security_sigma_set *s = pg->p->rules;
    pg->nav = "security";
    portal_page_begin(pg, 200, "Detection rules");
    out_s(pg, "<h1>Security</h1>\n");
    tabs(pg, "rules");
    out_f(pg, "<h2>Loaded (%zu)</h2>\n", s ? security_sigma_count(s) : (size_t)0);
    out_s(pg, "<table id=\"rules\">\n<thead><tr><th>Level</th><th>Title</th><th>ID</th>"
              "<th>Status</th><th>Source</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; s && i < security_sigma_count(s); i++) {
        const struct security_sigma_rule *r = security_sigma_rule(s, i);
        out_s(pg, "<tr><td>");
        sev_badge(pg, r->level);
        out_s(pg, "</td><td>");
        out_h(pg, r->title);
        out_s(pg, "</td><td><code>");
        out_h(pg, r->id);
        out_s(pg, "</code></td><td>");
        out_hd(pg, r->status);
        out_s(pg, "</td><td>");
        out_h(pg, r->source);
        out_s(pg, "</td></tr>\n");
    }
    if (!s || !security_sigma_count(s))
        out_s(pg, "<tr><td colspan=\"5\" class=\"empty\">No rule is loaded.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n");
    out_f(pg, "<h2>Not loaded (%zu)</h2>\n", s ? security_sigma_rejected_count(s) : (size_t)0);
    out_s(pg, "<table id=\"rejected\">\n<thead><tr><th>Source</th><th>Title</th><th>Why</th>"
              "</tr></thead>\n<tbody>\n");
    for (size_t i = 0; s && i < security_sigma_rejected_count(s); i++) {
        const struct security_sigma_reject *r = security_sigma_rejected(s, i);
        out_s(pg, "<tr><td>");
        out_h(pg, r->source);
        out_s(pg, "</td><td>");
        out_hd(pg, r->title);
        out_s(pg, "</td><td>");
        out_h(pg, r->reason);
        out_s(pg, "</td></tr>\n");
    }
    if (!s || !security_sigma_rejected_count(s))
        out_s(pg, "<tr><td colspan=\"3\" class=\"empty\">Every rule loaded.</td></tr>\n");
    out_s(pg, "</tbody>\n</table>\n");
    portal_page_end(pg);
    return pg->rc;
}

int portal_security_route(struct page *pg)
{
    const char *path = pg->req->path;
    if (!strcmp(path, "/security"))
        return pg->is_get ? alerts_page(pg) : portal_method_not_allowed(pg);
    if (!strcmp(path, "/security/fim"))
        return pg->is_get ? fim_page(pg) : portal_method_not_allowed(pg);
    if (!strcmp(path, "/security/rules"))
        return pg->is_get ? rules_page(pg) : portal_method_not_allowed(pg);
    if (!strncmp(path, "/security/alerts/", 17)) {
        const char *rest = path + 17;
        const char *sl = strchr(rest, '/');
        size_t len = sl ? (size_t)(sl - rest) : strlen(rest);
        int64_t id;
        if (!portal_parse_id(rest, len, &id))
            return portal_not_found(pg);
        if (!sl)
            return pg->is_get ? alert_page(pg, id, 200, NULL) : portal_method_not_allowed(pg);
        if (!strcmp(sl, "/ack") || !strcmp(sl, "/close"))
            return pg->is_post ? alert_post(pg, id, sl + 1) : portal_method_not_allowed(pg);
    }
    return portal_not_found(pg);
}
