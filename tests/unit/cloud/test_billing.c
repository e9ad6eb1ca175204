/* Unit tests for billing import (src/cloud/): the CSV reader's edge cases, each
 * format's mapping (on the real sample files where we have them), value
 * normalization, re-import replacing a period, and malformed rows reported by
 * line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <zlib.h>

#include "../testutil.h"
#include "cloud/cloud.h"

#ifndef BILLING_DATA
#define BILLING_DATA "tests/data/billing"
#endif

static char focus_path[512], cur_path[512];

static void find_data(void)
{
    const char *cands[] = {"../tests/data/billing", "tests/data/billing", BILLING_DATA};
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
        snprintf(focus_path, sizeof(focus_path), "%s/focus1.0_sample_1000.csv", cands[i]);
        snprintf(cur_path, sizeof(cur_path), "%s/aws_cur_legacy_sample_anonymous.csv", cands[i]);
        if (access(focus_path, R_OK) == 0)
            return;
    }
}

/* Reads all records of a memory CSV; returns the count, fills the first
 * record's fields. */
static int read_all(const char *text, char out[][64], size_t *nf, int *bad)
{
    struct core_err err = {0};
    struct cloud_csv *r = cloud_csv_open_mem(text, strlen(text), &err);
    assert_non_null(r);
    char **f;
    size_t n;
    int64_t line;
    int count = 0, rc;
    *bad = 0;
    while ((rc = cloud_csv_next(r, &f, &n, &line, &err)) != 0) {
        if (rc < 0) {
            (*bad)++;
            continue;
        }
        if (count == 0) {
            *nf = n;
            for (size_t i = 0; i < n && i < 8; i++)
                snprintf(out[i], 64, "%s", f[i]);
        }
        count++;
    }
    cloud_csv_free(r);
    return count;
}

static void test_csv_edges(void **state)
{
    (void)state;
    char f[8][64];
    size_t n = 0;
    int bad;
    /* BOM, CRLF, quoted comma, doubled quote, embedded CRLF newline, blank line,
     * no final EOL */
    assert_int_equal(read_all("\xEF\xBB\xBF"
                              "a,\"b,c\",\"say \"\"hi\"\"\",\"l1\r\nl2\"\r\n\r\nx,y,z,w",
                              f, &n, &bad),
                     2);
    assert_int_equal(bad, 0);
    assert_int_equal(n, 4);
    assert_string_equal(f[0], "a");
    assert_string_equal(f[1], "b,c");
    assert_string_equal(f[2], "say \"hi\"");
    assert_string_equal(f[3], "l1\r\nl2");
    /* empty fields */
    assert_int_equal(read_all(",,\n", f, &n, &bad), 1);
    assert_int_equal(n, 3);
    assert_string_equal(f[2], "");
    /* unclosed quote at end of input, and text after a closing quote: malformed
     */
    assert_int_equal(read_all("a,b\n\"open,c\n", f, &n, &bad), 1);
    assert_int_equal(bad, 1);
    assert_int_equal(read_all("\"x\"y,1\nok,2\n", f, &n, &bad), 1);
    assert_int_equal(bad, 1);
    assert_string_equal(f[0], "ok");
}

static void test_csv_lines_and_cap(void **state)
{
    (void)state;
    /* line numbers count embedded newlines; a field over 1 MiB is refused, the
     * next row read */
    size_t big = CLOUD_CSV_FIELD_MAX + 10;
    char *text = malloc(big + 64);
    assert_non_null(text);
    strcpy(text, "h1,h2\n\"a\nb\",c\n");
    size_t off = strlen(text);
    memset(text + off, 'x', big);
    strcpy(text + off + big, ",1\nlast,2\n");
    struct core_err err = {0};
    struct cloud_csv *r = cloud_csv_open_mem(text, strlen(text), &err);
    char **f;
    size_t n;
    int64_t line;
    assert_int_equal(cloud_csv_next(r, &f, &n, &line, &err), 1);
    assert_int_equal(line, 1);
    assert_int_equal(cloud_csv_next(r, &f, &n, &line, &err), 1);
    assert_int_equal(line, 2);
    assert_int_equal(cloud_csv_next(r, &f, &n, &line, &err), CORE_E_INVAL);
    assert_int_equal(line, 4);
    assert_non_null(strstr(err.msg, "1 MiB"));
    assert_int_equal(cloud_csv_next(r, &f, &n, &line, &err), 1);
    assert_int_equal(line, 5);
    assert_string_equal(f[0], "last");
    assert_int_equal(cloud_csv_next(r, &f, &n, &line, &err), 0);
    cloud_csv_free(r);
    free(text);
}

