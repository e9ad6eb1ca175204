/* /api/v1 routes of policy (docs/policy.md): the stored policies, checks against the active
 * set, exceptions and their approval, scans and compliance reports. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "policy/policy.h"

static struct policy_engine *engine(struct api_req *r)
{
    struct policy_engine *pe = api_ctx(r)->policy;
    if (!pe)
        api_reply_error(r, CORE_E_NOMEM, "policies are not enabled on this server", NULL);
    return pe;
}

static bool body_utf8(struct api_req *r)
{
    if (core_utf8_valid(r->body.data, r->body.len))
        return true;
    api_reply_error(r, CORE_E_INVAL, "request body is not valid UTF-8", NULL);
    return false;
}

static json_t *body_object(struct api_req *r)
{
    if (!body_utf8(r))
        return NULL;
    json_error_t jerr;
    json_t *b = r->body.len ? json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr)
                            : json_object();
    if (!json_is_object(b)) {
        json_decref(b);
        api_reply_error(r, CORE_E_INVAL, "the body must be a JSON object", NULL);
        return NULL;
    }
    return b;
}

static const char *str_field(json_t *b, const char *k)
{
    const char *s = json_string_value(json_object_get(b, k));
    return s && *s ? s : NULL;
}

/* "file:line:col: message" as {file, line, column, message}; other text as {message}. */
static json_t *problem_json(const char *p, size_t n)
{
    char line[700];
    snprintf(line, sizeof(line), "%.*s", (int)n, p);
    char *sep = strstr(line, ": ");
    if (sep) {
        *sep = 0;
        char *c2 = strrchr(line, ':');
        char *c1 = c2 ? (*c2 = 0, strrchr(line, ':')) : NULL;
        char *e1 = NULL, *e2 = NULL;
        long ln = c1 ? strtol(c1 + 1, &e1, 10) : 0, col = c1 ? strtol(c2 + 1, &e2, 10) : 0;
        if (c1 && e1 && !*e1 && e2 && !*e2 && ln > 0 && c1 > line) {
            *c1 = 0;
            return json_pack("{s:s,s:i,s:i,s:s}", "file", line, "line", (int)ln, "column",
                             (int)col, "message", sep + 2);
        }
    }
    return json_pack("{s:s%}", "message", p, n);
}

/* Replies with err. A compile error is "N policy problems:" and one problem per line: each
 * line becomes a detail, and the message names the count and the first problem. */
static void reply_problems(struct api_req *r, const struct core_err *err)
{
    const char *nl = strchr(err->msg, '\n');
    if (err->code != CORE_E_INVAL || !nl) {
        api_reply_err(r, err);
        return;
    }
    json_t *details = json_array();
    char first[600] = "";
    for (const char *p = nl + 1; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) {
            json_array_append_new(details, problem_json(p, n));
            if (!first[0])
                snprintf(first, sizeof(first), "%.*s", (int)n, p);
        }
        p += n + (e ? 1 : 0);
    }
    char msg[800];
    snprintf(msg, sizeof(msg), "%.*s nothing was changed; %s", (int)(nl - err->msg), err->msg,
             first);
    api_reply_error(r, CORE_E_INVAL, msg, details);
}

/* GET /api/v1/policies */
static void h_list(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe)
        return;
    struct core_err err = {0};
    json_t *out = policy_list(pe, &err);
    api_reply_result(r, out, &err);
}

/* GET /api/v1/policies/{name} */
static void h_show(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe)
        return;
    struct core_err err = {0};
    json_t *out = policy_show(pe, r->params[0], &err);
    api_reply_result(r, out, &err);
}

/* POST /api/v1/policies: a YAML body (one or more Policy documents; ?source=NAME names it in
 * messages), or JSON {"documents":[{"name","text"}]} to apply several files at once. */
