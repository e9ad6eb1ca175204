/* `pave team|user|env`: the organization around the services. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* GETs a list endpoint and prints it. */
static int list_endpoint(struct cli_ctx *ctx, int argc, char **argv, const char *path,
                         const struct cli_column *cols)
{
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 0, &npos);
    if (rc)
        return rc;
    json_t *resp = NULL;
    if ((rc = cli_api(ctx, "GET", path, NULL, 0, NULL, &resp)))
        return rc;
    cli_print_list(ctx, json_object_get(resp, "items"), cols);
    json_decref(resp);
    return CLI_OK;
}

/* Sends a JSON body and prints "<kind>/<name> <change>". */
static int send_change(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
                       const char *kind, const char *name)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    json_t *resp = NULL;
    int rc = cli_api(ctx, method, path, text, text ? strlen(text) : 0, "application/json", &resp);
    free(text);
    if (!rc) {
        const char *change = json_string_value(json_object_get(resp, "change"));
        if (ctx->format == CLI_TABLE)
            printf("%s/%s %s\n", kind, name, change ? change : "done");
        else
            cli_print_object(ctx, resp);
    }
    json_decref(resp);
    return rc;
}

static const char team_usage[] =
    "usage: pave team <verb> [flags]\n\n"
    "verbs:\n"
    "  list                                   teams with their service and member counts\n"
    "  show NAME\n"
    "  create NAME [--display-name T] [--description T]   (admin)\n"
    "  delete NAME                            refused while the team owns services (admin)\n"
    "  add-member TEAM USER                   (admin)\n"
    "  remove-member TEAM USER                (admin)\n\n"
    "Listings take -o table|json|yaml.\n";

