/* `pave cost import FILE...` and `pave cost report`: billing exports into the
 * local store and spend grouped by team, service, env or cost center
 * (src/cloud/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cloud/cloud.h"
#include "store/store.h"

static const char cost_usage[] =
    "usage: pave cost import FILE... [--format F] [--allow-malformed] "
    "[--data-dir DIR]\n"
    "                                [--store URL]\n"
    "       pave cost report --by team|service|env|cost-center [--split] "
    "[--cost "
    "billed|effective]\n"
    "                        [--period YYYY-MM] [-o table|json|csv] "
    "[--data-dir DIR] [--store "
    "URL]\n"
    "       pave cost untagged [--by account|service] [--period YYYY-MM]\n"
    "       pave cost trend [--daily|--monthly] [--by team|service] [--period "
    "YYYY-MM]\n"
    "       pave cost commitments [--period YYYY-MM]\n"
    "       pave cost recommend [--days N] [--discount PCT] [--percentile P]\n"
    "       pave cost budget set TEAM AMOUNT [--alert-pct N] | budget list | "
    "budget check\n"
    "                        [--period YYYY-MM]\n"
    "       pave cost anomalies [--days N] [--threshold X]\n"
    "       pave cost split apply FILE | split list | split delete NAME\n"
    "       (every listing takes -o table|json|csv, --data-dir DIR and --store "
    "URL)\n"
    "       pave cost scan FILE... [--by team,service,...] [--threads N] [-o "
    "table|json|csv]\n"
    "\n"
    "import reads billing exports (plain or gzip) into the platform's store: "
    "FOCUS 1.0-1.2,\n"
    "AWS CUR (legacy and 2.0), Azure EA/MCA cost details, GCP billing export "
    "and OCI cost\n"
    "reports, detected from the header (--format "
    "focus|aws-cur|aws-cur2|azure|gcp|oci forces\n"
    "one). Each billing account's period in a file replaces what was imported "
    "for it before,\n"
    "so re-importing a month never double counts. Malformed rows are reported "
    "by line and keep\n"
    "the file's periods out (all-or-nothing) unless --allow-malformed imports "
    "the good rows.\n"
    "\n"
    "report groups billed and effective cost by a tag joined to the catalog "
    "(team: the team\n"
    "tag, else the owner of the service tag's catalog service); spend without "
    "the tag is\n"
    "'unallocated'. --split spreads shared spend by the split rules (split "
    "apply FILE;\n"
    "docs/cost.md) and shows it apart from direct spend. untagged lists spend "
    "without a\n"
    "team tag; trend gives daily or monthly series; commitments shows "
    "reservation and\n"
    "savings plan coverage and utilization; recommend proposes an hourly "
    "commitment from\n"
    "the steady baseline and prints its assumptions; budget check records one "
    "alert per\n"
    "team and month when a team is at risk or over and exits 1 when one is "
    "over;\n"
    "anomalies flags days where a service's spend jumped and says what moved.\n"
    "The store defaults to DIR/pave.db with DIR = .pave.\n";

static void progress(void *arg, const char *file, int64_t done, int64_t total)
{
    (void)arg;
    if (total > 0)
        fprintf(stderr, "\r\033[Kimporting %s: %3d%%", file, (int)(done * 100 / total));
    else
        fprintf(stderr, "\r\033[Kimporting %s", file);
    fflush(stderr);
}

static int cost_import(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *data_dir = ".pave", *store_url = NULL, *format = NULL;
    bool allow = false;
    const struct cli_opt opts[] = {{"data-dir", 'd', &data_dir, NULL},
                                   {"store", 0, &store_url, NULL},
                                   {"format", 'f', &format, NULL},
                                   {"allow-malformed", 0, NULL, &allow},
                                   {NULL, 0, NULL, NULL}};
    char *pos[64];
    int npos, rc;
    if ((rc = cli_parse(ctx, argc, argv, opts, pos, 64, &npos)))
        return rc;
    if (npos == 0) {
        cli_error("cost import needs at least one FILE");
        return CLI_USAGE;
    }
    struct store *st = NULL;
    if ((rc = cli_open_store(data_dir, store_url, &st)))
        return rc;
    bool tty = isatty(2);
    struct cloud_import_opts o = {
        .format = format, .allow_malformed = allow, .progress = tty ? progress : NULL};
    struct cloud_import_stats stats = {0};
    rc = CLI_OK;
    for (int i = 0; i < npos; i++) {
        struct core_err err = {0};
        int64_t t0 = core_now_ms(), before = stats.rows;
        size_t s0 = stats.nscopes;
        if (cloud_billing_import(st, pos[i], &o, &stats, &err)) {
            if (tty)
                fputs("\r\033[K", stderr);
            cli_error("%s", err.msg);
            rc = CLI_FAIL;
            continue;
        }
        if (tty)
            fputs("\r\033[K", stderr);
        int64_t ms = core_now_ms() - t0;
        int64_t nrows = stats.rows - before;
        printf("%s: %s, %lld rows in %lld ms (%.0f rows/s)\n", pos[i], stats.format,
               (long long)nrows, (long long)ms, ms > 0 ? nrows * 1000.0 / (double)ms : 0.0);
        for (size_t k = s0; k < stats.nscopes; k++) {
            char money[40];
            cloud_money_format(stats.scopes[k].billed_n, 2, money, sizeof(money));
            printf("  %s %s: %lld rows, billed %s%s\n", stats.scopes[k].billing_account,
                   stats.scopes[k].period, (long long)stats.scopes[k].rows, money,
                   stats.scopes[k].replaced ? " (replaced)" : " (NOT imported: malformed rows)");
        }
    }
    if (stats.malformed) {
        fprintf(stderr, "pave: %lld malformed rows%s\n", (long long)stats.malformed,
                allow ? " skipped"
                      : "; their files' periods were not imported "
                        "(--allow-malformed imports the good rows)");
        for (size_t i = 0; i < stats.nbad; i++)
            fprintf(stderr, "  %s:%lld: %s\n", stats.bad[i].file, (long long)stats.bad[i].line,
                    stats.bad[i].reason);
        if (stats.malformed > (int64_t)stats.nbad)
            fprintf(stderr, "  ... and %lld more\n", (long long)(stats.malformed - stats.nbad));
        if (!allow)
            rc = CLI_FAIL;
    }
    cloud_import_stats_release(&stats);
    store_close(st);
    return rc;
}

static int team_split_report(struct cli_ctx *ctx, bool csv, const char *data_dir,
                             const char *store_url, const char *period, const char *cost);

/* --cost effective: rows by effective cost, unallocated still last */
static int cmp_effective(const void *pa, const void *pb)
{
    const struct cloud_report_row *a = pa, *b = pb;
    bool ua = strcmp(a->key, CLOUD_UNALLOCATED) == 0, ub = strcmp(b->key, CLOUD_UNALLOCATED) == 0;
    if (ua != ub)
        return ua ? 1 : -1;
    if (a->effective_n != b->effective_n)
        return a->effective_n > b->effective_n ? -1 : 1;
    return strcmp(a->key, b->key);
}

