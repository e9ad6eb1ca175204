/* Unit tests for the store: migrations, transactions, errors, the audit log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "../testutil.h"

static int setup(void **state)
{
    struct test_env *e = calloc(1, sizeof(*e));
    if (!e || test_env_open(e))
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    test_env_close(*state);
    free(*state);
    return 0;
}

static void open_migrates_to_latest_schema(void **state)
{
    struct test_env *e = *state;
    assert_int_equal(store_schema_version(e->st), store_schema_latest());
    assert_string_equal(store_backend_name(e->st), "sqlite");
}

static void reopen_keeps_data(void **state)
{
    struct test_env *e = *state;
    struct core_err err = {0};
    struct store_value p[] = {STORE_V_TEXT("t1"), STORE_V_TEXT("now"), STORE_V_TEXT("now")};
    assert_int_equal(store_exec(e->st,
                                "INSERT INTO teams (name, created_at, updated_at) VALUES (?, ?, ?)",
                                p, 3, NULL, &err),
                     0);
    store_close(e->st);
    assert_int_equal(store_open(&e->st, e->db, &err), 0);
    int64_t n = 0;
    assert_int_equal(store_query_int(e->st, "SELECT COUNT(*) FROM teams", NULL, 0, &n, &err), 0);
    assert_int_equal(n, 1);
}

static void newer_schema_is_refused(void **state)
{
    struct test_env *e = *state;
    struct core_err err = {0};
    assert_int_equal(store_exec(e->st, "PRAGMA user_version = 99", NULL, 0, NULL, &err), 0);
    store_close(e->st);
    e->st = NULL;
    assert_int_equal(store_open(&e->st, e->db, &err), CORE_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "upgrade pave"));
    /* put it back so teardown can close something */
    char path[300];
    snprintf(path, sizeof(path), "%s/other.db", e->dir);
    assert_int_equal(store_open(&e->st, path, &err), 0);
}

static void unknown_scheme_is_refused(void **state)
{
    struct store *st = NULL;
    struct core_err err = {0};
    assert_int_equal(store_open(&st, "mysql://x", &err), CORE_E_UNSUPPORTED);
    assert_null(st);
}

static void constraint_violation_is_conflict(void **state)
{
    struct test_env *e = *state;
    struct core_err err = {0};
    struct store_value p[] = {STORE_V_TEXT("t1"), STORE_V_TEXT("now"), STORE_V_TEXT("now")};
    const char *sql = "INSERT INTO teams (name, created_at, updated_at) VALUES (?, ?, ?)";
    assert_int_equal(store_exec(e->st, sql, p, 3, NULL, &err), 0);
    assert_int_equal(store_exec(e->st, sql, p, 3, NULL, &err), CORE_E_CONFLICT);
}

static void nested_rollback_undoes_only_inner_work(void **state)
{
    struct test_env *e = *state;
    struct core_err err = {0};
    const char *sql = "INSERT INTO teams (name, created_at, updated_at) VALUES (?, 'n', 'n')";
    struct store_value a[] = {STORE_V_TEXT("outer")}, b[] = {STORE_V_TEXT("inner")};
    assert_int_equal(store_txn_begin(e->st, &err), 0);
    assert_int_equal(store_exec(e->st, sql, a, 1, NULL, &err), 0);
    assert_int_equal(store_txn_begin(e->st, &err), 0);
    assert_int_equal(store_exec(e->st, sql, b, 1, NULL, &err), 0);
    store_txn_rollback(e->st);
    assert_int_equal(store_txn_commit(e->st, &err), 0);
    int64_t n = 0;
    store_query_int(e->st, "SELECT COUNT(*) FROM teams", NULL, 0, &n, &err);
    assert_int_equal(n, 1);
    store_query_int(e->st, "SELECT COUNT(*) FROM teams WHERE name = 'inner'", NULL, 0, &n, &err);
    assert_int_equal(n, 0);
}

