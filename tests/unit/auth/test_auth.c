/* Unit tests for tokens and sessions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../testutil.h"
#include "auth/auth.h"

struct fx {
    struct test_env env;
    struct catalog *cat;
    char admin_token[AUTH_TOKEN_LEN + 1];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct core_err err = {0};
    bool created = false;
    if (!f || test_env_open(&f->env) || !(f->cat = catalog_new(f->env.st, &err)) ||
        catalog_demo_load(f->cat, &err) ||
        auth_bootstrap(f->env.st, f->cat, f->admin_token, &created, &err) || !created) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    catalog_free(f->cat);
    test_env_close(&f->env);
    free(f);
    return 0;
}

static void bootstrap_happens_once_and_stores_only_a_hash(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    char again[AUTH_TOKEN_LEN + 1] = "";
    bool created = true;
    assert_int_equal(auth_bootstrap(f->env.st, f->cat, again, &created, &err), 0);
    assert_false(created);
    int64_t n = 0;
    struct store_value p[] = {STORE_V_TEXT(f->admin_token)};
    store_query_int(f->env.st, "SELECT COUNT(*) FROM tokens WHERE hash = ? OR id = ?", p, 1, &n,
                    &err);
    assert_int_equal(n, 0);
    struct auth_principal who;
    assert_int_equal(auth_token_verify(f->env.st, f->cat, f->admin_token, &who, &err), 0);
    assert_string_equal(who.user, "admin");
    assert_true(who.actor.is_admin);
    auth_principal_release(&who);
}

static void garbage_and_revoked_tokens_are_refused(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct auth_principal who;
    assert_int_equal(auth_token_verify(f->env.st, f->cat, "pave_nope", &who, &err), CORE_E_AUTH);
    assert_int_equal(auth_token_verify(f->env.st, f->cat,
                                       "pave_0000000000000000000000000000000000000000", &who,
                                       &err),
                     CORE_E_AUTH);
    char tok[AUTH_TOKEN_LEN + 1], id[17];
    assert_int_equal(auth_token_create(f->env.st, &catalog_actor_system, "alice", "laptop", 0,
                                       tok, id, &err),
                     0);
    assert_int_equal(auth_token_verify(f->env.st, f->cat, tok, &who, &err), 0);
    assert_string_equal(who.user, "alice");
    assert_int_equal(who.nteams, 1);
    assert_false(who.actor.is_admin);
    /* bob may not revoke alice's token; alice may */
    static const char *const idt[] = {"identity"};
    struct catalog_actor bob = {"bob", false, idt, 1};
    assert_int_equal(auth_token_revoke(f->env.st, &bob, id, &err), CORE_E_NOTFOUND);
    assert_int_equal(auth_token_revoke(f->env.st, &who.actor, id, &err), 0);
    auth_principal_release(&who);
    assert_int_equal(auth_token_verify(f->env.st, f->cat, tok, &who, &err), CORE_E_AUTH);
    assert_non_null(strstr(err.msg, "revoked"));
}

static void members_create_tokens_only_for_themselves(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    static const char *const pt[] = {"payments"};
    struct catalog_actor alice = {"alice", false, pt, 1};
    char tok[AUTH_TOKEN_LEN + 1], id[17];
    assert_int_equal(auth_token_create(f->env.st, &alice, "bob", "x", 0, tok, id, &err),
                     CORE_E_PERM);
    assert_int_equal(auth_token_create(f->env.st, &alice, "alice", "x", 0, tok, id, &err), 0);
    assert_int_equal(auth_token_create(f->env.st, &catalog_actor_system, "ghost", "x", 0, tok, id,
                                       &err),
                     CORE_E_NOTFOUND);
}

static void expired_tokens_are_refused(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    char tok[AUTH_TOKEN_LEN + 1], id[17];
    assert_int_equal(auth_token_create(f->env.st, &catalog_actor_system, "bob", "short", 3600000,
                                       tok, id, &err),
                     0);
    struct store_value p[] = {STORE_V_TEXT(id)};
    assert_int_equal(store_exec(f->env.st,
                                "UPDATE tokens SET expires_at = '2000-01-01T00:00:00.000Z' WHERE "
                                "id = ?",
                                p, 1, NULL, &err),
                     0);
    struct auth_principal who;
    assert_int_equal(auth_token_verify(f->env.st, f->cat, tok, &who, &err), CORE_E_AUTH);
    assert_non_null(strstr(err.msg, "expired"));
}

static void sessions_follow_their_token(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct auth_principal who;
    assert_int_equal(auth_token_verify(f->env.st, f->cat, f->admin_token, &who, &err), 0);
    char sess[65], csrf[65], csrf2[65];
    assert_int_equal(auth_session_create(f->env.st, who.token_id, sess, csrf, &err), 0);
    struct auth_principal via;
    assert_int_equal(auth_session_verify(f->env.st, f->cat, sess, &via, csrf2, &err), 0);
    assert_string_equal(via.user, "admin");
    assert_string_equal(csrf, csrf2);
    auth_principal_release(&via);
    assert_int_equal(auth_session_verify(f->env.st, f->cat,
                                         "0000000000000000000000000000000000000000000000000000000"
                                         "000000000",
                                         &via, NULL, &err),
                     CORE_E_AUTH);
    assert_int_equal(auth_token_revoke(f->env.st, &who.actor, who.token_id, &err), 0);
    assert_int_equal(auth_session_verify(f->env.st, f->cat, sess, &via, NULL, &err), CORE_E_AUTH);
    auth_principal_release(&who);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(bootstrap_happens_once_and_stores_only_a_hash),
        T(garbage_and_revoked_tokens_are_refused),
        T(members_create_tokens_only_for_themselves),
        T(expired_tokens_are_refused),
        T(sessions_follow_their_token),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
