/* Tokens, sessions and principals. */
#include "auth/auth.h"

#include <stdio.h>
#include <string.h>

#include "store/store.h"

void auth_principal_release(struct auth_principal *p)
{
    if (!p)
        return;
    core_free(p->user);
    core_free(p->token_id);
    for (size_t i = 0; i < p->nteams; i++)
        core_free(p->teams[i]);
    core_free(p->teams);
    memset(p, 0, sizeof(*p));
}

static int make_token(char *token_out, char *id_out, char hash_out[65])
{
    char secret[41], id[13];
    int rc = core_random_hex(secret, 20);
    if (!rc)
        rc = core_random_hex(id, 6);
    if (rc)
        return rc;
    snprintf(token_out, AUTH_TOKEN_LEN + 1, "pave_%s", secret);
    snprintf(id_out, 17, "tok_%s", id);
    core_sha256_hex(token_out, strlen(token_out), hash_out);
    return 0;
}

static int token_insert(struct store *st, const char *actor_user, const char *user,
                        const char *name, int64_t ttl_ms, char *token_out, char *id_out,
                        struct core_err *err)
{
    char hash[65], now[40], exp[40];
    if (make_token(token_out, id_out, hash))
        return core_err_set(err, CORE_E_IO, "cannot generate a random token");
    int64_t t = core_now_ms();
    core_time_format(t, now, sizeof(now));
    if (ttl_ms > 0)
        core_time_format(t + ttl_ms, exp, sizeof(exp));
    struct store_value p[] = {STORE_V_TEXT(id_out), STORE_V_TEXT(name), STORE_V_TEXT(user),
                              STORE_V_TEXT(hash), STORE_V_TEXT(now),
                              ttl_ms > 0 ? STORE_V_TEXT(exp) : STORE_V_NULL};
    int rc = store_exec(st,
                        "INSERT INTO tokens (id, name, user_name, hash, created_at, expires_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        p, 6, NULL, err);
    if (rc == CORE_E_CONFLICT)
        return core_err_set(err, CORE_E_NOTFOUND, "user '%s' not found", user);
    if (rc)
        return rc;
    /* The audit records the token id, never the token or its hash. */
    struct store_audit_event ev = {.actor = actor_user, .action = "token.create",
                                   .kind = "token", .object = id_out, .detail = user};
    return store_audit_append(st, &ev, err);
}

int auth_bootstrap(struct store *st, struct catalog *cat, char *token_out, bool *created,
                   struct core_err *err)
{
    *created = false;
    int64_t n = 0;
    int rc = store_txn_begin(st, err);
    if (rc)
        return rc;
    rc = store_query_int(st, "SELECT COUNT(*) FROM users WHERE is_admin = 1", NULL, 0, &n, err);
    if (rc || n > 0)
        goto out;
    enum catalog_change ch;
    rc = catalog_user_create(cat, &catalog_actor_system, "admin", "Platform administrator", true,
                             &ch, err);
    if (rc)
        goto out;
    char id[17];
    rc = token_insert(st, "system", "admin", "bootstrap", 0, token_out, id, err);
    if (!rc)
        *created = true;
out:
    if (rc || !*created)
        store_txn_rollback(st);
    else
        rc = store_txn_commit(st, err);
    if (rc)
        *created = false;
    return rc;
}

int auth_token_create(struct store *st, const struct catalog_actor *actor, const char *user,
                      const char *name, int64_t ttl_ms, char *token_out, char *id_out,
                      struct core_err *err)
{
    if (!actor->is_admin && strcmp(actor->user, user) != 0)
        return core_err_set(err, CORE_E_PERM, "only an admin may create tokens for user '%s'",
                            user);
    if (!name || !*name || strlen(name) > 64 || !core_utf8_valid(name, strlen(name)))
        return core_err_set(err, CORE_E_INVAL, "token name must be 1-64 characters");
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20)
            return core_err_set(err, CORE_E_INVAL, "token name contains a control character");
    int rc = store_txn_begin(st, err);
    if (rc)
        return rc;
    rc = token_insert(st, actor->user, user, name, ttl_ms, token_out, id_out, err);
    if (rc)
        store_txn_rollback(st);
    else
        rc = store_txn_commit(st, err);
    return rc;
}

struct principal_row {
    struct auth_principal *p;
    char expires[40];
    char revoked;
    bool found;
};