static void h_apply(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe || !body_utf8(r))
        return;
    struct core_err err = {0};
    json_t *json = NULL, *result = NULL;
    struct policy_doc *docs = NULL;
    size_t ndocs = 0;
    char sbuf[160];
    const char *source = api_query(r, "source", sbuf, sizeof(sbuf));
    bool is_json = r->content_type && strncmp(r->content_type, "application/json", 16) == 0;
    if (is_json) {
        json_error_t jerr;
        json = json_loadb(r->body.data, r->body.len, 0, &jerr);
        json_t *list = json_object_get(json, "documents");
        if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 256) {
            api_reply_error(r, CORE_E_INVAL,
                            "a JSON body must be {\"documents\":[{\"name\",\"text\"}, ...]} with "
                            "1 to 256 documents",
                            NULL);
            goto out;
        }
        docs = core_calloc(json_array_size(list), sizeof(*docs));
        if (!docs) {
            api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
            goto out;
        }
        size_t i;
        json_t *d;
        json_array_foreach (list, i, d) {
            const char *name = json_string_value(json_object_get(d, "name"));
            json_t *text = json_object_get(d, "text");
            if (!json_is_string(text)) {
                api_reply_error(r, CORE_E_INVAL, "every document needs a \"text\" string", NULL);
                goto out;
            }
            docs[ndocs++] = (struct policy_doc){name && *name ? name : "request",
                                                json_string_value(text),
                                                json_string_length(text)};
        }
    } else {
        if (!(docs = core_calloc(1, sizeof(*docs)))) {
            api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
            goto out;
        }
        docs[0] = (struct policy_doc){source && *source ? source : "request", r->body.data,
                                      r->body.len};
        ndocs = 1;
    }
    if (policy_apply(pe, &r->who.actor, docs, ndocs, &result, &err)) {
        json_t *problems = json_object_get(result, "problems");
        if (err.code == CORE_E_INVAL && json_array_size(problems)) {
            /* "N policy problems:\n..." -> "N policy problems: nothing was changed; FIRST" */
            const char *nl = strchr(err.msg, '\n');
            json_t *g = json_array_get(problems, 0);
            char msg[900];
            snprintf(msg, sizeof(msg), "%.*s nothing was changed; %s:%lld:%lld: %s",
                     nl ? (int)(nl - err.msg) : (int)strlen(err.msg), err.msg,
                     json_string_value(json_object_get(g, "file")) ?: "<input>",
                     (long long)json_integer_value(json_object_get(g, "line")),
                     (long long)json_integer_value(json_object_get(g, "column")),
                     json_string_value(json_object_get(g, "message")) ?: "");
            api_reply_error(r, CORE_E_INVAL, msg, json_incref(problems));
        } else {
            reply_problems(r, &err);
        }
        goto out;
    }
    bool created = false;
    size_t i;
    json_t *a;
    json_array_foreach (json_object_get(result, "applied"), i, a) {
        const char *ch = json_string_value(json_object_get(a, "change"));
        created = created || (ch && strcmp(ch, "unchanged") != 0);
    }
    api_reply_json(r, created ? 201 : 200, result);
    result = NULL;
out:
    json_decref(result);
    json_decref(json);
    core_free(docs);
}

/* DELETE /api/v1/policies/{name} */
static void h_delete(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe)
        return;
    struct core_err err = {0};
    if (policy_delete(pe, &r->who.actor, r->params[0], &err))
        api_reply_err(r, &err);
    else
        api_reply_json(r, 200, json_pack("{s:s,s:s}", "change", "deleted", "name", r->params[0]));
}

/* ---- checks -------------------------------------------------------------------------------- */

struct check_ctx {
    struct policy_engine *pe;
    const char *env;
    json_t *subjects;
    bool blocked;
    struct core_err *err;
};

static int check_subject(void *arg, struct policy_input *in)
{
    struct check_ctx *c = arg;
    in->gate = POLICY_GATE_CHECK;
    if (c->env)
        in->env = c->env;
    struct policy_results res;
    int rc = policy_gate_check(c->pe, in, &res, c->err);
    if (rc)
        return rc;
    json_t *o = policy_results_json(&res);
    struct core_buf explain;
    core_buf_init(&explain, 256 * 1024);
    policy_results_explain(&res, in->name, &explain);
    if (!o) {
        rc = core_err_set(c->err, CORE_E_NOMEM, "out of memory");
    } else {
        json_object_set_new(o, "name", json_string(in->name ? in->name : ""));
        json_object_set_new(o, "subject", json_string(policy_subject_name(in->subject)));
        json_object_set_new(o, "team", in->team ? json_string(in->team) : json_null());
        json_object_set_new(o, "env", in->env ? json_string(in->env) : json_null());
        json_object_set_new(o, "explain", json_string(explain.data));
        if (json_array_append_new(c->subjects, o))
            rc = core_err_set(c->err, CORE_E_NOMEM, "out of memory");
    }
    c->blocked = c->blocked || res.blocked;
    core_buf_release(&explain);
    policy_results_free(&res);
    return rc;
}