int cli_cmd_team(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(team_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    argc--;
    argv++;
    char *pos[2];
    int npos, rc;
    char path[512];
    if (strcmp(verb, "list") == 0) {
        static const struct cli_column cols[] = {
            {"NAME", "name"},         {"DISPLAY NAME", "display_name"}, {"SERVICES", "services"},
            {"MEMBERS", "members"},   {"DESCRIPTION", "description"},   {NULL, NULL}};
        return list_endpoint(ctx, argc, argv, "/api/v1/teams", cols);
    }
    if (strcmp(verb, "create") == 0) {
        const char *display = NULL, *desc = NULL;
        const struct cli_opt opts[] = {{"display-name", 0, &display, NULL},
                                       {"description", 0, &desc, NULL},
                                       {NULL, 0, NULL, NULL}};
        if ((rc = cli_parse(ctx, argc, argv, opts, pos, 1, &npos)))
            return rc;
        if (npos != 1) {
            cli_error("team create needs a NAME");
            return CLI_USAGE;
        }
        return send_change(ctx, "POST", "/api/v1/teams",
                           json_pack("{s:s,s:s?,s:s?}", "name", pos[0], "display_name", display,
                                     "description", desc),
                           "team", pos[0]);
    }
    if (strcmp(verb, "show") == 0 || strcmp(verb, "delete") == 0) {
        if ((rc = cli_parse(ctx, argc, argv, NULL, pos, 1, &npos)))
            return rc;
        if (npos != 1) {
            cli_error("team %s needs a NAME", verb);
            return CLI_USAGE;
        }
        if (strchr(pos[0], '/') || strchr(pos[0], '?') || strchr(pos[0], '%')) {
            cli_error("invalid team name '%s'", pos[0]);
            return CLI_FAIL;
        }
        snprintf(path, sizeof(path), "/api/v1/teams/%s", pos[0]);
        if (strcmp(verb, "delete") == 0)
            return send_change(ctx, "DELETE", path, NULL, "team", pos[0]);
        json_t *resp = NULL;
        if ((rc = cli_api(ctx, "GET", path, NULL, 0, NULL, &resp)))
            return rc;
        cli_print_object(ctx, resp);
        json_decref(resp);
        return CLI_OK;
    }
    if (strcmp(verb, "add-member") == 0 || strcmp(verb, "remove-member") == 0) {
        if ((rc = cli_parse(ctx, argc, argv, NULL, pos, 2, &npos)))
            return rc;
        if (npos != 2) {
            cli_error("team %s needs TEAM and USER", verb);
            return CLI_USAGE;
        }
        for (int i = 0; i < 2; i++)
            if (!core_is_dns_label(pos[i])) {
                cli_error("invalid name '%s': use lowercase letters, digits and '-'", pos[i]);
                return CLI_FAIL;
            }
        char obj[160];
        snprintf(obj, sizeof(obj), "%s/%s", pos[0], pos[1]);
        if (verb[0] == 'a') {
            snprintf(path, sizeof(path), "/api/v1/teams/%s/members", pos[0]);
            return send_change(ctx, "POST", path, json_pack("{s:s}", "user", pos[1]),
                               "membership", obj);
        }
        snprintf(path, sizeof(path), "/api/v1/teams/%s/members/%s", pos[0], pos[1]);
        return send_change(ctx, "DELETE", path, NULL, "membership", obj);
    }
    cli_error("unknown verb 'team %s' (see 'pave team --help')", verb);
    return CLI_USAGE;
}

static const char user_usage[] =
    "usage: pave user <verb> [flags]\n\n"
    "verbs:\n"
    "  list                                       users, their teams and admin flag\n"
    "  create NAME [--display-name T] [--admin]   (admin)\n\n"
    "Give a user a team with 'pave team add-member TEAM USER' and a token with\n"
    "'pave token create --user USER'. Listings take -o table|json|yaml.\n";

int cli_cmd_user(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(user_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "list") == 0) {
        static const struct cli_column cols[] = {{"NAME", "name"},
                                                 {"ADMIN", "admin"},
                                                 {"TEAMS", "teams"},
                                                 {"DISPLAY NAME", "display_name"},
                                                 {NULL, NULL}};
        return list_endpoint(ctx, argc - 1, argv + 1, "/api/v1/users", cols);
    }
    if (strcmp(verb, "create") == 0) {
        const char *display = NULL;
        bool admin = false;
        const struct cli_opt opts[] = {{"display-name", 0, &display, NULL},
                                       {"admin", 0, NULL, &admin},
                                       {NULL, 0, NULL, NULL}};
        char *pos[1];
        int npos;
        int rc = cli_parse(ctx, argc - 1, argv + 1, opts, pos, 1, &npos);
        if (rc)
            return rc;
        if (npos != 1) {
            cli_error("user create needs a NAME");
            return CLI_USAGE;
        }
        return send_change(ctx, "POST", "/api/v1/users",
                           json_pack("{s:s,s:s?,s:b}", "name", pos[0], "display_name", display,
                                     "admin", admin),
                           "user", pos[0]);
    }
    cli_error("unknown verb 'user %s' (see 'pave user --help')", verb);
    return CLI_USAGE;
}

static const char env_usage[] =
    "usage: pave env <verb> [flags]\n\n"
    "verbs:\n"
    "  list                                  environments in promotion order\n"
    "  create NAME [--description T]         (admin)\n\n"
    "dev, staging and prod exist from the first start. Listings take -o table|json|yaml.\n";

int cli_cmd_env(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(env_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "list") == 0) {
        static const struct cli_column cols[] = {
            {"NAME", "name"}, {"DESCRIPTION", "description"}, {NULL, NULL}};
        return list_endpoint(ctx, argc - 1, argv + 1, "/api/v1/environments", cols);
    }
    if (strcmp(verb, "create") == 0) {
        const char *desc = NULL;
        const struct cli_opt opts[] = {{"description", 0, &desc, NULL}, {NULL, 0, NULL, NULL}};
        char *pos[1];
        int npos;
        int rc = cli_parse(ctx, argc - 1, argv + 1, opts, pos, 1, &npos);
        if (rc)
            return rc;
        if (npos != 1) {
            cli_error("env create needs a NAME");
            return CLI_USAGE;
        }
        return send_change(ctx, "POST", "/api/v1/environments",
                           json_pack("{s:s,s:s?}", "name", pos[0], "description", desc),
                           "environment", pos[0]);
    }
    cli_error("unknown verb 'env %s' (see 'pave env --help')", verb);
    return CLI_USAGE;
}