static void test_values(void **state)
{
    (void)state;
    char t[21];
    assert_int_equal(cloud_parse_time("2024-09-18 22:00:00", t), 0);
    assert_string_equal(t, "2024-09-18T22:00:00Z");
    assert_int_equal(cloud_parse_time("2023-11-01T00:00:00.000Z", t), 0);
    assert_string_equal(t, "2023-11-01T00:00:00Z");
    assert_int_equal(cloud_parse_time("2024-01-01T01:30:00+02:00", t), 0);
    assert_string_equal(t, "2023-12-31T23:30:00Z");
    assert_int_equal(cloud_parse_time("09/18/2024", t), 0);
    assert_string_equal(t, "2024-09-18T00:00:00Z");
    assert_int_equal(cloud_parse_time("9/5/2024 1:00:00 PM", t), CORE_E_INVAL); /* 1-digit hour */
    assert_int_equal(cloud_parse_time("9/5/2024 01:00:00 PM", t), 0);
    assert_string_equal(t, "2024-09-05T13:00:00Z");
    assert_int_equal(cloud_parse_time("202411", t), 0);
    assert_string_equal(t, "2024-11-01T00:00:00Z");
    assert_int_equal(cloud_parse_time("yesterday", t), CORE_E_INVAL);
    assert_int_equal(cloud_parse_time("2024-13-01", t), CORE_E_INVAL);
    int64_t v;
    assert_int_equal(cloud_parse_money("0.00000080000", &v), 0);
    assert_int_equal(v, 800);
    assert_int_equal(cloud_parse_money("1.5E-3", &v), 0);
    assert_int_equal(v, 1500000);
    assert_int_equal(cloud_parse_money("-2", &v), 0);
    assert_int_equal(v, -2000000000);
    assert_int_equal(cloud_parse_money("12abc", &v), CORE_E_INVAL);
    assert_true(cloud_is_null("NULL"));
    assert_true(cloud_is_null(""));
    assert_false(cloud_is_null("0"));
    char m[40];
    cloud_money_format(-1234567890, 2, m, sizeof(m));
    assert_string_equal(m, "-1.23");
}

/* Maps a header and one row given as CSV text. The charge borrows the row, so
 * the reader lives until the next call (or map_row(NULL, ...)). */
static struct cloud_csv *last_reader;

static int map_row(const char *csv, struct cloud_map *m, struct cloud_charge *c,
                   struct core_err *err)
{
    cloud_csv_free(last_reader);
    last_reader = NULL;
    if (!csv)
        return 0;
    struct cloud_csv *r = cloud_csv_open_mem(csv, strlen(csv), err);
    char **f;
    size_t n;
    int64_t line;
    assert_int_equal(cloud_csv_next(r, &f, &n, &line, err), 1);
    int rc = cloud_billing_map(m, NULL, f, n, err);
    if (!rc) {
        assert_int_equal(cloud_csv_next(r, &f, &n, &line, err), 1);
        rc = cloud_billing_row(m, f, n, c, err);
    }
    last_reader = r;
    return rc;
}

