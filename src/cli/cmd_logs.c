/* `pave logs`: a service's records from the platform's log store (docs/telemetry.md), through
 * GET /api/v1/services/{name}/logs. Prints one line per record, or the standard JSON lines with
 * -o json; -f keeps following until interrupted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char logs_usage[] =
    "usage: pave logs SERVICE [--env ENV] [-f] [--since WHEN] [--until WHEN]\n"
    "                 [--level LEVEL] [--grep TEXT] [--limit N] [-o json]\n\n"
    "Shows the log records of SERVICE that the platform collected (replica output, files,\n"
    "syslog, HTTP ingest), parsed into the log standard, enriched and redacted. Prints the\n"
    "newest records, oldest first, as 'TIME SEVERITY [instance] body key=value...';\n"
    "-o json prints the standard JSON lines as stored.\n\n"
    "flags:\n"
    "  --env ENV, -e ENV   only this environment\n"
    "  --follow, -f        keep printing new records until interrupted\n"
    "  --since WHEN        from this time: a duration back from now (15m, 2h, 7d) or\n"
    "                      an RFC 3339 time (2026-01-02T15:04:05Z)\n"
    "  --until WHEN        up to this time (same forms)\n"
    "  --level LEVEL       at least this severity: trace, debug, info, warn, error, fatal\n"
    "  --grep TEXT         only records whose body or JSON line contains TEXT\n"
    "                      (plain text, case-sensitive)\n"
    "  --limit N           the newest N records (default 1000, at most 100000)\n"
    "  -o json             the standard JSON lines\n\n"
    "Example: pave logs payments-api --env prod --since 15m --level warn -f\n";

struct out_state {
    struct cli_ctx *ctx;
    struct core_buf line;
    char error[600];
    bool too_long;
};

static void print_attr_value(json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (*s && !strpbrk(s, " \t\"=")) {
            fputs(s, stdout);
            return;
        }
    }
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (t)
        fputs(t, stdout);
    free(t);
}

static void print_record(struct out_state *st, const char *line, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    json_t *err = json_object_get(j, "error");
    if (json_is_object(err) && !json_object_get(j, "ts")) {
        /* an error answer instead of records */
        snprintf(st->error, sizeof(st->error), "%s",
                 json_string_value(json_object_get(err, "message")) ?: "request failed");
        json_decref(j);
        return;
    }
    if (st->ctx->format == CLI_JSON) {
        fwrite(line, 1, len, stdout);
        fputc('\n', stdout);
        json_decref(j);
        return;
    }
    const char *ts = json_string_value(json_object_get(j, "ts"));
    const char *sev = json_string_value(json_object_get(j, "severity"));
    const char *body = json_string_value(json_object_get(j, "body"));
    const char *inst =
        json_string_value(json_object_get(json_object_get(j, "resource"), "service.instance.id"));
    printf("%s %-5s ", ts ? ts : "-", sev && *sev ? sev : "-");
    if (inst && *inst)
        printf("[%s] ", inst);
    fputs(body ? body : "", stdout);
    const char *k;
    json_t *v;
    json_object_foreach (json_object_get(j, "attributes"), k, v) {
        printf(" %s=", k);
        print_attr_value(v);
    }
    fputc('\n', stdout);
    json_decref(j);
}

static void on_data(void *arg, const char *data, size_t len)
{
    struct out_state *st = arg;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t n = (size_t)((nl ? nl : data + len) - (data + i));
        if (core_buf_add(&st->line, data + i, n))
            st->too_long = true;
        i += n;
        if (!nl)
            break;
        i++;
        if (!st->too_long)
            print_record(st, st->line.data, st->line.len);
        st->too_long = false;
        core_buf_clear(&st->line);
    }
    fflush(stdout);
}

int cli_cmd_logs(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(logs_usage, stdout);
        return CLI_OK;
    }
    const char *env = NULL, *since = NULL, *until = NULL, *level = NULL, *grep = NULL,
               *limit = NULL;
    bool follow = false;
    const struct cli_opt opts[] = {{"env", 'e', &env, NULL},        {"since", 0, &since, NULL},
                                   {"until", 0, &until, NULL},      {"level", 0, &level, NULL},
                                   {"grep", 0, &grep, NULL},        {"limit", 0, &limit, NULL},
                                   {"follow", 'f', NULL, &follow},  {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos < 1 || !core_is_dns_label(pos[0])) {
        cli_error("logs needs one SERVICE name (see 'pave logs --help')");
        return CLI_USAGE;
    }
    if (ctx->format == CLI_YAML) {
        cli_error("logs prints -o table or -o json");
        return CLI_USAGE;
    }
    if (limit) {
        char *end = NULL;
        long n = strtol(limit, &end, 10);
        if (!*limit || *end || n < 1 || n > 100000) {
            cli_error("--limit must be from 1 to 100000");
            return CLI_USAGE;
        }
    }
    struct core_buf path;
    core_buf_init(&path, 0);
    core_buf_adds(&path, "/api/v1/services/");
    core_buf_add_urlenc(&path, pos[0]);
    core_buf_adds(&path, "/logs?");
    const struct {
        const char *key, *val;
    } params[] = {{"env", env},     {"since", since}, {"until", until}, {"level", level},
                  {"grep", grep},   {"limit", limit}, {"follow", follow ? "1" : NULL}};
    bool first = true;
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        if (!params[i].val)
            continue;
        core_buf_addf(&path, "%s%s=", first ? "" : "&", params[i].key);
        core_buf_add_urlenc(&path, params[i].val);
        first = false;
    }
    struct out_state st = {.ctx = ctx};
    core_buf_init(&st.line, 64u << 20);
    char msg[300] = "";
    int status = cli_http_stream(ctx, path.data, on_data, &st, msg, sizeof(msg));
    if (st.line.len && !st.too_long) /* an answer without a final newline */
        print_record(&st, st.line.data, st.line.len);
    fflush(stdout);
    rc = CLI_OK;
    if (status < 0) {
        cli_error("%s", msg);
        rc = CLI_FAIL;
    } else if (status != 200) {
        cli_error("%s", st.error[0] ? st.error : "the server answered with an error");
        if (status == 401)
            fprintf(stderr, "hint: check PAVE_TOKEN or run 'pave login'\n");
        rc = CLI_FAIL;
    }
    core_buf_release(&st.line);
    core_buf_release(&path);
    return rc;
}
