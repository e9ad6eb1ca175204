/* /api/v1 handlers and the JSON encoding of every resource. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "store/store.h"

/* ---- replies ---- */

void api_reply_json(struct api_req *r, int status, json_t *body)
{
    core_buf_clear(&r->out);
    r->out_type = "application/json";
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(body);
    if (!text) {
        r->status = 503;
        core_buf_adds(&r->out, "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of "
                               "memory\",\"details\":[]}}");
        return;
    }
    r->status = status;
    core_buf_adds(&r->out, text);
    core_buf_addc(&r->out, '\n');
    free(text);
}

void api_reply_error(struct api_req *r, int code, const char *msg, json_t *details)
{
    json_t *body = json_pack("{s:{s:s,s:s,s:o}}", "error", "code", api_code_name(code),
                             "message", msg, "details", details ? details : json_array());
    api_reply_json(r, api_status_for(code), body);
}

void api_reply_err(struct api_req *r, const struct core_err *err)
{
    int code = err->code ? err->code : CORE_E_INTERNAL;
    if (code == CORE_E_IO || code == CORE_E_INTERNAL)
        log_error("api", "request failed", LOG_STR("path", r->path), LOG_STR("error", err->msg),
                  LOG_STR("at", err->file ? err->file : ""), LOG_INT("line", err->line));
    api_reply_error(r, code, err->msg[0] ? err->msg : core_errc_name(code), NULL);
}

const char *api_query(struct api_req *r, const char *key, char *buf, size_t bufsz)
{
    return core_form_get(r->query, key, buf, bufsz) == 0 ? buf : NULL;
}


static const char *param(struct api_req *r, int i)
{
    return r->params[i];
}

/* Path names must be DNS labels; replies 400 and returns false otherwise. */
static bool check_label(struct api_req *r, const char *kind, const char *name)
{
    if (core_is_dns_label(name))
        return true;
    char msg[200];
    snprintf(msg, sizeof(msg),
             "invalid %s name: use 1-63 lowercase letters, digits or '-', not starting or "
             "ending with '-'",
             kind);
    api_reply_error(r, CORE_E_INVAL, msg, NULL);
    return false;
}

/* Parses a JSON object body; replies 400 and returns NULL on error. */
static json_t *json_body(struct api_req *r)
{
    if (!core_utf8_valid(r->body.data, r->body.len)) {
        api_reply_error(r, CORE_E_INVAL, "request body is not valid UTF-8", NULL);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j || !json_is_object(j)) {
        char msg[300];
        if (j)
            snprintf(msg, sizeof(msg), "request body must be a JSON object");
        else
            snprintf(msg, sizeof(msg), "malformed JSON at line %d column %d: %s", jerr.line,
                     jerr.column, jerr.text);
        json_decref(j);
        api_reply_error(r, CORE_E_INVAL, msg, NULL);
        return NULL;
    }
    return j;
}

/* Reads an optional string member; replies 400 and returns false if present but not a string
 * or too long. */