static bool csv_or_json(const struct cli_ctx *ctx, bool csv)
{
    return csv || ctx->format != CLI_TABLE;
}

static int cost_report(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *data_dir = ".pave", *store_url = NULL, *by = NULL, *period = NULL;
    const char *cost = NULL;
    bool csv = false, split = false;
    /* -o csv is this command's own; the shared parser knows table, json and yaml.
     */
    char *args[128];
    int nargs = 0;
    for (int i = 0; i < argc && nargs < 128; i++) {
        if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc &&
            strcmp(argv[i + 1], "csv") == 0) {
            csv = true;
            i++;
            continue;
        }
        if (strcmp(argv[i], "-o=csv") == 0 || strcmp(argv[i], "--output=csv") == 0) {
            csv = true;
            continue;
        }
        args[nargs++] = argv[i];
    }
    const struct cli_opt opts[] = {{"data-dir", 'd', &data_dir, NULL},
                                   {"store", 0, &store_url, NULL},
                                   {"by", 'b', &by, NULL},
                                   {"period", 'p', &period, NULL},
                                   {"split", 0, NULL, &split},
                                   {"cost", 0, &cost, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos, rc;
    if ((rc = cli_parse(ctx, nargs, args, opts, pos, 0, &npos)))
        return rc;
    if (cost && strcmp(cost, "billed") != 0 && strcmp(cost, "effective") != 0) {
        cli_error("--cost wants billed or effective, not '%s'", cost);
        return CLI_USAGE;
    }
    if (split) {
        if (by && strcmp(by, "team") != 0) {
            cli_error("--split applies to --by team only");
            return CLI_USAGE;
        }
        return team_split_report(ctx, csv, data_dir, store_url, period, cost);
    }
    enum cloud_group g;
    if (!by || strcmp(by, "team") == 0)
        g = CLOUD_BY_TEAM;
    else if (strcmp(by, "service") == 0)
        g = CLOUD_BY_SERVICE;
    else if (strcmp(by, "env") == 0)
        g = CLOUD_BY_ENV;
    else if (strcmp(by, "cost-center") == 0)
        g = CLOUD_BY_COST_CENTER;
    else {
        cli_error("unknown grouping '%s': use team, service, env or cost-center", by);
        return CLI_USAGE;
    }
    if (period && (strlen(period) != 7 || period[4] != '-')) {
        cli_error("--period wants YYYY-MM, not '%s'", period);
        return CLI_USAGE;
    }
    struct store *st = NULL;
    if ((rc = cli_open_store(data_dir, store_url, &st)))
        return rc;
    struct cloud_report r;
    struct core_err err = {0};
    if (cloud_cost_report(st, g, period, &r, &err)) {
        cli_error("%s", err.msg);
        store_close(st);
        return CLI_FAIL;
    }
    if (cost && strcmp(cost, "effective") == 0 && r.n)
        qsort(r.items, r.n, sizeof(*r.items), cmp_effective);
    const char *kname = g == CLOUD_BY_TEAM      ? "team"
                        : g == CLOUD_BY_SERVICE ? "service"
                        : g == CLOUD_BY_ENV     ? "env"
                                                : "cost_center";
    char b[40], e[40];
    if (csv) {
        printf("%s,in_catalog,rows,billed_cost,effective_cost,currency\n", kname);
        for (size_t i = 0; i < r.n; i++) {
            cloud_money_format(r.items[i].billed_n, 6, b, sizeof(b));
            cloud_money_format(r.items[i].effective_n, 6, e, sizeof(e));
            cli_csv_field(r.items[i].key);
            printf(",%s,%lld,%s,%s,", r.items[i].in_catalog ? "true" : "false",
                   (long long)r.items[i].rows, b, e);
            cli_csv_field(r.currency ? r.currency : "");
            putchar('\n');
        }
    } else if (ctx->format != CLI_TABLE) {
        json_t *items = json_array(), *obj = json_object();
        for (size_t i = 0; i < r.n; i++) {
            cloud_money_format(r.items[i].billed_n, 6, b, sizeof(b));
            cloud_money_format(r.items[i].effective_n, 6, e, sizeof(e));
            json_array_append_new(items, json_pack("{s:o, s:b, s:I, s:s, s:s}", kname,
                                                   cloud_json_text(r.items[i].key), "in_catalog",
                                                   r.items[i].in_catalog, "rows",
                                                   (json_int_t)r.items[i].rows, "billed_cost", b,
                                                   "effective_cost", e));
        }
        cloud_money_format(r.total_billed_n, 6, b, sizeof(b));
        cloud_money_format(r.total_effective_n, 6, e, sizeof(e));
        json_object_set_new(obj, "by", json_string(kname));
        json_object_set_new(obj, "period", period ? json_string(period) : json_null());
        json_object_set_new(obj, "currency", r.currency ? cloud_json_text(r.currency) : json_null());
        json_object_set_new(obj, "total_billed_cost", json_string(b));
        json_object_set_new(obj, "total_effective_cost", json_string(e));
        json_object_set_new(obj, "items", items);
        cli_print_object(ctx, obj);
        json_decref(obj);
    } else {
        char upper[16];
        size_t k;
        for (k = 0; kname[k] && k < sizeof(upper) - 1; k++)
            upper[k] = (char)(kname[k] >= 'a' && kname[k] <= 'z' ? kname[k] - 32 : kname[k]);
        upper[k] = 0;
        printf("%-32s %8s %18s %18s  %s\n", upper, "ROWS", "BILLED", "EFFECTIVE", "CATALOG");
        for (size_t i = 0; i < r.n; i++) {
            cloud_money_format(r.items[i].billed_n, 2, b, sizeof(b));
            cloud_money_format(r.items[i].effective_n, 2, e, sizeof(e));
            printf("%-32s %8lld %18s %18s  %s\n", r.items[i].key, (long long)r.items[i].rows, b, e,
                   r.items[i].in_catalog ? "yes" : "-");
        }
        cloud_money_format(r.total_billed_n, 2, b, sizeof(b));
        cloud_money_format(r.total_effective_n, 2, e, sizeof(e));
        printf("%-32s %8s %18s %18s  %s\n", "TOTAL", "", b, e, r.currency ? r.currency : "");
    }
    cloud_report_release(&r);
    store_close(st);
    return CLI_OK;
}

/* ---- analysis verbs (src/cloud/analysis.c) ---- */

/* Prints a report object: its items as a table (with a summary line) or CSV
 * of the columns, or the whole object as JSON/YAML. */
static void print_report(struct cli_ctx *ctx, bool csv, json_t *obj, const char *items_key,
                         const struct cli_column *cols, const char *summary)
{
    json_t *items = json_object_get(obj, items_key);
    if (csv) {
        for (size_t c = 0; cols[c].header; c++) {
            if (c)
                putchar(',');
            fputs(cols[c].field, stdout);
        }
        putchar('\n');
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            for (size_t c = 0; cols[c].header; c++) {
                json_t *v = json_object_get(it, cols[c].field);
                char cell[64];
                if (c)
                    putchar(',');
                if (json_is_string(v)) {
                    cli_csv_field(json_string_value(v));
                    continue;
                }
                if (json_is_integer(v))
                    snprintf(cell, sizeof(cell), "%lld", (long long)json_integer_value(v));
                else if (json_is_real(v))
                    snprintf(cell, sizeof(cell), "%.2f", json_real_value(v));
                else if (json_is_boolean(v))
                    snprintf(cell, sizeof(cell), "%s", json_is_true(v) ? "true" : "false");
                else
                    cell[0] = 0;
                fputs(cell, stdout);
            }
            putchar('\n');
        }
        return;
    }
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, obj);
        return;
    }
    if (json_array_size(items))
        cli_print_list(ctx, items, cols);
    else if (!summary || !*summary)
        puts("(nothing to show: import billing data with pave cost import FILE)");
    if (summary && *summary)
        fputs(summary, stdout);
}

