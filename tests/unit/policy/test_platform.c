/* Unit tests for the platform side of policy (policy_store.c): versioned apply that is never
 * half-applied, exceptions and their rules, gate decisions with audit, scans, reports and CSV. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../testutil.h"
#include "catalog/catalog.h"
#include "policy/policy.h"

struct fx {
    struct test_env env;
    struct catalog *cat;
    struct policy_engine *pe;
};

static const char *const payments_teams[] = {"payments"};
static const struct catalog_actor alice = {"alice", false, payments_teams, 1};
static const char *const identity_teams[] = {"identity"};
static const struct catalog_actor bob = {"bob", false, identity_teams, 1};
static const struct catalog_actor admin = {"admin", true, NULL, 0};
static const struct catalog_actor admin2 = {"root", true, NULL, 0};

/* Two policies in one file; the owner rule's message mentions a comma via its remediation. */
static const char two_policies[] =
    "# leading comment\n"
    "---\n"
    "apiVersion: pave/v1\n"
    "kind: Policy\n"
    "metadata: { name: owners }\n"
    "rules:\n"
    "  - id: owner-tag\n"
    "    kind: required-tags\n"
    "    description: owner\n"
    "    severity: high\n"
    "    mode: enforce\n"
    "    rationale: paging\n"
    "    remediation: \"add tag owner, e.g. \\\"payments\\\"\"\n"
    "    tags: { owner: { required: true } }\n"
    "---\n"
    "apiVersion: pave/v1\n"
    "kind: Policy\n"
    "metadata: { name: costs }\n"
    "rules:\n"
    "  - id: cost-tag\n"
    "    kind: required-tags\n"
    "    description: cost center\n"
    "    severity: low\n"
    "    mode: warn\n"
    "    rationale: finance\n"
    "    remediation: add tag cost-center\n"
    "    tags: { cost-center: { required: true } }\n";

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct core_err err = {0};
    if (!f || test_env_open(&f->env) || !(f->cat = catalog_new(f->env.st, &err)) ||
        catalog_demo_load(f->cat, &err) || !(f->pe = policy_engine_open(f->env.st, f->cat, &err))) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    policy_engine_free(f->pe);
    catalog_free(f->cat);
    test_env_close(&f->env);
    free(f);
    return 0;
}

static int apply(struct fx *f, const struct catalog_actor *who, const char *text, json_t **res,
                 struct core_err *err)
{
    struct policy_doc d = {"p.yaml", text, strlen(text)};
    return policy_apply(f->pe, who, &d, 1, res, err);
}

static int64_t count(struct fx *f, const char *sql)
{
    int64_t n = -1;
    store_query_int(f->env.st, sql, NULL, 0, &n, NULL);
    return n;
}

/* Checks a manifest-like doc for `name` through the check gate; returns the rule's outcome. */
static enum policy_outcome check(struct fx *f, const char *name, const char *rule, bool *blocked)
{
    json_t *doc = json_pack("{s:{s:s,s:s,s:i,s:{s:s}}}", "metadata", "name", name, "team",
                            "payments", "tier", 1, "tags", "cost-center", "cc-1");
    struct policy_input in = {.subject = POLICY_SUBJECT_SERVICE, .gate = POLICY_GATE_CHECK,
                              .name = name, .team = "payments", .tier = 1, .doc = doc};
    struct policy_results r;
    struct core_err err = {0};
    assert_int_equal(policy_gate_check(f->pe, &in, &r, &err), 0);
    enum policy_outcome o = 0;
    for (size_t i = 0; i < r.n; i++)
        if (!strcmp(r.v[i].rule, rule))
            o = r.v[i].outcome;
    if (blocked)
        *blocked = r.blocked;
    assert_true(r.decision_id > 0);
    policy_results_free(&r);
    json_decref(doc);
    return o;
}

static void test_apply_splits_versions_and_is_idempotent(void **state)
{
    struct fx *f = *state;
    json_t *res = NULL;
    struct core_err err = {0};
    assert_int_equal(apply(f, &admin, two_policies, &res, &err), 0);
    assert_int_equal(json_array_size(json_object_get(res, "applied")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(res, "applied"), 0), "change")),
                        "created");
    json_decref(res);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM policies"), 2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM audit WHERE action = 'policy.apply'"), 2);
    /* the same text again: nothing is written */
    assert_int_equal(apply(f, &admin, two_policies, &res, &err), 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(res, "applied"), 1), "change")),
                        "unchanged");
    json_decref(res);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM policies"), 2);
    json_t *list = policy_list(f->pe, &err);
    assert_int_equal(json_integer_value(json_object_get(list, "rules")), 2);
    json_decref(list);
}

