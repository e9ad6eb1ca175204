/* Cost analysis over the stored charges (cost_lines): team spend with shared
 * cost split rules, untagged spend, trends, commitment coverage and
 * utilization, a commitment purchase recommendation, budgets with forecast
 * and alerts, and anomalies in daily spend per service with what moved.
 * Every report is a JSON object (see cloud.h); the pure pieces (splitting an
 * amount, the recommendation from a series, the budget forecast, anomaly
 * scoring, rule validation) are separate functions the unit tests and the
 * fuzzer drive. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloud/cloud.h"
#include "store/store.h"

#define NANO 1000000000LL
#define ANOMALY_MAX 100

/* ---- small helpers ---- */

static json_t *jmoney(int64_t n)
{
    char b[48];
    cloud_money_format(n, 6, b, sizeof(b));
    return json_string(b);
}

/* Text from an export as a JSON string. Exports are not always valid UTF-8
 * and jansson refuses such strings, so the bytes of an invalid one that are
 * not ASCII become '?'. NULL gives "". */
json_t *cloud_json_text(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (core_utf8_valid(s, n))
        return json_string(s);
    char *c = core_strdup(s);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)c[i] >= 0x80 || (unsigned char)c[i] < 0x20)
            c[i] = '?';
    json_t *j = json_string(c);
    core_free(c);
    return j;
}

#define jtext cloud_json_text

