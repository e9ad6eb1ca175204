/* Unit tests for cost analysis (src/cloud/analysis.c): splitting shared spend
 * exactly to the nano-unit, split rules in the team report, commitment
 * coverage and utilization on hand-made charges (FOCUS and AWS CUR), the
 * purchase recommendation on a steady series, budget forecast and a single
 * alert per period, and anomaly detection naming what moved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>

#include "../testutil.h"
#include "cloud/cloud.h"

#define N 1000000000LL

static void import_text(struct test_env *e, const char *name, const char *text)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", e->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    struct cloud_import_stats stats = {0};
    struct core_err err = {0};
    int rc = cloud_billing_import(e->st, path, NULL, &stats, &err);
    if (rc)
        fprintf(stderr, "import: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(stats.malformed, 0);
    cloud_import_stats_release(&stats);
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(null)";
}

static json_t *item_named(json_t *obj, const char *key, const char *value)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(obj, "items"), i, it)
    {
        if (strcmp(str(it, key), value) == 0)
            return it;
    }
    return NULL;
}

static void test_split_amount_exact(void **state)
{
    (void)state;
    int64_t out[3];
    /* even: 100 nano-units over 3; the one left over goes to the first share */
    assert_int_equal(cloud_split_amount(100, NULL, 3, out), 0);
    assert_int_equal(out[0], 34);
    assert_int_equal(out[1], 33);
    assert_int_equal(out[2], 33);
    /* proportional 1:2: remainders 2/3 and 1/3, the larger gets the unit */
    int64_t w[2] = {1, 2};
    assert_int_equal(cloud_split_amount(N + 1, w, 2, out), 0);
    assert_int_equal(out[0], 333333334);
    assert_int_equal(out[1], 666666667);
    assert_int_equal(out[0] + out[1], N + 1);
    /* fixed weights that do not divide, and a credit (negative amount) */
    int64_t fw[3] = {3, 3, 1};
    int64_t amount = -10 * N - 1;
    assert_int_equal(cloud_split_amount(amount, fw, 3, out), 0);
    assert_int_equal(out[0] + out[1] + out[2], amount);
    assert_true(out[0] <= out[2] && out[1] <= out[2]);
    /* all-zero weights fall back to even; negative weights are refused */
    int64_t zw[2] = {0, 0}, nw[2] = {1, -1};
    assert_int_equal(cloud_split_amount(7, zw, 2, out), 0);
    assert_int_equal(out[0] + out[1], 7);
    assert_int_equal(cloud_split_amount(7, nw, 2, out), CORE_E_INVAL);
    assert_int_equal(cloud_split_amount(7, NULL, 0, out), CORE_E_INVAL);
    /* many shares: still exact */
    int64_t big[7], bw[7] = {5, 1, 1, 1, 1, 1, 13};
    assert_int_equal(cloud_split_amount(123456789012345LL, bw, 7, big), 0);
    int64_t sum = 0;
    for (int i = 0; i < 7; i++)
        sum += big[i];
    assert_int_equal(sum, 123456789012345LL);
}

static void test_split_rule_check(void **state)
{
    (void)state;
    char *js = NULL, name[64];
    struct core_err err = {0};
    const char *ok = "name: shared\nmatch: {team: [shared, platform]}\nmethod: even\n"
                     "teams: [payments, search]\n";
    assert_int_equal(cloud_split_rule_check(ok, strlen(ok), &js, name, &err), 0);
    assert_string_equal(name, "shared");
    assert_non_null(strstr(js, "\"method\":\"even\""));
    free(js);
    /* the canonical form of a fixed rule checks again as the same rule (a
     * fuzz finding: it used to carry a teams list the check refuses) */
    const char *fixed = "name: f\nmatch: {team: shared}\nmethod: fixed\n"
                        "weights: {payments: 3, search: 1, identity: 0}\n";
    char *js2 = NULL, name2[64];
    assert_int_equal(cloud_split_rule_check(fixed, strlen(fixed), &js, name, &err), 0);
    assert_int_equal(cloud_split_rule_check(js, strlen(js), &js2, name2, &err), 0);
    assert_string_equal(js, js2);
    free(js);
    free(js2);
    const char *bad = "name: x\nmatch: {team: shared}\nmethod: fixed\nweights: {a: -1}\n";
    assert_int_equal(cloud_split_rule_check(bad, strlen(bad), &js, name, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "split rule:4:"));
    const char *unk = "name: x\nmatch: {tem: shared}\nmethod: even\nteams: [a]\n";
    assert_int_equal(cloud_split_rule_check(unk, strlen(unk), &js, name, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "'tem'"));
}

