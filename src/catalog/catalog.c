/* The organization half of the catalog: teams, users, memberships, environments, services. */
#include "catalog/catalog.h"

#include <stdio.h>
#include <string.h>

#include "store/store.h"

struct catalog {
    struct store *st;
    catalog_gate_fn gate;
    void *gate_arg;
};

void catalog_set_gate(struct catalog *cat, catalog_gate_fn fn, void *arg)
{
    cat->gate = fn;
    cat->gate_arg = arg;
}

const struct catalog_actor catalog_actor_system = {"system", true, NULL, 0};

struct catalog *catalog_new(struct store *st, struct core_err *err)
{
    struct catalog *cat = core_calloc(1, sizeof(*cat));
    if (!cat) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    cat->st = st;
    return cat;
}

void catalog_free(struct catalog *cat)
{
    core_free(cat);
}

bool catalog_actor_in_team(const struct catalog_actor *a, const char *team)
{
    for (size_t i = 0; i < a->nteams; i++)
        if (strcmp(a->teams[i], team) == 0)
            return true;
    return false;
}

const char *catalog_change_name(enum catalog_change c)
{
    switch (c) {
    case CATALOG_CREATED: return "created";
    case CATALOG_UPDATED: return "updated";
    case CATALOG_DELETED: return "deleted";
    default: return "unchanged";
    }
}

static void now_text(char out[40])
{
    core_time_format(core_now_ms(), out, 40);
}

static int require_admin(const struct catalog_actor *a, const char *what, struct core_err *err)
{
    if (a->is_admin)
        return 0;
    return core_err_set(err, CORE_E_PERM, "only an admin may %s", what);
}

static int check_name(const char *kind, const char *name, struct core_err *err)
{
    if (!name || !core_is_dns_label(name))
        return core_err_set(err, CORE_E_INVAL,
                            "invalid %s name '%s': use 1-63 lowercase letters, digits or '-', "
                            "not starting or ending with '-'",
                            kind, name ? name : "");
    return 0;
}

/* Digest of a small object given as a JSON-ish canonical string built by the caller. */
static void digest_of(const char *canon, char out[65])
{
    core_sha256_hex(canon, strlen(canon), out);
}

/* ---- services ---- */

void catalog_service_release(struct catalog_service *s)
{
    if (!s)
        return;
    core_free(s->name);
    core_free(s->team);
    core_free(s->description);
    core_free(s->manifest);
    core_free(s->digest);
    core_free(s->created_at);
    core_free(s->updated_at);
    memset(s, 0, sizeof(*s));
}

void catalog_service_list_release(struct catalog_service_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        catalog_service_release(&l->items[i]);
    core_free(l->items);
    memset(l, 0, sizeof(*l));
}

static int service_from_row(struct catalog_service *s, const struct store_row *row)
{
    memset(s, 0, sizeof(*s));
    const char *desc = store_row_text(row, "description");
    s->name = core_strdup(store_row_text(row, "name"));
    s->team = core_strdup(store_row_text(row, "team"));
    s->tier = (int)store_row_int(row, "tier");
    s->description = desc ? core_strdup(desc) : NULL;
    s->manifest = core_strdup(store_row_text(row, "manifest"));
    s->digest = core_strdup(store_row_text(row, "digest"));
    s->revision = store_row_int(row, "revision");
    s->created_at = core_strdup(store_row_text(row, "created_at"));
    s->updated_at = core_strdup(store_row_text(row, "updated_at"));
    if (!s->name || !s->team || !s->manifest || !s->digest || !s->created_at ||
        !s->updated_at || (desc && !s->description)) {
        catalog_service_release(s);
        return CORE_E_NOMEM;
    }
    return 0;
}

static int one_service_row(void *arg, const struct store_row *row)
{
    int rc = service_from_row(arg, row);
    return rc ? rc : 1;
}

#define SERVICE_COLS                                                                               \
    "name, team, tier, description, manifest, digest, revision, created_at, updated_at"

int catalog_service_get(struct catalog *cat, const char *name, struct catalog_service *out,
                        struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    struct store_value p[] = {STORE_V_TEXT(name)};
    int rc = store_query(cat->st, "SELECT " SERVICE_COLS " FROM services WHERE name = ?", p, 1,
                         one_service_row, out, err);
    if (rc == 1)
        return 0;
    if (rc == CORE_E_NOMEM)
        return core_err_set(err, rc, "out of memory");
    if (rc)
        return rc;
    return core_err_set(err, CORE_E_NOTFOUND, "service '%s' not found", name);
}