static int token_row(void *arg, const struct store_row *row)
{
    struct principal_row *r = arg;
    r->found = true;
    r->p->user = core_strdup(store_row_text(row, "user_name"));
    r->p->token_id = core_strdup(store_row_text(row, "id"));
    const char *e = store_row_text(row, "expires_at");
    snprintf(r->expires, sizeof(r->expires), "%s", e ? e : "");
    r->revoked = store_row_text(row, "revoked_at") != NULL;
    if (!r->p->user || !r->p->token_id)
        return CORE_E_NOMEM;
    return 1;
}

/* Fills the principal's teams and admin flag from the catalog. */
static int principal_finish(struct catalog *cat, struct auth_principal *p, struct core_err *err)
{
    struct catalog_user u;
    int rc = catalog_user_get(cat, p->user, &u, err);
    if (rc)
        return rc == CORE_E_NOTFOUND ? core_err_set(err, CORE_E_AUTH, "unknown user") : rc;
    p->is_admin = u.is_admin;
    p->teams = u.teams;
    p->nteams = u.nteams;
    u.teams = NULL;
    u.nteams = 0;
    catalog_user_release(&u);
    p->actor.user = p->user;
    p->actor.is_admin = p->is_admin;
    p->actor.teams = (const char *const *)p->teams;
    p->actor.nteams = p->nteams;
    return 0;
}

int auth_token_verify(struct store *st, struct catalog *cat, const char *token,
                      struct auth_principal *out, struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!token || strlen(token) != AUTH_TOKEN_LEN || strncmp(token, "pave_", 5) != 0)
        return core_err_set(err, CORE_E_AUTH, "invalid token");
    char hash[65];
    core_sha256_hex(token, strlen(token), hash);
    struct principal_row r = {.p = out};
    struct store_value p[] = {STORE_V_TEXT(hash)};
    int rc = store_query(st,
                         "SELECT id, user_name, expires_at, revoked_at FROM tokens WHERE hash = ?",
                         p, 1, token_row, &r, err);
    if (rc == 1)
        rc = 0;
    if (!rc && !r.found)
        rc = core_err_set(err, CORE_E_AUTH, "invalid token");
    char now[40];
    core_time_format(core_now_ms(), now, sizeof(now));
    if (!rc && r.revoked)
        rc = core_err_set(err, CORE_E_AUTH, "token has been revoked");
    if (!rc && r.expires[0] && strcmp(r.expires, now) <= 0)
        rc = core_err_set(err, CORE_E_AUTH, "token has expired");
    if (!rc)
        rc = principal_finish(cat, out, err);
    if (!rc) {
        struct store_value u[] = {STORE_V_TEXT(now), STORE_V_TEXT(out->token_id)};
        store_exec(st, "UPDATE tokens SET last_used_at = ? WHERE id = ?", u, 2, NULL, NULL);
    }
    if (rc)
        auth_principal_release(out);
    return rc;
}

int auth_token_revoke(struct store *st, const struct catalog_actor *actor, const char *id,
                      struct core_err *err)
{
    char now[40];
    core_time_format(core_now_ms(), now, sizeof(now));
    int rc = store_txn_begin(st, err);
    if (rc)
        return rc;
    int64_t changes = 0;
    struct store_value p[] = {STORE_V_TEXT(now), STORE_V_TEXT(id), STORE_V_INT(actor->is_admin),
                              STORE_V_TEXT(actor->user)};
    rc = store_exec(st,
                    "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND "
                    "(? = 1 OR user_name = ?)",
                    p, 4, &changes, err);
    if (!rc && changes == 0)
        rc = core_err_set(err, CORE_E_NOTFOUND,
                          "token '%s' not found, already revoked, or not yours", id);
    if (!rc) {
        struct store_value s[] = {STORE_V_TEXT(id)};
        rc = store_exec(st, "DELETE FROM sessions WHERE token_id = ?", s, 1, NULL, err);
    }
    if (!rc) {
        struct store_audit_event ev = {.actor = actor->user, .action = "token.revoke",
                                       .kind = "token", .object = id};
        rc = store_audit_append(st, &ev, err);
    }
    if (rc)
        store_txn_rollback(st);
    else
        rc = store_txn_commit(st, err);
    return rc;
}

struct tok_cb {
    auth_token_fn fn;
    void *arg;
};

static int tok_list_row(void *arg, const struct store_row *row)
{
    struct tok_cb *c = arg;
    struct auth_token_info t = {
        store_row_text(row, "id"),           store_row_text(row, "name"),
        store_row_text(row, "user_name"),    store_row_text(row, "created_at"),
        store_row_text(row, "last_used_at"), store_row_text(row, "expires_at"),
        store_row_text(row, "revoked_at"),
    };
    return c->fn(c->arg, &t);
}