static json_t *jpct(int64_t num, int64_t den)
{
    if (den == 0)
        return json_null();
    return json_real(round((double)num * 10000.0 / (double)den) / 100.0);
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* "YYYY-MM-DD" to a day number; -1 when malformed. */
static int64_t day_num(const char *s)
{
    int y, m, d;
    if (!s || sscanf(s, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    return days_from_civil(y, m, d);
}

static void day_str(int64_t z, char out[11])
{
    int y, m, d;
    civil_from_days(z, &y, &m, &d);
    if (y < 0 || y > 9999)
        y = 0;
    snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 13u, (unsigned)d % 32u);
}

static int days_in_month(int y, int m)
{
    return (int)(days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) -
                 days_from_civil(y, m, 1));
}

struct text_out {
    char *buf;
    size_t sz;
};

static int text_row(void *arg, const struct store_row *row)
{
    struct text_out *t = arg;
    if (row->ncols > 0 && row->vals[0].type == STORE_TEXT)
        snprintf(t->buf, t->sz, "%s", row->vals[0].s);
    return 0;
}

/* First column of the first row as text into buf ("" when none). */
static int query_text(struct store *st, const char *sql, const struct store_value *p, size_t np,
                      char *buf, size_t sz, struct core_err *err)
{
    struct text_out t = {buf, sz};
    buf[0] = 0;
    return store_query(st, sql, p, np, text_row, &t, err);
}

static bool valid_period(const char *p)
{
    int y, m;
    return p && strlen(p) == 7 && p[4] == '-' && sscanf(p, "%4d-%2d", &y, &m) == 2 && m >= 1 &&
           m <= 12;
}

int cloud_split_rule_put(struct store *st, const char *text, size_t len, const char *actor,
                         char name[64], struct core_err *err)
{
    char *js = NULL;
    int rc = cloud_split_rule_check(text, len, &js, name, err);
    if (rc)
        return rc;
    /* jansson allocates with malloc; keep a copy we can free the same way */
    char now[40];
    core_time_format(core_now_ms(), now, sizeof(now));
    struct store_value p[4] = {store_v_text(name), store_v_text(js), store_v_text(now),
                               store_v_text(actor)};
    if ((rc = store_txn_begin(st, err)))
        goto out;
    if ((rc = store_exec(st, "DELETE FROM cost_split_rules WHERE name = ?", p, 1, NULL, err)) ||
        (rc = store_exec(st,
                         "INSERT INTO cost_split_rules (name, document, "
                         "updated_at, updated_by) "
                         "VALUES (?, ?, ?, ?)",
                         p, 4, NULL, err))) {
        store_txn_rollback(st);
        goto out;
    }
    struct store_audit_event ev = {.actor = actor ? actor : "system",
                                   .action = "cost.split.apply",
                                   .kind = "split-rule",
                                   .object = name,
                                   .detail = js};
    if ((rc = store_audit_append(st, &ev, err)) || (rc = store_txn_commit(st, err)))
        store_txn_rollback(st);
out:
    free(js);
    return rc;
}

int cloud_split_rule_delete(struct store *st, const char *name, const char *actor,
                            struct core_err *err)
{
    struct store_value p[1] = {store_v_text(name)};
    int64_t n = 0;
    int rc;
    if ((rc = store_query_int(st, "SELECT COUNT(*) FROM cost_split_rules WHERE name = ?", p, 1, &n,
                              err)))
        return rc;
    if (!n)
        return core_err_set(err, CORE_E_NOTFOUND,
                            "no split rule '%s' (pave cost split list shows them)", name);
    if ((rc = store_exec(st, "DELETE FROM cost_split_rules WHERE name = ?", p, 1, NULL, err)))
        return rc;
    struct store_audit_event ev = {.actor = actor ? actor : "system",
                                   .action = "cost.split.delete",
                                   .kind = "split-rule",
                                   .object = name,
                                   .detail = ""};
    return store_audit_append(st, &ev, err);
}

static int rule_list_row(void *arg, const struct store_row *row)
{
    json_t *items = arg;
    json_t *doc = json_loads(store_row_text(row, "document"), 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return 0; /* stored documents are canonical JSON; skip anything else */
    }
    const char *u = store_row_text(row, "updated_at");
    json_object_set_new(doc, "updated_at", u ? json_string(u) : json_null());
    return json_array_append_new(items, doc) ? CORE_E_NOMEM : 0;
}

struct json_t *cloud_split_rule_list(struct store *st, struct core_err *err)
{
    json_t *items = json_array();
    if (!items) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    if (store_query(st, "SELECT document, updated_at FROM cost_split_rules ORDER BY name", NULL, 0,
                    rule_list_row, items, err)) {
        json_decref(items);
        return NULL;
    }
    return json_pack("{s:o}", "items", items);
}

/* ---- team report with split rules ---- */

struct team_acc {
    char *team;
    bool in_catalog;
    int64_t rows, db, de, ab, ae; /* direct and allocated, billed and effective */
};

struct rule {
    json_t *doc; /* canonical rule */
    int64_t rows, b, e;
    int64_t alloc_b;
};

struct team_report {
    struct store *st;
    json_t *teams;    /* catalog team names: object name -> true */
    json_t *services; /* catalog service -> team */
    struct rule *rules;
    size_t nrules;
    struct team_acc *acc;
    size_t nacc;
    struct team_acc unalloc;
    char *currency;
    bool mixed;
};

static int catalog_team_row(void *arg, const struct store_row *row)
{
    struct team_report *tr = arg;
    const char *n = store_row_text(row, "name");
    return n ? json_object_set_new(tr->teams, n, json_true()) : 0;
}

static int catalog_service_row(void *arg, const struct store_row *row)
{
    struct team_report *tr = arg;
    const char *n = store_row_text(row, "name"), *t = store_row_text(row, "team");
    return n && t ? json_object_set_new(tr->services, n, json_string(t)) : 0;
}

static int rule_row(void *arg, const struct store_row *row)
{
    struct team_report *tr = arg;
    json_t *doc = json_loads(store_row_text(row, "document"), 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return 0;
    }
    struct rule *nr = core_realloc(tr->rules, (tr->nrules + 1) * sizeof(*nr));
    if (!nr) {
        json_decref(doc);
        return CORE_E_NOMEM;
    }
    tr->rules = nr;
    memset(&nr[tr->nrules], 0, sizeof(*nr));
    nr[tr->nrules++].doc = doc;
    return 0;
}

static bool in_list(const json_t *arr, const char *s)
{
    size_t i;
    const json_t *v;
    if (!s)
        return false;
    json_array_foreach(arr, i, v)
    {
        if (json_string_value(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static struct team_acc *team_get(struct team_report *tr, const char *team)
{
    if (strcmp(team, CLOUD_UNALLOCATED) == 0)
        return &tr->unalloc;
    for (size_t i = 0; i < tr->nacc; i++)
        if (strcmp(tr->acc[i].team, team) == 0)
            return &tr->acc[i];
    struct team_acc *na = core_realloc(tr->acc, (tr->nacc + 1) * sizeof(*na));
    if (!na)
        return NULL;
    tr->acc = na;
    struct team_acc *a = &na[tr->nacc];
    memset(a, 0, sizeof(*a));
    if (!(a->team = core_strdup(team)))
        return NULL;
    a->in_catalog = json_object_get(tr->teams, team) != NULL;
    tr->nacc++;
    return a;
}

static int team_line_row(void *arg, const struct store_row *row)
{
    struct team_report *tr = arg;
    const char *team = store_row_text(row, "tag_team");
    const char *svc = store_row_text(row, "tag_service");
    const char *psvc = store_row_text(row, "service_name");
    const char *cur = store_row_text(row, "currency");
    int64_t n = store_row_int(row, "n"), b = store_row_int(row, "b"), e = store_row_int(row, "e");
    if (cur) {
        if (!tr->currency)
            tr->currency = core_strdup(cur);
        else if (strcmp(tr->currency, cur) != 0)
            tr->mixed = true;
    }
    for (size_t i = 0; i < tr->nrules; i++) {
        const json_t *m = json_object_get(tr->rules[i].doc, "match");
        const json_t *mt = json_object_get(m, "team"), *ms = json_object_get(m, "service");
        if ((mt && in_list(mt, team)) || (ms && (in_list(ms, psvc) || in_list(ms, svc)))) {
            tr->rules[i].rows += n;
            tr->rules[i].b += b;
            tr->rules[i].e += e;
            return 0;
        }
    }
    /* the same key as cloud_cost_report's team grouping */
    const char *key = NULL;
    if (team && json_object_get(tr->teams, team))
        key = team;
    else if (svc && json_string_value(json_object_get(tr->services, svc)))
        key = json_string_value(json_object_get(tr->services, svc));
    else
        key = team;
    struct team_acc *a = team_get(tr, key && *key ? key : CLOUD_UNALLOCATED);
    if (!a)
        return CORE_E_NOMEM;
    a->rows += n;
    a->db += b;
    a->de += e;
    return 0;
}

/* Spreads one rule's pool over its teams; what cannot be spread (no teams
 * with a basis for a proportional split) stays unallocated. */
static int rule_apply(struct team_report *tr, struct rule *r)
{
    const char *method = json_string_value(json_object_get(r->doc, "method"));
    json_t *teams = json_incref(json_object_get(r->doc, "teams"));
    if (method && strcmp(method, "fixed") == 0) {
        /* a fixed split lists its teams in weights, in the order written */
        const char *k;
        json_t *v;
        json_decref(teams);
        teams = json_array();
        json_object_foreach(json_object_get(r->doc, "weights"), k, v)
            json_array_append_new(teams, json_string(k));
    }
    size_t n = json_array_size(teams);
    int rc = 0;
    if (n == 0 || (!r->b && !r->e)) {
        json_decref(teams);
        tr->unalloc.ab += r->b;
        tr->unalloc.ae += r->e;
        return 0;
    }
    int64_t *wb = core_calloc(n, sizeof(*wb)), *we = core_calloc(n, sizeof(*we));
    int64_t *ob = core_calloc(n, sizeof(*ob)), *oe = core_calloc(n, sizeof(*oe));
    struct team_acc **acc = core_calloc(n, sizeof(*acc));
    if (!wb || !we || !ob || !oe || !acc) {
        rc = CORE_E_NOMEM;
        goto out;
    }
    int64_t sb = 0, se = 0;
    /* create every target first: team_get may move the array */
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_array_get(teams, i));
        if (!team_get(tr, t ? t : CLOUD_UNALLOCATED)) {
            rc = CORE_E_NOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_array_get(teams, i));
        acc[i] = team_get(tr, t ? t : CLOUD_UNALLOCATED);
        if (method && strcmp(method, "proportional") == 0) {
            wb[i] = acc[i]->db > 0 ? acc[i]->db : 0;
            we[i] = acc[i]->de > 0 ? acc[i]->de : 0;
        } else if (method && strcmp(method, "fixed") == 0) {
            wb[i] = we[i] =
                json_integer_value(json_object_get(json_object_get(r->doc, "weights"), t ? t : ""));
        } else {
            wb[i] = we[i] = 1;
        }
        sb += wb[i];
        se += we[i];
    }
    /* a proportional or fixed split with nothing to weigh by leaves the pool
     * unallocated rather than guessing */
    if (!sb || !se) {
        tr->unalloc.ab += r->b;
        tr->unalloc.ae += r->e;
        goto out;
    }
    cloud_split_amount(r->b, wb, n, ob);
    cloud_split_amount(r->e, we, n, oe);
    for (size_t i = 0; i < n; i++) {
        acc[i]->ab += ob[i];
        acc[i]->ae += oe[i];
    }
    r->alloc_b = r->b;
out:
    json_decref(teams);
    core_free(wb);
    core_free(we);
    core_free(ob);
    core_free(oe);
    core_free(acc);
    return rc;
}

static int cmp_acc(const void *pa, const void *pb)
{
    const struct team_acc *a = pa, *b = pb;
    int64_t ta = a->db + a->ab, tb = b->db + b->ab;
    if (ta != tb)
        return ta > tb ? -1 : 1;
    return strcmp(a->team, b->team);
}

static json_t *acc_json(const struct team_acc *a, const char *team)
{
    json_t *o = json_pack("{s:o, s:b, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "team", jtext(team),
                          "in_catalog", a->in_catalog, "rows", (json_int_t)a->rows, "direct_billed",
                          jmoney(a->db), "allocated_billed", jmoney(a->ab), "billed",
                          jmoney(a->db + a->ab), "direct_effective", jmoney(a->de),
                          "allocated_effective", jmoney(a->ae), "effective", jmoney(a->de + a->ae));
    /* exact nano-units too, so allocations can be checked to the unit */
    json_object_set_new(o, "direct_billed_n", json_integer(a->db));
    json_object_set_new(o, "allocated_billed_n", json_integer(a->ab));
    json_object_set_new(o, "billed_n", json_integer(a->db + a->ab));
    return o;
}

struct json_t *cloud_cost_team_report(struct store *st, const char *period, bool split,
                                      struct core_err *err)
{
    struct team_report tr = {.st = st, .teams = json_object(), .services = json_object()};
    json_t *out = NULL;
    int rc;
    if (!tr.teams || !tr.services) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = store_query(st, "SELECT name FROM teams", NULL, 0, catalog_team_row, &tr, err)) ||
        (rc = store_query(st, "SELECT name, team FROM services", NULL, 0, catalog_service_row, &tr,
                          err)))
        goto out;
    if (split && (rc = store_query(st, "SELECT document FROM cost_split_rules ORDER BY name", NULL,
                                   0, rule_row, &tr, err)))
        goto out;
    struct store_value p[1] = {store_v_text(period)};
    const char *sql = period ? "SELECT tag_team, tag_service, service_name, currency, COUNT(*) "
                               "AS n, "
                               "SUM(billed_n) AS b, SUM(effective_n) AS e FROM cost_lines "
                               "WHERE period = ? "
                               "GROUP BY tag_team, tag_service, service_name, currency"
                             : "SELECT tag_team, tag_service, service_name, currency, COUNT(*) "
                               "AS n, "
                               "SUM(billed_n) AS b, SUM(effective_n) AS e FROM cost_lines "
                               "GROUP BY tag_team, tag_service, service_name, currency";
    if ((rc = store_query(st, sql, p, period ? 1 : 0, team_line_row, &tr, err))) {
        if (rc == CORE_E_NOMEM)
            core_err_set(err, rc, "out of memory");
        goto out;
    }
    /* direct spend is complete before any proportional split looks at it */
    for (size_t i = 0; i < tr.nrules; i++)
        if (rule_apply(&tr, &tr.rules[i])) {
            core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
    if (tr.nacc)
        qsort(tr.acc, tr.nacc, sizeof(*tr.acc), cmp_acc);
    json_t *items = json_array(), *shared = json_array();
    int64_t tb = 0, te = 0;
    for (size_t i = 0; i < tr.nacc; i++) {
        json_array_append_new(items, acc_json(&tr.acc[i], tr.acc[i].team));
        tb += tr.acc[i].db + tr.acc[i].ab;
        te += tr.acc[i].de + tr.acc[i].ae;
    }
    json_array_append_new(items, acc_json(&tr.unalloc, CLOUD_UNALLOCATED));
    tb += tr.unalloc.db + tr.unalloc.ab;
    te += tr.unalloc.de + tr.unalloc.ae;
    for (size_t i = 0; i < tr.nrules; i++)
        json_array_append_new(shared,
                              json_pack("{s:O?, s:O?, s:I, s:o, s:o, s:o}", "rule",
                                        json_object_get(tr.rules[i].doc, "name"), "method",
                                        json_object_get(tr.rules[i].doc, "method"), "rows",
                                        (json_int_t)tr.rules[i].rows, "billed",
                                        jmoney(tr.rules[i].b), "effective", jmoney(tr.rules[i].e),
                                        "allocated_billed", jmoney(tr.rules[i].alloc_b)));
    json_t *cur = tr.mixed ? json_string("mixed") : tr.currency ? jtext(tr.currency) : NULL;
    out = json_pack("{s:s, s:s?, s:o?, s:b, s:o, s:o, s:o, s:o}", "by", "team", "period", period,
                    "currency", cur, "split", split, "items", items, "total_billed", jmoney(tb),
                    "total_effective", jmoney(te), "shared", shared);
    if (!out)
        core_err_set(err, CORE_E_NOMEM, "out of memory");
out:
    for (size_t i = 0; i < tr.nacc; i++)
        core_free(tr.acc[i].team);
    core_free(tr.acc);
    for (size_t i = 0; i < tr.nrules; i++)
        json_decref(tr.rules[i].doc);
    core_free(tr.rules);
    core_free(tr.currency);
    json_decref(tr.teams);
    json_decref(tr.services);
    return out;
}

/* ---- untagged spend and trends ---- */

struct series {
    json_t *items;
    int64_t tb, te;
    bool with_date;
};

static int series_row(void *arg, const struct store_row *row)
{
    struct series *s = arg;
    const char *k = store_row_text(row, "k");
    int64_t b = store_row_int(row, "b"), e = store_row_int(row, "e");
    s->tb += b;
    s->te += e;
    json_t *it;
    if (s->with_date) {
        const char *d = store_row_text(row, "d");
        it = json_pack("{s:o, s:o, s:o, s:o}", "date", jtext(d), "key", jtext(k), "billed",
                       jmoney(b), "effective", jmoney(e));
    } else {
        it = json_pack("{s:o, s:I, s:o, s:o}", "key", jtext(k ? k : "(none)"), "rows",
                       (json_int_t)store_row_int(row, "n"), "billed", jmoney(b), "effective",
                       jmoney(e));
    }
    return json_array_append_new(s->items, it) ? CORE_E_NOMEM : 0;
}

struct json_t *cloud_cost_untagged(struct store *st, const char *period, bool by_service,
                                   struct core_err *err)
{
    struct series s = {.items = json_array()};
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT %s AS k, COUNT(*) AS n, SUM(billed_n) AS b, SUM(effective_n) AS "
             "e "
             "FROM cost_lines WHERE tag_team IS NULL%s GROUP BY k ORDER BY b DESC, k",
             by_service ? "COALESCE(service_name, '(none)')"
                        : "COALESCE(sub_account, billing_account)",
             period ? " AND period = ?" : "");
    struct store_value p[1] = {store_v_text(period)};
    if (!s.items || store_query(st, sql, p, period ? 1 : 0, series_row, &s, err)) {
        json_decref(s.items);
        return NULL;
    }
    return json_pack("{s:s, s:s?, s:o, s:o, s:o}", "by", by_service ? "service" : "account",
                     "period", period, "items", s.items, "total_billed", jmoney(s.tb),
                     "total_effective", jmoney(s.te));
}

#define DAY_EXPR "COALESCE(substr(charge_start, 1, 10), period || '-01')"

struct json_t *cloud_cost_trend(struct store *st, const char *period, bool monthly, int group,
                                struct core_err *err)
{
    struct series s = {.items = json_array(), .with_date = true};
    const char *key = group == CLOUD_BY_TEAM      ? "COALESCE(tag_team, 'unallocated')"
                      : group == CLOUD_BY_SERVICE ? "COALESCE(tag_service, 'unallocated')"
                                                  : "''";
    char sql[600];
    snprintf(sql, sizeof(sql),
             "SELECT %s AS d, %s AS k, SUM(billed_n) AS b, SUM(effective_n) AS e "
             "FROM cost_lines%s GROUP BY d, k ORDER BY d, k",
             monthly ? "period" : DAY_EXPR, key, period ? " WHERE period = ?" : "");
    struct store_value p[1] = {store_v_text(period)};
    if (!s.items || store_query(st, sql, p, period ? 1 : 0, series_row, &s, err)) {
        json_decref(s.items);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s?, s:o, s:o, s:o}", "interval", monthly ? "monthly" : "daily",
                     "by",
                     group == CLOUD_BY_TEAM      ? "team"
                     : group == CLOUD_BY_SERVICE ? "service"
                                                 : "total",
                     "period", period, "items", s.items, "total_billed", jmoney(s.tb),
                     "total_effective", jmoney(s.te));
}

