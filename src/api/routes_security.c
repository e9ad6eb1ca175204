/* /api/v1/security routes (docs/security.md, docs/api.md): the loaded detection rules, alerts
 * (list, show, acknowledge, close) and file integrity (baseline, scan, accept).
 *
 * Authorization: every route needs a token. Admins see every alert; others see the alerts of
 * their teams and the alerts that belong to no team. Acknowledge and close: an admin or a member
 * of the alert's team (an alert with no team: admins only). FIM scan and accept: admins. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "security/security.h"

#define LIST_MAX 1000

static bool sees(struct api_req *r, const char *team)
{
    return r->who.is_admin || !team || !*team || catalog_actor_in_team(&r->who.actor, team);
}

static bool alerts_on(struct api_req *r)
{
    if (api_ctx(r)->alerts)
        return true;
    api_reply_error(r, CORE_E_NOMEM, "security alerts are not enabled on this server", NULL);
    return false;
}

/* GET /api/v1/security/rules */
static void h_rules(struct api_req *r)
{
    const struct security_sigma_set *set = api_ctx(r)->rules;
    json_t *loaded = json_array(), *rejected = json_array();
    for (size_t i = 0; set && loaded && i < security_sigma_count(set); i++) {
        const struct security_sigma_rule *x = security_sigma_rule(set, i);
        json_array_append_new(loaded, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", x->id, "title",
                                                x->title, "status", x->status, "level",
                                                x->level, "source", x->source));
    }
    for (size_t i = 0; set && rejected && i < security_sigma_rejected_count(set); i++) {
        const struct security_sigma_reject *x = security_sigma_rejected(set, i);
        json_array_append_new(rejected,
                              json_pack("{s:s,s:s,s:s,s:b}", "source", x->source, "title",
                                        x->title, "reason", x->reason, "unsupported",
                                        x->unsupported));
    }
    json_t *out = loaded && rejected ? json_pack("{s:O,s:O}", "items", loaded, "rejected",
                                                 rejected)
                                     : NULL;
    json_decref(loaded);
    json_decref(rejected);
    struct core_err err = {0};
    if (!out)
        core_err_set(&err, CORE_E_NOMEM, "out of memory");
    api_reply_result(r, out, &err);
}

/* GET /api/v1/security/alerts?state=&severity=&service=&limit= */
static void h_alerts(struct api_req *r)
{
    char sbuf[32], vbuf[32], svc[256];
    long limit = 0;
    if (!alerts_on(r) || !api_query_long(r, "limit", 1, LIST_MAX, 100, &limit))
        return;
    const char *state = api_query(r, "state", sbuf, sizeof(sbuf));
    const char *sev = api_query(r, "severity", vbuf, sizeof(vbuf));
    const char *service = api_query(r, "service", svc, sizeof(svc));
    struct core_err err = {0};
    /* visibility is filtered after the query: ask for the most so a member still gets limit */
    json_t *all = security_alert_list(api_ctx(r)->st, state, sev, service,
                                      r->who.is_admin ? (int)limit : LIST_MAX, &err);
    if (!all) {
        api_reply_err(r, &err);
        return;
    }
    json_t *items = json_object_get(all, "items"), *mine = json_array();
    size_t i;
    json_t *a;
    json_array_foreach (items, i, a) {
        if (json_array_size(mine) >= (size_t)limit)
            break;
        if (sees(r, json_string_value(json_object_get(a, "team"))))
            json_array_append(mine, a);
    }
    json_decref(all);
    json_t *out = mine ? json_pack("{s:o}", "items", mine) : NULL;
    if (!out)
        core_err_set(&err, CORE_E_NOMEM, "out of memory");
    api_reply_result(r, out, &err);
}

static bool parse_id(struct api_req *r, int64_t *id)
{
    char *end = NULL;
    const char *s = r->params[0];
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || v <= 0) {
        api_reply_error(r, CORE_E_INVAL, "an alert id is a positive number", NULL);
        return false;
    }
    *id = v;
    return true;
}

/* The alert, or NULL after replying (404 also when the caller may not see it). */
static json_t *visible_alert(struct api_req *r, int64_t id)
{
    struct core_err err = {0};
    json_t *a = security_alert_get(api_ctx(r)->st, id, &err);
    if (!a) {
        api_reply_err(r, &err);
        return NULL;
    }
    if (!sees(r, json_string_value(json_object_get(a, "team")))) {
        json_decref(a);
        core_err_set(&err, CORE_E_NOTFOUND, "no alert %lld", (long long)id);
        api_reply_err(r, &err);
        return NULL;
    }
    return a;
}

/* GET /api/v1/security/alerts/{id} */
static void h_alert(struct api_req *r)
{
    int64_t id;
    if (!alerts_on(r) || !parse_id(r, &id))
        return;
    json_t *a = visible_alert(r, id);
    if (a)
        api_reply_json(r, 200, a);
}