static bool body_str(struct api_req *r, json_t *j, const char *key, size_t max, const char **out)
{
    json_t *v = json_object_get(j, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        json_string_length(v) > max) {
        char msg[160];
        snprintf(msg, sizeof(msg), "field '%s' must be a string of at most %zu characters", key,
                 max);
        api_reply_error(r, CORE_E_INVAL, msg, NULL);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* Rejects members other than the allowed ones, so typos are not silently ignored. */
static bool body_only(struct api_req *r, json_t *j, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok = ok || strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char msg[200];
            const char *hint = core_did_you_mean(key, allowed);
            snprintf(msg, sizeof(msg), "unknown field '%.60s'%s%s%s", key,
                     hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
            api_reply_error(r, CORE_E_INVAL, msg, NULL);
            return false;
        }
    }
    return true;
}

/* Parses a JSON object body that may hold only `allowed` members and must hold a DNS-label
 * "name" (or `name_key`). Replies 400 and returns NULL on any problem; *name is borrowed from the
 * returned object, which the caller decrefs. */
static json_t *named_body(struct api_req *r, const char *const *allowed, const char *name_key,
                          const char *kind, const char **name)
{
    json_t *j = json_body(r);
    if (!j)
        return NULL;
    if (!body_only(r, j, allowed) || !body_str(r, j, name_key, 63, name))
        goto bad;
    if (!*name) {
        char msg[80];
        snprintf(msg, sizeof(msg), "field '%s' is required", name_key);
        api_reply_error(r, CORE_E_INVAL, msg, NULL);
        goto bad;
    }
    if (!check_label(r, kind, *name))
        goto bad;
    return j;
bad:
    json_decref(j);
    return NULL;
}

/* Replies to an idempotent create: the error, or {"change", "name"} with 201 or 200. */
static void reply_change(struct api_req *r, int rc, const struct core_err *err,
                         enum catalog_change ch, const char *name)
{
    if (rc)
        api_reply_err(r, err);
    else
        api_reply_json(r, ch == CATALOG_CREATED ? 201 : 200,
                       json_pack("{s:s,s:s}", "change", catalog_change_name(ch), "name", name));
}

static const struct catalog_actor *actor(struct api_req *r)
{
    return &r->who.actor;
}

/* ---- encoding ---- */

static json_t *service_json(const struct catalog_service *s, bool with_manifest)
{
    json_t *o = json_pack("{s:s,s:s,s:i,s:s?,s:s,s:I,s:s,s:s}", "name", s->name, "team", s->team,
                          "tier", s->tier, "description", s->description, "digest", s->digest,
                          "revision", (json_int_t)s->revision, "created_at", s->created_at,
                          "updated_at", s->updated_at);
    if (o && with_manifest) {
        json_t *m = json_loads(s->manifest, 0, NULL);
        json_object_set_new(o, "manifest", m ? m : json_null());
    }
    return o;
}

static json_t *diags_json(const struct schema_diags *d)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < d->n; i++) {
        const struct schema_diag *g = &d->items[i];
        json_array_append_new(a, json_pack("{s:s?,s:i,s:i,s:s?,s:s,s:s?}", "file", g->file,
                                           "line", g->line, "column", g->col, "path", g->path,
                                           "message", g->message, "hint", g->hint));
    }
    return a;
}

/* ---- routes ---- */

static void h_whoami(struct api_req *r)
{
    json_t *teams = json_array();
    for (size_t i = 0; i < r->who.nteams; i++)
        json_array_append_new(teams, json_string(r->who.teams[i]));
    api_reply_json(r, 200,
                   json_pack("{s:s,s:b,s:o,s:s}", "user", r->who.user, "admin", r->who.is_admin,
                             "teams", teams, "token_id", r->who.token_id));
}

/* The list is the catalog's hottest read: its items are written straight from the borrowed rows
 * with the core JSON string escaper, which saves about a thousand allocations per page over
 * building jansson objects (bench/catalog, docs/benchmarks.md). */
struct list_out {
    struct core_buf *b;
    size_t n;
    char last[128]; /* name of the last item, for the next cursor */
};

static int add_str_field(struct core_buf *b, const char *key, const char *val)
{
    int rc = core_buf_addf(b, ",\"%s\":", key);
    if (!rc)
        rc = val ? core_buf_add_json_str(b, val) : core_buf_adds(b, "null");
    return rc;
}

static int list_json_item(void *arg, const struct catalog_service *s)
{
    struct list_out *o = arg;
    struct core_buf *b = o->b;
    int rc = core_buf_adds(b, o->n++ ? ",{\"name\":" : "{\"name\":");
    rc = rc ? rc : core_buf_add_json_str(b, s->name);
    rc = rc ? rc : add_str_field(b, "team", s->team);
    rc = rc ? rc : core_buf_addf(b, ",\"tier\":%d", s->tier);
    rc = rc ? rc : add_str_field(b, "description", s->description);
    rc = rc ? rc : add_str_field(b, "digest", s->digest);
    rc = rc ? rc : core_buf_addf(b, ",\"revision\":%lld", (long long)s->revision);
    rc = rc ? rc : add_str_field(b, "created_at", s->created_at);
    rc = rc ? rc : add_str_field(b, "updated_at", s->updated_at);
    snprintf(o->last, sizeof(o->last), "%s", s->name);
    return rc ? rc : core_buf_addc(b, '}');
}