/* ---- commitments ---- */

/* Usage a commitment could cover: compute and database usage priced on demand
 * or by a commitment, and anything a commitment did cover. */
#define ELIGIBLE                                                                                   \
    "charge_category = 'Usage' AND (commitment_status = 'used' OR "                                \
    "(pricing_category = 'on-demand' AND (lower(service_category) LIKE "                           \
    "'%compute%' OR "                                                                              \
    "lower(service_category) LIKE '%database%' OR lower(service_name) LIKE "                       \
    "'%compute%' OR "                                                                              \
    "lower(service_name) LIKE '%database%')))"
#define ODEQ "(CASE WHEN list_n > 0 THEN list_n ELSE billed_n END)"

struct commit_ctx {
    json_t *types;
};

static int commit_type_row(void *arg, const struct store_row *row)
{
    struct commit_ctx *c = arg;
    int64_t used = store_row_int(row, "used"), unused = store_row_int(row, "unused");
    const char *t = store_row_text(row, "t");
    json_t *it = json_pack("{s:s, s:I, s:o, s:o, s:o, s:o}", "type", t ? t : "", "commitments",
                           (json_int_t)store_row_int(row, "c"), "used", jmoney(used), "unused",
                           jmoney(unused), "utilization_pct", jpct(used, used + unused),
                           "covered_ondemand_equiv", jmoney(store_row_int(row, "cov")));
    return json_array_append_new(c->types, it) ? CORE_E_NOMEM : 0;
}

