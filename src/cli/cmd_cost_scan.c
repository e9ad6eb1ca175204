/* `pave cost scan FILE... --by team,service`: spend grouped by tags straight
 * from billing exports, read by several threads (src/cloud/scan.c), without a
 * store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cloud/cloud.h"

static const char scan_usage[] =
    "usage: pave cost scan FILE... [--by team,service,env,cost-center] "
    "[--threads N]\n"
    "                     [--format F] [-o table|json|csv]\n"
    "\n"
    "Groups billed and effective cost by one to four tag keys (default: team) "
    "straight from\n"
    "billing exports, without importing them. Keys are the tag values as they "
    "are in the file\n"
    "(the team, service, env and cost-center tags and their aliases such as "
    "owner or app); the\n"
    "catalog is not consulted, unlike `pave cost report`. Rows without the tag "
    "count as\n"
    "'unallocated'. A plain file is split into ranges read by N threads "
    "(default: one per\n"
    "CPU); gzip files are read by one thread. Malformed rows are left out and "
    "listed on\n"
    "stderr by line.\n";

static const char *const key_names[] = {"team", "service", "env", "cost-center"};

static int parse_by(const char *by, enum cloud_group *out, size_t *n)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", by);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t k;
        for (k = 0; k < 4 && strcmp(t, key_names[k]) != 0; k++)
            ;
        if (k == 4) {
            cli_error("unknown grouping '%s': use team, service, env or cost-center, "
                      "comma-separated",
                      t);
            return CLI_USAGE;
        }
        if (*n == CLOUD_SCAN_KEYS_MAX) {
            cli_error("--by takes at most %d keys", CLOUD_SCAN_KEYS_MAX);
            return CLI_USAGE;
        }
        out[(*n)++] = (enum cloud_group)k;
    }
    if (*n == 0) {
        cli_error("--by needs at least one of team, service, env, cost-center");
        return CLI_USAGE;
    }
    return CLI_OK;
}

static const char *json_key(enum cloud_group g)
{
    return g == CLOUD_BY_COST_CENTER ? "cost_center" : key_names[g];
}

static void print_result(const struct cli_ctx *ctx, const struct cloud_scan_result *r, bool csv)
{
    char b[40], e[40];
    if (csv) {
        for (size_t k = 0; k < r->nby; k++)
            printf("%s,", json_key(r->by[k]));
        printf("rows,billed_cost,effective_cost,currency\n");
        for (size_t i = 0; i < r->n; i++) {
            for (size_t k = 0; k < r->nby; k++) {
                cli_csv_field(r->items[i].key[k]);
                putchar(',');
            }
            cloud_money_format(r->items[i].billed_n, 6, b, sizeof(b));
            cloud_money_format(r->items[i].effective_n, 6, e, sizeof(e));
            printf("%lld,%s,%s,", (long long)r->items[i].rows, b, e);
            cli_csv_field(r->currency ? r->currency : "");
            putchar('\n');
        }
        return;
    }
    if (ctx->format != CLI_TABLE) {
        json_t *obj = json_object(), *items = json_array(), *by = json_array();
        for (size_t k = 0; k < r->nby; k++)
            json_array_append_new(by, json_string(json_key(r->by[k])));
        for (size_t i = 0; i < r->n; i++) {
            json_t *it = json_object();
            for (size_t k = 0; k < r->nby; k++)
                json_object_set_new(it, json_key(r->by[k]), json_string(r->items[i].key[k]));
            cloud_money_format(r->items[i].billed_n, 6, b, sizeof(b));
            cloud_money_format(r->items[i].effective_n, 6, e, sizeof(e));
            json_object_set_new(it, "rows", json_integer(r->items[i].rows));
            json_object_set_new(it, "billed_cost", json_string(b));
            json_object_set_new(it, "effective_cost", json_string(e));
            json_array_append_new(items, it);
        }
        cloud_money_format(r->total_billed_n, 6, b, sizeof(b));
        cloud_money_format(r->total_effective_n, 6, e, sizeof(e));
        json_object_set_new(obj, "by", by);
        json_object_set_new(obj, "rows", json_integer(r->rows));
        json_object_set_new(obj, "malformed", json_integer(r->malformed));
        json_object_set_new(obj, "currency", r->currency ? json_string(r->currency) : json_null());
        json_object_set_new(obj, "total_billed_cost", json_string(b));
        json_object_set_new(obj, "total_effective_cost", json_string(e));
        json_object_set_new(obj, "items", items);
        cli_print_object(ctx, obj);
        json_decref(obj);
        return;
    }
    for (size_t k = 0; k < r->nby; k++) {
        char up[16];
        size_t j;
        const char *nm = json_key(r->by[k]);
        for (j = 0; nm[j] && j < sizeof(up) - 1; j++)
            up[j] = (char)(nm[j] >= 'a' && nm[j] <= 'z' ? nm[j] - 32 : nm[j]);
        up[j] = 0;
        printf("%-24s ", up);
    }
    printf("%10s %18s %18s\n", "ROWS", "BILLED", "EFFECTIVE");
    for (size_t i = 0; i < r->n; i++) {
        for (size_t k = 0; k < r->nby; k++)
            printf("%-24s ", r->items[i].key[k]);
        cloud_money_format(r->items[i].billed_n, 2, b, sizeof(b));
        cloud_money_format(r->items[i].effective_n, 2, e, sizeof(e));
        printf("%10lld %18s %18s\n", (long long)r->items[i].rows, b, e);
    }
    cloud_money_format(r->total_billed_n, 2, b, sizeof(b));
    cloud_money_format(r->total_effective_n, 2, e, sizeof(e));
    printf("%-24s ", "TOTAL");
    for (size_t k = 1; k < r->nby; k++)
        printf("%-24s ", "");
    printf("%10lld %18s %18s  %s\n", (long long)(r->rows - r->malformed), b, e,
           r->currency ? r->currency : "");
}

int cli_cmd_cost_scan(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(scan_usage, stdout);
        return CLI_OK;
    }
    const char *by = "team", *threads = NULL, *format = NULL;
    bool csv = false;
    /* -o csv is this command's own, as for `cost report` */
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
    const struct cli_opt opts[] = {{"by", 'b', &by, NULL},
                                   {"threads", 'j', &threads, NULL},
                                   {"format", 'f', &format, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[64];
    int npos, rc;
    if ((rc = cli_parse(ctx, nargs, args, opts, pos, 64, &npos)))
        return rc;
    if (npos == 0) {
        cli_error("cost scan needs at least one FILE (a billing export, plain or gzip)");
        return CLI_USAGE;
    }
    enum cloud_group keys[CLOUD_SCAN_KEYS_MAX];
    size_t nkeys;
    if ((rc = parse_by(by, keys, &nkeys)))
        return rc;
    struct cloud_scan_opts o = {.format = format, .keys_only = true};
    /* tests split even small files into ranges (not documented for users) */
    const char *mr = getenv("PAVE_SCAN_MIN_RANGE");
    if (mr && *mr)
        o.min_range = (size_t)strtoull(mr, NULL, 10);
    if (threads) {
        char *end;
        long t = strtol(threads, &end, 10);
        if (*end || t < 1 || t > CLOUD_SCAN_THREADS_MAX) {
            cli_error("--threads wants a number from 1 to %d, not '%s'", CLOUD_SCAN_THREADS_MAX,
                      threads);
            return CLI_USAGE;
        }
        o.threads = (int)t;
    }
    struct cloud_scan_result r;
    cloud_scan_result_init(&r, keys, nkeys);
    struct core_err err = {0};
    rc = CLI_OK;
    for (int i = 0; i < npos && rc == CLI_OK; i++) {
        if (cloud_scan_group(pos[i], &o, &r, &err)) {
            cli_error("%s", err.msg);
            rc = CLI_FAIL;
        }
    }
    if (rc == CLI_OK && cloud_scan_result_finish(&r, &err)) {
        cli_error("%s", err.msg);
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK) {
        print_result(ctx, &r, csv);
        if (r.malformed) {
            fprintf(stderr,
                    "pave: %lld malformed rows left out of the sums (`pave cost import` "
                    "reports them too)\n",
                    (long long)r.malformed);
            for (size_t i = 0; i < r.nbad; i++)
                fprintf(stderr, "  %s:%lld: %s\n", r.bad[i].file, (long long)r.bad[i].line,
                        r.bad[i].reason);
            if (r.malformed > (int64_t)r.nbad)
                fprintf(stderr, "  ... and %lld more\n", (long long)(r.malformed - r.nbad));
        }
    }
    cloud_scan_result_release(&r);
    return rc;
}