/* Splits "-o csv" off argv (the shared parser knows table, json and yaml). */
static int strip_csv(int argc, char **argv, char **args, int max, bool *csv)
{
    int n = 0;
    *csv = false;
    for (int i = 0; i < argc && n < max; i++) {
        if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc &&
            strcmp(argv[i + 1], "csv") == 0) {
            *csv = true;
            i++;
            continue;
        }
        if (strcmp(argv[i], "-o=csv") == 0 || strcmp(argv[i], "--output=csv") == 0) {
            *csv = true;
            continue;
        }
        args[n++] = argv[i];
    }
    return n;
}

static bool bad_period(const char *period)
{
    if (period && (strlen(period) != 7 || period[4] != '-')) {
        cli_error("--period wants YYYY-MM, not '%s'", period);
        return true;
    }
    return false;
}

/* Ends a verb: prints the error of a NULL report, else the report. */
static int finish(struct cli_ctx *ctx, struct store *st, json_t *obj, const struct core_err *err,
                  bool csv, const char *items_key, const struct cli_column *cols,
                  const char *summary)
{
    int rc = CLI_OK;
    if (!obj) {
        cli_error("%s", err->msg);
        rc = err->code == CORE_E_INVAL ? CLI_USAGE : CLI_FAIL;
    } else {
        print_report(ctx, csv, obj, items_key, cols, summary);
    }
    json_decref(obj);
    store_close(st);
    return rc;
}