static void h_services_list(struct api_req *r)
{
    long limit, offset;
    if (!api_query_long(r, "limit", 1, 500, 50, &limit) ||
        !api_query_long(r, "offset", 0, 100000000, 0, &offset))
        return;
    char team[128], q[256], after[128];
    struct catalog_service_query cq = {
        .team = api_query(r, "team", team, sizeof(team)),
        .search = api_query(r, "q", q, sizeof(q)),
        .after = api_query(r, "after", after, sizeof(after)),
        .limit = (int)limit,
        .offset = (int)offset,
    };
    struct core_err err = {0};
    struct core_buf *b = &r->out;
    core_buf_clear(b);
    struct list_out o = {b, 0, ""};
    int64_t total = 0;
    int rc = core_buf_adds(b, "{\"items\":[");
    if (!rc)
        rc = catalog_service_each(api_ctx(r)->cat, &cq, &total, list_json_item, &o, &err);
    if (rc) {
        if (!err.code)
            core_err_set(&err, rc, "out of memory");
        api_reply_err(r, &err);
        return;
    }
    /* With a cursor, offsets count from the cursor, so next_offset is left out. */
    long next = offset + (long)o.n;
    bool more = o.n == (size_t)limit && (cq.after || next < total);
    rc = core_buf_addf(b, "],\"total\":%lld,\"limit\":%ld,\"offset\":%ld,\"next_offset\":",
                       (long long)total, limit, offset);
    if (!rc)
        rc = !cq.after && next < total ? core_buf_addf(b, "%ld", next) : core_buf_adds(b, "null");
    if (!rc)
        rc = core_buf_adds(b, ",\"next_after\":");
    if (!rc)
        rc = more ? core_buf_add_json_str(b, o.last) : core_buf_adds(b, "null");
    if (!rc)
        rc = core_buf_adds(b, "}\n");
    if (rc) {
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return;
    }
    r->status = 200;
    r->out_type = "application/json";
}

static void h_service_get(struct api_req *r)
{
    if (!check_label(r, "service", param(r, 0)))
        return;
    struct catalog_service s;
    struct core_err err = {0};
    if (catalog_service_get(api_ctx(r)->cat, param(r, 0), &s, &err)) {
        api_reply_err(r, &err);
        return;
    }
    api_reply_json(r, 200, service_json(&s, true));
    catalog_service_release(&s);
}

static void apply_manifest(struct api_req *r, const char *expect_name)
{
    struct catalog_manifest m;
    struct schema_diags d;
    struct core_err err = {0};
    catalog_manifest_init(&m);
    schema_diags_init(&d);
    char source[160] = "request";
    char sbuf[128];
    const char *src = api_query(r, "source", sbuf, sizeof(sbuf));
    if (src && *src && core_utf8_valid(src, strlen(src)))
        snprintf(source, sizeof(source), "%s", src);
    int rc = catalog_manifest_parse(source, r->body.data, r->body.len, &m, &d, &err);
    if (rc == 0 && expect_name && strcmp(m.name, expect_name) != 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "manifest names service '%s' but the URL names '%s'", m.name,
                 expect_name);
        api_reply_error(r, CORE_E_INVAL, msg, NULL);
        goto out;
    }
    enum catalog_change ch = CATALOG_UNCHANGED;
    if (rc == 0)
        rc = catalog_service_apply(api_ctx(r)->cat, actor(r), &m, source, &ch, &d, &err);
    if (rc) {
        if (d.n > 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "manifest is invalid: %zu problem%s", d.n,
                     d.n == 1 ? "" : "s");
            api_reply_error(r, CORE_E_INVAL, msg, diags_json(&d));
            r->status = 422;
        } else {
            api_reply_err(r, &err);
        }
        goto out;
    }
    struct catalog_service s;
    if (catalog_service_get(api_ctx(r)->cat, m.name, &s, &err)) {
        api_reply_err(r, &err);
        goto out;
    }
    json_t *body = json_pack("{s:s,s:o}", "change", catalog_change_name(ch), "service",
                             service_json(&s, false));
    catalog_service_release(&s);
    api_reply_json(r, ch == CATALOG_CREATED ? 201 : 200, body);
out:
    catalog_manifest_release(&m);
    schema_diags_release(&d);
}

static void h_service_apply(struct api_req *r)
{
    apply_manifest(r, NULL);
}

