/*
 * auth: who is calling. API tokens, portal sessions and the principal they resolve to.
 *
 * A token is "pave_" followed by 40 random hex characters. It is shown once, when created; the
 * store keeps only its SHA-256 (tokens are high-entropy, so a plain digest is enough) plus an id
 * ("tok_" + 12 hex) that names it in listings and revocation. A token belongs to a user; the
 * user's admin flag and team memberships (from the catalog) decide what the token may do.
 * Portal sessions are random cookies whose SHA-256 is stored with a CSRF token and an expiry;
 * a session dies with its token.
 *
 * The first start creates user "admin" (is_admin) and a bootstrap token; auth_bootstrap() hands
 * it to the caller once. Ownership: `struct auth_principal` owns its strings; release it with
 * auth_principal_release(). Thread safe through the store.
 */
#ifndef PAVE_AUTH_H
#define PAVE_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "core/core.h"

struct store;

#define AUTH_TOKEN_LEN 45 /* "pave_" + 40 hex */
#define AUTH_SESSION_TTL_MS (12LL * 3600 * 1000)

struct auth_principal {
    char *user;
    char *token_id;
    bool is_admin;
    char **teams; /* NULL-terminated */
    size_t nteams;
    struct catalog_actor actor; /* view over the fields above */
};
void auth_principal_release(struct auth_principal *p);

/* If no admin user exists yet, creates "admin" and a token named "bootstrap" and copies the
 * plaintext token to token_out (AUTH_TOKEN_LEN+1 bytes); *created tells whether it happened. */
int auth_bootstrap(struct store *st, struct catalog *cat, char *token_out, bool *created,
                   struct core_err *err);

/* Creates a token for `user` (who must exist). Only admins may create tokens for other users.
 * token_out receives the plaintext (shown once), id_out the id (17 bytes). */
int auth_token_create(struct store *st, const struct catalog_actor *actor, const char *user,
                      const char *name, int64_t ttl_ms, char *token_out, char *id_out,
                      struct core_err *err);
/* Resolves a plaintext token to a principal. CORE_E_AUTH if unknown, revoked or expired. */
int auth_token_verify(struct store *st, struct catalog *cat, const char *token,
                      struct auth_principal *out, struct core_err *err);
/* Revokes a token by id. Users may revoke their own tokens; admins any. */
int auth_token_revoke(struct store *st, const struct catalog_actor *actor, const char *id,
                      struct core_err *err);

struct auth_token_info {
    const char *id;
    const char *name;
    const char *user;
    const char *created_at;
    const char *last_used_at;
    const char *expires_at;
    const char *revoked_at;
};
typedef int (*auth_token_fn)(void *arg, const struct auth_token_info *t);
/* Lists tokens: all for admins, the actor's own otherwise. Never returns hashes. */
int auth_token_list(struct store *st, const struct catalog_actor *actor, auth_token_fn fn,
                    void *arg, struct core_err *err);

/* Portal sessions. session_out (65 bytes) is the cookie value, csrf_out (65 bytes). */
int auth_session_create(struct store *st, const char *token_id, char *session_out,
                        char *csrf_out, struct core_err *err);
/* Resolves a session cookie; csrf_out (65 bytes) receives the session's CSRF token. */
int auth_session_verify(struct store *st, struct catalog *cat, const char *session,
                        struct auth_principal *out, char *csrf_out, struct core_err *err);
int auth_session_delete(struct store *st, const char *session, struct core_err *err);

#endif