static int team_split_report(struct cli_ctx *ctx, bool csv, const char *data_dir,
                             const char *store_url, const char *period, const char *cost)
{
    struct store *st = NULL;
    int rc;
    if (bad_period(period))
        return CLI_USAGE;
    if ((rc = cli_open_store(data_dir, store_url, &st)))
        return rc;
    struct core_err err = {0};
    json_t *obj = cloud_cost_team_report(st, period, true, &err);
    if (obj && cost)
        json_object_set_new(obj, "cost", json_string(cost));
    static const struct cli_column cols[] = {{"TEAM", "team"},
                                             {"DIRECT", "direct_billed"},
                                             {"ALLOCATED", "allocated_billed"},
                                             {"BILLED", "billed"},
                                             {"DIRECT_EFF", "direct_effective"},
                                             {"ALLOC_EFF", "allocated_effective"},
                                             {"EFFECTIVE", "effective"},
                                             {NULL, NULL}};
    char sum[200] = "";
    if (obj)
        snprintf(sum, sizeof(sum), "TOTAL billed %s, effective %s %s\n",
                 json_string_value(json_object_get(obj, "total_billed")),
                 json_string_value(json_object_get(obj, "total_effective")),
                 json_string_value(json_object_get(obj, "currency"))
                     ? json_string_value(json_object_get(obj, "currency"))
                     : "");
    return finish(ctx, st, obj, &err, csv, "items", cols, sum);
}

/* Parses the shared options of the analysis verbs plus `extra`. */
struct verb_opts {
    const char *data_dir, *store_url, *period;
    bool csv;
    char *pos[4];
    int npos;
};

static int verb_parse(struct cli_ctx *ctx, int argc, char **argv, struct verb_opts *vo,
                      const struct cli_opt *extra, int maxpos)
{
    char *args[128];
    int nargs = strip_csv(argc, argv, args, 128, &vo->csv);
    struct cli_opt opts[16];
    int k = 0;
    vo->data_dir = ".pave";
    opts[k++] = (struct cli_opt){"data-dir", 'd', &vo->data_dir, NULL};
    opts[k++] = (struct cli_opt){"store", 0, &vo->store_url, NULL};
    opts[k++] = (struct cli_opt){"period", 'p', &vo->period, NULL};
    for (int i = 0; extra && extra[i].name && k < 15; i++)
        opts[k++] = extra[i];
    opts[k] = (struct cli_opt){NULL, 0, NULL, NULL};
    int rc = cli_parse(ctx, nargs, args, opts, vo->pos, maxpos, &vo->npos);
    if (rc)
        return rc;
    return bad_period(vo->period) ? CLI_USAGE : CLI_OK;
}

