/* Unit tests for the organization half of the catalog: idempotence, audit, rights, queries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../testutil.h"
#include "catalog/catalog.h"

struct fx {
    struct test_env env;
    struct catalog *cat;
};

static const char *const payments_teams[] = {"payments"};
static const struct catalog_actor alice = {"alice", false, payments_teams, 1};
static const char *const identity_teams[] = {"identity"};
static const struct catalog_actor bob = {"bob", false, identity_teams, 1};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct core_err err = {0};
    if (!f || test_env_open(&f->env) || !(f->cat = catalog_new(f->env.st, &err)) ||
        catalog_demo_load(f->cat, &err)) {
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

static int64_t audit_count(struct fx *f, const char *object)
{
    int64_t n = 0;
    struct store_value p[] = {STORE_V_TEXT(object)};
    store_query_int(f->env.st, "SELECT COUNT(*) FROM audit WHERE object = ?", p, 1, &n, NULL);
    return n;
}

static int apply_text(struct fx *f, const struct catalog_actor *who, const char *text,
                      enum catalog_change *ch, struct schema_diags *d, struct core_err *err)
{
    struct catalog_manifest m;
    catalog_manifest_init(&m);
    int rc = catalog_manifest_parse("svc.yaml", text, strlen(text), &m, d, err);
    if (!rc)
        rc = catalog_service_apply(f->cat, who, &m, "svc.yaml", ch, d, err);
    catalog_manifest_release(&m);
    return rc;
}

#define SVC(team, desc)                                                                            \
    "apiVersion: pave/v1\nkind: Service\nmetadata:\n  name: billing\n  team: " team               \
    "\n  description: " desc "\n"

static void demo_org_has_two_teams_three_services_three_envs(void **state)
{
    struct fx *f = *state;
    struct catalog_service_query q = {0};
    struct catalog_service_list l;
    struct core_err err = {0};
    assert_int_equal(catalog_service_list(f->cat, &q, &l, &err), 0);
    assert_int_equal(l.total, 3);
    catalog_service_list_release(&l);
    int64_t n = 0;
    store_query_int(f->env.st, "SELECT COUNT(*) FROM teams", NULL, 0, &n, &err);
    assert_int_equal(n, 2);
    store_query_int(f->env.st, "SELECT COUNT(*) FROM environments", NULL, 0, &n, &err);
    assert_int_equal(n, 3);
    /* loading it again changes nothing */
    int64_t before = 0, after = 0;
    store_query_int(f->env.st, "SELECT COUNT(*) FROM audit", NULL, 0, &before, &err);
    assert_int_equal(catalog_demo_load(f->cat, &err), 0);
    store_query_int(f->env.st, "SELECT COUNT(*) FROM audit", NULL, 0, &after, &err);
    assert_int_equal(before, after);
}

static void apply_is_idempotent_and_audited(void **state)
{
    struct fx *f = *state;
    enum catalog_change ch;
    struct schema_diags d;
    struct core_err err = {0};
    schema_diags_init(&d);
    assert_int_equal(apply_text(f, &alice, SVC("payments", "one"), &ch, &d, &err), 0);
    assert_int_equal(ch, CATALOG_CREATED);
    assert_int_equal(audit_count(f, "billing"), 1);
    assert_int_equal(apply_text(f, &alice, SVC("payments", "one"), &ch, &d, &err), 0);
    assert_int_equal(ch, CATALOG_UNCHANGED);
    assert_int_equal(audit_count(f, "billing"), 1);
    assert_int_equal(apply_text(f, &alice, SVC("payments", "two"), &ch, &d, &err), 0);
    assert_int_equal(ch, CATALOG_UPDATED);
    assert_int_equal(audit_count(f, "billing"), 2);
    struct catalog_service s;
    assert_int_equal(catalog_service_get(f->cat, "billing", &s, &err), 0);
    assert_int_equal(s.revision, 2);
    assert_string_equal(s.description, "two");
    catalog_service_release(&s);
    schema_diags_release(&d);
}

static void members_change_only_their_teams_services(void **state)
{
    struct fx *f = *state;
    enum catalog_change ch;
    struct schema_diags d;
    struct core_err err = {0};
    schema_diags_init(&d);
    assert_int_equal(apply_text(f, &bob, SVC("payments", "x"), &ch, &d, &err), CORE_E_PERM);
    assert_int_equal(audit_count(f, "billing"), 0);
    assert_int_equal(apply_text(f, &alice, SVC("payments", "x"), &ch, &d, &err), 0);
    /* bob may not move alice's service into his own team either */
    assert_int_equal(apply_text(f, &bob, SVC("identity", "x"), &ch, &d, &err), CORE_E_PERM);
    assert_int_equal(catalog_service_delete(f->cat, &bob, "billing", &err), CORE_E_PERM);
    assert_int_equal(catalog_service_delete(f->cat, &alice, "billing", &err), 0);
    assert_int_equal(catalog_service_get(f->cat, "billing", &(struct catalog_service){0}, &err),
                     CORE_E_NOTFOUND);
    enum catalog_change tch;
    assert_int_equal(catalog_team_create(f->cat, &alice, "newteam", NULL, NULL, &tch, &err),
                     CORE_E_PERM);
    schema_diags_release(&d);
}