static void test_apply_is_admin_only_and_never_half_applied(void **state)
{
    struct fx *f = *state;
    json_t *res = NULL;
    struct core_err err = {0};
    assert_int_equal(apply(f, &alice, two_policies, &res, &err), CORE_E_PERM);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM policies"), 0);
    assert_int_equal(apply(f, &admin, two_policies, NULL, &err), 0);
    /* a good new version of costs with a broken owners: neither changes */
    const char *bad = "apiVersion: pave/v1\nkind: Policy\nmetadata: { name: costs }\nrules: []\n"
                      "---\napiVersion: pave/v1\nkind: Policy\nmetadata: { name: owners }\n"
                      "rules:\n  - id: owner-tag\n    kind: no-such-kind\n";
    assert_int_equal(apply(f, &admin, bad, &res, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "p.yaml:"));
    assert_true(json_array_size(json_object_get(res, "problems")) >= 1);
    json_decref(res);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM policies"), 2);
    bool blocked = false;
    assert_int_equal(check(f, "ledger", "owner-tag", &blocked), POLICY_FAIL);
    assert_true(blocked);
}

static void test_delete_keeps_history_and_stops_the_rule(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    assert_int_equal(apply(f, &admin, two_policies, NULL, &err), 0);
    assert_int_equal(policy_delete(f->pe, &bob, "owners", &err), CORE_E_PERM);
    assert_int_equal(policy_delete(f->pe, &admin, "owners", &err), 0);
    assert_int_equal(policy_delete(f->pe, &admin, "owners", &err), CORE_E_NOTFOUND);
    assert_null(policy_show(f->pe, "owners", &err));
    bool blocked = true;
    assert_int_equal(check(f, "ledger", "owner-tag", &blocked), 0);
    assert_false(blocked);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM policies WHERE name = 'owners'"), 2);
}

static void test_gate_check_records_decision_and_audits_blocks(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    assert_int_equal(apply(f, &admin, two_policies, NULL, &err), 0);
    bool blocked = false;
    assert_int_equal(check(f, "ledger", "owner-tag", &blocked), POLICY_FAIL);
    assert_true(blocked);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM policy_decisions WHERE blocked = 1"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM audit WHERE action = 'policy.block' AND "
                              "object = 'ledger' AND detail LIKE '%owner-tag%'"),
                     1);
    json_t *d = policy_decision_list(f->pe, "ledger", 10, 0, &err);
    assert_int_equal(json_array_size(json_object_get(d, "items")), 1);
    json_decref(d);
}

static void test_exception_rules(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    int64_t now = core_now_ms(), id = 0, own = 0;
    assert_int_equal(apply(f, &admin, two_policies, NULL, &err), 0);
    /* bob is not in payments; unknown rule; too long; in the past */
    assert_int_equal(policy_exception_request(f->pe, &bob, "ledger", "owner-tag", "x",
                                              now + 60000, &id, &err),
                     CORE_E_PERM);
    assert_int_equal(policy_exception_request(f->pe, &alice, "ledger", "nope", "x", now + 60000,
                                              &id, &err),
                     CORE_E_NOTFOUND);
    assert_int_equal(policy_exception_request(f->pe, &alice, "ledger", "owner-tag", "x",
                                              now + 400LL * 86400000, &id, &err),
                     CORE_E_INVAL);
    assert_int_equal(policy_exception_request(f->pe, &alice, "ledger", "owner-tag", "x",
                                              now - 1, &id, &err),
                     CORE_E_INVAL);
    assert_int_equal(policy_exception_request(f->pe, &alice, "ledger", "owner-tag", "PAY-1",
                                              now + 86400000, &id, &err),
                     0);
    /* not approved: still failing; the requester and non-admins cannot approve */
    assert_int_equal(check(f, "ledger", "owner-tag", NULL), POLICY_FAIL);
    assert_int_equal(policy_exception_decide(f->pe, &alice, id, "approve", NULL, &err),
                     CORE_E_PERM);
    assert_int_equal(policy_exception_request(f->pe, &admin, "ledger", "cost-tag", "own",
                                              now + 86400000, &own, &err),
                     0);
    assert_int_equal(policy_exception_decide(f->pe, &admin, own, "approve", NULL, &err),
                     CORE_E_PERM);
    assert_non_null(strstr(err.msg, "another admin"));
    assert_int_equal(policy_exception_decide(f->pe, &admin2, own, "reject", "no", &err), 0);
    assert_int_equal(policy_exception_decide(f->pe, &admin, id, "approve", "ok", &err), 0);
    assert_int_equal(policy_exception_decide(f->pe, &admin2, id, "approve", "ok", &err),
                     CORE_E_CONFLICT);
    bool blocked = true;
    assert_int_equal(check(f, "ledger", "owner-tag", &blocked), POLICY_EXCEPTED);
    assert_false(blocked);
    /* other subjects are not covered */
    assert_int_equal(check(f, "payments-api", "owner-tag", NULL), POLICY_FAIL);
    json_t *l = policy_exception_list(f->pe, "active", NULL, &err);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
    /* the requester revokes: failing again */
    assert_int_equal(policy_exception_decide(f->pe, &alice, id, "revoke", NULL, &err), 0);
    assert_int_equal(check(f, "ledger", "owner-tag", NULL), POLICY_FAIL);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM audit WHERE action LIKE 'exception.%'"), 5);
}