static int cost_untagged(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *by = NULL;
    struct verb_opts vo = {0};
    const struct cli_opt extra[] = {{"by", 'b', &by, NULL}, {NULL, 0, NULL, NULL}};
    int rc;
    if ((rc = verb_parse(ctx, argc, argv, &vo, extra, 0)))
        return rc;
    if (by && strcmp(by, "account") != 0 && strcmp(by, "service") != 0) {
        cli_error("unknown grouping '%s': use account or service", by);
        return CLI_USAGE;
    }
    struct store *st = NULL;
    if ((rc = cli_open_store(vo.data_dir, vo.store_url, &st)))
        return rc;
    struct core_err err = {0};
    bool svc = by && strcmp(by, "service") == 0;
    json_t *obj = cloud_cost_untagged(st, vo.period, svc, &err);
    const struct cli_column cols[] = {{svc ? "SERVICE" : "ACCOUNT", "key"},
                                      {"ROWS", "rows"},
                                      {"BILLED", "billed"},
                                      {"EFFECTIVE", "effective"},
                                      {NULL, NULL}};
    char sum[200] = "";
    if (obj)
        snprintf(sum, sizeof(sum), "TOTAL untagged billed %s, effective %s\n",
                 json_string_value(json_object_get(obj, "total_billed")),
                 json_string_value(json_object_get(obj, "total_effective")));
    return finish(ctx, st, obj, &err, vo.csv, "items", cols, sum);
}

static int cost_trend(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *by = NULL;
    bool daily = false, monthly = false;
    struct verb_opts vo = {0};
    const struct cli_opt extra[] = {{"by", 'b', &by, NULL},
                                    {"daily", 0, NULL, &daily},
                                    {"monthly", 0, NULL, &monthly},
                                    {NULL, 0, NULL, NULL}};
    int rc;
    if ((rc = verb_parse(ctx, argc, argv, &vo, extra, 0)))
        return rc;
    int group = -1;
    if (by && strcmp(by, "team") == 0)
        group = CLOUD_BY_TEAM;
    else if (by && strcmp(by, "service") == 0)
        group = CLOUD_BY_SERVICE;
    else if (by) {
        cli_error("unknown grouping '%s': use team or service", by);
        return CLI_USAGE;
    }
    if (daily && monthly) {
        cli_error("choose one of --daily and --monthly");
        return CLI_USAGE;
    }
    struct store *st = NULL;
    if ((rc = cli_open_store(vo.data_dir, vo.store_url, &st)))
        return rc;
    struct core_err err = {0};
    json_t *obj = cloud_cost_trend(st, vo.period, monthly, group, &err);
    const struct cli_column cols_g[] = {{monthly ? "MONTH" : "DATE", "date"},
                                        {group == CLOUD_BY_TEAM ? "TEAM" : "SERVICE", "key"},
                                        {"BILLED", "billed"},
                                        {"EFFECTIVE", "effective"},
                                        {NULL, NULL}};
    const struct cli_column cols[] = {{monthly ? "MONTH" : "DATE", "date"},
                                      {"BILLED", "billed"},
                                      {"EFFECTIVE", "effective"},
                                      {NULL, NULL}};
    return finish(ctx, st, obj, &err, vo.csv, "items", group < 0 ? cols : cols_g, NULL);
}

static int cost_commitments(struct cli_ctx *ctx, int argc, char **argv)
{
    struct verb_opts vo = {0};
    int rc;
    if ((rc = verb_parse(ctx, argc, argv, &vo, NULL, 0)))
        return rc;
    struct store *st = NULL;
    if ((rc = cli_open_store(vo.data_dir, vo.store_url, &st)))
        return rc;
    struct core_err err = {0};
    json_t *obj = cloud_cost_commitments(st, vo.period, &err);
    static const struct cli_column cols[] = {{"TYPE", "type"},
                                             {"COMMITMENTS", "commitments"},
                                             {"USED", "used"},
                                             {"UNUSED", "unused"},
                                             {"UTILIZATION_PCT", "utilization_pct"},
                                             {"COVERED_OD_EQUIV", "covered_ondemand_equiv"},
                                             {NULL, NULL}};
    char sum[300] = "";
    if (obj) {
        json_t *cp = json_object_get(obj, "coverage_pct");
        char pct[32] = "n/a";
        if (json_is_number(cp))
            snprintf(pct, sizeof(pct), "%.2f%%", json_number_value(cp));
        snprintf(sum, sizeof(sum),
                 "coverage %s: %s of %s commitment-eligible usage (on-demand "
                 "prices) covered, "
                 "%s on demand\n",
                 pct, json_string_value(json_object_get(obj, "covered_ondemand_equiv")),
                 json_string_value(json_object_get(obj, "eligible_ondemand_equiv")),
                 json_string_value(json_object_get(obj, "ondemand")));
    }
    if (obj && !csv_or_json(ctx, vo.csv) && !json_array_size(json_object_get(obj, "types"))) {
        fputs("no commitments (reservations or savings plans) in the data\n", stdout);
        fputs(sum, stdout);
        json_decref(obj);
        store_close(st);
        return CLI_OK;
    }
    return finish(ctx, st, obj, &err, vo.csv, "types", cols, sum);
}