struct json_t *cloud_cost_commitments(struct store *st, const char *period, struct core_err *err)
{
    struct commit_ctx c = {.types = json_array()};
    struct store_value p[1] = {store_v_text(period)};
    size_t np = period ? 1 : 0;
    int64_t covered = 0, ondemand = 0;
    static const char *const q_cov[2] = {"SELECT SUM(" ODEQ ") FROM cost_lines WHERE " ELIGIBLE
                                         " AND commitment_status = 'used'",
                                         "SELECT SUM(" ODEQ ") FROM cost_lines WHERE " ELIGIBLE
                                         " AND commitment_status = 'used' AND period = ?"};
    static const char *const q_od[2] = {"SELECT SUM(" ODEQ ") FROM cost_lines WHERE " ELIGIBLE
                                        " AND commitment_status IS NULL",
                                        "SELECT SUM(" ODEQ ") FROM cost_lines WHERE " ELIGIBLE
                                        " AND commitment_status IS NULL AND period = ?"};
#define Q_TYPES(where)                                                                             \
    "SELECT commitment_type AS t, COUNT(DISTINCT commitment_id) AS c, "                            \
    "SUM(CASE WHEN commitment_status = 'used' THEN effective_n ELSE 0 END) AS "                    \
    "used, "                                                                                       \
    "SUM(unused_commitment_n) AS unused, "                                                         \
    "SUM(CASE WHEN commitment_status = 'used' THEN " ODEQ " ELSE 0 END) AS cov "                   \
    "FROM cost_lines WHERE commitment_type IS NOT NULL" where " GROUP BY t ORDER BY t"
    static const char *const q_types[2] = {Q_TYPES(""), Q_TYPES(" AND period = ?")};
#undef Q_TYPES
    if (!c.types || store_query_int(st, q_cov[np], p, np, &covered, err) ||
        store_query_int(st, q_od[np], p, np, &ondemand, err) ||
        store_query(st, q_types[np], p, np, commit_type_row, &c, err))
        goto fail;
    return json_pack("{s:s?, s:o, s:o, s:o, s:o, s:o}", "period", period, "eligible_ondemand_equiv",
                     jmoney(covered + ondemand), "covered_ondemand_equiv", jmoney(covered),
                     "ondemand", jmoney(ondemand), "coverage_pct",
                     jpct(covered, covered + ondemand), "types", c.types);
fail:
    json_decref(c.types);
    return NULL;
}

/* ---- recommendation ---- */

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

int cloud_recommend_series(const int64_t *daily, size_t n, double percentile, double discount_pct,
                           struct cloud_recommendation *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0 || !(percentile >= 0 && percentile <= 100) ||
        !(discount_pct >= 0 && discount_pct < 100))
        return CORE_E_INVAL;
    int64_t *s = core_malloc(n * sizeof(*s));
    if (!s)
        return CORE_E_NOMEM;
    memcpy(s, daily, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_i64);
    /* nearest rank: the smallest value with at least percentile % of the days
     * at or below it */
    size_t rank = (size_t)ceil(percentile / 100.0 * (double)n);
    out->baseline_daily_n = s[rank ? rank - 1 : 0];
    if (out->baseline_daily_n < 0)
        out->baseline_daily_n = 0;
    __int128 sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += daily[i];
    out->mean_daily_n = (int64_t)(sum / (__int128)n);
    out->days = n;
    out->ondemand_hourly_n = out->baseline_daily_n / 24;
    out->commitment_hourly_n =
        (int64_t)llround((double)out->ondemand_hourly_n * (1.0 - discount_pct / 100.0));
    out->monthly_savings_n =
        (int64_t)llround((double)out->ondemand_hourly_n * 730.0 * discount_pct / 100.0);
    core_free(s);
    return 0;
}

