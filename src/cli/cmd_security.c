/* `pave security`: detection rules, security alerts and file integrity from the command line
 * (docs/security.md). Everything but `rules --check` talks to the server's /api/v1/security. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "security/security.h"

static const char security_usage[] =
    "usage: pave security <verb> [flags]\n\n"
    "Detections over the observability pipeline (Sigma rules), the alerts they raise and file\n"
    "integrity monitoring. See docs/security.md.\n\n"
    "verbs:\n"
    "  rules [--check PATH]          the server's loaded and rejected rules, or check rule\n"
    "                                files here (exit 1 when one is malformed)\n"
    "  alerts [list] [--state S] [--severity S] [--service S]\n"
    "  alerts show ID                one alert with its events\n"
    "  alerts ack ID [-m COMMENT]    acknowledge an alert\n"
    "  alerts close ID -m COMMENT    close an alert (a comment is required)\n"
    "  fim [baseline [--scope S] | scan | accept [PATH]]\n"
    "                                file integrity: the baseline, scan now, accept changes\n\n"
    "Every verb takes --help; listings take -o table|json|yaml.\n";

static const char rules_usage[] =
    "usage: pave security rules [--check PATH] [-o table|json|yaml]\n\n"
    "Without --check: the detection rules the server loaded, and those it rejected with the\n"
    "reason. With --check PATH (a rule file or a directory of *.yml / *.yaml): loads the rules\n"
    "here, without a server, and prints what loaded and what did not; exits 1 when a rule is\n"
    "malformed (rules that use unsupported Sigma features are listed but do not fail).\n";

static const char alerts_usage[] =
    "usage: pave security alerts [list] [--state S] [--severity S] [--service S] [--limit N]\n"
    "                            [-o table|json|yaml]\n"
    "       pave security alerts show ID [-o table|json|yaml]\n"
    "       pave security alerts ack ID [-m COMMENT]\n"
    "       pave security alerts close ID -m COMMENT\n\n"
    "Alerts raised by detection rules, built-in detections and file integrity. Findings with\n"
    "the same key (rule and service) are one alert while it is not closed: its count grows.\n"
    "States: open, acknowledged, closed (--state live: open or acknowledged). Severities:\n"
    "informational, low, medium, high, critical. Admins see every alert; others the alerts of\n"
    "their teams and those of no team. Acknowledging and closing (admins, or members of the\n"
    "alert's team) are in the audit log.\n";

static const char fim_usage[] =
    "usage: pave security fim [baseline] [--scope path|bundle] [-o table|json|yaml]\n"
    "       pave security fim scan [-o table|json|yaml]\n"
    "       pave security fim accept [PATH]\n\n"
    "File integrity monitoring: the baseline of watched files (hash, mode, owner), a scan now\n"
    "(admins; changes also become alerts), and accepting the current state of PATH (or of\n"
    "everything watched) as the new baseline (admins; audited).\n";

/* ---- rules ------------------------------------------------------------------------------ */

static int rules_check(struct cli_ctx *ctx, const char *path)
{
    struct core_err err = {0};
    struct security_sigma_set *s = security_sigma_set_new();
    if (!s) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    if (security_sigma_add_path(s, path, &err)) {
        cli_error("%s (give a rule file or a directory of *.yml files)", err.msg);
        security_sigma_set_free(s);
        return CLI_FAIL;
    }
    json_t *loaded = json_array(), *rejected = json_array();
    bool malformed = false;
    for (size_t i = 0; i < security_sigma_count(s); i++) {
        const struct security_sigma_rule *r = security_sigma_rule(s, i);
        json_array_append_new(loaded, json_pack("{s:s,s:s,s:s,s:s}", "id", r->id, "title",
                                                r->title, "level", r->level, "source",
                                                r->source));
    }
    for (size_t i = 0; i < security_sigma_rejected_count(s); i++) {
        const struct security_sigma_reject *r = security_sigma_rejected(s, i);
        malformed |= !r->unsupported;
        json_array_append_new(rejected, json_pack("{s:s,s:s,s:s,s:b}", "source", r->source,
                                                  "title", r->title, "reason", r->reason,
                                                  "unsupported", r->unsupported));
    }
    if (ctx->format != CLI_TABLE) {
        json_t *out = json_pack("{s:o,s:o}", "items", loaded, "rejected", rejected);
        cli_print_object(ctx, out);
        json_decref(out);
    } else {
        static const struct cli_column cols[] = {
            {"ID", "id"}, {"LEVEL", "level"}, {"TITLE", "title"}, {"FILE", "source"},
            {NULL, NULL}};
        cli_print_list(ctx, loaded, cols);
        size_t i;
        json_t *r;
        json_array_foreach (rejected, i, r)
            printf("not loaded: %s: %s\n", json_string_value(json_object_get(r, "source")),
                   json_string_value(json_object_get(r, "reason")));
        printf("%zu loaded, %zu not loaded\n", json_array_size(loaded), json_array_size(rejected));
        json_decref(loaded);
        json_decref(rejected);
    }
    security_sigma_set_free(s);
    if (malformed)
        cli_error("a rule is malformed; fix it where the message points");
    return malformed ? CLI_FAIL : CLI_OK;
}