static void h_service_put(struct api_req *r)
{
    if (check_label(r, "service", param(r, 0)))
        apply_manifest(r, param(r, 0));
}

static void h_service_delete(struct api_req *r)
{
    if (!check_label(r, "service", param(r, 0)))
        return;
    struct core_err err = {0};
    if (catalog_service_delete(api_ctx(r)->cat, actor(r), param(r, 0), &err)) {
        api_reply_err(r, &err);
        return;
    }
    api_reply_json(r, 200, json_pack("{s:s,s:s}", "change", "deleted", "name", param(r, 0)));
}

/* teams */

static json_t *team_json(const struct catalog_team *t)
{
    return json_pack("{s:s,s:s?,s:s?,s:I,s:I,s:s}", "name", t->name, "display_name",
                     t->display_name, "description", t->description, "services",
                     (json_int_t)t->services, "members", (json_int_t)t->members, "created_at",
                     t->created_at);
}

static int team_item(void *arg, const struct catalog_team *t)
{
    return json_array_append_new(arg, team_json(t)) ? CORE_E_NOMEM : 0;
}

static void reply_list(struct api_req *r, json_t *items)
{
    size_t n = json_array_size(items);
    api_reply_json(r, 200,
                   json_pack("{s:o,s:I,s:i,s:i,s:n}", "items", items, "total", (json_int_t)n,
                             "limit", (int)n, "offset", 0, "next_offset"));
}

static void h_teams_list(struct api_req *r)
{
    json_t *items = json_array();
    struct core_err err = {0};
    if (catalog_team_list(api_ctx(r)->cat, team_item, items, &err)) {
        json_decref(items);
        api_reply_err(r, &err);
        return;
    }
    reply_list(r, items);
}

static void h_team_get(struct api_req *r)
{
    if (!check_label(r, "team", param(r, 0)))
        return;
    struct catalog_team t;
    struct core_err err = {0};
    if (catalog_team_get(api_ctx(r)->cat, param(r, 0), &t, &err)) {
        api_reply_err(r, &err);
        return;
    }
    api_reply_json(r, 200, team_json(&t));
    catalog_team_release(&t);
}

static void h_team_create(struct api_req *r)
{
    static const char *const allowed[] = {"name", "display_name", "description", NULL};
    const char *name, *display, *desc;
    json_t *j = named_body(r, allowed, "name", "team", &name);
    if (j && body_str(r, j, "display_name", 200, &display) &&
        body_str(r, j, "description", 1000, &desc)) {
        enum catalog_change ch = CATALOG_UNCHANGED;
        struct core_err err = {0};
        int rc = catalog_team_create(api_ctx(r)->cat, actor(r), name, display, desc, &ch, &err);
        reply_change(r, rc, &err, ch, name);
    }
    json_decref(j);
}

static void h_team_delete(struct api_req *r)
{
    if (!check_label(r, "team", param(r, 0)))
        return;
    struct core_err err = {0};
    if (catalog_team_delete(api_ctx(r)->cat, actor(r), param(r, 0), &err))
        api_reply_err(r, &err);
    else
        api_reply_json(r, 200, json_pack("{s:s,s:s}", "change", "deleted", "name", param(r, 0)));
}

static void h_member_add(struct api_req *r)
{
    if (!check_label(r, "team", param(r, 0)))
        return;
    static const char *const allowed[] = {"user", NULL};
    const char *user;
    json_t *j = named_body(r, allowed, "user", "user", &user);
    if (j) {
        enum catalog_change ch = CATALOG_UNCHANGED;
        struct core_err err = {0};
        int rc = catalog_member_add(api_ctx(r)->cat, actor(r), param(r, 0), user, &ch, &err);
        reply_change(r, rc, &err, ch, user);
    }
    json_decref(j);
}

static void h_member_remove(struct api_req *r)
{
    if (!check_label(r, "team", param(r, 0)) || !check_label(r, "user", param(r, 1)))
        return;
    struct core_err err = {0};
    if (catalog_member_remove(api_ctx(r)->cat, actor(r), param(r, 0), param(r, 1), &err))
        api_reply_err(r, &err);
    else
        api_reply_json(r, 200, json_pack("{s:s}", "change", "deleted"));
}

/* users */