/* POST /api/v1/policy/check?kind=auto|manifest|terraform|resources&env=ENV&gate=check&name=FILE
 * body: a manifest, a Terraform plan (JSON) or a resource export. Every subject is checked
 * against the active set (with its approved exceptions) and recorded as a decision. */
static void h_check(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe || !body_utf8(r))
        return;
    char kbuf[32], ebuf[128], gbuf[32], nbuf[256];
    const char *kind = api_query(r, "kind", kbuf, sizeof(kbuf));
    const char *env = api_query(r, "env", ebuf, sizeof(ebuf));
    const char *gate = api_query(r, "gate", gbuf, sizeof(gbuf));
    const char *name = api_query(r, "name", nbuf, sizeof(nbuf));
    enum policy_inventory inv = POLICY_INV_AUTO;
    if (!kind || !*kind || !strcmp(kind, "auto"))
        inv = POLICY_INV_AUTO;
    else if (!strcmp(kind, "manifest"))
        inv = POLICY_INV_MANIFEST;
    else if (!strcmp(kind, "terraform"))
        inv = POLICY_INV_TERRAFORM;
    else if (!strcmp(kind, "resources"))
        inv = POLICY_INV_RESOURCES;
    else {
        api_reply_error(r, CORE_E_INVAL,
                        "unknown kind: use auto, manifest, terraform or resources", NULL);
        return;
    }
    if (gate && *gate && strcmp(gate, "check") != 0) {
        api_reply_error(r, CORE_E_INVAL,
                        "only gate=check may be asked here; the other gates ask by themselves",
                        NULL);
        return;
    }
    if (env && *env && !core_is_dns_label(env)) {
        api_reply_error(r, CORE_E_INVAL, "invalid environment name", NULL);
        return;
    }
    if (r->body.len == 0) {
        api_reply_error(r, CORE_E_INVAL,
                        "the body must be a manifest, a Terraform plan or a resource export",
                        NULL);
        return;
    }
    struct core_err err = {0};
    struct check_ctx c = {.pe = pe, .env = env && *env ? env : NULL, .subjects = json_array(),
                          .err = &err};
    int rc = policy_inventory_each(name && *name ? name : "request", r->body.data, r->body.len,
                                   inv, check_subject, &c, &err);
    if (rc) {
        json_decref(c.subjects);
        reply_problems(r, &err);
        return;
    }
    api_reply_json(r, 200,
                   json_pack("{s:b,s:I,s:o}", "blocked", c.blocked, "total",
                             (json_int_t)json_array_size(c.subjects), "subjects", c.subjects));
}

/* ---- exceptions ---------------------------------------------------------------------------- */

/* "30d", "12h", "2s" from now, or an RFC 3339 time ("2026-01-31T00:00:00Z"). */
static int parse_expiry(const char *s, int64_t now, int64_t *out)
{
    int64_t ms = 0;
    if (core_parse_duration_ms(s, &ms) == 0 && ms > 0) {
        *out = now + ms;
        return 0;
    }
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        rest = strptime(s, "%Y-%m-%d", &tm);
    if (!rest)
        return CORE_E_INVAL;
    int64_t frac = 0;
    if (*rest == '.') {
        int digits = 0;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*rest - '0');
        for (; digits > 0 && digits < 3; digits++)
            frac *= 10;
    }
    int64_t off = 0;
    if (*rest == 'Z' || *rest == 'z') {
        rest++;
    } else if (*rest == '+' || *rest == '-') {
        int hh, mm;
        if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
            return CORE_E_INVAL;
        off = (int64_t)(hh * 60 + mm) * 60000 * (*rest == '-' ? -1 : 1);
        rest += 6;
    } else if (*rest) {
        return CORE_E_INVAL;
    }
    if (*rest)
        return CORE_E_INVAL;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return CORE_E_INVAL;
    *out = (int64_t)t * 1000 + frac - off;
    return 0;
}

