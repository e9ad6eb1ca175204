/* /api/v1/cost routes (docs/cost.md): team spend with split rules, untagged
 * spend, trends, commitments, the purchase recommendation, anomalies and
 * budgets. Every route needs a token; setting a budget needs an admin or a
 * member of the team and is audited (cloud_budget_set). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "cloud/cloud.h"

/* ?period=YYYY-MM into buf; false (and a 400) when malformed. *out is NULL
 * when absent. */
static bool period_param(struct api_req *r, char *buf, size_t sz, const char **out)
{
    *out = api_query(r, "period", buf, sz);
    if (*out && !**out)
        *out = NULL;
    if (*out && (strlen(*out) != 7 || (*out)[4] != '-')) {
        api_reply_error(r, CORE_E_INVAL, "period wants YYYY-MM", NULL);
        return false;
    }
    return true;
}

/* GET /api/v1/cost/report?by=team|service|env|cost-center&split=true&period= */
static void h_report(struct api_req *r)
{
    char pb[16], bb[24], sb[8];
    const char *period, *by = api_query(r, "by", bb, sizeof(bb));
    const char *split = api_query(r, "split", sb, sizeof(sb));
    if (!period_param(r, pb, sizeof(pb), &period))
        return;
    struct core_err err = {0};
    bool do_split = split && (strcmp(split, "true") == 0 || strcmp(split, "1") == 0);
    if (!by || strcmp(by, "team") == 0) {
        api_reply_result(r, cloud_cost_team_report(api_ctx(r)->st, period, do_split, &err), &err);
        return;
    }
    enum cloud_group g;
    if (strcmp(by, "service") == 0)
        g = CLOUD_BY_SERVICE;
    else if (strcmp(by, "env") == 0)
        g = CLOUD_BY_ENV;
    else if (strcmp(by, "cost-center") == 0)
        g = CLOUD_BY_COST_CENTER;
    else {
        api_reply_error(r, CORE_E_INVAL, "by must be team, service, env or cost-center", NULL);
        return;
    }
    struct cloud_report rep;
    if (cloud_cost_report(api_ctx(r)->st, g, period, &rep, &err)) {
        api_reply_err(r, &err);
        return;
    }
    json_t *items = json_array();
    char b[48], e[48];
    for (size_t i = 0; i < rep.n; i++) {
        cloud_money_format(rep.items[i].billed_n, 6, b, sizeof(b));
        cloud_money_format(rep.items[i].effective_n, 6, e, sizeof(e));
        json_array_append_new(
            items, json_pack("{s:o, s:b, s:I, s:s, s:s}", "key", cloud_json_text(rep.items[i].key),
                             "in_catalog", rep.items[i].in_catalog, "rows",
                             (json_int_t)rep.items[i].rows, "billed", b, "effective", e));
    }
    cloud_money_format(rep.total_billed_n, 6, b, sizeof(b));
    cloud_money_format(rep.total_effective_n, 6, e, sizeof(e));
    json_t *out = json_pack("{s:s, s:s?, s:o?, s:o, s:s, s:s}", "by", by, "period", period,
                            "currency", rep.currency ? cloud_json_text(rep.currency) : NULL,
                            "items", items, "total_billed", b, "total_effective", e);
    cloud_report_release(&rep);
    api_reply_json(r, 200, out);
}

/* GET /api/v1/cost/untagged?by=account|service&period= */
static void h_untagged(struct api_req *r)
{
    char pb[16], bb[16];
    const char *period, *by = api_query(r, "by", bb, sizeof(bb));
    if (!period_param(r, pb, sizeof(pb), &period))
        return;
    if (by && strcmp(by, "account") != 0 && strcmp(by, "service") != 0) {
        api_reply_error(r, CORE_E_INVAL, "by must be account or service", NULL);
        return;
    }
    struct core_err err = {0};
    json_t *out =
        cloud_cost_untagged(api_ctx(r)->st, period, by && strcmp(by, "service") == 0, &err);
    api_reply_result(r, out, &err);
}

/* GET /api/v1/cost/trend?interval=daily|monthly&by=team|service&period= */
static void h_trend(struct api_req *r)
{
    char pb[16], bb[16], ib[16];
    const char *period, *by = api_query(r, "by", bb, sizeof(bb));
    const char *iv = api_query(r, "interval", ib, sizeof(ib));
    if (!period_param(r, pb, sizeof(pb), &period))
        return;
    int group = -1;
    if (by && strcmp(by, "team") == 0)
        group = CLOUD_BY_TEAM;
    else if (by && strcmp(by, "service") == 0)
        group = CLOUD_BY_SERVICE;
    else if (by && *by) {
        api_reply_error(r, CORE_E_INVAL, "by must be team or service", NULL);
        return;
    }
    if (iv && strcmp(iv, "daily") != 0 && strcmp(iv, "monthly") != 0) {
        api_reply_error(r, CORE_E_INVAL, "interval must be daily or monthly", NULL);
        return;
    }
    struct core_err err = {0};
    json_t *out =
        cloud_cost_trend(api_ctx(r)->st, period, iv && strcmp(iv, "monthly") == 0, group, &err);
    api_reply_result(r, out, &err);
}