static void sql_metacharacters_are_plain_data(void **state)
{
    struct test_env *e = *state;
    struct core_err err = {0};
    const char *evil = "x'); DROP TABLE teams; --";
    struct store_value p[] = {STORE_V_TEXT(evil)};
    assert_int_equal(store_exec(e->st,
                                "INSERT INTO teams (name, created_at, updated_at) VALUES (?, 'n', "
                                "'n')",
                                p, 1, NULL, &err),
                     0);
    int64_t n = 0;
    assert_int_equal(
        store_query_int(e->st, "SELECT COUNT(*) FROM teams WHERE name = ?", p, 1, &n, &err), 0);
    assert_int_equal(n, 1);
}

static int collect(void *arg, const struct store_audit_event *ev)
{
    int *n = arg;
    (*n)++;
    return 0;
}

static void audit_is_append_only_and_filtered(void **state)
{
    struct test_env *e = *state;
    struct core_err err = {0};
    struct store_audit_event ev = {.actor = "alice", .action = "service.create",
                                   .kind = "service", .object = "a", .after = "d1"};
    assert_int_equal(store_audit_append(e->st, &ev, &err), 0);
    ev.object = "b";
    assert_int_equal(store_audit_append(e->st, &ev, &err), 0);
    assert_int_not_equal(store_exec(e->st, "UPDATE audit SET actor = 'mallory'", NULL, 0, NULL,
                                    &err),
                         0);
    assert_non_null(strstr(err.msg, "append-only"));
    assert_int_not_equal(store_exec(e->st, "DELETE FROM audit", NULL, 0, NULL, &err), 0);
    int n = 0;
    struct store_audit_filter f = {.kind = "service", .object = "a", .limit = 10};
    assert_int_equal(store_audit_list(e->st, &f, collect, &n, &err), 0);
    assert_int_equal(n, 1);
    n = 0;
    struct store_audit_filter all = {.limit = 10};
    assert_int_equal(store_audit_list(e->st, &all, collect, &n, &err), 0);
    assert_int_equal(n, 2);
}

struct count_arg {
    struct store *st;
    int64_t n;
    int rc;
};

static void *count_teams(void *p)
{
    struct count_arg *a = p;
    a->rc = store_query_int(a->st, "SELECT COUNT(*) FROM teams", NULL, 0, &a->n, NULL);
    return NULL;
}

static void readers_see_committed_state_while_a_txn_is_open(void **state)
{
    struct test_env *e = *state;
    struct core_err err = {0};
    struct store_value p[] = {STORE_V_TEXT("pending")};
    assert_int_equal(store_txn_begin(e->st, &err), 0);
    assert_int_equal(store_exec(e->st,
                                "INSERT INTO teams (name, created_at, updated_at) VALUES (?, 'n', "
                                "'n')",
                                p, 1, NULL, &err),
                     0);
    /* this thread sees its own write */
    int64_t mine = 0;
    assert_int_equal(store_query_int(e->st, "SELECT COUNT(*) FROM teams", NULL, 0, &mine, &err),
                     0);
    assert_int_equal(mine, 1);
    /* another thread neither blocks nor sees it */
    struct count_arg a = {e->st, -1, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, count_teams, &a), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.n, 0);
    assert_int_equal(store_txn_commit(e->st, &err), 0);
    assert_int_equal(pthread_create(&t, NULL, count_teams, &a), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(open_migrates_to_latest_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(newer_schema_is_refused, setup, teardown),
        cmocka_unit_test(unknown_scheme_is_refused),
        cmocka_unit_test_setup_teardown(constraint_violation_is_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(nested_rollback_undoes_only_inner_work, setup, teardown),
        cmocka_unit_test_setup_teardown(sql_metacharacters_are_plain_data, setup, teardown),
        cmocka_unit_test_setup_teardown(audit_is_append_only_and_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(readers_see_committed_state_while_a_txn_is_open, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