/* payments 30 direct, search 10 direct, 10.000000001 shared (team tag
 * "shared"), 5 untagged. */
static const char split_csv[] =
    "BillingPeriodStart,ChargePeriodStart,BilledCost,BillingAccountId,"
    "ServiceName,Tags\n"
    "2024-10-01,2024-10-01,30,A,EC2,\"{\"\"team\"\":\"\"payments\"\"}\"\n"
    "2024-10-01,2024-10-01,10,A,EC2,\"{\"\"team\"\":\"\"search\"\"}\"\n"
    "2024-10-01,2024-10-01,10.000000001,A,EC2,\"{\"\"team\"\":\"\"shared\"\"}"
    "\"\n"
    "2024-10-01,2024-10-01,5,A,S3,\n";

static void check_split(struct test_env *e, const char *rule, int64_t want_pay, int64_t want_search,
                        int64_t want_unalloc)
{
    char name[64];
    struct core_err err = {0};
    assert_int_equal(cloud_split_rule_put(e->st, rule, strlen(rule), "test", name, &err), 0);
    json_t *r = cloud_cost_team_report(e->st, "2024-10", true, &err);
    assert_non_null(r);
    json_t *pi = item_named(r, "team", "payments"), *si = item_named(r, "team", "search");
    json_t *ui = item_named(r, "team", CLOUD_UNALLOCATED);
    int64_t p = json_integer_value(json_object_get(pi, "allocated_billed_n"));
    int64_t s = json_integer_value(json_object_get(si, "allocated_billed_n"));
    int64_t u = json_integer_value(json_object_get(ui, "billed_n"));
    assert_int_equal(p, want_pay);
    assert_int_equal(s, want_search);
    assert_int_equal(u, want_unalloc);
    /* nothing is lost or made up: every item together is the stored total */
    int64_t total = 0;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(r, "items"), i, it)
    {
        total += json_integer_value(json_object_get(it, "billed_n"));
    }
    assert_int_equal(total, 55 * N + 1);
    /* direct spend stays apart from the allocation */
    assert_string_equal(str(item_named(r, "team", "payments"), "direct_billed"), "30.000000");
    json_decref(r);
    assert_int_equal(cloud_split_rule_delete(e->st, name, "test", &err), 0);
}

static void test_split_rules_in_report(void **state)
{
    (void)state;
    struct test_env e;
    assert_int_equal(test_env_open(&e), 0);
    import_text(&e, "split.csv", split_csv);
    /* even: 10.000000001 over 2, the odd nano-unit to the first team listed */
    check_split(&e,
                "name: s\nmatch: {team: shared}\nmethod: even\nteams: [payments, "
                "search]\n",
                5 * N + 1, 5 * N, 5 * N);
    /* proportional to direct spend 30:10 */
    check_split(&e,
                "name: s\nmatch: {team: shared}\nmethod: proportional\n"
                "teams: [payments, search]\n",
                7500000001LL, 2500000000LL, 5 * N);
    /* fixed 1:4 */
    check_split(&e,
                "name: s\nmatch: {team: shared}\nmethod: fixed\nweights: "
                "{payments: 1, search: 4}\n",
                2 * N, 8 * N + 1, 5 * N);
    /* proportional over teams without direct spend: the pool stays unallocated */
    check_split(&e, "name: s\nmatch: {team: shared}\nmethod: proportional\nteams: [nobody]\n", 0, 0,
                15 * N + 1);
    /* without --split the shared spend is just the "shared" team */
    struct core_err err = {0};
    json_t *r = cloud_cost_team_report(e.st, "2024-10", false, &err);
    assert_string_equal(str(item_named(r, "team", "shared"), "billed"), "10.000000");
    json_decref(r);
    /* untagged: the S3 line, by account and by service */
    r = cloud_cost_untagged(e.st, NULL, true, &err);
    assert_string_equal(str(r, "total_billed"), "5.000000");
    assert_string_equal(str(item_named(r, "key", "S3"), "billed"), "5.000000");
    json_decref(r);
    test_env_close(&e);
}