static void test_formats(void **state)
{
    (void)state;
    struct cloud_map m;
    struct cloud_charge c;
    struct core_err err = {0};
    cloud_charge_init(&c);
    /* CUR 2.0: resource_tags as a JSON map with user_ keys */
    assert_int_equal(map_row("identity_line_item_id,bill_billing_period_start_"
                             "date,line_item_usage_start_date,"
                             "line_item_unblended_cost,line_item_line_item_type,"
                             "bill_payer_account_id,"
                             "line_item_product_code,resource_tags,savings_plan_"
                             "savings_plan_effective_cost,"
                             "reservation_effective_cost\n"
                             "x1,2024-10-01T00:00:00Z,2024-10-03T00:00:00Z,1.25,"
                             "SavingsPlanCoveredUsage,"
                             "111,AmazonEC2,\"{\"\"user_team\"\":"
                             "\"\"payments\"\",\"\"user_env\"\":"
                             "\"\"prod\"\"}\",0.75,\n",
                             &m, &c, &err),
                     0);
    assert_string_equal(m.fmt->name, "aws-cur2");
    assert_string_equal(c.period, "2024-10");
    assert_int_equal(c.billed_n, 1250000000);
    assert_int_equal(c.effective_n, 750000000);
    assert_string_equal(c.charge_category, "Usage");
    assert_string_equal(c.tag_team, "payments");
    assert_string_equal(c.tag_env, "prod");
    assert_string_equal(c.provider, "AWS");
    cloud_map_release(&m);
    /* Azure MCA: MM/DD/YYYY dates, tags without braces */
    assert_int_equal(map_row("billingAccountId,subscriptionId,date,meterCategory,"
                             "costInBillingCurrency,billingCurrency,tags,chargeType\n"
                             "ba1,sub1,10/05/2024,Virtual Machines,3.5,EUR,"
                             "\"\"\"team\"\": \"\"identity\"\",\"\"app\"\": \"\"login\"\"\","
                             "Usage\n",
                             &m, &c, &err),
                     0);
    assert_string_equal(m.fmt->name, "azure");
    assert_string_equal(c.period, "2024-10");
    assert_string_equal(c.charge_start, "2024-10-05T00:00:00Z");
    assert_string_equal(c.tag_team, "identity");
    assert_string_equal(c.tag_service, "login");
    assert_string_equal(c.currency, "EUR");
    cloud_map_release(&m);
    /* GCP: labels as [{key, value}] and invoice.month YYYYMM */
    assert_int_equal(map_row("billing_account_id,service.description,usage_start_time,cost,"
                             "currency,invoice.month,labels\n"
                             "01-AB,Compute Engine,2024-10-30 10:00:00 UTC,0.5,USD,202410,"
                             "\"[{\"\"key\"\":\"\"cost-center\"\",\"\"value\"\":\"\"cc-7\"\"}]"
                             "\"\n",
                             &m, &c, &err),
                     0);
    assert_string_equal(m.fmt->name, "gcp");
    assert_string_equal(c.tag_cost_center, "cc-7");
    assert_string_equal(c.provider, "Google Cloud");
    cloud_map_release(&m);
    /* OCI: one column per tag */
    assert_int_equal(map_row("lineItem/referenceNo,lineItem/tenantId,lineItem/intervalUsageStart,"
                             "product/service,cost/myCost,cost/currencyCode,tags/Team,tags/env\n"
                             "r1,ocid1.tenancy,2024-10-02T05:00Z,COMPUTE,2,USD,search,\n",
                             &m, &c, &err),
                     0);
    assert_string_equal(m.fmt->name, "oci");
    assert_string_equal(c.tag_team, "search");
    assert_null(c.tag_env);
    assert_string_equal(c.tags_json, "{\"Team\":\"search\"}");
    cloud_map_release(&m);
    /* unknown header */
    assert_int_equal(map_row("foo,bar\n1,2\n", &m, &c, &err), CORE_E_UNSUPPORTED);
    map_row(NULL, &m, &c, &err);
    cloud_charge_release(&c);
}

struct fx {
    struct test_env env;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f || test_env_open(&f->env))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    test_env_close(&f->env);
    free(f);
    return 0;
}

static int64_t total_billed(struct store *st, const char *period)
{
    struct cloud_report r;
    struct core_err err = {0};
    assert_int_equal(cloud_cost_report(st, CLOUD_BY_TEAM, period, &r, &err), 0);
    int64_t t = r.total_billed_n;
    cloud_report_release(&r);
    return t;
}

static void test_samples_and_reimport(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct cloud_import_stats s = {0};
    if (access(focus_path, R_OK) != 0)
        skip();
    assert_int_equal(cloud_billing_import(f->env.st, focus_path, NULL, &s, &err), 0);
    assert_string_equal(s.format, "focus");
    assert_int_equal(s.rows, 1000);
    assert_int_equal(s.malformed, 0);
    /* independent sum of BilledCost (Python Decimal over the
     * file): 20.52022672899 */
    int64_t t = total_billed(f->env.st, NULL);
    assert_true(t > 20520226729 - 1000 && t < 20520226729 + 1000);
    /* re-import replaces: the total stays */
    assert_int_equal(cloud_billing_import(f->env.st, focus_path, NULL, &s, &err), 0);
    assert_int_equal(total_billed(f->env.st, NULL), t);
    int64_t n = 0;
    assert_int_equal(
        store_query_int(f->env.st, "SELECT COUNT(*) FROM cost_lines", NULL, 0, &n, &err), 0);
    assert_int_equal(n, 1000);
    /* CUR legacy: 1281 rows, sum of lineItem/UnblendedCost 1.68230869740 */
    assert_int_equal(cloud_billing_import(f->env.st, cur_path, NULL, &s, &err), 0);
    assert_string_equal(s.format, "aws-cur");
    int64_t c = total_billed(f->env.st, "2023-11");
    assert_true(c > 1682308697 - 100 && c < 1682308697 + 100);
    /* env grouping on the FOCUS sample has an explicit unallocated bucket last */
    struct cloud_report r;
    assert_int_equal(cloud_cost_report(f->env.st, CLOUD_BY_ENV, "2024-09", &r, &err), 0);
    assert_true(r.n >= 2);
    assert_string_equal(r.items[r.n - 1].key, CLOUD_UNALLOCATED);
    cloud_report_release(&r);
    cloud_import_stats_release(&s);
}