/* GET /api/v1/policy/exceptions?state=&subject= */
static void h_exc_list(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe)
        return;
    char sbuf[32], subj[512];
    const char *state = api_query(r, "state", sbuf, sizeof(sbuf));
    const char *subject = api_query(r, "subject", subj, sizeof(subj));
    struct core_err err = {0};
    json_t *out = policy_exception_list(pe, state, subject, &err);
    api_reply_result(r, out, &err);
}

/* POST /api/v1/policy/exceptions {subject, rule, justification, expires} */
static void h_exc_request(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    json_t *b = pe ? body_object(r) : NULL;
    if (!b)
        return;
    struct core_err err = {0};
    const char *expires = str_field(b, "expires");
    int64_t now = core_now_ms(), exp = 0, id = 0;
    if (!expires || parse_expiry(expires, now, &exp)) {
        api_reply_error(r, CORE_E_INVAL,
                        "expires is required: a duration from now (30d, 12h) or an RFC 3339 time "
                        "(at most 1 year ahead)",
                        NULL);
        goto out;
    }
    if (policy_exception_request(pe, &r->who.actor, str_field(b, "subject"),
                                 str_field(b, "rule"), str_field(b, "justification"), exp, &id,
                                 &err)) {
        api_reply_err(r, &err);
        goto out;
    }
    json_t *list = policy_exception_list(pe, NULL, str_field(b, "subject"), &err);
    json_t *item = NULL;
    size_t i;
    json_t *it;
    json_array_foreach (json_object_get(list, "items"), i, it)
        if (json_integer_value(json_object_get(it, "id")) == id)
            item = json_incref(it);
    json_decref(list);
    api_reply_json(r, 201, item ? item : json_pack("{s:I}", "id", (json_int_t)id));
out:
    json_decref(b);
}

/* POST /api/v1/policy/exceptions/{id}/{approve|reject|revoke} {comment} */
static void h_exc_decide(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe)
        return;
    char *end = NULL;
    errno = 0;
    long long id = strtoll(r->params[0], &end, 10);
    if (*end || id <= 0 || errno) {
        api_reply_error(r, CORE_E_INVAL, "exception id must be a positive integer", NULL);
        return;
    }
    const char *verb = r->params[1];
    if (strcmp(verb, "approve") && strcmp(verb, "reject") && strcmp(verb, "revoke")) {
        api_reply_error(r, CORE_E_NOTFOUND, "no such API route (use approve, reject or revoke)",
                        NULL);
        return;
    }
    json_t *b = body_object(r);
    if (!b)
        return;
    struct core_err err = {0};
    if (policy_exception_decide(pe, &r->who.actor, id, verb, str_field(b, "comment"), &err)) {
        api_reply_err(r, &err);
    } else {
        const char *state = !strcmp(verb, "approve")  ? "approved"
                            : !strcmp(verb, "reject") ? "rejected"
                                                      : "revoked";
        api_reply_json(r, 200, json_pack("{s:I,s:s}", "id", (json_int_t)id, "state", state));
    }
    json_decref(b);
}

/* ---- scans and reports --------------------------------------------------------------------- */

/* POST /api/v1/policy/scans (admin): runs a scan now. */
static void h_scan(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe)
        return;
    if (!r->who.is_admin) {
        api_reply_error(r, CORE_E_PERM, "only an admin may start a scan", NULL);
        return;
    }
    struct core_err err = {0};
    int64_t id = 0;
    if (policy_scan(pe, &id, &err)) {
        api_reply_err(r, &err);
        return;
    }
    json_t *rep = policy_report(pe, "team", NULL, NULL, &err);
    if (!rep) {
        api_reply_err(r, &err);
        return;
    }
    api_reply_json(r, 201,
                   json_pack("{s:I,s:O}", "scan", (json_int_t)id, "totals",
                             json_object_get(rep, "totals")));
    json_decref(rep);
}