static void transition(struct api_req *r, const char *to)
{
    int64_t id;
    if (!alerts_on(r) || !parse_id(r, &id))
        return;
    if (!core_utf8_valid(r->body.data, r->body.len)) {
        api_reply_error(r, CORE_E_INVAL, "request body is not valid UTF-8", NULL);
        return;
    }
    json_error_t jerr;
    json_t *b = r->body.len ? json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr)
                            : json_object();
    if (!json_is_object(b)) {
        json_decref(b);
        api_reply_error(r, CORE_E_INVAL, "the body must be a JSON object {\"comment\": \"...\"}",
                        NULL);
        return;
    }
    json_t *a = visible_alert(r, id);
    if (!a) {
        json_decref(b);
        return;
    }
    const char *team = json_string_value(json_object_get(a, "team"));
    struct core_err err = {0};
    if (!r->who.is_admin && (!team || !catalog_actor_in_team(&r->who.actor, team))) {
        core_err_set(&err, CORE_E_PERM,
                     "only an admin or a member of team '%s' may change alert %lld",
                     team ? team : "(none)", (long long)id);
        api_reply_err(r, &err);
    } else if (security_alert_transition(api_ctx(r)->st, &r->who.actor, id, to,
                                         json_string_value(json_object_get(b, "comment")),
                                         &err)) {
        api_reply_err(r, &err);
    } else {
        json_t *out = security_alert_get(api_ctx(r)->st, id, &err);
        api_reply_result(r, out, &err);
    }
    json_decref(a);
    json_decref(b);
}

/* POST /api/v1/security/alerts/{id}/ack {"comment": "..."} */
static void h_ack(struct api_req *r)
{
    transition(r, "acknowledged");
}

/* POST /api/v1/security/alerts/{id}/close {"comment": "..."} */
static void h_close(struct api_req *r)
{
    transition(r, "closed");
}

static struct security_fim *fim_of(struct api_req *r)
{
    struct security_fim *f = api_ctx(r)->fim;
    if (!f)
        api_reply_error(r, CORE_E_NOMEM,
                        "file integrity monitoring is not enabled on this server "
                        "(docs/security.md)",
                        NULL);
    return f;
}

static bool admin_only(struct api_req *r)
{
    if (r->who.is_admin)
        return true;
    api_reply_error(r, CORE_E_PERM, "only an admin may do this", NULL);
    return false;
}

/* GET /api/v1/security/fim?scope= */
static void h_fim(struct api_req *r)
{
    if (!fim_of(r))
        return;
    char sbuf[64];
    struct core_err err = {0};
    json_t *out = security_fim_baseline(api_ctx(r)->st, api_query(r, "scope", sbuf, sizeof(sbuf)),
                                        &err);
    api_reply_result(r, out, &err);
}

/* POST /api/v1/security/fim/scan */
static void h_fim_scan(struct api_req *r)
{
    struct security_fim *f = fim_of(r);
    if (!f || !admin_only(r))
        return;
    struct core_err err = {0};
    json_t *changes = NULL;
    if (security_fim_scan(f, &changes, &err)) {
        json_decref(changes);
        api_reply_err(r, &err);
        return;
    }
    api_reply_json(r, 200, changes ? changes : json_pack("{s:[]}", "items"));
}

/* POST /api/v1/security/fim/accept {"path": "..."} (no path: everything watched) */
static void h_fim_accept(struct api_req *r)
{
    struct security_fim *f = fim_of(r);
    if (!f || !admin_only(r))
        return;
    json_error_t jerr;
    json_t *b = r->body.len && core_utf8_valid(r->body.data, r->body.len)
                    ? json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr)
                : r->body.len ? NULL
                              : json_object();
    if (!json_is_object(b)) {
        json_decref(b);
        api_reply_error(r, CORE_E_INVAL, "the body must be a JSON object {\"path\": \"...\"}",
                        NULL);
        return;
    }
    const char *path = json_string_value(json_object_get(b, "path"));
    struct core_err err = {0};
    if (security_fim_accept(f, &r->who.actor, path && *path ? path : NULL, &err))
        api_reply_err(r, &err);
    else
        api_reply_json(r, 200, json_pack("{s:s?}", "accepted", path && *path ? path : "*"));
    json_decref(b);
}

const struct api_route api_security_routes[] = {
    {"GET", "/api/v1/security/rules", h_rules, true, false},
    {"GET", "/api/v1/security/alerts", h_alerts, true, false},
    {"GET", "/api/v1/security/alerts/{id}", h_alert, true, false},
    {"POST", "/api/v1/security/alerts/{id}/ack", h_ack, true, false},
    {"POST", "/api/v1/security/alerts/{id}/close", h_close, true, false},
    {"GET", "/api/v1/security/fim", h_fim, true, false},
    {"POST", "/api/v1/security/fim/scan", h_fim_scan, true, false},
    {"POST", "/api/v1/security/fim/accept", h_fim_accept, true, false},
};
const size_t api_security_nroutes = sizeof(api_security_routes) / sizeof(api_security_routes[0]);