static int cost_recommend(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *days_s = NULL, *disc_s = NULL, *pct_s = NULL;
    struct verb_opts vo = {0};
    const struct cli_opt extra[] = {{"days", 0, &days_s, NULL},
                                    {"discount", 0, &disc_s, NULL},
                                    {"percentile", 0, &pct_s, NULL},
                                    {NULL, 0, NULL, NULL}};
    int rc;
    if ((rc = verb_parse(ctx, argc, argv, &vo, extra, 0)))
        return rc;
    char *end;
    long days = days_s ? strtol(days_s, &end, 10) : 30;
    if (days_s && (*end || days < 1 || days > 366)) {
        cli_error("--days wants 1 to 366, not '%s'", days_s);
        return CLI_USAGE;
    }
    double disc = disc_s ? strtod(disc_s, &end) : 30;
    if (disc_s && (*end || !(disc > 0 && disc < 100))) {
        cli_error("--discount wants a percentage between 0 and 100, not '%s'", disc_s);
        return CLI_USAGE;
    }
    double pct = pct_s ? strtod(pct_s, &end) : 10;
    if (pct_s && (*end || !(pct >= 0 && pct <= 100))) {
        cli_error("--percentile wants 0 to 100, not '%s'", pct_s);
        return CLI_USAGE;
    }
    struct store *st = NULL;
    if ((rc = cli_open_store(vo.data_dir, vo.store_url, &st)))
        return rc;
    struct core_err err = {0};
    json_t *obj = cloud_cost_recommend(st, (int)days, disc, pct, &err);
    if (!obj || vo.csv || ctx->format != CLI_TABLE) {
        static const struct cli_column cols[] = {{"ASSUMPTION", "assumption"}, {NULL, NULL}};
        if (obj && vo.csv) {
            /* one row of figures, then the assumptions as a second table */
            static const char *const keys[] = {
                "window_start",      "window_end",      "days",           "days_with_spend",
                "percentile",        "discount_pct",    "baseline_daily", "ondemand_hourly",
                "commitment_hourly", "monthly_savings", "annual_savings", "recommendation"};
            json_t *row = json_object(), *arr = json_array();
            struct cli_column kc[13];
            for (size_t i = 0; i < 12; i++) {
                json_object_set(row, keys[i], json_object_get(obj, keys[i]));
                kc[i] = (struct cli_column){keys[i], keys[i]};
            }
            kc[12] = (struct cli_column){NULL, NULL};
            json_array_append_new(arr, row);
            json_t *w = json_pack("{s:o}", "items", arr);
            print_report(ctx, true, w, "items", kc, NULL);
            json_decref(w);
            json_decref(obj);
            store_close(st);
            return CLI_OK;
        }
        return finish(ctx, st, obj, &err, vo.csv, "assumptions", cols, NULL);
    }
    const char *text = json_string_value(json_object_get(obj, "recommendation"));
    printf("%s\n", text ? text : "no recommendation: no dated charges are stored");
    if (text) {
        printf("  baseline daily on-demand eligible spend %s (mean %s) over %s to "
               "%s\n",
               json_string_value(json_object_get(obj, "baseline_daily")),
               json_string_value(json_object_get(obj, "mean_daily")),
               json_string_value(json_object_get(obj, "window_start")),
               json_string_value(json_object_get(obj, "window_end")));
        printf("  on-demand spend covered per hour %s, commitment per hour %s, "
               "savings per "
               "year %s\n",
               json_string_value(json_object_get(obj, "ondemand_hourly")),
               json_string_value(json_object_get(obj, "commitment_hourly")),
               json_string_value(json_object_get(obj, "annual_savings")));
    }
    puts("assumptions:");
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(obj, "assumptions"), i, a)
        printf("  - %s\n", json_string_value(a));
    json_decref(obj);
    store_close(st);
    return CLI_OK;
}