static void unknown_team_names_position_and_hint(void **state)
{
    struct fx *f = *state;
    enum catalog_change ch;
    struct schema_diags d;
    struct core_err err = {0};
    schema_diags_init(&d);
    assert_int_equal(apply_text(f, &catalog_actor_system, SVC("paymnts", "x"), &ch, &d, &err),
                     CORE_E_INVAL);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.items[0].line, 5);
    assert_string_equal(d.items[0].message, "unknown team 'paymnts'");
    assert_string_equal(d.items[0].hint, "did you mean 'payments'?");
    schema_diags_release(&d);
}

static void list_pages_filters_and_searches_literally(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct catalog_service_list l;
    struct catalog_service_query q = {.limit = 2};
    assert_int_equal(catalog_service_list(f->cat, &q, &l, &err), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.total, 3);
    assert_string_equal(l.items[0].name, "auth-service");
    catalog_service_list_release(&l);
    q = (struct catalog_service_query){.limit = 2, .offset = 2};
    assert_int_equal(catalog_service_list(f->cat, &q, &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].name, "payments-api");
    catalog_service_list_release(&l);
    q = (struct catalog_service_query){.after = "auth-service", .limit = 1};
    assert_int_equal(catalog_service_list(f->cat, &q, &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].name, "ledger");
    catalog_service_list_release(&l);
    q = (struct catalog_service_query){.team = "identity"};
    assert_int_equal(catalog_service_list(f->cat, &q, &l, &err), 0);
    assert_int_equal(l.total, 1);
    catalog_service_list_release(&l);
    q = (struct catalog_service_query){.search = "ledger"};
    assert_int_equal(catalog_service_list(f->cat, &q, &l, &err), 0);
    assert_int_equal(l.total, 1);
    catalog_service_list_release(&l);
    q = (struct catalog_service_query){.search = "%"};
    assert_int_equal(catalog_service_list(f->cat, &q, &l, &err), 0);
    assert_int_equal(l.total, 0);
    catalog_service_list_release(&l);
    q = (struct catalog_service_query){.search = "' OR 1=1 --"};
    assert_int_equal(catalog_service_list(f->cat, &q, &l, &err), 0);
    assert_int_equal(l.total, 0);
    catalog_service_list_release(&l);
}

static void team_with_services_cannot_be_deleted(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    assert_int_equal(catalog_team_delete(f->cat, &catalog_actor_system, "payments", &err),
                     CORE_E_CONFLICT);
    enum catalog_change ch;
    assert_int_equal(catalog_team_create(f->cat, &catalog_actor_system, "empty", "Empty", NULL,
                                         &ch, &err),
                     0);
    assert_int_equal(ch, CATALOG_CREATED);
    assert_int_equal(catalog_team_create(f->cat, &catalog_actor_system, "empty", "Empty", NULL,
                                         &ch, &err),
                     0);
    assert_int_equal(ch, CATALOG_UNCHANGED);
    assert_int_equal(catalog_team_delete(f->cat, &catalog_actor_system, "empty", &err), 0);
    assert_int_equal(catalog_team_create(f->cat, &catalog_actor_system, "../x", NULL, NULL, &ch,
                                         &err),
                     CORE_E_INVAL);
}

static void users_carry_their_teams(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct catalog_user u;
    assert_int_equal(catalog_user_get(f->cat, "alice", &u, &err), 0);
    assert_int_equal(u.nteams, 1);
    assert_string_equal(u.teams[0], "payments");
    assert_false(u.is_admin);
    catalog_user_release(&u);
    enum catalog_change ch;
    assert_int_equal(catalog_member_add(f->cat, &catalog_actor_system, "identity", "alice", &ch,
                                        &err),
                     0);
    assert_int_equal(catalog_user_get(f->cat, "alice", &u, &err), 0);
    assert_int_equal(u.nteams, 2);
    catalog_user_release(&u);
    assert_int_equal(catalog_member_add(f->cat, &catalog_actor_system, "nope", "alice", &ch,
                                        &err),
                     CORE_E_NOTFOUND);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(demo_org_has_two_teams_three_services_three_envs),
        T(apply_is_idempotent_and_audited),
        T(members_change_only_their_teams_services),
        T(unknown_team_names_position_and_hint),
        T(list_pages_filters_and_searches_literally),
        T(team_with_services_cannot_be_deleted),
        T(users_carry_their_teams),
    };
    return cmocka_run_group_tests_name("catalog", tests, NULL, NULL);
}