static void test_commitments_focus(void **state)
{
    (void)state;
    struct test_env e;
    assert_int_equal(test_env_open(&e), 0);
    import_text(&e, "c.csv",
                "BillingPeriodStart,ChargePeriodStart,BilledCost,EffectiveCost,ListCost,"
                "BillingAccountId,"
                "ServiceName,ServiceCategory,ChargeCategory,CommitmentDiscountId,"
                "CommitmentDiscountType,"
                "CommitmentDiscountStatus,PricingCategory\n"
                "2024-10-01,2024-10-01,60,60,60,A,EC2,Compute,Usage,,,,On-Demand\n"
                "2024-10-01,2024-10-01,0,30,40,A,EC2,Compute,Usage,ri-1,Reservation,Used,"
                "Commitment-Based\n"
                "2024-10-01,2024-10-01,0,10,0,A,EC2,Compute,Usage,ri-1,Reservation,"
                "Unused,"
                "Commitment-Based\n"
                "2024-10-01,2024-10-01,100,100,100,A,S3,Storage,Usage,,,,On-Demand\n");
    struct core_err err = {0};
    json_t *c = cloud_cost_commitments(e.st, NULL, &err);
    assert_non_null(c);
    /* covered 40 (on-demand equivalent) of 40 + 60 eligible; storage is not */
    assert_string_equal(str(c, "covered_ondemand_equiv"), "40.000000");
    assert_string_equal(str(c, "eligible_ondemand_equiv"), "100.000000");
    assert_true(json_real_value(json_object_get(c, "coverage_pct")) == 40.0);
    json_t *t = json_array_get(json_object_get(c, "types"), 0);
    assert_string_equal(str(t, "type"), "reservation");
    assert_string_equal(str(t, "used"), "30.000000");
    assert_string_equal(str(t, "unused"), "10.000000");
    assert_true(json_real_value(json_object_get(t, "utilization_pct")) == 75.0);
    assert_int_equal(json_integer_value(json_object_get(t, "commitments")), 1);
    json_decref(c);
    test_env_close(&e);
}

static void test_commitments_cur(void **state)
{
    (void)state;
    struct test_env e;
    assert_int_equal(test_env_open(&e), 0);
    import_text(&e, "cur.csv",
                "identity/LineItemId,bill/PayerAccountId,bill/BillingPeriodStartDate,"
                "lineItem/UsageStartDate,lineItem/LineItemType,lineItem/UnblendedCost,"
                "lineItem/ProductCode,product/productFamily,pricing/term,"
                "pricing/publicOnDemandCost,reservation/ReservationARN,reservation/"
                "EffectiveCost,"
                "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod,"
                "reservation/UnusedRecurringFee,savingsPlan/SavingsPlanEffectiveCost\n"
                "1,P,2024-10-01,2024-10-01T00:00:00Z,DiscountedUsage,0,AmazonEC2,Compute "
                "Instance,Reserved,10,arn:ri:1,8,,,\n"
                "2,P,2024-10-01,2024-10-01T00:00:00Z,RIFee,12,AmazonEC2,Compute "
                "Instance,Reserved,0,arn:ri:1,,2,2,\n"
                "3,P,2024-10-01,2024-10-01T00:00:00Z,Usage,30,AmazonEC2,Compute "
                "Instance,OnDemand,30,,,,,\n");
    struct core_err err = {0};
    json_t *c = cloud_cost_commitments(e.st, "2024-10", &err);
    assert_non_null(c);
    assert_string_equal(str(c, "covered_ondemand_equiv"), "10.000000");
    assert_string_equal(str(c, "ondemand"), "30.000000");
    assert_true(json_real_value(json_object_get(c, "coverage_pct")) == 25.0);
    json_t *t = json_array_get(json_object_get(c, "types"), 0);
    assert_string_equal(str(t, "type"), "reservation");
    assert_string_equal(str(t, "used"), "8.000000");
    assert_string_equal(str(t, "unused"), "4.000000");
    assert_true(json_real_value(json_object_get(t, "utilization_pct")) == 66.67);
    json_decref(c);
    test_env_close(&e);
}