static int cost_budget(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs("usage: pave cost budget set TEAM AMOUNT [--alert-pct N]\n"
              "       pave cost budget list [--period YYYY-MM] [-o table|json|csv]\n"
              "       pave cost budget check [--period YYYY-MM] [-o table|json|csv]\n"
              "\n"
              "A team's monthly budget, compared with its month-to-date spend "
              "(direct plus\n"
              "allocated by split rules) and a linear forecast to month end. check "
              "records one\n"
              "alert per team and month for teams at risk or over, and exits 1 if "
              "any is over.\n",
              argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    const char *pct_s = NULL;
    struct verb_opts vo = {0};
    const struct cli_opt extra[] = {{"alert-pct", 0, &pct_s, NULL}, {NULL, 0, NULL, NULL}};
    int rc;
    bool is_set = strcmp(verb, "set") == 0;
    if (!is_set && strcmp(verb, "list") != 0 && strcmp(verb, "check") != 0) {
        cli_error("unknown verb 'cost budget %s' (use set, list or check)", verb);
        return CLI_USAGE;
    }
    if ((rc = verb_parse(ctx, argc - 1, argv + 1, &vo, extra, is_set ? 2 : 0)))
        return rc;
    struct store *st = NULL;
    struct core_err err = {0};
    if (is_set) {
        int64_t amount = 0;
        char *end = NULL;
        long pct = pct_s ? strtol(pct_s, &end, 10) : 80;
        if (vo.npos != 2) {
            cli_error("budget set needs TEAM AMOUNT (e.g. pave cost budget set "
                      "payments 5000)");
            return CLI_USAGE;
        }
        if (cloud_parse_money(vo.pos[1], &amount) || amount <= 0) {
            cli_error("AMOUNT wants a number above 0, not '%s'", vo.pos[1]);
            return CLI_USAGE;
        }
        if (pct_s && (*end || pct < 1 || pct > 1000)) {
            cli_error("--alert-pct wants 1 to 1000, not '%s'", pct_s);
            return CLI_USAGE;
        }
        if ((rc = cli_open_store(vo.data_dir, vo.store_url, &st)))
            return rc;
        const char *user = getenv("USER");
        if (cloud_budget_set(st, vo.pos[0], amount, (int)pct, user ? user : "cli", &err)) {
            cli_error("%s", err.msg);
            store_close(st);
            return CLI_FAIL;
        }
        char am[48];
        cloud_money_format(amount, 2, am, sizeof(am));
        printf("budget for %s: %s per month, alert at %ld%%\n", vo.pos[0], am, pct);
        store_close(st);
        return CLI_OK;
    }
    bool check = strcmp(verb, "check") == 0;
    if ((rc = cli_open_store(vo.data_dir, vo.store_url, &st)))
        return rc;
    json_t *obj = cloud_budget_list(st, vo.period, check, &err);
    static const struct cli_column cols[] = {{"TEAM", "team"},         {"BUDGET", "budget"},
                                             {"ACTUAL", "actual"},     {"FORECAST", "forecast"},
                                             {"USED_PCT", "used_pct"}, {"STATE", "state"},
                                             {"ALERT", "alert"},       {NULL, NULL}};
    char sum[200] = "";
    int64_t over = 0;
    if (obj) {
        over = json_integer_value(json_object_get(obj, "over"));
        snprintf(sum, sizeof(sum), "period %s, as of day %lld of %lld%s\n",
                 json_string_value(json_object_get(obj, "period")),
                 (long long)json_integer_value(json_object_get(obj, "as_of_day")),
                 (long long)json_integer_value(json_object_get(obj, "days_in_month")),
                 json_array_size(json_object_get(obj, "items"))
                     ? ""
                     : " (no budgets: pave cost budget set TEAM AMOUNT)");
        if (check && json_array_size(json_object_get(obj, "items"))) {
            size_t i;
            json_t *it;
            json_array_foreach(json_object_get(obj, "items"), i, it)
            {
                const char *al = json_string_value(json_object_get(it, "alert"));
                if (al)
                    fprintf(stderr, "alert: %s\n", al);
            }
        }
    }
    rc = finish(ctx, st, obj, &err, vo.csv, "items", cols, sum);
    if (rc == CLI_OK && check && over > 0) {
        cli_error("%lld team(s) over budget", (long long)over);
        rc = CLI_FAIL;
    }
    return rc;
}

static int cost_anomalies(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *days_s = NULL, *th_s = NULL;
    struct verb_opts vo = {0};
    const struct cli_opt extra[] = {
        {"days", 0, &days_s, NULL}, {"threshold", 0, &th_s, NULL}, {NULL, 0, NULL, NULL}};
    int rc;
    if ((rc = verb_parse(ctx, argc, argv, &vo, extra, 0)))
        return rc;
    char *end;
    long days = days_s ? strtol(days_s, &end, 10) : 7;
    if (days_s && (*end || days < 3 || days > 90)) {
        cli_error("--days wants 3 to 90, not '%s'", days_s);
        return CLI_USAGE;
    }
    double th = th_s ? strtod(th_s, &end) : 3.0;
    if (th_s && (*end || !(th > 0 && th < 1000))) {
        cli_error("--threshold wants a number above 0, not '%s'", th_s);
        return CLI_USAGE;
    }
    struct store *st = NULL;
    if ((rc = cli_open_store(vo.data_dir, vo.store_url, &st)))
        return rc;
    struct core_err err = {0};
    json_t *obj = cloud_cost_anomalies(st, (int)days, th, &err);
    static const struct cli_column cols[] = {{"DATE", "date"},   {"SERVICE", "service"},
                                             {"SPEND", "spend"}, {"BASELINE", "baseline"},
                                             {"SCORE", "score"}, {"EXPLANATION", "explanation"},
                                             {NULL, NULL}};
    if (obj && !vo.csv && ctx->format == CLI_TABLE) {
        /* the explanation is the point: print it whole, not cut to a column */
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(obj, "items"), i, it)
            printf("%s  score %.1f  %s\n", json_string_value(json_object_get(it, "date")),
                   json_real_value(json_object_get(it, "score")),
                   json_string_value(json_object_get(it, "explanation")));
        if (!json_array_size(json_object_get(obj, "items")))
            printf("no anomalies: no service's daily spend rose %.1f spreads above "
                   "its %ld-day "
                   "mean\n",
                   th, days);
        json_decref(obj);
        store_close(st);
        return CLI_OK;
    }
    return finish(ctx, st, obj, &err, vo.csv, "items", cols, NULL);
}