struct day_sum {
    int64_t first;
    int64_t *v;
    size_t n;
};

static int day_sum_row(void *arg, const struct store_row *row)
{
    struct day_sum *ds = arg;
    int64_t d = day_num(store_row_text(row, "d"));
    if (d >= ds->first && d < ds->first + (int64_t)ds->n)
        ds->v[d - ds->first] += store_row_int(row, "b");
    return 0;
}

struct json_t *cloud_cost_recommend(struct store *st, int days, double discount_pct,
                                    double percentile, struct core_err *err)
{
    if (days < 1 || days > 366) {
        core_err_set(err, CORE_E_INVAL, "--days wants 1 to 366, not %d", days);
        return NULL;
    }
    if (!(discount_pct > 0 && discount_pct < 100)) {
        core_err_set(err, CORE_E_INVAL, "the discount must be between 0 and 100 %%");
        return NULL;
    }
    char last[24];
    if (query_text(st, "SELECT MAX(substr(charge_start, 1, 10)) FROM cost_lines", NULL, 0, last,
                   sizeof(last), err))
        return NULL;
    int64_t end = day_num(last);
    json_t *assume = json_array();
    char a[300];
    if (end < 0) {
        json_array_append_new(assume, json_string("no charges with dates are stored: import a "
                                                  "billing export with pave cost import FILE"));
        return json_pack("{s:n, s:I, s:o}", "recommendation", "days", (json_int_t)days,
                         "assumptions", assume);
    }
    struct day_sum ds = {.first = end - days + 1, .n = (size_t)days};
    ds.v = core_calloc((size_t)days, sizeof(*ds.v));
    char from[11], to[11];
    day_str(ds.first, from);
    day_str(end + 1, to);
    struct store_value p[2] = {store_v_text(from), store_v_text(to)};
    struct cloud_recommendation r;
    if (!ds.v || store_query(st,
                             "SELECT substr(charge_start, 1, 10) AS d, SUM(billed_n) AS b FROM "
                             "cost_lines WHERE " ELIGIBLE " AND commitment_status IS NULL AND "
                             "charge_start >= ? AND charge_start < ? GROUP BY d",
                             p, 2, day_sum_row, &ds, err)) {
        core_free(ds.v);
        json_decref(assume);
        return NULL;
    }
    cloud_recommend_series(ds.v, ds.n, percentile, discount_pct, &r);
    size_t with_data = 0;
    for (size_t i = 0; i < ds.n; i++)
        with_data += ds.v[i] != 0;
    core_free(ds.v);
    char last_day[11];
    day_str(end, last_day);
    snprintf(a, sizeof(a), "window: the %d days %s to %s, ending at the latest charge date stored",
             days, from, last_day);
    json_array_append_new(assume, json_string(a));
    json_array_append_new(assume, json_string("eligible spend: on-demand usage in compute and "
                                              "database service categories, at billed cost"));
    snprintf(a, sizeof(a),
             "baseline: the %g%s percentile of daily eligible spend, days "
             "without spend "
             "counted as 0",
             percentile, percentile == 1 ? "st" : "th");
    json_array_append_new(assume, json_string(a));
    snprintf(a, sizeof(a),
             "discount: %g%% off on-demand prices for a 1-year, no-upfront commitment "
             "(assumed, set with --discount)",
             discount_pct);
    json_array_append_new(assume, json_string(a));
    json_array_append_new(assume, json_string("usage continues at least at the baseline for the "
                                              "whole term; a month has 730 hours"));
    json_array_append_new(assume, json_string("commitment is per hour of discounted spend (a "
                                              "compute savings plan); spend above it stays "
                                              "on demand"));
    char text[300], ch[48], sv[48];
    cloud_money_format(r.commitment_hourly_n, 4, ch, sizeof(ch));
    cloud_money_format(r.monthly_savings_n, 2, sv, sizeof(sv));
    if (r.commitment_hourly_n > 0)
        snprintf(text, sizeof(text),
                 "commit %s per hour (1-year savings plan); estimated savings %s "
                 "per month",
                 ch, sv);
    else
        snprintf(text, sizeof(text),
                 "no commitment: on-demand eligible spend has no steady baseline "
                 "in the window");
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "recommendation", text, "window_start", from, "window_end", last_day, "days",
                     (json_int_t)days, "days_with_spend", (json_int_t)with_data, "percentile",
                     percentile, "discount_pct", discount_pct, "baseline_daily",
                     jmoney(r.baseline_daily_n), "mean_daily", jmoney(r.mean_daily_n),
                     "ondemand_hourly", jmoney(r.ondemand_hourly_n), "commitment_hourly",
                     jmoney(r.commitment_hourly_n), "monthly_savings", jmoney(r.monthly_savings_n),
                     "annual_savings", jmoney(r.monthly_savings_n * 12), "assumptions", assume);
}

/* ---- budgets ---- */

int cloud_default_period(struct store *st, char out[16], struct core_err *err)
{
    return query_text(st,
                      "SELECT period FROM cost_lines GROUP BY period HAVING COUNT(*) * 10 >= "
                      "(SELECT MAX(c) FROM (SELECT COUNT(*) AS c FROM cost_lines GROUP BY "
                      "period)) ORDER BY period DESC LIMIT 1",
                      NULL, 0, out, 16, err);
}

void cloud_budget_forecast(int64_t actual_n, int day, int days_in_month_, int64_t budget_n,
                           int alert_pct, int64_t *forecast_n, const char **state)
{
    if (day < 1)
        day = 1;
    if (day > days_in_month_)
        day = days_in_month_;
    *forecast_n = (int64_t)((__int128)actual_n * days_in_month_ / day);
    if (actual_n > budget_n)
        *state = CLOUD_BUDGET_OVER;
    else if (*forecast_n > budget_n || (__int128)actual_n * 100 >= (__int128)budget_n * alert_pct)
        *state = CLOUD_BUDGET_AT_RISK;
    else
        *state = CLOUD_BUDGET_OK;
}