/* GET /api/v1/cost/commitments?period= */
static void h_commitments(struct api_req *r)
{
    char pb[16];
    const char *period;
    if (!period_param(r, pb, sizeof(pb), &period))
        return;
    struct core_err err = {0};
    api_reply_result(r, cloud_cost_commitments(api_ctx(r)->st, period, &err), &err);
}

/* GET /api/v1/cost/recommendation?days=N&discount=PCT&percentile=P */
static void h_recommend(struct api_req *r)
{
    long days, disc, pct;
    if (!api_query_long(r, "days", 1, 366, 30, &days) ||
        !api_query_long(r, "discount", 1, 99, 30, &disc) ||
        !api_query_long(r, "percentile", 0, 100, 10, &pct))
        return;
    struct core_err err = {0};
    json_t *out = cloud_cost_recommend(api_ctx(r)->st, (int)days, (double)disc, (double)pct, &err);
    api_reply_result(r, out, &err);
}

/* GET /api/v1/cost/anomalies?days=N&threshold=X */
static void h_anomalies(struct api_req *r)
{
    long days;
    char tb[32];
    if (!api_query_long(r, "days", 3, 90, 7, &days))
        return;
    const char *ts = api_query(r, "threshold", tb, sizeof(tb));
    double th = 3.0;
    if (ts && *ts) {
        char *end;
        th = strtod(ts, &end);
        if (*end || !(th > 0 && th < 1000)) {
            api_reply_error(r, CORE_E_INVAL, "threshold wants a number above 0", NULL);
            return;
        }
    }
    struct core_err err = {0};
    api_reply_result(r, cloud_cost_anomalies(api_ctx(r)->st, (int)days, th, &err), &err);
}

/* GET /api/v1/cost/budgets?period= : budgets with forecast and state (read
 * only: alerts are recorded by pave cost budget check) */
static void h_budgets(struct api_req *r)
{
    char pb[16];
    const char *period;
    if (!period_param(r, pb, sizeof(pb), &period))
        return;
    struct core_err err = {0};
    api_reply_result(r, cloud_budget_list(api_ctx(r)->st, period, false, &err), &err);
}

/* PUT /api/v1/cost/budgets/{team} {"amount": "1000.00" | 1000, "alert_pct": 80}
 */
static void h_budget_put(struct api_req *r)
{
    const char *team = r->params[0];
    if (!api_can_change_team(r, team)) {
        api_reply_error(r, CORE_E_PERM, "only an admin or a member of the team can set its budget",
                        NULL);
        return;
    }
    json_error_t jerr;
    json_t *b =
        r->body.len ? json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!json_is_object(b)) {
        json_decref(b);
        api_reply_error(r, CORE_E_INVAL, "the body must be a JSON object with amount", NULL);
        return;
    }
    json_t *a = json_object_get(b, "amount"), *p = json_object_get(b, "alert_pct");
    int64_t amount = 0;
    char num[64] = "";
    if (json_is_string(a))
        snprintf(num, sizeof(num), "%s", json_string_value(a));
    else if (json_is_integer(a))
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(a));
    else if (json_is_real(a))
        snprintf(num, sizeof(num), "%.6f", json_real_value(a));
    int pct = p ? (int)json_integer_value(p) : 80;
    json_decref(b);
    if (!num[0] || cloud_parse_money(num, &amount) || amount <= 0) {
        api_reply_error(r, CORE_E_INVAL, "amount wants a number above 0", NULL);
        return;
    }
    if (p && (pct < 1 || pct > 1000)) {
        api_reply_error(r, CORE_E_INVAL, "alert_pct wants an integer 1-1000", NULL);
        return;
    }
    struct core_err err = {0};
    if (cloud_budget_set(api_ctx(r)->st, team, amount, pct, r->who.user, &err)) {
        api_reply_err(r, &err);
        return;
    }
    char am[48];
    cloud_money_format(amount, 6, am, sizeof(am));
    api_reply_json(r, 200,
                   json_pack("{s:s, s:s, s:i}", "team", team, "budget", am, "alert_pct", pct));
}

const struct api_route api_cost_routes[] = {
    {"GET", "/api/v1/cost/report", h_report, true, false},
    {"GET", "/api/v1/cost/untagged", h_untagged, true, false},
    {"GET", "/api/v1/cost/trend", h_trend, true, false},
    {"GET", "/api/v1/cost/commitments", h_commitments, true, false},
    {"GET", "/api/v1/cost/recommendation", h_recommend, true, false},
    {"GET", "/api/v1/cost/anomalies", h_anomalies, true, false},
    {"GET", "/api/v1/cost/budgets", h_budgets, true, false},
    {"PUT", "/api/v1/cost/budgets/{team}", h_budget_put, true, false},
};
const size_t api_cost_nroutes = sizeof(api_cost_routes) / sizeof(api_cost_routes[0]);