static int cmd_rules(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(rules_usage, stdout);
        return CLI_OK;
    }
    const char *check = NULL;
    const struct cli_opt opts[] = {{"check", 0, &check, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc)
        return rc;
    if (check)
        return rules_check(ctx, check);
    json_t *resp = NULL;
    if ((rc = cli_api(ctx, "GET", "/api/v1/security/rules", NULL, 0, NULL, &resp)))
        return rc;
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, resp);
    } else {
        static const struct cli_column cols[] = {
            {"ID", "id"}, {"LEVEL", "level"}, {"TITLE", "title"}, {"SOURCE", "source"},
            {NULL, NULL}};
        cli_print_list(ctx, json_object_get(resp, "items"), cols);
        size_t i;
        json_t *r;
        json_array_foreach (json_object_get(resp, "rejected"), i, r)
            printf("not loaded: %s: %s\n", json_string_value(json_object_get(r, "source")),
                   json_string_value(json_object_get(r, "reason")));
    }
    json_decref(resp);
    return CLI_OK;
}

/* ---- alerts ----------------------------------------------------------------------------- */

static void add_q(struct core_buf *b, const char *k, const char *v)
{
    if (!v)
        return;
    core_buf_adds(b, strchr(b->data, '?') ? "&" : "?");
    core_buf_adds(b, k);
    core_buf_addc(b, '=');
    core_buf_add_urlenc(b, v);
}

static int alerts_list(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *state = NULL, *sev = NULL, *service = NULL, *limit = NULL;
    const struct cli_opt opts[] = {{"state", 0, &state, NULL},
                                   {"severity", 0, &sev, NULL},
                                   {"service", 0, &service, NULL},
                                   {"limit", 0, &limit, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc)
        return rc;
    struct core_buf path;
    core_buf_init(&path, 0);
    core_buf_adds(&path, "/api/v1/security/alerts");
    add_q(&path, "state", state);
    add_q(&path, "severity", sev);
    add_q(&path, "service", service);
    add_q(&path, "limit", limit);
    json_t *resp = NULL;
    rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp);
    core_buf_release(&path);
    if (rc)
        return rc;
    static const struct cli_column cols[] = {
        {"ID", "id"},           {"SEVERITY", "severity"}, {"STATE", "state"},
        {"COUNT", "count"},     {"SERVICE", "service"},   {"TEAM", "team"},
        {"RULE", "rule_title"}, {"LAST SEEN", "last_seen"}, {NULL, NULL}};
    if (ctx->format == CLI_TABLE)
        cli_print_list(ctx, json_object_get(resp, "items"), cols);
    else
        cli_print_object(ctx, resp);
    json_decref(resp);
    return CLI_OK;
}

static bool parse_alert_id(const char *s, long long *id)
{
    char *end = NULL;
    *id = s ? strtoll(s, &end, 10) : 0;
    return s && *s && !*end && *id > 0;
}

static int alerts_show(struct cli_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 1, &npos);
    if (rc)
        return rc;
    long long id;
    if (npos != 1 || !parse_alert_id(pos[0], &id)) {
        cli_error("usage: pave security alerts show ID (IDs are in 'pave security alerts')");
        return CLI_USAGE;
    }
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/security/alerts/%lld", id);
    json_t *resp = NULL;
    if ((rc = cli_api(ctx, "GET", path, NULL, 0, NULL, &resp)))
        return rc;
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, resp);
        json_decref(resp);
        return CLI_OK;
    }
    json_t *events = json_incref(json_object_get(resp, "events"));
    json_object_del(resp, "events");
    cli_print_object(ctx, resp);
    printf("events (%zu kept):\n", json_array_size(events));
    size_t i;
    json_t *ev;
    json_array_foreach (events, i, ev) {
        char *s = json_dumps(ev, JSON_COMPACT);
        printf("  %s\n", s ? s : "?");
        free(s);
    }
    json_decref(events);
    json_decref(resp);
    return CLI_OK;
}