int cloud_budget_set(struct store *st, const char *team, int64_t monthly_n, int alert_pct,
                     const char *actor, struct core_err *err)
{
    if (!team || !*team || strlen(team) > 200)
        return core_err_set(err, CORE_E_INVAL, "a budget needs a team name");
    if (monthly_n <= 0)
        return core_err_set(err, CORE_E_INVAL, "a budget amount must be above 0");
    if (alert_pct < 1 || alert_pct > 1000)
        return core_err_set(err, CORE_E_INVAL, "the alert threshold wants 1 to 1000 %%");
    char now[40], detail[120], amt[48];
    core_time_format(core_now_ms(), now, sizeof(now));
    struct store_value p[5] = {store_v_text(team), STORE_V_INT(monthly_n), STORE_V_INT(alert_pct),
                               store_v_text(now), store_v_text(actor)};
    int rc;
    if ((rc = store_txn_begin(st, err)))
        return rc;
    if ((rc = store_exec(st, "DELETE FROM cost_budgets WHERE team = ?", p, 1, NULL, err)) ||
        (rc = store_exec(st,
                         "INSERT INTO cost_budgets (team, monthly_n, alert_pct, updated_at, "
                         "updated_by) VALUES (?, ?, ?, ?, ?)",
                         p, 5, NULL, err)))
        goto fail;
    cloud_money_format(monthly_n, 2, amt, sizeof(amt));
    snprintf(detail, sizeof(detail), "monthly %s, alert at %d%%", amt, alert_pct);
    struct store_audit_event ev = {.actor = actor ? actor : "system",
                                   .action = "cost.budget.set",
                                   .kind = "budget",
                                   .object = team,
                                   .detail = detail};
    if ((rc = store_audit_append(st, &ev, err)) || (rc = store_txn_commit(st, err)))
        goto fail;
    return 0;
fail:
    store_txn_rollback(st);
    return rc;
}

struct budget_ctx {
    json_t *items;
};

static int budget_row(void *arg, const struct store_row *row)
{
    struct budget_ctx *b = arg;
    const char *t = store_row_text(row, "team");
    json_t *it = json_pack("{s:o, s:I, s:I}", "team", jtext(t), "budget_n",
                           (json_int_t)store_row_int(row, "monthly_n"), "alert_pct",
                           (json_int_t)store_row_int(row, "alert_pct"));
    return json_array_append_new(b->items, it) ? CORE_E_NOMEM : 0;
}

static int64_t money_of(const json_t *v)
{
    int64_t n = 0;
    if (json_string_value(v))
        cloud_parse_money(json_string_value(v), &n);
    return n;
}

struct json_t *cloud_budget_list(struct store *st, const char *period, bool record,
                                 struct core_err *err)
{
    char per[16], last[24];
    struct budget_ctx b = {.items = json_array()};
    json_t *report = NULL, *out = NULL;
    if (period) {
        if (!valid_period(period)) {
            core_err_set(err, CORE_E_INVAL, "period wants YYYY-MM, not '%s'", period);
            goto out;
        }
        snprintf(per, sizeof(per), "%s", period);
    } else {
        if (cloud_default_period(st, per, err))
            goto out;
        if (!valid_period(per)) {
            time_t now = (time_t)(core_now_ms() / 1000);
            struct tm tm;
            gmtime_r(&now, &tm);
            snprintf(per, sizeof(per), "%04d-%02d", (tm.tm_year + 1900) % 10000,
                     (tm.tm_mon + 1) % 100);
        }
    }
    int y = atoi(per), m = atoi(per + 5);
    int dim = days_in_month(y, m);
    struct store_value pp[1] = {store_v_text(per)};
    if (query_text(st,
                   "SELECT MAX(substr(charge_start, 1, 10)) FROM cost_lines "
                   "WHERE period = ?",
                   pp, 1, last, sizeof(last), err))
        goto out;
    /* the month's elapsed days: up to the latest charge stored for it (exports
     * lag); without charges, today in the current month, else the whole month */
    int as_of = dim;
    int64_t ld = day_num(last);
    if (ld >= 0 && ld >= days_from_civil(y, m, 1)) {
        as_of = (int)(ld - days_from_civil(y, m, 1)) + 1;
    } else {
        time_t now = (time_t)(core_now_ms() / 1000);
        struct tm tm;
        gmtime_r(&now, &tm);
        if (tm.tm_year + 1900 == y && tm.tm_mon + 1 == m)
            as_of = tm.tm_mday;
    }
    if (as_of > dim)
        as_of = dim;
    if (!b.items ||
        store_query(st, "SELECT team, monthly_n, alert_pct FROM cost_budgets ORDER BY team", NULL,
                    0, budget_row, &b, err))
        goto out;
    if (!(report = cloud_cost_team_report(st, per, true, err)))
        goto out;
    json_t *items = json_array();
    int64_t over = 0, fresh = 0;
    size_t i;
    json_t *bi;
    json_array_foreach(b.items, i, bi)
    {
        const char *team = json_string_value(json_object_get(bi, "team"));
        int64_t budget = json_integer_value(json_object_get(bi, "budget_n"));
        int pct = (int)json_integer_value(json_object_get(bi, "alert_pct"));
        int64_t actual = 0, forecast;
        size_t k;
        json_t *ri;
        json_array_foreach(json_object_get(report, "items"), k, ri)
        {
            if (strcmp(json_string_value(json_object_get(ri, "team")), team) == 0)
                actual = money_of(json_object_get(ri, "billed"));
        }
        const char *state;
        cloud_budget_forecast(actual, as_of, dim, budget, pct, &forecast, &state);
        over += strcmp(state, CLOUD_BUDGET_OVER) == 0;
        char msg[300], ab[48], bb[48], fb[48], alert[320] = "";
        if (strcmp(state, CLOUD_BUDGET_OK) != 0) {
            cloud_money_format(actual, 2, ab, sizeof(ab));
            cloud_money_format(budget, 2, bb, sizeof(bb));
            cloud_money_format(forecast, 2, fb, sizeof(fb));
            snprintf(msg, sizeof(msg),
                     "team '%s' is %s its %s budget: %s spent by day %d of %d, "
                     "forecast %s",
                     team, strcmp(state, CLOUD_BUDGET_OVER) == 0 ? "over" : "at risk of exceeding",
                     bb, ab, as_of, dim, fb);
            struct store_value ap[3] = {store_v_text(team), store_v_text(per), {0}};
            struct text_out t = {alert, sizeof(alert)};
            if (store_query(st,
                            "SELECT message FROM cost_alerts WHERE kind = 'budget' "
                            "AND key = ? "
                            "AND period = ?",
                            ap, 2, text_row, &t, err)) {
                json_decref(items);
                goto out;
            }
            if (record && !alert[0]) {
                char now[40];
                core_time_format(core_now_ms(), now, sizeof(now));
                struct store_value ip[4] = {store_v_text(team), store_v_text(per),
                                            store_v_text(msg), store_v_text(now)};
                if (store_exec(st,
                               "INSERT INTO cost_alerts (kind, key, period, message, "
                               "created_at) "
                               "VALUES ('budget', ?, ?, ?, ?)",
                               ip, 4, NULL, err)) {
                    json_decref(items);
                    goto out;
                }
                log_warn("cloud", "budget alert", LOG_STR("team", team), LOG_STR("period", per),
                         LOG_STR("state", state), LOG_STR("actual", ab), LOG_STR("budget", bb),
                         LOG_STR("forecast", fb));
                snprintf(alert, sizeof(alert), "%s", msg);
                fresh++;
            }
        }
        json_array_append_new(items,
                              json_pack("{s:o, s:o, s:I, s:o, s:o, s:o, s:s, s:o?}", "team",
                                        jtext(team), "budget", jmoney(budget), "alert_pct",
                                        (json_int_t)pct, "actual", jmoney(actual), "forecast",
                                        jmoney(forecast), "used_pct", jpct(actual, budget), "state",
                                        state, "alert", alert[0] ? jtext(alert) : NULL));
    }
    out = json_pack("{s:s, s:I, s:I, s:o, s:I, s:I}", "period", per, "as_of_day", (json_int_t)as_of,
                    "days_in_month", (json_int_t)dim, "items", items, "over", (json_int_t)over,
                    "new_alerts", (json_int_t)fresh);
out:
    json_decref(report);
    json_decref(b.items);
    return out;
}