static int cost_split(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs("usage: pave cost split apply FILE | split list [-o table|json|csv] "
              "| split "
              "delete NAME\n"
              "\n"
              "Split rules spread shared spend over teams (docs/cost.md):\n"
              "  name: shared-platform\n"
              "  match: {team: [shared, platform], service: [AWS CloudTrail]}\n"
              "  method: even | proportional | fixed\n"
              "  teams: [payments, search]          # even, proportional\n"
              "  weights: {payments: 3, search: 1}  # fixed\n"
              "pave cost report --by team --split applies them.\n",
              argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    bool apply = strcmp(verb, "apply") == 0, del = strcmp(verb, "delete") == 0;
    if (!apply && !del && strcmp(verb, "list") != 0) {
        cli_error("unknown verb 'cost split %s' (use apply, list or delete)", verb);
        return CLI_USAGE;
    }
    struct verb_opts vo = {0};
    int rc;
    if ((rc = verb_parse(ctx, argc - 1, argv + 1, &vo, NULL, apply || del ? 1 : 0)))
        return rc;
    if ((apply || del) && vo.npos != 1) {
        cli_error("cost split %s needs %s", verb, apply ? "a FILE" : "a rule NAME");
        return CLI_USAGE;
    }
    struct store *st = NULL;
    struct core_err err = {0};
    if (apply) {
        char *text = NULL;
        size_t len = 0;
        if (core_file_read(vo.pos[0], 64u << 10, &text, &len, &err)) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        char *js = NULL, name[64];
        if (cloud_split_rule_check(text, len, &js, name, &err)) {
            cli_error("%s: %s", vo.pos[0], err.msg);
            core_free(text);
            return CLI_FAIL;
        }
        free(js);
        if ((rc = cli_open_store(vo.data_dir, vo.store_url, &st))) {
            core_free(text);
            return rc;
        }
        const char *user = getenv("USER");
        rc = cloud_split_rule_put(st, text, len, user ? user : "cli", name, &err);
        core_free(text);
        store_close(st);
        if (rc) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        printf("split rule %s applied (pave cost report --by team --split shows it)\n", name);
        return CLI_OK;
    }
    if ((rc = cli_open_store(vo.data_dir, vo.store_url, &st)))
        return rc;
    if (del) {
        const char *user = getenv("USER");
        rc = cloud_split_rule_delete(st, vo.pos[0], user ? user : "cli", &err);
        store_close(st);
        if (rc) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        printf("split rule %s deleted\n", vo.pos[0]);
        return CLI_OK;
    }
    json_t *obj = cloud_split_rule_list(st, &err);
    static const struct cli_column cols[] = {
        {"NAME", "name"}, {"METHOD", "method"}, {"UPDATED", "updated_at"}, {NULL, NULL}};
    if (obj && vo.csv) {
        /* match, teams and weights are structures: give them as JSON cells */
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(obj, "items"), i, it)
        {
            const char *k[3] = {"match", "teams", "weights"};
            for (int j = 0; j < 3; j++) {
                char *d = json_dumps(json_object_get(it, k[j]), JSON_COMPACT | JSON_ENCODE_ANY);
                json_object_set_new(it, k[j], json_string(d ? d : ""));
                free(d);
            }
        }
        static const struct cli_column ccols[] = {{"NAME", "name"},       {"METHOD", "method"},
                                                  {"MATCH", "match"},     {"TEAMS", "teams"},
                                                  {"WEIGHTS", "weights"}, {NULL, NULL}};
        return finish(ctx, st, obj, &err, true, "items", ccols, NULL);
    }
    if (obj && !vo.csv && ctx->format == CLI_TABLE &&
        !json_array_size(json_object_get(obj, "items"))) {
        puts("no split rules (pave cost split apply FILE adds one)");
        json_decref(obj);
        store_close(st);
        return CLI_OK;
    }
    return finish(ctx, st, obj, &err, vo.csv, "items", cols, NULL);
}

int cli_cmd_cost(struct cli_ctx *ctx, int argc, char **argv)
{
    /* budget and split have verbs of their own, with their own --help */
    if (argc >= 2 && strcmp(argv[1], "budget") == 0)
        return cost_budget(ctx, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "split") == 0)
        return cost_split(ctx, argc - 1, argv + 1);
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(cost_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "import") == 0)
        return cost_import(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "report") == 0)
        return cost_report(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "untagged") == 0)
        return cost_untagged(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "trend") == 0)
        return cost_trend(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "commitments") == 0)
        return cost_commitments(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "recommend") == 0)
        return cost_recommend(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "anomalies") == 0)
        return cost_anomalies(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "scan") == 0)
        return cli_cmd_cost_scan(ctx, argc - 1, argv + 1);
    cli_error("unknown verb 'cost %s' (use import, report, untagged, trend, "
              "commitments, "
              "recommend, budget, anomalies, split or scan)",
              argv[1]);
    return CLI_USAGE;
}