static int alerts_move(struct cli_ctx *ctx, const char *verb, int argc, char **argv)
{
    const char *comment = NULL;
    const struct cli_opt opts[] = {{"comment", 'm', &comment, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 1, &npos);
    if (rc)
        return rc;
    long long id;
    bool closing = !strcmp(verb, "close");
    if (npos != 1 || !parse_alert_id(pos[0], &id) || (closing && (!comment || !*comment))) {
        cli_error("usage: pave security alerts %s ID %s", verb,
                  closing ? "-m COMMENT (say why it is closed)" : "[-m COMMENT]");
        return CLI_USAGE;
    }
    char path[112];
    snprintf(path, sizeof(path), "/api/v1/security/alerts/%lld/%s", id, verb);
    return cli_post_state_change(ctx, path, comment, "alert", id);
}

static int cmd_alerts(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(alerts_usage, stdout);
        return CLI_OK;
    }
    if (argc >= 2 && argv[1][0] != '-') {
        const char *verb = argv[1];
        if (!strcmp(verb, "list"))
            return alerts_list(ctx, argc - 1, argv + 1);
        if (!strcmp(verb, "show"))
            return alerts_show(ctx, argc - 1, argv + 1);
        if (!strcmp(verb, "ack") || !strcmp(verb, "close"))
            return alerts_move(ctx, verb, argc - 1, argv + 1);
        cli_error("unknown verb 'security alerts %s' (use list, show, ack or close)", verb);
        return CLI_USAGE;
    }
    return alerts_list(ctx, argc, argv);
}

/* ---- fim -------------------------------------------------------------------------------- */

static int fim_baseline(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *scope = NULL;
    const struct cli_opt opts[] = {{"scope", 0, &scope, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc)
        return rc;
    struct core_buf path;
    core_buf_init(&path, 0);
    core_buf_adds(&path, "/api/v1/security/fim");
    add_q(&path, "scope", scope);
    json_t *resp = NULL;
    rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp);
    core_buf_release(&path);
    if (rc)
        return rc;
    static const struct cli_column cols[] = {{"PATH", "path"},   {"SCOPE", "scope"},
                                             {"KIND", "kind"},   {"SIZE", "size"},
                                             {"MODE", "mode"},   {"SHA256", "sha256"},
                                             {NULL, NULL}};
    if (ctx->format == CLI_TABLE)
        cli_print_list(ctx, json_object_get(resp, "items"), cols);
    else
        cli_print_object(ctx, resp);
    json_decref(resp);
    return CLI_OK;
}

static int fim_scan(struct cli_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 0, &npos);
    if (rc)
        return rc;
    json_t *resp = NULL;
    if ((rc = cli_api(ctx, "POST", "/api/v1/security/fim/scan", "{}", 2, "application/json",
                      &resp)))
        return rc;
    static const struct cli_column cols[] = {{"CHANGE", "change"}, {"PATH", "path"},
                                             {NULL, NULL}};
    if (ctx->format == CLI_TABLE) {
        cli_print_list(ctx, json_object_get(resp, "items"), cols);
        printf("%zu change(s)\n", json_array_size(json_object_get(resp, "items")));
    } else {
        cli_print_object(ctx, resp);
    }
    json_decref(resp);
    return CLI_OK;
}

static int fim_accept(struct cli_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 1, &npos);
    if (rc)
        return rc;
    json_t *body = npos ? json_pack("{s:s}", "path", pos[0]) : json_object();
    json_t *resp = NULL;
    rc = body ? cli_api_json(ctx, "POST", "/api/v1/security/fim/accept", body, &resp) : CLI_FAIL;
    if (rc)
        return rc;
    if (ctx->format != CLI_TABLE)
        cli_print_object(ctx, resp);
    else
        printf("accepted %s as the new baseline\n", npos ? pos[0] : "everything watched");
    json_decref(resp);
    return CLI_OK;
}

static int cmd_fim(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(fim_usage, stdout);
        return CLI_OK;
    }
    if (argc >= 2 && argv[1][0] != '-') {
        const char *verb = argv[1];
        if (!strcmp(verb, "baseline"))
            return fim_baseline(ctx, argc - 1, argv + 1);
        if (!strcmp(verb, "scan"))
            return fim_scan(ctx, argc - 1, argv + 1);
        if (!strcmp(verb, "accept"))
            return fim_accept(ctx, argc - 1, argv + 1);
        cli_error("unknown verb 'security fim %s' (use baseline, scan or accept)", verb);
        return CLI_USAGE;
    }
    return fim_baseline(ctx, argc, argv);
}

int cli_cmd_security(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct cli_verb verbs[] = {
        {"rules", cmd_rules}, {"alerts", cmd_alerts}, {"fim", cmd_fim}, {NULL, NULL}};
    return cli_run_verb(ctx, argc, argv, "security", security_usage, verbs);
}