/* ---- anomalies ---- */

bool cloud_anomaly_score(const int64_t *prev, size_t n, int64_t today, double threshold,
                         double *score, int64_t *baseline_n)
{
    *score = 0;
    *baseline_n = 0;
    if (n == 0)
        return false;
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++)
        mean += (double)prev[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        var += ((double)prev[i] - mean) * ((double)prev[i] - mean);
    double sd = sqrt(var / (double)n);
    double spread = sd;
    if (spread < fabs(mean) * 0.1)
        spread = fabs(mean) * 0.1;
    if (spread < 0.01 * NANO)
        spread = 0.01 * NANO;
    *baseline_n = (int64_t)llround(mean);
    *score = ((double)today - mean) / spread;
    int64_t *s = core_malloc(n * sizeof(*s));
    int64_t median = *baseline_n;
    if (s) {
        memcpy(s, prev, n * sizeof(*s));
        qsort(s, n, sizeof(*s), cmp_i64);
        median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        core_free(s);
    }
    return *score >= threshold && today > median;
}

struct svc_day {
    char *svc;
    int64_t day;
    int64_t b;
};

struct svc_days {
    struct svc_day *a;
    size_t n;
};

static int svc_day_row(void *arg, const struct store_row *row)
{
    struct svc_days *sd = arg;
    int64_t d = day_num(store_row_text(row, "d"));
    if (d < 0)
        return 0;
    struct svc_day *na = core_realloc(sd->a, (sd->n + 1) * sizeof(*na));
    if (!na)
        return CORE_E_NOMEM;
    sd->a = na;
    const char *s = store_row_text(row, "s");
    if (!(na[sd->n].svc = core_strdup(s ? s : "(none)")))
        return CORE_E_NOMEM;
    na[sd->n].day = d;
    na[sd->n].b = store_row_int(row, "b");
    sd->n++;
    return 0;
}

/* Per dimension: key -> [today, sum of the previous days] */
struct explain_ctx {
    json_t *dims[4];
    int64_t day;
};
static const char *const dim_names[4] = {"usage type", "resource", "account", "region"};
static const char *const dim_cols[4] = {"usage_type", "resource_id", "acct", "region"};

static int explain_row(void *arg, const struct store_row *row)
{
    struct explain_ctx *x = arg;
    bool today = day_num(store_row_text(row, "d")) == x->day;
    int64_t b = store_row_int(row, "b");
    for (int i = 0; i < 4; i++) {
        const char *k = store_row_text(row, dim_cols[i]);
        if (!k)
            k = "(none)";
        json_t *v = json_object_get(x->dims[i], k);
        if (!v) {
            v = json_pack("[I, I]", (json_int_t)0, (json_int_t)0);
            if (!v || json_object_set_new(x->dims[i], k, v))
                return CORE_E_NOMEM;
        }
        json_t *slot = json_array_get(v, today ? 0 : 1);
        json_integer_set(slot, json_integer_value(slot) + b);
    }
    return 0;
}

static int cmp_delta(const void *pa, const void *pb)
{
    const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    int64_t da = money_of(json_object_get(a, "delta")), db = money_of(json_object_get(b, "delta"));
    return da > db ? -1 : da < db;
}

/* The top mover of each dimension for (service, day) against the `ndays`
 * before it, ordered by how much each moved. */
static json_t *explain(struct store *st, const char *svc, int64_t day, size_t ndays,
                       struct core_err *err)
{
    struct explain_ctx x = {.day = day};
    char from[11], to[11];
    day_str(day - (int64_t)ndays, from);
    day_str(day + 1, to);
    struct store_value p[3] = {store_v_text(svc), store_v_text(from), store_v_text(to)};
    json_t *top = json_array();
    json_t *cand[4] = {NULL};
    size_t nc = 0;
    for (int i = 0; i < 4; i++)
        x.dims[i] = json_object();
    if (store_query(st,
                    "SELECT usage_type, resource_id, COALESCE(sub_account, "
                    "billing_account) AS "
                    "acct, region, substr(charge_start, 1, 10) AS d, "
                    "SUM(billed_n) AS b FROM "
                    "cost_lines WHERE COALESCE(service_name, '(none)') = ? AND "
                    "charge_start >= ? "
                    "AND charge_start < ? GROUP BY usage_type, resource_id, "
                    "acct, region, d",
                    p, 3, explain_row, &x, err)) {
        json_decref(top);
        top = NULL;
        goto out;
    }
    for (int i = 0; i < 4; i++) {
        const char *k, *best = NULL;
        json_t *v;
        int64_t bd = 0;
        json_object_foreach(x.dims[i], k, v)
        {
            int64_t d = json_integer_value(json_array_get(v, 0)) -
                        json_integer_value(json_array_get(v, 1)) / (int64_t)(ndays ? ndays : 1);
            if (d > bd || (d == bd && best && d > 0 && strcmp(k, best) < 0)) {
                bd = d;
                best = k;
            }
        }
        if (best && bd > 0)
            cand[nc++] = json_pack("{s:s, s:o, s:o}", "dimension", dim_names[i], "key", jtext(best),
                                   "delta", jmoney(bd));
    }
    qsort(cand, nc, sizeof(cand[0]), cmp_delta);
    for (size_t i = 0; i < nc; i++)
        json_array_append_new(top, cand[i]);
out:
    for (int i = 0; i < 4; i++)
        json_decref(x.dims[i]);
    return top;
}