static void write_file(const char *path, const char *text, bool gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        assert_non_null(g);
        assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
        gzclose(g);
    } else {
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
    }
}

static const char hdr[] = "BillingPeriodStart,ChargePeriodStart,BilledCost,BillingAccountId,"
                          "Tags\n";

static void test_replace_and_malformed(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct cloud_import_stats s = {0};
    char p1[400], p2[400], p3[400];
    snprintf(p1, sizeof(p1), "%s/oct.csv.gz", f->env.dir);
    snprintf(p2, sizeof(p2), "%s/oct2.csv", f->env.dir);
    snprintf(p3, sizeof(p3), "%s/bad.csv", f->env.dir);
    char text[2048];
    snprintf(text, sizeof(text),
             "%s2024-10-01,2024-10-02,10,A,team:payments\n"
             "2024-10-01,2024-10-03,5,A,NULL\n"
             "2024-11-01,2024-11-03,7,A,\n"
             "2024-10-01,2024-10-03,1,B,\n",
             hdr);
    write_file(p1, text, true);
    assert_int_equal(cloud_billing_import(f->env.st, p1, NULL, &s, &err), 0);
    assert_int_equal(total_billed(f->env.st, "2024-10"), 16000000000);
    /* a re-delivered October for account A replaces A's October only */
    snprintf(text, sizeof(text), "%s2024-10-01,2024-10-02,3,A,\n", hdr);
    write_file(p2, text, false);
    assert_int_equal(cloud_billing_import(f->env.st, p2, NULL, &s, &err), 0);
    assert_int_equal(total_billed(f->env.st, "2024-10"), 4000000000);
    assert_int_equal(total_billed(f->env.st, "2024-11"), 7000000000);
    /* malformed rows: reported by line, the period is left untouched */
    snprintf(text, sizeof(text),
             "%s2024-10-01,2024-10-02,100,A,\n"
             "2024-10-01,2024-10-02,abc,A,\n"
             "2024-10-01,2024-10-02,1\n"
             "2024-10-01,\"never\nclosed,1,A,\n",
             hdr);
    write_file(p3, text, false);
    cloud_import_stats_release(&s);
    assert_int_equal(cloud_billing_import(f->env.st, p3, NULL, &s, &err), 0);
    assert_int_equal(s.malformed, 3);
    assert_int_equal(s.nbad, 3);
    assert_int_equal(s.bad[0].line, 3);
    assert_non_null(strstr(s.bad[0].reason, "not a number"));
    assert_int_equal(s.bad[1].line, 4);
    assert_int_equal(s.bad[2].line, 5);
    assert_false(s.scopes[s.nscopes - 1].replaced);
    assert_int_equal(total_billed(f->env.st, "2024-10"), 4000000000);
    /* with allow_malformed the good row replaces A's October */
    struct cloud_import_opts o = {.allow_malformed = true};
    assert_int_equal(cloud_billing_import(f->env.st, p3, &o, &s, &err), 0);
    assert_int_equal(total_billed(f->env.st, "2024-10"), 101000000000);
    /* team grouping: the payments tag is gone after replacement, all unallocated
     */
    struct cloud_report r;
    assert_int_equal(cloud_cost_report(f->env.st, CLOUD_BY_TEAM, NULL, &r, &err), 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.items[0].key, CLOUD_UNALLOCATED);
    cloud_report_release(&r);
    cloud_import_stats_release(&s);
    /* a missing file is an error and stores nothing */
    assert_int_equal(cloud_billing_import(f->env.st, "/nonexistent.csv", NULL, &s, &err),
                     CORE_E_IO);
    cloud_import_stats_release(&s);
}

int main(void)
{
    find_data();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_edges),
        cmocka_unit_test(test_csv_lines_and_cap),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_formats),
        cmocka_unit_test_setup_teardown(test_samples_and_reimport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_and_malformed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