static int user_item(void *arg, const struct catalog_user *u)
{
    json_t *teams = json_array();
    for (size_t i = 0; i < u->nteams; i++)
        json_array_append_new(teams, json_string(u->teams[i]));
    return json_array_append_new(arg, json_pack("{s:s,s:s?,s:b,s:o,s:s}", "name", u->name,
                                                 "display_name", u->display_name, "admin",
                                                 u->is_admin, "teams", teams, "created_at",
                                                 u->created_at))
               ? CORE_E_NOMEM
               : 0;
}

static void h_users_list(struct api_req *r)
{
    json_t *items = json_array();
    struct core_err err = {0};
    if (catalog_user_list(api_ctx(r)->cat, user_item, items, &err)) {
        json_decref(items);
        api_reply_err(r, &err);
        return;
    }
    reply_list(r, items);
}

static void h_user_create(struct api_req *r)
{
    static const char *const allowed[] = {"name", "display_name", "admin", NULL};
    const char *name, *display;
    json_t *j = named_body(r, allowed, "name", "user", &name);
    if (!j)
        return;
    json_t *adm = json_object_get(j, "admin");
    if (adm && !json_is_boolean(adm)) {
        api_reply_error(r, CORE_E_INVAL, "field 'admin' must be true or false", NULL);
    } else if (body_str(r, j, "display_name", 200, &display)) {
        enum catalog_change ch = CATALOG_UNCHANGED;
        struct core_err err = {0};
        int rc = catalog_user_create(api_ctx(r)->cat, actor(r), name, display, json_is_true(adm),
                                     &ch, &err);
        reply_change(r, rc, &err, ch, name);
    }
    json_decref(j);
}

/* environments */

static int env_item(void *arg, const struct catalog_env *e)
{
    return json_array_append_new(arg, json_pack("{s:s,s:s?,s:I}", "name", e->name, "description",
                                                 e->description, "position",
                                                 (json_int_t)e->position))
               ? CORE_E_NOMEM
               : 0;
}

static void h_envs_list(struct api_req *r)
{
    json_t *items = json_array();
    struct core_err err = {0};
    if (catalog_env_list(api_ctx(r)->cat, env_item, items, &err)) {
        json_decref(items);
        api_reply_err(r, &err);
        return;
    }
    reply_list(r, items);
}

static void h_env_create(struct api_req *r)
{
    static const char *const allowed[] = {"name", "description", NULL};
    const char *name, *desc;
    json_t *j = named_body(r, allowed, "name", "environment", &name);
    if (j && body_str(r, j, "description", 1000, &desc)) {
        enum catalog_change ch = CATALOG_UNCHANGED;
        struct core_err err = {0};
        int rc = catalog_env_create(api_ctx(r)->cat, actor(r), name, desc, &ch, &err);
        reply_change(r, rc, &err, ch, name);
    }
    json_decref(j);
}

/* tokens */

static int token_item(void *arg, const struct auth_token_info *t)
{
    return json_array_append_new(arg, json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?}", "id", t->id,
                                                 "name", t->name, "user", t->user, "created_at",
                                                 t->created_at, "last_used_at", t->last_used_at,
                                                 "expires_at", t->expires_at, "revoked_at",
                                                 t->revoked_at))
               ? CORE_E_NOMEM
               : 0;
}

static void h_tokens_list(struct api_req *r)
{
    json_t *items = json_array();
    struct core_err err = {0};
    if (auth_token_list(api_ctx(r)->st, actor(r), token_item, items, &err)) {
        json_decref(items);
        api_reply_err(r, &err);
        return;
    }
    reply_list(r, items);
}

static void h_token_create(struct api_req *r)
{
    json_t *j = json_body(r);
    if (!j)
        return;
    static const char *const allowed[] = {"name", "user", "ttl", NULL};
    const char *name, *user, *ttl;
    int64_t ttl_ms = 0;
    if (body_only(r, j, allowed) && body_str(r, j, "name", 64, &name) &&
        body_str(r, j, "user", 63, &user) && body_str(r, j, "ttl", 32, &ttl)) {
        if (ttl && (core_parse_duration_ms(ttl, &ttl_ms) || ttl_ms <= 0)) {
            api_reply_error(r, CORE_E_INVAL, "field 'ttl' must be a duration such as '24h' or "
                                             "'30d'",
                            NULL);
        } else if (!user || check_label(r, "user", user)) {
            char tok[AUTH_TOKEN_LEN + 1], id[17];
            struct core_err err = {0};
            const char *u = user ? user : r->who.user;
            if (auth_token_create(api_ctx(r)->st, actor(r), u, name ? name : "cli", ttl_ms, tok,
                                  id, &err))
                api_reply_err(r, &err);
            else
                api_reply_json(r, 201,
                               json_pack("{s:s,s:s,s:s,s:s}", "id", id, "user", u, "name",
                                         name ? name : "cli", "token", tok));
        }
    }
    json_decref(j);
}