static void test_empty_store(void **state)
{
    (void)state;
    struct test_env e;
    assert_int_equal(test_env_open(&e), 0);
    struct core_err err = {0};
    /* every report answers on an empty store (the recommendation once
     * crashed here) */
    json_t *r = cloud_cost_recommend(e.st, 30, 30, 10, &err);
    assert_non_null(r);
    assert_true(json_is_null(json_object_get(r, "recommendation")));
    assert_true(json_array_size(json_object_get(r, "assumptions")) > 0);
    json_decref(r);
    json_t *all[6] = {
        cloud_cost_team_report(e.st, NULL, true, &err), cloud_cost_untagged(e.st, NULL, false, &err),
        cloud_cost_trend(e.st, NULL, false, -1, &err),  cloud_cost_commitments(e.st, NULL, &err),
        cloud_budget_list(e.st, NULL, true, &err),      cloud_cost_anomalies(e.st, 7, 3, &err)};
    for (int i = 0; i < 6; i++) {
        assert_non_null(all[i]);
        json_decref(all[i]);
    }
    test_env_close(&e);
}

static void test_recommend_steady(void **state)
{
    (void)state;
    /* 24.00 a day (1.00 an hour) with one busy day: the baseline ignores it */
    int64_t d[10];
    for (int i = 0; i < 10; i++)
        d[i] = 24 * N;
    d[4] = 240 * N;
    struct cloud_recommendation r;
    assert_int_equal(cloud_recommend_series(d, 10, 10, 30, &r), 0);
    assert_int_equal(r.baseline_daily_n, 24 * N);
    assert_int_equal(r.ondemand_hourly_n, 1 * N);
    assert_int_equal(r.commitment_hourly_n, 700000000);
    assert_int_equal(r.monthly_savings_n, 219 * N);
    /* a day without spend at the 10th percentile means no steady baseline */
    d[0] = 0;
    assert_int_equal(cloud_recommend_series(d, 10, 10, 30, &r), 0);
    assert_int_equal(r.commitment_hourly_n, 0);
    assert_int_equal(cloud_recommend_series(d, 0, 10, 30, &r), CORE_E_INVAL);
    assert_int_equal(cloud_recommend_series(d, 10, 10, 100, &r), CORE_E_INVAL);
}

static void test_budget_forecast_and_alert(void **state)
{
    (void)state;
    int64_t f;
    const char *st;
    cloud_budget_forecast(100 * N, 10, 30, 1000 * N, 80, &f, &st);
    assert_int_equal(f, 300 * N);
    assert_string_equal(st, CLOUD_BUDGET_OK);
    cloud_budget_forecast(500 * N, 10, 30, 1000 * N, 80, &f, &st);
    assert_int_equal(f, 1500 * N);
    assert_string_equal(st, CLOUD_BUDGET_AT_RISK);
    cloud_budget_forecast(850 * N, 30, 30, 1000 * N, 80, &f, &st);
    assert_string_equal(st, CLOUD_BUDGET_AT_RISK); /* threshold crossed, forecast fine */
    cloud_budget_forecast(1100 * N, 15, 30, 1000 * N, 80, &f, &st);
    assert_string_equal(st, CLOUD_BUDGET_OVER);

    struct test_env e;
    assert_int_equal(test_env_open(&e), 0);
    import_text(&e, "b.csv", split_csv); /* payments: 30 by 2024-10-01 */
    struct core_err err = {0};
    assert_int_equal(cloud_budget_set(e.st, "payments", 20 * N, 80, "test", &err), 0);
    assert_int_equal(cloud_budget_set(e.st, "search", 1000 * N, 80, "test", &err), 0);
    assert_int_equal(cloud_budget_set(e.st, "search", 0, 80, "test", &err), CORE_E_INVAL);
    for (int pass = 0; pass < 2; pass++) {
        json_t *b = cloud_budget_list(e.st, NULL, true, &err);
        assert_non_null(b);
        assert_string_equal(str(b, "period"), "2024-10");
        assert_int_equal(json_integer_value(json_object_get(b, "as_of_day")), 1);
        assert_int_equal(json_integer_value(json_object_get(b, "over")), 1);
        assert_int_equal(json_integer_value(json_object_get(b, "new_alerts")), pass == 0 ? 1 : 0);
        json_t *p = item_named(b, "team", "payments");
        assert_string_equal(str(p, "state"), CLOUD_BUDGET_OVER);
        assert_string_equal(str(p, "forecast"), "930.000000");
        assert_non_null(strstr(str(p, "alert"), "team 'payments' is over"));
        /* search: 10 on day 1 of 31 forecasts 310 of 1000: ok, no alert */
        assert_string_equal(str(item_named(b, "team", "search"), "state"), CLOUD_BUDGET_OK);
        json_decref(b);
    }
    int64_t n = 0;
    assert_int_equal(store_query_int(e.st, "SELECT COUNT(*) FROM cost_alerts", NULL, 0, &n, &err),
                     0);
    assert_int_equal(n, 1);
    test_env_close(&e);
}