int auth_token_list(struct store *st, const struct catalog_actor *actor, auth_token_fn fn,
                    void *arg, struct core_err *err)
{
    struct tok_cb c = {fn, arg};
    struct store_value p[] = {STORE_V_INT(actor->is_admin), STORE_V_TEXT(actor->user)};
    return store_query(st,
                       "SELECT id, name, user_name, created_at, last_used_at, expires_at, "
                       "revoked_at FROM tokens WHERE (? = 1 OR user_name = ?) ORDER BY created_at, "
                       "id",
                       p, 2, tok_list_row, &c, err);
}

int auth_session_create(struct store *st, const char *token_id, char *session_out,
                        char *csrf_out, struct core_err *err)
{
    if (core_random_hex(session_out, 32) || core_random_hex(csrf_out, 32))
        return core_err_set(err, CORE_E_IO, "cannot generate a session");
    char hash[65], now[40];
    core_sha256_hex(session_out, strlen(session_out), hash);
    int64_t t = core_now_ms();
    core_time_format(t, now, sizeof(now));
    struct store_value p[] = {STORE_V_TEXT(hash), STORE_V_TEXT(token_id), STORE_V_TEXT(csrf_out),
                              STORE_V_TEXT(now), STORE_V_INT(t + AUTH_SESSION_TTL_MS)};
    return store_exec(st,
                      "INSERT INTO sessions (id_hash, token_id, csrf, created_at, expires_ms) "
                      "VALUES (?, ?, ?, ?, ?)",
                      p, 5, NULL, err);
}

struct sess_row {
    char token_id[40];
    char csrf[65];
    int64_t expires;
    bool found;
};

static int session_row(void *arg, const struct store_row *row)
{
    struct sess_row *r = arg;
    const char *tid = store_row_text(row, "token_id");
    const char *csrf = store_row_text(row, "csrf");
    snprintf(r->token_id, sizeof(r->token_id), "%s", tid ? tid : "");
    snprintf(r->csrf, sizeof(r->csrf), "%s", csrf ? csrf : "");
    r->expires = store_row_int(row, "expires_ms");
    r->found = true;
    return 1;
}

static int tok_user_row(void *arg, const struct store_row *row)
{
    struct auth_principal *p = arg;
    if (store_row_text(row, "revoked_at"))
        return 1;
    p->user = core_strdup(store_row_text(row, "user_name"));
    p->token_id = core_strdup(store_row_text(row, "id"));
    return p->user && p->token_id ? 1 : CORE_E_NOMEM;
}

int auth_session_verify(struct store *st, struct catalog *cat, const char *session,
                        struct auth_principal *out, char *csrf_out, struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!session || strlen(session) != 64)
        return core_err_set(err, CORE_E_AUTH, "no session");
    char hash[65];
    core_sha256_hex(session, strlen(session), hash);
    struct sess_row r = {0};
    struct store_value p[] = {STORE_V_TEXT(hash)};
    int rc = store_query(st, "SELECT token_id, csrf, expires_ms FROM sessions WHERE id_hash = ?",
                         p, 1, session_row, &r, err);
    if (rc == 1)
        rc = 0;
    if (rc)
        return rc;
    if (!r.found || r.expires <= core_now_ms())
        return core_err_set(err, CORE_E_AUTH, "session expired; sign in again");
    struct store_value t[] = {STORE_V_TEXT(r.token_id)};
    rc = store_query(st, "SELECT id, user_name, revoked_at FROM tokens WHERE id = ?", t, 1,
                     tok_user_row, out, err);
    if (rc == 1)
        rc = 0;
    if (!rc && !out->user)
        rc = core_err_set(err, CORE_E_AUTH, "session's token was revoked; sign in again");
    if (!rc)
        rc = principal_finish(cat, out, err);
    if (rc) {
        auth_principal_release(out);
        return rc;
    }
    if (csrf_out)
        memcpy(csrf_out, r.csrf, 65);
    return 0;
}

int auth_session_delete(struct store *st, const char *session, struct core_err *err)
{
    char hash[65];
    core_sha256_hex(session, strlen(session), hash);
    struct store_value p[] = {STORE_V_TEXT(hash)};
    return store_exec(st, "DELETE FROM sessions WHERE id_hash = ?", p, 1, NULL, err);
}