static int cmp_anom(const void *pa, const void *pb)
{
    const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    int c = strcmp(json_string_value(json_object_get(b, "date")),
                   json_string_value(json_object_get(a, "date")));
    if (c)
        return c;
    double sa = json_real_value(json_object_get(a, "score")),
           sb = json_real_value(json_object_get(b, "score"));
    return sa > sb ? -1 : sa < sb;
}

struct json_t *cloud_cost_anomalies(struct store *st, int days, double threshold,
                                    struct core_err *err)
{
    if (days < 3 || days > 90) {
        core_err_set(err, CORE_E_INVAL, "--days wants 3 to 90, not %d", days);
        return NULL;
    }
    if (!(threshold > 0 && threshold < 1000)) {
        core_err_set(err, CORE_E_INVAL, "--threshold wants a number above 0");
        return NULL;
    }
    struct svc_days sd = {0};
    json_t **found = NULL, *out = NULL;
    size_t nfound = 0;
    int64_t *series = NULL;
    if (store_query(st,
                    "SELECT COALESCE(service_name, '(none)') AS s, "
                    "substr(charge_start, 1, 10) AS "
                    "d, SUM(billed_n) AS b FROM cost_lines WHERE charge_start IS "
                    "NOT NULL "
                    "GROUP BY s, d ORDER BY s, d",
                    NULL, 0, svc_day_row, &sd, err))
        goto out;
    for (size_t i = 0; i < sd.n;) {
        size_t j = i;
        while (j < sd.n && strcmp(sd.a[j].svc, sd.a[i].svc) == 0)
            j++;
        int64_t first = sd.a[i].day, last = sd.a[j - 1].day;
        size_t len = (size_t)(last - first + 1);
        if (len > 4000)
            len = 4000, first = last - 3999;
        core_free(series);
        if (!(series = core_calloc(len, sizeof(*series)))) {
            core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
        for (size_t k = i; k < j; k++)
            if (sd.a[k].day >= first)
                series[sd.a[k].day - first] += sd.a[k].b;
        for (size_t d = 3; d < len && nfound < ANOMALY_MAX; d++) {
            size_t w = d < (size_t)days ? d : (size_t)days, with = 0;
            double score;
            int64_t base;
            for (size_t k = d - w; k < d; k++)
                with += series[k] != 0;
            /* a service needs a history (3 days with spend) before a day can
             * stand out from it */
            if (with < 3)
                continue;
            if (!cloud_anomaly_score(series + d - w, w, series[d], threshold, &score, &base))
                continue;
            json_t *top = explain(st, sd.a[i].svc, first + (int64_t)d, w, err);
            if (!top)
                goto out;
            char date[11], sp[48], bs[48], dl[48];
            day_str(first + (int64_t)d, date);
            cloud_money_format(series[d], 2, sp, sizeof(sp));
            cloud_money_format(base, 2, bs, sizeof(bs));
            cloud_money_format(series[d] - base, 2, dl, sizeof(dl));
            struct core_buf ex;
            core_buf_init(&ex, 4096);
            core_buf_addf(&ex, "%s on %s: %s against a %zu-day mean of %s (+%s, %.1f spreads)",
                          sd.a[i].svc, date, sp, w, bs, dl, score);
            size_t k;
            json_t *t;
            json_array_foreach(top, k, t)
            {
                char tdl[48];
                cloud_money_format(money_of(json_object_get(t, "delta")), 2, tdl, sizeof(tdl));
                core_buf_addf(&ex, "%s %s '%s' +%s", k ? "," : "; moved most:",
                              json_string_value(json_object_get(t, "dimension")),
                              json_string_value(json_object_get(t, "key")), tdl);
            }
            json_t **nf = core_realloc(found, (nfound + 1) * sizeof(*nf));
            if (!nf) {
                core_buf_release(&ex);
                json_decref(top);
                core_err_set(err, CORE_E_NOMEM, "out of memory");
                goto out;
            }
            found = nf;
            found[nfound++] =
                json_pack("{s:o, s:s, s:o, s:o, s:o, s:f, s:o, s:o}", "service", jtext(sd.a[i].svc),
                          "date", date, "spend", jmoney(series[d]), "baseline", jmoney(base),
                          "delta", jmoney(series[d] - base), "score", round(score * 100) / 100,
                          "top", top, "explanation", jtext(ex.data));
            core_buf_release(&ex);
        }
        i = j;
    }
    if (nfound)
        qsort(found, nfound, sizeof(*found), cmp_anom);
    json_t *items = json_array();
    for (size_t i = 0; i < nfound; i++)
        json_array_append_new(items, found[i]);
    nfound = 0;
    out = json_pack("{s:I, s:f, s:o}", "days", (json_int_t)days, "threshold", threshold, "items",
                    items);
out:
    for (size_t i = 0; i < nfound; i++)
        json_decref(found[i]);
    core_free(found);
    core_free(series);
    for (size_t i = 0; i < sd.n; i++)
        core_free(sd.a[i].svc);
    core_free(sd.a);
    return out;
}

/* ---- demo data ---- */

int cloud_demo_load(struct store *st, const char *dir, struct core_err *err)
{
    static const char *const files[] = {"focus1.0_sample_1000.csv",
                                        "aws_cur_legacy_sample_anonymous.csv"};
    static const char rule[] = "name: demo-shared-compute\n"
                               "description: the demo spreads shared EC2 evenly (pave up)\n"
                               "match: {service: [Amazon Elastic Compute Cloud]}\n"
                               "method: even\n"
                               "teams: [payments, identity]\n";
    int64_t have = 0;
    int rc;
    if ((rc = store_query_int(st, "SELECT COUNT(*) FROM cost_lines", NULL, 0, &have, err)))
        return rc;
    if (have)
        return 0; /* only into an empty store: never over real data */
    struct cloud_import_stats stats = {0};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        if ((rc = cloud_billing_import(st, path, NULL, &stats, err)))
            goto out;
    }
    char name[64];
    if ((rc = cloud_split_rule_put(st, rule, sizeof(rule) - 1, "system", name, err)) ||
        (rc = cloud_budget_set(st, "payments", 5 * NANO, 80, "system", err)) ||
        (rc = cloud_budget_set(st, "identity", 20 * NANO, 80, "system", err)))
        goto out;
    /* record the demo's budget alert, as pave cost budget check would */
    json_t *b = cloud_budget_list(st, NULL, true, err);
    if (!b) {
        rc = err && err->code ? err->code : CORE_E_NOMEM;
        goto out;
    }
    json_decref(b);
    log_info("cloud", "demo billing data imported", LOG_STR("dir", dir),
             LOG_INT("rows", stats.imported));
out:
    cloud_import_stats_release(&stats);
    return rc;
}