static void test_anomaly(void **state)
{
    (void)state;
    int64_t prev[5] = {10 * N, 11 * N, 9 * N, 10 * N, 10 * N};
    double score;
    int64_t base;
    assert_false(cloud_anomaly_score(prev, 5, 12 * N, 3, &score, &base));
    assert_int_equal(base, 10 * N);
    assert_true(cloud_anomaly_score(prev, 5, 60 * N, 3, &score, &base));
    assert_true(score > 3);

    /* ten quiet days of EC2 on r1, then a day where r2 (another usage type and
     * account) adds 50 */
    struct core_buf csv;
    core_buf_init(&csv, 0);
    core_buf_adds(&csv, "BillingPeriodStart,ChargePeriodStart,BilledCost,BillingAccountId,"
                        "SubAccountId,ServiceName,RegionId,ResourceId,x_UsageType\n");
    for (int d = 1; d <= 11; d++)
        core_buf_addf(&csv, "2024-10-01,2024-10-%02d,10,A,acct-1,EC2,us-east-1,r1,BoxUsage:small\n",
                      d);
    core_buf_adds(&csv, "2024-10-01,2024-10-11,50,A,acct-2,EC2,us-east-1,r2,BoxUsage:big\n");
    struct test_env e;
    assert_int_equal(test_env_open(&e), 0);
    import_text(&e, "a.csv", csv.data);
    core_buf_release(&csv);
    struct core_err err = {0};
    json_t *a = cloud_cost_anomalies(e.st, 7, 3, &err);
    assert_non_null(a);
    assert_int_equal(json_array_size(json_object_get(a, "items")), 1);
    json_t *it = json_array_get(json_object_get(a, "items"), 0);
    assert_string_equal(str(it, "service"), "EC2");
    assert_string_equal(str(it, "date"), "2024-10-11");
    assert_string_equal(str(it, "delta"), "50.000000");
    json_t *top = json_object_get(it, "top");
    assert_true(json_array_size(top) >= 3);
    size_t i;
    json_t *t;
    bool saw_r2 = false, saw_big = false;
    json_array_foreach(top, i, t)
    {
        assert_string_equal(str(t, "delta"), "50.000000");
        saw_r2 = saw_r2 || strcmp(str(t, "key"), "r2") == 0;
        saw_big = saw_big || strcmp(str(t, "key"), "BoxUsage:big") == 0;
    }
    assert_true(saw_r2 && saw_big);
    assert_non_null(strstr(str(it, "explanation"), "resource 'r2' +50.00"));
    json_decref(a);
    test_env_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_amount_exact),        cmocka_unit_test(test_split_rule_check),
        cmocka_unit_test(test_split_rules_in_report),     cmocka_unit_test(test_commitments_focus),
        cmocka_unit_test(test_commitments_cur),           cmocka_unit_test(test_recommend_steady),
        cmocka_unit_test(test_empty_store),
        cmocka_unit_test(test_budget_forecast_and_alert), cmocka_unit_test(test_anomaly),
    };
    return cmocka_run_group_tests_name("cloud_analysis", tests, NULL, NULL);
}