/* GET /api/v1/policy/report?group=team|service|rule&team=&service=&format=json|csv */
static void h_report(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe)
        return;
    char gbuf[32], tbuf[128], sbuf[128], fbuf[16];
    const char *group = api_query(r, "group", gbuf, sizeof(gbuf));
    const char *team = api_query(r, "team", tbuf, sizeof(tbuf));
    const char *service = api_query(r, "service", sbuf, sizeof(sbuf));
    const char *format = api_query(r, "format", fbuf, sizeof(fbuf));
    struct core_err err = {0};
    if (format && *format && strcmp(format, "json") && strcmp(format, "csv")) {
        api_reply_error(r, CORE_E_INVAL, "unknown format: use json or csv", NULL);
        return;
    }
    if (format && !strcmp(format, "csv")) {
        struct core_buf csv;
        core_buf_init(&csv, 64u << 20);
        if (policy_report_csv(pe, team, service, &csv, &err)) {
            api_reply_err(r, &err);
        } else {
            core_buf_release(&r->out);
            r->out = csv;
            r->status = 200;
            r->out_type = "text/csv; charset=utf-8";
            return;
        }
        core_buf_release(&csv);
        return;
    }
    json_t *out = policy_report(pe, group, team, service, &err);
    api_reply_result(r, out, &err);
}

/* GET /api/v1/policy/decisions?subject=&limit=&before= */
static void h_decisions(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe)
        return;
    char sbuf[512], lbuf[16], bbuf[24];
    const char *subject = api_query(r, "subject", sbuf, sizeof(sbuf));
    const char *limit = api_query(r, "limit", lbuf, sizeof(lbuf));
    const char *before = api_query(r, "before", bbuf, sizeof(bbuf));
    char *end = NULL;
    long n = limit && *limit ? strtol(limit, &end, 10) : 50;
    long long b = before && *before ? strtoll(before, &end, 10) : 0;
    if ((end && *end) || n < 1 || n > 500 || b < 0) {
        api_reply_error(r, CORE_E_INVAL,
                        "limit must be an integer from 1 to 500 and before a decision id", NULL);
        return;
    }
    struct core_err err = {0};
    json_t *out = policy_decision_list(pe, subject, (int)n, b, &err);
    api_reply_result(r, out, &err);
}

/* GET /api/v1/policy/decisions/{id} */
static void h_decision(struct api_req *r)
{
    struct policy_engine *pe = engine(r);
    if (!pe)
        return;
    char *end = NULL;
    errno = 0;
    long long id = strtoll(r->params[0], &end, 10);
    if (*end || id <= 0 || errno) {
        api_reply_error(r, CORE_E_INVAL, "decision id must be a positive integer", NULL);
        return;
    }
    struct core_err err = {0};
    json_t *out = policy_decision_get(pe, id, &err);
    api_reply_result(r, out, &err);
}

const struct api_route api_policy_routes[] = {
    {"GET", "/api/v1/policies", h_list, true, false},
    {"POST", "/api/v1/policies", h_apply, true, false},
    {"GET", "/api/v1/policies/{name}", h_show, true, false},
    {"DELETE", "/api/v1/policies/{name}", h_delete, true, false},
    {"POST", "/api/v1/policy/check", h_check, true, false},
    {"GET", "/api/v1/policy/exceptions", h_exc_list, true, false},
    {"POST", "/api/v1/policy/exceptions", h_exc_request, true, false},
    {"POST", "/api/v1/policy/exceptions/{id}/{decision}", h_exc_decide, true, false},
    {"POST", "/api/v1/policy/scans", h_scan, true, false},
    {"GET", "/api/v1/policy/report", h_report, true, false},
    {"GET", "/api/v1/policy/decisions", h_decisions, true, false},
    {"GET", "/api/v1/policy/decisions/{id}", h_decision, true, false},
};
const size_t api_policy_nroutes = sizeof(api_policy_routes) / sizeof(api_policy_routes[0]);