/* A borrowed view of a row; strings live until the callback returns. */
static void service_view(struct catalog_service *s, const struct store_row *row)
{
    s->name = (char *)store_row_text(row, "name");
    s->team = (char *)store_row_text(row, "team");
    s->tier = (int)store_row_int(row, "tier");
    s->description = (char *)store_row_text(row, "description");
    s->manifest = NULL;
    s->digest = (char *)store_row_text(row, "digest");
    s->revision = store_row_int(row, "revision");
    s->created_at = (char *)store_row_text(row, "created_at");
    s->updated_at = (char *)store_row_text(row, "updated_at");
}

struct each_ctx {
    catalog_service_fn fn;
    void *arg;
};

static int each_row(void *arg, const struct store_row *row)
{
    struct each_ctx *c = arg;
    struct catalog_service s;
    service_view(&s, row);
    return c->fn(c->arg, &s);
}

int catalog_service_each(struct catalog *cat, const struct catalog_service_query *q,
                         int64_t *total, catalog_service_fn fn, void *arg, struct core_err *err)
{
    int limit = q->limit > 0 && q->limit <= 500 ? q->limit : 50;
    int offset = q->offset > 0 ? q->offset : 0;
    char *pattern = NULL;
    *total = 0;
    if (q->search && *q->search) {
        /* Escape LIKE wildcards so a search for "a_b" means exactly that. */
        struct core_buf b;
        core_buf_init(&b, 1024);
        int rc = core_buf_addc(&b, '%');
        for (const char *s = q->search; !rc && *s; s++) {
            if (*s == '%' || *s == '_' || *s == '\\')
                rc = core_buf_addc(&b, '\\');
            if (!rc)
                rc = core_buf_addc(&b, *s);
        }
        if (!rc)
            rc = core_buf_addc(&b, '%');
        if (rc) {
            core_buf_release(&b);
            return core_err_set(err, rc == CORE_E_TOO_BIG ? CORE_E_INVAL : rc,
                                "search text is too long");
        }
        pattern = core_buf_detach(&b, NULL);
        if (!pattern)
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    /* Bind only the filters that are present: "? IS NULL OR ..." forces a scan of every row. */
    char where[320] = "";
    struct store_value p[8];
    size_t np = 0;
    if (q->team) {
        strcat(where, " WHERE team = ?");
        p[np++] = STORE_V_TEXT(q->team);
    }
    if (pattern) {
        strcat(where, np ? " AND" : " WHERE");
        strcat(where, " (name LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')");
        p[np++] = STORE_V_TEXT(pattern);
        p[np++] = STORE_V_TEXT(pattern);
    }
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM services%s", where);
    int rc = store_query_int(cat->st, sql, p, np, total, err);
    if (!rc) {
        struct each_ctx c = {fn, arg};
        /* A cursor seeks in the index instead of stepping over `offset` entries. */
        if (q->after) {
            strcat(where, np ? " AND name > ?" : " WHERE name > ?");
            p[np++] = STORE_V_TEXT(q->after);
        }
        p[np] = STORE_V_INT(limit);
        p[np + 1] = STORE_V_INT(offset);
        /* The manifest is not part of a listing; the covering index serves this query. */
        snprintf(sql, sizeof(sql),
                 "SELECT name, team, tier, description, digest, revision, created_at, "
                 "updated_at FROM services%s ORDER BY name LIMIT ? OFFSET ?",
                 where);
        rc = store_query(cat->st, sql, p, np + 2, each_row, &c, err);
        if (rc == CORE_E_NOMEM)
            core_err_set(err, rc, "out of memory");
    }
    core_free(pattern);
    return rc;
}

struct list_ctx {
    struct catalog_service_list *l;
    size_t cap;
};

static int dup_service(struct catalog_service *d, const struct catalog_service *s)
{
    memset(d, 0, sizeof(*d));
    d->name = core_strdup(s->name);
    d->team = core_strdup(s->team);
    d->tier = s->tier;
    d->description = s->description ? core_strdup(s->description) : NULL;
    d->manifest = core_strdup(s->manifest ? s->manifest : "");
    d->digest = core_strdup(s->digest);
    d->revision = s->revision;
    d->created_at = core_strdup(s->created_at);
    d->updated_at = core_strdup(s->updated_at);
    if (!d->name || !d->team || !d->manifest || !d->digest || !d->created_at || !d->updated_at ||
        (s->description && !d->description)) {
        catalog_service_release(d);
        return CORE_E_NOMEM;
    }
    return 0;
}

static int list_item(void *arg, const struct catalog_service *s)
{
    struct list_ctx *c = arg;
    if (c->l->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        struct catalog_service *items = core_realloc(c->l->items, nc * sizeof(*items));
        if (!items)
            return CORE_E_NOMEM;
        c->l->items = items;
        c->cap = nc;
    }
    int rc = dup_service(&c->l->items[c->l->n], s);
    if (rc)
        return rc;
    c->l->n++;
    return 0;
}

int catalog_service_list(struct catalog *cat, const struct catalog_service_query *q,
                         struct catalog_service_list *out, struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    struct list_ctx c = {out, 0};
    int rc = catalog_service_each(cat, q, &out->total, list_item, &c, err);
    if (rc == CORE_E_NOMEM)
        core_err_set(err, rc, "out of memory");
    if (rc)
        catalog_service_list_release(out);
    return rc;
}

static int team_exists(struct catalog *cat, const char *team, bool *exists, struct core_err *err)
{
    int64_t n = 0;
    struct store_value p[] = {STORE_V_TEXT(team)};
    int rc = store_query_int(cat->st, "SELECT COUNT(*) FROM teams WHERE name = ?", p, 1, &n, err);
    *exists = n > 0;
    return rc;
}

struct names_ctx {
    char *names[256];
    size_t n;
};

static int collect_name(void *arg, const struct store_row *row)
{
    struct names_ctx *c = arg;
    if (c->n < 255) {
        c->names[c->n] = core_strdup(store_row_text(row, "name"));
        if (!c->names[c->n])
            return CORE_E_NOMEM;
        c->n++;
    }
    return 0;
}

static void unknown_team_diag(struct catalog *cat, const struct catalog_manifest *m,
                              struct schema_diags *diags)
{
    struct names_ctx c = {{0}, 0};
    store_query(cat->st, "SELECT name FROM teams ORDER BY name LIMIT 255", NULL, 0, collect_name,
                &c, NULL);
    c.names[c.n] = NULL;
    const char *best = core_did_you_mean(m->team, (const char *const *)c.names);
    char hint[200];
    if (best)
        snprintf(hint, sizeof(hint), "did you mean '%s'?", best);
    else
        snprintf(hint, sizeof(hint), "create it first with 'pave team create %.60s'", m->team);
    if (diags)
        schema_diags_add(diags, m->file, m->team_line, m->team_col, "metadata.team", hint,
                         "unknown team '%s'", m->team);
    for (size_t i = 0; i < c.n; i++)
        core_free(c.names[i]);
}

int catalog_service_apply(struct catalog *cat, const struct catalog_actor *actor,
                          const struct catalog_manifest *m, const char *source,
                          enum catalog_change *change, struct schema_diags *diags,
                          struct core_err *err)
{
    struct catalog_service cur = {0};
    bool have_cur = false;
    *change = CATALOG_UNCHANGED;
    if (!actor->is_admin && !catalog_actor_in_team(actor, m->team))
        return core_err_set(err, CORE_E_PERM,
                            "user '%s' is not a member of team '%s' and cannot change its "
                            "services",
                            actor->user, m->team);
    int rc = 0;
    if (cat->gate) {
        /* the guard rails judge changes only: an identical manifest stays "unchanged" */
        struct catalog_service prev = {0};
        bool same = catalog_service_get(cat, m->name, &prev, NULL) == 0 &&
                    strcmp(prev.digest, m->digest) == 0 && strcmp(prev.team, m->team) == 0;
        catalog_service_release(&prev);
        if (!same && (rc = cat->gate(cat->gate_arg, actor, m, err)))
            return rc;
    }
    rc = store_txn_begin(cat->st, err);
    if (rc)
        return rc;
    bool exists = false;
    if ((rc = team_exists(cat, m->team, &exists, err)))
        goto out;
    if (!exists) {
        unknown_team_diag(cat, m, diags);
        rc = core_err_set(err, CORE_E_INVAL, "%s:%d:%d: unknown team '%s'", m->file,
                          m->team_line, m->team_col, m->team);
        goto out;
    }
    rc = catalog_service_get(cat, m->name, &cur, err);
    if (rc == 0)
        have_cur = true;
    else if (rc != CORE_E_NOTFOUND)
        goto out;
    rc = 0;
    if (have_cur && !actor->is_admin && !catalog_actor_in_team(actor, cur.team)) {
        rc = core_err_set(err, CORE_E_PERM,
                          "service '%s' belongs to team '%s'; user '%s' cannot change it",
                          m->name, cur.team, actor->user);
        goto out;
    }
    if (have_cur && strcmp(cur.digest, m->digest) == 0 && strcmp(cur.team, m->team) == 0)
        goto out; /* unchanged: no write, no audit event */
    char now[40];
    now_text(now);
    if (have_cur) {
        struct store_value p[] = {
            STORE_V_TEXT(m->team),   STORE_V_INT(m->tier),     STORE_V_TEXT(m->description),
            STORE_V_TEXT(m->json),   STORE_V_TEXT(source),     STORE_V_TEXT(m->digest),
            STORE_V_TEXT(now),       STORE_V_TEXT(m->name),
        };
        rc = store_exec(cat->st,
                        "UPDATE services SET team = ?, tier = ?, description = ?, manifest = ?, "
                        "source = ?, digest = ?, revision = revision + 1, updated_at = ? "
                        "WHERE name = ?",
                        p, 8, NULL, err);
    } else {
        struct store_value p[] = {
            STORE_V_TEXT(m->name),   STORE_V_TEXT(m->team),   STORE_V_INT(m->tier),
            STORE_V_TEXT(m->description), STORE_V_TEXT(m->json), STORE_V_TEXT(source),
            STORE_V_TEXT(m->digest), STORE_V_TEXT(now),       STORE_V_TEXT(now),
        };
        rc = store_exec(cat->st,
                        "INSERT INTO services (name, team, tier, description, manifest, source, "
                        "digest, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, "
                        "?, ?)",
                        p, 9, NULL, err);
    }
    if (rc)
        goto out;
    struct store_audit_event ev = {
        .actor = actor->user,
        .action = have_cur ? "service.update" : "service.create",
        .kind = "service",
        .object = m->name,
        .before = have_cur ? cur.digest : NULL,
        .after = m->digest,
        .detail = source,
    };
    if ((rc = store_audit_append(cat->st, &ev, err)))
        goto out;
    *change = have_cur ? CATALOG_UPDATED : CATALOG_CREATED;
out:
    if (rc || *change == CATALOG_UNCHANGED)
        store_txn_rollback(cat->st);
    else
        rc = store_txn_commit(cat->st, err);
    if (rc)
        *change = CATALOG_UNCHANGED;
    catalog_service_release(&cur);
    return rc;
}

int catalog_service_delete(struct catalog *cat, const struct catalog_actor *actor,
                           const char *name, struct core_err *err)
{
    struct catalog_service cur = {0};
    int rc = store_txn_begin(cat->st, err);
    if (rc)
        return rc;
    if ((rc = catalog_service_get(cat, name, &cur, err)))
        goto out;
    if (!actor->is_admin && !catalog_actor_in_team(actor, cur.team)) {
        rc = core_err_set(err, CORE_E_PERM,
                          "service '%s' belongs to team '%s'; user '%s' cannot delete it", name,
                          cur.team, actor->user);
        goto out;
    }
    struct store_value p[] = {STORE_V_TEXT(name)};
    if ((rc = store_exec(cat->st, "DELETE FROM services WHERE name = ?", p, 1, NULL, err)))
        goto out;
    struct store_audit_event ev = {.actor = actor->user, .action = "service.delete",
                                   .kind = "service", .object = name, .before = cur.digest};
    rc = store_audit_append(cat->st, &ev, err);
out:
    if (rc)
        store_txn_rollback(cat->st);
    else
        rc = store_txn_commit(cat->st, err);
    catalog_service_release(&cur);
    return rc;
}

/* ---- teams ---- */

void catalog_team_release(struct catalog_team *t)
{
    if (!t)
        return;
    core_free(t->name);
    core_free(t->display_name);
    core_free(t->description);
    core_free(t->created_at);
    memset(t, 0, sizeof(*t));
}

static void team_view(struct catalog_team *t, const struct store_row *row)
{
    t->name = (char *)store_row_text(row, "name");
    t->display_name = (char *)store_row_text(row, "display_name");
    t->description = (char *)store_row_text(row, "description");
    t->services = store_row_int(row, "services");
    t->members = store_row_int(row, "members");
    t->created_at = (char *)store_row_text(row, "created_at");
}

#define TEAM_SELECT                                                                                \
    "SELECT t.name AS name, t.display_name AS display_name, t.description AS description, "      \
    "t.created_at AS created_at, "                                                                 \
    "(SELECT COUNT(*) FROM services s WHERE s.team = t.name) AS services, "                       \
    "(SELECT COUNT(*) FROM memberships m WHERE m.team = t.name) AS members FROM teams t"

static int team_copy_row(void *arg, const struct store_row *row)
{
    struct catalog_team *out = arg, v;
    team_view(&v, row);
    out->name = core_strdup(v.name);
    out->display_name = core_strdup(v.display_name);
    out->description = core_strdup(v.description);
    out->created_at = core_strdup(v.created_at);
    out->services = v.services;
    out->members = v.members;
    if (!out->name || !out->created_at) {
        catalog_team_release(out);
        return CORE_E_NOMEM;
    }
    return 1;
}

int catalog_team_get(struct catalog *cat, const char *name, struct catalog_team *out,
                     struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    struct store_value p[] = {STORE_V_TEXT(name)};
    int rc = store_query(cat->st, TEAM_SELECT " WHERE t.name = ?", p, 1, team_copy_row, out, err);
    if (rc == 1)
        return 0;
    if (rc)
        return rc == CORE_E_NOMEM ? core_err_set(err, rc, "out of memory") : rc;
    return core_err_set(err, CORE_E_NOTFOUND, "team '%s' not found", name);
}

struct team_cb {
    catalog_team_fn fn;
    void *arg;
};

static int team_list_row(void *arg, const struct store_row *row)
{
    struct team_cb *c = arg;
    struct catalog_team t;
    team_view(&t, row);
    return c->fn(c->arg, &t);
}

int catalog_team_list(struct catalog *cat, catalog_team_fn fn, void *arg, struct core_err *err)
{
    struct team_cb c = {fn, arg};
    return store_query(cat->st, TEAM_SELECT " ORDER BY t.name", NULL, 0, team_list_row, &c, err);
}

static int team_canon(struct core_buf *b, const char *name, const char *display,
                      const char *desc)
{
    int rc = core_buf_adds(b, "{\"name\":");
    rc = rc ? rc : core_buf_add_json_str(b, name);
    rc = rc ? rc : core_buf_adds(b, ",\"display_name\":");
    rc = rc ? rc : core_buf_add_json_str(b, display ? display : "");
    rc = rc ? rc : core_buf_adds(b, ",\"description\":");
    rc = rc ? rc : core_buf_add_json_str(b, desc ? desc : "");
    return rc ? rc : core_buf_addc(b, '}');
}

int catalog_team_create(struct catalog *cat, const struct catalog_actor *actor, const char *name,
                        const char *display_name, const char *description,
                        enum catalog_change *change, struct core_err *err)
{
    *change = CATALOG_UNCHANGED;
    int rc = require_admin(actor, "create teams", err);
    if (rc || (rc = check_name("team", name, err)))
        return rc;
    if (display_name && strlen(display_name) > 200)
        return core_err_set(err, CORE_E_INVAL, "display name of team '%s' is too long", name);
    if (description && strlen(description) > 1000)
        return core_err_set(err, CORE_E_INVAL, "description of team '%s' is too long", name);
    struct catalog_team cur = {0};
    struct core_buf canon, old;
    core_buf_init(&canon, 0);
    core_buf_init(&old, 0);
    if ((rc = store_txn_begin(cat->st, err)))
        return rc;
    rc = catalog_team_get(cat, name, &cur, err);
    bool have = rc == 0;
    if (rc && rc != CORE_E_NOTFOUND)
        goto out;
    rc = team_canon(&canon, name, display_name, description);
    if (!rc && have)
        rc = team_canon(&old, cur.name, cur.display_name, cur.description);
    if (rc) {
        rc = core_err_set(err, rc, "out of memory");
        goto out;
    }
    if (have && strcmp(canon.data, old.data) == 0)
        goto out;
    char now[40], before[65], after[65];
    now_text(now);
    digest_of(canon.data, after);
    if (have) {
        digest_of(old.data, before);
        struct store_value p[] = {STORE_V_TEXT(display_name), STORE_V_TEXT(description),
                                  STORE_V_TEXT(now), STORE_V_TEXT(name)};
        rc = store_exec(cat->st,
                        "UPDATE teams SET display_name = ?, description = ?, updated_at = ? "
                        "WHERE name = ?",
                        p, 4, NULL, err);
    } else {
        struct store_value p[] = {STORE_V_TEXT(name), STORE_V_TEXT(display_name),
                                  STORE_V_TEXT(description), STORE_V_TEXT(now),
                                  STORE_V_TEXT(now)};
        rc = store_exec(cat->st,
                        "INSERT INTO teams (name, display_name, description, created_at, "
                        "updated_at) VALUES (?, ?, ?, ?, ?)",
                        p, 5, NULL, err);
    }
    if (rc)
        goto out;
    struct store_audit_event ev = {.actor = actor->user,
                                   .action = have ? "team.update" : "team.create",
                                   .kind = "team", .object = name,
                                   .before = have ? before : NULL, .after = after};
    if ((rc = store_audit_append(cat->st, &ev, err)))
        goto out;
    *change = have ? CATALOG_UPDATED : CATALOG_CREATED;
out:
    if (rc || *change == CATALOG_UNCHANGED)
        store_txn_rollback(cat->st);
    else
        rc = store_txn_commit(cat->st, err);
    if (rc)
        *change = CATALOG_UNCHANGED;
    catalog_team_release(&cur);
    core_buf_release(&canon);
    core_buf_release(&old);
    return rc;
}

int catalog_team_delete(struct catalog *cat, const struct catalog_actor *actor, const char *name,
                        struct core_err *err)
{
    int rc = require_admin(actor, "delete teams", err);
    if (rc)
        return rc;
    struct catalog_team cur = {0};
    if ((rc = store_txn_begin(cat->st, err)))
        return rc;
    if ((rc = catalog_team_get(cat, name, &cur, err)))
        goto out;
    if (cur.services > 0) {
        rc = core_err_set(err, CORE_E_CONFLICT,
                          "team '%s' still owns %lld service(s); delete or move them first", name,
                          (long long)cur.services);
        goto out;
    }
    struct core_buf canon;
    core_buf_init(&canon, 0);
    char before[65];
    if (team_canon(&canon, cur.name, cur.display_name, cur.description) == 0)
        digest_of(canon.data, before);
    else
        before[0] = 0;
    core_buf_release(&canon);
    struct store_value p[] = {STORE_V_TEXT(name)};
    if ((rc = store_exec(cat->st, "DELETE FROM teams WHERE name = ?", p, 1, NULL, err)))
        goto out;
    struct store_audit_event ev = {.actor = actor->user, .action = "team.delete", .kind = "team",
                                   .object = name, .before = before};
    rc = store_audit_append(cat->st, &ev, err);
out:
    if (rc)
        store_txn_rollback(cat->st);
    else
        rc = store_txn_commit(cat->st, err);
    catalog_team_release(&cur);
    return rc;
}

/* ---- users ---- */

void catalog_user_release(struct catalog_user *u)
{
    if (!u)
        return;
    core_free(u->name);
    core_free(u->display_name);
    for (size_t i = 0; i < u->nteams; i++)
        core_free(u->teams[i]);
    core_free(u->teams);
    core_free(u->created_at);
    memset(u, 0, sizeof(*u));
}

static int user_row(void *arg, const struct store_row *row)
{
    struct catalog_user *u = arg;
    u->name = core_strdup(store_row_text(row, "name"));
    const char *dn = store_row_text(row, "display_name");
    u->display_name = dn ? core_strdup(dn) : NULL;
    u->is_admin = store_row_int(row, "is_admin") != 0;
    u->created_at = core_strdup(store_row_text(row, "created_at"));
    if (!u->name || !u->created_at || (dn && !u->display_name))
        return CORE_E_NOMEM;
    return 1;
}

static int user_team_row(void *arg, const struct store_row *row)
{
    struct catalog_user *u = arg;
    char **teams = core_realloc(u->teams, (u->nteams + 2) * sizeof(*teams));
    if (!teams)
        return CORE_E_NOMEM;
    u->teams = teams;
    teams[u->nteams] = core_strdup(store_row_text(row, "team"));
    if (!teams[u->nteams])
        return CORE_E_NOMEM;
    u->nteams++;
    teams[u->nteams] = NULL;
    return 0;
}

int catalog_user_get(struct catalog *cat, const char *name, struct catalog_user *out,
                     struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    struct store_value p[] = {STORE_V_TEXT(name)};
    int rc = store_query(cat->st,
                         "SELECT name, display_name, is_admin, created_at FROM users WHERE name = ?",
                         p, 1, user_row, out, err);
    if (rc == 0) {
        rc = core_err_set(err, CORE_E_NOTFOUND, "user '%s' not found", name);
    } else if (rc == 1) {
        rc = store_query(cat->st,
                         "SELECT team FROM memberships WHERE user_name = ? ORDER BY team", p, 1,
                         user_team_row, out, err);
    }
    if (rc == CORE_E_NOMEM)
        core_err_set(err, rc, "out of memory");
    if (!rc && !out->teams) {
        out->teams = core_calloc(1, sizeof(char *));
        if (!out->teams)
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    if (rc)
        catalog_user_release(out);
    return rc;
}

struct user_cb {
    struct catalog *cat;
    catalog_user_fn fn;
    void *arg;
    char *names[1024];
    size_t n;
};

static int user_name_row(void *arg, const struct store_row *row)
{
    struct user_cb *c = arg;
    if (c->n >= 1024)
        return 1;
    c->names[c->n] = core_strdup(store_row_text(row, "name"));
    if (!c->names[c->n])
        return CORE_E_NOMEM;
    c->n++;
    return 0;
}

int catalog_user_list(struct catalog *cat, catalog_user_fn fn, void *arg, struct core_err *err)
{
    struct user_cb *c = core_calloc(1, sizeof(*c));
    if (!c)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    int rc = store_query(cat->st, "SELECT name FROM users ORDER BY name", NULL, 0, user_name_row,
                         c, err);
    if (rc == 1)
        rc = 0;
    for (size_t i = 0; !rc && i < c->n; i++) {
        struct catalog_user u;
        if ((rc = catalog_user_get(cat, c->names[i], &u, err)))
            break;
        rc = fn(arg, &u);
        catalog_user_release(&u);
    }
    for (size_t i = 0; i < c->n; i++)
        core_free(c->names[i]);
    core_free(c);
    return rc;
}

/* Runs one idempotent insert with its audit event in a transaction. */
static int insert_audited(struct catalog *cat, const char *exists_sql,
                          const struct store_value *key, size_t nkey, const char *insert_sql,
                          const struct store_value *vals, size_t nvals,
                          const struct store_audit_event *ev, enum catalog_change *change,
                          struct core_err *err)
{
    *change = CATALOG_UNCHANGED;
    int rc = store_txn_begin(cat->st, err);
    if (rc)
        return rc;
    int64_t n = 0;
    if ((rc = store_query_int(cat->st, exists_sql, key, nkey, &n, err)) || n > 0)
        goto out;
    if ((rc = store_exec(cat->st, insert_sql, vals, nvals, NULL, err)))
        goto out;
    if ((rc = store_audit_append(cat->st, ev, err)))
        goto out;
    *change = CATALOG_CREATED;
out:
    if (rc || *change == CATALOG_UNCHANGED)
        store_txn_rollback(cat->st);
    else
        rc = store_txn_commit(cat->st, err);
    if (rc)
        *change = CATALOG_UNCHANGED;
    return rc;
}

int catalog_user_create(struct catalog *cat, const struct catalog_actor *actor, const char *name,
                        const char *display_name, bool is_admin, enum catalog_change *change,
                        struct core_err *err)
{
    *change = CATALOG_UNCHANGED;
    int rc = require_admin(actor, "create users", err);
    if (rc || (rc = check_name("user", name, err)))
        return rc;
    if (display_name && strlen(display_name) > 200)
        return core_err_set(err, CORE_E_INVAL, "display name of user '%s' is too long", name);
    char now[40], after[65], canon[512];
    now_text(now);
    snprintf(canon, sizeof(canon), "user:%s:%d", name, is_admin);
    digest_of(canon, after);
    struct store_value key[] = {STORE_V_TEXT(name)};
    struct store_value vals[] = {STORE_V_TEXT(name), STORE_V_TEXT(display_name),
                                 STORE_V_INT(is_admin ? 1 : 0), STORE_V_TEXT(now)};
    struct store_audit_event ev = {.actor = actor->user, .action = "user.create", .kind = "user",
                                   .object = name, .after = after};
    return insert_audited(cat, "SELECT COUNT(*) FROM users WHERE name = ?", key, 1,
                          "INSERT INTO users (name, display_name, is_admin, created_at) VALUES "
                          "(?, ?, ?, ?)",
                          vals, 4, &ev, change, err);
}

int catalog_member_add(struct catalog *cat, const struct catalog_actor *actor, const char *team,
                       const char *user, enum catalog_change *change, struct core_err *err)
{
    *change = CATALOG_UNCHANGED;
    int rc = require_admin(actor, "change team membership", err);
    if (rc || (rc = check_name("team", team, err)) || (rc = check_name("user", user, err)))
        return rc;
    char now[40], after[65], canon[256], object[160];
    now_text(now);
    snprintf(canon, sizeof(canon), "member:%s:%s", team, user);
    snprintf(object, sizeof(object), "%s/%s", team, user);
    digest_of(canon, after);
    struct store_value key[] = {STORE_V_TEXT(team), STORE_V_TEXT(user)};
    struct store_value vals[] = {STORE_V_TEXT(team), STORE_V_TEXT(user), STORE_V_TEXT(now)};
    struct store_audit_event ev = {.actor = actor->user, .action = "membership.add",
                                   .kind = "membership", .object = object, .after = after};
    rc = insert_audited(cat, "SELECT COUNT(*) FROM memberships WHERE team = ? AND user_name = ?",
                        key, 2,
                        "INSERT INTO memberships (team, user_name, role, created_at) VALUES (?, "
                        "?, 'member', ?)",
                        vals, 3, &ev, change, err);
    if (rc == CORE_E_CONFLICT)
        return core_err_set(err, CORE_E_NOTFOUND, "team '%s' or user '%s' does not exist", team,
                            user);
    return rc;
}

int catalog_member_remove(struct catalog *cat, const struct catalog_actor *actor,
                          const char *team, const char *user, struct core_err *err)
{
    int rc = require_admin(actor, "change team membership", err);
    if (rc)
        return rc;
    char object[160];
    snprintf(object, sizeof(object), "%s/%s", team, user);
    if ((rc = store_txn_begin(cat->st, err)))
        return rc;
    int64_t changes = 0;
    struct store_value p[] = {STORE_V_TEXT(team), STORE_V_TEXT(user)};
    rc = store_exec(cat->st, "DELETE FROM memberships WHERE team = ? AND user_name = ?", p, 2,
                    &changes, err);
    if (!rc && changes == 0)
        rc = core_err_set(err, CORE_E_NOTFOUND, "user '%s' is not a member of team '%s'", user,
                          team);
    if (!rc) {
        struct store_audit_event ev = {.actor = actor->user, .action = "membership.remove",
                                       .kind = "membership", .object = object};
        rc = store_audit_append(cat->st, &ev, err);
    }
    if (rc)
        store_txn_rollback(cat->st);
    else
        rc = store_txn_commit(cat->st, err);
    return rc;
}

/* ---- environments ---- */

int catalog_env_create(struct catalog *cat, const struct catalog_actor *actor, const char *name,
                       const char *description, enum catalog_change *change,
                       struct core_err *err)
{
    *change = CATALOG_UNCHANGED;
    int rc = require_admin(actor, "create environments", err);
    if (rc || (rc = check_name("environment", name, err)))
        return rc;
    int64_t pos = 0;
    store_query_int(cat->st, "SELECT COUNT(*) FROM environments", NULL, 0, &pos, NULL);
    char now[40], after[65], canon[512];
    now_text(now);
    snprintf(canon, sizeof(canon), "env:%s:%s", name, description ? description : "");
    digest_of(canon, after);
    struct store_value key[] = {STORE_V_TEXT(name)};
    struct store_value vals[] = {STORE_V_TEXT(name), STORE_V_TEXT(description), STORE_V_INT(pos),
                                 STORE_V_TEXT(now)};
    struct store_audit_event ev = {.actor = actor->user, .action = "environment.create",
                                   .kind = "environment", .object = name, .after = after};
    return insert_audited(cat, "SELECT COUNT(*) FROM environments WHERE name = ?", key, 1,
                          "INSERT INTO environments (name, description, position, created_at) "
                          "VALUES (?, ?, ?, ?)",
                          vals, 4, &ev, change, err);
}

struct env_cb {
    catalog_env_fn fn;
    void *arg;
};

static int env_row(void *arg, const struct store_row *row)
{
    struct env_cb *c = arg;
    struct catalog_env e = {store_row_text(row, "name"), store_row_text(row, "description"),
                            store_row_int(row, "position")};
    return c->fn(c->arg, &e);
}

int catalog_env_list(struct catalog *cat, catalog_env_fn fn, void *arg, struct core_err *err)
{
    struct env_cb c = {fn, arg};
    return store_query(cat->st,
                       "SELECT name, description, position FROM environments ORDER BY position, "
                       "name",
                       NULL, 0, env_row, &c, err);
}

int catalog_env_defaults(struct catalog *cat, struct core_err *err)
{
    static const char *const envs[][2] = {
        {"dev", "development: fast feedback, no guarantees"},
        {"staging", "pre-production: production-like, shared"},
        {"prod", "production"},
    };
    for (size_t i = 0; i < 3; i++) {
        enum catalog_change ch;
        int rc = catalog_env_create(cat, &catalog_actor_system, envs[i][0], envs[i][1], &ch, err);
        if (rc)
            return rc;
    }
    return 0;
}
