/* `pave cost import FILE...` and `pave cost report`: billing exports into the
 * local store and spend grouped by team, service, env or cost center
 * (src/cloud/). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cloud/cloud.h"
#include "store/store.h"

static const char cost_usage[] =
    "usage: pave cost import FILE... [--format F] [--allow-malformed] "
    "[--data-dir DIR]\n"
    "                                [--store URL]\n"
    "       pave cost report --by team|service|env|cost-center [--period "
    "YYYY-MM]\n"
    "                        [-o table|json|csv] [--data-dir DIR] [--store "
    "URL]\n"
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
    "'unallocated'. The store defaults to DIR/pave.db with DIR = .pave.\n";

static int open_store(const char *data_dir, const char *store_url, struct store **st)
{
    char url[4200];
    struct core_err err = {0};
    if (store_url) {
        snprintf(url, sizeof(url), "%s", store_url);
    } else {
        if (core_mkdir_p(data_dir, 0700, &err)) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        snprintf(url, sizeof(url), "sqlite:%s/pave.db", data_dir);
    }
    if (store_open(st, url, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

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
    if ((rc = open_store(data_dir, store_url, &st)))
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

static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static int cost_report(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *data_dir = ".pave", *store_url = NULL, *by = NULL, *period = NULL;
    bool csv = false;
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
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos, rc;
    if ((rc = cli_parse(ctx, nargs, args, opts, pos, 0, &npos)))
        return rc;
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
    if ((rc = open_store(data_dir, store_url, &st)))
        return rc;
    struct cloud_report r;
    struct core_err err = {0};
    if (cloud_cost_report(st, g, period, &r, &err)) {
        cli_error("%s", err.msg);
        store_close(st);
        return CLI_FAIL;
    }
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
            csv_field(r.items[i].key);
            printf(",%s,%lld,%s,%s,", r.items[i].in_catalog ? "true" : "false",
                   (long long)r.items[i].rows, b, e);
            csv_field(r.currency ? r.currency : "");
            putchar('\n');
        }
    } else if (ctx->format != CLI_TABLE) {
        json_t *items = json_array(), *obj = json_object();
        for (size_t i = 0; i < r.n; i++) {
            cloud_money_format(r.items[i].billed_n, 6, b, sizeof(b));
            cloud_money_format(r.items[i].effective_n, 6, e, sizeof(e));
            json_array_append_new(
                items, json_pack("{s:s, s:b, s:I, s:s, s:s}", kname, r.items[i].key, "in_catalog",
                                 r.items[i].in_catalog, "rows", (json_int_t)r.items[i].rows,
                                 "billed_cost", b, "effective_cost", e));
        }
        cloud_money_format(r.total_billed_n, 6, b, sizeof(b));
        cloud_money_format(r.total_effective_n, 6, e, sizeof(e));
        json_object_set_new(obj, "by", json_string(kname));
        json_object_set_new(obj, "period", period ? json_string(period) : json_null());
        json_object_set_new(obj, "currency", r.currency ? json_string(r.currency) : json_null());
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

int cli_cmd_cost(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(cost_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "import") == 0)
        return cost_import(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "report") == 0)
        return cost_report(ctx, argc - 1, argv + 1);
    cli_error("unknown verb 'cost %s' (use import or report)", argv[1]);
    return CLI_USAGE;
}