static void h_token_revoke(struct api_req *r)
{
    const char *id = param(r, 0);
    if (strncmp(id, "tok_", 4) != 0 || strlen(id) != 16) {
        api_reply_error(r, CORE_E_INVAL, "invalid token id (expected tok_ and 12 hex digits)",
                        NULL);
        return;
    }
    struct core_err err = {0};
    if (auth_token_revoke(api_ctx(r)->st, actor(r), id, &err))
        api_reply_err(r, &err);
    else
        api_reply_json(r, 200, json_pack("{s:s,s:s}", "change", "revoked", "id", id));
}

/* audit */

static int audit_item(void *arg, const struct store_audit_event *e)
{
    return json_array_append_new(arg, json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?}", "id",
                                                 (json_int_t)e->id, "ts", e->ts, "actor",
                                                 e->actor, "action", e->action, "kind", e->kind,
                                                 "object", e->object, "before", e->before,
                                                 "after", e->after, "detail", e->detail))
               ? CORE_E_NOMEM
               : 0;
}

static void h_audit_list(struct api_req *r)
{
    long limit, before;
    if (!api_query_long(r, "limit", 1, 1000, 50, &limit) ||
        !api_query_long(r, "before", 0, 0x7fffffffL, 0, &before))
        return;
    char kind[64], object[256], who[128];
    struct store_audit_filter f = {
        .kind = api_query(r, "kind", kind, sizeof(kind)),
        .object = api_query(r, "object", object, sizeof(object)),
        .actor = api_query(r, "actor", who, sizeof(who)),
        .before_id = before,
        .limit = (int)limit,
    };
    json_t *items = json_array();
    struct core_err err = {0};
    if (store_audit_list(api_ctx(r)->st, &f, audit_item, items, &err)) {
        json_decref(items);
        api_reply_err(r, &err);
        return;
    }
    size_t n = json_array_size(items);
    json_t *last = n ? json_array_get(items, n - 1) : NULL;
    json_t *next = (n == (size_t)limit && last) ? json_incref(json_object_get(last, "id"))
                                                : json_null();
    api_reply_json(r, 200,
                   json_pack("{s:o,s:i,s:o}", "items", items, "limit", (int)limit, "next_before",
                             next));
}

const struct api_route api_routes[] = {
    {"GET", "/api/v1/whoami", h_whoami, true},
    {"GET", "/api/v1/services", h_services_list, true},
    {"POST", "/api/v1/services", h_service_apply, true},
    {"GET", "/api/v1/services/{name}", h_service_get, true},
    {"PUT", "/api/v1/services/{name}", h_service_put, true},
    {"DELETE", "/api/v1/services/{name}", h_service_delete, true},
    {"GET", "/api/v1/teams", h_teams_list, true},
    {"POST", "/api/v1/teams", h_team_create, true},
    {"GET", "/api/v1/teams/{name}", h_team_get, true},
    {"DELETE", "/api/v1/teams/{name}", h_team_delete, true},
    {"POST", "/api/v1/teams/{name}/members", h_member_add, true},
    {"DELETE", "/api/v1/teams/{name}/members/{user}", h_member_remove, true},
    {"GET", "/api/v1/users", h_users_list, true},
    {"POST", "/api/v1/users", h_user_create, true},
    {"GET", "/api/v1/environments", h_envs_list, true},
    {"POST", "/api/v1/environments", h_env_create, true},
    {"GET", "/api/v1/tokens", h_tokens_list, true},
    {"POST", "/api/v1/tokens", h_token_create, true},
    {"DELETE", "/api/v1/tokens/{id}", h_token_revoke, true},
    {"GET", "/api/v1/audit", h_audit_list, true},
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