static void test_expired_exception_stops_applying(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    int64_t id = 0;
    assert_int_equal(apply(f, &admin, two_policies, NULL, &err), 0);
    assert_int_equal(policy_exception_request(f->pe, &alice, "ledger", "owner-tag", "short",
                                              core_now_ms() + 300, &id, &err),
                     0);
    assert_int_equal(policy_exception_decide(f->pe, &admin, id, "approve", NULL, &err), 0);
    assert_int_equal(check(f, "ledger", "owner-tag", NULL), POLICY_EXCEPTED);
    usleep(400 * 1000);
    assert_int_equal(check(f, "ledger", "owner-tag", NULL), POLICY_FAIL);
    json_t *l = policy_exception_list(f->pe, "expired", "ledger", &err);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
}

static void test_scan_report_and_csv(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    int64_t scan = 0;
    json_t *rep = policy_report(f->pe, "team", NULL, NULL, &err);
    assert_true(json_is_null(json_object_get(rep, "scan")));
    json_decref(rep);
    assert_int_equal(apply(f, &admin, two_policies, NULL, &err), 0);
    assert_int_equal(policy_scan(f->pe, &scan, &err), 0);
    assert_int_equal(policy_scan(f->pe, &scan, &err), 0);
    /* 3 demo services x 2 rules */
    rep = policy_report(f->pe, "rule", NULL, NULL, &err);
    assert_non_null(rep);
    json_t *tot = json_object_get(rep, "totals");
    assert_int_equal(json_integer_value(json_object_get(tot, "total")), 6);
    assert_int_equal(json_integer_value(json_object_get(tot, "fail")), 3);
    assert_int_equal(json_array_size(json_object_get(rep, "groups")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(rep, "groups"), 0),
                                          "key")),
        "cost-tag");
    assert_int_equal(json_array_size(json_object_get(rep, "trend")), 2);
    json_decref(rep);
    rep = policy_report(f->pe, "service", "identity", NULL, &err);
    assert_int_equal(json_array_size(json_object_get(rep, "groups")), 1);
    json_decref(rep);
    assert_null(policy_report(f->pe, "colour", NULL, NULL, &err));
    assert_int_equal(err.code, CORE_E_INVAL);

    struct core_buf csv;
    core_buf_init(&csv, 0);
    assert_int_equal(policy_report_csv(f->pe, NULL, "ledger", &csv, &err), 0);
    assert_true(strncmp(csv.data, "scan,time,team,service,rule,severity,mode,outcome,message\r\n",
                        59) == 0);
    assert_non_null(strstr(csv.data, ",payments,ledger,owner-tag,high,enforce,fail,"));
    assert_null(strstr(csv.data, "auth-service"));
    core_buf_release(&csv);
}

static void test_csv_quotes_fields(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    /* a row whose message holds a comma, quotes and a newline */
    assert_int_equal(store_exec(f->env.st, "INSERT INTO policy_scans (ts) VALUES ('t')", NULL, 0,
                                NULL, &err),
                     0);
    struct store_value p[] = {STORE_V_TEXT("a \"quoted\", value\nnext")};
    assert_int_equal(store_exec(f->env.st,
                                "INSERT INTO policy_scan_rows (scan_id, team, service, rule, "
                                "severity, mode, outcome, message) VALUES (1, 't', 's', 'r', "
                                "'low', 'warn', 'fail', ?)",
                                p, 1, NULL, &err),
                     0);
    struct core_buf csv;
    core_buf_init(&csv, 0);
    assert_int_equal(policy_report_csv(f->pe, NULL, NULL, &csv, &err), 0);
    assert_non_null(strstr(csv.data, "1,t,t,s,r,low,warn,fail,\"a \"\"quoted\"\", value\nnext\"\r\n"));
    core_buf_release(&csv);
    /* a formula is defused */
    assert_int_equal(store_exec(f->env.st, "UPDATE policy_scan_rows SET message = '=1+2'", NULL,
                                0, NULL, &err),
                     0);
    core_buf_init(&csv, 0);
    assert_int_equal(policy_report_csv(f->pe, NULL, NULL, &csv, &err), 0);
    assert_non_null(strstr(csv.data, ",fail,\"'=1+2\"\r\n"));
    core_buf_release(&csv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_apply_splits_versions_and_is_idempotent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_is_admin_only_and_never_half_applied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete_keeps_history_and_stops_the_rule, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gate_check_records_decision_and_audits_blocks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_exception_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_exception_stops_applying, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_report_and_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_quotes_fields, setup, teardown),
    };
    return cmocka_run_group_tests_name("policy platform", tests, NULL, NULL);
}
